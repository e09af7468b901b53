"""Train a tiny detector on the offline digit scenes and measure its mAP@0.5 on held-out digits.

`train_detector()` is the whole recipe: scenes -> YOLO targets -> `model.fit` with the YOLO loss on
each scale (Adam, cosine learning-rate decay over a wall-clock budget) -> NMS -> mAP@0.5.
"""
import json
import math
import time

import numpy as np

from ..backend import keras
from .boxes import encode_targets, yolo_loss
from .data import NUM_CLASSES, make_scenes
from .metrics import evaluate_map
from .models import detector_info
from .nms import detect


class TimeBudget(keras.callbacks.Callback):
    """Stop after `seconds` of training; decay the learning rate along a cosine of elapsed time."""

    def __init__(self, seconds, base_lr, min_lr_ratio=0.05, warmup_steps=20):
        super().__init__()
        self.seconds = float(seconds)
        self.base_lr = float(base_lr)
        self.min_lr = float(base_lr) * min_lr_ratio
        self.warmup_steps = warmup_steps
        self.start = None
        self.steps = 0

    def on_train_begin(self, logs=None):
        self.begin = time.perf_counter()
        self.first_step_seconds = None

    def on_train_batch_begin(self, batch, logs=None):
        # the clock starts after the first step (graph tracing), reported as first_step_seconds
        frac = 0.0 if self.start is None else min(1.0, (time.perf_counter() - self.start) / self.seconds)
        lr = self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * frac))
        if self.steps < self.warmup_steps:
            lr *= (self.steps + 1) / self.warmup_steps
        self.model.optimizer.learning_rate.assign(lr)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.start is None:
            self.start = time.perf_counter()
            self.first_step_seconds = self.start - self.begin
        elif time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True


def compile_detector(model, learning_rate=1e-3):
    n = len(model.outputs)
    # No XLA: on a small CPU it spends more time compiling than a few minutes of training gain back.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=[yolo_loss] * n, jit_compile=False)
    return model


def dataset_loss(model, images, targets, batch_size=32):
    """Mean (over images) of the summed per-scale YOLO loss, without training."""
    total = 0.0
    for start in range(0, len(images), batch_size):
        outs = model(images[start:start + batch_size], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        total += float(sum(np.sum(yolo_loss(t[start:start + batch_size], o)) for t, o in zip(targets, outs)))
    return total / len(images)


def evaluate_detector(model, scenes, score_threshold=0.01, iou_threshold=0.45):
    dets = detect(model, scenes.images, score_threshold=score_threshold, iou_threshold=iou_threshold,
                  max_per_class=20, max_total=50)
    return evaluate_map(dets, scenes.ground_truth(), detector_info(model).num_classes), dets


def train_detector(name="csppeleenet_tiny_efm", input_size=128, train_scenes=3000, val_scenes=300,
                   batch_size=16, time_budget=240.0, max_epochs=1000, learning_rate=2e-3, seed=0, verbose=2,
                   model=None):
    """Train zoo detector `name` (a tiny one) on digit scenes for `time_budget` seconds; returns a result dict
    (mAP@0.5 on the val split, training time, steps, images seen, loss history) and the model."""
    from ..models import create_model
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    train = make_scenes(train_scenes, input_size, "train", seed=seed)
    val = make_scenes(val_scenes, input_size, "val", seed=seed + 10_000)
    data_seconds = time.perf_counter() - t0
    if model is None:
        model = create_model(name, input_shape=(input_size, input_size, 3), num_classes=NUM_CLASSES)
    info = detector_info(model)
    targets = encode_targets(train.boxes, train.classes, info)
    val_targets = encode_targets(val.boxes, val.classes, info)
    compile_detector(model, learning_rate)
    val_loss_before = dataset_loss(model, val.images, val_targets)
    budget = TimeBudget(time_budget, learning_rate)
    t1 = time.perf_counter()
    history = model.fit(train.images, targets, batch_size=batch_size, epochs=max_epochs, shuffle=True,
                        callbacks=[budget], verbose=verbose)
    train_seconds = time.perf_counter() - t1
    val_loss_after = dataset_loss(model, val.images, val_targets)
    t2 = time.perf_counter()
    result, _ = evaluate_detector(model, val)
    eval_seconds = time.perf_counter() - t2
    losses = [float(v) for v in history.history["loss"]]
    return {
        "model": model.name, "input_size": input_size, "params": int(model.count_params()),
        "train_scenes": train_scenes, "val_scenes": val_scenes, "batch_size": batch_size,
        "steps": budget.steps, "epochs": len(losses), "images_seen": budget.steps * batch_size,
        "train_seconds": round(train_seconds, 1), "first_step_seconds": round(budget.first_step_seconds or 0, 1), "data_seconds": round(data_seconds, 1),
        "eval_seconds": round(eval_seconds, 1), "epoch_loss": losses,
        "val_loss_before": val_loss_before, "val_loss_after": val_loss_after,
        "map50": result["map"], "ap50_per_class": {int(k): v for k, v in result["ap"].items()},
    }, model


def save_result(result, path):
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
