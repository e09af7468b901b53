"""YOLO box coding: ground truth -> per-scale targets, raw head outputs -> boxes and scores, and the loss.

Conventions: boxes are normalized [y1, x1, y2, x2] (TensorFlow's NMS order), anchors are (width, height)
in input pixels. A head output has shape (batch, H, W, A, 5 + K): tx, ty, tw, th, objectness, K class
logits. Decoding (YOLOv3): center = (sigmoid(t_xy) + cell) * stride, size = anchor * exp(t_wh).

A target tensor has the same shape: the cell offset in [0, 1) of the center (x, y), log(size / anchor)
(w, h), objectness 1 where an object is assigned, and the one-hot class. Each ground-truth box is
assigned to the single anchor (over all scales) with the best width/height IoU, in the cell holding
its center.
"""
import numpy as np
import tensorflow as tf

from .models import detector_info

MAX_LOG_WH = 6.0  # clip t_wh before exp when decoding


def _info(model_or_info):
    return model_or_info if hasattr(model_or_info, "anchors") and hasattr(model_or_info, "strides") \
        else detector_info(model_or_info)


def wh_iou(wh, anchors):
    """IoU of boxes and anchors that share a center: wh (N, 2), anchors (M, 2) -> (N, M)."""
    wh = np.asarray(wh, "float64")[:, None, :]
    anchors = np.asarray(anchors, "float64")[None, :, :]
    inter = np.minimum(wh, anchors).prod(-1)
    return inter / (wh.prod(-1) + anchors.prod(-1) - inter)


def encode_targets(boxes, classes, info):
    """Per-scale YOLO targets for a batch.

    boxes: a list (one entry per image) of (k, 4) normalized [y1, x1, y2, x2]; classes: a list of (k,) ints.
    Returns a list, fine to coarse, of float32 arrays (batch, H, W, A, 5 + num_classes).
    """
    info = _info(info)
    height, width = info.input_size
    k = info.num_classes
    targets = [np.zeros((len(boxes), height // s, width // s, len(a), 5 + k), "float32")
               for s, a in zip(info.strides, info.anchors)]
    flat = [(lvl, a, wh) for lvl, level in enumerate(info.anchors) for a, wh in enumerate(level)]
    all_wh = np.array([wh for _, _, wh in flat])
    for b, (img_boxes, img_classes) in enumerate(zip(boxes, classes)):
        img_boxes = np.asarray(img_boxes, "float64").reshape(-1, 4)
        img_classes = np.asarray(img_classes).reshape(-1)
        if len(img_boxes) != len(img_classes):
            raise ValueError(f"image {b}: {len(img_boxes)} boxes but {len(img_classes)} classes")
        if len(img_boxes) == 0:
            continue
        if np.any((img_classes < 0) | (img_classes >= k)):
            raise ValueError(f"image {b}: class ids must be in [0, {k}), got {img_classes.tolist()}")
        y1, x1, y2, x2 = (img_boxes[:, i] for i in range(4))
        w, h = (x2 - x1) * width, (y2 - y1) * height
        cx, cy = (x1 + x2) / 2 * width, (y1 + y2) / 2 * height
        best = wh_iou(np.stack([w, h], -1), all_wh).argmax(1)
        for j in range(len(img_boxes)):
            if w[j] <= 0 or h[j] <= 0:
                continue
            lvl, a, (aw, ah) = flat[best[j]]
            s = info.strides[lvl]
            t = targets[lvl]
            gx = min(max(cx[j] / s, 0.0), t.shape[2] - 1e-6)
            gy = min(max(cy[j] / s, 0.0), t.shape[1] - 1e-6)
            col, row = int(gx), int(gy)
            t[b, row, col, a, :] = 0.0
            t[b, row, col, a, 0:4] = (gx - col, gy - row, np.log(w[j] / aw), np.log(h[j] / ah))
            t[b, row, col, a, 4] = 1.0
            t[b, row, col, a, 5 + int(img_classes[j])] = 1.0
    return targets


def decode(outputs, info):
    """Raw head outputs (list, fine to coarse) -> boxes (batch, N, 4) normalized yxyx and scores (batch, N, K).

    score = sigmoid(objectness) * sigmoid(class logit), N = sum over scales of H * W * A.
    """
    info = _info(info)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    if len(outputs) != len(info.strides):
        raise ValueError(f"expected {len(info.strides)} head outputs, got {len(outputs)}")
    height, width = info.input_size
    all_boxes, all_scores = [], []
    for out, stride, anchors in zip(outputs, info.strides, info.anchors):
        out = tf.convert_to_tensor(out, tf.float32)
        grid_h, grid_w = int(out.shape[1]), int(out.shape[2])
        cols, rows = tf.meshgrid(tf.range(grid_w, dtype=tf.float32), tf.range(grid_h, dtype=tf.float32))
        grid = tf.stack([cols, rows], -1)[None, :, :, None, :]  # (1, H, W, 1, 2) as (x, y)
        xy = (tf.sigmoid(out[..., 0:2]) + grid) * float(stride)
        wh = tf.exp(tf.minimum(out[..., 2:4], MAX_LOG_WH)) * tf.constant(anchors, tf.float32)
        scale = tf.constant([width, height], tf.float32)
        lo, hi = (xy - wh / 2) / scale, (xy + wh / 2) / scale
        boxes = tf.stack([lo[..., 1], lo[..., 0], hi[..., 1], hi[..., 0]], -1)
        scores = tf.sigmoid(out[..., 4:5]) * tf.sigmoid(out[..., 5:])
        batch = tf.shape(out)[0]
        all_boxes.append(tf.reshape(boxes, [batch, -1, 4]))
        all_scores.append(tf.reshape(scores, [batch, -1, info.num_classes]))
    return tf.concat(all_boxes, 1), tf.concat(all_scores, 1)


def yolo_loss(y_true, y_pred, box_weight=1.0, obj_weight=1.0, noobj_weight=1.0, class_weight=1.0):
    """YOLOv3-style loss of one scale, summed over cells and anchors; returns one value per image.

    center: BCE between sigmoid(t_xy) and the cell offset; size: 0.5 * squared error of log(size/anchor);
    both only where an object is assigned. Objectness: BCE everywhere (positives weighted by obj_weight,
    negatives by noobj_weight). Classes: BCE per class where an object is assigned.
    """
    y_true = tf.cast(y_true, tf.float32)
    y_pred = tf.cast(y_pred, tf.float32)
    obj = y_true[..., 4]
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    xy = tf.reduce_sum(bce(labels=y_true[..., 0:2], logits=y_pred[..., 0:2]), -1)
    wh = 0.5 * tf.reduce_sum(tf.square(y_true[..., 2:4] - y_pred[..., 2:4]), -1)
    obj_loss = bce(labels=obj, logits=y_pred[..., 4]) * (obj * obj_weight + (1.0 - obj) * noobj_weight)
    cls = tf.reduce_sum(bce(labels=y_true[..., 5:], logits=y_pred[..., 5:]), -1)
    per_cell = box_weight * obj * (xy + wh) + obj_loss + class_weight * obj * cls
    return tf.reduce_sum(per_cell, axis=[1, 2, 3])


def loss_terms(y_true, y_pred):
    """The loss split into box / objectness / class parts (summed over the batch), for reporting."""
    y_true = tf.cast(y_true, tf.float32)
    y_pred = tf.cast(y_pred, tf.float32)
    obj = y_true[..., 4]
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    box = obj * (tf.reduce_sum(bce(labels=y_true[..., 0:2], logits=y_pred[..., 0:2]), -1)
                 + 0.5 * tf.reduce_sum(tf.square(y_true[..., 2:4] - y_pred[..., 2:4]), -1))
    return {"box": float(tf.reduce_sum(box)),
            "objectness": float(tf.reduce_sum(bce(labels=obj, logits=y_pred[..., 4]))),
            "class": float(tf.reduce_sum(obj * tf.reduce_sum(bce(labels=y_true[..., 5:], logits=y_pred[..., 5:]),
                                                             -1)))}
