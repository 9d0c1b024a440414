#!/usr/bin/env python3
"""The candidate kernels against the defaults, from one device-check output
directory (scripts/device-check.sh writes it; docs/GPU.md, "Device check"):

    scripts/device-compare.py OUT_DIR

Prints, per line, default vs candidate and the ratio (> 1: the candidate is
faster):
  * ops.txt: the few-row matmul per shape (staged or percol vs direct and wide), the
    many-row matmul (coop vs every coop_tiled tiling that agreed with the
    first kernel's output), the encoder attention (simt vs coop);
  * model-*.txt vs model-*-candidates.txt: encoder ms per window and decoder
    ms per step (p50); batched-*.txt likewise for the batched figure (steps
    of batch x beam rows, where VKW_BATCH_GEMV changes the matmuls);
  * profile-*.txt vs profile-*-candidates.txt: GPU ms per op over the run;
  * check-*-candidates.txt: whether the argmax still agrees with the CPU;
  * per shape, vkwhisper float16 next to the anchors that ran: encoder ms
    per window and ms per 5-row decoder step (model-*-float16.txt;
    anchor-ct2-*.txt: CTranslate2's step is (generate - encode) / tokens;
    anchor-whispercpp-*.err: whisper-bench's `batchd` is one 5-token
    decode call reported per token, so its step is 5 x that, and `decode`
    is one token at a time).
Nothing here decides: a person reads it and changes a default.
"""
import re
import sys
from pathlib import Path


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def ratio(a, b):
    return f"{a / b:.2f}x" if a > 0 and b > 0 else "-"


def ops(out: Path):
    path = out / "ops.txt"
    if not path.exists():
        return
    gemv, gemm, attn = {}, [], {}
    for line in path.read_text().splitlines():
        f = fields(line)
        if "ms" not in f:
            continue
        ms = float(f["ms"])
        if f.get("op") == "gemv":
            key = (f["wtype"], f["rows"], f["n"], f["k"], f.get("norm", "0"))
            gemv.setdefault(key, {})[f["kernel"]] = ms
        elif f.get("op") == "gemm" and f.get("kernel", "").startswith("coop"):
            gemm.append((f["kernel"], ms, float(f.get("max_abs_diff_vs_first", "0"))))
        elif f.get("op") == "attn":
            attn[f["kernel"]] = (ms, float(f.get("max_abs_diff_vs_simt", "0")))
    print("== few-row matmul (ops.txt): default -> direct, wide")
    totals = {}
    for key, ks in gemv.items():
        base = ks.get("staged", ks.get("percol"))
        cands = [(c, ks[c]) for c in ("direct", "wide") if c in ks]
        if base is not None and cands:
            shown = ", ".join(f"{c} {ms:.4f} ms ({ratio(base, ms)})" for c, ms in cands)
            print(f"  {key[0]} rows={key[1]} n={key[2]} k={key[3]} norm={key[4]}: "
                  f"{base:.4f} -> {shown}")
        for c, ms in ks.items():
            totals[c] = totals.get(c, 0.0) + ms
    if totals:
        print("  summed over the shapes: " +
              ", ".join(f"{c} {ms:.3f} ms" for c, ms in sorted(totals.items(), key=lambda t: t[1])))
    base = next((ms for name, ms, _ in gemm if name == "coop"), None)
    if gemm:
        print("== many-row matmul (ops.txt): coop -> tilings (max |diff| vs the first kernel)")
        for name, ms, diff in gemm:
            if name != "coop":
                r = ratio(base, ms) if base else "-"
                print(f"  {name}: {ms:.3f} ms ({r}), max |diff| {diff:.4f}")
    if "simt" in attn and "coop" in attn:
        (a, _), (b, d) = attn["simt"], attn["coop"]
        print(f"== encoder attention (ops.txt): simt {a:.3f} -> coop {b:.3f} ms ({ratio(a, b)}), "
              f"max |diff| {d:.4f}")


def model(out: Path):
    for prefix, keys in (("model", ("encode_ms", "step_ms_p50")),
                         ("batched", ("encode_ms_per_window", "step_ms_p50"))):
        for cand in sorted(out.glob(f"{prefix}-*-candidates.txt")):
            compare(out, cand, prefix, keys)


def compare(out: Path, cand: Path, prefix: str, keys):
    plain = out / cand.name.replace("-candidates", "")
    if not plain.exists():
        return
    lines = (plain.read_text().splitlines(), cand.read_text().splitlines())
    if not lines[0] or not lines[1]:
        return
    a, b = fields(lines[0][0]), fields(lines[1][0])
    name = plain.stem if prefix == "batched" else plain.stem[len("model-"):]
    for k in keys:
        if k in a and k in b:
            print(f"== {name} {k}: {a[k]} -> {b[k]} ({ratio(float(a[k]), float(b[k]))})")


def profile(out: Path):
    pat = re.compile(r"gpu\[([^/\]]+)[^\]]*\]=([0-9.]+)ms")
    for cand in sorted(out.glob("profile-*-candidates.txt")):
        plain = out / cand.name.replace("-candidates", "")
        if not plain.exists():
            continue

        def per_op(p):
            tot = {}
            for op, ms in pat.findall(p.read_text()):
                tot[op] = tot.get(op, 0.0) + float(ms)
            return tot

        a, b = per_op(plain), per_op(cand)
        print(f"== GPU ms per op over the profiled run, {plain.stem[len('profile-'):]}")
        for op in sorted(set(a) | set(b), key=lambda o: -max(a.get(o, 0), b.get(o, 0))):
            print(f"  {op}: {a.get(op, 0):.1f} -> {b.get(op, 0):.1f}")


def checks(out: Path):
    for cand in sorted(out.glob("check-*-candidates.txt")):
        for line in cand.read_text().splitlines():
            if "argmax_agree=" in line:
                f = fields(line)
                print(f"== {cand.stem}: argmax_agree={f['argmax_agree']} "
                      f"max_abs_logit_diff={f.get('max_abs_logit_diff')}")


def whispercpp_timings(path: Path):
    """whisper-bench's `NAME time = T ms / N runs (P ms per run)` lines, and
    the device it ran on under "device": ggml falls back to its CPU backend
    when it finds no Vulkan GPU, and its timings do not say so."""
    out = {}
    if path.exists():
        text = path.read_text(errors="replace")
        pat = re.compile(r"(\w+) time =\s*([0-9.]+) ms /\s*(\d+) runs \(\s*([0-9.]+) ms per run\)")
        for name, _, _, per in pat.findall(text):
            out[name] = float(per)
        gpu = re.search(r"whisper_backend_init_gpu: using (Vulkan\d+) backend", text)
        names = dict(re.findall(r"ggml_vulkan: (\d+) = ([^(|]+)", text))
        if gpu:
            out["device"] = f"Vulkan: {names.get(gpu.group(1)[6:], gpu.group(1)).strip()}"
        else:
            out["device"] = "CPU backend: it found no Vulkan GPU, so not an anchor"
    return out


def anchors(out: Path):
    for plain in sorted(out.glob("model-*-float16.txt")):
        shape = plain.stem[len("model-"):-len("-float16")]
        ours = fields(plain.read_text().splitlines()[0])
        ct2 = {}
        ct2_path = out / f"anchor-ct2-{shape}.txt"
        if ct2_path.exists():
            for line in ct2_path.read_text().splitlines():
                f = fields(line)
                if f.get("batch") == "1":
                    ct2["encode"] = float(f["encode_ms_per_window"])
                if "step_ms_excl_encoder" in f:
                    ct2["step"] = float(f["step_ms_excl_encoder"])
        wc = whispercpp_timings(out / f"anchor-whispercpp-{shape}.err")
        if not ct2 and not wc:
            continue
        enc, step = float(ours.get("encode_ms", 0)), float(ours.get("step_ms_p50", 0))
        print(f"== {shape}, float16: vkwhisper / anchor (> 1: the anchor is faster)")
        if "encode" in ct2:
            print(f"  encoder ms per window: {enc:.1f} vs CTranslate2 {ct2['encode']:.1f} ({ratio(enc, ct2['encode'])})")
        if "encode" in wc:
            print(f"  whisper.cpp ran on {wc['device']}")
            print(f"  encoder ms per window: {enc:.1f} vs whisper.cpp {wc['encode']:.1f} ({ratio(enc, wc['encode'])})")
        if "step" in ct2:
            print(f"  5-row decoder step ms: {step:.2f} vs CTranslate2 {ct2['step']:.2f} ({ratio(step, ct2['step'])})")
        if "batchd" in wc:
            w = 5 * wc["batchd"]
            print(f"  5-row decoder step ms: {step:.2f} vs whisper.cpp {w:.2f} ({ratio(step, w)})"
                  + (f"; whisper.cpp one token {wc['decode']:.2f}" if "decode" in wc else ""))


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: scripts/device-compare.py OUT_DIR (device-check.sh's output)", file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    if not out.is_dir():
        print(f"device-compare: {out} is not a directory (device-check.sh's OUT)", file=sys.stderr)
        return 2
    ops(out)
    model(out)
    profile(out)
    checks(out)
    anchors(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
