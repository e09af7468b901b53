// Element-wise post ops, portable reference: one table lookup and one ADD per element.
#include "../elementwise_internal.h"

namespace keras_csp {
namespace internal {

void PostOpsScalar(const Int8PostOps& ops, int8_t* y, int64_t runs, int64_t y_stride, int64_t n, const int8_t* r,
                   int64_t r_stride) {
  for (int64_t i = 0; i < runs; ++i, y += y_stride, r += ops.has_add_ ? r_stride : 0) {
    for (int64_t c = 0; c < n; ++c) {
      int8_t v = ops.has_table_ ? ops.table_[static_cast<uint8_t>(y[c])] : y[c];
      if (ops.has_add_) v = AddInt8(ops.add_, v, r[c]);
      y[c] = v;
    }
  }
}

}  // namespace internal
}  // namespace keras_csp
