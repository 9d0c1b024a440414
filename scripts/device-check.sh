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
#   scripts/device-check.sh --prepare     # here: build, strip, collect into dist/device-check,
#                                         # packed as dist/carry/device-check.tar.xz
#   scripts/device-check.sh --prepare-anchors  # here: CTranslate2's CUDA wheel, stripped and
#                                         # packed as dist/carry/anchor-ct2.tar.xz (pip download)
#   scripts/device-check.sh               # on the GPU machine (carry dist/carry)
#   scripts/device-check.sh --dry         # here, on lavapipe: tiny shapes, one repetition
#   scripts/device-check.sh --dry --prebuilt   # the same with the binaries already in
#                                         # target/release (CI, right after `cargo test --release`,
#                                         # which builds them; a separate build would compile
#                                         # the workspace a second time for another feature set)
#
# The run needs dist/device-check/{vkwhisper,devcheck,tok/} (about 33 MB:
# two stripped release binaries and tiny.en's tokenizer files, which the
# synthetic models copy), and runs dist/device-check/backend-tests (the
# backend's unit tests, stripped) when present. The working tree that travels with a device call
# is itself about 36 MB of the 64 MiB limit, so what is carried is the xz
# archive (about 8 MB), unpacked on the device. Models are written on the device by the hidden
# `vkwhisper synth-model`, never carried. Whole run: under 5 minutes
# without anchors on the H200 before the candidate steps, which add about 1–2.
#
# Anchors (nothing can be fetched on the device machine; each runs only if
# present, and says where its number came from):
#   dist/device-check/anchors/pylib/   a directory for PYTHONPATH holding
#       CTranslate2's CUDA wheel unpacked (and its CUDA libraries), used by
#       scripts/anchor-ct2.py on the same synthetic models (float16: encoder
#       ms per window, beam-5 generate ms per window);
#   dist/device-check/anchors/whisper-bench  whisper.cpp's `whisper-bench`
#       built with GGML_VULKAN (scripts/build-whispercpp-anchor.sh packs it
#       as dist/carry/anchor-whispercpp.tar.xz, about 6.7 MB), run on the same
#       synthetic models written as whisper.cpp files on the device by the
#       hidden `vkwhisper export-ggml` (whisper.cpp cannot read CTranslate2
#       models; a large-v3 file is 3 GB, so it is never carried);
#   python3 with torch (CUDA) on the device: PyTorch's fp16 matmul at the
#       encoder's shapes, the ceiling when neither of the above fits.
# CTranslate2's wheel (4.8.5, 43 MB) fits when stripped of debug symbols
# and its converters and packed with xz (about 14 MB): --prepare-anchors.
# It loads cuBLAS 12 (libcublas.so.12) at run time and brings no CUDA
# libraries; where the device has only cuBLAS 13 (the lent H200 image's
# PyTorch wheels), the run links libcublas.so.12 to cuBLAS 13 (the v2 API
# keeps its names), and the anchor's source line says so.
set -uo pipefail
cd "$(dirname "$0")/.."
DIST=${DIST:-dist/device-check}
MODE=run
PREBUILT=0
case "${1:-}" in
  --prepare) MODE=prepare ;;
  --prepare-anchors) MODE=anchors ;;
  --dry) MODE=dry ;;
  "") ;;
  *) echo "usage: $0 [--prepare|--prepare-anchors|--dry [--prebuilt]]" >&2; exit 2 ;;
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
  # The backend's unit tests: every GPU kernel against its CPU reference,
  # on the real GPU (the cooperative-matrix kernel is only tested there:
  # lavapipe has none).
  # --prebuilt: the one `cargo test --workspace --release` built (a
  # `cargo test -p` would resolve other features and compile again).
  if [ "$PREBUILT" = 1 ]; then
    T=$(find target/release/deps -maxdepth 1 -type f -executable -name 'vkw_backend-*' -printf '%T@ %p\n' |
      sort -rn | head -1 | cut -d' ' -f2)
  else
  T=$(cargo test --release -p vkw-backend --lib --no-run --message-format=json 2> /dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])' | tail -1)
  fi
  [ -n "$T" ] && strip -o "$DIST/backend-tests" "$T"
  TOK=${TOK:-$HOME/.cache/vkwhisper/models/tiny.en}
  cp "$TOK"/config.json "$TOK"/tokenizer.json "$TOK"/vocabulary.* "$DIST/tok/"
  du -sh "$DIST"
  if [ "$MODE" = prepare ]; then
    mkdir -p dist/carry/gl
    # xz -9e: 8 MB instead of -6's 11.6, which lets both anchors travel in
    # the same call (64 MiB with the 36 MB working tree).
    tar -C "$(dirname "$DIST")" -cf - "$(basename "$DIST")" | xz -9e -T2 > dist/carry/device-check.tar.xz
    # The Vulkan loader and GLVND, for GPU images without them (docs/GPU.md).
    (cd dist/carry/gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2) ||
      echo "device-check: could not download the Vulkan loader packages into dist/carry/gl" >&2
    du -cb dist/carry/*.xz dist/carry/gl
    exit 0
  fi
  set +e
fi
if [ "$MODE" = anchors ]; then
  set -e
  A=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 -d "$A" ctranslate2==4.8.5
  (cd "$A" && mkdir x && cd x && unzip -q ../ctranslate2-*.whl &&
    strip --strip-debug ctranslate2/_ext*.so && strip --strip-unneeded ctranslate2.libs/libctranslate2* &&
    rm -rf ctranslate2/converters)
  mkdir -p dist/carry
  tar -C "$A/x" -cf - ctranslate2 ctranslate2.libs | xz -9 -T2 > dist/carry/anchor-ct2.tar.xz
  rm -rf "$A"
  ls -l dist/carry
  exit 0
fi
# On the device: unpack what was carried (Python's lzma where xz is absent).
unxz() {
  if command -v xz > /dev/null; then xz -dc "$1"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi
}
if [ "$MODE" = run ] && [ ! -x "$DIST/vkwhisper" ] && [ -f dist/carry/device-check.tar.xz ]; then
  mkdir -p "$(dirname "$DIST")"
  unxz dist/carry/device-check.tar.xz | tar -C "$(dirname "$DIST")" -xf -
fi
if [ "$MODE" = run ] && [ -f dist/carry/anchor-whispercpp.tar.xz ] && [ ! -x "$DIST/anchors/whisper-bench" ]; then
  mkdir -p "$DIST/anchors"
  unxz dist/carry/anchor-whispercpp.tar.xz | tar -C "$DIST/anchors" -xf -
fi
CUBLAS_NOTE=""
if [ "$MODE" = run ] && [ -f dist/carry/anchor-ct2.tar.xz ] && [ ! -d "$DIST/anchors/pylib" ]; then
  mkdir -p "$DIST/anchors/pylib"
  unxz dist/carry/anchor-ct2.tar.xz | tar -C "$DIST/anchors/pylib" -xf -
  # cuBLAS 12 for the wheel, else cuBLAS 13 behind a .12 name.
  if ! ldconfig -p 2> /dev/null | grep -q 'libcublas\.so\.12'; then
    libdirs=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2> /dev/null)
    # Every cuBLAS library there, listed once.
    libs=$(find $libdirs /usr/local/cuda*/lib64 -name 'libcublas*.so.1[23]*' 2> /dev/null)
    first() { printf '%s\n' "$libs" | grep -F "/$1" | head -1; }
    c12=$(first 'libcublas.so.12')
    if [ -n "$c12" ]; then
      export LD_LIBRARY_PATH="$(dirname "$c12")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    else
      c13=$(first 'libcublas.so.13')
      lt13=$(first 'libcublasLt.so.13')
      if [ -n "$c13" ]; then
        mkdir -p "$DIST/anchors/cublas"
        ln -sf "$c13" "$DIST/anchors/cublas/libcublas.so.12"
        [ -n "$lt13" ] && ln -sf "$lt13" "$DIST/anchors/cublas/libcublasLt.so.12"
        export LD_LIBRARY_PATH="$PWD/$DIST/anchors/cublas:$(dirname "$c13")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        CUBLAS_NOTE="cuBLAS 13 ($c13) linked as libcublas.so.12"
      fi
    fi
  fi
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
# software Vulkan), output to $OUT/NAME.txt; returns 1 if CMD failed.
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
    return 1
  fi
}

if [ "$MODE" = dry ]; then
  SHAPES="tiny"; REPS=1; STEPS=4; OPS_SMALL=small; CHECK_SHAPES="tiny"; E2E_TOKENS=8; PROFILE_SHAPES="tiny"
  BATCH=2; BSTEPS=2
else
  # large-v3 second: the issue's goal is set on it, and a run cut short
  # by the device budget should still have measured it.
  SHAPES="tiny large-v3 base small"; REPS=3; STEPS=32; OPS_SMALL=""; CHECK_SHAPES="tiny base"; E2E_TOKENS=64
  PROFILE_SHAPES="tiny large-v3"
  BATCH=8; BSTEPS=16
fi
ANCHORS="$DIST/anchors"

step devices 60 "$BIN" devices
command -v vulkaninfo > /dev/null && vulkaninfo --summary > "$OUT/vulkaninfo.txt" 2>&1
command -v nvidia-smi > /dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
step ops 120 "$DC" ops "$REPS" $OPS_SMALL
# Candidates the ops step timed against the kernels that run by default
# (issues 13/14): the fastest generated matrix-core tiling whose output
# agrees with the first kernel's (f16 outputs of ~10: a few f16 ulps), the
# few-row matmul reading its inputs in place, the encoder's attention on
# matrix cores (where it fits: f16 activations, 32-lane subgroups), and the
# decoder's attention with shorter dependency chains (`fast`). The GPU
# profile of the candidate runs splits their effects by kernel. The model runs of the
# profiled shapes are repeated with them (`model-*-candidates`), so one
# device call says whether to make them the default.
COOP_BEST=$(awk '/op=gemm kernel=coop_tiled:/ && / ms=/ {
    name = ""; ms = ""; diff = ""
    for (i = 1; i <= NF; i++) {
      if ($i ~ /^kernel=coop_tiled:/) name = substr($i, 19)
      if ($i ~ /^ms=/) ms = substr($i, 4) + 0
      if ($i ~ /^max_abs_diff_vs_first=/) diff = substr($i, 23) + 0
    }
    if (name != "" && diff < 0.25 && (best == "" || ms < bms)) { best = name; bms = ms }
  } END { print best }' "$OUT/ops.txt" 2> /dev/null)
# The few-row matmul: the GPU kernel (staged, direct, wide) with the least
# time summed over the ops step's gemv shapes (the logits' 51866 columns
# weigh most, as in a decoder step); direct where none was timed.
GEMV_BEST=$(awk '/^op=gemv kernel=/ && / ms=/ {
    name = ""; ms = ""
    for (i = 1; i <= NF; i++) {
      if ($i ~ /^kernel=/) name = substr($i, 8)
      if ($i ~ /^ms=/) ms = substr($i, 4) + 0
    }
    if (name != "percol") total[name] += ms
  } END {
    for (k in total) if (best == "" || total[k] < total[best]) best = k
    print best
  }' "$OUT/ops.txt" 2> /dev/null)
GEMV_BEST=${GEMV_BEST:-direct}
echo "candidates: VKW_COOP_TILES=${COOP_BEST:-none} VKW_GEMV=$GEMV_BEST VKW_ENCODER_ATTN=coop VKW_SDPA=fast VKW_BATCH_GEMV=chunks" | tee -a "$OUT/summary.txt"
# (An empty VKW_COOP_TILES, when no tiling ran, counts as unset.) The
# batched steps' chunked few-row matmuls (VKW_BATCH_GEMV) change only calls
# of more than 16 rows: the batched figure, repeated with the candidates.
candidates() {
  VKW_COOP_TILES="$COOP_BEST" VKW_GEMV="$GEMV_BEST" VKW_ENCODER_ATTN=coop VKW_SDPA=fast \
    VKW_BATCH_GEMV=chunks "$@"
}
if [ -x "$DIST/backend-tests" ]; then
  CI=true step vulkan-unit-tests 300 "$DIST/backend-tests" --test-threads 2 vulkan::
fi
# The anchors of one shape, on its float16 synthetic model, right after
# vkwhisper's figures for that shape (so a run cut short by the device
# budget keeps the pairs it measured): CTranslate2 (CUDA, float16), and
# whisper.cpp's Vulkan backend on the same weights written as its own file
# (float16 matrices, as its converter writes them; its timings go to
# stderr, anchor-whispercpp-*.err). The export runs in the dry run too, so
# CI checks it where no whisper-bench is carried.
[ -f "$ANCHORS/whispercpp-version.txt" ] && tee -a "$OUT/summary.txt" < "$ANCHORS/whispercpp-version.txt"
anchors_for() {
  local shape=$1 m="$WORK/$1-float16" g="$WORK/ggml-$1.bin"
  if [ -d "$ANCHORS/pylib" ] && command -v python3 > /dev/null; then
    ANCHOR_NOTE="$CUBLAS_NOTE" PYTHONPATH="$ANCHORS/pylib" \
      step "anchor-ct2-$shape" 240 python3 scripts/anchor-ct2.py "$m" "$REPS"
  fi
  if [ -x "$ANCHORS/whisper-bench" ] || [ "$MODE" = dry ]; then
    step "export-ggml-$shape" 120 "$BIN" export-ggml "$m" "$g" || return
    if [ -x "$ANCHORS/whisper-bench" ]; then
      # ggml's CPU threads spin while they wait: more threads than cores
      # slowed the 2-core dry run from 10 s to over 8 minutes.
      local threads=$(nproc)
      [ "$threads" -gt 4 ] && threads=4
      step "anchor-whispercpp-$shape" 240 "$ANCHORS/whisper-bench" -m "$g" -t "$threads"
      # Which device it ran on: ggml falls back to the CPU without a word
      # in its timings when it finds no Vulkan GPU.
      grep -hE "ggml_vulkan: ([0-9]+ =|No devices)|whisper_backend_init_gpu: (using|no GPU)|time =" \
        "$OUT/anchor-whispercpp-$shape.err" | tee -a "$OUT/summary.txt"
    fi
    rm -f "$g"
  fi
}
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
      candidates step "check-$shape-candidates" 180 "$DC" model "$m" float32 5 "$STEPS" 1 cpu
    fi
    step "model-$shape-$ct" 180 "$DC" model "$m" "$ct" 5 "$STEPS" "$REPS"
    case " $PROFILE_SHAPES " in *" $shape "*)
      candidates step "model-$shape-$ct-candidates" 180 "$DC" model "$m" "$ct" 5 "$STEPS" "$REPS" ;;
    esac
    # GPU time per kernel (timestamp queries; slower, so a separate run).
    case " $PROFILE_SHAPES " in *" $shape "*)
      VKW_GPU_PROFILE=1 step "profile-$shape-$ct" 120 "$DC" model "$m" "$ct" 5 8 1
      if [ "$dtype" = float16 ]; then
        VKW_GPU_PROFILE=1 candidates step "profile-$shape-$ct-candidates" 120 "$DC" model "$m" "$ct" 5 8 1
      fi ;;
    esac
    if [ "$dtype" = float16 ]; then
      # Encoder traffic per window (recorded, not run): flash attention,
      # then the score matrices it replaces.
      step "traffic-$shape" 120 "$DC" traffic "$m" float32 float16
      VKW_ENCODER_ATTN=scores step "traffic-$shape-scores" 120 "$DC" traffic "$m" float32
      step "batched-$shape-$ct" 180 "$DC" batched "$m" "$ct" "$BATCH" 5 "$BSTEPS"
      case " $PROFILE_SHAPES " in *" $shape "*)
        candidates step "batched-$shape-$ct-candidates" 180 "$DC" batched "$m" "$ct" "$BATCH" 5 "$BSTEPS" ;;
      esac
      # Kept for the anchors, which run after this shape's int8 figures.
      continue
    fi
    rm -rf "$m"
  done
  anchors_for "$shape"
  # The e2e step below needs no model of the shapes.
  rm -rf "$WORK/$shape-float16"
done
# End to end through the CLI on the bundled sample (synthetic weights: the
# text is meaningless, the timings are not).
m="$WORK/e2e"
if "$BIN" synth-model "$m" --shape tiny --tokenizer-from "$DIST/tok" 2> /dev/null; then
  step e2e-tiny 120 "$BIN" transcribe --device vulkan --model "$m" --beam-size 5 --temperature 0 \
    --max-new-tokens "$E2E_TOKENS" --timings samples/jfk.wav
  grep -h "vkwhisper-" "$OUT/e2e-tiny.err" | tee -a "$OUT/summary.txt"
fi
[ -x "$ANCHORS/whisper-bench" ] ||
  echo "anchor whisper.cpp: not carried ($ANCHORS/whisper-bench)" | tee -a "$OUT/summary.txt"
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
# The candidates against the defaults, and vkwhisper against the anchors,
# side by side (a person decides).
if command -v python3 > /dev/null; then
  echo "== candidates vs defaults; vkwhisper vs the anchors" | tee -a "$OUT/summary.txt"
  python3 scripts/device-compare.py "$OUT" 2>&1 | tee -a "$OUT/summary.txt"
fi
echo "results: $OUT/summary.txt" | tee -a "$OUT/summary.txt"
exit $fail
