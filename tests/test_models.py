import numpy as np
import pytest

import keras_csp
from keras_csp.backend import keras
from keras_csp.models import create_model, list_models, plain_twin_of

FULL = [n for n in list_models() if "tiny" not in n and "_efm" not in n and "_yolo" not in n and "_prn" not in n]
TINY = [n for n in list_models() if n.endswith("_tiny") and n.split("_")[0] in (
    "cspdensenet", "densenet", "cspresnet", "resnet", "cspdarknet", "darknet", "csppeleenet", "peleenet",
    "cspmobilenetv2", "mobilenetv2", "yolov5", "yolov8")]
YOLO = ("yolov5_cspdarknet", "yolov8_backbone")


def test_registry_has_the_zoo():
    names = set(list_models())
    for n in ["cspdensenet121", "cspdensenet169", "cspdensenet201", "cspresnet50", "cspresnext50",
              "cspdarknet53", "csppeleenet", "densenet121", "densenet169", "densenet201", "resnet50",
              "resnext50", "darknet53", "peleenet", "cspdensenet_tiny", "densenet_tiny"]:
        assert n in names
    assert plain_twin_of("cspdensenet121") == "densenet121"
    assert plain_twin_of("densenet121") is None


@pytest.mark.parametrize("name", FULL)
def test_full_models_build_at_their_default_size(name):
    model = create_model(name)
    size = 320 if name in YOLO else 224
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, 1000)
    assert model.name == name


@pytest.mark.parametrize("name", TINY)
def test_tiny_models_build_at_32_and_roundtrip(name, tmp_path):
    model = create_model(name, input_shape=(32, 32, 3), classes=10)
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    before = model.predict(x, verbose=0)
    assert before.shape == (2, 10)
    path = str(tmp_path / "x.keras")
    model.save(path)
    np.testing.assert_array_equal(keras.models.load_model(path).predict(x, verbose=0), before)


def test_top_level_api_and_signature():
    model = keras_csp.CSPDenseNet121(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    assert model.output_shape == (None, model.layers[-2].output.shape[-1])
    model = keras_csp.CSPDenseNet(blocks=(2, 3), growth_rate=8, input_shape=(64, 64, 3), classes=5,
                                  classifier_activation=None)
    assert model.output_shape == (None, 5)
    assert model.layers[-1].get_config()["activation"] == "linear"
    headless = keras_csp.CSPResNet50(include_top=False, input_shape=(64, 64, 3))
    assert len(headless.output_shape) == 4


def test_stable_layer_names():
    names = {layer.name for layer in create_model("cspdensenet121").layers}
    for n in ["conv1_conv", "conv1_bn", "conv1_relu", "pool1", "conv2_split_skip", "conv2_split_part",
              "conv2_block1_1_conv", "conv2_block1_2_bn", "conv2_block6_concat", "conv2_partial_transition_conv",
              "conv2_csp_concat", "pool2_pool", "avg_pool", "predictions"]:
        assert n in names, n
    plain = {layer.name for layer in create_model("densenet121").layers}
    assert {"conv2_block1_1_conv", "pool2_conv", "pool2_pool", "conv5_block16_concat"} <= plain


def test_cspmobilenetv2_layout_follows_the_cfg():
    model = create_model("cspmobilenetv2")
    names = {layer.name for layer in model.layers}
    for n in ["conv1_conv", "conv2_skip_conv", "conv2_block1_expand_conv", "conv2_block1_project_conv",
              "conv3_base_conv", "conv3_skip_conv", "conv3_block1_depthwise_conv", "conv3_block2_add",
              "conv4_block4_project_conv", "conv4_block5_add", "conv6_csp_concat", "top_conv", "predictions"]:
        assert n in names, n
    # stage heads: the base 1x1 feeds a stride-2 depthwise skip and a stride-2 depthwise x2 block path
    assert model.get_layer("conv3_skip_conv").strides == (2, 2)
    assert model.get_layer("conv3_block1_depthwise_conv").depth_multiplier == 2
    assert model.get_layer("conv2_skip_conv").groups == 16  # stage 1: a grouped conv of channel pairs
    # concat widths = block path + skip path: 16+16, 24+48, 64+72, 96+192, 320+288
    assert [model.get_layer(f"conv{i}_csp_concat").output.shape[-1] for i in range(2, 7)] == [32, 72, 136, 288, 608]
    assert model.get_layer("conv6_csp_concat").output.shape[1:3] == (7, 7)
    plain = create_model("mobilenetv2")
    assert plain.get_layer("conv5_block1_depthwise_conv").strides == (1, 1)  # the 64-wide stage stays at 28x28
    assert plain.get_layer("conv6_block1_depthwise_conv").strides == (2, 2)
    assert plain.get_layer("top_conv").filters == 1280


def test_cspmobilenetv2_rejects_split_arguments():
    for kwargs in ({"partial_ratio": 0.25}, {"fusion": "last"}):
        with pytest.raises(ValueError, match="partial_ratio and fusion do not apply"):
            create_model("cspmobilenetv2_tiny", input_shape=(32, 32, 3), **kwargs)


def test_input_tensor_and_weights_file(tmp_path):
    inputs = keras.Input((32, 32, 3))
    model = create_model("cspdensenet_tiny", input_tensor=inputs, classes=3)
    assert model.inputs[0] is inputs or model.inputs[0].shape == inputs.shape
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)
    again = create_model("cspdensenet_tiny", input_shape=(32, 32, 3), classes=3, weights=path)
    x = np.ones((1, 32, 32, 3), "float32")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("kwargs, argument", [
    (dict(partial_ratio=0.0), "partial_ratio"),
    (dict(partial_ratio=1.2), "partial_ratio"),
    (dict(fusion="middle"), "fusion"),
    (dict(weights="imagenet"), "weights"),
    (dict(pooling="sum", include_top=False), "pooling"),
    (dict(classes=0), "classes"),
    (dict(input_shape=(8, 8, 3)), "input_shape"),
])
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        create_model("cspdensenet_tiny", **{"input_shape": (32, 32, 3), **kwargs})


def test_channels_that_do_not_split_name_partial_ratio():
    # the tiny DenseNet's 32-channel stem cannot give the block 0.01 of its channels
    with pytest.raises(ValueError, match="partial_ratio"):
        create_model("cspdensenet_tiny", input_shape=(32, 32, 3), partial_ratio=0.01)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model name 'cspdensenet12'.*cspdensenet121"):
        create_model("cspdensenet12")


def test_csp_only_arguments_rejected_by_plain_twin():
    with pytest.raises(ValueError, match="partial_ratio"):
        create_model("densenet_tiny", input_shape=(32, 32, 3), partial_ratio=0.5)


@pytest.mark.parametrize("fusion", ["first", "last", "both"])
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_fusion_and_ratio_variants_build(fusion, ratio):
    model = create_model("cspdensenet_tiny", input_shape=(32, 32, 3), classes=10, fusion=fusion,
                         partial_ratio=ratio)
    assert model.output_shape == (None, 10)
    names = {layer.name for layer in model.layers}
    assert ("conv2_transition_conv" in names) == (fusion != "last")
    assert model.get_layer("conv2_split_part").output.shape[-1] == round(32 * ratio)


def test_full_size_model_save_load_identical(tmp_path):
    model = create_model("cspdensenet121")
    x = np.random.default_rng(2).uniform(size=(1, 224, 224, 3)).astype("float32")
    before = model.predict(x, verbose=0)
    path = str(tmp_path / "cspdensenet121.keras")
    model.save(path)
    np.testing.assert_array_equal(keras.models.load_model(path).predict(x, verbose=0), before)


def _sources(model, name):
    return [t._keras_history.operation.name for t in model.get_layer(name).input]


@pytest.mark.parametrize("name, block, stem_kernel, depths", [
    ("yolov5_cspdarknet", "c3", 6, (1, 2, 3, 1)),     # YOLOv5n: C3 x round(0.33 * (3, 6, 9, 3))
    ("yolov8_backbone", "c2f", 3, (1, 2, 2, 1)),      # YOLOv8n: C2f x round(0.33 * (3, 6, 6, 3))
])
def test_yolo_backbones_n_layout(name, block, stem_kernel, depths):
    model = create_model(name, include_top=False)
    assert model.input_shape == (None, 320, 320, 3) and model.output_shape == (None, 10, 10, 256)
    stem = model.get_layer("conv1_conv")
    assert (stem.kernel_size, stem.strides, stem.filters) == ((stem_kernel, stem_kernel), (2, 2), 16)
    assert model.get_layer("conv1_silu").output.shape[1:] == (160, 160, 16)  # 6x6/2 "same" = YOLOv5's p=2
    for i, (width, depth) in enumerate(zip((32, 64, 128, 256), depths)):
        stage = f"conv{i + 2}"
        down = model.get_layer(f"{stage}_down_conv")
        assert (down.kernel_size, down.strides, down.filters) == ((3, 3), (2, 2), width)
        names = {layer.name for layer in model.layers}
        assert f"{stage}_{block}_block{depth}_add" in names and f"{stage}_{block}_block{depth + 1}_1_conv" not in names
        concat = _sources(model, f"{stage}_{block}_concat")
        assert len(concat) == (2 if block == "c3" else depth + 2), concat
        assert model.get_layer(f"{stage}_{block}_concat").output.shape[-1] == width // 2 * len(concat)
        last = f"{stage}_{block}_cv3_silu" if block == "c3" else f"{stage}_{block}_cv2_silu"
        assert model.get_layer(last).output.shape[-1] == width
    assert len(_sources(model, "conv5_sppf_concat")) == 4
    assert model.layers[-1].name == "conv5_sppf_cv2_silu"
    assert all(not isinstance(layer, keras.layers.ReLU) for layer in model.layers)


@pytest.mark.parametrize("name", YOLO)
def test_yolo_sizes_and_multipliers(name):
    s = create_model(name, size="s", include_top=False, input_shape=(64, 64, 3))
    assert [s.get_layer(f"conv{i}_down_conv").filters for i in range(2, 6)] == [64, 128, 256, 512]
    assert s.get_layer("conv1_conv").filters == 32
    custom = create_model(name, width_multiple=0.125, depth_multiple=1.0, include_top=False, input_shape=(64, 64, 3))
    assert [custom.get_layer(f"conv{i}_down_conv").filters for i in range(2, 6)] == [16, 32, 64, 128]
    assert "conv4_" + ("c3_block6_add" if name.startswith("yolov5") else "c2f_block6_add") in {
        layer.name for layer in custom.layers}
    with pytest.raises(ValueError, match="size"):
        create_model(name, size="q")
    with pytest.raises(ValueError, match="partial_ratio"):
        create_model(name, partial_ratio=0.5)
    with pytest.raises(ValueError, match="fusion"):
        create_model(name + "_tiny", fusion="last")


@pytest.mark.parametrize("name", [n + "_tiny" for n in YOLO])
def test_yolo_tiny_variants(name):
    model = create_model(name, classes=10)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    assert model.get_layer("conv4_sppf_cv2_silu").output.shape[1:] == (2, 2, 128)
    assert "conv5_down_conv" not in {layer.name for layer in model.layers}
    assert plain_twin_of(name) is None and plain_twin_of(name[:-5]) is None


def test_yolo_top_level_api():
    model = keras_csp.YOLOv8Backbone(input_shape=(64, 64, 3), classes=7, classifier_activation=None)
    assert model.output_shape == (None, 7) and model.name == "yolov8_backbone"
    assert keras_csp.YOLOv5CSPDarknet(include_top=False, pooling="avg", input_shape=(64, 64, 3)).output_shape == (
        None, 256)
