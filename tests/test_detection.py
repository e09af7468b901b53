"""Detectors (CSPPeleeNet-EFM, PeleeNet-YOLO, PeleeNet-PRN): build, shapes, box coding, NMS, mAP, loss."""
import math

import numpy as np
import pytest

from keras_csp.backend import keras
from keras_csp.detection import DETECTORS, TINY_DETECTORS, CSPPeleeNetEFM, detector_info
from keras_csp.detection.boxes import decode, encode_targets, yolo_loss
from keras_csp.detection.metrics import average_precision, box_iou, evaluate_map
from keras_csp.detection.models import DetectorInfo
from keras_csp.detection.nms import non_max_suppression, postprocess
from keras_csp.layers.primitives import CrossChannelPooling
from keras_csp.models import create_model, list_models
from keras_csp.profile import profile_model

TINY = 64


def test_three_detectors_at_416_shapes_and_bottleneck():
    profiles = {}
    for name in DETECTORS:
        model = create_model(name, input_shape=(416, 416, 3))
        assert model.name == name
        assert [tuple(o.shape) for o in model.outputs] == [(None, 52, 52, 3, 85), (None, 26, 26, 3, 85),
                                                           (None, 13, 13, 3, 85)]
        assert detector_info(model).strides == (8, 16, 32)
        profiles[name] = profile_model(model, input_size=416)
    efm, yolo, prn = (profiles[n] for n in DETECTORS)
    # the paper's claim: the EFM detector has no computational bottleneck layer like PeleeNet-YOLO's
    assert efm.max_layer_flops < yolo.max_layer_flops
    assert efm.max_layer_flops < prn.max_layer_flops
    assert efm.flops < prn.flops < yolo.flops
    # the EFM really uses cross-channel pooling layers
    model_types = {layer.type for layer in efm.layers if layer.name.startswith("efm_")}
    assert "CrossChannelPooling" in model_types


@pytest.mark.parametrize("name", TINY_DETECTORS)
def test_tiny_detectors_build_and_predict(name):
    anchors = [[(8, 10), (12, 14)], [(16, 20), (20, 24)], [(28, 30), (40, 44)]]
    model = create_model(name, input_shape=(TINY, TINY, 3), num_classes=4, anchors=anchors)
    x = np.random.default_rng(0).uniform(size=(2, TINY, TINY, 3)).astype("float32")
    outs = model.predict(x, verbose=0)
    assert [o.shape for o in outs] == [(2, 8, 8, 2, 9), (2, 4, 4, 2, 9), (2, 2, 2, 2, 9)]
    info = detector_info(model)
    assert info.num_anchors == (2, 2, 2) and info.num_classes == 4
    boxes, scores = decode(outs, info)
    assert boxes.shape == (2, (64 + 16 + 4) * 2, 4) and scores.shape == (2, (64 + 16 + 4) * 2, 4)
    # the objectness bias starts at "no object" (prior 0.01)
    assert float(np.max(scores)) < 0.05


def test_registry_and_classifier_kwargs():
    names = set(list_models())
    assert set(DETECTORS) | set(TINY_DETECTORS) <= names
    model = create_model("csppeleenet_tiny_efm", input_shape=(TINY, TINY, 3), classes=3)
    assert model.outputs[0].shape[-1] == 8
    with pytest.raises(ValueError, match="include_top"):
        create_model("peleenet_tiny_yolo", input_shape=(TINY, TINY, 3), include_top=False)
    with pytest.raises(ValueError, match="partial_ratio"):
        create_model("peleenet_tiny_prn", input_shape=(TINY, TINY, 3), partial_ratio=0.5)
    with pytest.raises(ValueError, match="divisible"):
        create_model("peleenet_tiny_prn", input_shape=(80, 80, 3))


@pytest.mark.parametrize("num_classes", [0, -3, 2.5, True, "10"])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        create_model("csppeleenet_tiny_efm", input_shape=(TINY, TINY, 3), num_classes=num_classes)


@pytest.mark.parametrize("anchors, message", [
    ([[(10, 13)], [(30, 61)]], "expected 3 scales"),
    ([[(10, 13)], [], [(116, 90)]], "scale 1 must be a non-empty"),
    ([[(10, 13)], [(30, -61)], [(116, 90)]], "positive and finite"),
    ([[(10, 13)], [(30, 61)], [(116, float("nan"))]], "positive and finite"),
    ([[(10,)], [(30, 61)], [(116, 90)]], "not a \\(width, height\\) pair"),
    ([[("a", 1)], [(30, 61)], [(116, 90)]], "must hold numbers"),
    ("10,13", "sequence of 3"),
    (5, "sequence of 3"),
])
def test_bad_anchors(anchors, message):
    with pytest.raises(ValueError, match=message):
        create_model("peleenet_tiny_yolo", input_shape=(TINY, TINY, 3), anchors=anchors)


def test_bad_efm_pool_size():
    with pytest.raises(ValueError, match="pool_size"):
        CSPPeleeNetEFM(input_shape=(64, 64, 3), neck_widths=(6, 12, 24), pool_size=4)


# --- box coding and NMS on hand-made predictions ---------------------------------------------------

INFO = DetectorInfo("efm", 3, (((8.0, 8.0),), ((16.0, 16.0),), ((32.0, 32.0),)), (8, 16, 32), (64, 64))


def _logit(p):
    return math.log(p / (1 - p))


def test_encode_assigns_best_anchor_and_decode_inverts_it():
    gt = np.array([[0.25, 0.25, 0.5, 0.5],          # 16 x 16 px centered at (24, 24): scale 16, cell (1, 1)
                   [0.5, 0.5, 0.625, 0.5 + 10 / 64]], "float32")  # 8 x 10 px at (37, 36): scale 8, cell (4, 4)
    targets = encode_targets([gt], [np.array([2, 0])], INFO)
    assert [t.shape for t in targets] == [(1, 8, 8, 1, 8), (1, 4, 4, 1, 8), (1, 2, 2, 1, 8)]
    assert targets[1][0, 1, 1, 0, 4] == 1 and targets[1][0, 1, 1, 0, 7] == 1
    np.testing.assert_allclose(targets[1][0, 1, 1, 0, :4], [0.5, 0.5, 0.0, 0.0], atol=1e-6)
    t8 = targets[0][0, 4, 4, 0]
    assert t8[4] == 1 and t8[5] == 1
    np.testing.assert_allclose(t8[:4], [0.625, 0.5, math.log(10 / 8), 0.0], atol=1e-6)
    assert sum(float(t[..., 4].sum()) for t in targets) == 2
    # predictions that say exactly the targets (logits of the offsets, objectness and class ~1)
    preds = []
    for t in targets:
        p = np.full(t.shape, -12.0, "float32")
        obj = t[..., 4] > 0
        p[..., 0:2] = np.where(obj[..., None], np.log(np.clip(t[..., 0:2], 1e-6, 1 - 1e-6) /
                                                      (1 - np.clip(t[..., 0:2], 1e-6, 1 - 1e-6))), 0.0)
        p[..., 2:4] = t[..., 2:4]
        p[..., 4] = np.where(obj, 12.0, -12.0)
        p[..., 5:] = np.where(t[..., 5:] > 0, 12.0, -12.0)
        preds.append(p)
    boxes, scores = decode(preds, INFO)
    assert boxes.shape == (1, 64 + 16 + 4, 4)
    best = np.argsort(-np.max(scores.numpy()[0], -1))[:2]
    found = {int(np.argmax(scores.numpy()[0, i])): boxes.numpy()[0, i] for i in best}
    np.testing.assert_allclose(found[2], gt[0], atol=1e-4)
    np.testing.assert_allclose(found[0], gt[1], atol=1e-4)
    dets = postprocess(preds, INFO, score_threshold=0.5)
    assert len(dets) == 1 and sorted(dets[0]["classes"].tolist()) == [0, 2]
    # the loss of perfect predictions is the entropy of the soft center targets (BCE's minimum), of flipped
    # objectness much larger
    perfect = sum(float(np.sum(yolo_loss(t, p))) for t, p in zip(targets, preds))
    offsets = np.array([0.5, 0.5, 0.625, 0.5])
    entropy = float(-np.sum(offsets * np.log(offsets) + (1 - offsets) * np.log(1 - offsets)))
    assert perfect == pytest.approx(entropy, abs=0.01)
    wrong = [p.copy() for p in preds]
    wrong[1][..., 4] *= -1
    assert sum(float(np.sum(yolo_loss(t, p))) for t, p in zip(targets, wrong)) > 10


def test_encode_rejects_bad_ground_truth():
    with pytest.raises(ValueError, match="class ids"):
        encode_targets([np.array([[0.1, 0.1, 0.2, 0.2]])], [np.array([3])], INFO)
    with pytest.raises(ValueError, match="boxes but"):
        encode_targets([np.array([[0.1, 0.1, 0.2, 0.2]])], [np.array([0, 1])], INFO)


def test_nms_hand_made():
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.6, 0.9, 0.9], [0.1, 0.1, 0.5, 0.5]]],
                     "float32")
    scores = np.array([[[0.9, 0.0], [0.8, 0.0], [0.7, 0.0], [0.0, 0.6]]], "float32")
    b, s, c, valid = non_max_suppression(boxes, scores, iou_threshold=0.5, score_threshold=0.1)
    n = int(valid[0])
    assert n == 3  # box 1 overlaps box 0 (IoU 0.9) in the same class; box 3 is the same place, another class
    np.testing.assert_allclose(s.numpy()[0, :n], [0.9, 0.7, 0.6])
    assert c.numpy()[0, :n].tolist() == [0, 0, 1]
    np.testing.assert_allclose(b.numpy()[0, 0], boxes[0, 0])
    _, _, _, valid = non_max_suppression(boxes, scores, score_threshold=0.75)
    assert int(valid[0]) == 1
    with pytest.raises(ValueError, match="boxes"):
        non_max_suppression(boxes[0], scores)


# --- mAP ------------------------------------------------------------------------------------------

def test_box_iou_and_ap():
    np.testing.assert_allclose(box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]]),
                               [[1 / 7, 1.0, 0.0]])
    assert average_precision([0.5, 1.0], [1.0, 1.0]) == pytest.approx(1.0)
    assert average_precision([0.0, 0.5], [0.0, 0.5]) == pytest.approx(0.25)


def test_map_on_hand_made_boxes():
    gt = [{"boxes": np.array([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]), "classes": np.array([0, 1])},
          {"boxes": np.array([[0, 0, 0.4, 0.4]]), "classes": np.array([0])}]
    perfect = [{"boxes": g["boxes"], "scores": np.ones(len(g["classes"])), "classes": g["classes"]} for g in gt]
    assert evaluate_map(perfect, gt, 3)["map"] == pytest.approx(1.0)
    # class 0: a false positive with the top score, then the two hits -> precision 1/2, 2/3 at recall 1/2, 1
    dets = [{"boxes": np.array([[0.6, 0.0, 0.9, 0.3], [0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]),
             "scores": np.array([0.9, 0.8, 0.7]), "classes": np.array([0, 0, 1])},
            {"boxes": np.array([[0.02, 0, 0.42, 0.4]]), "scores": np.array([0.6]), "classes": np.array([0])}]
    r = evaluate_map(dets, gt, 3)
    assert r["ap"][0] == pytest.approx(2 / 3)
    assert r["ap"][1] == pytest.approx(1.0)
    assert 2 not in r["ap"] and r["map"] == pytest.approx((2 / 3 + 1) / 2)
    # a duplicate of an already-matched box is a false positive; a wrong class earns nothing
    dup = [{"boxes": np.array([[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]]), "scores": np.array([0.9, 0.8]),
            "classes": np.array([0, 1])}, {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "classes": np.zeros(0)}]
    r = evaluate_map(dup, gt, 3)
    assert r["ap"][0] == pytest.approx(0.5) and r["ap"][1] == 0.0


# --- EFM memory, training ---------------------------------------------------------------------------

def test_cross_channel_pooling_is_the_efm_compression():
    x = np.arange(2 * 4 * 4 * 8, dtype="float32").reshape(2, 4, 4, 8)
    y = CrossChannelPooling(2, spatial_pool=2)(x)
    assert tuple(y.shape) == (2, 2, 2, 4)
    np.testing.assert_allclose(np.asarray(y)[0, 0, 0], x[0, :2, :2, 4:].max((0, 1)))
    from keras_csp.detection.memory import efm_memory
    m = efm_memory(TINY, pool_size=2, tiny=True)
    assert m["pyramid"]["with_ccp_bytes"] < m["pyramid"]["without_ccp_bytes"]
    assert 0.5 < m["transfer"]["ratio"] < 0.7
    assert {r["type"] for r in m["layers"]["with_ccp"]} >= {"CrossChannelPooling", "UpSampling2D", "Concatenate"}


def test_a_few_training_steps_lower_the_loss():
    from keras_csp.detection.data import make_scenes
    from keras_csp.detection.train import compile_detector
    keras.utils.set_random_seed(0)
    scenes = make_scenes(8, TINY, digit_size=(12, 24), seed=3)
    model = create_model("csppeleenet_tiny_efm", input_shape=(TINY, TINY, 3))
    targets = encode_targets(scenes.boxes, scenes.classes, detector_info(model))
    compile_detector(model, 3e-3)
    model.run_eagerly = True  # a few steps: eager is faster than tracing the training graph
    losses = [float(np.ravel(model.train_on_batch(scenes.images, targets))[0]) for _ in range(8)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.7 * losses[0], losses


def test_efm_memory_cli_writes_figure(tmp_path):
    from click.testing import CliRunner

    from keras_csp.cli import cli
    png, js = tmp_path / "fig.png", tmp_path / "m.json"
    result = CliRunner().invoke(cli, ["efm-memory", "--input-size", "64", "--plot", str(png), "--json", str(js)])
    assert result.exit_code == 0, result.output
    assert png.stat().st_size > 10_000 and "% less" in result.output
    assert "csppeleenet_efm" in result.output and "peleenet_prn" in result.output


@pytest.mark.slow
def test_tiny_detector_learns_digit_scenes():
    from keras_csp.detection.train import train_detector
    # 240 s gave mAP@0.5 0.23 (743 steps) on a heavily loaded machine and 0.52 at 300 s (1169 steps)
    result, _ = train_detector("csppeleenet_tiny_efm", train_scenes=2000, val_scenes=200, time_budget=240,
                               verbose=0)
    assert result["val_loss_after"] < 0.5 * result["val_loss_before"]
    assert result["map50"] > 0.1, result["map50"]
