"""Training progress as one tqdm bar over epochs, instead of Keras' per-epoch lines.

`fit_progress(verbose, epochs, desc)` turns a `verbose` argument into what `Model.fit` takes:
"bar" -> (0, [EpochBar]); anything else is passed to Keras unchanged. The bar writes to stdout, so it
stays visible while `keras-csp` sends native library logs (fd 2) to a file.
"""
import sys


def fit_progress(verbose, epochs, desc):
    """(keras_verbose, callbacks) for Model.fit."""
    if verbose != "bar":
        return verbose, []
    return 0, [_epoch_bar_class()(epochs, desc)]


def _epoch_bar_class():
    from tqdm.auto import tqdm

    from .backend import keras

    class EpochBar(keras.callbacks.Callback):
        def __init__(self, epochs, desc):
            super().__init__()
            self.epochs, self.desc, self.bar = epochs, desc, None

        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=self.epochs, desc=self.desc, unit="epoch", file=sys.stdout, leave=True,
                            dynamic_ncols=True)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            shown = {k: f"{float(logs[k]):.3f}" for k in ("loss", "accuracy", "val_accuracy") if k in logs}
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(1)

        def on_train_end(self, logs=None):
            if self.bar is not None:
                self.bar.close()

    return EpochBar
