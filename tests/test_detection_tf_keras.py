"""Detectors under tf_keras (the flavour QAT needs): same graph, weights portable by layer name; int8 export."""
import numpy as np
import pytest

from keras_csp.detection.export import save_weights_npz
from keras_csp.models import create_model


def test_detector_weights_travel_to_tf_keras(python_subprocess, tmp_path):
    model = create_model("csppeleenet_tiny_efm", input_shape=(64, 64, 3))
    x = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0)[0])
    save_weights_npz(model, tmp_path / "w.npz")
    out = python_subprocess(f"""
        import numpy as np
        from keras_csp.backend import LEGACY
        assert LEGACY
        from keras_csp.models import create_model
        from keras_csp.detection.export import load_weights_npz
        m = create_model("peleenet_tiny_prn", input_shape=(64, 64, 3), num_classes=4)
        assert [tuple(o.shape) for o in m.outputs] == [(None, 8, 8, 3, 9), (None, 4, 4, 3, 9), (None, 2, 2, 3, 9)]
        m = load_weights_npz(create_model("csppeleenet_tiny_efm", input_shape=(64, 64, 3)), r"{tmp_path}/w.npz")
        y = m.predict(np.load(r"{tmp_path}/x.npy"), verbose=0)[0]
        np.testing.assert_allclose(y, np.load(r"{tmp_path}/y.npy"), rtol=1e-4, atol=1e-4)
        print("same outputs")
    """, legacy=True)
    assert "same outputs" in out


@pytest.mark.slow
def test_int8_export_has_no_inner_requantize(tmp_path):
    from keras_csp.legacy import with_tf_keras
    model = create_model("csppeleenet_tiny_efm", input_shape=(64, 64, 3))
    save_weights_npz(model, tmp_path / "w.npz")
    rep = with_tf_keras("keras_csp.detection.export:export_int8", name="csppeleenet_tiny_efm",
                        weights=str(tmp_path / "w.npz"), out=str(tmp_path / "d.tflite"), input_size=64,
                        calib_scenes=32, eval_scenes=8, qat_steps=2)
    assert rep["inner_quantize_ops"] == 0 and rep["concat_scale_mismatches"] == 0
    assert rep["ops"].get("CONV_2D", 0) > 0 and "DEQUANTIZE" not in rep["ops"]
