"""`keras-csp train`, `keras-csp quantize`, `keras-csp inspect` and `keras-csp demo`.

This module imports no TensorFlow at import time. `quantize` runs its work in a TF_USE_LEGACY_KERAS=1
subprocess when the current process already uses Keras 3 (tfmot needs tf_keras).
"""
import os

import click

from . import write_json


@click.command("train")
@click.option("--model", "model_name", default="cspdensenet_tiny", show_default=True, help="Zoo model name.")
@click.option("--dataset", default="digits", show_default=True, help="Bundled dataset (digits).")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False),
              help="Image folder (one sub-folder per class) instead of a bundled dataset.")
@click.option("--epochs", default=15, show_default=True, type=int)
@click.option("--batch-size", default=32, show_default=True, type=int)
@click.option("--lr", default=3e-3, show_default=True, type=float, help="Peak learning rate (cosine decay).")
@click.option("--no-augment", is_flag=True, help="Disable random-shift augmentation.")
@click.option("--strategy", default="auto", show_default=True,
              type=click.Choice(["auto", "default", "mirrored", "multiworker"]),
              help="tf.distribute strategy; auto: MultiWorkerMirrored with a multi-task TF_CONFIG, "
                   "Mirrored with >1 GPU, else default.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--limit-train", type=int, help="Use only the first N training images (quick runs).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
def train_command(model_name, dataset, data_dir, epochs, batch_size, lr, no_augment, strategy, seed, limit_train,
                  out):
    """Train a zoo model; writes OUT/model.keras and OUT/report.json (float test accuracy)."""
    from ..train import needs_legacy_keras, train_report
    kwargs = dict(model_name=model_name, dataset=dataset, epochs=epochs, out=out, batch_size=batch_size, lr=lr,
                  augment=not no_augment, data_dir=data_dir, strategy=strategy, seed=seed,
                  limit_train=limit_train, verbose="bar")
    if needs_legacy_keras(strategy):
        from ..legacy import run_legacy
        report = run_legacy("keras_csp.train:train_report", **kwargs)
    else:
        report = train_report(**kwargs)
    click.echo(f"{model_name} on {report['dataset']}: float test accuracy {report['float_accuracy']:.4f} "
               f"({report['train_seconds']} s, {report['strategy']})")
    click.echo(f"wrote {os.path.join(out, 'model.keras')} and {os.path.join(out, 'report.json')}")


def _quantize(**kwargs):
    from ..legacy import with_tf_keras
    return with_tf_keras("keras_csp.quantize:quantize_pipeline", **kwargs)


def _print_quant_report(rep):
    ptq = rep.get("ptq_accuracy")
    click.echo(f"accuracy on {rep['test_examples']} test images: float {rep['float_accuracy']:.4f}"
               + (f", int8 PTQ {ptq:.4f}" if ptq is not None else "")
               + f", int8 QAT {rep['qat_accuracy']:.4f}")
    click.echo("ops: " + ", ".join(f"{k} {v}" for k, v in rep["ops"].items()))
    click.echo(f"QUANTIZE/DEQUANTIZE inside the graph: {rep['inner_quantize_ops']}, "
               f"concats with mismatched scales: {rep['concat_scale_mismatches']}")


@click.command("quantize")
@click.argument("model_path", type=click.Path(exists=True))
@click.option("--qat-epochs", default=2, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="QAT int8 .tflite to write.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="JSON report to write.")
@click.option("--dataset", default=None, help="Bundled dataset (default: the one the model was trained on).")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), help="Image folder dataset.")
@click.option("--input-type", default="int8", show_default=True, type=click.Choice(["int8", "uint8", "float32"]))
@click.option("--output-type", default="int8", show_default=True, type=click.Choice(["int8", "uint8", "float32"]))
@click.option("--lr", default=1e-4, show_default=True, type=float, help="QAT fine-tuning learning rate.")
@click.option("--no-ptq", is_flag=True, help="Skip the post-training-quantization baseline.")
@click.option("--no-metadata", is_flag=True, help="Do not write TFLite metadata.")
def quantize_command(model_path, qat_epochs, out, report_path, dataset, data_dir, input_type, output_type, lr,
                     no_ptq, no_metadata):
    """QAT fine-tune MODEL_PATH (DIR/model.keras from `train`) and export full-int8 TFLite (+ PTQ baseline)."""
    rep = _quantize(model_path=model_path, out=out, qat_epochs=qat_epochs, report=report_path, dataset=dataset,
                    data_dir=data_dir, ptq=not no_ptq, input_type=input_type, output_type=output_type, lr=lr,
                    metadata=not no_metadata)
    _print_quant_report(rep)
    click.echo(f"wrote {out}" + (f" and {report_path}" if report_path else ""))


@click.command("inspect")
@click.argument("tflite_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--verbose", "-v", is_flag=True, help="Print every op with its tensors' dtypes and scales.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the audit as JSON.")
@click.option("--strict", is_flag=True, help="Exit with status 1 when requantize ops or concat scale "
                                             "mismatches are found.")
def inspect_command(tflite_path, verbose, json_path, strict):
    """Audit a .tflite: ops, tensor dtypes, quantization, inner QUANTIZE/DEQUANTIZE ops, concat scales."""
    from ..tflite.audit import inspect_tflite
    try:
        audit = inspect_tflite(tflite_path)
    except ValueError as e:
        raise click.ClickException(f"{tflite_path}: {e}")
    click.echo(audit.format(verbose=verbose))
    write_json(json_path, audit.to_dict(), indent=1)
    if strict and (audit.inner_quantize_ops() or audit.concat_scale_mismatches()):
        raise SystemExit(1)


@click.command("demo")
@click.option("--out", default="keras_csp_demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--model", "model_name", default="cspdensenet_tiny", show_default=True)
@click.option("--epochs", default=8, show_default=True, type=int, help="Float training epochs.")
@click.option("--qat-epochs", default=2, show_default=True, type=int)
def demo_command(out, model_name, epochs, qat_epochs):
    """Train on digits, QAT + int8 export with metadata, inspect, print accuracies (a few CPU minutes)."""
    from ..demo import run_demo
    run_demo(out=out, model_name=model_name, epochs=epochs, qat_epochs=qat_epochs)
