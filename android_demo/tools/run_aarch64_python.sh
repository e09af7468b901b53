#!/usr/bin/env bash
# Run a Python script with the aarch64 Python of fetch_python_aarch64.sh under qemu (through
# run_aarch64.sh, which gives LiteRT an ARM /proc/cpuinfo): run_aarch64_python.sh [-cpu CPU] SCRIPT ARGS...
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PY_AARCH64:-$HERE/../../build/py-aarch64}"
PY="$(cd "$PY" && pwd)"
CPU=(-cpu max)
if [ "${1:-}" = "-cpu" ]; then CPU=(-cpu "$2"); shift 2; fi
exec "$HERE/run_aarch64.sh" "${CPU[@]}" \
  -E "LD_LIBRARY_PATH=$PY/usr/lib/aarch64-linux-gnu:$PY/lib/aarch64-linux-gnu" -E "PYTHONHOME=$PY/usr" \
  -E "PYTHONPATH=$PY/site" -E PYTHONNOUSERSITE=1 -E PYTHONDONTWRITEBYTECODE=1 "$PY/usr/bin/python3.11" "$@"
