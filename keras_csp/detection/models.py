"""One-stage detectors from the CSPNet paper's detection section, built from the zoo's own blocks.

All three share one layout: a PeleeNet-family backbone (the zoo's `build_stem` + stage builders,
keeping the last feature map at each of the three coarsest strides 8/16/32), a neck, and a YOLOv3
head per scale (1x1 conv to A*(5+K) channels, reshaped to (H, W, A, 5+K)):

- `CSPPeleeNetEFM`: CSPPeleeNet backbone + EFM (exact fusion model). Each scale s fuses its own
  level with the two adjacent ones (the finer level s-1 brought down, the coarser level s+1 brought
  up), because an object assigned to scale s is bounded by the fields of view of s-1 and s+1. The
  maps that travel between scales are compressed with cross-channel (maxout) pooling: the finer
  level goes H x W x C -> H/2 x W/2 x C/2 (`CrossChannelPooling(2, spatial_pool=2)`), the coarser
  one is maxout-halved before it is upsampled. `cross_channel_pool=False` builds the same EFM
  without the compression (max pooling / upsampling at full width) for the memory comparison.
- `PeleeNetYOLO`: PeleeNet backbone + YOLOv3 FPN (top-down: 1x1, upsample, concat, the five-conv
  set 1x1 w / 3x3 2w / 1x1 w / 3x3 2w / 1x1 w, then a 3x3 2w conv before each output).
- `PeleeNetPRN`: PeleeNet backbone + partial residual network neck (the same top-down path, but
  each level is one 1x1 reduction and a 1x1 -> 3x3 bottleneck added to only half of the channels
  (a partial residual connection) and a 3x3 w conv before the output).

Outputs are ordered fine to coarse (stride 8, 16, 32). Anchors are (width, height) pairs in input
pixels, one tuple of pairs per scale; when not given, YOLOv3's COCO anchors (defined for 416 x 416)
are scaled to the input size (full models) or the digit-scene anchors are used (tiny models).
"""
import math
from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from ..backend import keras
from ..layers.blocks import channels_of, conv_bn_act
from ..layers.primitives import ChannelSlice, CrossChannelPooling
from ..models import configs as C
from ..models.builder import _image_input, _source_inputs, build_stem, csp_stage, plain_stage
from ..models.registry import register_model

layers = keras.layers

NUM_LEVELS = 3
# YOLOv3 COCO anchors (w, h) in pixels at 416 x 416, fine to coarse.
YOLOV3_ANCHORS = (((10, 13), (16, 30), (33, 23)),
                  ((30, 61), (62, 45), (59, 119)),
                  ((116, 90), (156, 198), (373, 326)))
YOLOV3_SIZE = 416
# Anchors for the digit scenes of `keras_csp.detection.data` at 128 x 128 (ink boxes ~13..39 px wide, 17..46 px tall).
DIGIT_ANCHORS = (((11, 14), (14, 18), (17, 22)),
                 ((20, 26), (24, 31), (28, 36)),
                 ((32, 40), (37, 46), (43, 53)))
DIGIT_SIZE = 128

# Tiny backbones: PELEENET_TINY's stem and blocks with a fourth stage so that strides 8/16/32 exist.
PELEENET_DET_TINY = replace(
    C.PELEENET_TINY,
    stages=C.dense_stages((2, 2, 2, 2), 16, block="pelee", bottleneck_widths=(1, 2, 2, 2), compression=1.0,
                          last_transition=True),
    default_size=DIGIT_SIZE, min_size=32)
CSPPELEENET_DET_TINY = replace(PELEENET_DET_TINY, csp=True, fusion="last")

NECKS = ("efm", "yolo", "prn")
CLASSIFICATION_ONLY = ("include_top", "pooling", "classifier_activation")


@dataclass(frozen=True)
class DetectorInfo:
    """What decoding needs to know about a built detector (attached as `model.detector_info`)."""
    neck: str
    num_classes: int
    anchors: Tuple[Tuple[Tuple[float, float], ...], ...]
    strides: Tuple[int, ...]
    input_size: Tuple[int, int]

    @property
    def num_anchors(self):
        return tuple(len(a) for a in self.anchors)


def scale_anchors(anchors, input_size, reference_size):
    f = float(input_size) / float(reference_size)
    return tuple(tuple((w * f, h * f) for w, h in level) for level in anchors)


def check_num_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def check_anchors(anchors, num_levels=NUM_LEVELS):
    """Validate anchors: `num_levels` non-empty sequences of (width, height) pairs of positive finite pixels."""
    if isinstance(anchors, (str, bytes)) or not hasattr(anchors, "__len__"):
        raise ValueError(f"anchors must be a sequence of {num_levels} per-scale lists of (width, height) pairs, "
                         f"got {anchors!r}")
    if len(anchors) != num_levels:
        raise ValueError(f"anchors must give one list of (width, height) pairs per scale: expected {num_levels} "
                         f"scales (strides 8, 16, 32), got {len(anchors)}")
    out = []
    for i, level in enumerate(anchors):
        if isinstance(level, (str, bytes)) or not hasattr(level, "__len__") or len(level) == 0:
            raise ValueError(f"anchors for scale {i} must be a non-empty list of (width, height) pairs, got {level!r}")
        pairs = []
        for pair in level:
            if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
                raise ValueError(f"anchor {pair!r} at scale {i} is not a (width, height) pair")
            try:
                w, h = float(pair[0]), float(pair[1])
            except (TypeError, ValueError):
                raise ValueError(f"anchor {pair!r} at scale {i} must hold numbers") from None
            if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
                raise ValueError(f"anchor {pair!r} at scale {i}: width and height must be positive and finite")
            pairs.append((w, h))
        out.append(tuple(pairs))
    return tuple(out)


def _stem_stride(stem):
    if stem.kind == "pelee":
        return 4
    return stem.strides * (2 if stem.kind == "conv_pool" else 1)


def _stage_stride(s):
    if s.block in ("dense", "pelee"):
        return 2 if s.pool else 1
    return s.stride


def backbone_pyramid(img, cfg, num_levels=NUM_LEVELS, partial_ratio=None, fusion=None):
    """Run the zoo's stem and stages on `img`; return (strides, features): the last map at each of the
    `num_levels` coarsest strides, fine to coarse."""
    partial_ratio = cfg.partial_ratio if partial_ratio is None else partial_ratio
    fusion = cfg.fusion if fusion is None else fusion
    x = build_stem(img, cfg)
    stride = _stem_stride(cfg.stem)
    feats = {}
    for i, s in enumerate(cfg.stages):
        name = f"conv{i + 2}"
        x = csp_stage(x, s, name, cfg.act, partial_ratio, fusion) if cfg.csp else plain_stage(x, s, name, cfg.act)
        stride *= _stage_stride(s)
        feats[stride] = x
    strides = sorted(feats)[-num_levels:]
    if len(strides) < num_levels:
        raise ValueError(f"the backbone has only {len(strides)} distinct strides, the detector needs {num_levels}")
    return tuple(strides), [feats[s] for s in strides]


# --- necks --------------------------------------------------------------------------------------

def _upsample(x, name):
    return layers.UpSampling2D(2, interpolation="nearest", name=name)(x)


def yolo_neck(feats, strides, widths, act):
    """YOLOv3 FPN. Returns the per-scale head inputs, fine to coarse."""
    outs = [None] * len(feats)
    x = None
    for lvl in reversed(range(len(feats))):
        tag, w = f"yolo_s{strides[lvl]}", widths[lvl]
        f = feats[lvl]
        if x is not None:
            t = conv_bn_act(x, w, 1, f"{tag}_lateral", act=act)
            f = layers.Concatenate(name=f"{tag}_concat")([_upsample(t, f"{tag}_up"), f])
        for j, (c, k) in enumerate(((w, 1), (2 * w, 3), (w, 1), (2 * w, 3), (w, 1))):
            f = conv_bn_act(f, c, k, f"{tag}_set{j + 1}", act=act)
        x = f
        outs[lvl] = conv_bn_act(f, 2 * w, 3, f"{tag}_head", act=act)
    return outs


def prn_neck(feats, strides, widths, act):
    """Partial residual network neck: top-down path; per level a 1x1 reduction to w, then a 1x1 (w/2) ->
    3x3 (w/2) bottleneck whose output is added to the first w/2 channels only (the other half passes)."""
    outs = [None] * len(feats)
    x = None
    for lvl in reversed(range(len(feats))):
        tag, w = f"prn_s{strides[lvl]}", widths[lvl]
        half = w // 2
        f = feats[lvl]
        if x is not None:
            t = conv_bn_act(x, half, 1, f"{tag}_lateral", act=act)
            f = layers.Concatenate(name=f"{tag}_concat")([_upsample(t, f"{tag}_up"), f])
        f = conv_bn_act(f, w, 1, f"{tag}_reduce", act=act)
        y = conv_bn_act(f, half, 1, f"{tag}_res1", act=act)
        y = conv_bn_act(y, half, 3, f"{tag}_res2", act=act)
        added = layers.Add(name=f"{tag}_partial_add")([ChannelSlice(0, half, name=f"{tag}_res_part")(f), y])
        f = layers.Concatenate(name=f"{tag}_partial_concat")(
            [added, ChannelSlice(half, w, name=f"{tag}_res_pass")(f)])
        x = f
        outs[lvl] = conv_bn_act(f, w, 3, f"{tag}_head", act=act)
    return outs


def efm_neck(feats, strides, widths, act, cross_channel_pool=True, pool_size=2):
    """Exact fusion model. Each level: 1x1 lateral to w; scale s concatenates [down(P[s-1]), P[s], up(P[s+1])],
    then a 1x1 fuse (w) and a 3x3 (w) conv. Layers that build the aggregated pyramid are named
    `efm_s{stride}_down`, `efm_s{stride}_up_pool`, `efm_s{stride}_up`, `efm_s{stride}_concat`."""
    n = len(feats)
    lateral = [conv_bn_act(f, widths[i], 1, f"efm_s{strides[i]}_lateral", act=act) for i, f in enumerate(feats)]
    outs = []
    for lvl in range(n):
        tag, w = f"efm_s{strides[lvl]}", widths[lvl]
        parts = []
        if lvl > 0:  # finer level, H x W x C -> H/2 x W/2 x C/pool_size
            src = lateral[lvl - 1]
            if cross_channel_pool:
                parts.append(CrossChannelPooling(pool_size, spatial_pool=2, name=f"{tag}_down")(src))
            else:
                parts.append(layers.MaxPooling2D(2, padding="same", name=f"{tag}_down")(src))
        parts.append(lateral[lvl])
        if lvl < n - 1:  # coarser level, maxout-compressed before it is upsampled
            src = lateral[lvl + 1]
            if cross_channel_pool:
                src = CrossChannelPooling(pool_size, name=f"{tag}_up_pool")(src)
            parts.append(_upsample(src, f"{tag}_up"))
        f = layers.Concatenate(name=f"{tag}_concat")(parts)
        f = conv_bn_act(f, w, 1, f"{tag}_fuse", act=act)
        outs.append(conv_bn_act(f, w, 3, f"{tag}_head", act=act))
    return outs


# --- detector builder -----------------------------------------------------------------------------

def yolo_head(x, num_anchors, num_classes, name):
    grid_h, grid_w = int(x.shape[1]), int(x.shape[2])
    y = layers.Conv2D(num_anchors * (5 + num_classes), 1, use_bias=True, name=f"{name}_conv")(x)
    return layers.Reshape((grid_h, grid_w, num_anchors, 5 + num_classes), name=name)(y)


def _init_head_bias(model, info, prior=0.01):
    """Objectness bias log(p/(1-p)) so that training starts from 'no object' everywhere (as RetinaNet/YOLO)."""
    for stride, na in zip(info.strides, info.num_anchors):
        layer = model.get_layer(f"detect_s{stride}_conv")
        bias = np.zeros(na * (5 + info.num_classes), "float32")
        bias[4::5 + info.num_classes] = math.log(prior / (1 - prior))
        layer.bias.assign(bias)


def build_detector(cfg, neck, name, input_shape=None, input_tensor=None, num_classes=80, anchors=None,
                   neck_widths=(64, 128, 256), weights=None, partial_ratio=None, fusion=None,
                   cross_channel_pool=True, pool_size=2, default_anchors=(YOLOV3_ANCHORS, YOLOV3_SIZE)):
    """Backbone from `cfg` + neck (`efm`, `yolo` or `prn`) + YOLO head per scale."""
    if neck not in NECKS:
        raise ValueError(f"neck must be one of {NECKS}, got {neck!r}")
    num_classes = check_num_classes(num_classes)
    if len(neck_widths) != NUM_LEVELS or any(int(w) < 2 or int(w) % 2 for w in neck_widths):
        raise ValueError(f"neck_widths must be {NUM_LEVELS} even positive widths, got {neck_widths!r}")
    if neck == "efm" and cross_channel_pool and any(int(w) % int(pool_size) for w in neck_widths):
        raise ValueError(f"pool_size={pool_size} must divide every EFM width {tuple(neck_widths)}")
    if not cfg.csp and (partial_ratio is not None or fusion is not None):
        raise ValueError(f"partial_ratio and fusion apply to CSP backbones only, not to {name}")
    img, source = _image_input(input_tensor, input_shape, cfg.default_size, cfg.min_size)
    height, width = (int(d) if d is not None else None for d in img.shape[1:3])
    if height is None or width is None:
        raise ValueError("detectors need a static input height and width (the head reshapes per grid cell)")
    if anchors is None:
        anchors = scale_anchors(default_anchors[0], max(height, width), default_anchors[1])
    anchors = check_anchors(anchors)

    strides, feats = backbone_pyramid(img, cfg, partial_ratio=partial_ratio, fusion=fusion)
    for s in strides:
        if height % s or width % s:
            raise ValueError(f"input {height}x{width} must be divisible by the largest stride {strides[-1]}")
    widths = tuple(int(w) for w in neck_widths)
    if neck == "efm":
        heads = efm_neck(feats, strides, widths, cfg.act, cross_channel_pool, int(pool_size))
    elif neck == "yolo":
        heads = yolo_neck(feats, strides, widths, cfg.act)
    else:
        heads = prn_neck(feats, strides, widths, cfg.act)
    outputs = [yolo_head(h, len(a), num_classes, f"detect_s{s}") for h, a, s in zip(heads, anchors, strides)]
    inputs = _source_inputs(source) if source is not None else img
    model = keras.Model(inputs, outputs, name=name)
    info = DetectorInfo(neck, num_classes, anchors, strides, (height, width))
    _init_head_bias(model, info)
    if weights is not None:
        model.load_weights(weights)
    model.detector_info = info
    return model


def _detector_kwargs(name, kwargs, default_classes):
    """Map the zoo's classifier keyword arguments: `classes` is an alias of `num_classes`; the others
    (include_top, pooling, classifier_activation) are accepted only at values a detector can honour."""
    if "classes" in kwargs:
        classes = kwargs.pop("classes")
        if kwargs.get("num_classes") is not None and kwargs["num_classes"] != classes:
            raise ValueError(f"{name}: give num_classes or classes, not both")
        kwargs["num_classes"] = classes
    if kwargs.get("num_classes") is None:
        kwargs["num_classes"] = default_classes
    for key in CLASSIFICATION_ONLY:
        if key in kwargs:
            value = kwargs.pop(key)
            if value not in (None, True, "softmax") or (key == "include_top" and value is not True):
                raise ValueError(f"{key}={value!r} is a classifier argument; {name} is a detector")
    return kwargs


def CSPPeleeNetEFM(num_classes=None, anchors=None, input_shape=None, neck_widths=(64, 128, 256),
                   cross_channel_pool=True, pool_size=2, name="csppeleenet_efm", **kwargs):
    """CSPPeleeNet backbone + exact fusion model neck with cross-channel pooling + YOLO head (416 x 416)."""
    kwargs = _detector_kwargs(name, dict(kwargs, num_classes=num_classes), 80)
    cfg = replace(C.CSPPELEENET_FUSION_LAST, default_size=416, min_size=32)
    return build_detector(cfg, "efm", name, input_shape=input_shape, anchors=anchors, neck_widths=neck_widths,
                          cross_channel_pool=cross_channel_pool, pool_size=pool_size, **kwargs)


def PeleeNetYOLO(num_classes=None, anchors=None, input_shape=None, neck_widths=(64, 128, 256),
                 name="peleenet_yolo", **kwargs):
    """PeleeNet backbone + YOLOv3 FPN neck + YOLO head (416 x 416)."""
    kwargs = _detector_kwargs(name, dict(kwargs, num_classes=num_classes), 80)
    cfg = replace(C.PELEENET, default_size=416, min_size=32)
    return build_detector(cfg, "yolo", name, input_shape=input_shape, anchors=anchors, neck_widths=neck_widths,
                          **kwargs)


def PeleeNetPRN(num_classes=None, anchors=None, input_shape=None, neck_widths=(64, 128, 256),
                name="peleenet_prn", **kwargs):
    """PeleeNet backbone + partial residual network neck + YOLO head (416 x 416)."""
    kwargs = _detector_kwargs(name, dict(kwargs, num_classes=num_classes), 80)
    cfg = replace(C.PELEENET, default_size=416, min_size=32)
    return build_detector(cfg, "prn", name, input_shape=input_shape, anchors=anchors, neck_widths=neck_widths,
                          **kwargs)


TINY_WIDTHS = (32, 48, 64)


def _tiny(neck, cfg, name):
    def fn(num_classes=None, anchors=None, input_shape=None, neck_widths=TINY_WIDTHS, **kwargs):
        kwargs = _detector_kwargs(name, dict(kwargs, num_classes=num_classes), 10)
        return build_detector(cfg, neck, name, input_shape=input_shape, anchors=anchors, neck_widths=neck_widths,
                              default_anchors=(DIGIT_ANCHORS, DIGIT_SIZE), **kwargs)
    fn.__name__ = name
    fn.__doc__ = (f"Tiny {neck.upper()} detector (PeleeNet-tiny backbone, 128 x 128, 10 digit classes) for tests, "
                  f"the digit-scene demo and training on CPU.")
    return fn


csppeleenet_efm = register_model("csppeleenet_efm")(lambda **kw: CSPPeleeNetEFM(**kw))
peleenet_yolo = register_model("peleenet_yolo")(lambda **kw: PeleeNetYOLO(**kw))
peleenet_prn = register_model("peleenet_prn")(lambda **kw: PeleeNetPRN(**kw))
# Tiny variants are named `<backbone>_tiny_<neck>` (like yolov3-tiny) rather than `*_tiny`: the zoo's
# classifier tests pick every `<classifier>_..._tiny` name as a 10-class classifier.
csppeleenet_tiny_efm = register_model("csppeleenet_tiny_efm")(_tiny("efm", CSPPELEENET_DET_TINY,
                                                                    "csppeleenet_tiny_efm"))
peleenet_tiny_yolo = register_model("peleenet_tiny_yolo")(_tiny("yolo", PELEENET_DET_TINY, "peleenet_tiny_yolo"))
peleenet_tiny_prn = register_model("peleenet_tiny_prn")(_tiny("prn", PELEENET_DET_TINY, "peleenet_tiny_prn"))
csppeleenet_efm.__doc__ = CSPPeleeNetEFM.__doc__
peleenet_yolo.__doc__ = PeleeNetYOLO.__doc__
peleenet_prn.__doc__ = PeleeNetPRN.__doc__

DETECTORS = ("csppeleenet_efm", "peleenet_yolo", "peleenet_prn")
TINY_DETECTORS = ("csppeleenet_tiny_efm", "peleenet_tiny_yolo", "peleenet_tiny_prn")


def detector_info(model):
    info = getattr(model, "detector_info", None)
    if info is None:
        raise ValueError(f"model {model.name!r} was not built by keras_csp.detection (no detector_info)")
    return info
