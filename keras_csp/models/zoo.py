"""The classifier zoo: named CSP models and their plain twins, registered in `registry`.

Every function has the Keras Applications signature (include_top, weights, input_tensor, input_shape,
pooling, classes, classifier_activation) plus `partial_ratio` and `fusion` (CSP models only).
`weights` is None or the path of a weights file: no pretrained weights are downloadable.
"""
from dataclasses import replace

from . import configs as C
from .builder import build_model
from .registry import register_model

def _plain(cfg, name, kwargs):
    for key in ("partial_ratio", "fusion"):
        if kwargs.pop(key, None) is not None:
            raise ValueError(f"{key} applies to CSP models only, not to {name}")
    return build_model(cfg, name, **kwargs)


# --- DenseNet family ---------------------------------------------------------------------------

def CSPDenseNet(blocks=C.DENSENET_BLOCKS[121], growth_rate=32, name="cspdensenet", **kwargs):
    """CSPDenseNet with any block counts (default: 121 layers' (6, 12, 24, 16))."""
    _check_blocks(blocks, growth_rate)
    return build_model(C.densenet_cfg(tuple(blocks), growth_rate, csp=True), name, **kwargs)


def DenseNet(blocks=C.DENSENET_BLOCKS[121], growth_rate=32, name="densenet", **kwargs):
    _check_blocks(blocks, growth_rate)
    return _plain(C.densenet_cfg(tuple(blocks), growth_rate), name, kwargs)


def _check_blocks(blocks, growth_rate):
    if not blocks or any(int(b) < 1 for b in blocks):
        raise ValueError(f"blocks must be a non-empty sequence of positive layer counts, got {blocks!r}")
    if int(growth_rate) < 1:
        raise ValueError(f"growth_rate must be positive, got {growth_rate!r}")


def _dense_pair(depth):
    blocks = C.DENSENET_BLOCKS[depth]

    @register_model(f"cspdensenet{depth}", plain_twin=f"densenet{depth}")
    def csp(**kwargs):
        return CSPDenseNet(blocks, name=f"cspdensenet{depth}", **kwargs)

    @register_model(f"densenet{depth}")
    def plain(**kwargs):
        return DenseNet(blocks, name=f"densenet{depth}", **kwargs)

    csp.__doc__ = f"CSPDenseNet-{depth}: DenseNet-{depth} blocks {blocks} as partial dense blocks."
    plain.__doc__ = f"DenseNet-{depth} (conv-BN-ReLU ordering), the plain twin of CSPDenseNet-{depth}."
    return csp, plain


CSPDenseNet121, DenseNet121 = _dense_pair(121)
CSPDenseNet169, DenseNet169 = _dense_pair(169)
CSPDenseNet201, DenseNet201 = _dense_pair(201)


# --- Residual families and PeleeNet -----------------------------------------------------------

def _pair(csp_name, plain_name, csp_cfg, plain_cfg):
    @register_model(csp_name, plain_twin=plain_name)
    def csp(**kwargs):
        return build_model(csp_cfg, csp_name, **kwargs)

    @register_model(plain_name)
    def plain(**kwargs):
        return _plain(plain_cfg, plain_name, kwargs)

    csp.__doc__ = f"{csp_name}: CSP twin of {plain_name}. {csp_cfg.notes}"
    plain.__doc__ = f"{plain_name}: plain twin of {csp_name}."
    return csp, plain


CSPResNet50, ResNet50 = _pair("cspresnet50", "resnet50", C.CSPRESNET50, C.RESNET50)
CSPResNeXt50, ResNeXt50 = _pair("cspresnext50", "resnext50", C.CSPRESNEXT50, C.RESNEXT50)
CSPDarknet53, Darknet53 = _pair("cspdarknet53", "darknet53", C.CSPDARKNET53, C.DARKNET53)
CSPPeleeNet, PeleeNet = _pair("csppeleenet", "peleenet", C.CSPPELEENET, C.PELEENET)
CSPPeleeNetFusionLast = register_model("csppeleenet_fusion_last", plain_twin="peleenet")(
    lambda **kwargs: build_model(C.CSPPELEENET_FUSION_LAST, "csppeleenet_fusion_last", **kwargs))
CSPPeleeNetFusionLast.__doc__ = ("CSPPeleeNet with one transition after the partial dense block and the concat "
                                 "last: 28 % fewer params and 25 % fewer FLOPs than PeleeNet.")
CSPMobileNetV2, MobileNetV2 = _pair("cspmobilenetv2", "mobilenetv2", C.CSPMOBILENETV2, C.MOBILENETV2)

# Tiny variants: 32x32 inputs, for tests, CI and the demo.
cspdensenet_tiny, densenet_tiny = _pair(
    "cspdensenet_tiny", "densenet_tiny", replace(C.DENSENET_TINY, csp=True),
    C.DENSENET_TINY)
cspresnet_tiny, resnet_tiny = _pair("cspresnet_tiny", "resnet_tiny", C.CSPRESNET_TINY, C.RESNET_TINY)
cspdarknet_tiny, darknet_tiny = _pair("cspdarknet_tiny", "darknet_tiny", C.CSPDARKNET_TINY, C.DARKNET_TINY)
csppeleenet_tiny, peleenet_tiny = _pair("csppeleenet_tiny", "peleenet_tiny", C.CSPPELEENET_TINY, C.PELEENET_TINY)
cspmobilenetv2_tiny, mobilenetv2_tiny = _pair("cspmobilenetv2_tiny", "mobilenetv2_tiny", C.CSPMOBILENETV2_TINY,
                                              C.MOBILENETV2_TINY)


# --- YOLO backbones (no plain twin: their C3 / C2f blocks split by fixed halves) ---------------

def _no_split_arguments(name, kwargs):
    for key in ("partial_ratio", "fusion"):
        if kwargs.pop(key, None) is not None:
            raise ValueError(f"{key} does not apply to {name}: its C3 / C2f blocks split into fixed halves "
                             f"(their `expansion` is 0.5)")
    return kwargs


def YOLOv5CSPDarknet(size="n", width_multiple=None, depth_multiple=None, name="yolov5_cspdarknet", **kwargs):
    """YOLOv5 v6.0+ CSPDarknet backbone (6x6/2 stem, Conv 3x3/2 + C3 stages, SPPF) as a classifier.

    size: "n" (default: widths 16, 32, 64, 128, 256; C3 depths 1, 2, 3, 1), "s", "m", "l" or "x";
    width_multiple / depth_multiple override the size's multipliers.
    """
    cfg = C.yolov5_cfg(size, width_multiple, depth_multiple)
    return build_model(cfg, name, **_no_split_arguments(name, kwargs))


def YOLOv8Backbone(size="n", width_multiple=None, depth_multiple=None, name="yolov8_backbone", **kwargs):
    """YOLOv8 backbone (3x3/2 stem, Conv 3x3/2 + C2f stages, SPPF) as a classifier.

    size: "n" (default: widths 16, 32, 64, 128, 256; C2f depths 1, 2, 2, 1), "s", "m", "l" or "x";
    width_multiple / depth_multiple override the size's multipliers.
    """
    cfg = C.yolov8_cfg(size, width_multiple, depth_multiple)
    return build_model(cfg, name, **_no_split_arguments(name, kwargs))


register_model("yolov5_cspdarknet")(YOLOv5CSPDarknet)
register_model("yolov8_backbone")(YOLOv8Backbone)


@register_model("yolov5_cspdarknet_tiny")
def yolov5_cspdarknet_tiny(**kwargs):
    """Tiny YOLOv5-style backbone for 32x32 inputs: 6x6/2 stem 16, C3 stages 32, 64, 128 (depth 1), SPPF."""
    return build_model(C.YOLOV5_TINY, "yolov5_cspdarknet_tiny", **_no_split_arguments("yolov5_cspdarknet_tiny", kwargs))


@register_model("yolov8_backbone_tiny")
def yolov8_backbone_tiny(**kwargs):
    """Tiny YOLOv8-style backbone for 32x32 inputs: 3x3/2 stem 16, C2f stages 32, 64, 128 (depth 1), SPPF."""
    return build_model(C.YOLOV8_TINY, "yolov8_backbone_tiny", **_no_split_arguments("yolov8_backbone_tiny", kwargs))
