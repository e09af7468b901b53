// int8 3x3 stride-1 convs by Winograd F(2x2, 3x3) (Lavin & Gray 2016), exact in integers: the sweep
// shared by the variants whose exact int8 rate is a widening int16 multiply (AVX2 vpmaddwd, plain
// NEON smlal). The products are int16 x int16 either way, and F(2x2, 3x3) needs 16 of them per
// 2x2 output tile and (input, output) channel pair instead of 36.
//
// Exactness: with G2 = 2G = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]] the weight transform U = G2 g G2^T is
// an integer (|U| <= 9 * 128), the input transform V = B^T d B of d = x - zero point too (|V| <= 4 * 255),
// both fit int16, and A^T (U . V) A = 4 x the direct conv's sum. int32 arithmetic wraps, so every
// intermediate is exact modulo 2^32, and the final sum is exact whenever 4 x |direct sum| < 2^31
// (WinogradFits checks it per output channel from the weights). The requantization then sees the
// same int32 as the direct kernel: the same bits in every rounding mode.
//
// Per task (a run of tiles: whole tile rows on one thread, equal counts on several): the padded
// int16 staging of the rows it reads (as the direct kernels', or the chain's prestaged buffer), V
// for a group of tiles as [xi][tile][k], the 16 products per tile on the variant's register tile,
// their int32 sums in L1 as [tile][xi][16], then the variant's A^T M A / 4, bias, requantization.
//
// The transforms (InputTransform, OutputTransform) are written once over the variant's vector ops.
// Include after the variant's target pragmas; everything is in an anonymous namespace (each
// variant file gets its own copy, compiled with its own flags). The variant provides
//   struct Isa {
//     static constexpr int kMR;         // tiles per register tile
//     static constexpr int kVecElems;   // V's row stride is k_padded_ rounded up to this
//     // V of one tile over n channels; px[i][j]: the staged pixel of tile row i, column j; v: V's
//     // row of this tile at xi = 0 (xi rows xi_stride elements apart).
//     static void TransformTile(const int16_t* const (&px)[4][4], int n, int16_t* v, int64_t xi_stride);
//     // M rows mrow[i] (16 int32) = sum over k < kp of a[i][k] * U[k] for MR <= kMR tiles.
//     template <int MR> static void Products(const int16_t* const* a, int kp, const int16_t* u, int32_t* const* mrow);
//   };
// and a store(m, prm, o, n) for one tile: its [xi][16] sums m, the block's parameters, its up to
// four outputs o[a][b] (null outside the image), n channels.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>

#include "sweep.h"

namespace keras_csp {
namespace internal {
namespace {

namespace winograd {

constexpr int kXi = kWinogradXi, kNR = kWinogradNR;
// V of one tile group: ~ a fifth of Zen 3's L2 (24-48 KB measured 1-5 % slower on 3x3 128->32 at
// 56x56-14x14, 160 KB up to 8 % slower at 28x28), or half of it where the weights do not fit there
// (then every group streams them from L3: 3x3 512->512 at 7x7 has 8 MB). Groups of whole register
// tiles but the last, or register tiles of 5 and 4, were no faster than a last one of 1-4 tiles.
constexpr int64_t kGroupVBytes = 96 * 1024, kGroupVBytesBigWeights = 256 * 1024, kBigWeights = 256 * 1024;
constexpr int kMaxGroupTiles = 64;

// V = B^T d B for one tile and the channels of one vector at k; B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],
// [0,1,0,-1]]. px[i][j]: the staged pixel of tile row i, column j. v: V's row of this tile at xi = 0
// (xi rows xi_stride elements apart). Column by column (u = d B for each row, then B^T u), with each
// d loaded twice: the 16 intermediate vectors of the row-then-column order spilled to the stack on
// AVX2. ops: the variant's int16 vectors, load(p) / add / sub / store(p, v).
template <typename Ops>
__attribute__((always_inline)) inline void InputTransform(const int16_t* const (&px)[4][4], int k, int16_t* v,
                                                          int64_t xi_stride, const Ops& ops) {
  // Column c of d B takes columns (c0, c1) of d with sign: u = d[c0] + s * d[c1].
  constexpr int kCol[4][2] = {{0, 2}, {1, 2}, {2, 1}, {1, 3}};
  constexpr bool kAdd[4] = {false, true, false, false};
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    decltype(ops.load(v)) u[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const auto a = ops.load(px[i][kCol[c][0]] + k), b = ops.load(px[i][kCol[c][1]] + k);
      u[i] = kAdd[c] ? ops.add(a, b) : ops.sub(a, b);
    }
    int16_t* o = v + c * xi_stride + k;  // xi = 4 r + c
    ops.store(o, ops.sub(u[0], u[2]));
    ops.store(o + 4 * xi_stride, ops.add(u[1], u[2]));
    ops.store(o + 8 * xi_stride, ops.sub(u[2], u[1]));
    ops.store(o + 12 * xi_stride, ops.sub(u[1], u[3]));
  }
}

// y[a][b] = (A^T M A)[a][b], 4 x output (2 ty + a, 2 tx + b), for one vector of channels; A^T =
// [[1,1,1,0],[0,1,-1,-1]]. at(xi): M at position xi; ops: the variant's int32 vectors, add / sub.
template <typename At, typename Ops, typename V>
__attribute__((always_inline)) inline void OutputTransform(At at, const Ops& ops, V (&y)[2][2]) {
  V t[2][4];
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const V m0 = at(c), m1 = at(4 + c), m2 = at(8 + c), m3 = at(12 + c);
    t[0][c] = ops.add(m0, ops.add(m1, m2));
    t[1][c] = ops.sub(ops.sub(m1, m2), m3);
  }
#pragma GCC unroll 2
  for (int a = 0; a < 2; ++a) {
    y[a][0] = ops.add(t[a][0], ops.add(t[a][1], t[a][2]));
    y[a][1] = ops.sub(ops.sub(t[a][1], t[a][2]), t[a][3]);
  }
}

// f(std::integral_constant<int, n>{}) for 0 < n <= N: a register tile's compile-time tile count.
template <int N, typename F>
__attribute__((always_inline)) inline void WithTileCount(int n, F&& f) {
  if constexpr (N > 0) {
    if (n == N) return f(std::integral_constant<int, N>{});
    WithTileCount<N - 1>(n, f);
  }
}

// Tiles [t_begin, t_end) of image b (raster order over its tile grid): staging of the padded rows
// they read (unless prestaged), then groups of tiles.
template <class Isa, class Store>
bool RunTask(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, size_t param_bytes,
             int b, int t_begin, int t_end, int group_tiles, Store& store) {
  const ConvGeometry& g = w.geometry_;
  const int cp = w.k_padded_, vp = RoundUp(cp, Isa::kVecElems);
  const int tiles_w = (p.out_w + 1) / 2;
  const int64_t row_elems = static_cast<int64_t>(p.padded_w) * cp;
  const int ty0 = t_begin / tiles_w, ty1 = (t_end - 1) / tiles_w + 1;  // tile rows touched
  const int r0 = 2 * ty0, r1 = std::min(p.padded_h, 2 * ty1 + 2);      // padded rows read
  const auto* prestaged = static_cast<const int16_t*>(p.prestaged);
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
  const size_t bb = WinogradBlockBytes(w, param_bytes);
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
      Isa::TransformTile(px, cp, v + static_cast<int64_t>(i) * vp, int64_t{gt} * vp);
    }
    for (int bi = 0; bi < blocks; ++bi) {
      const auto* prm = reinterpret_cast<const int32_t*>(packed + bi * bb);
      const auto* u = reinterpret_cast<const int16_t*>(packed + bi * bb + param_bytes);
      for (int xi = 0; xi < kXi; ++xi) {
        const int16_t* vx = v + static_cast<int64_t>(xi) * gt * vp;
        const int16_t* ux = u + static_cast<int64_t>(xi) * cp * kNR;
        // Register tiles of kMR tiles, then one of the rest (a 7x7 image's 16 tiles: 5 + 5 + 5 + 1
        // on AVX2, not four full tiles). Compile-time counts: with the pointer tables filled in a
        // run-time loop, AVX2 ran 1-3.5 % slower (C++ driver, process A/B).
        auto products = [&](auto mr, int i0) {
          constexpr int MR = decltype(mr)::value;
          const int16_t* a[MR];
          int32_t* mrow[MR];
          for (int i = 0; i < MR; ++i) {
            a[i] = vx + static_cast<int64_t>(i0 + i) * vp;
            mrow[i] = msum + (static_cast<int64_t>(i0 + i) * kXi + xi) * kNR;
          }
          Isa::template Products<MR>(a, cp, ux, mrow);
        };
        int i0 = 0;
        for (; i0 + Isa::kMR <= gt; i0 += Isa::kMR) products(std::integral_constant<int, Isa::kMR>{}, i0);
        WithTileCount<Isa::kMR - 1>(gt - i0, [&](auto mr) { products(mr, i0); });
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
        store(static_cast<const int32_t*>(msum + static_cast<int64_t>(i) * kXi * kNR), prm, o, n);
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

}  // namespace winograd

// The Winograd sweep of a conv packed by PackWinograd with param_bytes of parameters per block.
template <class Isa, class Store>
Status WinogradSweep(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, size_t param_bytes,
                     Store store) {
  using namespace winograd;
  const ConvGeometry& g = w.geometry_;
  ThreadPool* pool = PoolFor(p, g);
  const int threads = Threads(pool);
  const int tiles_h = (p.out_h + 1) / 2, tiles_w = (p.out_w + 1) / 2;
  const int vp = RoundUp(w.k_padded_, Isa::kVecElems);
  const int blocks = (g.out_channels + kNR - 1) / kNR;
  const int64_t v_budget =
      static_cast<int64_t>(WinogradBlockBytes(w, param_bytes)) * blocks > kBigWeights ? kGroupVBytesBigWeights : kGroupVBytes;
  const int group_tiles = static_cast<int>(std::clamp<int64_t>(v_budget / (kXi * vp * 2), 1, kMaxGroupTiles));
  // Tasks of about three groups, each staging the padded rows its tiles read (plus a 2-row halo).
  // One thread: whole tile rows (in tile ranges across rows, 3x3 128->32 at 56x56 ran 4-5 % slower
  // on AVX2). Several: as many tasks per image as a multiple of the threads, of equal tile counts;
  // by whole tile rows, 2 threads got 3 + 2 tasks at 28x28 and 4 + 3 one-row tasks at 14x14 (equal
  // counts: 1.15-1.17x there on AVX2, C++ driver, best of 12 process rounds).
  const int tiles = tiles_h * tiles_w;
  int task_tiles, tasks_per_image;
  if (threads == 1) {
    task_tiles = std::max(1, (3 * group_tiles + tiles_w - 1) / tiles_w) * tiles_w;
    tasks_per_image = (tiles + task_tiles - 1) / task_tiles;
  } else {
    tasks_per_image = threads * std::max(1, (tiles + threads * 3 * group_tiles - 1) / (threads * 3 * group_tiles));
    task_tiles = 0;  // tiles * t / tasks_per_image
  }
  std::atomic<bool> out_of_memory{false};
  ParallelFor(pool, p.batch * tasks_per_image, [&](int task) {
    const int b = task / tasks_per_image, t = task % tasks_per_image;
    const int t_begin = task_tiles ? std::min(tiles, t * task_tiles) : static_cast<int>(int64_t{tiles} * t / tasks_per_image);
    const int t_end = task_tiles ? std::min(tiles, t_begin + task_tiles)
                                 : static_cast<int>(int64_t{tiles} * (t + 1) / tasks_per_image);
    if (t_begin == t_end) return;
    if (!RunTask<Isa>(w, p, in, out, param_bytes, b, t_begin, t_end, group_tiles, store)) out_of_memory = true;
  }, TaskOrder::kFirstCome);
  if (out_of_memory) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
  return Status::Ok();
}

}  // namespace
}  // namespace internal
}  // namespace keras_csp
