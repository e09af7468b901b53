// MeasureInt8TileRate (keras_csp/peak.h): one variant's main register tile timed alone.
#include <string>

#include "conv_internal.h"
#include "peak_timer.h"
#include "keras_csp/peak.h"

namespace keras_csp {

Status MeasureInt8TileRate(Variant variant, int k, double seconds, double* gmacs) {
  if (gmacs == nullptr) return Status::Error(StatusCode::kNullPointer, "gmacs is null");
  KCSP_RETURN_IF_ERROR(internal::CheckTimingSeconds(seconds));
  if (k < 4 || k > 1024 || k % 4 != 0)
    return Status::Error(StatusCode::kInvalidArgument, "k must be a multiple of 4 in [4, 1024], got " + std::to_string(k));
#if defined(__x86_64__)
  if (variant == Variant::kAvx512Vnni && VariantAvailable(variant)) {
    *gmacs = internal::TileRateAvx512Vnni(k, seconds);
    return Status::Ok();
  }
#endif
  return Status::Error(StatusCode::kUnsupported, std::string("no tile-rate loop for ") + VariantName(variant) +
                                                     " on this CPU (avx512vnni only)");
}

}  // namespace keras_csp
