"""The x86 kernels pass the C++ reference tests (kernels/tests/test_kernels.cc) natively, the
avxvnni variant included wherever the CPU has AVX-512 VNNI: the harness is built with
KCSP_AVXVNNI_AS_EVEX, which runs that variant's code with the EVEX encoding of its 256-bit
vpdpbusd (same semantics), so CPUs without AVX-VNNI (Zen 4, older Xeons) test it too. The Python
extension never uses that build option.
"""
import platform
import subprocess
from pathlib import Path

import pytest
from toolchain import require

from keras_csp import kernels as K

KERNELS = Path(__file__).resolve().parent.parent / "kernels"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 only")
def test_x86_kernels_and_avxvnni_as_evex(tmp_path):
    require("cmake")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(KERNELS), "-B", str(build), "-DKCSP_AVXVNNI_AS_EVEX=ON"], check=True,
                   capture_output=True, text=True, timeout=300)
    subprocess.run(["cmake", "--build", str(build), "-j2", "--target", "test_kernels"], check=True,
                   capture_output=True, text=True, timeout=900)
    features = K.cpu_features()
    args = [str(build / "test_kernels"), "--trials", "60"]
    if features["avx512vnni"] or features["avxvnni"]:
        args += ["--expect", "avxvnni"]  # natively, or as EVEX (every AVX-512 VNNI CPU has VL)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert " 0 failures" in out
    print(out.splitlines()[0])  # which variants ran (pytest -s)
