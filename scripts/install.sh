#!/usr/bin/env bash
# Install keras-csp and everything its tests need on a fresh Debian/Ubuntu machine.
# System packages: the aarch64 cross compiler and qemu-user (ARM kernels and runtime under emulation),
# clang/lld (sanitizer builds), libusb (imported by tflite-support's metadata writers).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
    g++ g++-aarch64-linux-gnu qemu-user clang lld libusb-1.0-0 cmake make >/dev/null
python3 -m pip install -q --upgrade pip
# Editable install compiles the pybind11 extensions in place (keras_csp/_kernels*.so).
python3 -m pip install -q -e ".[test]"
# tflite-support 0.4.4 pins protobuf<4, which TensorFlow 2.21 cannot use: install it without its
# dependencies; keras-csp only imports its metadata writers.
python3 -m pip install -q --no-deps tflite-support==0.4.4
python3 -m pip install -q atheris  # fuzzing (hardening/fuzz); clang above brings libFuzzer + ASan/UBSan
# The aarch64 LiteRT runtime, for the cross-compiled native benchmark under qemu.
bash android_demo/tools/fetch_litert_aarch64.sh >/dev/null
python3 -c "import keras_csp._kernels as k; print('keras-csp installed; CPU features:', k.cpu_features())"
