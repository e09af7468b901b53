"""CI smoke for hardening/: builds the libFuzzer targets (clang -fsanitize=fuzzer,address,undefined),
replays every seed + regression input (crashes fixed earlier must stay fixed) and fuzzes each
target for a few seconds. Long runs: hardening/fuzz/run.sh TARGET SECONDS (see hardening/README.md).
"""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "hardening", "fuzz")
SMOKE_SECONDS = int(os.environ.get("KCSP_FUZZ_SMOKE_SECONDS", "10"))
TARGETS = ["custom_options", "kernels", "tflite", "delegate"]


def _sh(args, timeout):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, errors="replace",
                       timeout=timeout, env=env)
    return p.returncode, p.stdout + p.stderr


@pytest.fixture(scope="module")
def fuzzers():
    clang = shutil.which("clang")
    if clang is None:
        pytest.fail("clang not found: the fuzz targets need clang with libFuzzer "
                    "(bash scripts/install.sh installs it)")
    rt = subprocess.run([clang, "-print-file-name=libclang_rt.fuzzer-x86_64.a"],
                        capture_output=True, text=True).stdout.strip()
    if not os.path.isfile(rt):
        pytest.fail(f"clang's libFuzzer runtime is missing ({rt}); install clang / libclang-rt-dev "
                    "(bash scripts/install.sh)")
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.fail("atheris is not installed (pip install atheris; scripts/install.sh does it)")
    rc, out = _sh(["bash", os.path.join(FUZZ, "build.sh")], timeout=900)
    assert rc == 0, f"fuzz target build failed:\n{out[-4000:]}"
    return os.path.join(ROOT, "hardening", "build", "fuzz")


@pytest.mark.parametrize("target", TARGETS)
def test_regression_inputs(fuzzers, target):
    rc, out = _sh(["bash", os.path.join(FUZZ, "run.sh"), target, "regress"], timeout=300)
    assert rc == 0, f"{target}: a seed or regression input fails:\n{out[-4000:]}"
    assert "Executed" in out or "Done" in out, out[-2000:]


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_smoke(fuzzers, target):
    rc, out = _sh(["bash", os.path.join(FUZZ, "run.sh"), target, str(SMOKE_SECONDS)],
                  timeout=SMOKE_SECONDS + 240)
    assert rc == 0, f"{target}: the fuzzer found a crash:\n{out[-6000:]}"
    assert "stat::number_of_executed_units" in out, out[-2000:]


def test_fuzzer_rss_limit_ignores_the_parents_peak(fuzzers):
    """run.sh started from a process with a large peak RSS (a pytest worker that has loaded TensorFlow)
    must not hand that peak to libFuzzer's -rss_limit_mb check: run with exec, the fuzzer reported
    out-of-memory on its first inputs (all three libFuzzer targets, in a full pytest run)."""
    code = (
        "import subprocess, sys\n"
        "big = bytearray(1000 * 2**20)\n"  # touched: 1000 MB of peak RSS in this parent
        "for i in range(0, len(big), 4096): big[i] = 1\n"
        # 3 s: libFuzzer checks the peak RSS once a second
        "p = subprocess.run(['bash', sys.argv[1], 'custom_options', '3', '-rss_limit_mb=900'],"
        " capture_output=True, text=True)\n"
        "sys.stdout.write(p.stdout + p.stderr)\n"
        "sys.exit(p.returncode)\n")
    rc, out = _sh(["python3", "-c", code, os.path.join(FUZZ, "run.sh")], timeout=300)
    assert rc == 0 and "out-of-memory" not in out, out[-3000:]
    assert "stat::number_of_executed_units" in out, out[-2000:]
