// int8 MAC peak loops for aarch64, one per int8 variant's instruction, 12 independent
// accumulators each: smlal (plain NEON, 4 MACs), sdot (16 MACs), smmla (32 MACs per instruction).
#if defined(__aarch64__)
#include "../conv_internal.h"
#include "../peak_timer.h"
#include "keras_csp/peak.h"

namespace keras_csp {
namespace internal {

#define KCSP_PEAK_BODY(OP)                                                                   \
  __asm__ volatile(                                                                          \
      "movi v0.4s, #0\n movi v1.4s, #0\n movi v2.4s, #0\n movi v3.4s, #0\n"                  \
      "movi v4.4s, #0\n movi v5.4s, #0\n movi v6.4s, #0\n movi v7.4s, #0\n"                  \
      "movi v8.4s, #0\n movi v9.4s, #0\n movi v10.4s, #0\n movi v11.4s, #0\n"                \
      "movi v15.16b, #1\n movi v30.16b, #1\n movi v31.16b, #1\n"                             \
      "1:\n" OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)       \
      "subs %0, %0, #1\n"                                                                    \
      "b.ne 1b\n"                                                                            \
      : "+r"(iters)                                                                          \
      :                                                                                      \
      : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v15",     \
        "v30", "v31", "cc")
#define KCSP_SMLAL(R) "smlal v" #R ".4s, v30.4h, v15.h[0]\n"  // by-element: v0-v15 only
// sdot / smmla Vd.4s, v30.16b, v31.16b as raw encodings: any assembler takes them, whatever the
// -march of this file (gcc's and clang's target attributes differ; clang < 16 ignores them).
#define KCSP_INST(BASE, R) ".inst " #BASE " | (31 << 16) | (30 << 5) | " #R "\n"
#define KCSP_SDOT(R) KCSP_INST(0x4e809400, R)
#define KCSP_SMMLA(R) KCSP_INST(0x4e80a400, R)

void PeakLoopSmlal(long iters) { KCSP_PEAK_BODY(KCSP_SMLAL); }
void PeakLoopSdot(long iters) { KCSP_PEAK_BODY(KCSP_SDOT); }
void PeakLoopSmmla(long iters) { KCSP_PEAK_BODY(KCSP_SMMLA); }

}  // namespace internal

Status MeasureInt8Peak(Variant variant, double seconds, std::vector<PeakResult>* out) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  KCSP_RETURN_IF_ERROR(internal::CheckTimingSeconds(seconds));
  out->clear();
  const bool any = variant == Variant::kAuto;
  if ((any || variant == Variant::kNeon) && VariantAvailable(Variant::kNeon))
    out->push_back({"neon smlal (int16-widened int8)", internal::TimeLoop(internal::PeakLoopSmlal, 12 * 4, seconds)});
  if ((any || variant == Variant::kNeonDotprod) && VariantAvailable(Variant::kNeonDotprod))
    out->push_back({"neon sdot", internal::TimeLoop(internal::PeakLoopSdot, 12 * 16, seconds)});
  if ((any || variant == Variant::kNeonI8mm) && VariantAvailable(Variant::kNeonI8mm))
    out->push_back({"neon smmla", internal::TimeLoop(internal::PeakLoopSmmla, 12 * 32, seconds)});
  if (out->empty() && !any && variant != Variant::kScalar)
    return Status::Error(StatusCode::kUnsupported, std::string("no peak loop for ") + VariantName(variant) + " on this CPU");
  return Status::Ok();
}

}  // namespace keras_csp
#endif  // __aarch64__
