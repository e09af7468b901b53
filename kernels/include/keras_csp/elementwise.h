// keras-csp element-wise int8 ops that follow a conv inside a fused op, in place on the conv's
// output slice: an int8 -> int8 map given as a 256-entry table (a SiLU, HARD_SWISH or LEAKY_RELU
// chain, tabulated per kernel set by the fuse pass), then a residual ADD with XNNPACK's qs8 vadd
// arithmetic. TFLite's builtin and XNNPACK's LOGISTIC / MUL / ADD run vectorized; a byte-by-byte
// table pass after every conv took a quarter of a fused YOLOv8 backbone (Zen 4).
//
// Kernels (chosen at Create, from the conv variants: KERAS_CSP_KERNEL_VARIANT applies):
//   scalar      the reference every other kernel is tested against
//   avx2        16 vpshufb per 32 bytes (each looks up one 16-entry row of the table), vpmulld ADD
//   avx512vbmi  two vpermt2b (128 entries each) and a blend per 64 bytes, vpmulld ADD (Ice Lake,
//               Zen 4 and later; an AVX-512 CPU without VBMI runs avx2)
//   neon        four tbl/tbx (64 entries each) per 16 bytes, mla ADD
#pragma once

#include <cstdint>
#include <memory>

#include "keras_csp/conv.h"
#include "keras_csp/status.h"
#include "keras_csp/threadpool.h"

namespace keras_csp {

// A residual ADD as XNNPACK's qs8 vadd computes it (keras_csp.tflite.patterns.add_params):
//   out = clamp((bias + y * y_multiplier + r * r_multiplier) >> shift, out_min - zp, out_max - zp) + zp
// y the conv output, r the residual (XNNPACK's a / b multipliers, swapped when the conv output
// is the ADD's second input), >> arithmetic.
struct Int8AddParams {
  int32_t y_multiplier = 0, r_multiplier = 0;
  int32_t bias = 0;
  int32_t shift = 1;  // in [1, 31]
  int32_t output_zero_point = 0, output_min = -128, output_max = 127;  // quantized, int8
};

// Whether `add` is in range and its sum can never overflow int32 for int8 inputs (as XNNPACK's
// kernels compute in int32): |bias| + 128 * (|y_multiplier| + |r_multiplier|) < 2^31. Create
// rejects the others; a caller keeps its own exact (e.g. table) path for them.
bool Int8AddParamsSupported(const Int8AddParams& add);

class Int8PostOps {
 public:
  enum class Kernel { kScalar, kAvx2, kAvx512Vbmi, kNeon };
  // table: 256 int8 entries, entry i for input int8(uint8(i)), i.e. indexed by the input's byte
  // (null: no table). add: null for none. variant: kAuto, or a conv variant whose ISA to use
  // (x86 variants run avx512vbmi where the CPU has it, else avx2; ARM variants neon).
  static Status Create(const int8_t* table, const Int8AddParams* add, Variant variant,
                       std::unique_ptr<Int8PostOps>* out);
  Kernel kernel() const { return kernel_; }
  const char* kernel_name() const;
  bool has_table() const { return has_table_; }
  bool has_add() const { return has_add_; }

  // Implementation data (read by the kernels).
  Kernel kernel_ = Kernel::kScalar;
  bool has_table_ = false, has_add_ = false;
  alignas(64) int8_t table_[256] = {};
  // avx2: row k of the table xor-folded for vpshufb (see elementwise_avx2.cc); 16 x 16 bytes.
  alignas(64) int8_t folded_[256] = {};
  Int8AddParams add_;
};

// Whether `kernel` runs on this CPU/build (kScalar: always).
bool Int8PostOpsKernelAvailable(Int8PostOps::Kernel kernel);

// y = add(table(y), r), element-wise over `pixels` pixels of `channels` int8 channels, pixel p's
// at y + p * y_stride (and r + p * r_stride; r unused without add). y and r must not overlap.
// pool: run on these threads (null: the calling thread); the same bits at every thread count.
Status ApplyInt8PostOps(const Int8PostOps& ops, int8_t* y, int64_t pixels, int64_t y_stride, int channels,
                        const int8_t* r = nullptr, int64_t r_stride = 0, ThreadPool* pool = nullptr);

}  // namespace keras_csp
