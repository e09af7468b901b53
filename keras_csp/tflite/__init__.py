"""TFLite flatbuffer tools: the CSP rewrite pass (`fuse`) and graph helpers."""
from .fuse import FuseError, FuseVerificationError, fuse  # noqa: F401

__all__ = ["fuse", "FuseError", "FuseVerificationError"]
