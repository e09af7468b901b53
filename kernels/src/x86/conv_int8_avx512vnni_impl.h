// The AVX-512 VNNI int8 conv (see conv_int8_avx512vnni.cc), included by the two files that
// compile it: conv_int8_avx512vnni.cc (AVX-512 VNNI) and conv_int8_avx512vnni_table.cc (the
// same plus VBMI: the kTable kernels, which look PackedConvInt8's output table up in their
// epilogue). Each includes it after its `#pragma GCC target`, inside `#if defined(__x86_64__)`;
// everything here has internal linkage.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../sweep.h"
#include "avx512_requant.h"
#include "store_bytes.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kNR = kPackNR;    // channels per packed block (one zmm of int32)
constexpr int kSweepMR = 24;    // pixels per sweep tile, split into register tiles below
// Packed blocks per sweep tile: tiles of 2, 3 and 4 blocks measured the same on Zen 5; 4 stores
// whole 64-byte output rows.
constexpr int kTileBlocks = 4;
// Register tile of NB blocks: 6 x 64 (24 accumulators) or 8 x 48 / 8 x 32 / 8 x 16; with
// PackedConvInt8::k_pairs_ (up to 3 blocks) 24 accumulators of 8 channels x 2 steps: 12 x 16,
// 6 x 32, 4 x 48.
constexpr int RegisterMR(int nb, bool pairs = false) { return pairs ? 12 / nb : nb == 4 ? 6 : 8; }

inline __m512i Bcast8(const void* p) {
  int64_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi64(v);
}

// A block's k_pairs_ accumulators: a holds its even channels, b its odd ones (PackInt8Groups'
// pair_order), lane 2c + s = the channel's dot-product step s. Returns the 16 channel sums in
// order. Shifts and a blend, not two-source permutes: GCC kept the permutes' index vectors in
// registers through the product loop and spilled accumulators.
inline __m512i PairSums(__m512i a, __m512i b) {
  return _mm512_mask_blend_epi32(0xAAAA, _mm512_add_epi32(a, _mm512_srli_epi64(a, 32)),
                                 _mm512_add_epi32(b, _mm512_slli_epi64(b, 32)));
}

// Lanes = pixels of channel ch.
inline __m512i RequantChannel(__m512i x, const int32_t* prm, int ch, const RequantConsts& c) {
  return RequantRows(x, [prm, ch](int r) { return _mm512_set1_epi32(prm[16 * r + ch]); }, c);
}

// Piece `i` (16 bytes) of a zmm, stored to o (n <= 16 bytes).
inline void StorePiece(__m512i v, int i, int8_t* o, int n) {
  __m128i x;
  switch (i) {
    case 0: x = _mm512_castsi512_si128(v); break;
    case 1: x = _mm512_extracti32x4_epi32(v, 1); break;
    case 2: x = _mm512_extracti32x4_epi32(v, 2); break;
    default: x = _mm512_extracti32x4_epi32(v, 3); break;
  }
  StoreBytes16(x, o, n);
}

// Stores the four packed row-blocks of epilogue group g (items g .. g + 3, item = pixel * NB +
// block) of an MR x NB tile: m pixels, n <= NB * 16 channels. With 4 blocks (or 3 and a zero
// slot) the group is one pixel's 64 (48) channels, with 2 blocks two pixels' 32: one (masked)
// store per pixel instead of a 16-byte extract and store per block (the epilogue is ~40 % of a
// 1x1 conv with K = 32).
template <int MR, int NB>
inline void StoreGroup(__m512i q, int g, int m, int8_t* const* o, int n) {
  constexpr int kItems = MR * NB;
  if constexpr (NB == 4) {
    const int i = g / 4;
    if (i >= m) return;
    if (n == 64)
      _mm512_storeu_si512(o[i], q);
    else
      _mm512_mask_storeu_epi8(o[i], (__mmask64{1} << n) - 1, q);
  } else if constexpr (NB == 2) {
    const int i = g / 2;
    const __mmask32 mask = n == 32 ? ~__mmask32{0} : (__mmask32{1} << n) - 1;
    if (i < m) _mm256_mask_storeu_epi8(o[i], mask, _mm512_castsi512_si256(q));
    if (g + 2 < kItems && i + 1 < m) _mm256_mask_storeu_epi8(o[i + 1], mask, _mm512_extracti64x4_epi64(q, 1));
  } else {
    // One block: the group is four pixels' 16 channels. The full case as four plain stores (the
    // general loop's per-piece bounds and switch were ~15 % of a 1x1 16->16 conv).
    if (NB == 1 && n == kNR && g + 4 <= m) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o[g]), _mm512_castsi512_si128(q));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o[g + 1]), _mm512_extracti32x4_epi32(q, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o[g + 2]), _mm512_extracti32x4_epi32(q, 2));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o[g + 3]), _mm512_extracti32x4_epi32(q, 3));
      return;
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const int it = g + k, i = it / NB, j = it % NB;
      if (it >= kItems || i >= m) break;
      const int nj = std::min(kNR, n - j * kNR);
      if (nj > 0) StorePiece(q, k, o[i] + j * kNR, nj);
    }
  }
}

inline __m512i Bcast(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi32(v);
}

// Weights and parameters of the NB adjacent 16-channel packed blocks a tile covers.
template <int NB>
struct TileBlocks {
  const int8_t* w[NB];
  const int32_t* prm[NB];
};

// KernelTile's products: acc[s][i][v] = accumulator set s's share of pixel i's dot products with
// weight vector v (kDirect && !kPairs: set 0 starts at the bias). V = NB vectors of 16 channels x
// 4 bytes, or with kPairs (PackedConvInt8::k_pairs_'s packing) 2 * NB of 8 channels x 8 bytes,
// each step 8 input channels, one 8-byte broadcast per pixel.
template <int MR, int NB, int V, int kSets, bool kDirect, bool kXor, bool kPairs, bool kPrefetch>
__attribute__((always_inline)) inline void Products(const uint8_t* const* a, const int64_t* tap_off, int taps, int kp4,
                                                    const TileBlocks<NB>& b, __m512i (&acc)[kSets][MR][V]) {
  static_assert(V == (kPairs ? 2 * NB : NB), "V weight vectors of NB blocks");
  constexpr int kStep = kPairs ? 8 : 4;  // input channels per step
#pragma GCC unroll 4
  for (int s = 0; s < kSets; ++s)
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v)
        acc[s][i][v] = kDirect && !kPairs && s == 0 ? _mm512_load_si512(b.prm[v]) : _mm512_setzero_si512();
  const int8_t* w[V];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) w[v] = kPairs ? b.w[v / 2] + 64 * (v % 2) : b.w[v];
  const int64_t kp = 4 * int64_t{kp4};  // input channels per tap
  for (int t = 0; t < taps; ++t) {
    const uint8_t* ap[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) ap[i] = a[i] + tap_off[t];
    // One step (kStep input channels from k on) into accumulator set s. k indexes the pixels'
    // bytes and kw = 16 k the weights' (x86 addressing scales by 8 at most): two induction
    // variables for all the pointers. A pointer per weight vector, each bumped per step, had
    // cost 5-6 more scalar ops per 24 vpdpbusd, which Intel cores also issue to the two vector
    // ports (Xeon, in-process A/B: 1x1 and 3x3 convs 1.00-1.19x at 1 thread, 1.06-1.5x at 2).
    auto step = [&](int64_t k, int64_t kw, int s) __attribute__((always_inline)) {
      __m512i wv[V];
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) wv[v] = _mm512_load_si512(w[v] + kw);
      // kPrefetch: a sweep tile's first register tile asks for each weight vector's line 1 KB ahead
      // (16 steps, 8 pair steps): the first pixels to meet a conv's weights take them from L3 or DRAM.
      if constexpr (kPrefetch)
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) _mm_prefetch(reinterpret_cast<const char*>(w[v] + kw + 16 * 64), _MM_HINT_T0);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        // One broadcast per pixel for the V dot products (folding it into each vpdpbusd as a
        // {1to16} memory operand measured slower on Zen 5).
        const __m512i raw = kPairs ? Bcast8(ap[i] + k) : Bcast(ap[i] + k);
        const __m512i x = kXor ? _mm512_xor_si512(raw, _mm512_set1_epi8(-128)) : raw;
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v)
          acc[s][i][v] = kDirect && !kXor ? _mm512_dpbusd_epi32(acc[s][i][v], wv[v], x)
                                          : _mm512_dpbusd_epi32(acc[s][i][v], x, wv[v]);
      }
    };
    int64_t k = 0, kw = 0;
    if constexpr (kSets > 1)
      for (; k + kStep * kSets <= kp; k += kStep * kSets, kw += 16 * kStep * kSets)
#pragma GCC unroll 4
        for (int s = 0; s < kSets; ++s) step(k + kStep * s, kw + 16 * kStep * s, s);
    for (; k < kp; k += kStep, kw += 16 * kStep) step(k, kw, 0);
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) w[v] += 16 * kp;
  }
#pragma GCC unroll 4
  for (int s = 1; s < kSets; ++s)
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[0][i][v] = _mm512_add_epi32(acc[0][i][v], acc[s][i][v]);
}

// MR pixels x NB*16 channels, MR*NB independent accumulators (enough to cover vpdpbusd's latency at
// two per cycle), NB weight loads and MR broadcasts per MR*NB vpdpbusd. kDirect: 1x1 from the
// int8 input (weights w + 128 as the unsigned operand, the int8 activations the signed one;
// corr[i] = 128 * sum(x_i) comes off; kXor: PackedConvInt8::direct_1x1_xor_, the int8 activations'
// sign bit flipped in registers against signed weights, no corr); otherwise uint8 staged
// activations, the taps' offsets from a[i].
// kPairs: PackedConvInt8::k_pairs_'s packing; per 8 input channels 2 * NB weight loads and MR
// 8-byte broadcasts feed 2 * MR * NB vpdpbusd, the two steps' sums added at the end (PairSums).
// Not inlined: inside the sweep's loops GCC spilled accumulators to the stack.
template <int MR, int NB, bool kDirect, bool kXor, bool kTable, bool kPairs = false, bool kPrefetch = false>
__attribute__((noinline)) void KernelTile(int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int kp4,
                       const TileBlocks<NB>& b, const int32_t* corr, const RequantConsts& c,
                       int8_t* const* o, int n) {
  // 1x1: the accumulators start at the bias (one add less per output in the epilogue; measured
  // 3-8 % on short-K 1x1 convs; with kPairs the bias is added to the pair sums). Not with taps:
  // there GCC then kept every accumulator on the stack. Tiles of 1-2 accumulators (a 7x7 image's
  // last pixel) split K over kSets accumulator sets, summed at the end: one chain of dependent
  // vpdpbusd ran at a quarter of the rate. Tiles of up to 8 accumulators (the 7x7 image's last
  // pixel x 4 blocks: 4 chains, ~40 % of the rate) take sets up to ~12 chains.
  constexpr int kV = kPairs ? 2 * NB : NB;
  constexpr int kChains = MR * kV;
  constexpr int kSets = kChains <= 3 ? 4 : kChains <= 4 ? 3 : kChains <= 8 ? 2 : 1;
  __m512i acc[kSets][MR][NB];
  if constexpr (kPairs) {
    __m512i pacc[kSets][MR][kV];
    Products<MR, NB, kV, kSets, kDirect, kXor, kPairs, kPrefetch>(a, tap_off, taps, kp4, b, pacc);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) {
        acc[0][i][j] = PairSums(pacc[0][i][2 * j], pacc[0][i][2 * j + 1]);
        if constexpr (kDirect) acc[0][i][j] = _mm512_add_epi32(acc[0][i][j], _mm512_load_si512(b.prm[j]));
      }
  } else {
    Products<MR, NB, kV, kSets, kDirect, kXor, kPairs, kPrefetch>(a, tap_off, taps, kp4, b, acc);
  }
  // Requantize acc + bias to int32 (fp32: zero point not yet added), then four 16-channel
  // row-blocks at a time: saturating packs to int16 (fp32: + zero point, as XNNPACK) and int8,
  // clamp, and one dword permute that undoes the packs' 128-bit interleave (bit-identical to
  // clamping in int32).
  // 3-block tiles take a fourth, zero slot per pixel: one group of four is then one pixel's 48
  // channels, stored at once (not three 16-byte extracts and stores spread over groups).
  constexpr int kSlots = NB == 3 ? 4 : NB;
  constexpr int kItems = MR * kSlots;
  __m512i r[(kItems + 3) / 4 * 4];
#pragma GCC unroll 64
  for (int it = 0; it < MR * NB; ++it) {
    const int i = it / NB, j = it % NB;
    const __m512i x = kXor      ? acc[0][i][j]
                      : kDirect ? _mm512_sub_epi32(acc[0][i][j], _mm512_set1_epi32(corr[i]))
                                : _mm512_add_epi32(acc[0][i][j], _mm512_load_si512(b.prm[j]));
    r[i * kSlots + j] = Requant(x, b.prm[j], c);
  }
  if constexpr (NB == 3)
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) r[i * 4 + 3] = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int it = kItems; it < (kItems + 3) / 4 * 4; ++it) r[it] = _mm512_setzero_si512();
  const __m512i unzip = UnzipDwords();
#pragma GCC unroll 16
  for (int g = 0; g < kItems; g += 4) {
    __m512i q = _mm512_permutexvar_epi32(unzip, PackClamp4(r[g], r[g + 1], r[g + 2], r[g + 3], c));
    if constexpr (kTable) q = LookupTable(q, c);
    StoreGroup<MR, kSlots>(q, g, m, o, n);
  }
}

// Pixels per row tile (KernelRowTile16).
constexpr int kRowTilePixels = 16;

// Whether a staged conv runs KernelRowTile16 on its runs of 16 pixels within an output row: stride
// 1, rows of 16+, and 16-byte staged pixels (13-16 input channels) into up to 32 channels or
// 32-byte ones (17-32) into up to 16. Zen 4, 1 thread, against the 8 x 16 / 8 x 32 tiles: 3x3
// 16->16 at 80x80 1.14x, 16->32 1.03x, 32->16 1.07x; but 16->64 0.98x, 32->32 1.0x (a tile
// reloads and reshuffles its pixels per block; 32-byte pixels take 24 shuffles per 128 vpdpbusd).
bool RowTilesFit(const PackedConvInt8& w, const ConvProblem& p) {
  return RowTileGeometry(w.geometry_, w.k_padded_) && !w.k_pairs_ && !w.direct_1x1_ && !w.row_taps_ &&
         p.out_w >= kRowTilePixels;
}

// 16 consecutive output pixels of a row x one 16-channel block, transposed: a zmm holds one input
// channel group (4 channels) of the 16 pixels, an accumulator one output channel of them, and the
// weights are {1to16} broadcast operands. The 8 x 16 KernelTile needs a broadcast per pixel and
// group and only 8 accumulators; here a tap's 16 pixels are 256 (512) contiguous staged bytes, and
// four (eight) loads and eight (24) shuffles feed 64 (128) vpdpbusd (3x3 16->16 at 80x80, Zen 4:
// ~75 % of the vpdpbusd peak in KernelTile). kChunks: staged pixel bytes / 16 (k_padded_ 16 or
// 32). a: the first pixel; weights w and parameters prm of the block; o[i]: pixel i's output;
// n <= 16 channels.
template <int kChunks, bool kTable>
__attribute__((noinline)) void KernelRowTile16(const uint8_t* a, const int64_t* tap_off, int taps, const int8_t* w,
                                               const int32_t* prm, const RequantConsts& c, int8_t* const* o, int n) {
  static_assert(kChunks == 1 || kChunks == 2, "16 or 32 staged bytes per pixel");
  // The tap loop in assembly, accumulators in zmm0-15 (started at the bias, stored to acc at the
  // end): from intrinsics GCC 12 loaded every weight with its own vpbroadcastd (not as a {1to16}
  // operand), spilled an accumulator and added ~20 register moves per tap. Per tap, 16 pixels:
  // a_k = pixels 4k .. 4k + 3, one per 128-bit lane, channel groups 0-3 as dwords (with 32-byte
  // pixels b_k the same for groups 4-7, both from lane shuffles of the eight 2-pixel loads); the
  // in-lane 4 x 4 dword transpose of a_0..a_3 leaves group g of pixel 4j + L in lane L, dword j
  // of x_g; then acc[ch] += x_g . w[tap][g][ch] for every g and ch.
  alignas(64) __m512i acc[16];
  {
    const int64_t* tp = tap_off;
    const int8_t* wp = w;
    int64_t t = taps;
#define KCSP_BIAS(ch) "vpbroadcastd " #ch "*4(%[prm]), %%zmm" #ch "\n\t"
#define KCSP_STORE(ch) "vmovdqa64 %%zmm" #ch ", " #ch "*64(%[acc])\n\t"
#define KCSP_DP(g, xreg, ch) "vpdpbusd " #g "*64+" #ch "*4(%[w])%{1to16%}, %%zmm" #xreg ", %%zmm" #ch "\n\t"
#define KCSP_EACH_CHANNEL(M, ...)                                                                             \
  M(__VA_ARGS__ 0) M(__VA_ARGS__ 1) M(__VA_ARGS__ 2) M(__VA_ARGS__ 3) M(__VA_ARGS__ 4) M(__VA_ARGS__ 5)        \
  M(__VA_ARGS__ 6) M(__VA_ARGS__ 7) M(__VA_ARGS__ 8) M(__VA_ARGS__ 9) M(__VA_ARGS__ 10) M(__VA_ARGS__ 11)      \
  M(__VA_ARGS__ 12) M(__VA_ARGS__ 13) M(__VA_ARGS__ 14) M(__VA_ARGS__ 15)
// The in-lane 4 x 4 dword transpose of zmm a0..a3 into x0..x3 through t0..t3.
#define KCSP_TRANSPOSE(a0, a1, a2, a3, t0, t1, t2, t3, x0, x1, x2, x3)           \
  "vpunpckldq %%zmm" #a1 ", %%zmm" #a0 ", %%zmm" #t0 "\n\t"                      \
  "vpunpckhdq %%zmm" #a1 ", %%zmm" #a0 ", %%zmm" #t1 "\n\t"                      \
  "vpunpckldq %%zmm" #a3 ", %%zmm" #a2 ", %%zmm" #t2 "\n\t"                      \
  "vpunpckhdq %%zmm" #a3 ", %%zmm" #a2 ", %%zmm" #t3 "\n\t"                      \
  "vpunpcklqdq %%zmm" #t2 ", %%zmm" #t0 ", %%zmm" #x0 "\n\t"                     \
  "vpunpckhqdq %%zmm" #t2 ", %%zmm" #t0 ", %%zmm" #x1 "\n\t"                     \
  "vpunpcklqdq %%zmm" #t3 ", %%zmm" #t1 ", %%zmm" #x2 "\n\t"                     \
  "vpunpckhqdq %%zmm" #t3 ", %%zmm" #t1 ", %%zmm" #x3 "\n\t"
#define KCSP_LOOP_HEAD                        \
  KCSP_EACH_CHANNEL(KCSP_BIAS, )              \
  "test %[t], %[t]\n\t"                       \
  "jle 2f\n\t"                                \
  "1:\n\t"                                    \
  "mov (%[tp]), %%rcx\n\t"                    \
  "add $8, %[tp]\n\t"                         \
  "add %[a], %%rcx\n\t"
#define KCSP_LOOP_TAIL(wstep)                 \
  "add $" #wstep ", %[w]\n\t"                 \
  "dec %[t]\n\t"                              \
  "jnz 1b\n\t"                                \
  "2:\n\t"                                    \
  KCSP_EACH_CHANNEL(KCSP_STORE, )
#define KCSP_OPERANDS                                                                                         \
  : [tp] "+r"(tp), [w] "+r"(wp), [t] "+r"(t)                                                                  \
  : [a] "r"(a), [prm] "r"(prm), [acc] "r"(acc)                                                                \
  : "rcx", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",  \
    "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", \
    "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "cc", "memory"
    if constexpr (kChunks == 1) {
      __asm__ volatile(
          KCSP_LOOP_HEAD
          "vmovdqu64 (%%rcx), %%zmm20\n\t"
          "vmovdqu64 64(%%rcx), %%zmm21\n\t"
          "vmovdqu64 128(%%rcx), %%zmm22\n\t"
          "vmovdqu64 192(%%rcx), %%zmm23\n\t"
          KCSP_TRANSPOSE(20, 21, 22, 23, 24, 25, 26, 27, 16, 17, 18, 19)
          KCSP_EACH_CHANNEL(KCSP_DP, 0, 16,) KCSP_EACH_CHANNEL(KCSP_DP, 1, 17,)
          KCSP_EACH_CHANNEL(KCSP_DP, 2, 18,) KCSP_EACH_CHANNEL(KCSP_DP, 3, 19,)
          KCSP_LOOP_TAIL(256)
          KCSP_OPERANDS);
    } else {
      // z_j (zmm16-23) = pixels 2j, 2j + 1 (groups 0-3, 4-7, 0-3, 4-7 per lane); a_k (zmm24-27)
      // and b_k (zmm28-31) take lanes 0, 2 and 1, 3 of z_2k and z_2k+1.
      __asm__ volatile(
          KCSP_LOOP_HEAD
          "vmovdqu64 (%%rcx), %%zmm16\n\t"
          "vmovdqu64 64(%%rcx), %%zmm17\n\t"
          "vmovdqu64 128(%%rcx), %%zmm18\n\t"
          "vmovdqu64 192(%%rcx), %%zmm19\n\t"
          "vmovdqu64 256(%%rcx), %%zmm20\n\t"
          "vmovdqu64 320(%%rcx), %%zmm21\n\t"
          "vmovdqu64 384(%%rcx), %%zmm22\n\t"
          "vmovdqu64 448(%%rcx), %%zmm23\n\t"
          "vshufi32x4 $0x88, %%zmm17, %%zmm16, %%zmm24\n\t"
          "vshufi32x4 $0xDD, %%zmm17, %%zmm16, %%zmm28\n\t"
          "vshufi32x4 $0x88, %%zmm19, %%zmm18, %%zmm25\n\t"
          "vshufi32x4 $0xDD, %%zmm19, %%zmm18, %%zmm29\n\t"
          "vshufi32x4 $0x88, %%zmm21, %%zmm20, %%zmm26\n\t"
          "vshufi32x4 $0xDD, %%zmm21, %%zmm20, %%zmm30\n\t"
          "vshufi32x4 $0x88, %%zmm23, %%zmm22, %%zmm27\n\t"
          "vshufi32x4 $0xDD, %%zmm23, %%zmm22, %%zmm31\n\t"
          // groups 0-3 to zmm20-23 (temporaries zmm16-19), 4-7 to zmm28-31 (temporaries zmm24-27)
          KCSP_TRANSPOSE(24, 25, 26, 27, 16, 17, 18, 19, 20, 21, 22, 23)
          KCSP_TRANSPOSE(28, 29, 30, 31, 24, 25, 26, 27, 28, 29, 30, 31)
          KCSP_EACH_CHANNEL(KCSP_DP, 0, 20,) KCSP_EACH_CHANNEL(KCSP_DP, 1, 21,)
          KCSP_EACH_CHANNEL(KCSP_DP, 2, 22,) KCSP_EACH_CHANNEL(KCSP_DP, 3, 23,)
          KCSP_EACH_CHANNEL(KCSP_DP, 4, 28,) KCSP_EACH_CHANNEL(KCSP_DP, 5, 29,)
          KCSP_EACH_CHANNEL(KCSP_DP, 6, 30,) KCSP_EACH_CHANNEL(KCSP_DP, 7, 31,)
          KCSP_LOOP_TAIL(512)
          KCSP_OPERANDS);
    }
#undef KCSP_OPERANDS
#undef KCSP_LOOP_TAIL
#undef KCSP_LOOP_HEAD
#undef KCSP_TRANSPOSE
#undef KCSP_EACH_CHANNEL
#undef KCSP_DP
#undef KCSP_STORE
#undef KCSP_BIAS
  }
  // Channels 4k .. 4k + 3 to bytes: q[k] lane L = pixels 4j + L (j = 0..3) x those 4 channels,
  // transposed in-lane to pixel-major; then lane L of every q[k] into one zmm, whose dword
  // permute gives pixel 4j + L's 16 channels at byte 16 j.
  const __m512i bytes_to_pixel_major =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  __m512i q[4];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const int c0 = 4 * k;
    q[k] = _mm512_shuffle_epi8(PackClamp4(RequantChannel(acc[c0], prm, c0, c), RequantChannel(acc[c0 + 1], prm, c0 + 1, c),
                                          RequantChannel(acc[c0 + 2], prm, c0 + 2, c),
                                          RequantChannel(acc[c0 + 3], prm, c0 + 3, c), c),
                               bytes_to_pixel_major);
  }
  const __m512i u0 = _mm512_shuffle_i32x4(q[0], q[1], 0x44), u1 = _mm512_shuffle_i32x4(q[0], q[1], 0xEE);
  const __m512i u2 = _mm512_shuffle_i32x4(q[2], q[3], 0x44), u3 = _mm512_shuffle_i32x4(q[2], q[3], 0xEE);
  const __m512i lanes[4] = {_mm512_shuffle_i32x4(u0, u2, 0x88), _mm512_shuffle_i32x4(u0, u2, 0xDD),
                            _mm512_shuffle_i32x4(u1, u3, 0x88), _mm512_shuffle_i32x4(u1, u3, 0xDD)};
  const __m512i unzip = UnzipDwords();
#pragma GCC unroll 4
  for (int l = 0; l < 4; ++l) {
    __m512i v = _mm512_permutexvar_epi32(unzip, lanes[l]);
    if constexpr (kTable) v = LookupTable(v, c);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) StorePiece(v, j, o[4 * j + l], n);
  }
}

// 128 * sum of each pixel's in_channels int8 channels (any count), for the direct kernels: per
// 16 pixels, one vpdpbusd(ones, x) accumulator each, then one transposing add tree (lane i =
// pixel i's sum) instead of 16 horizontal reductions.
void PixelCorrections(const int8_t* const* px, int count, int cin, int32_t* out) {
  const __m512i ones = _mm512_set1_epi8(1);
  const int full = cin / 64 * 64;
  const __mmask64 tail = cin == full ? 0 : (__mmask64{1} << (cin - full)) - 1;
  for (int p0 = 0; p0 < count; p0 += 16) {
    const int np = std::min(16, count - p0);
    __m512i v[16];
    for (int i = 0; i < 16; ++i) {
      __m512i acc = _mm512_setzero_si512();
      if (i < np) {
        const int8_t* x = px[p0 + i];
        for (int k = 0; k < full; k += 64) acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512(x + k));
        if (tail) acc = _mm512_dpbusd_epi32(acc, ones, _mm512_maskz_loadu_epi8(tail, x + full));
      }
      v[i] = acc;
    }
    // 16 -> 8: lanes [a0+a2, b0+b2, a1+a3, b1+b3] per 128-bit chunk (a = pixel 2j, b = 2j + 1).
    for (int j = 0; j < 8; ++j)
      v[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * j], v[2 * j + 1]),
                              _mm512_unpackhi_epi32(v[2 * j], v[2 * j + 1]));
    // 8 -> 4: pixels 4j..4j+3 in the lanes of every chunk.
    for (int j = 0; j < 4; ++j)
      v[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(v[2 * j], v[2 * j + 1]),
                              _mm512_unpackhi_epi64(v[2 * j], v[2 * j + 1]));
    // 4 -> 2 -> 1: sum the four chunks, chunk j = pixels 4j..4j+3.
    for (int j = 0; j < 2; ++j)
      v[j] = _mm512_add_epi32(_mm512_shuffle_i32x4(v[2 * j], v[2 * j + 1], 0x88),
                              _mm512_shuffle_i32x4(v[2 * j], v[2 * j + 1], 0xDD));
    const __m512i sums = _mm512_add_epi32(_mm512_shuffle_i32x4(v[0], v[1], 0x88),
                                          _mm512_shuffle_i32x4(v[0], v[1], 0xDD));
    _mm512_mask_storeu_epi32(out + p0, static_cast<__mmask16>((1u << np) - 1), _mm512_slli_epi32(sums, 7));
  }
}

}  // namespace

namespace {

// The sweep over tiles of kTileBlocks packed blocks (PackInt8Vpdpbusd's packing).
template <bool kTable>
Status Sweep(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
             const RequantConsts& c) {
  const PackedBlocks blocks(w);
  const int kp4 = w.k_padded_ / 4;
  const int packed_blocks = (w.geometry_.out_channels + kNR - 1) / kNR;
  const bool prefetch_first = PrefetchFirstTiles(p);  // Products' kPrefetch on a tile's first register tile
  // A sweep tile of m <= 24 pixels x up to 4 blocks runs register tiles of RegisterMR(NB) pixels,
  // then 4-, 2- and 1-pixel kernels for the rest (7x7 images: 49 = 2 x 24 + 1).
  // Packed blocks b0 .. b0 + max_blocks - 1 (those that exist) of pixels a[0 .. m).
  auto tile = [&](auto direct, auto flip, auto pairs, int m, const uint8_t* const* a, const int64_t* tap_off, int taps,
                  int b0, int max_blocks, const int32_t* corr, int8_t* const* o, int n) {
    constexpr bool kDirect = decltype(direct)::value, kXor = decltype(flip)::value, kPairs = decltype(pairs)::value;
    auto run = [&](auto nb) {
      constexpr int kNB = decltype(nb)::value, kMR = RegisterMR(kNB, kPairs);
      TileBlocks<kNB> b;
      for (int j = 0; j < kNB; ++j) {
        b.w[j] = blocks.weights(b0 + j);
        b.prm[j] = blocks.params(b0 + j);
      }
      auto call = [&](auto rows, int i, auto prefetch) {
        constexpr int kRows = decltype(rows)::value;
        KernelTile<kRows, kNB, kDirect, kXor, kTable, kPairs, decltype(prefetch)::value>(
            kRows, a + i, tap_off, taps, kp4, b, kDirect && !kXor ? corr + i : nullptr, c, o + i, n);
      };
      int i = 0;
      if (prefetch_first && kMR <= m) {
        call(std::integral_constant<int, kMR>{}, 0, std::true_type{});
        i = kMR;
      }
      for (; i + kMR <= m; i += kMR) call(std::integral_constant<int, kMR>{}, i, std::false_type{});
      for (; i + 4 <= m; i += 4) call(std::integral_constant<int, 4>{}, i, std::false_type{});
      for (; i + 2 <= m; i += 2) call(std::integral_constant<int, 2>{}, i, std::false_type{});
      for (; i < m; ++i) call(std::integral_constant<int, 1>{}, i, std::false_type{});
    };
    switch (std::min(max_blocks, packed_blocks - b0)) {
      case 4: run(std::integral_constant<int, 4>{}); break;
      case 3: run(std::integral_constant<int, 3>{}); break;
      case 2: run(std::integral_constant<int, 2>{}); break;
      default: run(std::integral_constant<int, 1>{}); break;
    }
  };
  constexpr int kTileNR = kTileBlocks * kNR;
  if (w.direct_1x1_) {
    // direct_1x1_xor_: the activations' sign bit flipped in the tile, nothing taken off per pixel.
    auto direct = [&](auto flip, auto pairs) {
      static const int64_t kNoOffset = 0;
      auto corrections = [] {
        if constexpr (decltype(flip)::value) return nullptr;
        else return PixelCorrections;
      }();
      return SweepInt8Direct1x1<kSweepMR, kTileNR>(
          w, p, in, out, int64_t{64 * 1024}, corrections,
          [&](int m, const int8_t* const* a, const int32_t* corr, int ti, int8_t* const* o, int n) {
            tile(std::true_type{}, flip, pairs, m, reinterpret_cast<const uint8_t* const*>(a), &kNoOffset, 1,
                 ti * kTileBlocks, kTileBlocks, corr, o, n);
          });
    };
    auto flip = [&](auto pairs) {
      return w.direct_1x1_xor_ ? direct(std::true_type{}, pairs) : direct(std::false_type{}, pairs);
    };
    return w.k_pairs_ ? flip(std::true_type{}) : flip(std::false_type{});
  }
  // uint8 x + 128 with border zp + 128: the (zp + 128) * sum(w) correction is in the bias.
  const auto fill = static_cast<uint8_t>(w.quant_.input_zero_point + 128);
  const auto to_u8 = [](int8_t v) { return static_cast<uint8_t>(static_cast<int>(v) + 128); };
  if (RowTilesFit(w, p)) {
    // Tiles of 16 pixels x 16 channels: those inside one row run KernelRowTile16, the rest (a tile
    // across a row's end, the image's last pixels) the 8 x 16 tiles.
    auto rows = [&](auto chunks) {
      constexpr int kChunks = decltype(chunks)::value;
      return SweepInt8<kRowTilePixels, kNR>(
          w, p, in, out, fill, to_u8, int64_t{64 * 1024},
          [&](int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int bi, int8_t* const* o, int n) {
            if (m == kRowTilePixels && a[m - 1] == a[0] + (m - 1) * 16 * kChunks)
              KernelRowTile16<kChunks, kTable>(a[0], tap_off, taps, blocks.weights(bi), blocks.params(bi), c, o, n);
            else
              tile(std::false_type{}, std::false_type{}, std::false_type{}, m, a, tap_off, taps, bi, 1, nullptr, o, n);
          });
    };
    return w.k_padded_ == 16 ? rows(std::integral_constant<int, 1>{}) : rows(std::integral_constant<int, 2>{});
  }
  auto staged = [&](auto pairs) {
    return SweepInt8<kSweepMR, kTileNR>(
        w, p, in, out, fill, to_u8, int64_t{64 * 1024},
        [&](int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int ti, int8_t* const* o, int n) {
          tile(std::false_type{}, std::false_type{}, pairs, m, a, tap_off, taps, ti * kTileBlocks, kTileBlocks, nullptr,
               o, n);
        });
  };
  return w.k_pairs_ ? staged(std::true_type{}) : staged(std::false_type{});
}

// The conv, with PackedConvInt8's output table looked up in the epilogue (kTable) or not.
template <bool kTable>
Status ConvAvx512Vnni(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  RequantConsts c = MakeRequantConsts(w.quant_, p.out_u8, w.fp32_clamp_before_convert_);
  if constexpr (kTable)
    for (int i = 0; i < 4; ++i) c.table[i] = _mm512_loadu_si512(w.output_table_ + 64 * i);
  return Sweep<kTable>(w, p, in, out, c);
}

}  // namespace

}  // namespace internal
}  // namespace keras_csp
