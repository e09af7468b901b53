// The AVX-512 int8 requantization epilogue shared by the AVX-512 VNNI conv
// (conv_int8_avx512vnni_impl.h), depthwise (depthwise_int8_avx512vnni.cc) and grouped
// (grouped_int8_avx512vnni.cc) kernels: int32
// accumulators to int8, bit-exact to TFLite's fixed-point MultiplyByQuantizedMultiplier (ties away
// from zero or up) and to XNNPACK's fp32 requantization. Include it after the file's
// `#pragma GCC target` (AVX-512 F/BW), inside `#if defined(__x86_64__)`; everything here has
// internal linkage.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "keras_csp/conv.h"

namespace keras_csp {
namespace internal {
namespace {

struct RequantConsts {
  __m512i zp32;            // fixed point: output zero point, added in int32 (wrapping, as TFLite)
  __m512i zp16;            // fp32: output zero point, int16 lanes, added after the first pack
  __m512i mn8, mx8;        // activation range, int8 lanes
  bool u8_out;      // write x + 128 as uint8 (ConvProblem::out_u8): zp16 and the bounds hold the +128
  __mmask16 away;  // all ones: ties away from zero (reference); zero: ties up (optimized TFLite)
  bool fp32;        // XNNPACK's fp32 requantization; the multiplier row holds the float scales
  bool clamp;       // fp32: clamp before the conversion (PackedConvInt8::fp32_clamp_before_convert_)
  __m512 fmax;      // fp32: upper output bound relative to the zero point (keeps vcvtps2dq in range)
  __m512i table[4];  // kTable kernels: PackedConvInt8's output table, 64 entries per zmm
};

// The constants of an epilogue writing `quant`'s outputs (as uint8 x + 128 with u8_out);
// clamp: RequantConsts::clamp. The kTable kernels load `table` themselves.
inline RequantConsts MakeRequantConsts(const Int8QuantParams& quant, bool u8_out, bool clamp) {
  RequantConsts c;
  const bool fp32 = quant.rounding == Rounding::kFp32;
  const int u8 = u8_out ? 128 : 0;
  c.zp32 = _mm512_set1_epi32(quant.output_zero_point);
  c.u8_out = u8_out;
  c.zp16 = _mm512_set1_epi16(static_cast<int16_t>((fp32 ? quant.output_zero_point : 0) + u8));
  c.mn8 = _mm512_set1_epi8(static_cast<char>(quant.act_min + u8));
  c.mx8 = _mm512_set1_epi8(static_cast<char>(quant.act_max + u8));
  c.away = quant.rounding == Rounding::kAwayFromZero ? 0xFFFF : 0;
  c.fp32 = fp32;
  c.clamp = clamp;
  c.fmax = _mm512_set1_ps(static_cast<float>(quant.act_max - quant.output_zero_point));
  return c;
}

// TFLite fixed-point requantization (MultiplyByQuantizedMultiplier) of x = acc + bias, plus the
// zero point in int32: it wraps there like the reference's int32 add (extreme multipliers).
inline __m512i RequantFixed(__m512i x, __m512i mult, __m512i lsh, __m512i rsh, const RequantConsts& c) {
  x = _mm512_sllv_epi32(x, lsh);
  const __m512i nudge = _mm512_set1_epi64(int64_t{1} << 30);
  __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, mult), nudge);
  __m512i odd = _mm512_add_epi64(
      _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(mult, 32)), nudge);
  even = _mm512_srli_epi64(even, 31);
  odd = _mm512_slli_epi64(odd, 1);
  const __m512i h = _mm512_mask_blend_epi32(0xAAAA, even, odd);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, rsh), one);
  const __m512i rem = _mm512_and_si512(h, mask);
  const __m512i half = _mm512_srli_epi32(mask, 1);
  const __m512i thr =
      _mm512_mask_add_epi32(half, _mm512_cmplt_epi32_mask(h, _mm512_setzero_si512()) & c.away, half, one);
  const __m512i r = _mm512_srav_epi32(h, rsh);
  return _mm512_add_epi32(_mm512_mask_add_epi32(r, _mm512_cmpgt_epi32_mask(rem, thr), r, one), c.zp32);
}

// XNNPACK's fp32 requantization of x = acc + bias before the zero point: scale, upper clamp (so the
// conversion cannot overflow; below, INT_MIN saturates the same way), round to nearest even.
// kClamp: RequantConsts::clamp.
template <bool kClamp>
inline __m512i RequantFp32(__m512i x, __m512i scale, const RequantConsts& c) {
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(x), _mm512_castsi512_ps(scale));
  if (kClamp) f = _mm512_min_ps(f, c.fmax);
  return _mm512_cvtps_epi32(f);
}

// x requantized the way c says. row(r): parameter row r (1 multiplier / scale, 2 left shift, 3
// right shift) for x's lanes.
template <typename Row>
inline __m512i RequantRows(__m512i x, Row row, const RequantConsts& c) {
  const __m512i mult = row(1);
  if (c.fp32) return c.clamp ? RequantFp32<true>(x, mult, c) : RequantFp32<false>(x, mult, c);
  return RequantFixed(x, mult, row(2), row(3), c);
}

// Lanes = the block's 16 channels.
inline __m512i Requant(__m512i x, const int32_t* prm, const RequantConsts& c) {
  return RequantRows(x, [prm](int r) { return _mm512_load_si512(prm + 16 * r); }, c);
}

// Four requantized int32 vectors to int8 (uint8 with c.u8_out) in the lanes' 128-bit interleave:
// saturating packs to int16 (fp32: + zero point, as XNNPACK), to int8, then the clamp
// (bit-identical to clamping in int32). Result lane L = [r0 L, r1 L, r2 L, r3 L], 4 bytes each.
// kU8: RequantConsts::u8_out known at compile time; zp16, mn8 and mx8 its fields (in registers).
template <bool kU8>
inline __m512i PackClamp4(__m512i r0, __m512i r1, __m512i r2, __m512i r3, __m512i zp16, __m512i mn8, __m512i mx8) {
  const __m512i p0 = _mm512_adds_epi16(_mm512_packs_epi32(r0, r1), zp16);
  const __m512i p1 = _mm512_adds_epi16(_mm512_packs_epi32(r2, r3), zp16);
  // uint8 x + 128: packus of (x + zp + 128) equals packs of (x + zp), plus 128 (both saturate).
  return kU8 ? _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(p0, p1), mn8), mx8)
             : _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(p0, p1), mn8), mx8);
}
inline __m512i PackClamp4(__m512i r0, __m512i r1, __m512i r2, __m512i r3, const RequantConsts& c) {
  return c.u8_out ? PackClamp4<true>(r0, r1, r2, r3, c.zp16, c.mn8, c.mx8)
                  : PackClamp4<false>(r0, r1, r2, r3, c.zp16, c.mn8, c.mx8);
}

// The dword permute that undoes PackClamp4's 128-bit interleave: dword 4j + k <- dword 4k + j, so
// the 64 bytes are its four inputs' 16 bytes in turn (the conv kernels' one-store-per-pixel epilogues).
inline __m512i UnzipDwords() { return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15); }

// The output table looked up on 64 output bytes (entry i for input byte i): vpermt2b takes an
// index's low 7 bits, so one lookup covers entries 0-127, the other 128-255, and the byte's top
// bit picks between them. AVX-512 VBMI: only the files compiled with it define KCSP_VBMI_TABLE
// (conv_int8_avx512vnni_table.cc, conv_int8_amx.cc) and compile the kTable kernels that call it.
#if defined(KCSP_VBMI_TABLE)
inline __m512i LookupTable(__m512i q, const RequantConsts& c) {
  const __m512i lo = _mm512_permutex2var_epi8(c.table[0], q, c.table[1]);
  const __m512i hi = _mm512_permutex2var_epi8(c.table[2], q, c.table[3]);
  return _mm512_mask_blend_epi8(_mm512_movepi8_mask(q), lo, hi);
}
#else
inline __m512i LookupTable(__m512i q, const RequantConsts&) { return q; }  // never called
#endif

// The epilogue of the kernels whose four accumulators hold a 64-channel block in PackClamp4's lane
// order (the depthwise and grouped kernels: quarter q's lane j is channel 16 * (j / 4) + 4 * q + j % 4,
// its parameter rows at prm + 64 * q): requantized, packed back into channel order, stored (the
// first n channels unless kFull).
template <bool kFull>
inline void StoreQuarters(const __m512i* acc, const int32_t* prm, const RequantConsts& c, int8_t* o, int oc0, int n) {
  __m512i r[4];
  for (int q = 0; q < 4; ++q) r[q] = Requant(acc[q], prm + 64 * q, c);
  const __m512i bytes = PackClamp4(r[0], r[1], r[2], r[3], c);
  if (kFull)
    _mm512_storeu_si512(o + oc0, bytes);
  else
    _mm512_mask_storeu_epi8(o + oc0, (~__mmask64{0}) >> (64 - n), bytes);
}

}  // namespace
}  // namespace internal
}  // namespace keras_csp
