// Element-wise post ops, aarch64 NEON: the 256-entry table as one tbl and three tbx of 64 entries
// (tbx keeps the lanes whose index is out of its range), or, for the table alone, four tbl or-ed
// (LookupBulk); the ADD in int32 lanes (sxtl, mla, sshl by -shift, saturating narrows, the zero
// point and clamp in int16 / int8). 16 bytes per step; a shorter tail goes through a stack copy.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "../elementwise_internal.h"
#include "mca_markers.h"

namespace keras_csp {
namespace internal {
namespace {

struct Consts {
  uint8x16x4_t t[4];
  int32x4_t bias, neg_shift;
  int16x8_t zp;
  int8x16_t lo, hi;
  int32_t y_mult, r_mult;

  explicit Consts(const Int8PostOps& ops) {
    const uint8_t* table = reinterpret_cast<const uint8_t*>(ops.table_);
    for (int q = 0; q < 4; ++q)
      for (int j = 0; j < 4; ++j) t[q].val[j] = vld1q_u8(table + 64 * q + 16 * j);
    const Int8AddParams& a = ops.add_;
    bias = vdupq_n_s32(a.bias);
    zp = vdupq_n_s16(static_cast<int16_t>(a.output_zero_point));
    lo = vdupq_n_s8(static_cast<int8_t>(a.output_min));
    hi = vdupq_n_s8(static_cast<int8_t>(a.output_max));
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

// (bias + y * y_mult + r * r_mult) >> shift in int32 lanes; the zero point and the clamp after
// saturating narrows to int16 and int8, as XNNPACK's qs8 vadd does (one max / min per 16 lanes
// instead of four): the same result, since the bounds lie in int8 and a sum that saturates int16
// lies beyond them either way.
inline int32x4_t Sum4(const Consts& k, int16x4_t y, int16x4_t r) {
  const int32x4_t acc = vmlaq_n_s32(vmlaq_n_s32(k.bias, vmovl_s16(y), k.y_mult), vmovl_s16(r), k.r_mult);
  return vshlq_s32(acc, k.neg_shift);  // sshl by a negative count: arithmetic >>
}

inline int8x16_t Add16(const Consts& k, int8x16_t y, int8x16_t r) {
  const int16x8_t y0 = vmovl_s8(vget_low_s8(y)), y1 = vmovl_high_s8(y);
  const int16x8_t r0 = vmovl_s8(vget_low_s8(r)), r1 = vmovl_high_s8(r);
  int16x8_t a = vqmovn_high_s32(vqmovn_s32(Sum4(k, vget_low_s16(y0), vget_low_s16(r0))),
                                Sum4(k, vget_high_s16(y0), vget_high_s16(r0)));
  int16x8_t b = vqmovn_high_s32(vqmovn_s32(Sum4(k, vget_low_s16(y1), vget_low_s16(r1))),
                                Sum4(k, vget_high_s16(y1), vget_high_s16(r1)));
  a = vqaddq_s16(a, k.zp);
  b = vqaddq_s16(b, k.zp);
  return vminq_s8(vmaxq_s8(vqmovn_high_s16(vqmovn_s16(a), b), k.lo), k.hi);
}

template <bool kTable, bool kAdd>
inline int8x16_t Post16(const Consts& k, int8x16_t y, const int8_t* r) {
  if (kTable) y = Lookup(k, y);
  if (kAdd) y = Add16(k, y, vld1q_s8(r));
  return y;
}

// The table alone (the activated convs' outputs), 48 bytes per step, in assembly: GCC 12 and
// clang 19 both spill the 16 table registers and reload them every step. Four independent
// 4-register tbl (each gives 0 where the index is outside its quarter) or-ed together, instead of
// a tbl and a dependent chain of three tbx. llvm-mca-19, cycles per 16 bytes, compiled intrinsics
// (2 vectors per step) -> this loop: cortex-a55 29-30 -> 14.0, cortex-a76 22-23 -> 21.0,
// cortex-a710 16 -> 11.5, neoverse-v1 9.3 -> 6.7. All `runs` runs of n bytes in one call, so the
// table is loaded once (a strided slice is a run per pixel). Returns the bytes it did per run (a
// multiple of 48); the rest of each run is left to Run.
int64_t LookupBulk(const uint8_t* table, int8_t* y, int64_t runs, int64_t y_stride, int64_t n) {
  const int64_t bulk = n / 48 * 48;
  if (bulk == 0 || runs <= 0) return 0;
  int8_t* p;
  int64_t left;
  const uint8_t* t = table;
  asm volatile(
      "ld1 {v16.16b, v17.16b, v18.16b, v19.16b}, [%[t]], #64\n\t"
      "ld1 {v20.16b, v21.16b, v22.16b, v23.16b}, [%[t]], #64\n\t"
      "ld1 {v24.16b, v25.16b, v26.16b, v27.16b}, [%[t]], #64\n\t"
      "ld1 {v28.16b, v29.16b, v30.16b, v31.16b}, [%[t]]\n\t"
      "movi v15.16b, #64\n"
      "2:\n\t"
      "mov %[p], %[y]\n\t"
      "mov %[left], %[bulk]\n"
      "1:\n\t" KCSP_MCA_ASM_BEGIN("neon_table_48")
      "ldp q0, q1, [%[p]]\n\t"
      "ldr q2, [%[p], #32]\n\t"
      // indices of the 2nd, 3rd and 4th quarter: x - 64, x - 128, x - 192 (mod 256)
      "sub v4.16b, v0.16b, v15.16b\n\t"
      "sub v5.16b, v1.16b, v15.16b\n\t"
      "sub v6.16b, v2.16b, v15.16b\n\t"
      "sub v8.16b, v4.16b, v15.16b\n\t"
      "sub v9.16b, v5.16b, v15.16b\n\t"
      "sub v10.16b, v6.16b, v15.16b\n\t"
      "sub v12.16b, v8.16b, v15.16b\n\t"
      "sub v13.16b, v9.16b, v15.16b\n\t"
      "sub v14.16b, v10.16b, v15.16b\n\t"
      // a quarter's tbl gives 0 where the index is out of its range: or the four
      "tbl v0.16b, {v16.16b, v17.16b, v18.16b, v19.16b}, v0.16b\n\t"
      "tbl v1.16b, {v16.16b, v17.16b, v18.16b, v19.16b}, v1.16b\n\t"
      "tbl v2.16b, {v16.16b, v17.16b, v18.16b, v19.16b}, v2.16b\n\t"
      "tbl v4.16b, {v20.16b, v21.16b, v22.16b, v23.16b}, v4.16b\n\t"
      "tbl v5.16b, {v20.16b, v21.16b, v22.16b, v23.16b}, v5.16b\n\t"
      "tbl v6.16b, {v20.16b, v21.16b, v22.16b, v23.16b}, v6.16b\n\t"
      "tbl v8.16b, {v24.16b, v25.16b, v26.16b, v27.16b}, v8.16b\n\t"
      "tbl v9.16b, {v24.16b, v25.16b, v26.16b, v27.16b}, v9.16b\n\t"
      "tbl v10.16b, {v24.16b, v25.16b, v26.16b, v27.16b}, v10.16b\n\t"
      "tbl v12.16b, {v28.16b, v29.16b, v30.16b, v31.16b}, v12.16b\n\t"
      "tbl v13.16b, {v28.16b, v29.16b, v30.16b, v31.16b}, v13.16b\n\t"
      "tbl v14.16b, {v28.16b, v29.16b, v30.16b, v31.16b}, v14.16b\n\t"
      "orr v0.16b, v0.16b, v4.16b\n\t"
      "orr v1.16b, v1.16b, v5.16b\n\t"
      "orr v2.16b, v2.16b, v6.16b\n\t"
      "orr v8.16b, v8.16b, v12.16b\n\t"
      "orr v9.16b, v9.16b, v13.16b\n\t"
      "orr v10.16b, v10.16b, v14.16b\n\t"
      "orr v0.16b, v0.16b, v8.16b\n\t"
      "orr v1.16b, v1.16b, v9.16b\n\t"
      "orr v2.16b, v2.16b, v10.16b\n\t"
      "stp q0, q1, [%[p]]\n\t"
      "str q2, [%[p], #32]\n\t"
      "add %[p], %[p], #48\n\t"
      "subs %[left], %[left], #48\n\t" KCSP_MCA_ASM_END("neon_table_48")
      "b.ne 1b\n\t"
      "add %[y], %[y], %[y_stride]\n\t"
      "subs %[runs], %[runs], #1\n\t"
      "b.ne 2b\n"
      : [p] "=&r"(p), [left] "=&r"(left), [t] "+r"(t), [y] "+r"(y), [runs] "+r"(runs)
      : [bulk] "r"(bulk), [y_stride] "r"(y_stride)
      : "cc", "memory", "v0", "v1", "v2", "v4", "v5", "v6", "v8", "v9", "v10", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
  return bulk;
}

// The table with the ADD, the ADD alone, and what LookupBulk leaves of the table alone.
template <bool kTable, bool kAdd>
void Run(const Consts& k, int8_t* y, const int8_t* r, int64_t n) {
  int64_t c = 0;
  // (clang's vst1q_s8 is a macro: the template's comma must not be inside its arguments)
  // Two vectors per step: the tbl / tbx chain of one is dependent (four 4-register lookups), so an
  // in-order core needs a second chain to overlap (llvm-mca-19, table only, cycles per 32 bytes:
  // cortex-a55 46 -> 33; cortex-a76 40 -> 39, cortex-a710 32 -> 32, measured before LookupBulk).
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
  const int64_t done = ops.has_table_ && !ops.has_add_
                           ? LookupBulk(reinterpret_cast<const uint8_t*>(ops.table_), y, runs, y_stride, n)
                           : 0;
  ForEachRun(ops, y, runs, y_stride, n, r, r_stride, [&](auto table, auto add, int8_t* yi, const int8_t* ri, int64_t len) {
    Run<decltype(table)::value, decltype(add)::value>(k, yi + done, ri, len - done);  // done: 0 with an ADD
  });
}

}  // namespace internal
}  // namespace keras_csp
#endif  // __aarch64__
