# Sourced by the aarch64 run scripts: sets QEMU (the qemu-aarch64 to use) and defines
# qemu_cpu CPU, which prints the -cpu value to pass.
#   QEMU: $QEMU if set, else the newer qemu of kernels/tools/fetch_qemu.sh, else the system one.
#   qemu_cpu: a qemu older than 8 miscomputes SME's SMOPA, so there "max" gets ",sme=off" (with a
#   note on stderr): the kernels then dispatch neon_i8mm instead of sme.
_KCSP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -z "${QEMU:-}" ]; then
  if [ -x "$_KCSP_ROOT/build/qemu/usr/bin/qemu-aarch64" ]; then QEMU="$_KCSP_ROOT/build/qemu/usr/bin/qemu-aarch64"
  else QEMU=qemu-aarch64; fi
fi
qemu_major() { "$QEMU" --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n 1; }
qemu_cpu() {
  local cpu="$1"
  if [[ "$cpu" == max* && "$cpu" != *sme=* ]] && [ "$(qemu_major)" -lt 8 ] 2>/dev/null; then
    echo "qemu $(qemu_major) miscomputes SME's SMOPA: running $cpu with sme=off (kernels/tools/fetch_qemu.sh fetches qemu 10)" >&2
    cpu="$cpu,sme=off"
  fi
  echo "$cpu"
}
