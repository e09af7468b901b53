"""One generic builder for every classifier: stem -> stages (plain or CSP) -> head.

Stage `i` (1-based) is named `conv{i+1}` as in Keras Applications (`conv2_block1_1_conv`, ...);
its CSP parts are `conv{i+1}_split_skip`, `conv{i+1}_partial_transition_conv`,
`conv{i+1}_csp_concat`, `conv{i+1}_transition_conv`; a dense stage's transition is `pool{i+1}`.
A YOLO stage is `conv{i+1}_down` (the strided 3x3), `conv{i+1}_c3` or `conv{i+1}_c2f` (`..._cv1_conv`,
`..._block1_1_conv`, `..._concat`, ...) and, on the last stage, `conv{i+1}_sppf`.
"""
import os

from ..backend import keras
from ..layers import blocks
from ..layers.blocks import channels_of, conv_bn_act
from ..layers.primitives import check_partial_ratio, split_sizes
from .configs import ModelCfg, StageCfg

layers = keras.layers
POOLINGS = (None, "avg", "max")


def build_stem(x, cfg: ModelCfg):
    stem = cfg.stem
    if stem.kind == "pelee":
        # PeleeNet stem block: 3x3/2 conv, then a strided-conv branch and a max-pool branch, concat, 1x1.
        x = conv_bn_act(x, stem.filters, 3, "stem1", strides=2, act=cfg.act)
        a = conv_bn_act(x, stem.filters // 2, 1, "stem2a", act=cfg.act)
        a = conv_bn_act(a, stem.filters, 3, "stem2b", strides=2, act=cfg.act)
        b = layers.MaxPooling2D(2, strides=2, name="stem2_pool")(x)
        x = layers.Concatenate(name="stem_concat")([a, b])
        return conv_bn_act(x, stem.filters, 1, "stem3", act=cfg.act)
    x = conv_bn_act(x, stem.filters, stem.kernel_size, "conv1", strides=stem.strides, act=cfg.act)
    if stem.kind == "conv_pool":
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    elif stem.kind != "conv":
        raise ValueError(f"unknown stem kind {stem.kind!r}")
    return x


def _dense_path(x, s: StageCfg, name, act):
    if s.block == "dense":
        return blocks.dense_block(x, s.depth, s.growth_rate, name, act=act)
    return blocks.pelee_dense_block(x, s.depth, s.growth_rate, s.bottleneck_width, name, act=act)


def _residual_path(x, s: StageCfg, width, name, act, strides=1):
    """`s.depth` bottleneck or darknet blocks of `width` channels."""
    mid = max(1, int(round(width * s.bottle_ratio)))
    for i in range(s.depth):
        block_name = f"{name}_block{i + 1}"
        if s.block == "bottleneck":
            x = blocks.bottleneck_block(x, width, block_name, mid_filters=mid, strides=strides if i == 0 else 1,
                                        groups=s.groups, act=act)
        elif s.block == "dark":
            x = blocks.dark_block(x, width, block_name, mid_filters=mid, act=act)
        else:
            raise ValueError(f"unknown block type {s.block!r}")
    return x


def _inverted_runs(x, s: StageCfg, name, act, strides=1, skip_first=False):
    """The stage's inverted residuals, `{name}_block{j}`; `skip_first` when a CSP head built block 1."""
    j = 0
    for filters, depth in s.runs:
        for _ in range(depth):
            j += 1
            if skip_first and j == 1:
                continue
            x = blocks.inverted_residual(x, filters, f"{name}_block{j}", channels_of(x) * s.expand_ratio,
                                         strides=strides if j == 1 else 1, dw_multiplier=s.dw_multiplier, act=act)
    return x


def csp_inverted_stage(x, s: StageCfg, name, act):
    """CSPMobileNet-v2 stage (the CSPNet repository's csmobilenet-v2.cfg): two paths read one base, concat.

    base: a 1x1 conv `{name}_base` (the first block's expansion), or the stage input when base_filters=0.
    skip path `{name}_skip`: a strided 3x3 depthwise conv of the base (grouped, pairs of channels, when
    skip_filters halves the width).
    block path: block 1 is the base's strided depthwise (x dw_multiplier) + linear projection, the
    rest are inverted residuals; without a base conv, block 1 is a whole inverted residual.
    The concat (`{name}_csp_concat`) puts the block path first, as the cfg's route layers do.
    """
    if s.base_filters:
        base = conv_bn_act(x, s.base_filters, 1, f"{name}_base", act=act)
    else:
        base = x
    width = channels_of(base)
    if s.skip_filters and s.skip_filters != width:
        skip = conv_bn_act(base, s.skip_filters, 3, f"{name}_skip", strides=s.stride, groups=s.skip_filters, act=act)
    else:
        skip = blocks.depthwise_bn_act(base, f"{name}_skip", strides=s.stride, act=act)
    if s.base_filters:
        y = blocks.depthwise_bn_act(base, f"{name}_block1_depthwise", s.stride, s.dw_multiplier, act)
        y = blocks.project(y, s.runs[0][0], f"{name}_block1")
        y = _inverted_runs(y, s, name, act, skip_first=True)
    else:
        y = _inverted_runs(base, s, name, act, strides=s.stride)
    return layers.Concatenate(name=f"{name}_csp_concat")([y, skip])


def yolo_stage(x, s: StageCfg, name, act):
    """YOLOv5 / YOLOv8 backbone stage: Conv 3x3/2, a C3 or C2f block, and an SPPF when `s.sppf`."""
    x = conv_bn_act(x, s.out_filters, 3, f"{name}_down", strides=s.stride, act=act)
    block = blocks.c3 if s.block == "c3" else blocks.c2f
    x = block(x, s.out_filters, s.depth, f"{name}_{s.block}", shortcut=s.shortcut, expansion=s.bottle_ratio,
              act=act)
    if s.sppf:
        x = blocks.sppf(x, s.out_filters, f"{name}_sppf", pool_size=s.sppf, act=act)
    return x


def plain_stage(x, s: StageCfg, name, act):
    if s.block in ("dense", "pelee"):
        x = _dense_path(x, s, name, act)
        if s.transition:
            x = blocks.transition(x, int(channels_of(x) * s.compression), name.replace("conv", "pool"),
                                  pool=s.pool, act=act)
        elif s.pool:
            x = layers.AveragePooling2D(2, strides=2, name=f"{name.replace('conv', 'pool')}_pool")(x)
        return x
    if s.block == "inverted":
        return _inverted_runs(x, s, name, act, strides=s.stride)
    if s.block in ("c3", "c2f"):
        return yolo_stage(x, s, name, act)
    if s.block == "dark":
        x = conv_bn_act(x, s.out_filters, 3, f"{name}_down", strides=s.stride, act=act)
        return _residual_path(x, s, s.out_filters, name, act)
    return _residual_path(x, s, s.out_filters, name, act, strides=s.stride)


def csp_stage(x, s: StageCfg, name, act, partial_ratio, fusion):
    if s.block in ("dense", "pelee"):
        in_filters = channels_of(x)
        _, part = split_sizes(in_filters, partial_ratio)
        grown = s.depth * s.growth_rate
        compression = s.compression if s.transition else 1.0
        pt_filters = part if s.partial_transition == "part" else int((part + grown) * compression)
        x = blocks.csp_stage(
            x, lambda p: _dense_path(p, s, name, act), name, partial_ratio, fusion,
            out_filters=int((in_filters + grown) * compression), partial_transition_filters=pt_filters, act=act)
        if s.pool:
            x = layers.AveragePooling2D(2, strides=2, name=f"{name.replace('conv', 'pool')}_pool")(x)
        return x
    if s.block == "inverted":
        return csp_inverted_stage(x, s, name, act)
    # Residual families (timm CrossStage): strided 3x3 downsample, 1x1 expansion, split, blocks, merge.
    if s.stride != 1:
        down = s.out_filters if s.down_growth else channels_of(x)
        x = conv_bn_act(x, down, 3, f"{name}_down", strides=s.stride, groups=s.groups if not s.down_growth else 1,
                        act=act)
    x = conv_bn_act(x, int(round(s.out_filters * s.expand_ratio)), 1, f"{name}_expand",
                    act="linear" if s.cross_linear else act)
    return blocks.csp_stage(
        x, lambda p: _residual_path(p, s, channels_of(p), name, act), name, partial_ratio, fusion,
        out_filters=s.out_filters, act=act)


def _image_input(input_tensor, input_shape, default_size, min_size):
    if input_shape is None:
        input_shape = (default_size, default_size, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] is None:
        raise ValueError(f"input_shape must be (height, width, channels) with known channels, got {input_shape}")
    for side in input_shape[:2]:
        if side is not None and side < min_size:
            raise ValueError(f"input_shape {input_shape}: height and width must be at least {min_size}")
    if input_tensor is None:
        return keras.Input(shape=input_shape), None
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape), input_tensor
    return input_tensor, input_tensor


def _source_inputs(tensor):
    get = getattr(keras.utils, "get_source_inputs", None)
    if get is None:  # Keras 3 keeps it in operation_utils
        from keras.src.ops.operation_utils import get_source_inputs as get
    return get(tensor)


def build_model(cfg: ModelCfg, name, include_top=True, weights=None, input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", partial_ratio=None, fusion=None):
    """Build a classifier from its config with the Keras Applications signature."""
    if weights is not None and not (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights)):
        raise ValueError(f"weights must be None or the path of an existing weights file "
                         f"(no pretrained downloads exist), got {weights!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes must be a positive integer, got {classes!r}")
    if cfg.csp and any(s.block == "inverted" for s in cfg.stages) and (partial_ratio, fusion) != (None, None):
        raise ValueError(f"{name}: partial_ratio and fusion do not apply (its CSP stages read one base conv "
                         f"from two paths, as the CSPNet cfg does; there is no channel split)")
    partial_ratio = cfg.partial_ratio if partial_ratio is None else partial_ratio
    fusion = cfg.fusion if fusion is None else fusion
    check_partial_ratio(partial_ratio)
    blocks.check_fusion(fusion)

    img_input, source = _image_input(input_tensor, input_shape, cfg.default_size, cfg.min_size)
    x = build_stem(img_input, cfg)
    for i, stage in enumerate(cfg.stages):
        stage_name = f"conv{i + 2}"
        if cfg.csp and stage.cross_stage:
            x = csp_stage(x, stage, stage_name, cfg.act, partial_ratio, fusion)
        else:
            x = plain_stage(x, stage, stage_name, cfg.act)

    if cfg.head_filters:
        x = conv_bn_act(x, cfg.head_filters, 1, "top", act=cfg.act)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    inputs = _source_inputs(source) if source is not None else img_input
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model
