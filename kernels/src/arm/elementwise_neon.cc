// Element-wise post ops, aarch64 NEON: the 256-entry table as one tbl and three tbx of 64 entries
// (tbx keeps the lanes whose index is out of its range); the ADD in int32 lanes (sxtl, mul / mla,
// sshl by -shift, clamp, xtn). 16 bytes per step; a shorter tail goes through a stack copy.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "../elementwise_internal.h"

namespace keras_csp {
namespace internal {
namespace {

struct Consts {
  uint8x16x4_t t[4];
  int32x4_t bias, zp, lo, hi, neg_shift;
  int32_t y_mult, r_mult;

  explicit Consts(const Int8PostOps& ops) {
    const uint8_t* table = reinterpret_cast<const uint8_t*>(ops.table_);
    for (int q = 0; q < 4; ++q)
      for (int j = 0; j < 4; ++j) t[q].val[j] = vld1q_u8(table + 64 * q + 16 * j);
    const Int8AddParams& a = ops.add_;
    bias = vdupq_n_s32(a.bias);
    zp = vdupq_n_s32(a.output_zero_point);
    lo = vdupq_n_s32(a.output_min);
    hi = vdupq_n_s32(a.output_max);
    neg_shift = vdupq_n_s32(-a.shift);
    y_mult = a.y_multiplier;
    r_mult = a.r_multiplier;
  }
};

inline int8x16_t Lookup(const Consts& k, int8x16_t x) {
  const uint8x16_t i = vreinterpretq_u8_s8(x), step = vdupq_n_u8(64);
  uint8x16_t y = vqtbl4q_u8(k.t[0], i);
  const uint8x16_t i1 = vsubq_u8(i, step), i2 = vsubq_u8(i1, step), i3 = vsubq_u8(i2, step);
  y = vqtbx4q_u8(y, k.t[1], i1);
  y = vqtbx4q_u8(y, k.t[2], i2);
  y = vqtbx4q_u8(y, k.t[3], i3);
  return vreinterpretq_s8_u8(y);
}

inline int16x4_t Add4(const Consts& k, int16x4_t y, int16x4_t r) {
  int32x4_t acc = vmlaq_n_s32(vmlaq_n_s32(k.bias, vmovl_s16(y), k.y_mult), vmovl_s16(r), k.r_mult);
  acc = vaddq_s32(vshlq_s32(acc, k.neg_shift), k.zp);  // sshl by a negative count: arithmetic >>
  return vmovn_s32(vminq_s32(vmaxq_s32(acc, k.lo), k.hi));
}

inline int8x16_t Add16(const Consts& k, int8x16_t y, int8x16_t r) {
  const int16x8_t y0 = vmovl_s8(vget_low_s8(y)), y1 = vmovl_s8(vget_high_s8(y));
  const int16x8_t r0 = vmovl_s8(vget_low_s8(r)), r1 = vmovl_s8(vget_high_s8(r));
  const int16x8_t a = vcombine_s16(Add4(k, vget_low_s16(y0), vget_low_s16(r0)), Add4(k, vget_high_s16(y0), vget_high_s16(r0)));
  const int16x8_t b = vcombine_s16(Add4(k, vget_low_s16(y1), vget_low_s16(r1)), Add4(k, vget_high_s16(y1), vget_high_s16(r1)));
  return vcombine_s8(vmovn_s16(a), vmovn_s16(b));
}

template <bool kTable, bool kAdd>
inline int8x16_t Post16(const Consts& k, int8x16_t y, const int8_t* r) {
  if (kTable) y = Lookup(k, y);
  if (kAdd) y = Add16(k, y, vld1q_s8(r));
  return y;
}

template <bool kTable, bool kAdd>
void Run(const Consts& k, int8_t* y, const int8_t* r, int64_t n) {
  int64_t c = 0;
  // (clang's vst1q_s8 is a macro: the template's comma must not be inside its arguments)
  // Two vectors per step: the tbl / tbx chain of one is dependent (four 4-register lookups), so an
  // in-order core needs a second chain to overlap (llvm-mca-19, table only, cycles per 32 bytes:
  // cortex-a55 46 -> 33; cortex-a76 40 -> 39, cortex-a710 32 -> 32, bound by the lookups there).
  for (; c + 32 <= n; c += 32) {
    const int8x16_t a = Post16<kTable, kAdd>(k, vld1q_s8(y + c), kAdd ? r + c : nullptr);
    const int8x16_t b = Post16<kTable, kAdd>(k, vld1q_s8(y + c + 16), kAdd ? r + c + 16 : nullptr);
    vst1q_s8(y + c, a);
    vst1q_s8(y + c + 16, b);
  }
  for (; c + 16 <= n; c += 16) {
    const int8x16_t v = Post16<kTable, kAdd>(k, vld1q_s8(y + c), kAdd ? r + c : nullptr);
    vst1q_s8(y + c, v);
  }
  if (c < n) {
    int8_t yt[16] = {}, rt[16] = {};
    std::memcpy(yt, y + c, n - c);
    if (kAdd) std::memcpy(rt, r + c, n - c);
    const int8x16_t v = Post16<kTable, kAdd>(k, vld1q_s8(yt), rt);
    vst1q_s8(yt, v);
    std::memcpy(y + c, yt, n - c);
  }
}

}  // namespace

void PostOpsNeon(const Int8PostOps& ops, int8_t* y, int64_t runs, int64_t y_stride, int64_t n, const int8_t* r,
                 int64_t r_stride) {
  const Consts k(ops);
  ForEachRun(ops, y, runs, y_stride, n, r, r_stride, [&](auto table, auto add, int8_t* yi, const int8_t* ri, int64_t len) {
    Run<decltype(table)::value, decltype(add)::value>(k, yi, ri, len);
  });
}

}  // namespace internal
}  // namespace keras_csp
#endif  // __aarch64__
