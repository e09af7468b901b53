"""`keras-csp efm-memory` (EFM pyramid memory + bottleneck figure) and `keras-csp detect-demo` (train + mAP)."""
import os

import click

from . import write_json


@click.command("efm-memory")
@click.option("--input-size", default=416, show_default=True, help="Square input side.")
@click.option("--pool-size", "pool_sizes", multiple=True, type=int, default=(2,), show_default=True,
              help="Cross-channel pooling factor(s) to measure (repeatable).")
@click.option("--plot", "plot_path", default="docs/detection_bottleneck.png", show_default=True,
              type=click.Path(dir_okay=False), help="Bottleneck figure of the three detectors (PNG).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write all numbers as JSON.")
def efm_memory_command(input_size, pool_sizes, plot_path, json_path):
    """EFM feature-pyramid memory with vs without cross-channel pooling, and the detectors' bottleneck figure."""
    from ..detection.memory import bottleneck_figure, efm_memory
    out = {"memory": [], "models": []}
    for pool_size in pool_sizes:
        m = efm_memory(input_size, pool_size)
        out["memory"].append({k: v for k, v in m.items() if k != "layers"})
        for key, label in (("pyramid", "pyramid (transfers + concats)"), ("transfer", "maps sent between scales"),
                           ("neck", "whole EFM neck")):
            r = m[key]
            click.echo(f"EFM {input_size}x{input_size} pool_size={pool_size} {label:30s}: "
                       f"{r['without_ccp_bytes'] / 2**20:7.2f} MiB -> {r['with_ccp_bytes'] / 2**20:7.2f} MiB "
                       f"(ratio {r['ratio']:.3f}, {100 * r['reduction']:.1f}% less)")
    if os.path.dirname(plot_path):
        os.makedirs(os.path.dirname(plot_path), exist_ok=True)
    profiles = bottleneck_figure(plot_path, input_size=input_size)
    for p in profiles:
        top = max(p.layers, key=lambda layer: layer.macs)
        row = {"model": p.model, "params": p.params, "gflops": p.flops / 1e9, "max_layer_gflops": p.max_layer_flops / 1e9,
               "max_layer": top.name}
        out["models"].append(row)
        click.echo(f"{p.model:18s} params {p.params:>10,d}  GFLOPs {row['gflops']:7.3f}  "
                   f"max layer GFLOPs {row['max_layer_gflops']:.4f} ({top.name})")
    click.echo(f"wrote {plot_path}")
    write_json(json_path, out, indent=1, announce=True)


@click.command("detect-demo")
@click.option("--model", "name", default="csppeleenet_tiny_efm", show_default=True, help="Tiny detector to train.")
@click.option("--seconds", default=240.0, show_default=True, help="Training wall-clock budget.")
@click.option("--train-scenes", default=3000, show_default=True)
@click.option("--val-scenes", default=300, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--input-size", default=128, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the result as JSON.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), help="Save the trained model (.keras).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="PNG of detections on val scenes.")
@click.option("--save-weights", "weights_path", type=click.Path(dir_okay=False),
              help="Save the weights by layer name (.npz, loadable under Keras 3 and tf_keras).")
@click.option("--export-int8", "int8_path", type=click.Path(dir_okay=False),
              help="Then export int8 .tflite (PTQ + QAT via keras_csp.quantize, tf_keras subprocess) and audit it.")
@click.option("--qat-steps", default=0, show_default=True, help="QAT fine-tuning steps for --export-int8.")
def detect_demo_command(name, seconds, train_scenes, val_scenes, batch_size, input_size, seed, json_path, save_path,
                        plot_path, weights_path, int8_path, qat_steps):
    """Train a tiny detector on digit scenes (scikit-learn digits) for SECONDS and report mAP@0.5."""
    from ..detection.train import save_result, train_detector
    result, model = train_detector(name, input_size=input_size, train_scenes=train_scenes, val_scenes=val_scenes,
                                   batch_size=batch_size, time_budget=seconds, seed=seed)
    click.echo(f"{result['model']}: {result['steps']} steps ({result['images_seen']} images) in "
               f"{result['train_seconds']} s (+{result['first_step_seconds']} s first step), "
               f"val loss {result['val_loss_before']:.2f} -> {result['val_loss_after']:.2f}, "
               f"mAP@0.5 {result['map50']:.3f}")
    if json_path:
        save_result(result, json_path)
        click.echo(f"wrote {json_path}")
    if save_path:
        model.save(save_path)
        click.echo(f"wrote {save_path}")
    if weights_path or int8_path:
        import tempfile
        from ..detection.export import save_weights_npz
        from ..legacy import with_tf_keras
        npz = weights_path or os.path.join(tempfile.mkdtemp(), "weights.npz")
        save_weights_npz(model, npz)
        if weights_path:
            click.echo(f"wrote {weights_path}")
        if int8_path:
            rep = with_tf_keras("keras_csp.detection.export:export_int8", name=name, weights=npz, out=int8_path,
                                input_size=input_size, qat_steps=qat_steps, seed=seed)
            result["int8"] = rep
            click.echo(f"int8 export: float mAP@0.5 {rep['float_map50']:.3f}, PTQ {rep['ptq_map50']:.3f} "
                       f"({rep['ptq_inner_quantize_ops']} inner QUANTIZE ops), QAT {rep['map50']:.3f} "
                       f"({rep['inner_quantize_ops']} inner QUANTIZE ops, {rep['concat_scale_mismatches']} concat "
                       f"scale mismatches); wrote {int8_path}")
            if json_path:
                save_result(result, json_path)
    if plot_path:
        from ..detection.data import make_scenes
        from ..detection.nms import detect
        from ..detection.plot import plot_detections
        scenes = make_scenes(8, input_size, "val", seed=seed + 10_000)
        plot_detections(scenes, detect(model, scenes.images, score_threshold=0.25), plot_path)
        click.echo(f"wrote {plot_path}")
