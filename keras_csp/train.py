"""Train zoo models on bundled data (scikit-learn digits) or an image folder, under a tf.distribute strategy.

`train(model_name, dataset="digits", epochs=..., out=DIR)` writes
- DIR/model.keras          the trained model (current Keras flavour's native format),
- DIR/model.weights.npz    weights by layer name (flavour independent),
- DIR/model.json           how to rebuild it: {"model", "kwargs", "labels", "normalization", "dataset", ...},
- DIR/report.json          float test accuracy, history, training time,
- DIR/checkpoints/         best checkpoint by validation accuracy (`ckpt.weights.h5`).

The .npz + JSON pair is what lets the tf_keras QAT process (`keras_csp.quantize`) load a model trained
with Keras 3: the architecture is rebuilt from the registry and the weights copied by layer name.

Strategy (`select_strategy`): "auto" picks MultiWorkerMirroredStrategy when TF_CONFIG names a cluster
with more than one task, MirroredStrategy when more than one GPU is visible, else the default strategy.
"""
import json
import os
import time

import numpy as np

from .backend import keras

SPEC_FILE = "model.json"
WEIGHTS_FILE = "model.weights.npz"
STRATEGIES = ("auto", "default", "mirrored", "multiworker")


# --- distribution strategy -------------------------------------------------------------------------

def _tf_config_workers():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except ValueError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from None
    return sum(len(v) for k, v in cluster.items() if k in ("worker", "chief"))


def select_strategy(name="auto"):
    """A tf.distribute strategy by name: "auto" | "default" | "mirrored" | "multiworker"."""
    import tensorflow as tf
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        if _tf_config_workers() > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_multi_worker(strategy):
    return getattr(strategy.extended, "_num_workers", 1) > 1


def needs_legacy_keras(strategy_name_):
    """Keras 3 (seen in 3.15) cannot fit under MultiWorkerMirroredStrategy with more than one worker:
    its first-batch model build reduces an (x, y) tuple and its metric reduction asks for axis 0 of
    scalars, and fit() fails in both. tf_keras trains there, so `train_report` runs in a tf_keras process."""
    from .backend import KERAS_3
    return KERAS_3 and strategy_name_ in ("auto", "multiworker") and _tf_config_workers() > 1


def train_report(**kwargs):
    """`train(**kwargs)` without the model: its JSON report (for a tf_keras subprocess)."""
    return train(**kwargs)[1]


def strategy_name(strategy):
    return type(strategy).__name__


# --- saving / loading --------------------------------------------------------------------------------

def layer_weights(model):
    """{"layer/index": array} for every layer with weights (names are stable across Keras flavours)."""
    out = {}
    for layer in model.layers:
        for i, w in enumerate(layer.get_weights()):
            out[f"{layer.name}/{i}"] = np.asarray(w)
    return out


def set_layer_weights(model, weights):
    """Copy {"layer/index": array} into `model` by layer name; raises ValueError on any mismatch."""
    by_layer = {}
    for key, arr in weights.items():
        name, i = key.rsplit("/", 1)
        by_layer.setdefault(name, {})[int(i)] = arr
    used = set()
    for layer in model.layers:
        current = layer.get_weights()
        if not current:
            continue
        if layer.name not in by_layer:
            raise ValueError(f"no saved weights for layer {layer.name!r}")
        saved = by_layer[layer.name]
        if len(saved) != len(current):
            raise ValueError(f"layer {layer.name!r}: {len(saved)} saved weights, model has {len(current)}")
        new = [saved[i] for i in range(len(current))]
        for a, b in zip(new, current):
            if a.shape != b.shape:
                raise ValueError(f"layer {layer.name!r}: saved weight shape {a.shape} != model {b.shape}")
        layer.set_weights(new)
        used.add(layer.name)
    unused = set(by_layer) - used
    if unused:
        raise ValueError(f"saved weights for layers not in the model: {sorted(unused)[:5]}")


def save_model(model, out_dir, spec):
    """Write model.keras, model.weights.npz and model.json (`spec`) into `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    model.save(os.path.join(out_dir, "model.keras"))
    np.savez(os.path.join(out_dir, WEIGHTS_FILE), **layer_weights(model))
    with open(os.path.join(out_dir, SPEC_FILE), "w") as f:
        json.dump(spec, f, indent=1)


def _model_dir(path):
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def read_model_spec(path):
    """The model.json next to DIR/model.keras (or in DIR), or None when there is none."""
    d = _model_dir(path)
    p = os.path.join(d, SPEC_FILE)
    if not (os.path.exists(p) and os.path.exists(os.path.join(d, WEIGHTS_FILE))):
        if os.path.isdir(path):
            raise FileNotFoundError(f"{path} has no {SPEC_FILE} + {WEIGHTS_FILE} (written by keras-csp train)")
        return None
    with open(p) as f:
        spec = json.load(f)
    spec["_dir"] = d
    return spec


def rebuild_model(spec):
    """Rebuild a saved model from its spec in the current Keras flavour and load its .npz weights."""
    from .models import create_model
    kwargs = dict(spec.get("kwargs", {}))
    if "input_shape" in kwargs:
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
    model = create_model(spec["model"], **kwargs)
    with np.load(os.path.join(spec["_dir"], WEIGHTS_FILE)) as w:
        set_layer_weights(model, dict(w))
    return model


def dataset_for_spec(spec, dataset=None, data_dir=None, seed=0):
    """The numpy Dataset a model was trained on (from its spec), or the one named explicitly."""
    from .data import Dataset, load_dataset, load_image_folder, numpy_from_tf
    data_dir = data_dir or spec.get("data_dir")
    if data_dir:
        shape = spec.get("kwargs", {}).get("input_shape", (32, 32, 3))
        fd = load_image_folder(data_dir, image_size=tuple(shape[:2]), seed=spec.get("seed", seed),
                               color_mode="grayscale" if shape[-1] == 1 else "rgb")
        xtr, ytr = numpy_from_tf(fd.train)
        xva, yva = numpy_from_tf(fd.val)
        xte, yte = numpy_from_tf(fd.test)
        return Dataset(os.path.basename(os.path.normpath(data_dir)), xtr, ytr, xva, yva, xte, yte, fd.labels)
    return load_dataset(dataset or spec.get("dataset", "digits"), seed=spec.get("seed", seed))


# --- training ------------------------------------------------------------------------------------------

def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0, batch_size=256), -1) == np.asarray(y)))


def train(model_name="cspdensenet_tiny", dataset="digits", epochs=10, out=None, batch_size=64, lr=3e-3,
          augment=True, data_dir=None, strategy="auto", seed=0, limit_train=None, verbose=1, model_kwargs=None,
          bn_momentum=0.9):
    """Train zoo model `model_name`; returns (model, report dict). Writes `out` (a directory) when given.

    Bundled `dataset` ("digits") or an image folder `data_dir`. `verbose` is Keras' fit verbosity, or
    "bar" for one progress bar over the epochs. Adam with cosine decay, sparse
    categorical cross-entropy, random-shift augmentation, best checkpoint by validation accuracy.
    """
    from .data import load_dataset, load_image_folder, make_tf_dataset
    keras.utils.set_random_seed(seed)
    strat = select_strategy(strategy)
    t0 = time.time()
    if data_dir:
        fd = load_image_folder(data_dir, batch_size=batch_size, seed=seed)
        train_ds, val_ds, test_ds = fd.train, fd.val, fd.test
        input_shape, labels, ds_name = fd.input_shape, fd.labels, os.path.basename(os.path.normpath(data_dir))
        steps = None
        test_xy = None
    else:
        ds = load_dataset(dataset, seed=seed)
        if limit_train:
            ds = ds.subset(limit_train)
        train_ds = make_tf_dataset(ds.x_train, ds.y_train, batch_size, shuffle=True, augment=augment, seed=seed)
        val_ds = make_tf_dataset(ds.x_val, ds.y_val, batch_size)
        input_shape, labels, ds_name = ds.input_shape, ds.labels, ds.name
        steps = int(np.ceil(len(ds.x_train) / batch_size))
        test_xy = (ds.x_test, ds.y_test)
    kwargs = dict(model_kwargs or {}, input_shape=list(input_shape), classes=len(labels))
    from .models import create_model
    with strat.scope():
        model = create_model(model_name, **kwargs)
        if bn_momentum is not None:
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = float(bn_momentum)
        if steps:
            schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, epochs * steps))
        else:
            schedule = lr
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    callbacks = []
    ckpt = None
    if out and not is_multi_worker(strat):  # restoring a checkpoint under MultiWorkerMirrored fails
        os.makedirs(os.path.join(out, "checkpoints"), exist_ok=True)
        ckpt = os.path.join(out, "checkpoints", "ckpt.weights.h5")
        callbacks.append(keras.callbacks.ModelCheckpoint(ckpt, monitor="val_accuracy", save_best_only=True,
                                                         save_weights_only=True))
    from .progress import fit_progress
    fit_verbose, bar = fit_progress(verbose, epochs, "train")
    hist = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks + bar, verbose=fit_verbose,
                     shuffle=False)  # the tf.data pipeline shuffles
    if ckpt and os.path.exists(ckpt):
        model.load_weights(ckpt)
    train_seconds = time.time() - t0
    if test_xy is not None:
        test_acc = _accuracy(model, *test_xy)
    else:
        test_acc = float(model.evaluate(test_ds, verbose=0)[1])
    report = {"model": model_name, "dataset": ds_name, "epochs": epochs, "float_accuracy": test_acc,
              "test_accuracy": test_acc, "train_seconds": round(train_seconds, 1),
              "strategy": strategy_name(strat), "keras": keras.__version__,
              "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()}}
    if out:
        from .data import NORMALIZATION
        spec = {"model": model_name, "kwargs": kwargs, "labels": labels, "normalization": NORMALIZATION,
                "dataset": None if data_dir else dataset, "data_dir": data_dir, "seed": seed}
        save_model(model, out, spec)
        with open(os.path.join(out, "report.json"), "w") as f:
            json.dump(report, f, indent=1)
    return model, report
