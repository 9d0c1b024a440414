#!/usr/bin/env bash
# Thin wrapper around scripts/bench.py (faster-whisper vs vkwhisper benchmark).
# Usage: scripts/bench.sh [bench.py options]   e.g. scripts/bench.sh --engines fw --compute-type float32,int8
# PYTHON overrides the interpreter (needs Python >= 3.11; stdlib only).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/bench.py" "$@"
