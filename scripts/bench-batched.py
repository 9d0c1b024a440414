#!/usr/bin/env python3
"""Batched mode benchmark (issue 5, docs/BENCHMARKS.md "Batched mode"):
vkwhisper `--batch-size N` and faster-whisper's BatchedInferencePipeline
(batch_size=N) on the same files, model, threads, beam size and compute type.
Batch size 0 is each engine's sequential mode (`WhisperModel.transcribe`,
vkwhisper without --batch-size), for the speed-up batching gives.

Standard library only; faster-whisper runs in the bench venv
(default <repo>/.venv-bench, see scripts/bench.py). Timing rules as in
scripts/bench.py: one child process per (engine, batch size); transcribe
time excludes process start and model load (vk: the `--timings` line; FW:
perf_counter around decode_audio + transcribe + consuming the segments);
peak RSS is the child's ru_maxrss; process CPU = the child's user + system
time (model load included; less sensitive to other load than wall time);
"other load" = CPU used by other processes during the run, in cores;
WER against the manifest references.

Usage: scripts/bench-batched.py [--batch-sizes 0,1,4,8] [--engines fw,vk]
       [--files longform/ljspeech_LJ001_0001-0032.wav] [--compute-type float32]
       [--threads 2] [--beam-size 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO = SCRIPT_DIR.parent
sys.path.insert(0, str(SCRIPT_DIR))
sys.dont_write_bytecode = True  # no scripts/__pycache__ from importing the helpers
import bench  # noqa: E402  (run_measured, read_manifest)
import wer as werlib  # noqa: E402

FW_WORKER = r'''
import json, sys, time
cfg = json.load(open(sys.argv[1], encoding="utf-8"))
from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio
t0 = time.perf_counter()
model = WhisperModel(cfg["model"], device="cpu", compute_type=cfg["compute_type"],
                     cpu_threads=cfg["threads"], num_workers=1)
load_s = time.perf_counter() - t0
pipe = BatchedInferencePipeline(model)
texts, spent = [], 0.0
for path in cfg["files"]:
    t = time.perf_counter()
    audio = decode_audio(path)
    if cfg["batch_size"] > 0:
        segs, _ = pipe.transcribe(audio, batch_size=cfg["batch_size"], beam_size=cfg["beam_size"])
    else:
        segs, _ = model.transcribe(audio, beam_size=cfg["beam_size"])
    texts.append("".join(s.text for s in segs))
    spent += time.perf_counter() - t
print(json.dumps({"load_s": load_s, "transcribe_s": spent, "texts": texts}))
'''


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="fw,vk")
    ap.add_argument("--batch-sizes", default="0,1,4,8", help="0 = sequential mode")
    ap.add_argument("--files", default="longform/ljspeech_LJ001_0001-0032.wav",
                    help="comma list, relative to --data-dir (must be in a set's manifest)")
    ap.add_argument("--data-dir", type=Path, default=REPO / "tests" / "fixtures" / "data")
    ap.add_argument("--model", type=Path,
                    default=Path.home() / ".cache" / "vkwhisper" / "models" / "tiny.en")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--compute-type", default="float32")
    ap.add_argument("--device", default="cpu", help="vkwhisper --device (cpu, vulkan, auto)")
    ap.add_argument("--vkwhisper", type=Path, default=REPO / "target" / "release" / "vkwhisper")
    ap.add_argument("--venv", type=Path, default=REPO / ".venv-bench")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)

    files = [f.strip() for f in args.files.split(",") if f.strip()]
    refs, audio_s, paths = [], 0.0, []
    for rel in files:
        set_name, name = rel.split("/", 1)
        rows = {Path(r["path"]).name: r for r in bench.read_manifest(args.data_dir.resolve(), set_name)}
        row = rows[name]
        refs.append(row["reference"])
        audio_s += row["duration_s"]
        paths.append(row["path"])
    sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    results = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        worker = tmp / "fw_worker.py"
        worker.write_text(FW_WORKER, encoding="utf-8")
        for engine in engines:
            for bs in sizes:
                tag = f"{engine}_b{bs}"
                if engine == "fw":
                    cfg = tmp / f"{tag}.json"
                    cfg.write_text(json.dumps({
                        "model": str(args.model), "compute_type": args.compute_type,
                        "threads": args.threads, "files": paths, "batch_size": bs,
                        "beam_size": args.beam_size}), encoding="utf-8")
                    r = bench.run_measured([str(args.venv / "bin" / "python"), str(worker), str(cfg)],
                                           tmp / tag, None)
                    if r["rc"] != 0:
                        raise SystemExit(f"{tag} failed:\n{bench.tail(r['stderr'])}")
                    out = json.loads(Path(r["stdout_path"]).read_text(encoding="utf-8"))
                    transcribe_s, texts = out["transcribe_s"], out["texts"]
                else:
                    outdir = tmp / tag
                    outdir.mkdir()
                    cmd = [str(args.vkwhisper), "transcribe", *paths, "--model", str(args.model),
                           "--threads", str(args.threads), "--beam-size", str(args.beam_size),
                           "--compute-type", args.compute_type, "--device", args.device,
                           "--timings", "-q", "-f", "txt", "-o", str(outdir)]
                    if bs > 0:
                        cmd += ["--batch-size", str(bs)]
                    r = bench.run_measured(cmd, tmp / tag, None)
                    if r["rc"] != 0:
                        raise SystemExit(f"{tag} failed:\n{bench.tail(r['stderr'])}")
                    timings = bench.VkWhisper._parse_timings(r["stderr"])
                    if not timings:
                        raise SystemExit(f"{tag}: no --timings line in:\n{bench.tail(r['stderr'])}")
                    transcribe_s = timings["transcribe_s"]
                    texts = [(outdir / (Path(p).stem + ".txt")).read_text(encoding="utf-8")
                             for p in paths]
                counts = [werlib.wer_counts(ref, hyp) for ref, hyp in zip(refs, texts)]
                errors = sum(c.errors for c in counts)
                words = sum(c.ref_words for c in counts)
                res = {"engine": engine, "batch_size": bs, "transcribe_s": transcribe_s,
                       "rtf": transcribe_s / audio_s, "peak_rss_mb": r["peak_rss_mb"],
                       "cpu_s": r["user_s"] + r["sys_s"],
                       "wer": 100.0 * errors / max(words, 1),
                       "other_load_cores": r["other_load_cores"]}
                results.append(res)
                print(f"{engine} batch {bs}: {transcribe_s:.2f} s (RTF {res['rtf']:.4f}), "
                      f"process CPU {res['cpu_s']:.1f} s, peak RSS {res['peak_rss_mb']:.0f} MB, "
                      f"WER {res['wer']:.2f} %, other load {r['other_load_cores'] or 0:.2f} cores",
                      flush=True)

    print(f"\n{audio_s:.1f} s of audio, {args.compute_type}, {args.threads} threads, "
          f"beam {args.beam_size} (batch 0 = sequential)\n")
    print("| batch | engine | transcribe s | RTF | process CPU s | peak RSS MB | WER % | "
          "other load (cores) | FW / vk time |")
    print("|---|---|---|---|---|---|---|---|---|")
    by = {(r["engine"], r["batch_size"]): r for r in results}
    for bs in sizes:
        for engine in engines:
            r = by[(engine, bs)]
            ratio = "-"
            if engine == "vk" and ("fw", bs) in by:
                ratio = f"{by[('fw', bs)]['transcribe_s'] / r['transcribe_s']:.2f}"
            print(f"| {bs} | {engine} | {r['transcribe_s']:.2f} | {r['rtf']:.4f} | "
                  f"{r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['wer']:.2f} | "
                  f"{r['other_load_cores'] or 0:.2f} | {ratio} |")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
