// Measured int8 multiply-accumulate peak of the current core (single thread), used to report
// what fraction of the machine's int8 throughput the conv kernels reach.
#pragma once

#include <string>
#include <vector>

#include "keras_csp/conv.h"
#include "keras_csp/status.h"

namespace keras_csp {

struct PeakResult {
  std::string method;   // instruction sequence measured, e.g. "avx2 vpmaddwd+vpaddd"
  double gmacs = 0.0;   // int8 MACs per second / 1e9
  bool exact = true;    // false if the sequence saturates for some int8 inputs (vpmaddubsw)
};

// Runs each int8 MAC loop available for `variant` (kAuto: all on this CPU) for about
// `seconds` each. Loops keep independent accumulators so that only throughput limits them.
Status MeasureInt8Peak(Variant variant, double seconds, std::vector<PeakResult>* out);

}  // namespace keras_csp
