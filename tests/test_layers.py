import numpy as np
import pytest

from keras_csp.backend import keras
from keras_csp.layers import (CSPStage, ChannelSlice, ChannelSplit, CrossChannelPooling, DarknetResidual, DenseBlock,
                              PartialDenseBlock, ResNeXtBottleneck, ResNetBottleneck, Transition, split_sizes)
from keras_csp.layers import blocks


def test_split_sizes():
    assert split_sizes(64, 0.5) == (32, 32)
    assert split_sizes(64, 0.25) == (48, 16)
    assert split_sizes(3, 0.5) == (1, 2)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.5, 1.5, "half", None])
def test_partial_ratio_out_of_range(ratio):
    with pytest.raises(ValueError, match="partial_ratio"):
        split_sizes(64, ratio)


def test_channels_that_do_not_split():
    with pytest.raises(ValueError, match="partial_ratio"):
        split_sizes(2, 0.1)  # round(0.2) = 0 channels for the block


def test_channel_split_values():
    x = np.arange(2 * 3 * 3 * 8, dtype="float32").reshape(2, 3, 3, 8)
    skip, part = ChannelSplit(0.25)(x)
    np.testing.assert_array_equal(np.asarray(skip), x[..., :6])
    np.testing.assert_array_equal(np.asarray(part), x[..., 6:])
    np.testing.assert_array_equal(np.asarray(ChannelSlice(2, 5)(x)), x[..., 2:5])


def test_channel_slice_validates():
    with pytest.raises(ValueError):
        ChannelSlice(4, 4)
    with pytest.raises(ValueError, match="exceeds"):
        ChannelSlice(0, 9)(keras.Input((4, 4, 8)))


def test_cross_channel_pooling_is_maxout():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 4, 4, 6)).astype("float32")
    y = np.asarray(CrossChannelPooling(2)(x))
    np.testing.assert_array_equal(y, np.maximum(x[..., :3], x[..., 3:]))
    y3 = np.asarray(CrossChannelPooling(3)(x))
    np.testing.assert_array_equal(y3, np.max(np.stack([x[..., :2], x[..., 2:4], x[..., 4:]]), axis=0))
    y_sp = CrossChannelPooling(2, spatial_pool=2)(x)
    assert tuple(y_sp.shape) == (1, 2, 2, 3)  # H x W x C -> H/2 x W/2 x C/2


def test_cross_channel_pooling_bad_channels():
    with pytest.raises(ValueError, match="pool_size"):
        CrossChannelPooling(4)(keras.Input((4, 4, 6)))


@pytest.mark.parametrize("fusion, channels", [("first", 24), ("last", 8 + 6), ("both", 24)])
def test_csp_stage_fusion_widths(fusion, channels):
    # 16 input channels, 8 skip / 8 dense: dense block (2 layers, growth 4) -> 16 channels.
    x = keras.Input((8, 8, 16))
    y = blocks.csp_stage(x, lambda p: blocks.dense_block(p, 2, 4, "d"), "s", 0.5, fusion, out_filters=24,
                         partial_transition_filters=6)
    assert y.shape[-1] == channels
    names = [layer.name for layer in keras.Model(x, y).layers]
    assert ("s_partial_transition_conv" in names) == (fusion in ("last", "both"))
    assert ("s_transition_conv" in names) == (fusion in ("first", "both"))


def test_unknown_fusion():
    with pytest.raises(ValueError, match="fusion"):
        blocks.csp_stage(keras.Input((8, 8, 16)), lambda p: p, "s", 0.5, "middle")
    with pytest.raises(ValueError, match="fusion"):
        CSPStage(fusion="middle")


@pytest.mark.parametrize("layer", [
    CSPStage("dense", depth=2, growth_rate=8),
    CSPStage("resnet", depth=1, fusion="first", partial_ratio=0.25),
    CSPStage("resnext", depth=1, groups=4),
    CSPStage("darknet", depth=2, fusion="last"),
    CSPStage("pelee", depth=1, growth_rate=8),
    PartialDenseBlock(depth=2, growth_rate=8),
    DenseBlock(2, growth_rate=8),
    Transition(16),
    ResNetBottleneck(32, strides=2),
    ResNeXtBottleneck(32, groups=4),
    DarknetResidual(),
], ids=lambda layer: type(layer).__name__)
def test_wrapper_layers_roundtrip(layer, tmp_path):
    inputs = keras.Input((8, 8, 32))
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 32)).astype("float32")
    before = model.predict(x, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-5, atol=1e-5)
    assert type(loaded.layers[1]).__name__ == type(layer).__name__


def test_resnext_groups_must_divide():
    with pytest.raises(ValueError, match="groups"):
        keras.Model(*(lambda i: (i, CSPStage("resnext", depth=1, groups=5)(i)))(keras.Input((4, 4, 32))))
