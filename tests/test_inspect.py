"""Graph audit of .tflite files (keras_csp.tflite.audit, `keras-csp inspect`)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from keras_csp.cli import cli
from keras_csp.tflite.audit import OpInfo, TensorInfo, TFLiteAudit, inspect_tflite


def _convert(model, io_type="int8"):
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    shape = (1,) + tuple(model.input_shape[1:])
    conv.representative_dataset = lambda: ([rng.uniform(size=shape).astype("float32")] for _ in range(16))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    t = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[io_type]
    conv.inference_input_type = t
    conv.inference_output_type = t
    return conv.convert()


def _csp_like_model():
    """A CSP stage in miniature: split -> dense layer (concat) -> transition -> CSP concat with the skip half.

    Both halves of the split end in concatenations with different ranges, so post-training quantization
    has to requantize the stage input for one of them (a QUANTIZE op inside the graph).
    """
    from keras_csp.backend import keras
    from keras_csp.layers.primitives import ChannelSlice
    inp = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inp)
    skip = ChannelSlice(0, 4, name="split_skip")(x)
    part = ChannelSlice(4, 8, name="split_part")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="dense")(part)
    part = keras.layers.Concatenate(name="dense_concat")([part, y])
    part = keras.layers.Conv2D(4, 1, name="partial_transition")(part)
    part = keras.layers.Rescaling(5.0, name="scale_up")(part)
    x = keras.layers.Concatenate(name="csp_concat")([skip, part])
    return keras.Model(inp, keras.layers.GlobalAveragePooling2D(name="gap")(x))


@pytest.fixture(scope="module")
def tflite_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tfl")
    m = _csp_like_model()
    paths = {}
    for io in ("int8", "uint8", "float32"):
        paths[io] = d / f"m_{io}.tflite"
        paths[io].write_bytes(_convert(m, io))
    return paths


def test_audit_lists_ops_dtypes_and_quant_params(tflite_files):
    a = inspect_tflite(str(tflite_files["int8"]))
    counts = a.op_counts()
    assert counts["CONV_2D"] == 3 and counts["CONCATENATION"] == 2 and counts["STRIDED_SLICE"] == 2
    assert a.io_types() == (["int8"], ["int8"])
    conv_weights = [a.tensors[op.inputs[1]] for op in a.ops if op.op == "CONV_2D"]
    assert all(w.dtype == "int8" and w.per_channel for w in conv_weights)   # per-channel conv weights
    inp = a.tensors[a.inputs[0]]
    assert inp.scale and inp.zero_point and inp.shape == [1, 8, 8, 4]
    text = a.format(verbose=True)
    assert "CONV_2D" in text and "per-channel" in text and "scale=" in text
    d = a.to_dict()
    assert d["ops"] == counts and d["inputs"][0]["dtype"] == "int8"
    # the skip half keeps the stem's scale, the concat output gets another: the converter requantizes
    inner = a.inner_quantize_ops()
    assert len(inner) == 1 and inner[0].op == "QUANTIZE"
    assert "QUANTIZE/DEQUANTIZE inside the graph: 1" in text and "!! #" in text


def test_boundary_quantize_ops_are_not_flagged(tflite_files):
    for io in ("uint8", "float32"):
        a = inspect_tflite(tflite_files[io].read_bytes())
        assert a.io_types() == ([io], [io])
        boundary = a.boundary_quantize_ops()
        assert len(boundary) == 2, (io, a.op_counts())   # input conversion + output conversion
        assert len(a.inner_quantize_ops()) == len(inspect_tflite(tflite_files["int8"]).inner_quantize_ops())


def test_concat_scale_mismatch_detection():
    t = [TensorInfo(0, "a", "int8", [1, 4], [0.1], [0]), TensorInfo(1, "b", "int8", [1, 4], [0.2], [0]),
         TensorInfo(2, "c", "int8", [1, 8], [0.1], [0]), TensorInfo(3, "d", "int8", [1, 8], [0.1], [0]),
         TensorInfo(4, "e", "int8", [1, 8], [0.1], [0])]
    ops = [OpInfo(0, "CONCATENATION", [0, 1], [2]), OpInfo(1, "QUANTIZE", [2], [3]),
           OpInfo(2, "CONCATENATION", [0, 0], [4])]
    a = TFLiteAudit(t, ops, inputs=[0, 1], outputs=[3, 4], metadata_names=[])
    mism = a.concat_scale_mismatches()
    assert len(mism) == 1 and mism[0][0].index == 0 and [x.name for x in mism[0][1]] == ["b"]
    assert a.inner_quantize_ops() == []          # op 1 writes a graph output: boundary
    a.outputs = [4]
    assert [op.index for op in a.inner_quantize_ops()] == [1]
    assert "!! #0 -> c" in a.format()


@pytest.mark.parametrize("content", [b"", b"garbage!", b"\x00" * 64, b"\x10\x00\x00\x00TFL3" + b"\xff" * 40])
def test_malformed_files_raise_value_error(tmp_path, content):
    p = tmp_path / "bad.tflite"
    p.write_bytes(content)
    with pytest.raises(ValueError, match="TFLite|flatbuffer|subgraph"):
        inspect_tflite(str(p))


def test_truncated_model_raises_value_error(tflite_files):
    data = tflite_files["int8"].read_bytes()
    with pytest.raises(ValueError):
        inspect_tflite(data[: len(data) // 3])


def test_inspect_cli(tflite_files, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["inspect", str(tflite_files["int8"]), "-v", "--json", str(tmp_path / "a.json")])
    assert res.exit_code == 0, res.output
    assert "CONCATENATION" in res.output and "QUANTIZE/DEQUANTIZE inside the graph" in res.output
    assert json.loads((tmp_path / "a.json").read_text())["ops"]["CONV_2D"] == 3
    res = runner.invoke(cli, ["inspect", str(tflite_files["int8"]), "--strict"])
    assert res.exit_code == 1                           # the requantize op fails --strict
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    res = runner.invoke(cli, ["inspect", str(bad)])
    assert res.exit_code == 1 and "not a TFLite flatbuffer" in res.output
