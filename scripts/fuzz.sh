#!/usr/bin/env bash
# Bounded fuzzing for CI (docs/RELIABILITY.md): every target of fuzz/ runs
# for FUZZ_SECONDS (default 60) from the committed seeds, one after the
# other, one process at a time. A crash, a timeout or memory over 2 GB fails
# the script; the input that did it is saved under $FUZZ_ARTIFACTS (default
# target/fuzz-artifacts/<target>/) and the script exits 1 after running the
# remaining targets.
#
# Needs the nightly toolchain and cargo-fuzz: installed when missing (rustup
# / `cargo install cargo-fuzz`); when that is impossible the script prints
# SKIPPED and exits 0, so machines without nightly still pass CI.
#
# Usage: scripts/fuzz.sh [target ...]        (default: all ten)
#   FUZZ_SECONDS=60   seconds per target (60-120 keeps nine targets within
#                     10 minutes of fuzzing; the build comes first)
#   FUZZ_ARTIFACTS    where crashing inputs are saved
#   FUZZ_CORPUS       working corpus directory (default target/fuzz-corpus;
#                     fuzz/corpus keeps a long local campaign's corpus)
#   FUZZ_SANITIZER    address (default) or none (faster, no ASan checks)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
ARTIFACTS=${FUZZ_ARTIFACTS:-$root/target/fuzz-artifacts}
CORPUS=${FUZZ_CORPUS:-$root/target/fuzz-corpus}
SANITIZER=${FUZZ_SANITIZER:-address}
ALL=(model_bin model_dir hf_checkpoint vad_onnx audio_pcm audio_stream audio_mp4 audio_mkv resample server_request)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${ALL[@]}")

skip() {
  echo "=================================================================="
  echo "SKIPPED: fuzzing did not run: $*"
  echo "=================================================================="
  exit 0
}

if ! cargo +nightly --version >/dev/null 2>&1; then
  command -v rustup >/dev/null 2>&1 || skip "no nightly toolchain and no rustup to install one"
  echo "fuzz: installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal >/dev/null 2>&1 \
    || skip "the nightly toolchain could not be installed"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked >/dev/null 2>&1 \
    || skip "cargo-fuzz could not be installed"
fi

dict_of() {
  case "$1" in
    model_bin) echo model.dict ;;
    model_dir | hf_checkpoint) echo json.dict ;;
    vad_onnx) echo onnx.dict ;;
    server_request) echo http.dict ;;
    *) echo audio.dict ;;
  esac
}

echo "fuzz: building ${#targets[@]} targets (sanitizer: $SANITIZER)"
t0=$(date +%s)
(cd fuzz && cargo +nightly fuzz build -O -a --sanitizer "$SANITIZER") || {
  echo "fuzz: FAILED to build the targets"
  exit 1
}
echo "fuzz: built in $(($(date +%s) - t0)) s"

failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$CORPUS/$t" "$ARTIFACTS/$t"
  log="$ARTIFACTS/$t.log"
  # nice: the fuzzer should not slow down whatever else the machine runs.
  (cd fuzz && nice -n 19 cargo +nightly fuzz run -O -a --sanitizer "$SANITIZER" "$t" \
    "$CORPUS/$t" "seeds/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=20 \
    -dict="dict/$(dict_of "$t")" -artifact_prefix="$ARTIFACTS/$t/" \
    -print_final_stats=1) >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | awk '{print $2}')
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    summary+=("$(printf '%-14s FAILED (exit %s) runs=%s cov=%s corpus=%s' "$t" "$rc" "${runs:-?}" "${cov:-?}" "${corp:-?}")")
    echo "fuzz: $t FAILED; input(s) in $ARTIFACTS/$t/, log $log:"
    grep -E 'panicked at|ERROR:|SUMMARY:' -A2 "$log" | head -20
  else
    summary+=("$(printf '%-14s ok   runs=%s cov=%s corpus=%s' "$t" "${runs:-?}" "${cov:-?}" "${corp:-?}")")
  fi
done

echo "fuzz: summary (${SECONDS_PER_TARGET} s per target)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs under $ARTIFACTS; reproduce with"
  echo "  cd fuzz && cargo +nightly fuzz run -O <target> <input>)"
  exit 1
fi
echo "fuzz: all targets passed"
