"""The native benchmark (android_demo's C++ core) on the host and, cross-compiled, on aarch64 under qemu."""
import json
import os
import shutil
import subprocess
import sys

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
    """cspdensenet_tiny, int8 PTQ with a fixed batch of 1."""
    from keras_csp.benchmark import export_ptq_int8
    return export_ptq_int8("cspdensenet_tiny", str(tmp_path_factory.mktemp("bench") / "tiny_int8.tflite"), 32)


@pytest.fixture(scope="module")
def mobile_int8_model(tmp_path_factory):
    """cspmobilenetv2_tiny, int8 PTQ: its fused ops include depthwise convs (x2 and a CSP head's skip)."""
    from keras_csp.benchmark import export_ptq_int8
    return export_ptq_int8("cspmobilenetv2_tiny", str(tmp_path_factory.mktemp("bench") / "mbv2_int8.tflite"), 32)


@pytest.fixture(scope="module")
def mnv2_int8_model(tmp_path_factory):
    """mobilenetv2_tiny, int8 PTQ: under `fuse --tune` its blocks become KcspInvertedResidual ops."""
    from keras_csp.benchmark import export_ptq_int8
    return export_ptq_int8("mobilenetv2_tiny", str(tmp_path_factory.mktemp("bench") / "mnv2_int8.tflite"), 32)


def run_bench(binary, model, litert, *extra, qemu_cpu=None, env=None):
    cmd = [binary, "--litert", litert, "--model", model, "--runs", "2", "--warmup", "1", *extra]
    if qemu_cpu:
        cmd = [os.path.join(TOOLS, "run_aarch64.sh"), "-cpu", qemu_cpu] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=None if env is None else {**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def require_aarch64(native_build):
    """The aarch64 runner's prerequisites: the cross-built kcsp_bench, qemu-user and LiteRT's aarch64 library."""
    if native_build["aarch64"] is None or not shutil.which("qemu-aarch64"):
        pytest.fail("aarch64 cross compiler and qemu-user are required (scripts/install.sh installs them)")
    if not os.path.exists(AARCH64_LIB):
        subprocess.run([os.path.join(TOOLS, "fetch_litert_aarch64.sh")], check=True, capture_output=True)


def plain_and_fused_outputs(native_build, tmp_path, plain, fused, qemu_cpus):
    """The output bytes of the plain and the fused model under XNNPACK numerics, {(target, "plain" |
    "fused"): bytes}, on x86 (target "x86") and on aarch64 under qemu for each qemu_cpus[target]."""
    targets = [("x86", native_build["host"], host_litert(), None)]
    targets += [(name, native_build["aarch64"], AARCH64_LIB, cpu) for name, cpu in qemu_cpus.items()]
    outs = {}
    for target, binary, lib, cpu in targets:
        for name, model in (("plain", plain), ("fused", fused)):
            out = tmp_path / f"{target}_{name}.bin"
            report = run_bench(binary, model, lib, "--output", str(out), qemu_cpu=cpu)
            assert report["custom_op_numerics"] == "xnnpack"
            outs[target, name] = out.read_bytes()
    return outs


def test_host_bench_matches_litert_interpreter(native_build, int8_model, tmp_path):
    out = tmp_path / "out.bin"
    report = run_bench(native_build["host"], int8_model, host_litert(), "--output", str(out))
    assert report["runs"] == 2 and report["min_ms"] > 0 and report["kernel_mode"] == "xnnpack" \
        and report["custom_op_numerics"] == "xnnpack"
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
    require_aarch64(native_build)
    x86_out, arm_out = tmp_path / "x86.bin", tmp_path / "arm.bin"
    # "builtin": TFLite's own int8 kernels on both sides (XNNPACK's ARM int8 requantization differs
    # by an LSB from its x86 one, so XNNPACK outputs are not bit-comparable across architectures).
    run_bench(native_build["host"], int8_model, host_litert(), "--kernel-mode", "builtin", "--output", str(x86_out))
    report = run_bench(native_build["aarch64"], int8_model, AARCH64_LIB, "--kernel-mode", "builtin",
                       "--output", str(arm_out), qemu_cpu="max")
    assert report["outputs"][0]["shape"] == [1, 1000]
    assert arm_out.read_bytes() == x86_out.read_bytes()


@pytest.mark.parametrize("model_fixture", ["int8_model", "mobile_int8_model", "mnv2_int8_model"])
def test_fused_equals_unfused_under_xnnpack_on_x86_and_aarch64(native_build, model_fixture, tmp_path, request):
    """The fused ops round like XNNPACK (fp32 requantization) on both architectures, so on each
    one the fused model's outputs equal the unfused model's under LiteRT's default XNNPACK path;
    on aarch64 this runs the NEON i8mm kernels (qemu -cpu max) next to XNNPACK's ARM kernels, for
    the mobile model the NEON depthwise kernels next to XNNPACK's ARM depthwise ones, and for
    MobileNet-v2 (tuned: every block one KcspInvertedResidual) their row bands."""
    int8_model = request.getfixturevalue(model_fixture)
    require_aarch64(native_build)
    from keras_csp.tflite import fuse

    fused = str(tmp_path / "tiny_fused.tflite")
    tune = dict(tune=True, tune_min_speedup=0.0, tune_runs=1) if model_fixture == "mnv2_int8_model" else {}
    rep = fuse(int8_model, fused, **tune)
    assert rep["fused_ops"] >= 1
    if model_fixture == "mobile_int8_model":
        assert rep["ops_after"]["KcspDepthwiseConv2D"] == 3 and any("skip_depthwise" in f for f in rep["fused"])
        assert "ADD" not in rep["ops_after"]  # the residual ADD runs inside a fused op too
    if model_fixture == "mnv2_int8_model":
        assert rep["ops_after"]["KcspInvertedResidual"] >= 3, rep["ops_after"]
        assert "DEPTHWISE_CONV_2D" not in rep["ops_after"] and "ADD" not in rep["ops_after"]
    outs = plain_and_fused_outputs(native_build, tmp_path, int8_model, fused, {"arm": "max"})
    assert outs["x86", "fused"] == outs["x86", "plain"]
    assert outs["arm", "fused"] == outs["arm", "plain"]


@pytest.mark.parametrize("per_group,stride", [(4, 1), (8, 1), (8, 2)])
def test_grouped_conv_fused_equals_unfused_on_x86_and_aarch64(native_build, tmp_path, per_group, stride):
    """ResNeXt-style grouped 3x3 convs (128 channels in groups of 4 or 8) fused under `fuse --tune`
    (a KcspConv2D with `groups`) equal LiteRT's grouped CONV_2D under XNNPACK: on x86 on this CPU's
    grouped kernel or per-group convs, on aarch64 under qemu on the NEON dotprod grouped kernel (-cpu
    max: the SME variant's; cortex-a76: neon_dotprod), whose 3x3 stride-1 blocks are assembly, and
    per-group convs on the plain NEON cortex-a53."""
    require_aarch64(native_build)
    from keras_csp import kernels as K
    from keras_csp.tflite import fuse

    c = 128
    rng = np.random.default_rng(per_group + stride)
    w = rng.integers(-127, 128, (c, 3, 3, per_group)).astype(np.int8)
    b = rng.integers(-20000, 20000, c).astype(np.int32)
    q = K.Int8Quant(0.05, -3, rng.uniform(0.001, 0.01, c).astype(np.float32), 0.08, 5, "relu")
    plain, fused = str(tmp_path / "grouped.tflite"), str(tmp_path / "grouped_fused.tflite")
    with open(plain, "wb") as f:
        f.write(K.build_tflite_model("conv", (1, 10, 10, c), w, b, q, strides=stride))
    rep = fuse(plain, fused, tune=True, tune_min_speedup=0.0, tune_runs=1)
    assert rep["ops_after"] == {"KcspConv2D": 1}, rep["ops_after"]
    assert rep["fused"][0]["conv"] == f"3x3/s{stride} {c}->{c} (grouped, {c // per_group} groups)"
    outs = plain_and_fused_outputs(native_build, tmp_path, plain, fused,
                                   {"max": "max", "a76": "cortex-a76", "a53": "cortex-a53"})
    for target in ("x86", "max", "a76", "a53"):
        assert outs[target, "fused"] == outs[target, "plain"], target


# --- the Android demo's native library and Kotlin sources ----------------------------------------

ANDROID = os.path.join(ROOT, "android_demo")
KOTLIN_SRC = os.path.join(ANDROID, "app", "src", "main", "java", "dev", "kerascsp", "demo")


def test_android_project_is_a_standard_gradle_project():
    for rel in ["settings.gradle.kts", "build.gradle.kts", "gradle/wrapper/gradle-wrapper.properties",
                "app/build.gradle.kts", "app/src/main/AndroidManifest.xml", "app/src/main/cpp/CMakeLists.txt",
                "app/src/main/res/layout/activity_main.xml", "README.md"]:
        assert os.path.exists(os.path.join(ANDROID, rel)), rel
    gradle = open(os.path.join(ANDROID, "app", "build.gradle.kts")).read()
    assert 'path = file("src/main/cpp/CMakeLists.txt")' in gradle
    assert "com.google.ai.edge.litert:litert:" in gradle
    for model in ["cspdensenet_int8", "cspdensenet_int8_fused", "densenet_int8", "densenet_int8_fused"]:
        assert f"models/{model}.tflite" in open(os.path.join(KOTLIN_SRC, "BenchReport.kt")).read()
        assert os.path.exists(os.path.join(ANDROID, "app", "src", "main", "assets", "models", f"{model}.tflite"))


def test_jni_symbol_matches_kotlin_declaration():
    kotlin = open(os.path.join(KOTLIN_SRC, "NativeBench.kt")).read()
    assert "package dev.kerascsp.demo" in kotlin and "object NativeBench" in kotlin
    assert "@JvmStatic\n    external fun runBenchmark(" in kotlin
    bridge = open(os.path.join(ANDROID, "app", "src", "main", "cpp", "jni_bridge.cc")).read()
    assert "Java_dev_kerascsp_demo_NativeBench_runBenchmark" in bridge
    kotlin = open(os.path.join(ANDROID, "app", "src", "main", "java", "dev", "kerascsp", "delegate",
                               "KerasCspDelegate.kt")).read()
    jni = open(os.path.join(ANDROID, "app", "src", "main", "cpp", "delegate_jni.cc")).read()
    for name in ("nativeCreate", "nativeDestroy", "nativeReport"):
        assert f"private external fun {name}(" in kotlin and f"Java_dev_kerascsp_delegate_KerasCspDelegate_{name}(" in jni


def test_app_native_library_builds_for_aarch64(native_build):
    if native_build["aarch64"] is None:
        pytest.fail("aarch64 cross compiler missing (scripts/install.sh installs it)")
    lib = os.path.join(os.path.dirname(native_build["aarch64"]), "libkcsp_jni.so")
    header = open(lib, "rb").read(20)
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64


def test_kotlin_app_code_runs_the_jni_library_on_a_desktop_jvm(native_build, int8_model, tmp_path):
    """Compiles NativeBench.kt + BenchReport.kt (the app's non-UI code) with kotlinc and runs them
    against the host build of libkcsp_jni.so: Kotlin -> JNI -> runner -> LiteRT, as on the phone."""
    if not shutil.which("kotlinc"):
        pytest.fail("kotlinc missing (scripts/install.sh installs Debian's kotlin)")
    jar = tmp_path / "hostcheck.jar"
    subprocess.run(["kotlinc", os.path.join(KOTLIN_SRC, "NativeBench.kt"), os.path.join(KOTLIN_SRC, "BenchReport.kt"),
                    os.path.join(ANDROID, "hostcheck", "HostCheck.kt"), "-include-runtime", "-d", str(jar)],
                   check=True, capture_output=True, timeout=600)
    csp = tmp_path / "cspdensenet_int8.tflite"
    shutil.copy(int8_model, csp)
    jni = os.path.join(os.path.dirname(native_build["host"]), "libkcsp_jni.so")
    proc = subprocess.run(["java", "-cp", str(jar), "HostCheckKt", jni, host_litert(), "", str(csp)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "CSP-DenseNet builtin" in proc.stdout
    assert "fused-op int8 kernels: " in proc.stdout  # the variant this CPU dispatches to
    export = json.loads(proc.stdout.strip().splitlines()[-1])
    assert export["runs"][0]["result"]["outputs"][0]["shape"] == [1, 1000]
    # a missing model comes back as an error row, not a crash
    proc = subprocess.run(["java", "-cp", str(jar), "HostCheckKt", jni, host_litert(), "",
                           str(tmp_path / "missing.tflite")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "model file not found" in proc.stdout


@pytest.mark.parametrize("qemu_cpu,variant", [("max", "sme"), ("max,sme=off", "neon_i8mm"), ("cortex-a76", "neon_dotprod"),
                                               ("cortex-a53", "neon")])
def test_fused_model_on_aarch64_under_qemu_equals_x86(native_build, int8_model, tmp_path, qemu_cpu, variant):
    """The fused int8 model: each NEON int8 variant (picked by dispatch on the emulated core) vs
    the x86 kernels, byte for byte."""
    require_aarch64(native_build)
    from keras_csp.tflite import fuse
    fused = str(tmp_path / "fused.tflite")
    assert len(fuse(int8_model, fused)["fused"]) > 0
    x86_out, arm_out = tmp_path / "x86.bin", tmp_path / "arm.bin"
    x86 = run_bench(native_build["host"], fused, host_litert(), "--kernel-mode", "builtin", "--output", str(x86_out))
    arm = run_bench(native_build["aarch64"], fused, AARCH64_LIB, "--kernel-mode", "builtin", "--output",
                    str(arm_out), qemu_cpu=qemu_cpu)
    assert x86["fused_ops"] and arm["fused_ops"]  # our custom ops ran on both
    assert arm["int8_variant"] == variant
    assert arm_out.read_bytes() == x86_out.read_bytes()


def test_winograd_fused_model_on_x86_and_plain_neon_equals_direct(native_build, int8_model, tmp_path):
    """KERAS_CSP_WINOGRAD=force: the fused model's 3x3 stride-1 convs (images of 8x8 and less, direct by
    default) run as Winograd F(2x2, 3x3) on AVX2 (x86, where the CPU dispatches it) and on plain NEON
    (qemu -cpu cortex-a53); the output bytes equal the direct kernels' on both."""
    require_aarch64(native_build)
    from keras_csp.tflite import fuse
    fused = str(tmp_path / "fused.tflite")
    assert len(fuse(int8_model, fused)["fused"]) > 0
    outs = {}
    for mode, env in (("direct", {"KERAS_CSP_WINOGRAD": "0"}), ("winograd", {"KERAS_CSP_WINOGRAD": "force"})):
        for target, binary, lib, cpu in (("x86", native_build["host"], host_litert(), None),
                                         ("a53", native_build["aarch64"], AARCH64_LIB, "cortex-a53")):
            out = tmp_path / f"{target}_{mode}.bin"
            report = run_bench(binary, fused, lib, "--kernel-mode", "builtin", "--output", str(out), qemu_cpu=cpu,
                               env=env)
            assert report["fused_ops"]
            outs[target, mode] = out.read_bytes()
    assert report["int8_variant"] == "neon"
    assert outs["x86", "winograd"] == outs["x86", "direct"]
    assert outs["a53", "winograd"] == outs["a53", "direct"] == outs["x86", "direct"]


def test_kotlin_delegate_class_and_stock_column_compile_and_load_the_delegate(native_build, tmp_path):
    """KerasCspDelegate.kt + StockBench.kt (the app's third column) compile against compile-only
    stubs of LiteRT's Java API (hostcheck/stubs) and drive the host build of libkeras_csp_delegate.so
    on a desktop JVM: handle, report, refusals with a message, close. The Java Interpreter itself
    (LiteRT's AAR) is not available here."""
    if not shutil.which("kotlinc"):
        pytest.fail("kotlinc missing (scripts/install.sh installs Debian's kotlin)")
    stubs = tmp_path / "stubs"
    src = os.path.join(ANDROID, "hostcheck", "stubs", "org", "tensorflow", "lite")
    subprocess.run(["javac", "-d", str(stubs)] + [os.path.join(src, f) for f in sorted(os.listdir(src))],
                   check=True, capture_output=True, timeout=300)
    jar = tmp_path / "delegatecheck.jar"
    delegate_src = os.path.join(ANDROID, "app", "src", "main", "java", "dev", "kerascsp", "delegate")
    subprocess.run(["kotlinc", "-cp", str(stubs), os.path.join(delegate_src, "KerasCspDelegate.kt"),
                    os.path.join(KOTLIN_SRC, "StockBench.kt"), os.path.join(KOTLIN_SRC, "BenchReport.kt"),
                    os.path.join(ANDROID, "hostcheck", "DelegateCheck.kt"), "-include-runtime", "-d", str(jar)],
                   check=True, capture_output=True, timeout=600)
    lib = os.path.join(os.path.dirname(native_build["host"]), "libkeras_csp_delegate.so")
    proc = subprocess.run(["java", "-cp", f"{jar}:{stubs}", "DelegateCheckKt", lib],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "runtime version 2.9.0 is untested" in proc.stdout and "stock+dlg median 2.0" in proc.stdout
    if native_build["aarch64"]:
        header = open(os.path.join(os.path.dirname(native_build["aarch64"]), "libkeras_csp_delegate.so"), "rb").read(20)
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64


@pytest.fixture(scope="module")
def fused_tiny(int8_model, tmp_path_factory):
    from keras_csp.tflite.fuse import fuse
    dst = str(tmp_path_factory.mktemp("delegate") / "tiny_fused.tflite")
    # 6 CSP ops, the 3-channel stem conv (KcspConv2D), the 2 transition average pools (KcspAvgPool2D)
    assert fuse(int8_model, dst)["fused_ops"] == 9
    return dst


@pytest.mark.parametrize("qemu_cpu", ["max", "max,sme512=on", "cortex-a53"])
def test_aarch64_delegate_in_the_stock_aarch64_interpreter_equals_x86(native_build, int8_model, fused_tiny,
                                                                     tmp_path, qemu_cpu):
    """The aarch64 libkeras_csp_delegate.so, loaded by the aarch64 ai-edge-litert wheel's stock
    interpreter (an aarch64 Python under qemu), runs the fused tiny model (3 CspDenseBlock +
    3 CspPartialConv) with outputs equal byte for byte to the x86 run of the same script and to the
    plain int8 model. TFLite's builtin kernels run the rest on both (the two XNNPACK builds round
    differently, see README); qemu -cpu max dispatches the SME kernels (256-bit streaming vectors,
    512 with sme512=on), cortex-a53 plain NEON."""
    from tests.toolchain import require

    require("qemu-aarch64", "aarch64-g++", "aarch64-python")
    script = os.path.join(TOOLS, "stock_delegate_run.py")
    x86_lib = os.path.join(os.path.dirname(native_build["host"]), "libkeras_csp_delegate.so")
    arm_lib = os.path.join(os.path.dirname(native_build["aarch64"]), "libkeras_csp_delegate.so")
    subprocess.run([sys.executable, script, x86_lib, fused_tiny, str(tmp_path / "x86.npy")], check=True,
                   capture_output=True, timeout=300)
    proc = subprocess.run([os.path.join(TOOLS, "run_aarch64_python.sh"), "-cpu", qemu_cpu, script, arm_lib,
                           fused_tiny, str(tmp_path / "arm.npy")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    x86, arm = np.load(tmp_path / "x86.npy"), np.load(tmp_path / "arm.npy")
    assert x86.shape == (4, 1, 1000) and np.array_equal(x86, arm)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=int8_model, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rng = np.random.default_rng(0)  # the script's inputs
    for k in range(4):
        it.set_tensor(inp["index"], rng.integers(-128, 128, size=inp["shape"]).astype(np.int8))
        it.invoke()
        np.testing.assert_array_equal(it.get_tensor(out["index"]), x86[k])
