"""The same builders under tf_keras (Keras 2), the flavour QAT needs. Runs in its own process."""


def test_zoo_builds_and_roundtrips_under_tf_keras(python_subprocess, tmp_path):
    out = python_subprocess(f"""
        import numpy as np
        from keras_csp.backend import keras, LEGACY
        assert LEGACY and keras.__version__.startswith("2."), keras.__version__
        from keras_csp.models import create_model, list_models
        from keras_csp.layers import CSPStage, CrossChannelPooling
        # Every builder once: the 169 / 201 DenseNets are the 121's code with more layers (a third of
        # this test's time; tests/test_models.py builds them all under Keras 3).
        names = [n for n in list_models() if not any(s in n for s in ("_efm", "_yolo", "_prn", "169", "201"))]
        for name in names:
            size = 32 if "tiny" in name else 224
            m = create_model(name, input_shape=(size, size, 3), classes=10)
            assert m.output_shape == (None, 10), (name, m.output_shape)
        x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
        for name in ["cspdensenet_tiny", "cspresnet_tiny", "cspdarknet_tiny", "csppeleenet_tiny"]:
            m = create_model(name, input_shape=(32, 32, 3), classes=10)
            before = m.predict(x, verbose=0)
            m.save(r"{tmp_path}/m.keras")
            after = keras.models.load_model(r"{tmp_path}/m.keras").predict(x, verbose=0)
            np.testing.assert_array_equal(before, after)
        inp = keras.Input((8, 8, 16))
        m = keras.Model(inp, CrossChannelPooling(2)(CSPStage("dense", depth=2, growth_rate=8)(inp)))
        m.save(r"{tmp_path}/w.keras")
        y = keras.models.load_model(r"{tmp_path}/w.keras").predict(np.ones((1, 8, 8, 16), "float32"), verbose=0)
        np.testing.assert_allclose(y, m.predict(np.ones((1, 8, 8, 16), "float32"), verbose=0), rtol=1e-6)
        print("built", len(names))
    """, legacy=True)
    assert "built" in out
