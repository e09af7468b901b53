#!/usr/bin/env bash
# Fetch the aarch64 LiteRT runtime (libLiteRt.so) from the aarch64 ai-edge-litert wheel on PyPI,
# for running the cross-compiled native benchmark under qemu. Output: $DEST/ai_edge_litert/{libLiteRt.so,__init__.py}
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${1:-$ROOT/build/litert-aarch64}"
VERSION="${LITERT_VERSION:-2.3.0}"
if [ -f "$DEST/ai_edge_litert/libLiteRt.so" ]; then echo "$DEST/ai_edge_litert/libLiteRt.so"; exit 0; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_17_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
  "ai-edge-litert==$VERSION" -d "$tmp" >&2
mkdir -p "$DEST"
python3 - "$tmp" "$DEST" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("ai_edge_litert/libLiteRt.so", "ai_edge_litert/__init__.py"):
        z.extract(name, sys.argv[2])
PY
echo "$DEST/ai_edge_litert/libLiteRt.so"
