"""kernels/tools/x86_step_probe.py: the AVX2 K-step loops are what they claim, and they run."""
import importlib.util
import os
import platform
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("x86_step_probe",
                                               os.path.join(ROOT, "kernels", "tools", "x86_step_probe.py"))
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def test_every_loop_keeps_its_accumulators_apart():
    # assemble() asserts the vpmaddwd count, the 16-register budget and that nothing but vpaddd
    # writes an accumulator.
    asm, counts = probe.assemble(list(probe.LOOPS))
    assert counts[list(probe.LOOPS).index("avx2_5x16")] == 20  # two steps of 5 pixels x 2 vectors
    assert counts[list(probe.LOOPS).index("avx2_5x16sx")] == 20
    assert asm.count("vpmovsxbw") == 4  # the committed kernel's int8 weights: 2 loads per step
    assert asm.count(".p2align 6") == len(probe.LOOPS)


def test_a_clobbered_accumulator_is_refused():
    body = ["vpmaddwd %ymm14, %ymm15, %ymm1", "vpaddd %ymm1, %ymm0, %ymm0", "vpaddd %ymm1, %ymm1, %ymm1"]
    with pytest.raises(AssertionError, match="accumulators"):
        probe.check_registers("bad", body)


@pytest.mark.skipif(platform.machine() != "x86_64" or not probe.has_avx2() or shutil.which("g++") is None,
                    reason="needs x86-64 with AVX2 and g++")
def test_probe_runs_and_reports_ratios_to_the_peak_loop():
    names = ["peak", "avx2_5x16", "avx2_3x8c8"]
    rows = probe.summarize(probe.run(names, rounds=2, madds=2_000_000))
    assert set(rows) == set(names)
    assert rows["peak"]["vs_peak_median"] == 1.0
    for r in rows.values():
        assert r["best_gmadd_s"] > 0 and r["median_gmadd_s"] > 0
