"""CSP building blocks: primitive layers, functional block builders and Layer wrappers."""
from .primitives import ChannelSlice, ChannelSplit, CrossChannelPooling, split_sizes  # noqa: F401
from .wrappers import (  # noqa: F401
    C2f, C3, CSPStage, DarknetResidual, DenseBlock, ELAN, PartialDenseBlock, ResNeXtBottleneck, ResNetBottleneck, SPPF,
    Transition)
from . import blocks  # noqa: F401
