"""keras_csp.delegate(): fused models in the stock ai_edge_litert Interpreter (issue 15).

The delegate (kernels/runtime/delegate.cc, libkeras_csp_delegate.so) claims our CUSTOM nodes and
runs them on the runtime's NodeKernels; the stock interpreter runs the rest (XNNPACK by default).
"""
import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType, load_delegate

import keras_csp
from keras_csp import runtime as rt
from keras_csp.litert_delegate import DelegateError, StockModel, delegate, delegate_report, library_path
from keras_csp.tflite.fuse import fuse, representative_inputs
from keras_csp.tflite.graph import Graph
from keras_csp.tflite.testing import (edit_custom_options, make_custom_op_model, make_dense_block_model,
                                      make_partial_conv_model)

R = OpResolverType


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("delegate")


@pytest.fixture(scope="module")
def leaky(tmp):
    """A model whose fused op rounds differently under XNNPACK and TFLite numerics (LEAKY_RELU)."""
    src = str(make_partial_conv_model(tmp / "leaky.tflite", activation="leaky_relu", seed=3))
    dst = str(tmp / "leaky_fused.tflite")
    fuse(src, dst)
    return src, dst


@pytest.fixture(scope="module")
def chain(tmp):
    """Two CspPartialConv in a row: TFLite hands them to the delegate as ONE partition whose middle
    tensor gets no arena memory (the delegate keeps it)."""
    src = str(make_partial_conv_model(tmp / "chain.tflite", stages=2))
    dst = str(tmp / "chain_fused.tflite")
    assert fuse(src, dst)["fused_ops"] == 2
    return src, dst


def _run(path, delegates=None, resolver=R.AUTO, inputs=None, threads=None):
    it = Interpreter(model_path=str(path), experimental_delegates=delegates,
                     experimental_op_resolver_type=resolver, num_threads=threads)
    it.allocate_tensors()
    outs = []
    for xs in inputs:
        for d, x in zip(it.get_input_details(), xs):
            it.set_tensor(d["index"], x)
        it.invoke()
        outs.append([it.get_tensor(d["index"]).copy() for d in it.get_output_details()])
    return outs, it


def _inputs(path, n=10, seed=3):
    return representative_inputs(rt.Model(path), samples=n, seed=seed)


def _equal(a, b):
    return all(np.array_equal(u, v) for xa, xb in zip(a, b) for u, v in zip(xa, xb))


def test_library_exports_only_the_plugin_entry_points():
    out = subprocess.run(["nm", "-D", "--defined-only", library_path()], capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if " T " in line and not line.split()[-1].startswith("_Z")}
    assert {"tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate", "keras_csp_delegate_report"} <= names
    assert not any(n.startswith("keras_csp::") for n in names)


@pytest.mark.parametrize("options, msg", [
    ({"numerics": "fast", "litert_version": "2.3.0"}, "numerics must be auto, xnnpack, builtin or reference"),
    ({"num_threads": "two", "litert_version": "2.3.0"}, "num_threads must be an integer"),
    ({"num_threads": "-1", "litert_version": "2.3.0"}, "num_threads must be an integer"),
    ({"colour": "red", "litert_version": "2.3.0"}, "unknown option 'colour'"),
    ({}, "litert_version .* is required"),
    ({"litert_version": "2.4.1"}, "runtime version 2.4.1 is untested"),
    ({"litert_version": "banana"}, "is not a version number"),
    ({"litert_version": "2.3.0", "allow_untested_version": "maybe"}, "allow_untested_version must be"),
])
def test_plugin_refuses_bad_options_with_a_message(options, msg):
    with pytest.raises(ValueError, match=msg):
        load_delegate(library_path(), options)


def test_python_front_door_validates_and_passes_the_version():
    with pytest.raises(DelegateError, match="numerics must be one of"):
        delegate("fast")
    with pytest.raises(DelegateError, match="num_threads"):
        delegate(num_threads=0)
    d = keras_csp.delegate()
    rep = delegate_report(d)
    assert rep["litert_version"] == rt.litert_version() and rep["numerics_requested"] == "auto"
    assert load_delegate(library_path(), {"litert_version": "9.9.9", "allow_untested_version": "true"})


def test_stock_interpreter_without_the_delegate_cannot_run_fused_files(leaky):
    with pytest.raises(RuntimeError, match="unresolved custom op: CspPartialConv"):
        _run(leaky[1], inputs=[])


@pytest.mark.parametrize("resolver, want", [(R.AUTO, "xnnpack"), (R.BUILTIN_WITHOUT_DEFAULT_DELEGATES, "builtin")])
def test_numerics_auto_follows_the_kernels_around_the_fused_ops(leaky, resolver, want):
    """The stock Interpreter applies its default XNNPACK delegate after ours (at allocation); the
    delegate sees it in the plan and rounds like XNNPACK, else like TFLite's builtin kernels. The
    outputs are then the plain model's bits; forcing the other rounding changes them."""
    src, dst = leaky
    xs = _inputs(src)
    plain, _ = _run(src, resolver=resolver, inputs=xs)
    d = delegate()
    got, _ = _run(dst, [d], resolver, xs)
    assert delegate_report(d)["numerics"] == want
    assert _equal(got, plain)
    other = "builtin" if want == "xnnpack" else "xnnpack"
    wrong, _ = _run(dst, [delegate(other)], resolver, xs)
    assert not _equal(wrong, plain)


def test_builtin_ref_resolver_with_reference_numerics(leaky):
    src, dst = leaky
    xs = _inputs(src)
    plain, _ = _run(src, resolver=R.BUILTIN_REF, inputs=xs)
    got, _ = _run(dst, [delegate("reference")], R.BUILTIN_REF, xs)
    assert _equal(got, plain)


def test_one_partition_of_two_fused_ops_keeps_its_middle_tensor(chain):
    src, dst = chain
    xs = _inputs(src)
    for resolver in (R.AUTO, R.BUILTIN_WITHOUT_DEFAULT_DELEGATES):
        d = delegate()
        got, it = _run(dst, [d], resolver, xs)
        assert _equal(got, _run(src, resolver=resolver, inputs=xs)[0])
        names = [o["op_name"] for o in it._get_ops_details()]
        # one partition of ours (+ XNNPACK's for MEAN and FULLY_CONNECTED under AUTO)
        assert names.count("DELEGATE") == (2 if resolver == R.AUTO else 1), names
        nodes = delegate_report(d)["nodes"]
        assert [n["op"] for n in nodes] == ["CspPartialConv"] * 2 and all(n["calls"] == len(xs) for n in nodes)


def test_dense_block_and_variants_bit_identical(tmp):
    models = [make_dense_block_model(tmp / "dense.tflite"),
              make_partial_conv_model(tmp / "split.tflite", split=True, kernel=1, activation="relu6", seed=1),
              make_partial_conv_model(tmp / "convfirst.tflite", skip_first=False, channels=12, c_skip=5,
                                      out_channels=7, activation=None, seed=2)]
    for src in map(str, models):
        dst = src.replace(".tflite", "_fused.tflite")
        assert fuse(src, dst)["fused_ops"] >= 1
        xs = _inputs(src, n=6)
        for resolver in (R.AUTO, R.BUILTIN_WITHOUT_DEFAULT_DELEGATES):
            assert _equal(_run(dst, [delegate()], resolver, xs)[0], _run(src, resolver=resolver, inputs=xs)[0]), src


def test_threads_follow_the_interpreter_and_never_change_the_bits(chain):
    src, dst = chain
    xs = _inputs(src, n=4)
    want, _ = _run(src, inputs=xs)
    for threads in (1, 2, 3):
        d = delegate()
        got, _ = _run(dst, [d], inputs=xs, threads=threads)
        assert _equal(got, want) and delegate_report(d)["num_threads"] == threads
    d = delegate(num_threads=2)
    got, _ = _run(dst, [d], inputs=xs, threads=1)
    assert _equal(got, want) and delegate_report(d)["num_threads"] == 2


def test_stock_model_matches_the_runtime(leaky):
    src, dst = leaky
    s, m = StockModel(dst), rt.Model(dst)
    for xs in _inputs(src, n=4):
        assert _equal([s.run(*xs)], [m.run(*xs)])
    s.custom_op_stats(reset=True)
    assert len(s.benchmark(runs=3, warmup=1)) == 3
    assert [r["calls"] for r in s.custom_op_stats()] == [4]




@pytest.mark.parametrize("edit, msg", [
    (lambda o: o.update(version=7), "options version 7 not supported"),
    (lambda o: o.update(padding=7), "padding must be"),
    (lambda o: o.pop("conv_offset"), "missing option 'conv_offset'"),
    (lambda o: o.update(c_skip=1000), "skip slice .* exceeds"),
])
def test_malformed_custom_options_give_a_clear_error(leaky, tmp, edit, msg):
    bad = edit_custom_options(leaky[1], tmp / "bad_opts.tflite", edit)
    with pytest.raises(RuntimeError, match=msg):
        _run(bad, [delegate()], inputs=[])


def test_file_from_an_older_fuse_is_refused_under_xnnpack_only(leaky, tmp):
    """No XNNPACK LEAKY_RELU parameters (an older fuse pass): refused where XNNPACK runs the rest,
    still bit-exact with TFLite's builtin kernels."""
    keys = ("post_xnn_positive_multiplier", "post_xnn_negative_multiplier")
    old = edit_custom_options(leaky[1], tmp / "old.tflite", lambda o: [o.pop(k) for k in keys])
    with pytest.raises(RuntimeError, match="missing option 'post_xnn_positive_multiplier'"):
        _run(old, [delegate()], inputs=[])
    xs = _inputs(leaky[0], n=4)
    r = R.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    assert _equal(_run(old, [delegate()], r, xs)[0], _run(leaky[0], resolver=r, inputs=xs)[0])


def test_wrong_tensor_types_and_empty_options(leaky, tmp):
    g = Graph.load(leaky[1])
    op = next(o for o in g.ops() if g.op_type(o) == "CspPartialConv")
    g.sg.tensors[op.inputs[2]].type = 3  # the int8 weights declared uint8
    g.save(tmp / "uint8_weights.tflite")
    with pytest.raises(RuntimeError, match="keras-csp delegate: node 0 \\(CspPartialConv\\).*int8"):
        _run(tmp / "uint8_weights.tflite", [delegate()], inputs=_inputs(leaky[0], n=1))
    p = make_custom_op_model(tmp / "empty.tflite", custom_code="CspPartialConv", raw_options=b"")
    with pytest.raises(RuntimeError, match="has no custom options"):
        _run(p, [delegate()], inputs=[])


_MUTANT_SCRIPT = r"""
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
from keras_csp.litert_delegate import delegate
ok = err = 0
for path in sys.argv[1:]:
    try:
        it = Interpreter(model_path=path, experimental_delegates=[delegate()])
        it.allocate_tensors()
        it.invoke()
        ok += 1
    except (RuntimeError, ValueError):
        err += 1
print(ok, err)
"""


def test_mutated_custom_options_never_crash(leaky, chain, tmp):
    """Random byte flips in the fused ops' custom options (what the delegate parses), in a
    separate process: each file runs or fails with an exception, none crashes it."""
    rng = np.random.default_rng(0)
    paths = []
    for k in range(60):
        g = Graph.load(chain[1] if k % 2 else leaky[1])
        for op in g.ops():
            if g.op_type(op).startswith("Csp"):
                b = bytearray(bytes(op.customOptions))
                for _ in range(int(rng.integers(1, 6))):
                    b[int(rng.integers(len(b)))] = int(rng.integers(256))
                op.customOptions = np.frombuffer(bytes(b), np.uint8).copy()
        p = tmp / f"mut{k}.tflite"
        g.save(p)
        paths.append(str(p))
    r = subprocess.run([sys.executable, "-c", _MUTANT_SCRIPT, *paths], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    ok, err = map(int, r.stdout.split()[-2:])
    assert ok + err == len(paths) and err > 0


@pytest.mark.parametrize("name", ["cspdensenet_tiny", "cspmobilenetv2_tiny", "yolov8_backbone_tiny"])
def test_fused_tiny_models_bit_identical_on_digits_in_the_stock_interpreter(tmp, name):
    """The fused tiny models (CspDenseBlock + CspPartialConv; depthwise skip heads and
    KcspDepthwiseConv2D; CspBlocks) in the stock Interpreter with keras_csp.delegate(): every
    output on the digits test split equals the plain int8 model's under the stock default
    (XNNPACK) and without default delegates (builtin kernels). BUILTIN_REF is not run here: its
    reference int8 SOFTMAX aborts on the plain models (see keras_csp.tflite.bench.accuracy_compare)."""
    from keras_csp.benchmark import export_ptq_int8
    from keras_csp.data import load_dataset
    from keras_csp.tflite.bench import accuracy_compare

    src = export_ptq_int8(name, str(tmp / f"{name}_int8.tflite"), 32)
    dst = str(tmp / f"{name}_fused.tflite")
    assert fuse(src, dst)["fused_ops"] >= 4
    ds = load_dataset("digits")
    res = accuracy_compare(src, dst, ds.x_test, ds.y_test, stock=True)
    assert res["examples"] == 360 and res["interpreter"] == "stock+delegate"
    for k in ("xnnpack", "tflite_builtin"):
        assert res[k]["bit_identical_outputs"] == 360, (k, res[k])
