"""keras-csp: Cross Stage Partial networks for Keras, int8 TFLite and fused mobile kernels.

Pipeline: build (`keras_csp.models`) -> train (`keras_csp.train`) -> quantize (`keras_csp.quantize`)
-> fuse (`keras_csp.tflite`) -> run (`keras_csp.runtime`) -> benchmark (`keras_csp.benchmark`);
the command line is `keras_csp.cli`.

The model functions below load on first use (PEP 562), so importing the package (and running
`keras-csp --help`, or a command that needs no Keras) does not import TensorFlow.
"""
__version__ = "0.1.0"

_MODEL_EXPORTS = (
    "CSPDarknet53", "CSPDenseNet", "CSPDenseNet121", "CSPDenseNet169", "CSPDenseNet201", "CSPMobileNetV2",
    "CSPPeleeNet", "CSPPeleeNetFusionLast", "CSPResNet50", "CSPResNeXt50", "Darknet53", "DenseNet", "DenseNet121",
    "DenseNet169", "DenseNet201", "MobileNetV2", "PeleeNet", "ResNet50", "ResNeXt50", "YOLOv5CSPDarknet",
    "YOLOv8Backbone", "create_model", "list_models")

__all__ = list(_MODEL_EXPORTS) + ["delegate", "layers", "models", "detection", "__version__"]


def __getattr__(name):
    if name in _MODEL_EXPORTS:
        from . import models
        return getattr(models, name)
    if name == "delegate":  # keras_csp.delegate(): the fused ops in the stock LiteRT Interpreter
        from .litert_delegate import delegate
        return delegate
    if name in ("layers", "models", "detection"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
