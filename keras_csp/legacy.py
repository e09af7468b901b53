"""Run a keras-csp function in a tf_keras (Keras 2) process.

TensorFlow reads TF_USE_LEGACY_KERAS when it is imported, so a process that already uses Keras 3 runs
tf_keras work (tensorflow-model-optimization's QAT, multi-worker training) in a child process. The
child's result comes back as JSON, its error as the same exception with the same message.
"""
import importlib
import json
import os
import subprocess
import sys
import traceback


class LegacySubprocessError(RuntimeError):
    """The tf_keras subprocess failed; the message carries the error raised there."""


_LEGACY_CHILD = "from keras_csp.legacy import _child_main; _child_main()"


def _resolve(target):
    """ "module:function" -> the function."""
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def _child_main():
    """In the tf_keras subprocess: argv = [-c, json kwargs, result path, target]."""
    from . import quiet
    quiet.silence_python_logs()
    args, result_path, target = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    try:
        res = {"result": _resolve(target)(**args)}
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        res = {"error": {"type": type(e).__name__, "module": type(e).__module__, "message": str(e),
                         "traceback": traceback.format_exc()}}
    with open(result_path, "w") as f:
        json.dump(res, f)
    sys.exit(1 if "error" in res else 0)


# Errors that cross the process boundary as themselves (bad input stays a ValueError, a missing
# package an ImportError); anything else becomes a LegacySubprocessError with the same message.
_PASSTHROUGH = {"ValueError": ValueError, "TypeError": TypeError, "FileNotFoundError": FileNotFoundError,
                "ModuleNotFoundError": ModuleNotFoundError, "ImportError": ImportError, "OSError": OSError}


def run_legacy(target, timeout=None, **kwargs):
    """Run `target` ("module:function") with `**kwargs` in a fresh TF_USE_LEGACY_KERAS=1 process.

    Its stdout (progress) is streamed; returns the function's JSON-serializable result. An exception
    in the subprocess is raised here with its own type (for the common built-in ones) and message.
    """
    import tempfile
    fd, result_path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        proc = subprocess.run([sys.executable, "-c", _LEGACY_CHILD, json.dumps(kwargs), result_path, target],
                              env=env, timeout=timeout)
        try:
            with open(result_path) as f:
                res = json.load(f)
        except (OSError, ValueError):
            res = {}
        if "result" in res and proc.returncode == 0:
            return res["result"]
        err = res.get("error")
        if err is None:
            raise LegacySubprocessError(f"{target} failed in the tf_keras subprocess (exit code "
                                        f"{proc.returncode}, no error report: killed?)")
        cls = _PASSTHROUGH.get(err["type"])
        message = err["message"]
        if cls is None:
            cls, message = LegacySubprocessError, f"{err['type']}: {message}"
        raise cls(f"{message} (in the tf_keras subprocess running {target})")
    finally:
        os.unlink(result_path)


def with_tf_keras(target, timeout=None, **kwargs):
    """`target(**kwargs)` under tf_keras: in this process when it already runs tf_keras, otherwise in a
    fresh TF_USE_LEGACY_KERAS=1 process (`run_legacy`)."""
    from . import backend
    if backend.LEGACY:
        return _resolve(target)(**kwargs)
    return run_legacy(target, timeout=timeout, **kwargs)
