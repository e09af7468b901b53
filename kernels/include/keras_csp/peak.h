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

// GMAC/s of `variant`'s main 1x1 register tile alone (AVX-512 VNNI: 6 pixels x 64 channels), run for
// about `seconds` on the same L1-resident pixels and weights, K = k (a multiple of 4 in [4, 1024]):
// the microkernel's ceiling (products and epilogue) apart from the sweep, the per-pixel corrections
// and memory. A conv's shortfall from it is spent outside the tile. kUnsupported for other variants.
Status MeasureInt8TileRate(Variant variant, int k, double seconds, double* gmacs);

}  // namespace keras_csp
