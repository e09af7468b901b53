"""Benchmark: fused int8 CSP kernels vs XNNPACK running the same split + conv + concat graphs.

For every conv shape of the CSPDenseNet-121, DenseNet-121 and CSPResNet-50 stages (one
representative layer per stage: the middle layer of each dense block), int8, both sides on the
same thread count (`threads`, default 1):

* ours:     the fused op from `keras_csp.kernels` (weights prepacked once, "auto" variant):
            - "conv_slice": conv reading a channel slice of the dense-block buffer in place
                            (DenseNet bottleneck 1x1), XNNPACK runs CONV_2D on the concat tensor;
            - "append":     dense-layer 3x3 growth conv written at its channel offset of the
                            preallocated block buffer, XNNPACK runs CONV_2D + CONCATENATION(block, y);
            - "csp":        CSP partial transition concat(x[..., :c_skip], conv(x[..., c_skip:])),
                            XNNPACK runs SLICE + SLICE + CONV_2D + CONCATENATION;
            - "conv":       plain conv inside a stage (no copy to remove; shows raw conv speed), and
                            the 3-channel 7x7/2 stem (a KcspConv2D in fused models);
            - "depthwise":  a 3x3 DEPTHWISE_CONV_2D (`--shapes mobile`: MobileNet-v2's multiplier-1
                            ones, CSPMobileNet-v2's x2 ones), LiteRT running the same op;
            - "grouped":    a grouped 3x3 CONV_2D (`--shapes resnext`: ResNeXt-50's, 32 groups),
                            LiteRT running the same op (XNNPACK: one GEMM per group).
* xnnpack:  the equivalent single-op .tflite graph in the ai-edge-litert Interpreter with its
            default XNNPACK delegate, num_threads=threads, same process, interleaved with ours.
* peak:     int8 MAC loops measured in the same run (AVX2 vpmaddwd / vpmaddubsw, AVX-512 VNNI
            vpdpbusd, NEON sdot: whatever the CPU has); peak = the fastest loop, best of many
            ~2 ms trials spread through the run (same exposure to a busy SMT sibling as the kernels).
            Each shape is also rated against the peak loop timed in its own window (before, about
            eight times between, and after its rounds): window_peak_fraction, "%win". A virtual or
            shared core's clock moves in phases of minutes; a shape timed in a slow phase reads low
            against the run's best peak for a reason outside the kernel. Both are reported.

Times are the minimum over interleaved repetitions (the machine may be shared; the minimum is the
least noisy estimate of what each implementation can do). Medians are reported as well.

Run: `keras-csp bench-kernels [--threads N] --json out.json [--quick]`.
"""
from __future__ import annotations

import math
import platform
import time

import numpy as np

from ..amx import amx_denied
from .models import cpu_name
from .xnnpack_isa import xnnpack_isa_cap

GROWTH, BOTTLENECK = 32, 128


def _densenet_shapes(model: str, csp: bool) -> list[dict]:
    """One representative (middle) dense layer per stage + the CSP partial transition."""
    blocks, sizes = (6, 12, 24, 16), (56, 28, 14, 7)
    shapes, channels = [], 64  # stem output
    if csp:  # the 7x7/2 stem (the same in DenseNet-121 and CSPResNet-50), a KcspConv2D when fused
        shapes.append(dict(shape=f"{model}/stem 7x7/2 3->64 @224", model=model, kind="conv", hw=224, cin=3,
                           cout=64, k=7, stride=2))
    for i, (depth, hw) in enumerate(zip(blocks, sizes)):
        last = i == len(blocks) - 1
        part = channels // 2 if csp else channels
        skip = channels - part if csp else 0
        c_mid = part + (depth // 2) * GROWTH          # channels entering the middle layer
        c_block = part + depth * GROWTH               # dense block output
        tag = f"{model}/s{i + 1}"
        shapes.append(dict(shape=f"{tag} bottleneck 1x1 {c_mid}->{BOTTLENECK} @{hw}", model=model,
                           kind="conv_slice", hw=hw, cin=c_mid, cout=BOTTLENECK, k=1, c_total=c_block))
        shapes.append(dict(shape=f"{tag} growth 3x3 {BOTTLENECK}->{GROWTH} +concat({c_mid}) @{hw}",
                           model=model, kind="append", hw=hw, cin=BOTTLENECK, cout=GROWTH, k=3,
                           c_block=c_mid))
        compression = 1.0 if last else 0.5
        if csp:
            trans = int(c_block * compression)
            shapes.append(dict(shape=f"{tag} partial transition 1x1 {c_block}->{trans} +skip {skip} @{hw}",
                               model=model, kind="csp", hw=hw, cin=c_block, cout=trans, k=1,
                               c_skip=skip))
            channels = int((channels + depth * GROWTH) * compression)
        else:
            channels = int(c_block * compression)
    return shapes


def _cspresnet50_shapes() -> list[dict]:
    """CSPResNet-50 (timm cspresnet50): widths 128..1024, 2x expansion, block path = half."""
    shapes = []
    for i, (width, hw) in enumerate(zip((128, 256, 512, 1024), (56, 28, 14, 7))):
        part = width  # expanded to 2*width, split in halves
        tag = f"cspresnet50/s{i + 1}"
        mid = part // 2
        shapes.append(dict(shape=f"{tag} bottleneck 3x3 {mid}->{mid} @{hw}", model="cspresnet50",
                           kind="conv", hw=hw, cin=mid, cout=mid, k=3))
        shapes.append(dict(shape=f"{tag} partial transition 1x1 {part}->{part} +skip {part} @{hw}",
                           model="cspresnet50", kind="csp", hw=hw, cin=part, cout=part, k=1, c_skip=part))
    return shapes


def _yolov8n_shapes() -> list[dict]:
    """The YOLOv8-n backbone's convs at 320x320 (plain convs: in a fused model the CspBlock writes them
    into place): each stage's 3x3/2 downsampling conv and C2f's 1x1 cv2 and bottleneck 3x3s."""
    shapes = []
    for i, (hw, c) in enumerate(zip((160, 80, 40, 20), (16, 32, 64, 128))):
        tag = f"yolov8n/s{i + 1}"
        shapes.append(dict(shape=f"{tag} down 3x3/2 {c}->{2 * c} @{hw}", model="yolov8n", kind="conv", hw=hw,
                           cin=c, cout=2 * c, k=3, stride=2))
        n = 1 if i in (0, 3) else 2  # C2f repeats
        half, cout = c, 2 * c  # C2f(2c): cv1 splits into halves of c
        shapes.append(dict(shape=f"{tag} C2f cv2 1x1 {(2 + n) * half}->{cout} @{hw // 2}", model="yolov8n", kind="conv",
                           hw=hw // 2, cin=(2 + n) * half, cout=cout, k=1))
        shapes.append(dict(shape=f"{tag} C2f bottleneck 3x3 {half}->{half} @{hw // 2}", model="yolov8n", kind="conv",
                           hw=hw // 2, cin=half, cout=half, k=3))
    return shapes


SHAPE_SETS = ("csp", "yolo", "mobile", "resnext")


def _resnext_shapes() -> list[dict]:
    """The grouped 3x3 convs of ResNeXt-50 (32x4d) at 224x224, one per distinct shape (input side,
    channels, stride): 32 groups of 4, 8, 16 and 32 channels. CSPResNeXt-50's are a subset."""
    table = [(56, 128, 1), (56, 256, 2), (28, 256, 1), (28, 512, 2), (14, 512, 1), (14, 1024, 2), (7, 1024, 1)]
    return [dict(shape=f"resnext50 grouped 3x3/{stride} {c} in 32 groups of {c // 32} @{hw}", model="resnext50",
                 kind="grouped", hw=hw, cin=c, cout=c, k=3, stride=stride, groups=32) for hw, c, stride in table]


def _mobile_shapes() -> list[dict]:
    """The 3x3 depthwise convs of MobileNet-v2 (multiplier 1) and CSPMobileNet-v2 (x2) at 224x224,
    one per distinct shape (input side, input channels, multiplier, stride)."""
    mnv2 = [(112, 32, 1), (112, 96, 2), (56, 144, 1), (56, 144, 2), (28, 192, 1), (28, 384, 1), (28, 384, 2),
            (14, 576, 1), (14, 576, 2), (7, 960, 1)]
    csp = [(112, 48, 2), (56, 72, 1), (56, 72, 2), (28, 96, 1), (28, 192, 1), (28, 192, 2), (14, 288, 1),
           (14, 288, 2), (7, 480, 1)]
    shapes = []
    for model, table, mult in (("mobilenetv2", mnv2, 1), ("cspmobilenetv2", csp, 2)):
        for hw, c, stride in table:
            shapes.append(dict(shape=f"{model} dw 3x3/{stride} {c}x{mult} @{hw}", model=model, kind="depthwise",
                               hw=hw, cin=c, cout=c * mult, k=3, stride=stride, multiplier=mult))
    return shapes


def shape_table(quick: bool = False, shapes: str = "csp") -> list[dict]:
    """The benchmark's shapes: "csp" (CSPDenseNet-121, DenseNet-121 and CSPResNet-50 stages),
    "yolo" (the YOLOv8-n backbone's convs at 320x320), "mobile" (the 3x3 depthwise convs of
    MobileNet-v2 and CSPMobileNet-v2 at 224x224) or "resnext" (ResNeXt-50's grouped 3x3 convs)."""
    if shapes not in SHAPE_SETS:
        raise ValueError(f"unknown shape set {shapes!r} (expected one of {SHAPE_SETS})")
    if shapes in ("mobile", "resnext", "yolo"):  # --quick: every third shape
        table = {"mobile": _mobile_shapes, "resnext": _resnext_shapes, "yolo": _yolov8n_shapes}[shapes]()
        return table[::3] if quick else table
    table = (_densenet_shapes("cspdensenet121", True) + _densenet_shapes("densenet121", False)
             + _cspresnet50_shapes())
    if quick:
        keep = ("cspdensenet121/stem", "cspdensenet121/s1 growth", "cspdensenet121/s2 partial", "densenet121/s1 bottleneck",
                "densenet121/s3 growth", "cspresnet50/s2 partial", "cspresnet50/s3 bottleneck")
        table = [s for s in table if s["shape"].startswith(keep)]
    return table


class _Case:
    """Tensors, our prepacked op and the XNNPACK interpreter for one benchmark shape."""

    def __init__(self, spec: dict, variant: str, rng: np.random.Generator, threads: int = 1):
        from keras_csp import kernels as K

        self.spec = spec
        hw, cin, cout, k = spec["hw"], spec["cin"], spec["cout"], spec["k"]
        kind = spec["kind"]
        # a depthwise conv's weights: [1, k, k, cout], one per output channel and tap
        # a grouped conv's: [cout, k, k, cin / groups]
        groups = spec.get("groups", 1)
        weights = rng.integers(-127, 128, (1, k, k, cout) if kind == "depthwise" else
                               (cout, k, k, cin // groups)).astype(np.int8)
        bias = rng.integers(-2000, 2000, cout).astype(np.int32)
        fscales = rng.uniform(0.001, 0.01, cout).astype(np.float32)
        same_q = kind in ("csp",)
        # fp32 requantization: what the fused ops use next to XNNPACK (numerics "xnnpack", the
        # runtime's default), so both sides compute the same bits.
        quant = K.Int8Quant(0.05, -3, fscales, 0.05 if same_q else 0.08, -3 if same_q else 5, "relu",
                            rounding="fp32")
        stride = spec.get("stride", 1)
        out_hw = -(-hw // stride)  # SAME padding
        if kind == "depthwise":  # one MAC per output and tap
            self.conv = K.Int8Depthwise(weights, bias, quant, depth_multiplier=spec["multiplier"], variant=variant,
                                        threads=threads, strides=stride)
            self.macs = out_hw * out_hw * cout * k * k
        elif kind == "grouped":  # one MAC per output, tap and input channel of its group
            self.conv = K.Int8GroupedConv(weights, bias, quant, groups=groups, variant=variant, threads=threads,
                                          strides=stride)
            self.macs = out_hw * out_hw * cout * k * k * (cin // groups)
        else:
            self.conv = K.Int8Conv(weights, bias, quant, variant=variant, threads=threads, strides=stride)
            self.macs = out_hw * out_hw * cin * cout * k * k
        self.variant = self.conv.variant
        # AVX2 3x3 stride-1 convs may run Winograd F(2x2, 3x3): same bits, 16 products per 2x2 output
        # tile and channel pair instead of 36 (executed_macs: the products the kernel issues).
        self.algorithm = self.conv.algorithm(out_hw * out_hw) if isinstance(self.conv, K.Int8Conv) else "direct"
        tiles = (-(-out_hw // 2)) ** 2  # 2x2 output tiles, odd sizes rounded up
        self.executed_macs = tiles * 16 * cin * cout if self.algorithm == "winograd" else self.macs
        if kind == "grouped" and self.conv.per_group:
            self.variant += " per group"
        if kind == "conv_slice":
            self.block = rng.integers(-128, 128, (1, hw, hw, spec["c_total"])).astype(np.int8)
            self.x = np.ascontiguousarray(self.block[..., :cin])
            self.out = np.empty((1, hw, hw, cout), np.int8)
            self.run_ours = lambda: self.conv._p.conv2d_slices(self.block, 0, self.out, 0, threads)
            self.ours_result = lambda: self.out
            model = K.build_tflite_model("conv", self.x.shape, weights, bias, quant)
            inputs = [self.x]
        elif kind == "append":
            c_block = spec["c_block"]
            self.x = rng.integers(-128, 128, (1, hw, hw, cin)).astype(np.int8)
            blk = rng.integers(-128, 128, (1, hw, hw, c_block)).astype(np.int8)
            self.block = np.zeros((1, hw, hw, c_block + cout + GROWTH), np.int8)  # room for later layers
            self.block[..., :c_block] = blk
            self.run_ours = lambda: self.conv._p.conv2d_slices(self.x, 0, self.block, c_block, threads)
            self.ours_result = lambda: self.block[..., :c_block + cout]
            model = K.build_tflite_model("append", self.x.shape, weights, bias, quant, block_channels=c_block)
            inputs = [blk, self.x]
            self.conv_only = (K.build_tflite_model("conv", self.x.shape, weights, bias, quant), self.x)
        elif kind == "csp":
            c = spec["c_skip"] + cin
            self.x = rng.integers(-128, 128, (1, hw, hw, c)).astype(np.int8)
            self.out = np.empty((1, hw, hw, spec["c_skip"] + cout), np.int8)
            self.run_ours = lambda: self.conv._p.csp_partial(self.x, spec["c_skip"], self.out, "skip_first", threads)
            self.ours_result = lambda: self.out
            model = K.build_tflite_model("csp", self.x.shape, weights, bias, quant, c_skip=spec["c_skip"])
            inputs = [self.x]
            part = np.ascontiguousarray(self.x[..., spec["c_skip"]:])
            self.conv_only = (K.build_tflite_model("conv", part.shape, weights, bias, quant), part)
        elif kind == "depthwise":
            self.x = rng.integers(-128, 128, (1, hw, hw, cin)).astype(np.int8)
            self.out = np.empty((1, out_hw, out_hw, cout), np.int8)
            self.run_ours = lambda: self.conv._p.depthwise(self.x, self.out, threads)
            self.ours_result = lambda: self.out
            model = K.build_tflite_model("depthwise", self.x.shape, weights, bias, quant, strides=stride,
                                         depth_multiplier=spec["multiplier"])
            inputs = [self.x]
        elif kind in ("conv", "grouped"):
            self.x = rng.integers(-128, 128, (1, hw, hw, cin)).astype(np.int8)
            self.out = np.empty((1, out_hw, out_hw, cout), np.int8)
            self.run_ours = lambda: self.conv._p.conv2d(self.x, self.out, threads)
            self.ours_result = lambda: self.out
            model = K.build_tflite_model("conv", self.x.shape, weights, bias, quant, strides=stride)
            inputs = [self.x]
        else:
            raise ValueError(kind)
        # XNNPACK running the conv alone (no split / concat): shows what the copies cost it.
        self.it_conv = None
        if getattr(self, "conv_only", None) is not None:
            self.it_conv = K.make_interpreter(self.conv_only[0], "xnnpack", num_threads=threads)
            self.it_conv.set_tensor(self.it_conv.get_input_details()[0]["index"], self.conv_only[1])
        self.it = K.make_interpreter(model, "xnnpack", num_threads=threads)
        for d, arr in zip(self.it.get_input_details(), inputs):
            self.it.set_tensor(d["index"], arr)
        self.out_index = self.it.get_output_details()[0]["index"]

    def max_diff_vs_xnnpack(self) -> int:
        self.run_ours()
        self.it.invoke()
        ref = self.it.get_tensor(self.out_index).astype(np.int32)
        return int(np.abs(self.ours_result().astype(np.int32) - ref).max())


def _time_pair(case: _Case, budget_s: float, min_reps: int = 5, max_reps: int = 400, burst: int = 1,
               probe=None, probes: int = 8):
    """Interleaved timing: each round runs ours, XNNPACK split+conv+concat and XNNPACK's conv alone,
    each `burst` times in a row. With burst > 1 the first call of each burst is not timed: on
    several threads it pays for the other side having just run (its workers asleep, the other
    pool's still spinning), which a conv inside a model pays once per op, not per conv.
    `probe()`: called before the first round, between rounds about `probes` times spread over the
    budget, and after the last (the peak loops timed in the shape's own window)."""
    def timed(fn):
        times = []
        for k in range(burst):
            t0 = time.perf_counter()
            fn()
            if burst == 1 or k > 0:
                times.append(time.perf_counter() - t0)
        return times

    for _ in range(2):  # warm-up
        case.run_ours()
        case.it.invoke()
    ours, xnn, conv_only = [], [], []
    if probe:
        probe()
    start = time.perf_counter()
    next_probe = start + budget_s / probes
    while len(ours) < max_reps and (len(ours) < min_reps or time.perf_counter() - start < budget_s):
        ours += timed(case.run_ours)
        xnn += timed(case.it.invoke)
        if case.it_conv is not None:
            conv_only += timed(case.it_conv.invoke)
        if probe and time.perf_counter() >= next_probe:
            probe()
            next_probe = time.perf_counter() + budget_s / probes
    if probe:
        probe()
    return np.array(ours) * 1e3, np.array(xnn) * 1e3, np.array(conv_only) * 1e3


def measure_peak(seconds: float = 0.002, trials: int = 40, best: dict | None = None,
                 variant: str = "auto") -> dict:
    """Best of many short trials (a few ms, like one kernel call): the core may be shared (busy
    SMT sibling), so the max over trials spread through the run is the core's peak. Pass the
    previous result's "loops" as `best` to keep accumulating. `variant`: only the loops of that
    variant's instructions ("auto": every loop this CPU has)."""
    from keras_csp import _kernels

    best = dict(best or {})
    exact = set()
    for _ in range(trials):
        for r in _kernels.measure_int8_peak(variant, seconds):
            best[r["method"]] = max(best.get(r["method"], 0.0), r["gmacs"])
            if r["exact"]:
                exact.add(r["method"])
    if not best:
        return {"gmacs": None, "method": None, "loops": {}, "exact_gmacs": None}
    method = max(best, key=best.get)
    exact_best = max((best[m] for m in exact), default=None)
    return {"gmacs": best[method], "method": method, "loops": best, "exact_gmacs": exact_best}


def variant_loops(loops: dict, variant: str) -> dict:
    """The peak loops (measure_peak's "loops") of a variant's own instructions: their names start with
    the variant's name ("avx512vnni vpdpbusd" for "avx512vnni", also for a row's "avx512vnni ..." label)."""
    base = variant.split()[0]
    return {m: g for m, g in loops.items() if m.startswith(base + " ")}


def kernel_loop_gmacs(loops: dict, variant: str) -> float | None:
    """The peak of the loop of the instruction a variant's kernels run (measure_peak's "loops"): its
    own loop, the exact one where it has two (avx2's kernels run vpmaddwd on int16-widened inputs, not
    the saturating vpmaddubsw); the fastest loop when the variant has none of its own (scalar); None
    when there are no loops."""
    own = variant_loops(loops, variant)
    own = [g for m, g in own.items() if "exact" in m] or list(own.values()) or list(loops.values())
    return max(own) if own else None


def run(quick: bool = False, variant: str = "auto", budget_s: float | None = None, seed: int = 0,
        progress=None, threads: int = 1, burst: int = 1, shapes: str = "csp", rounds: int = 1) -> dict:
    """Our fused ops and XNNPACK both on `threads` threads. The peak loop runs on one core, so the
    peak fractions compare against `threads` x that peak. `burst`: calls in a row per side and
    round, the first not timed when > 1 (_time_pair). `rounds`: passes over the whole shape table,
    each giving every shape `budget_s` of interleaved repetitions; a shape's times are the minima
    over all its passes (spread over the run, so that one slow phase of the machine does not make
    a shape's figure)."""
    from keras_csp import kernels as K

    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    budget_s = budget_s if budget_s is not None else (0.15 if quick else 0.4)
    rng = np.random.default_rng(seed)
    # the variant that runs, and the peak of its own dot-product instruction ("auto": every loop, as
    # auto may run a conv on another variant's kernels: amx takes small-K convs to AVX-512 VNNI)
    requested, variant = variant, K.resolve_variant(variant)
    loops_of = "auto" if requested == "auto" else variant
    peak = measure_peak(variant=loops_of)
    specs = shape_table(quick, shapes)
    cases = [_Case(spec, requested, rng, threads) for spec in specs]
    diffs = [case.max_diff_vs_xnnpack() for case in cases]
    samples = [([], [], []) for _ in cases]  # ours, xnnpack, xnnpack conv alone: ms per call
    windows: list[dict] = [{} for _ in cases]  # per shape, the best of each peak loop in its windows
    for _ in range(rounds):
        for i, case in enumerate(cases):
            # The peak loops timed in the shape's own windows as well: a shared or virtual core's
            # clock moves in phases of minutes, and a shape timed in a slow phase reads low against
            # the run's best peak (peak_fraction) for a reason outside the kernel (window_peak_fraction).
            window = windows[i]

            def probe():
                window.update(measure_peak(trials=1, best=window, variant=loops_of)["loops"])

            for acc, times in zip(samples[i], _time_pair(case, budget_s, burst=burst, probe=probe)):
                acc.extend(times.tolist())
            peak = measure_peak(trials=10, best={m: max(g, window.get(m, 0.0)) for m, g in peak["loops"].items()},
                                variant=loops_of)  # sampled throughout the run
    rows = []
    for spec, case, diff, window, (ours, xnn, conv_only) in zip(specs, cases, diffs, windows, samples):
        ours, xnn, conv_only = np.array(ours), np.array(xnn), np.array(conv_only)
        o, x = float(ours.min()), float(xnn.min())
        gmacs = case.macs / (o * 1e-3) / 1e9
        rows.append(dict(shape=spec["shape"], model=spec["model"], kind=spec["kind"], variant=case.variant,
                         threads=threads, ours_ms=round(o, 4),
                         xnnpack_ms=round(x, 4), speedup=round(x / o, 4),
                         ours_median_ms=round(float(np.median(ours)), 4),
                         xnnpack_median_ms=round(float(np.median(xnn)), 4), reps=int(len(ours)),
                         macs=int(case.macs), ours_gmacs=round(gmacs, 2),
                         max_abs_diff_vs_xnnpack=diff, algorithm=case.algorithm,
                         executed_macs=int(case.executed_macs),
                         executed_gmacs=round(case.executed_macs / (o * 1e-3) / 1e9, 2)))
        own = kernel_loop_gmacs(window, case.variant)
        rows[-1]["window_peak_gmacs"] = round(own * threads, 2) if own else None
        if len(conv_only):
            # XNNPACK's conv alone; its split/concat overhead = xnnpack_ms / this - 1
            rows[-1]["xnnpack_conv_only_ms"] = round(float(conv_only.min()), 4)
            rows[-1]["xnnpack_copy_overhead"] = round(x / float(conv_only.min()) - 1.0, 4)
        # the conv cores alone: XNNPACK's conv / ours (for "conv" shapes that is the speedup)
        rows[-1]["core_ratio"] = round(rows[-1].get("xnnpack_conv_only_ms", x) / o, 4)
        if progress:
            progress(rows[-1])
    peak = measure_peak(best=peak["loops"], variant=loops_of)
    loops, peak_method, peak, exact_peak = peak["loops"], peak["method"], peak["gmacs"], peak["exact_gmacs"]
    core_peak = peak
    peak = peak * threads if peak else peak
    exact_peak = exact_peak * threads if exact_peak else exact_peak

    for r in rows:  # against the peak of the instruction the shape's kernel uses (kernel_loop_gmacs)
        r["peak_fraction"] = (round(r["ours_gmacs"] / (kernel_loop_gmacs(loops, r["variant"]) * threads), 4)
                              if peak else None)
        r["window_peak_fraction"] = (round(r["ours_gmacs"] / r["window_peak_gmacs"], 4)
                                     if r["window_peak_gmacs"] else None)
        # the kernel's own efficiency: the products it issues (Winograd's, not the direct conv's MACs)
        r["executed_peak_fraction"] = (round(r["executed_gmacs"] / (kernel_loop_gmacs(loops, r["variant"]) * threads), 4)
                                       if peak else None)
    speedups = [r["speedup"] for r in rows]
    total_macs = sum(r["macs"] for r in rows)
    total_ms = sum(r["ours_ms"] for r in rows)

    def geomean(v):
        return float(math.exp(sum(math.log(s) for s in v) / len(v))) if v else None

    by_kind = {k: round(geomean([r["speedup"] for r in rows if r["kind"] == k]), 4)
               for k in sorted({r["kind"] for r in rows})}
    by_model = {m: round(geomean([r["speedup"] for r in rows if r["model"] == m]), 4)
                for m in sorted({r["model"] for r in rows})}
    agg_gmacs = total_macs / (total_ms * 1e-3) / 1e9
    window_fractions = [r["window_peak_fraction"] for r in rows if r["window_peak_fraction"] is not None]
    overheads = [r["xnnpack_copy_overhead"] for r in rows if "xnnpack_copy_overhead" in r]
    conv_speedups = [r["xnnpack_conv_only_ms"] / r["ours_ms"] for r in rows if "xnnpack_conv_only_ms" in r]
    return {
        "benchmark": f"keras-csp fused int8 kernels vs XNNPACK split+conv+concat ({threads} thread(s))",
        "shape_set": shapes,
        "threads": threads,
        "quick": quick,
        "variant": variant,
        "cpu_features": K.cpu_features(),
        "amx_denied": amx_denied(),
        "xnnpack_isa_cap": xnnpack_isa_cap(),  # --xnnpack-isa: the instruction sets XNNPACK was held to
        "machine": platform.machine(),
        "processor": cpu_name(),
        "timing": "min over interleaved repetitions (ms); medians also given",
        "rounds": rounds,
        "burst": burst,
        "burst_timing": ("each side once per round" if burst == 1 else
                         f"each side {burst} times in a row per round, the first call of each burst not timed"),
        "shapes": rows,
        "geomean_speedup": round(geomean(speedups), 4),
        "geomean_speedup_by_kind": by_kind,
        "geomean_speedup_by_model": by_model,
        "ours_aggregate_gmacs": round(agg_gmacs, 2),
        # where the speedup comes from, on the fused shapes: XNNPACK's own split/concat overhead
        # vs its conv alone, and our fused op vs XNNPACK's conv alone
        "xnnpack_copy_overhead_mean": round(float(np.mean(overheads)), 4) if overheads else None,
        "geomean_speedup_vs_xnnpack_conv_only": round(geomean(conv_speedups), 4) if conv_speedups else None,
        "geomean_core_ratio": round(geomean([r["core_ratio"] for r in rows]), 4),
        "core_peak_gmacs": round(core_peak, 2) if core_peak else None,
        "peak_gmacs": round(peak, 2) if peak else None,
        "peak_method": peak_method,
        "peak_loops_gmacs": {m: round(v, 2) for m, v in loops.items()},
        "peak_fraction": round(agg_gmacs / peak, 4) if peak else None,
        # vs the fastest loop that is exact for all int8 data (vpmaddwd on AVX2; = peak elsewhere)
        "exact_peak_gmacs": round(exact_peak, 2) if exact_peak else None,
        "peak_fraction_exact": round(agg_gmacs / exact_peak, 4) if exact_peak else None,
        "peak_fraction_median_shape": (round(float(np.median([r["peak_fraction"] for r in rows])), 4)
                                       if peak else None),
        "window_peak_fraction_median_shape": (
            round(float(np.median(window_fractions)), 4) if window_fractions else None),
        # shapes at >= 85 % of their instruction's peak: against the run's best peak / their window's
        "shapes_at_85pct_of_peak": sum(r["peak_fraction"] >= 0.85 for r in rows) if peak else None,
        "shapes_at_85pct_of_window_peak": sum(f >= 0.85 for f in window_fractions) if window_fractions else None,
        # Winograd shapes count by the MACs of the conv they compute (above) and here by the products
        # the kernel issues: the microkernel's own efficiency
        "winograd_shapes": sum(r["algorithm"] == "winograd" for r in rows),
        "shapes_at_85pct_of_peak_executed": (sum(r["executed_peak_fraction"] >= 0.85 for r in rows)
                                             if peak else None),
    }


def format_table(result: dict) -> str:
    lines = [f"{'shape':70s} {'ours ms':>9s} {'xnnpack ms':>10s} {'speedup':>8s} {'GMAC/s':>7s} {'%peak':>6s} "
             f"{'%win':>5s}"]
    for r in result["shapes"]:
        pf = f"{100 * r['peak_fraction']:.0f}%" if r.get("peak_fraction") is not None else "-"
        wf = f"{100 * r['window_peak_fraction']:.0f}%" if r.get("window_peak_fraction") is not None else "-"
        wino = "  (winograd: {:.0f}% of peak in products issued)".format(100 * r["executed_peak_fraction"]) \
            if r.get("algorithm") == "winograd" and r.get("executed_peak_fraction") is not None else ""
        lines.append(f"{r['shape']:70s} {r['ours_ms']:9.3f} {r['xnnpack_ms']:10.3f} {r['speedup']:7.2f}x "
                     f"{r['ours_gmacs']:7.1f} {pf:>6s} {wf:>5s}{wino}")
    lines.append(f"geomean speedup {result['geomean_speedup']:.3f}x  by kind {result['geomean_speedup_by_kind']}; "
                 f"core ratio {result['geomean_core_ratio']:.3f} ({result['threads']} thread(s), {result['variant']})")
    if result.get("xnnpack_isa_cap"):
        lines.append(f"XNNPACK held to {result['xnnpack_isa_cap']['level']} (arch flags "
                     f"{result['xnnpack_isa_cap']['arch_flags_before']} -> {result['xnnpack_isa_cap']['arch_flags']})")
    if result["peak_gmacs"]:
        lines.append(f"peak {result['peak_gmacs']:.1f} GMAC/s ({result['peak_method']}); ours aggregate "
                     f"{result['ours_aggregate_gmacs']:.1f} GMAC/s = {100 * result['peak_fraction']:.1f}% of peak")
        if result.get("window_peak_fraction_median_shape") is not None:
            n = len(result["shapes"])
            lines.append(f"shapes at >= 85 % of peak: {result['shapes_at_85pct_of_peak']} of {n} against the run's "
                         f"best peak, {result['shapes_at_85pct_of_window_peak']} of {n} against the peak timed in "
                         f"their own window (%win; median shape {100 * result['peak_fraction_median_shape']:.0f} % / "
                         f"{100 * result['window_peak_fraction_median_shape']:.0f} %)")
        if result.get("exact_peak_gmacs") and result["exact_peak_gmacs"] != result["peak_gmacs"]:
            lines.append(f"exact-int8 peak loop {result['exact_peak_gmacs']:.1f} GMAC/s: ours = "
                         f"{100 * result['peak_fraction_exact']:.1f}% of it")
    return "\n".join(lines)
