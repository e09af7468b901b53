#!/usr/bin/env bash
# An aarch64 CPython 3.11 with numpy and ai-edge-litert, for running the STOCK LiteRT interpreter
# (ai_edge_litert.interpreter.Interpreter) with the aarch64 keras-csp delegate under qemu-user.
# The stock interpreter lives only in the wheel's Python extension, so checking the delegate on
# aarch64 needs an aarch64 Python. Debian's arm64 python3.11 packages are unpacked (dpkg -x, not
# installed) and the aarch64 wheels extracted: $DEST/usr/bin/python3.11, $DEST/site.
# Needs `dpkg --add-architecture arm64` + `apt-get update` (scripts/install.sh does both).
# Run it with android_demo/tools/run_aarch64_python.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${1:-$ROOT/build/py-aarch64}"
VERSION="${LITERT_VERSION:-2.3.0}"
if [ -x "$DEST/usr/bin/python3.11" ] && [ -d "$DEST/site/ai_edge_litert" ]; then echo "$DEST"; exit 0; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 777 "$tmp"  # apt-get download drops privileges to _apt
(cd "$tmp" && apt-get download -q python3.11-minimal:arm64 libpython3.11-minimal:arm64 \
  libpython3.11-stdlib:arm64 libexpat1:arm64 zlib1g:arm64 libffi8:arm64 >/dev/null)
mkdir -p "$DEST/site"
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$DEST"; done
NUMPY="$(python3 -c 'import numpy; print(numpy.__version__)')"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_17_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
  "numpy==$NUMPY" "ai-edge-litert==$VERSION" -d "$tmp/wheels" >&2
for whl in "$tmp"/wheels/*.whl; do python3 -m zipfile -e "$whl" "$DEST/site"; done
echo "$DEST"
