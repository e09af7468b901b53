"""QAT + full-int8 export (keras_csp.quantize, `keras-csp quantize`), metadata, LiteRT accuracy.

tfmot needs tf_keras, so everything QAT runs in TF_USE_LEGACY_KERAS=1 subprocesses (one per fixture).
"""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_python

from keras_csp.cli import cli

CSP_MODELS = ("cspdensenet_tiny", "cspresnet_tiny", "cspdarknet_tiny")
MOBILE_MODELS = ("cspmobilenetv2_tiny", "csppeleenet_tiny")   # depthwise x2 and grouped convs; two transitions


@pytest.fixture(scope="module")
def graph_audits(tmp_path_factory):
    """QAT (calibration pass only) + int8 conversion of the three CSP families, and the error cases."""
    d = tmp_path_factory.mktemp("qat_graphs")
    out = run_python(f"""
        import json
        import numpy as np
        from keras_csp.backend import keras
        from keras_csp import create_model, quantize as Q
        from keras_csp.data import load_digits
        from keras_csp.tflite.audit import inspect_tflite
        ds = load_digits().subset(128, 64)
        res = {{}}
        for name in {list(CSP_MODELS + MOBILE_MODELS)!r}:
            model = create_model(name, input_shape=(32, 32, 3), classes=10)
            qat = Q.quantize_model(model)
            groups = Q.same_scale_groups(qat)
            Q.qat_finetune(qat, ds, epochs=0, verbose=0)
            ranges = [sorted({{(round(float(v[0].numpy()), 6), round(float(v[1].numpy()), 6)) for _, v in g["vars"]}})
                      for g in groups]
            data = Q.convert_int8(qat, ds.x_train, "int8", "int8", qat=True)
            open(r"{d}/" + name + ".tflite", "wb").write(data)
            res[name] = {{"groups": [g["layers"] for g in groups], "ranges": ranges}}
        # I/O variants, on one small CSP stage
        from keras_csp.layers import blocks
        inp = keras.Input((32, 32, 3))
        x = blocks.conv_bn_act(inp, 16, 3, "stem", strides=2)
        x = blocks.csp_stage(x, lambda p: blocks.dense_layer(p, 8, "dense"), "stage")
        x = keras.layers.GlobalAveragePooling2D()(x)
        small = Q.quantize_model(keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x)))
        Q.calibrate(small, ds.x_train)
        data = Q.convert_int8(small, ds.x_train, "uint8", "float32", qat=True)
        open(r"{d}/uint8_float.tflite", "wb").write(data)
        # CrossChannelPooling (maxout) and MaxPooling are pass-through too
        from keras_csp.layers import CrossChannelPooling
        inp = keras.Input((32, 32, 3))
        x = blocks.conv_bn_act(inp, 16, 3, "c1")
        x = CrossChannelPooling(2, spatial_pool=2, name="maxout")(x)
        x = keras.layers.Concatenate(name="cat")([x, blocks.conv_bn_act(x, 8, 1, "c2")])
        x = blocks.conv_bn_act(x, 8, 3, "c3")
        x = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
        maxout = Q.quantize_model(keras.Model(inp, x))
        Q.calibrate(maxout, ds.x_train)
        open(r"{d}/maxout.tflite", "wb").write(Q.convert_int8(maxout, ds.x_train, qat=True))
        # unsupported layers
        inp = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, name="ok_conv")(inp)
        x = keras.layers.Lambda(lambda t: t * 2.0, name="my_lambda")(x)
        x = keras.layers.LayerNormalization(name="my_layernorm")(x)
        try:
            Q.quantize_model(keras.Model(inp, x))
            res["unsupported"] = "no error"
        except ValueError as e:
            res["unsupported"] = str(e)
        from keras_csp.layers import CSPStage
        inp = keras.Input((8, 8, 16))
        try:
            Q.quantize_model(keras.Model(inp, CSPStage("dense", depth=1, growth_rate=8, name="my_stage")(inp)))
            res["nested"] = "no error"
        except ValueError as e:
            res["nested"] = str(e)
        print("RESULT" + json.dumps(res))
    """, legacy=True)
    res = json.loads(out.split("RESULT", 1)[1])
    return d, res


@pytest.mark.parametrize("name", CSP_MODELS)
def test_qat_int8_graph_has_no_requantize_ops(graph_audits, name):
    from keras_csp.tflite.audit import inspect_tflite
    d, res = graph_audits
    audit = inspect_tflite(str(d / f"{name}.tflite"))
    assert audit.io_types() == (["int8"], ["int8"])
    counts = audit.op_counts()
    assert "QUANTIZE" not in counts and "DEQUANTIZE" not in counts, counts
    assert audit.inner_quantize_ops() == [] and audit.concat_scale_mismatches() == []
    assert counts["CONCATENATION"] >= 2 and counts["STRIDED_SLICE"] >= 4 and counts["CONV_2D"] >= 8
    weights = [t for t in audit.tensors if t.dtype == "int8" and len(t.shape) == 4 and t.per_channel]
    assert weights, "conv weights must be per-channel int8"
    assert {t.dtype for t in audit.tensors} <= {"int8", "int32"}          # full integer
    # every same-scale group (CSP split halves, dense concats, CSP concat) ended on one range
    info = res[name]
    assert info["groups"] and all(len(r) == 1 for r in info["ranges"]), info["ranges"]
    assert any(any(n.endswith("_csp_concat") for n in g) for g in info["groups"])


@pytest.mark.parametrize("name", MOBILE_MODELS)
def test_qat_int8_mobile_models_have_no_requantize_ops(graph_audits, name):
    from keras_csp.tflite.audit import inspect_tflite
    d, res = graph_audits
    audit = inspect_tflite(str(d / f"{name}.tflite"))
    counts = audit.op_counts()
    assert "QUANTIZE" not in counts and "DEQUANTIZE" not in counts, counts
    assert audit.inner_quantize_ops() == [] and audit.concat_scale_mismatches() == []
    assert {t.dtype for t in audit.tensors} <= {"int8", "int32"}
    if name.startswith("cspmobilenetv2"):
        assert counts["DEPTHWISE_CONV_2D"] == 6 and counts["ADD"] == 1 and counts["CONCATENATION"] == 3, counts
    info = res[name]
    assert all(len(r) == 1 for r in info["ranges"]), info["ranges"]
    if name.startswith("csppeleenet"):  # the split halves share the concat's range (the mobile concats'
        # inputs are conv outputs, whose quantizers tfmot's concat transform already drops)
        assert any(any(n.endswith("_csp_concat") for n in g) for g in info["groups"])


def test_float_and_uint8_io_only_add_boundary_ops(graph_audits):
    from keras_csp.tflite.audit import inspect_tflite
    d, _ = graph_audits
    audit = inspect_tflite(str(d / "uint8_float.tflite"))
    assert audit.io_types() == (["uint8"], ["float32"])
    assert audit.inner_quantize_ops() == []
    assert sorted(op.op for op in audit.boundary_quantize_ops()) == ["DEQUANTIZE", "QUANTIZE"]


def test_cross_channel_pooling_keeps_the_scale(graph_audits):
    from keras_csp.tflite.audit import inspect_tflite
    d, _ = graph_audits
    audit = inspect_tflite(str(d / "maxout.tflite"))
    counts = audit.op_counts()
    assert counts.get("MAXIMUM") == 1 and counts.get("MAX_POOL_2D") == 1, counts
    assert audit.inner_quantize_ops() == [] and audit.concat_scale_mismatches() == []
    maximum = next(op for op in audit.ops if op.op == "MAXIMUM")
    scales = {audit.tensors[i].scale[0] for i in maximum.inputs + maximum.outputs}
    assert len(scales) == 1


def test_unsupported_layer_error_names_the_layer(graph_audits):
    _, res = graph_audits
    msg = res["unsupported"]
    assert "my_lambda" in msg and "Lambda" in msg and "my_layernorm" in msg, msg
    assert "ok_conv" not in msg
    assert "my_stage" in res["nested"] and "nested" in res["nested"], res["nested"]


def test_quantize_requires_tf_keras():
    from keras_csp import quantize as Q
    with pytest.raises(RuntimeError, match="TF_USE_LEGACY_KERAS"):
        Q.quantize_model(None)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """`keras-csp train` (3 epochs on the real digits train split) then `keras-csp quantize` (1 QAT epoch)."""
    d = tmp_path_factory.mktemp("pipeline")
    runner = CliRunner()
    res = runner.invoke(cli, ["train", "--model", "cspdensenet_tiny", "--epochs", "3", "--batch-size", "32",
                              "--out", str(d / "float")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["quantize", str(d / "float" / "model.keras"), "--qat-epochs", "1",
                              "--out", str(d / "model_int8.tflite"), "--report", str(d / "r.json")])
    assert res.exit_code == 0, res.output
    return d, json.loads((d / "r.json").read_text()), res.output


def test_pipeline_report_and_accuracy_on_real_test_split(pipeline):
    d, rep, output = pipeline
    assert {"float_accuracy", "ptq_accuracy", "qat_accuracy", "ops"} <= set(rep)
    assert rep["test_examples"] == 360 and rep["dataset"] == "digits"
    # 10 classes: chance is 10%; CI-sized training already gives far more
    assert rep["float_accuracy"] > 0.5 and rep["ptq_accuracy"] > 0.5 and rep["qat_accuracy"] > 0.5, rep
    assert rep["qat_accuracy"] >= rep["float_accuracy"] - 0.05, rep
    # the int8 model computes what the QAT model simulates
    assert abs(rep["qat_accuracy"] - rep["qat_keras_accuracy"]) <= 0.02, rep
    assert rep["ops"]["CONV_2D"] == 16 and "QUANTIZE" not in rep["ops"]
    assert rep["inner_quantize_ops"] == 0 and rep["concat_scale_mismatches"] == 0
    assert rep["ptq_inner_quantize_ops"] > 0          # the PTQ baseline requantizes around the CSP splits
    assert (d / "model_int8_ptq.tflite").exists()
    assert "int8 QAT" in output


def test_exported_file_runs_in_litert_and_carries_metadata(pipeline):
    from ai_edge_litert.interpreter import Interpreter
    from keras_csp.data import load_digits
    from keras_csp.quantize import tflite_accuracy
    from keras_csp.tflite.metadata import read_labels, read_metadata
    d, rep, _ = pipeline
    path = str(d / "model_int8.tflite")
    interp = Interpreter(model_path=path)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8 and list(inp["shape"]) == [1, 32, 32, 3]
    scale, zp = inp["quantization"]
    assert scale == pytest.approx(1 / 255, rel=1e-3) and zp == -128
    ds = load_digits()
    assert tflite_accuracy(path, ds.x_test, ds.y_test) == pytest.approx(rep["qat_accuracy"])
    meta, files = read_metadata(path)
    assert "cspdensenet_tiny" in meta["name"]
    sg = meta["subgraph_metadata"][0]
    proc = sg["input_tensor_metadata"][0]["process_units"][0]
    assert proc["options"]["mean"] == [0.0] and proc["options"]["std"] == [255.0]
    assert sg["input_tensor_metadata"][0]["content"]["content_properties"]["color_space"] == "RGB"
    assert sg["output_tensor_metadata"][0]["associated_files"][0]["name"] == "labels.txt"
    assert read_labels(path) == [str(i) for i in range(10)] and "labels.txt" in files


def test_inspect_cli_on_qat_model(pipeline):
    d, _, _ = pipeline
    res = CliRunner().invoke(cli, ["inspect", str(d / "model_int8.tflite"), "--strict"])
    assert res.exit_code == 0, res.output
    assert "QUANTIZE/DEQUANTIZE inside the graph: 0" in res.output
    assert "metadata: TFLITE_METADATA" in res.output or "TFLITE_METADATA" in res.output


@pytest.mark.slow
def test_qat_matches_float_after_real_training(tmp_path):
    """Done-when numbers (as in docs/quantization.md): int8 QAT within 1 point of float and >= PTQ."""
    runner = CliRunner()
    res = runner.invoke(cli, ["train", "--epochs", "8", "--out", str(tmp_path / "float")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["quantize", str(tmp_path / "float" / "model.keras"), "--qat-epochs", "2",
                              "--out", str(tmp_path / "m.tflite"), "--report", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["qat_accuracy"] >= rep["float_accuracy"] - 0.01 and rep["qat_accuracy"] >= rep["ptq_accuracy"], rep
    assert rep["float_accuracy"] >= 0.97


def test_quantize_model_keeps_concat_input_order(python_subprocess):
    """tfmot 0.8.1 swaps PeleeNet's stem concat inputs; quantize_model must put them back."""
    out = python_subprocess("""
        from keras_csp.models import create_model
        from keras_csp import quantize as Q
        m = create_model("csppeleenet_tiny", input_shape=(32, 32, 3), classes=10)
        rep = {}
        qat = Q.quantize_model(m, report=rep)
        def sources(model, name):
            for lc in model.get_config()["layers"]:
                if lc["name"] in (name, "quant_" + name):
                    return [i[0].replace("quant_", "") for i in lc["inbound_nodes"][0]]
        assert sources(qat, "stem_concat") == sources(m, "stem_concat"), (sources(qat, "stem_concat"), rep)
        print("reordered", rep["reordered_inputs"])
    """, legacy=True)
    assert "reordered" in out


# --- YOLO blocks: SiLU (LOGISTIC + MUL), C2f splits, SPPF pools ----------------------------------

@pytest.fixture(scope="module")
def yolo_qat(tmp_path_factory):
    """yolov8_backbone_tiny: one short QAT epoch (tfmot quantizes tf_keras' swish after the activation),
    then int8 conversion with int8 I/O and with float I/O."""
    d = tmp_path_factory.mktemp("yolo_qat")
    run_python(f"""
        from keras_csp import create_model, quantize as Q
        from keras_csp.data import load_digits
        ds = load_digits().subset(64, 16)
        model = create_model("yolov8_backbone_tiny", classes=10)
        assert Q.unsupported_layers(model) == []
        qat = Q.quantize_model(model)
        Q.qat_finetune(qat, ds, epochs=1, batch_size=32, verbose=0)
        open(r"{d}/int8.tflite", "wb").write(Q.convert_int8(qat, ds.x_train, "int8", "int8", qat=True))
        open(r"{d}/float_io.tflite", "wb").write(Q.convert_int8(qat, ds.x_train, "float32", "float32", qat=True))
    """, legacy=True)
    return d


def test_qat_yolov8_tiny_is_full_int8_with_silu_as_logistic_mul(yolo_qat):
    from keras_csp.tflite.graph import Graph
    from keras_csp.tflite.schema import TensorType
    g = Graph.load(str(yolo_qat / "int8.tflite"))
    counts = g.op_counts()
    # 18 conv -> BN -> SiLU: stem, 3 x (down, cv1, 2 bottleneck convs, cv2), SPPF cv1 and cv2
    assert counts["CONV_2D"] == counts["LOGISTIC"] == counts["MUL"] == 18, counts
    assert counts["STRIDED_SLICE"] == 6 and counts["MAX_POOL_2D"] == 3 and counts["ADD"] == 3, counts
    assert counts["CONCATENATION"] == 4, counts
    assert "QUANTIZE" not in counts and "DEQUANTIZE" not in counts, counts
    # no float tensor anywhere: int8 activations and weights, int32 biases and shapes
    assert {int(g.tensor(i).type) for i in range(len(g.sg.tensors))} <= {TensorType.INT8, TensorType.INT32}
    ops = [(g.op_type(op), op) for op in g.ops()]
    for kind, op in ops:
        if kind == "LOGISTIC":   # TFLite's int8 LOGISTIC: fixed output scale 1/256, zero point -128
            scale, zp, _ = g.quant(int(op.outputs[0]))
            assert scale[0] == pytest.approx(1 / 256) and zp[0] == -128
        if kind == "CONCATENATION":   # concat inputs already on the output's scale: no requantization
            out = g.quant(int(op.outputs[0]))
            for i in op.inputs:
                q = g.quant(int(i))
                assert q[0][0] == pytest.approx(out[0][0], rel=1e-6) and q[1][0] == out[1][0], (i, q, out)
    assert [len(op.inputs) for kind, op in ops if kind == "CONCATENATION"] == [3, 3, 3, 4]


def test_qat_yolov8_tiny_float_io_only_adds_boundary_ops(yolo_qat):
    from keras_csp.quantize import tflite_predict
    from keras_csp.tflite.graph import Graph
    g = Graph.load(str(yolo_qat / "float_io.tflite"))
    inputs, outputs = {int(i) for i in g.sg.inputs}, g.graph_outputs()
    quant = [op for op in g.ops() if g.op_type(op) in ("QUANTIZE", "DEQUANTIZE")]
    assert sorted(g.op_type(op) for op in quant) == ["DEQUANTIZE", "QUANTIZE"]
    for op in quant:
        assert {int(i) for i in op.inputs} & inputs or {int(o) for o in op.outputs} & outputs
    y = tflite_predict(str(yolo_qat / "float_io.tflite"), np.random.default_rng(0).uniform(size=(3, 32, 32, 3)))
    assert y.shape == (3, 10) and np.allclose(y.sum(axis=1), 1, atol=0.02)


@pytest.mark.slow
def test_yolo_tiny_backbones_train_and_quantize_on_digits(tmp_path):
    """Float training on the digits, then `keras-csp quantize` (1 QAT epoch): int8 accuracy well above chance."""
    runner = CliRunner()
    for name in ("yolov8_backbone_tiny", "yolov5_cspdarknet_tiny"):
        res = runner.invoke(cli, ["train", "--model", name, "--epochs", "4", "--batch-size", "32",
                                  "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        res = runner.invoke(cli, ["quantize", str(tmp_path / name / "model.keras"), "--qat-epochs", "1",
                                  "--out", str(tmp_path / f"{name}.tflite"),
                                  "--report", str(tmp_path / f"{name}.json")])
        assert res.exit_code == 0, res.output
        rep = json.loads((tmp_path / f"{name}.json").read_text())
        assert rep["float_accuracy"] > 0.8 and rep["qat_accuracy"] > 0.8, rep
        assert rep["inner_quantize_ops"] == 0 and rep["concat_scale_mismatches"] == 0, rep
        assert rep["ops"]["LOGISTIC"] == rep["ops"]["MUL"] == rep["ops"]["CONV_2D"], rep
