"""keras-csp: Cross Stage Partial networks for Keras, int8 TFLite and fused mobile kernels.

Pipeline: build (`keras_csp.models`) -> train (`keras_csp.train`) -> quantize (`keras_csp.quantize`)
-> fuse (`keras_csp.tflite`) -> run (`keras_csp.runtime`) -> benchmark (`bench/`, `keras-csp bench`).
"""
__version__ = "0.1.0"
