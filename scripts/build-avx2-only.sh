#!/usr/bin/env bash
# An AVX2-only build of vkwhisper, for measuring the AVX2 paths (issue 19:
# AMD Zen 2/3 and Intel client CPUs without AVX-512) on a machine that has
# AVX-512.
#
#   bash scripts/build-avx2-only.sh [OUT]      (default OUT: target/avx2-only)
#
# At run time `VKW_CPU_ISA=avx2` caps vkwhisper's own kernels (int8, gemv,
# attention, softmax, GELU, LayerNorm) at AVX2 + FMA, but the `gemm` crate
# behind the float32 matmuls and the encoder's attention picks its AVX-512
# microkernels from a Cargo feature (`x86-v4`), not at run time. This script
# copies the working tree (tracked files, uncommitted edits included) to
# OUT/src, drops that feature from the two crates that enable it, and
# builds the CLI, the backend's examples and the live harness into OUT/target. Run the result
# with VKW_CPU_ISA=avx2; it checks that no AVX-512 gemm kernel is linked in.
#
#   VKW_CPU_ISA=avx2 target/avx2-only/target/release/vkwhisper transcribe ...
#   scripts/bench.sh --vkwhisper target/avx2-only/target/release/vkwhisper ...
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/avx2-only}
src=$out/src
rm -rf "$src"
mkdir -p "$src"
git ls-files -z | xargs -0 cp --parents -t "$src"
for toml in crates/backend/Cargo.toml crates/vad/Cargo.toml; do
  grep -q '"x86-v4"' "$src/$toml" || {
    echo "build-avx2-only: $toml no longer enables gemm's x86-v4 feature; update this script" >&2
    exit 1
  }
  sed -i 's/, "x86-v4"//' "$src/$toml"
done
export CARGO_TARGET_DIR=$PWD/$out/target
(cd "$src" && cargo build --release --locked -p vkwhisper-cli -p vkw-backend --examples --bin vkwhisper)
# The live harness (docs/LIVE.md) for the live runs on this build.
(cd "$src" && cargo build --release --locked -p vkwhisper --example live_harness)
bin=$CARGO_TARGET_DIR/release/vkwhisper
syms=$(nm -C "$bin") || { echo "build-avx2-only: nm (binutils) is needed to check the build" >&2; exit 1; }
if ! grep -q 'gemm_f32::microkernel::fma' <<<"$syms" || grep -q 'gemm_f32::microkernel::avx512f' <<<"$syms"; then
  echo "build-avx2-only: $bin does not have exactly gemm's AVX2 (fma) kernels" >&2
  exit 1
fi
echo "build-avx2-only: $bin and $CARGO_TARGET_DIR/release/examples/ (run with VKW_CPU_ISA=avx2)"
