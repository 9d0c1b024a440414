#!/usr/bin/env bash
# GPU device check (issues 13 and 14): adapter dump, correctness of the GPU
# against the CPU backend, per-op GB/s and GFLOP/s (the many-row kernels:
# SIMT tiles, cooperative matrices where the adapter has them, small-M
# GEMM, flash attention), decoder ms per step and encoder ms per window on
# synthetic models of Whisper's real shapes, batched mode (encoder ms per
# window at batch 8, decoder ms per 40-row step), the encoder's counted
# memory traffic per window (flash attention vs the score matrices), a
# forced-length real-time factor, and the anchors that were carried in.
# Results go under $OUT as they are made, so a timeout still returns what
# was measured.
#
# Two phases, because the GPU machine has no Rust toolchain:
#
#   scripts/device-check.sh --prepare     # here: build, strip, collect into dist/device-check
#   scripts/device-check.sh               # on the GPU machine (carry dist/device-check)
#   scripts/device-check.sh --dry         # here, on lavapipe: tiny shapes, one repetition
#   scripts/device-check.sh --dry --prebuilt   # the same with the binaries already in
#                                         # target/release (CI, right after `cargo test --release`,
#                                         # which builds them; a separate build would compile
#                                         # the workspace a second time for another feature set)
#
# The run needs dist/device-check/{vkwhisper,devcheck,tok/} (about 35 MB:
# two stripped release binaries and tiny.en's tokenizer files, which the
# synthetic models copy). Models are written on the device by the hidden
# `vkwhisper synth-model`, never carried. Whole run: under 5 minutes
# without anchors.
#
# Anchors (nothing can be fetched on the device machine; each runs only if
# present, and says where its number came from):
#   dist/device-check/anchors/pylib/   a directory for PYTHONPATH holding
#       CTranslate2's CUDA wheel unpacked (and its CUDA libraries), used by
#       scripts/anchor-ct2.py on the same synthetic models (float16: encoder
#       ms per window, beam-5 generate ms per window);
#   dist/device-check/anchors/whisper-bench  whisper.cpp's `whisper-bench`
#       built with GGML_VULKAN, with dist/device-check/anchors/ggml-*.bin
#       (its own model files: whisper.cpp cannot read CTranslate2 models);
#   python3 with torch (CUDA) on the device: PyTorch's fp16 matmul at the
#       encoder's shapes, the ceiling when neither of the above fits.
# A 64 MiB carry holds the binaries and tokenizer (~35 MB) but not a CUDA
# wheel with its libraries, so on this project's lent machines the anchors
# are skipped unless the device image already has them.
set -uo pipefail
cd "$(dirname "$0")/.."
DIST=${DIST:-dist/device-check}
MODE=run
PREBUILT=0
case "${1:-}" in
  --prepare) MODE=prepare ;;
  --dry) MODE=dry ;;
  "") ;;
  *) echo "usage: $0 [--prepare|--dry [--prebuilt]]" >&2; exit 2 ;;
esac
case "${2:-}" in
  --prebuilt) [ "$MODE" = dry ] && PREBUILT=1 || { echo "$0: --prebuilt goes with --dry" >&2; exit 2; } ;;
  "") ;;
  *) echo "usage: $0 [--prepare|--dry [--prebuilt]]" >&2; exit 2 ;;
esac

# The dry run rebuilds (incremental) so it never checks stale binaries,
# unless told that the caller just built them (--prebuilt).
if [ "$MODE" = prepare ] || [ "$MODE" = dry ]; then
  set -e
  if [ "$PREBUILT" = 1 ]; then
    for b in target/release/vkwhisper target/release/examples/devcheck; do
      [ -x "$b" ] || { echo "device-check: --prebuilt but $b is missing: run cargo test --workspace --release first" >&2; exit 1; }
    done
  else
    cargo build --release -p vkwhisper-cli
    cargo build --release -p vkw-backend --example devcheck
  fi
  mkdir -p "$DIST/tok"
  strip -o "$DIST/vkwhisper" target/release/vkwhisper
  strip -o "$DIST/devcheck" target/release/examples/devcheck
  TOK=${TOK:-$HOME/.cache/vkwhisper/models/tiny.en}
  cp "$TOK"/config.json "$TOK"/tokenizer.json "$TOK"/vocabulary.* "$DIST/tok/"
  du -sh "$DIST"
  set +e
  [ "$MODE" = prepare ] && exit 0
fi

OUT=${OUT:-device-check-out}
mkdir -p "$OUT"
export NODEVICE_SELECT=1
BIN="$DIST/vkwhisper"
DC="$DIST/devcheck"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail=0
# step NAME TIMEOUT CMD...: run CMD with a time limit (times $SLOW on
# software Vulkan), output to $OUT/NAME.txt.
SLOW=1
[ "$MODE" = dry ] && SLOW=4
step() {
  local name=$1 limit=$(($2 * SLOW))
  shift 2
  echo "== $name" | tee -a "$OUT/summary.txt"
  local t0=$SECONDS
  if timeout "$limit" "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err"; then
    tee -a "$OUT/summary.txt" < "$OUT/$name.txt"
    echo "   ($name: $((SECONDS - t0)) s)" | tee -a "$OUT/summary.txt"
  else
    echo "FAILED ($name, exit $?): see $OUT/$name.err" | tee -a "$OUT/summary.txt"
    tail -3 "$OUT/$name.err" | tee -a "$OUT/summary.txt"
    fail=1
  fi
}

if [ "$MODE" = dry ]; then
  SHAPES="tiny"; REPS=1; STEPS=4; OPS_SMALL=small; CHECK_SHAPES="tiny"; E2E_TOKENS=8
  BATCH=2; BSTEPS=2
else
  SHAPES="tiny base small large-v3"; REPS=3; STEPS=32; OPS_SMALL=""; CHECK_SHAPES="tiny base"; E2E_TOKENS=64
  BATCH=8; BSTEPS=16
fi
ANCHORS="$DIST/anchors"

step devices 60 "$BIN" devices
command -v vulkaninfo > /dev/null && vulkaninfo --summary > "$OUT/vulkaninfo.txt" 2>&1
command -v nvidia-smi > /dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
step ops 120 "$DC" ops "$REPS" $OPS_SMALL
for shape in $SHAPES; do
  for dtype in float16 int8; do
    [ "$MODE" = dry ] && [ "$dtype" = int8 ] && continue
    m="$WORK/$shape-$dtype"
    step "synth-$shape-$dtype" 120 "$BIN" synth-model "$m" --shape "$shape" --dtype "$dtype" --tokenizer-from "$DIST/tok"
    ct=float16; [ "$dtype" = int8 ] && ct=int8_float16
    cpu=""
    case " $CHECK_SHAPES " in *" $shape "*) [ "$dtype" = float16 ] && cpu=cpu ;; esac
    # float32 against the CPU backend (teacher-forced logits), then speed.
    if [ -n "$cpu" ]; then
      step "check-$shape" 180 "$DC" model "$m" float32 5 "$STEPS" 1 cpu
    fi
    step "model-$shape-$ct" 180 "$DC" model "$m" "$ct" 5 "$STEPS" "$REPS"
    if [ "$dtype" = float16 ]; then
      # Encoder traffic per window (recorded, not run): flash attention,
      # then the score matrices it replaces.
      step "traffic-$shape" 120 "$DC" traffic "$m" float32 float16
      VKW_ENCODER_ATTN=scores step "traffic-$shape-scores" 120 "$DC" traffic "$m" float32
      step "batched-$shape-$ct" 180 "$DC" batched "$m" "$ct" "$BATCH" 5 "$BSTEPS"
      if [ -d "$ANCHORS/pylib" ] && command -v python3 > /dev/null; then
        PYTHONPATH="$ANCHORS/pylib" step "anchor-ct2-$shape" 240 python3 scripts/anchor-ct2.py "$m" "$REPS"
      fi
    fi
    rm -rf "$m"
  done
done
# End to end through the CLI on the bundled sample (synthetic weights: the
# text is meaningless, the timings are not).
m="$WORK/e2e"
if "$BIN" synth-model "$m" --shape tiny --tokenizer-from "$DIST/tok" 2> /dev/null; then
  step e2e-tiny 120 "$BIN" transcribe --device vulkan --model "$m" --beam-size 5 --temperature 0 \
    --max-new-tokens "$E2E_TOKENS" --timings samples/jfk.wav
  grep -h "vkwhisper-" "$OUT/e2e-tiny.err" | tee -a "$OUT/summary.txt"
fi
# whisper.cpp's Vulkan backend on its own model files, if carried.
if [ -x "$ANCHORS/whisper-bench" ]; then
  for g in "$ANCHORS"/ggml-*.bin; do
    [ -f "$g" ] || continue
    step "anchor-whispercpp-$(basename "$g" .bin)" 240 "$ANCHORS/whisper-bench" -m "$g" -t 4
  done
else
  echo "anchor whisper.cpp: not carried ($ANCHORS/whisper-bench)" | tee -a "$OUT/summary.txt"
fi
# PyTorch's fp16 matmul at the encoder's shapes: the ceiling.
if command -v python3 > /dev/null && python3 -c "import torch; assert torch.cuda.is_available()" 2> /dev/null; then
  step anchor-torch-matmul 120 python3 scripts/anchor-ct2.py --torch-matmul
else
  echo "anchor PyTorch: no python3 with CUDA torch here" | tee -a "$OUT/summary.txt"
fi
[ -d "$ANCHORS/pylib" ] || echo "anchor CTranslate2: not carried ($ANCHORS/pylib)" | tee -a "$OUT/summary.txt"
if grep -q "argmax_agree=false" "$OUT"/check-*.txt 2> /dev/null; then
  echo "FAILED: GPU and CPU disagree (see $OUT/check-*.txt)" | tee -a "$OUT/summary.txt"
  fail=1
fi
echo "results: $OUT/summary.txt" | tee -a "$OUT/summary.txt"
exit $fail
