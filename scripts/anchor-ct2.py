#!/usr/bin/env python3
"""Anchors for scripts/device-check.sh (issue 14), printed as key=value lines.

  anchor-ct2.py MODEL_DIR [REPS] [--device cuda|cpu] [--compute-type T]
               [--threads N] [--batches 1,8]
      CTranslate2 (ctranslate2.models.Whisper, float16 on CUDA; int8 on a
      CPU unless --compute-type says otherwise; --threads: intra_threads)
      on the same synthetic-shape model the device check times
      vkwhisper on: encoder ms per 30 s window (batch 1 and 8) and beam-5
      generate ms per window (about 64 new tokens, forced: special tokens
      are suppressed, so max_length bounds the work) and ms per step.
  anchor-ct2.py --torch-matmul
      PyTorch's fp16 matmul at the encoder's shapes (1500 x d x 4d):
      the ceiling when CTranslate2 is not available.

Nothing is downloaded: the device machine reaches nothing, so CTranslate2's
wheel (and CUDA libraries) must be carried in (PYTHONPATH) or already be
installed; every line names its source.
"""
import json
import os
import sys
import time


def pct50(v):
    v = sorted(v)
    return v[len(v) // 2]


def special_ids(model_dir):
    """<|startoftranscript|>, <|notimestamps|> and <|endoftext|> from the model's vocabulary."""
    vocab = []
    txt = os.path.join(model_dir, "vocabulary.txt")
    js = os.path.join(model_dir, "vocabulary.json")
    if os.path.exists(txt):
        with open(txt, encoding="utf-8") as f:
            vocab = [line.rstrip("\n") for line in f]
    elif os.path.exists(js):
        with open(js, encoding="utf-8") as f:
            vocab = json.load(f)
    ids = {t: i for i, t in enumerate(vocab)}
    return ids["<|startoftranscript|>"], ids["<|notimestamps|>"], ids["<|endoftext|>"]


def ct2(model_dir, reps, device, ct=None, threads=0, batches=(1, 8)):
    import ctranslate2
    import numpy as np

    ct = ct or ("float16" if device == "cuda" else "int8")
    t = time.perf_counter()
    m = ctranslate2.models.Whisper(model_dir, device=device, compute_type=ct, intra_threads=threads)
    load_s = time.perf_counter() - t
    n_mels = m.n_mels if hasattr(m, "n_mels") else 80
    src = f"ctranslate2 {ctranslate2.__version__} {device} {ct}"
    if threads:
        src += f" intra_threads={threads}"
    if os.environ.get("ANCHOR_NOTE"):
        src += f" ({os.environ['ANCHOR_NOTE']})"
    sot, nots, eot = special_ids(model_dir)
    n_vocab = m.n_vocab if hasattr(m, "n_vocab") else 51864
    print(f"anchor=ct2 source='{src}' model={model_dir} load_s={load_s:.2f}", flush=True)
    rng = np.random.default_rng(0)
    for batch in batches:
        feats = rng.standard_normal((batch, n_mels, 3000)).astype(np.float32)
        sv = ctranslate2.StorageView.from_array(feats)
        m.encode(sv, to_cpu=True)  # warm
        v = []
        for _ in range(reps):
            t = time.perf_counter()
            m.encode(sv, to_cpu=True)
            v.append((time.perf_counter() - t) * 1e3 / batch)
        if batch == batches[0]:
            enc1 = pct50(v)
        print(f"anchor=ct2 source='{src}' model={model_dir} batch={batch} encode_ms_per_window={pct50(v):.1f}", flush=True)
    feats = rng.standard_normal((1, n_mels, 3000)).astype(np.float32)
    sv = ctranslate2.StorageView.from_array(feats)
    v = []
    for _ in range(reps):
        t = time.perf_counter()
        # Every special token (the end token among them) is suppressed so
        # that every run decodes a fixed number of tokens, as vkwhisper's
        # forced steps do. CTranslate2 4.8 returned max_length / 2 tokens
        # here (measured: 20 -> 10, 66 -> 33, 130 -> 65), hence 130 for 64.
        r = m.generate(sv, [[sot, nots]], beam_size=5, max_length=130,
                       suppress_blank=False, suppress_tokens=list(range(eot, n_vocab)))
        v.append((time.perf_counter() - t) * 1e3)
    ntok = len(r[0].sequences_ids[0])
    # generate() includes one encoder pass; ms per step subtracts it.
    print(f"anchor=ct2 source='{src}' model={model_dir} beam=5 generate_ms_per_window={pct50(v):.1f} tokens={ntok} "
          f"step_ms_excl_encoder={(pct50(v) - enc1) / max(ntok, 1):.3f}", flush=True)


def torch_matmul():
    import torch

    dev = torch.cuda.get_device_name(0)
    for d in (384, 512, 768, 1280):
        a = torch.randn(1500, d, device="cuda", dtype=torch.float16)
        b = torch.randn(d, 4 * d, device="cuda", dtype=torch.float16)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        n = 50
        t = time.perf_counter()
        for _ in range(n):
            a @ b
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t) * 1e3 / n
        print(f"anchor=torch source='torch {torch.__version__} {dev}' op=matmul_f16 m=1500 n={4 * d} k={d} ms={ms:.4f} gflops={2 * 1500 * d * 4 * d / ms / 1e6:.1f}", flush=True)
    # Encoder self-attention at Whisper's shapes (1500 frames, 64 per head):
    # PyTorch's fused (flash) attention, the ceiling for vkwhisper's.
    import torch.nn.functional as F
    for d in (384, 512, 768, 1280):
        h = d // 64
        q, k, v = (torch.randn(1, h, 1500, 64, device="cuda", dtype=torch.float16) for _ in range(3))
        for _ in range(3):
            F.scaled_dot_product_attention(q, k, v)
        torch.cuda.synchronize()
        n = 50
        t = time.perf_counter()
        for _ in range(n):
            F.scaled_dot_product_attention(q, k, v)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t) * 1e3 / n
        print(f"anchor=torch source='torch {torch.__version__} {dev}' op=sdpa_f16 frames=1500 heads={h} dh=64 ms={ms:.4f} gflops={4 * h * 1500 * 1500 * 64 / ms / 1e6:.1f}", flush=True)


def main():
    args = sys.argv[1:]
    if args[:1] == ["--torch-matmul"]:
        torch_matmul()
        return
    def opt(name, default):
        if name in args:
            i = args.index(name)
            value = args[i + 1]
            del args[i:i + 2]
            return value
        return default

    device = opt("--device", "cuda")
    ct = opt("--compute-type", None)
    threads = int(opt("--threads", "0"))
    batches = tuple(int(b) for b in opt("--batches", "1,8").split(","))
    if not args:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    reps = int(args[1]) if len(args) > 1 else 3
    ct2(args[0], reps, device, ct, threads, batches)


if __name__ == "__main__":
    main()
