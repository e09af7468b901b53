"""The tools the test suite uses beyond Python packages, and where each comes from.

scripts/install.sh runs this file at its end (`python3 tests/toolchain.py`): a broken install fails
there, naming what is missing, not twenty minutes later in pytest. Tests call `require(name)`: on a
developer's machine a missing tool skips the test with the install hint; under CI (CI=true) it fails,
so a missing install step cannot hide behind a skip.
"""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AARCH64_LITERT = os.path.join(ROOT, "build", "litert-aarch64", "ai_edge_litert", "libLiteRt.so")
AARCH64_PYTHON = os.path.join(ROOT, "build", "py-aarch64")


def _clang_fuzzer_runtime():
    clang = shutil.which("clang")
    if clang is None:
        return None
    rt = subprocess.run([clang, "-print-file-name=libclang_rt.fuzzer-x86_64.a"],
                        capture_output=True, text=True).stdout.strip()
    return rt if os.path.isfile(rt) else None


def _has_module(name):
    import importlib.util
    return importlib.util.find_spec(name) is not None


# name -> (check returning a truthy value when present, what installs it)
TOOLS = {
    "cmake": (lambda: shutil.which("cmake"), "apt: cmake"),
    "clang": (lambda: shutil.which("clang"), "apt: clang lld"),
    "libfuzzer": (_clang_fuzzer_runtime, "apt: libclang-rt-<clang major>-dev (clang only recommends it)"),
    "atheris": (lambda: _has_module("atheris"), "pip: atheris"),
    "kotlinc": (lambda: shutil.which("kotlinc"), "apt: kotlin"),
    "java": (lambda: shutil.which("java") and shutil.which("javac"), "apt: default-jdk-headless"),
    "qemu-aarch64": (lambda: shutil.which("qemu-aarch64"), "apt: qemu-user"),
    "qemu-sme": (lambda: os.path.isfile(os.path.join(ROOT, "build", "qemu", "usr", "bin", "qemu-aarch64")),
                 "kernels/tools/fetch_qemu.sh (qemu 10 from bookworm-backports; 7.2 miscomputes SME's SMOPA)"),
    "aarch64-g++": (lambda: shutil.which("aarch64-linux-gnu-g++"), "apt: g++-aarch64-linux-gnu"),
    "aarch64-litert": (lambda: os.path.isfile(AARCH64_LITERT), "android_demo/tools/fetch_litert_aarch64.sh"),
    "aarch64-python": (lambda: os.path.isfile(os.path.join(AARCH64_PYTHON, "usr", "bin", "python3.11"))
                       and os.path.isdir(os.path.join(AARCH64_PYTHON, "site", "ai_edge_litert")),
                       "android_demo/tools/fetch_python_aarch64.sh (after dpkg --add-architecture arm64)"),
    "llvm-mca": (lambda: shutil.which("llvm-mca-19") or shutil.which("llvm-mca"), "apt: llvm-19"),
    "tflite-support": (lambda: _has_module("tflite_support"), "pip install --no-deps tflite-support==0.4.4"),
    "keras-cv": (lambda: _has_module("keras_cv"), "pip: keras-cv (another library's YOLOv8 backbone, fuse tests)"),
}


def missing(*names):
    """The subset of `names` (all tools when empty) that this machine lacks, with install hints."""
    return [(n, TOOLS[n][1]) for n in (names or TOOLS) if not TOOLS[n][0]()]


def require(*names):
    """Skip (developer machine) or fail (CI) the calling test when a tool is missing."""
    import pytest
    gone = missing(*names)
    if gone:
        msg = "missing " + "; ".join(f"{n} ({hint})" for n, hint in gone) + " -- bash scripts/install.sh installs it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


if __name__ == "__main__":
    gone = missing()
    for name, hint in gone:
        print(f"install check: {name} is missing ({hint})", file=sys.stderr)
    if gone:
        sys.exit(1)
    print("install check: all test tools present (" + ", ".join(TOOLS) + ")")
