#!/usr/bin/env bash
# ASan + UBSan build of every native piece of keras-csp, and the kernel / runtime / fuse test
# suites run against it.
#
#   hardening/sanitize.sh            # build + run everything
#   hardening/sanitize.sh build      # only build
#   SAN_PYTEST_ARGS="-x -q" hardening/sanitize.sh
#
# 1. kernels/ (CMake, clang) with its C++ test harness test_kernels  -> ctest
# 2. keras_csp._kernels / keras_csp._runtime / the delegate library (setup.py build_ext with clang,
#    separate build dir)
#    overlaid on the pure-Python package in hardening/build/asan/site; pytest runs the native
#    test files with the ASan runtime preloaded into python (LeakSanitizer off: TensorFlow
#    leaks by design) and from that directory, so `import keras_csp` picks the sanitized build.
# Any ASan/UBSan report aborts the process (-fno-sanitize-recover=all) and fails the run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B="$ROOT/hardening/build/asan"
MODE="${1:-all}"
JOBS="${JOBS:-2}"
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
export CC=clang CXX=clang++
ASAN_RT="$(clang -print-file-name=libclang_rt.asan-x86_64.so)"
[ -f "$ASAN_RT" ] || { echo "sanitize.sh: clang's ASan runtime not found (apt-get install clang)" >&2; exit 2; }

echo "== [1/4] CMake build of kernels/ (clang, ASan+UBSan)"
cmake -S "$ROOT/kernels" -B "$B/cmake" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g $SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" >/dev/null
cmake --build "$B/cmake" -j"$JOBS" >/dev/null

echo "== [2/4] Python extensions (clang, ASan+UBSan) -> $B/site"
cd "$ROOT"
CFLAGS="-O1 -g $SAN" CXXFLAGS="-O1 -g $SAN" LDSHARED="clang++ -shared" LDFLAGS="$SAN -shared-libasan" \
  nice python3 setup.py -q build_ext -b "$B/ext" -t "$B/tmp" -j "$JOBS" >"$B/build_ext.log" 2>&1 ||
  { tail -50 "$B/build_ext.log"; exit 1; }
# Overlay: the package's Python sources (symlinked) + the sanitized extensions.
rm -rf "$B/site" && mkdir -p "$B/site/keras_csp"
for f in "$ROOT"/keras_csp/*; do
  case "$(basename "$f")" in *.so|__pycache__) continue ;; esac
  ln -s "$f" "$B/site/keras_csp/"
done
cp "$B"/ext/keras_csp/*.so "$B/site/keras_csp/"  # the modules and the delegate library
[ "$MODE" = build ] && exit 0

export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0:${ASAN_OPTIONS_EXTRA:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "== [3/4] C++ tests under ASan+UBSan"
ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=0/detect_leaks=1}" ctest --test-dir "$B/cmake" --output-on-failure

echo "== [4/4] pytest (kernels, runtime, fuse, bad inputs, delegate) under ASan+UBSan"
cd "$B/site"
TESTS=()
for t in "$ROOT"/tests/test_kernels*.py "$ROOT"/tests/test_runtime*.py "$ROOT"/tests/test_fuse*.py \
         "$ROOT"/tests/test_bad_inputs.py "$ROOT"/tests/test_delegate.py; do
  [ -f "$t" ] && TESTS+=("$t")
done
LD_PRELOAD="$ASAN_RT" KCSP_SANITIZED_SITE="$B/site" python3 -c \
  "import keras_csp._kernels as k, keras_csp._runtime as r; import sys; \
   assert k.__file__.startswith('$B/site') and r.__file__.startswith('$B/site'), (k.__file__, r.__file__); \
   print('sanitized extensions:', k.__file__, r.__file__)"
LD_PRELOAD="$ASAN_RT" nice python3 -m pytest -p no:cacheprovider -m "not slow" ${SAN_PYTEST_ARGS:--q} "${TESTS[@]}"
echo "sanitize.sh: clean (no ASan/UBSan reports)"
