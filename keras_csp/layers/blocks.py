"""Functional block builders, one function per block (as Keras Applications' densenet.py does).

Every convolution is conv -> BatchNorm -> activation (the ordering of the CSPNet darknet configs), so
int8 conversion folds each BN into the conv before it. Layer names are stable and derived from
`name`: `{name}_conv`, `{name}_bn`, `{name}_relu` (or `_leaky`), `{name}_concat`, ...

The CSP stage is one generic function (`csp_stage`) that takes the block path as a callable, like
timm's CrossStage; the model zoo and the Layer wrappers in `wrappers.py` both use these functions.
"""
from ..backend import keras, leaky_relu
from .primitives import ChannelSlice, check_partial_ratio, split_sizes

layers = keras.layers
BN_EPS = 1.001e-5
FUSIONS = ("first", "last", "both")
ACTIVATIONS = ("relu", "leaky", "linear")


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
