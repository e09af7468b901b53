// Fallback for architectures without a peak loop.
#if !defined(__x86_64__) && !defined(__aarch64__)
#include "keras_csp/peak.h"

namespace keras_csp {
Status MeasureInt8Peak(Variant, double, std::vector<PeakResult>* out) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  out->clear();
  return Status::Ok();
}
}  // namespace keras_csp
#endif
