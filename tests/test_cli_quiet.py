"""`keras-csp` commands print their own output only; the libraries' logs appear with --verbose.
And errors from the tf_keras subprocess reach the caller as the real cause."""
import os
import subprocess
import sys

import pytest

# What TensorFlow / absl / LiteRT print on fd 2 when nobody silences them.
LIBRARY_LOG_MARKERS = ("I0000", "W0000", "E0000", "INFO: [", "WARNING: [", "absl::InitializeLog",
                       "Created TensorFlow Lite XNNPACK delegate")


def keras_csp(*args, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_CSP_VERBOSE")}
    return subprocess.run([sys.executable, "-m", "keras_csp", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory):
    from keras_csp.benchmark import export_ptq_int8
    return export_ptq_int8("cspdensenet_tiny", str(tmp_path_factory.mktemp("quiet") / "tiny_int8.tflite"), 32)


def test_commands_are_quiet_by_default_and_verbose_on_request(tiny_int8, tmp_path):
    fused = str(tmp_path / "fused.tflite")
    quiet_fuse = keras_csp("fuse", tiny_int8, fused)
    assert quiet_fuse.returncode == 0, quiet_fuse.stderr[-3000:]
    assert "fused" in quiet_fuse.stdout
    quiet_run = keras_csp("run", fused, "--compare", tiny_int8, "--runs", "2", "--warmup", "1")
    assert quiet_run.returncode == 0, quiet_run.stderr[-3000:]
    for proc in (quiet_fuse, quiet_run):
        noise = [m for m in LIBRARY_LOG_MARKERS if m in proc.stdout + proc.stderr]
        assert not noise, f"library logs leaked: {noise}\n{proc.stderr[-2000:]}"
    loud = keras_csp("--verbose", "run", fused, "--runs", "2", "--warmup", "1")
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert any(m in loud.stderr for m in LIBRARY_LOG_MARKERS), loud.stderr[-2000:]


def test_bad_input_is_one_line_and_names_the_log(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    proc = keras_csp("run", str(bad))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "not a well-formed .tflite" in proc.stderr, proc.stderr


def test_legacy_subprocess_errors_carry_the_real_cause(tmp_path):
    from keras_csp.legacy import LegacySubprocessError, run_legacy
    with pytest.raises(OSError, match="no_such_model"):
        run_legacy("keras_csp.quantize:quantize_pipeline", model_path=str(tmp_path / "no_such_model.keras"),
                   out=str(tmp_path / "m.tflite"))
    with pytest.raises(LegacySubprocessError, match="StatisticsError: mean requires at least one"):
        run_legacy("statistics:mean", data=[])
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        run_legacy("keras_csp.no_such_module:f")


def test_demo_output_fits_one_screen(tmp_path):
    """The demo reads as a short story: steps, progress bars, the result table (short epochs here)."""
    proc = keras_csp("demo", "--out", str(tmp_path / "demo"), "--epochs", "1", "--qat-epochs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    screen = proc.stdout + proc.stderr
    lines = [ln for ln in screen.splitlines() if ln.strip()]  # a progress bar redraws with \r: one line
    assert len(lines) <= 40, screen
    assert not [m for m in LIBRARY_LOG_MARKERS if m in screen], screen
    assert "[5/5]" in screen and "fused, XNNPACK" in screen and "360/360" in screen
