#!/usr/bin/env python3
"""Load and fault checks of `vkwhisper serve` on loopback (stdlib only).

Starts the real binary (tiny.en, CPU) and checks, in bounded loops:
  1. 16 concurrent uploads with --workers 2 --queue 32 all succeed with the right text;
  2. /health answers in < 50 ms (p99) while 4 long transcriptions run;
  3. a 3 s file submitted behind a 4-minute one finishes in under 3x its solo time;
  4. a client that disconnects mid-transcription frees its worker within one window;
  5. peak RSS stays under the idle RSS + workers x one request's state + 64 MiB;
  6. queue overflow gets 429s with Retry-After, and no request is lost or answered twice;
  7. 200 malformed requests each get a 4xx JSON error, and the server keeps serving.
Prints the numbers and writes them as JSON (--out). Exit status 1 on any failed check.

  python3 scripts/server-load.py [--binary target/release/vkwhisper] [--model tiny.en]
"""

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "fixtures", "data")
JFK = os.path.join(DATA, "jfk", "jfk.wav")
LONG = os.path.join(DATA, "longform", "ljspeech_LJ001_0001-0032.wav")
BOUNDARY = "vkwloadboundaryX9"
FAILED = []


def check(ok, what):
    print(("ok     " if ok else "FAILED ") + what, flush=True)
    if not ok:
        FAILED.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, binary, model, *flags):
        self.port = free_port()
        env = dict(os.environ, NODEVICE_SELECT="1")
        self.proc = subprocess.Popen(
            [binary, "serve", "--port", str(self.port), "--model", model, "--device", "cpu", *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("server exited: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                if get(self.port, "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("server never became healthy")

    def status(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def metric(self, name):
        for line in get(self.port, "/metrics")[2].decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def get(port, path, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


def multipart(fields, file=None, field_name=b"file"):
    out = b""
    for k, v in fields:
        k = k if isinstance(k, bytes) else k.encode()
        v = v if isinstance(v, bytes) else v.encode()
        out += b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"" + k + b"\"\r\n\r\n" + v + b"\r\n"
    if file is not None:
        name, data = file
        out += (b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"" + field_name
                + b"\"; filename=\"" + name.encode() + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    return out + b"--" + BOUNDARY.encode() + b"--\r\n"


def post(port, body, path="/v1/audio/transcriptions", timeout=600, ctype=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", path, body=body,
              headers={"Content-Type": ctype or f"multipart/form-data; boundary={BOUNDARY}"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def wav_bytes(path, seconds=None):
    with wave.open(path) as w:
        params = w.getparams()
        frames = w.readframes(w.getnframes() if seconds is None else int(seconds * w.getframerate()))
    import io
    buf = io.BytesIO()
    with wave.open(buf, "wb") as o:
        o.setparams(params)
        o.writeframes(frames)
    return buf.getvalue()


def timed(fn):
    t = time.time()
    r = fn()
    return r, time.time() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "vkwhisper"))
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    results = {}
    jfk = wav_bytes(JFK)
    short = wav_bytes(JFK, 3.0)
    long_ = wav_bytes(LONG)
    minute = wav_bytes(LONG, 60.0)

    srv = Server(a.binary, a.model, "--workers", "2", "--queue", "32")
    try:
        idle = srv.status("VmRSS")
        results["idle_rss_mb"] = idle / 2**20

        # 1. 16 concurrent uploads.
        out = [None] * 16
        def one(i):
            try:
                out[i] = post(srv.port, multipart([("model", a.model)], ("jfk.wav", jfk)))
            except Exception as e:  # noqa: BLE001 - report every failure
                out[i] = (0, {}, str(e).encode())
        (_, t16) = timed(lambda: [t.join() for t in [threading.Thread(target=one, args=(i,)) for i in range(16)]
                                  if not t.start()])
        ok = all(o[0] == 200 and "ask not what your country" in json.loads(o[2])["text"] for o in out)
        results["concurrent16_s"] = t16
        results["concurrent16_rps"] = 16 / t16
        check(ok, f"16 concurrent uploads all 200 with the jfk text ({t16:.1f} s, {16 / t16:.2f} req/s)")

        # 2. /health while 4 long transcriptions run.
        longs = [threading.Thread(target=lambda: post(srv.port, multipart([("model", a.model)], ("m.wav", minute))))
                 for _ in range(4)]
        for t in longs:
            t.start()
        time.sleep(2.0)
        lat = []
        while any(t.is_alive() for t in longs) and len(lat) < 400:
            (_, dt) = timed(lambda: get(srv.port, "/health"))
            lat.append(dt * 1000)
            time.sleep(0.05)
        for t in longs:
            t.join()
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        results["health_p99_ms"] = p99
        results["health_samples"] = len(lat)
        check(p99 < 50 and len(lat) >= 20, f"/health p99 {p99:.1f} ms over {len(lat)} calls while 4 x 60 s transcriptions ran")
        peak_load = srv.status("VmHWM")

        # 3. A 3 s file behind a 4-minute one; 4. the 4-minute one's client disconnects.
        (_, solo) = timed(lambda: post(srv.port, multipart([("model", a.model)], ("s.wav", short))))
        results["short_solo_s"] = solo
        sock = socket.create_connection(("127.0.0.1", srv.port))
        body = multipart([("model", a.model), ("stream", "true"), ("progress", "true")], ("long.wav", long_))
        sock.sendall(f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                     f"boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        sock.settimeout(120)
        # Wait until the long job is decoding (its first progress event), then
        # time two windows from its next progress events.
        buf = b""
        while b"transcript.progress" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        window_times = []
        t_prev = time.time()
        while len(window_times) < 2:
            chunk = sock.recv(65536)
            if not chunk:
                break
            if b"transcript.progress" in chunk:
                now = time.time()
                window_times.append(now - t_prev)
                t_prev = now
        (st, behind) = timed(lambda: post(srv.port, multipart([("model", a.model)], ("s.wav", short)))[0])
        results["short_behind_long_s"] = behind
        check(st == 200 and behind < 3 * solo,
              f"3 s file behind a 4-minute one: {behind:.2f} s vs {solo:.2f} s alone ({behind / solo:.2f}x, limit 3x)")
        window = statistics.median(window_times) if window_times else float("nan")
        results["long_window_s"] = window
        t_close = time.time()
        sock.close()
        freed = None
        while time.time() - t_close < 60:
            if (srv.metric("vkwhisper_in_flight") or 0) == 0:
                freed = time.time() - t_close
                break
            time.sleep(0.05)
        results["disconnect_freed_s"] = freed
        check(freed is not None and freed <= max(window * 1.5, 1.0),
              f"a disconnected client freed its worker in {freed if freed is not None else float('nan'):.2f} s "
              f"(one window takes {window:.2f} s)")

        # 5. Peak RSS.
        peak = max(peak_load, srv.status("VmHWM"))
        results["peak_rss_mb"] = peak / 2**20
    finally:
        srv.stop()

    # One request's state: what a single 60 s transcription adds to a fresh
    # server's peak.
    solo_srv = Server(a.binary, a.model, "--workers", "1")
    try:
        base = solo_srv.status("VmRSS")
        post(solo_srv.port, multipart([("model", a.model)], ("m.wav", minute)))
        one_state = solo_srv.status("VmHWM") - base
    finally:
        solo_srv.stop()
    results["one_request_state_mb"] = one_state / 2**20
    bound = idle + 2 * one_state + 64 * 2**20
    results["rss_bound_mb"] = bound / 2**20
    check(peak <= bound, f"peak RSS {peak / 2**20:.0f} MB under idle {idle / 2**20:.0f} MB + 2 x "
                         f"{one_state / 2**20:.0f} MB + 64 MiB = {bound / 2**20:.0f} MB")

    # 6. Queue overflow.
    srv = Server(a.binary, a.model, "--workers", "1", "--queue", "2")
    try:
        res = [None] * 12
        def q(i):
            try:
                res[i] = post(srv.port, multipart([("model", a.model)], ("jfk.wav", jfk)))
            except Exception as e:  # noqa: BLE001
                res[i] = (0, {}, str(e).encode())
        ts = [threading.Thread(target=q, args=(i,)) for i in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        codes = sorted(r[0] for r in res)
        n429 = codes.count(429)
        results["overflow_codes"] = codes
        retry = all(any(k.lower() == "retry-after" for k in r[1]) for r in res if r[0] == 429)
        check(n429 >= 1 and codes.count(200) + n429 == 12 and retry,
              f"queue overflow: {codes.count(200)} x 200, {n429} x 429 (with Retry-After), no request lost")

        # 7. 200 malformed requests.
        cases = malformed(a.model, jfk)
        bad = []
        for i in range(200):
            name, req = cases[i % len(cases)]
            try:
                status, body = req(srv.port)
            except Exception as e:  # noqa: BLE001
                bad.append(f"{name}: {e}")
                continue
            shape = False
            try:
                e = json.loads(body)["error"]
                shape = all(k in e for k in ("message", "type", "param", "code"))
            except (ValueError, KeyError, TypeError):
                pass
            if not (400 <= status < 500 and shape):
                bad.append(f"{name}: {status} {body[:120]!r}")
        still = post(srv.port, multipart([("model", a.model)], ("jfk.wav", jfk)))[0]
        results["malformed_failures"] = bad[:10]
        check(not bad and still == 200 and get(srv.port, "/health")[0] == 200,
              f"200 malformed requests: {200 - len(bad)} answered 4xx JSON; the server still serves"
              + ("" if not bad else f"; first failures: {bad[:3]}"))
    finally:
        srv.stop()

    print(json.dumps(results, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
    sys.exit(1 if FAILED else 0)


def raw(port, head, body, read_timeout=30):
    """Send a request by hand (bodies a client library refuses to send)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        s.sendall(head)
        try:
            for i in range(0, len(body), 65536):
                s.sendall(body[i:i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (413) and closed
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head_end = data.index(b"\r\n\r\n")
                headers = data[:head_end].decode(errors="replace").lower()
                length = [int(l.split(":")[1]) for l in headers.split("\r\n") if l.startswith("content-length:")]
                if length and len(data) - head_end - 4 >= length[0]:
                    break
    finally:
        s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""


def malformed(model, jfk):
    rnd = random.Random(7)
    mp = lambda fields, file=None, **kw: multipart(fields, file, **kw)  # noqa: E731
    def p(body, ctype=None):
        return lambda port: post(port, body, ctype=ctype)[::2]
    def big(port):
        body = b"x" * (30 * 2**20)
        head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                f"boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        return raw(port, head, body)
    def truncated(port):
        body = mp([("model", model)], ("a.wav", jfk[:20000]))
        head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                f"boundary={BOUNDARY}\r\nContent-Length: {len(body) - 100}\r\n\r\n").encode()
        return raw(port, head, body[:-100])
    garbage = bytes(rnd.getrandbits(8) for _ in range(4096))
    return [
        ("garbage bytes", p(garbage)),
        ("garbage as audio", p(mp([("model", model)], ("a.mp3", garbage)))),
        ("empty file", p(mp([("model", model)], ("a.wav", b"")))),
        ("truncated multipart", truncated),
        ("30 MB body", big),
        ("temperature not a number", p(mp([("model", model), ("temperature", "hot")], ("a.wav", jfk[:4000])))),
        ("stream not a bool", p(mp([("model", model), ("stream", "perhaps")], ("a.wav", jfk[:4000])))),
        ("beam_size huge", p(mp([("model", model), ("beam_size", "100000")], ("a.wav", jfk[:4000])))),
        ("unknown field", p(mp([("model", model), ("voice", "alloy")], ("a.wav", jfk[:4000])))),
        ("non-UTF-8 field name", p(mp([(b"mod\xff\xfeel", model)], ("a.wav", jfk[:4000])))),
        ("non-UTF-8 value", p(mp([("model", b"tiny\xff")], ("a.wav", jfk[:4000])))),
        ("unknown model", p(mp([("model", "whisper-9000")], ("a.wav", jfk[:4000])))),
        ("no file", p(mp([("model", model)]))),
        ("JSON body", p(b'{"model": "tiny.en"}', ctype="application/json")),
        ("header-only wav", p(mp([("model", model)], ("a.wav", jfk[:44])))),
        ("bad response_format", p(mp([("model", model), ("response_format", "docx")], ("a.wav", jfk[:4000])))),
    ]


if __name__ == "__main__":
    main()
