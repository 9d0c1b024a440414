#!/usr/bin/env bash
# The container image, end to end, on this machine (no GPU needed: Mesa's
# lavapipe is in the image and the server runs on the CPU):
#
#   1. a Docker daemon: the running one, or (as root) dockerd started here,
#      installing Debian's docker.io first when it is missing; when none can
#      be had, the whole test is SKIPPED, loudly, and exits 0;
#   2. the base image debian:bookworm-slim: present, or made locally by
#      scripts/docker-base.sh (debootstrap + docker import; VKW_DOCKER_PULL=1
#      pulls it from the registry instead);
#   3. the image from the host's release binary (cargo build --release
#      -p vkwhisper-cli, stripped of debug info into target/docker/vkwhisper):
#      `docker build --target runtime-prebuilt`, so nothing is compiled twice;
#   4. a container with the tiny.en model from the host's cache (fetched by
#      scripts/fetch-models.sh) mounted read-only as the models volume, port
#      8000 published on 127.0.0.1, and checks: /health turns 200 and Docker's
#      HEALTHCHECK turns healthy; the server runs as the non-root user;
#      `vkwhisper devices` inside lists lavapipe (llvmpipe); the official
#      `openai` Python client transcribes samples/jfk.wav through the port;
#      SIGTERM during a long request (66 s of audio) closes the listener, lets
#      that request finish with its full answer, then the process exits 0;
#   5. deploy/kubernetes validated offline (scripts/k8s-validate.py) and
#      compose.yaml checked.
#
# The Python packages (tests/docker/requirements.txt) go into a venv of its
# own, target/docker-test/venv. Prints "docker-test: N passed, M failed".
# Environment: VKW_BIN (a built binary instead of cargo's), VKW_IMAGE (tag,
# default vkwhisper:test), VKW_KEEP_DOCKERD=1 (leave a dockerd started here
# running), VKW_DOCKER_PULL=1.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
export NODEVICE_SELECT=${NODEVICE_SELECT:-1}
IMAGE=${VKW_IMAGE:-vkwhisper:test}
OUT=$ROOT/target/docker-test
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vkw-docker-test.XXXXXX")

log() { printf 'docker-test [%s]: %s\n' "$(date +%T)" "$*" >&2; }
skip() {
  log "*** SKIPPED docker-test: $* ***"
  log "*** (the image, the container checks and the Kubernetes validation did not run) ***"
  exit 0
}
die() { log "FAILED: $*"; echo "docker-test: $PASSED passed, $((FAILED + 1)) failed"; exit 1; }

PASSED=0 FAILED=0
check() { # ok(0/1 exit status of the test) description
  if [ "$1" = 0 ]; then PASSED=$((PASSED + 1)); log "ok: $2"; else FAILED=$((FAILED + 1)); log "FAIL: $2"; fi
}

CTR=vkw-docker-test-$$
DOCKERD_PID=
cleanup() {
  docker rm -f "$CTR" >/dev/null 2>&1 || true
  if [ -n "$DOCKERD_PID" ] && [ "${VKW_KEEP_DOCKERD:-0}" != 1 ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    log "stopped the dockerd started here"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@" >/dev/null
}

# --- 1. a Docker daemon ---------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || skip "no Docker daemon answers and starting one needs root"
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io (Debian's Docker engine)"
    apt_install docker.io || skip "cannot install docker.io"
  fi
  command -v docker >/dev/null 2>&1 || skip "no docker client"
  log "starting dockerd (log: $OUT/dockerd.log)"
  dockerd >"$OUT/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    tail -15 "$OUT/dockerd.log" >&2
    DOCKERD_PID=
    skip "dockerd does not start here (its log is above)"
  fi
fi
log "Docker $(docker version -f '{{.Server.Version}}' 2>/dev/null)"

# --- 2. the base image ----------------------------------------------------------
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  if [ "${VKW_DOCKER_PULL:-0}" = 1 ]; then
    docker pull -q debian:bookworm-slim >&2 || die "docker pull debian:bookworm-slim failed"
  else
    if ! command -v debootstrap >/dev/null 2>&1; then
      log "installing debootstrap"
      apt_install debootstrap || die "cannot install debootstrap"
    fi
    bash scripts/docker-base.sh || die "scripts/docker-base.sh failed"
  fi
fi

# --- 3. the image from the host's binary ------------------------------------------
if [ -n "${VKW_BIN:-}" ]; then
  BIN=$VKW_BIN
else
  BIN=$ROOT/target/release/vkwhisper
  log "building vkwhisper (cargo build --release -p vkwhisper-cli; a no-op when fresh)"
  cargo build --release -q -p vkwhisper-cli || die "cargo build failed"
fi
[ -x "$BIN" ] || die "no vkwhisper binary at $BIN"
mkdir -p target/docker
objcopy --strip-debug "$BIN" target/docker/vkwhisper 2>/dev/null || cp "$BIN" target/docker/vkwhisper
t0=$(date +%s)
log "docker build --target runtime-prebuilt -t $IMAGE (log: $OUT/build.log)"
if ! docker build --target runtime-prebuilt --build-arg PREBUILT_BIN=target/docker/vkwhisper \
     --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
     -t "$IMAGE" . >"$OUT/build.log" 2>&1; then
  tail -30 "$OUT/build.log" >&2
  die "docker build failed"
fi
SIZE=$(docker image inspect -f '{{.Size}}' "$IMAGE")
log "image $IMAGE: $((SIZE / 1000000)) MB, built in $(( $(date +%s) - t0 )) s"
[ "$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}}' "$IMAGE")" = vkwhisper ]
check $? "the image carries its OCI labels"

# --- the Python venv and the model ------------------------------------------------
VENV=$OUT/venv
REQ=$ROOT/tests/docker/requirements.txt
REQ_SHA=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements-sha256" 2>/dev/null)" != "$REQ_SHA" ] \
   || ! "$VENV/bin/python" -c 'import openai, kubernetes_validate' 2>/dev/null; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python${pyver}-venv" || apt_install python3-venv || true
    rm -rf "$VENV"; python3 -m venv "$VENV" >/dev/null 2>&1 || die "cannot create a venv (python3-venv)"
  fi
  log "installing $(grep -v '^#' "$REQ" | xargs) into $VENV"
  "$VENV/bin/python" -m pip install -q --no-compile --disable-pip-version-check -r "$REQ" >&2 \
    || die "pip install -r $REQ failed"
  echo "$REQ_SHA" >"$VENV/.requirements-sha256"
fi
PY=$VENV/bin/python

bash scripts/fetch-models.sh tiny.en || die "cannot fetch the tiny.en model"
if [ -n "${VKWHISPER_CACHE:-}" ]; then CACHE=$VKWHISPER_CACHE
elif [[ "${XDG_CACHE_HOME:-}" == /* ]]; then CACHE=$XDG_CACHE_HOME/vkwhisper
else CACHE=$HOME/.cache/vkwhisper; fi
[ -f "$CACHE/models/tiny.en/model.bin" ] || die "no tiny.en in $CACHE"

# --- 4. the container -------------------------------------------------------------
log "docker run $IMAGE --model tiny.en (models: $CACHE, read-only)"
docker run -d --name "$CTR" -p 127.0.0.1::8000 \
  -v "$CACHE:/var/cache/vkwhisper:ro" \
  --health-interval=2s --health-timeout=5s --health-start-period=120s \
  "$IMAGE" --model tiny.en --workers 2 --shutdown-grace 300 >/dev/null || die "docker run failed"
HOSTPORT=$(docker port "$CTR" 8000/tcp | head -1)
URL=http://$HOSTPORT
log "published at $URL"

http_status() { # url → status code, 000 on no answer
  "$PY" - "$1" <<'EOF' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=3).status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
}

code=000
deadline=$(( $(date +%s) + 180 ))
while [ "$(date +%s)" -lt $deadline ]; do
  code=$(http_status "$URL/health")
  [ "$code" = 200 ] && break
  [ "$(docker inspect -f '{{.State.Running}}' "$CTR")" = true ] || break
  sleep 0.5
done
[ "$code" = 200 ]
check $? "/health through the published port turns 200 (last: $code)"
if [ "$code" != 200 ]; then docker logs "$CTR" 2>&1 | tail -20 >&2; die "the server did not come up"; fi

health=starting
for _ in $(seq 60); do
  health=$(docker inspect -f '{{.State.Health.Status}}' "$CTR")
  [ "$health" = healthy ] && break
  sleep 0.5
done
[ "$health" = healthy ]
check $? "Docker's HEALTHCHECK (bash /dev/tcp → /health) reports healthy (got $health)"

uids=$(docker exec "$CTR" awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/1/status)
groups=$(docker exec "$CTR" awk '/^Groups:/ {$1 = ""; print}' /proc/1/status)
[ "$uids" = "10001 10001 10001 10001" ] && [ "$(docker exec "$CTR" cat /proc/1/comm)" = vkwhisper ]
check $? "the server (pid 1, vkwhisper) runs as uid 10001, not root (Uid: $uids; groups:$groups)"
[[ " $groups " == *" 44 "* ]]
check $? "its groups include video (44)"

devices=$(docker exec "$CTR" vkwhisper devices 2>&1)
printf '%s\n' "$devices" | sed 's/^/    /' >&2
grep -q 'llvmpipe' <<<"$devices"
check $? "\`vkwhisper devices\` inside lists lavapipe (llvmpipe)"

"$PY" - "$URL" "$ROOT/samples/jfk.wav" <<'EOF'
import sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="none", max_retries=0, timeout=300)
ids = [m.id for m in client.models.list().data]
assert "tiny.en" in ids and "whisper-1" in ids, ids
with open(sys.argv[2], "rb") as f:
    t = client.audio.transcriptions.create(model="whisper-1", file=f)
print(f"    openai: {t.text!r}", file=sys.stderr)
assert "ask not what your country can do for you" in t.text, t.text
EOF
check $? "the official openai Python client transcribes samples/jfk.wav through the published port"

# SIGTERM during a long request.
"$PY" - "$ROOT/samples/jfk.wav" "$WORK/long.wav" 6 <<'EOF'
import sys, wave
with wave.open(sys.argv[1], "rb") as r:
    params, frames = r.getparams(), r.readframes(r.getnframes())
with wave.open(sys.argv[2], "wb") as w:
    w.setparams(params)
    w.writeframes(frames * int(sys.argv[3]))
EOF
"$PY" - "$URL" "$WORK/long.wav" "$WORK/long.result" <<'EOF' &
import json, sys, time
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="none", max_retries=0, timeout=600)
try:
    with open(sys.argv[2], "rb") as f:
        t = client.audio.transcriptions.create(model="whisper-1", file=f)
    r = {"ok": True, "text": t.text, "seconds": t.usage.seconds, "t": time.time()}
except Exception as e:
    r = {"ok": False, "error": repr(e), "t": time.time()}
open(sys.argv[3], "w").write(json.dumps(r))
EOF
LONG_PID=$!
in_flight=0
for _ in $(seq 240); do
  in_flight=$("$PY" - "$URL/metrics" <<'EOF' 2>/dev/null || echo 0
import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1], timeout=3).read().decode().splitlines():
    if line.startswith("vkwhisper_in_flight "):
        print(int(float(line.split()[1])))
EOF
)
  [ "${in_flight:-0}" -ge 1 ] && break
  sleep 0.25
done
[ "${in_flight:-0}" -ge 1 ] || die "the long request never showed in vkwhisper_in_flight"
sleep 1
T_TERM=$(date +%s.%N)
docker kill -s TERM "$CTR" >/dev/null
sleep 1
# The listener is closed while the request runs: a new connection inside the
# container is refused (from the host, docker-proxy would still accept).
if [ ! -s "$WORK/long.result" ] && [ "$(docker inspect -f '{{.State.Running}}' "$CTR")" = true ]; then
  ! docker exec "$CTR" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000' 2>/dev/null
  check $? "after SIGTERM, with the long request still running, new connections are refused"
else
  log "warning: the long request finished within 1 s of SIGTERM; the closed listener was not checked"
fi
wait "$LONG_PID"
"$PY" - "$WORK/long.result" "$T_TERM" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"], r
took = r["t"] - float(sys.argv[2])
print(f"    long request: {r['seconds']} s of audio, answered {took:.1f} s after SIGTERM, "
      f"{r['text'].count('ask not what your country')} × the sentence", file=sys.stderr)
assert abs(r["seconds"] - 66.0) < 0.1 and r["text"].count("ask not what your country") >= 4, r
EOF
check $? "the request in flight at SIGTERM finishes with its whole transcript (66 s of audio)"
exit_code=$(timeout 150 docker wait "$CTR" 2>/dev/null || echo none)
[ "$exit_code" = 0 ]
check $? "then the server exits, status 0 (got $exit_code)"
docker logs "$CTR" 2>&1 | grep -q 'shutting down'
check $? "its log says it shut down gracefully"
docker logs "$CTR" 2>&1 | tail -4 | sed 's/^/    /' >&2

# --- 5. Kubernetes manifests and compose.yaml -------------------------------------
"$PY" scripts/k8s-validate.py --out "$OUT/k8s" >"$WORK/k8s.out"
rc=$?
cat "$WORK/k8s.out" >&2
check $rc "deploy/kubernetes: $(tail -1 "$WORK/k8s.out" | sed 's/^k8s-validate: //') (schemas offline, rendered in $OUT/k8s)"

if docker compose version >/dev/null 2>&1; then
  docker compose -f compose.yaml config -q
  check $? "compose.yaml: docker compose config"
elif command -v docker-compose >/dev/null 2>&1; then
  docker-compose -f compose.yaml config -q
  check $? "compose.yaml: docker-compose config"
else
  "$PY" - <<'EOF'
import yaml
c = yaml.safe_load(open("compose.yaml"))
s = c["services"]["vkwhisper"]
assert s["build"]["context"] == "." and "8000" in str(s["ports"]), s
assert any(str(v).endswith(":/var/cache/vkwhisper") for v in s["volumes"]), s["volumes"]
assert "vkwhisper-models" in c["volumes"], c
EOF
  check $? "compose.yaml parses and has the service, port and models volume (no docker compose here to run config)"
fi

log "image $IMAGE: $((SIZE / 1000000)) MB; done in $(( $(date +%s) - START )) s"
echo "docker-test: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
