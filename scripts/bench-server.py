#!/usr/bin/env python3
"""Side-by-side server benchmark (stdlib only): `vkwhisper serve` and
whisper.cpp's `whisper-server` on the same machine, the same weights and the
same files, one server at a time.

For each server: start it, wait until it answers, one warm-up request, then
every file of the set uploaded by C concurrent clients (each client takes the
next file; R rounds). Reports requests/s, the real-time factor under load
(wall time / audio seconds), latency p50/p95, peak RSS of the server process
(VmHWM) and the WER of the transcripts against the set's references.

  python3 scripts/bench-server.py --whisper-server PATH --ggml ggml-tiny.en.bin \
      [--binary target/release/vkwhisper] [--model tiny.en] [--set ljspeech] \
      [--concurrency 4] [--rounds 1] [--threads 2] [--beam-size 5] [--out F.json]

The ggml file is written from the same CTranslate2 model by
`vkwhisper export-ggml MODEL_DIR OUT.bin`. whisper-server decodes one request at a time; it is
given all threads. vkwhisper serve runs --workers 1 with the same threads
(its default), so both spend the same cores.
"""

import argparse
import csv
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "fixtures", "data")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def words(text):
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def wer(ref, hyp):
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(h, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
    return d[len(h)], len(r)


def multipart(fields, path):
    boundary = uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    with open(path, "rb") as f:
        data = f.read()
    name = os.path.basename(path)
    out += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Server:
    def __init__(self, name, argv, path, fields):
        self.name, self.path, self.fields = name, path, fields
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, NODEVICE_SELECT="1"))
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{name} exited at start ({self.proc.returncode}): {' '.join(argv)}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.3)
        sys.exit(f"{name} did not listen within 180 s")

    def transcribe(self, path):
        body, ctype = multipart(self.fields, path)
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=900)
        c.request("POST", self.path, body, {"Content-Type": ctype})
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError(f"{self.name}: {r.status} {data[:200]!r}")
        return json.loads(data)["text"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def load_set(name):
    rows = []
    with open(os.path.join(DATA, name, "manifest.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            rows.append((os.path.join(DATA, name, row["path"]), float(row["duration_s"]), row["reference"]))
    return rows


def run(server, files, concurrency, rounds):
    server.transcribe(files[0][0])  # warm-up (model load, first-call costs)
    jobs = [f for _ in range(rounds) for f in files]
    lock = threading.Lock()
    latencies, texts, errors = [], {}, []

    def client():
        while True:
            with lock:
                if not jobs:
                    return
                path, _, _ = jobs.pop(0)
            t = time.perf_counter()
            try:
                text = server.transcribe(path)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(str(e))
                continue
            with lock:
                latencies.append(time.perf_counter() - t)
                texts[path] = text

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    audio = sum(d for _, d, _ in files) * rounds
    e = n = 0
    for path, _, ref in files:
        de, dn = wer(ref, texts.get(path, ""))
        e, n = e + de, n + dn
    lat = sorted(latencies)
    return {
        "server": server.name,
        "requests": len(latencies),
        "errors": len(errors),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 3),
        "rtf": round(wall / audio, 4),
        "latency_p50_s": round(statistics.median(lat), 2) if lat else None,
        "latency_p95_s": round(lat[int(0.95 * (len(lat) - 1))], 2) if lat else None,
        "peak_rss_mb": round(peak_rss_mb(server.proc.pid), 1),
        "wer_pct": round(100 * e / max(n, 1), 2),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "vkwhisper"))
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--whisper-server", required=True)
    ap.add_argument("--ggml", required=True)
    ap.add_argument("--set", default="ljspeech")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    files = load_set(a.set)
    results = []
    for name in ("vkwhisper", "whisper.cpp"):
        if name == "vkwhisper":
            s = Server(name, [a.binary, "serve", "--host", "127.0.0.1", "--port", "{port}", "--model", a.model,
                              "--device", "cpu", "--threads", str(a.threads), "--workers", "1",
                              "--queue", "64"],
                       "/v1/audio/transcriptions",
                       {"model": a.model, "response_format": "json", "temperature": "0",
                        "beam_size": str(a.beam_size)})
        else:
            s = Server(name, [a.whisper_server, "-m", a.ggml, "--host", "127.0.0.1", "--port", "{port}",
                              "-t", str(a.threads), "-bs", str(a.beam_size), "--inference-path",
                              "/v1/audio/transcriptions"],
                       "/v1/audio/transcriptions",
                       {"response_format": "json", "temperature": "0"})
        try:
            r = run(s, files, a.concurrency, a.rounds)
        finally:
            s.stop()
        print(json.dumps(r), flush=True)
        results.append(r)
    audio = sum(d for _, d, _ in files)
    meta = {"set": a.set, "files": len(files), "audio_s": round(audio, 1), "concurrency": a.concurrency,
            "rounds": a.rounds, "threads": a.threads, "beam_size": a.beam_size, "cpu": cpu_name()}
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    print(json.dumps(meta))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


if __name__ == "__main__":
    main()
