// Timing of the int8 peak loops (peak_x86.cc, peak_arm.cc) and of a register tile alone
// (TileRateAvx512Vnni): GMAC/s of `loop(iters)`, which runs `macs_per_iter` MACs per iteration,
// grown from `first_iters` until one call takes about `seconds`.
#pragma once

#include <chrono>

#include "keras_csp/status.h"

namespace keras_csp {
namespace internal {

// The `seconds` every timing entry point takes (MeasureInt8Peak, MeasureInt8TileRate).
inline Status CheckTimingSeconds(double seconds) {
  if (!(seconds > 0) || seconds > 60) return Status::Error(StatusCode::kInvalidArgument, "seconds must be in (0, 60]");
  return Status::Ok();
}

template <typename F>
double TimeLoop(F loop, long macs_per_iter, double seconds, long first_iters = 1 << 16) {
  using clk = std::chrono::steady_clock;
  long iters = first_iters;
  loop(iters);  // warm-up (clock ramp)
  for (;;) {
    const auto t0 = clk::now();
    loop(iters);
    const double dt = std::chrono::duration<double>(clk::now() - t0).count();
    if (dt >= seconds || iters > (1L << 40)) return static_cast<double>(iters) * macs_per_iter / dt / 1e9;
    iters = dt > 1e-4 ? static_cast<long>(iters * (seconds / dt) * 1.05) + 1 : iters * 8;
  }
}

}  // namespace internal
}  // namespace keras_csp
