"""Smoke test of the kernel benchmark (`keras-csp bench-kernels`): JSON schema and sanity."""
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

from click.testing import CliRunner

from keras_csp.benchmark import kernels as bench
from keras_csp.cli.bench import bench_kernels_command
from conftest import GROUPED_KERNEL_VARIANTS


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


def test_yolo_shape_set_is_the_yolov8n_backbone():
    shapes = bench.shape_table(shapes="yolo")
    assert {s["model"] for s in shapes} == {"yolov8n"} and {s["kind"] for s in shapes} == {"conv"}
    down = [s for s in shapes if s.get("stride") == 2]
    assert [(s["hw"], s["cin"], s["cout"]) for s in down] == [(160, 16, 32), (80, 32, 64), (40, 64, 128),
                                                              (20, 128, 256)]
    # C2f: cv2 reads (2 + n) halves (n = 1, 2, 2, 1); the bottleneck 3x3 keeps the half's width
    cv2 = [(s["hw"], s["cin"], s["cout"]) for s in shapes if s["k"] == 1]
    assert cv2 == [(80, 48, 32), (40, 128, 64), (20, 256, 128), (10, 384, 256)]
    assert (80, 16, 16) in [(s["hw"], s["cin"], s["cout"]) for s in shapes if s["k"] == 3 and "stride" not in s]
    assert 0 < len(bench.shape_table(quick=True, shapes="yolo")) < len(shapes)
    try:
        bench.shape_table(shapes="imagenet")
    except ValueError as e:
        assert "imagenet" in str(e)
    else:
        raise AssertionError("an unknown shape set must raise")


def _bench_kernels_json(tmp_path, *args):
    """`keras-csp bench-kernels --quick --budget 0.01 ARGS --json FILE`: the JSON it wrote."""
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(bench_kernels_command, ["--quick", "--budget", "0.01", *args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_bench_kernels_cli_quick_json(tmp_path):
    data = _bench_kernels_json(tmp_path)
    assert data["shapes"] and data["geomean_speedup"] > 0
    for row in data["shapes"]:
        assert {"shape", "ours_ms", "xnnpack_ms", "speedup"} <= set(row)
        assert row["ours_ms"] > 0 and row["xnnpack_ms"] > 0
        # Both sides requantize in fp32 (our "xnnpack" numerics): the same bits.
        assert row["max_abs_diff_vs_xnnpack"] == 0
    if data["peak_gmacs"]:
        assert 0 < data["peak_fraction"] < 2
        # The window's peak loops also feed the run's best peak: a shape's window peak is at most
        # the run's peak of its instruction, so its window fraction is at least its peak fraction.
        for row in data["shapes"]:
            assert 0 < row["window_peak_gmacs"] <= data["peak_gmacs"]
            assert row["window_peak_fraction"] >= row["peak_fraction"] - 1e-3
        fractions = [row["window_peak_fraction"] for row in data["shapes"]]
        assert data["shapes_at_85pct_of_window_peak"] == sum(f >= 0.85 for f in fractions)
        assert data["shapes_at_85pct_of_peak"] <= data["shapes_at_85pct_of_window_peak"]


class _CountingCase:
    """Stand-in for bench._Case: counts the calls of each side."""

    def __init__(self):
        self.calls = {"ours": 0, "xnn": 0, "conv": 0}

        class _It:
            def __init__(it, key):
                it.invoke = lambda: self.calls.__setitem__(key, self.calls[key] + 1)

        self.run_ours = lambda: self.calls.__setitem__("ours", self.calls["ours"] + 1)
        self.it, self.it_conv = _It("xnn"), _It("conv")


def test_time_pair_bursts_time_all_but_the_first_call_of_each_burst():
    case = _CountingCase()
    ours, xnn, conv = bench._time_pair(case, budget_s=0.0, min_reps=6, burst=3)
    # 3 rounds of 3 calls per side (plus 2 warm-up calls of ours and XNNPACK), 2 timed per round
    assert (len(ours), len(xnn), len(conv)) == (6, 6, 6)
    assert case.calls == {"ours": 11, "xnn": 11, "conv": 9}
    case = _CountingCase()
    ours, xnn, conv = bench._time_pair(case, budget_s=0.0, min_reps=4)
    assert (len(ours), len(xnn), len(conv)) == (4, 4, 4) and case.calls == {"ours": 6, "xnn": 6, "conv": 4}


def test_time_pair_probes_the_peak_before_between_and_after_the_rounds():
    case, stamps = _CountingCase(), []
    bench._time_pair(case, budget_s=0.0, min_reps=3, probe=lambda: stamps.append(case.calls["ours"]))
    # budget 0: every round is past the next probe time (3 rounds after 2 warm-up calls of ours)
    assert stamps == [2, 3, 4, 5, 5]
    case, stamps = _CountingCase(), []
    bench._time_pair(case, budget_s=60.0, min_reps=3, max_reps=3, probe=lambda: stamps.append(case.calls["ours"]))
    assert stamps == [2, 5]  # max_reps reached long before the first probe between rounds is due


def test_bench_kernels_cli_burst_is_recorded(tmp_path):
    data = _bench_kernels_json(tmp_path, "--burst", "2")
    assert data["burst"] == 2 and "first call of each burst not timed" in data["burst_timing"]


def test_bench_kernels_cli_rounds_pool_every_pass_of_each_shape(tmp_path):
    two = _bench_kernels_json(tmp_path, "--rounds", "2")
    assert two["rounds"] == 2
    # --budget 0.01: each pass gives a shape at least _time_pair's 5 repetitions, all kept
    assert all(r["reps"] >= 10 for r in two["shapes"])
    assert [r["shape"] for r in two["shapes"]] == [s["shape"] for s in bench.shape_table(True, "csp")]
    assert all(r["max_abs_diff_vs_xnnpack"] == 0 for r in two["shapes"])
    refused = CliRunner().invoke(bench_kernels_command, ["--k-sweep", "--rounds", "2"])
    assert refused.exit_code == 2 and "--rounds" in refused.output
    try:
        bench.run(quick=True, rounds=0)
    except ValueError as e:
        assert "rounds" in str(e)
    else:
        raise AssertionError("rounds = 0 must raise")


def test_bench_kernels_cli_yolo_shapes(tmp_path):
    data = _bench_kernels_json(tmp_path, "--shapes", "yolo")
    assert data["shape_set"] == "yolo" and {r["model"] for r in data["shapes"]} == {"yolov8n"}
    assert all(r["max_abs_diff_vs_xnnpack"] == 0 for r in data["shapes"])


def test_mobile_shape_set_is_the_mobile_models_depthwise_convs():
    shapes = bench.shape_table(shapes="mobile")
    assert {s["kind"] for s in shapes} == {"depthwise"} and {s["model"] for s in shapes} == {"mobilenetv2",
                                                                                            "cspmobilenetv2"}
    # MobileNet-v2's multiplier-1 convs (cout == cin), CSPMobileNet-v2's x2 (cout == 2 cin)
    assert all(s["cout"] == s["cin"] * (1 if s["model"] == "mobilenetv2" else 2) for s in shapes)
    assert (112, 32, 1) in [(s["hw"], s["cin"], s["stride"]) for s in shapes if s["model"] == "mobilenetv2"]
    assert 0 < len(bench.shape_table(quick=True, shapes="mobile")) < len(shapes)


def test_bench_kernels_cli_mobile_shapes(tmp_path):
    """The depthwise shapes run our Int8Depthwise against LiteRT's DEPTHWISE_CONV_2D, the same bits."""
    data = _bench_kernels_json(tmp_path, "--shapes", "mobile")
    assert data["shape_set"] == "mobile" and {r["kind"] for r in data["shapes"]} == {"depthwise"}
    assert all(r["max_abs_diff_vs_xnnpack"] == 0 and r["macs"] > 0 for r in data["shapes"])


def test_resnext_shape_set_is_resnext50s_grouped_convs():
    shapes = bench.shape_table(shapes="resnext")
    assert {s["kind"] for s in shapes} == {"grouped"} and {s["groups"] for s in shapes} == {32}
    # 32 groups of 4, 8, 16 and 32 channels, in == out
    assert sorted({s["cin"] // s["groups"] for s in shapes}) == [4, 8, 16, 32]
    assert all(s["cin"] == s["cout"] for s in shapes)
    assert (56, 128, 1) in [(s["hw"], s["cin"], s["stride"]) for s in shapes]
    assert 0 < len(bench.shape_table(quick=True, shapes="resnext")) < len(shapes)


def test_bench_kernels_cli_resnext_shapes(tmp_path):
    """The grouped shapes run our Int8GroupedConv against LiteRT's grouped CONV_2D, the same bits; the
    MACs count only each group's own input channels; the variant says where per-group convs ran."""
    data = _bench_kernels_json(tmp_path, "--shapes", "resnext")
    assert data["shape_set"] == "resnext" and {r["kind"] for r in data["shapes"]} == {"grouped"}
    assert all(r["max_abs_diff_vs_xnnpack"] == 0 for r in data["shapes"])
    first = data["shapes"][0]  # 56x56, 128 channels in 32 groups of 4, 3x3 at stride 1
    assert first["macs"] == 56 * 56 * 128 * 9 * 4
    grouped_kernel = data["variant"] in GROUPED_KERNEL_VARIANTS
    assert first["variant"].endswith("per group") == (data["variant"] != "scalar" and not grouped_kernel)


def test_k_sweep_fit_recovers_a_line():
    from keras_csp.benchmark.ksweep import fit_line
    a, b, r2 = fit_line([64, 128, 256, 512], [35.0 + 1.5 * k for k in (64, 128, 256, 512)])
    assert abs(a - 35.0) < 1e-9 and abs(b - 1.5) < 1e-12 and abs(r2 - 1.0) < 1e-12
    a, b, r2 = fit_line([1, 2, 3, 4], [1.0, 3.0, 2.0, 4.0])  # a noisy line: r^2 below 1
    assert abs(b - 0.8) < 1e-9 and abs(a - 0.5) < 1e-9 and 0 < r2 < 1


def test_bench_kernels_cli_k_sweep(tmp_path):
    """--k-sweep --quick: one small config; the slope is MACs per K over the fitted time per K."""
    out = tmp_path / "ksweep.json"
    result = CliRunner().invoke(bench_kernels_command, ["--k-sweep", "--quick", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    row, = data["configs"]
    assert row["k"] == [row["kernel"] ** 2 * c for c in row["in_channels"]]
    assert len(row["best_us"]) == len(row["k"]) and all(t > 0 for t in row["best_us"])
    outputs = row["out_hw"] ** 2 * row["out_channels"]
    if row["slope_gmacs"]:
        assert abs(row["slope_gmacs"] - outputs / (row["slope_us_per_k"] * 1e-6) / 1e9) < 0.01 * row["slope_gmacs"]
    assert abs(row["fixed_ns_per_output"] - row["intercept_us"] * 1e3 / outputs) < 1e-3
    assert {"processor", "cpu_features", "amx_denied", "peak_loops_gmacs"} <= set(data)


def test_k_sweep_compares_avx2_with_its_exact_loop(tmp_path):
    """avx2's kernels run vpmaddwd: the sweep's peak is that exact loop, not the faster saturating one."""
    from keras_csp import kernels as K
    if "avx2" not in K.available_variants():
        pytest.skip("no AVX2 on this CPU")
    out = tmp_path / "ksweep_avx2.json"
    result = CliRunner().invoke(bench_kernels_command, ["--k-sweep", "--quick", "--variant", "avx2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    row, = data["configs"]
    exact = [g for m, g in data["peak_loops_gmacs"].items() if m.startswith("avx2 ") and "exact" in m]
    assert row["variant"] == "avx2" and exact and row["peak_gmacs"] == round(max(exact), 2)


def test_bench_kernels_rates_avx2_shapes_against_its_exact_loop(tmp_path):
    """Per shape too: avx2's shapes against vpmaddwd's loop (the run's and their window's)."""
    from keras_csp import kernels as K
    if "avx2" not in K.available_variants():
        pytest.skip("no AVX2 on this CPU")
    data = _bench_kernels_json(tmp_path, "--variant", "avx2")
    exact = [g for m, g in data["peak_loops_gmacs"].items() if m.startswith("avx2 ") and "exact" in m]
    fastest = max(g for m, g in data["peak_loops_gmacs"].items() if m.startswith("avx2 "))
    assert exact and max(exact) < fastest  # the saturating loop is the faster one
    for row in data["shapes"]:
        assert row["variant"] == "avx2"
        assert row["peak_fraction"] == pytest.approx(row["ours_gmacs"] / max(exact), abs=1e-3)
        assert row["window_peak_gmacs"] <= round(max(exact), 2)
        # Winograd F(2x2, 3x3) issues 16 products per 2x2 tile where the conv has 36 MACs (plus the
        # odd sizes' phantom outputs); the executed fraction rates those products.
        if row["algorithm"] == "winograd":
            assert "3x3" in row["shape"] and 16 / 36 * row["macs"] <= row["executed_macs"] < row["macs"]
        else:
            assert row["executed_macs"] == row["macs"]
        assert row["executed_peak_fraction"] == pytest.approx(row["executed_gmacs"] / max(exact), abs=1e-3)
    assert data["winograd_shapes"] == sum(r["algorithm"] == "winograd" for r in data["shapes"]) > 0


def test_k_sweep_times_the_register_tile_alone(tmp_path):
    """1x1 configs on the AVX-512 VNNI kernel also time the 6 x 64 register tile alone at each K."""
    from keras_csp import kernels as K
    if "avx512vnni" not in K.available_variants():
        pytest.skip("no AVX-512 VNNI on this CPU")
    out = tmp_path / "ksweep_tile.json"
    result = CliRunner().invoke(bench_kernels_command,
                                ["--k-sweep", "--quick", "--variant", "avx512vnni", "--json", str(out)])
    assert result.exit_code == 0, result.output
    row, = json.loads(out.read_text())["configs"]
    assert row["out_channels"] % 64 == 0 and row["tile_k"] == row["in_channels"]
    assert len(row["tile_gmacs"]) == len(row["tile_k"]) and all(g > 0 for g in row["tile_gmacs"])
    assert all(0 < f < 1.5 for f in row["tile_peak_fraction"])  # a rate, against the vpdpbusd loop
    assert "register tile alone" in result.output


def test_tile_rate_rejects_bad_k_and_variants_without_a_tile_loop():
    from keras_csp import _kernels
    for k in (0, 2, 130, 2048):
        with pytest.raises(ValueError, match="multiple of 4"):
            _kernels.measure_int8_tile_rate("avx512vnni", k, 0.001)
    with pytest.raises(RuntimeError, match="avx512vnni only"):
        _kernels.measure_int8_tile_rate("scalar", 128, 0.001)


AB_BUILDS = pathlib.Path(__file__).resolve().parent.parent / "bench" / "ab_builds.py"


def _ab_builds_cmd(tmp_path) -> list[str]:
    """`python3 bench/ab_builds.py BUILD BUILD`, both sides a copy of the keras_csp package this test
    imported (extensions included)."""
    import keras_csp
    build = tmp_path / "build"
    shutil.copytree(pathlib.Path(keras_csp.__file__).parent, build / "keras_csp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return [sys.executable, str(AB_BUILDS), str(build), str(build)]


def test_ab_builds_times_both_sides_in_their_own_processes(tmp_path):
    """bench/ab_builds.py: one line per shape with both sides' times; a bad shape is refused."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("ab_builds", AB_BUILDS)
    ab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ab)
    assert ab.parse_shapes("16,16,8,1,1;8,16,8,3,2") == [(16, 16, 8, 1, 1), (8, 16, 8, 3, 2)]
    with pytest.raises(ValueError, match="cin,cout,hw,kernel,stride"):
        ab.parse_shapes("16,16,8")
    done = subprocess.run(_ab_builds_cmd(tmp_path) + ["--shapes", "16,16,8,1,1;8,16,8,3,1", "--rounds", "2",
                                                      "--variant", "scalar"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [l.split()[0] for l in lines] == ["16,16,8,1,1", "8,16,8,3,1"]
    assert all("median paired" in l and "best" in l for l in lines)


def test_ab_builds_times_a_whole_model_per_fused_op(tmp_path):
    """bench/ab_builds.py --model: the model's line, then one line per fused op, both sides timed."""
    from keras_csp.tflite import fuse
    from keras_csp.tflite.testing import make_partial_conv_model
    model = tmp_path / "partial_fused.tflite"
    fuse(make_partial_conv_model(tmp_path / "partial.tflite", stages=2), model, verify=False)
    cmd = _ab_builds_cmd(tmp_path)
    done = subprocess.run(cmd + ["--model", str(model), "--rounds", "2", "--runs", "3"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("model") and len(lines) == 3  # two fused CspPartialConv ops
    assert all(l.split()[0] == "CspPartialConv" for l in lines[1:])
    assert all("median paired" in l and "best" in l for l in lines)
    # --shapes or --model, not both, not neither
    for extra in ([], ["--model", str(model), "--shapes", "16,16,8,1,1"]):
        assert subprocess.run(cmd + extra, capture_output=True, text=True, timeout=60).returncode == 2
