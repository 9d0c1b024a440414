#!/usr/bin/env python3
"""WER of one set under two (device, compute type) runs of vkwhisper, pooled
per set with scripts/wer.py against the set's manifest.tsv references.

    scripts/wer-compute-types.py [--set ljspeech] [--limit N] \
        [--run cpu:float32] [--run vulkan:float16] [--beam-size 5]

Each --run is one `vkwhisper transcribe` process over the set's files (txt
output). Vulkan float32 is token-identical with the CPU backend's float32
(crates/vkwhisper/tests/vulkan.rs), so `cpu:float32` is the float32
reference and takes seconds where lavapipe takes most of an hour; the
float16 figure must come from the GPU path itself. --limit takes the first
N files (in manifest order) when the whole set does not fit the time.
"""
import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import wer as werlib  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="ljspeech")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--run", action="append", default=[])
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--model", default=str(Path.home() / ".cache/vkwhisper/models/tiny.en"))
    ap.add_argument("--bin", default=str(REPO / "target/release/vkwhisper"))
    a = ap.parse_args()
    runs = a.run or ["cpu:float32", "vulkan:float16"]
    d = REPO / "tests/fixtures/data" / a.set
    with open(d / "manifest.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if a.limit:
        rows = rows[: a.limit]
    key = next(k for k in rows[0] if k in ("file", "path", "audio"))
    refk = next(k for k in rows[0] if k in ("text", "reference", "transcript"))
    files = [d / r[key] for r in rows]
    texts = {}
    for run in runs:
        dev, ct = run.split(":")
        out = Path(tempfile.mkdtemp(prefix=f"wer-{dev}-{ct}-"))
        t = time.time()
        subprocess.run(
            [a.bin, "transcribe", "--model", a.model, "--device", dev, "--compute-type", ct,
             "--beam-size", str(a.beam_size), "-f", "txt", "-o", str(out), *map(str, files)],
            check=True, stdout=subprocess.DEVNULL,
        )
        secs = time.time() - t
        hyp = {p: (out / (p.stem + ".txt")).read_text(encoding="utf-8") for p in files}
        texts[run] = hyp
        total = werlib.WerCounts()
        for r, p in zip(rows, files):
            total = total + werlib.wer_counts(r[refk], hyp[p])
        print(f"set={a.set} files={len(files)} run={run} wer={100 * total.wer:.2f}% "
              f"ref_words={total.ref_words} wall_s={secs:.0f}", flush=True)
    # Every later run against the first (the reference run).
    for run in runs[1:]:
        same = sum(texts[runs[0]][p].split() == texts[run][p].split() for p in files)
        print(f"set={a.set} {run} vs {runs[0]}: identical_texts={same}/{len(files)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
