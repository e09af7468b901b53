"""Offline detection scenes made of scikit-learn's real handwritten digits (8 x 8 images, 10 classes).

Each scene is a canvas with a few digits pasted at random positions and scales (bilinear resize of the
8 x 8 image, a random tint per digit, light background noise); the box of each digit is the tight box
of its ink, so ground truth is exact. Digit images are split once by index: the first 75% feed the
"train" split, the rest the "val" split, so validation scenes show digits never seen in training.
"""
from dataclasses import dataclass
from typing import List

import numpy as np

NUM_CLASSES = 10


@dataclass
class Scenes:
    images: np.ndarray          # (n, H, W, 3) float32 in [0, 1]
    boxes: List[np.ndarray]     # per image (k, 4) normalized [y1, x1, y2, x2]
    classes: List[np.ndarray]   # per image (k,) int32 digit labels

    def __len__(self):
        return len(self.images)

    def ground_truth(self):
        return [{"boxes": b, "classes": c} for b, c in zip(self.boxes, self.classes)]


def _digits(split):
    from sklearn.datasets import load_digits
    d = load_digits()
    images = (d.images / 16.0).astype("float32")
    cut = int(len(images) * 0.75)
    if split == "train":
        return images[:cut], d.target[:cut]
    if split == "val":
        return images[cut:], d.target[cut:]
    raise ValueError(f"split must be 'train' or 'val', got {split!r}")


def _resize(img, size):
    from scipy.ndimage import zoom
    out = zoom(img, (size[0] / img.shape[0], size[1] / img.shape[1]), order=1)
    return np.clip(out, 0.0, 1.0)


def make_scenes(n, size=128, split="train", max_digits=4, min_digits=1, digit_size=(16, 48), seed=0,
                noise=0.08, max_tries=50):
    """`n` scenes of `size` x `size` with min_digits..max_digits non-overlapping digits each.

    digit_size: range of the pasted 8 x 8 digit's side in pixels (the ink box is a little smaller).
    """
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 and size >= 16, got n={n}, size={size}")
    lo, hi = digit_size
    if not 8 <= lo <= hi <= size:
        raise ValueError(f"digit_size must satisfy 8 <= min <= max <= size, got {digit_size}")
    digits, labels = _digits(split)
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, noise, size=(n, size, size, 3)).astype("float32")
    all_boxes, all_classes = [], []
    for i in range(n):
        boxes, classes, taken = [], [], []
        for _ in range(int(rng.integers(min_digits, max_digits + 1))):
            for _ in range(max_tries):
                side = int(rng.integers(lo, hi + 1))
                aspect = rng.uniform(0.85, 1.15)
                h, w = side, max(8, int(round(side * aspect)))
                if w > size:
                    continue
                y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
                k = int(rng.integers(len(digits)))
                patch = _resize(digits[k], (h, w))
                ys, xs = np.nonzero(patch > 0.2)
                if len(ys) == 0:
                    continue
                box = (y0 + ys.min(), x0 + xs.min(), y0 + ys.max() + 1, x0 + xs.max() + 1)
                # no overlap with the digits already placed (2 px margin)
                if any(not (box[2] + 2 <= t[0] or t[2] + 2 <= box[0] or box[3] + 2 <= t[1] or t[3] + 2 <= box[1])
                       for t in taken):
                    continue
                tint = rng.uniform(0.6, 1.0, size=3).astype("float32")
                region = images[i, y0:y0 + h, x0:x0 + w]
                np.maximum(region, patch[..., None] * tint, out=region)
                taken.append(box)
                boxes.append(np.array(box, "float32") / size)
                classes.append(int(labels[k]))
                break
        all_boxes.append(np.array(boxes, "float32").reshape(-1, 4))
        all_classes.append(np.array(classes, "int32"))
    return Scenes(images, all_boxes, all_classes)
