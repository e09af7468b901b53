// Outer loops shared by the SIMD variants (one micro-kernel per variant file, one driver here):
// stage the input, compute tap offsets, then sweep MR output pixels x NR output channels, split
// into tasks (pixel chunks x output-channel block groups) run on the problem's thread pool.
// Header-only templates, instantiated inside each variant's file (and so compiled with its
// target flags); the micro-kernel is passed in as a callable.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "conv_internal.h"
#include "task_grid.h"

namespace keras_csp {
namespace internal {

// Below this many MACs a conv runs on the calling thread: waking workers costs more than it saves
// (a few microseconds per call; 2^19 int8 MACs take ~2.5 us at 200 GMAC/s). Was 2^21 until the KxK
// convs swept per-thread bands: then CSPDenseNet-121's 7x7 dense block (3x3 growth convs of 1.8M
// MACs) ran 1.11-1.48x faster at 2 threads on Zen 4 with 2^19 (same process), other blocks the same.
constexpr int64_t kMinParallelMacs = int64_t{1} << 19;

inline ThreadPool* PoolFor(const ConvProblem& p, const ConvGeometry& g, int64_t min_macs = kMinParallelMacs) {
  const int64_t macs = static_cast<int64_t>(p.batch) * p.out_h * p.out_w * g.out_channels *
                       g.kernel_h * g.kernel_w * g.in_channels;
  return macs >= min_macs ? p.pool : nullptr;
}
inline int Threads(ThreadPool* pool) { return pool ? pool->threads() : 1; }

// Address of output pixel (oy, ox) of image b, at the first channel of the output slice.
template <typename T>
T* OutputPixel(const ConvProblem& p, T* out, int b, int oy, int ox) {
  return out + b * p.out.batch_stride + oy * p.out.row_stride + ox * p.out.pixel_stride + p.out.channel_offset;
}

// f(i, oy, ox) for output pixels first, first + 1, ... (count of them) in raster order: one
// division for the whole run instead of one per pixel (a 1x1 conv with 32 output channels does
// only ~16 cycles of dot products per pixel; the per-pixel idiv cost 10-25 % there).
template <typename F>
void ForEachOutputPixel(int first, int count, int out_w, F f) {
  int oy = first / out_w, ox = first % out_w;
  for (int i = 0; i < count; ++i) {
    f(i, oy, ox);
    if (++ox == out_w) {
      ox = 0;
      ++oy;
    }
  }
}

// a_ptr[i] and o_ptr[i] of output pixels first, first + 1, ... (count of them, raster order) of
// image b: the input pixel a_row0 + ox * a_px of the first row (a_row0: its pixel 0), a_row
// elements further per output row, and OutputPixel(p, out, b, oy, ox). The pointers advance by adds
// with the strides in locals: multiplying them out per pixel (through ForEachOutputPixel) took
// 17 % of a 3x3 16->16 conv at 80x80 on Zen 4.
template <typename A>
void PixelPointers(const ConvProblem& p, int8_t* out, int b, int first, int count, const A* a_row0, int64_t a_px,
                   int64_t a_row, const A** a_ptr, int8_t** o_ptr) {
  const int out_w = p.out_w;
  int oy = first / out_w, ox = first % out_w;
  const int64_t o_px = p.out.pixel_stride, o_row = p.out.row_stride;
  int8_t* o_row0 = OutputPixel(p, out, b, oy, 0);
  const A* a = a_row0 + ox * a_px;
  int8_t* o = o_row0 + ox * o_px;
  for (int i = 0; i < count; ++i) {
    a_ptr[i] = a;
    o_ptr[i] = o;
    a += a_px;
    o += o_px;
    if (++ox == out_w) {
      ox = 0;
      a = a_row0 += a_row;
      o = o_row0 += o_row;
    }
  }
}

// Every MR-pixel x NR-channel tile of an int8 task: tile(m, i0, block, o, n) for pixels
// [i0, i0 + m) of the chunk, o[i] = o_ptr[i0 + i] at the block's first channel (channels of
// channel_bytes, OutputChannelBytes), n <= NR channels.
template <int MR, int NR, typename Tile>
void SweepTiles(const TaskGrid::Task& t, int out_channels, int8_t* const* o_ptr, int channel_bytes, Tile tile) {
  for (int bi = t.block_begin; bi < t.block_end; ++bi) {
    const int n = std::min(NR, out_channels - bi * NR);
    for (int i0 = 0; i0 < t.pixels; i0 += MR) {
      int8_t* o[MR];
      for (int i = 0; i < MR; ++i) o[i] = o_ptr[i0 + i] + bi * NR * channel_bytes;
      tile(std::min(MR, t.pixels - i0), i0, bi, o, n);
    }
  }
}

// The problem's task ops (ApplyTaskOutputOps) on a task's outputs, NR-channel blocks.
template <int NR>
void ApplyTaskOps(const ConvProblem& p, int8_t* out, const TaskGrid::Task& t, int out_channels) {
  if (p.HasTaskOps())
    ApplyTaskOutputOps(p, out, t.batch, t.first_pixel, t.pixels, t.block_begin * NR,
                       std::min(out_channels, t.block_end * NR));
}

// Offsets (elements) of every kernel tap from the top-left tap, for rows `row_stride` and
// pixels `pixel_stride` apart.
inline void TapOffsets(const ConvGeometry& g, int64_t row_stride, int64_t pixel_stride,
                       int64_t* tap_off) {
  for (int ky = 0; ky < g.kernel_h; ++ky)
    for (int kx = 0; kx < g.kernel_w; ++kx)
      tap_off[ky * g.kernel_w + kx] = ky * row_stride + kx * pixel_stride;
}

// The tap offsets of a packed int8 conv whose staged rows hold row_stride elements: kernel rows
// with row_taps_, else every tap.
inline void PackedTapOffsets(const PackedConvInt8& w, int64_t row_stride, int64_t* tap_off) {
  if (!w.row_taps_) return TapOffsets(w.geometry_, row_stride, StagedPixelElems(w), tap_off);
  for (int ky = 0; ky < w.geometry_.kernel_h; ++ky) tap_off[ky] = ky * row_stride;
}

// float32: 1x1 convs read the (strided) input slice in place; other kernels stage a zero-padded
// copy. kernel(m, a, tap_off, taps, block_index, o, n) computes m <= MR pixels (a[i] input
// pixel, o[i] output at the block's first channel) x n <= NR channels; a/o are padded to MR by
// repeating the last pixel.
template <int MR, int NR, typename Kernel>
Status SweepF32(const PackedConvF32& w, const ConvProblem& p, const float* in, float* out,
                Kernel kernel) {
  const ConvGeometry& g = w.geometry_;
  const int cin = g.in_channels;
  const int taps = g.kernel_h * g.kernel_w;
  const bool direct = g.kernel_h == 1 && g.kernel_w == 1;  // 1x1 never pads
  const float* src = nullptr;
  int64_t pix_stride, row_stride, img_stride;
  if (direct) {
    src = in + p.in.channel_offset;
    pix_stride = p.in.pixel_stride;
    row_stride = p.in.row_stride;
    img_stride = p.in.batch_stride;
  } else {
    const size_t elems = static_cast<size_t>(p.batch) * p.padded_h * p.padded_w * cin;
    auto* buf = static_cast<float*>(Scratch(elems * sizeof(float)));
    if (buf == nullptr) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
    BuildPadded(p, in, buf, cin, 0.0f, 0.0f, [](float v) { return v; }, PoolFor(p, g));
    src = buf;
    pix_stride = cin;
    row_stride = static_cast<int64_t>(p.padded_w) * cin;
    img_stride = row_stride * p.padded_h;
  }
  int64_t tap_off[64 * 64];
  TapOffsets(g, row_stride, pix_stride, tap_off);
  const int blocks = (g.out_channels + NR - 1) / NR;
  const int pixels = p.out_h * p.out_w;
  // Tasks: ranges of MR-pixel groups (per image), about 4 per thread for balance.
  ThreadPool* pool = PoolFor(p, g);
  const int groups = (pixels + MR - 1) / MR;
  const int per_task = std::max(1, groups / (4 * Threads(pool)));
  const int ranges = (groups + per_task - 1) / per_task;
  ParallelFor(pool, p.batch * ranges, [&](int task) {
    const int b = task / ranges, r = task % ranges;
    const int p_end = std::min(pixels, (r + 1) * per_task * MR);
    for (int p0 = r * per_task * MR; p0 < p_end; p0 += MR) {
      const int m = std::min(MR, pixels - p0);
      const float* a[MR];
      float* o[MR];
      for (int i = 0; i < MR; ++i) {
        const int pix = p0 + std::min(i, m - 1);
        const int oy = pix / p.out_w, ox = pix % p.out_w;
        a[i] = src + b * img_stride + oy * g.stride_h * row_stride + ox * g.stride_w * pix_stride;
        o[i] = OutputPixel(p, out, b, oy, ox);
      }
      for (int bi = 0; bi < blocks; ++bi) {
        float* ob[MR];
        for (int i = 0; i < MR; ++i) ob[i] = o[i] + bi * NR;
        kernel(m, a, tap_off, taps, bi, ob, std::min(NR, g.out_channels - bi * NR));
      }
    }
  });
  return Status::Ok();
}

// kernel(m, a, tap_off, taps, bi, o, n), or, where the kernel takes it, with a trailing `first`: the
// tile is its block's first in this sweep (a kernel may prefetch the block's weights there).
// always_inline, as the AVX2 kernel lambda: with its two kernel instantiations GCC 12 had made it a
// call per tile instead of inlining it into the sweep.
template <typename Kernel, typename... Args>
__attribute__((always_inline)) inline void CallTileKernel(Kernel& kernel, bool first, Args&&... args) {
  if constexpr (std::is_invocable_v<Kernel&, Args..., bool>)
    kernel(std::forward<Args>(args)..., first);
  else
    kernel(std::forward<Args>(args)...);
}

// Most output pixels an int8 sweep task handles at once: bounds its pointer tables (on the stack,
// plus MR for the padding below). A namespace-scope constant: GCC 12 crashed on a function-local
// one used as an array bound inside a lambda.
template <int MR>
constexpr int kMaxChunkPixels = (1024 / MR) * MR;

// Pads a task's per-pixel tables (pointers, corrections) from cn to a multiple of MR by repeating
// the last pixel, so that every MR-pixel tile has valid addresses (the kernels store only the
// tile's real pixels).
template <int MR, typename... T>
void RepeatLastPixel(int cn, T*... tables) {
  for (int i = cn; i < RoundUp(cn, MR); ++i) ((tables[i] = tables[cn - 1]), ...);
}

// KxK int8 convs on several threads: tasks are bands (runs of output pixels), each staging the
// padded input rows it reads (its rows plus the kernel's halo) into its thread's scratch and sweeping them at
// once, so a core reads what it staged (one staging of the whole image, split by rows, then a
// sweep in pixel chunks handed out dynamically had each core read the other's rows through L3,
// and waited at a barrier between the two). Zen 4, 2 threads, same process: CSPDenseNet-121's dense
// blocks 1.09-1.13x (56x56), 1.08x (28x28), 1.01-1.02x (14x14), 1.0x (7x7) faster than before.
// kernel as for SweepInt8.
template <int MR, int NR, typename A, typename Convert, typename Kernel>
Status SweepInt8Bands(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, A fill,
                      Convert convert, int64_t chunk_bytes, ThreadPool* pool, Kernel kernel) {
  const ConvGeometry& g = w.geometry_;
  const int cp = w.k_padded_, sp = StagedPixelElems(w);
  const int taps = SweepTaps(w);
  constexpr int kMaxChunk = kMaxChunkPixels<MR>;
  const int64_t row_elems = static_cast<int64_t>(p.padded_w) * sp;
  int64_t tap_off[64 * 64];
  PackedTapOffsets(w, row_elems, tap_off);
  const int blocks = (g.out_channels + NR - 1) / NR;
  const int pixels = p.out_h * p.out_w;
  const BandPlan plan(pixels, pool->threads(), MR);
  const int bands = plan.bands, band_px = plan.MaxPixels();
  const int max_in_rows = (band_px + p.out_w - 2) / p.out_w * g.stride_h + g.kernel_h;  // rows a band may span
  // Pixel chunks inside a band: ~chunk_bytes of staged rows per chunk.
  const int64_t per_pixel = StagedElemsPerOutputPixel(w) * static_cast<int64_t>(sizeof(A));
  const int chunk = std::min<int>(kMaxChunk, std::max<int>(MR, static_cast<int>(chunk_bytes / per_pixel / MR * MR)));
  std::atomic<bool> out_of_memory{false};
  // First come, as the bands are planned (BandPlan): in contiguous ranges 3x3 128->32 convs at
  // 14x14 and 7x7 ran 5-7 % slower (2 threads, Zen 4: 19.2 against 18.0 us at 14x14).
  ParallelFor(pool, p.batch * bands, [&](int task) {
    const int b = task / bands, band_first = plan.First(task % bands);
    const int band_pixels = std::min(pixels, plan.First(task % bands + 1)) - band_first;
    const int oy0 = band_first / p.out_w, oy1 = (band_first + band_pixels - 1) / p.out_w;
    const int r0 = oy0 * g.stride_h, r1 = oy1 * g.stride_h + g.kernel_h;  // padded rows read
    // + cp: row taps read up to k_padded_ elements from a window's start, past the last row's end.
    A* stage = static_cast<A*>(Scratch((static_cast<size_t>(max_in_rows) * row_elems + cp) * sizeof(A)));
    if (stage == nullptr) {
      out_of_memory = true;
      return;
    }
    const int first = b * p.padded_h;
    BuildPaddedRows(p, in, stage, sp, fill, A{0}, convert, first + r0, first + r1, first + r0);
    const A* a_ptr[kMaxChunkPixels<MR> + MR];
    int8_t* o_ptr[kMaxChunkPixels<MR> + MR];
    const int tail = TailPixels(band_pixels, MR);  // the last band's (BandPlan): no chunk of its own
    for (int c0 = 0, cn; c0 < band_pixels; c0 += cn) {
      cn = std::min(chunk, band_pixels - c0);
      if (band_pixels - c0 - cn == tail) cn = band_pixels - c0;
      const int oy = (band_first + c0) / p.out_w;
      PixelPointers<A>(p, out, b, band_first + c0, cn, stage + static_cast<int64_t>(oy * g.stride_h - r0) * p.padded_w * sp,
                       static_cast<int64_t>(g.stride_w) * sp, static_cast<int64_t>(g.stride_h) * p.padded_w * sp, a_ptr, o_ptr);
      RepeatLastPixel<MR>(cn, a_ptr, o_ptr);
      const TaskGrid::Task t{b, c0, cn, 0, blocks};
      SweepTiles<MR, NR>(t, g.out_channels, o_ptr, OutputChannelBytes(p), [&](int m, int i0, int bi, int8_t* const* o, int n) {
        CallTileKernel(kernel, i0 == 0, m, a_ptr + i0, tap_off, taps, bi, o, n);
      });
      if (p.HasTaskOps()) ApplyTaskOutputOps(p, out, b, band_first + c0, cn, 0, g.out_channels);
    }
  }, TaskOrder::kFirstCome);
  if (out_of_memory) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
  return Status::Ok();
}

// int8: the input is staged as element type A (convert(x) per element; border pixels `fill`,
// channels >= in_channels 0, matching zero weights) in rows of k_padded_ elements. 1x1 convs
// (never padded) stage each pixel chunk just before it is swept, so the copy stays in L2 and
// strided convs convert only the pixels they read; other kernels stage the padded image once
// (every input pixel is read by several taps; on several threads see SweepInt8Bands). Pixel
// chunks of ~chunk_bytes of staged input are swept by every NR-channel weight block, the chunk's
// staging staying in cache.
// kernel(m, a, tap_off, taps, block_index, o, n) as for SweepF32, or (m, ..., n, first): CallTileKernel.
template <int MR, int NR, typename A, typename Convert, typename Kernel>
Status SweepInt8(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                 A fill, Convert convert, int64_t chunk_bytes, Kernel kernel) {
  const ConvGeometry& g = w.geometry_;
  const int cp = w.k_padded_, sp = StagedPixelElems(w);
  const int taps = SweepTaps(w);
  const bool per_chunk = g.kernel_h * g.kernel_w == 1;
  constexpr int kMaxChunk = kMaxChunkPixels<MR>;
  ThreadPool* pool = PoolFor(p, g);
  const int threads = Threads(pool);
  if (!per_chunk && threads > 1 && p.prestaged == nullptr)
    return SweepInt8Bands<MR, NR>(w, p, in, out, fill, convert, chunk_bytes, pool, kernel);
  const A* padded = nullptr;
  if (!per_chunk && p.prestaged != nullptr) {  // staged by the previous conv's epilogue
    padded = static_cast<const A*>(p.prestaged);
  } else if (!per_chunk) {  // staged once, read by every task
    // + cp: row taps read up to k_padded_ elements from a window's start, past the last row's end.
    auto* buf = static_cast<A*>(Scratch((static_cast<size_t>(p.batch) * p.padded_h * p.padded_w * sp + cp) * sizeof(A)));
    if (buf == nullptr) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
    BuildPadded(p, in, buf, sp, fill, A{0}, convert);
    padded = buf;
  }
  int64_t tap_off[64 * 64];
  PackedTapOffsets(w, static_cast<int64_t>(p.padded_w) * sp, tap_off);
  const int blocks = (g.out_channels + NR - 1) / NR;
  const int pixels = p.out_h * p.out_w;
  // Staged bytes per output pixel: a 1x1 conv stages the pixels it reads, a KxK conv's chunk reads
  // its stride_h x stride_w share of the padded rows.
  const int64_t per_pixel = (per_chunk ? cp : StagedElemsPerOutputPixel(w)) * static_cast<int64_t>(sizeof(A));
  const TaskGrid grid(pixels, p.batch, blocks, MR, kMaxChunk, chunk_bytes / per_pixel, threads,
                       static_cast<int64_t>(NR) * taps * cp, static_cast<int64_t>(taps) * cp);
  const int cin = g.in_channels;
  std::atomic<bool> out_of_memory{false};
  ParallelFor(pool, grid.tasks, [&](int task) {
    // Locals, not captured references: the staging loop stores through a char-typed pointer,
    // which may alias anything, so a captured `cin` would be re-read every element and the loop
    // would not vectorize.
    const int cin_local = cin, cp_local = cp;
    const Convert convert_local = convert;
    const TaskGrid::Task t = grid.At(task, pixels, blocks);
    const int b = t.batch, c0 = t.first_pixel, cn = t.pixels;
    A* stage = nullptr;
    if (per_chunk) {  // this thread's own staging buffer
      stage = static_cast<A*>(Scratch(static_cast<size_t>(kMaxChunk + MR) * cp * sizeof(A)));
      if (stage == nullptr) {
        out_of_memory = true;
        return;
      }
    }
    const A* img = per_chunk ? stage : padded + static_cast<size_t>(b) * p.padded_h * p.padded_w * sp;
    const A* a_ptr[kMaxChunkPixels<MR> + MR];
    int8_t* o_ptr[kMaxChunkPixels<MR> + MR];
    // Input / output pixel addresses of the chunk, computed once (no divisions in the sweep),
    // padded to a multiple of MR by repeating the last pixel (its results are not stored).
    const int8_t* const in_img = in + b * p.in.batch_stride + p.in.channel_offset;
    if (per_chunk) {
      ForEachOutputPixel(c0, cn, p.out_w, [&](int i, int oy, int ox) {
        A* d = stage + static_cast<size_t>(i) * cp_local;
        const int8_t* s = in_img + oy * g.stride_h * p.in.row_stride + ox * g.stride_w * p.in.pixel_stride;
        ConvertRun(s, d, cin_local, convert_local);
        std::fill(d + cin_local, d + cp_local, A{0});
        a_ptr[i] = d;
        o_ptr[i] = OutputPixel(p, out, b, oy, ox);
      });
    } else {
      const int64_t a_row = static_cast<int64_t>(g.stride_h) * p.padded_w * sp;
      PixelPointers<A>(p, out, b, c0, cn, img + c0 / p.out_w * a_row, static_cast<int64_t>(g.stride_w) * sp, a_row,
                       a_ptr, o_ptr);
    }
    RepeatLastPixel<MR>(cn, a_ptr, o_ptr);
    SweepTiles<MR, NR>(t, g.out_channels, o_ptr, OutputChannelBytes(p), [&](int m, int i0, int bi, int8_t* const* o, int n) {
      CallTileKernel(kernel, i0 == 0, m, a_ptr + i0, tap_off, taps, bi, o, n);
    });
    ApplyTaskOps<NR>(p, out, t, g.out_channels);
  });
  if (out_of_memory) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
  return Status::Ok();
}

// 1x1 convs straight from the int8 input slice (PackedConvInt8::direct_1x1_): no staging. Per
// chunk, the pixel pointers and corrections(pixels, count, in_channels, out) (the variant's
// per-pixel term, e.g. 128 * sum(x), for `count` pixels at once so that it can vectorize across
// pixels) are computed once for all output-channel blocks.
// kernel(m, a, corr, block_index, o, n): m <= MR pixels, a[i] int8 pixel, corr[i] its correction
// (or with a trailing `first`, as CallTileKernel).
// corrections = nullptr: the variant needs none (signed x signed dot products, or activations
// sign-flipped in registers); nothing is computed and the kernel gets corr = nullptr.
// The kernel reads k_padded_ bytes per pixel: with in_channels not a multiple of the dot-product
// group, the last group runs past the slice into bytes its zero weights ignore (the next channels
// or pixel, as XNNPACK's kernels over-read their inputs). A pixel whose read would leave the
// buffer (the last one or few) is copied to a zero-padded row first.
template <int MR, int NR, typename Correction, typename Kernel>
Status SweepInt8Direct1x1(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                          int64_t chunk_bytes, Correction correction, Kernel kernel) {
  const ConvGeometry& g = w.geometry_;
  constexpr int kMaxChunk = kMaxChunkPixels<MR>;
  const int blocks = (g.out_channels + NR - 1) / NR;
  const int pixels = p.out_h * p.out_w;
  ThreadPool* pool = PoolFor(p, g);
  const TaskGrid grid(pixels, p.batch, blocks, MR, kMaxChunk, chunk_bytes / g.in_channels, Threads(pool),
                       static_cast<int64_t>(NR) * w.k_padded_, w.k_padded_);
  const int cin = g.in_channels, kread = w.k_padded_;
  const int8_t* const in_end = in + p.in.buffer_elements;
  // A copy of the skip part (the copies' int8 stores could alias *p.skip); no skip: 0 channels.
  const SkipCopy skip = p.skip != nullptr ? *p.skip : SkipCopy{};
  if (p.skip != nullptr) p.skip->copied = true;
  std::atomic<bool> out_of_memory{false};
  ParallelFor(pool, grid.tasks, [&](int task) {
    const int cin_local = cin;
    const Correction correction_local = correction;
    const TaskGrid::Task t = grid.At(task, pixels, blocks);
    const int b = t.batch, c0 = t.first_pixel, cn = t.pixels;
    const int8_t* a_ptr[kMaxChunkPixels<MR> + MR];
    int8_t* o_ptr[kMaxChunkPixels<MR> + MR];
    alignas(64) int32_t corr[kMaxChunkPixels<MR> + MR];
    // Pointers walk the rows with the strides in locals (with the pointer stores in the loop the
    // compiler would reload them from `p` per pixel): the hot loop of a 1x1 conv with few output
    // channels. Not through PixelPointers: through the helper GCC 12 made the 1x1 16->16 conv at
    // 80x80 7 % slower (Python extension build, Zen 4).
    const int out_w = p.out_w;
    int oy = c0 / out_w, ox = c0 % out_w;
    const int64_t in_row = static_cast<int64_t>(g.stride_h) * p.in.row_stride;
    const int64_t in_px = static_cast<int64_t>(g.stride_w) * p.in.pixel_stride;
    const int64_t out_row = p.out.row_stride, out_px = p.out.pixel_stride;
    const int8_t* a_row = in + b * p.in.batch_stride + p.in.channel_offset + oy * in_row;
    int8_t* o_row = OutputPixel(p, out, b, oy, 0);
    const int8_t* a_pix = a_row + ox * in_px;
    int8_t* o_pix = o_row + ox * out_px;
    // Row by row: the pointers of one row's run are base + j * stride, a loop the compiler keeps
    // in registers and vectorizes (advancing both pointers per pixel with the row-end test inside,
    // it ran out of registers and reloaded the tables' bases per pixel: Xeon, AVX-512 VNNI, 1x1
    // 16->16 at 80x80 1.11-1.13x, 32->32 1.07x, 64->64 1.03x at 1 and 2 threads).
    for (int i = 0; i < cn;) {
      const int run = std::min(cn - i, out_w - ox);
      const int8_t** ap = a_ptr + i;
      int8_t** op = o_ptr + i;
      for (int j = 0; j < run; ++j) {
        ap[j] = a_pix + j * in_px;
        op[j] = o_pix + j * out_px;
      }
      i += run;
      ox = 0;  // the next run (if any) starts a row
      a_pix = a_row += in_row;
      o_pix = o_row += out_row;
    }
    // The skip part of the chunk's pixels (ConvProblem::skip) is copied by the task that
    // computes their first block, a register tile's pixels right after it, so that the copy runs
    // under the next tile's products (CSPResNet-50's 1x1 128->128 + skip 128 at 56x56: 1.07x at 1
    // thread, 1.05x at 2 against copying after the conv; Xeon, AVX-512 VNNI).
    const bool copy_skip = skip.channels > 0 && t.block_begin == 0;
    const int8_t* s_ptr[kMaxChunkPixels<MR> + MR];
    if (copy_skip)
      for (int i = 0; i < cn; ++i) s_ptr[i] = a_ptr[i] + skip.in_delta;
    if (kread > cin_local) {
      int tail = 0;  // the chunk's pixels whose read leaves the buffer (pointers ascend)
      while (tail < cn && a_ptr[cn - 1 - tail] + kread > in_end) ++tail;
      if (tail > 0) {
        auto* rows = static_cast<int8_t*>(Scratch(static_cast<size_t>(tail) * kread));
        if (rows == nullptr) {
          out_of_memory = true;
          return;
        }
        for (int j = 0; j < tail; ++j) {
          int8_t* d = rows + static_cast<size_t>(j) * kread;
          std::memcpy(d, a_ptr[cn - tail + j], cin_local);
          std::memset(d + cin_local, 0, kread - cin_local);
          a_ptr[cn - tail + j] = d;
        }
      }
    }
    constexpr bool kCorrected = !std::is_same_v<Correction, std::nullptr_t>;
    if constexpr (kCorrected) {
      correction_local(a_ptr, cn, cin_local, corr);
      RepeatLastPixel<MR>(cn, a_ptr, o_ptr, corr);
    } else {
      RepeatLastPixel<MR>(cn, a_ptr, o_ptr);
    }
    SweepTiles<MR, NR>(t, g.out_channels, o_ptr, OutputChannelBytes(p), [&](int m, int i0, int bi, int8_t* const* o, int n) {
      CallTileKernel(kernel, i0 == 0, m, a_ptr + i0, kCorrected ? corr + i0 : nullptr, bi, o, n);
      if (copy_skip && bi == 0)
        for (int i = i0; i < i0 + m; ++i) CopyPixelBytes(o_ptr[i] + skip.out_delta, s_ptr[i], skip.channels);
    });
    ApplyTaskOps<NR>(p, out, t, g.out_channels);
  });
  if (out_of_memory) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
  return Status::Ok();
}

}  // namespace internal
}  // namespace keras_csp
