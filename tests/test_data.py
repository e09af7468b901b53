"""Bundled digits and image-folder datasets (keras_csp.data)."""
import numpy as np
import pytest

from keras_csp import data


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


def test_digits_shapes_range_and_splits(digits):
    assert digits.name == "digits" and digits.labels == [str(i) for i in range(10)]
    assert digits.input_shape == (32, 32, 3)
    n = len(digits.x_train) + len(digits.x_val) + len(digits.x_test)
    assert n == 1797
    assert len(digits.x_test) == 360 and len(digits.x_val) == 180
    for x, y in [(digits.x_train, digits.y_train), (digits.x_val, digits.y_val), (digits.x_test, digits.y_test)]:
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
        assert len(x) == len(y) and set(np.unique(y)) == set(range(10))   # stratified: every class in every split
    # channels are replicated grey, the 4-pixel border (24x24 digit centred in 32x32) is zero
    np.testing.assert_array_equal(digits.x_train[..., 0], digits.x_train[..., 2])
    assert digits.x_train[:, :4].max() == 0 and digits.x_train[:, -4:].max() == 0
    assert digits.x_train.max() == 1.0
    assert digits.summary() == {"name": "digits", "input_shape": [32, 32, 3], "classes": 10, "train": 1257,
                                "val": 180, "test": 360}


def test_digits_splits_are_disjoint_and_seeded(digits):
    from sklearn.datasets import load_digits
    raw = load_digits().images
    y = load_digits().target
    tr, va, te = data.split_indices(y, seed=0)
    assert not (set(tr) & set(va)) and not (set(tr) & set(te)) and not (set(va) & set(te))
    np.testing.assert_array_equal(data.digits_to_images(raw[te]), digits.x_test)
    again = data.load_digits(seed=0)
    np.testing.assert_array_equal(again.y_train, digits.y_train)
    other = data.load_digits(seed=1)
    assert not np.array_equal(other.y_test, digits.y_test)


def test_digits_to_images_upsamples_and_pads():
    img = np.zeros((1, 8, 8))
    img[0, 0, 0] = 16
    img[0, 7, 7] = 8
    out = data.digits_to_images(img)
    assert out.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(out[0, 4:7, 4:7, :], 1.0)       # pixel (0,0) -> 3x3 block at offset 4
    np.testing.assert_array_equal(out[0, 25:28, 25:28, 1], 0.5)   # pixel (7,7) -> block at 4 + 21
    assert out.sum() == pytest.approx(3 * 9 * 1.5)
    with pytest.raises(ValueError, match="expected"):
        data.digits_to_images(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="do not fit"):
        data.digits_to_images(np.zeros((1, 8, 8)), size=16, scale=3)


def test_unknown_dataset_and_bad_splits():
    with pytest.raises(ValueError, match="unknown dataset 'olivetti'.*digits"):
        data.load_dataset("olivetti")
    with pytest.raises(ValueError, match="split fractions"):
        data.split_indices(np.arange(10) % 2, val_fraction=0.5, test_fraction=0.6)


def test_subset_and_tf_pipeline(digits):
    small = digits.subset(100, 50)
    assert len(small.x_train) == 100 and len(small.x_test) == 50 and small.labels == digits.labels
    ds = data.make_tf_dataset(small.x_train, small.y_train, batch_size=32, shuffle=True, augment=True)
    xs, ys = data.numpy_from_tf(ds)
    assert xs.shape == (100, 32, 32, 3) and ys.shape == (100,)
    assert xs.min() >= 0 and xs.max() <= 1
    # random shifts move pixels but keep the ink (the border is wide enough for a 2-pixel shift)
    assert sorted(np.round(xs.sum(axis=(1, 2, 3)), 3)) == sorted(np.round(small.x_train.sum(axis=(1, 2, 3)), 3))


def test_image_folder(tmp_path):
    from keras_csp.backend import keras
    rng = np.random.default_rng(0)
    for cls, value in (("cat", 40), ("dog", 220)):
        (tmp_path / cls).mkdir()
        for i in range(6):
            img = np.full((20, 24, 3), value, np.uint8) + rng.integers(0, 10, (20, 24, 3)).astype(np.uint8)
            keras.utils.save_img(str(tmp_path / cls / f"{i}.png"), img, scale=False)
    fd = data.load_image_folder(str(tmp_path), image_size=(16, 16), batch_size=4, val_fraction=0.25, seed=1)
    assert fd.labels == ["cat", "dog"] and fd.num_classes == 2 and fd.input_shape == (16, 16, 3)
    xtr, ytr = data.numpy_from_tf(fd.train)
    xva, yva = data.numpy_from_tf(fd.val)
    assert len(xtr) + len(xva) == 12 and len(xva) == 3
    assert xtr.shape[1:] == (16, 16, 3) and xtr.dtype == np.float32
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    # class 'dog' images are bright, 'cat' dark: labels follow the folders
    for x, y in [(xtr, ytr), (xva, yva)]:
        np.testing.assert_array_equal(x.mean(axis=(1, 2, 3)) > 0.5, y == 1)
