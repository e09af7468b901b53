import os
import subprocess
import sys
import textwrap

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# The kernel variants with a grouped conv kernel (groups of 4 or 8 channels in and out): every SIMD
# variant but plain NEON; the others run one conv per group.
# (amx: the AVX-512 VNNI grouped kernels run on AMX CPUs)
GROUPED_KERNEL_VARIANTS = ("avx512vnni", "amx", "avxvnni", "avx2", "neon_dotprod", "neon_i8mm", "sme")
# ... and for groups of 16 or 32 channels
WIDE_GROUPED_KERNEL_VARIANTS = ("avx512vnni", "amx", "avx2")


def run_python(code, legacy=False, timeout=900):
    """Run `code` in a fresh interpreter (TF_USE_LEGACY_KERAS is only read when TF is imported)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_USE_LEGACY_KERAS="1" if legacy else "0")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


@pytest.fixture
def python_subprocess():
    return run_python


def pytest_report_header(config):
    """Which kernel variants this CPU runs (the others are skipped with the reason; CPUs differ
    between this project's machines)."""
    try:
        from keras_csp import _kernels, kernels as K
    except ImportError as e:  # the extension is not built: the tests will say so
        return f"keras-csp kernels: not importable ({e})"
    model = ""
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    except OSError:
        pass
    feats = sorted(k for k, v in K.cpu_features().items() if v)
    return (f"keras-csp kernels on {model or _kernels.compiled_arch()}: int8 variants run here "
            f"{K.available_variants()}, float32 {K.available_variants(True)}; CPU features {feats}")
