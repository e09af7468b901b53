"""Training (keras_csp.train, `keras-csp train`): outputs, strategies, cross-flavour reload, accuracy."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from keras_csp import train as T
from keras_csp.cli import cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    res = CliRunner().invoke(cli, ["train", "--model", "cspdensenet_tiny", "--dataset", "digits", "--epochs", "1",
                                   "--batch-size", "32", "--limit-train", "256", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_train_cli_writes_model_and_report(trained):
    out, output = trained
    assert "float test accuracy" in output
    for name in ("model.keras", "report.json", "model.json", "model.weights.npz", "checkpoints/ckpt.weights.h5"):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "cspdensenet_tiny" and report["dataset"] == "digits" and report["epochs"] == 1
    assert 0.0 <= report["float_accuracy"] <= 1.0 and report["train_seconds"] > 0
    assert report["strategy"] == "_DefaultDistributionStrategy"
    assert set(report["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    spec = json.loads((out / "model.json").read_text())
    assert spec["model"] == "cspdensenet_tiny" and spec["labels"] == [str(i) for i in range(10)]
    assert spec["kwargs"] == {"input_shape": [32, 32, 3], "classes": 10}
    assert spec["normalization"] == {"mean": [0.0], "std": [255.0]}


def test_saved_model_reloads_both_ways(trained):
    from keras_csp.backend import keras
    from keras_csp.data import load_digits
    out, _ = trained
    x = load_digits().x_test[:16]
    native = keras.models.load_model(str(out / "model.keras"))
    rebuilt = T.rebuild_model(T.read_model_spec(str(out / "model.keras")))
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), native.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert T.read_model_spec(str(out)) is not None
    with pytest.raises(FileNotFoundError):
        T.read_model_spec(str(out / "checkpoints"))


def test_trained_keras3_model_loads_under_tf_keras(trained, python_subprocess, tmp_path):
    """The QAT process (tf_keras) rebuilds the Keras 3 model and gets the same outputs."""
    from keras_csp.backend import keras
    from keras_csp.data import load_digits
    out, _ = trained
    x = load_digits().x_test[:16]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", keras.models.load_model(str(out / "model.keras")).predict(x, verbose=0))
    res = python_subprocess(f"""
        import numpy as np
        from keras_csp.backend import keras, LEGACY
        from keras_csp.quantize import load_float_model
        assert LEGACY
        model, spec = load_float_model(r"{out / 'model.keras'}")
        y = model.predict(np.load(r"{tmp_path / 'x.npy'}"), verbose=0)
        np.testing.assert_allclose(y, np.load(r"{tmp_path / 'y.npy'}"), rtol=1e-4, atol=1e-5)
        print("same", spec["model"])
    """, legacy=True)
    assert "same cspdensenet_tiny" in res


def test_weight_transfer_errors(trained):
    from keras_csp.models import create_model
    out, _ = trained
    weights = dict(np.load(out / "model.weights.npz"))
    other = create_model("cspresnet_tiny", input_shape=(32, 32, 3), classes=10)
    with pytest.raises(ValueError, match="layer"):
        T.set_layer_weights(other, weights)
    model = create_model("cspdensenet_tiny", input_shape=(32, 32, 3), classes=10)
    weights["predictions/0"] = weights["predictions/0"][:, :5]
    with pytest.raises(ValueError, match="predictions"):
        T.set_layer_weights(model, weights)


def test_select_strategy(monkeypatch):
    import tensorflow as tf
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert T.select_strategy("auto") is tf.distribute.get_strategy()
    assert T.select_strategy("default") is tf.distribute.get_strategy()
    assert isinstance(T.select_strategy("mirrored"), tf.distribute.MirroredStrategy)   # CPU replica on this host
    with pytest.raises(ValueError, match="strategy must be one of"):
        T.select_strategy("tpu")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["h1:1", "h2:2"], "chief": ["h0:0"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert T._tf_config_workers() == 3            # "auto" would pick MultiWorkerMirroredStrategy
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        T._tf_config_workers()


def test_unknown_model_and_dataset():
    with pytest.raises(ValueError, match="unknown model name"):
        T.train("cspdensenet_tinyy", epochs=1)
    with pytest.raises(ValueError, match="unknown dataset"):
        T.train("cspdensenet_tiny", dataset="mnist", epochs=1)


@pytest.mark.slow
def test_train_on_image_folder(tmp_path):
    from keras_csp.backend import keras
    rng = np.random.default_rng(0)
    for cls, value in (("dark", 30), ("light", 220)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(8):
            img = (np.full((32, 32, 3), value) + rng.integers(0, 20, (32, 32, 3))).astype(np.uint8)
            keras.utils.save_img(str(tmp_path / "imgs" / cls / f"{i}.png"), img, scale=False)
    _, report = T.train("cspresnet_tiny", data_dir=str(tmp_path / "imgs"), epochs=1, batch_size=4,
                        out=str(tmp_path / "out"), verbose=0)
    assert report["dataset"] == "imgs"
    spec = json.loads((tmp_path / "out" / "model.json").read_text())
    assert spec["labels"] == ["dark", "light"] and spec["data_dir"].endswith("imgs")


@pytest.mark.slow
def test_real_training_accuracy(tmp_path):
    """Full-size digits run (as `keras-csp demo` does): float test accuracy well above 95%."""
    _, report = T.train("cspdensenet_tiny", epochs=8, batch_size=32, out=str(tmp_path), verbose=0)
    assert report["float_accuracy"] >= 0.97, report


@pytest.mark.slow
def test_multiworker_strategy_single_worker(python_subprocess, tmp_path):
    """MultiWorkerMirroredStrategy from TF_CONFIG (one local worker) trains with the same code."""
    import socket
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    out = python_subprocess(f"""
        import json, os
        os.environ["TF_CONFIG"] = json.dumps({{"cluster": {{"worker": ["localhost:{port}"]}},
                                               "task": {{"type": "worker", "index": 0}}}})
        from keras_csp.train import train
        _, r = train("cspdensenet_tiny", epochs=1, batch_size=32, limit_train=128, strategy="multiworker",
                     verbose=0, out=r"{tmp_path}")
        print("strategy", r["strategy"])
    """)
    assert "strategy CollectiveAllReduceStrategy" in out


def test_two_local_workers_train_to_identical_weights(tmp_path):
    """MultiWorkerMirroredStrategy across two processes (two localhost ports in TF_CONFIG), launched as a
    user would on two machines: `keras-csp train --strategy multiworker`. All-reduced gradients keep the
    replicas in lock step, so both workers end with the same weights."""
    import socket
    import subprocess
    import sys

    ports = []
    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("localhost", 0))
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                   TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "keras_csp", "train", "--model", "cspdensenet_tiny", "--epochs", "1",
             "--batch-size", "32", "--limit-train", "128", "--strategy", "multiworker",
             "--out", str(tmp_path / f"worker{i}")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=600)[0])
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
        assert "MultiWorkerMirrored" in out or "CollectiveAllReduce" in out, out[-2000:]
    w0 = np.load(tmp_path / "worker0" / T.WEIGHTS_FILE)
    w1 = np.load(tmp_path / "worker1" / T.WEIGHTS_FILE)
    assert sorted(w0.files) == sorted(w1.files) and len(w0.files) > 10
    for k in w0.files:
        np.testing.assert_array_equal(w0[k], w1[k], err_msg=k)
