// Int8PostOps: validation, kernel choice, and the split of ApplyInt8PostOps over the pool.
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "elementwise_internal.h"
#include "keras_csp/cpu_features.h"

namespace keras_csp {
namespace {

Status Invalid(const std::string& m) { return Status::Error(StatusCode::kInvalidArgument, m); }

int64_t Abs64(int32_t v) { return v < 0 ? -int64_t{v} : int64_t{v}; }

internal::PostOpsKernelFn KernelFn(Int8PostOps::Kernel k) {
  switch (k) {
#if defined(__x86_64__)
    case Int8PostOps::Kernel::kAvx2: return internal::PostOpsAvx2;
    case Int8PostOps::Kernel::kAvx512Vbmi: return internal::PostOpsAvx512Vbmi;
#endif
#if defined(__aarch64__)
    case Int8PostOps::Kernel::kNeon: return internal::PostOpsNeon;
#endif
    default: return internal::PostOpsScalar;
  }
}

// vpshufb looks up 16 entries and gives 0 where the index byte's top bit is set. The avx2 kernel
// walks the index down by 16 per step (wrapping for steps 1-8, saturating at -128 after) and xors
// each step's lookup of folded row k: an index in table row j (j = u >> 4) hits rows 0..j when
// j < 8 and rows j-7..j when j >= 8. So the xor of rows 0..j, and of rows j-7..j, must be table
// row j: folded 0 = T0, folded k = T(k-1) ^ Tk for k = 1..7, and folded k = T(k-1) ^ Tk ^ folded (k-8)
// for k = 8..15.
void FoldTable(const int8_t* t, int8_t* folded) {
  for (int k = 0; k < 16; ++k)
    for (int i = 0; i < 16; ++i) {
      int8_t v = t[16 * k + i];
      if (k >= 1) v ^= t[16 * (k - 1) + i];
      if (k >= 8) v ^= folded[16 * (k - 8) + i];
      folded[16 * k + i] = v;
    }
}

}  // namespace

bool Int8AddParamsSupported(const Int8AddParams& a) {
  if (a.shift < 1 || a.shift > 31) return false;
  for (int32_t v : {a.output_zero_point, a.output_min, a.output_max})
    if (v < -128 || v > 127) return false;
  if (a.output_min > a.output_max) return false;
  return Abs64(a.bias) + 128 * (Abs64(a.y_multiplier) + Abs64(a.r_multiplier)) < (int64_t{1} << 31);
}

bool Int8PostOpsKernelAvailable(Int8PostOps::Kernel k) {
  const CpuFeatures& f = cpu_features();
  switch (k) {
    case Int8PostOps::Kernel::kScalar: return true;
#if defined(__x86_64__)
    case Int8PostOps::Kernel::kAvx2: return f.avx2;
    case Int8PostOps::Kernel::kAvx512Vbmi: return f.avx512f && f.avx512bw && f.avx512vbmi;
#endif
#if defined(__aarch64__)
    case Int8PostOps::Kernel::kNeon: return f.neon;
#endif
    default: return false;
  }
  (void)f;
}

const char* Int8PostOps::kernel_name() const {
  switch (kernel_) {
    case Kernel::kScalar: return "scalar";
    case Kernel::kAvx2: return "avx2";
    case Kernel::kAvx512Vbmi: return "avx512vbmi";
    case Kernel::kNeon: return "neon";
  }
  return "unknown";
}

Status Int8PostOps::Create(const int8_t* table, const Int8AddParams* add, Variant variant,
                           std::unique_ptr<Int8PostOps>* out) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  if (add != nullptr && !Int8AddParamsSupported(*add))
    return Invalid("add parameters out of range (shift in [1, 31], int8 zero point and bounds, and "
                   "|bias| + 128 * (|y_multiplier| + |r_multiplier|) < 2^31)");
  Variant v;
  KCSP_RETURN_IF_ERROR(internal::ResolveInt8Variant(variant, &v));
  Kernel kernel = Kernel::kScalar;
  switch (v) {
    case Variant::kAvx2: kernel = Kernel::kAvx2; break;
    case Variant::kAvx512Vnni:
    case Variant::kAmx:
    case Variant::kAvxVnni:
      kernel = Int8PostOpsKernelAvailable(Kernel::kAvx512Vbmi) ? Kernel::kAvx512Vbmi : Kernel::kAvx2;
      break;
    case Variant::kNeon:
    case Variant::kNeonDotprod:
    case Variant::kNeonI8mm:
    case Variant::kSme: kernel = Kernel::kNeon; break;
    default: break;
  }
  if (!Int8PostOpsKernelAvailable(kernel))
    return Status::Error(StatusCode::kUnsupported, std::string("post-op kernel for variant '") + VariantName(v) +
                                                       "' is not available on this CPU/build");
  std::unique_ptr<Int8PostOps> p(new (std::nothrow) Int8PostOps());
  if (!p) return Status::Error(StatusCode::kOutOfMemory, "allocation failed");
  p->kernel_ = kernel;
  p->has_table_ = table != nullptr;
  if (table != nullptr) {
    std::memcpy(p->table_, table, 256);
    FoldTable(p->table_, p->folded_);
  }
  p->has_add_ = add != nullptr;
  if (add != nullptr) p->add_ = *add;
  *out = std::move(p);
  return Status::Ok();
}

Status ApplyInt8PostOps(const Int8PostOps& ops, int8_t* y, int64_t pixels, int64_t y_stride, int channels,
                        const int8_t* r, int64_t r_stride, ThreadPool* pool) {
  if (pixels < 0 || channels < 0) return Invalid("pixels and channels must be >= 0");
  if (pixels == 0 || channels == 0 || (!ops.has_table_ && !ops.has_add_)) return Status::Ok();
  if (y == nullptr) return Status::Error(StatusCode::kNullPointer, "y is null");
  if (pixels > 1 && y_stride < channels) return Invalid("y_stride must be >= channels");
  if (ops.has_add_) {
    if (r == nullptr) return Status::Error(StatusCode::kNullPointer, "residual is null");
    if (pixels > 1 && r_stride < channels) return Invalid("r_stride must be >= channels");
  }
  // Dense slices are one run: no per-pixel tail.
  int64_t runs = pixels, n = channels;
  if (y_stride == channels && (!ops.has_add_ || r_stride == channels)) {
    runs = 1;
    n = pixels * channels;
  }
  const internal::PostOpsKernelFn fn = KernelFn(ops.kernel_);
  // About 16 KiB per task: a 3x3 conv's output at 40x40x16 is not worth waking a worker for.
  constexpr int64_t kTaskBytes = 16 << 10;
  const int64_t total = pixels * channels;
  const int tasks = pool ? static_cast<int>(std::min<int64_t>(4 * pool->threads(), std::max<int64_t>(1, total / kTaskBytes))) : 1;
  if (tasks <= 1) {
    fn(ops, y, runs, y_stride, n, r, r_stride);
    return Status::Ok();
  }
  ParallelFor(pool, tasks, [&](int t) {
    if (runs == 1) {  // split the run; chunk boundaries at multiples of 64 bytes
      const int64_t c0 = n * t / tasks / 64 * 64, c1 = t + 1 == tasks ? n : n * (t + 1) / tasks / 64 * 64;
      if (c1 > c0) fn(ops, y + c0, 1, 0, c1 - c0, ops.has_add_ ? r + c0 : nullptr, 0);
    } else {
      const int64_t p0 = runs * t / tasks, p1 = runs * (t + 1) / tasks;
      if (p1 > p0)
        fn(ops, y + p0 * y_stride, p1 - p0, y_stride, n, ops.has_add_ ? r + p0 * r_stride : nullptr, r_stride);
    }
  });
  return Status::Ok();
}

}  // namespace keras_csp
