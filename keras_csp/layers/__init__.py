"""CSP building blocks: primitive layers, functional block builders and Layer wrappers."""
from .primitives import ChannelSlice, ChannelSplit, CrossChannelPooling, split_sizes  # noqa: F401
from .wrappers import (  # noqa: F401
    CSPStage, DarknetResidual, DenseBlock, PartialDenseBlock, ResNeXtBottleneck, ResNetBottleneck, Transition)
from . import blocks  # noqa: F401
