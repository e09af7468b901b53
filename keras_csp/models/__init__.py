"""Model zoo: CSP classifiers and their plain twins, built by the same code."""
from .zoo import (  # noqa: F401
    CSPDarknet53, CSPDenseNet, CSPDenseNet121, CSPDenseNet169, CSPDenseNet201, CSPMobileNetV2, CSPPeleeNet,
    CSPPeleeNetFusionLast, CSPResNet50, CSPResNeXt50, Darknet53, DenseNet, DenseNet121, DenseNet169, DenseNet201,
    MobileNetV2, PeleeNet, ResNet50, ResNeXt50, YOLOv5CSPDarknet, YOLOv8Backbone)
from .registry import create_model, get_model_fn, list_models, plain_twin_of, register_model  # noqa: F401
