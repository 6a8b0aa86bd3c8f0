#pragma once
// Matrix transposition for the convolution kernels, which move data between the image layout
// [channels, positions] and the GEMM's [positions, channels]: 16 x 16 blocks transposed in
// AVX-512 registers when the compiler targets AVX-512 and T is float (the edges with masked loads
// and stores), plain loops everywhere else. Both give the same bits (a copy, at most one addition per element, and
// optionally the ReLU of ops/kernels/elementwise.hpp).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "minicnn/ops/cpu/lanes.hpp"
#include "minicnn/ops/kernels/elementwise.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace minicnn::ops::cpu {

namespace detail {

#if defined(__AVX512F__)
// dst[j * ld_dst + i] = src[i * ld_src + j] + shift[j] (shift may be null), i, j < 16, then
// kernels::relu when rectify: x where !(x <= 0) (NaN included), else +0 (-0 included); with
// row_sums, row_sums[i] += each stored dst[j * ld_dst + i] in the order of j.
// The first `rows` x `cols` of a block (an edge of the matrix): masked loads and stores touch
// nothing outside them; the lanes past the edge carry zeros through the shuffles.
inline void transpose_block16(const float* src, std::int64_t ld_src, float* dst, std::int64_t ld_dst,
                              const float* shift, bool rectify, float* row_sums, int rows = 16, int cols = 16) {
  __m512 r[16], t[16];
  const __mmask16 row_mask = first_lanes(cols), column_mask = first_lanes(rows);
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(row_mask, src + i * ld_src) : _mm512_setzero_ps();
  // Within each 128-bit lane L: t[2i] = rows 2i, 2i+1 at columns 4L, 4L+1; t[2i+1] at 4L+2, 4L+3.
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4g + j], lane L = column 4L + j of rows 4g .. 4g+3.
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    const __m512d low = _mm512_castps_pd(t[4 * g]), high = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d low2 = _mm512_castps_pd(t[4 * g + 2]), high2 = _mm512_castps_pd(t[4 * g + 3]);
    r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(low, low2));
    r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(low, low2));
    r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(high, high2));
    r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(high, high2));
  }
  // Column 4L + j gathers lane L of r[j], r[4 + j], r[8 + j], r[12 + j].
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512 ab01 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44), ab23 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xEE);
    const __m512 cd01 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44);
    const __m512 cd23 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xEE);
    t[j] = _mm512_shuffle_f32x4(ab01, cd01, 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(ab01, cd01, 0xDD);
    t[8 + j] = _mm512_shuffle_f32x4(ab23, cd23, 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(ab23, cd23, 0xDD);
  }
  __m512 sums = row_sums ? _mm512_maskz_loadu_ps(column_mask, row_sums) : _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) {
    if (j >= cols) break;
    __m512 value = shift ? _mm512_add_ps(t[j], _mm512_set1_ps(shift[j])) : t[j];
    // _CMP_NLE_UQ is true for x > 0 and for NaN; the zero-masked move writes +0 elsewhere.
    if (rectify) value = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(value, _mm512_setzero_ps(), _CMP_NLE_UQ), value);
    _mm512_mask_storeu_ps(dst + j * ld_dst, column_mask, value);
    if (row_sums) sums = _mm512_add_ps(sums, value);
  }
  if (row_sums) _mm512_mask_storeu_ps(row_sums, column_mask, sums);
}
#endif

}  // namespace detail

// dst[j, i] = src[i, j] + shift[j] (shift may be null) for i < rows, j < cols, then
// kernels::relu when rectify; row-major with leading dimensions ld_src and ld_dst (ld_dst may be
// negative: dst's rows then run upwards from dst). With row_sums (may be null), also
// row_sums[i] += dst[j, i] for j = 0, 1, .. in that order: the sum of each source row as a plain
// loop over it would add it (the conv bias gradient, at no pass of its own).
template <typename T>
void transpose(std::int64_t rows, std::int64_t cols, const T* src, std::int64_t ld_src, T* dst, std::int64_t ld_dst,
               const T* shift = nullptr, bool rectify = false, T* row_sums = nullptr) {
  constexpr std::int64_t block = 16;
#if defined(__AVX512F__)
  if constexpr (std::is_same<T, float>::value) {  // every block in registers, the edges masked
    for (std::int64_t i0 = 0; i0 < rows; i0 += block)
      for (std::int64_t j0 = 0; j0 < cols; j0 += block)
        detail::transpose_block16(src + i0 * ld_src + j0, ld_src, dst + j0 * ld_dst + i0, ld_dst,
                                  shift ? shift + j0 : nullptr, rectify, row_sums ? row_sums + i0 : nullptr,
                                  static_cast<int>(std::min(block, rows - i0)),
                                  static_cast<int>(std::min(block, cols - j0)));
    return;
  }
#endif
  // Elsewhere in blocks of 16 rows, whose source rows stay in L1 while each column is written.
  for (std::int64_t i0 = 0; i0 < rows; i0 += block) {
    const std::int64_t i1 = std::min(rows, i0 + block);
    for (std::int64_t j = 0; j < cols; ++j) {
      for (std::int64_t i = i0; i < i1; ++i) {
        T value = shift ? src[i * ld_src + j] + shift[j] : src[i * ld_src + j];
        if (rectify) value = kernels::relu(value);
        dst[j * ld_dst + i] = value;
        if (row_sums) row_sums[i] += value;
      }
    }
  }
}

}  // namespace minicnn::ops::cpu
