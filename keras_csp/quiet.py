"""Quiet by default: a `keras-csp` command shows its own output (steps, progress bars, tables), not the
INFO / WARNING logs of TensorFlow, absl, the TFLite converter and LiteRT.

Those libraries write to file descriptor 2 from C++, some of them before any log level can be set
(absl's "log messages before absl::InitializeLog()"), so environment variables alone cannot silence
them. `native_logs_to_file()` points fd 2 at a log file for the whole command and gives Python's
`sys.stderr` (click errors, tracebacks) the original stream. The log file is kept and named when the
command fails, and removed otherwise. `keras-csp --verbose` (or KERAS_CSP_VERBOSE=1) shows everything.
"""
import contextlib
import os
import sys
import tempfile
import warnings

VERBOSE_ENV = "KERAS_CSP_VERBOSE"


def is_verbose():
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes")


def set_verbose(verbose):
    """Record the choice in the environment, so subprocesses (the tf_keras QAT process) follow it."""
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"


def silence_python_logs():
    """Before TensorFlow is imported: its C++ log level, and Python warnings / absl logging."""
    if is_verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    with contextlib.suppress(ImportError):
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)


@contextlib.contextmanager
def native_logs_to_file(prefix="keras-csp-"):
    """Send what native libraries write to fd 2 into a temporary log file; yields its path."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".log")
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    os.dup2(fd, 2)
    os.close(fd)
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(python_stderr, "encoding", None),
                           errors="backslashreplace")
    failed = True
    try:
        yield path
        failed = False
    except SystemExit as e:
        failed = e.code not in (None, 0)
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr.close()
        sys.stderr = python_stderr
        if failed and os.path.getsize(path):
            print(f"(library logs of this command: {path}; run with --verbose to see them live)",
                  file=sys.stderr)
        else:
            os.unlink(path)
