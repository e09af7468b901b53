"""keras_csp.tflite.fuse: CSP rewrite pass + custom ops (issue 5, phase 2)."""
import json  # noqa: I001
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from flatbuffers import flexbuffers

from keras_csp import runtime as rt
from keras_csp.tflite import FuseVerificationError, fuse
import importlib

fuse_mod = importlib.import_module("keras_csp.tflite.fuse")
from keras_csp.tflite.fuse import representative_inputs
from keras_csp.tflite.graph import Graph
from keras_csp.tflite.testing import edit_custom_options, make_dense_block_model, make_partial_conv_model


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("fuse")


@pytest.fixture(scope="module")
def partial(tmp):
    return str(make_partial_conv_model(tmp / "partial.tflite", stages=2))


@pytest.fixture(scope="module")
def partial_variants(tmp):
    return [
        str(make_partial_conv_model(tmp / "split.tflite", split=True, kernel=1, activation="relu6", seed=1)),
        str(make_partial_conv_model(tmp / "convfirst.tflite", skip_first=False, channels=12, c_skip=5,
                                    out_channels=7, activation=None, seed=2)),
        str(make_partial_conv_model(tmp / "leaky.tflite", activation="leaky_relu", seed=3)),
    ]


@pytest.fixture(scope="module")
def dense(tmp):
    return str(make_dense_block_model(tmp / "dense.tflite"))


def _equal_outputs(a, b, n=12, modes=("", "builtin")):
    for mode in modes:
        ma, mb = rt.Model(a, cpu_kernel_mode=mode), rt.Model(b, cpu_kernel_mode=mode)
        for xs in representative_inputs(ma, samples=n, seed=7):
            for u, v in zip(ma.run(*xs), mb.run(*xs)):
                if not np.array_equal(u, v):
                    return False
    return True


def test_fuse_partial_conv(partial, tmp):
    out = tmp / "partial_fused.tflite"
    rep = fuse(partial, out, report=tmp / "r.json")
    assert rep["fused_ops"] == 2 and rep["fallbacks"] == []
    assert rep["ops_after"] == {"CspPartialConv": 2, "MEAN": 1, "FULLY_CONNECTED": 1}
    assert rep["verification"]["model_outputs_bit_exact"]["tflite_builtin"] is True
    assert json.load(open(tmp / "r.json"))["fused_ops"] == 2
    assert _equal_outputs(partial, str(out))
    m = rt.Model(out)
    m.run(*representative_inputs(m, 2)[1])
    st = m.custom_op_stats()
    assert [s["op"] for s in st] == ["CspPartialConv"] * 2 and all(s["calls"] == 1 for s in st)


def test_fuse_variants_split_relu6_conv_first(partial_variants, tmp):
    for p in partial_variants:
        out = p.replace(".tflite", "_fused.tflite")
        rep = fuse(p, out)
        assert rep["fused_ops"] == 1, rep
        assert "CONCATENATION" not in rep["ops_after"] and "CONV_2D" not in rep["ops_after"]
        assert rep["verification"]["fused_ops_alone"].startswith("1 fused op(s) bit-exact")
    assert "LEAKY_RELU" in fuse(partial_variants[2], tmp / "lk.tflite")["fused"][0]["replaces"]
    assert fuse(partial_variants[1], tmp / "cf.tflite")["fused"][0]["order"] == "conv_first"


def test_fuse_dense_block_bit_exact_vs_tflite_kernels(dense, tmp):
    out = tmp / "dense_fused.tflite"
    rep = fuse(dense, out, against=("tflite",))
    assert rep["fused_ops"] == 1
    (f,) = rep["fused"]
    assert f["op"] == "CspDenseBlock" and f["layers"] == 3 and f["convs_per_layer"] == [2, 2, 2]
    assert rep["ops_after"].get("CONCATENATION", 0) == 0 and rep["ops_after"]["CONV_2D"] == 1
    # the fused op equals TFLite's reference int8 kernels bit for bit (checked op by op) ...
    assert rep["verification"]["fused_ops_alone"].startswith("1 fused op(s) bit-exact")
    # ... and here the whole model also equals the original on TFLite's builtin kernels
    assert rep["verification"]["model_outputs_bit_exact"]["tflite_builtin"]
    # with the runtime's matching numerics, also under XNNPACK (reported, not enforced, here)
    assert rep["verification"]["model_outputs_bit_exact"]["xnnpack"]


def test_fuse_two_way_dense_block(tmp):
    p = str(make_dense_block_model(tmp / "twoway.tflite", two_way=True, layers=2, seed=4))
    rep = fuse(p, tmp / "twoway_fused.tflite")
    assert rep["fused_ops"] == 1
    (f,) = rep["fused"]
    assert f["op"] == "CspDenseBlock" and f["branches_per_layer"] == 2 and f["convs_per_layer"] == [5, 5]
    assert rep["verification"]["fused_ops_alone"].startswith("1 fused op(s) bit-exact")


ALL_MODES = ("", "builtin", "reference")  # LiteRT CPU kernel modes: XNNPACK, builtin, "reference"


def test_litert_reference_mode_runs_conv_with_builtin_rounding(tmp):
    """Measured fact the runtime relies on: LiteRT 2.3's "reference" CPU kernel mode runs int8
    CONV_2D like the optimized builtin kernel (ties up), not like the interpreter's BUILTIN_REF
    resolver (ties away from zero), so custom_op_numerics="auto" maps it to "builtin"."""
    import keras_csp.kernels as K

    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (16, 3, 3, 8)).astype(np.int8)
    b = rng.integers(-2000, 2000, 16).astype(np.int32)
    q = K.Int8Quant(0.05, -3, rng.uniform(0.001, 0.02, 16), 0.1, 5, "none")
    model = K.build_tflite_model("conv", (1, 12, 12, 8), w, b, q)
    path = tmp / "conv_ties.tflite"
    path.write_bytes(model)
    x = rng.integers(-128, 128, (1, 12, 12, 8)).astype(np.int8)
    got = rt.Model(path, cpu_kernel_mode="reference").run(x)[0]
    np.testing.assert_array_equal(got, K.run_tflite(model, x, resolver="builtin"))
    assert np.count_nonzero(got != K.run_tflite(model, x, resolver="ref")) > 0  # ties exist here


def test_fused_models_bit_identical_under_every_kernel_set(dense, partial, partial_variants, tmp):
    """The runtime rounds our fused ops like the kernels that run the rest of the graph
    (custom_op_numerics="auto"): XNNPACK's fp32 requantization, TFLite's optimized fixed point
    (ties up) or its reference fixed point (ties away from zero), and XNNPACK's or TFLite's
    LEAKY_RELU. So fused == original under each, with the default (enforcing) verification."""
    for i, p in enumerate([dense, partial] + partial_variants):
        out = tmp / f"all_modes_{i}.tflite"
        rep = fuse(p, out)
        assert rep["fused_ops"] >= 1 and rep["fallbacks"] == [], rep["fallbacks"]
        assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
        assert _equal_outputs(p, str(out), modes=ALL_MODES), p


def test_mismatched_numerics_are_detectable(partial_variants, tmp):
    """Forcing the wrong numerics (TFLite rounding next to XNNPACK) changes the fused LEAKY_RELU
    model's outputs: the numerics matter, and the test above can fail."""
    src = partial_variants[2]
    out = tmp / "leaky_numerics.tflite"
    fuse(src, out)
    a = rt.Model(src)
    b = rt.Model(out, custom_op_numerics="reference")
    assert b.custom_op_numerics == "reference" and rt.Model(out).custom_op_numerics == "xnnpack"
    assert rt.Model(out, cpu_kernel_mode="builtin").custom_op_numerics == "builtin"
    assert rt.Model(out, cpu_kernel_mode="reference").custom_op_numerics == "builtin"
    diffs = sum(int(np.count_nonzero(u != v)) for xs in representative_inputs(a, samples=8, seed=1)
                for u, v in zip(a.run(*xs), b.run(*xs)))
    assert diffs > 0
    with pytest.raises(rt.ModelLoadError, match="custom_op_numerics must be"):
        rt.Model(out, custom_op_numerics="fast")


@pytest.mark.parametrize("alpha", [0.1, 0.2, 0.3, 0.01])
def test_xnnpack_leaky_relu_formula_matches_litert(alpha, tmp):
    """Our model of XNNPACK's int8 LEAKY_RELU (the fused epilogue under XNNPACK) against
    LiteRT's XNNPACK on all 256 int8 inputs."""
    import tensorflow as tf

    from keras_csp.tflite.patterns import xnnpack_leaky_relu_params
    from keras_csp.tflite.testing import _convert_int8

    inp = tf.keras.Input((256,))
    path = _convert_int8(tf.keras.Model(inp, tf.keras.layers.LeakyReLU(alpha)(inp)), (256,),
                         tmp / f"lrelu_{alpha}.tflite", seed=int(alpha * 100))
    g = Graph.load(path)
    (op,) = [o for o in g.ops() if g.op_type(o) == "LEAKY_RELU"]
    (si, zi), (so, zo) = [(float(g.quant(int(t))[0][0]), int(g.quant(int(t))[1][0]))
                          for t in (op.inputs[0], op.outputs[0])]
    p = xnnpack_leaky_relu_params(si, so, np.float32(op.builtinOptions.alpha))
    x = np.arange(-128, 128, dtype=np.int32)
    m = np.where(x - zi >= 0, p["post_xnn_positive_multiplier"], p["post_xnn_negative_multiplier"])
    expected = np.clip(((zo << 8) + 0x80 + (x - zi) * m) >> 8, -128, 127)
    got = rt.Model(path).run(x.astype(np.int8).reshape(1, 256))[0].ravel()
    np.testing.assert_array_equal(got, expected)


def test_wrong_kernel_parameters_fall_back_per_op(partial, tmp, monkeypatch):
    orig = fuse_mod._options

    def broken(m, node):
        o = orig(m, node)
        if o.get("c_skip") == 8:  # the first stage only
            o["multipliers"] = [v // 2 for v in o["multipliers"]]
        return o

    monkeypatch.setattr(fuse_mod, "_options", broken)
    out = tmp / "fb.tflite"
    rep = fuse(partial, out)
    assert rep["fused_ops"] == 1 and len(rep["fallbacks"]) == 1
    assert "TFLite's reference int8 kernels" in rep["fallbacks"][0]["reason"]
    assert rep["ops_after"]["CONCATENATION"] == 1
    assert _equal_outputs(partial, str(out), modes=("builtin",))


def test_unverifiable_model_is_refused(partial, tmp, monkeypatch):
    monkeypatch.setattr(fuse_mod, "_verify", lambda *a, **k: (_ for _ in ()).throw(
        FuseVerificationError("refusing to write")))
    out = tmp / "refused.tflite"
    with pytest.raises(FuseVerificationError):
        fuse(partial, out)
    assert not out.exists()


def test_fused_model_without_our_runtime_fails_with_litert_message(partial, tmp):
    out = tmp / "p2.tflite"
    fuse(partial, out)
    from ai_edge_litert.interpreter import Interpreter

    with pytest.raises(RuntimeError, match="Encountered unresolved custom op: CspPartialConv"):
        Interpreter(model_path=str(out)).allocate_tensors()
    with pytest.raises(rt.ModelLoadError, match="Encountered unresolved custom op: CspPartialConv"):
        rt.Model(out, register_custom_ops=False)


@pytest.mark.parametrize("field, value, msg", [
    ("c_skip", 100, "skip slice"),
    ("out_channels", 3, "multipliers has"),
    ("padding", 7, "padding must be"),
    ("act_min", 200, "activation range"),
    ("node", 5, "no initialized node with id 0"),
    ("requant_scales", [0.01], "requant_scales has 1 entries"),
    ("requant_scales", None, "missing option 'requant_scales'"),
])
def test_inconsistent_custom_options_fail_in_init(partial, tmp, field, value, msg):
    out = tmp / "p3.tflite"
    fuse(partial, out, verify=False)
    g = Graph.load(out)
    op = next(o for o in g.ops() if g.op_type(o) == "CspPartialConv")
    opts = dict(flexbuffers.Loads(bytes(op.customOptions)))
    opts[field] = value
    if value is None:
        del opts[field]
    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(opts)), np.uint8).copy()
    bad = tmp / f"bad_{field}.tflite"
    g.save(bad)
    with pytest.raises(rt.ModelLoadError, match=msg):
        rt.Model(bad)




def test_leaky_relu_without_xnnpack_parameters_is_refused_under_xnnpack(partial_variants, tmp):
    """A fused LEAKY_RELU without XNNPACK's parameters (an older fuse pass) cannot match XNNPACK:
    refused there with a clear message; TFLite numerics still run it. A LEAKY_RELU that XNNPACK
    would not take ("post_xnn_unsupported") runs with TFLite's formula under XNNPACK too."""
    out = tmp / "leaky_opts.tflite"
    fuse(partial_variants[2], out)
    keys = ("post_xnn_positive_multiplier", "post_xnn_negative_multiplier")
    old = edit_custom_options(out, tmp / "leaky_old.tflite", lambda o: [o.pop(k) for k in keys])
    with pytest.raises(rt.ModelLoadError, match="missing option 'post_xnn_positive_multiplier'"):
        rt.Model(old)
    x = representative_inputs(rt.Model(out), 2)[1]
    np.testing.assert_array_equal(rt.Model(old, cpu_kernel_mode="builtin").run(*x)[0],
                                  rt.Model(partial_variants[2], cpu_kernel_mode="builtin").run(*x)[0])
    unsup = edit_custom_options(old, tmp / "leaky_unsup.tflite", lambda o: o.update(post_xnn_unsupported=True))
    assert rt.Model(unsup).run(*x)[0].shape == rt.Model(out).run(*x)[0].shape


def test_cli(partial, tmp):
    from keras_csp.cli import cli

    out, rep = tmp / "cli.tflite", tmp / "cli.json"
    r = CliRunner().invoke(cli, ["fuse", partial, str(out), "--report", str(rep), "--samples", "3"])
    assert r.exit_code == 0, r.output
    assert "fused 2 op(s)" in r.output and json.load(open(rep))["fused_ops"] == 2
    r = CliRunner().invoke(cli, ["run", str(out), "--compare", partial, "--runs", "3", "--warmup", "1"])
    assert r.exit_code == 0, r.output
    assert "speedup" in r.output
    bd = tmp / "breakdown.json"
    r = CliRunner().invoke(cli, ["run", partial, "--breakdown", "--runs", "2", "--warmup", "1", "--json", str(bd)])
    assert r.exit_code == 0, r.output
    d = json.load(open(bd))
    assert len(d["patterns"]) == 2 and d["machine"]["cpu_features"] and d["threads"] == 1
    assert abs(d["builtin_ms"] - sum(p["builtin_ms"] for p in d["patterns"])) < 1e-9
    r = CliRunner().invoke(cli, ["fuse", str(tmp / "missing.tflite"), str(out)])
    assert r.exit_code != 0
    r = CliRunner().invoke(cli, ["inspect-runtime"])
    assert r.exit_code == 0 and "CspPartialConv" in r.output and "(tested)" in r.output


def test_demo_fuse_and_run_steps(tmp):
    """`keras-csp demo` steps 4-5 (fuse, then int8 vs fused on the digits test split): every
    output bit-identical under XNNPACK and TFLite's builtin kernels."""
    from keras_csp.benchmark import export_ptq_int8
    from keras_csp.demo import _fuse_and_run

    out = tmp / "demo"
    out.mkdir()
    src = export_ptq_int8("cspdensenet_tiny", str(out / "model_int8.tflite"), 32)
    lines = []
    rep = _fuse_and_run(src, str(out), lines.append)
    # 6 CSP ops, the stem conv and the 2 transition average pools
    assert rep["fused_ops"] == 9 and (out / "model_int8_fused.tflite").exists()
    n = rep["accuracy"]["examples"]
    assert n == 360
    for k in ("xnnpack", "tflite_builtin", "tflite_reference"):
        assert rep["accuracy"][k]["bit_identical_outputs"] == n, (k, rep["accuracy"][k])
    assert rep["speedup"] > 0 and any("[5/5]" in line for line in lines)


@pytest.mark.parametrize("cpu_kernel_mode", ["", "builtin"])
def test_fused_model_bits_do_not_depend_on_the_thread_count(tmp, cpu_kernel_mode):
    """The fused ops run on the model's thread count (Model(num_threads=...)); the outputs are the
    same bits at 1, 2 and 3 threads and equal to the unfused int8 model's."""
    from keras_csp.benchmark import export_ptq_int8

    src = export_ptq_int8("cspdensenet_tiny", str(tmp / f"threads{cpu_kernel_mode}_int8.tflite"), 64)
    dst = str(tmp / f"threads{cpu_kernel_mode}_fused.tflite")
    assert fuse(src, dst)["fused_ops"] > 0
    plain = rt.Model(src, cpu_kernel_mode=cpu_kernel_mode)
    x = representative_inputs(plain, samples=3, seed=5)
    want = [plain.run(*xi) for xi in x]
    for threads in (1, 2, 3):
        m = rt.Model(dst, num_threads=threads, cpu_kernel_mode=cpu_kernel_mode)
        for xi, w in zip(x, want):
            got = m.run(*xi)
            for g, e in zip(got, w):
                np.testing.assert_array_equal(g, e, err_msg=f"threads={threads}")
        assert sum(s["calls"] for s in m.custom_op_stats()) > 0


def test_tune_keeps_only_the_fused_ops_that_win(tmp):
    """fuse --tune times every candidate against the builtin ops it replaces; min_speedup 0 keeps
    all of them, an unreachable one keeps none (the model is then the unfused one)."""
    from keras_csp.benchmark import export_ptq_int8
    from keras_csp.cli import cli

    src = export_ptq_int8("cspdensenet_tiny", str(tmp / "tune_int8.tflite"), 32)
    every = fuse(src, str(tmp / "tune_all.tflite"), tune=True, tune_min_speedup=0.0, tune_runs=3)
    t = every["tuning"]
    assert t["candidates"] == every["fused_ops"] == t["kept"] > 0
    assert all(r["builtin_ms"] > 0 and r["fused_ms"] > 0 and r["speedup"] > 0 for r in t["ops"])
    none = fuse(src, str(tmp / "tune_none.tflite"), tune=True, tune_min_speedup=1e9, tune_runs=3)
    assert none["fused_ops"] == 0 and none["tuning"]["kept"] == 0
    assert not any(k.startswith("Csp") for k in none["ops_after"])
    assert sum("fuse --tune" in x["reason"] for x in none["left"]) == t["candidates"]
    r = CliRunner().invoke(cli, ["fuse", src, str(tmp / "tune_cli.tflite"), "--tune", "--threads", "2"])
    assert r.exit_code == 0, r.output
    assert "--tune (2 thread(s)): kept" in r.output and "builtin" in r.output


def test_tune_whole_model_check_returns_ops_until_the_model_is_not_slower(partial, tmp, monkeypatch):
    """Ops that win alone can still slow the model down (at several threads our pool and XNNPACK's
    trade the cores between ops). With timings stubbed: both ops win alone, the model with both is
    slower, with one it is not: the op with the smaller margin goes back to builtins, and the
    report says why."""
    from keras_csp.tflite import bench

    def time_patterns(g, matches, **kw):
        return [{"op": "CspPartialConv", "output": f"t{i}", "builtin_ms": 1.0, "fused_ms": 1.0 / s, "speedup": s}
                for i, s in zip(range(len(matches)), (1.3, 1.1))]

    def compare_models(paths, **kw):
        fused_ops = Graph.load(paths[0]).op_counts().get("CspPartialConv", 0)
        fused_ms = 1.2 if fused_ops == 2 else 0.9
        return {"models": [{"median_ms": fused_ms}, {"median_ms": 1.0}]}

    monkeypatch.setattr(bench, "time_patterns", time_patterns)
    monkeypatch.setattr(bench, "compare_models", compare_models)
    rep = fuse(partial, tmp / "tune_model_check.tflite", tune=True, tune_runs=1)
    t = rep["tuning"]
    assert rep["fused_ops"] == 1 and t["kept"] == 1 and t["candidates"] == 2
    assert [s["fused_ops"] for s in t["whole_model"]] == [2, 1] and t["whole_model"][-1]["speedup"] > 1
    assert [o["kept"] for o in t["ops"]] == [True, False] and t["ops"][1]["dropped_by_model_check"]
    assert any("whole-model check" in x["reason"] for x in rep["left"])


@pytest.mark.parametrize("every_ms, fused", [(0.8, 2), (1.05, 1)])
def test_tune_keeps_every_op_when_that_model_is_faster(partial, tmp, monkeypatch, every_ms, fused):
    """Each op returned to the builtins adds hand-overs between LiteRT's threads and ours, so where an
    op loses alone the model with every candidate fused is timed too and kept when it is the faster
    model (stubbed timings: one op wins alone, one loses; the model with both at 0.8 ms beats the
    winner alone at 0.95 ms and both stay; at 1.05 ms it does not, and the loser stays builtin)."""
    from click.testing import CliRunner

    from keras_csp.cli import cli
    from keras_csp.tflite import bench

    def time_patterns(g, matches, **kw):
        return [{"op": "CspPartialConv", "output": f"t{i}", "detail": "conv", "builtin_ms": 1.0, "fused_ms": 1.0 / s,
                 "speedup": s} for i, s in zip(range(len(matches)), (1.1, 0.9))]

    def compare_models(paths, **kw):
        fused_ops = Graph.load(paths[0]).op_counts().get("CspPartialConv", 0)
        return {"models": [{"median_ms": every_ms if fused_ops == 2 else 0.95}, {"median_ms": 1.0}]}

    monkeypatch.setattr(bench, "time_patterns", time_patterns)
    monkeypatch.setattr(bench, "compare_models", compare_models)
    rep = fuse(partial, tmp / "tune_every.tflite", tune=True, tune_runs=1)
    t = rep["tuning"]
    assert rep["fused_ops"] == fused and t["kept"] == fused and t["candidates"] == 2
    assert [s["fused_ops"] for s in t["whole_model"]] == [2, 1] and t["whole_model"][0]["every_candidate"]
    assert bool(t["ops"][1].get("kept_by_model_check")) == (fused == 2)
    assert sum("fuse --tune" in x["reason"] for x in rep["left"]) == 2 - fused
    r = CliRunner().invoke(cli, ["fuse", partial, str(tmp / "tune_every_cli.tflite"), "--tune"])
    assert r.exit_code == 0, r.output
    assert "whole model, 2 fused op(s) (every candidate)" in r.output


@pytest.mark.parametrize("name, fused_ops", [("cspmobilenetv2_tiny", 8), ("csppeleenet_tiny", 9),
                                             ("yolov8_backbone_tiny", 4), ("yolov5_cspdarknet_tiny", 4)])
def test_mobile_models_fused_bit_identical_on_digits(tmp, name, fused_ops):
    if name.startswith("yolo"):
        fused_ops = {"CspBlock": fused_ops}
    """The paper's mobile models and the YOLO backbones (untrained, PTQ): every fused op kept (YOLOv8:
    3 C2f + SPPF; YOLOv5: 3 C3 + SPPF, all CspBlocks; every other YOLO conv, SiLU included, a
    KcspConv2D: the stem, the three down-sampling convs, the three transitions, SPPF's cv2; the
    mobile models' 3-channel stem conv a KcspConv2D,
    PeleeNet's two transition average pools KcspAvgPool2Ds, CSPMobileNet-v2's grouped 3x3 a dense
    KcspConv2D),
    outputs bit-identical to the int8 model on the digits test split under all three kernel sets."""
    from keras_csp.benchmark import export_ptq_int8
    from keras_csp.demo import _fuse_and_run

    out = tmp / name
    out.mkdir()
    rep = _fuse_and_run(export_ptq_int8(name, str(out / "model_int8.tflite"), 32), str(out), lambda line: None)
    if isinstance(fused_ops, dict):  # every block one CspBlock
        (kind, count), = fused_ops.items()
        after = rep["ops_after"]
        assert rep["fused_ops"] == count + 8 and after.get(kind) == count and after.get("KcspConv2D") == 8, after
        assert not {"CONV_2D", "LOGISTIC", "MUL"} & set(after), after
    else:
        assert rep["fused_ops"] == fused_ops
    n = rep["accuracy"]["examples"]
    for k in ("xnnpack", "tflite_builtin", "tflite_reference"):
        assert rep["accuracy"][k]["bit_identical_outputs"] == n, (k, rep["accuracy"][k])


def test_explain_lists_every_concat_and_the_fused_shares(tmp):
    from keras_csp.benchmark import export_ptq_int8
    from keras_csp.cli import cli
    from keras_csp.models import create_model
    from keras_csp.profile import profile_model

    src = export_ptq_int8("cspmobilenetv2_tiny", str(tmp / "mbv2_int8.tflite"), 32)
    rep = fuse(src, str(tmp / "mbv2_fused.tflite"), samples=2)
    cov = rep["coverage"]
    # all conv/dense MACs of the graph = the Keras model's
    assert cov["macs"]["total"] == profile_model(create_model("cspmobilenetv2_tiny", input_shape=(32, 32, 3))).macs
    # fused: the project convs ending the block paths (1x1 16->8 at 16x16, 48->16 at 8x8, 144->24 at
    # 4x4, the last with its residual ADD), the depthwise skips of the conv3 and conv4 heads (3x3/2,
    # 24 channels at 8x8, 48 at 4x4), the three x2 depthwise convs (24->48 and 48->96 strided to
    # 8x8 and 4x4, 72->144 at 4x4), the stem (3x3/2 3->16 to 16x16) and the stage-1 grouped 3x3
    # (16->8 at 16x16, 2 input channels per group; counted as the graph computes it, not densified)
    assert cov["macs"]["fused"] == (16 * 16 * 16 * 8 + 8 * 8 * 48 * 16 + 4 * 4 * 144 * 24 + 8 * 8 * 24 * 9
                                    + 4 * 4 * 48 * 9 + 8 * 8 * 48 * 9 + 4 * 4 * 96 * 9 + 4 * 4 * 144 * 9
                                    + 16 * 16 * 16 * 3 * 3 * 3 + 16 * 16 * 8 * 2 * 3 * 3)
    # concats 16x16x16 + 8x8x40 + 4x4x72 bytes; left: the 8 skip channels the conv2 op copies (the
    # depthwise skips write in place)
    assert cov["copy_bytes"] == {"builtin": 4096 + 2560 + 1152, "fused": 16 * 16 * 8,
                                 "removed_fraction": round(1 - 2048 / 7808, 4)}
    assert [(c["fused"], c["by"]) for c in cov["concats"]] == [(True, "CspPartialConv")] * 3
    fused = {(f["op"], f["output"].split("/")[1]): f for f in rep["fused"]}
    assert fused["CspPartialConv", "conv3_csp_concat_1"]["skip_depthwise"] == "3x3/s2 24->24 x1"
    assert fused["CspPartialConv", "conv4_csp_concat_1"]["conv"] == "1x1/s1 144->24 +residual add"
    assert sorted(f.get("depthwise") for f in rep["fused"] if f["op"] == "KcspDepthwiseConv2D") == [
        "3x3/s1 72->144 x2", "3x3/s2 24->48 x2", "3x3/s2 48->96 x2"]
    assert rep["ops_after"]["DEPTHWISE_CONV_2D"] == 1 and "ADD" not in rep["ops_after"]
    r = CliRunner().invoke(cli, ["fuse", src, str(tmp / "mbv2_cli.tflite"), "--samples", "2", "--explain"])
    assert r.exit_code == 0, r.output
    assert "3 of 3 concat(s) fused:" in r.output and "conv4_csp_concat" in r.output and "(73.8 % removed)" in r.output


@pytest.mark.parametrize("conv_first, relu", [(True, False), (False, True)])
def test_residual_add_into_a_concat_is_fused_bit_exact(tmp, conv_first, relu):
    """concat(ADD(r, conv(r)) [+ fused ReLU], depthwise(x)): the ADD runs inside the CspPartialConv
    (either input order), bit-exact under XNNPACK, TFLite's builtin and reference kernels."""
    import tensorflow as tf

    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((8, 8, 6))
    base = L.Conv2D(8, 1, activation="relu")(inp)
    y = L.Conv2D(8, 1)(base)
    r = L.Add()([y, base] if conv_first else [base, y])
    if relu:
        r = L.ReLU()(r)
    skip = L.DepthwiseConv2D(3, padding="same", activation="relu")(inp)
    src = str(tmp / f"resadd_{conv_first}_{relu}.tflite")
    _convert_int8(tf.keras.Model(inp, L.Concatenate()([r, skip])), (8, 8, 6), src)
    rep = fuse(src, str(tmp / f"resadd_{conv_first}_{relu}_fused.tflite"), samples=4)
    assert rep["fallbacks"] == [] and rep["fused_ops"] == 1, rep["fallbacks"]
    (f,) = rep["fused"]
    assert f["conv"].endswith("+residual add") and f["skip_depthwise"] == "3x3/s1 6->6 x1"
    assert sorted(f["replaces"]) == ["ADD", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cspmobilenetv2_tiny", "csppeleenet_tiny"])
def test_mobile_tiny_models_train_qat_and_fuse_bit_identical(tmp_path, name):
    """The paper's mobile models, tiny: float training and QAT on digits, then every CSP pattern fused
    (depthwise ops, residual ADDs) with outputs bit-identical to the QAT int8 model on the test split."""
    from keras_csp.demo import run_demo

    rep = run_demo(out=str(tmp_path / name), model_name=name, epochs=6, qat_epochs=1, echo=lambda line: None)
    assert rep["float_accuracy"] > 0.85 and rep["qat_accuracy"] > 0.85, rep
    n = rep["fused"]["accuracy"]["examples"]
    for k in ("xnnpack", "tflite_builtin"):
        assert rep["fused"]["accuracy"][k]["bit_identical_outputs"] == n, (k, rep["fused"]["accuracy"][k])


def test_elementwise_chains_after_convs_fuse_as_tables(tmp):
    """SiLU (LOGISTIC + MUL, as the converter writes it), HARD_SWISH, and TANH followed by the
    QUANTIZE to the concat's scale run inside the fused ops as 256-entry tables, one per kernel set,
    taken from those kernels themselves: YOLOv5's C3 concat [bottleneck chain + residual, conv(x)]
    and a dense append, bit-exact under XNNPACK, TFLite's builtin and reference kernels."""
    import tensorflow as tf

    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8, 8, 8))
    cv1 = L.Conv2D(4, 1, activation="silu")(inp)
    cv2 = L.Conv2D(4, 1, activation="silu")(inp)
    m = L.Add()([cv1, L.Conv2D(4, 3, padding="same", activation="silu")(L.Conv2D(4, 1, activation="silu")(cv1))])
    y = L.Conv2D(8, 1, activation="hard_swish")(L.Concatenate()([m, cv2]))
    out = L.Concatenate()([y, L.Conv2D(4, 3, padding="same", activation="tanh")(y)])
    src = str(tmp / "tables.tflite")
    _convert_int8(tf.keras.Model(inp, out), (8, 8, 8), src)
    rep = fuse(src, str(tmp / "tables_fused.tflite"), samples=4)
    assert rep["fallbacks"] == [] and rep["coverage"]["concats_fused"] == 2
    replaced = sorted(op for f in rep["fused"] for op in f["replaces"])
    assert {"LOGISTIC", "MUL", "TANH", "QUANTIZE"} <= set(replaced)
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    g = Graph.load(str(tmp / "tables_fused.tflite"))
    opts = [flexbuffers.Loads(bytes(bytearray(op.customOptions))) for op in g.ops() if op.customOptions is not None]
    tables = [o for o in opts if o.get("post") == "table"] + [c for o in opts for layer in o.get("layers", [])
                                                              for ch in layer for c in ch if c.get("post") == "table"]
    assert tables and all(len(t["post_table_xnnpack"]) == 256 == len(t["post_table_reference"]) for t in tables)


def _yolo_blocks_model(hw=8):
    """C2f (1x1 split in two, 2 bottlenecks with residual ADDs, 4-way concat), ELAN (two 1x1 + a 3x3
    chain, 4-way concat) and SPPF (1x1, three chained 5x5 max pools, 4-way concat), SiLU everywhere."""
    import tensorflow as tf

    L = tf.keras.layers
    tf.keras.utils.set_random_seed(0)

    def cbs(x, c, k=1, s=1):
        return L.Conv2D(c, k, strides=s, padding="same", activation="silu")(x)

    inp = tf.keras.Input((hw * 2, hw * 2, 3))
    x = cbs(inp, 16, 3, 2)  # a strided stem: stays outside the C2f block
    a, b = L.Lambda(lambda t: tf.split(t, 2, axis=-1))(cbs(x, 16))
    outs = [a, b]
    for _ in range(2):
        outs.append(L.Add()([outs[-1], cbs(cbs(outs[-1], 8, 3), 8, 3)]))
    x = cbs(L.Concatenate()(outs), 16)
    e1, e2 = cbs(x, 8), cbs(x, 8)
    c1 = cbs(e2, 8, 3)
    x = cbs(L.Concatenate()([cbs(c1, 8, 3), c1, e2, e1]), 16)
    y = cbs(x, 8)
    p1 = L.MaxPooling2D(5, 1, "same")(y)
    p2 = L.MaxPooling2D(5, 1, "same")(p1)
    x = cbs(L.Concatenate()([y, p1, p2, L.MaxPooling2D(5, 1, "same")(p2)]), 16)
    return tf.keras.Model(inp, x), (hw * 2, hw * 2, 3)


def test_yolo_blocks_fuse_as_whole_blocks_bit_exact(tmp):
    """C2f, ELAN and SPPF each become ONE CspBlock: every conv, SiLU table, residual ADD and max pool
    of the block writes straight into its slice of the concat (the C2f split is read in place), no
    copy is left, and the model is bit-exact under XNNPACK, TFLite's builtin and reference kernels."""
    from keras_csp.tflite.testing import _convert_int8

    model, shape = _yolo_blocks_model()
    src = str(tmp / "yolo.tflite")
    _convert_int8(model, shape, src)
    dst = str(tmp / "yolo_fused.tflite")
    rep = fuse(src, dst, samples=4)
    assert rep["fallbacks"] == [] and rep["fused_ops"] == 7
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    # the 3-channel stem and the three transitions, each with its SiLU (LOGISTIC, MUL)
    convs = rep["fused"][3:]
    assert [f["op"] for f in convs] == ["KcspConv2D"] * 4
    assert convs[0]["conv"].endswith("(stem, with its element-wise chain)")
    assert all(f["replaces"] == ["CONV_2D", "LOGISTIC", "MUL"] for f in convs)
    blocks = {f["steps"][-1]: f for f in rep["fused"][:3]}
    assert all(f["op"] == "CspBlock" and f["concat_inputs"] == 4 and f["inputs"] == 1 for f in rep["fused"][:3])
    # C2f: cv1 (1x1, into both halves), 2 x (3x3 into scratch, 3x3 + ADD into place)
    c2f = rep["fused"][0]
    assert c2f["steps"] == ["conv 1x1/s1 16->16"] + ["conv 3x3/s1 8->8"] * 4 and c2f["scratch_channels"] == [8]
    assert {"SPLIT", "ADD", "LOGISTIC", "MUL"} <= set(c2f["replaces"])
    assert rep["fused"][1]["steps"] == ["conv 1x1/s1 16->8", "conv 1x1/s1 16->8", "conv 3x3/s1 8->8",
                                        "conv 3x3/s1 8->8"]
    assert rep["fused"][2]["steps"] == ["conv 1x1/s1 16->8"] + ["max_pool"] * 3
    assert "max_pool" in blocks
    cov = rep["coverage"]
    assert cov["concats_fused"] == 3 and cov["copy_bytes"]["fused"] == 0
    # 8x8 concats of 32 channels + the C2f split's two 8x8x8 halves
    assert cov["copy_bytes"]["builtin"] == 3 * 8 * 8 * 32 + 2 * 8 * 8 * 8
    after = rep["ops_after"]
    assert after["CspBlock"] == 3 and not {"SPLIT", "ADD", "MAX_POOL_2D", "CONCATENATION"} & set(after)
    assert after["KcspConv2D"] == 4 and not {"CONV_2D", "LOGISTIC", "MUL"} & set(after)
    assert _equal_outputs(src, dst, n=4, modes=("", "builtin", "reference"))
    # same bits at 2 threads
    x = np.random.default_rng(1).integers(-128, 128, (1,) + shape).astype(np.int8)
    one, two = rt.Model(dst, num_threads=1).run(x), rt.Model(dst, num_threads=2).run(x)
    np.testing.assert_array_equal(one[0], two[0])


def test_block_used_outside_keeps_that_tensor(tmp):
    """A block tensor also read outside the block (here the SPPF's first pool feeds a second output)
    is not computed inside, and neither is what its builtin producer still reads (the 1x1 conv): the
    block takes both as inputs, copies them into place and runs the second pool, still exact."""
    import tensorflow as tf

    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8, 8, 4))
    y = L.Conv2D(4, 1, activation="silu")(inp)
    p1 = L.MaxPooling2D(3, 1, "same")(y)
    p2 = L.MaxPooling2D(3, 1, "same")(p1)
    out = L.Concatenate()([y, p1, p2])
    src = str(tmp / "outside.tflite")
    _convert_int8(tf.keras.Model(inp, [out, L.Conv2D(2, 1)(p1)]), (8, 8, 4), src)
    rep = fuse(src, str(tmp / "outside_fused.tflite"), samples=3)
    (f,) = [f for f in rep["fused"] if f["op"] == "CspBlock"]
    # the 1x1 conv and its SiLU, outside the block: a KcspConv2D of their own
    assert [x["replaces"] for x in rep["fused"] if x["op"] == "KcspConv2D"] == [["CONV_2D", "LOGISTIC", "MUL"]]
    assert f["op"] == "CspBlock" and f["inputs"] == 2 and f["steps"] == ["copy", "copy", "max_pool"]
    assert rep["coverage"]["copy_bytes"]["fused"] == 2 * 8 * 8 * 4
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}


def test_keras_cv_yolov8_backbone_every_block_fused_bit_exact(tmp):
    """Another library's CSP blocks: keras-cv's YOLOv8 backbone (4 C2f stages and SPPF, swish), PTQ
    int8 as a user would export it. Every concat becomes one CspBlock, no copy is left, and the model
    is bit-exact with the int8 original under XNNPACK and TFLite's builtin kernels."""
    from toolchain import require

    require("keras-cv")
    from keras_cv.models import YOLOV8Backbone

    from keras_csp.quantize import convert_int8
    from keras_csp.tflite.coverage import format_coverage

    backbone = YOLOV8Backbone(stackwise_channels=[16, 32, 64, 128], stackwise_depth=[1, 2, 2, 1],
                              include_rescaling=False, activation="swish", input_shape=(64, 64, 3))
    x = np.random.default_rng(0).uniform(size=(4, 64, 64, 3)).astype("float32")
    src = str(tmp / "kcv_yolov8.tflite")
    with open(src, "wb") as f:
        f.write(convert_int8(backbone, x, num_calib=4, batch_size=1))
    dst = str(tmp / "kcv_yolov8_fused.tflite")
    rep = fuse(src, dst, samples=3)
    cov = rep["coverage"]
    assert [c["inputs"] for c in cov["concats"]] == [3, 4, 4, 3, 4]  # C2f x 1, 2, 2, 1 bottlenecks, SPPF
    assert all(c["by"] == "CspBlock" for c in cov["concats"]) and rep["fallbacks"] == []
    assert cov["copy_bytes"]["fused"] == 0 and cov["copy_bytes"]["builtin"] > 0
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    assert "5 of 5 concat(s) fused:" in format_coverage(cov)
    assert _equal_outputs(src, dst, n=3)


def test_cli_run_dataset_json_has_machine_facts(partial, tmp, monkeypatch):
    """`run --compare --dataset --json` records the models, thread count and machine next to the
    accuracies (the comparison itself is covered by the demo tests; stubbed here)."""
    import types

    import keras_csp.data
    import keras_csp.tflite.bench
    from keras_csp.cli import cli

    ds = types.SimpleNamespace(x_test=np.zeros((2, 8, 8, 1), np.float32), y_test=np.zeros(2, np.int64))
    monkeypatch.setattr(keras_csp.data, "load_dataset", lambda name, size: ds)
    monkeypatch.setattr(keras_csp.tflite.bench, "accuracy_compare", lambda *a, **k: {
        "examples": 2, "xnnpack": {"builtin_accuracy": 1.0, "fused_accuracy": 1.0, "bit_identical_outputs": 2}})
    out = tmp / "dataset.json"
    r = CliRunner().invoke(cli, ["run", partial, "--compare", partial, "--dataset", "digits", "--threads", "2",
                                 "--json", str(out)])
    assert r.exit_code == 0, r.output
    d = json.load(open(out))
    assert d["threads"] == 2 and d["dataset"] == "digits" and d["builtin_model"] == partial
    assert d["machine"]["cpu_features"] and d["xnnpack"]["bit_identical_outputs"] == 2


@pytest.mark.parametrize("cin, kernel, stride, padding, fused", [
    (3, 7, 2, "same", True), (1, 3, 1, "valid", True), (4, 3, 2, "same", True),
    (5, 3, 1, "same", False),  # more than 4 input channels: not a stem
    (3, 1, 1, "same", False),  # 1x1: no per-tap padding to gain on
])
def test_stem_conv_runs_on_our_kernels_bit_exact(tmp, cin, kernel, stride, padding, fused):
    """A stem CONV_2D (at most 4 input channels, kernel larger than 1x1) becomes a KcspConv2D,
    bit-exact under XNNPACK, TFLite's builtin and reference kernels (each op alone) and in the
    whole model; other standalone convs stay builtin."""
    import tensorflow as tf

    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(5)
    inp = tf.keras.Input((18, 18, cin))
    y = L.Conv2D(16, kernel, strides=stride, padding=padding, activation="relu")(inp)
    out = L.Conv2D(8, 1)(y)
    src = str(tmp / f"stem_{cin}_{kernel}_{stride}.tflite")
    _convert_int8(tf.keras.Model(inp, out), (18, 18, cin), src)
    dst = str(tmp / f"stem_{cin}_{kernel}_{stride}_fused.tflite")
    rep = fuse(src, dst, samples=4)
    assert rep["fallbacks"] == []
    stems = [f for f in rep["fused"] if f["op"] == "KcspConv2D"]
    if not fused:
        assert stems == [] and rep["ops_after"].get("CONV_2D") == 2
        return
    assert len(stems) == 1 and rep["ops_after"]["CONV_2D"] == 1, rep["ops_after"]
    assert stems[0]["conv"] == f"{kernel}x{kernel}/s{stride} {cin}->16 (stem)"
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    assert _equal_outputs(src, dst)
    # options that do not fit the model: a clear error, not a crash or wrong bits
    add = {"conv_input": 0, "a_zero_point": 0, "b_zero_point": 0, "output_zero_point": 0, "act_min": -128,
           "act_max": 127, "a_multiplier": 1 << 30, "a_shift": 0, "b_multiplier": 1 << 30, "b_shift": 0,
           "output_multiplier": 1 << 30, "output_shift": 0, "xnn_unsupported": True}
    for edit, msg in (({"in_channels": cin + 1}, "must be NHWC with at least in_offset"),
                      ({"add": add}, "KcspConv2D takes no residual add")):
        g = Graph.load(dst)
        op = next(o for o in g.ops() if g.op_type(o) == "KcspConv2D")
        opts = dict(flexbuffers.Loads(bytes(op.customOptions)))
        opts.update(edit)
        field = next(iter(edit))
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(opts)), np.uint8).copy()
        bad = tmp / f"bad_stem_{field}.tflite"
        g.save(bad)
        with pytest.raises(rt.ModelLoadError, match=msg):
            rt.Model(bad)


def test_plain_convs_are_tune_candidates_bit_exact(tmp):
    """fuse --tune: every conv outside the patterns (a ResNet bottleneck's 1x1 and 3x3 with fused ReLU)
    is a candidate to run alone as a KcspConv2D ("(alone)"); without --tune they stay builtin. Kept
    (tune_min_speedup=0), the model stays bit-exact, at 1 and 2 threads; on AVX2 its 3x3 stride-1 conv
    (16x16 outputs) runs as Winograd F(2x2, 3x3)."""
    import tensorflow as tf

    from keras_csp.tflite.patterns import find_matches
    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(4)
    inp = tf.keras.Input((16, 16, 24))
    a = L.Conv2D(16, 1, activation="relu")(inp)
    b = L.Conv2D(16, 3, padding="same", activation="relu")(a)
    c = L.Conv2D(24, 1)(b)
    out = L.ReLU()(L.Add()([c, inp]))
    src = str(tmp / "bottleneck.tflite")
    _convert_int8(tf.keras.Model(inp, out), (16, 16, 24), src)
    g = Graph.load(src)
    roles = lambda tune: [m.role for m in find_matches(g, tune_candidates=tune)[0] if hasattr(m, "role")]
    assert roles(False) == [] and roles(True) == ["plain"] * 3
    dst = str(tmp / "bottleneck_fused.tflite")
    rep = fuse(src, dst, samples=4, tune=True, tune_min_speedup=0.0)
    convs = [f for f in rep["fused"] if f["op"] == "KcspConv2D"]
    assert len(convs) == 3 and all(f["conv"].endswith("(alone)") for f in convs), rep["fused"]
    assert "3x3/s1 16->16 (alone)" in [f["conv"] for f in convs]
    assert rep["ops_after"].get("CONV_2D", 0) == 0
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    assert _equal_outputs(src, dst, n=4, modes=("", "builtin", "reference"))
    x = np.random.default_rng(2).integers(-128, 128, (1, 16, 16, 24)).astype(np.int8)
    np.testing.assert_array_equal(rt.Model(dst, num_threads=1).run(x)[0], rt.Model(dst, num_threads=2).run(x)[0])


def test_activated_convs_run_on_our_kernels_bit_exact(tmp):
    """A CONV_2D outside every CSP pattern followed by an element-wise chain (SiLU as x * LOGISTIC(x),
    HARD_SWISH, LEAKY_RELU) becomes one KcspConv2D that applies the chain in place (the vector post
    ops); a conv whose output is also read elsewhere, or one with only a fused activation, stays
    builtin. Bit-exact under XNNPACK, TFLite's builtin and reference kernels, at 1 and 2 threads."""
    import tensorflow as tf

    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((12, 12, 8))
    a = L.Conv2D(24, 3, strides=2, padding="same", activation="silu")(inp)      # 3x3/2 + SiLU
    b = L.Conv2D(40, 1, activation="hard_swish")(a)                            # 1x1 + HARD_SWISH
    c = L.LeakyReLU(0.1)(L.Conv2D(16, 3, padding="same")(b))                   # 3x3 + LEAKY_RELU
    d = L.Conv2D(16, 1, activation="relu")(c)                                  # fused ReLU only: builtin
    e = L.Conv2D(16, 1)(d)
    out = L.Add()([L.Activation("sigmoid")(e), e])                             # e read twice: builtin
    src = str(tmp / "act.tflite")
    _convert_int8(tf.keras.Model(inp, out), (12, 12, 8), src)
    dst = str(tmp / "act_fused.tflite")
    rep = fuse(src, dst, samples=4)
    convs = [f for f in rep["fused"] if f["op"] == "KcspConv2D"]
    assert rep["fallbacks"] == [] and len(convs) == 3, rep["fused"]
    assert [f["replaces"] for f in convs] == [["CONV_2D", "LOGISTIC", "MUL"], ["CONV_2D", "HARD_SWISH"],
                                              ["CONV_2D", "LEAKY_RELU"]]
    assert all(f["conv"].endswith("(with its element-wise chain)") for f in convs)
    assert rep["ops_after"]["CONV_2D"] == 2 and "HARD_SWISH" not in rep["ops_after"]
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    assert _equal_outputs(src, dst, n=4, modes=("", "builtin", "reference"))
    x = np.random.default_rng(2).integers(-128, 128, (1, 12, 12, 8)).astype(np.int8)
    np.testing.assert_array_equal(rt.Model(dst, num_threads=1).run(x)[0], rt.Model(dst, num_threads=2).run(x)[0])


@pytest.mark.parametrize("cin, cout, groups, stride, fused", [
    (32, 16, 16, 1, True),   # CSPMobileNet-v2's stage-1 grouped 3x3: 2 input channels -> 1 output per group
    (16, 32, 4, 2, True),    # 4 -> 8 per group, strided
    (64, 64, 32, 1, True),   # MAX_DENSIFIED_GROUPS
    (66, 66, 33, 1, False),  # more groups than that: stays builtin (densified, 33x the MACs)
    (64, 64, 16, 1, False),  # 4 -> 4 per group, 16 groups: XNNPACK's per-group kernels win (patterns.densify_pays)
])
def test_grouped_conv_runs_dense_on_our_kernels_bit_exact(tmp, cin, cout, groups, stride, fused):
    """A grouped CONV_2D becomes a KcspConv2D with block-diagonal dense weights: the zeros add
    exact zeros, so it is bit-exact under XNNPACK, TFLite's builtin and reference kernels (each op
    alone) and in the whole model."""
    import tensorflow as tf

    from keras_csp.tflite.patterns import MAX_DENSIFIED_GROUPS
    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(7)
    inp = tf.keras.Input((12, 12, cin))
    y = L.Conv2D(cin, 1, activation="relu")(inp)
    y = L.Conv2D(cout, 3, strides=stride, padding="same", groups=groups, activation="relu")(y)
    out = L.Conv2D(8, 1)(y)
    src = str(tmp / f"grouped_{groups}.tflite")
    _convert_int8(tf.keras.Model(inp, out), (12, 12, cin), src)
    dst = str(tmp / f"grouped_{groups}_fused.tflite")
    rep = fuse(src, dst, samples=4)
    convs = [f for f in rep["fused"] if f["op"] == "KcspConv2D"]
    if not fused:
        assert convs == [] and rep["ops_after"]["CONV_2D"] == 3
        why = f"{groups} groups (densified only up to {MAX_DENSIFIED_GROUPS})" if groups > MAX_DENSIFIED_GROUPS else \
            "16 groups of 4 -> 4 channels: XNNPACK's per-group kernels beat a dense conv with 16x the MACs"
        assert any(why in r["reason"] for r in rep["left"]), rep["left"]
        return
    assert rep["fallbacks"] == []
    assert [c["conv"] for c in convs] == [f"3x3/s{stride} {cin}->{cout} (grouped, run dense)"]
    assert rep["ops_after"]["CONV_2D"] == 2, rep["ops_after"]
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    assert _equal_outputs(src, dst)
    # the densified weights: each output channel keeps its group's weights, zeros elsewhere
    g0, g1 = Graph.load(src), Graph.load(dst)
    w0 = next(g0.constant(int(o.inputs[1])) for o in g0.ops()
              if g0.op_type(o) == "CONV_2D" and g0.constant(int(o.inputs[1])).shape[3] != g0.shape(int(o.inputs[0]))[3])
    w1 = next(g1.constant(int(o.inputs[1])) for o in g1.ops() if g1.op_type(o) == "KcspConv2D")
    per, opg = cin // groups, cout // groups
    assert w1.shape == (cout, 3, 3, cin)
    for o in range(cout):
        gi = o // opg
        assert np.array_equal(w1[o, :, :, gi * per:(gi + 1) * per], w0[o])
        assert not np.any(np.delete(w1[o], np.s_[gi * per:(gi + 1) * per], axis=2))


@pytest.mark.parametrize("pool, stride, padding, relu", [
    (2, 2, "valid", False),  # DenseNet transitions
    (3, 1, "same", True), (3, 2, "same", False), (2, 1, "valid", False), (5, 3, "same", False)])
def test_average_pool_runs_on_our_kernels_bit_exact(tmp, pool, stride, padding, relu):
    """int8 AVERAGE_POOL_2D (XNNPACK has no signed int8 average pool, so stock LiteRT runs TFLite's
    slow kernel) becomes a KcspAvgPool2D: ties away from zero, window counts without the padding,
    bit-exact under XNNPACK, TFLite's builtin and reference kernels, also at 2 threads."""
    import tensorflow as tf

    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(6)
    inp = tf.keras.Input((15, 13, 10))
    y = L.AveragePooling2D(pool, stride, padding)(L.Conv2D(12, 1)(inp))
    out = L.Conv2D(6, 1, activation="relu" if relu else None)(y)
    name = f"avgpool_{pool}_{stride}_{padding}"
    src, dst = str(tmp / f"{name}.tflite"), str(tmp / f"{name}_fused.tflite")
    _convert_int8(tf.keras.Model(inp, out), (15, 13, 10), src)
    rep = fuse(src, dst, samples=4)
    assert rep["fallbacks"] == [] and "AVERAGE_POOL_2D" not in rep["ops_after"]
    pools = [f for f in rep["fused"] if f["op"] == "KcspAvgPool2D"]
    assert len(pools) == 1 and pools[0]["pool"] == f"{pool}x{pool}/s{stride} x12"
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    assert _equal_outputs(src, dst, n=6, modes=("", "builtin", "reference"))
    x = np.random.default_rng(2).integers(-128, 128, (1, 15, 13, 10)).astype(np.int8)
    np.testing.assert_array_equal(rt.Model(dst, num_threads=1).run(x)[0], rt.Model(dst, num_threads=2).run(x)[0])
    for edit, msg in (({"channels": 11}, "must be NHWC with 11 channels"), ({"filter_h": 0}, "pool filter out of range"),
                      ({"act_min": 100, "act_max": 0}, "activation range invalid")):
        g = Graph.load(dst)
        op = next(o for o in g.ops() if g.op_type(o) == "KcspAvgPool2D")
        opts = dict(flexbuffers.Loads(bytes(op.customOptions)))
        opts.update(edit)
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(opts)), np.uint8).copy()
        bad = tmp / f"{name}_bad_{next(iter(edit))}.tflite"
        g.save(bad)
        with pytest.raises(rt.ModelLoadError, match=msg):
            rt.Model(bad)


_VARIANT_CHECK = """
import sys, numpy as np
from keras_csp import runtime as rt
from keras_csp.tflite.fuse import representative_inputs
for a, b in zip(sys.argv[1::2], sys.argv[2::2]):
    for mode in ("", "builtin"):
        ma, mb = rt.Model(a, cpu_kernel_mode=mode), rt.Model(b, cpu_kernel_mode=mode, num_threads=2)
        for xs in representative_inputs(ma, samples=6, seed=11):
            for u, v in zip(ma.run(*xs), mb.run(*xs)):
                assert np.array_equal(u, v), (a, b, mode)
from keras_csp.kernels import resolve_variant
print("checked", len(sys.argv) // 2, "pairs on", resolve_variant())
"""


def _run_with_variant(variant, *args):
    import os
    import subprocess
    import sys
    env = dict(os.environ, KERAS_CSP_KERNEL_VARIANT=variant)
    return subprocess.run([sys.executable, "-c", _VARIANT_CHECK, *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_fused_models_bit_identical_on_every_variant_of_this_cpu(dense, partial, partial_variants, tmp):
    """KERAS_CSP_KERNEL_VARIANT runs a whole model's fused ops on one variant (read once per process,
    so each variant gets its own): every int8 variant this CPU has gives the original model's bits,
    not only the best one (e.g. the avx2 kernels of AVX2-only CPUs, on an AVX-512 machine)."""
    from keras_csp import kernels as K
    pairs = []
    for i, p in enumerate([dense, partial] + partial_variants):
        out = tmp / f"per_variant_{i}.tflite"
        fuse(p, out, verify=False)
        pairs += [p, str(out)]
    ran = []
    for v in K.available_variants():
        r = _run_with_variant(v, *pairs)
        assert r.returncode == 0 and f"pairs on {v}" in r.stdout, (v, r.stdout[-2000:], r.stderr[-2000:])
        ran.append(v)
    print("variants run through the runtime:", ran)
    assert "scalar" in ran


@pytest.mark.parametrize("variant, msg", [("bogus", "unknown kernel variant 'bogus'"),
                                          ("sme" if not __import__("platform").machine().startswith("aarch64")
                                           else "avx2", "is not available on this CPU")])
def test_unusable_kernel_variant_override_is_a_clear_error(dense, tmp, variant, msg):
    out = tmp / "override_err.tflite"
    fuse(dense, out, verify=False)
    r = _run_with_variant(variant, dense, str(out))
    assert r.returncode != 0 and "KERAS_CSP_KERNEL_VARIANT" in r.stderr and msg in r.stderr, r.stderr[-2000:]


def test_bench_isolated_runs_each_variant_alone_in_its_own_processes(dense, tmp):
    """`bench --isolated N`: every variant (builtin, our runtime, stock + delegate) timed in N
    processes of its own, --runs each, instead of interleaved with the others in one process."""
    from keras_csp.cli import cli
    out = tmp / "isolated.json"
    r = CliRunner().invoke(cli, ["bench", dense, "--fused", "--no-tune", "--isolated", "2", "--runs", "3",
                                 "--warmup", "1", "--no-profile", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "2 processes per variant of 3 runs" in r.output
    rep = json.load(open(out))
    assert rep["interleaved"] is False and rep["isolated_rounds"] == 2
    from keras_csp import kernels as K
    assert rep["machine"]["kernel_variant"] == K.resolve_variant() == K.best_variant()
    rows = {row["kind"]: row for row in rep["results"]}
    assert set(rows) == {"builtin", "fused", "stock+delegate"}
    assert all(row["runs"] == 6 and "error" not in row for row in rows.values())
    assert rows["fused"]["speedup_vs_builtin"] > 0 and rows["fused"]["fused_ops"][0]["calls"] == 3
    assert rows["builtin"]["fused_ops"] == []


@pytest.mark.parametrize("stride, relu6", [(1, True), (2, False)])
def test_multiplier_one_depthwise_is_a_tune_candidate_bit_exact(tmp, stride, relu6):
    """A multiplier-1 DEPTHWISE_CONV_2D (MobileNet-v2's) is fused only under --tune, which times it
    (kept here whatever the timing: min speedup 0); the fused model stays bit-exact under XNNPACK,
    TFLite's builtin and reference kernels. Without --tune XNNPACK keeps it. One whose output no 1x1
    conv reads runs alone (KcspDepthwiseConv2D), not as an inverted residual."""
    import tensorflow as tf

    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(5)
    inp = tf.keras.Input((10, 10, 72))
    y = L.Conv2D(80, 1, activation="relu")(inp)
    y = L.DepthwiseConv2D(3, strides=stride, padding="same")(y)
    y = L.ReLU(6.0)(y) if relu6 else L.ReLU()(y)
    src = str(tmp / f"dw1_{stride}.tflite")
    _convert_int8(tf.keras.Model(inp, L.GlobalAveragePooling2D()(y)), (10, 10, 72), src)
    plain = fuse(src, str(tmp / f"dw1_{stride}_plain.tflite"), samples=2)
    assert "KcspDepthwiseConv2D" not in plain["ops_after"]
    rep = fuse(src, str(tmp / f"dw1_{stride}_tuned.tflite"), samples=4, tune=True, tune_min_speedup=0.0, tune_runs=2)
    dws = [f for f in rep["fused"] if f["op"] == "KcspDepthwiseConv2D"]
    assert [f["depthwise"] for f in dws] == [f"3x3/s{stride} 80->80 x1"], rep["fused"]
    assert rep["fallbacks"] == [] and "DEPTHWISE_CONV_2D" not in rep["ops_after"]
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}


def _mobilenet_v2_blocks(path, mult=1):
    """A MobileNet-v2 stem-less body: blocks (expansion t, output channels, stride) with BN folded
    and ReLU6 fused by the converter; `mult` the depth multiplier of every depthwise conv."""
    import tensorflow as tf

    from keras_csp.tflite.testing import _convert_int8
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(11)
    inp = tf.keras.Input((12, 11, 16))
    x, cin = inp, 16
    for t, cout, stride in ((1, 16, 1), (6, 24, 2), (6, 24, 1), (4, 40, 1)):
        y = x
        if t != 1:
            y = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(cin * t, 1, use_bias=False)(y)))
        y = L.DepthwiseConv2D(3, strides=stride, padding="same", depth_multiplier=mult, use_bias=False)(y)
        y = L.BatchNormalization()(L.Conv2D(cout, 1, use_bias=False)(L.ReLU(6.0)(L.BatchNormalization()(y))))
        x = L.Add()([x, y]) if stride == 1 and cin == cout else y
        cin = cout
    _convert_int8(tf.keras.Model(inp, L.Dense(10)(L.GlobalAveragePooling2D()(x))), (12, 11, 16), path)
    return path


@pytest.mark.parametrize("mult", [1, 2])
def test_inverted_residuals_fuse_whole_under_tune_bit_exact(tmp, mult):
    """Under --tune each MobileNet-v2 block ([1x1 expand ->] depthwise -> 1x1 project [+ ADD of the
    block input]) becomes one KcspInvertedResidual: no hand-over between our threads and LiteRT's
    inside it. Bit-exact under XNNPACK, TFLite's builtin and reference kernels at 1, 2 and 3 threads;
    without --tune the multiplier-1 blocks stay builtin."""
    src = _mobilenet_v2_blocks(str(tmp / f"mnv2_blocks_x{mult}.tflite"), mult)
    dst = str(tmp / f"mnv2_blocks_x{mult}_fused.tflite")
    rep = fuse(src, dst, samples=4, tune=True, tune_min_speedup=0.0, tune_runs=2)
    blocks = [f for f in rep["fused"] if f["op"] == "KcspInvertedResidual"]
    e = 16 * mult
    assert [(f["expand"], f["depthwise"], f["project"]) for f in blocks] == [
        (None, f"3x3/s1 16->{e} x{mult}", f"1x1/s1 {e}->16 +residual add"),
        ("1x1/s1 16->96", f"3x3/s2 96->{96 * mult} x{mult}", f"1x1/s1 {96 * mult}->24"),
        ("1x1/s1 24->144", f"3x3/s1 144->{144 * mult} x{mult}", f"1x1/s1 {144 * mult}->24 +residual add"),
        ("1x1/s1 24->96", f"3x3/s1 96->{96 * mult} x{mult}", f"1x1/s1 {96 * mult}->40"),
    ], rep["fused"]
    assert rep["fallbacks"] == [] and set(rep["ops_after"]) == {"KcspInvertedResidual", "MEAN", "FULLY_CONNECTED"}
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    for threads in (1, 2, 3):
        for mode in ("", "builtin", "reference"):
            a, f = rt.Model(src, cpu_kernel_mode=mode), rt.Model(dst, num_threads=threads, cpu_kernel_mode=mode)
            for xs in representative_inputs(a, samples=3, seed=threads):
                assert np.array_equal(a.run(*xs)[0], f.run(*xs)[0]), (threads, mode or "xnnpack")
    # one output row per band (KCSP_IR_BAND_KB, read once per process): expanded rows kept from band
    # to band, and the runs of rows two and three threads split the image into
    script = ("import sys, numpy as np; from keras_csp import runtime as rt; "
              "from keras_csp.tflite.fuse import representative_inputs\n"
              "for th in (1, 2, 3):\n for mode in ('', 'builtin', 'reference'):\n"
              "  a, f = rt.Model(sys.argv[1], cpu_kernel_mode=mode), rt.Model(sys.argv[2], num_threads=th, cpu_kernel_mode=mode)\n"
              "  for xs in representative_inputs(a, samples=3, seed=th):\n"
              "   assert np.array_equal(a.run(*xs)[0], f.run(*xs)[0]), (th, mode)\n"
              "print('bands ok')")
    r = subprocess.run([sys.executable, "-c", script, src, dst], capture_output=True, text=True,
                       env=dict(os.environ, KCSP_IR_BAND_KB="1"))
    assert r.returncode == 0 and "bands ok" in r.stdout, r.stderr[-2000:]
    if mult == 1:
        plain = fuse(src, str(tmp / "mnv2_blocks_plain.tflite"), samples=2)
        assert "KcspInvertedResidual" not in plain["ops_after"] and plain["ops_after"]["DEPTHWISE_CONV_2D"] == 4


def test_a_dropped_inverted_residual_falls_back_to_its_lone_depthwise_conv(tmp, monkeypatch):
    """Where a whole block loses to the builtin ops (a CPU whose stock 1x1 convs beat ours) but its
    depthwise conv alone wins, --tune keeps the lone depthwise op. Timings are faked: blocks 0.8x,
    depthwise convs 2x, the whole model 1.1x."""
    import keras_csp.tflite.bench as bench_mod

    src = _mobilenet_v2_blocks(str(tmp / "mnv2_blocks_fallback.tflite"))

    def fake_time_patterns(g, matches, **kw):
        return [{"op": m.kind, "output": g.tensor_name(m.output), "replaces": [], "detail": "",
                 "threads": 1, "builtin_ms": 1.0, "fused_ms": 1.25 if m.kind == "KcspInvertedResidual" else 0.5,
                 "speedup": 0.8 if m.kind == "KcspInvertedResidual" else 2.0} for m in matches]

    def fake_compare(paths, **kw):
        return {"models": [{"median_ms": 1.0}, {"median_ms": 1.1}]}

    monkeypatch.setattr(bench_mod, "time_patterns", fake_time_patterns)
    monkeypatch.setattr(bench_mod, "compare_models", fake_compare)
    rep = fuse(src, str(tmp / "mnv2_blocks_fallback_fused.tflite"), samples=2, tune=True)
    assert rep["ops_after"].get("KcspInvertedResidual") is None and rep["ops_after"]["KcspDepthwiseConv2D"] == 4
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    rows = rep["tuning"]["ops"]
    assert [r["kept"] for r in rows if r["op"] == "KcspInvertedResidual"] == [False] * 4
    assert [r["kept"] for r in rows if r["op"] == "KcspDepthwiseConv2D"] == [True] * 4


def test_inverted_residual_options_that_do_not_fit_fail_clearly(tmp):
    """KcspInvertedResidual options inconsistent with each other or with the model: a clear error
    naming the problem, never a crash or wrong bits."""
    src = _mobilenet_v2_blocks(str(tmp / "mnv2_blocks_opts.tflite"))
    dst = str(tmp / "mnv2_blocks_opts_fused.tflite")
    fuse(src, dst, samples=2, tune=True, tune_min_speedup=0.0, tune_runs=1, verify=False)

    def first_block_with(key):
        def edit(o):
            if "expand" in o and o["project"].get("add") is not None:
                key(o)
        return edit

    def stride_2(o):
        o["depthwise"] = dict(o["depthwise"], stride_h=2, stride_w=2)

    def project_3x3(o):
        o["project"] = dict(o["project"], kernel_h=3, kernel_w=3)

    def wider_expand(o):
        o["expand"] = dict(o["expand"], out_channels=o["expand"]["out_channels"] + 1)

    def no_project(o):
        del o["project"]

    for name, edit, msg in (("stride", stride_2, "residual add: input 6x6x24 does not match the output 3x3x24"),
                            ("project", project_3x3, "project: must be a 1x1 conv with stride 1"),
                            ("expand", wider_expand, "expand: multipliers has"),
                            ("missing", no_project, "missing option 'project'")):
        bad = edit_custom_options(dst, tmp / f"bad_ir_{name}.tflite", first_block_with(edit), prefix="KcspInverted")
        with pytest.raises(rt.ModelLoadError, match=msg):
            rt.Model(bad)


@pytest.mark.parametrize("c, mult", [(24, 1), (24, 2), (6, 1), (12, 1), (5, 2), (3, 4)])
def test_depthwise_ties_round_as_the_builtin_depthwise_kernel(tmp, c, mult):
    """TFLite's optimized DEPTHWISE_CONV_2D (LiteRT 2.3, x86-64) rounds ties up in whole groups of 8
    output channels and away from zero in the out_channels % 8 left over. Power-of-two scales make
    ties common; the fused op must match the model under TFLite's builtin kernels (those channels
    run as a second op), under XNNPACK and under the reference kernels."""
    from keras_csp import kernels as K
    from keras_csp.runtime import Model

    rng = np.random.default_rng(7)
    oc = c * mult
    w = rng.integers(-127, 128, (1, 3, 3, oc)).astype(np.int8)
    b = rng.integers(-20000, 20000, oc).astype(np.int32)
    q = K.Int8Quant(0.125, 0, np.full(oc, 0.25, np.float32), 0.5, 0, "none")
    src, dst = tmp / f"dw_ties_{c}_{mult}.tflite", tmp / f"dw_ties_{c}_{mult}_fused.tflite"
    src.write_bytes(K.build_tflite_model("depthwise", (1, 9, 9, c), w, b, q, depth_multiplier=mult))
    rep = fuse(str(src), str(dst), samples=8, tune=mult == 1, tune_min_speedup=0.0, tune_runs=2)
    assert rep["ops_after"] == {"KcspDepthwiseConv2D": 1}, rep["ops_after"]
    assert rep["verification"]["model_outputs_bit_exact"] == {"xnnpack": True, "tflite_builtin": True}
    xs = [np.random.default_rng(s).integers(-128, 128, (1, 9, 9, c)).astype(np.int8) for s in range(10)]
    for mode in ("builtin", "reference", ""):
        a, f = Model(str(src), cpu_kernel_mode=mode), Model(str(dst), cpu_kernel_mode=mode)
        assert all(np.array_equal(a.run(x)[0], f.run(x)[0]) for x in xs), mode or "xnnpack"


@pytest.mark.parametrize("c, per_group, tune", [(32, 4, False), (32, 4, True), (64, 8, True), (64, 4, True),
                                                (256, 16, True), (256, 32, True)])
def test_grouped_convs_round_ties_as_the_builtin_grouped_conv(tmp, c, per_group, tune):
    """TFLite's builtin CONV_2D runs a grouped conv on its reference kernel, which rounds ties away
    from zero (its optimized convs round them up). Power-of-two scales make ties common: the fused
    op, densified (without --tune, where that pays) or on the grouped kernel (--tune: groups of 4, 8,
    16 or 32; 16 and 32 per group elsewhere than on AVX-512 VNNI), matches the model under TFLite's
    builtin, reference and XNNPACK kernels, at 1 to 3 threads (3: the AVX-512 kernel's blocks split
    over the threads for 16 and 32)."""
    from keras_csp import kernels as K
    from keras_csp.runtime import Model

    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, (c, 3, 3, per_group)).astype(np.int8)
    b = rng.integers(-20000, 20000, c).astype(np.int32)
    q = K.Int8Quant(0.125, 0, np.full(c, 0.25, np.float32), 0.5, 0, "none")
    src, dst = tmp / f"grouped_ties_{c}_{per_group}.tflite", tmp / f"grouped_ties_{c}_{per_group}_{tune}.tflite"
    src.write_bytes(K.build_tflite_model("conv", (1, 9, 9, c), w, b, q))
    tuning = dict(tune=True, tune_min_speedup=0.0, tune_runs=1) if tune else {}
    rep = fuse(str(src), str(dst), samples=8, **tuning)
    assert rep["ops_after"] == {"KcspConv2D": 1} and rep["fallbacks"] == [], (rep["ops_after"], rep["fallbacks"])
    from keras_csp.tflite.patterns import densify_pays
    groups = c // per_group
    dense = not tune or densify_pays(per_group, per_group, groups)  # 8 groups of 4: dense still pays
    want = " (grouped, run dense)" if dense else f" (grouped, {groups} groups)"
    assert rep["fused"][0]["conv"] == f"3x3/s1 {c}->{c}{want}"
    xs = [np.random.default_rng(s).integers(-128, 128, (1, 9, 9, c)).astype(np.int8) for s in range(8)]
    for threads in (1, 2, 3):
        for mode in ("builtin", "reference", ""):
            a, f = Model(str(src), cpu_kernel_mode=mode), Model(str(dst), num_threads=threads, cpu_kernel_mode=mode)
            assert all(np.array_equal(a.run(x)[0], f.run(x)[0]) for x in xs), (threads, mode or "xnnpack")
    if not dense:  # groups that do not divide the channels: refused with a message
        bad = edit_custom_options(str(dst), tmp / f"grouped_bad_{c}.tflite", lambda o: o.update(groups=5), prefix="Kcsp")
        with pytest.raises(rt.ModelLoadError, match="groups must be >= 2 and divide in_channels and out_channels"):
            rt.Model(bad)


def test_depthwise_whose_builtin_rounding_splits_an_input_channel_stays_builtin(tmp):
    """x3 with 9 output channels: TFLite's builtin kernel rounds output channel 8 apart from 6 and 7,
    which read the same input channel; the fuse pass leaves such an op to LiteRT and says why."""
    from keras_csp import kernels as K

    rng = np.random.default_rng(1)
    w = rng.integers(-127, 128, (1, 3, 3, 9)).astype(np.int8)
    q = K.Int8Quant(0.125, 0, np.full(9, 0.25, np.float32), 0.5, 0, "none")
    src = tmp / "dw_x3.tflite"
    src.write_bytes(K.build_tflite_model("depthwise", (1, 9, 9, 3), w, None, q, depth_multiplier=3))
    rep = fuse(str(src), str(tmp / "dw_x3_fused.tflite"), samples=2)
    assert rep["ops_after"] == {"DEPTHWISE_CONV_2D": 1}
    assert "rounds the last 1 apart" in rep["left"][0]["reason"]
