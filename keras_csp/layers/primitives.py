"""Primitive layers with their own math: channel slicing/splitting and cross-channel (maxout) pooling.

They are real Layer subclasses (no `Lambda`) so they serialize, and so quantization-aware training
can give them a QuantizeConfig: all of them only select or compare values, never rescale them.
"""
from ..backend import keras, register

ops = keras.ops if hasattr(keras, "ops") else None


def split_sizes(channels, partial_ratio):
    """Channels (skip, part) of a CSP split: `part` = round(channels * partial_ratio) goes through the block.

    Raises ValueError naming `partial_ratio` when it is outside (0, 1) or leaves one side empty.
    """
    check_partial_ratio(partial_ratio)
    channels = int(channels)
    part = int(round(channels * partial_ratio))
    if not 0 < part < channels:
        raise ValueError(
            f"partial_ratio={partial_ratio} cannot split {channels} channels into two non-empty parts "
            f"(the block part would get {part} of {channels})")
    return channels - part, part


def check_partial_ratio(partial_ratio):
    if not isinstance(partial_ratio, (int, float)) or not 0.0 < float(partial_ratio) < 1.0:
        raise ValueError(f"partial_ratio must be a number in the open interval (0, 1), got {partial_ratio!r}")


def _channel_slice(x, start, stop):
    return x[..., start:stop]


@register
class ChannelSlice(keras.layers.Layer):
    """Channels [start, stop) of an NHWC tensor (converted to one STRIDED_SLICE op in TFLite)."""

    def __init__(self, start, stop, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= int(start) < int(stop):
            raise ValueError(f"ChannelSlice needs 0 <= start < stop, got start={start}, stop={stop}")
        self.start = int(start)
        self.stop = int(stop)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and self.stop > channels:
            raise ValueError(f"ChannelSlice stop={self.stop} exceeds the {channels} input channels")
        super().build(input_shape)

    def call(self, inputs):
        return _channel_slice(inputs, self.start, self.stop)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.stop - self.start,)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@register
class ChannelSplit(keras.layers.Layer):
    """Split channels into [skip, part] by a partial ratio: `part` (the last channels) feeds the block.

    Returns two tensors. The model zoo uses two `ChannelSlice` layers instead (single-output layers
    keep QAT and the graph rewrite simple); this layer is the convenient form for user code.
    """

    def __init__(self, partial_ratio=0.5, **kwargs):
        super().__init__(**kwargs)
        check_partial_ratio(partial_ratio)
        self.partial_ratio = float(partial_ratio)

    def build(self, input_shape):
        self.skip_channels, self.part_channels = split_sizes(input_shape[-1], self.partial_ratio)
        super().build(input_shape)

    def call(self, inputs):
        skip = int(inputs.shape[-1]) - int(round(int(inputs.shape[-1]) * self.partial_ratio))
        return [_channel_slice(inputs, 0, skip), _channel_slice(inputs, skip, int(inputs.shape[-1]))]

    def compute_output_shape(self, input_shape):
        skip, part = split_sizes(input_shape[-1], self.partial_ratio)
        return [tuple(input_shape[:-1]) + (skip,), tuple(input_shape[:-1]) + (part,)]

    def get_config(self):
        return {**super().get_config(), "partial_ratio": self.partial_ratio}


@register
class CrossChannelPooling(keras.layers.Layer):
    """Maxout over channel groups: C channels -> C / pool_size, the max over `pool_size` channel chunks.

    Chunk i holds channels [i*C/k, (i+1)*C/k); the output is their element-wise maximum, which is
    maxout up to a fixed channel permutation and maps to TFLite SLICE + MAXIMUM ops that keep the
    input's int8 scale. With `spatial_pool` > 1 a max pooling of that size follows (the EFM's
    H x W x C -> H/2 x W/2 x C/2 compression).
    """

    def __init__(self, pool_size=2, spatial_pool=1, **kwargs):
        super().__init__(**kwargs)
        if int(pool_size) < 2:
            raise ValueError(f"CrossChannelPooling pool_size must be >= 2, got {pool_size}")
        if int(spatial_pool) < 1:
            raise ValueError(f"CrossChannelPooling spatial_pool must be >= 1, got {spatial_pool}")
        self.pool_size = int(pool_size)
        self.spatial_pool = int(spatial_pool)
        self._pool = (keras.layers.MaxPooling2D(self.spatial_pool, padding="same")
                      if self.spatial_pool > 1 else None)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and channels % self.pool_size:
            raise ValueError(
                f"CrossChannelPooling pool_size={self.pool_size} does not divide the {channels} input channels")
        super().build(input_shape)

    def call(self, inputs):
        group = int(inputs.shape[-1]) // self.pool_size
        out = _channel_slice(inputs, 0, group)
        for i in range(1, self.pool_size):
            chunk = _channel_slice(inputs, i * group, (i + 1) * group)
            out = ops.maximum(out, chunk) if ops is not None else keras.backend.maximum(out, chunk)
        if self._pool is not None:
            out = self._pool(out)
        return out

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[-1] = shape[-1] // self.pool_size
        if self.spatial_pool > 1:
            for axis in (1, 2):
                if shape[axis] is not None:
                    shape[axis] = -(-shape[axis] // self.spatial_pool)
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "spatial_pool": self.spatial_pool}
