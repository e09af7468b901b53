#!/usr/bin/env bash
# Run an aarch64 Linux binary under qemu-user: run_aarch64.sh [-cpu CPU] BINARY ARGS...
#
# LiteRT's CPU backend (XNNPACK's cpuinfo) parses /proc/cpuinfo, and qemu-user 7.2 shows the host's
# x86 /proc/cpuinfo to the guest: LiteRT then crashes inside LiteRtCreateCompiledModel. As root we
# bind-mount an ARM cpuinfo over /proc/cpuinfo in a private mount namespace (unshare), which fixes
# it: Neoverse-N1-like (asimddp, atomics) by default, a Cortex-A53 one (ARMv8.0: no dotprod, no
# LSE atomics) for -cpu cortex-a53, or XNNPACK would pick instructions that core lacks (SIGILL).
# qemu timings are not performance numbers.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../kernels/tools/qemu_env.sh
source "$HERE/../../kernels/tools/qemu_env.sh"
CPU=max
if [ "${1:-}" = "-cpu" ]; then CPU="$2"; shift 2; fi
CPU="$(qemu_cpu "$CPU")"
QEMU=("$QEMU" -L "${SYSROOT:-/usr/aarch64-linux-gnu}" -cpu "$CPU")
CPUINFO="$HERE/cpuinfo_aarch64.txt"
case "${CPU%%,*}" in cortex-a53|cortex-a57|cortex-a72|cortex-a35) CPUINFO="$HERE/cpuinfo_aarch64_a53.txt" ;; esac
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare --mount true 2>/dev/null; then
  exec unshare --mount bash -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$CPUINFO" "${QEMU[@]}" "$@"
fi
echo "run_aarch64.sh: cannot bind an ARM /proc/cpuinfo (needs root and unshare); LiteRT may crash under qemu" >&2
exec "${QEMU[@]}" "$@"
