"""Feature-pyramid activation memory of the EFM with vs without cross-channel pooling, and the bottleneck
figure of the three detectors, both measured with `keras_csp.profile`.

Pyramid memory = the float32 output bytes (batch 1) of the layers that build the EFM's aggregated
pyramid: the maps sent between scales (`efm_s*_down`: the finer level brought to this scale,
`efm_s*_up_pool` + `efm_s*_up`: the coarser level brought up) and the per-scale concatenations
(`efm_s*_concat`). Without cross-channel pooling the down path is a 2x2 max pooling and the up path a
plain 2x upsampling, both at full width; with it, maxout over `pool_size` channel chunks is applied
(together with the 2x2 pooling on the down path: H x W x C -> H/2 x W/2 x C/pool_size).
"""
from ..profile import plot_bottleneck, profile_model

PYRAMID_SUFFIXES = ("_down", "_up_pool", "_up", "_concat")
TRANSFER_SUFFIXES = ("_down", "_up_pool", "_up")


def _bytes(profile, suffixes=None, prefix="efm_"):
    return sum(layer.activation_bytes for layer in profile.layers
               if layer.name.startswith(prefix) and (suffixes is None or layer.name.endswith(suffixes)))


def efm_memory(input_size=416, pool_size=2, tiny=False):
    """Activation bytes of the EFM pyramid with and without cross-channel pooling, and their ratios."""
    from .models import CSPPELEENET_DET_TINY, TINY_WIDTHS, CSPPeleeNetEFM, build_detector
    shape = (input_size, input_size, 3)
    profiles = {}
    for ccp in (True, False):
        if tiny:
            model = build_detector(CSPPELEENET_DET_TINY, "efm", "csppeleenet_tiny_efm", input_shape=shape,
                                   num_classes=10, neck_widths=TINY_WIDTHS, cross_channel_pool=ccp,
                                   pool_size=pool_size)
        else:
            model = CSPPeleeNetEFM(input_shape=shape, cross_channel_pool=ccp, pool_size=pool_size)
        profiles[ccp] = profile_model(model, input_size=input_size)
    out = {"input_size": input_size, "pool_size": pool_size}
    for key, suffixes in (("pyramid", PYRAMID_SUFFIXES), ("transfer", TRANSFER_SUFFIXES), ("neck", None)):
        with_ccp, without = _bytes(profiles[True], suffixes), _bytes(profiles[False], suffixes)
        out[key] = {"with_ccp_bytes": with_ccp, "without_ccp_bytes": without, "ratio": with_ccp / without,
                    "reduction": 1.0 - with_ccp / without}
    out["layers"] = {
        ("with_ccp" if ccp else "without_ccp"): [
            {"name": layer.name, "type": layer.type, "shape": layer.output_shape, "bytes": layer.activation_bytes}
            for layer in p.layers if layer.name.startswith("efm_") and layer.name.endswith(PYRAMID_SUFFIXES)]
        for ccp, p in profiles.items()}
    out["gflops"] = {("with_ccp" if ccp else "without_ccp"): p.flops / 1e9 for ccp, p in profiles.items()}
    return out


def bottleneck_profiles(names=None, input_size=416):
    from ..profile import profile
    from .models import DETECTORS
    return [profile(n, input_size) for n in (names or DETECTORS)]


def bottleneck_figure(path, names=None, input_size=416):
    """The paper's bottleneck figure (per-layer BFLOPs, dashed max line) for the detectors; returns the profiles."""
    profiles = bottleneck_profiles(names, input_size)
    plot_bottleneck(profiles, path, title=f"Computational bottleneck of the detectors at {input_size}x{input_size} "
                                          f"(per-layer BFLOPs)")
    return profiles
