"""Functional block builders, one function per block (as Keras Applications' densenet.py does).

Every convolution is conv -> BatchNorm -> activation (the ordering of the CSPNet darknet configs), so
int8 conversion folds each BN into the conv before it. Layer names are stable and derived from
`name`: `{name}_conv`, `{name}_bn`, `{name}_relu` (or `_leaky`, `_silu`), `{name}_concat`, ...

The CSP stage is one generic function (`csp_stage`) that takes the block path as a callable, like
timm's CrossStage; the model zoo and the Layer wrappers in `wrappers.py` both use these functions.
The YOLO-family blocks (`c3`, `c2f`, `elan`, `sppf`) follow the published PyTorch modules layer for
layer (YOLOv5 / ultralytics `C3`, `C2f`, `SPPF`; YOLOv7's ELAN); their convs are named after the
modules' attributes (`{name}_cv1_conv`, ...), so weights map one to one.
"""
from ..backend import keras, leaky_relu
from .primitives import ChannelSlice, check_partial_ratio, split_sizes

layers = keras.layers
BN_EPS = 1.001e-5
FUSIONS = ("first", "last", "both")
ACTIVATIONS = ("relu", "leaky", "silu", "linear")


def check_fusion(fusion):
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")


def channels_of(x):
    return int(x.shape[-1])


def activation(x, act, name):
    if act == "relu":
        return layers.ReLU(name=f"{name}_relu")(x)
    if act == "leaky":
        return leaky_relu(0.1, name=f"{name}_leaky")(x)
    if act == "silu":
        # x * sigmoid(x) (YOLOv5/v8's SiLU). tf_keras resolves "silu" to its `swish`, which tfmot's
        # default 8-bit registry quantizes after the activation; TFLite gets LOGISTIC + MUL.
        return layers.Activation("silu", name=f"{name}_silu")(x)
    if act == "linear":
        return x
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {act!r}")


def conv_bn_act(x, filters, kernel_size, name, strides=1, groups=1, act="relu"):
    """Conv2D (no bias) -> BatchNormalization -> activation."""
    x = layers.Conv2D(int(filters), kernel_size, strides=strides, padding="same", groups=groups,
                      use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPS, name=f"{name}_bn")(x)
    return activation(x, act, name)


def channel_split(x, partial_ratio, name):
    """[skip, part] halves of a CSP split; `part` (the last round(C*r) channels) feeds the block."""
    skip, part = split_sizes(channels_of(x), partial_ratio)
    c = skip + part
    return (ChannelSlice(0, skip, name=f"{name}_split_skip")(x),
            ChannelSlice(skip, c, name=f"{name}_split_part")(x))


# --- DenseNet / PeleeNet ------------------------------------------------------------------------

def dense_layer(x, growth_rate, name, bottleneck=4, act="relu"):
    """DenseNet layer: 1x1 conv (bottleneck*growth) -> 3x3 conv (growth), concatenated to its input."""
    y = conv_bn_act(x, bottleneck * growth_rate, 1, f"{name}_1", act=act)
    y = conv_bn_act(y, growth_rate, 3, f"{name}_2", act=act)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def two_way_dense_layer(x, growth_rate, bottleneck_width, name, act="relu"):
    """PeleeNet two-way dense layer: a 3x3 branch and a stacked 3x3-3x3 branch, growth/2 each."""
    half = growth_rate // 2
    inter = max(4, int(half * bottleneck_width / 4) * 4)
    a = conv_bn_act(x, inter, 1, f"{name}_a1", act=act)
    a = conv_bn_act(a, half, 3, f"{name}_a2", act=act)
    b = conv_bn_act(x, inter, 1, f"{name}_b1", act=act)
    b = conv_bn_act(b, half, 3, f"{name}_b2", act=act)
    b = conv_bn_act(b, half, 3, f"{name}_b3", act=act)
    return layers.Concatenate(name=f"{name}_concat")([x, a, b])


def dense_block(x, depth, growth_rate, name, act="relu"):
    for i in range(depth):
        x = dense_layer(x, growth_rate, name=f"{name}_block{i + 1}", act=act)
    return x


def pelee_dense_block(x, depth, growth_rate, bottleneck_width, name, act="relu"):
    for i in range(depth):
        x = two_way_dense_layer(x, growth_rate, bottleneck_width, name=f"{name}_block{i + 1}", act=act)
    return x


def transition(x, filters, name, pool=True, act="relu"):
    """Transition layer: 1x1 conv to `filters`, then 2x2 average pooling when `pool`."""
    x = conv_bn_act(x, filters, 1, name, act=act)
    if pool:
        x = layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)
    return x


# --- ResNet / ResNeXt / Darknet -----------------------------------------------------------------

def bottleneck_block(x, filters, name, mid_filters=None, strides=1, groups=1, act="relu"):
    """ResNet (groups=1) or ResNeXt (groups>1) bottleneck: 1x1 -> 3x3 (strided, grouped) -> 1x1, + shortcut.

    The shortcut is a strided 1x1 conv + BN when the shape changes (ResNet v1.5 puts the stride on
    the 3x3 conv).
    """
    mid_filters = int(mid_filters or filters // 4)
    if strides != 1 or channels_of(x) != filters:
        shortcut = conv_bn_act(x, filters, 1, f"{name}_0", strides=strides, act="linear")
    else:
        shortcut = x
    y = conv_bn_act(x, mid_filters, 1, f"{name}_1", act=act)
    y = conv_bn_act(y, mid_filters, 3, f"{name}_2", strides=strides, groups=groups, act=act)
    y = conv_bn_act(y, filters, 1, f"{name}_3", act="linear")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return activation(y, act, f"{name}_out")


def dark_block(x, filters, name, mid_filters=None, act="leaky"):
    """Darknet residual: 1x1 (mid) -> 3x3 (filters), added to the input (no activation after the add)."""
    mid_filters = int(mid_filters or filters // 2)
    y = conv_bn_act(x, mid_filters, 1, f"{name}_1", act=act)
    y = conv_bn_act(y, filters, 3, f"{name}_2", act=act)
    return layers.Add(name=f"{name}_add")([x, y])


# --- MobileNet-v2 -------------------------------------------------------------------------------

def depthwise_bn_act(x, name, strides=1, multiplier=1, act="relu"):
    """3x3 DepthwiseConv2D (x `multiplier`, no bias) -> BatchNormalization -> activation."""
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", depth_multiplier=int(multiplier),
                               use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPS, name=f"{name}_bn")(x)
    return activation(x, act, name)


def project(x, filters, name, shortcut=None):
    """The linear 1x1 projection that ends an inverted residual, added to `shortcut` when shapes allow."""
    y = conv_bn_act(x, filters, 1, f"{name}_project", act="linear")
    if shortcut is not None and tuple(shortcut.shape[1:]) == tuple(y.shape[1:]):
        y = layers.Add(name=f"{name}_add")([shortcut, y])
    return y


def inverted_residual(x, filters, name, expand_filters, strides=1, dw_multiplier=1, act="relu"):
    """MobileNet-v2 block: 1x1 expand -> 3x3 depthwise (strided, x multiplier) -> 1x1 linear project,
    plus the input when stride and width allow."""
    y = conv_bn_act(x, expand_filters, 1, f"{name}_expand", act=act)
    y = depthwise_bn_act(y, f"{name}_depthwise", strides, dw_multiplier, act)
    return project(y, filters, name, shortcut=x if strides == 1 else None)


# --- Cross Stage Partial stage -------------------------------------------------------------------

def csp_stage(x, block_fn, name, partial_ratio=0.5, fusion="both", out_filters=None,
              partial_transition_filters=None, act="relu"):
    """Generic CSP stage (CSPNet Fig. 3): split, run `block_fn` on one part, merge.

    x -> [skip, part]; part -> block_fn -> (partial transition) ; concat with skip -> (transition)

    fusion="first": concat(skip, block) -> transition 1x1 to `out_filters`.
    fusion="last":  block -> partial transition 1x1 -> concat(skip, .); output width skip + that.
    fusion="both":  block -> partial transition -> concat -> transition to `out_filters` (CSPDenseNet
                    Fig. 3b, timm's CrossStage).
    `partial_transition_filters` defaults to the block path's input width (timm's rule);
    `out_filters` defaults to the stage input width.
    """
    check_partial_ratio(partial_ratio)
    check_fusion(fusion)
    in_filters = channels_of(x)
    skip, part = channel_split(x, partial_ratio, name)
    part = block_fn(part)
    if fusion in ("last", "both"):
        pt_filters = partial_transition_filters or (in_filters - channels_of(skip))
        part = conv_bn_act(part, pt_filters, 1, f"{name}_partial_transition", act=act)
    x = layers.Concatenate(name=f"{name}_csp_concat")([skip, part])
    if fusion in ("first", "both"):
        x = conv_bn_act(x, out_filters or in_filters, 1, f"{name}_transition", act=act)
    return x


# --- YOLO family (YOLOv5 C3, YOLOv8 C2f, YOLOv7 ELAN, SPPF) --------------------------------------

def yolo_bottleneck(x, filters, name, shortcut=True, kernel_sizes=(1, 3), act="silu"):
    """YOLOv5/v8 `Bottleneck` (e=1.0): conv k0 -> conv k1, both `filters` wide, + the input when
    `shortcut` and the widths match. C3 uses kernels (1, 3), C2f (3, 3)."""
    y = conv_bn_act(x, filters, kernel_sizes[0], f"{name}_1", act=act)
    y = conv_bn_act(y, filters, kernel_sizes[1], f"{name}_2", act=act)
    if shortcut and channels_of(x) == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def _hidden(filters, expansion):
    hidden = int(filters * expansion)
    if hidden < 1:
        raise ValueError(f"expansion={expansion} leaves no hidden channels of {filters} filters")
    return hidden


def c3(x, filters, depth, name, shortcut=True, expansion=0.5, act="silu"):
    """YOLOv5 `C3` (models/common.py): CSP bottleneck with three convs, c_ = int(filters * expansion).

    cv1 1x1 (c_) -> `depth` bottlenecks (1x1 c_, 3x3 c_, + input when `shortcut`), `{name}_block{i}`;
    cv2 1x1 (c_) of x; concat [m, cv2] (`{name}_concat`); cv3 1x1 to `filters`.
    """
    hidden = _hidden(filters, expansion)
    m = conv_bn_act(x, hidden, 1, f"{name}_cv1", act=act)
    for i in range(int(depth)):
        m = yolo_bottleneck(m, hidden, f"{name}_block{i + 1}", shortcut, (1, 3), act)
    y = conv_bn_act(x, hidden, 1, f"{name}_cv2", act=act)
    x = layers.Concatenate(name=f"{name}_concat")([m, y])
    return conv_bn_act(x, filters, 1, f"{name}_cv3", act=act)


def c2f(x, filters, depth, name, shortcut=True, expansion=0.5, act="silu"):
    """YOLOv8 `C2f` (ultralytics nn/modules/block.py): c_ = int(filters * expansion).

    cv1 1x1 (2 c_) -> two halves y0, y1 (`{name}_split0`/`_split1`, ChannelSlice: TFLite STRIDED_SLICE);
    each bottleneck `{name}_block{i}` (3x3 c_, 3x3 c_, + input when `shortcut`) reads the previous
    output; concat [y0, y1, m1, ..., m_depth] (depth + 2 tensors, `{name}_concat`); cv2 1x1 to `filters`.
    """
    hidden = _hidden(filters, expansion)
    x = conv_bn_act(x, 2 * hidden, 1, f"{name}_cv1", act=act)
    ys = [ChannelSlice(0, hidden, name=f"{name}_split0")(x),
          ChannelSlice(hidden, 2 * hidden, name=f"{name}_split1")(x)]
    for i in range(int(depth)):
        ys.append(yolo_bottleneck(ys[-1], hidden, f"{name}_block{i + 1}", shortcut, (3, 3), act))
    x = layers.Concatenate(name=f"{name}_concat")(ys)
    return conv_bn_act(x, filters, 1, f"{name}_cv2", act=act)


def elan(x, filters, name, depth=2, branches=2, expansion=0.5, act="silu"):
    """YOLOv7 ELAN block, the layout of the yolov7 repository's cfg/training yaml files.

    Two 1x1 convs of x, `{name}_cv1` and `{name}_cv2` (c_ = int(filters * expansion) each), then a
    chain of `branches * depth` 3x3 convs (c_) from cv2, `{name}_chain{j}`; the chain output after
    every `depth` convs is taken. Concat (`{name}_concat`, branches + 2 tensors) in the yaml's order,
    newest first: [chain_{branches*depth}, ..., chain_{depth}, cv2, cv1]; then a 1x1 transition
    `{name}_transition` to `filters`.

    yolov7-tiny.yaml (depth=1, branches=2): Conv 1x1, Conv 1x1 (from x), Conv 3x3, Conv 3x3,
    Concat [-1, -2, -3, -4], Conv 1x1 — out 64 from c_ 32 (expansion 0.5).
    yolov7.yaml (depth=2, branches=2): Concat [-1, -3, -5, -6] of four 3x3 convs — out 256 from c_ 64
    (expansion 0.25).
    """
    if int(depth) < 1 or int(branches) < 1:
        raise ValueError(f"elan needs depth >= 1 and branches >= 1, got depth={depth}, branches={branches}")
    hidden = _hidden(filters, expansion)
    a = conv_bn_act(x, hidden, 1, f"{name}_cv1", act=act)
    b = conv_bn_act(x, hidden, 1, f"{name}_cv2", act=act)
    taken, y = [], b
    for j in range(int(branches) * int(depth)):
        y = conv_bn_act(y, hidden, 3, f"{name}_chain{j + 1}", act=act)
        if (j + 1) % int(depth) == 0:
            taken.append(y)
    x = layers.Concatenate(name=f"{name}_concat")(taken[::-1] + [b, a])
    return conv_bn_act(x, filters, 1, f"{name}_transition", act=act)


def sppf(x, filters, name, pool_size=5, act="silu"):
    """YOLOv5/v8 `SPPF`: cv1 1x1 (c_ = input channels // 2) -> three chained MaxPooling2D(pool_size,
    stride 1, "same") `{name}_pool1..3` -> concat [y0, y1, y2, y3] (`{name}_concat`) -> cv2 1x1 to
    `filters`. Equal to SPP with pools 5, 9, 13 for pool_size 5, in three 5x5 max pools."""
    hidden = max(1, channels_of(x) // 2)
    ys = [conv_bn_act(x, hidden, 1, f"{name}_cv1", act=act)]
    for i in range(3):
        ys.append(layers.MaxPooling2D(int(pool_size), strides=1, padding="same", name=f"{name}_pool{i + 1}")(ys[-1]))
    x = layers.Concatenate(name=f"{name}_concat")(ys)
    return conv_bn_act(x, filters, 1, f"{name}_cv2", act=act)
