#!/usr/bin/env python3
"""Drive mutated models, configs, tokenizers, vocabularies and audio through
the vkwhisper binary and check the error contract (docs/RELIABILITY.md):
every run either succeeds or exits non-zero with exactly one `error:` line
on stderr (besides `vkwhisper:` notes), no panic text, within a time limit.

Usage: python3 fuzz/cli_sweep.py [--bin target/release/vkwhisper]
         [--model ~/.cache/vkwhisper/models/tiny.en] [--seed 1] [--scale 1.0]
Prints one line per input class and a summary; exits 1 on any violation,
writing the offending inputs under target/cli-sweep/violations/.
"""

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A model whose weights were damaged (finite, so accepted) can run through
# all temperature fallbacks at the maximum length: bounded, but slow on a
# loaded machine. A run past this limit counts as a hang.
TIMEOUT = 300


def run(binary, model, audio, extra=()):
    cmd = [binary, "transcribe", "--device", "cpu", "--model", model, audio, *extra]
    env = dict(os.environ, PATH="/nonexistent", RUST_BACKTRACE="1")
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return "timeout", "", time.time() - t0
    err = p.stderr.decode("utf-8", "replace")
    lines = [l for l in err.splitlines() if not l.startswith("vkwhisper: ")]
    if p.returncode == 0:
        return ("ok" if not lines else "stderr on success"), err, time.time() - t0
    if p.returncode < 0 or p.returncode > 128:
        return f"killed by signal / exit {p.returncode}", err, time.time() - t0
    if "panicked" in err or "backtrace" in err:
        return "panic text", err, time.time() - t0
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return f"{len(lines)} stderr lines", err, time.time() - t0
    if any(ord(c) < 32 and c not in "\t" for c in lines[0]):
        return "control characters", err, time.time() - t0
    return "error", err, time.time() - t0


def flip(data, rng, n):
    b = bytearray(data)
    for _ in range(n):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def header_spans(b, payloads=None):
    """Byte ranges of model.bin's headers: version and spec, and each
    variable's name length, name, rank, shape, dtype and size. With
    `payloads` (a list), the (start, size, dtype id) of each variable's data
    is appended to it."""
    spans = []
    pos = 4
    n = struct.unpack("<H", b[pos:pos + 2])[0]
    pos += 2 + n + 4
    spans.append((0, pos + 4))
    count = struct.unpack("<I", b[pos:pos + 4])[0]
    pos += 4
    for _ in range(count):
        start = pos
        n = struct.unpack("<H", b[pos:pos + 2])[0]
        pos += 2 + n
        rank = b[pos]
        pos += 1 + 4 * rank
        dtype = b[pos]
        size = struct.unpack("<I", b[pos + 1:pos + 5])[0]
        pos += 5
        spans.append((start, pos))
        if payloads is not None:
            payloads.append((pos, size, dtype))
        pos += size
    spans.append((pos, len(b)))  # the alias table
    return spans


def model_cases(model_dir, rng, scale):
    bin_ = open(os.path.join(model_dir, "model.bin"), "rb").read()
    cfg = open(os.path.join(model_dir, "config.json"), "rb").read()
    tok = open(os.path.join(model_dir, "tokenizer.json"), "rb").read()
    vname = "vocabulary.txt" if os.path.exists(os.path.join(model_dir, "vocabulary.txt")) else "vocabulary.json"
    vocab = open(os.path.join(model_dir, vname), "rb").read()
    n = lambda k: max(1, int(k * scale))
    # model.bin: the variable headers (name lengths, names, ranks, shapes,
    # dtypes, sizes), anywhere (mostly weights), truncations, NaN/Inf
    # payloads, huge declared sizes.
    spans = header_spans(bin_)
    for _ in range(n(100)):
        b = bytearray(bin_)
        for _ in range(rng.randint(1, 4)):
            lo, hi = rng.choice(spans)
            i = rng.randrange(lo, hi)
            b[i] ^= 1 << rng.randrange(8)
        yield "model.bin bit flips in variable headers", {"model.bin": bytes(b)}
    for _ in range(n(20)):
        yield "model.bin bit flips (anywhere, mostly weights)", {"model.bin": flip(bin_, rng, rng.randint(1, 50))}
    for _ in range(n(40)):
        yield "model.bin truncations", {"model.bin": bin_[:rng.randrange(len(bin_))]}
    payloads = []
    header_spans(bin_, payloads)
    floats = [p for p in payloads if p[2] in (0, 4, 5) and p[1] >= 4]  # f32, f16, bf16
    patterns = {0: [b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\x00\x00\x80\xff"],
                4: [b"\x00\x7e", b"\x00\x7c", b"\x00\xfc"], 5: [b"\xc0\x7f", b"\x80\x7f"]}
    for _ in range(n(30)):
        b = bytearray(bin_)
        start, size, dtype = rng.choice(floats)
        pattern = rng.choice(patterns[dtype])
        w = len(pattern)
        count = size // w
        first = rng.randrange(count)
        for k in range(first, min(count, first + rng.choice([1, 32, count]))):
            b[start + k * w:start + (k + 1) * w] = pattern
        yield "model.bin non-finite weights", {"model.bin": bytes(b)}
    for _ in range(n(20)):
        b = bytearray(bin_)
        at = 4 + rng.randrange(0, 4000)
        b[at:at + 4] = struct.pack("<I", rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, 1 << 31]))
        yield "model.bin huge declared sizes/counts", {"model.bin": bytes(b)}
    # config.json
    c = json.loads(cfg)
    keys = list(c)
    values = [None, 0, -1, 1e12, 2**62, "x", [], {}, [[99, 0]], [[0, 99]], [[-1, 0]], [2**40], 3, True, [0.5]]
    for _ in range(n(100)):
        d = dict(c)
        k = rng.choice(keys + ["alignment_heads", "lang_ids", "suppress_ids", "suppress_ids_begin", "layer_norm_epsilon"])
        d[k] = rng.choice(values)
        yield "config.json wrong types and ranges", {"config.json": json.dumps(d).encode()}
    for _ in range(n(30)):
        yield "config.json bit flips", {"config.json": flip(cfg, rng, rng.randint(1, 4))}
    for _ in range(n(20)):
        yield "config.json truncations and duplicates", {"config.json": rng.choice([cfg[:rng.randrange(len(cfg))], cfg[:-1] + b', "lang_ids": [1]}'])}
    # tokenizer.json
    for _ in range(n(60)):
        yield "tokenizer.json bit flips", {"tokenizer.json": flip(tok, rng, rng.randint(1, 6))}
    for _ in range(n(40)):
        yield "tokenizer.json truncations", {"tokenizer.json": tok[:rng.randrange(len(tok))]}
    t = json.loads(tok)
    for _ in range(n(50)):
        d = json.loads(tok)
        choice = rng.randrange(5)
        if choice == 0:
            d["decoder"] = rng.choice([None, 3, "x", {"type": "Nope"}, []])
        elif choice == 1:
            d["model"]["vocab"][rng.choice(["zz", "a"])] = rng.choice([2**32 - 1, 4000000000, 60000, -1])
        elif choice == 2:
            d["added_tokens"] = d["added_tokens"][:rng.randrange(len(d["added_tokens"]))]
        elif choice == 3:
            d["model"]["type"] = rng.choice(["WordPiece", "Unigram", "BPE", 7])
        else:
            d["pre_tokenizer"] = rng.choice([None, {"type": "Split"}, 0])
        try:
            data = json.dumps(d).encode()
        except (TypeError, ValueError):
            continue
        yield "tokenizer.json structure", {"tokenizer.json": data}
    # vocabulary
    lines = vocab.decode().split("\n") if vname.endswith("txt") else None
    special = [i for i, l in enumerate(lines or []) if l.startswith("<|")]
    for _ in range(n(100)):
        v = list(lines)
        op = rng.randrange(5)
        if op == 0:
            i, j = rng.choice(special), rng.randrange(len(v) - 1)
            v[i], v[j] = v[j], v[i]
        elif op == 1:
            del v[rng.choice(special)]
        elif op == 2:
            v.insert(rng.randrange(len(v)), rng.choice(["<|endoftext|>", "<|notimestamps|>", "x"]))
        elif op == 3:
            v = v[:rng.randrange(len(v))]
        else:
            v[rng.choice(special)] = "<|startoftranscript|>"
        yield "vocabulary shuffles, deletions, duplicates", {vname: "\n".join(v).encode()}
    for _ in range(n(30)):
        yield "vocabulary bit flips", {vname: flip(vocab, rng, rng.randint(1, 8))}


def audio_cases(rng, scale):
    n = lambda k: max(1, int(k * scale))
    seeds = []
    for d in ["audio_pcm", "audio_stream", "audio_mp4", "audio_mkv"]:
        p = os.path.join(ROOT, "fuzz", "seeds", d)
        seeds += [os.path.join(p, f) for f in sorted(os.listdir(p))]
    fixtures = os.path.join(ROOT, "tests", "fixtures", "fuzz", "audio")
    for _ in range(n(120)):
        s = rng.choice(seeds)
        yield "audio bit flips", open(s, "rb").read(), s, lambda d, rng=rng: flip(d, rng, rng.randint(1, 10))
    for _ in range(n(60)):
        s = rng.choice(seeds)
        yield "audio truncations", open(s, "rb").read(), s, lambda d, rng=rng: d[:rng.randrange(1, len(d))]
    for _ in range(n(60)):
        s = rng.choice(seeds)

        def header(d, rng=rng):
            b = bytearray(d)
            at = rng.randrange(min(len(b) - 4, 200))
            b[at:at + 4] = struct.pack("<I", rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 768001, 999]))
            return bytes(b)

        yield "audio crafted header fields (sizes, rates, counts)", open(s, "rb").read(), s, header
    for f in sorted(os.listdir(fixtures)):
        yield "audio regression fixtures", open(os.path.join(fixtures, f), "rb").read(), f, lambda d: d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "vkwhisper"))
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/vkwhisper/models/tiny.en"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="vkw-sweep-")
    bad_dir = os.path.join(ROOT, "target", "cli-sweep", "violations")
    # Two seconds of jfk: enough to run the model when a mutation loads.
    wav = open(os.path.join(ROOT, "tests/fixtures/data/jfk/jfk.wav"), "rb").read()
    clip = os.path.join(work, "clip.wav")
    at = wav.index(b"data") + 8
    data = wav[at:at + 2 * 16000 * 2]
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    with open(clip, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
                + b"data" + struct.pack("<I", len(data)) + data)
    stats = {}
    violations = 0

    def record(cls, outcome, err, secs, files):
        nonlocal violations
        s = stats.setdefault(cls, {"n": 0, "ok": 0, "error": 0, "bad": 0, "max_s": 0.0})
        s["n"] += 1
        s["max_s"] = max(s["max_s"], secs)
        if outcome in ("ok", "error"):
            s[outcome] += 1
            return
        s["bad"] += 1
        violations += 1
        d = os.path.join(bad_dir, f"{violations:03d}")
        os.makedirs(d, exist_ok=True)
        for name, content in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(content)
        with open(os.path.join(d, "stderr.txt"), "w") as f:
            f.write(f"{cls}: {outcome}\n{err}")
        print(f"VIOLATION {cls}: {outcome}: {err[:300]!r}", flush=True)

    for cls, files in model_cases(a.model, rng, a.scale):
        m = os.path.join(work, "model")
        shutil.rmtree(m, ignore_errors=True)
        os.makedirs(m)
        for f in os.listdir(a.model):
            if f not in files:
                os.symlink(os.path.join(a.model, f), os.path.join(m, f))
        for name, content in files.items():
            with open(os.path.join(m, name), "wb") as fh:
                fh.write(content)
        extra = ["--word-timestamps"] if "non-finite" in cls else []
        outcome, err, secs = run(a.bin, m, clip, extra)
        record(cls, outcome, err, secs, files)
    for cls, data, src, mutate in audio_cases(rng, a.scale):
        ext = os.path.splitext(src)[1] or ".bin"
        p = os.path.join(work, "input" + ext)
        content = mutate(data)
        with open(p, "wb") as f:
            f.write(content)
        outcome, err, secs = run(a.bin, a.model, p)
        record(cls, outcome, err, secs, {"input" + ext: content})
    shutil.rmtree(work, ignore_errors=True)
    print(f"{'input class':52} {'runs':>5} {'ok':>5} {'1-line error':>12} {'violations':>10} {'max s':>6}")
    total = 0
    for cls, s in stats.items():
        total += s["n"]
        print(f"{cls:52} {s['n']:5} {s['ok']:5} {s['error']:12} {s['bad']:10} {s['max_s']:6.1f}")
    print(f"total {total} runs, {violations} violations")
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()
