// int8 3x3 stride-1 convs on AVX2 by Winograd F(2x2, 3x3) (Lavin & Gray 2016), exact in integers.
//
// Why: AVX2 has no int8 dot product; its exact int8 rate is vpmaddwd + vpaddd on int16 pairs, and the
// direct kernel already runs within ~10 % of that mix's peak. F(2x2, 3x3) computes a 2x2 output tile
// from a 4x4 input tile with 16 products per (input, output) channel pair instead of 36, and the
// products are int16 x int16 either way, so the same instruction mix does 2.25x fewer of them.
//
// Exactness: with G2 = 2G = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]] the weight transform U = G2 g G2^T is
// an integer (|U| <= 9 * 128), the input transform V = B^T d B of d = x - zero point too (|V| <= 4 * 255),
// both fit int16, and A^T (U . V) A = 4 x the direct conv's sum. int32 arithmetic wraps, so every
// intermediate is exact modulo 2^32, and the final sum is exact whenever 4 x |direct sum| < 2^31
// (Avx2WinogradFits checks it per output channel from the weights). The requantization then sees
// the same int32 as the direct kernel: the same bits in every rounding mode.
//
// Layout: per 16-channel block, the requantization rows (avx2_requant.h), then U as
// [xi = 4 r + c][k/2][16][2] int16. Per task (a run of tiles: whole tile rows on one thread, equal
// counts on several): the padded int16 staging of the rows it reads (as the direct kernel's, or the
// chain's prestaged buffer), V for a group of tiles as [xi][tile][k], the 16 products per tile by the
// direct kernel's 5x16 register tile (one vpbroadcastd per int16 pair, two weight vectors), their
// int32 sums in L1 as [tile][xi][16], then A^T M A, / 4, bias, requantization.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "../sweep.h"
#include "avx2_requant.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

constexpr int kNR = 16;       // output channels per block
constexpr int kMR = 5;        // tiles per register tile (10 accumulators, as the direct kernel)
constexpr int kXi = 16;       // positions of a 4x4 Winograd tile
// V of one tile group: ~ a fifth of Zen 3's L2 (24-48 KB measured 1-5 % slower on 3x3 128->32 at
// 56x56-14x14, 160 KB up to 8 % slower at 28x28), or half of it where the weights do not fit there
// (then every group streams them from L3: 3x3 512->512 at 7x7 has 8 MB). Groups of whole register
// tiles but the last, or register tiles of 5 and 4, were no faster than a last one of 1-4 tiles.
constexpr int64_t kGroupVBytes = 96 * 1024, kGroupVBytesBigWeights = 256 * 1024, kBigWeights = 256 * 1024;
constexpr int kMaxGroupTiles = 64;

inline size_t WinoBlockBytes(const PackedConvInt8& w) {
  return kParamBytes + static_cast<size_t>(kXi) * w.k_padded_ * kNR * sizeof(int16_t);
}

// V's row stride: k_padded_ rounded up to whole vectors (the input transform writes 16 at a time).
inline int VRowElems(const PackedConvInt8& w) { return RoundUp(w.k_padded_, 16); }

// V = B^T d B for one tile and 16 channels at k; B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
// px[i][j]: the staged pixel of tile row i, column j. v: V's row of this tile at xi = 0 (xi rows
// xi_stride elements apart). Column by column (u = d B for each row, then B^T u), with each d loaded
// twice: the 16 intermediate vectors of the row-then-column order spilled to the stack.
// Load(p): the 16 channels at p (a full vector, or a masked tail).
template <typename Load>
__attribute__((always_inline)) inline void InputTransform(const int16_t* const (&px)[4][4], int k, int16_t* v,
                                                          int64_t xi_stride, Load load) {
  // Column c of d B takes columns (c0, c1) of d with sign: u = d[c0] + s * d[c1].
  constexpr int kCol[4][2] = {{0, 2}, {1, 2}, {2, 1}, {1, 3}};
  constexpr bool kAdd[4] = {false, true, false, false};
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    __m256i u[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m256i a = load(px[i][kCol[c][0]] + k), b = load(px[i][kCol[c][1]] + k);
      u[i] = kAdd[c] ? _mm256_add_epi16(a, b) : _mm256_sub_epi16(a, b);
    }
    int16_t* o = v + c * xi_stride + k;  // xi = 4 r + c
    _mm256_store_si256(reinterpret_cast<__m256i*>(o), _mm256_sub_epi16(u[0], u[2]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + 4 * xi_stride), _mm256_add_epi16(u[1], u[2]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + 8 * xi_stride), _mm256_sub_epi16(u[2], u[1]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + 12 * xi_stride), _mm256_sub_epi16(u[1], u[3]));
  }
}

// V of one tile over all n (even) channels: whole vectors, then a masked tail.
__attribute__((noinline)) void TransformTile(const int16_t* const (&px)[4][4], int n, int16_t* v, int64_t xi_stride) {
  int k = 0;
  for (; k + 16 <= n; k += 16)
    InputTransform(px, k, v, xi_stride,
                   [](const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); });
  if (k < n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((n - k) / 2), lane);
    InputTransform(px, k, v, xi_stride, [mask](const int16_t* p) {
      return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), mask);
    });
  }
}

// M[i][xi] (16 int32) = sum over k of V[xi][tile i][k] * U[xi][k] for m <= MR tiles at a[i] (V rows of one xi).
template <int MR>
__attribute__((always_inline)) inline void Products(int m, const int16_t* const* a, int kp2, const int16_t* w,
                                                    int32_t* const* mrow) {
  __m256i acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
#pragma GCC unroll 2
  for (int64_t k = 0; k < 2 * int64_t{kp2}; k += 2) {
    const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16 * k));
    const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16 * k + 16));
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256i b = BroadcastPair(a[i] + k);
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(b, w0));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(b, w1));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    _mm256_store_si256(reinterpret_cast<__m256i*>(mrow[i]), acc[i][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(mrow[i] + 8), acc[i][1]);
  }
}

// Y = A^T M A / 4 + bias for 8 channels (half h of the block); A^T = [[1,1,1,0],[0,1,-1,-1]].
// m: the tile's [xi][16] int32 sums. y[a][b]: output (2 ty + a, 2 tx + b).
inline void OutputTransform(const int32_t* m, int h, __m256i bias, __m256i (&y)[2][2]) {
  auto at = [&](int xi) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(m + xi * kNR + 8 * h)); };
  __m256i t[2][4];
  for (int c = 0; c < 4; ++c) {
    const __m256i m0 = at(c), m1 = at(4 + c), m2 = at(8 + c), m3 = at(12 + c);
    const __m256i s = _mm256_add_epi32(m1, m2);
    t[0][c] = _mm256_add_epi32(m0, s);
    t[1][c] = _mm256_sub_epi32(_mm256_sub_epi32(m1, m2), m3);
  }
  for (int a = 0; a < 2; ++a) {
    const __m256i s = _mm256_add_epi32(t[a][1], t[a][2]);
    const __m256i y0 = _mm256_add_epi32(t[a][0], s);
    const __m256i y1 = _mm256_sub_epi32(_mm256_sub_epi32(t[a][1], t[a][2]), t[a][3]);
    // Exact: the sums are 4 x the direct conv's (Avx2WinogradFits).
    y[a][0] = _mm256_add_epi32(_mm256_srai_epi32(y0, 2), bias);
    y[a][1] = _mm256_add_epi32(_mm256_srai_epi32(y1, 2), bias);
  }
}

// The tile's up to 4 outputs (o[a][b] null where outside the image) requantized and stored.
template <Epilogue E>
inline void StoreTile(const int32_t* m, const int32_t* prm, const RequantConsts& c, int8_t* const (&o)[2][2], int n) {
  __m256i lo[2][2], hi[2][2];
  OutputTransform(m, 0, Row(prm, kBias, 0), lo);
  OutputTransform(m, 1, Row(prm, kBias, 1), hi);
  for (int a = 0; a < 2; ++a) {
    if (o[a][0] == nullptr) continue;
    if constexpr (E == Epilogue::kFp32) {
      StorePixelPairFp32Sums(lo[a][0], hi[a][0], lo[a][1], hi[a][1], prm, c, o[a][0], o[a][1], n);
    } else {
      for (int b = 0; b < 2; ++b) {
        if (o[a][b] == nullptr) continue;
        if constexpr (E == Epilogue::kInt16)
          StoreRowInt16Sums(lo[a][b], hi[a][b], prm, c, o[a][b], n);
        else
          StoreRowSums(lo[a][b], hi[a][b], prm, c, o[a][b], n);
      }
    }
  }
}

// Tiles [t_begin, t_end) of image b (raster order over its tile grid): staging of the padded rows
// they read (unless prestaged), then groups of tiles.
template <Epilogue E>
bool RunTask(const PackedConvInt8& w, const ConvProblem& p, const RequantConsts& c, const int8_t* in, int8_t* out,
             const int16_t* prestaged, int b, int t_begin, int t_end, int group_tiles) {
  const ConvGeometry& g = w.geometry_;
  const int cp = w.k_padded_, kp2 = cp / 2, vp = VRowElems(w);
  const int tiles_w = (p.out_w + 1) / 2;
  const int64_t row_elems = static_cast<int64_t>(p.padded_w) * cp;
  const int ty0 = t_begin / tiles_w, ty1 = (t_end - 1) / tiles_w + 1;  // tile rows touched
  const int r0 = 2 * ty0, r1 = std::min(p.padded_h, 2 * ty1 + 2);      // padded rows read
  const size_t stage_elems = prestaged ? 0 : static_cast<size_t>(r1 - r0) * row_elems;
  const size_t v_elems = static_cast<size_t>(kXi) * group_tiles * vp;
  const size_t m_elems = static_cast<size_t>(group_tiles) * kXi * kNR;
  // [staged rows | zero pixel | V | M], each 64-byte aligned.
  auto round64 = [](size_t bytes) { return (bytes + 63) / 64 * 64; };
  const size_t stage_bytes = round64(stage_elems * 2), zero_bytes = round64(static_cast<size_t>(vp) * 2);
  auto* base = static_cast<uint8_t*>(Scratch(stage_bytes + zero_bytes + v_elems * 2 + m_elems * 4));
  if (base == nullptr) return false;
  auto* zero = reinterpret_cast<int16_t*>(base + stage_bytes);
  auto* v = reinterpret_cast<int16_t*>(base + stage_bytes + zero_bytes);
  auto* msum = reinterpret_cast<int32_t*>(base + stage_bytes + zero_bytes + v_elems * 2);
  std::memset(zero, 0, zero_bytes);
  const int16_t* rows;  // padded row r0 of image b
  if (prestaged) {
    rows = prestaged + (static_cast<int64_t>(b) * p.padded_h + r0) * row_elems;
  } else {
    auto* stage = reinterpret_cast<int16_t*>(base);
    const int16_t zp = static_cast<int16_t>(w.quant_.input_zero_point);
    const int first = b * p.padded_h;
    BuildPaddedRows(p, in, stage, cp, int16_t{0}, int16_t{0}, [zp](int8_t x) { return static_cast<int16_t>(x - zp); },
                    first + r0, first + r1, first + r0);
    rows = stage;
  }
  const auto* packed = static_cast<const uint8_t*>(w.winograd_packed());
  const size_t bb = WinoBlockBytes(w);
  const int blocks = (g.out_channels + kNR - 1) / kNR;
  const int channel_bytes = OutputChannelBytes(p);
  const int tiles = t_end - t_begin;
  // Groups of equal size (49 tiles in groups of at most 32: 25 + 24).
  const int groups = (tiles + group_tiles - 1) / group_tiles, per_group = (tiles + groups - 1) / groups;
  for (int t0 = 0; t0 < tiles; t0 += per_group) {
    const int gt = std::min(per_group, tiles - t0);
    // V of the group's tiles.
    for (int i = 0; i < gt; ++i) {
      const int ty = (t_begin + t0 + i) / tiles_w, tx = (t_begin + t0 + i) % tiles_w;
      const int16_t* px[4][4];
      for (int r = 0; r < 4; ++r)
        for (int col = 0; col < 4; ++col) {
          const int pr = 2 * ty + r, pc = 2 * tx + col;  // padded coordinates; past the edge: a
          px[r][col] = pr < p.padded_h && pc < p.padded_w  // phantom row / column of an odd size
                           ? rows + (pr - r0) * row_elems + static_cast<int64_t>(pc) * cp
                           : zero;
        }
      TransformTile(px, cp, v + static_cast<int64_t>(i) * vp, int64_t{gt} * vp);
    }
    for (int bi = 0; bi < blocks; ++bi) {
      const auto* prm = reinterpret_cast<const int32_t*>(packed + bi * bb);
      const auto* u = reinterpret_cast<const int16_t*>(packed + bi * bb + kParamBytes);
      for (int xi = 0; xi < kXi; ++xi) {
        const int16_t* vx = v + static_cast<int64_t>(xi) * gt * vp;
        const int16_t* ux = u + static_cast<int64_t>(xi) * cp * kNR;
        // Register tiles of kMR tiles, then one of the rest (a 7x7 image's 16 tiles: 5 + 5 + 5 + 1,
        // not four full tiles).
        auto products = [&](auto mr, int i0) {
          constexpr int MR = decltype(mr)::value;
          const int16_t* a[MR];
          int32_t* mrow[MR];
          for (int i = 0; i < MR; ++i) {
            a[i] = vx + static_cast<int64_t>(i0 + i) * vp;
            mrow[i] = msum + (static_cast<int64_t>(i0 + i) * kXi + xi) * kNR;
          }
          Products<MR>(MR, a, kp2, ux, mrow);
        };
        int i0 = 0;
        for (; i0 + kMR <= gt; i0 += kMR) products(std::integral_constant<int, kMR>{}, i0);
        switch (gt - i0) {
          case 4: products(std::integral_constant<int, 4>{}, i0); break;
          case 3: products(std::integral_constant<int, 3>{}, i0); break;
          case 2: products(std::integral_constant<int, 2>{}, i0); break;
          case 1: products(std::integral_constant<int, 1>{}, i0); break;
          default: break;
        }
      }
      const int n = std::min(kNR, g.out_channels - bi * kNR);
      for (int i = 0; i < gt; ++i) {
        const int ty = (t_begin + t0 + i) / tiles_w, tx = (t_begin + t0 + i) % tiles_w;
        int8_t* o[2][2];
        for (int a = 0; a < 2; ++a)
          for (int bx = 0; bx < 2; ++bx) {
            const int oy = 2 * ty + a, ox = 2 * tx + bx;
            o[a][bx] = oy < p.out_h && ox < p.out_w ? OutputPixel(p, out, b, oy, ox) + bi * kNR * channel_bytes : nullptr;
          }
        StoreTile<E>(msum + static_cast<int64_t>(i) * kXi * kNR, prm, c, o, n);
      }
    }
  }
  // The task ops once on each output pixel the task wrote: per tile row, its two output rows' run.
  for (int ty = ty0; p.HasTaskOps() && ty < ty1; ++ty) {
    const int tx0 = ty == ty0 ? t_begin % tiles_w : 0, tx1 = ty == ty1 - 1 ? (t_end - 1) % tiles_w + 1 : tiles_w;
    for (int oy = 2 * ty; oy < std::min(p.out_h, 2 * ty + 2); ++oy)
      ApplyTaskOutputOps(p, out, b, oy * p.out_w + 2 * tx0, std::min(p.out_w, 2 * tx1) - 2 * tx0, 0, g.out_channels);
  }
  return true;
}

// KERAS_CSP_WINOGRAD: "0" none, "force" every image size, otherwise images of kMinPixels or more.
const char* WinogradEnv() {
  const char* e = std::getenv("KERAS_CSP_WINOGRAD");
  return e ? e : "";
}
// Output pixels from which a packed Winograd conv runs so: 10x10. CSPDenseNet-121 fused, Zen 3, process
// A/B against the direct kernel: the 7x7 dense block (3x3 128->32 convs at 7x7, weights from L3)
// 0.99x at 1 thread and 0.955x at 2; the 14x14 block 1.18x / 1.09x, 28x28 1.32x / 1.30x.
constexpr int kMinPixels = 100;

}  // namespace

bool Avx2WinogradFits(const PackedConvInt8& w) {
  const ConvGeometry& g = w.geometry_;
  if (g.kernel_h != 3 || g.kernel_w != 3 || g.stride_h != 1 || g.stride_w != 1) return false;
  // Stems (1-3 channels) run on row taps; few channels leave too little K per product.
  if (g.in_channels < 8 || std::strcmp(WinogradEnv(), "0") == 0) return false;
  for (int oc = 0; oc < g.out_channels; ++oc)
    if (255 * WeightAbsSum(w, oc) >= (int64_t{1} << 29)) return false;  // 4 x |sum| must stay below 2^31
  return true;
}

Status PackInt8Avx2Winograd(PackedConvInt8* w) {
  const ConvGeometry& g = w->geometry_;
  const int cin = g.in_channels;
  // After PackInt8Avx2, whose k_padded_ (cin rounded up to pairs) and 16-channel blocks it shares:
  // both kernels read the same staging.
  w->winograd_ = true;
  w->winograd_min_pixels_ = std::strcmp(WinogradEnv(), "force") == 0 ? 0 : kMinPixels;
  const int cp = w->k_padded_;
  const int blocks = (g.out_channels + kNR - 1) / kNR;
  const size_t bb = WinoBlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocAligned64(&w->winograd_storage_, &w->winograd_offset_, bb * blocks));
  for (int bi = 0; bi < blocks; ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    auto* u = reinterpret_cast<int16_t*>(base + bi * bb + kParamBytes);
    PackRequantParams(prm, w->quant_, w->bias_, w->left_shift_, w->right_shift_, bi * kNR);
    for (int j = 0; j < kNR; ++j) {
      const int oc = bi * kNR + j;
      if (oc >= g.out_channels) continue;
      for (int k = 0; k < cin; ++k) {
        auto wt = [&](int ky, int kx) { return int{w->weights_[((static_cast<size_t>(oc) * 3 + ky) * 3 + kx) * cin + k]}; };
        // t = G2 g (rows of the kernel), then U = t G2^T.
        int t[4][3];
        for (int kx = 0; kx < 3; ++kx) {
          t[0][kx] = 2 * wt(0, kx);
          t[1][kx] = wt(0, kx) + wt(1, kx) + wt(2, kx);
          t[2][kx] = wt(0, kx) - wt(1, kx) + wt(2, kx);
          t[3][kx] = 2 * wt(2, kx);
        }
        for (int r = 0; r < 4; ++r) {
          const int uu[4] = {2 * t[r][0], t[r][0] + t[r][1] + t[r][2], t[r][0] - t[r][1] + t[r][2], 2 * t[r][2]};
          for (int col = 0; col < 4; ++col)
            u[((static_cast<size_t>(4 * r + col) * (cp / 2) + k / 2) * kNR + j) * 2 + k % 2] = static_cast<int16_t>(uu[col]);
        }
      }
    }
  }
  return Status::Ok();
}

Status ConvInt8Avx2Winograd(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  const ConvGeometry& g = w.geometry_;
  ThreadPool* pool = PoolFor(p, g);
  const int threads = Threads(pool);
  const int tiles_h = (p.out_h + 1) / 2, tiles_w = (p.out_w + 1) / 2;
  const int vp = VRowElems(w);
  const int blocks = (g.out_channels + kNR - 1) / kNR;
  const int64_t v_budget = static_cast<int64_t>(WinoBlockBytes(w)) * blocks > kBigWeights ? kGroupVBytesBigWeights
                                                                                            : kGroupVBytes;
  const int group_tiles = static_cast<int>(std::clamp<int64_t>(v_budget / (kXi * vp * 2), 1, kMaxGroupTiles));
  // Tile rows per task: about three groups, and at least two tasks per thread where the image has
  // the rows (each task stages its rows plus a 2-row halo).
  // Tasks of about three groups, each staging the padded rows its tiles read. One thread: whole tile
  // rows (in tile ranges across rows, 3x3 128->32 at 56x56 ran 4-5 % slower). Several: as many tasks
  // per image as a multiple of the threads, of equal tile counts; by whole tile rows, 2 threads got
  // 3 + 2 tasks at 28x28 and 4 + 3 one-row tasks at 14x14 (equal counts: 1.15-1.17x there, C++
  // driver, best of 12 process rounds; 59-63 % of the peak in products issued against 67-73 % at 1 thread).
  const int tiles = tiles_h * tiles_w;
  int task_tiles, tasks_per_image;
  if (threads == 1) {
    task_tiles = std::max(1, (3 * group_tiles + tiles_w - 1) / tiles_w) * tiles_w;
    tasks_per_image = (tiles + task_tiles - 1) / task_tiles;
  } else {
    tasks_per_image = threads * std::max(1, (tiles + threads * 3 * group_tiles - 1) / (threads * 3 * group_tiles));
    task_tiles = 0;  // tiles * t / tasks_per_image
  }
  const auto* prestaged = static_cast<const int16_t*>(p.prestaged);
  const RequantConsts c = MakeRequantConsts(w.quant_, w.left_shift_);  // once per call, for every task
  const Epilogue e = EpilogueFor(p.out_i16, c);
  std::atomic<bool> out_of_memory{false};
  ParallelFor(pool, p.batch * tasks_per_image, [&](int task) {
    const int b = task / tasks_per_image, t = task % tasks_per_image;
    const int t_begin = task_tiles ? std::min(tiles, t * task_tiles) : static_cast<int>(int64_t{tiles} * t / tasks_per_image);
    const int t_end = task_tiles ? std::min(tiles, t_begin + task_tiles)
                                 : static_cast<int>(int64_t{tiles} * (t + 1) / tasks_per_image);
    if (t_begin == t_end) return;
    bool ok;
    switch (e) {
      case Epilogue::kFp32: ok = RunTask<Epilogue::kFp32>(w, p, c, in, out, prestaged, b, t_begin, t_end, group_tiles); break;
      case Epilogue::kFixed: ok = RunTask<Epilogue::kFixed>(w, p, c, in, out, prestaged, b, t_begin, t_end, group_tiles); break;
      default: ok = RunTask<Epilogue::kInt16>(w, p, c, in, out, prestaged, b, t_begin, t_end, group_tiles); break;
    }
    if (!ok) out_of_memory = true;
  }, TaskOrder::kFirstCome);
  if (out_of_memory) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
  return Status::Ok();
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
