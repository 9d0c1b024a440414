#!/usr/bin/env bash
# GPU benchmark: vkwhisper on a Vulkan device vs its own CPU backend, on the
# shared sets (tests/fixtures/data: ljspeech, longform), same model, beam
# size and files; reports RTF (transcribe time / audio seconds) per device
# through scripts/bench.py. Run on a machine with a GPU and its driver:
#
#   scripts/bench-gpu.sh                    # tiny.en, vulkan (auto's GPU) vs cpu
#   MODEL=~/.cache/vkwhisper/models/base DEVICE=vulkan:1 scripts/bench-gpu.sh --runs 3
#
# Extra arguments go to scripts/bench.py (e.g. --sets ljspeech --beam-size 1).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-$HOME/.cache/vkwhisper/models/tiny.en}
DEVICE=${DEVICE:-vulkan}
THREADS=${THREADS:-$(nproc)}
OUT=${OUT:-bench-gpu}
mkdir -p "$OUT"
cargo build --release -p vkwhisper-cli
target/release/vkwhisper devices | tee "$OUT/devices.txt"
for dev in "$DEVICE" cpu; do
  echo "== --device $dev"
  python3 scripts/bench.py --engines vk --vk-device "$dev" --model "$MODEL" \
    --threads "$THREADS" --compute-type float32 --work-dir "$OUT/work-${dev//:/_}" \
    --json-out "$OUT/${dev//:/_}.json" "$@"
done
echo "results: $OUT/*.json (rtf per set and device); devices: $OUT/devices.txt"
