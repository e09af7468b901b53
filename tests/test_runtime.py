"""keras_csp.runtime: the LiteRT C API runner with our custom ops (issue 5, phase 1)."""
import os

import numpy as np
import pytest

from keras_csp import runtime as rt
from keras_csp.tflite.graph import Graph
from keras_csp.tflite.schema import schema
from keras_csp.tflite.testing import make_custom_op_model, make_partial_conv_model

# LiteRT's own message when a model with our custom op runs without our runtime (documented
# in docs of keras_csp.runtime.Model): "Encountered unresolved custom op: <name>."
UNRESOLVED = "Encountered unresolved custom op: KcspTestAffine"


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("runtime")


@pytest.fixture(scope="module")
def affine(tmp):
    return str(make_custom_op_model(tmp / "affine.tflite"))


@pytest.fixture(scope="module")
def int8_model(tmp):
    return str(make_partial_conv_model(tmp / "partial.tflite", stages=1))


def test_library_and_version():
    assert os.path.isfile(rt.litert_library_path())
    assert rt.litert_version().startswith("2.3")
    from keras_csp import _runtime

    assert _runtime.is_tested_litert_version("2.3.0")
    assert _runtime.is_tested_litert_version("2.3.1")
    assert not _runtime.is_tested_litert_version("2.4.0")
    assert not _runtime.is_tested_litert_version("1.4.0")
    assert not _runtime.is_tested_litert_version("garbage")
    assert _runtime.load_litert(rt.litert_library_path()) == rt.litert_version()  # read next to the lib


def test_unknown_version_is_refused(affine):
    with pytest.raises(rt.LiteRtVersionError, match="unsupported LiteRT version 1.4.0"):
        rt.Model(affine, litert_version="1.4.0")
    with pytest.raises(rt.LiteRtVersionError, match="tested with ai-edge-litert 2.3"):
        rt.Model(affine, litert_version="2.4.0")


def test_missing_library(affine, tmp):
    with pytest.raises(rt.ModelLoadError, match="LiteRT library not found"):
        rt.Model(affine, litert_library=str(tmp / "nope.so"), litert_version="2.3.0")


def test_custom_op_end_to_end(affine):
    m = rt.Model(affine)
    assert "KcspTestAffine" in rt.custom_op_names()
    (d,) = m.input_details()
    assert d.shape == (1, 4) and d.dtype == np.float32 and d.quantization == "none"
    (y,) = m.run(np.array([[1, 2, 3, 4]], np.float32))
    np.testing.assert_array_equal(y, np.array([[2.5, 4.5, 6.5, 8.5]], np.float32))
    assert m.last_run_ms >= 0
    (st,) = m.custom_op_stats()
    assert st["op"] == "KcspTestAffine" and st["node"] == 0 and st["calls"] == 1


def test_two_nodes_of_one_custom_op_keep_their_own_options(tmp):
    """LiteRT gives every node of a custom op the same user_data: the node-key input tells
    our callbacks apart."""
    p = tmp / "two.tflite"
    make_custom_op_model(p, options={"version": 1, "node": 0, "scale": 2.0, "offset": 0.0})
    g = Graph.load(p)
    y0 = int(g.sg.outputs[0])
    key1 = g.add_tensor("key1", [2], np.int8, data=np.zeros(2, np.int8))
    y1 = g.add_tensor("y1", [1, 4], np.float32)
    from flatbuffers import flexbuffers

    op = schema.OperatorT()
    op.opcodeIndex = g.custom_opcode_index("KcspTestAffine")
    op.inputs = np.asarray([y0, key1], np.int32)
    op.outputs = np.asarray([y1], np.int32)
    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(
        {"version": 1, "node": 1, "scale": 10.0, "offset": 1.0})), np.uint8).copy()
    g.sg.operators.append(op)
    g.sg.outputs = np.asarray([y1], np.int32)
    g.save(p)
    (y,) = rt.Model(str(p)).run(np.ones((1, 4), np.float32))
    np.testing.assert_array_equal(y, np.full((1, 4), 21.0, np.float32))


def test_unregistered_custom_op_fails_with_litert_message(affine):
    with pytest.raises(rt.ModelLoadError, match=UNRESOLVED):
        rt.Model(affine, register_custom_ops=False)
    # ... which is also what the stock ai-edge-litert interpreter says.
    from ai_edge_litert.interpreter import Interpreter

    with pytest.raises(RuntimeError, match=UNRESOLVED):
        Interpreter(model_path=affine).allocate_tensors()


def test_bad_model_files(tmp):
    with pytest.raises(rt.ModelLoadError, match="not found"):
        rt.Model(tmp / "missing.tflite")
    (tmp / "garbage.tflite").write_bytes(os.urandom(2000))
    with pytest.raises(rt.ModelLoadError, match="could not load model"):
        rt.Model(tmp / "garbage.tflite")
    good = make_custom_op_model(tmp / "t.tflite")
    (tmp / "trunc.tflite").write_bytes(open(good, "rb").read()[:150])
    with pytest.raises(rt.ModelLoadError, match="could not load model"):
        rt.Model(tmp / "trunc.tflite")
    (tmp / "empty.tflite").write_bytes(b"")
    with pytest.raises(rt.ModelLoadError):
        rt.Model(tmp / "empty.tflite")


@pytest.mark.parametrize("kwargs, msg", [
    (dict(options={"version": 1, "node": 0, "scale": "x", "offset": 1.0}), "missing numeric option 'scale'"),
    (dict(options={"version": 2, "node": 0, "scale": 1.0, "offset": 1.0}), "options version 2 not supported"),
    (dict(options={"node": 0, "scale": 1.0, "offset": 1.0}), "missing option 'version'"),
    (dict(options=[1, 2, 3]), "must be a flexbuffer map"),
    (dict(raw_options=b"\x01\x02"), "flexbuffer"),
    (dict(raw_options=b""), "flexbuffer: buffer too small"),
    (dict(key_len=3), "no initialized node with id 2"),
])
def test_malformed_custom_options_fail_cleanly(tmp, kwargs, msg):
    p = make_custom_op_model(tmp / "bad.tflite", **kwargs)
    with pytest.raises(rt.ModelLoadError, match=msg):
        rt.Model(p)


def test_flexbuffer_reader_never_crashes_on_garbage():
    from keras_csp import _runtime
    from flatbuffers import flexbuffers

    rng = np.random.default_rng(0)
    good = bytes(flexbuffers.Dumps({"version": 1, "node": 3, "c_skip": 4, "conv_offset": 4,
                                    "kernel_h": 1, "kernel_w": 1, "stride_h": 1, "stride_w": 1,
                                    "padding": 1, "in_channels": 4, "out_channels": 2,
                                    "input_zero_point": 0, "output_zero_point": 0,
                                    "multipliers": [1 << 30, 1 << 30], "shifts": [0, -1],
                                    "requant_scales": [0.5, 0.25],
                                    "act_min": -128, "act_max": 127}))
    assert _runtime.check_custom_options("CspPartialConv", good)[0] == 3
    no_scales = dict(flexbuffers.Loads(good))
    del no_scales["requant_scales"]
    no_scales = bytes(flexbuffers.Dumps(no_scales))
    assert _runtime.check_custom_options("CspPartialConv", no_scales, "builtin")[0] == 3
    with pytest.raises(RuntimeError, match="missing option 'requant_scales'"):
        _runtime.check_custom_options("CspPartialConv", no_scales, "xnnpack")
    with pytest.raises(ValueError, match="numerics must be"):
        _runtime.check_custom_options("CspPartialConv", good, "fast")
    for _ in range(300):
        b = bytearray(good)
        for _ in range(rng.integers(1, 6)):
            b[rng.integers(0, len(b))] = rng.integers(0, 256)
        try:
            _runtime.check_custom_options("CspPartialConv", bytes(b[: rng.integers(1, len(b) + 1)]))
        except RuntimeError as e:
            assert "invalid custom options" in str(e)
    bad = dict(flexbuffers.Loads(good))
    bad["multipliers"] = [1]
    with pytest.raises(RuntimeError, match="multipliers has 1 entries, expected out_channels=2"):
        _runtime.check_custom_options("CspPartialConv", bytes(flexbuffers.Dumps(bad)))


def test_input_validation(affine):
    m = rt.Model(affine)
    with pytest.raises(rt.InputError, match="shape"):
        m.run(np.zeros((1, 5), np.float32))
    with pytest.raises(rt.InputError, match="float32"):
        m.run(np.zeros((1, 4), np.int8))
    with pytest.raises(rt.InputError, match="1 input"):
        m.run(np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32))
    with pytest.raises(rt.InputError, match="missing inputs"):
        m.run({"nope": np.zeros((1, 4), np.float32)})
    (y,) = m.run({"x": np.zeros((1, 4), np.float32)})
    assert y.shape == (1, 4)
    with pytest.raises(ValueError):
        rt.Model(affine, num_threads=0)


def test_unfused_int8_model_matches_litert_interpreter(int8_model):
    """Plain (unfused) models run too, and give what ai-edge-litert's interpreter gives."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    m = rt.Model(int8_model)
    (d,) = m.input_details()
    g = Graph.load(int8_model)
    s, z, _ = g.quant(int(g.sg.inputs[0]))
    assert d.dtype == np.int8 and d.quantization == "per_tensor"
    assert d.scale == pytest.approx(float(s[0])) and d.zero_point == int(z[0])
    assert m.output_details()[0].shape == (1, 10)
    rng = np.random.default_rng(1)
    for mode, resolver in (("", OpResolverType.AUTO), ("builtin", OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)):
        ours = rt.Model(int8_model, cpu_kernel_mode=mode)
        it = Interpreter(model_path=int8_model, experimental_op_resolver_type=resolver)
        it.allocate_tensors()
        for _ in range(3):
            x = rng.integers(-128, 128, size=d.shape).astype(np.int8)
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            np.testing.assert_array_equal(ours.run(x)[0], it.get_tensor(it.get_output_details()[0]["index"]))


def test_benchmark_and_timing(int8_model):
    m = rt.Model(int8_model, num_threads=1)
    lat = m.benchmark(runs=5, warmup=1)
    assert len(lat) == 5 and all(v > 0 for v in lat)
    m.run(np.zeros(m.input_details()[0].shape, np.int8))
    assert m.last_run_ms > 0
    assert m.custom_op_stats() == []
    with pytest.raises(rt.RuntimeError_, match="profiling is not enabled"):
        m.profile()


def test_concurrent_runs_from_threads(affine):
    import threading

    m = rt.Model(affine)
    errors = []

    def work(k):
        x = np.full((1, 4), float(k), np.float32)
        for _ in range(50):
            (y,) = m.run(x)
            if not np.array_equal(y, x * 2 + 0.5):
                errors.append(k)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert errors == []


def test_byte_mutated_models_fail_cleanly_never_crash(int8_model, tmp):
    """LiteRT 2.3's loader does not verify files (corrupt ones segfault inside libLiteRt.so);
    Model() checks them first. Each mutant runs in a forked child so a crash cannot take the
    test process down."""
    import signal

    from keras_csp.tflite import fuse
    from keras_csp.tflite.fuse import representative_inputs

    fused = tmp / "mut_src.tflite"
    fuse(int8_model, fused, verify=False)
    src = fused.read_bytes()
    rng = np.random.default_rng(2024)
    crashed = []
    for i in range(40):
        b = bytearray(src)
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        p = tmp / f"mut{i}.tflite"
        p.write_bytes(bytes(b))
        pid = os.fork()
        if pid == 0:  # child: load + run, exit 0 (ran) / 3 (clean Python error)
            code = 3
            try:
                signal.alarm(60)
                m = rt.Model(p)
                for xs in representative_inputs(m, 2):
                    m.run(*xs)
                code = 0
            except Exception:
                code = 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            crashed.append((i, os.WTERMSIG(status)))
    assert crashed == []


@pytest.mark.parametrize("string", [b"main", b"output_0"])
def test_string_length_past_end_of_file_is_refused(int8_model, tmp, string):
    """Regression (found by byte mutation): a subgraph / signature name whose length field points
    past the end of the file made LiteRT read out of bounds (SIGSEGV / SIGBUS)."""
    from keras_csp.tflite import fuse
    fused = tmp / "strlen_src.tflite"
    fuse(int8_model, fused, verify=False)
    b = bytearray(fused.read_bytes())
    at = b.find(len(string).to_bytes(4, "little") + string + b"\x00")
    assert at >= 0
    b[at] = 0x57 if string == b"main" else 0x87  # the lengths that crashed
    bad = tmp / f"strlen_{string.decode()}.tflite"
    bad.write_bytes(bytes(b))
    with pytest.raises(rt.ModelLoadError, match="corrupt string"):
        rt.Model(bad)


def test_non_utf8_names_are_replaced_not_raised(tmp_path):
    """Tensor / signature names come from the file and need not be UTF-8 (found by mutating
    models): Model() reports them with U+FFFD instead of raising UnicodeDecodeError."""
    g = Graph.load(make_partial_conv_model(tmp_path / "m.tflite"))
    for sd in g.model.signatureDefs:
        for t in sd.inputs:
            t.name = b"in\xe1\x80put"
        for t in sd.outputs:
            t.name = b"out\xff"
    g.save(tmp_path / "bad_names.tflite")
    m = rt.Model(tmp_path / "bad_names.tflite")
    assert m.input_details()[0].name == "in\ufffdput" and m.output_details()[0].name == "out\ufffd"
    (y,) = m.run(np.zeros(m.input_details()[0].shape, np.int8))
    assert y.shape == tuple(m.output_details()[0].shape)
