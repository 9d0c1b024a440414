#!/usr/bin/env python3
"""Side-by-side benchmark: faster-whisper (Python, CTranslate2) vs vkwhisper (Rust CLI).

Standard library only (Python 3.11+). faster-whisper runs in a throw-away
virtual environment that this script creates (default <repo>/.venv-bench,
gitignored) with pinned versions; see FW_PINS.

What is measured (identical rules for both engines; see docs/BENCHMARKS.md):

* One child process per (engine, compute type, set, run). It loads the model
  once and transcribes every file of the set. Peak RSS is that process's
  ru_maxrss (os.wait4), so each engine's memory is measured separately.
* "transcribe time" = decoding the audio files + transcription of all files
  of the set, EXCLUDING process start-up, imports and model load. Model load
  is reported separately.
    - faster-whisper: measured inside the worker with time.perf_counter()
      around decode_audio() + transcribe() + consuming the segment generator,
      summed over files; load = WhisperModel(...) constructor.
    - vkwhisper: either the binary's `--timings` stderr line
      `vkwhisper-timings: load_s=.. transcribe_s=.. audio_s=..` ("line"
      method), or, if the binary does not print it, a subtraction estimate
      ("subtract" method): wall([probe] + set files) - wall([probe]) where
      probe is a copy of the warm-up file; both invocations pay the same
      start-up + model load + probe transcription, so the difference is the
      set's decode + transcription time.
* Before the timed runs of each (engine, compute type), one untimed warm-up
  process transcribes the warm-up file (default: the shortest file of the
  first set). No in-process warm-up is done for either engine, so the first
  file of each timed run pays one-time costs (allocator, thread pool) for both.
* RTF = transcribe time / audio seconds (audio seconds = sum of the manifest
  durations). Speed ratio = FW transcribe time / vk transcribe time (> 1 means
  vkwhisper is faster).
* WER against the manifest references with scripts/wer.py (pooled per set).
  When both engines ran, vk-vs-FW text disagreement (WER of vk's text with
  FW's text as the reference) is reported too.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO = SCRIPT_DIR.parent
sys.path.insert(0, str(SCRIPT_DIR))
import wer as werlib  # noqa: E402

# Pinned to the versions the golden outputs were produced with
# (tests/fixtures/golden/README.md). Transitive dependencies float.
FW_PINS = [
    "faster-whisper==1.2.1",
    "ctranslate2==4.8.5",
    "av==18.1.0",
    "onnxruntime==1.32.0",
    "tokenizers==0.23.3",
    "numpy==2.4.6",
]

TIMINGS_RE = re.compile(r"vkwhisper-timings:\s*(.*)")

# ---------------------------------------------------------------------------
# faster-whisper worker (runs inside the venv)
# ---------------------------------------------------------------------------
FW_WORKER = r'''
import json, sys, time
t_start = time.perf_counter()
cfg = json.load(open(sys.argv[1], encoding="utf-8"))
import ctranslate2, faster_whisper
from faster_whisper import WhisperModel, decode_audio
t_import = time.perf_counter()
model = WhisperModel(cfg["model"], device="cpu", compute_type=cfg["compute_type"],
                     cpu_threads=cfg["threads"], num_workers=1)
t_load = time.perf_counter()
files = []
for path in cfg["files"]:
    t0 = time.perf_counter()
    samples = decode_audio(path)
    t1 = time.perf_counter()
    segments, info = model.transcribe(samples, beam_size=cfg["beam_size"])
    segs = list(segments)
    t2 = time.perf_counter()
    files.append({
        "path": path,
        "decode_s": t1 - t0,
        "time_s": t2 - t0,
        "duration": info.duration,
        "language": info.language,
        "text": "".join(s.text for s in segs),
        "segments": [{"id": s.id, "seek": s.seek, "start": s.start, "end": s.end,
                      "text": s.text, "temperature": s.temperature} for s in segs],
    })
out = {
    "import_s": t_import - t_start,
    "load_s": t_load - t_import,
    "transcribe_s": sum(f["time_s"] for f in files),
    "versions": {"faster_whisper": faster_whisper.__version__,
                 "ctranslate2": ctranslate2.__version__},
    "files": files,
}
try:
    import av, numpy, onnxruntime, tokenizers
    out["versions"].update(av=av.__version__, numpy=numpy.__version__,
                           onnxruntime=onnxruntime.__version__,
                           tokenizers=tokenizers.__version__)
except Exception as e:  # versions are informative only
    out["versions"]["error"] = repr(e)
json.dump(out, open(cfg["out"], "w", encoding="utf-8"))
'''


class BenchError(RuntimeError):
    pass


def split_variant(variant: str) -> tuple[str, int]:
    """'int8@2' -> ('int8', 2): a compute type run with a thread count."""
    ct, _, th = variant.partition("@")
    return ct, int(th)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None if unavailable."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    total = sum(v[:8])
    return total - idle, total


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_cores(window_s: float = 1.0) -> float | None:
    a = cpu_jiffies()
    time.sleep(window_s)
    b = cpu_jiffies()
    if a is None or b is None:
        return None
    return (b[0] - a[0]) / CLK_TCK / window_s


def wait_idle(max_wait_s: float, threshold: float) -> float | None:
    """Wait (up to max_wait_s) until other processes use < threshold cores over 1 s."""
    if max_wait_s <= 0:
        return None
    t0 = time.monotonic()
    warned = False
    while True:
        b = busy_cores()
        if b is None or b < threshold:
            return b
        if time.monotonic() - t0 > max_wait_s:
            log(f"[idle] machine still busy ({b:.2f} cores in use by other processes) after "
                f"{max_wait_s:.0f} s; running anyway")
            return b
        if not warned:
            log(f"[idle] waiting for other processes to go idle ({b:.2f} cores busy)...")
            warned = True


def run_measured(cmd: list[str], log_prefix: Path, timeout: float | None, env=None) -> dict:
    """Run cmd as a direct child; return rc, wall time, peak RSS (ru_maxrss), stderr."""
    out_path = log_prefix.with_suffix(".stdout")
    err_path = log_prefix.with_suffix(".stderr")
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        j0 = cpu_jiffies()
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env)
        except OSError as e:
            raise BenchError(f"cannot run {cmd[0]}: {e}") from e
        deadline = None if timeout is None else t0 + timeout
        try:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid == p.pid:
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    raise BenchError(f"timed out after {timeout} s: {' '.join(cmd)}")
                time.sleep(0.01)
        except BaseException:
            # never leave the child running (timeout, Ctrl-C, ...)
            p.kill()
            os.wait4(p.pid, 0)
            p.returncode = -9
            raise
        wall = time.perf_counter() - t0
        j1 = cpu_jiffies()
        p.returncode = os.waitstatus_to_exitcode(status)
    other = None
    if j0 is not None and j1 is not None and wall > 0:
        # CPU used by everything except this child during its run, in cores (contention)
        other = max(0.0, ((j1[0] - j0[0]) / CLK_TCK - ru.ru_utime - ru.ru_stime) / wall)
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    return {
        "rc": p.returncode,
        "wall_s": wall,
        "peak_rss_mb": ru.ru_maxrss / 1024.0,  # Linux: KiB
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "other_load_cores": other,
        "stderr": stderr,
        "stdout_path": str(out_path),
        "stderr_path": str(err_path),
    }


def tail(text: str, n: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def read_manifest(data_dir: Path, set_name: str) -> list[dict]:
    man = data_dir / set_name / "manifest.tsv"
    if not man.is_file():
        avail = sorted(p.name for p in data_dir.iterdir() if (p / "manifest.tsv").is_file()) \
            if data_dir.is_dir() else []
        raise BenchError(f"no manifest for set {set_name!r}: {man} (available: {', '.join(avail) or 'none'})")
    rows = []
    with open(man, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            path = (data_dir / set_name / r["path"]).resolve()
            if not path.is_file():
                raise BenchError(f"{man}: missing audio file {path}")
            rows.append({
                "set": set_name,
                "key": f"{set_name}/{r['path']}",
                "path": str(path),
                "duration_s": float(r["duration_s"]),
                "reference": r["reference"],
            })
    if not rows:
        raise BenchError(f"{man}: empty manifest")
    return rows


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = line.split(":", 1)[1].split()
                    return sorted(x for x in fl if x.startswith(("avx", "fma", "f16c", "amx")))
    except OSError:
        pass
    return []


def git_rev() -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------------------
# venv
# ---------------------------------------------------------------------------
def ensure_venv(venv: Path, base_python: str, skip_install: bool) -> Path:
    py = venv / "bin" / "python"
    marker = venv / ".vkbench-pins"
    want = "\n".join(FW_PINS) + "\n"
    if not py.exists():
        if skip_install:
            raise BenchError(f"--no-install given but {py} does not exist")
        log(f"[venv] creating {venv} with {base_python} -m venv")
        r = subprocess.run([base_python, "-m", "venv", str(venv)])
        if r.returncode != 0:
            raise BenchError(f"'{base_python} -m venv {venv}' failed (rc {r.returncode})")
    if skip_install:
        return py
    if marker.exists() and marker.read_text() == want:
        log(f"[venv] reusing {venv} (pins unchanged)")
        return py
    log(f"[venv] pip install {' '.join(FW_PINS)}")
    r = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", *FW_PINS])
    if r.returncode != 0:
        raise BenchError(f"pip install into {venv} failed (rc {r.returncode}); see output above")
    r = subprocess.run([str(py), "-c", "import faster_whisper, ctranslate2"], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"faster-whisper does not import in {venv}:\n{tail(r.stderr)}")
    marker.write_text(want)
    return py


# ---------------------------------------------------------------------------
# engines
# ---------------------------------------------------------------------------
class FasterWhisper:
    name = "fw"
    label = "faster-whisper"

    def __init__(self, args, py: Path, work: Path):
        self.args, self.py, self.work = args, py, work
        self.worker = work / "fw_worker.py"
        self.worker.write_text(FW_WORKER, encoding="utf-8")
        self.versions: dict = {}
        self.ct2_info: dict = {}

    def _run(self, tag: str, files: list[str], ct: str, env=None) -> tuple[dict, dict]:
        cfg_path = self.work / f"{tag}.cfg.json"
        out_path = self.work / f"{tag}.result.json"
        ct, threads = split_variant(ct)
        cfg = {"model": str(self.args.model), "compute_type": ct, "threads": threads,
               "beam_size": self.args.beam_size, "files": files, "out": str(out_path)}
        cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
        m = run_measured([str(self.py), str(self.worker), str(cfg_path)], self.work / tag,
                         self.args.timeout, env=env)
        if m["rc"] != 0 or not out_path.exists():
            raise BenchError(f"faster-whisper worker failed (rc {m['rc']}); stderr tail:\n{tail(m['stderr'])}")
        res = json.loads(out_path.read_text(encoding="utf-8"))
        self.versions = res.get("versions", self.versions)
        return m, res

    def warmup(self, ct: str, warm_file: str) -> dict:
        # CT2_VERBOSE=1 (warm-up only) makes ctranslate2 log the CPU ISA / GEMM backends it picked
        env = dict(os.environ, CT2_VERBOSE="1")
        m, res = self._run(f"fw.{ct}.warmup", [warm_file], ct, env=env)
        info = [ln.split("[info]", 1)[1].strip() for ln in m["stderr"].splitlines() if "[info]" in ln]
        keep = ("CPU:", "- Selected ISA", "- Use Intel MKL", "backend", "- Selected compute type")
        self.ct2_info[ct] = [x for x in info if x.startswith(keep) or any(k in x for k in keep[3:])]
        return {"wall_s": m["wall_s"], "load_s": res["load_s"], "transcribe_s": res["transcribe_s"],
                "ct2_info": self.ct2_info[ct]}

    def run_set(self, ct: str, set_name: str, rows: list[dict], run_idx: int) -> dict:
        m, res = self._run(f"fw.{ct}.{set_name}.run{run_idx}", [r["path"] for r in rows], ct)
        texts = {r["key"]: f["text"] for r, f in zip(rows, res["files"])}
        return {
            "transcribe_s": res["transcribe_s"],
            "load_s": res["load_s"],
            "import_s": res["import_s"],
            "process_wall_s": m["wall_s"],
            "peak_rss_mb": m["peak_rss_mb"],
            "cpu_user_s": m["user_s"],
            "cpu_sys_s": m["sys_s"],
            "other_load_cores": m["other_load_cores"],
            "timing_method": "in-process perf_counter (decode_audio + transcribe + list(segments))",
            "per_file_s": {r["key"]: f["time_s"] for r, f in zip(rows, res["files"])},
            "texts": texts,
        }


class VkWhisper:
    name = "vk"
    label = "vkwhisper"

    def __init__(self, args, work: Path):
        self.args, self.work = args, work
        self.binary = str(args.vkwhisper)
        self.mode = args.vk_timing  # auto | line | subtract
        self.timings_flag: bool | None = None  # decided at first warm-up
        self.version: str | None = None
        self.probe: Path | None = None
        self.probe_runs: dict[str, dict] = {}

    def check(self) -> None:
        b = Path(self.binary)
        if not b.is_file():
            raise BenchError(
                f"vkwhisper binary not found: {b}\n"
                f"  build it with `cargo build --release` (default path target/release/vkwhisper),\n"
                f"  pass --vkwhisper PATH, or run only faster-whisper with --engines fw")
        if not os.access(b, os.X_OK):
            raise BenchError(f"vkwhisper binary is not executable: {b}")
        try:
            r = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                self.version = (r.stdout or r.stderr).strip() or None
        except (OSError, subprocess.SubprocessError):
            pass

    def _cmd(self, files: list[str], ct: str, outdir: Path, timings: bool) -> list[str]:
        ct, threads = split_variant(ct)
        cmd = [self.binary, "transcribe", *files, "--model", str(self.args.model),
               "--beam-size", str(self.args.beam_size), "--threads", str(threads),
               "--compute-type", ct, "--output-format", "json", "--output-dir", str(outdir), "--quiet"]
        if self.args.vk_device:
            # faster-whisper runs with device="cpu"; vkwhisper's default `auto`
            # would also probe Vulkan drivers (tens of MB of RSS).
            cmd += ["--device", self.args.vk_device]
        if timings:
            cmd.append("--timings")
        return cmd

    @staticmethod
    def _parse_timings(stderr: str) -> dict | None:
        found = None
        for line in stderr.splitlines():
            m = TIMINGS_RE.search(line)
            if m:
                kv = dict(tok.split("=", 1) for tok in m.group(1).split() if "=" in tok)
                try:
                    found = {k: float(v) for k, v in kv.items()}
                except ValueError:
                    continue
        if found and "transcribe_s" in found:
            return found
        return None

    def _invoke(self, tag: str, files: list[str], ct: str) -> tuple[dict, Path]:
        outdir = self.work / f"{tag}.out"
        if outdir.exists():
            shutil.rmtree(outdir)
        outdir.mkdir(parents=True)
        use_flag = bool(self.timings_flag)
        m = run_measured(self._cmd(files, ct, outdir, use_flag), self.work / tag, self.args.timeout)
        if m["rc"] != 0:
            raise BenchError(f"vkwhisper failed (rc {m['rc']}): {' '.join(self._cmd(files, ct, outdir, use_flag))}\n"
                             f"stderr tail:\n{tail(m['stderr'])}")
        m["timings"] = self._parse_timings(m["stderr"]) if use_flag else None
        return m, outdir

    def warmup(self, ct: str, warm_file: str) -> dict:
        # The probe is a copy of the warm-up file under a name that cannot collide
        # with any set file's stem.
        if self.probe is None:
            src = Path(warm_file)
            self.probe = self.work / f"vkbench_probe{src.suffix}"
            shutil.copyfile(src, self.probe)
        if self.timings_flag is None:
            self.timings_flag = self.mode in ("auto", "line")
            if self.timings_flag:
                outdir = self.work / f"vk.{ct}.warmup.out"
                outdir.mkdir(parents=True, exist_ok=True)
                m = run_measured(self._cmd([str(self.probe)], ct, outdir, True),
                                 self.work / f"vk.{ct}.warmup-flagcheck", self.args.timeout)
                if m["rc"] != 0 or self._parse_timings(m["stderr"]) is None:
                    if self.mode == "line":
                        raise BenchError("--vk-timing line: vkwhisper did not print a "
                                         f"'vkwhisper-timings:' line with --timings (rc {m['rc']}):\n{tail(m['stderr'])}")
                    log("[vk] no usable --timings line; using the subtraction estimate")
                    self.timings_flag = False
        # untimed warm-up (page cache, binary, model file)
        m, _ = self._invoke(f"vk.{ct}.warmup", [str(self.probe)], ct)
        info = {"wall_s": m["wall_s"], "timing_method": self.method()}
        if not self.timings_flag:
            # timed probe-only invocation: fixed cost (start-up + load + probe)
            m2, _ = self._invoke(f"vk.{ct}.probe", [str(self.probe)], ct)
            self.probe_runs[ct] = m2
            info["probe_wall_s"] = m2["wall_s"]
        return info

    def method(self) -> str:
        if self.timings_flag:
            return "vkwhisper --timings line (transcribe_s, load_s)"
        return "subtraction: wall([probe]+set) - wall([probe]) (start-up+load+probe cancel)"

    def _set_files(self, rows: list[dict]) -> tuple[list[str], dict[str, str]]:
        """Paths to pass, and key -> expected output stem; symlink when stems collide."""
        stems = [Path(r["path"]).stem for r in rows]
        paths, stem_of = [], {}
        collide = len(set(stems)) != len(stems) or "vkbench_probe" in stems
        for r in rows:
            p = Path(r["path"])
            if collide:
                link = self.work / "links" / f"{r['set']}__{p.stem}__{p.suffix.lstrip('.')}{p.suffix}"
                link.parent.mkdir(exist_ok=True)
                if not link.exists():
                    link.symlink_to(p)
                p = link
            paths.append(str(p))
            stem_of[r["key"]] = p.stem
        return paths, stem_of

    @staticmethod
    def _read_text(js: Path) -> str:
        d = json.loads(js.read_text(encoding="utf-8"))
        if isinstance(d.get("text"), str):
            return d["text"]
        return "".join(s.get("text", "") for s in d.get("segments", []))

    def run_set(self, ct: str, set_name: str, rows: list[dict], run_idx: int) -> dict:
        paths, stem_of = self._set_files(rows)
        if not self.timings_flag:
            paths = [str(self.probe)] + paths
        m, outdir = self._invoke(f"vk.{ct}.{set_name}.run{run_idx}", paths, ct)
        texts = {}
        for key, stem in stem_of.items():
            js = outdir / f"{stem}.json"
            if not js.is_file():
                raise BenchError(f"vkwhisper wrote no {js} (for {key})")
            texts[key] = self._read_text(js)
        res = {
            "process_wall_s": m["wall_s"],
            "peak_rss_mb": m["peak_rss_mb"],
            "cpu_user_s": m["user_s"],
            "cpu_sys_s": m["sys_s"],
            "other_load_cores": m["other_load_cores"],
            "timing_method": self.method(),
            "texts": texts,
        }
        if self.timings_flag:
            t = m["timings"]
            if t is None:
                raise BenchError(f"vkwhisper printed no 'vkwhisper-timings:' line for set {set_name}")
            res["transcribe_s"] = t["transcribe_s"]
            res["load_s"] = t.get("load_s")
            res["reported_audio_s"] = t.get("audio_s")
        else:
            probe = self.probe_runs[ct]
            res["transcribe_s"] = m["wall_s"] - probe["wall_s"]
            res["load_s"] = None
            res["fixed_cost_s"] = probe["wall_s"]
            res["note"] = "load_s unavailable; fixed_cost_s = start-up + model load + probe transcription"
        return res


# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------
def fmt(v, spec: str, na: str = "-") -> str:
    return na if v is None else format(v, spec)


def pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def summarise_runs(runs: list[dict]) -> dict:
    """Best (minimum) transcribe time over runs; max peak RSS; text from the first run."""
    best = min(runs, key=lambda r: r["transcribe_s"])
    loads = [r["load_s"] for r in runs if r.get("load_s") is not None]
    out = {
        "transcribe_s": best["transcribe_s"],
        "transcribe_s_runs": [r["transcribe_s"] for r in runs],
        "transcribe_s_median": statistics.median(r["transcribe_s"] for r in runs),
        "load_s": min(loads) if loads else None,
        "process_wall_s": best["process_wall_s"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "cpu_user_s": best["cpu_user_s"],
        "cpu_sys_s": best["cpu_sys_s"],
        "other_load_cores": best["other_load_cores"],
        "other_load_cores_runs": [r["other_load_cores"] for r in runs],
        "timing_method": best["timing_method"],
        "texts": runs[0]["texts"],
    }
    for k in ("fixed_cost_s", "reported_audio_s", "note", "per_file_s"):
        if k in best:
            out[k] = best[k]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark faster-whisper vs vkwhisper on the same audio, model, threads and beam size.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--engines", default="fw,vk", help="comma list of: fw, vk")
    ap.add_argument("--sets", default="ljspeech,longform", help="comma list of sets under --data-dir")
    ap.add_argument("--data-dir", type=Path, default=REPO / "tests" / "fixtures" / "data")
    ap.add_argument("--model", type=Path, default=Path.home() / ".cache" / "vkwhisper" / "models" / "tiny.en",
                    help="CTranslate2 model directory (both engines)")
    ap.add_argument("--threads", default="2",
                    help="comma list, e.g. 1,2: FW cpu_threads (num_workers=1); vk --threads")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--compute-type", default="float32", help="comma list, e.g. float32,int8")
    ap.add_argument("--runs", type=int, default=1, help="timed runs per (engine, compute type, set); best is reported")
    ap.add_argument("--vkwhisper", type=Path, default=REPO / "target" / "release" / "vkwhisper",
                    help="vkwhisper binary")
    ap.add_argument("--vk-device", default="cpu",
                    help="vkwhisper --device ('' to omit the flag, for binaries without it)")
    ap.add_argument("--vk-timing", choices=["auto", "line", "subtract"], default="auto",
                    help="how vk transcribe time is obtained: the --timings stderr line, the "
                         "subtraction estimate, or auto (line if the binary prints it)")
    ap.add_argument("--venv", type=Path, default=REPO / ".venv-bench", help="venv for faster-whisper")
    ap.add_argument("--python", default=sys.executable, help="interpreter used to create the venv")
    ap.add_argument("--no-install", action="store_true", help="use --venv as is (no pip)")
    ap.add_argument("--warmup-file", type=Path, help="default: shortest file of the first set")
    ap.add_argument("--work-dir", type=Path, help="keep transcripts/logs here (default: temp dir, deleted)")
    ap.add_argument("--json-out", type=Path, help="write the machine-readable summary here")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                    help="before each timed run, wait up to SECONDS for other processes to use "
                         "< --idle-threshold cores (0: don't wait)")
    ap.add_argument("--idle-threshold", type=float, default=0.15, help="cores")
    ap.add_argument("--timeout", type=float, default=3600, help="per child process, seconds")
    args = ap.parse_args(argv)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ("fw", "vk")]
    if bad or not engines:
        ap.error(f"--engines: unknown {bad}; use fw, vk or fw,vk")
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    cts = [c.strip() for c in args.compute_type.split(",") if c.strip()]
    try:
        thread_list = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--threads: expected a comma list of integers, got {args.threads!r}")
    if not thread_list or min(thread_list) < 1 or args.beam_size < 1 or args.runs < 1:
        ap.error("--threads, --beam-size and --runs must be >= 1")
    # Each (compute type, threads) pair is one variant, spelled 'int8@2'.
    cts = [f"{c}@{t}" for t in thread_list for c in cts]
    args.model = args.model.expanduser().resolve()
    args.vkwhisper = args.vkwhisper.expanduser()
    if not args.vkwhisper.is_absolute():
        # relative to the current directory if it exists there, else to the repo
        args.vkwhisper = (Path.cwd() / args.vkwhisper) if (Path.cwd() / args.vkwhisper).exists() \
            else (REPO / args.vkwhisper)
    if not (args.model / "model.bin").is_file():
        raise BenchError(f"no CTranslate2 model at {args.model} (model.bin missing); see docs / --model")

    # --- validate everything before any long work ------------------------------------
    vk = None
    if "vk" in engines:
        vk = VkWhisper(args, Path("."))
        vk.check()  # clear error if the binary is missing
    data = {s: read_manifest(args.data_dir.resolve(), s) for s in sets}
    warm = args.warmup_file or Path(min(data[sets[0]], key=lambda r: r["duration_s"])["path"])
    warm = warm.expanduser().resolve()
    if not warm.is_file():
        raise BenchError(f"warm-up file not found: {warm}")

    tmp = None
    if args.work_dir:
        work = args.work_dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="vkbench.")
        work = Path(tmp.name)
    try:
        fw = None
        if "fw" in engines:
            py = ensure_venv(args.venv.expanduser().resolve(), args.python, args.no_install)
            fw = FasterWhisper(args, py, work)
        if vk is not None:
            vk.work = work
        engine_objs = [e for e in (fw, vk) if e is not None]

        started = _dt.datetime.now(_dt.timezone.utc)
        load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
        results: dict = {}  # ct -> set -> engine -> summary
        warmups: dict = {}
        failed_warmup: set = set()
        errors: list[str] = []
        for ct in cts:
            results[ct] = {s: {} for s in sets}
            for eng in engine_objs:
                log(f"[{eng.name}] {ct}: warm-up on {warm.name}")
                try:
                    warmups.setdefault(ct, {})[eng.name] = eng.warmup(ct, str(warm))
                except BenchError as e:
                    failed_warmup.add((ct, eng.name))
                    errors.append(f"{eng.name} {ct} warm-up: {e}")
                    log(f"[{eng.name}] ERROR: {e}")
            for s in sets:
                rows = data[s]
                runs = {e.name: [] for e in engine_objs}
                for i in range(args.runs):
                    for eng in engine_objs:
                        if (ct, eng.name) in failed_warmup:
                            continue  # warm-up failed
                        log(f"[{eng.name}] {ct} {s}: run {i + 1}/{args.runs} ({len(rows)} files, "
                            f"{sum(r['duration_s'] for r in rows):.1f} s audio)")
                        wait_idle(args.wait_idle, args.idle_threshold)
                        try:
                            r = eng.run_set(ct, s, rows, i)
                            runs[eng.name].append(r)
                            ol = r["other_load_cores"]
                            log(f"[{eng.name}]   transcribe {r['transcribe_s']:.2f} s, "
                                f"peak RSS {r['peak_rss_mb']:.0f} MB, other load "
                                f"{'?' if ol is None else f'{ol:.2f}'} cores")
                        except BenchError as e:
                            errors.append(f"{eng.name} {ct} {s}: {e}")
                            log(f"[{eng.name}] ERROR: {e}")
                            break
                for name, rl in runs.items():
                    if rl and len(rl) == args.runs:
                        results[ct][s][name] = summarise_runs(rl)

        # --- metrics -------------------------------------------------------------------
        summary_rows = []
        for ct in cts:
            for s in sets + ["ALL"]:
                set_list = sets if s == "ALL" else [s]
                if s == "ALL" and len(sets) == 1:
                    continue
                rows = [r for x in set_list for r in data[x]]
                audio = sum(r["duration_s"] for r in rows)
                per_eng = {}
                for eng in engine_objs:
                    parts = [results[ct][x].get(eng.name) for x in set_list]
                    if any(p is None for p in parts):
                        continue
                    texts = {k: v for p in parts for k, v in p["texts"].items()}
                    counts = werlib.WerCounts()
                    for r in rows:
                        counts = counts + werlib.wer_counts(r["reference"], texts[r["key"]])
                    t = sum(p["transcribe_s"] for p in parts)
                    loads = [p["load_s"] for p in parts]
                    per_eng[eng.name] = {
                        "engine": eng.label,
                        "audio_s": audio,
                        "transcribe_s": t,
                        "rtf": t / audio if audio else None,
                        "x_realtime": audio / t if t > 0 else None,
                        "load_s": None if any(x is None for x in loads) else statistics.mean(loads),
                        "peak_rss_mb": max(p["peak_rss_mb"] for p in parts),
                        "process_wall_s": sum(p["process_wall_s"] for p in parts),
                        "cpu_s": sum(p["cpu_user_s"] + p["cpu_sys_s"] for p in parts),
                        "other_load_cores": max((p["other_load_cores"] or 0.0) for p in parts),
                        "wer": counts.as_dict(),
                        "timing_method": parts[0]["timing_method"],
                    }
                    if s != "ALL":
                        p = parts[0]
                        per_eng[eng.name]["transcribe_s_runs"] = p["transcribe_s_runs"]
                        per_eng[eng.name]["other_load_cores_runs"] = p["other_load_cores_runs"]
                        for k in ("fixed_cost_s", "reported_audio_s", "note"):
                            if k in p:
                                per_eng[eng.name][k] = p[k]
                row = {"variant": ct, "compute_type": split_variant(ct)[0],
                       "threads": split_variant(ct)[1], "set": s, "files": len(rows), "audio_s": audio, "engines": per_eng}
                if "fw" in per_eng and "vk" in per_eng:
                    row["speed_ratio_fw_over_vk"] = per_eng["fw"]["transcribe_s"] / per_eng["vk"]["transcribe_s"] \
                        if per_eng["vk"]["transcribe_s"] > 0 else None
                    agree = werlib.WerCounts()
                    fwt = {k: v for x in set_list for k, v in results[ct][x]["fw"]["texts"].items()}
                    vkt = {k: v for x in set_list for k, v in results[ct][x]["vk"]["texts"].items()}
                    for r in rows:
                        agree = agree + werlib.wer_counts(fwt[r["key"]], vkt[r["key"]])
                    row["vk_vs_fw_text_wer"] = agree.wer
                    row["identical_texts"] = sum(fwt[r["key"]].strip() == vkt[r["key"]].strip() for r in rows)
                summary_rows.append(row)

        # --- print -----------------------------------------------------------------------
        print()
        print(f"model {args.model}  beam {args.beam_size}  runs {args.runs} (best shown); "
              f"compute column = compute type @ threads")
        print("transcribe = audio decode + transcription, excl. process start-up and model load")
        hdr = f"{'compute':14} {'set':11} {'engine':15} {'files':>5} {'audio_s':>8} {'transc_s':>9} " \
          f"{'RTF':>7} {'xRT':>6} {'load_s':>7} {'RSS_MB':>7} {'WER':>7} {'cpu_s':>7} {'busy*':>5}"
        print(hdr)
        print("-" * len(hdr))
        for row in summary_rows:
            for name, e in row["engines"].items():
                print(f"{row['variant']:14} {row['set']:11} {e['engine']:15} {row['files']:>5} "
                      f"{row['audio_s']:>8.1f} {e['transcribe_s']:>9.2f} {e['rtf']:>7.4f} "
                      f"{fmt(e['x_realtime'], '.1f'):>6} {fmt(e['load_s'], '.2f'):>7} "
                      f"{e['peak_rss_mb']:>7.0f} {pct(e['wer']['wer']):>7} {e['cpu_s']:>7.1f} "
                      f"{e['other_load_cores']:>5.2f}")
            if "speed_ratio_fw_over_vk" in row:
                print(f"{'':14} {row['set']:11} speed ratio FW/vk = {fmt(row['speed_ratio_fw_over_vk'], '.2f')}"
                      f"  (>1: vkwhisper faster); vk-vs-FW text WER {pct(row['vk_vs_fw_text_wer'])}, "
                      f"identical texts {row['identical_texts']}/{row['files']}")
        print("cpu_s = user+sys CPU of the whole engine process (incl. start-up and load); "
              "busy* = cores used by OTHER processes during the run (max over sets; > ~0.1 means "
              "the timing is contaminated)")
        if vk is not None:
            print(f"vkwhisper timing: {vk.method()}")
        if errors:
            print("\nERRORS:")
            for e in errors:
                print("  " + e.replace("\n", "\n    "))

        summary = {
            "schema_version": 1,
            "started_utc": started.isoformat(timespec="seconds"),
            "command": [sys.argv[0], *(argv if argv is not None else sys.argv[1:])],
            "config": {
                "engines": engines, "sets": sets, "compute_types": cts, "model": str(args.model),
                "threads": thread_list, "beam_size": args.beam_size, "runs": args.runs,
                "warmup_file": str(warm), "wait_idle_s": args.wait_idle, "vkwhisper": str(args.vkwhisper) if vk else None,
                "vk_timing": vk.method() if vk else None,
                "timing_scope": "audio decode + transcription; excludes process start-up and model load",
                "rtf": "transcribe_s / audio_s (manifest durations)",
                "peak_rss": "ru_maxrss of the engine's own child process (one process per set)",
                "wer_normalisation": "scripts/wer.py: NFKC, casefold, delete apostrophes, other "
                                     "non-alphanumerics -> space, collapse whitespace; pooled per set",
            },
            "environment": {
                "cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "nproc": os.cpu_count(),
                "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                "loadavg_at_start": load0,
                "kernel": platform.release(), "python": platform.python_version(),
                "fw_versions": fw.versions if fw else None,
                "ctranslate2_cpu": fw.ct2_info if fw else None,
                "vkwhisper_version": vk.version if vk else None, "repo_rev": git_rev(),
            },
            "warmups": warmups,
            "results": summary_rows,
            "errors": errors,
        }
        if args.work_dir:
            (work / "texts.json").write_text(json.dumps(
                {ct: {s: {e: v["texts"] for e, v in d.items()} for s, d in sd.items()}
                 for ct, sd in results.items()}, indent=1, ensure_ascii=False), encoding="utf-8")
        if args.json_out:
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            args.json_out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"\nJSON summary: {args.json_out}")
        return 1 if errors else 0
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
