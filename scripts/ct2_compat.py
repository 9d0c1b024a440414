"""Check CTranslate2 models written by `vkwhisper convert` against the real
CTranslate2 (called by scripts/check-ct2-compat.sh; needs ctranslate2 and
faster-whisper installed).

1. Reference: CTranslate2's own model writer (ctranslate2.specs: WhisperSpec,
   optimize = aliasing + quantisation, save) is fed the source model's
   variables and asked for the same quantisation. Every variable of our
   model.bin must equal the reference's: name, dtype, shape, values, and the
   alias table. Scalars only one side has must be 0 (newer CTranslate2
   versions add default-valued attributes such as decoder/scale_alibi).
2. faster-whisper loads each converted directory and transcribes the audio:
   the text must be the golden text (exactly, with float32 compute; with int8
   compute, CTranslate2's int8 kernels change punctuation, so the words are
   compared and the reference model must give the same text as ours).

usage: ct2_compat.py GOLDEN_JSON AUDIO SOURCE_CT2_DIR OUT_DIR:QUANT...
"""

import json
import os
import re
import shutil
import struct
import sys
import tempfile

import numpy as np
from ctranslate2.specs import whisper_spec
from faster_whisper import WhisperModel

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_model_bin(path):
    """Variables and aliases of a version-6 model.bin (spec section 2.2)."""
    buf = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        (v,) = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<H")
        s = buf[pos : pos + n - 1].decode()
        pos += n
        return s

    assert take("<I") == 6, "binary version"
    string()
    take("<I")
    variables = {}
    for _ in range(take("<I")):
        name = string()
        shape = [take("<I") for _ in range(take("<B"))]
        dtype = DTYPES[take("<B")]
        nbytes = take("<I")
        count = nbytes // np.dtype(dtype).itemsize
        variables[name] = np.frombuffer(buf, dtype, count, pos).reshape(shape)
        pos += nbytes
    aliases = [(string(), string()) for _ in range(take("<I"))]
    assert pos == len(buf), "trailing bytes"
    return variables, aliases


def reference(src_dir, quant, out_dir):
    """Write src_dir's model again with CTranslate2's own spec writer."""
    variables, aliases = read_model_bin(os.path.join(src_dir, "model.bin"))

    def count(stack):
        return sum(
            1
            for k in variables
            if k.startswith(stack + "/layer_")
            and k.endswith("/self_attention/linear_0/weight")
        )

    spec = whisper_spec.WhisperSpec(
        count("encoder"),
        int(variables["encoder/num_heads"]),
        count("decoder"),
        int(variables["decoder/num_heads"]),
    )

    def assign(name, value):
        obj = spec
        parts = name.split("/")
        for part in parts[:-1]:
            base, _, index = part.rpartition("_")
            if index.isdigit() and isinstance(getattr(obj, base, None), list):
                obj = getattr(obj, base)[int(index)]
            else:
                obj = getattr(obj, part)
        setattr(obj, parts[-1], value.copy())

    for name, value in variables.items():
        if value.ndim > 0:  # scalars come from the spec itself
            assign(name, value)
    for alias, target in aliases:
        assign(alias, variables[target])
    with open(os.path.join(src_dir, "config.json")) as f:
        for key, value in json.load(f).items():
            setattr(spec.config, key, value)
    txt = os.path.join(src_dir, "vocabulary.txt")
    if os.path.exists(txt):
        with open(txt, encoding="utf-8") as f:
            vocabulary = f.read().split("\n")[:-1]
    else:
        with open(os.path.join(src_dir, "vocabulary.json"), encoding="utf-8") as f:
            vocabulary = json.load(f)
    spec.register_vocabulary(vocabulary)
    spec.validate()
    spec.optimize(quantization=quant)
    os.makedirs(out_dir, exist_ok=True)
    spec.save(out_dir)
    shutil.copy(os.path.join(src_dir, "tokenizer.json"), out_dir)


def compare(ours_dir, ref_dir):
    ours, ours_aliases = read_model_bin(os.path.join(ours_dir, "model.bin"))
    ref, ref_aliases = read_model_bin(os.path.join(ref_dir, "model.bin"))
    assert ours_aliases == ref_aliases, (ours_aliases, ref_aliases)
    for name in sorted(set(ours) | set(ref)):
        if name not in ours or name not in ref:
            value = ours.get(name, ref.get(name))
            assert value.ndim == 0 and value == 0, f"{name} only on one side"
            print(f"  note: scalar {name} = 0 only in {'ours' if name in ours else 'CTranslate2'}")
            continue
        a, b = ours[name], ref[name]
        assert a.dtype == b.dtype, f"{name}: dtype {a.dtype} vs {b.dtype}"
        assert a.shape == b.shape, f"{name}: shape {a.shape} vs {b.shape}"
        assert np.array_equal(a, b), f"{name}: values differ"
    with open(os.path.join(ours_dir, "config.json")) as f1, open(
        os.path.join(ref_dir, "config.json")
    ) as f2:
        assert f1.read() == f2.read(), "config.json differs"
    print(f"  {len(ours)} variables and {len(ours_aliases)} alias(es) equal CTranslate2's writer")


def transcribe(model_dir, audio, compute_type):
    model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=2)
    segments, _ = model.transcribe(audio, beam_size=5)
    return "".join(s.text for s in segments)


def words(text):
    return re.sub(r"[^a-z ]", "", text.lower()).split()


def main():
    golden_path, audio, src = sys.argv[1:4]
    golden = json.load(open(golden_path))["files"]["jfk/jfk.wav"]["text"]
    for arg in sys.argv[4:]:
        out_dir, quant = arg.rsplit(":", 1)
        print(f"{quant}: {out_dir}")
        with tempfile.TemporaryDirectory() as ref_dir:
            reference(src, quant, ref_dir)
            compare(out_dir, ref_dir)
            text = transcribe(out_dir, audio, "float32")
            print(f"  faster-whisper float32: {text!r}")
            assert text == golden, f"expected {golden!r}"
            if quant.startswith("int8"):
                text = transcribe(out_dir, audio, "int8")
                ref_text = transcribe(ref_dir, audio, "int8")
                print(f"  faster-whisper int8:    {text!r}")
                assert text == ref_text, f"CTranslate2's own int8 model gives {ref_text!r}"
                assert words(text) == words(golden), f"expected the words of {golden!r}"
    print("CTranslate2 compatibility: ok")


if __name__ == "__main__":
    main()
