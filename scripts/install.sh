#!/usr/bin/env bash
# Install keras-csp and everything its tests need on a fresh Debian/Ubuntu machine.
# Everything a test uses comes from here: a package installed by hand makes CI green on one machine
# and red on the next. The check at the end names what is missing and fails the install.
#
# System packages:
#   g++-aarch64-linux-gnu, qemu-user   ARM kernels and runtime under emulation
#   clang, lld, libclang-rt-*-dev      sanitizer builds and libFuzzer (clang only *recommends* its runtime)
#   kotlin                             the Android app's Kotlin code, compiled and run on a desktop JVM
#   llvm-19                            llvm-mca: ARM microkernel throughput models (bench/mca)
#   libusb-1.0-0                       imported by tflite-support's metadata writers
#   qemu-user 10 (bookworm-backports)  downloaded with a private apt configuration and unpacked to
#                                      build/qemu (kernels/tools/fetch_qemu.sh), not installed
#   arm64 architecture (dpkg)          Debian's arm64 python3.11, unpacked (not installed) by
#                                      android_demo/tools/fetch_python_aarch64.sh: the stock aarch64
#                                      LiteRT interpreter with the keras-csp delegate under qemu
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO dpkg --add-architecture arm64
$SUDO apt-get update -q >/dev/null
# clang's libFuzzer runtime must match the default clang's major version: libclang-rt-14-dev on
# Debian 12 (clang 14); another release's clang is read from the clang package's Depends.
CLANG_RT="libclang-rt-14-dev"
CLANG_MAJOR="$(apt-cache show clang 2>/dev/null | sed -n 's/^Depends:.*clang-\([0-9]\+\).*/\1/p' | head -n 1)"
if [ -n "$CLANG_MAJOR" ]; then CLANG_RT="libclang-rt-${CLANG_MAJOR}-dev"; fi
$SUDO apt-get install -y -q --no-install-recommends \
    g++ g++-aarch64-linux-gnu qemu-user clang lld "$CLANG_RT" kotlin default-jdk-headless \
    llvm-19 libusb-1.0-0 cmake make >/dev/null
python3 -m pip install -q --upgrade pip
# Editable install compiles the pybind11 extensions in place (keras_csp/_kernels*.so).
python3 -m pip install -q -e ".[test]"
# tflite-support 0.4.4 pins protobuf<4, which TensorFlow 2.21 cannot use: install it without its
# dependencies; keras-csp only imports its metadata writers.
python3 -m pip install -q --no-deps tflite-support==0.4.4
python3 -m pip install -q atheris  # fuzzing (hardening/fuzz)
# Another Keras library's CSP blocks (keras-cv's YOLOv8 backbone: C2f, SPPF, SiLU), fused in the tests.
python3 -m pip install -q keras-cv
# qemu 10 (bookworm-backports, unpacked into build/qemu): Debian 12's qemu 7.2 computes SME's SMOPA
# wrongly, and the aarch64 tests run the SME kernels.
bash kernels/tools/fetch_qemu.sh >/dev/null
# The aarch64 LiteRT runtime, for the cross-compiled native benchmark under qemu.
bash android_demo/tools/fetch_litert_aarch64.sh >/dev/null
# An aarch64 Python with the aarch64 ai-edge-litert wheel: its stock interpreter loads the aarch64
# keras-csp delegate under qemu (tests/test_native_bench.py).
bash android_demo/tools/fetch_python_aarch64.sh >/dev/null

# Every tool the test suite uses, checked here so a broken install fails now, not in pytest.
python3 tests/toolchain.py
