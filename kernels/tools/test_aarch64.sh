#!/usr/bin/env bash
# Cross-compile the kernel library + C++ tests for aarch64 and run them under qemu-user:
#   -cpu max        has the dot-product extension  -> NEON dotprod variant vs scalar reference
#   -cpu cortex-a53 has no dotprod                 -> run-time dispatch must fall back to scalar
# Needs: g++-aarch64-linux-gnu, qemu-user (Debian packages), cmake. Exits non-zero on failure.
#
# The library baseline is armv8-a; only src/arm/conv_int8_neon_dotprod.cc is compiled with
# -march=armv8.2-a+dotprod (it also enables it with a #pragma), so the cortex-a53 run proves
# that nothing outside the dispatched variant uses dotprod instructions.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KERNELS="$(cd "$HERE/.." && pwd)"
BUILD="${BUILD_DIR:-$KERNELS/../build/kernels-aarch64}"
QEMU="${QEMU:-qemu-aarch64}"
SYSROOT="${SYSROOT:-/usr/aarch64-linux-gnu}"
JOBS="${JOBS:-2}"

command -v aarch64-linux-gnu-g++ >/dev/null || { echo "aarch64-linux-gnu-g++ not found (apt install g++-aarch64-linux-gnu)"; exit 2; }
command -v "$QEMU" >/dev/null || { echo "$QEMU not found (apt install qemu-user)"; exit 2; }

cmake -S "$KERNELS" -B "$BUILD" \
  -DCMAKE_TOOLCHAIN_FILE="$HERE/aarch64-toolchain.cmake" \
  -DCMAKE_BUILD_TYPE=Release \
  -DKCSP_BASELINE_FLAGS="-march=armv8-a" \
  -DKCSP_DOTPROD_FLAGS="-march=armv8.2-a+dotprod" \
  -DKCSP_QEMU="$(command -v "$QEMU")" -DKCSP_SYSROOT="$SYSROOT" >/dev/null
cmake --build "$BUILD" -j"$JOBS"

# Guard: dotprod instructions may only appear in the dotprod variant (and its peak loop).
if command -v aarch64-linux-gnu-objdump >/dev/null; then
  bad=$(for o in $(find "$BUILD" -name '*.o' ! -name 'conv_int8_neon_dotprod.cc.o' ! -name 'peak_arm.cc.o'); do
          aarch64-linux-gnu-objdump -d "$o" | grep -E '\s(s|u)dot\s' || true; done)
  if [ -n "$bad" ]; then echo "dotprod instructions outside the dotprod variant:"; echo "$bad"; exit 1; fi
fi

echo "== qemu -cpu max (dotprod)"
"$QEMU" -cpu max -L "$SYSROOT" "$BUILD/test_kernels" --expect neon_dotprod --trials "${TRIALS:-150}"
echo "== qemu -cpu cortex-a53 (no dotprod: scalar fallback)"
"$QEMU" -cpu cortex-a53 -L "$SYSROOT" "$BUILD/test_kernels" --expect-missing neon_dotprod --trials 40
echo "aarch64 kernel tests passed"
