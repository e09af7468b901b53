"""The native extension is built by `pip install` and answers."""
import keras_csp._kernels as native


def test_cpu_feature_query():
    features = native.cpu_features()
    assert {"avx2", "avxvnni", "avx512vnni", "neon_dotprod"} <= set(features)
    assert native.compiled_arch() in ("x86_64", "aarch64", "generic")
    if native.compiled_arch() == "aarch64":
        assert features["neon"]
