"""`keras-csp demo`: the whole pipeline on bundled data in a few CPU minutes.

1. train `cspdensenet_tiny` on scikit-learn's digits (32x32) -> OUT/float/model.keras, report.json
2. PTQ baseline and QAT fine-tuning + full-int8 export with metadata -> OUT/model_int8.tflite
   (OUT/model_int8_ptq.tflite), in a tf_keras subprocess when needed
3. audit the int8 graph (`keras-csp inspect`)
4. fuse its CSP hot paths into keras-csp custom ops (verified bit-exact) -> OUT/model_int8_fused.tflite
5. run both on keras-csp's LiteRT runtime: bit-identical outputs and accuracy on the test split
   under XNNPACK and TFLite's builtin kernels, and a same-run latency comparison; print the summary.
"""
import json
import os
import time


def run_demo(out="keras_csp_demo", model_name="cspdensenet_tiny", epochs=8, qat_epochs=2, echo=print):
    t0 = time.time()
    float_dir = os.path.join(out, "float")
    echo(f"[1/5] training {model_name} on digits for {epochs} epochs -> {float_dir}")
    from .train import train
    _, train_report = train(model_name, dataset="digits", epochs=epochs, out=float_dir, batch_size=32, verbose=2)
    echo(f"      float test accuracy {train_report['float_accuracy']:.4f} in {train_report['train_seconds']} s")

    echo(f"[2/5] PTQ baseline + QAT ({qat_epochs} epochs) -> full-int8 TFLite with metadata")
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

    echo(f"[3/5] graph audit of {tflite_path}")
    from .inspect_tflite import inspect_tflite
    echo(inspect_tflite(tflite_path).format())
    from .tflite_metadata import read_metadata
    meta, files = read_metadata(tflite_path)
    echo(f"metadata: {meta.get('name')!r}, associated files {sorted(files)}")
    rep["fused"] = _fuse_and_run(tflite_path, out, echo)
    rep["train_seconds"] = train_report["train_seconds"]
    rep["total_seconds"] = round(time.time() - t0, 1)
    with open(report_path, "w") as f:
        json.dump(rep, f, indent=1)
    echo("")
    echo(f"accuracy on {rep['test_examples']} digits test images:")
    echo(f"  float          {rep['float_accuracy']:.4f}")
    echo(f"  int8 PTQ       {rep['ptq_accuracy']:.4f}")
    echo(f"  int8 QAT       {rep['qat_accuracy']:.4f}")
    fz = rep["fused"]
    for k in ("xnnpack", "tflite_builtin"):
        r = fz["accuracy"][k]
        echo(f"  int8 fused     {r['fused_accuracy']:.4f} ({k}: {r['bit_identical_outputs']}/{fz['accuracy']['examples']} "
             f"outputs bit-identical to the int8 model)")
    echo(f"fused ops {fz['fused_ops']}; 1 thread: int8 {fz['int8_median_ms']:.3f} ms, fused "
         f"{fz['fused_median_ms']:.3f} ms per image ({fz['speedup']:.2f}x; tiny 32x32 model, timings are noisy)")
    echo(f"training {rep['train_seconds']} s, QAT {rep['qat_seconds']} s, total {rep['total_seconds']} s; "
         f"files in {out}/")
    return rep


def _fuse_and_run(tflite_path, out, echo):
    """Steps 4 and 5: fuse, then compare the fused and the int8 model on the digits test split."""
    from .data import load_dataset
    from .tflite import fuse
    from .tflite.bench import accuracy_compare, compare_models

    fused_path = os.path.join(out, "model_int8_fused.tflite")
    echo(f"[4/5] fusing CSP partial convs and dense blocks -> {fused_path}")
    frep = fuse(tflite_path, fused_path, report=os.path.join(out, "fuse_report.json"))
    echo(f"      {frep['fused_ops']} fused op(s), ops after: {frep['ops_after']}")
    echo("[5/5] int8 vs fused on keras-csp's LiteRT runtime (digits test split + same-run timing)")
    ds = load_dataset("digits")
    acc = accuracy_compare(tflite_path, fused_path, ds.x_test, ds.y_test)
    t = compare_models([fused_path, tflite_path], runs=20, warmup=3)
    return {"path": fused_path, "fused_ops": frep["fused_ops"], "accuracy": acc,
            "fused_median_ms": t["models"][0]["median_ms"], "int8_median_ms": t["models"][1]["median_ms"],
            "speedup": t["speedup"]}
