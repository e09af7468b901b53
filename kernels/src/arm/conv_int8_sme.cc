// int8 conv, aarch64 SME (Scalable Matrix Extension: Armv9.2 cores with SME/SME2, Apple M4).
// SMOPA (4-way signed int8 outer product) accumulates a pixels x channels int32 tile in ZA:
// za.s[i][j] += sum over 4 input channels of x[pixel i] * w[channel j], SVL/32 x SVL/32 MACs x 4
// per instruction. The kernel is written in inline assembly (gcc 12 has no SME intrinsics):
// streaming mode is entered and left around each 16-pixel x 16-channel tile, so the compiler's
// own code never runs in streaming mode, and the requantization epilogue is the NEON one of
// the other int8 variants (bit-exact for all three rounding modes).
//
// Operands. Weights keep the dotprod packing [tap][k/4][16 channels][4]: one 64-byte group is the
// SMOPA right operand for 16 channels. Activations (raw int8, staged with border input_zero_point
// or, for 1x1 convs, read in place; the zp * sum(w) correction is in the packed bias) arrive as one
// row per pixel; SMOPA wants 4 channels of 16 pixels side by side, so each K chunk of the pixel
// rows is loaded as horizontal slices of a spare ZA tile and read back as vertical slices (the
// SME transpose). Streaming vector lengths: 256 bits (two accumulator tiles of 8 pixels x 8
// channels, pixels in two halves) and >= 512 bits (one tile, 16 x 16). Other lengths: not
// dispatched (ConvInt8Sme refuses them; cpu_features reports them unusable).
//
// The file needs no ISA flags: the SVE/SME instructions are raw `.inst` words (clang 14 knows no
// SME mnemonics; kernels/tools/sme_inst.py makes and checks the words, mnemonics in the comments),
// the epilogue is base NEON, and nothing runs unless cpu_features reports SME (HWCAP2_SME).
//
// Speed: unknown. There is no SME hardware here; correctness comes from qemu (-cpu max: SVL 256,
// -cpu max,sme512=on: SVL 512) against the scalar reference.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "neon_int8_common.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 16;

// Streaming vector length in bytes (rdsvl works outside streaming mode).
inline uint64_t StreamingVectorBytes() {
  uint64_t svl;
  __asm__ volatile(
      ".inst 0x04bf5830\n"  // rdsvl x16, #1
      "mov %0, x16"
      : "=r"(svl)
      :
      : "x16");
  return svl;
}

// The lengths the kernels handle: 256 bits (Core8) and multiples of 512 (Core16).
inline bool SupportedVectorBytes(uint64_t svl) { return svl == 32 || (svl >= 64 && svl % 64 == 0); }

// Registers the assembly below uses: smstart / smstop zero the vector and predicate registers,
// so every SIMD register is clobbered (the compiler then saves d8-d15 around the block).
#define KCSP_SME_CLOBBERS                                                                          \
  "cc", "memory", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "v0",  \
      "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15",      \
      "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28",    \
      "v29", "v30", "v31", "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10",       \
      "p11", "p12", "p13", "p14", "p15"

// SVL >= 512 bits: 16 pixel rows (ptrs[0..15]) x 16 channels into acc[16][16] int32.
// Per tap and chunk of up to SVL/4 words: the 16 pixel rows into za1 (horizontal slices), then
// per 4-channel group j: z0 = za1's vertical slice j (group j of every pixel), z1 = the 64-byte
// weight group, smopa za0 += z0 (x) z1.
void Core16(const int8_t* const* ptrs, const int64_t* tap_off, int64_t taps, int64_t kp, const int8_t* w,
            int32_t* acc) {
  __asm__ volatile(
      "mov x16, %[w]\n"
      ".inst 0xd503477f\n"  // smstart
      ".inst 0xc00800ff\n"  // zero {za}
      ".inst 0x2518e3e2\n"  // ptrue p2.b
      ".inst 0x2598e3e4\n"  // ptrue p4.s
      "mov x15, #64\n"
      ".inst 0x252f17e3\n"  // whilelt p3.b, xzr, x15        // the 64 weight bytes of one group
      ".inst 0x04a0e3e6\n"  // cntw x6                       // streaming words per vector
      "mov x7, #0\n"                    // tap
      "1:\n"
      "cmp x7, %[taps]\n"
      "b.ge 9f\n"
      "ldr x8, [%[tap_off], x7, lsl #3]\n"
      "mov x9, #0\n"                    // k0 (bytes)
      "2:\n"
      "cmp x9, %[kp]\n"
      "b.ge 8f\n"
      "sub x14, %[kp], x9\n"
      "lsr x14, x14, #2\n"
      "cmp x14, x6\n"
      "csel x10, x14, x6, lt\n"         // words this chunk
      ".inst 0x25aa17e1\n"  // whilelt p1.s, xzr, x10
      "mov x13, #0\n"
      "mov w12, #0\n"
      "3:\n"
      "ldr x11, [%[ptrs], x13, lsl #3]\n"
      "add x11, x11, x8\n"
      "add x11, x11, x9\n"
      ".inst 0xe09f0564\n"  // ld1w {za1h.s[w12, 0]}, p1/z, [x11]
      "add x13, x13, #1\n"
      "add w12, w12, #1\n"
      "cmp x13, #16\n"
      "b.lt 3b\n"
      "mov w12, #0\n"
      "4:\n"
      ".inst 0xc0829080\n"  // mova z0.s, p4/m, za1v.s[w12, 0]
      ".inst 0xa400ae01\n"  // ld1b {z1.b}, p3/z, [x16]
      "add x16, x16, #64\n"
      ".inst 0xa0814800\n"  // smopa za0.s, p2/m, p2/m, z0.b, z1.b
      "add w12, w12, #1\n"
      "cmp w12, w10\n"
      "b.lt 4b\n"
      "add x9, x9, x10, lsl #2\n"
      "b 2b\n"
      "8:\n"
      "add x7, x7, #1\n"
      "b 1b\n"
      "9:\n"
      "mov x15, #16\n"
      ".inst 0x25af17e5\n"  // whilelt p5.s, xzr, x15
      "mov w12, #0\n"
      "mov x13, %[acc]\n"
      "5:\n"
      ".inst 0xe0bf15a0\n"  // st1w {za0h.s[w12, 0]}, p5, [x13]
      "add x13, x13, #64\n"
      "add w12, w12, #1\n"
      "cmp w12, #16\n"
      "b.lt 5b\n"
      ".inst 0xd503467f\n"  // smstop
      :
      : [w] "r"(w), [ptrs] "r"(ptrs), [tap_off] "r"(tap_off), [taps] "r"(taps), [kp] "r"(kp), [acc] "r"(acc)
      : KCSP_SME_CLOBBERS);
}

// SVL = 256 bits: 8 pixel rows x 16 channels, channels 0-7 in za0 and 8-15 in za1 (za2 is the
// transpose tile); acc[8][16] int32.
void Core8(const int8_t* const* ptrs, const int64_t* tap_off, int64_t taps, int64_t kp, const int8_t* w,
           int32_t* acc) {
  __asm__ volatile(
      "mov x16, %[w]\n"
      ".inst 0xd503477f\n"  // smstart
      ".inst 0xc00800ff\n"  // zero {za}
      ".inst 0x2518e3e2\n"  // ptrue p2.b
      ".inst 0x2598e3e4\n"  // ptrue p4.s
      "mov x7, #0\n"
      "1:\n"
      "cmp x7, %[taps]\n"
      "b.ge 9f\n"
      "ldr x8, [%[tap_off], x7, lsl #3]\n"
      "mov x9, #0\n"
      "2:\n"
      "cmp x9, %[kp]\n"
      "b.ge 8f\n"
      "sub x14, %[kp], x9\n"
      "lsr x14, x14, #2\n"
      "mov x6, #8\n"
      "cmp x14, x6\n"
      "csel x10, x14, x6, lt\n"
      ".inst 0x25aa17e1\n"  // whilelt p1.s, xzr, x10
      "mov x13, #0\n"
      "mov w12, #0\n"
      "3:\n"
      "ldr x11, [%[ptrs], x13, lsl #3]\n"
      "add x11, x11, x8\n"
      "add x11, x11, x9\n"
      ".inst 0xe09f0568\n"  // ld1w {za2h.s[w12, 0]}, p1/z, [x11]
      "add x13, x13, #1\n"
      "add w12, w12, #1\n"
      "cmp x13, #8\n"
      "b.lt 3b\n"
      "mov w12, #0\n"
      "4:\n"
      ".inst 0xc0829100\n"  // mova z0.s, p4/m, za2v.s[w12, 0]
      ".inst 0xa400aa01\n"  // ld1b {z1.b}, p2/z, [x16]
      ".inst 0xa401aa02\n"  // ld1b {z2.b}, p2/z, [x16, #1, mul vl]
      "add x16, x16, #64\n"
      ".inst 0xa0814800\n"  // smopa za0.s, p2/m, p2/m, z0.b, z1.b
      ".inst 0xa0824801\n"  // smopa za1.s, p2/m, p2/m, z0.b, z2.b
      "add w12, w12, #1\n"
      "cmp w12, w10\n"
      "b.lt 4b\n"
      "add x9, x9, x10, lsl #2\n"
      "b 2b\n"
      "8:\n"
      "add x7, x7, #1\n"
      "b 1b\n"
      "9:\n"
      "mov w12, #0\n"
      "mov x13, %[acc]\n"
      "5:\n"
      ".inst 0xe0bf11a0\n"  // st1w {za0h.s[w12, 0]}, p4, [x13]
      "add x11, x13, #32\n"
      ".inst 0xe0bf1164\n"  // st1w {za1h.s[w12, 0]}, p4, [x11]
      "add x13, x13, #64\n"
      "add w12, w12, #1\n"
      "cmp w12, #8\n"
      "b.lt 5b\n"
      ".inst 0xd503467f\n"  // smstop
      :
      : [w] "r"(w), [ptrs] "r"(ptrs), [tap_off] "r"(tap_off), [taps] "r"(taps), [kp] "r"(kp), [acc] "r"(acc)
      : KCSP_SME_CLOBBERS);
}

#undef KCSP_SME_CLOBBERS

// One tile: m <= 16 pixels x n <= 16 channels. Rows past m repeat pixel 0 (valid memory, not stored).
void Kernel16x16(bool wide, int m, const int8_t* const* a, const int64_t* tap_off, int taps, int64_t kp,
                 const int8_t* w, const int32_t* prm, const RequantConsts& c, int8_t* const* o, int n) {
  const int8_t* ptrs[kMR];
  for (int i = 0; i < kMR; ++i) ptrs[i] = a[i < m ? i : 0];
  alignas(64) int32_t acc[kMR * kPackNR];
  if (wide) {
    Core16(ptrs, tap_off, taps, kp, w, acc);
  } else {
    Core8(ptrs, tap_off, taps, kp, w, acc);
    if (m > 8) Core8(ptrs + 8, tap_off, taps, kp, w, acc + 8 * kPackNR);
  }
  for (int i = 0; i < m; ++i) {
    const int32_t* r = acc + i * kPackNR;
    StoreRow(vld1q_s32(r), vld1q_s32(r + 4), vld1q_s32(r + 8), vld1q_s32(r + 12), prm, c, o[i], n);
  }
}

}  // namespace

bool SmeVectorLengthSupported() { return SupportedVectorBytes(StreamingVectorBytes()); }

Status PackInt8Sme(PackedConvInt8* w) {
  w->direct_1x1_ = DirectReadable1x1(w->geometry_);
  return PackInt8Groups(w, w->quant_.input_zero_point, 4, 4);
}

Status ConvInt8Sme(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  const uint64_t svl = StreamingVectorBytes();
  if (!SupportedVectorBytes(svl))
    return Status::Error(StatusCode::kUnsupported,
                         "sme: streaming vector length " + std::to_string(8 * svl) + " bits is not supported");
  const bool wide = svl >= 64;
  const RequantConsts c = MakeRequantConsts(w.quant_);
  const int64_t kp = w.k_padded_;
  return SweepRawInt8<kMR>(w, p, in, out,
                           [&](int m, const int8_t* const* a, const int64_t* tap_off, int taps,
                               const int32_t* prm, const int8_t* wp, int8_t* const* o, int n) {
                             Kernel16x16(wide, m, a, tap_off, taps, kp, wp, prm, c, o, n);
                           });
}

}  // namespace internal
}  // namespace keras_csp

#endif  // __aarch64__
