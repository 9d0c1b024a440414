#!/usr/bin/env bash
# Build whisper.cpp's `whisper-bench` with its Vulkan backend and pack it as
# dist/carry/anchor-whispercpp.tar.xz: the device check's whisper.cpp anchor
# (issue 14; scripts/device-check.sh unpacks it on the GPU machine and runs
# it on the same synthetic weights as vkwhisper, written by
# `vkwhisper export-ggml`). A benchmark peer, built from its own sources;
# nothing of it enters vkwhisper.
#
#   WHISPERCPP_SRC=/path/to/whisper.cpp GLSLC=/path/to/glslc \
#   VULKAN_HEADERS=/path/to/Vulkan-Headers scripts/build-whispercpp-anchor.sh
#
# Needs cmake, a C++17 compiler, the Vulkan loader's development files
# (libvulkan-dev) and a glslc that knows the cooperative-matrix extensions:
# whisper.cpp compiles its matrix-core shaders only when its glslc does
# (GL_KHR_cooperative_matrix, GL_NV_cooperative_matrix2), and without them
# the anchor would understate whisper.cpp on any GPU with matrix cores.
# Debian bookworm's glslc (shaderc 2023.2) has neither, so the script stops
# unless ALLOW_NO_COOPMAT=1; shaderc built from source (google/shaderc with
# the glslang / SPIRV-Tools / SPIRV-Headers revisions its DEPS file names,
# target glslc_exe) has both. Vulkan-Headers must be as new as that glslc
# (the cooperative_matrix2 structures), hence VULKAN_HEADERS.
#
# The binary links libstdc++ statically and needs no OpenMP, so the GPU
# machine needs only glibc (2.35, as vkwhisper's binaries) and the Vulkan loader (which the device call
# unpacks, docs/GPU.md). whispercpp-version.txt beside it says what was
# built, and device-check.sh prints it with the anchor's numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${WHISPERCPP_SRC:?set WHISPERCPP_SRC to a whisper.cpp source tree}
GLSLC=${GLSLC:-$(command -v glslc || true)}
[ -x "$GLSLC" ] || { echo "build-whispercpp-anchor: no glslc (set GLSLC)" >&2; exit 1; }
[ -f "$SRC/examples/bench/bench.cpp" ] ||
  { echo "build-whispercpp-anchor: $SRC is not a whisper.cpp tree (no examples/bench)" >&2; exit 1; }
B=${BUILD_DIR:-$SRC/build-vkw-anchor}
LOG=$(mktemp)
# The static libstdc++ of a glibc 2.36 system calls arc4random (glibc
# 2.36), which would make the binary refuse to start where glibc is 2.35
# (where vkwhisper's own binaries run). A local definition from getrandom
# (glibc 2.25) is linked in its place.
mkdir -p "$B"
cat > "$B/arc4random-shim.c" <<'C'
#include <stdint.h>
#include <sys/random.h>
uint32_t arc4random(void) {
  uint32_t v = 0;
  while (getrandom(&v, sizeof v, 0) != (long)sizeof v) {}
  return v;
}
C
cc -O2 -fPIC -c "$B/arc4random-shim.c" -o "$B/arc4random-shim.o"
args=(-DCMAKE_BUILD_TYPE=Release -DGGML_VULKAN=ON -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF
  -DBUILD_SHARED_LIBS=OFF -DWHISPER_SDL2=OFF -DWHISPER_BUILD_TESTS=OFF
  -DVulkan_GLSLC_EXECUTABLE="$GLSLC"
  -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc $B/arc4random-shim.o")
[ -n "${VULKAN_HEADERS:-}" ] && args+=(-DVulkan_INCLUDE_DIR="$VULKAN_HEADERS/include")
cmake -S "$SRC" -B "$B" "${args[@]}" | tee "$LOG"
if grep -q "GL_KHR_cooperative_matrix not supported" "$LOG" && [ "${ALLOW_NO_COOPMAT:-0}" != 1 ]; then
  echo "build-whispercpp-anchor: $GLSLC cannot compile cooperative-matrix shaders;" \
    "whisper.cpp would run without matrix cores (set ALLOW_NO_COOPMAT=1 to build it anyway)" >&2
  exit 1
fi
cmake --build "$B" -j"$(nproc)" --target whisper-bench
D=$(mktemp -d)
# Only the debug sections are stripped (the symbol table costs 0.2 MB
# packed). On lavapipe, where ggml only runs with GGML_VK_VISIBLE_DEVICES=0,
# whisper-bench crashed inside lavapipe's own worker thread (backtrace in
# libvulkan_lvp.so) in 7 of 16 runs here, stripped or not; lavapipe is not
# what the anchor is for.
strip --strip-debug -o "$D/whisper-bench" "$B/bin/whisper-bench"
newest=$(objdump -T "$D/whisper-bench" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
echo "whisper-bench needs $newest"
{
  echo "anchor whisper.cpp: $(git -C "$SRC" describe --tags --always 2> /dev/null || echo unknown)" \
    "($(git -C "$SRC" rev-parse --short HEAD 2> /dev/null || echo '?')), whisper-bench, GGML_VULKAN," \
    "$("$GLSLC" --version | head -1)"
  grep -E "GL_(KHR|NV)_cooperative_matrix2? .*supported by glslc" "$LOG" | sed 's/^-- /  /'
} > "$D/whispercpp-version.txt"
cat "$D/whispercpp-version.txt"
mkdir -p dist/carry
tar -C "$D" -cf - whisper-bench whispercpp-version.txt | xz -9 -T2 > dist/carry/anchor-whispercpp.tar.xz
rm -rf "$D" "$LOG"
ls -l dist/carry/anchor-whispercpp.tar.xz
