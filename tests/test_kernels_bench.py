"""Smoke test of the kernel benchmark (`keras-csp bench-kernels`): JSON schema and sanity."""
import json

from click.testing import CliRunner

from keras_csp.benchmark import kernels as bench
from keras_csp.cli.bench import bench_kernels_command


def test_shape_table_covers_the_three_models():
    shapes = bench.shape_table()
    models = {s["model"] for s in shapes}
    assert models == {"cspdensenet121", "densenet121", "cspresnet50"}
    assert {s["hw"] for s in shapes} == {224, 56, 28, 14, 7}  # 224: the 7x7/2 stem's input
    stem, = [s for s in shapes if s.get("stride") == 2]
    assert (stem["cin"], stem["k"], stem["cout"]) == (3, 7, 64)
    assert {s["kind"] for s in shapes} == {"conv_slice", "append", "csp", "conv"}
    assert all(s["cout"] == 32 for s in shapes if s["kind"] == "append")  # growth rate
    quick = bench.shape_table(quick=True)
    assert 0 < len(quick) < len(shapes) and stem in quick


def test_bench_kernels_cli_quick_json(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(bench_kernels_command, ["--quick", "--budget", "0.01", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["shapes"] and data["geomean_speedup"] > 0
    for row in data["shapes"]:
        assert {"shape", "ours_ms", "xnnpack_ms", "speedup"} <= set(row)
        assert row["ours_ms"] > 0 and row["xnnpack_ms"] > 0
        # Both sides requantize in fp32 (our "xnnpack" numerics): the same bits.
        assert row["max_abs_diff_vs_xnnpack"] == 0
    if data["peak_gmacs"]:
        assert 0 < data["peak_fraction"] < 2
