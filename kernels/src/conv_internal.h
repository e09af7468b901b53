// Internal interface between the dispatching API (conv_api.cc) and the per-ISA variant files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <vector>

#include "keras_csp/conv.h"

namespace keras_csp {
namespace internal {

// A CSP partial conv's skip part: output pixel i's `channels` (> 0) bytes from its input pixel (at
// the conv's slice) + in_delta to its output pixel + out_delta. A sweep that copies them
// (SweepInt8Direct1x1) sets `copied` before its tasks start; otherwise the caller copies after the
// conv.
struct SkipCopy {
  int channels = 0;
  int64_t in_delta = 0, out_delta = 0;
  bool copied = false;
};

// A validated conv problem: geometry resolved against the input/output layouts.
struct ConvProblem {
  int batch = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0, pad_top = 0, pad_left = 0;
  TensorLayout in, out;
  // Padded staging buffer geometry (rows/cols of the input padded so that every tap is in range).
  int padded_h = 0, padded_w = 0;
  ThreadPool* pool = nullptr;  // null: single-threaded
  // Conv2DInt8Chain: the output is written as the next conv's staging, uint8 x + 128 (AVX-512
  // VNNI, AVX-VNNI) or int16 x - zero point (AVX2, plain NEON; `out`'s strides and offsets then count
  // bytes; the raw int8 staging of the other ARM variants needs neither flag), and a KxK conv's
  // padded staging [batch][padded_h][padded_w][k_padded_] is given.
  bool out_u8 = false;
  bool out_i16 = false;
  const void* prestaged = nullptr;
  // Element-wise ops every sweep task applies to the outputs it has just written (ApplyTaskOutputOps;
  // the scalar variant's are applied after it): the output table where the epilogue cannot look it
  // up, then Conv2DInt8's ConvOutputOps. Null: none.
  const Int8PostOps* table_ops = nullptr;
  const Int8PostOps* post_ops = nullptr;
  const int8_t* residual = nullptr;
  TensorLayout residual_layout;
  bool HasTaskOps() const { return table_ops != nullptr || post_ops != nullptr; }
  // CspPartialConvInt8's skip part (SkipCopy), for a 1x1 sweep that can copy it between its
  // register tiles. Null: none.
  SkipCopy* skip = nullptr;
};

// d[0, n) = s[0, n) in 64-byte pieces (vector moves under the including file's target), then the
// rest: a CSP skip part's bytes of one pixel.
inline void CopyPixelBytes(int8_t* __restrict d, const int8_t* __restrict s, int n) {
  int k = 0;
  for (; k + 64 <= n; k += 64) std::memcpy(d + k, s + k, 64);
  for (; k + 16 <= n; k += 16) std::memcpy(d + k, s + k, 16);
  if (k < n) std::memcpy(d + k, s + k, n - k);
}

// The problem's task ops on output pixels [first, first + count) (raster order) of image b, channels
// [c0, c1) of the output slice.
void ApplyTaskOutputOps(const ConvProblem& p, int8_t* out, int b, int first, int count, int c0, int c1);

// Bytes of one output channel (2 for Conv2DInt8Chain's int16 staging).
inline int OutputChannelBytes(const ConvProblem& p) { return p.out_i16 ? 2 : 1; }

// Whether a sweep's first register tiles prefetch their weights (AVX-512 VNNI, AMX, AVX2): on images of up
// to 16x16 pixels, where each weight byte meets few pixels and in a model the weights come from L3
// or DRAM (CSPDenseNet-121's are 7.7 MB). Xeon, process A/B of the fused model, 20 rounds, against
// 1.00-1.03x for the ops it cannot touch: AVX-512 VNNI 7x7 dense block 1.09x / 1.11x at 1 / 2
// threads, its transition 1.09x / 1.15x, the 14x14 block 1.05x / 1.06x (the same convs timed alone,
// weights in cache, 0.995-1.02x); AMX at 1 thread 7x7 block 1.17x, its transition 1.17x, 14x14 block
// 1.12x. Larger images reuse the weights over many tiles: there AMX's prefetch cost the 56x56 and
// 28x28 ops 2-4 %, and every AVX-512 VNNI tile prefetching cost a hot 1x1 1024->1024 at 7x7 3 %.
// AVX2 (Zen 3, C++ driver, 24 MB written between calls, 16 process rounds): 7x7 and 14x14 convs
// 1.01-1.06x (paired medians), the same convs hot 0.96-1.03x (12 rounds, this host's noise).
inline bool PrefetchFirstTiles(const ConvProblem& p) { return int64_t{p.out_h} * p.out_w <= 256; }

// 64-byte aligned per-thread scratch memory, grown on demand. Returns nullptr on failure.
void* Scratch(size_t bytes);

// d[k] = convert(s[k]) for k < n, in fixed blocks of 16 (a plain loop over a pixel's 16-32
// channels ran the vectorizer's scalar remainder: AVX-512's body is 64 wide). The source never
// overlaps the staging buffer, and saying so (__restrict) is what lets the blocks vectorize: int8
// bytes may alias anything, so without it the compiler kept every load behind the previous store
// (AVX2's int16 staging: scalar movsbw/sub/mov per element, 15 % of a 1x1 conv with K = 128), and
// copying each block into a local array first, the earlier workaround, made GCC 12 assemble the
// uint8 x + 128 blocks byte by byte in general registers (AVX-512 VNNI: ~1 byte per cycle, a fifth
// of a 3x3 128->32 conv at 14x14 on Zen 4).
template <typename Src, typename Dst, typename Convert>
inline void ConvertRun(const Src* __restrict s, Dst* __restrict d, int64_t n, Convert convert) {
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) d[k + j] = convert(s[k + j]);
  }
  for (; k < n; ++k) d[k] = convert(s[k]);
}

// n pixels of C channels (dense) to pixels of 4 elements, the rest channel_fill.
template <int C, typename Src, typename Dst, typename Convert>
inline void StageSmallPixels(const Src* s, Dst* d, int n, Dst channel_fill, Convert convert) {
  for (int i = 0; i < n; ++i, s += C, d += 4) {
    for (int j = 0; j < C; ++j) d[j] = convert(s[j]);
    for (int j = C; j < 4; ++j) d[j] = channel_fill;
  }
}

// Copies the input channel slice into a dense padded buffer [batch][padded_h][padded_w][cp],
// converting each element with `convert`; border pixels and channels >= in_channels are `fill`.
// Stages rows [row_begin, row_end) of the zero-padded input (rows of all images: batch * padded_h);
// row br goes to buf's row br - buf_first_row.
template <typename Src, typename Dst, typename Convert>
void BuildPaddedRows(const ConvProblem& p, const Src* in, Dst* buf, int cp, Dst fill, Dst channel_fill,
                     Convert convert, int row_begin, int row_end, int buf_first_row = 0) {
  const int cin = p.in.channels;
  const int64_t row_elems = static_cast<int64_t>(p.padded_w) * cp;
  for (int br = row_begin; br < row_end; ++br) {
    const int b = br / p.padded_h, r = br % p.padded_h;
    Dst* dst_row = buf + static_cast<int64_t>(br - buf_first_row) * row_elems;
    const int iy = r - p.pad_top;
    if (iy < 0 || iy >= p.in_h) {
      std::fill(dst_row, dst_row + row_elems, fill);
      continue;
    }
    const Src* src_row = in + b * p.in.batch_stride + iy * p.in.row_stride + p.in.channel_offset;
    // Dense rows: the border columns filled, the interior converted in one go. With cp == cin as one
    // run of in_w * cin elements (per-pixel loops cost more than the copy for small cin); stems
    // (RGB / grayscale pixels staged as 4 elements) pixel by pixel with the channel count as a
    // constant, so that the loop unrolls (the generic loop below took ~25 % of a 7x7/2 3->64 stem).
    const bool dense_run = p.in.pixel_stride == cin && cp == cin;
    const bool small_pixels = p.in.pixel_stride == cin && cin <= 3 && cp == 4;
    if (dense_run || small_pixels) {
      const int c0 = std::max(0, p.pad_left), c1 = std::max(c0, std::min(p.padded_w, p.pad_left + p.in_w));
      std::fill(dst_row, dst_row + static_cast<int64_t>(c0) * cp, fill);
      const Src* s = src_row + static_cast<int64_t>(c0 - p.pad_left) * cin;
      Dst* d = dst_row + static_cast<int64_t>(c0) * cp;
      if (dense_run) ConvertRun(s, d, static_cast<int64_t>(c1 - c0) * cin, convert);
      else if (cin == 3) StageSmallPixels<3>(s, d, c1 - c0, channel_fill, convert);
      else if (cin == 2) StageSmallPixels<2>(s, d, c1 - c0, channel_fill, convert);
      else StageSmallPixels<1>(s, d, c1 - c0, channel_fill, convert);
      std::fill(dst_row + static_cast<int64_t>(c1) * cp, dst_row + row_elems, fill);
      continue;
    }
    for (int c = 0; c < p.padded_w; ++c) {
      Dst* d = dst_row + static_cast<int64_t>(c) * cp;
      const int ix = c - p.pad_left;
      if (ix < 0 || ix >= p.in_w) {
        std::fill(d, d + cp, fill);
        continue;
      }
      const Src* s = src_row + ix * p.in.pixel_stride;
      ConvertRun(s, d, cin, convert);
      for (int k = cin; k < cp; ++k) d[k] = channel_fill;
    }
  }
}

// rows_fn(r0, r1) over rows [0, rows) split into up to 4 tasks per thread of `pool` (null: one task on
// the calling thread); each row is computed the same way at every thread count.
template <typename RowsFn>
void ParallelRows(ThreadPool* pool, int rows, RowsFn rows_fn) {
  const int tasks = pool ? std::min(rows, 4 * pool->threads()) : 1;
  ParallelFor(pool, tasks, [&](int t) {
    rows_fn(static_cast<int>(int64_t{rows} * t / tasks), static_cast<int>(int64_t{rows} * (t + 1) / tasks));
  });
}

// The whole padded input, split into row groups on `pool` (null: the calling thread).
template <typename Src, typename Dst, typename Convert>
void BuildPadded(const ConvProblem& p, const Src* in, Dst* buf, int cp, Dst fill, Dst channel_fill,
                 Convert convert, ThreadPool* pool = nullptr) {
  ParallelRows(pool, p.batch * p.padded_h,
               [&](int r0, int r1) { BuildPaddedRows(p, in, buf, cp, fill, channel_fill, convert, r0, r1); });
}

inline int RoundUp(int x, int m) { return (x + m - 1) / m * m; }

// Output rows [row_begin, row_end) of batch * out_h, pixel by pixel: fn(image, iy0, ix0, o) with
// image at channel 0 of the pixel's batch image, (iy0, ix0) its window's top left (padding
// included) and o at channel 0 of the output pixel. Forced inline (see grouped_sweep.h).
template <typename Fn>
__attribute__((always_inline)) inline void ForEachOutputPixel(const ConvGeometry& g, const ConvProblem& p,
                                                              const int8_t* in, int8_t* out, int row_begin,
                                                              int row_end, Fn fn) {
  for (int r = row_begin; r < row_end; ++r) {
    const int b = r / p.out_h, oy = r % p.out_h;
    const int iy0 = oy * g.stride_h - p.pad_top;
    const int8_t* image = in + b * p.in.batch_stride + p.in.channel_offset;
    int8_t* orow = out + b * p.out.batch_stride + oy * p.out.row_stride + p.out.channel_offset;
    for (int ox = 0; ox < p.out_w; ++ox) fn(image, iy0, ox * g.stride_w - p.pad_left, orow + ox * p.out.pixel_stride);
  }
}

// One output pixel's window, for the kernels whose padded taps read a zero-point row:
// x[slot(ky, kx)] points at channel 0 of tap (ky, kx)'s input pixel, or at zp_row where the tap
// falls outside the image. image: channel 0 of the batch image; (iy0, ix0): the window's top left.
template <typename Slot>
__attribute__((always_inline)) inline void WindowPointers(const ConvGeometry& g, const ConvProblem& p,
                                                          const int8_t* image, int iy0, int ix0,
                                                          const int8_t* zp_row, Slot slot, const int8_t** x) {
  for (int ky = 0; ky < g.kernel_h; ++ky) {
    const int iy = iy0 + ky;
    const bool row_in = iy >= 0 && iy < p.in_h;
    for (int kx = 0; kx < g.kernel_w; ++kx) {
      const int ix = ix0 + kx;
      x[slot(ky, kx)] =
          row_in && ix >= 0 && ix < p.in_w ? image + iy * p.in.row_stride + ix * p.in.pixel_stride : zp_row;
    }
  }
}

// Checks shared by the conv, depthwise and pool entry points (conv_api.cc; int8_t and float):
// a non-null, aligned pointer and a channel slice inside its buffer; input and output either
// disjoint or disjoint channel slices of one buffer with the same strides.
template <typename T>
Status CheckLayout(const T* ptr, const TensorLayout& l, const char* name);
template <typename T>
Status CheckAliasing(const T* in, const TensorLayout& li, const T* out, const TensorLayout& lo);

// `bytes` of zeroed 64-byte aligned storage in `storage`, starting `*offset` bytes in.
inline void* AllocAligned64(std::vector<uint8_t>* storage, size_t* offset, size_t bytes) {
  storage->assign(bytes + 64, 0);
  const uintptr_t base = reinterpret_cast<uintptr_t>(storage->data());
  *offset = static_cast<size_t>(((base + 63) & ~uintptr_t{63}) - base);
  return storage->data() + *offset;
}

// Allocates `bytes` of 64-byte aligned storage inside a PackedConv* object.
template <typename P>
void* AllocPacked(P* p, size_t bytes) {
  return AllocAligned64(&p->packed_storage_, &p->packed_offset_, bytes);
}

// sum |w| over output channel oc's weights (every tap and input channel): with |x - zero point| <=
// 255, 255 x this bounds the channel's int32 sum.
inline int64_t WeightAbsSum(const PackedConvInt8& p, int oc) {
  const ConvGeometry& g = p.geometry_;
  const size_t per_channel = static_cast<size_t>(g.kernel_h) * g.kernel_w * g.in_channels;
  int64_t sum = 0;
  for (size_t k = 0; k < per_channel; ++k) sum += std::abs(static_cast<int>(p.weights_[oc * per_channel + k]));
  return sum;
}

// Bias folded with -fold_zero_point * sum(weights[c]) (for kernels that read raw/shifted inputs).
void FoldedBias(const PackedConvInt8& p, int32_t fold_zero_point, int32_t* out_bias);
// A grouped conv's input channels per group (= output channels per group on the grouped kernels)
// and taps.
inline int GroupChannels(const PackedGroupedConvInt8& w) { return w.geometry_.in_channels / w.groups_; }
inline int Taps(const PackedGroupedConvInt8& w) { return w.geometry_.kernel_h * w.geometry_.kernel_w; }
// The same for a grouped conv's output channel oc (its taps * in_channels / groups weights),
// wrapping like the reference's int32 accumulator.
inline int32_t GroupedFoldedBias(const PackedGroupedConvInt8& w, int oc, int32_t fold_zero_point) {
  const size_t n = static_cast<size_t>(Taps(w)) * GroupChannels(w);
  const int8_t* f = &w.weights_[static_cast<size_t>(oc) * n];
  int64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += f[i];
  return static_cast<int32_t>(static_cast<uint32_t>(w.bias_[oc]) - static_cast<uint32_t>(fold_zero_point * sum));
}
// GroupedFoldedBias of every output channel.
inline std::vector<int32_t> GroupedFoldedBiases(const PackedGroupedConvInt8& w, int32_t fold_zero_point) {
  std::vector<int32_t> bias(w.geometry_.out_channels);
  for (int oc = 0; oc < w.geometry_.out_channels; ++oc) bias[oc] = GroupedFoldedBias(w, oc, fold_zero_point);
  return bias;
}

// Packing shared by the float32 variants (AVX2 + FMA, NEON): per block of nr output channels, nr
// biases, then the weights [tap][k][nr] (channels past out_channels stay zero).
inline size_t PackedF32BlockFloats(const PackedConvF32& w, int nr) {
  const int taps = w.geometry_.kernel_h * w.geometry_.kernel_w;
  return nr + static_cast<size_t>(taps) * w.geometry_.in_channels * nr;
}
Status PackF32Blocks(PackedConvF32* w, int nr);

// Packing shared by the blocked int8 variants (AVX-512 VNNI, NEON dotprod / i8mm / mlal): per
// block of kPackNR output channels, 4 rows x kPackNR int32 parameters (bias folded with
// fold_zero_point, multiplier -- or the fp32 scale's bits with Rounding::kFp32 --, left shift,
// right shift), then the weights [tap][k/G][kPackNR][G] int8: groups of G consecutive input
// channels per output channel, as one instruction consumes them (G = 4: vpdpbusd / sdot; 8: smmla,
// two channels' 8-byte rows side by side; 1: widening multiply-accumulate by lane).
// in_channels is padded to k_multiple (a multiple of G) with zero weights.
constexpr int kPackNR = 16;
constexpr size_t kPackParamBytes = 4 * kPackNR * sizeof(int32_t);
size_t PackedBlockBytes(const PackedConvInt8& w);
// Whether a conv can take whole kernel rows as taps (PackedConvInt8::row_taps_): KxK stems of 1-3
// input channels, whose pixels are staged unpadded.
inline bool RowTapsFit(const ConvGeometry& g) { return g.kernel_w > 1 && g.in_channels < 4; }
// The taps a sweep runs (kernel rows with row_taps_), the elements one packed tap covers (a
// kernel row's kernel_w * in_channels with row_taps_: OHWI weights read as
// [out][kernel_h][kernel_w * in_channels] are the same bytes) and the elements of one staged pixel.
inline int SweepTaps(const PackedConvInt8& w) {
  return w.row_taps_ ? w.geometry_.kernel_h : w.geometry_.kernel_h * w.geometry_.kernel_w;
}
inline int TapElems(const PackedConvInt8& w) {
  return w.row_taps_ ? w.geometry_.kernel_w * w.geometry_.in_channels : w.geometry_.in_channels;
}
inline int StagedPixelElems(const PackedConvInt8& w) { return w.row_taps_ ? w.geometry_.in_channels : w.k_padded_; }
// Staged input elements per output pixel of a KxK conv: its padded rows hold stride_h x stride_w
// staged pixels per output pixel, whatever the kernel size (the taps of neighbouring pixels
// overlap). Pixel chunks are sized by it. Counting taps x k_padded_ per pixel instead, as before,
// made a 3x3 conv's chunks 9x too small: the sweep then streamed all the weights once per 24
// pixels (3x3 512->512 at 7x7, 2.4 MB of weights: 1.11-1.19x faster with one chunk on a Xeon,
// AVX-512 VNNI at 1 and 2 threads, AVX-VNNI 1.13x, AVX2 1.09x; other 3x3 shapes 0.98-1.02x, 3x3
// 128->32 at 7x7 1.14x at 1 thread). The amx sweep keeps its own count (neutral there).
inline int64_t StagedElemsPerOutputPixel(const PackedConvInt8& w) {
  return int64_t{w.geometry_.stride_h} * w.geometry_.stride_w * StagedPixelElems(w);
}
// The convs the AVX-512 VNNI kernel may run as transposed 16-pixel row tiles (KernelRowTile16, with
// rows of 16+ output pixels, checked per call): stride 1, staged pixels of 16 elements (k_padded,
// in the 4-byte packing) into up to 32 channels or of 32 into up to 16.
inline bool RowTileGeometry(const ConvGeometry& g, int k_padded) {
  return g.stride_h == 1 && g.stride_w == 1 &&
         ((k_padded == 16 && g.out_channels <= 2 * kPackNR) || (k_padded == 32 && g.out_channels <= kPackNR));
}
// The 4 parameter rows of output channels [oc0, oc0 + kPackNR) (those < oc_total); `bias` as given
// (already folded where the variant needs it).
void PackParamRows(int32_t* prm, const Int8QuantParams& q, const int32_t* bias, const int32_t* left_shift,
                   const int32_t* right_shift, int oc0, int oc_total);
// Output channel oc's 4 parameters into lane[0], lane[kPackNR], lane[2 * kPackNR], lane[3 * kPackNR]
// (PackParamRows' lane j; the AVX-512 depthwise kernel packs its lanes in another channel order).
void PackParamLane(int32_t* lane, const Int8QuantParams& q, int32_t bias, int32_t left_shift, int32_t right_shift,
                   int oc);
// weight_xor 0x80 stores uint8 w + 128 (for vpdpbusd with the weights as its unsigned operand);
// in_channels padding stays 0 either way: a product with whatever a kernel reads there is 0.
// pair_order: a block's even channels in slots 0 .. nr/2 - 1, its odd ones after them
// (PackedConvInt8::k_pairs_).
Status PackInt8Groups(PackedConvInt8* w, int32_t fold_zero_point, int group, int k_multiple,
                      uint8_t weight_xor = 0, bool pair_order = false);

// The packing of both x86 vpdpbusd variants (AVX-512 VNNI, AVX-VNNI): 1x1 convs read the int8
// input in place (direct_1x1_), others stage uint8 x + 128; KxK convs of 1-3 input channels take
// kernel rows as taps. PackedConvInt8::direct_1x1_xor_ for 1x1 convs of one or two blocks, and of
// up to xor_max_in_channels input channels; k_pairs: PackedConvInt8::k_pairs_ where it applies
// (the AVX-512 VNNI kernel's).
Status PackInt8Vpdpbusd(PackedConvInt8* w, bool k_pairs, int xor_max_in_channels);

// The kernels' view of PackInt8Groups' layout: block bi's parameter rows and weights.
class PackedBlocks {
 public:
  explicit PackedBlocks(const PackedConvInt8& w)
      : base_(static_cast<const uint8_t*>(w.packed())), bytes_(PackedBlockBytes(w)) {}
  const int32_t* params(int bi) const { return reinterpret_cast<const int32_t*>(base_ + bi * bytes_); }
  const int8_t* weights(int bi) const {
    return reinterpret_cast<const int8_t*>(base_ + bi * bytes_ + kPackParamBytes);
  }

 private:
  const uint8_t* base_;
  size_t bytes_;
};

// A 1x1 conv that a variant runs straight from the input slice: every 1x1, whatever its channel
// count (the variants' zero-weight padding ignores what a partial last group reads past the slice;
// the direct sweep keeps those reads inside the buffer). Staging them took 13 % of CSPDenseNet-121's
// 14x14 dense block on AVX-512, whose 150 + 32 i channels are 2 mod 4.
inline bool DirectReadable1x1(const ConvGeometry& g) { return g.kernel_h == 1 && g.kernel_w == 1; }

// ---- Variant entry points. Inputs are validated by the caller.
void ConvInt8Scalar(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out);
void ConvF32Scalar(const PackedConvF32& w, const ConvProblem& p, const float* in, float* out);

// Depthwise: output rows [row_begin, row_end) of batch * out_h.
void DepthwiseInt8Scalar(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                         int row_begin, int row_end);

// Grouped: output rows [row_begin, row_end) of batch * out_h.
void GroupedInt8Scalar(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                       int row_begin, int row_end);

// 3x3 stride-1 convs by Winograd F(2x2, 3x3) in exact integers (winograd_sweep.h; AVX2 and plain
// NEON): whether a conv qualifies (its weights keep 4 x every sum inside int32), the variants'
// packing, their sweeps.
bool WinogradFits(const PackedConvInt8& w);
constexpr int kWinogradXi = 16;  // positions of a 4x4 input tile
constexpr int kWinogradNR = 16;  // output channels per packed block
// Per block: the variant's requantization parameters (param_bytes), then U as
// [xi][k / group][16][group] int16 (group 2: vpmaddwd's pairs; 1: smlal by lane).
inline size_t WinogradBlockBytes(const PackedConvInt8& w, size_t param_bytes) {
  return param_bytes + static_cast<size_t>(kWinogradXi) * w.k_padded_ * kWinogradNR * sizeof(int16_t);
}
Status PackWinograd(PackedConvInt8* w, size_t param_bytes, int group,
                    void (*pack_params)(int32_t* prm, const PackedConvInt8& w, int oc0));

#if defined(__x86_64__)
Status PackGroupedInt8Avx512Vnni(PackedGroupedConvInt8* w);
Status PackGroupedInt8Avx2(PackedGroupedConvInt8* w);
Status PackGroupedInt8AvxVnni(PackedGroupedConvInt8* w);
void GroupedInt8AvxVnni(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                        int row_begin, int row_end);
// Also output blocks [block_begin, block_end) of GroupedAvx2Blocks(w) (16 channels each): groups of 16
// or 32 split their blocks over threads, as GroupedInt8Avx512Vnni's.
void GroupedInt8Avx2(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                     int row_begin, int row_end, int block_begin = 0, int block_end = 1 << 30);
int GroupedAvx2Blocks(const PackedGroupedConvInt8& w);
// Also output blocks [block_begin, block_end) of GroupedAvx512VnniBlocks(w) (64 channels each) only:
// groups of 16 or 32 split their blocks over threads, each thread streaming its blocks' weights once.
void GroupedInt8Avx512Vnni(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                           int row_begin, int row_end, int block_begin = 0, int block_end = 1 << 30);
int GroupedAvx512VnniBlocks(const PackedGroupedConvInt8& w);
Status PackDepthwiseInt8Avx2(PackedDepthwiseInt8* w);
void DepthwiseInt8Avx2(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                       int row_begin, int row_end);
Status PackDepthwiseInt8Avx512Vnni(PackedDepthwiseInt8* w);
Status PackDepthwiseInt8AvxVnni(PackedDepthwiseInt8* w);
void DepthwiseInt8AvxVnni(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                          int row_begin, int row_end);
void DepthwiseInt8Avx512Vnni(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                             int row_begin, int row_end);
Status PackInt8Avx2(PackedConvInt8* w);
Status ConvInt8Avx2(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out);
Status PackInt8Avx2Winograd(PackedConvInt8* w);
Status ConvInt8Avx2Winograd(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out);
Status PackF32Avx2(PackedConvF32* w);
Status ConvF32Avx2(const PackedConvF32& w, const ConvProblem& p, const float* in, float* out);
Status ConvInt8Avx512Vnni(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in,
                          int8_t* out);
// The same with w's output table looked up in the epilogue (CPUs with AVX-512 VBMI).
Status ConvInt8Avx512VnniTable(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out);
// GMAC/s of the AVX-512 VNNI 6 x 64 direct (1x1) register tile run over and over on the same six
// pixels and four weight blocks (K = k, a multiple of 4 in [4, 1024]), fp32 requantization: the
// microkernel's own rate, products and epilogue, apart from the sweep, the per-pixel corrections
// and memory (MeasureInt8TileRate).
double TileRateAvx512Vnni(int k, double seconds);
Status ConvInt8AvxVnni(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out);
// Whether kAuto, resolved to amx, runs a conv on AMX tiles: convs with little K per output (1x1
// convs of up to 32 input channels, 3-channel 3x3 stems) run the AVX-512 VNNI kernels instead.
// Asked for by name, amx runs every conv on tiles.
bool AmxPays(const ConvGeometry& g);
Status PackInt8Amx(PackedConvInt8* w);
// Loads the amx conv's tile configuration on this thread (tiles 0-7, 16 rows x 64 bytes).
void AmxConfigureTiles();
Status ConvInt8Amx(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out);
// Bytes the amx KxK conv's A tiles may read past the end of its raw int8 padded staging (its last
// register tiles' dropped pixels and a kernel row's K padding): Conv2DInt8Chain allocates them.
size_t AmxStagingSlack(const PackedConvInt8& w);
#endif
#if defined(__aarch64__)
Status PackDepthwiseInt8Neon(PackedDepthwiseInt8* w);
void DepthwiseInt8Neon(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                       int row_begin, int row_end);
Status PackGroupedInt8NeonDotprod(PackedGroupedConvInt8* w);
void GroupedInt8NeonDotprod(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                            int row_begin, int row_end);
Status PackDepthwiseInt8NeonDotprod(PackedDepthwiseInt8* w);
void DepthwiseInt8NeonDotprod(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                              int row_begin, int row_end);
Status PackInt8NeonDotprod(PackedConvInt8* w);
Status ConvInt8NeonDotprod(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in,
                           int8_t* out);
Status PackInt8NeonI8mm(PackedConvInt8* w);
Status ConvInt8NeonI8mm(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in,
                        int8_t* out);
Status PackInt8Sme(PackedConvInt8* w);
Status ConvInt8Sme(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out);
bool SmeVectorLengthSupported();  // the streaming vector length is one ConvInt8Sme handles
Status PackInt8Neon(PackedConvInt8* w);
Status ConvInt8Neon(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out);
Status PackInt8NeonWinograd(PackedConvInt8* w);
Status ConvInt8NeonWinograd(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out);
Status PackF32Neon(PackedConvF32* w);
Status ConvF32Neon(const PackedConvF32& w, const ConvProblem& p, const float* in, float* out);
#endif

}  // namespace internal
}  // namespace keras_csp
