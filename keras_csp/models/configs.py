"""Small dataclass configs for every classifier in the zoo (the pattern of timm's cspnet.py).

A CSP model and its plain twin share the stem, the block functions and the stage layout; the
config says which stage builder (plain or CSP) to use. Widths and depths follow the published
architectures; where they differ per variant it is noted next to the config.
"""
import math
from dataclasses import dataclass, field, replace
from typing import Optional, Tuple


@dataclass(frozen=True)
class StemCfg:
    kind: str = "conv_pool"   # "conv_pool": conv + 3x3/2 max pool; "conv": one conv; "pelee": PeleeNet stem block
    filters: int = 64
    kernel_size: int = 7
    strides: int = 2


@dataclass(frozen=True)
class StageCfg:
    block: str                        # "dense" | "pelee" | "bottleneck" | "dark" | "inverted" | "c3" | "c2f"
    depth: int
    # dense / pelee stages: blocks then (transition) then (pool)
    growth_rate: int = 32
    bottleneck_width: float = 4.0     # dense: 1x1 width = 4*growth; pelee: the two-way layer's width multiplier
    transition: bool = True           # a transition conv ends the stage (DenseNet's last stage has none)
    compression: float = 0.5          # transition width = compression * channels
    pool: bool = False                # 2x2 average pooling ends the stage
    partial_transition: str = "block"  # CSP dense: "block" = block output width x compression; "part" = the
                                       # width that entered the block (the block path returns to it)
    cross_stage: bool = True          # False: a CSP model builds this stage plain
    # bottleneck / dark stages: (downsample) then blocks
    out_filters: int = 0
    stride: int = 1
    bottle_ratio: float = 1.0         # bottleneck width = block width * bottle_ratio
    groups: int = 1
    expand_ratio: float = 1.0         # CSP: 1x1 expansion to out_filters * expand_ratio before the split
    down_growth: bool = False         # CSP: the strided 3x3 downsample conv widens to out_filters
    cross_linear: bool = False        # CSP: no activation after the expansion conv
    # inverted-residual (MobileNet-v2) stages: runs of (out_filters, depth) blocks; the first block of
    # the stage is strided; each block expands to input * expand_ratio (1x1), then depthwise x dw_multiplier
    runs: Tuple[Tuple[int, int], ...] = ()
    dw_multiplier: int = 1
    base_filters: int = 0             # CSP: the base 1x1 conv both paths read (0: they read the stage input)
    skip_filters: int = 0             # CSP: skip path width (0: a depthwise conv of the base; fewer: grouped)
    # YOLO stages ("c3" | "c2f"): strided 3x3 conv to out_filters, one C3 / C2f block of `depth`
    # bottlenecks (hidden width out_filters * bottle_ratio), then an SPPF when `sppf` (its pool size)
    shortcut: bool = True
    sppf: int = 0


@dataclass(frozen=True)
class ModelCfg:
    stem: StemCfg
    stages: Tuple[StageCfg, ...]
    csp: bool = False
    act: str = "relu"
    fusion: str = "both"
    partial_ratio: float = 0.5
    head_filters: int = 0             # a 1x1 conv before pooling (MobileNet-v2's 1280), 0 for none
    default_size: int = 224
    min_size: int = 32
    notes: str = field(default="", compare=False)


def dense_stages(blocks, growth_rate=32, block="dense", bottleneck_widths=None, compression=0.5,
                 last_transition=False):
    """Stages of a DenseNet-style network: transition + 2x2 pool after every stage but the last."""
    n = len(blocks)
    widths = bottleneck_widths or (4.0,) * n
    return tuple(
        StageCfg(block=block, depth=d, growth_rate=growth_rate, bottleneck_width=w,
                 transition=(i < n - 1) or last_transition, compression=compression, pool=i < n - 1)
        for i, (d, w) in enumerate(zip(blocks, widths)))


def residual_stages(block, depths, out_filters, strides, bottle_ratio, groups=1, expand_ratio=1.0,
                    down_growth=False, cross_linear=False):
    def per_stage(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * len(depths)

    return tuple(
        StageCfg(block=block, depth=d, out_filters=o, stride=s, bottle_ratio=b, groups=groups,
                 expand_ratio=e, down_growth=down_growth, cross_linear=cross_linear)
        for d, o, s, b, e in zip(depths, out_filters, per_stage(strides), per_stage(bottle_ratio),
                                 per_stage(expand_ratio)))


IMAGENET_STEM = StemCfg("conv_pool", 64, 7, 2)
TINY_STEM = StemCfg("conv", 32, 3, 2)

# DenseNet (Huang et al.): growth 32, bottleneck 4*growth, compression 0.5. CSP variants: the paper's
# partial dense block; default fusion "last" (the CSPNet paper's PeleeNet ablation: fusion last cuts
# the most computation for ~0.1% top-1), partial transition compression 0.5.
DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


def densenet_cfg(blocks, growth_rate=32, csp=False, **kw):
    return ModelCfg(IMAGENET_STEM, dense_stages(blocks, growth_rate), csp=csp, fusion="last", **kw)


# ResNet-50 (v1.5: stride on the 3x3) and ResNeXt-50 32x4d; their CSP twins follow timm's
# cspresnet50 / cspresnext50 (CSPNet darknet cfgs): depths (3, 3, 5, 2), CSPResNet-50 stage widths
# 128..1024 with 2x expansion, CSPResNeXt-50 widths 256..2048, block path = half the channels.
RESNET50 = ModelCfg(IMAGENET_STEM, residual_stages("bottleneck", (3, 4, 6, 3), (256, 512, 1024, 2048),
                                                    (1, 2, 2, 2), 0.25))
CSPRESNET50 = ModelCfg(IMAGENET_STEM, residual_stages("bottleneck", (3, 3, 5, 2), (128, 256, 512, 1024),
                                                       (1, 2, 2, 2), 0.5, expand_ratio=2.0, cross_linear=True),
                       csp=True)
RESNEXT50 = ModelCfg(IMAGENET_STEM, residual_stages("bottleneck", (3, 4, 6, 3), (256, 512, 1024, 2048),
                                                     (1, 2, 2, 2), 0.5, groups=32))
CSPRESNEXT50 = ModelCfg(IMAGENET_STEM, residual_stages("bottleneck", (3, 3, 5, 2), (256, 512, 1024, 2048),
                                                        (1, 2, 2, 2), 1.0, groups=32, cross_linear=True),
                        csp=True)

# Darknet-53 (YOLOv3) and CSPDarknet-53 (timm cspdarknet53 / the CSPNet darknet cfg): stem 3x3 32,
# five stride-2 stages; the first CSP stage expands 2x with half-width bottlenecks. LeakyReLU(0.1).
DARKNET_STEM = StemCfg("conv", 32, 3, 1)
DARKNET53 = ModelCfg(DARKNET_STEM, residual_stages("dark", (1, 2, 8, 8, 4), (64, 128, 256, 512, 1024), 2, 0.5),
                     act="leaky")
CSPDARKNET53 = ModelCfg(DARKNET_STEM, residual_stages("dark", (1, 2, 8, 8, 4), (64, 128, 256, 512, 1024), 2,
                                                      (0.5, 1, 1, 1, 1), expand_ratio=(2.0, 1, 1, 1, 1),
                                                      down_growth=True),
                        csp=True, act="leaky")

# PeleeNet (Wang et al. 2018): stem block 32, two-way dense layers, growth 32, blocks (3, 4, 8, 6),
# bottleneck width multipliers (1, 2, 4, 4), transitions without compression (128, 256, 512, 704).
PELEE_STAGES = dense_stages((3, 4, 8, 6), 32, block="pelee", bottleneck_widths=(1, 2, 4, 4),
                            compression=1.0, last_transition=True)
PELEENET = ModelCfg(StemCfg("pelee", 32), PELEE_STAGES)


def pelee_csp_stages(stages, csp_stages):
    """The paper's CSPPeleeNet: two transitions (CSPNet Fig. 3b), gamma 0.5, and the partial transition
    returning the block path to the width that entered it, on the first `csp_stages` stages.

    The paper publishes no layer table for it (text: two transitions, -13 % computation, +0.2 % top-1;
    README: 2.83M params, 0.888 BFLOPs). Sweeping gamma, fusion, partial-transition width and the CSP
    stages over PeleeNet, this is the one two-transition layout within 3 % of both figures: CSP where
    PeleeNet spends its compute (the 56x56 and 28x28 stages); the 14x14 and 7x7 stages stay plain.
    """
    return tuple(replace(s, partial_transition="part", cross_stage=i < csp_stages) for i, s in enumerate(stages))


CSPPELEENET = ModelCfg(StemCfg("pelee", 32), pelee_csp_stages(PELEE_STAGES, 2), csp=True, fusion="both")
# The lighter fusion-last variant (the paper's "CSP (fusion last)" ablation row, -21 % computation there).
CSPPELEENET_FUSION_LAST = ModelCfg(StemCfg("pelee", 32), PELEE_STAGES, csp=True, fusion="last")

# MobileNet-v2 as the CSPNet repository built it (darknet cfg/mobilenet-v2.cfg): ReLU, every block has
# its 1x1 expansion (the first too, t=1), and the stride moves from the 64-wide stage to the 96-wide
# one (four blocks at 28x28, hence 0.858 BFLOPs rather than the usual 0.6). CSPMobileNet-v2 (cfg/csmobilenet-v2.cfg)
# regroups the blocks into five strided CSP stages: a base 1x1 conv (the first block's expansion) is
# read by a strided 3x3 depthwise skip path and by the block path (strided depthwise x2, project,
# then blocks with 1x1 expansion x3 and depthwise x2), concatenated.
def inverted_stages(runs, strides, expand_ratios):
    return tuple(StageCfg(block="inverted", depth=n, runs=((f, n),), stride=s, expand_ratio=t)
                 for (f, n), s, t in zip(runs, strides, expand_ratios))


MOBILENETV2 = ModelCfg(StemCfg("conv", 32, 3, 2),
                       inverted_stages(((16, 1), (24, 2), (32, 3), (64, 4), (96, 3), (160, 3), (320, 1)),
                                       (1, 2, 2, 1, 2, 2, 1), (1, 6, 6, 6, 6, 6, 6)),
                       head_filters=1280)


def csp_inverted_stage_cfg(runs, base_filters, stride=2, skip_filters=0, expand_ratio=3, dw_multiplier=2):
    return StageCfg(block="inverted", depth=sum(n for _, n in runs), runs=tuple(runs), stride=stride,
                    expand_ratio=expand_ratio, dw_multiplier=dw_multiplier, base_filters=base_filters,
                    skip_filters=skip_filters)


CSPMOBILENETV2 = ModelCfg(StemCfg("conv", 32, 3, 2), (
    # stage 1 reads the stem directly: a grouped 3x3 (pairs of channels -> 16) beside a t=1 block
    csp_inverted_stage_cfg(((16, 1),), 0, stride=1, skip_filters=16, expand_ratio=1, dw_multiplier=1),
    csp_inverted_stage_cfg(((24, 2),), 48),
    csp_inverted_stage_cfg(((32, 3), (64, 4)), 72),
    csp_inverted_stage_cfg(((96, 3),), 192),
    csp_inverted_stage_cfg(((160, 3), (320, 1)), 288)), csp=True, head_filters=640)

# YOLO backbones, scaled as the YAML files' `depth_multiple` / `width_multiple` (and ultralytics'
# `max_channels`) scale them: a stage of n > 1 blocks gets max(round(n * d), 1); a width c becomes
# the multiple of 8 at or above min(c, max_channels) * w. SiLU everywhere, shortcuts in the backbone.
# YOLOv5 v6.0+ (models/yolov5*.yaml): Conv 6x6/2 (p2) 64, then per stage Conv 3x3/2 + C3,
#   C3 x (3, 6, 9, 3), SPPF(5) after the last stage. Our 6x6/2 conv pads "same": 2 pixels each side
#   on even inputs, YOLOv5's p=2.
# YOLOv8 (ultralytics cfg/models/v8/yolov8.yaml): Conv 3x3/2 64, then per stage Conv 3x3/2 + C2f,
#   C2f x (3, 6, 6, 3), SPPF(5) after the last stage.
YOLO_WIDTHS = (64, 128, 256, 512, 1024)          # the stem, then the four stride-2 stages
YOLOV5_DEPTHS = (3, 6, 9, 3)
YOLOV8_DEPTHS = (3, 6, 6, 3)
# size: (depth_multiple, width_multiple, max_channels)
YOLOV5_SCALES = {"n": (0.33, 0.25, 1024), "s": (0.33, 0.50, 1024), "m": (0.67, 0.75, 1024),
                 "l": (1.00, 1.00, 1024), "x": (1.33, 1.25, 1024)}
YOLOV8_SCALES = {"n": (0.33, 0.25, 1024), "s": (0.33, 0.50, 1024), "m": (0.67, 0.75, 768),
                 "l": (1.00, 1.00, 512), "x": (1.00, 1.25, 512)}


def yolo_width(channels, width_multiple, max_channels=1024):
    return int(math.ceil(min(channels, max_channels) * width_multiple / 8) * 8)


def yolo_depth(n, depth_multiple):
    return max(round(n * depth_multiple), 1) if n > 1 else n


def yolo_stages(block, widths, depths, pool_size=5):
    """One stride-2 C3/C2f stage per (width, depth); an SPPF ends the last one."""
    n = len(widths)
    return tuple(StageCfg(block=block, depth=d, out_filters=w, stride=2, bottle_ratio=0.5, shortcut=True,
                          sppf=pool_size if i == n - 1 else 0)
                 for i, (w, d) in enumerate(zip(widths, depths)))


def yolo_cfg(block, scales, depths, size="n", width_multiple=None, depth_multiple=None, stem_kernel=3):
    if size not in scales:
        raise ValueError(f"size must be one of {tuple(scales)}, got {size!r}")
    d, w, max_channels = scales[size]
    d = d if depth_multiple is None else float(depth_multiple)
    w = w if width_multiple is None else float(width_multiple)
    if not (d > 0 and w > 0):
        raise ValueError(f"width_multiple and depth_multiple must be positive, got {w!r} and {d!r}")
    widths = [yolo_width(c, w, max_channels) for c in YOLO_WIDTHS]
    return ModelCfg(StemCfg("conv", widths[0], stem_kernel, 2),
                    yolo_stages(block, widths[1:], [yolo_depth(n, d) for n in depths]),
                    act="silu", default_size=320, min_size=32)


def yolov5_cfg(size="n", width_multiple=None, depth_multiple=None):
    return yolo_cfg("c3", YOLOV5_SCALES, YOLOV5_DEPTHS, size, width_multiple, depth_multiple, stem_kernel=6)


def yolov8_cfg(size="n", width_multiple=None, depth_multiple=None):
    return yolo_cfg("c2f", YOLOV8_SCALES, YOLOV8_DEPTHS, size, width_multiple, depth_multiple)


# Tiny variants for tests and demos at 32x32 (e.g. scikit-learn's digits, upsampled).
TINY = dict(default_size=32, min_size=16)
DENSENET_TINY = ModelCfg(TINY_STEM, dense_stages((2, 2, 2), 16), fusion="last", **TINY)
# As CSPResNet-50 vs ResNet-50 (13 vs 16 blocks, half-width stages with 2x expansion), the CSP tiny
# ResNet has one block fewer per stage than its plain twin.
RESNET_TINY = ModelCfg(TINY_STEM, residual_stages("bottleneck", (3, 3), (64, 128), (1, 2), 0.25), **TINY)
CSPRESNET_TINY = ModelCfg(TINY_STEM, residual_stages("bottleneck", (2, 2), (32, 64), (1, 2), 0.5,
                                                     expand_ratio=2.0, cross_linear=True), csp=True, **TINY)
DARKNET_TINY = ModelCfg(StemCfg("conv", 16, 3, 1), residual_stages("dark", (2, 2, 2), (32, 64, 128), 2, 0.5),
                        act="leaky", **TINY)
CSPDARKNET_TINY = ModelCfg(StemCfg("conv", 16, 3, 1),
                           residual_stages("dark", (2, 2, 2), (32, 64, 128), 2, (0.5, 1, 1),
                                           expand_ratio=(2.0, 1, 1), down_growth=True),
                           csp=True, act="leaky", **TINY)
PELEENET_TINY = ModelCfg(StemCfg("pelee", 16), dense_stages((2, 2, 2), 16, block="pelee",
                                                             bottleneck_widths=(1, 2, 2), compression=1.0,
                                                             last_transition=True), fusion="last", **TINY)
CSPPELEENET_TINY = replace(PELEENET_TINY, stages=pelee_csp_stages(PELEENET_TINY.stages, 2), csp=True, fusion="both")
MOBILENETV2_TINY = ModelCfg(StemCfg("conv", 16, 3, 2), inverted_stages(((8, 1), (16, 2), (24, 2)), (1, 2, 2), (1, 6, 6)),
                            head_filters=128, **TINY)
CSPMOBILENETV2_TINY = ModelCfg(StemCfg("conv", 16, 3, 2), (
    csp_inverted_stage_cfg(((8, 1),), 0, stride=1, skip_filters=8, expand_ratio=1, dw_multiplier=1),
    csp_inverted_stage_cfg(((16, 1),), 24),
    csp_inverted_stage_cfg(((24, 2),), 48)), csp=True, head_filters=128, **TINY)
# The YOLO backbones' tiny variants: the n models' stem and first three stages (16; 32, 64, 128), one
# bottleneck each, SPPF on the 2x2 map of a 32x32 input.
YOLOV5_TINY = ModelCfg(StemCfg("conv", 16, 6, 2), yolo_stages("c3", (32, 64, 128), (1, 1, 1)), act="silu", **TINY)
YOLOV8_TINY = ModelCfg(StemCfg("conv", 16, 3, 2), yolo_stages("c2f", (32, 64, 128), (1, 1, 1)), act="silu", **TINY)
