"""int8 export of a trained detector through `keras_csp.quantize` (tfmot QAT + full-integer TFLite) and its audit.

The float detector is trained under Keras 3; tfmot needs tf_keras, so its weights travel by layer name
(`save_weights_npz`) into the same zoo model rebuilt in a TF_USE_LEGACY_KERAS=1 process
(`keras_csp.legacy.with_tf_keras("keras_csp.detection.export:export_int8", ...)` starts it). There: PTQ conversion (baseline), QAT wrapping with keras_csp's QuantizeConfigs,
a short QAT fine-tune on digit scenes with the YOLO loss while same-scale groups (concats, slices,
cross-channel pooling) share one range, full-int8 conversion, the graph audit (`inspect_tflite`:
QUANTIZE/DEQUANTIZE ops inside the graph, concatenations whose inputs need requantizing) and mAP@0.5
of every .tflite in LiteRT against the float model.
"""
import os
import time

import numpy as np


def save_weights_npz(model, path):
    """All weights of `model` keyed `<layer name>::<index>` (portable between Keras 3 and tf_keras)."""
    arrays = {}
    for layer in model.layers:
        for i, w in enumerate(layer.get_weights()):
            arrays[f"{layer.name}::{i}"] = w
    np.savez(path, **arrays)
    return path


def load_weights_npz(model, path):
    data = np.load(path)
    missing = []
    for layer in model.layers:
        n = len(layer.get_weights())
        if not n:
            continue
        keys = [f"{layer.name}::{i}" for i in range(n)]
        if all(k in data for k in keys):
            layer.set_weights([data[k] for k in keys])
        else:
            missing.append(layer.name)
    if missing:
        raise ValueError(f"weights file {path} has no weights for layer(s) {missing[:5]}")
    return model


def tflite_detect_outputs(tflite_bytes, images, info):
    """Run a (possibly int8) detector .tflite on float images; returns head outputs fine to coarse (float)."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=bytes(tflite_bytes), num_threads=2)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    grids = [info.input_size[0] // s for s in info.strides]
    order = [next(o for o in outs if int(o["shape"][1]) == g) for g in grids]
    results = [[] for _ in grids]
    for img in np.asarray(images, "float32"):
        x = img[None]
        if inp["dtype"] != np.float32:
            scale, zp = inp["quantization"]
            x = np.clip(np.round(x / scale + zp), np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max)
            x = x.astype(inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        for k, o in enumerate(order):
            y = interp.get_tensor(o["index"])
            if o["dtype"] != np.float32:
                scale, zp = o["quantization"]
                y = (y.astype("float32") - zp) * scale
            results[k].append(y[0])
    return [np.stack(r) for r in results]


def calibrate_ranges(qat_model, float_model, images, batch_size=16):
    """Set every fake-quant range of `qat_model` to the min/max its layer's output takes on `images` in the float
    model (tfmot starts them at [-6, 6] and moves them by an EMA with decay 0.999, far too slowly for a short
    fine-tune). The input quantizer gets [0, 1]. Returns the number of ranges set."""
    from .. import quantize as Q
    from ..backend import keras
    pairs = []
    for layer in qat_model.layers:
        v = Q._range_vars(layer)
        if v is None:  # a conv without BN/activation keeps its output range as post_activation_min/max
            named = {w.name.split("/")[-1].split(":")[0]: w for w in getattr(layer, "weights", [])}
            if "post_activation_min" in named and "post_activation_max" in named:
                v = (named["post_activation_min"], named["post_activation_max"])
            else:
                continue
        name = layer.name[len("quant_"):] if layer.name.startswith("quant_") else layer.name
        if type(layer).__name__ == "QuantizeLayer":
            v[0].assign(0.0)
            v[1].assign(1.0)
            continue
        try:
            pairs.append((float_model.get_layer(name).output, v))
        except ValueError:
            continue
    if not pairs:
        return 0
    probe = keras.Model(float_model.inputs, [t for t, _ in pairs])
    lo = np.full(len(pairs), np.inf)
    hi = np.full(len(pairs), -np.inf)
    for start in range(0, len(images), batch_size):
        outs = probe(images[start:start + batch_size], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for i, o in enumerate(outs):
            o = np.asarray(o)
            lo[i] = min(lo[i], float(o.min()))
            hi[i] = max(hi[i], float(o.max()))
    for (_, (vmin, vmax)), a, b in zip(pairs, lo, hi):
        vmin.assign(min(a, 0.0))
        vmax.assign(max(b, 0.0))
    return len(pairs) + 1


def _map_of(outputs, info, scenes):
    from .metrics import evaluate_map
    from .nms import postprocess
    dets = postprocess(outputs, info, score_threshold=0.01, iou_threshold=0.45, max_per_class=20, max_total=50)
    return evaluate_map(dets, scenes.ground_truth(), info.num_classes)["map"]


def export_int8(name, weights, out, input_size=128, calib_scenes=200, eval_scenes=200, qat_steps=0,
                batch_size=16, lr=1e-5, seed=0):
    """Run in a TF_USE_LEGACY_KERAS=1 process: PTQ and QAT int8 .tflite of detector `name` with `weights`.

    Writes `out` (QAT) and `<stem>_ptq.tflite`; returns a report dict (ops, audit counts, mAP@0.5 of the
    float model, the PTQ and the QAT int8 models on `eval_scenes` val scenes).
    """
    from .. import quantize as Q
    from ..backend import keras
    from ..tflite.audit import inspect_tflite
    from ..models import create_model
    from .boxes import encode_targets, yolo_loss
    from .data import make_scenes
    from .models import detector_info
    Q.require_legacy()
    t0 = time.time()
    model = create_model(name, input_shape=(input_size, input_size, 3))
    load_weights_npz(model, weights)
    info = detector_info(model)
    calib = make_scenes(max(calib_scenes, batch_size), input_size, "train", seed=seed + 777)
    val = make_scenes(eval_scenes, input_size, "val", seed=seed + 10_000)
    rep = {"model": name, "input_size": input_size, "eval_scenes": eval_scenes}
    rep["float_map50"] = _map_of(model.predict(val.images, verbose=0), info, val)
    stem = os.path.splitext(out)[0]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    def audit(tfl, prefix):
        a = inspect_tflite(tfl)
        rep[f"{prefix}ops"] = a.op_counts()
        rep[f"{prefix}inner_quantize_ops"] = len(a.inner_quantize_ops())
        rep[f"{prefix}concat_scale_mismatches"] = len(a.concat_scale_mismatches())
        rep[f"{prefix}map50"] = _map_of(tflite_detect_outputs(tfl, val.images, info), info, val)
        rep[f"{prefix}bytes"] = len(tfl)
        rep[f"{prefix}inner_quantize_op_list"] = [
            f"#{op.index} {op.op} -> {a.tensors[op.outputs[0]].name}" for op in a.inner_quantize_ops()][:20]
        return a

    ptq = Q.convert_int8(model, calib.images, "int8", "int8")
    with open(stem + "_ptq.tflite", "wb") as f:
        f.write(ptq)
    audit(ptq, "ptq_")
    rep["ptq_path"] = stem + "_ptq.tflite"

    t1 = time.time()
    qat = Q.quantize_model(model, report=rep)
    # tfmot's weight quantizers (LastValueQuantizer) keep [-6, 6] until a training-mode call sets them from
    # the kernels: one such call (it also nudges BN moving statistics by 1 - momentum), then the activation
    # ranges from the float model.
    qat(calib.images[:batch_size], training=True)
    rep["calibrated_ranges"] = calibrate_ranges(qat, model, calib.images)
    rep["qat_steps"] = 0
    if qat_steps:
        targets = encode_targets(calib.boxes, calib.classes, info)
        cb = Q.make_share_scales_callback(qat)
        Q.share_ranges(Q.same_scale_groups(qat))
        qat.compile(optimizer=keras.optimizers.Adam(lr), loss=[yolo_loss] * len(targets))
        epochs = max(1, -(-int(qat_steps) * batch_size // len(calib.images)))
        qat.fit(calib.images, targets, batch_size=batch_size, epochs=epochs, callbacks=[cb], verbose=0)
        rep["qat_steps"] = epochs * -(-len(calib.images) // batch_size)
    rep["qat_keras_map50"] = _map_of(qat.predict(val.images, verbose=0), info, val)
    groups = Q.same_scale_groups(qat)
    rep["same_scale_groups"] = len(groups)
    rep["largest_same_scale_group"] = max((len(g["vars"]) for g in groups), default=0)
    Q.share_ranges(groups)
    rep["qat_keras_shared_map50"] = _map_of(qat.predict(val.images, verbose=0), info, val)
    rep["qat_seconds"] = round(time.time() - t1, 1)
    qat_bytes = Q.convert_int8(qat, calib.images, "int8", "int8", qat=True)
    with open(out, "wb") as f:
        f.write(qat_bytes)
    audit(qat_bytes, "")
    rep["path"] = out
    rep["seconds"] = round(time.time() - t0, 1)
    return rep
