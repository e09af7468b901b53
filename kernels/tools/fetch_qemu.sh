#!/usr/bin/env bash
# A newer qemu-user for the aarch64 tests: Debian bookworm's qemu 7.2 computes SME's int8 SMOPA
# wrongly (only even rows and columns of the int32 tile: checked with a one-instruction probe),
# bookworm-backports' qemu 10 gets it right. The package is downloaded with a private apt
# configuration (the system's sources are not touched) and unpacked, not installed:
# $DEST/usr/bin/qemu-aarch64. kernels/tools/qemu_env.sh prefers it over the system qemu.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${1:-$ROOT/build/qemu}"
if [ -x "$DEST/usr/bin/qemu-aarch64" ]; then echo "$DEST/usr/bin/qemu-aarch64"; exit 0; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/deb"
chmod 777 "$tmp/deb"  # apt-get download drops privileges to _apt
echo "deb http://deb.debian.org/debian bookworm-backports main" > "$tmp/sources.list"
APT=(-q -o Dir::Etc::sourcelist="$tmp/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$tmp/lists")
apt-get "${APT[@]}" update >/dev/null
(cd "$tmp/deb" && apt-get "${APT[@]}" download qemu-user >/dev/null)
mkdir -p "$DEST"
dpkg -x "$tmp"/deb/qemu-user_*.deb "$tmp/x"
mkdir -p "$DEST/usr/bin"
cp "$tmp/x/usr/bin/qemu-aarch64" "$DEST/usr/bin/"
"$DEST/usr/bin/qemu-aarch64" --version | head -1 >&2
echo "$DEST/usr/bin/qemu-aarch64"
