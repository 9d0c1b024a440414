#!/usr/bin/env python3
"""vkwhisper vs CTranslate2 (faster-whisper's engine) on the CPU at the real
shapes of the bigger Whisper models, in one run (issue 19, item 3).

No real small or medium model can be had here, so `vkwhisper synth-model`
writes CTranslate2 models of those shapes with random weights (float16 on
disk, like the converted stock models; the tokenizer and vocabulary of
--tokenizer-from), and both engines load the same files:

* encoder ms per 30-s window (median of --reps after a warm-up);
* decoder ms per token: beam search forced to a fixed length (every special
  token suppressed, so nothing stops early). vkwhisper: the
  `examples/forced` binary (cross K/V + prompt + --steps beam steps with
  logit rules, log-softmax, top-k and reorder, divided by --steps).
  CTranslate2: `generate` on the mel (scripts/anchor-ct2.py) minus one
  encoder pass, divided by the tokens returned.

Rounds alternate the engines (vk, ct2, vk, ct2, ...) so that drift of a
shared VM hits both; the table reports each engine's median over rounds.

  scripts/bench-shapes.py --shapes small,medium --compute-type int8,float32 \\
      --threads 2 --venv /tmp/fwvenv [--rounds 2] [--json-out F]

VKW_CPU_ISA=avx2 (vkwhisper) and CT2_FORCE_CPU_ISA=AVX2 with
ONEDNN_MAX_CPU_ISA=AVX2 and MKL_ENABLE_INSTRUCTIONS=AVX2 (CTranslate2) run
both at AVX2 on an AVX-512 machine: --isa avx2 sets all four. It is a proxy
only (the `gemm` crate behind vkwhisper's float32 matmuls still picks
AVX-512, and an Intel core is not a Zen core).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True  # no scripts/__pycache__ from importing bench.py
from bench import cpu_flags, cpu_model  # noqa: E402  (the CPU line bench.py prints)


def kv(line):
    return dict(re.findall(r"(\w+)=('[^']*'|\S+)", line))


def run(cmd, env, timeout):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"bench-shapes: {' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="small,medium")
    ap.add_argument("--compute-type", default="int8,float32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--steps", type=int, default=64, help="forced tokens per window")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions inside each engine call")
    ap.add_argument("--rounds", type=int, default=2, help="alternating engine calls per (shape, type)")
    ap.add_argument("--venv", default=str(ROOT / ".venv-bench"), help="venv with ctranslate2 (faster-whisper's)")
    ap.add_argument("--vkwhisper", default=str(ROOT / "target/release/vkwhisper"))
    ap.add_argument("--forced", default=str(ROOT / "target/release/examples/forced"))
    ap.add_argument("--tokenizer-from", default=os.path.expanduser("~/.cache/vkwhisper/models/base"),
                    help="model dir whose tokenizer/vocabulary the synthetic models copy (multilingual: 51,865 tokens)")
    ap.add_argument("--work-dir", default="/tmp/vkw-shapes", help="synthetic models are written (and reused) here")
    ap.add_argument("--isa", choices=["native", "avx2"], default="native")
    ap.add_argument("--json-out")
    a = ap.parse_args()

    py = Path(a.venv) / "bin" / "python"
    for path, what in ((py, "--venv python (faster-whisper's venv: scripts/bench.sh creates one)"),
                       (Path(a.vkwhisper), "--vkwhisper (cargo build --release -p vkwhisper-cli)"),
                       (Path(a.forced), "--forced (cargo build --release -p vkw-backend --example forced)"),
                       (Path(a.tokenizer_from), "--tokenizer-from (scripts/fetch-models.sh base)")):
        if not path.exists():
            sys.exit(f"bench-shapes: {path} not found: {what}")
    env = dict(os.environ)
    if a.isa == "avx2":
        env.update(VKW_CPU_ISA="avx2", CT2_FORCE_CPU_ISA="AVX2", ONEDNN_MAX_CPU_ISA="AVX2",
                   MKL_ENABLE_INSTRUCTIONS="AVX2")
    env.setdefault("OMP_NUM_THREADS", str(a.threads))
    work = Path(a.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical; {','.join(cpu_flags())}); isa={a.isa}; "
          f"threads={a.threads} beam={a.beam} forced tokens={a.steps}", flush=True)
    results = []
    for shape in a.shapes.split(","):
        model = work / f"{shape}-f16"
        if not (model / "model.bin").exists():
            print(f"writing the {shape}-shaped model to {model} ...", flush=True)
            run([a.vkwhisper, "synth-model", str(model), "--shape", shape, "--dtype", "float16",
                 "--tokenizer-from", a.tokenizer_from, "--force"], env, 3600)
        for ct in a.compute_type.split(","):
            vk, c2 = {"enc": [], "tok": []}, {"enc": [], "tok": []}
            for r in range(a.rounds):
                out = run([a.forced, str(model), ct, str(a.threads), str(a.beam), str(a.steps), str(a.reps)], env, 3600)
                lines = [kv(x) for x in out.splitlines()]
                kern = next((d.get("int8_kernel") for d in lines if "int8_kernel" in d), "?")
                vk["enc"].append(float(next(d["encode_ms_per_window"] for d in lines if "encode_ms_per_window" in d)))
                vk["tok"].append(float(next(d["step_ms"] for d in lines if "step_ms" in d)))
                # generate() needs max_length = 2 x the tokens wanted (CTranslate2
                # 4.8 returns max_length / 2 here; see anchor-ct2.py).
                out = run([str(py), str(ROOT / "scripts/anchor-ct2.py"), str(model), str(a.reps), "--device", "cpu",
                           "--compute-type", ct, "--threads", str(a.threads), "--batches", "1"], env, 7200)
                lines = [kv(x) for x in out.splitlines()]
                src = next((d["source"].strip("'") for d in lines if "source" in d), "ctranslate2")
                c2["enc"].append(float(next(d["encode_ms_per_window"] for d in lines if "encode_ms_per_window" in d)))
                # generate() ran on the mel: anchor-ct2.py subtracts one encoder
                # pass and divides by the tokens returned.
                g = next(d for d in lines if "step_ms_excl_encoder" in d)
                c2["tok"].append(float(g["step_ms_excl_encoder"]))
                print(f"  {shape} {ct} round {r + 1}: vk enc {vk['enc'][-1]:.0f} ms, {vk['tok'][-1]:.2f} ms/token | "
                      f"ct2 enc {c2['enc'][-1]:.0f} ms, {c2['tok'][-1]:.2f} ms/token", flush=True)
            row = {
                "shape": shape, "compute_type": ct, "isa": a.isa, "threads": a.threads, "beam": a.beam,
                "vk_int8_kernel": kern, "ct2": src,
                "vk_encode_ms": statistics.median(vk["enc"]), "ct2_encode_ms": statistics.median(c2["enc"]),
                "vk_token_ms": statistics.median(vk["tok"]), "ct2_token_ms": statistics.median(c2["tok"]),
            }
            row["encode_speedup"] = row["ct2_encode_ms"] / row["vk_encode_ms"]
            row["token_speedup"] = row["ct2_token_ms"] / row["vk_token_ms"]
            results.append(row)
    print()
    print(f"| shape | type | encoder ms/window vk | ct2 | × | decoder ms/token vk | ct2 | × |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['shape']} | {r['compute_type']} | {r['vk_encode_ms']:.0f} | {r['ct2_encode_ms']:.0f} | "
              f"{r['encode_speedup']:.2f} | {r['vk_token_ms']:.2f} | {r['ct2_token_ms']:.2f} | {r['token_speedup']:.2f} |")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"cpu": cpu_model(), "flags": cpu_flags(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
