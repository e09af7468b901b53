#!/usr/bin/env bash
# Runs one fuzz target for a bounded time (builds it first if needed).
#
#   hardening/fuzz/run.sh TARGET SECONDS [extra libFuzzer/atheris flags...]
#   hardening/fuzz/run.sh TARGET regress       # only replay seeds + regression inputs
#
# TARGET: custom_options | kernels | tflite | delegate (seeded from the custom_options corpus)
# RUNS=N stops after N executions instead (SECONDS is then an upper bound).
# Working corpus: hardening/build/fuzz/corpus_<TARGET> (seeded from hardening/fuzz/corpus/),
# crashes: hardening/build/fuzz/artifacts/<TARGET>/; exit status != 0 on any crash.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
T="${1:?usage: run.sh custom_options|kernels|tflite|delegate SECONDS|regress}"
SECS="${2:-60}"
shift 2 || shift $#
B="$ROOT/hardening/build/fuzz"
F="$ROOT/hardening/fuzz"
mkdir -p "$B/artifacts/$T" "$B/corpus_$T"
case "$T" in
  custom_options) SEEDS="$F/corpus/custom_options" ;;
  kernels) SEEDS="$F/corpus/kernels" ;;
  tflite) SEEDS="$F/corpus/tflite" ;;
  delegate) SEEDS="$F/corpus/custom_options" ;;  # the same input format
  *) echo "unknown target $T" >&2; exit 2 ;;
esac
REG="$F/regressions/$T"
mkdir -p "$SEEDS" "$REG"
COMMON=(-artifact_prefix="$B/artifacts/$T/" -print_final_stats=1 -timeout=20)
if [ "$T" = tflite ]; then
  # atheris (libFuzzer inside CPython); the pure-Python code is instrumented at import.
  CMD=(python3 "$F/fuzz_tflite.py")
  COMMON+=(-rss_limit_mb=4096 -max_len=16384)
else
  # Rebuild when the harness or any kernel / runtime source or header is newer than the binary.
  if [ ! -x "$B/fuzz_$T" ] || [ -n "$(find "$F/fuzz_$T.cc" "$F/option_inputs.h" "$F/build.sh" "$ROOT/kernels/src" "$ROOT/kernels/include" \
                                       "$ROOT/kernels/runtime" -newer "$B/fuzz_$T" -type f | head -1)" ]; then
    bash "$F/build.sh" >/dev/null
  fi
  CMD=("$B/fuzz_$T")
fi
if [ "$SECS" = regress ]; then
  shopt -s nullglob
  files=("$SEEDS"/* "$REG"/*)
  "${CMD[@]}" "${COMMON[@]}" -runs=1 "$@" "${files[@]}"
  exit 0
fi
RUNS_FLAG=()
[ -n "${RUNS:-}" ] && RUNS_FLAG=(-runs="$RUNS")
# The fuzzer runs as this shell's child, never by exec: Linux keeps a process's peak RSS across exec,
# and a process forked from a large one (a pytest worker holding TensorFlow: 2-3 GB) starts with that
# one's, so libFuzzer's -rss_limit_mb (getrusage's peak) reported out-of-memory on its first inputs.
nice "${CMD[@]}" "${COMMON[@]}" -max_total_time="$SECS" "${RUNS_FLAG[@]}" "$@" \
  "$B/corpus_$T" "$SEEDS" "$REG"
