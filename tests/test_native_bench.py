"""The native benchmark (android_demo's C++ core) on the host and, cross-compiled, on aarch64 under qemu."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "android_demo", "tools")
AARCH64_LIB = os.path.join(ROOT, "build", "litert-aarch64", "ai_edge_litert", "libLiteRt.so")


def host_litert():
    import ai_edge_litert
    return os.path.join(os.path.dirname(ai_edge_litert.__file__), "libLiteRt.so")


def deterministic_bytes(seed, n):
    """The benchmark's input generator (bench_core.cc FillDeterministic), in numpy."""
    out = np.empty(n, np.uint8)
    state = (seed * 2654435761 + 12345) & 0xFFFFFFFF
    for i in range(n):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = state >> 24
    return out


@pytest.fixture(scope="module")
def native_build():
    if not shutil.which("cmake"):
        pytest.fail("cmake is required for the native benchmark build")
    cross = bool(shutil.which("aarch64-linux-gnu-g++"))
    args = [os.path.join(TOOLS, "build_native.sh")] + ([] if cross else ["--host-only"])
    dirs = subprocess.run(args, check=True, capture_output=True, text=True).stdout.split()
    return {"host": os.path.join(dirs[0], "kcsp_bench"),
            "aarch64": os.path.join(dirs[1], "kcsp_bench") if cross else None}


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    """cspdensenet_tiny, int8 PTQ with a fixed batch of 1, and its fused rewrite."""
    import tensorflow as tf

    import keras_csp
    from keras_csp.backend import keras
    model = keras_csp.create_model("cspdensenet_tiny", input_tensor=keras.Input((32, 32, 3), batch_size=1),
                                   classes=10)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.uniform(size=(1, 32, 32, 3)).astype("float32")]
                                                for _ in range(16))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path = tmp_path_factory.mktemp("bench") / "tiny_int8.tflite"
    path.write_bytes(converter.convert())
    return str(path)


def run_bench(binary, model, litert, *extra, qemu_cpu=None):
    cmd = [binary, "--litert", litert, "--model", model, "--runs", "2", "--warmup", "1", *extra]
    if qemu_cpu:
        cmd = [os.path.join(TOOLS, "run_aarch64.sh"), "-cpu", qemu_cpu] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_host_bench_matches_litert_interpreter(native_build, int8_model, tmp_path):
    out = tmp_path / "out.bin"
    report = run_bench(native_build["host"], int8_model, host_litert(), "--output", str(out))
    assert report["runs"] == 2 and report["min_ms"] > 0 and report["kernel_mode"] == "xnnpack"
    assert report["inputs"][0]["shape"] == [1, 32, 32, 3] and report["inputs"][0]["dtype"] == "int8"

    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=int8_model, num_threads=1)
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    x = deterministic_bytes(1, int(np.prod(detail["shape"]))).view(np.int8).reshape(detail["shape"])
    interp.set_tensor(detail["index"], x)
    interp.invoke()
    expected = interp.get_tensor(interp.get_output_details()[0]["index"])
    np.testing.assert_array_equal(np.frombuffer(out.read_bytes(), np.int8).reshape(expected.shape), expected)


def test_bench_rejects_bad_arguments(native_build, int8_model, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    for args in (["--model", str(bad)], ["--model", int8_model, "--runs", "0"],
                 ["--model", int8_model, "--kernel-mode", "gpu"], ["--model", str(tmp_path / "missing.tflite")]):
        proc = subprocess.run([native_build["host"], "--litert", host_litert(), *args], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode != 0
        assert "kcsp_bench:" in proc.stderr


def test_aarch64_bench_under_qemu_equals_x86(native_build, int8_model, tmp_path):
    if native_build["aarch64"] is None or not shutil.which("qemu-aarch64"):
        pytest.fail("aarch64 cross compiler and qemu-user are required (scripts/install.sh installs them)")
    if not os.path.exists(AARCH64_LIB):
        subprocess.run([os.path.join(TOOLS, "fetch_litert_aarch64.sh")], check=True, capture_output=True)
    x86_out, arm_out = tmp_path / "x86.bin", tmp_path / "arm.bin"
    # "builtin": TFLite's own int8 kernels on both sides (XNNPACK's ARM int8 requantization differs
    # by an LSB from its x86 one, so XNNPACK outputs are not bit-comparable across architectures).
    run_bench(native_build["host"], int8_model, host_litert(), "--kernel-mode", "builtin", "--output", str(x86_out))
    report = run_bench(native_build["aarch64"], int8_model, AARCH64_LIB, "--kernel-mode", "builtin",
                       "--output", str(arm_out), qemu_cpu="max")
    assert report["outputs"][0]["shape"] == [1, 10]
    assert arm_out.read_bytes() == x86_out.read_bytes()
