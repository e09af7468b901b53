"""`keras-csp demo`: the whole pipeline on bundled data in a few CPU minutes.

1. train `cspdensenet_tiny` on scikit-learn's digits (32x32) -> OUT/float/model.keras, report.json
2. PTQ baseline and QAT fine-tuning + full-int8 export with metadata -> OUT/model_int8.tflite
   (OUT/model_int8_ptq.tflite), in a tf_keras subprocess when needed
3. audit the int8 graph (`keras-csp inspect`) and print float / PTQ / QAT accuracies.
"""
import json
import os
import time


def run_demo(out="keras_csp_demo", model_name="cspdensenet_tiny", epochs=8, qat_epochs=2, echo=print):
    t0 = time.time()
    float_dir = os.path.join(out, "float")
    echo(f"[1/3] training {model_name} on digits for {epochs} epochs -> {float_dir}")
    from .train import train
    _, train_report = train(model_name, dataset="digits", epochs=epochs, out=float_dir, batch_size=32, verbose=2)
    echo(f"      float test accuracy {train_report['float_accuracy']:.4f} in {train_report['train_seconds']} s")

    echo(f"[2/3] PTQ baseline + QAT ({qat_epochs} epochs) -> full-int8 TFLite with metadata")
    from . import backend
    tflite_path = os.path.join(out, "model_int8.tflite")
    report_path = os.path.join(out, "quantize_report.json")
    kwargs = dict(model_path=os.path.join(float_dir, "model.keras"), out=tflite_path, qat_epochs=qat_epochs,
                  report=report_path, verbose=2)
    if backend.LEGACY:
        from .quantize import quantize_pipeline
        rep = quantize_pipeline(**kwargs)
    else:
        from .quantize import run_legacy
        rep = run_legacy("quantize_pipeline", **kwargs)

    echo(f"[3/3] graph audit of {tflite_path}")
    from .inspect_tflite import inspect_tflite
    echo(inspect_tflite(tflite_path).format())
    from .tflite_metadata import read_metadata
    meta, files = read_metadata(tflite_path)
    echo(f"metadata: {meta.get('name')!r}, associated files {sorted(files)}")
    rep["train_seconds"] = train_report["train_seconds"]
    rep["total_seconds"] = round(time.time() - t0, 1)
    with open(report_path, "w") as f:
        json.dump(rep, f, indent=1)
    echo("")
    echo(f"accuracy on {rep['test_examples']} digits test images:")
    echo(f"  float          {rep['float_accuracy']:.4f}")
    echo(f"  int8 PTQ       {rep['ptq_accuracy']:.4f}")
    echo(f"  int8 QAT       {rep['qat_accuracy']:.4f}")
    echo(f"training {rep['train_seconds']} s, QAT {rep['qat_seconds']} s, total {rep['total_seconds']} s; "
         f"files in {out}/")
    return rep
