#!/usr/bin/env bash
# The Python package's tests (python/tests), as CI runs them:
#
#   1. maturin (from PyPI, in a throw-away venv) builds the vkwhisper wheel;
#   2. a throw-away test venv gets the wheel, pytest and NumPy, plus the
#      unmodified app whisper-ctranslate2 from PyPI for the drop-in test
#      (--no-deps: everything it needs except faster-whisper, ctranslate2
#      and PyAV, which vkwhisper replaces);
#   3. a second throw-away venv gets faster-whisper 1.2.1 (as
#      scripts/check-ct2-compat.sh installs it) for the parity table, and
#      the wheel next to it (the "never shadows faster-whisper" test);
#   4. pytest python/tests runs in the test venv.
#
# Models come from the fetch script's cache (scripts/fetch-models.sh tiny.en
# base vad); the tests never download. Locally a missing model or venv skips
# its tests with a message; with CI=true it fails them.
#
# VKW_FW_PYTHON=/path/to/python: use that interpreter (faster-whisper 1.2.1
# installed) instead of creating the second venv. Arguments go to pytest
# (e.g. scripts/python-tests.sh -k parity -x).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/vkw-python-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT
pip_q=(-q --disable-pip-version-check --no-input)
py=${PYTHON:-python3}
t0=$SECONDS
step() { echo "[python-tests +$((SECONDS - t0))s] $*"; }

mkvenv() {
  if ! "$py" -m venv "$1" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for ensurepip.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-venv >/dev/null
      rm -rf "$1"
      "$py" -m venv "$1"
    else
      echo "python-tests: '$py -m venv' failed: install python3-venv" >&2
      exit 1
    fi
  fi
}

step "maturin venv"
mkvenv "$work/maturin"
"$work/maturin/bin/pip" install "${pip_q[@]}" "maturin>=1.7,<2"

step "building the wheel (maturin build --release)"
(cd python && "$work/maturin/bin/maturin" build --release --quiet -o "$work/wheels")
wheel=$(ls "$work"/wheels/vkwhisper-*.whl)
step "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"

step "test venv: the wheel, pytest, numpy, whisper-ctranslate2 (no faster-whisper)"
mkvenv "$work/test"
"$work/test/bin/pip" install "${pip_q[@]}" "$wheel" pytest numpy
# The third-party app, unmodified, from PyPI; its dependencies but
# faster-whisper/ctranslate2/av (sounddevice is optional: live mode only).
"$work/test/bin/pip" install "${pip_q[@]}" --no-deps whisper-ctranslate2==0.5.8
"$work/test/bin/pip" install "${pip_q[@]}" tqdm
if "$work/test/bin/python" -c "import faster_whisper" >/dev/null 2>&1; then
  echo "python-tests: the test venv must not contain faster-whisper" >&2
  exit 1
fi

fw=${VKW_FW_PYTHON:-}
if [ -z "$fw" ]; then
  step "faster-whisper venv: faster-whisper==1.2.1 and the wheel"
  mkvenv "$work/fw"
  "$work/fw/bin/pip" install "${pip_q[@]}" faster-whisper==1.2.1
  "$work/fw/bin/pip" install "${pip_q[@]}" --no-deps "$wheel"
  fw="$work/fw/bin/python"
fi

step "pytest python/tests"
cd "$work"  # import vkwhisper from the installed wheel, not python/
status=0
VKW_FW_PYTHON="$fw" "$work/test/bin/python" -m pytest -p no:cacheprovider -rs \
  "$repo/python/tests" "$@" || status=$?
step "done (pytest exit status $status)"
exit $status
