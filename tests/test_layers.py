import numpy as np
import pytest

from keras_csp.backend import keras
from keras_csp.layers import (C2f, C3, CSPStage, ChannelSlice, ChannelSplit, CrossChannelPooling, DarknetResidual,
                              DenseBlock, ELAN, PartialDenseBlock, ResNeXtBottleneck, ResNetBottleneck, SPPF,
                              Transition, split_sizes)
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
    C3(24, depth=2),
    C2f(24, depth=2, shortcut=False),
    ELAN(24, depth=1),
    SPPF(24, pool_size=3),
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


# --- YOLO family -------------------------------------------------------------------------------

def _sources(model, name):
    """Names of the layers feeding `name`, in input order."""
    inputs = model.get_layer(name).input
    return [t._keras_history.operation.name for t in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]


def test_silu_activation():
    x = keras.Input((4, 4, 3))
    y = blocks.activation(x, "silu", "a")
    model = keras.Model(x, y)
    assert [layer.name for layer in model.layers[1:]] == ["a_silu"]
    v = np.linspace(-6, 6, 48, dtype="float32").reshape(1, 4, 4, 3)
    np.testing.assert_allclose(model.predict(v, verbose=0), v / (1 + np.exp(-v)), rtol=1e-5, atol=1e-6)
    assert "silu" in blocks.ACTIVATIONS
    with pytest.raises(ValueError, match="silu"):
        blocks.activation(x, "gelu", "a")


def test_c3_layout():
    # YOLOv5 C3(16 -> 32, n=2): c_ = 16; cv1 -> 2 bottlenecks (1x1, 3x3, add) ; cv2 ; concat [m, cv2] ; cv3
    x = keras.Input((8, 8, 16))
    model = keras.Model(x, blocks.c3(x, 32, 2, "c3"))
    assert model.output_shape == (None, 8, 8, 32)
    assert _sources(model, "c3_concat") == ["c3_block2_add", "c3_cv2_silu"]
    assert model.get_layer("c3_concat").output.shape[-1] == 32
    assert [model.get_layer(f"c3_block1_{i}_conv").kernel_size for i in (1, 2)] == [(1, 1), (3, 3)]
    assert _sources(model, "c3_block2_add") == ["c3_block1_add", "c3_block2_2_silu"]
    assert _sources(model, "c3_cv1_conv") == _sources(model, "c3_cv2_conv")  # both read x
    assert model.get_layer("c3_cv3_conv").filters == 32
    no_shortcut = keras.Model(x, blocks.c3(x, 32, 2, "c3", shortcut=False))
    assert not [layer for layer in no_shortcut.layers if isinstance(layer, keras.layers.Add)]


@pytest.mark.parametrize("depth", [1, 3])
def test_c2f_concatenates_depth_plus_two(depth):
    # YOLOv8 C2f(16 -> 32, n): c_ = 16; cv1 to 32, halves y0 / y1, chain of n bottlenecks (3x3, 3x3, add)
    x = keras.Input((8, 8, 16))
    model = keras.Model(x, blocks.c2f(x, 32, depth, "c2f"))
    assert model.output_shape == (None, 8, 8, 32)
    srcs = _sources(model, "c2f_concat")
    assert len(srcs) == depth + 2
    assert srcs == ["c2f_split0", "c2f_split1"] + [f"c2f_block{i + 1}_add" for i in range(depth)]
    assert model.get_layer("c2f_concat").output.shape[-1] == 16 * (depth + 2)
    assert isinstance(model.get_layer("c2f_split0"), ChannelSlice)
    assert (model.get_layer("c2f_split0").start, model.get_layer("c2f_split1").start) == (0, 16)
    assert _sources(model, "c2f_block1_1_conv") == ["c2f_split1"]          # the second half feeds the chain
    assert [model.get_layer(f"c2f_block1_{i}_conv").kernel_size for i in (1, 2)] == [(3, 3), (3, 3)]
    if depth > 1:
        assert _sources(model, "c2f_block2_1_conv") == ["c2f_block1_add"]


def test_sppf_concatenates_four_chained_pools():
    x = keras.Input((8, 8, 32))
    model = keras.Model(x, blocks.sppf(x, 48, "sppf"))
    assert model.output_shape == (None, 8, 8, 48)
    assert _sources(model, "sppf_concat") == ["sppf_cv1_silu", "sppf_pool1", "sppf_pool2", "sppf_pool3"]
    assert _sources(model, "sppf_pool2") == ["sppf_pool1"]
    pool = model.get_layer("sppf_pool1")
    assert (pool.pool_size, pool.strides, pool.padding) == ((5, 5), (1, 1), "same")
    assert model.get_layer("sppf_cv1_conv").filters == 16                   # c_ = input channels // 2
    # two chained 5x5 max pools are one 9x9 pool (so SPPF's three give SPP's 5, 9 and 13)
    v = np.random.default_rng(0).normal(size=(1, 16, 16, 4)).astype("float32")
    inp = keras.Input((16, 16, 4))
    p1 = keras.layers.MaxPooling2D(5, 1, "same")
    y = p1(p1(inp))
    pad = np.pad(v, ((0, 0), (4, 4), (4, 4), (0, 0)), constant_values=-np.inf)
    want = np.max([pad[:, i:i + 16, j:j + 16] for i in range(9) for j in range(9)], axis=0)
    np.testing.assert_array_equal(keras.Model(inp, y).predict(v, verbose=0), want)


@pytest.mark.parametrize("depth, branches, concat", [
    (1, 2, ["e_chain2_silu", "e_chain1_silu", "e_cv2_silu", "e_cv1_silu"]),   # yolov7-tiny: [-1, -2, -3, -4]
    (2, 2, ["e_chain4_silu", "e_chain2_silu", "e_cv2_silu", "e_cv1_silu"]),   # yolov7: [-1, -3, -5, -6]
    (2, 3, ["e_chain6_silu", "e_chain4_silu", "e_chain2_silu", "e_cv2_silu", "e_cv1_silu"]),
])
def test_elan_layout(depth, branches, concat):
    x = keras.Input((8, 8, 32))
    model = keras.Model(x, blocks.elan(x, 64, "e", depth=depth, branches=branches))
    assert model.output_shape == (None, 8, 8, 64)
    assert _sources(model, "e_concat") == concat
    assert model.get_layer("e_concat").output.shape[-1] == 32 * (branches + 2)
    assert _sources(model, "e_chain1_conv") == ["e_cv2_silu"]
    assert model.get_layer(f"e_chain{depth * branches}_conv").kernel_size == (3, 3)
    assert f"e_chain{depth * branches + 1}_conv" not in {layer.name for layer in model.layers}
    assert model.get_layer("e_transition_conv").filters == 64


@pytest.mark.parametrize("layer", [C3(32, depth=2, shortcut=False, expansion=0.25, activation="relu"),
                                   C2f(32, depth=3), ELAN(32, depth=1, branches=3), SPPF(16, pool_size=3)],
                         ids=lambda layer: type(layer).__name__)
def test_yolo_wrappers_get_config_roundtrip(layer):
    config = layer.get_config()
    again = type(layer).from_config(config)
    assert again.get_config() == config
    x = keras.Input((8, 8, 16))
    assert tuple(again(x).shape) == tuple(layer(x).shape)


def test_yolo_wrappers_validate():
    with pytest.raises(ValueError, match="depth"):
        C2f(16, depth=0)
    with pytest.raises(ValueError, match="branches"):
        ELAN(16, branches=0)
    with pytest.raises(ValueError, match="expansion"):
        keras.Model(*(lambda i: (i, C3(1, expansion=0.5)(i)))(keras.Input((4, 4, 8))))
