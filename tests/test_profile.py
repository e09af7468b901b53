import json

import numpy as np
import pytest
from click.testing import CliRunner

from keras_csp.backend import keras
from keras_csp.cli import cli
from keras_csp.layers import CSPStage, blocks
from keras_csp.models import create_model
from keras_csp.profile import plot_bottleneck, profile, profile_model

layers = keras.layers


def _hand_model():
    x = inp = keras.Input((8, 8, 3))
    x = blocks.conv_bn_act(x, 16, 3, "stem")  # 8*8*16 * 3*3*3 = 27648
    # 16 ch -> 8 skip / 8 part; dense layer: 1x1 8->16 (8192), 3x3 16->4 (36864); partial transition
    # 12->8 (6144); concat 16; transition 16->16 (16384)
    x = blocks.csp_stage(x, lambda p: blocks.dense_block(p, 1, 4, "d"), "s", 0.5, "both", out_filters=16,
                         partial_transition_filters=8)
    x = layers.Conv2D(32, 3, groups=4, padding="same", strides=2, name="grouped")(x)  # 4*4*32 * 9*16/4 = 18432
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)  # 4*4*32*9 = 4608
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10, name="fc")(x)  # 320
    return keras.Model(inp, x, name="hand")


def test_macs_match_hand_computation():
    p = profile_model(_hand_model())
    by_name = {layer.name: layer for layer in p.layers}
    assert by_name["stem_conv"].macs == 27648
    assert by_name["d_block1_1_conv"].macs == 8192
    assert by_name["d_block1_2_conv"].macs == 36864
    assert by_name["s_partial_transition_conv"].macs == 6144
    assert by_name["s_transition_conv"].macs == 16384
    assert by_name["grouped"].macs == 18432
    assert by_name["dw"].macs == 4608
    assert by_name["fc"].macs == 320
    assert p.macs == 27648 + 8192 + 36864 + 6144 + 16384 + 18432 + 4608 + 320
    assert p.flops == 2 * p.macs
    assert p.max_layer_flops == 2 * 36864
    # params: convs without bias, BN 4 per channel, dense with bias
    assert by_name["stem_conv"].params == 3 * 3 * 3 * 16
    assert by_name["stem_bn"].params == 4 * 16
    assert by_name["fc"].params == 32 * 10 + 10
    assert p.params == sum(layer.params for layer in p.layers)
    # activation memory: float32 output elements
    assert by_name["stem_conv"].activation_bytes == 8 * 8 * 16 * 4
    assert by_name["s_csp_concat"].activation_bytes == 8 * 8 * 16 * 4
    assert by_name["s_split_skip"].output_shape == [None, 8, 8, 8]


def test_wrapped_layers_are_counted_inside():
    inp = keras.Input((8, 8, 16))
    model = keras.Model(inp, CSPStage("dense", depth=1, growth_rate=4, fusion="first", out_filters=16)(inp))
    p = profile_model(model)
    # split 8/8; 1x1 8->16 (8192); 3x3 16->4 (36864); concat 8+12=20 -> transition 20->16 (20480)
    assert p.macs == 8192 + 36864 + 20480


def test_densenet121_macs_known_value():
    # DenseNet-121 at 224x224: 2.83 GMACs with conv/dense only (the usual "2.87 GFLOPs" counts MACs)
    p = profile("densenet121")
    assert 2.80e9 < p.macs < 2.90e9
    assert p.max_layer_flops == 2 * 112 * 112 * 64 * 7 * 7 * 3  # the 7x7 stem conv


@pytest.mark.parametrize("csp, plain", [("cspdensenet121", "densenet121"), ("cspresnet50", "resnet50"),
                                        ("cspresnext50", "resnext50"), ("cspdarknet53", "darknet53"),
                                        ("csppeleenet", "peleenet"), ("cspdensenet_tiny", "densenet_tiny"),
                                        ("cspmobilenetv2", "mobilenetv2"), ("csppeleenet_tiny", "peleenet_tiny"),
                                        ("cspmobilenetv2_tiny", "mobilenetv2_tiny")])
def test_csp_has_fewer_flops_than_plain_twin(csp, plain):
    size = 32 if "tiny" in csp else 224
    assert profile(csp, size).flops < profile(plain, size).flops


# The CSPNet repository's ImageNet "Small Models" table (BFLOPs = 2 x GMACs at 224x224; its params
# count conv weights only, ours add BatchNorm's four per channel).
PAPER_SMALL_MODELS = {"peleenet": (2.79e6, 1.017), "csppeleenet": (2.83e6, 0.888),
                      "mobilenetv2": (3.47e6, 0.858), "cspmobilenetv2": (2.51e6, 0.764)}
# MobileNet-v2's FLOPs are exactly those of the darknet cfgs (counted layer by layer from
# cfg/mobilenet-v2.cfg and cfg/csmobilenet-v2.cfg: 858,223,872 and 763,556,928).
PINNED = {"peleenet": (2811976, 1015515136), "csppeleenet": (2763400, 882247680),
          "mobilenetv2": (3540136, 858223872), "cspmobilenetv2": (2568448, 763556928)}


@pytest.mark.parametrize("name", sorted(PAPER_SMALL_MODELS))
def test_small_models_match_the_paper_table(name):
    p = profile(name)
    assert (p.params, p.flops) == PINNED[name]
    params, bflops = PAPER_SMALL_MODELS[name]
    assert abs(p.params / params - 1) <= 0.03, p.params
    assert abs(p.flops / 1e9 / bflops - 1) <= 0.03, p.flops


def test_mobilenetv2_conv_weights_are_the_darknet_cfg_counts():
    # Conv/dense weights alone (no BN, no classifier bias) are the cfgs' counts: the table's 3.47M / 2.51M.
    def conv_weights(name):
        model = create_model(name)
        return sum(int(np.prod(w.shape)) for w in model.weights
                   if getattr(w, "path", w.name).split("/")[-1].split(":")[0] in ("kernel", "depthwise_kernel"))
    assert conv_weights("mobilenetv2") == 3470784
    assert conv_weights("cspmobilenetv2") == 2513400


def test_profile_cli_json_and_plot(tmp_path):
    out_json, out_png = tmp_path / "p.json", tmp_path / "p.png"
    result = CliRunner().invoke(cli, ["profile", "cspdensenet_tiny", "--input-size", "32", "--json", str(out_json),
                                      "--plot", str(out_png)])
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())
    assert set(data) >= {"model", "input_size", "params", "macs", "flops", "max_layer_flops", "layers"}
    assert set(data["layers"][0]) >= {"name", "type", "output_shape", "params", "macs", "activation_bytes"}
    assert data["flops"] == 2 * data["macs"] == 2 * sum(layer["macs"] for layer in data["layers"])
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_cli_pairs():
    result = CliRunner().invoke(cli, ["compare", "cspdensenet_tiny"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[2:]}
    assert float(lines["cspdensenet_tiny"][-1]) < 1.0 == float(lines["densenet_tiny"][-1])


def test_unknown_model_cli():
    result = CliRunner().invoke(cli, ["profile", "nosuchnet"])
    assert result.exit_code != 0
    assert "unknown model name 'nosuchnet'" in result.output
    assert "Traceback" not in result.output


def test_plot_several(tmp_path):
    profiles = [profile("cspdensenet_tiny", 32), profile("densenet_tiny", 32)]
    assert plot_bottleneck(profiles, tmp_path / "b.png")


# --- YOLO family: counts by hand ----------------------------------------------------------------

def conv(k, cin, cout, hw):
    """(params, MACs) of conv k x k (no bias) + BN (4 per channel) on an hw x hw output."""
    return k * k * cin * cout + 4 * cout, hw * hw * cout * k * k * cin


def total(*counts):
    return tuple(map(sum, zip(*counts)))


def test_c2f_and_sppf_counts_by_hand():
    x = inp = keras.Input((8, 8, 16))
    x = blocks.c2f(x, 32, 2, "c2f")
    x = blocks.sppf(x, 32, "sppf")
    p = profile_model(keras.Model(inp, x))
    by_name = {layer.name: layer for layer in p.layers}
    # C2f(16 -> 32, n=2): c_ = 16. cv1 1x1 16->32: 8*8*32*16 = 32768; four 3x3 16->16: 8*8*16*144 = 147456
    # each; cv2 1x1 (2+2)*16 = 64 -> 32: 8*8*32*64 = 131072
    assert by_name["c2f_cv1_conv"].macs == 32768
    assert by_name["c2f_block2_2_conv"].macs == 147456
    assert by_name["c2f_cv2_conv"].macs == 131072
    # SPPF(32 -> 32): cv1 1x1 32->16: 8*8*16*32 = 32768; cv2 1x1 4*16 = 64 -> 32: 131072; pools count 0
    assert by_name["sppf_cv1_conv"].macs == 32768 and by_name["sppf_pool1"].macs == 0
    assert p.macs == 32768 + 4 * 147456 + 131072 + 32768 + 131072 == 917504
    # params: convs + BN 4 per channel
    assert p.params == (16 * 32 + 4 * 32) + 4 * (9 * 16 * 16 + 4 * 16) + (64 * 32 + 4 * 32) \
        + (32 * 16 + 4 * 16) + (64 * 32 + 4 * 32) == 15040


def test_yolo_tiny_counts_by_hand():
    # yolov8_backbone_tiny, 32x32, 10 classes. Every stage (cin -> c, output hw, c_ = c/2) costs
    # down 3x3 cin->c, cv1 1x1 c->c, bottleneck 2 x 3x3 c_->c_, cv2 1x1 3c_->c.
    def c2f_stage(cin, c, hw):
        h = c // 2
        return total(conv(3, cin, c, hw), conv(1, c, c, hw), conv(3, h, h, hw), conv(3, h, h, hw),
                     conv(1, 3 * h, c, hw))
    sppf = total(conv(1, 128, 64, 2), conv(1, 256, 128, 2))
    head = (128 * 10 + 10, 128 * 10)
    v8 = total(conv(3, 3, 16, 16), c2f_stage(16, 32, 8), c2f_stage(32, 64, 4), c2f_stage(64, 128, 2), sppf, head)
    # each stage: 294912 + 65536 + 2 * 147456 + 98304 = 753664 MACs
    assert c2f_stage(16, 32, 8)[1] == c2f_stage(64, 128, 2)[1] == 753664
    assert v8 == (294394, 110592 + 3 * 753664 + 32768 + 131072 + 1280) == (294394, 2536704)
    p = profile("yolov8_backbone_tiny", 32, classes=10)
    assert (p.params, p.macs, p.flops) == (294394, 2536704, 2 * 2536704)

    # yolov5_cspdarknet_tiny: stem 6x6/2 3->16; C3 stage: down 3x3, cv1 1x1 c->c_, bottleneck 1x1 + 3x3
    # c_->c_, cv2 1x1 c->c_, cv3 1x1 2c_->c
    def c3_stage(cin, c, hw):
        h = c // 2
        return total(conv(3, cin, c, hw), conv(1, c, h, hw), conv(1, h, h, hw), conv(3, h, h, hw),
                     conv(1, c, h, hw), conv(1, 2 * h, c, hw))
    v5 = total(conv(6, 3, 16, 16), c3_stage(16, 32, 8), c3_stage(32, 64, 4), c3_stage(64, 128, 2), sppf, head)
    # stem 16*16*16*108 = 442368; each stage 294912 + 32768 + 16384 + 147456 + 32768 + 65536 = 589824
    assert v5 == (241930, 442368 + 3 * 589824 + 32768 + 131072 + 1280) == (241930, 2376960)
    p = profile("yolov5_cspdarknet_tiny", 32, classes=10)
    assert (p.params, p.macs, p.flops) == (241930, 2376960, 2 * 2376960)


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# The n backbones at 320x320 with the 1000-class head (BN counted 4 per channel), and their trainable
# params without the head: YOLOv5n's and YOLOv8n's layers 0-9 as the two repositories' model summaries
# print them (BN: gamma and beta), summed: 1760 + 4672 + 4800 + 18560 + 29184 + 73984 + 156928 + 295424
# + 296448 + 164608 and 464 + 4672 + 7360 + 18560 + 49664 + 73984 + 197632 + 295424 + 460288 + 164608.
YOLO_PINNED = {"yolov5_cspdarknet": (1308648, 691916800, 1046368), "yolov8_backbone": (1534680, 789401600, 1272656)}


@pytest.mark.parametrize("name", sorted(YOLO_PINNED))
def test_yolo_n_backbones_pinned(name):
    params, flops, trainable = YOLO_PINNED[name]
    p = profile(name, 320)
    assert (p.params, p.flops) == (params, flops)
    assert _trainable(create_model(name, include_top=False)) == trainable
