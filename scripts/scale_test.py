#!/usr/bin/env python3
"""Scale-out of `vkwhisper serve` on one machine, behind Debian's nginx, on loopback.

Run by scripts/scale-test.sh (which installs nginx, builds the binary and
fetches tiny.en). Standard library only.

failover (always): three replicas (`vkwhisper serve --model tiny.en`, each on
  its own 127.0.0.1 port) behind nginx with deploy/nginx/vkwhisper-proxy.conf;
  a bounded load of REQUESTS uploads of samples/jfk.wav, CONCURRENCY at a time
  (closed loop); one replica is SIGKILLed once a third of them are answered.
  Every request must end 200 with the right text: the client retries a
  connection error, 502, 503 or 504 (at most 3 times), and nginx itself sends
  a request whose replica is down or died to another one. The per-replica
  counts come from each replica's /metrics (the killed one's from its last
  scrape). One stream=true request through nginx checks that server-sent
  events pass unbuffered.

measure (--measure): the same load against 1 replica and against 3 replicas
  behind the same nginx, ROUNDS times each, alternating; requests/s and
  audio seconds per second, and the servers' CPU seconds per request (from
  /proc: steadier than the wall clock when other work shares the cores). Waits (up to --quiet-wait s) for the 1-minute load
  average to drop below --quiet-load first, and reports it.

Prints a summary and "scale-test: N passed, M failed"; --json FILE writes the
numbers.
"""

import argparse
import concurrent.futures as cf
import http.client
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "jfk.wav"
PHRASE = "ask not what your country can do for you"
AUDIO_S = 11.0
RETRY_STATUSES = {502, 503, 504}


def log(msg):
    print(f"scale-test [{time.strftime('%H:%M:%S')}]: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def multipart(fields, file_name, file_bytes):
    boundary = uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        f"Content-Type: audio/wav\r\n\r\n".encode() + file_bytes + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Replica:
    def __init__(self, binary, name, workdir, threads):
        self.name, self.port = name, free_port()
        self.log_path = workdir / f"{name}.log"
        args = [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--model", "tiny.en",
                "--workers", "2", "--queue", "64"]
        if threads:
            args += ["--threads", str(threads)]
        self.proc = subprocess.Popen(args, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
                                     env={**os.environ, "VKWHISPER_DEVICE": "cpu"})
        self.last_ok = 0
        self.killed = False

    def wait_healthy(self, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                if get(self.port, "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: no /health 200 in {timeout} s")

    def ok_count(self):
        """Transcriptions answered 200, from /metrics (the last value seen once dead)."""
        if not self.killed:
            try:
                _, text = get(self.port, "/metrics")
                m = re.search(r'^vkwhisper_requests_total\{route="/v1/audio/transcriptions",status="200"\} (\d+)',
                              text, re.M)
                self.last_ok = int(m.group(1)) if m else 0
            except OSError:
                pass
        return self.last_ok

    def cpu_s(self):
        """User + system CPU seconds of the process so far (all its threads)."""
        try:
            fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def rss_mb(self):
        try:
            _, text = get(self.port, "/metrics")
            m = re.search(r"^vkwhisper_resident_memory_bytes (\S+)", text, re.M)
            return float(m.group(1)) / 2**20 if m else 0.0
        except OSError:
            return 0.0

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Nginx:
    def __init__(self, workdir, replicas):
        self.port = free_port()
        self.dir = workdir / "nginx"
        tmp = self.dir / "tmp"
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / d).mkdir(parents=True, exist_ok=True)
            os.chmod(tmp / d, 0o1777)
        os.chmod(tmp, 0o755)
        servers = "\n".join(f"        server 127.0.0.1:{r.port} max_fails=1 fail_timeout=10s;" for r in replicas)
        conf = f"""
worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format up '$status $request_time "$upstream_addr" "$upstream_status"';
    access_log {self.dir}/access.log up;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    upstream vkwhisper {{
        least_conn;
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        include {ROOT}/deploy/nginx/vkwhisper-proxy.conf;
    }}
}}
"""
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(conf)
        nginx = os.environ.get("VKW_NGINX", "/usr/sbin/nginx")
        t = subprocess.run([nginx, "-t", "-p", str(self.dir), "-c", str(self.conf)], capture_output=True, text=True)
        if t.returncode != 0:
            raise RuntimeError(f"nginx -t: {t.stderr}")
        self.proc = subprocess.Popen([nginx, "-p", str(self.dir), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "w"))
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not listen")

    def access(self):
        try:
            return (self.dir / "access.log").read_text().splitlines()
        except OSError:
            return []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Load:
    """A closed loop: `concurrency` clients, `requests` uploads in all, each retried."""

    def __init__(self, port, requests, concurrency, max_retries=3):
        self.port, self.requests, self.concurrency, self.max_retries = port, requests, concurrency, max_retries
        self.body, self.ctype = multipart({"model": "whisper-1", "response_format": "json"}, "jfk.wav",
                                          SAMPLE.read_bytes())
        self.done = 0
        self.retries = 0
        self.errors = []
        self.latencies = []
        self.lock = threading.Lock()

    def one(self, i):
        attempt = 0
        t0 = time.time()
        while True:
            status, text = None, ""
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                c.request("POST", "/v1/audio/transcriptions", body=self.body, headers={"Content-Type": self.ctype})
                r = c.getresponse()
                status, text = r.status, r.read().decode()
                c.close()
            except OSError as e:
                text = repr(e)
            if status == 200:
                ok = PHRASE in json.loads(text)["text"]
                with self.lock:
                    self.done += 1
                    self.latencies.append(time.time() - t0)
                    if not ok:
                        self.errors.append((i, "wrong text", text[:200]))
                return
            if (status is None or status in RETRY_STATUSES) and attempt < self.max_retries:
                attempt += 1
                with self.lock:
                    self.retries += 1
                time.sleep(0.5 * attempt)
                continue
            with self.lock:
                self.errors.append((i, status, text[:200]))
            return

    def run(self, during=None):
        t0 = time.time()
        with cf.ThreadPoolExecutor(self.concurrency) as ex:
            futs = [ex.submit(self.one, i) for i in range(self.requests)]
            if during:
                during(self)
            for f in futs:
                f.result()
        return time.time() - t0


def sse_check(port):
    body, ctype = multipart({"model": "whisper-1", "stream": "true", "progress": "true"}, "jfk.wav",
                            SAMPLE.read_bytes())
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("POST", "/v1/audio/transcriptions", body=body, headers={"Content-Type": ctype})
    r = c.getresponse()
    events = [json.loads(line[6:]) for line in r.read().decode().splitlines() if line.startswith("data: ")]
    c.close()
    types = [e.get("type") for e in events]
    return (r.status == 200 and r.getheader("Content-Type", "").startswith("text/event-stream")
            and types[-1:] == ["transcript.text.done"] and PHRASE in events[-1]["text"]), types


def wait_quiet(limit, wait_s):
    deadline = time.time() + wait_s
    load = os.getloadavg()[0]
    while load >= limit and time.time() < deadline:
        log(f"waiting for a quiet machine: load average {load:.2f} >= {limit}")
        time.sleep(20)
        load = os.getloadavg()[0]
    return load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "vkwhisper"))
    ap.add_argument("--requests", type=int, default=36)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--measure", action="store_true", help="also measure 1 vs 3 replicas")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="--threads of each replica (0: all cores)")
    ap.add_argument("--quiet-load", type=float, default=1.0)
    ap.add_argument("--quiet-wait", type=float, default=900)
    ap.add_argument("--json", type=pathlib.Path)
    a = ap.parse_args()

    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        passed, failed = passed + bool(ok), failed + (not ok)
        log(("ok: " if ok else "FAIL: ") + what)

    results = {"cores": os.cpu_count(), "requests": a.requests, "concurrency": a.concurrency,
               "sample_s": AUDIO_S, "model": "tiny.en", "threads": a.threads}
    work = pathlib.Path(tempfile.mkdtemp(prefix="vkw-scale-"))
    replicas, nginx = [], None
    try:
        # --- failover ---------------------------------------------------------
        replicas = [Replica(a.bin, f"replica{i + 1}", work, a.threads) for i in range(3)]
        for r in replicas:
            r.wait_healthy()
        nginx = Nginx(work, replicas)
        log(f"3 replicas on ports {[r.port for r in replicas]} behind nginx on 127.0.0.1:{nginx.port}")

        ok, types = sse_check(nginx.port)
        check(ok, f"a stream=true request through nginx arrives as server-sent events ({len(types)} events)")

        base = [r.ok_count() for r in replicas]
        victim = replicas[1]

        def kill_mid_load(load):
            while load.done < a.requests // 3 and not load.errors:
                time.sleep(0.05)
                victim.ok_count()
            victim.ok_count()
            log(f"SIGKILL {victim.name} (pid {victim.proc.pid}) after {load.done} of {a.requests} answers")
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            victim.killed = True

        load = Load(nginx.port, a.requests, a.concurrency)
        took = load.run(during=kill_mid_load)
        counts = {r.name: r.ok_count() - b for r, b in zip(replicas, base)}
        # The access log: status, time, "upstream addresses" (comma-separated
        # when nginx tried more than one replica), "their statuses".
        entries = [re.match(r'^(\d+) (\S+) "([^"]*)" "([^"]*)"', l) for l in nginx.access()]
        entries = [m.groups() for m in entries if m]
        nginx_retried = sum(1 for e in entries if ", " in e[2])
        bad_5xx = [e for e in entries if e[0].startswith("5")]
        log(f"failover load: {a.requests} uploads, {a.concurrency} at a time, {took:.1f} s; "
            f"per replica (from /metrics): {counts}; client retries: {load.retries}; "
            f"requests nginx sent to a second replica: {nginx_retried}; 5xx answered to the client: {len(bad_5xx)}")
        check(load.done == a.requests and not load.errors,
              f"all {a.requests} requests answered 200 with the right text ({load.done} ok; errors {load.errors[:3]})")
        check(all(v > 0 for v in counts.values()), f"every replica took requests {counts}")
        check(sum(counts.values()) == a.requests,
              f"the per-replica counts add up to the requests ({sum(counts.values())})")
        results["failover"] = {"seconds": round(took, 2), "per_replica": counts, "client_retries": load.retries,
                               "nginx_second_tries": nginx_retried, "client_5xx": len(bad_5xx),
                               "killed": victim.name, "killed_after": a.requests // 3}
        for r in replicas:
            r.stop()
        nginx.stop()

        # --- measure ---------------------------------------------------------------
        if a.measure:
            load_avg = wait_quiet(a.quiet_load, a.quiet_wait)
            results["load_average_before"] = round(load_avg, 2)
            log(f"measuring with the 1-minute load average at {load_avg:.2f}")
            runs = {"1": [], "3": []}
            rss = {}
            for rnd in range(a.rounds):
                for n in ("1", "3"):
                    reps = [Replica(a.bin, f"m{rnd}-{n}-{i}", work, a.threads) for i in range(int(n))]
                    for r in reps:
                        r.wait_healthy()
                    ng = Nginx(work / f"m{rnd}-{n}", reps)
                    Load(ng.port, a.concurrency, a.concurrency).run()  # warm-up, not counted
                    ld = Load(ng.port, a.requests, a.concurrency)
                    cpu0, la0 = sum(r.cpu_s() for r in reps), os.getloadavg()[0]
                    took = ld.run()
                    cpu = sum(r.cpu_s() for r in reps) - cpu0
                    ok = ld.done == a.requests and not ld.errors
                    lat = sorted(ld.latencies)
                    runs[n].append({"seconds": took, "ok": ok, "p50": lat[len(lat) // 2],
                                    "p95": lat[int(len(lat) * 0.95) - 1], "cpu_s": cpu,
                                    "load": (la0 + os.getloadavg()[0]) / 2})
                    rss[n] = round(sum(r.rss_mb() for r in reps))
                    log(f"round {rnd + 1}, {n} replica(s): {a.requests} requests in {took:.1f} s = "
                        f"{a.requests / took:.2f} req/s, {a.requests * AUDIO_S / took:.1f} audio s/s, "
                        f"latency p50 {lat[len(lat) // 2]:.2f} s; servers' CPU {cpu / a.requests:.2f} s/request; "
                        f"RSS {rss[n]} MiB in all; load average ~{runs[n][-1]['load']:.1f}")
                    check(ok, f"measure round {rnd + 1}, {n} replica(s): every request answered")
                    for r in reps:
                        r.stop()
                    ng.stop()
            summary = {}
            for n, rs in runs.items():
                best = min(r["seconds"] for r in rs)
                summary[n] = {"seconds": [round(r["seconds"], 2) for r in rs],
                              "req_per_s": round(a.requests / best, 3),
                              "audio_s_per_s": round(a.requests * AUDIO_S / best, 2),
                              "p50_s": round(min(r["p50"] for r in rs), 2),
                              "p95_s": round(min(r["p95"] for r in rs), 2),
                              "cpu_s_per_request": round(min(r["cpu_s"] for r in rs) / a.requests, 3),
                              "load_average": [round(r["load"], 1) for r in rs],
                              "rss_mib_total": rss[n]}
            results["measure"] = summary
            results["load_average_after"] = round(os.getloadavg()[0], 2)
            log(f"1 replica: {summary['1']['req_per_s']} req/s; 3 replicas: {summary['3']['req_per_s']} req/s "
                f"(best of {a.rounds}; ratio {summary['3']['req_per_s'] / summary['1']['req_per_s']:.2f})")
    finally:
        for r in replicas:
            r.stop(signal.SIGKILL)
        if nginx:
            nginx.stop()
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"scale-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
