// int8 MAC peak loops for x86-64 (inline asm so the compiler cannot hoist or fold them).
//   avx2 vpmaddwd:            int8 widened to int16, vpmaddwd + vpaddd: 16 MACs / vpmaddwd
//                             (the instruction mix of our AVX2 kernel)
//   avx2 vpmaddubsw:          vpmaddubsw + vpmaddwd(1) + vpaddd: 32 MACs / 3 instructions
//                             (u8 x s8 with int16 saturation: not exact for arbitrary int8 data)
//   avx512vnni vpdpbusd:      64 MACs / instruction
#if defined(__x86_64__)
#include <chrono>

#include "../conv_internal.h"
#include "keras_csp/peak.h"

namespace keras_csp {
namespace internal {

__attribute__((target("avx2"))) void PeakLoopMaddwd(long iters) {
  // 8 independent accumulators, 8 products per iteration = 128 MACs.
  __asm__ volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n"
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n"
      "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n"
      "1:\n"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm4\n"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm5\n"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm6\n"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm7\n"
      "vpaddd %%ymm4, %%ymm0, %%ymm0\n"
      "vpaddd %%ymm5, %%ymm1, %%ymm1\n"
      "vpaddd %%ymm6, %%ymm2, %%ymm2\n"
      "vpaddd %%ymm7, %%ymm3, %%ymm3\n"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm8\n"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm9\n"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm10\n"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm11\n"
      "vpaddd %%ymm8, %%ymm0, %%ymm0\n"
      "vpaddd %%ymm9, %%ymm1, %%ymm1\n"
      "vpaddd %%ymm10, %%ymm2, %%ymm2\n"
      "vpaddd %%ymm11, %%ymm3, %%ymm3\n"
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm14", "xmm15", "cc");
}

__attribute__((target("avx2"))) void PeakLoopMaddubsw(long iters) {
  // 4 chains of vpmaddubsw -> vpmaddwd(ones) -> vpaddd: 4 x 32 = 128 MACs per iteration.
  __asm__ volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n"
      "vpcmpeqd %%ymm13, %%ymm13, %%ymm13\n"
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n"
      "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n"
      "1:\n"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm4\n"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm5\n"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm6\n"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm7\n"
      "vpmaddwd %%ymm13, %%ymm4, %%ymm4\n"
      "vpmaddwd %%ymm13, %%ymm5, %%ymm5\n"
      "vpmaddwd %%ymm13, %%ymm6, %%ymm6\n"
      "vpmaddwd %%ymm13, %%ymm7, %%ymm7\n"
      "vpaddd %%ymm4, %%ymm0, %%ymm0\n"
      "vpaddd %%ymm5, %%ymm1, %%ymm1\n"
      "vpaddd %%ymm6, %%ymm2, %%ymm2\n"
      "vpaddd %%ymm7, %%ymm3, %%ymm3\n"
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm13", "xmm14", "xmm15",
        "cc");
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

}  // namespace internal

namespace {
template <typename F>
double TimeLoop(F loop, long macs_per_iter, double seconds) {
  using clk = std::chrono::steady_clock;
  long iters = 1 << 16;
  loop(iters);  // warm-up (clock ramp)
  for (;;) {
    const auto t0 = clk::now();
    loop(iters);
    const double dt = std::chrono::duration<double>(clk::now() - t0).count();
    if (dt >= seconds || iters > (1L << 40)) return static_cast<double>(iters) * macs_per_iter / dt / 1e9;
    iters = dt > 1e-4 ? static_cast<long>(iters * (seconds / dt) * 1.05) + 1 : iters * 8;
  }
}
}  // namespace

Status MeasureInt8Peak(Variant variant, double seconds, std::vector<PeakResult>* out) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  if (!(seconds > 0) || seconds > 60) return Status::Error(StatusCode::kInvalidArgument, "seconds must be in (0, 60]");
  out->clear();
  const bool any = variant == Variant::kAuto;
  if ((any || variant == Variant::kAvx2) && VariantAvailable(Variant::kAvx2)) {
    out->push_back({"avx2 vpmaddwd+vpaddd (int16-widened int8, exact)",
                    TimeLoop(internal::PeakLoopMaddwd, 128, seconds)});
    out->push_back({"avx2 vpmaddubsw+vpmaddwd+vpaddd (u8*s8, int16 saturating)",
                    TimeLoop(internal::PeakLoopMaddubsw, 128, seconds)});
  }
  if ((any || variant == Variant::kAvx512Vnni) && VariantAvailable(Variant::kAvx512Vnni))
    out->push_back({"avx512vnni vpdpbusd", TimeLoop(internal::PeakLoopVnni, 768, seconds)});
  if (out->empty() && !any && variant != Variant::kScalar)
    return Status::Error(StatusCode::kUnsupported, std::string("no peak loop for ") + VariantName(variant) + " on this CPU");
  return Status::Ok();
}

}  // namespace keras_csp
#endif  // __x86_64__
