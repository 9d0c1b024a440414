#!/usr/bin/env bash
# End-to-end checks of `vkwhisper serve` on 127.0.0.1, with the real clients:
#
#   1. the official `openai` Python package (PyPI, in a venv of its own,
#      tests/e2e/.venv): tests/e2e/test_openai_python.py (files) and
#      test_openai_realtime.py (its Realtime client, transcription mode, on
#      /v1/realtime) under pytest;
#   2. the official `openai` npm package: tests/e2e/client.test.mjs;
#   3. the web page at / in headless Chromium (Debian's `chromium`, driven by
#      playwright-core): tests/e2e/web.mjs (files) and live-web.mjs (live
#      dictation from a fake microphone playing jfk.wav).
#
# It builds the binary (cargo, a no-op when fresh), installs the clients
# (`npm ci` from tests/e2e/package-lock.json, pip from
# tests/e2e/requirements.txt) and chromium via apt when missing, starts
# `vkwhisper serve --model tiny.en --model base` on a free port (and a second
# server with --api-key for the page's key field), waits for /health, runs the
# three suites, always stops the servers, and exits non-zero if any failed.
#
# With CI=true a dependency that cannot be installed is a failure; otherwise
# that suite is SKIPPED, loudly, and the others still run.
#
# Environment: VKW_BIN (a built binary; skips cargo), VKW_SCREENSHOT (where the
# page's screenshots go; default tests/e2e/out/page.png, never committed),
# VKWHISPER_DEVICE (default cpu, for the server and the CLI references alike).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
E2E=$ROOT/tests/e2e
export NODEVICE_SELECT=${NODEVICE_SELECT:-1}
export VKWHISPER_DEVICE=${VKWHISPER_DEVICE:-cpu}
STRICT=0
[ "${CI:-}" = "true" ] && STRICT=1
START=$(date +%s)

log() { printf 'server-e2e [%s]: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vkw-server-e2e.XXXXXX")
PIDS=()
cleanup() {
  local t0
  t0=$(date +%s)
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && { log "server $pid did not stop within 10 s; killing it"; kill -KILL "$pid" 2>/dev/null; }
    fi
  done
  [ ${#PIDS[@]} -gt 0 ] && log "servers stopped in $(( $(date +%s) - t0 )) s"
  rm -rf "$WORK"
  log "cleanup done"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A RESULT
SKIPPED=()
# A dependency is missing: fail under CI, otherwise skip the suite loudly.
unavailable() { # suite, why
  if [ $STRICT = 1 ]; then
    RESULT[$1]="FAILED ($2)"
  else
    RESULT[$1]="SKIPPED ($2)"
    SKIPPED+=("$1")
    log "*** SKIPPED $1: $2 ***"
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else return 1
  fi
}
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ $APT_UPDATED = 0 ]; then
    as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || return 1
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@" >&2
}

# --- the binary and the models ---------------------------------------------
if [ -n "${VKW_BIN:-}" ]; then
  BIN=$VKW_BIN
else
  BIN=$ROOT/target/release/vkwhisper
  log "building vkwhisper (cargo build --release -p vkwhisper-cli)"
  cargo build --release -q -p vkwhisper-cli || die "cargo build failed"
fi
[ -x "$BIN" ] || die "no vkwhisper binary at $BIN"
command -v python3 >/dev/null 2>&1 || die "python3 is needed (apt-get install python3)"
bash scripts/fetch-models.sh tiny.en base vad || die "cannot fetch the tiny.en and base models and the Silero VAD"

# --- the Python client -------------------------------------------------------
# A venv of its own (tests/e2e/.venv, git-ignored), rebuilt whenever
# requirements.txt changes; delete it any time.
PY_OK=0
VENV=$E2E/.venv
REQ_SHA=$(sha256sum "$E2E/requirements.txt" | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.requirements-sha256" 2>/dev/null)" = "$REQ_SHA" ] \
   && "$VENV/bin/python" -c 'import openai, pytest, websockets' 2>/dev/null; then
  PY_OK=1
else
  rm -rf "$VENV"
fi
if [ $PY_OK = 1 ]; then
  :
elif ! python3 -m venv "$VENV" >/dev/null 2>&1; then
  rm -rf "$VENV"
  pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  log "python3 -m venv failed; installing python3-venv"
  apt_install "python${pyver}-venv" >/dev/null 2>&1 || apt_install python3-venv || true
  python3 -m venv "$VENV" >/dev/null 2>&1 || rm -rf "$VENV"
fi
if [ $PY_OK = 1 ]; then
  log "python: openai and pytest already in $VENV"
elif [ ! -x "$VENV/bin/python" ]; then
  unavailable python "cannot create a venv (python3-venv)"
elif ! "$VENV/bin/python" -m pip install -q --no-compile --disable-pip-version-check -r "$E2E/requirements.txt" >&2; then
  unavailable python "cannot install openai and pytest from PyPI"
else
  echo "$REQ_SHA" > "$VENV/.requirements-sha256"
  PY_OK=1
fi

# --- Node, the npm client and playwright-core ---------------------------------
NODE_OK=0
node_major() { node -e 'console.log(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "node/npm missing; installing nodejs and npm"
  apt_install nodejs npm || true
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  unavailable node "node and npm are not installed"
  unavailable web "node and npm are not installed"
elif [ "$(node_major)" -lt 20 ]; then
  unavailable node "node $(node --version) is too old (20 or newer)"
  unavailable web "node $(node --version) is too old (20 or newer)"
elif ! (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error >&2); then
  unavailable node "npm ci failed (openai, playwright-core)"
  unavailable web "npm ci failed (openai, playwright-core)"
else
  NODE_OK=1
fi

CHROMIUM=${VKW_CHROMIUM:-/usr/bin/chromium}
WEB_OK=0
if [ $NODE_OK = 1 ]; then
  if [ ! -x "$CHROMIUM" ]; then
    log "chromium missing; installing it with apt"
    apt_install chromium || true
  fi
  if [ -x "$CHROMIUM" ]; then WEB_OK=1; else unavailable web "chromium is not installed ($CHROMIUM)"; fi
fi

# --- the servers ---------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
start_server() { # log, args...
  local out=$1; shift
  "$BIN" serve --host 127.0.0.1 "$@" >"$out" 2>&1 &
  PIDS+=($!)
}
wait_healthy() { # pid, url, log
  local deadline=$(( $(date +%s) + 180 ))
  while :; do
    if python3 - "$2/health" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
EOF
    if ! kill -0 "$1" 2>/dev/null; then log "the server exited:"; cat "$3" >&2; return 1; fi
    if [ "$(date +%s)" -gt $deadline ]; then log "no /health 200 within 180 s:"; cat "$3" >&2; return 1; fi
    sleep 0.3
  done
}

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
start_server "$WORK/server.log" --port "$PORT" --model tiny.en --model base --workers 2 --queue 32
SERVER_PID=${PIDS[-1]}
KEY_PORT=$(free_port)
KEY_URL=http://127.0.0.1:$KEY_PORT
API_KEY=e2e-$RANDOM$RANDOM
start_server "$WORK/server-key.log" --port "$KEY_PORT" --model tiny.en --api-key "$API_KEY"
KEY_PID=${PIDS[-1]}
wait_healthy "$SERVER_PID" "$URL" "$WORK/server.log" || die "the server did not start"
wait_healthy "$KEY_PID" "$KEY_URL" "$WORK/server-key.log" || die "the server with --api-key did not start"
log "servers up at $URL and $KEY_URL (with --api-key) in $(( $(date +%s) - START )) s"

# --- the suites ------------------------------------------------------------------
export VKW_SERVER_URL=$URL VKW_BIN=$BIN VKW_REF_DIR=$WORK/ref
mkdir -p "$VKW_REF_DIR"
run_suite() { # name, command...
  local name=$1 t0; shift
  t0=$(date +%s)
  log "--- $name"
  if "$@"; then
    RESULT[$name]="ok ($(( $(date +%s) - t0 )) s)"
  else
    RESULT[$name]="FAILED"
  fi
}
if [ $PY_OK = 1 ]; then
  run_suite python "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$E2E/test_openai_python.py" "$E2E/test_openai_realtime.py"
fi
if [ $NODE_OK = 1 ]; then
  run_suite node node --test "$E2E/client.test.mjs"
fi
if [ $WEB_OK = 1 ]; then
  SHOT=${VKW_SCREENSHOT:-$E2E/out/page.png}
  mkdir -p "$(dirname "$SHOT")"
  run_suite web env VKW_SCREENSHOT="$SHOT" VKW_CHROMIUM="$CHROMIUM" \
    VKW_KEYED_URL="$KEY_URL" VKW_KEYED_API_KEY="$API_KEY" node "$E2E/web.mjs"
  case "${RESULT[web]}" in ok*) log "screenshots: $SHOT and its -dark and -running variants" ;; esac
  run_suite live-web env VKW_SCREENSHOT="$SHOT" VKW_CHROMIUM="$CHROMIUM" node "$E2E/live-web.mjs"
fi

# The servers must still be up and answering after all of that.
for pid in "$SERVER_PID" "$KEY_PID"; do
  kill -0 "$pid" 2>/dev/null || { log "a server died during the tests:"; cat "$WORK"/server*.log >&2; RESULT[servers]="FAILED"; }
done

# --- summary -----------------------------------------------------------------------
status=0
for s in python node web live-web servers; do
  [ -n "${RESULT[$s]:-}" ] || continue
  log "$s: ${RESULT[$s]}"
  case "${RESULT[$s]}" in FAILED*) status=1 ;; esac
done
if [ ${#SKIPPED[@]} -gt 0 ]; then
  log "*** SKIPPED: ${SKIPPED[*]} (a dependency could not be installed; with CI=true this fails) ***"
fi
log "done in $(( $(date +%s) - START )) s"
exit $status
