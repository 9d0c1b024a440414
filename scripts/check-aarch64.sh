#!/usr/bin/env bash
# The CPU backend on 64-bit ARM, from an x86-64 machine: cross-compile
# vkw-backend for aarch64-unknown-linux-gnu, lint it there, and run its unit
# tests (every int8 kernel — NEON with dot product, baseline NEON, portable —
# against exact integer results) and the int8 end-to-end jfk test under
# qemu-user (once). Installs the Rust target, the cross linker and qemu if missing.
#
#   bash scripts/check-aarch64.sh
#
# The end-to-end test reads tiny.en from the fetch script's cache (skipped
# with a message when absent, a failure under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
TARGET=aarch64-unknown-linux-gnu

# What this check needs but the build does not. When it cannot be installed
# (the Rust target comes from static.rust-lang.org, which not every machine
# reaches), the check says so loudly and is skipped; once installed, any
# build, lint or test failure fails the script.
skip() {
  echo "check-aarch64: SKIPPED: $1; the NEON int8 kernels were NOT tested" >&2
  exit 0
}
need_apt=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need_apt+=(qemu-user)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update ||
    skip "apt-get update failed"
  $SUDO apt-get install -y -o DPkg::Lock::Timeout=600 "${need_apt[@]}" ||
    skip "could not install ${need_apt[*]}"
fi
command -v rustup >/dev/null 2>&1 || skip "no rustup to add the $TARGET target"
if ! rustup target list --installed | grep -qx "$TARGET"; then
  timeout 600 rustup target add "$TARGET" ||
    skip "could not install the Rust target $TARGET (rustup target add failed)"
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"

# The Vulkan code is architecture-independent (and lavapipe does not run
# under qemu-user): only the CPU backend is built here.
args=(--release --target "$TARGET" -p vkw-backend --no-default-features)
cargo clippy "${args[@]}" --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test "${args[@]}" --lib --test int8 -- --nocapture 2>&1 | tee "$log"
# qemu's default CPU has the dot-product extension: both NEON kernels must
# have been tested, not just the portable one.
grep -q "int8 kernels tested: \[NeonDot, Neon, Portable\]" "$log" || {
  echo "check-aarch64: the NEON int8 kernels were not both tested" >&2
  exit 1
}
# (The end-to-end test runs once, on the dot-product kernel qemu selects;
# the baseline NEON kernel is held to exact integer results by the unit
# tests above; a second end-to-end run under qemu cost ~3 minutes of CI.)
echo "check-aarch64: ok"
