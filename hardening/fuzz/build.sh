#!/usr/bin/env bash
# Builds the libFuzzer targets (clang -fsanitize=fuzzer,address,undefined) into
# hardening/build/fuzz/:  fuzz_custom_options, fuzz_kernels, fuzz_delegate.
# Needs clang with libFuzzer (Debian: clang + libclang-rt-<ver>-dev or the clang package's
# bundled compiler-rt; check: clang -print-file-name=libclang_rt.fuzzer-x86_64.a).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/hardening/build/fuzz"
mkdir -p "$OUT/obj"
CXX="${CXX:-clang++}"
if [ ! -f "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then
  echo "build.sh: clang's libFuzzer runtime (libclang_rt.fuzzer-x86_64.a) is missing;" \
       "install clang (and libclang-rt-dev on newer Debian)" >&2
  exit 2
fi
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
FLAGS="-std=c++17 -O1 -g $SAN -I$ROOT/kernels/include -I$ROOT/kernels/runtime"
# Library sources: instrumented for coverage too (fuzzer-no-link), compiled once, in parallel.
SRCS=$(ls "$ROOT"/kernels/src/*.cc "$ROOT"/kernels/src/*/*.cc \
          "$ROOT"/kernels/runtime/flexbuffer_reader.cc "$ROOT"/kernels/runtime/custom_ops.cc \
          "$ROOT"/kernels/runtime/delegate.cc "$ROOT"/kernels/runtime/litert_lib.cc)
OBJS=()
for s in $SRCS; do OBJS+=("$OUT/obj/$(echo "${s#$ROOT/}" | tr / _).o"); done
# An object is stale when its source, this script or any kernel header is newer (the headers hold
# the sweeps and epilogues: checking only the .cc left stale fuzzers behind).
NEWEST_H=$(ls -t "$ROOT"/kernels/src/*.h "$ROOT"/kernels/src/*/*.h "$ROOT"/kernels/include/keras_csp/*.h \
               "$ROOT"/kernels/runtime/*.h | head -1)
# The two AVX-512 VNNI conv files instantiate the kernel for every tile shape and epilogue: with
# ASan at -O1 each took 3-4.5 min (2-core Zen 3: 4.5 of the pytest smoke's 6-min build), at -O0 25 s.
# Long fuzzing runs on an AVX-512 CPU can build them at -O1 too: HEAVY_OPT=-O1.
HEAVY_OPT="${HEAVY_OPT:--O0}"
for s in $SRCS; do
  o="$OUT/obj/$(echo "${s#$ROOT/}" | tr / _).o"
  case "$s" in */conv_int8_avx512vnni.cc | */conv_int8_avx512vnni_table.cc) opt="$HEAVY_OPT" ;; *) opt="" ;; esac
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ "$0" -nt "$o" ] || [ "$NEWEST_H" -nt "$o" ]; then
    echo "$CXX $FLAGS $opt -fsanitize=fuzzer-no-link -c $s -o $o"
  fi
done | xargs -P "${JOBS:-2}" -I{} sh -c '{} 2>&1 | grep -v -E "unknown pragma|Wunknown-warning|^ *#pragma|^ *\^|warnings? generated" || true'
KOBJS=(); ROBJS=()
for o in "${OBJS[@]}"; do
  case "$o" in *runtime_*) ROBJS+=("$o") ;; *) KOBJS+=("$o") ;; esac
done
$CXX $FLAGS -fsanitize=fuzzer "$ROOT/hardening/fuzz/fuzz_kernels.cc" "${KOBJS[@]}" -o "$OUT/fuzz_kernels"
$CXX $FLAGS -fsanitize=fuzzer "$ROOT/hardening/fuzz/fuzz_custom_options.cc" "${KOBJS[@]}" "${ROBJS[@]}" \
  -o "$OUT/fuzz_custom_options"
$CXX $FLAGS -fsanitize=fuzzer "$ROOT/hardening/fuzz/fuzz_delegate.cc" "${KOBJS[@]}" "${ROBJS[@]}" \
  -o "$OUT/fuzz_delegate"
echo "built: $OUT/fuzz_kernels $OUT/fuzz_custom_options $OUT/fuzz_delegate"
