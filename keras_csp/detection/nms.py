"""Non-maximum suppression with TensorFlow's own op (`tf.image.combined_non_max_suppression`)."""
import numpy as np
import tensorflow as tf

from .boxes import decode


def non_max_suppression(boxes, scores, max_per_class=20, max_total=50, iou_threshold=0.45, score_threshold=0.25):
    """Per-class NMS over a batch. boxes (batch, N, 4) normalized yxyx shared by all classes, scores (batch, N, K).

    Returns (boxes (batch, max_total, 4), scores (batch, max_total), classes (batch, max_total),
    valid (batch,)) as tf.image.combined_non_max_suppression does; boxes are clipped to [0, 1].
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    if boxes.shape.rank != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (batch, N, 4), got {boxes.shape}")
    if scores.shape.rank != 3:
        raise ValueError(f"scores must be (batch, N, num_classes), got {scores.shape}")
    out = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], scores, max_output_size_per_class=int(max_per_class), max_total_size=int(max_total),
        iou_threshold=float(iou_threshold), score_threshold=float(score_threshold), clip_boxes=True)
    return out.nmsed_boxes, out.nmsed_scores, tf.cast(out.nmsed_classes, tf.int32), out.valid_detections


def postprocess(outputs, info, **nms_kwargs):
    """Raw head outputs -> a list (one per image) of dicts with numpy `boxes` (k, 4), `scores` (k,), `classes` (k,)."""
    boxes, scores = decode(outputs, info)
    b, s, c, valid = non_max_suppression(boxes, scores, **nms_kwargs)
    b, s, c, valid = b.numpy(), s.numpy(), c.numpy(), valid.numpy()
    return [{"boxes": b[i, :n], "scores": s[i, :n], "classes": c[i, :n]} for i, n in enumerate(valid)]


def detect(model, images, batch_size=32, **nms_kwargs):
    """Run a detector on images (batch, H, W, 3) and return per-image detections (see `postprocess`)."""
    from .models import detector_info
    info = detector_info(model)
    images = np.asarray(images, "float32")
    results = []
    for start in range(0, len(images), batch_size):
        outputs = model(images[start:start + batch_size], training=False)
        results.extend(postprocess(outputs, info, **nms_kwargs))
    return results
