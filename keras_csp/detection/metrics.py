"""mAP@0.5 (PASCAL VOC style: all-point interpolated AP per class, averaged over classes with ground truth)."""
import numpy as np


def box_iou(a, b):
    """IoU matrix of boxes a (N, 4) and b (M, 4), both [y1, x1, y2, x2]."""
    a = np.asarray(a, "float64").reshape(-1, 4)
    b = np.asarray(b, "float64").reshape(-1, 4)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(br - tl, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def average_precision(recall, precision):
    """Area under the precision envelope (VOC 2010+ all-point interpolation)."""
    r = np.concatenate([[0.0], np.asarray(recall, "float64"), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, "float64"), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    idx = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))


def evaluate_map(detections, ground_truth, num_classes, iou_threshold=0.5):
    """mAP over a dataset.

    detections: per image a dict with `boxes` (k, 4), `scores` (k,), `classes` (k,).
    ground_truth: per image a dict with `boxes` (m, 4) and `classes` (m,).
    A detection is a true positive when it overlaps a not yet matched ground-truth box of its class
    with IoU >= iou_threshold (detections taken in descending score order over the whole dataset).
    Returns {"map": float, "ap": {class: AP}, "num_gt": {class: count}}; classes without ground
    truth are left out of the mean.
    """
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection entries for {len(ground_truth)} images")
    ap, counts = {}, {}
    for c in range(int(num_classes)):
        gts = {}
        n_gt = 0
        for i, g in enumerate(ground_truth):
            mask = np.asarray(g["classes"]).reshape(-1) == c
            gts[i] = (np.asarray(g["boxes"], "float64").reshape(-1, 4)[mask], np.zeros(int(mask.sum()), bool))
            n_gt += int(mask.sum())
        dets = []
        for i, d in enumerate(detections):
            mask = np.asarray(d["classes"]).reshape(-1) == c
            for box, score in zip(np.asarray(d["boxes"]).reshape(-1, 4)[mask], np.asarray(d["scores"]).reshape(-1)[mask]):
                dets.append((float(score), i, box))
        if n_gt == 0:
            continue
        counts[c] = n_gt
        dets.sort(key=lambda t: -t[0])
        tp = np.zeros(len(dets))
        for k, (_, i, box) in enumerate(dets):
            gt_boxes, used = gts[i]
            if len(gt_boxes) == 0:
                continue
            ious = box_iou(box[None], gt_boxes)[0]
            j = int(ious.argmax())
            if ious[j] >= iou_threshold and not used[j]:
                used[j] = True
                tp[k] = 1
        ctp = np.cumsum(tp)
        recall = ctp / n_gt
        precision = ctp / np.arange(1, len(dets) + 1)
        ap[c] = average_precision(recall, precision) if len(dets) else 0.0
    return {"map": float(np.mean(list(ap.values()))) if ap else 0.0, "ap": ap, "num_gt": counts}
