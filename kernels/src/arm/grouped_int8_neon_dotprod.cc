// int8 grouped conv, aarch64 NEON with the dot-product extension (what the dotprod, i8mm and SME
// variants run), for groups of G = 4 or 8 input and output channels (ResNeXt's 3x3 convs: 32 groups
// of 4 at 56x56, of 8 at 28x28). Per-group GEMMs (XNNPACK's way, and our other variants') pad
// every group to the tile's 16 outputs: a quarter or half of their sdot lanes do real work. Here a
// q register of accumulators holds 4 output channels of one group, and the by-element sdot
// (`sdot v.4s, w.16b, x.4b[l]`) broadcasts the group's 4 input bytes from the pixel's 16-channel
// load: per tap, 16 output channels and 4 inputs of their groups, one sdot of 16 real MACs.
//
// Four output pixels share each weight load: per tap and 16 channels, 4 input loads and G weight
// loads (16 bytes each) feed 4 * G sdots. 3x3 convs at stride 1 across (all but the first conv of
// each ResNeXt stage) run an assembly block (Sums3x3Stride1) that loads each input column once per
// kernel row. llvm-mca (kernels/tools/mca_arm.py), one 3x3 block zeroed to sums: G = 4 reaches
// 83 % of the sdot peak on the Cortex-A76 model, 90 % on the A710 and Neoverse V1, 65 % on the
// in-order A55, where every load and movi takes an issue slot (G = 8: 95 %, 95 %, 95 %, 72 %).
//
// sdot multiplies signed by signed: sum((x - zp) * w) = sum(x * w) - zp * sum(w), the second term
// folded into the packed bias; padded taps read a row of zero points, so border pixels take the
// same path. Epilogue: neon_int8_common.h.
#if defined(__aarch64__)
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../conv_internal.h"
#include "neon_int8_common.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kNR = kPackNR;  // 16 output (and input) channels per block: four accumulators
constexpr int kPixels = 4;    // output pixels sharing each weight load
constexpr int kMaxTaps = 64;  // kernels up to this many taps take the 4-pixel path
// Per block: the 4 parameter rows, then per tap and per 4 input channels of a group (G / 4 of
// them) 4 accumulators x 16 weight bytes (lane i of accumulator a: output channel 4a + i's 4 weights).
inline size_t BlockBytes(const PackedGroupedConvInt8& w) {
  return kPackParamBytes + static_cast<size_t>(Taps(w)) * (GroupChannels(w) / 4) * 4 * 16;
}
inline int Blocks(const PackedGroupedConvInt8& w) { return (w.geometry_.out_channels + kNR - 1) / kNR; }
// The zero-point row after the blocks: a block's 16-byte load from any block start stays inside.
inline size_t ZeroPointRowBytes(const PackedGroupedConvInt8& w) {
  return static_cast<size_t>(w.geometry_.in_channels + kNR + 15) / 16 * 16;
}

// Accumulator a (output channels 4a .. 4a + 3 of the block) reads, for its jj-th 4 input channels,
// input dword a (G = 4: its own group) or 2 * (a / 2) + jj (G = 8: two accumulators per group).
constexpr int LaneDword(int dwords, int a, int jj) { return dwords == 1 ? a : 2 * (a / 2) + jj; }

// sdot by element needs a constant lane: a switch that folds away once the loops are unrolled.
inline int32x4_t DotLane(int32x4_t acc, int8x16_t w, int8x16_t x, int lane) {
  switch (lane) {
    case 0: return vdotq_laneq_s32(acc, w, x, 0);
    case 1: return vdotq_laneq_s32(acc, w, x, 1);
    case 2: return vdotq_laneq_s32(acc, w, x, 2);
    default: return vdotq_laneq_s32(acc, w, x, 3);
  }
}

// The block's 16 input channels at one tap (kFull: all of them; else the n channels are copied
// first: a plain load could read past the slice).
template <bool kFull>
inline int8x16_t LoadInputs(const int8_t* x, int n) {
  if constexpr (kFull) return vld1q_s8(x);
  int8_t tmp[16] = {};
  std::memcpy(tmp, x, static_cast<size_t>(n));
  return vld1q_s8(tmp);
}

// One block of P output pixels: x[t * P + p] points at input channel 0 of pixel p's tap t (or the
// zero-point row; tap-major, so a tap's pointers load as pairs), o[p] at pixel p's output channel
// 0. kTaps: the tap count when fixed (3x3: the loop unrolled, no loop overhead), else 0.
template <int kDwords, int P, bool kFull, int kTaps>
inline void Block(const int8_t* const* x, int taps, int oc0, int n, const int32_t* prm, const int8_t* wt,
                  const RequantConsts& c, int8_t* const* o) {
  int32x4_t acc[P][4];
  for (int p = 0; p < P; ++p)
    for (int a = 0; a < 4; ++a) acc[p][a] = vdupq_n_s32(0);
  if constexpr (kTaps > 0) taps = kTaps;
#pragma GCC unroll 9
  for (int t = 0; t < taps; ++t) {
    int8x16_t in[P];
    for (int p = 0; p < P; ++p) in[p] = LoadInputs<kFull>(x[t * P + p] + oc0, n);
    const int8_t* wtap = wt + static_cast<size_t>(t) * kDwords * 64;
#pragma GCC unroll 2
    for (int jj = 0; jj < kDwords; ++jj)
#pragma GCC unroll 4
      for (int a = 0; a < 4; ++a) {
        const int8x16_t wv = vld1q_s8(wtap + jj * 64 + a * 16);
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) acc[p][a] = DotLane(acc[p][a], wv, in[p], LaneDword(kDwords, a, jj));
      }
  }
  for (int p = 0; p < P; ++p) StoreRow(acc[p][0], acc[p][1], acc[p][2], acc[p][3], prm, c, o[p] + oc0, n);
}

// 3x3 at stride 1 across, 4 pixels x 16 channels, in assembly. The pixels' taps in a kernel row
// read 6 input columns, each loaded once per block and row; the next row's columns load while
// this row's sdots run (rows alternate between v0-v5 and v8-v13). 16 accumulators (v16-v31: pixel
// p's quarter a in v(16 + 4p + a)); two weight registers (v6, v7), each loaded one quarter ahead.
// Per block (G = 4): 144 sdot, 18 input loads, 36 weight loads, 9 pointer-pair loads. From
// intrinsics, gcc and clang both chained sdots on one accumulator and spilled: 55-57 % of the sdot
// peak on the Cortex-A76 model, 30-39 % on the in-order A55 (kernels/tools/mca_arm.py).
#define KCSP_SDOT(A, W, I, L) "sdot " A ".4s, " W ".16b, " I ".4b[" L "]\n"
// One quarter of the block's outputs (accumulators A0-A3 of pixels 0-3) times weight W, lane L of
// the pixels' inputs I0-I3.
#define KCSP_QUARTER_(A0, A1, A2, A3, W, L, I0, I1, I2, I3) \
  KCSP_SDOT(A0, W, I0, L) KCSP_SDOT(A1, W, I1, L) KCSP_SDOT(A2, W, I2, L) KCSP_SDOT(A3, W, I3, L)
#define KCSP_QUARTER(...) KCSP_QUARTER_(__VA_ARGS__)
#define KCSP_Q0 "%[a00]", "%[a10]", "%[a20]", "%[a30]"
#define KCSP_Q1 "%[a01]", "%[a11]", "%[a21]", "%[a31]"
#define KCSP_Q2 "%[a02]", "%[a12]", "%[a22]", "%[a32]"
#define KCSP_Q3 "%[a03]", "%[a13]", "%[a23]", "%[a33]"
// One tap, G = 4: quarter a's weights at O_a (quarter 0's already in v6), NEXT loads the next tap's
// quarter 0, E1 / E2 are the next row's input loads.
#define KCSP_G4_TAP(I0, I1, I2, I3, O1, O2, O3, NEXT, E1, E2)                                         \
  "ldr q7, [%[w], #" O1 "]\n" KCSP_QUARTER(KCSP_Q0, "v6", "0", I0, I1, I2, I3) E1                   \
  "ldr q6, [%[w], #" O2 "]\n" KCSP_QUARTER(KCSP_Q1, "v7", "1", I0, I1, I2, I3)                      \
  "ldr q7, [%[w], #" O3 "]\n" KCSP_QUARTER(KCSP_Q2, "v6", "2", I0, I1, I2, I3) E2 NEXT              \
  KCSP_QUARTER(KCSP_Q3, "v7", "3", I0, I1, I2, I3)
// One tap, G = 8: two steps of 4 inputs; quarters 0-1 read the group's dwords 0 then 1, quarters
// 2-3 dwords 2 then 3 (LaneDword).
#define KCSP_G8_TAP(I0, I1, I2, I3, O1, O2, O3, O4, O5, O6, O7, NEXT, E1, E2)                       \
  "ldr q7, [%[w], #" O1 "]\n" KCSP_QUARTER(KCSP_Q0, "v6", "0", I0, I1, I2, I3) E1                   \
  "ldr q6, [%[w], #" O2 "]\n" KCSP_QUARTER(KCSP_Q1, "v7", "0", I0, I1, I2, I3)                      \
  "ldr q7, [%[w], #" O3 "]\n" KCSP_QUARTER(KCSP_Q2, "v6", "2", I0, I1, I2, I3)                      \
  "ldr q6, [%[w], #" O4 "]\n" KCSP_QUARTER(KCSP_Q3, "v7", "2", I0, I1, I2, I3) E2                   \
  "ldr q7, [%[w], #" O5 "]\n" KCSP_QUARTER(KCSP_Q0, "v6", "1", I0, I1, I2, I3)                      \
  "ldr q6, [%[w], #" O6 "]\n" KCSP_QUARTER(KCSP_Q1, "v7", "1", I0, I1, I2, I3)                      \
  "ldr q7, [%[w], #" O7 "]\n" KCSP_QUARTER(KCSP_Q2, "v6", "3", I0, I1, I2, I3) NEXT                 \
  KCSP_QUARTER(KCSP_Q3, "v7", "3", I0, I1, I2, I3)
// A kernel row's 6 column pointers (col + byte offsets A, B, C) into x9-x14.
#define KCSP_G_LOAD_POINTERS(A, B, C) \
  "ldp x9, x10, [%[col], #" A "]\n" "ldp x11, x12, [%[col], #" B "]\n" "ldp x13, x14, [%[col], #" C "]\n"

// col[ky * 6 + i]: input column i of kernel row ky (or the zero-point row); oc0: the block's first
// channel; w: the block's weights; a[p][q]: pixel p's quarter q of the 16 sums (in registers: stored
// to memory and read back, the sums cost 36 more micro-ops per block on the Cortex-A76 model).
template <int kDwords>
__attribute__((always_inline)) inline void Sums3x3Stride1(const int8_t* const* col, int64_t oc0, const int8_t* w,
                                                          int32x4_t (&a)[kPixels][4]) {
  static_assert(kDwords == 1 || kDwords == 2, "groups of 4 or 8");
#define KCSP_G_PROLOGUE                                                                                 \
  "movi %[a00].4s, #0\n" "movi %[a01].4s, #0\n" "movi %[a02].4s, #0\n" "movi %[a03].4s, #0\n"         \
  "movi %[a10].4s, #0\n" "movi %[a11].4s, #0\n" "movi %[a12].4s, #0\n" "movi %[a13].4s, #0\n"         \
  "movi %[a20].4s, #0\n" "movi %[a21].4s, #0\n" "movi %[a22].4s, #0\n" "movi %[a23].4s, #0\n"         \
  "movi %[a30].4s, #0\n" "movi %[a31].4s, #0\n" "movi %[a32].4s, #0\n" "movi %[a33].4s, #0\n"         \
  KCSP_G_LOAD_POINTERS("0", "16", "32")                                                                \
  "ldr q0, [x9, %[oc]]\n" "ldr q1, [x10, %[oc]]\n" "ldr q2, [x11, %[oc]]\n"                            \
  "ldr q3, [x12, %[oc]]\n" "ldr q4, [x13, %[oc]]\n" "ldr q5, [x14, %[oc]]\n"                           \
  "ldr q6, [%[w]]\n" KCSP_G_LOAD_POINTERS("48", "64", "80")
#define KCSP_G_OPERANDS                                                                                 \
  : [a00] "=&w"(a[0][0]), [a01] "=&w"(a[0][1]), [a02] "=&w"(a[0][2]), [a03] "=&w"(a[0][3]),            \
    [a10] "=&w"(a[1][0]), [a11] "=&w"(a[1][1]), [a12] "=&w"(a[1][2]), [a13] "=&w"(a[1][3]),            \
    [a20] "=&w"(a[2][0]), [a21] "=&w"(a[2][1]), [a22] "=&w"(a[2][2]), [a23] "=&w"(a[2][3]),            \
    [a30] "=&w"(a[3][0]), [a31] "=&w"(a[3][1]), [a32] "=&w"(a[3][2]), [a33] "=&w"(a[3][3])             \
  : [col] "r"(col), [oc] "r"(oc0), [w] "r"(w)                                                           \
  : "x9", "x10", "x11", "x12", "x13", "x14", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", \
    "v10", "v11", "v12", "v13", "memory"
  if constexpr (kDwords == 1) {
    __asm__ volatile(
      KCSP_MCA_ASM_BEGIN("neon_dotprod_grouped_g4")
      KCSP_G_PROLOGUE
      KCSP_G4_TAP("v0", "v1", "v2", "v3", "16", "32", "48", "ldr q6, [%[w], #64]\n", "ldr q8, [x9, %[oc]]\n", "ldr q9, [x10, %[oc]]\n")
      KCSP_G4_TAP("v1", "v2", "v3", "v4", "80", "96", "112", "ldr q6, [%[w], #128]\n", "ldr q10, [x11, %[oc]]\n", "ldr q11, [x12, %[oc]]\n")
      KCSP_G4_TAP("v2", "v3", "v4", "v5", "144", "160", "176", "ldr q6, [%[w], #192]\n", "ldr q12, [x13, %[oc]]\n", "ldr q13, [x14, %[oc]]\n" KCSP_G_LOAD_POINTERS("96", "112", "128"))
      KCSP_G4_TAP("v8", "v9", "v10", "v11", "208", "224", "240", "ldr q6, [%[w], #256]\n", "ldr q0, [x9, %[oc]]\n", "ldr q1, [x10, %[oc]]\n")
      KCSP_G4_TAP("v9", "v10", "v11", "v12", "272", "288", "304", "ldr q6, [%[w], #320]\n", "ldr q2, [x11, %[oc]]\n", "ldr q3, [x12, %[oc]]\n")
      KCSP_G4_TAP("v10", "v11", "v12", "v13", "336", "352", "368", "ldr q6, [%[w], #384]\n", "ldr q4, [x13, %[oc]]\n", "ldr q5, [x14, %[oc]]\n")
      KCSP_G4_TAP("v0", "v1", "v2", "v3", "400", "416", "432", "ldr q6, [%[w], #448]\n", "", "")
      KCSP_G4_TAP("v1", "v2", "v3", "v4", "464", "480", "496", "ldr q6, [%[w], #512]\n", "", "")
      KCSP_G4_TAP("v2", "v3", "v4", "v5", "528", "544", "560", "", "", "")
      KCSP_MCA_ASM_END("neon_dotprod_grouped_g4")
      KCSP_G_OPERANDS);
  } else {
    __asm__ volatile(
      KCSP_MCA_ASM_BEGIN("neon_dotprod_grouped_g8")
      KCSP_G_PROLOGUE
      KCSP_G8_TAP("v0", "v1", "v2", "v3", "16", "32", "48", "64", "80", "96", "112", "ldr q6, [%[w], #128]\n", "ldr q8, [x9, %[oc]]\n", "ldr q9, [x10, %[oc]]\n")
      KCSP_G8_TAP("v1", "v2", "v3", "v4", "144", "160", "176", "192", "208", "224", "240", "ldr q6, [%[w], #256]\n", "ldr q10, [x11, %[oc]]\n", "ldr q11, [x12, %[oc]]\n")
      KCSP_G8_TAP("v2", "v3", "v4", "v5", "272", "288", "304", "320", "336", "352", "368", "ldr q6, [%[w], #384]\n", "ldr q12, [x13, %[oc]]\n", "ldr q13, [x14, %[oc]]\n" KCSP_G_LOAD_POINTERS("96", "112", "128"))
      KCSP_G8_TAP("v8", "v9", "v10", "v11", "400", "416", "432", "448", "464", "480", "496", "ldr q6, [%[w], #512]\n", "ldr q0, [x9, %[oc]]\n", "ldr q1, [x10, %[oc]]\n")
      KCSP_G8_TAP("v9", "v10", "v11", "v12", "528", "544", "560", "576", "592", "608", "624", "ldr q6, [%[w], #640]\n", "ldr q2, [x11, %[oc]]\n", "ldr q3, [x12, %[oc]]\n")
      KCSP_G8_TAP("v10", "v11", "v12", "v13", "656", "672", "688", "704", "720", "736", "752", "ldr q6, [%[w], #768]\n", "ldr q4, [x13, %[oc]]\n", "ldr q5, [x14, %[oc]]\n")
      KCSP_G8_TAP("v0", "v1", "v2", "v3", "784", "800", "816", "832", "848", "864", "880", "ldr q6, [%[w], #896]\n", "", "")
      KCSP_G8_TAP("v1", "v2", "v3", "v4", "912", "928", "944", "960", "976", "992", "1008", "ldr q6, [%[w], #1024]\n", "", "")
      KCSP_G8_TAP("v2", "v3", "v4", "v5", "1040", "1056", "1072", "1088", "1104", "1120", "1136", "", "", "")
      KCSP_MCA_ASM_END("neon_dotprod_grouped_g8")
      KCSP_G_OPERANDS);
  }
#undef KCSP_G_PROLOGUE
#undef KCSP_G_OPERANDS
}

template <int kDwords>
inline void Block3x3Stride1(const int8_t* const* col, int oc0, const int32_t* prm, const int8_t* wt,
                            const RequantConsts& c, int8_t* const* o) {
  int32x4_t a[kPixels][4];
  Sums3x3Stride1<kDwords>(col, oc0, wt, a);
  for (int p = 0; p < kPixels; ++p) StoreRow(a[p][0], a[p][1], a[p][2], a[p][3], prm, c, o[p] + oc0, kNR);
}

template <int kDwords, int P, int kTaps>
inline void Blocks(const PackedGroupedConvInt8& w, const int8_t* const* x, int taps, const RequantConsts& c,
                   int8_t* const* o) {
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const int cout = w.geometry_.out_channels;
  for (int oc0 = 0, bi = 0; oc0 < cout; oc0 += kNR, ++bi) {
    const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
    const auto* wt = reinterpret_cast<const int8_t*>(base + bi * bb + kPackParamBytes);
    const int n = std::min(kNR, cout - oc0);
    if (n == kNR)
      Block<kDwords, P, true, kTaps>(x, taps, oc0, n, prm, wt, c, o);
    else
      Block<kDwords, P, false, kTaps>(x, taps, oc0, n, prm, wt, c, o);
  }
}

template <int kDwords, int kTaps>
void Rows(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
          int row_end) {
  const ConvGeometry& g = w.geometry_;
  const RequantConsts c = MakeRequantConsts(w.quant_);
  const int taps = Taps(w);
  const auto* zp_row = reinterpret_cast<const int8_t*>(static_cast<const uint8_t*>(w.packed()) + Blocks(w) * BlockBytes(w));
  // Up to kMaxTaps taps: 4 pixels at a time; larger kernels one pixel at a time (the table's size).
  const int pixels = taps <= kMaxTaps ? kPixels : 1;
  static_assert(kPixels * kMaxTaps <= 64 * 64, "the table holds one pixel of the largest kernel (64 x 64)");
  const int8_t* x[64 * 64];
  for (int r = row_begin; r < row_end; ++r) {
    const int b = r / p.out_h, oy = r % p.out_h;
    const int iy0 = oy * g.stride_h - p.pad_top;
    const int8_t* image = in + b * p.in.batch_stride + p.in.channel_offset;
    int8_t* orow = out + b * p.out.batch_stride + oy * p.out.row_stride + p.out.channel_offset;
    // pixel ox's tap pointers into x[t * step + slot]
    auto gather = [&](int ox, int step, int slot) {
      const int ix0 = ox * g.stride_w - p.pad_left;
      for (int ky = 0; ky < g.kernel_h; ++ky) {
        const int iy = iy0 + ky;
        const bool row_in = iy >= 0 && iy < p.in_h;
        for (int kx = 0; kx < g.kernel_w; ++kx) {
          const int ix = ix0 + kx;
          x[(ky * g.kernel_w + kx) * step + slot] =
              row_in && ix >= 0 && ix < p.in_w ? image + iy * p.in.row_stride + ix * p.in.pixel_stride : zp_row;
        }
      }
    };
    int ox = 0;
    if (kTaps == 9 && g.kernel_w == 3 && g.stride_w == 1) {  // 3x3 at stride 1: whole blocks by columns
      const auto* base = static_cast<const uint8_t*>(w.packed());
      const size_t bb = BlockBytes(w);
      const int full_blocks = g.out_channels / kNR;
      for (; ox + kPixels <= p.out_w; ox += kPixels) {
        int8_t* o[kPixels];
        for (int q = 0; q < kPixels; ++q) o[q] = orow + (ox + q) * p.out.pixel_stride;
        for (int ky = 0; ky < 3; ++ky) {
          const int iy = iy0 + ky;
          for (int i = 0; i < kPixels + 2; ++i) {
            const int ix = ox - p.pad_left + i;
            x[ky * (kPixels + 2) + i] = iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w
                                            ? image + iy * p.in.row_stride + ix * p.in.pixel_stride
                                            : zp_row;
          }
        }
        for (int bi = 0; bi < full_blocks; ++bi)
          Block3x3Stride1<kDwords>(x, bi * kNR, reinterpret_cast<const int32_t*>(base + bi * bb),
                                   reinterpret_cast<const int8_t*>(base + bi * bb + kPackParamBytes), c, o);
        if (full_blocks * kNR < g.out_channels) {  // the last partial block: the generic path
          const int8_t* xt[9 * kPixels];
          for (int q = 0; q < kPixels; ++q)
            for (int t = 0; t < 9; ++t) xt[t * kPixels + q] = x[(t / 3) * (kPixels + 2) + q + t % 3];
          const int oc0 = full_blocks * kNR;
          Block<kDwords, kPixels, false, 9>(xt, 9, oc0, g.out_channels - oc0,
                                            reinterpret_cast<const int32_t*>(base + full_blocks * bb),
                                            reinterpret_cast<const int8_t*>(base + full_blocks * bb + kPackParamBytes),
                                            c, o);
        }
      }
    }
    if (pixels == kPixels) {
      for (; ox + kPixels <= p.out_w; ox += kPixels) {
        int8_t* o[kPixels];
        for (int q = 0; q < kPixels; ++q) {
          gather(ox + q, kPixels, q);
          o[q] = orow + (ox + q) * p.out.pixel_stride;
        }
        Blocks<kDwords, kPixels, kTaps>(w, x, taps, c, o);
      }
    }
    for (; ox < p.out_w; ++ox) {
      int8_t* o[1] = {orow + ox * p.out.pixel_stride};
      gather(ox, 1, 0);
      Blocks<kDwords, 1, kTaps>(w, x, taps, c, o);
    }
  }
}

template <int kDwords>
void RowsForKernel(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int r0,
                   int r1) {
  if (Taps(w) == 9)
    Rows<kDwords, 9>(w, p, in, out, r0, r1);
  else
    Rows<kDwords, 0>(w, p, in, out, r0, r1);
}

}  // namespace

Status PackGroupedInt8NeonDotprod(PackedGroupedConvInt8* w) {
  const int cout = w->geometry_.out_channels, taps = Taps(*w), G = GroupChannels(*w), dwords = G / 4;
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * Blocks(*w) + ZeroPointRowBytes(*w)));
  const Int8QuantParams& quant = w->quant_;
  const std::vector<int32_t> bias = GroupedFoldedBiases(*w, quant.input_zero_point);
  for (int bi = 0; bi < Blocks(*w); ++bi) {
    PackParamRows(reinterpret_cast<int32_t*>(base + bi * bb), quant, bias.data(), w->left_shift_.data(),
                  w->right_shift_.data(), bi * kNR, cout);
    auto* wt = reinterpret_cast<int8_t*>(base + bi * bb + kPackParamBytes);
    for (int j = 0; j < kNR && bi * kNR + j < cout; ++j) {  // lanes past cout: zero weights, not stored
      const int8_t* f = &w->weights_[static_cast<size_t>(bi * kNR + j) * taps * G];
      for (int t = 0; t < taps; ++t)
        for (int jj = 0; jj < dwords; ++jj)
          std::memcpy(wt + (static_cast<size_t>(t) * dwords + jj) * 64 + 4 * j, f + t * G + 4 * jj, 4);
    }
  }
  std::memset(base + Blocks(*w) * bb, static_cast<uint8_t>(quant.input_zero_point), ZeroPointRowBytes(*w));
  return Status::Ok();
}

void GroupedInt8NeonDotprod(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                            int row_begin, int row_end) {
  if (GroupChannels(w) == 4)
    RowsForKernel<1>(w, p, in, out, row_begin, row_end);
  else
    RowsForKernel<2>(w, p, in, out, row_begin, row_end);
}

}  // namespace internal
}  // namespace keras_csp

#pragma GCC pop_options
#endif  // __aarch64__
