#!/usr/bin/env bash
# Build the native benchmark (kcsp_bench, the runner core and kernels; the JNI library too when a
# JDK is present) for the host and cross-compiled for aarch64 Linux. Prints nothing on success but
# the two build directories.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/android_demo/app/src/main/cpp"
JOBS="${JOBS:-2}"
cmake -S "$SRC" -B "$ROOT/build/native" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$ROOT/build/native" -j"$JOBS" >/dev/null
echo "$ROOT/build/native"
if [ "${1:-}" != "--host-only" ]; then
  cmake -S "$SRC" -B "$ROOT/build/native-aarch64" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/kernels/tools/aarch64-toolchain.cmake" >/dev/null
  cmake --build "$ROOT/build/native-aarch64" -j"$JOBS" >/dev/null
  echo "$ROOT/build/native-aarch64"
fi
