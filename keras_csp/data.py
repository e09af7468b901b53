"""Datasets for training and quantizing the zoo: bundled scikit-learn digits, or an image folder.

Bundled data (no download): scikit-learn's `digits` (1797 grayscale 8x8 images of the digits 0-9,
pixel values 0..16). `load_dataset("digits")` upsamples each image 3x (nearest neighbour) to 24x24,
zero-pads it to 32x32 (the tiny models' input size), repeats it to 3 channels and scales it to
float32 in [0, 1]:

    x = pixel / 16            (pixel in 0..16; for 8-bit images the same range is pixel / 255)

so the int8 model's input is a plain 8-bit image with mean 0 and std 255 (`NORMALIZATION`), which is
what the TFLite metadata records. Splits are stratified and fixed by `seed`:
train 70% / validation 10% / test 20% by default.

An image-folder dataset (one sub-folder per class, as `keras.utils.image_dataset_from_directory`
expects) is read with `load_image_folder`, which returns `tf.data` pipelines with the same [0, 1]
scaling.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

DATASETS = ("digits",)
NORMALIZATION = {"mean": [0.0], "std": [255.0]}   # uint8 pixel p -> model input p / 255
IMAGE_SIZE = 32


@dataclass
class Dataset:
    """Numpy splits of an image classification dataset (NHWC float32 in [0, 1], int labels)."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: List[str] = field(default_factory=list)

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def summary(self):
        return {"name": self.name, "input_shape": list(self.input_shape), "classes": self.num_classes,
                "train": int(len(self.x_train)), "val": int(len(self.x_val)), "test": int(len(self.x_test))}

    def subset(self, n_train=None, n_test=None):
        """A smaller copy (first n examples of each split), for fast tests."""
        return Dataset(self.name, self.x_train[:n_train], self.y_train[:n_train], self.x_val[:n_test],
                       self.y_val[:n_test], self.x_test[:n_test], self.y_test[:n_test], list(self.labels))


def digits_to_images(images, size=IMAGE_SIZE, scale=3):
    """(N, 8, 8) digits with values 0..16 -> (N, size, size, 3) float32 in [0, 1].

    Each image is upsampled `scale`x by nearest neighbour and zero-padded (centred) to size x size.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"expected (N, H, W) images, got shape {images.shape}")
    up = images.repeat(scale, axis=1).repeat(scale, axis=2) / 16.0
    h, w = up.shape[1:]
    if h > size or w > size:
        raise ValueError(f"{h}x{w} upsampled images do not fit in {size}x{size}")
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((len(up), size, size, 3), np.float32)
    out[:, top:top + h, left:left + w, :] = up[..., None]
    return np.clip(out, 0.0, 1.0)


def split_indices(labels, val_fraction=0.1, test_fraction=0.2, seed=0):
    """Stratified train/val/test index arrays, fixed by `seed`."""
    from sklearn.model_selection import train_test_split
    if not (0 < test_fraction < 1 and 0 <= val_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"bad split fractions val={val_fraction}, test={test_fraction}")
    idx = np.arange(len(labels))
    train_val, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=labels)
    if val_fraction == 0:
        return train_val, np.array([], dtype=int), test
    rel = val_fraction / (1.0 - test_fraction)
    train, val = train_test_split(train_val, test_size=rel, random_state=seed, stratify=labels[train_val])
    return np.sort(train), np.sort(val), np.sort(test)


def load_digits(size=IMAGE_SIZE, val_fraction=0.1, test_fraction=0.2, seed=0) -> Dataset:
    """scikit-learn's bundled digits as 32x32x3 float images in [0, 1], stratified splits."""
    from sklearn.datasets import load_digits as sk_load_digits
    raw = sk_load_digits()
    x = digits_to_images(raw.images, size=size, scale=max(1, size // 10))
    y = raw.target.astype(np.int64)
    tr, va, te = split_indices(y, val_fraction, test_fraction, seed)
    return Dataset("digits", x[tr], y[tr], x[va], y[va], x[te], y[te], [str(i) for i in range(10)])


def load_dataset(name, **kwargs) -> Dataset:
    """A bundled dataset by name (`DATASETS`)."""
    key = str(name).lower()
    if key == "digits":
        return load_digits(**kwargs)
    raise ValueError(f"unknown dataset {name!r}; bundled datasets: {', '.join(DATASETS)} "
                     f"(use --data-dir for an image folder)")


def augment_fn(max_shift=2):
    """A tf.data map function: random translation by up to `max_shift` pixels (digits must not be flipped)."""
    import tensorflow as tf

    def augment(x, y):
        pad = tf.pad(x, [[max_shift, max_shift], [max_shift, max_shift], [0, 0]])
        x = tf.image.random_crop(pad, tf.shape(x))
        return x, y
    return augment


def make_tf_dataset(x, y, batch_size=64, shuffle=False, augment=False, seed=0):
    """numpy arrays -> batched, prefetched tf.data.Dataset (optionally shuffled and augmented)."""
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if augment:
        ds = ds.map(augment_fn(), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


@dataclass
class FolderDataset:
    """tf.data pipelines read from an image folder (one sub-folder per class)."""
    train: object
    val: object
    test: Optional[object]
    labels: List[str]
    input_shape: Tuple[int, int, int]

    @property
    def num_classes(self):
        return len(self.labels)


def load_image_folder(data_dir, image_size=(IMAGE_SIZE, IMAGE_SIZE), batch_size=64, val_fraction=0.2,
                      seed=0, test_dir=None, color_mode="rgb") -> FolderDataset:
    """Image-folder dataset via `keras.utils.image_dataset_from_directory`, scaled to [0, 1].

    `data_dir/<class>/*.jpg|png|...`; a validation split of `val_fraction` is held out with `seed`.
    `test_dir` (same layout) gives the test split; without it, the validation split doubles as test.
    """
    import tensorflow as tf
    from .backend import keras
    image_size = tuple(image_size)
    common = dict(image_size=image_size, batch_size=batch_size, seed=seed, color_mode=color_mode,
                  label_mode="int")
    train = keras.utils.image_dataset_from_directory(data_dir, validation_split=val_fraction, subset="training",
                                                     shuffle=True, **common)
    val = keras.utils.image_dataset_from_directory(data_dir, validation_split=val_fraction, subset="validation",
                                                   shuffle=False, **common)
    labels = list(train.class_names)
    test = None
    if test_dir:
        test = keras.utils.image_dataset_from_directory(test_dir, shuffle=False, **common)

    def scale(x, y):
        return tf.cast(x, tf.float32) / 255.0, y

    def pipe(ds):
        return None if ds is None else ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    channels = {"rgb": 3, "grayscale": 1, "rgba": 4}[color_mode]
    return FolderDataset(pipe(train), pipe(val), pipe(test) if test is not None else pipe(val), labels,
                         image_size + (channels,))


def numpy_from_tf(ds, limit=None):
    """Collect (x, y) numpy arrays from a batched tf.data.Dataset (at most `limit` examples)."""
    xs, ys, n = [], [], 0
    for x, y in ds:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
        n += len(xs[-1])
        if limit is not None and n >= limit:
            break
    if not xs:
        raise ValueError("empty dataset")
    return np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]
