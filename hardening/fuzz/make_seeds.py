"""Regenerates the seed corpora in hardening/fuzz/corpus/ from models the package produces.

  python3 hardening/fuzz/make_seeds.py

corpus/tflite/          tiny full-int8 .tflite models (keras_csp.tflite.testing) with CSP partial
                        conv / split / conv-first / dense-block patterns, and their fused
                        versions (keras_csp.tflite.fuse, custom ops CspPartialConv/CspDenseBlock/
                        KcspDepthwiseConv2D/CspBlock/KcspConv2D/KcspAvgPool2D/KcspInvertedResidual),
                        with MobileNet-v2 inverted residuals (fused under --tune), a CSPMobileNet-v2-style
                        depthwise head, YOLO-style C2f / SPPF blocks (SiLU, residual ADDs, max pools)
                        and a 3-channel stem conv
corpus/custom_options/  the flexbuffer custom options of every fused op (and of the
                        KcspTestAffine test op), prefixed with the 3 header bytes
                        fuzz_custom_options.cc reads: [op selector][shape][perturbation]
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OPS = {"CspPartialConv": 0, "CspDenseBlock": 1, "KcspTestAffine": 2, "CspBlock": 3, "KcspDepthwiseConv2D": 4,
       "KcspConv2D": 5, "KcspAvgPool2D": 6, "KcspInvertedResidual": 7}
OP_NAMES = 9  # option_inputs.h kOpNames: the eight ops + an unknown one
TUNED = ("inverted_residuals", "grouped")  # fused with `fuse --tune` (its ops are tune candidates only)


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_csp.tflite import fuse
    from keras_csp.tflite import testing as T
    from keras_csp.tflite.graph import Graph

    tdir = os.path.join(HERE, "corpus", "tflite")
    odir = os.path.join(HERE, "corpus", "custom_options")
    os.makedirs(tdir, exist_ok=True)
    os.makedirs(odir, exist_ok=True)
    import tensorflow as tf

    L = tf.keras.layers

    def keras_model(name, shape, body):
        tf.keras.utils.set_random_seed(0)
        inp = tf.keras.Input(shape)
        return name, tf.keras.Model(inp, body(inp)), shape

    def partial(x, c_skip=2, cout=4, k=3, act="relu", first=True, split=False):
        c = x.shape[-1]
        if split:
            s, r = L.Lambda(lambda t: tf.split(t, [c_skip, c - c_skip], axis=-1))(x)
        else:
            s, r = x[..., :c_skip], x[..., c_skip:]
        y = L.Conv2D(cout, k, padding="same", activation=act)(r)
        return L.Concatenate()([s, y] if first else [y, s])

    def dense(x, layers=2, growth=2, bottleneck=True):
        for _ in range(layers):
            y = L.Conv2D(2 * growth, 1, activation="relu")(x) if bottleneck else x
            x = L.Concatenate()([x, L.Conv2D(growth, 3, padding="same", activation="relu")(y)])
        return x

    def mobile_head(x):
        # CSPMobileNet-v2 stage head: a base 1x1 read by a strided depthwise skip and by a strided
        # x2 depthwise + 1x1 project block path, concatenated
        base = L.Conv2D(3, 1, activation="relu")(x)
        skip = L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(base)
        y = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, activation="relu")(base)
        y = L.Conv2D(2, 1)(y)
        z = L.Add()([y, L.Conv2D(2, 1)(L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(y))])  # residual
        return L.Concatenate()([z, skip])

    def yolo_blocks(x):
        # C2f (1x1 split in two, a bottleneck with its residual ADD, a 4-way concat) then SPPF
        silu = dict(padding="same", activation="silu")
        a, b = L.Lambda(lambda t: tf.split(t, 2, axis=-1))(L.Conv2D(4, 1, **silu)(x))
        m = L.Add()([b, L.Conv2D(2, 3, **silu)(L.Conv2D(2, 3, **silu)(b))])
        y = L.Conv2D(4, 1, **silu)(L.Concatenate()([a, b, m, L.Conv2D(2, 3, **silu)(m)]))
        p1 = L.MaxPooling2D(3, 1, "same")(y)
        p2 = L.MaxPooling2D(3, 1, "same")(p1)
        return L.Concatenate()([y, p1, p2])

    def inverted_residuals(x):
        y = L.Conv2D(3, 1)(L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6")(
            L.Conv2D(6, 1, activation="relu6")(x)))
        return L.Add()([y, L.Conv2D(3, 1)(L.DepthwiseConv2D(3, padding="same", activation="relu6")(
            L.Conv2D(6, 1, activation="relu6")(y)))])

    # Tiny graphs (no classifier head, metadata or signatures stripped): parsing cost per
    # fuzz input is dominated by the flatbuffers object API, so small seeds = fast fuzzing.
    models = [
        keras_model("partial", (3, 3, 5), lambda x: partial(x)),
        keras_model("partial_1x1_2stage", (3, 3, 4),
                    lambda x: partial(partial(x, 2, 2, 1), 2, 3, 1)),
        keras_model("split_convfirst_relu6", (3, 3, 5),
                    lambda x: partial(x, 3, 2, act="relu6", first=False, split=True)),
        keras_model("partial_leaky", (3, 3, 5), lambda x: partial(x, act="leaky_relu")),
        keras_model("partial_silu", (3, 3, 5), lambda x: partial(x, act="silu")),  # a table post op
        keras_model("dense", (3, 3, 3), lambda x: dense(x)),
        keras_model("dense_nobottleneck", (3, 3, 2), lambda x: dense(x, bottleneck=False)),
        keras_model("mobile_head", (4, 4, 3), lambda x: mobile_head(x)),
        keras_model("yolo_blocks", (4, 4, 3), lambda x: yolo_blocks(x)),
        # a 3-channel strided stem conv alone (KcspConv2D)
        keras_model("stem", (6, 6, 3), lambda x: L.Conv2D(4, 3, strides=2, padding="same", activation="relu")(x)),
        # a strided conv with its SiLU outside any CSP pattern (KcspConv2D with a post table)
        keras_model("conv_silu", (6, 6, 5), lambda x: L.Conv2D(4, 3, strides=2, padding="same", activation="silu")(x)),
        # a DenseNet transition's 2x2 average pool (KcspAvgPool2D)
        keras_model("avg_pool", (4, 4, 3), lambda x: L.AveragePooling2D(2)(L.Conv2D(4, 1)(x))),
        # MobileNet-v2 blocks: expand + strided depthwise + project, then one with its residual ADD
        keras_model("inverted_residuals", (4, 4, 3), lambda x: inverted_residuals(x)),
        # ResNeXt's grouped 3x3 (16 groups of 4: the grouped kernel under --tune)
        keras_model("grouped", (4, 4, 64), lambda x: L.Conv2D(64, 3, padding="same", groups=16, activation="relu")(x)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        T.make_custom_op_model(os.path.join(tdir, "custom_affine.tflite"))
        for name, model, shape in models:
            src = os.path.join(tdir, name + ".tflite")
            T._convert_int8(model, shape, src)
            g = Graph.load(src)
            g.model.metadata = []
            g.model.signatureDefs = []
            g.model.description = None
            g.remove_unused()
            g.save(src)
            tune = dict(tune=True, tune_min_speedup=0.0, tune_runs=1) if name in TUNED else {}
            rep = fuse(src, os.path.join(tdir, name + "_fused.tflite"), verify=False, **tune)
            assert rep["fused_ops"] >= 1, (name, rep)
    n = 0
    for f in sorted(os.listdir(tdir)):
        g = Graph.load(os.path.join(tdir, f))
        for i, op in enumerate(g.ops()):
            code = g.model.operatorCodes[op.opcodeIndex]
            cc = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            if cc in OPS and op.customOptions is not None:
                data = bytes(bytearray(op.customOptions))
                # byte 0: op (% OP_NAMES) and numerics (/ OP_NAMES % 3: xnnpack, builtin, reference)
                for hdr in ((OPS[cc], 0, 1), (OPS[cc], 0x2b, 0x10), (OPS[cc] + OP_NAMES, 0x01, 1)):
                    with open(os.path.join(odir, f"{f[:-7]}_op{i}_{hdr[1]:02x}"), "wb") as fh:
                        fh.write(bytes(hdr) + data)
                    n += 1
    total = sum(os.path.getsize(os.path.join(d, f)) for d in (tdir, odir) for f in os.listdir(d))
    print(f"{len(os.listdir(tdir))} models, {n} option seeds, {total / 1024:.0f} KiB")


if __name__ == "__main__":
    sys.exit(main())
