"""K sweep: a conv microkernel's product rate apart from its epilogue (`keras-csp bench-kernels --k-sweep`).

A conv's time is about t(K) = a + b * K for a fixed output (pixels x channels): b is the
microkernel's main loop (the dot products over K), a what every output costs once (requantization,
stores, per-pixel work, the call). The fit over K separates the two, so the main loop's rate,
MACs per K / b, compares with the measured peak of the variant's instruction on its own, and a
shape's shortfall from that peak reads as its epilogue share (a / t). One shape's % of peak mixes
both and, on a shared core, moves with whatever else runs; a slope fitted over interleaved
repetitions (minimum per K) is steadier.

Configurations: 1x1 convs into 128 and 32 channels (K = in_channels) and 3x3 convs into 32 and
128 channels (K = 9 x in_channels), int8 with fp32 requantization, the "auto" variant or the one
asked for, weights packed once.

For 1x1 convs on the AVX-512 VNNI kernel the register tile is also timed alone (6 pixels x 64
channels over and over on the same L1-resident data, products and epilogue, at each K): what a
conv reaches below that is spent outside the tile (the sweep, the per-pixel corrections, memory).
"""
from __future__ import annotations

import platform
import time

import numpy as np

from ..amx import amx_denied
from .kernels import kernel_loop_gmacs, measure_peak
from .models import cpu_name

# (label, output side, output channels, kernel size, input channel counts: K = k * k * cin)
CONFIGS = (
    ("1x1 ->128 @56", 56, 128, 1, (64, 128, 256, 512)),
    ("1x1 ->128 @28", 28, 128, 1, (64, 128, 256, 512, 1024)),
    ("1x1 ->32 @56", 56, 32, 1, (64, 128, 256, 512)),
    ("3x3 ->32 @28", 28, 32, 3, (32, 64, 128, 256)),
    ("3x3 ->128 @28", 28, 128, 3, (32, 64, 128, 256)),
)
QUICK_CONFIGS = (("1x1 ->64 @8", 8, 64, 1, (32, 64, 128)),)


def fit_line(x, y) -> tuple[float, float, float]:
    """Least squares y = a + b x: (a, b, r^2)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    total = float(np.sum((y - y.mean()) ** 2))
    return float(a), float(b), (1.0 - float(np.sum(resid ** 2)) / total) if total > 0 else 1.0


def _conv(cin: int, cout: int, k: int, hw: int, variant: str, threads: int, rng):
    from keras_csp import kernels as K
    w = rng.integers(-127, 128, (cout, k, k, cin), dtype=np.int8)
    q = K.Int8Quant(0.05, 3, [0.01] * cout, 0.1, -2, rounding="fp32")
    conv = K.Int8Conv(w, None, q, variant=variant, threads=threads)
    x = rng.integers(-128, 128, (1, hw, hw, cin), dtype=np.int8)
    return conv, x, conv(x).copy()


def _tile_ks(k: int, cout: int, cins, convs) -> list | None:
    """The K values whose register tile can be timed alone (_kernels.measure_int8_tile_rate): 1x1
    convs into multiples of 64 channels (the 6 x 64 tile) that all run the AVX-512 VNNI kernel, K a
    multiple of 4 up to 1024; else None."""
    if k != 1 or cout % 64 or any(c.variant != "avx512vnni" for c, _, _ in convs):
        return None
    return [cin for cin in cins if cin % 4 == 0 and cin <= 1024] or None


def _sweep(label, hw, cout, k, cins, variant, threads, reps, rng, peak, loops_of):
    from keras_csp import _kernels
    convs = [_conv(cin, cout, k, hw, variant, threads, rng) for cin in cins]
    macs = [hw * hw * cout * k * k * cin for cin in cins]
    best = [float("inf")] * len(cins)
    tile_ks = _tile_ks(k, cout, cins, convs)
    tile_best = [0.0] * len(tile_ks or [])
    for _ in range(reps):
        for i, (conv, x, out) in enumerate(convs):
            n = max(2, int(2e7 / macs[i]))  # ~0.1 ms of work per timing at 200 GMAC/s
            t0 = time.perf_counter()
            for _ in range(n):
                conv(x, out=out)
            best[i] = min(best[i], (time.perf_counter() - t0) / n)
        for i, tk in enumerate(tile_ks or []):  # the register tile alone, interleaved with the convs
            tile_best[i] = max(tile_best[i], _kernels.measure_int8_tile_rate("avx512vnni", tk, 0.0005))
        peak = measure_peak(trials=2, best=peak["loops"], variant=loops_of)
    ks = [k * k * cin for cin in cins]
    a, b, r2 = fit_line(ks, [t * 1e6 for t in best])
    outputs = hw * hw * cout
    variants = sorted({c.variant for c, _, _ in convs})  # auto may pick another variant at small K
    return dict(config=label, out_hw=hw, out_channels=cout, kernel=k,
                variant=variants[0] if len(variants) == 1 else "mixed: " + ",".join(variants),
                in_channels=list(cins), k=ks, best_us=[round(t * 1e6, 3) for t in best],
                gmacs=[round(m / t / 1e9, 2) for m, t in zip(macs, best)],
                intercept_us=round(a, 3), r2=round(r2, 4),
                # significant digits, not decimals: a noisy quick fit's slope can be ~3e-6 us per K
                slope_us_per_k=float(f"{b:.6g}"),
                slope_gmacs=round(outputs / (b * 1e-6) / 1e9, 2) if b > 0 else None,
                fixed_ns_per_output=round(a * 1e3 / outputs, 4),
                tile_k=tile_ks, tile_gmacs=[round(g, 2) for g in tile_best] if tile_ks else None), peak


def run(variant: str = "auto", threads: int = 1, quick: bool = False, reps: int | None = None,
        progress=None) -> dict:
    """Fit t = a + b K per configuration; the slope's rate against the peak of the variant's
    instruction (threads x one core's peak). `progress(row)` after each configuration."""
    from keras_csp import kernels as K

    resolved = K.resolve_variant(variant)
    loops_of = "auto" if variant == "auto" else resolved
    peak = measure_peak(variant=loops_of)
    reps = reps if reps is not None else (5 if quick else 40)
    rng = np.random.default_rng(0)
    rows = []
    for label, hw, cout, k, cins in QUICK_CONFIGS if quick else CONFIGS:
        row, peak = _sweep(label, hw, cout, k, cins, variant, threads, reps, rng, peak, loops_of)
        rows.append(row)
        if progress:
            progress(row)
    loops = peak["loops"]

    def own_peak(row_variant):
        """The loop of the variant's own instruction, the exact one where there are two (avx2's kernels
        run vpmaddwd, not the saturating vpmaddubsw); none for a sweep over two variants' kernels."""
        if row_variant.startswith("mixed"):
            return None
        return kernel_loop_gmacs(loops, row_variant) * threads if loops else None

    for r in rows:
        p = own_peak(r["variant"])
        r["peak_gmacs"] = round(p, 2) if p else None
        r["slope_peak_fraction"] = round(r["slope_gmacs"] / p, 4) if p and r["slope_gmacs"] else None
        r["shape_peak_fraction"] = [round(g / p, 4) for g in r["gmacs"]] if p else None
        # one core's tile (measured on one thread) against one core's peak
        r["tile_peak_fraction"] = ([round(g * threads / p, 4) for g in r["tile_gmacs"]]
                                   if p and r.get("tile_gmacs") else None)
    return {
        "benchmark": "keras-csp K sweep: conv time = a + b * K, the slope's MAC rate vs the instruction's peak",
        "variant": variant,
        "threads": threads,
        "quick": quick,
        "reps": reps,
        "timing": "min over interleaved repetitions per K (us); least-squares line over K",
        "cpu_features": K.cpu_features(),
        "amx_denied": amx_denied(),
        "machine": platform.machine(),
        "processor": cpu_name(),
        "peak_loops_gmacs": {m: round(v, 2) for m, v in loops.items()},
        "configs": rows,
    }


def format_table(result: dict) -> str:
    lines = [f"{'config':16s} {'variant':11s} {'K':>22s} {'slope GMAC/s':>13s} {'of peak':>8s} "
             f"{'fixed ns/out':>12s} {'r2':>6s}  shapes (% of peak at each K)"]
    for r in result["configs"]:
        frac = f"{100 * r['slope_peak_fraction']:.1f}%" if r.get("slope_peak_fraction") else "-"
        shapes = " ".join(f"{100 * f:.0f}" for f in r["shape_peak_fraction"]) if r.get("shape_peak_fraction") else "-"
        ks = ",".join(str(k) for k in r["k"])
        slope = f"{r['slope_gmacs']:.1f}" if r["slope_gmacs"] else "-"
        lines.append(f"{r['config']:16s} {r['variant']:11s} {ks:>22s} {slope:>13s} {frac:>8s} "
                     f"{r['fixed_ns_per_output']:12.4f} {r['r2']:6.3f}  {shapes}")
        if r.get("tile_peak_fraction"):
            tile = " ".join(f"{100 * f:.0f}" for f in r["tile_peak_fraction"])
            lines.append(f"{'':16s} register tile alone, K {','.join(str(k) for k in r['tile_k'])}: {tile} (% of peak)")
    lines.append(f"{result['threads']} thread(s); peak loops {result['peak_loops_gmacs']} GMAC/s (per core)")
    return "\n".join(lines)
