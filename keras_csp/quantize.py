"""Quantization-aware training (tfmot, tf_keras) and full-integer int8 TFLite export.

Must run in a process started with TF_USE_LEGACY_KERAS=1 (tensorflow-model-optimization needs
tf_keras); `keras_csp.legacy.with_tf_keras` runs a function of this module in such a process.

Pipeline (`quantize_pipeline`, CLI `keras-csp quantize`):
1. load the float model (rebuilt from the registry under tf_keras, weights transferred by layer name);
2. PTQ baseline: full-int8 conversion of the float model with a representative dataset;
3. QAT: `quantize_model` (tfmot default 8-bit scheme: per-channel conv weights, conv+BN(+ReLU) kept
   unquantized between the ops so the converter folds BN into the conv, as tfmot does) with our
   QuantizeConfigs: `ChannelSlice`/`ChannelSplit`/`CrossChannelPooling` are pass-through (no
   quantizers; in TFLite they keep their input's scale);
4. fine-tune with `ShareScalesCallback`, which keeps every "same-scale group" (tensors joined by
   concatenations, slices and pooling, e.g. a CSP stage input, its two halves, the dense-block concats
   and the CSP concat) on one range, so the converter needs no requantize (QUANTIZE) op inside the graph;
5. full-int8 export (int8/uint8/float I/O), accuracy of every .tflite measured in LiteRT.

tfmot's default Concatenate handling (`ConcatTransform`) only moves the fake-quant from a concat's
inputs to its output; it cannot see that one input is a slice of a tensor with its own range, which is
what makes the converter requantize around CSP splits and concats. The range sharing fixes that.
"""
import json
import os
import time

import numpy as np

from . import backend
from .tflite.metadata import METADATA_MISSING, metadata_available

IO_TYPES = ("int8", "uint8", "float32")

# Layer types that map to TFLite ops whose int8 kernels require input scale == output scale.
SAME_SCALE_TYPES = {
    "Concatenate", "ChannelSlice", "ChannelSplit", "CrossChannelPooling", "MaxPooling2D", "MaxPooling1D",
    "AveragePooling2D", "AveragePooling1D", "GlobalMaxPooling2D", "Reshape", "Flatten", "ZeroPadding2D",
    "Dropout", "SpatialDropout2D", "Cropping2D", "Permute",
}


def require_legacy():
    if not backend.LEGACY:
        raise RuntimeError(
            "quantization-aware training needs tf_keras: run in a process started with TF_USE_LEGACY_KERAS=1 "
            "(the `keras-csp quantize` command does this for you, or use keras_csp.legacy.with_tf_keras)")


def _tfmot():
    require_legacy()
    import tensorflow_model_optimization as tfmot
    return tfmot


# --- QuantizeConfigs for our layers ------------------------------------------------------------

def _make_configs():
    tfmot = _tfmot()
    QuantizeConfig = tfmot.quantization.keras.QuantizeConfig

    class PassThroughQuantizeConfig(QuantizeConfig):
        """No weight, activation or output quantizers: the layer only selects or compares values, so its
        output keeps its input's scale (TFLite STRIDED_SLICE / SLICE / MAXIMUM / MAX_POOL_2D)."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    PassThroughQuantizeConfig.__module__ = __name__
    return PassThroughQuantizeConfig


_CONFIG_CACHE = {}


def pass_through_config_class():
    if "pass" not in _CONFIG_CACHE:
        _CONFIG_CACHE["pass"] = _make_configs()
    return _CONFIG_CACHE["pass"]


def custom_quantize_configs():
    """{layer class: QuantizeConfig class} for keras_csp layers."""
    from .layers.primitives import ChannelSlice, ChannelSplit, CrossChannelPooling
    cfg = pass_through_config_class()
    return {ChannelSlice: cfg, ChannelSplit: cfg, CrossChannelPooling: cfg}


def quantize_scope():
    """`tfmot.quantization.keras.quantize_scope` with our configs and layers registered (for load_model)."""
    tfmot = _tfmot()
    from .layers import primitives
    objs = {"PassThroughQuantizeConfig": pass_through_config_class(), "ChannelSlice": primitives.ChannelSlice,
            "ChannelSplit": primitives.ChannelSplit, "CrossChannelPooling": primitives.CrossChannelPooling}
    return tfmot.quantization.keras.quantize_scope(objs)


def unsupported_layers(model):
    """[(layer name, class name)] of layers neither tfmot's default 8-bit registry nor we can quantize."""
    _tfmot()
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as reg)
    registry = reg.Default8BitQuantizeRegistry()
    custom = custom_quantize_configs()
    bad = []
    for layer in model.layers:
        if isinstance(layer, backend.keras.layers.InputLayer) or type(layer) in custom:
            continue
        if isinstance(layer, backend.keras.Model):
            bad.append((layer.name, type(layer).__name__ + " (nested model)"))
            continue
        if type(layer).__name__ == "BatchNormalization":
            # tfmot quantizes BN only fused with the conv/dense before it (folded at conversion).
            prev = [n.inbound_layers for n in layer._inbound_nodes]
            prev = [p for ps in prev for p in (ps if isinstance(ps, (list, tuple)) else [ps])]
            if prev and all(type(p).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense") for p in prev):
                continue
            bad.append((layer.name, "BatchNormalization (not after a Conv2D/DepthwiseConv2D/Dense)"))
            continue
        try:
            ok = registry.supports(layer)
        except Exception:  # noqa: BLE001 - registry raises for some unknown layers
            ok = False
        if not ok:
            bad.append((layer.name, type(layer).__name__))
    return bad


def check_quantizable(model):
    """Raise ValueError naming every layer QAT cannot handle."""
    bad = unsupported_layers(model)
    if bad:
        names = ", ".join(f"'{n}' ({c})" for n, c in bad)
        raise ValueError(
            f"cannot quantize model {model.name!r}: unsupported layer(s) {names}. Supported are the layers of "
            f"tfmot's default 8-bit registry (Conv2D, DepthwiseConv2D, Dense, BatchNormalization, ReLU, "
            f"LeakyReLU, Activation('silu'), Add, Concatenate, pooling, ...) and keras_csp's ChannelSlice, "
            f"ChannelSplit and CrossChannelPooling; replace the layer(s) (e.g. a Lambda by a Layer subclass with a "
            f"QuantizeConfig), or flatten nested models/block layers into one functional graph (the model "
            f"zoo builds flat graphs).")


def quantize_model(model, report=None):
    """Quantization-aware copy of a tf_keras functional `model` (shares nothing with it; weights copied).

    Raises ValueError naming the layer(s) tfmot cannot quantize. Multi-input layers whose inputs
    tfmot reordered are put back in order (see `fix_input_order`); with a dict `report`, their names
    go to report["reordered_inputs"].
    """
    tfmot = _tfmot()
    keras = backend.keras
    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        raise ValueError("quantize_model needs a functional tf_keras Model (e.g. from keras_csp.create_model "
                         "in a TF_USE_LEGACY_KERAS=1 process)")
    check_quantizable(model)
    custom = custom_quantize_configs()
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone_fn(layer):
        new = layer.__class__.from_config(layer.get_config())
        cfg = custom.get(type(layer))
        return annotate(new, quantize_config=cfg()) if cfg else annotate(new)

    annotated = keras.models.clone_model(model, clone_function=clone_fn)
    annotated.set_weights(model.get_weights())
    with quantize_scope():
        try:
            qat = tfmot.quantization.keras.quantize_apply(annotated)
        except RuntimeError as e:  # tfmot's "Layer <name>:<class> is not supported ..."
            raise ValueError(f"cannot quantize model {model.name!r}: {e}") from None
    qat, fixed = fix_input_order(qat, model)
    if report is not None:
        report["reordered_inputs"] = fixed
    return qat


def fix_input_order(qat_model, float_model):
    """Rebuild `qat_model` with every multi-input layer's inputs in the float model's order.

    tfmot 0.8.1's `quantize_apply` can permute a Concatenate's inputs when one of them comes out of a
    replaced conv-BN-ReLU pattern (PeleeNet's stem: concat([stem2b_relu, stem2_pool]) becomes
    concat([stem2_pool, stem2b_relu])), which silently scrambles channels. Returns (model, fixed layer names).
    """
    keras = backend.keras
    want = {}
    for lc in float_model.get_config()["layers"]:
        nodes = lc.get("inbound_nodes") or []
        if nodes and len(nodes[0]) > 1:
            want[lc["name"]] = [item[0] for item in nodes[0]]
    cfg = qat_model.get_config()
    fixed = []
    for lc in cfg["layers"]:
        name = lc["name"][len("quant_"):] if lc["name"].startswith("quant_") else lc["name"]
        nodes = lc.get("inbound_nodes") or []
        if name not in want or not nodes or len(nodes[0]) != len(want[name]):
            continue
        by_src = {}
        for item in nodes[0]:
            src = item[0][len("quant_"):] if item[0].startswith("quant_") else item[0]
            by_src[src] = item
        if set(by_src) != set(want[name]):
            continue
        ordered = [by_src[src] for src in want[name]]
        if ordered != list(nodes[0]):
            nodes[0] = ordered
            fixed.append(name)
    if not fixed:
        return qat_model, fixed
    with quantize_scope():
        new = keras.Model.from_config(cfg)
    for layer in new.layers:
        src = qat_model.get_layer(layer.name).get_weights()
        if len(src) == len(layer.get_weights()):
            layer.set_weights(src)
        else:  # variables tfmot creates lazily (e.g. per-call optimizer step) are left as built
            n = min(len(src), len(layer.get_weights()))
            cur = layer.get_weights()
            same = [a if a.shape == b.shape else b for a, b in zip(src[:n], cur[:n])] + cur[n:]
            layer.set_weights(same)
    return new, fixed


# --- shared ranges for same-scale groups -------------------------------------------------------

def _inner_class_name(layer_cfg):
    if layer_cfg["class_name"] in ("QuantizeWrapperV2", "QuantizeWrapper"):
        return layer_cfg["config"]["layer"]["class_name"]
    return layer_cfg["class_name"]


def _inbound_names(layer_cfg):
    names = []
    for node in layer_cfg.get("inbound_nodes", []):
        for item in node:
            if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
                names.append(item[0])
    return names


def _range_vars(layer):
    """(min_var, max_var) of the fake-quant on `layer`'s output, or None."""
    v = getattr(layer, "_output_quantizer_vars", None)
    if v is None and type(layer).__name__ == "QuantizeLayer":
        v = getattr(layer, "quantizer_vars", None)
    if isinstance(v, dict) and "min_var" in v and "max_var" in v:
        return v["min_var"], v["max_var"]
    return None


def same_scale_groups(qat_model):
    """Groups of layers whose outputs must share one int8 scale, each as {"layers": [...], "vars": [...]}.

    Union-find over the graph: a same-scale layer (concat, slice, max/avg pooling, reshape...) joins its
    output with all its inputs. Only groups with at least two fake-quant ranges are returned.
    """
    cfg = qat_model.get_config()
    parent = {}

    def find(a):
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a, b):
        parent[find(a)] = find(b)

    for lc in cfg["layers"]:
        name = lc["config"]["name"] if "name" in lc["config"] else lc["name"]
        find(name)
        if _inner_class_name(lc) in SAME_SCALE_TYPES:
            for src in _inbound_names(lc):
                union(name, src)
    groups = {}
    for layer in qat_model.layers:
        groups.setdefault(find(layer.name), []).append(layer)
    out = []
    for members in groups.values():
        rv = [(m.name, _range_vars(m)) for m in members]
        rv = [(n, v) for n, v in rv if v is not None]
        if len(rv) >= 2:
            out.append({"layers": [m.name for m in members], "vars": rv})
    return out


def share_ranges(groups):
    """Set every fake-quant range in each group to the group's union range [min of mins, max of maxs]."""
    for g in groups:
        lo = min(float(v[0].numpy()) for _, v in g["vars"])
        hi = max(float(v[1].numpy()) for _, v in g["vars"])
        for _, (vmin, vmax) in g["vars"]:
            vmin.assign(lo)
            vmax.assign(hi)


def make_share_scales_callback(qat_model):
    """Keras callback that keeps same-scale groups on one range after every training batch."""
    keras = backend.keras
    groups = same_scale_groups(qat_model)

    class ShareScalesCallback(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            share_ranges(groups)

        def on_train_end(self, logs=None):
            share_ranges(groups)

    return ShareScalesCallback()


# --- conversion ----------------------------------------------------------------------------------

def _tf_type(name):
    import tensorflow as tf
    if name not in IO_TYPES:
        raise ValueError(f"I/O type must be one of {IO_TYPES}, got {name!r}")
    return {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[name]


def representative_dataset(x, n=200, seed=0):
    """Generator factory over up to `n` training images (float32, batch 1) for calibration."""
    x = np.asarray(x, np.float32)
    idx = np.random.default_rng(seed).permutation(len(x))[:n]

    def gen():
        for i in idx:
            yield [x[i:i + 1]]
    return gen


def convert_int8(model, x_calib=None, input_type="int8", output_type="int8", qat=False, num_calib=None,
                 batch_size=None):
    """Full-integer TFLite flatbuffer (bytes) of a tf_keras model.

    int8 weights (per-channel for conv) and activations, builtin int8 ops only. `x_calib` (training
    images) is the representative dataset; required for PTQ, used for QAT as well when given.
    `input_type` / `output_type`: "int8" | "uint8" | "float32". `batch_size`: None keeps the batch
    dimension dynamic; an int fixes it (benchmarks and native runners want static shapes).
    """
    import tensorflow as tf
    # A frozen concrete function, not `from_keras_model`: that exports a SavedModel first, which for a
    # tfmot model retraces every layer and takes most of the conversion time.
    spec = tf.TensorSpec([batch_size] + list(model.input_shape[1:]), tf.float32, name="image")
    func = tf.function(lambda image: model(image, training=False)).get_concrete_function(spec)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([func])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if x_calib is not None:
        # QAT ranges come from the fake-quant nodes; a few samples satisfy the converter's int8 checks.
        conv.representative_dataset = representative_dataset(x_calib, num_calib or (32 if qat else 200))
    elif not qat:
        raise ValueError("post-training quantization needs calibration images (x_calib)")
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = _tf_type(input_type)
    conv.inference_output_type = _tf_type(output_type)
    return conv.convert()


# --- LiteRT evaluation ---------------------------------------------------------------------------

def tflite_predict(model, x, batch_size=1):
    """Run a .tflite (path or bytes) on float images `x` in [0, 1] with LiteRT; returns float scores."""
    from ai_edge_litert.interpreter import Interpreter
    if isinstance(model, (str, os.PathLike)):
        interp = Interpreter(model_path=str(model), num_threads=2)
    else:
        interp = Interpreter(model_content=bytes(model), num_threads=2)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], [batch_size] + list(x.shape[1:]))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    results = []
    x = np.asarray(x, np.float32)
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        n = len(xb)
        if n < batch_size:
            xb = np.concatenate([xb, np.zeros((batch_size - n,) + xb.shape[1:], np.float32)])
        if inp["dtype"] in (np.int8, np.uint8):
            scale, zp = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            xb = np.clip(np.round(xb / scale + zp), info.min, info.max).astype(inp["dtype"])
        interp.set_tensor(inp["index"], xb)
        interp.invoke()
        yb = interp.get_tensor(out["index"])
        if out["dtype"] in (np.int8, np.uint8):
            scale, zp = out["quantization"]
            yb = (yb.astype(np.float32) - zp) * scale
        results.append(yb[:n])
    return np.concatenate(results)


def tflite_accuracy(model, x, y, batch_size=1):
    return float(np.mean(np.argmax(tflite_predict(model, x, batch_size), axis=-1) == np.asarray(y)))


# --- loading the float model -----------------------------------------------------------------------

def load_float_model(path):
    """The float model saved by `keras_csp.train` (DIR/model.keras, or DIR) in the current Keras flavour.

    With DIR/model.json + DIR/model.weights.npz (written by `keras_csp.train.save_model`), the model is
    rebuilt from the registry and its weights are copied by layer name, which works across Keras 3 and
    tf_keras. Otherwise `keras.models.load_model(path)` is tried. Returns (model, spec dict).
    """
    from .train import read_model_spec, rebuild_model
    spec = read_model_spec(path)
    if spec is not None:
        return rebuild_model(spec), spec
    model = backend.keras.models.load_model(path, compile=False)
    return model, {}


# --- whole pipeline --------------------------------------------------------------------------------

def compile_for_qat(model, lr=1e-4):
    keras = backend.keras
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def calibrate(qat_model, x, batches=4, batch_size=32):
    """Set the fake-quant ranges without training: eager forward passes in training mode.

    (Batch-norm moving statistics are updated too, as in a training step with learning rate 0.)
    """
    x = np.asarray(x, np.float32)
    for i in range(min(batches, int(np.ceil(len(x) / batch_size)))):
        qat_model(x[i * batch_size:(i + 1) * batch_size], training=True)
    share_ranges(same_scale_groups(qat_model))
    return qat_model


def qat_finetune(qat_model, ds, epochs=2, batch_size=64, lr=1e-4, augment=True, verbose=1, seed=0):
    """Fine-tune a QAT model on a `keras_csp.data.Dataset`; same-scale groups share ranges throughout.

    `epochs=0` only calibrates the fake-quant ranges (`calibrate`).
    """
    import tensorflow as tf
    from .data import make_tf_dataset
    tf.random.set_seed(seed)
    compile_for_qat(qat_model, lr)
    cb = make_share_scales_callback(qat_model)
    train = make_tf_dataset(ds.x_train, ds.y_train, batch_size, shuffle=True, augment=augment, seed=seed)
    val = make_tf_dataset(ds.x_val, ds.y_val, batch_size) if len(ds.x_val) else None
    if epochs > 0:
        from .progress import fit_progress
        fit_verbose, bar = fit_progress(verbose, epochs, "QAT")
        qat_model.fit(train, validation_data=val, epochs=epochs, callbacks=[cb] + bar, verbose=fit_verbose,
                      shuffle=False)
    else:
        calibrate(qat_model, ds.x_train)
    share_ranges(same_scale_groups(qat_model))
    return qat_model


def quantize_pipeline(model_path, out, qat_epochs=2, report=None, dataset=None, data_dir=None, ptq=True,
                      input_type="int8", output_type="int8", lr=1e-4, batch_size=64, metadata=True,
                      limit_train=None, limit_test=None, verbose=1, seed=0):
    """Float model -> PTQ baseline + QAT int8 .tflite (with metadata) -> accuracies and op counts.

    Writes `out` (QAT int8), `<out stem>_ptq.tflite` when `ptq`, and `report` (JSON) when given.
    Returns the report dict {"float_accuracy", "ptq_accuracy", "qat_accuracy", "ops", ...}.
    """
    require_legacy()
    from .data import load_dataset
    from .tflite.audit import inspect_tflite
    from .train import dataset_for_spec
    t0 = time.time()
    model, spec = load_float_model(model_path)
    ds = dataset_for_spec(spec, dataset=dataset, data_dir=data_dir, seed=seed) if (spec or dataset or data_dir) \
        else load_dataset("digits", seed=seed)
    if limit_train or limit_test:
        ds = ds.subset(limit_train, limit_test)
    labels = spec.get("labels") or ds.labels

    float_acc = float(np.mean(np.argmax(model.predict(ds.x_test, verbose=0), -1) == ds.y_test))
    rep = {"model": spec.get("model", model.name), "dataset": ds.name, "test_examples": int(len(ds.x_test)),
           "float_accuracy": float_acc, "input_type": input_type, "output_type": output_type}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    stem = os.path.splitext(out)[0]
    if ptq:
        ptq_bytes = convert_int8(model, ds.x_train, input_type, output_type)
        ptq_path = stem + "_ptq.tflite"
        with open(ptq_path, "wb") as f:
            f.write(ptq_bytes)
        rep["ptq_accuracy"] = tflite_accuracy(ptq_bytes, ds.x_test, ds.y_test)
        rep["ptq_path"] = ptq_path
        ptq_audit = inspect_tflite(ptq_bytes)
        rep["ptq_ops"] = ptq_audit.op_counts()
        rep["ptq_inner_quantize_ops"] = len(ptq_audit.inner_quantize_ops())
        rep["ptq_concat_scale_mismatches"] = len(ptq_audit.concat_scale_mismatches())
    t1 = time.time()
    qat = quantize_model(model)
    qat_finetune(qat, ds, epochs=qat_epochs, batch_size=batch_size, lr=lr, verbose=verbose, seed=seed)
    rep["qat_keras_accuracy"] = float(np.mean(np.argmax(qat.predict(ds.x_test, verbose=0), -1) == ds.y_test))
    rep["qat_seconds"] = round(time.time() - t1, 1)
    qat_bytes = convert_int8(qat, ds.x_train, input_type, output_type, qat=True)
    rep["metadata"] = "written" if metadata else "not requested"
    if metadata and not metadata_available():
        rep["metadata"] = f"skipped: {METADATA_MISSING}"
        print(f"metadata skipped: {METADATA_MISSING}", flush=True)
    elif metadata:
        from .tflite.metadata import add_image_classifier_metadata
        qat_bytes = add_image_classifier_metadata(
            qat_bytes, labels, name=f"{rep['model']} int8 (QAT)",
            mean=spec.get("normalization", {}).get("mean", [0.0]),
            std=spec.get("normalization", {}).get("std", [255.0]))
    with open(out, "wb") as f:
        f.write(qat_bytes)
    rep["qat_accuracy"] = tflite_accuracy(qat_bytes, ds.x_test, ds.y_test)
    audit = inspect_tflite(qat_bytes)
    rep["ops"] = audit.op_counts()
    rep["inner_quantize_ops"] = len(audit.inner_quantize_ops())
    rep["concat_scale_mismatches"] = len(audit.concat_scale_mismatches())
    rep["path"] = out
    rep["qat_epochs"] = qat_epochs
    rep["seconds"] = round(time.time() - t0, 1)
    if report:
        with open(report, "w") as f:
            json.dump(rep, f, indent=1)
    return rep
