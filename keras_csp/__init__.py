"""keras-csp: Cross Stage Partial networks for Keras, int8 TFLite and fused mobile kernels.

Pipeline: build (`keras_csp.models`) -> train (`keras_csp.train`) -> quantize (`keras_csp.quantize`)
-> fuse (`keras_csp.tflite`) -> run (`keras_csp.runtime`) -> benchmark (`bench/`, `keras-csp bench`).
"""
__version__ = "0.1.0"

from .models import (  # noqa: E402,F401
    CSPDarknet53, CSPDenseNet, CSPDenseNet121, CSPDenseNet169, CSPDenseNet201, CSPPeleeNet, CSPResNet50,
    CSPResNeXt50, Darknet53, DenseNet, DenseNet121, DenseNet169, DenseNet201, PeleeNet, ResNet50, ResNeXt50,
    create_model, list_models)
from . import layers  # noqa: E402,F401
