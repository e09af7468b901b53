// int8 conv, x86-64 AMX-INT8 (Sapphire Rapids and later): tdpbssd multiplies a 16 x 64-byte int8
// A tile (16 output pixels x 64 bytes of K) by a 16 x 64-byte B tile (16 rows of 4 K bytes x 16
// output channels) into a 16 x 16 int32 C tile, 16K MACs per instruction.
//
// - Signed x signed: the activations are the raw int8 values (no x + 128 staging), the bias folds
//   -input_zero_point * sum(w), and padding taps read the input zero point.
// - Weights packed once by PackInt8Groups in the 4-byte-interleaved tile layout, [row][k/4][16][4]
//   per 16-channel block, K padded to 64 per row with zero weights: a B tile is 1 KB at a fixed
//   step, loaded with stride 64.
// - A tiles load straight from memory with a row stride: 1x1 convs from the input channel slice in
//   place (16 pixels pixel_stride apart), KxK convs from the padded staging, one kernel row (its
//   kernel_w * in_channels contiguous bytes) per K run. Stride-1 convs index pixels over the padded
//   width, so a tile runs on across output rows and the staged row's padding columns are computed
//   and dropped (7x7: 61 computed for 49; 56x56: 3 %); other convs tile each output row.
// - Register tile: 2 x 2 C tiles (32 pixels x 32 channels) from 2 A and 2 B tiles, all 8 tiles.
// - Epilogue: the C tiles stored to a 4 KB buffer, then AVX-512 requantization (avx512_requant.h,
//   bit-exact in all three rounding modes) straight into the output slice, in pieces between the
//   next register tile's K steps (PendingEpilogue).
// - Linux hands out AMX state only on request (arch_prctl ARCH_REQ_XCOMP_PERM, cpu_features.cc);
//   each task loads the tile configuration and releases the tiles when it ends.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,amx-tile,amx-int8")
// GCC 12 false positive inside avx512fintrin.h (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "../sweep.h"

// clang ignores `#pragma GCC target`: give every function below, the shared epilogue's included,
// the same target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,amx-tile,amx-int8"))), apply_to = function)
#endif

#define KCSP_VBMI_TABLE 1  // every AMX CPU has AVX-512 VBMI (VariantAvailable checks)
#include "avx512_requant.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kRows = 16;              // pixels per A / C tile
constexpr int kTileK = 64;             // K bytes per A tile row
constexpr int kMR = 2 * kRows;         // pixels per register tile
constexpr int kNR = kPackNR;           // channels per B / C tile column block
constexpr int kBTileBytes = kRows * kTileK;
constexpr int kCTileInts = kRows * kNR;
// Below this many MACs the conv runs on the calling thread: at ~1 TMAC/s (4-8x the vpdpbusd
// kernels, so 16x sweep.h's threshold) waking a worker costs more than it saves. Xeon (AMX), 2
// threads against 1: 3x3 128->32 at 14x14 (7.2M MACs) 9.0 against 6.7 us, 1x1 512->128 at 14x14
// (12.8M) 11.1 against 13.0 us.
constexpr int64_t kAmxMinParallelMacs = int64_t{1} << 23;
// K steps from which a register tile's product runs the previous tile's epilogue between its steps.
constexpr int kMinInterleaveSteps = 2;

// The palette-1 tile configuration: C tiles 0-3 (tile 2i + j: pixels 16i.., channels 16j..), A tiles
// 4-5, B tiles 6-7, each 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// One register tile's sums and where they go: C tile (i, j) at acc + (2i + j) * 256, block j's
// parameter rows prm[j], pixel r's output o[r] (nullptr: dropped), mb x nb C tiles, n channels.
struct Slot {
  alignas(64) int32_t acc[4 * kCTileInts];
  const int32_t* prm[2];
  int8_t* o[kMR];
  int mb, nb, n;
  const RequantConsts* rc;
};

// Epilogue units of a slot: a zmm of output, two pixels x 32 channels (nb = 2) or four x 16.
constexpr int UnitRows(int nb) { return nb == 2 ? 2 : 4; }
inline int SlotUnits(const Slot& sl) { return sl.mb * (kRows / UnitRows(sl.nb)); }

// The previous register tile's epilogue, run by TileProduct in pieces between its K steps (units
// [u0, u1) of slot). Issued after the whole product it hardly overlapped it (Xeon, 1x1 128->128 at
// 56x56: product alone 51 us, epilogue alone 27, both 78); in pieces, convs of 4+ K steps ran
// 1-10 % faster (3x3 128->32 at 28x28 and 56x56 5-6 %, 1x1 256->128 9 %). With the epilogue's
// invariants in registers, two steps pay too (1x1 K = 96-160, two runs of in-process A/B:
// 1.01-1.15x); one step does not (K <= 64: 0.84-0.98x), so there it runs after.
struct PendingEpilogue {
  void (*run)(const Slot& slot, int u0, int u1) = nullptr;
  const Slot* slot = nullptr;
  int steps = 0;  // the product's K steps (all runs), over which the slot's units are spread
};

// MB x NB C tiles: K run t's A tile i rows at a[i] + tap_off[t] + 64 kc (kc < chunks[t]),
// a_stride[i] apart; B tile j at w[j], the next KB per step. The sums go to c: tile (i, j) at
// c + (2i + j) * 256.
// Not inlined: the tile numbers are immediates, one instantiation per shape.
// The C tiles start at the bias (block j's parameter row 0, bias[j], loaded into all 16 rows with
// stride 0): the epilogue then adds nothing.
template <int MB, int NB, bool kPrefetch = false>
__attribute__((noinline)) void TileProduct(const int8_t* const* a, const int64_t* a_stride, const int64_t* tap_off,
                                           int taps, const int* chunks, const int8_t* w0, const int8_t* w1,
                                           const int32_t* const* bias, int32_t* c, const PendingEpilogue& pe) {
  int step = 0, u0 = 0;
  const int units = pe.slot != nullptr ? SlotUnits(*pe.slot) : 0;
  _tile_loadd(0, bias[0], 0);
  if constexpr (NB > 1) _tile_loadd(1, bias[1], 0);
  if constexpr (MB > 1) _tile_loadd(2, bias[0], 0);
  if constexpr (MB > 1 && NB > 1) _tile_loadd(3, bias[1], 0);
  const int64_t s0 = a_stride[0], s1 = MB > 1 ? a_stride[1] : 0;
  for (int t = 0; t < taps; ++t) {
    const int8_t* a0 = a[0] + tap_off[t];
    const int8_t* a1 = a[MB - 1] + tap_off[t];
    for (int kc = 0; kc < chunks[t]; ++kc, a0 += kTileK, a1 += kTileK) {
      // kPrefetch: the B tiles' lines two steps ahead (a sweep's first register tile on a small
      // image, where the weights come from L3 or DRAM: PrefetchFirstTiles).
      if constexpr (kPrefetch)
        for (int l = 0; l < kBTileBytes; l += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(w0 + 2 * kBTileBytes + l), _MM_HINT_T0);
          if constexpr (NB > 1) _mm_prefetch(reinterpret_cast<const char*>(w1 + 2 * kBTileBytes + l), _MM_HINT_T0);
        }
      _tile_loadd(4, a0, s0);
      _tile_loadd(6, w0, kTileK);
      w0 += kBTileBytes;
      _tile_dpbssd(0, 4, 6);
      if constexpr (NB > 1) {
        _tile_loadd(7, w1, kTileK);
        w1 += kBTileBytes;
        _tile_dpbssd(1, 4, 7);
      }
      if constexpr (MB > 1) {
        _tile_loadd(5, a1, s1);
        _tile_dpbssd(2, 5, 6);
        if constexpr (NB > 1) _tile_dpbssd(3, 5, 7);
      }
      if (units > 0) {
        const int u1 = static_cast<int>(int64_t{++step} * units / pe.steps);
        if (u1 > u0) pe.run(*pe.slot, u0, u1);
        u0 = u1;
      }
    }
  }
  _tile_stored(0, c, kNR * 4);
  if constexpr (NB > 1) _tile_stored(1, c + kCTileInts, kNR * 4);
  if constexpr (MB > 1) _tile_stored(2, c + 2 * kCTileInts, kNR * 4);
  if constexpr (MB > 1 && NB > 1) _tile_stored(3, c + 3 * kCTileInts, kNR * 4);
}

// The requantization of one slot's C tile columns, its per-channel rows in registers: kMode
// kFp32 (kFp32Clamp: the float clamp before the conversion) or kFixed. Lanes = block j's 16 channels.
enum RequantMode { kFp32, kFp32Clamp, kFixed };
template <int NB, RequantMode kMode>
struct SlotRequant {
  __m512i mult[NB], lsh[NB], rsh[NB];
  const RequantConsts& rc;
  SlotRequant(const Slot& sl, const RequantConsts& c) : rc(c) {
    for (int j = 0; j < NB; ++j) {
      mult[j] = _mm512_load_si512(sl.prm[j] + 16);
      if constexpr (kMode == kFixed) {
        lsh[j] = _mm512_load_si512(sl.prm[j] + 32);
        rsh[j] = _mm512_load_si512(sl.prm[j] + 48);
      }
    }
  }
  __attribute__((always_inline)) __m512i operator()(const int32_t* acc, int j) const {
    const __m512i x = _mm512_load_si512(acc);
    if constexpr (kMode == kFixed) return RequantFixed(x, mult[j], lsh[j], rsh[j], rc);
    return RequantFp32<kMode == kFp32Clamp>(x, mult[j], rc);
  }
};

// Four requantized rows to int8 (the amx conv never writes uint8), in order.
__attribute__((always_inline)) inline __m512i PackRows(__m512i r0, __m512i r1, __m512i r2, __m512i r3, __m512i zp16,
                                                       __m512i mn8, __m512i mx8, __m512i unzip) {
  return _mm512_permutexvar_epi32(unzip, PackClamp4<false>(r0, r1, r2, r3, zp16, mn8, mx8));
}

// Requantizes units [u0, u1) of slot's C tiles (NB of them per 16 pixels) and stores pixel r's
// n <= NB * 16 channels to o[r] (nullptr: a computed row that is not an output pixel). kTable:
// PackedConvInt8's output table looked up on the bytes before they are stored. The rounding mode
// is a template parameter and the parameter rows and constants sit in registers: read per unit,
// they made the epilogue a third of a short-K 1x1 conv's time (perf); in-process A/B, Xeon, 1
// thread: 1x1 128->128 at 56x56 1.19x, 64->64 1.22x, 256->128 at 28x28 1.12x, 3x3 convs 1.06x.
template <int NB, bool kTable, RequantMode kMode>
void StoreTiles(const Slot& sl, int u0, int u1) {
  const RequantConsts& rc = *sl.rc;
  const SlotRequant<NB, kMode> rq(sl, rc);
  const __m512i unzip = UnzipDwords(), zp16 = rc.zp16, mn8 = rc.mn8, mx8 = rc.mx8;
  constexpr unsigned kUnitRows = UnitRows(NB), kTileUnits = kRows / kUnitRows;
  const int n = sl.n;
  for (unsigned u = u0; u < static_cast<unsigned>(u1); ++u) {
    const unsigned i = u / kTileUnits, r = u % kTileUnits * kUnitRows;
    const int32_t* t0 = sl.acc + 2 * i * kCTileInts + r * kNR;
    int8_t* const* oi = sl.o + kRows * i + r;
    if constexpr (NB == 2) {
      // Two pixels x 32 channels per zmm.
      if (oi[0] == nullptr && oi[1] == nullptr) continue;
      const int32_t* t1 = t0 + kCTileInts;
      __m512i q = PackRows(rq(t0, 0), rq(t1, 1), rq(t0 + kNR, 0),
                           rq(t1 + kNR, 1), zp16, mn8, mx8, unzip);
      if constexpr (kTable) q = LookupTable(q, rc);
      if (n >= 2 * kNR) {
        if (oi[0] != nullptr) _mm256_storeu_si256(reinterpret_cast<__m256i*>(oi[0]), _mm512_castsi512_si256(q));
        if (oi[1] != nullptr) _mm256_storeu_si256(reinterpret_cast<__m256i*>(oi[1]), _mm512_extracti64x4_epi64(q, 1));
      } else {
        const __mmask32 mask = (__mmask32{1} << n) - 1;
        if (oi[0] != nullptr) _mm256_mask_storeu_epi8(oi[0], mask, _mm512_castsi512_si256(q));
        if (oi[1] != nullptr) _mm256_mask_storeu_epi8(oi[1], mask, _mm512_extracti64x4_epi64(q, 1));
      }
    } else {
      // Four pixels x 16 channels per zmm.
      const __mmask16 mask = n >= kNR ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << n) - 1);
      __m512i q = PackRows(rq(t0, 0), rq(t0 + kNR, 0), rq(t0 + 2 * kNR, 0),
                           rq(t0 + 3 * kNR, 0), zp16, mn8, mx8, unzip);
      if constexpr (kTable) q = LookupTable(q, rc);
      if (oi[0] != nullptr) _mm_mask_storeu_epi8(oi[0], mask, _mm512_castsi512_si128(q));
      if (oi[1] != nullptr) _mm_mask_storeu_epi8(oi[1], mask, _mm512_extracti32x4_epi32(q, 1));
      if (oi[2] != nullptr) _mm_mask_storeu_epi8(oi[2], mask, _mm512_extracti32x4_epi32(q, 2));
      if (oi[3] != nullptr) _mm_mask_storeu_epi8(oi[3], mask, _mm512_extracti32x4_epi32(q, 3));
    }
  }
}

template <bool kTable, RequantMode kMode>
void SlotEpilogue(const Slot& sl, int u0, int u1) {
  if (sl.nb == 2) StoreTiles<2, kTable, kMode>(sl, u0, u1);
  else StoreTiles<1, kTable, kMode>(sl, u0, u1);
}

// Where the A rows of one image come from: virtual pixel v = oy * vw + ox (ox < out_w is an output
// pixel, the rest are computed and dropped) reads src + oy * a_row + ox * a_px. With vw = a_row /
// a_px (flat) the address is linear in v across rows; else vw is out_w rounded up to 16, and no
// A tile crosses a row.
struct PixelSpace {
  int64_t a_px = 0, a_row = 0;
  int vw = 0, count = 0;  // virtual pixels per row; per image

  PixelSpace(int64_t px, int64_t row, int out_h, int out_w) : a_px(px), a_row(row) {
    const int rows_vw = RoundUp(out_w, kRows);
    const int64_t flat_vw = px > 0 && row % px == 0 ? row / px : 0;
    const int64_t flat_count = flat_vw >= out_w ? (out_h - 1) * flat_vw + out_w : INT64_MAX;
    if (flat_count <= int64_t{out_h} * rows_vw) {
      vw = static_cast<int>(flat_vw);
      count = static_cast<int>(flat_count);
    } else {
      vw = rows_vw;
      count = out_h * rows_vw;
    }
  }
  const int8_t* Address(const int8_t* src, int v) const { return src + (v / vw) * a_row + (v % vw) * a_px; }
  // The output pixel index (raster order) of virtual pixel v, or -1 (task ends only).
  int Real(int v, int out_w) const { return v % vw < out_w ? v / vw * out_w + v % vw : -1; }
};

}  // namespace

void AmxConfigureTiles() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = kTileK;
    cfg.rows[t] = kRows;
  }
  // Not _tile_loadconfig: GCC 12 does not see that builtin read the configuration, and dropped the
  // stores of the rows and column bytes as dead (a zero configuration: the first tile op faults).
  __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
}

namespace {
// Bytes A tiles read past the last staged pixel they start on: a register tile's dropped pixels
// (a_px bytes apart) and a kernel row's K padding (kp per kernel row).
size_t TileOverread(int64_t a_px, int kp) { return static_cast<size_t>(2 * kMR * a_px + kp + 64); }
}  // namespace

size_t AmxStagingSlack(const PackedConvInt8& w) {
  return TileOverread(int64_t{w.geometry_.stride_w} * StagedPixelElems(w), w.k_padded_);
}

bool AmxPays(const ConvGeometry& g) {
  // Per output, AMX costs its epilogue (C tiles stored and reloaded) plus 1/256 of a tdpbssd (~8 ns)
  // per 64-byte K step of each kernel row; AVX-512 VNNI its epilogue plus K / 400 GMAC/s. Measured
  // at 1 thread on the Xeon here (AMX kernels against AVX-512 VNNI, alternating in one process),
  // 1x1 convs at 40x40-80x80: K = 4-16 0.5-1.1x, K = 24 1.07-1.44x, K = 28-32 0.88-1.41x (below
  // 1 only while the core ran at half speed, with AMX hit harder), K = 48 1.55x, K = 64 1.85x;
  // 3x3 convs: 3-4 channels 0.64-1.14x, 8 channels 1.51x, 16 channels 2.3x; the 7x7 3-channel
  // stem 1.41x (an earlier epilogue). Hence AMX from K = 25 on for 1x1s, 8+ channels for 3x3s.
  const int64_t k = int64_t{g.kernel_h} * g.kernel_w * g.in_channels;
  const int64_t steps = int64_t{g.kernel_h} * ((int64_t{g.kernel_w} * g.in_channels + kTileK - 1) / kTileK);
  return 5 * k > 60 + 62 * steps;
}

namespace {

// The K runs of a stride-2 conv's kernel row on the parity planes: column parity px's taps
// kx = px, px + 2, ... read consecutive plane pixels. Their count for parity px:
inline int PhaseTaps(int kernel_w, int px) { return (kernel_w + 1 - px) / 2; }
// 64-byte K steps of that run.
inline int PhaseChunks(const ConvGeometry& g, int px) {
  return (PhaseTaps(g.kernel_w, px) * g.in_channels + kTileK - 1) / kTileK;
}

// amx_phases_ packing: per 16-channel block the parameter rows, then per kernel row ky and column
// parity px the run's weights (tap kx = px + 2j, channel c at K index j * in_channels + c) in the
// tile layout [k/4][16][4], each run padded to whole 64-byte steps with zero weights.
Status PackPhases(PackedConvInt8* w) {
  const ConvGeometry& g = w->geometry_;
  const int cin = g.in_channels, taps = g.kernel_h * g.kernel_w;
  w->nr_ = kNR;
  w->k_padded_ = (PhaseChunks(g, 0) + PhaseChunks(g, 1)) * kTileK;  // per kernel row (SweepTaps)
  const int blocks = (g.out_channels + kNR - 1) / kNR;
  const size_t bb = PackedBlockBytes(*w);
  std::vector<int32_t> folded(g.out_channels);
  FoldedBias(*w, w->quant_.input_zero_point, folded.data());
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * blocks));
  for (int bi = 0; bi < blocks; ++bi) {
    PackParamRows(reinterpret_cast<int32_t*>(base + bi * bb), w->quant_, folded.data(), w->left_shift_.data(),
                  w->right_shift_.data(), bi * kNR, g.out_channels);
    auto* run = reinterpret_cast<int8_t*>(base + bi * bb + kPackParamBytes);
    for (int ky = 0; ky < g.kernel_h; ++ky)
      for (int px = 0; px < 2; ++px) {
        const int k_run = PhaseTaps(g.kernel_w, px) * cin;
        for (int j = 0; j < kNR && bi * kNR + j < g.out_channels; ++j) {
          const int8_t* f = &w->weights_[static_cast<size_t>(bi * kNR + j) * taps * cin];
          for (int k = 0; k < k_run; ++k) {
            const int kx = px + 2 * (k / cin), c = k % cin;
            run[((k / 4) * kNR + j) * 4 + k % 4] = f[(ky * g.kernel_w + kx) * cin + c];
          }
        }
        run += static_cast<size_t>(PhaseChunks(g, px)) * kBTileBytes;
      }
  }
  return Status::Ok();
}

// n bytes (a pixel's channels) by 64-byte vector moves, the last one masked: memcpy per pixel of
// 16 channels made the staging of a 3x3/2 16->32 conv at 160x160 5x slower than the conv.
inline void CopyPixel(int8_t* d, const int8_t* s, int n) {
  for (; n >= 64; n -= 64, s += 64, d += 64) _mm512_storeu_si512(d, _mm512_loadu_si512(s));
  if (n > 0) {
    const __mmask64 m = (~__mmask64{0}) >> (64 - n);
    _mm512_mask_storeu_epi8(d, m, _mm512_maskz_loadu_epi8(m, s));
  }
}

// Padded rows first_row + 2r + py (r < rows) of image b, column parity px, to plane 2 py + px of
// dst ([4][rows][plane_w][in_channels]; plane pixel c is padded column 2c + px); border pixels zp.
void StagePhases(const ConvProblem& p, const int8_t* in, int8_t* dst, int b, int first_row, int rows, int plane_w,
                 int8_t zp) {
  const int cin = p.in.channels;
  const size_t plane = static_cast<size_t>(rows) * plane_w * cin;
  const int8_t* image = in + b * p.in.batch_stride + p.in.channel_offset;
  for (int py = 0; py < 2; ++py)
    for (int r = 0; r < rows; ++r) {
      const int iy = first_row + 2 * r + py - p.pad_top;
      for (int px = 0; px < 2; ++px) {
        int8_t* d = dst + (2 * py + px) * plane + static_cast<size_t>(r) * plane_w * cin;
        if (iy < 0 || iy >= p.in_h) {
          std::memset(d, zp, static_cast<size_t>(plane_w) * cin);
          continue;
        }
        const int8_t* row = image + iy * p.in.row_stride;
        for (int c = 0; c < plane_w; ++c, d += cin) {
          const int ix = 2 * c + px - p.pad_left;
          if (ix < 0 || ix >= p.in_w) std::memset(d, zp, cin);
          else CopyPixel(d, row + ix * p.in.pixel_stride, cin);
        }
      }
    }
}

}  // namespace

Status PackInt8Amx(PackedConvInt8* w) {
  const ConvGeometry& g = w->geometry_;
  w->direct_1x1_ = g.kernel_h == 1 && g.kernel_w == 1;
  w->row_taps_ = !w->direct_1x1_;
  // Planes for 64+ input channels: with fewer, the two parities' runs take more 64-byte steps than
  // one kernel row (3x3 16->32: 6 against 3; the 7x7 RGB stem 14 against 7) and the per-pixel
  // staging costs more (3x3/2 32->64 at 80x80 ran 1.2-1.4x slower on planes, 128->256 at 20x20
  // 1.25-1.4x faster; Xeon, 1 thread).
  w->amx_phases_ = !w->direct_1x1_ && g.stride_h == 2 && g.stride_w == 2 && g.kernel_w > 1 && g.in_channels >= 64;
  if (w->amx_phases_) return PackPhases(w);
  return PackInt8Groups(w, w->quant_.input_zero_point, 4, kTileK);
}

namespace {

template <bool kTable, RequantMode kMode>
Status Conv(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  const ConvGeometry& g = w.geometry_;
  RequantConsts rc = MakeRequantConsts(w.quant_, false, w.fp32_clamp_before_convert_);
  if constexpr (kTable)
    for (int i = 0; i < 4; ++i) rc.table[i] = _mm512_loadu_si512(w.output_table_ + 64 * i);
  const PackedBlocks blocks(w);
  const int kp = w.k_padded_;
  ThreadPool* pool = PoolFor(p, g, kAmxMinParallelMacs);
  // K runs: their offsets from a window's first A row and their 64-byte steps.
  int taps = SweepTaps(w);
  int64_t tap_off[64 * 64];
  int chunks[64 * 64];
  std::fill(chunks, chunks + taps, kp / kTileK);
  const int8_t* src = nullptr;  // the A rows' source: the input (1x1) or the whole staging (KxK, 1 thread)
  const int8_t* src_end = nullptr;  // 1x1: the input buffer's end (tiles that would read past it are copied)
  int64_t img_stride = 0;
  PixelSpace space(0, 0, 1, 1);
  const int sp = StagedPixelElems(w);
  const int64_t row_elems = static_cast<int64_t>(p.padded_w) * sp;
  const int plane_w = (p.padded_w + 1) / 2;  // amx_phases_
  const int64_t plane_row = int64_t{plane_w} * g.in_channels;
  if (w.direct_1x1_) {
    src = in + p.in.channel_offset;
    src_end = in + p.in.buffer_elements;
    img_stride = p.in.batch_stride;
    tap_off[0] = 0;
    space = PixelSpace(int64_t{g.stride_w} * p.in.pixel_stride, int64_t{g.stride_h} * p.in.row_stride, p.out_h, p.out_w);
  } else if (w.amx_phases_) {
    // Output pixel (oy, ox)'s tap (ky, kx) is plane (ky % 2, kx % 2)'s pixel (oy + ky / 2, ox + kx / 2).
    space = PixelSpace(g.in_channels, plane_row, p.out_h, p.out_w);
  } else {
    // Raw int8 rows, border the zero point; kernel row ky of a window starts ky rows further.
    img_stride = row_elems * p.padded_h;
    space = PixelSpace(int64_t{g.stride_w} * sp, int64_t{g.stride_h} * row_elems, p.out_h, p.out_w);
    for (int ky = 0; ky < g.kernel_h; ++ky) tap_off[ky] = ky * row_elems;
  }
  // Several threads, KxK: per-thread bands (below); T to 4T bands of whole output rows, each of two
  // register tiles or more.
  int bands = 0;
  if (!w.direct_1x1_ && pool != nullptr) {
    const int threads = pool->threads();
    bands = std::min(p.out_h, std::max(threads, std::min(4 * threads, space.count / (2 * kMR))));
  }
  // Plane rows per staging (an image, or the largest band).
  const int plane_rows = bands > 0 ? (p.out_h + bands - 1) / bands + (g.kernel_h - 1) / 2 : (p.padded_h + 1) / 2;
  if (w.amx_phases_) {
    img_stride = 4 * plane_rows * plane_row;
    taps = 0;
    for (int ky = 0; ky < g.kernel_h; ++ky)
      for (int px = 0; px < 2; ++px, ++taps) {
        tap_off[taps] = (2 * (ky % 2) + px) * plane_rows * plane_row + (ky / 2) * plane_row;
        chunks[taps] = PhaseChunks(g, px);
      }
  }
  const auto zp = static_cast<int8_t>(w.quant_.input_zero_point);
  // Conv2DInt8Chain's first conv wrote the padded rows (with AmxStagingSlack bytes after them).
  const auto* prestaged = static_cast<const int8_t*>(p.prestaged);
  if (prestaged != nullptr && bands == 0) {
    src = prestaged;
  } else if (!w.direct_1x1_ && bands == 0) {
    const size_t slack = TileOverread(space.a_px, kp);
    const size_t bytes = static_cast<size_t>(img_stride) * p.batch + slack;
    auto* buf = static_cast<int8_t*>(Scratch(bytes));
    if (buf == nullptr) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
    if (w.amx_phases_)
      for (int b = 0; b < p.batch; ++b) StagePhases(p, in, buf + b * img_stride, b, 0, plane_rows, plane_w, zp);
    else
      BuildPadded(p, in, buf, sp, zp, int8_t{0}, [](int8_t v) { return v; });
    std::memset(buf + bytes - slack, 0, slack);
    src = buf;
  }
  const int out_blocks = (g.out_channels + kNR - 1) / kNR;
  int steps = 0;
  for (int t = 0; t < taps; ++t) steps += chunks[t];
  const bool interleave = steps >= kMinInterleaveSteps;
  const bool prefetch_first = PrefetchFirstTiles(p);  // TileProduct's kPrefetch on a sweep's first register tile
  std::atomic<bool> out_of_memory{false};
  // Virtual pixels [v_first, v_end) of image `batch` x output blocks [b0, b1), their A rows read
  // from img, which holds the virtual pixel space from row oy_origin on.
  auto sweep = [&](const int8_t* img, int oy_origin, int batch, int v_first, int v_end, int b0, int b1) {
    int8_t* copy = nullptr;  // 1x1: A tiles whose reads would leave the input buffer, copied
    AmxConfigureTiles();
    // Register tiles alternate between two slots: a tile's epilogue runs between the next tile's K
    // steps (interleave), or after its products are issued.
    Slot slots[2];
    slots[0].rc = slots[1].rc = &rc;
    int cur = 0;
    bool pending = false;  // slots[cur ^ 1] awaits its epilogue
    auto epilogue = [&](const Slot& sl) { SlotEpilogue<kTable, kMode>(sl, 0, SlotUnits(sl)); };
    // Virtual pixel (oy, ox), walked by increments (a division per row was ~20 % of a 1x1 conv
    // with 32 output channels).
    const int out_w = p.out_w, vw = space.vw;
    int oy = v_first / vw, ox = v_first % vw;
    const int64_t o_px = p.out.pixel_stride, o_row = p.out.row_stride;
    int8_t* o_row0 = OutputPixel(p, out, batch, oy, 0);
    for (int v0 = v_first; v0 < v_end; v0 += kMR) {
      const int mb = v0 + kRows < v_end ? 2 : 1;
      const int8_t* a[2];
      int64_t a_stride[2];
      int8_t* o[kMR];
      for (int r = 0; r < kMR; ++r) {
        if (r % kRows == 0) a[r / kRows] = img + (oy - oy_origin) * space.a_row + ox * space.a_px;
        o[r] = v0 + r < v_end && ox < out_w ? o_row0 + ox * o_px : nullptr;
        if (++ox == vw) {
          ox = 0;
          ++oy;
          o_row0 += o_row;
        }
      }
      for (int i = 0; i < mb; ++i) {
        a_stride[i] = space.a_px;
        // The staging has slack for every read; a 1x1 conv's last tiles may read past the input
        // buffer: those copy the tile's output pixels' channels (zero padded).
        if (!w.direct_1x1_ || a[i] + (kRows - 1) * space.a_px + kp <= src_end) continue;
        if (copy == nullptr) copy = static_cast<int8_t*>(Scratch(static_cast<size_t>(2 * kRows) * kp));
        if (copy == nullptr) {
          out_of_memory = true;
          _tile_release();
          return;
        }
        int8_t* d = copy + static_cast<size_t>(i) * kRows * kp;
        std::memset(d, 0, static_cast<size_t>(kRows) * kp);
        for (int r = 0; r < kRows; ++r)
          if (o[kRows * i + r] != nullptr) std::memcpy(d + r * kp, space.Address(img, v0 + kRows * i + r), g.in_channels);
        a[i] = d;
        a_stride[i] = kp;
      }
      for (int bi = b0; bi < b1; bi += 2) {
        Slot& sl = slots[cur];
        const int nb = std::min(2, b1 - bi);
        sl.mb = mb;
        sl.nb = nb;
        sl.n = std::min(nb * kNR, g.out_channels - bi * kNR);
        sl.prm[0] = blocks.params(bi);  // row 0: the bias
        sl.prm[1] = blocks.params(nb > 1 ? bi + 1 : bi);
        const int8_t* w0 = blocks.weights(bi);
        const int8_t* w1 = blocks.weights(nb > 1 ? bi + 1 : bi);
        for (int r = 0; r < kMR; ++r) sl.o[r] = o[r] == nullptr ? nullptr : o[r] + bi * kNR;
        PendingEpilogue pe;
        if (pending && interleave) {
          pe.run = SlotEpilogue<kTable, kMode>;
          pe.slot = &slots[cur ^ 1];
          pe.steps = steps;
        }
        if (prefetch_first && v0 == v_first && mb == 2 && nb == 2)
          TileProduct<2, 2, true>(a, a_stride, tap_off, taps, chunks, w0, w1, sl.prm, sl.acc, pe);
        else if (mb == 2 && nb == 2) TileProduct<2, 2>(a, a_stride, tap_off, taps, chunks, w0, w1, sl.prm, sl.acc, pe);
        else if (mb == 2) TileProduct<2, 1>(a, a_stride, tap_off, taps, chunks, w0, w1, sl.prm, sl.acc, pe);
        else if (nb == 2) TileProduct<1, 2>(a, a_stride, tap_off, taps, chunks, w0, w1, sl.prm, sl.acc, pe);
        else TileProduct<1, 1>(a, a_stride, tap_off, taps, chunks, w0, w1, sl.prm, sl.acc, pe);
        if (pending && !interleave) epilogue(slots[cur ^ 1]);
        pending = true;
        cur ^= 1;
      }
    }
    if (pending) epilogue(slots[cur ^ 1]);
    _tile_release();
    if (p.HasTaskOps()) {
      // The range's output pixels are one run in raster order.
      int first = -1, last = -1;
      for (int v = v_first; v < v_end && first < 0; ++v) first = space.Real(v, p.out_w);
      for (int v = v_end - 1; v >= v_first && last < 0; --v) last = space.Real(v, p.out_w);
      if (first >= 0)
        ApplyTaskOutputOps(p, out, batch, first, last - first + 1, b0 * kNR, std::min(g.out_channels, b1 * kNR));
    }
  };
  if (bands > 0) {
    // KxK convs on several threads: bands of output rows, each task staging the padded rows its
    // band reads into its own scratch and sweeping them at once, as SweepInt8Bands does (one
    // hand-out and no barrier, each core reading what it staged).
    const int max_rows = (p.out_h + bands - 1) / bands;
    const int64_t max_in_rows = int64_t{max_rows - 1} * g.stride_h + g.kernel_h;
    const size_t stage_bytes = static_cast<size_t>(w.amx_phases_ ? img_stride : max_in_rows * row_elems);
    // Slack: a band's last register tile runs up to a row and 31 virtual pixels past its rows.
    const size_t slack = static_cast<size_t>(space.a_row) + TileOverread(space.a_px, kp);
    ParallelFor(pool, p.batch * bands, [&](int task) {
      const int b = task / bands, i = task % bands;
      const int oy0 = EvenSplitFirst(p.out_h, bands, i), oy1 = EvenSplitFirst(p.out_h, bands, i + 1);
      if (prestaged != nullptr) {
        sweep(prestaged + b * img_stride, 0, b, oy0 * space.vw, std::min(oy1 * space.vw, space.count), 0, out_blocks);
        return;
      }
      auto* stage = static_cast<int8_t*>(Scratch(stage_bytes + slack));
      if (stage == nullptr) {
        out_of_memory = true;
        return;
      }
      if (w.amx_phases_) {
        StagePhases(p, in, stage, b, oy0 * g.stride_h, plane_rows, plane_w, zp);
      } else {
        const int first_row = b * p.padded_h + oy0 * g.stride_h;
        const int rows = (oy1 - oy0 - 1) * g.stride_h + g.kernel_h;
        BuildPaddedRows(p, in, stage, sp, zp, int8_t{0}, [](int8_t v) { return v; }, first_row, first_row + rows,
                        first_row);
      }
      std::memset(stage + stage_bytes, 0, slack);
      sweep(stage, oy0, b, oy0 * space.vw, std::min(oy1 * space.vw, space.count), 0, out_blocks);
    }, TaskOrder::kFirstCome);
  } else {
    const int64_t per_pixel = static_cast<int64_t>(taps) * kp;
    const TaskGrid grid(space.count, p.batch, out_blocks, kMR, kMaxChunkPixels<kMR>, int64_t{256 * 1024} / per_pixel,
                        Threads(pool), int64_t{kNR} * per_pixel, per_pixel);
    ParallelFor(pool, grid.tasks, [&](int task) {
      const TaskGrid::Task t = grid.At(task, space.count, out_blocks);
      sweep(src + t.batch * img_stride, 0, t.batch, t.first_pixel, t.first_pixel + t.pixels, t.block_begin, t.block_end);
    });
  }
  if (out_of_memory) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
  return Status::Ok();
}

}  // namespace

Status ConvInt8Amx(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  if (p.out_u8 || p.out_i16 || (p.prestaged != nullptr && (w.direct_1x1_ || w.amx_phases_)))
    return Status::Error(StatusCode::kUnsupported, "the amx conv reads a chain's staging only as raw int8 padded rows");
  const bool table = w.output_table_in_epilogue();
  if (w.quant_.rounding != Rounding::kFp32)
    return table ? Conv<true, kFixed>(w, p, in, out) : Conv<false, kFixed>(w, p, in, out);
  if (w.fp32_clamp_before_convert_)
    return table ? Conv<true, kFp32Clamp>(w, p, in, out) : Conv<false, kFp32Clamp>(w, p, in, out);
  return table ? Conv<true, kFp32>(w, p, in, out) : Conv<false, kFp32>(w, p, in, out);
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
