#!/usr/bin/env bash
# Cross-compile the kernel library + C++ tests for aarch64 and run them under qemu-user:
#   -cpu max        has SME (streaming vector 256 bits), dotprod and i8mm -> the sme, neon_i8mm,
#                   neon_dotprod and neon variants vs the scalar reference (dispatch picks sme)
#   -cpu max,sme512=on   SME with 512-bit streaming vectors (the kernel's one-tile 16x16 path)
#   -cpu max,sme=off     dispatch picks neon_i8mm
#   -cpu cortex-a76 has dotprod, no i8mm -> dispatch picks neon_dotprod
#   -cpu cortex-a53 has neither          -> dispatch falls back to the plain NEON variant
# Needs: g++-aarch64-linux-gnu, qemu-user (Debian packages), cmake. Exits non-zero on failure.
#
# The library baseline is armv8-a; only src/arm/{conv,depthwise,grouped}_int8_neon_dotprod.cc and
# conv_int8_neon_i8mm.cc enable their extension (with a #pragma), so the cortex-a53 run proves that nothing outside the
# dispatched variants uses dotprod or i8mm instructions; the objdump guard below checks it too.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KERNELS="$(cd "$HERE/.." && pwd)"
BUILD="${BUILD_DIR:-$KERNELS/../build/kernels-aarch64}"
source "$HERE/qemu_env.sh"  # QEMU: the fetched qemu 10 if present (qemu 7.2 miscomputes SMOPA)
SYSROOT="${SYSROOT:-/usr/aarch64-linux-gnu}"
JOBS="${JOBS:-2}"

command -v aarch64-linux-gnu-g++ >/dev/null || { echo "aarch64-linux-gnu-g++ not found (apt install g++-aarch64-linux-gnu)"; exit 2; }
command -v "$QEMU" >/dev/null || { echo "$QEMU not found (apt install qemu-user)"; exit 2; }
if [ "$(qemu_major)" -lt 8 ]; then
  echo "$QEMU is qemu $(qemu_major), whose SME SMOPA is wrong: run kernels/tools/fetch_qemu.sh (scripts/install.sh does)"; exit 2
fi

# build <toolchain file> <build dir>: the library and its tests with the app's per-file ISA flags.
build() {
  cmake -S "$KERNELS" -B "$2" \
    -DCMAKE_TOOLCHAIN_FILE="$HERE/$1" \
    -DCMAKE_BUILD_TYPE=Release \
    -DKCSP_BASELINE_FLAGS="-march=armv8-a" \
    -DKCSP_DOTPROD_FLAGS="-march=armv8.2-a+dotprod" \
    -DKCSP_I8MM_FLAGS="-march=armv8.2-a+i8mm" \
    -DKCSP_QEMU="$(command -v "$QEMU")" -DKCSP_SYSROOT="$SYSROOT" >/dev/null
  cmake --build "$2" -j"$JOBS"
}
build aarch64-toolchain.cmake "$BUILD"

# Guard: sdot only in the dotprod variant, smmla only in the i8mm variant (and both in the peak loops).
if command -v aarch64-linux-gnu-objdump >/dev/null; then
  guard() {  # guard <instruction regex> <object allowed to hold it> [more allowed objects]
    local re="$1" allowed=(-name peak_arm.cc.o) o
    shift
    for o in "$@"; do allowed+=(-o -name "$o"); done
    for o in $(find "$BUILD" -name '*.o' ! \( "${allowed[@]}" \)); do
      aarch64-linux-gnu-objdump -d "$o" | grep -E "\s($re)\s" | sed "s|^|$(basename "$o"): |" || true
    done
  }
  bad="$(guard '(s|u)dot' conv_int8_neon_dotprod.cc.o depthwise_int8_neon_dotprod.cc.o grouped_int8_neon_dotprod.cc.o)$(guard '(s|u|us)mmla' conv_int8_neon_i8mm.cc.o)"
  bad="$bad$(guard '(s|u)mopa|smstart' conv_int8_sme.cc.o)"
  if [ -n "$bad" ]; then echo "extension instructions outside their variant:"; echo "$bad"; exit 1; fi
fi

echo "== qemu -cpu max (SME with 256-bit streaming vectors, dotprod, i8mm)"
"$QEMU" -cpu max -L "$SYSROOT" "$BUILD/test_kernels" --expect sme --expect neon_i8mm --expect neon_dotprod \
  --expect neon --expect-best sme --trials "${TRIALS:-150}"
echo "== qemu -cpu max,sme512=on (SME with 512-bit streaming vectors)"
"$QEMU" -cpu max,sme512=on -L "$SYSROOT" "$BUILD/test_kernels" --expect sme --expect-best sme --trials 60
echo "== qemu -cpu max,sme=off (dotprod + i8mm)"
"$QEMU" -cpu max,sme=off -L "$SYSROOT" "$BUILD/test_kernels" --expect-missing sme --expect-best neon_i8mm --trials 20
echo "== qemu -cpu cortex-a76 (dotprod, no i8mm)"
"$QEMU" -cpu cortex-a76 -L "$SYSROOT" "$BUILD/test_kernels" --expect-missing neon_i8mm --expect-missing sme \
  --expect-best neon_dotprod --trials 40
echo "== qemu -cpu cortex-a53 (no dotprod, no i8mm: plain NEON)"
"$QEMU" -cpu cortex-a53 -L "$SYSROOT" "$BUILD/test_kernels" --expect-missing neon_dotprod \
  --expect-missing neon_i8mm --expect-best neon --trials 40
# The same tests built by clang, the Android NDK's compiler: it ignores `#pragma GCC target`, so
# the per-file -march flags (as the app's CMake passes them) must be enough.
if command -v clang++ >/dev/null; then
  build aarch64-clang-toolchain.cmake "$BUILD-clang"
  echo "== clang build, qemu -cpu max"
  "$QEMU" -cpu max -L "$SYSROOT" "$BUILD-clang/test_kernels" --expect-best sme --trials 40
  "$QEMU" -cpu max,sme512=on -L "$SYSROOT" "$BUILD-clang/test_kernels" --expect-best sme --trials 20
  echo "== clang build, qemu -cpu cortex-a53"
  "$QEMU" -cpu cortex-a53 -L "$SYSROOT" "$BUILD-clang/test_kernels" --expect-best neon --trials 20
fi
echo "aarch64 kernel tests passed"
