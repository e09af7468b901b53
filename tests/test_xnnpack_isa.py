"""keras_csp.benchmark.xnnpack_isa: XNNPACK held to the kernels of a smaller x86 CPU (each capping test in
its own process: the cap, and the AMX denial it brings, last for the life of the process)."""
import functools
import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64",
                                reason="capping XNNPACK's ISA works on Linux x86-64 only")

# An int8 3x3 conv through the XNNPACK interpreter; prints its output's bytes (hex).
_RUN_CONV = """
    import numpy as np
    from keras_csp import kernels as K
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (48, 3, 3, 40), dtype=np.int8)
    b = rng.integers(-5000, 5000, 48).astype(np.int32)
    q = K.Int8Quant(0.05, 3, list(rng.uniform(0.002, 0.02, 48)), 0.3, -7, rounding="fp32")
    x = rng.integers(-128, 128, (1, 20, 20, 40), dtype=np.int8)
    it = K.make_interpreter(K.build_tflite_model("conv", x.shape, w, b, q), "xnnpack")
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    print("out", it.get_tensor(it.get_output_details()[0]["index"]).tobytes().hex())
"""


def _python(*parts, timeout=300):
    code = "\n".join(textwrap.dedent(p) for p in parts)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@functools.lru_cache(maxsize=None)
def _features():
    return json.loads(_python("import json; from keras_csp import kernels as K; print(json.dumps(K.cpu_features()))"))


def test_capped_xnnpack_gives_the_same_bytes_and_keeps_only_the_level_bits():
    if not _features().get("avx2"):
        pytest.skip("this CPU has no AVX2")
    plain = _python(_RUN_CONV).split("out ")[1]
    out = _python("""
        import json
        from keras_csp.amx import amx_denied
        from keras_csp.benchmark.xnnpack_isa import cap_xnnpack_isa, xnnpack_isa_cap
        cap = cap_xnnpack_isa("avx2")
        print("cap", json.dumps(cap), amx_denied(), json.dumps(xnnpack_isa_cap()))
    """, _RUN_CONV)
    cap_line = next(line for line in out.splitlines() if line.startswith("cap "))
    cap = json.loads(cap_line.split(" ", 1)[1].split(" True ")[0])
    assert " True " in cap_line  # AMX denied along with the cap
    assert cap["level"] == "avx2" and int(cap["arch_flags"], 16) == 0xFF
    assert int(cap["arch_flags_before"], 16) & 0xFF == 0xFF
    assert out.split("out ")[1] == plain  # XNNPACK's kernels are bit-exact across its ISAs


def test_cap_after_xnnpack_ran_int8_ops_raises():
    # AMX denied first, so that the check under test is the operators', not the AMX denial's.
    out = _python("from keras_csp.amx import deny_amx; deny_amx()", _RUN_CONV, """
    from keras_csp.benchmark.xnnpack_isa import cap_xnnpack_isa
    try:
        cap_xnnpack_isa("avx2")
    except RuntimeError as e:
        print("raised:", e)
    """)
    assert "raised: XNNPACK already created int8 operators" in out


def test_level_the_cpu_lacks_or_unknown_raises():
    from keras_csp.benchmark.xnnpack_isa import cap_xnnpack_isa
    with pytest.raises(ValueError, match="unknown XNNPACK ISA level"):
        cap_xnnpack_isa("sse2")
    features = _features()
    lacking = [lvl for lvl, f in (("avxvnni", "avxvnni"), ("avx512vnni", "avx512vnni")) if not features.get(f)]
    if not lacking:
        pytest.skip("this CPU has every level")
    out = _python(f"""
        from keras_csp.benchmark.xnnpack_isa import cap_xnnpack_isa
        try:
            cap_xnnpack_isa({lacking[0]!r})
        except RuntimeError as e:
            print("raised:", e)
    """)
    assert "raised:" in out and "this CPU has no" in out


def test_a_library_without_the_symbols_is_refused(tmp_path):
    from keras_csp.benchmark.xnnpack_isa import _symbols
    not_elf = tmp_path / "x.so"
    not_elf.write_bytes(b"not an ELF file at all")
    with pytest.raises(RuntimeError, match="not a little-endian ELF64"):
        _symbols(str(not_elf), {"hardware_config"})
    import ai_edge_litert
    lite = os.path.join(os.path.dirname(ai_edge_litert.__file__), "libLiteRt.so")  # stripped
    with pytest.raises(RuntimeError, match="no symbol table entries for hardware_config"):
        _symbols(lite, {"hardware_config"})


def test_bench_kernels_records_the_cap(tmp_path):
    if not _features().get("avx2"):
        pytest.skip("this CPU has no AVX2")
    path = tmp_path / "k.json"
    r = subprocess.run([sys.executable, "-m", "keras_csp", "bench-kernels", "--quick", "--budget", "0.02",
                        "--variant", "avx2", "--xnnpack-isa", "avx2", "--json", str(path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(path.read_text())
    assert d["xnnpack_isa_cap"]["level"] == "avx2" and d["xnnpack_isa_cap"]["arch_flags"] == "0xff"
    assert d["amx_denied"] is True
    assert "XNNPACK held to avx2" in r.stdout


def test_bench_runs_every_variant_in_the_capped_stock_interpreter(tmp_path):
    if not _features().get("avx2"):
        pytest.skip("this CPU has no AVX2")
    from keras_csp.tflite.testing import make_dense_block_model
    src = str(make_dense_block_model(tmp_path / "dense.tflite"))
    bench = [sys.executable, "-m", "keras_csp", "bench", src, "--fused", "--xnnpack-isa", "avx2", "--runs", "3",
             "--warmup", "1", "--no-profile"]
    r = subprocess.run(bench, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "--xnnpack-isa needs --no-tune" in r.stderr  # tuning would time uncapped ops
    for extra in ([], ["--isolated", "1"]):  # interleaved in this process, and alone in child processes
        path = tmp_path / f"b{len(extra)}.json"
        r = subprocess.run(bench + ["--no-tune", "--json", str(path)] + extra, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "(XNNPACK held to avx2)" in r.stdout
        rep = json.loads(path.read_text())
        assert rep["machine"]["xnnpack_isa_cap"]["level"] == "avx2" and rep["machine"]["amx_denied"] is True
        rows = {row["kind"]: row for row in rep["results"]}
        assert set(rows) == {"builtin", "stock+delegate"}  # no keras_csp.runtime variant: its XNNPACK is not capped
        assert all(row["runs"] == 3 and "error" not in row for row in rows.values())
        assert rows["stock+delegate"]["speedup_vs_builtin"] > 0


def test_capping_twice_keeps_the_first_level():
    if not _features().get("avxvnni"):
        pytest.skip("this CPU has no AVX-VNNI")
    out = _python("""
        from keras_csp.benchmark.xnnpack_isa import cap_xnnpack_isa
        first = cap_xnnpack_isa("avxvnni")
        assert cap_xnnpack_isa("avxvnni") == first
        try:
            cap_xnnpack_isa("avx2")
        except RuntimeError as e:
            print("raised:", e)
    """)
    assert "raised: XNNPACK is already held to avxvnni" in out
