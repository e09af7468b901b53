"""Pick the Keras flavour once: Keras 3 by default, tf_keras (Keras 2) when TF_USE_LEGACY_KERAS is set.

tensorflow-model-optimization (QAT) only works with tf_keras, and TensorFlow reads
TF_USE_LEGACY_KERAS when it is imported, so the choice is made per process.
"""
import os

LEGACY = os.environ.get("TF_USE_LEGACY_KERAS", "0").strip().lower() in ("1", "true", "yes")

if LEGACY:
    import tf_keras as keras  # noqa: F401
else:
    import keras  # noqa: F401

KERAS_3 = not LEGACY


def register(cls):
    """Register a class for (de)serialization under the `keras_csp` package, in either flavour."""
    return keras.utils.register_keras_serializable(package="keras_csp")(cls)


def leaky_relu(alpha, name):
    """LeakyReLU layer; its slope argument was renamed between Keras 2 and 3."""
    if KERAS_3:
        return keras.layers.LeakyReLU(negative_slope=alpha, name=name)
    return keras.layers.LeakyReLU(alpha=alpha, name=name)
