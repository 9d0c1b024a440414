#!/usr/bin/env python3
"""Concurrency check of `vkwhisper serve`'s live sessions on loopback.

Starts the real binary (CPU, tiny.en by default) and, at once:
  * N live sessions (default 4) on /v1/stream, each streaming the first
    SECONDS of the longform set (LJ Speech, 16 kHz s16) in real time in
    100 ms frames, then {"type":"finish"};
  * M file jobs (default 2): the whole longform file (234 s) posted to
    /v1/audio/transcriptions.
For each live session it reports the committed-word lag measured by the
client (the time an update arrived minus the time the word's end was sent:
what a user sees, network and queueing included) and the server's own
`lag_s`, median and p90; for each file job, its time and that it finished
with text. Exit status 1 if a session or a job failed, or a session's median
client lag is over --target (3.3 s).

Needs the `websockets` package (tests/e2e/.venv has it):
  tests/e2e/.venv/bin/python scripts/live-load.py [--binary target/release/vkwhisper]
      [--model tiny.en] [--sessions 4] [--files 2] [--seconds 60] [--threads 0]
      [--workers 2] [--compute-type default]
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import wave

from websockets.sync.client import connect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LONG = os.path.join(ROOT, "tests", "fixtures", "data", "longform", "ljspeech_LJ001_0001-0032.wav")
BOUNDARY = "vkwliveloadboundary7"


def pct(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round((len(s) - 1) * p))]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def live_session(url, pcm, out):
    """Stream `pcm` (s16le, 16 kHz) in real time; record lags."""
    r = {"client_lag": [], "server_lag": [], "text": "", "error": None}
    out.append(r)
    try:
        with connect(url, max_size=None, open_timeout=60) as ws:
            ws.send(json.dumps({"model": "tiny.en", "language": "en"}))
            ready = json.loads(ws.recv(timeout=120))
            assert ready["type"] == "ready", ready
            t0 = time.monotonic()
            frame = 3200  # 100 ms

            def send():
                for i in range(0, len(pcm), frame):
                    # Absolute schedule: audio time t leaves at t0 + t.
                    delay = t0 + i / 32000 - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    ws.send(pcm[i:i + frame])
                ws.send(json.dumps({"type": "finish"}))

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            while True:
                m = json.loads(ws.recv(timeout=300))
                now = time.monotonic() - t0
                if m["type"] == "update":
                    for w in m["committed"]:
                        r["client_lag"].append(now - w["end"])
                        r["text"] += w["text"]
                    if m["lag_s"] is not None:
                        r["server_lag"].append(m["lag_s"])
                elif m["type"] == "final":
                    break
                elif m["type"] == "error":
                    raise RuntimeError(m["error"]["message"])
            sender.join()
    except Exception as e:  # noqa: BLE001 - reported, not raised
        r["error"] = f"{type(e).__name__}: {e}"


def file_job(port, data, out):
    r = {"seconds": None, "ok": False, "error": None}
    out.append(r)
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ntiny.en\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    t = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
        c.request("POST", "/v1/audio/transcriptions", body,
                  {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        resp = c.getresponse()
        text = json.loads(resp.read()).get("text", "")
        r["ok"] = resp.status == 200 and len(text.split()) > 100
        r["seconds"] = time.monotonic() - t
        if not r["ok"]:
            r["error"] = f"HTTP {resp.status}, {len(text.split())} words"
    except Exception as e:  # noqa: BLE001
        r["error"] = f"{type(e).__name__}: {e}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "vkwhisper"))
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    # The server's default is CTranslate2's `default` (float32 on the CPU
    # for a float16 model); `vkwhisper listen` uses `auto` (int8).
    ap.add_argument("--compute-type", default="default")
    ap.add_argument("--target", type=float, default=3.3)
    a = ap.parse_args()
    with wave.open(LONG) as w:
        pcm = w.readframes(min(w.getnframes(), int(a.seconds * 16000)))
    with open(LONG, "rb") as f:
        long_wav = f.read()
    port = free_port()
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"vkw-live-load-{port}.log"), "w")
    proc = subprocess.Popen([a.binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--model", a.model,
                             "--device", "cpu", "--threads", str(a.threads), "--workers", str(a.workers),
                             "--max-sessions", str(a.sessions), "--compute-type", a.compute_type],
                            stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("the server did not start (see " + log.name + ")")
            time.sleep(0.3)
        load = os.getloadavg()
        print(f"live-load: {a.sessions} live sessions × {a.seconds:.0f} s + {a.files} file jobs × 234 s, "
              f"model {a.model}, --workers {a.workers}, --compute-type {a.compute_type}, load average before {load[0]:.1f}", flush=True)
        sessions, files, threads = [], [], []
        for _ in range(a.files):
            threads.append(threading.Thread(target=file_job, args=(port, long_wav, files)))
        for _ in range(a.sessions):
            threads.append(threading.Thread(target=live_session,
                                            args=(f"ws://127.0.0.1:{port}/v1/stream", pcm, sessions)))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = time.monotonic() - t0
        failed = False
        for i, r in enumerate(sessions):
            cl, sl = r["client_lag"], r["server_lag"]
            line = (f"live {i + 1}: {len(cl)} words, client lag median {pct(cl, 0.5):.2f} s p90 {pct(cl, 0.9):.2f} s; "
                    f"server lag_s median {pct(sl, 0.5):.2f} s p90 {pct(sl, 0.9):.2f} s")
            if r["error"]:
                line += f"; FAILED: {r['error']}"
                failed = True
            elif not cl or pct(cl, 0.5) > a.target:
                line += f"; over the {a.target} s target"
                failed = True
            print(line, flush=True)
        for i, r in enumerate(files):
            ok = r["ok"] and not r["error"]
            failed |= not ok
            print(f"file {i + 1}: " + (f"finished in {r['seconds']:.0f} s" if ok else f"FAILED: {r['error']}"),
                  flush=True)
        print(f"live-load: done in {total:.0f} s, load average after {os.getloadavg()[0]:.1f}", flush=True)
        sys.exit(1 if failed else 0)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
