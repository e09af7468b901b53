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
    echo(f"keras-csp demo: train -> QAT -> int8 -> fuse -> run, {model_name} on scikit-learn's bundled digits")
    echo(f"[1/5] train the float model ({epochs} epochs)")
    from .train import train
    _, train_report = train(model_name, dataset="digits", epochs=epochs, out=float_dir, batch_size=32,
                            verbose="bar")
    echo(f"      float test accuracy {train_report['float_accuracy']:.4f} ({train_report['train_seconds']} s)")

    echo(f"[2/5] quantize: PTQ baseline, then QAT ({qat_epochs} epochs) -> full-int8 .tflite with metadata")
    from .legacy import with_tf_keras
    tflite_path = os.path.join(out, "model_int8.tflite")
    report_path = os.path.join(out, "quantize_report.json")
    kwargs = dict(model_path=os.path.join(float_dir, "model.keras"), out=tflite_path, qat_epochs=qat_epochs,
                  report=report_path, verbose="bar")
    rep = with_tf_keras("keras_csp.quantize:quantize_pipeline", **kwargs)

    from .tflite.audit import inspect_tflite
    audit = inspect_tflite(tflite_path)
    ops = audit.op_counts()
    top = ", ".join(f"{n} {k}" for k, n in sorted(ops.items(), key=lambda kv: -kv[1])[:3])
    echo(f"[3/5] audit: {sum(ops.values())} ops ({top}, ...), {len(audit.inner_quantize_ops())} "
         f"QUANTIZE/DEQUANTIZE inside, {len(audit.concat_scale_mismatches())} concat scale mismatches; "
         f"metadata: {_metadata_summary(tflite_path)}")
    rep["fused"] = _fuse_and_run(tflite_path, out, echo, tune=True)
    rep["train_seconds"] = train_report["train_seconds"]
    rep["total_seconds"] = round(time.time() - t0, 1)
    with open(report_path, "w") as f:
        json.dump(rep, f, indent=1)
    fz = rep["fused"]
    n = fz["accuracy"]["examples"]
    echo("")
    echo(f"{'model':18s} {'accuracy':>8s}   outputs bit-identical to int8 QAT ({n} test images)")
    echo(f"{'float':18s} {rep['float_accuracy']:8.4f}")
    echo(f"{'int8 PTQ':18s} {rep['ptq_accuracy']:8.4f}")
    echo(f"{'int8 QAT':18s} {rep['qat_accuracy']:8.4f}")
    for k, label in (("xnnpack", "fused, XNNPACK"), ("tflite_builtin", "fused, builtin")):
        r = fz["accuracy"][k]
        echo(f"{label:18s} {r['fused_accuracy']:8.4f}   {r['bit_identical_outputs']}/{n}")
    echo(f"latency, 1 thread: int8 {fz['int8_median_ms']:.3f} ms, fused {fz['fused_median_ms']:.3f} ms per image "
         f"({fz['speedup']:.2f}x; a tiny 32x32 model: see `keras-csp bench --zoo` for real sizes)")
    echo(f"total {rep['total_seconds']} s (training {rep['train_seconds']} s, QAT {rep['qat_seconds']} s); "
         f"files in {out}/")
    return rep


def _metadata_summary(tflite_path):
    from .tflite.metadata import metadata_available, read_metadata
    if not metadata_available():
        return "none (tflite-support not installed)"
    meta, files = read_metadata(tflite_path)
    return f"{meta.get('name')!r} + {', '.join(sorted(files))}"


def _fuse_and_run(tflite_path, out, echo, tune=False):
    """Steps 4 and 5: fuse every CSP pattern (with `tune`, also report what `fuse --tune` keeps on
    this CPU), then compare the fused and the int8 model on the digits test split."""
    from .data import load_dataset
    from .tflite import fuse
    from .tflite.bench import accuracy_compare, compare_models

    fused_path = os.path.join(out, "model_int8_fused.tflite")
    frep = fuse(tflite_path, fused_path, report=os.path.join(out, "fuse_report.json"))
    custom = ", ".join(f"{k} {v}" for k, v in sorted(frep["ops_after"].items()) if k.startswith(("Csp", "Kcsp")))
    echo(f"[4/5] fuse: {frep['fused_ops']} CSP ops fused ({custom}), verified bit-exact -> {fused_path}")
    if tune:  # what `fuse --tune` would keep on this CPU (the demo runs every fused op, to show them exact)
        trep = fuse(tflite_path, os.path.join(out, "model_int8_fused_tuned.tflite"), tune=True, verify=False,
                    report=os.path.join(out, "fuse_tune_report.json"))
        t = trep["tuning"]
        ratios = [r["speedup"] for r in t["ops"]]
        echo(f"      fuse --tune on this CPU keeps {t['kept']} of {t['candidates']} (fused op vs the builtin ops "
             f"it replaces: {min(ratios):.2f}x-{max(ratios):.2f}x at this tiny 32x32 size)")
    echo("[5/5] run int8 and fused on keras-csp's LiteRT runtime: test split + same-run timing")
    ds = load_dataset("digits")
    acc = accuracy_compare(tflite_path, fused_path, ds.x_test, ds.y_test)
    t = compare_models([fused_path, tflite_path], runs=20, warmup=3)
    return {"path": fused_path, "fused_ops": frep["fused_ops"], "ops_after": frep["ops_after"], "accuracy": acc,
            "fused_median_ms": t["models"][0]["median_ms"], "int8_median_ms": t["models"][1]["median_ms"],
            "speedup": t["speedup"]}
