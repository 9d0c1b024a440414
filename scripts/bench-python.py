#!/usr/bin/env python3
"""The Python API's overhead: wall time of `WhisperModel(...).transcribe`
consumed to the end, against the `vkwhisper transcribe` CLI, on the same
files, model, device, threads and beam size.

    python3 scripts/bench-python.py --python target/pyt-test/bin/python

Both sides run as fresh processes, alternately (CLI, Python, CLI, Python,
…), `--runs` times each; per file the best and the median are reported.
Each process is timed from start to exit (interpreter start, import, model
load, audio decode, transcription, output), and each side also reports the
transcription alone (the CLI's `--timings` line: audio decode and
transcription; in Python the time from
`transcribe()` to the generator's end). Needs the CLI built
(`cargo build --release -p vkwhisper-cli`) and a Python with the vkwhisper
wheel installed (`--python`). Default set: the longform set of
tests/fixtures/data (the shared data, as scripts/bench.sh uses it).

Check `uptime` first: on a shared machine other work skews both sides.
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PY_CHILD = r"""
import json, sys, time
import vkwhisper
path, model_dir, threads, beam = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = vkwhisper.WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=threads)
t = time.perf_counter()
segments, info = model.transcribe(path, beam_size=beam)
text = "".join(s.text for s in segments)
print(json.dumps({"transcribe_s": time.perf_counter() - t, "chars": len(text)}))
"""


def files_of(data_dir, set_name):
    d = os.path.join(data_dir, set_name)
    with open(os.path.join(d, "manifest.tsv"), encoding="utf-8") as f:
        return [os.path.join(d, row["path"]) for row in csv.DictReader(f, delimiter="\t")]


def run_cli(args, path, out_dir):
    cmd = [
        args.vkwhisper, "transcribe", path, "--model", args.model, "--device", "cpu",
        "--compute-type", "float32", "--threads", str(args.threads),
        "--beam-size", str(args.beam_size), "-q", "-f", "txt", "-o", out_dir, "--timings",
    ]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"CLI failed: {' '.join(cmd)}\n{r.stderr}")
    inner = None
    for line in r.stderr.splitlines():
        # "vkwhisper-timings: load_s=… transcribe_s=… audio_s=…"
        if line.startswith("vkwhisper-timings:"):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            inner = float(fields["transcribe_s"])
    return wall, inner


def run_py(args, path):
    cmd = [args.python, "-c", PY_CHILD, path, args.model, str(args.threads), str(args.beam_size)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"Python side failed:\n{r.stderr}")
    return wall, json.loads(r.stdout.strip().splitlines()[-1])["transcribe_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", required=True, help="a python with the vkwhisper wheel")
    ap.add_argument("--vkwhisper", default=os.path.join(REPO, "target", "release", "vkwhisper"))
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/vkwhisper/models/tiny.en"))
    ap.add_argument("--data-dir", default=os.path.join(REPO, "tests", "fixtures", "data"))
    ap.add_argument("--set", default="longform")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json-out")
    args = ap.parse_args()

    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} CPUs)", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as out_dir:
        for path in files_of(args.data_dir, args.set):
            cli, py = [], []
            for i in range(args.runs):
                cli.append(run_cli(args, path, out_dir))
                py.append(run_py(args, path))
                print(f"  {os.path.basename(path)} run {i + 1}: CLI {cli[-1][0]:.2f} s "
                      f"(transcribe {cli[-1][1]}), Python {py[-1][0]:.2f} s "
                      f"(transcribe {py[-1][1]:.2f})", flush=True)
            row = {"file": os.path.relpath(path, args.data_dir)}
            for name, runs in (("cli", cli), ("python", py)):
                walls = [w for w, _ in runs]
                inner = [x for _, x in runs if x is not None]
                row[name] = {
                    "wall_best_s": min(walls), "wall_median_s": statistics.median(walls),
                    "transcribe_best_s": min(inner) if inner else None,
                    "walls_s": walls,
                }
            row["overhead_best_pct"] = 100 * (row["python"]["wall_best_s"] / row["cli"]["wall_best_s"] - 1)
            row["overhead_median_pct"] = 100 * (
                row["python"]["wall_median_s"] / row["cli"]["wall_median_s"] - 1
            )
            results.append(row)
            print(f"{row['file']}: CLI best {row['cli']['wall_best_s']:.2f} s / median "
                  f"{row['cli']['wall_median_s']:.2f} s; Python best {row['python']['wall_best_s']:.2f} s"
                  f" / median {row['python']['wall_median_s']:.2f} s; overhead best "
                  f"{row['overhead_best_pct']:+.1f} %, median {row['overhead_median_pct']:+.1f} %")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"results": results, "args": vars(args)}, f, indent=1)


if __name__ == "__main__":
    main()
