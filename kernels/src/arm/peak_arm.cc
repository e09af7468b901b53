// int8 MAC peak loop for aarch64: sdot (16 MACs / instruction), 12 independent accumulators.
#if defined(__aarch64__)
#include <chrono>

#include "../conv_internal.h"
#include "keras_csp/peak.h"

namespace keras_csp {
namespace internal {

__attribute__((target("arch=armv8.2-a+dotprod"))) void PeakLoopSdot(long iters) {
  __asm__ volatile(
      "movi v0.4s, #0\n movi v1.4s, #0\n movi v2.4s, #0\n movi v3.4s, #0\n"
      "movi v4.4s, #0\n movi v5.4s, #0\n movi v6.4s, #0\n movi v7.4s, #0\n"
      "movi v8.4s, #0\n movi v9.4s, #0\n movi v10.4s, #0\n movi v11.4s, #0\n"
      "movi v30.16b, #1\n movi v31.16b, #1\n"
      "1:\n"
      "sdot v0.4s, v30.16b, v31.16b\n sdot v1.4s, v30.16b, v31.16b\n"
      "sdot v2.4s, v30.16b, v31.16b\n sdot v3.4s, v30.16b, v31.16b\n"
      "sdot v4.4s, v30.16b, v31.16b\n sdot v5.4s, v30.16b, v31.16b\n"
      "sdot v6.4s, v30.16b, v31.16b\n sdot v7.4s, v30.16b, v31.16b\n"
      "sdot v8.4s, v30.16b, v31.16b\n sdot v9.4s, v30.16b, v31.16b\n"
      "sdot v10.4s, v30.16b, v31.16b\n sdot v11.4s, v30.16b, v31.16b\n"
      "subs %0, %0, #1\n"
      "b.ne 1b\n"
      : "+r"(iters)
      :
      : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v30", "v31",
        "cc");
}

}  // namespace internal

Status MeasureInt8Peak(Variant variant, double seconds, std::vector<PeakResult>* out) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  if (!(seconds > 0) || seconds > 60) return Status::Error(StatusCode::kInvalidArgument, "seconds must be in (0, 60]");
  out->clear();
  if ((variant == Variant::kAuto || variant == Variant::kNeonDotprod) &&
      VariantAvailable(Variant::kNeonDotprod)) {
    using clk = std::chrono::steady_clock;
    long iters = 1 << 16;
    internal::PeakLoopSdot(iters);
    for (;;) {
      const auto t0 = clk::now();
      internal::PeakLoopSdot(iters);
      const double dt = std::chrono::duration<double>(clk::now() - t0).count();
      if (dt >= seconds || iters > (1L << 40)) {
        out->push_back({"neon sdot", static_cast<double>(iters) * 12 * 16 / dt / 1e9});
        break;
      }
      iters = dt > 1e-4 ? static_cast<long>(iters * (seconds / dt) * 1.05) + 1 : iters * 8;
    }
  }
  return Status::Ok();
}

}  // namespace keras_csp
#endif  // __aarch64__
