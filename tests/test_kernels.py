"""Fused CSP kernels: bit-exact against TFLite's builtin int8 CONV_2D (+ SLICE / CONCATENATION).

The reference graphs are built directly as flatbuffers (`keras_csp.kernels.build_tflite_model`)
and run by the ai-edge-litert interpreter with its reference op resolver (BUILTIN_REF).
Every concrete kernel variant available on this CPU is checked; the others are skipped with
the reason.
"""
import dataclasses

import numpy as np
import pytest
from hypothesis import assume, HealthCheck, given, settings
from hypothesis import strategies as st

from keras_csp import _kernels
from keras_csp import kernels as K
from conftest import GROUPED_KERNEL_VARIANTS, WIDE_GROUPED_KERNEL_VARIANTS

FEATURES = K.cpu_features()
INT8_VARIANTS = ["scalar", "avx2", "avxvnni", "avx512vnni", "amx", "neon_dotprod", "neon_i8mm", "neon", "sme"]
MISSING_REASON = {
    "avx2": "CPU has no AVX2",
    "avxvnni": "CPU has no AVX-VNNI (e.g. AMD Zen 3 / Zen 4, Intel before Alder Lake); this variant is "
               "compiled but cannot run here",
    "avx512vnni": "CPU has no AVX-512 VNNI (e.g. AMD Zen 3); this variant is compiled but cannot run here",
    "amx": "CPU has no AMX-INT8 (e.g. AMD Zen 3 / Zen 4), or the kernel refused its tile state; this "
           "variant is compiled but cannot run here",
    "neon_dotprod": "not an aarch64 CPU with the dot-product extension (tested under qemu by "
                    "kernels/tools/test_aarch64.sh)",
    "neon_i8mm": "not an aarch64 CPU with the int8 matrix-multiply extension (tested under qemu "
                 "-cpu max by kernels/tools/test_aarch64.sh)",
    "neon": "not an aarch64 CPU (tested under qemu by kernels/tools/test_aarch64.sh)",
    "sme": "not an aarch64 CPU with SME (tested under qemu 10 -cpu max and max,sme512=on by "
           "kernels/tools/test_aarch64.sh)",
}
AVAILABLE = K.available_variants()


def variant_param(v):
    marks = [] if v in AVAILABLE else [pytest.mark.skip(reason=MISSING_REASON.get(v, "unavailable"))]
    return pytest.param(v, marks=marks, id=v)


HYP = settings(max_examples=150, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def conv_cases(draw, kind):
    k = draw(st.sampled_from([1, 3]))
    if kind == "conv":
        stride = draw(st.sampled_from([1, 2]))
        padding = draw(st.sampled_from(["same", "valid"]))
    else:
        stride, padding = 1, "same"
    lo = k if padding == "valid" else 1
    h = draw(st.integers(lo, 9))
    w = draw(st.integers(lo, 9))
    n = draw(st.integers(1, 2))
    c = draw(st.one_of(st.integers(1, 20), st.sampled_from([3, 15, 17, 31, 33, 63, 65, 96, 130])))
    c_skip = draw(st.integers(0, c - 1)) if kind == "csp" else 0
    cout = draw(st.one_of(st.integers(1, 20), st.sampled_from([15, 17, 32, 33, 48, 65])))
    in_scale = draw(st.floats(0.002, 0.2))
    in_zp = draw(st.integers(-128, 127))
    if kind == "conv":
        out_scale = draw(st.one_of(st.floats(0.005, 1.0), st.floats(0.0002, 0.002)))
        out_zp = draw(st.integers(-128, 127))
    else:
        out_scale, out_zp = in_scale, in_zp
    act = draw(st.sampled_from(["none", "relu", "relu6"]))
    order = draw(st.sampled_from(["skip_first", "skip_last"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(kind=kind, k=k, stride=stride, padding=padding, n=n, h=h, w=w, c=c, c_skip=c_skip,
                cout=cout, in_scale=in_scale, in_zp=in_zp, out_scale=out_scale, out_zp=out_zp,
                act=act, order=order, seed=seed)


def make_tensors(case):
    rng = np.random.default_rng(case["seed"])
    cin = case["c"] - case["c_skip"]
    weights = rng.integers(-127, 128, (case["cout"], case["k"], case["k"], cin)).astype(np.int8)
    bias = rng.integers(-20000, 20000, case["cout"]).astype(np.int32)
    fscales = rng.uniform(0.0005, 0.05, case["cout"]).astype(np.float32)
    x = rng.integers(-128, 128, (case["n"], case["h"], case["w"], case["c"])).astype(np.int8)
    quant = K.Int8Quant(case["in_scale"], case["in_zp"], fscales, case["out_scale"], case["out_zp"],
                        case["act"])
    return x, weights, bias, quant


def run_ours(case, x, weights, bias, quant, variant):
    conv = K.Int8Conv(weights, bias, quant, strides=case["stride"], padding=case["padding"],
                      variant=variant)
    assert conv.variant == variant
    if case["kind"] == "conv":
        return conv(x)
    if case["kind"] == "csp":
        return conv.csp_partial(x, case["c_skip"], order=case["order"])
    # dense: the block buffer holds [x | conv(x) | spare]; the conv reads x in place.
    c, cout = case["c"], case["cout"]
    block = np.full(x.shape[:3] + (c + cout + 5,), 99, np.int8)
    block[..., :c] = x
    conv.dense_append(block, 0, c)
    assert np.all(block[..., c + cout:] == 99), "dense_append wrote outside its channel slice"
    return block[..., :c + cout]


def check_against_tflite(case, resolver="ref"):
    """resolver "ref": TFLite reference kernels, our default rounding (ties away from zero);
    "builtin": TFLite's optimized builtin kernels, matched with rounding="half_up";
    "xnnpack": LiteRT's default XNNPACK delegate, matched with rounding="fp32"."""
    x, weights, bias, quant = make_tensors(case)
    rounding = {"ref": "away_from_zero", "builtin": "half_up", "xnnpack": "fp32"}[resolver]
    quant = dataclasses.replace(quant, rounding=rounding)
    model = K.build_tflite_model(case["kind"], x.shape, weights, bias, quant, c_skip=case["c_skip"],
                                 order=case["order"], strides=case["stride"], padding=case["padding"])
    expected = K.run_tflite(model, x, resolver=resolver)
    for variant in AVAILABLE:
        got = run_ours(case, x, weights, bias, quant, variant)
        assert got.shape == expected.shape
        mismatches = int(np.count_nonzero(got != expected))
        assert mismatches == 0, f"{variant}: {mismatches} mismatching elements for {case}"


@HYP
@given(conv_cases("conv"))
def test_conv_bit_exact_vs_tflite(case):
    check_against_tflite(case)


@HYP
@given(conv_cases("csp"))
def test_csp_partial_bit_exact_vs_tflite(case):
    check_against_tflite(case)


@HYP
@given(conv_cases("dense"))
def test_dense_append_bit_exact_vs_tflite(case):
    check_against_tflite(case)


@HYP
@given(st.sampled_from(["conv", "csp", "dense"]).flatmap(conv_cases))
def test_half_up_rounding_bit_exact_vs_optimized_builtin(case):
    """The interpreter's default (optimized, ruy) int8 CONV_2D rounds the final shift's ties up;
    rounding="half_up" reproduces it bit for bit."""
    check_against_tflite(case, resolver="builtin")


@HYP
@given(st.sampled_from(["conv", "csp", "dense"]).flatmap(conv_cases))
def test_fp32_rounding_bit_exact_vs_xnnpack(case):
    """XNNPACK requantizes in float32 (rint(float(acc) * scale) + zp); rounding="fp32"
    reproduces it bit for bit."""
    check_against_tflite(case, resolver="xnnpack")


ODD_CASES = [
    # 1x1 images, channel counts not multiple of 4/16/64, stride 2 on odd sizes, VALID == kernel
    dict(kind="conv", k=3, stride=2, padding="same", n=1, h=1, w=1, c=3, c_skip=0, cout=5),
    dict(kind="conv", k=3, stride=1, padding="valid", n=1, h=3, w=3, c=65, c_skip=0, cout=17),
    dict(kind="conv", k=1, stride=2, padding="valid", n=2, h=7, w=5, c=130, c_skip=0, cout=63),
    dict(kind="conv", k=3, stride=2, padding="same", n=1, h=8, w=7, c=1, c_skip=0, cout=1),
    dict(kind="csp", k=3, stride=1, padding="same", n=1, h=1, w=1, c=66, c_skip=33, cout=33),
    dict(kind="csp", k=1, stride=1, padding="same", n=1, h=5, w=1, c=129, c_skip=64, cout=65),
    dict(kind="dense", k=3, stride=1, padding="same", n=1, h=2, w=3, c=97, c_skip=0, cout=32),
]


@pytest.mark.parametrize("base", ODD_CASES, ids=lambda d: "{kind}-k{k}s{stride}-{padding}-{h}x{w}x{c}".format(**d))
@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
@pytest.mark.parametrize("resolver", ["ref", "xnnpack"])
def test_odd_shapes_bit_exact(base, act, resolver):
    case = dict(base, in_scale=0.05, in_zp=-7, out_scale=0.05 if base["kind"] != "conv" else 0.11,
                out_zp=-7 if base["kind"] != "conv" else 13, act=act, order="skip_last", seed=3)
    check_against_tflite(case, resolver)


WINOGRAD_CASES = [  # AVX2 3x3 stride-1 convs: even and odd sizes, VALID, channels not a multiple of 16
    dict(kind="conv", k=3, stride=1, padding="same", n=2, h=14, w=14, c=128, c_skip=0, cout=32),
    dict(kind="conv", k=3, stride=1, padding="same", n=1, h=7, w=9, c=34, c_skip=0, cout=20),
    dict(kind="conv", k=3, stride=1, padding="valid", n=1, h=12, w=11, c=66, c_skip=0, cout=17),
    dict(kind="dense", k=3, stride=1, padding="same", n=1, h=11, w=10, c=40, c_skip=0, cout=32),
    dict(kind="csp", k=3, stride=1, padding="same", n=1, h=10, w=10, c=96, c_skip=48, cout=48),
]


@pytest.mark.skipif("avx2" not in AVAILABLE, reason="no AVX2 on this CPU")
@pytest.mark.parametrize("base", WINOGRAD_CASES, ids=lambda d: "{kind}-{padding}-{h}x{w}x{c}".format(**d))
@pytest.mark.parametrize("resolver", ["ref", "builtin", "xnnpack"])
def test_winograd_bit_exact_vs_tflite(base, resolver, monkeypatch):
    """AVX2 runs 3x3 stride-1 convs by Winograd F(2x2, 3x3) in exact integers: TFLite's bits in
    every rounding mode (KERAS_CSP_WINOGRAD=force: on every image size, read when a conv is packed)."""
    monkeypatch.setenv("KERAS_CSP_WINOGRAD", "force")
    conv_only = base["kind"] == "conv"  # csp / dense graphs keep one quantization
    case = dict(base, in_scale=0.05, in_zp=-7, out_scale=0.2 if conv_only else 0.05, out_zp=5 if conv_only else -7,
                act="relu", order="skip_last", seed=11)
    x, weights, bias, quant = make_tensors(case)
    assert K.Int8Conv(weights, bias, quant, variant="avx2").algorithm(1) == "winograd"
    check_against_tflite(case, resolver)


@pytest.mark.skipif("avx2" not in AVAILABLE, reason="no AVX2 on this CPU")
def test_winograd_choice(monkeypatch):
    """Which convs run Winograd: AVX2 3x3 stride 1 from 10x10 output pixels; KERAS_CSP_WINOGRAD=0
    turns it off (the same bits)."""
    rng = np.random.default_rng(5)
    q = K.Int8Quant(0.05, 3, rng.uniform(0.001, 0.01, 32), 0.1, -2, "relu")
    w3 = rng.integers(-127, 128, (32, 3, 3, 64)).astype(np.int8)
    conv = K.Int8Conv(w3, None, q, variant="avx2")
    assert conv.algorithm(14 * 14) == "winograd" and conv.algorithm(7 * 7) == "direct"
    assert K.Int8Conv(w3, None, q, variant="avx2", strides=2).algorithm(14 * 14) == "direct"
    assert K.Int8Conv(w3[:, :1, :1], None, q, variant="avx2").algorithm(14 * 14) == "direct"
    assert K.Int8Conv(w3, None, q, variant="scalar").algorithm(14 * 14) == "direct"
    x = rng.integers(-128, 128, (1, 14, 14, 64)).astype(np.int8)
    monkeypatch.setenv("KERAS_CSP_WINOGRAD", "0")
    direct = K.Int8Conv(w3, None, q, variant="avx2")
    assert direct.algorithm(14 * 14) == "direct"
    np.testing.assert_array_equal(conv(x), direct(x))


def test_append_graph_bit_exact():
    """Dense-block layer with its own conv input: concat(block, conv(t)) written in place."""
    rng = np.random.default_rng(7)
    n, h, w, c_block, cin, cout = 1, 5, 6, 40, 16, 8
    q = K.Int8Quant(0.07, 4, rng.uniform(0.001, 0.02, cout), 0.03, -9, "relu")
    wts = rng.integers(-127, 128, (cout, 3, 3, cin)).astype(np.int8)
    b = rng.integers(-3000, 3000, cout).astype(np.int32)
    t = rng.integers(-128, 128, (n, h, w, cin)).astype(np.int8)
    blk = rng.integers(-128, 128, (n, h, w, c_block)).astype(np.int8)
    model = K.build_tflite_model("append", t.shape, wts, b, q, block_channels=c_block)
    expected = K.run_tflite(model, blk, t, resolver="ref")
    for variant in AVAILABLE:
        buf = np.zeros((n, h, w, c_block + cout), np.int8)
        buf[..., :c_block] = blk
        K.Int8Conv(wts, b, q, variant=variant).conv_slices(t, 0, buf, c_block)
        np.testing.assert_array_equal(buf, expected)


def test_dense_block_runs_without_concat_copies():
    """A 3-layer dense block (1x1 bottleneck -> 3x3 growth) computed in one preallocated buffer
    equals the TFLite chain of conv + CONCATENATION graphs."""
    rng = np.random.default_rng(0)
    n, h, w, c0, growth, bott, layers = 1, 6, 5, 24, 8, 16, 3
    scale, zp = 0.04, -5
    block = np.zeros((n, h, w, c0 + layers * growth), np.int8)
    x = rng.integers(-128, 128, (n, h, w, c0)).astype(np.int8)
    block[..., :c0] = x
    ref = x
    for i in range(layers):
        c = c0 + i * growth
        w1 = rng.integers(-127, 128, (bott, 1, 1, c)).astype(np.int8)
        b1 = rng.integers(-3000, 3000, bott).astype(np.int32)
        q1 = K.Int8Quant(scale, zp, rng.uniform(0.001, 0.02, bott), 0.08, 3, "relu")
        w3 = rng.integers(-127, 128, (growth, 3, 3, bott)).astype(np.int8)
        b3 = rng.integers(-3000, 3000, growth).astype(np.int32)
        q3 = K.Int8Quant(0.08, 3, rng.uniform(0.001, 0.02, growth), scale, zp, "relu")
        # ours: bottleneck reads block[..., :c] in place, growth conv writes block[..., c:c+growth]
        tmp = np.empty((n, h, w, bott), np.int8)
        K.Int8Conv(w1, b1, q1).conv_slices(block, 0, tmp, 0)
        K.Int8Conv(w3, b3, q3).conv_slices(tmp, 0, block, c)
        # TFLite: conv graph + dense graph (conv + concat)
        t = K.run_tflite(K.build_tflite_model("conv", ref.shape, w1, b1, q1), ref)
        y = K.run_tflite(K.build_tflite_model("conv", t.shape, w3, b3, q3), t)
        ref = np.concatenate([ref, y], axis=-1)
    np.testing.assert_array_equal(block, ref)


# ---- every optimized variant against the scalar reference (random, larger shapes) ------------

@pytest.mark.parametrize("variant", [variant_param(v) for v in INT8_VARIANTS[1:]])
@pytest.mark.parametrize("shape", [(1, 14, 14, 128, 32, 3, 1), (1, 28, 28, 64, 64, 1, 1),
                                   (2, 9, 11, 37, 45, 3, 2), (1, 7, 7, 1024, 128, 1, 1)],
                         ids=lambda s: "x".join(map(str, s)))
def test_variant_matches_scalar_int8(variant, shape):
    n, h, w, cin, cout, k, s = shape
    rng = np.random.default_rng(sum(shape))
    weights = rng.integers(-127, 128, (cout, k, k, cin)).astype(np.int8)
    bias = rng.integers(-50000, 50000, cout).astype(np.int32)
    quant = K.Int8Quant(0.03, 11, rng.uniform(0.0005, 0.01, cout), 0.2, -20, "relu6")
    x = rng.integers(-128, 128, (n, h, w, cin)).astype(np.int8)
    ref = K.Int8Conv(weights, bias, quant, strides=s, variant="scalar")(x)
    got = K.Int8Conv(weights, bias, quant, strides=s, variant=variant)(x)
    np.testing.assert_array_equal(got, ref)


F32_VARIANTS = ["avx2", "neon"]


@pytest.mark.parametrize("variant", [pytest.param(v, marks=[] if v in K.available_variants(True)
                                                  else [pytest.mark.skip(reason=MISSING_REASON[v])])
                                     for v in F32_VARIANTS])
@pytest.mark.parametrize("k,stride,padding", [(1, 1, "same"), (3, 1, "same"), (3, 2, "valid"), (3, 2, "same")])
@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
def test_float32_variants_vs_tf(variant, k, stride, padding, act):
    import tensorflow as tf

    rng = np.random.default_rng(k * 10 + stride)
    n, h, w, c, c_skip, cout = 2, 9, 8, 21, 5, 19
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    weights = rng.standard_normal((cout, k, k, c - c_skip)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    y = tf.nn.conv2d(x[..., c_skip:], np.transpose(weights, (1, 2, 3, 0)), stride, padding.upper()).numpy() + bias
    y = {"none": y, "relu": np.maximum(y, 0), "relu6": np.clip(y, 0, 6)}[act]
    for v in ("scalar", variant):
        conv = K.Float32Conv(weights, bias, strides=stride, padding=padding, activation=act, variant=v)
        np.testing.assert_allclose(conv(np.ascontiguousarray(x[..., c_skip:])), y, rtol=1e-4, atol=1e-4)
        out = np.zeros((n, *y.shape[1:3], 40), np.float32)
        conv.conv_slices(x, c_skip, out, 3)
        np.testing.assert_allclose(out[..., 3:3 + cout], y, rtol=1e-4, atol=1e-4)
        assert not out[..., :3].any() and not out[..., 3 + cout:].any()
        if stride == 1 and padding == "same":
            for order in ("skip_first", "skip_last"):
                got = conv.csp_partial(x, c_skip, order=order)
                parts = [x[..., :c_skip], y] if order == "skip_first" else [y, x[..., :c_skip]]
                np.testing.assert_allclose(got, np.concatenate(parts, -1), rtol=1e-4, atol=1e-4)
            block = np.zeros((n, h, w, c + cout), np.float32)
            block[..., :c] = x
            conv.dense_append(block, c_skip, c)
            np.testing.assert_allclose(block[..., c:], y, rtol=1e-4, atol=1e-4)


def test_auto_variant_is_best_available():
    # A CPU with AMX-INT8 where the kernel refused its tile state says why.
    assert FEATURES["amx_int8"] or isinstance(FEATURES["amx_note"], str)
    assert K.best_variant() in AVAILABLE
    # (64 input channels: amx runs 1x1 convs of up to 32 on its AVX-512 VNNI kernels)
    conv = K.Int8Conv(np.ones((4, 1, 1, 64), np.int8), None, K.Int8Quant(0.1, 0, [0.1] * 4, 0.1, 0))
    assert conv.variant == K.best_variant()
    if FEATURES["amx_int8"]:
        assert conv.variant == "amx"
    elif FEATURES["avx512vnni"]:
        assert conv.variant == "avx512vnni"
    elif FEATURES["avxvnni"]:
        assert conv.variant == "avxvnni"
    elif FEATURES["avx2"]:
        assert conv.variant == "avx2"


def test_quantize_multiplier_matches_tflite_examples():
    assert K.quantize_multiplier(0.5) == (1 << 30, 0)
    assert K.quantize_multiplier(0.75) == (1610612736, 0)
    assert K.quantize_multiplier(0.0) == (0, 0)
    m, s = K.quantize_multiplier(0.0003)
    assert abs(m * 2.0 ** (s - 31) - 0.0003) < 1e-12
    assert _kernels.multiply_by_quantized_multiplier(-4, 1 << 30, -2) == -1
    assert _kernels.multiply_by_quantized_multiplier(4, 1 << 30, -2) == 1


# ---- argument validation ----------------------------------------------------------------------

def _conv(variant="auto", cin=8, cout=16, k=3):
    w = np.ones((cout, k, k, cin), np.int8)
    return K.Int8Conv(w, np.zeros(cout, np.int32), K.Int8Quant(0.1, 0, [0.01] * cout, 0.2, 0),
                      variant=variant)


def test_invalid_dtypes_raise_type_error():
    conv = _conv()
    with pytest.raises(TypeError):
        conv(np.zeros((1, 4, 4, 8), np.float32))
    with pytest.raises(TypeError):
        conv(np.zeros((1, 4, 4, 8), np.uint8))
    with pytest.raises(TypeError):
        K.Int8Conv(np.ones((4, 1, 1, 4), np.float32), None, K.Int8Quant(0.1, 0, [0.1] * 4, 0.1, 0))
    with pytest.raises(TypeError):
        K.Int8Conv(np.ones((4, 1, 1, 4), np.int8), np.zeros(4, np.int64), K.Int8Quant(0.1, 0, [0.1] * 4, 0.1, 0))
    with pytest.raises(TypeError):
        conv([[1, 2]])
    with pytest.raises(TypeError):  # binding level, bypassing the Python wrapper
        conv._p.conv2d(np.zeros((1, 4, 4, 8), np.int16))


def test_invalid_shapes_raise_value_error():
    conv = _conv()
    with pytest.raises(ValueError, match="channels"):
        conv(np.zeros((1, 4, 4, 7), np.int8))
    with pytest.raises(ValueError):
        conv(np.zeros((4, 4, 8), np.int8))
    with pytest.raises(ValueError, match="c_skip"):
        conv.csp_partial(np.zeros((1, 4, 4, 8), np.int8), 8)
    with pytest.raises(ValueError, match="c_skip"):
        conv.csp_partial(np.zeros((1, 4, 4, 8), np.int8), -1)
    with pytest.raises(ValueError, match="channels - c_skip"):
        conv.csp_partial(np.zeros((1, 4, 4, 12), np.int8), 3)
    with pytest.raises(ValueError, match="order"):
        conv.csp_partial(np.zeros((1, 4, 4, 12), np.int8), 4, order="middle")
    with pytest.raises(ValueError, match="outside"):
        conv.dense_append(np.zeros((1, 4, 4, 20), np.int8), 0, 8)
    with pytest.raises(ValueError, match="overlap"):
        conv.dense_append(np.zeros((1, 4, 4, 30), np.int8), 0, 4)
    with pytest.raises(ValueError, match="outside"):
        conv.dense_append(np.zeros((1, 4, 4, 30), np.int8), 25, 0)
    with pytest.raises(ValueError, match="contiguous"):
        conv(np.zeros((1, 4, 4, 16), np.int8)[..., ::2])
    out = np.zeros((1, 4, 4, 16), np.int8)
    with pytest.raises(ValueError):
        conv.conv_slices(np.zeros((1, 4, 4, 8), np.int8), 0, out, 1)  # output slice past the end
    with pytest.raises(ValueError, match="out has the wrong shape"):
        conv(np.zeros((1, 4, 4, 8), np.int8), out=np.zeros((1, 4, 4, 15), np.int8))
    ro = np.zeros((1, 4, 4, 16), np.int8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        conv(np.zeros((1, 4, 4, 8), np.int8), out=ro)
    with pytest.raises(ValueError, match="VALID"):
        K.Int8Conv(np.ones((4, 3, 3, 4), np.int8), None, K.Int8Quant(0.1, 0, [0.1] * 4, 0.1, 0),
                   padding="valid")(np.zeros((1, 2, 2, 4), np.int8))


def test_invalid_parameters():
    q = K.Int8Quant(0.1, 0, [0.1] * 4, 0.1, 0)
    w = np.ones((4, 1, 1, 4), np.int8)
    with pytest.raises(ValueError, match="variant"):
        K.Int8Conv(w, None, q, variant="sse9")
    with pytest.raises(ValueError, match="padding"):
        K.Int8Conv(w, None, q, padding="full")
    with pytest.raises(ValueError, match="strides"):
        K.Int8Conv(w, None, q, strides=0)
    with pytest.raises(ValueError, match="zero_point"):
        K.Int8Quant(0.1, 200, [0.1], 0.1, 0)
    with pytest.raises(ValueError, match="scale"):
        K.Int8Quant(0.0, 0, [0.1], 0.1, 0)
    with pytest.raises(ValueError, match="activation"):
        K.Int8Quant(0.1, 0, [0.1], 0.1, 0, "gelu")
    with pytest.raises(ValueError, match="filter scales"):
        K.Int8Conv(w, None, K.Int8Quant(0.1, 0, [0.1] * 3, 0.1, 0))
    with pytest.raises(ValueError, match="bias"):
        K.Int8Conv(w, np.zeros(3, np.int32), q)
    # binding level: bad multiplier / shift / zero point reach the C++ validation
    with pytest.raises(ValueError, match="output_shift"):
        _kernels.PackedConvInt8(w, None, multiplier=np.full(4, 1 << 30, np.int32),
                                shift=np.full(4, 40, np.int32))
    with pytest.raises(ValueError, match="multiplier"):
        _kernels.PackedConvInt8(w, None, multiplier=np.full(4, -1, np.int32),
                                shift=np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="entries"):
        _kernels.PackedConvInt8(w, None, multiplier=np.full(3, 1 << 30, np.int32),
                                shift=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="zero points"):
        _kernels.PackedConvInt8(w, None, input_zero_point=-129, multiplier=np.full(4, 1 << 30, np.int32),
                                shift=np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="activation range"):
        _kernels.PackedConvInt8(w, None, act_min=10, act_max=5, multiplier=np.full(4, 1 << 30, np.int32),
                                shift=np.zeros(4, np.int32))


@pytest.mark.parametrize("variant", ["avxvnni", "avx512vnni", "neon_dotprod", "neon_i8mm", "neon", "avx2"])
def test_unavailable_variant_raises(variant):
    if variant in AVAILABLE:
        pytest.skip(f"{variant} is available on this CPU")
    with pytest.raises(RuntimeError, match="not available"):
        _conv(variant)


def test_misaligned_float_buffers_raise():
    conv = K.Float32Conv(np.ones((4, 1, 1, 4), np.float32), None)
    raw = np.zeros(4 * 4 * 4 * 4 + 1, np.uint8)[1:]
    mis = raw.view(np.float32).reshape(1, 4, 4, 4)
    assert not mis.flags.aligned
    with pytest.raises(ValueError, match="MISALIGNED"):
        conv(mis)
    assert conv(mis.copy()).shape == (1, 4, 4, 4)  # an aligned copy works


def test_inplace_alias_rejected():
    conv = _conv(cin=8, cout=8, k=1)
    buf = np.zeros((1, 4, 4, 16), np.int8)
    with pytest.raises(ValueError, match="overlap"):
        conv.conv_slices(buf, 0, buf, 4)
    conv.conv_slices(buf, 0, buf, 8)  # disjoint channel slices of one buffer are fine


# ---- threads: the same bits at every thread count ---------------------------------------------
# Shapes above the parallel threshold (2^19 MACs), so the pool really splits them: many pixels
# (pixel chunks), few pixels and many channels (output-channel block groups), odd sizes, strides.
THREAD_SHAPES = [  # n, h, w, cin, cout, k, stride
    (1, 16, 16, 128, 128, 1, 1),
    (1, 13, 11, 64, 33, 3, 1),
    (1, 4, 4, 256, 256, 3, 1),
    (2, 15, 15, 96, 80, 3, 2),
    (1, 7, 7, 1024, 1024, 1, 1),
]


@pytest.mark.parametrize("variant", [variant_param(v) for v in INT8_VARIANTS])
@pytest.mark.parametrize("shape", THREAD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_threads_give_identical_bits_int8(variant, shape):
    n, h, w, cin, cout, k, s = shape
    rng = np.random.default_rng(sum(shape))
    weights = rng.integers(-127, 128, (cout, k, k, cin)).astype(np.int8)
    bias = rng.integers(-5000, 5000, cout).astype(np.int32)
    x = rng.integers(-128, 128, (n, h, w, cin)).astype(np.int8)
    for rounding in ("away_from_zero", "half_up", "fp32"):
        quant = K.Int8Quant(0.03, -7, rng.uniform(0.001, 0.01, cout).astype(np.float32), 0.4, 9,
                            rounding=rounding)
        convs = {t: K.Int8Conv(weights, bias, quant, strides=s, variant=variant, threads=t) for t in (1, 2, 3)}
        ref = convs[1](x)
        for t in (2, 3):
            np.testing.assert_array_equal(convs[t](x), ref, err_msg=f"{variant} {rounding} threads={t}")
        if s == 1 and k == 1:  # the fused forms: CSP partial conv and dense-block append
            xs = rng.integers(-128, 128, (n, h, w, 24 + cin)).astype(np.int8)
            block = np.zeros((n, h, w, cin + cout), np.int8)
            block[..., :cin] = x
            for t in (2, 3):
                np.testing.assert_array_equal(convs[t].csp_partial(xs, 24), convs[1].csp_partial(xs, 24))
                np.testing.assert_array_equal(convs[t].dense_append(block.copy(), 0, cin),
                                              convs[1].dense_append(block.copy(), 0, cin))


@pytest.mark.parametrize("variant", [pytest.param(v, marks=[] if v in K.available_variants(True)
                                                  else [pytest.mark.skip(reason=MISSING_REASON.get(v, "n/a"))])
                                     for v in ["scalar", "avx2", "neon"]])
def test_threads_give_identical_bits_f32(variant):
    rng = np.random.default_rng(3)
    for n, h, w, cin, cout, k, s in THREAD_SHAPES[:3]:
        weights = rng.standard_normal((cout, k, k, cin)).astype(np.float32)
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        ref = K.Float32Conv(weights, None, strides=s, variant=variant)(x)
        for t in (2, 3):
            got = K.Float32Conv(weights, None, strides=s, variant=variant, threads=t)(x)
            np.testing.assert_array_equal(got, ref)


def test_threads_argument_is_checked():
    for bad in (0, -1, 257, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            _conv(variant="scalar").__class__(np.ones((4, 1, 1, 4), np.int8), None,
                                              K.Int8Quant(0.1, 0, [0.01] * 4, 0.2, 0), threads=bad)


@st.composite
def depthwise_cases(draw):
    k = draw(st.sampled_from([1, 2, 3, 3, 3, 5]))
    mult = draw(st.sampled_from([1, 1, 2, 2, 3]))
    return dict(k=k, mult=mult, stride=draw(st.integers(1, 2)), padding=draw(st.sampled_from(["same", "valid"])),
                n=draw(st.integers(1, 2)), h=draw(st.integers(k, 9)), w=draw(st.integers(k, 9)),
                c=draw(st.sampled_from([1, 3, 8, 16, 24, 33, 64, 72, 80, 100])),
                in_scale=draw(st.floats(0.002, 0.2)), in_zp=draw(st.integers(-128, 127)),
                out_scale=draw(st.floats(0.005, 1.0)), out_zp=draw(st.integers(-128, 127)),
                act=draw(st.sampled_from(["none", "relu", "relu6"])), seed=draw(st.integers(0, 2**31 - 1)))


def check_depthwise_against_tflite(case, resolver):
    rng = np.random.default_rng(case["seed"])
    oc = case["c"] * case["mult"]
    weights = rng.integers(-127, 128, (1, case["k"], case["k"], oc)).astype(np.int8)
    bias = rng.integers(-20000, 20000, oc).astype(np.int32)
    x = rng.integers(-128, 128, (case["n"], case["h"], case["w"], case["c"])).astype(np.int8)
    rounding = {"ref": "away_from_zero", "builtin": "half_up", "xnnpack": "fp32"}[resolver]
    quant = K.Int8Quant(case["in_scale"], case["in_zp"], rng.uniform(0.0005, 0.05, oc).astype(np.float32),
                        case["out_scale"], case["out_zp"], case["act"], rounding=rounding)
    model = K.build_tflite_model("depthwise", x.shape, weights, bias, quant, strides=case["stride"],
                                 padding=case["padding"], depth_multiplier=case["mult"])
    expected = K.run_tflite(model, x, resolver=resolver)
    for variant in AVAILABLE:
        dw = K.Int8Depthwise(weights, bias, quant, depth_multiplier=case["mult"], strides=case["stride"],
                             padding=case["padding"], variant=variant, threads=1 + case["seed"] % 2)
        got = dw(x)
        assert got.shape == expected.shape
        mismatches = int(np.count_nonzero(got != expected))
        assert mismatches == 0, f"{variant} (kernel {dw.variant}): {mismatches} mismatching elements for {case}"


@HYP
@given(depthwise_cases(), st.sampled_from(["ref", "builtin", "xnnpack"]))
def test_depthwise_bit_exact_vs_tflite(case, resolver):
    """Int8Depthwise (the AVX-512 VNNI kernel where the CPU has it; AVX2, NEON dotprod / NEON,
    scalar) bit-exact with LiteRT's DEPTHWISE_CONV_2D under its three kernel sets and roundings,
    multipliers 1-3, at 1 and 2 threads. TFLite's optimized builtin depthwise kernel (LiteRT 2.3,
    x86-64) rounds ties up in whole groups of 8 output channels and away from zero in the
    out_channels % 8 left over (measured with power-of-two scales): half_up matches it when
    out_channels is a multiple of 8, which the builtin case keeps to."""
    assume(resolver != "builtin" or case["c"] * case["mult"] % 8 == 0)
    check_depthwise_against_tflite(case, resolver)


@st.composite
def grouped_cases(draw):
    k = draw(st.sampled_from([1, 3, 3, 3, 5]))
    # groups of 4, 8, 16 and 32 (the grouped kernels: ResNeXt's 3x3 convs) and others (per-group convs)
    per_group = draw(st.sampled_from([4, 4, 8, 8, 1, 3, 16, 32]))
    return dict(k=k, g=per_group, groups=draw(st.sampled_from([1, 2, 5, 8, 12])), stride=draw(st.integers(1, 2)),
                padding=draw(st.sampled_from(["same", "valid"])), n=draw(st.integers(1, 2)),
                h=draw(st.integers(k, 10)), w=draw(st.integers(k, 10)),
                in_scale=draw(st.floats(0.002, 0.2)), in_zp=draw(st.integers(-128, 127)),
                out_scale=draw(st.floats(0.005, 1.0)), out_zp=draw(st.integers(-128, 127)),
                act=draw(st.sampled_from(["none", "relu", "relu6"])), seed=draw(st.integers(0, 2**31 - 1)))


@HYP
@given(grouped_cases(), st.sampled_from(["ref", "builtin", "xnnpack"]))
def test_grouped_conv_bit_exact_vs_tflite(case, resolver):
    """Int8GroupedConv (the grouped kernels for groups of 4 or 8, and of 16 or 32 on AVX-512 VNNI,
    per-group convs otherwise, scalar) bit-exact with LiteRT's grouped CONV_2D under its three kernel sets, at 1
    and 2 threads. LiteRT's builtin kernels run grouped convs on the reference kernel, which rounds
    ties away from zero (a single group is a plain conv: its optimized kernel rounds them up)."""
    rng = np.random.default_rng(case["seed"])
    c = case["g"] * case["groups"]
    weights = rng.integers(-127, 128, (c, case["k"], case["k"], case["g"])).astype(np.int8)
    bias = rng.integers(-20000, 20000, c).astype(np.int32)
    x = rng.integers(-128, 128, (case["n"], case["h"], case["w"], c)).astype(np.int8)
    # groups=1 is a plain CONV_2D: LiteRT's builtin kernels run it on the optimized conv (ties up)
    builtin = "half_up" if case["groups"] == 1 else "away_from_zero"
    rounding = {"ref": "away_from_zero", "builtin": builtin, "xnnpack": "fp32"}[resolver]
    quant = K.Int8Quant(case["in_scale"], case["in_zp"], rng.uniform(0.0005, 0.05, c).astype(np.float32),
                        case["out_scale"], case["out_zp"], case["act"], rounding=rounding)
    model = K.build_tflite_model("conv", x.shape, weights, bias, quant, strides=case["stride"],
                                 padding=case["padding"])
    expected = K.run_tflite(model, x, resolver=resolver)
    for variant in AVAILABLE:
        conv = K.Int8GroupedConv(weights, bias, quant, groups=case["groups"], strides=case["stride"],
                                 padding=case["padding"], variant=variant, threads=1 + case["seed"] % 2)
        got = conv(x)
        assert got.shape == expected.shape
        mismatches = int(np.count_nonzero(got != expected))
        assert mismatches == 0, f"{variant} (per group: {conv.per_group}): {mismatches} mismatches for {case}"


def test_grouped_conv_reports_its_path_and_refuses_bad_arguments():
    q = K.Int8Quant(0.05, 0, np.full(128, 0.01, np.float32), 0.1, 0)
    conv = K.Int8GroupedConv(np.ones((128, 3, 3, 4), np.int8), None, q, groups=32)
    assert conv.groups == 32 and conv.geometry["in_channels"] == 128
    grouped_kernel = conv.variant in GROUPED_KERNEL_VARIANTS
    assert conv.per_group == (conv.variant != "scalar" and not grouped_kernel)
    wide = K.Int8GroupedConv(np.ones((128, 3, 3, 16), np.int8), None, q, groups=8)  # groups of 16
    assert wide.per_group == (wide.variant not in ("scalar",) + WIDE_GROUPED_KERNEL_VARIANTS)
    q120 = K.Int8Quant(0.05, 0, np.full(120, 0.01, np.float32), 0.1, 0)
    odd = K.Int8GroupedConv(np.ones((120, 3, 3, 12), np.int8), None, q120, groups=10)  # groups of 12
    assert odd.per_group == (odd.variant != "scalar")
    for bad in (0, 3, 1.5, True):
        with pytest.raises(ValueError, match="groups"):
            K.Int8GroupedConv(np.ones((128, 3, 3, 4), np.int8), None, q, groups=bad)
    with pytest.raises(ValueError, match="channels"):
        conv(np.zeros((1, 5, 5, 64), np.int8))  # 128 input channels expected


def test_depthwise_reports_its_kernel_and_refuses_bad_arguments():
    q = K.Int8Quant(0.05, 0, np.full(16, 0.01, np.float32), 0.1, 0)
    w = np.ones((1, 3, 3, 16), np.int8)
    dw = K.Int8Depthwise(w, None, q, depth_multiplier=2)
    assert dw.variant in ("avx512vnni", "avxvnni", "avx2", "neon_dotprod", "neon", "scalar")
    assert dw.geometry["in_channels"] == 8 and dw.geometry["out_channels"] == 16
    with pytest.raises(ValueError, match="depth_multiplier"):
        K.Int8Depthwise(w, None, q, depth_multiplier=3)
    with pytest.raises(ValueError, match=r"\[1, kh, kw, out_channels\]"):
        K.Int8Depthwise(np.ones((2, 3, 3, 16), np.int8), None, q)
    with pytest.raises(ValueError, match="channels"):
        dw(np.zeros((1, 5, 5, 16), np.int8))  # 8 input channels expected
