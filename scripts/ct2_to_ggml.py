#!/usr/bin/env python3
"""Write a CTranslate2 Whisper model as a whisper.cpp (ggml) model file, so
both engines run the SAME weights in a side-by-side benchmark
(scripts/bench-server.sh). For measurement only: not a product feature.

    python3 scripts/ct2_to_ggml.py CT2_MODEL_DIR OUT.bin

Reads model.bin with our own reader (docs/SPEC.md §2: binary version 6,
variables sorted by name, aliases at the end; int8 weights are divided by
their per-row scale, §2.6), renames the variables to the OpenAI checkpoint
names whisper.cpp's loader looks up (§3: fused Q/K/V and cross K/V split
back; Whisper's key projections have no bias), and writes whisper.cpp's
legacy ggml layout: magic, 11 int32 hyper-parameters, the mel filterbank
(n_mels x 201 float32, taken from faster-whisper's FeatureExtractor so the
two engines see the same filters), the byte-level vocabulary up to
<|endoftext|> (whisper.cpp adds the special tokens itself), then each
tensor (n_dims, name length, ftype; dims innermost first; name; data).
Matrices are float16, vectors and position tables float32, as whisper.cpp's
own converter writes them.

Needs numpy and faster_whisper (for the mel filters) in the running Python.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(path):
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def string():
        nonlocal pos
        (n,) = take("H")
        s = data[pos : pos + n - 1].decode()
        pos += n
        return s

    (version,) = take("I")
    if version != 6:
        sys.exit(f"{path}: binary version {version}, expected 6")
    string()
    take("I")
    (count,) = take("I")
    tensors = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        dims = take(f"{rank}I") if rank else ()
        dtype, nbytes = take("BI")
        if dtype == 5:  # bfloat16 -> float32
            raw = np.frombuffer(data, np.uint16, nbytes // 2, pos).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data, DTYPES[dtype], nbytes // np.dtype(DTYPES[dtype]).itemsize, pos)
        pos += nbytes
        tensors[name] = arr.reshape(dims) if rank else arr
    (aliases,) = take("I")
    for _ in range(aliases):
        alias, target = string(), string()
        tensors[alias] = tensors[target]
    return tensors


def weights(t, name):
    """Float32 view of a variable, int8 ones dequantised (§2.6)."""
    w = t[name]
    if w.dtype == np.int8:
        scale = t[name + "_scale"].astype(np.float32)
        w = w.astype(np.float32) / scale.reshape((-1,) + (1,) * (w.ndim - 1))
    return w.astype(np.float32)


def convert(ct2_dir, out_path):
    ct2_dir = Path(ct2_dir)
    t = read_ct2(ct2_dir / "model.bin")
    tok = json.loads((ct2_dir / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    added = {a["content"]: a["id"] for a in tok.get("added_tokens", [])}
    eot = added.get("<|endoftext|>", vocab.get("<|endoftext|>"))

    d = t["encoder/conv1/weight"].shape[0]
    n_mels = t["encoder/conv1/weight"].shape[1]
    n_vocab = t["decoder/embeddings/weight"].shape[0]
    n_audio_ctx = t["encoder/position_encodings/encodings"].shape[0]
    n_text_ctx = t["decoder/position_encodings/encodings"].shape[0]
    def layers(side):
        ids = [k.split("/")[1][6:] for k in t if k.startswith(side + "/layer_")]
        return 1 + max(int(i) for i in ids if i.isdigit())

    enc_layers, dec_layers = layers("encoder"), layers("decoder")
    enc_heads = int(t["encoder/num_heads"].reshape(-1)[0])
    dec_heads = int(t["decoder/num_heads"].reshape(-1)[0])

    from faster_whisper.feature_extractor import FeatureExtractor

    filters = np.asarray(FeatureExtractor(feature_size=n_mels).mel_filters, np.float32)

    out = []  # (name, float32 array)

    def put(name, arr):
        out.append((name, np.ascontiguousarray(arr, np.float32)))

    def ln(src, dst):
        put(dst + ".weight", weights(t, src + "/gamma"))
        put(dst + ".bias", weights(t, src + "/beta"))

    def lin(src, dst, bias=True):
        put(dst + ".weight", weights(t, src + "/weight"))
        if bias:
            put(dst + ".bias", weights(t, src + "/bias"))

    put("encoder.positional_embedding", weights(t, "encoder/position_encodings/encodings"))
    for c in ("conv1", "conv2"):
        put(f"encoder.{c}.weight", weights(t, f"encoder/{c}/weight"))
        put(f"encoder.{c}.bias", weights(t, f"encoder/{c}/bias").reshape(d, 1))
    for i in range(enc_layers):
        s, o = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        ln(f"{s}/self_attention/layer_norm", f"{o}.attn_ln")
        w = weights(t, f"{s}/self_attention/linear_0/weight")
        b = weights(t, f"{s}/self_attention/linear_0/bias")
        put(f"{o}.attn.query.weight", w[:d]), put(f"{o}.attn.query.bias", b[:d])
        put(f"{o}.attn.key.weight", w[d : 2 * d])
        put(f"{o}.attn.value.weight", w[2 * d :]), put(f"{o}.attn.value.bias", b[2 * d :])
        lin(f"{s}/self_attention/linear_1", f"{o}.attn.out")
        ln(f"{s}/ffn/layer_norm", f"{o}.mlp_ln")
        lin(f"{s}/ffn/linear_0", f"{o}.mlp.0")
        lin(f"{s}/ffn/linear_1", f"{o}.mlp.2")
    ln("encoder/layer_norm", "encoder.ln_post")

    put("decoder.positional_embedding", weights(t, "decoder/position_encodings/encodings"))
    put("decoder.token_embedding.weight", weights(t, "decoder/embeddings/weight"))
    for i in range(dec_layers):
        s, o = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        ln(f"{s}/self_attention/layer_norm", f"{o}.attn_ln")
        w = weights(t, f"{s}/self_attention/linear_0/weight")
        b = weights(t, f"{s}/self_attention/linear_0/bias")
        put(f"{o}.attn.query.weight", w[:d]), put(f"{o}.attn.query.bias", b[:d])
        put(f"{o}.attn.key.weight", w[d : 2 * d])
        put(f"{o}.attn.value.weight", w[2 * d :]), put(f"{o}.attn.value.bias", b[2 * d :])
        lin(f"{s}/self_attention/linear_1", f"{o}.attn.out")
        ln(f"{s}/attention/layer_norm", f"{o}.cross_attn_ln")
        lin(f"{s}/attention/linear_0", f"{o}.cross_attn.query")
        w = weights(t, f"{s}/attention/linear_1/weight")
        b = weights(t, f"{s}/attention/linear_1/bias")
        put(f"{o}.cross_attn.key.weight", w[:d])
        put(f"{o}.cross_attn.value.weight", w[d:]), put(f"{o}.cross_attn.value.bias", b[d:])
        lin(f"{s}/attention/linear_2", f"{o}.cross_attn.out")
        ln(f"{s}/ffn/layer_norm", f"{o}.mlp_ln")
        lin(f"{s}/ffn/linear_0", f"{o}.mlp.0")
        lin(f"{s}/ffn/linear_1", f"{o}.mlp.2")
    ln("decoder/layer_norm", "decoder.ln")

    # GPT-2's byte-level alphabet, inverted: vocabulary strings -> bytes.
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    byte_of = {chr(c): b for b, c in zip(printable, chars)}
    words = sorted(((i, w) for w, i in vocab.items() if i < eot), key=lambda x: x[0])
    if [i for i, _ in words] != list(range(eot)):
        sys.exit("the vocabulary below <|endoftext|> is not contiguous")

    with open(out_path, "wb") as f:
        f.write(struct.pack("<i", 0x67676D6C))
        f.write(struct.pack("<11i", n_vocab, n_audio_ctx, d, enc_heads, enc_layers,
                            n_text_ctx, d, dec_heads, dec_layers, n_mels, 1))
        f.write(struct.pack("<ii", *filters.shape))
        f.write(filters.tobytes())
        f.write(struct.pack("<i", eot + 1))
        for _, w in words:
            b = bytes(byte_of[c] for c in w)
            f.write(struct.pack("<i", len(b)) + b)
        eot_text = b"<|endoftext|>"
        f.write(struct.pack("<i", len(eot_text)) + eot_text)
        for name, arr in out:
            vector = arr.ndim < 2 or name.endswith("positional_embedding") or name.endswith("conv1.bias") or name.endswith("conv2.bias")
            data = arr if vector else arr.astype(np.float16)
            raw = name.encode()
            f.write(struct.pack("<iii", arr.ndim, len(raw), 0 if vector else 1))
            f.write(struct.pack(f"<{arr.ndim}i", *reversed(arr.shape)))
            f.write(raw)
            f.write(data.tobytes())
    print(f"{out_path}: {len(out)} tensors, d={d}, layers {enc_layers}/{dec_layers}, vocab {n_vocab}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(sys.argv[1], sys.argv[2])
