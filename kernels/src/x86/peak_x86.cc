// int8 MAC peak loops for x86-64 (inline asm so the compiler cannot hoist or fold them).
//   avx2 vpmaddwd:            int8 widened to int16, vpmaddwd + vpaddd: 16 MACs / vpmaddwd
//                             (the instruction mix of our AVX2 kernel)
//   avx2 vpmaddubsw:          vpmaddubsw + vpmaddwd(1) + vpaddd: 32 MACs / 3 instructions
//                             (u8 x s8 with int16 saturation: not exact for arbitrary int8 data)
//   avxvnni vpdpbusd (VEX):   32 MACs / instruction
//   avx512vnni vpdpbusd:      64 MACs / instruction
//   amx tdpbssd:              16 x 16 x 64 = 16384 MACs / instruction (tiles as the amx conv configures them)
#if defined(__x86_64__)
#include <immintrin.h>

#include "../conv_internal.h"
#include "../peak_timer.h"
#include "keras_csp/peak.h"

namespace keras_csp {
namespace internal {

#define KCSP_MADD_STEP(ACC0, ACC1)                    \
  "vpmaddwd %%ymm12, %%ymm13, %%ymm14\n"              \
  "vpaddd %%ymm14, %%ymm" #ACC0 ", %%ymm" #ACC0 "\n" \
  "vpmaddwd %%ymm12, %%ymm13, %%ymm15\n"              \
  "vpaddd %%ymm15, %%ymm" #ACC1 ", %%ymm" #ACC1 "\n"

__attribute__((target("avx2"))) void PeakLoopMaddwd(long iters) {
  // 10 independent accumulators, 20 vpmaddwd + 20 vpaddd per iteration = 320 MACs.
  __asm__ volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n vpxor %%ymm1, %%ymm1, %%ymm1\n"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n vpxor %%ymm3, %%ymm3, %%ymm3\n"
      "vpxor %%ymm4, %%ymm4, %%ymm4\n vpxor %%ymm5, %%ymm5, %%ymm5\n"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n vpxor %%ymm7, %%ymm7, %%ymm7\n"
      "vpxor %%ymm8, %%ymm8, %%ymm8\n vpxor %%ymm9, %%ymm9, %%ymm9\n"
      "vpcmpeqd %%ymm12, %%ymm12, %%ymm12\n vpcmpeqd %%ymm13, %%ymm13, %%ymm13\n"
      "1:\n"
      KCSP_MADD_STEP(0, 1) KCSP_MADD_STEP(2, 3) KCSP_MADD_STEP(4, 5) KCSP_MADD_STEP(6, 7)
      KCSP_MADD_STEP(8, 9) KCSP_MADD_STEP(0, 1) KCSP_MADD_STEP(2, 3) KCSP_MADD_STEP(4, 5)
      KCSP_MADD_STEP(6, 7) KCSP_MADD_STEP(8, 9)
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm12",
        "xmm13", "xmm14", "xmm15", "cc");
}

#define KCSP_MADDUBS_STEP(ACC, T)                    \
  "vpmaddubsw %%ymm14, %%ymm15, %%ymm" #T "\n"       \
  "vpmaddwd %%ymm13, %%ymm" #T ", %%ymm" #T "\n"     \
  "vpaddd %%ymm" #T ", %%ymm" #ACC ", %%ymm" #ACC "\n"

__attribute__((target("avx2"))) void PeakLoopMaddubsw(long iters) {
  // 8 accumulators, 16 chains vpmaddubsw -> vpmaddwd(ones) -> vpaddd = 16 x 32 = 512 MACs / iter.
  __asm__ volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n vpxor %%ymm1, %%ymm1, %%ymm1\n"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n vpxor %%ymm3, %%ymm3, %%ymm3\n"
      "vpxor %%ymm4, %%ymm4, %%ymm4\n vpxor %%ymm5, %%ymm5, %%ymm5\n"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n vpxor %%ymm7, %%ymm7, %%ymm7\n"
      "vpcmpeqd %%ymm13, %%ymm13, %%ymm13\n"
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n"
      "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n"
      "1:\n"
      KCSP_MADDUBS_STEP(0, 8) KCSP_MADDUBS_STEP(1, 9) KCSP_MADDUBS_STEP(2, 10)
      KCSP_MADDUBS_STEP(3, 11) KCSP_MADDUBS_STEP(4, 8) KCSP_MADDUBS_STEP(5, 9)
      KCSP_MADDUBS_STEP(6, 10) KCSP_MADDUBS_STEP(7, 11) KCSP_MADDUBS_STEP(0, 8)
      KCSP_MADDUBS_STEP(1, 9) KCSP_MADDUBS_STEP(2, 10) KCSP_MADDUBS_STEP(3, 11)
      KCSP_MADDUBS_STEP(4, 8) KCSP_MADDUBS_STEP(5, 9) KCSP_MADDUBS_STEP(6, 10)
      KCSP_MADDUBS_STEP(7, 11)
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm13", "xmm14", "xmm15", "cc");
}

__attribute__((target("avx512f,avx512vnni"))) void PeakLoopVnni(long iters) {
  // 12 independent vpdpbusd accumulators: 12 x 64 = 768 MACs per iteration.
  __asm__ volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n"
      "vmovdqa64 %%zmm0, %%zmm1\n vmovdqa64 %%zmm0, %%zmm2\n vmovdqa64 %%zmm0, %%zmm3\n"
      "vmovdqa64 %%zmm0, %%zmm4\n vmovdqa64 %%zmm0, %%zmm5\n vmovdqa64 %%zmm0, %%zmm6\n"
      "vmovdqa64 %%zmm0, %%zmm7\n vmovdqa64 %%zmm0, %%zmm8\n vmovdqa64 %%zmm0, %%zmm9\n"
      "vmovdqa64 %%zmm0, %%zmm10\n vmovdqa64 %%zmm0, %%zmm11\n"
      "vpternlogd $0xff, %%zmm14, %%zmm14, %%zmm14\n"
      "vpternlogd $0xff, %%zmm15, %%zmm15, %%zmm15\n"
      "1:\n"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm0\n vpdpbusd %%zmm14, %%zmm15, %%zmm1\n"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm2\n vpdpbusd %%zmm14, %%zmm15, %%zmm3\n"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm4\n vpdpbusd %%zmm14, %%zmm15, %%zmm5\n"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm6\n vpdpbusd %%zmm14, %%zmm15, %%zmm7\n"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm8\n vpdpbusd %%zmm14, %%zmm15, %%zmm9\n"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm10\n vpdpbusd %%zmm14, %%zmm15, %%zmm11\n"
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm14", "xmm15", "cc");
}

// The avxvnni variant's instruction; in the KCSP_AVXVNNI_AS_EVEX test build (conv_int8_avxvnni.cc) its
// EVEX encoding, which AVX-512 VNNI + VL CPUs run.
#if defined(KCSP_AVXVNNI_AS_EVEX)
#define KCSP_VPDPBUSD256 "%{evex%} vpdpbusd "
__attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) void PeakLoopAvxVnni(long iters) {
#else
#define KCSP_VPDPBUSD256 "%{vex%} vpdpbusd "
__attribute__((target("avx2,avxvnni"))) void PeakLoopAvxVnni(long iters) {
#endif
  // 12 independent ymm vpdpbusd accumulators: 12 x 32 = 384 MACs per iteration.
  __asm__ volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n"
      "vmovdqa %%ymm0, %%ymm1\n vmovdqa %%ymm0, %%ymm2\n vmovdqa %%ymm0, %%ymm3\n"
      "vmovdqa %%ymm0, %%ymm4\n vmovdqa %%ymm0, %%ymm5\n vmovdqa %%ymm0, %%ymm6\n"
      "vmovdqa %%ymm0, %%ymm7\n vmovdqa %%ymm0, %%ymm8\n vmovdqa %%ymm0, %%ymm9\n"
      "vmovdqa %%ymm0, %%ymm10\n vmovdqa %%ymm0, %%ymm11\n"
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n"
      "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n"
      "1:\n"
      KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm0\n " KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm1\n"
      KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm2\n " KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm3\n"
      KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm4\n " KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm5\n"
      KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm6\n " KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm7\n"
      KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm8\n " KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm9\n"
      KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm10\n " KCSP_VPDPBUSD256 "%%ymm14, %%ymm15, %%ymm11\n"
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm14", "xmm15", "cc");
}

// Four independent C tiles (0-3) from A tiles 4-5 and B tiles 6-7: 4 x 16384 MACs per iteration.
__attribute__((target("amx-tile,amx-int8"))) void PeakLoopAmx(long iters) {
  AmxConfigureTiles();
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_zero(4);
  _tile_zero(5);
  _tile_zero(6);
  _tile_zero(7);
  for (long i = 0; i < iters; ++i) {
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  _tile_release();
}

}  // namespace internal

Status MeasureInt8Peak(Variant variant, double seconds, std::vector<PeakResult>* out) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  KCSP_RETURN_IF_ERROR(internal::CheckTimingSeconds(seconds));
  out->clear();
  const bool any = variant == Variant::kAuto;
  if ((any || variant == Variant::kAvx2) && VariantAvailable(Variant::kAvx2)) {
    out->push_back({"avx2 vpmaddwd+vpaddd (int16-widened int8, exact)",
                    internal::TimeLoop(internal::PeakLoopMaddwd, 320, seconds)});
    out->push_back({"avx2 vpmaddubsw+vpmaddwd+vpaddd (u8*s8, int16 saturating)",
                    internal::TimeLoop(internal::PeakLoopMaddubsw, 512, seconds), false});
  }
  if ((any || variant == Variant::kAvx512Vnni) && VariantAvailable(Variant::kAvx512Vnni))
    out->push_back({"avx512vnni vpdpbusd", internal::TimeLoop(internal::PeakLoopVnni, 768, seconds)});
  if ((any || variant == Variant::kAmx) && VariantAvailable(Variant::kAmx))
    out->push_back({"amx tdpbssd", internal::TimeLoop(internal::PeakLoopAmx, 4 * 16 * 16 * 64, seconds)});
  if ((any || variant == Variant::kAvxVnni) && VariantAvailable(Variant::kAvxVnni))
    out->push_back({"avxvnni vpdpbusd (ymm)", internal::TimeLoop(internal::PeakLoopAvxVnni, 384, seconds)});
  if (out->empty() && !any && variant != Variant::kScalar)
    return Status::Error(StatusCode::kUnsupported, std::string("no peak loop for ") + VariantName(variant) + " on this CPU");
  return Status::Ok();
}

}  // namespace keras_csp
#endif  // __x86_64__
