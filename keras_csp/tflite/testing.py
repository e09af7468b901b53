"""Small models for testing the runtime and the rewrite pass.

* `make_custom_op_model`: a hand-built flatbuffer with ONE custom op (x -> CUSTOM -> y), used
  to prove custom-op registration end to end.
* `make_partial_conv_model` / `make_dense_block_model`: tiny tf.keras models with the CSP
  patterns (channel slice -> Conv2D -> Concatenate, DenseNet-style concat chains), converted
  to full-int8 .tflite with a representative dataset.
"""
from __future__ import annotations

import os

import numpy as np
from flatbuffers import flexbuffers

from .graph import Graph
from .schema import BuiltinOperator, schema


def make_custom_op_model(path, custom_code: str = "KcspTestAffine", options=None,
                         shape=(1, 4), node: int = 0, key_len: int | None = None,
                         raw_options: bytes | None = None):
    """float32 x -> CUSTOM(custom_code)(x, key) -> y, with flexbuffer `options`."""
    if options is None:
        options = {"version": 1, "node": node, "scale": 2.0, "offset": 0.5}
    opts = raw_options if raw_options is not None else bytes(flexbuffers.Dumps(options))
    m = schema.ModelT()
    m.version = 3
    m.description = "keras-csp custom op test model"
    m.buffers = [schema.BufferT()]
    m.operatorCodes = []
    sg = schema.SubGraphT()
    sg.tensors = []
    sg.operators = []
    sg.name = "main"
    m.subgraphs = [sg]
    g = Graph(m)
    x = g.add_tensor("x", shape, np.float32)
    key = g.add_tensor("kcsp_key", [key_len if key_len is not None else node + 1], np.int8,
                       data=np.zeros(key_len if key_len is not None else node + 1, np.int8))
    y = g.add_tensor("y", shape, np.float32)
    op = schema.OperatorT()
    op.opcodeIndex = g.custom_opcode_index(custom_code)
    op.inputs = np.asarray([x, key], np.int32)
    op.outputs = np.asarray([y], np.int32)
    op.customOptions = np.frombuffer(opts, np.uint8).copy()
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    sg.operators.append(op)
    sg.inputs = np.asarray([x], np.int32)
    sg.outputs = np.asarray([y], np.int32)
    g.save(path)
    return path


def _convert_int8(model, input_shape, path, seed=0, n_rep=16):
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def rep():
        for _ in range(n_rep):
            yield [rng.uniform(-1, 1, size=(1,) + tuple(input_shape)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    data = conv.convert()
    with open(os.fspath(path), "wb") as f:
        f.write(data)
    return path


def make_partial_conv_model(path, hw=8, channels=16, c_skip=8, out_channels=12, kernel=3,
                            activation="relu", skip_first=True, stages=1, seed=0, split=False):
    """x -> [x[..., :c_skip], conv(x[..., c_skip:])] -> concat, repeated `stages` times,
    then a global-average-pool + dense head (so the graph also has non-fused ops)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((hw, hw, channels))
    x = inp
    for s in range(stages):
        c = x.shape[-1]
        k = c_skip if s == 0 else c // 2
        if split:
            skip, rest = tf.keras.layers.Lambda(
                lambda t, k=k, c=c: tf.split(t, [k, c - k], axis=-1))(x)
        else:
            skip, rest = x[..., :k], x[..., k:]
        y = tf.keras.layers.Conv2D(out_channels, kernel, padding="same", activation=activation)(rest)
        x = tf.keras.layers.Concatenate()([skip, y] if skip_first else [y, skip])
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    out = tf.keras.layers.Dense(10)(x)
    model = tf.keras.Model(inp, out)
    return _convert_int8(model, (hw, hw, channels), path, seed=seed)


def make_dense_block_model(path, hw=8, channels=8, growth=4, layers=3, bottleneck=True,
                           transition=True, seed=0, two_way=False):
    """DenseNet-style block: x_{i+1} = concat(x_i, conv3x3(conv1x1(x_i))), then optionally a
    CSP-style transition (1x1 conv) and a small head."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((hw, hw, channels))
    x = inp
    for _ in range(layers):
        y = x
        if bottleneck:
            y = tf.keras.layers.Conv2D(2 * growth, 1, activation="relu")(y)
        y = tf.keras.layers.Conv2D(growth, 3, padding="same", activation="relu")(y)
        if two_way:  # PeleeNet two-way dense layer: a second, deeper branch
            z = tf.keras.layers.Conv2D(growth, 1, activation="relu")(x)
            z = tf.keras.layers.Conv2D(growth, 3, padding="same", activation="relu")(z)
            z = tf.keras.layers.Conv2D(growth, 3, padding="same", activation="relu")(z)
            x = tf.keras.layers.Concatenate()([x, y, z])
        else:
            x = tf.keras.layers.Concatenate()([x, y])
    if transition:
        x = tf.keras.layers.Conv2D(x.shape[-1] // 2, 1, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    out = tf.keras.layers.Dense(10)(x)
    model = tf.keras.Model(inp, out)
    return _convert_int8(model, (hw, hw, channels), path, seed=seed)


def edit_custom_options(src, dst, edit, prefix: str = "Csp"):
    """Copies `src` to `dst` with `edit(options_dict)` applied to the flexbuffer custom options of
    every custom op whose name starts with `prefix` (tests of malformed / older options)."""
    g = Graph.load(src)
    for op in g.ops():
        if g.op_type(op).startswith(prefix):
            opts = dict(flexbuffers.Loads(bytes(op.customOptions)))
            edit(opts)
            op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(opts)), np.uint8).copy()
    g.save(dst)
    return str(dst)
