"""Exact parameter, MAC, FLOP and activation-memory counts per layer, and the bottleneck figure.

Conventions (stated so numbers can be checked by hand):
- MACs count the multiply-accumulates of Conv2D (grouped included), DepthwiseConv2D and Dense, batch 1.
  Bias adds, BatchNorm (folded into the conv at int8 export), activations, pooling, adds and concats
  count 0. FLOPs = 2 x MACs.
- activation_bytes = number of output elements x bytes per element (4 for float32, 1 for int8).
- "max_layer_flops" is the largest single-layer FLOP count: the CSPNet paper's computational bottleneck.
"""
import json
from dataclasses import asdict, dataclass, field
from typing import List

import numpy as np

from .backend import keras

MAC_LAYERS = ("Conv2D", "DepthwiseConv2D", "Dense")


@dataclass
class LayerProfile:
    name: str
    type: str
    output_shape: list
    params: int
    macs: int
    activation_bytes: int

    @property
    def flops(self):
        return 2 * self.macs


@dataclass
class ModelProfile:
    model: str
    input_size: object
    params: int
    layers: List[LayerProfile] = field(default_factory=list)

    @property
    def macs(self):
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self):
        return 2 * self.macs

    @property
    def max_layer_flops(self):
        return max((layer.flops for layer in self.layers), default=0)

    @property
    def activation_bytes(self):
        return sum(layer.activation_bytes for layer in self.layers)

    def to_dict(self):
        return {"model": self.model, "input_size": self.input_size, "params": self.params, "macs": self.macs,
                "flops": self.flops, "max_layer_flops": self.max_layer_flops,
                "activation_bytes": self.activation_bytes,
                "layers": [asdict(layer) for layer in self.layers]}

    def save_json(self, path):
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)


def _shape_list(tensor):
    return [None if d is None else int(d) for d in tensor.shape]


def _outputs(layer):
    out = layer.output
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _input_shape(layer):
    inp = layer.input
    if isinstance(inp, (list, tuple)):
        inp = inp[0]
    return _shape_list(inp)


def _elements(shape):
    return int(np.prod([d for d in shape[1:] if d is not None], dtype=np.int64))


def layer_macs(layer):
    """Multiply-accumulates of one (non-nested) layer for batch 1."""
    kind = type(layer).__name__
    if kind not in MAC_LAYERS:
        return 0
    out_shape = _shape_list(_outputs(layer)[0])
    in_channels = _input_shape(layer)[-1]
    if kind == "Dense":
        return int(in_channels * _elements(out_shape))
    kh, kw = layer.kernel_size
    spatial = out_shape[1] * out_shape[2]
    if kind == "DepthwiseConv2D":
        return int(spatial * out_shape[3] * kh * kw)
    groups = getattr(layer, "groups", 1) or 1
    return int(spatial * out_shape[3] * kh * kw * (in_channels // groups))


def _leaf_layers(model):
    """Layers of a model, descending into nested models and graph-wrapping layers (keras_csp.layers)."""
    for layer in model.layers:
        inner = getattr(layer, "graph", None) if not isinstance(layer, keras.Model) else layer
        if isinstance(inner, keras.Model):
            yield from _leaf_layers(inner)
        else:
            yield layer


def profile_model(model, input_size=None, bytes_per_element=4):
    """Profile a built functional Keras model (batch 1)."""
    result = ModelProfile(model=model.name, input_size=input_size, params=int(model.count_params()))
    for layer in _leaf_layers(model):
        if type(layer).__name__ == "InputLayer":
            continue
        outputs = _outputs(layer)
        shapes = [_shape_list(t) for t in outputs]
        result.layers.append(LayerProfile(
            name=layer.name, type=type(layer).__name__,
            output_shape=shapes[0] if len(shapes) == 1 else shapes,
            params=int(layer.count_params()), macs=layer_macs(layer),
            activation_bytes=int(sum(_elements(s) for s in shapes) * bytes_per_element)))
    return result


def profile(name, input_size=224, **model_kwargs):
    """Build zoo model `name` at input_size x input_size (no weights) and profile it."""
    from .models import create_model
    model = create_model(name, input_shape=(input_size, input_size, 3), **model_kwargs)
    return profile_model(model, input_size=input_size)


def compare(names, input_size=224):
    """Rows of (name, params, GFLOPs, max-layer GFLOPs, FLOP ratio vs the last model: the plain twin)."""
    profiles = [profile(n, input_size) for n in names]
    base = profiles[-1].flops
    return [{"model": p.model, "params": p.params, "gflops": p.flops / 1e9,
             "max_layer_gflops": p.max_layer_flops / 1e9, "flops_ratio": p.flops / base}
            for p in profiles], profiles


def plot_bottleneck(profiles, path, title="Computational bottleneck (per-layer BFLOPs)"):
    """The CSPNet paper's bottleneck figure: per-layer BFLOPs bars, a dashed line at each model's max."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(profiles), figsize=(5 * len(profiles), 3.6), sharey=True, squeeze=False)
    top = max(p.max_layer_flops for p in profiles) / 1e9
    for ax, p in zip(axes[0], profiles):
        values = [layer.flops / 1e9 for layer in p.layers if layer.macs]
        ax.bar(range(len(values)), values, width=1.0, color="tab:blue")
        peak = p.max_layer_flops / 1e9
        ax.axhline(peak, color="tab:red", linestyle="--", label=f"max {peak:.3f} BFLOPs")
        ax.set_title(f"{p.model}\n{p.flops / 1e9:.2f} BFLOPs total")
        ax.set_xlabel("layer (conv / dense, in order)")
        ax.set_ylim(0, top * 1.15)
        ax.legend(loc="upper right", fontsize=8)
    axes[0][0].set_ylabel("BFLOPs")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
