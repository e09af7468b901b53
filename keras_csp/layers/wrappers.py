"""Blocks as Layer objects, for user code that composes layers rather than functions.

Each wraps the functional builder from `blocks.py` in an inner functional Model created at build
time, so there is exactly one implementation of each block. The model zoo calls the functions
directly instead: a flat graph of standard layers is what quantization-aware training needs.
"""
from ..backend import keras, register
from . import blocks
from .primitives import check_partial_ratio

BLOCK_TYPES = ("dense", "pelee", "resnet", "resnext", "darknet")


class _GraphLayer(keras.layers.Layer):
    """A layer whose computation is the functional graph returned by `build_graph(inputs)`."""

    def build(self, input_shape):
        inputs = keras.Input(shape=tuple(input_shape[1:]))
        self.graph = keras.Model(inputs, self.build_graph(inputs), name=f"{self.name}_graph")
        super().build(input_shape)

    def call(self, inputs, training=None):
        return self.graph(inputs, training=training)

    def build_graph(self, inputs):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), **self._args}


@register
class DenseBlock(_GraphLayer):
    """`depth` DenseNet layers (1x1 bottleneck, 3x3 growth) with concatenation: the partial dense block
    when it is given one part of a CSP split."""

    def __init__(self, depth, growth_rate=32, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self._args = dict(depth=int(depth), growth_rate=int(growth_rate), activation=activation)

    def build_graph(self, x):
        a = self._args
        return blocks.dense_block(x, a["depth"], a["growth_rate"], "dense", act=a["activation"])


@register
class Transition(_GraphLayer):
    """1x1 conv -> BN -> activation, optionally followed by 2x2 average pooling."""

    def __init__(self, filters, pool=True, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self._args = dict(filters=int(filters), pool=bool(pool), activation=activation)

    def build_graph(self, x):
        a = self._args
        return blocks.transition(x, a["filters"], "transition", pool=a["pool"], act=a["activation"])


@register
class ResNetBottleneck(_GraphLayer):
    def __init__(self, filters, strides=1, mid_filters=None, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self._args = dict(filters=int(filters), strides=int(strides), mid_filters=mid_filters,
                          activation=activation)

    def build_graph(self, x):
        a = self._args
        return blocks.bottleneck_block(x, a["filters"], "block", mid_filters=a["mid_filters"],
                                       strides=a["strides"], act=a["activation"])


@register
class ResNeXtBottleneck(_GraphLayer):
    def __init__(self, filters, groups=32, strides=1, mid_filters=None, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self._args = dict(filters=int(filters), groups=int(groups), strides=int(strides),
                          mid_filters=mid_filters, activation=activation)

    def build_graph(self, x):
        a = self._args
        mid = a["mid_filters"] or a["filters"] // 2
        if mid % a["groups"]:
            raise ValueError(f"groups={a['groups']} does not divide the {mid} bottleneck channels")
        return blocks.bottleneck_block(x, a["filters"], "block", mid_filters=mid, strides=a["strides"],
                                       groups=a["groups"], act=a["activation"])


@register
class DarknetResidual(_GraphLayer):
    def __init__(self, mid_filters=None, activation="leaky", **kwargs):
        super().__init__(**kwargs)
        self._args = dict(mid_filters=mid_filters, activation=activation)

    def build_graph(self, x):
        a = self._args
        return blocks.dark_block(x, blocks.channels_of(x), "block", mid_filters=a["mid_filters"],
                                 act=a["activation"])


@register
class CSPStage(_GraphLayer):
    """A Cross Stage Partial stage around `depth` blocks of `block` type.

    partial_ratio: share of the input channels routed through the blocks (the rest skips them).
    fusion: "first" | "last" | "both", as in the CSPNet paper (see `blocks.csp_stage`).
    """

    def __init__(self, block="dense", depth=2, partial_ratio=0.5, fusion="both", out_filters=None,
                 growth_rate=32, groups=32, activation=None, **kwargs):
        super().__init__(**kwargs)
        check_partial_ratio(partial_ratio)
        blocks.check_fusion(fusion)
        if block not in BLOCK_TYPES:
            raise ValueError(f"block must be one of {BLOCK_TYPES}, got {block!r}")
        if int(depth) < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        activation = activation or ("leaky" if block == "darknet" else "relu")
        self._args = dict(block=block, depth=int(depth), partial_ratio=float(partial_ratio), fusion=fusion,
                          out_filters=out_filters, growth_rate=int(growth_rate), groups=int(groups),
                          activation=activation)

    def build_graph(self, x):
        a = self._args
        act, depth = a["activation"], a["depth"]

        def block_fn(part):
            c = blocks.channels_of(part)
            for i in range(depth):
                name = f"block{i + 1}"
                if a["block"] == "dense":
                    part = blocks.dense_layer(part, a["growth_rate"], name, act=act)
                elif a["block"] == "pelee":
                    part = blocks.two_way_dense_layer(part, a["growth_rate"], 2, name, act=act)
                elif a["block"] == "resnet":
                    part = blocks.bottleneck_block(part, c, name, mid_filters=max(1, c // 2), act=act)
                elif a["block"] == "resnext":
                    if c % a["groups"]:
                        raise ValueError(f"groups={a['groups']} does not divide the {c} channels of the block path")
                    part = blocks.bottleneck_block(part, c, name, mid_filters=c, groups=a["groups"], act=act)
                else:
                    part = blocks.dark_block(part, c, name, act=act)
            return part

        return blocks.csp_stage(x, block_fn, "stage", partial_ratio=a["partial_ratio"], fusion=a["fusion"],
                                out_filters=a["out_filters"], act=act)


@register
class PartialDenseBlock(CSPStage):
    """CSPDenseNet's partial dense block: a CSP stage around DenseNet layers."""

    def __init__(self, depth=2, growth_rate=32, partial_ratio=0.5, fusion="both", out_filters=None, **kwargs):
        kwargs.pop("block", None)
        super().__init__(block="dense", depth=depth, partial_ratio=partial_ratio, fusion=fusion,
                         out_filters=out_filters, growth_rate=growth_rate, **kwargs)


# --- YOLO family -------------------------------------------------------------------------------

def _check_depth(depth):
    if int(depth) < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    return int(depth)


class _YoloCSP(_GraphLayer):
    """C3 and C2f share their arguments; `block_fn` is the block function, `prefix` its layer names."""
    block_fn = staticmethod(lambda *a, **k: None)
    prefix = ""

    def __init__(self, filters, depth=1, shortcut=True, expansion=0.5, activation="silu", **kwargs):
        super().__init__(**kwargs)
        self._args = dict(filters=int(filters), depth=_check_depth(depth), shortcut=bool(shortcut),
                          expansion=float(expansion), activation=activation)

    def build_graph(self, x):
        a = self._args
        return self.block_fn(x, a["filters"], a["depth"], self.prefix, shortcut=a["shortcut"],
                             expansion=a["expansion"], act=a["activation"])


@register
class C3(_YoloCSP):
    """YOLOv5's C3: cv1 -> `depth` bottlenecks, beside cv2, concatenated, cv3 (see `blocks.c3`)."""
    block_fn = staticmethod(blocks.c3)
    prefix = "c3"


@register
class C2f(_YoloCSP):
    """YOLOv8's C2f: cv1 split in halves, a chain of `depth` bottlenecks, all depth + 2 concatenated, cv2
    (see `blocks.c2f`)."""
    block_fn = staticmethod(blocks.c2f)
    prefix = "c2f"


@register
class ELAN(_GraphLayer):
    """YOLOv7's ELAN: two 1x1 convs, a 3x3 chain taken every `depth` convs, concat, 1x1 transition
    (see `blocks.elan` for the layout)."""

    def __init__(self, filters, depth=2, branches=2, expansion=0.5, activation="silu", **kwargs):
        super().__init__(**kwargs)
        if int(branches) < 1:
            raise ValueError(f"branches must be >= 1, got {branches}")
        self._args = dict(filters=int(filters), depth=_check_depth(depth), branches=int(branches),
                          expansion=float(expansion), activation=activation)

    def build_graph(self, x):
        a = self._args
        return blocks.elan(x, a["filters"], "elan", depth=a["depth"], branches=a["branches"],
                           expansion=a["expansion"], act=a["activation"])


@register
class SPPF(_GraphLayer):
    """YOLOv5/v8's SPPF: 1x1 to half width, three chained stride-1 max pools, concat of all four, 1x1."""

    def __init__(self, filters, pool_size=5, activation="silu", **kwargs):
        super().__init__(**kwargs)
        if int(pool_size) < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self._args = dict(filters=int(filters), pool_size=int(pool_size), activation=activation)

    def build_graph(self, x):
        a = self._args
        return blocks.sppf(x, a["filters"], "sppf", pool_size=a["pool_size"], act=a["activation"])
