#!/usr/bin/env bash
# Do models written by `vkwhisper convert` load and run in the real
# CTranslate2? tiny.en is exported as a transformers checkpoint (vkw-model's
# export_hf example, float16 safetensors in two shards), converted by our
# binary to float16 and int8 CTranslate2 directories, and checked by
# scripts/ct2_compat.py: variable-for-variable against CTranslate2's own model
# writer, then transcribed with faster-whisper (golden jfk text).
#
# Python: a throw-away venv with faster-whisper (which brings the ctranslate2
# CPU wheel) is created unless VKW_CT2_PYTHON names a python that already has
# faster-whisper and ctranslate2 (e.g. .venv-bench/bin/python, no network).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

py=${VKW_CT2_PYTHON:-}
if [ -z "$py" ]; then
  if ! python3 -m venv "$work/venv" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for ensurepip.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-venv >/dev/null
    python3 -m venv "$work/venv"
  fi
  "$work/venv/bin/pip" install -q --disable-pip-version-check faster-whisper==1.2.1
  py="$work/venv/bin/python"
fi

# VKW_BIN names a vkwhisper binary already built (CI, after `cargo test
# --release`, which also builds the export_hf example next to it); otherwise
# both are built here.
if [ -n "${VKW_BIN:-}" ]; then
  bin=$VKW_BIN
  export_hf=${VKW_EXPORT_HF:-target/release/examples/export_hf}
else
  cargo build --release -q -p vkwhisper-cli
  cargo build --release -q -p vkw-model --example export_hf
  bin=target/release/vkwhisper
  export_hf=target/release/examples/export_hf
fi
for b in "$bin" "$export_hf"; do
  [ -x "$b" ] || { echo "check-ct2-compat: no binary at $b (build it, or unset VKW_BIN)" >&2; exit 1; }
done
model=$("$bin" models path tiny.en)
[ -f "$model/model.bin" ] || { echo "tiny.en is not installed: run scripts/fetch-models.sh tiny.en" >&2; exit 1; }

"$export_hf" "$model" "$work/hf" --dtype float16 --shards 2
"$bin" convert -q "$work/hf" "$work/float16" --quantization float16
"$bin" convert -q "$work/hf" "$work/int8" --quantization int8

"$py" scripts/ct2_compat.py tests/fixtures/golden/tiny.en.float32.beam5.json samples/jfk.wav \
  "$model" "$work/float16:float16" "$work/int8:int8"
