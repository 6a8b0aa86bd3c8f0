#pragma once
// The AVX-512 micro-kernel behind ops::cpu::gemm_offsets for float (see gemm.hpp for the operand
// layout and the block loops that call it). Compiled only when the compiler targets AVX-512
// (-mavx512f or -march=native on such a machine); otherwise `available` is false and gemm.hpp
// uses its portable kernel.
//
// Tile: MR (<= 8) rows of C by 32 columns = 2 x MR zmm accumulators. Per k: two loads of B (masked
// at the right edge), MR broadcasts of A, 2 MR FMAs. With MR = 8 that is 16 independent FMA chains,
// enough to hide the FMA latency on two pipes.
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "minicnn/ops/cpu/lanes.hpp"

namespace minicnn::ops::cpu::avx512 {

#if defined(__AVX512F__)

inline constexpr bool available = true;

template <int MR>
inline void tile(std::int64_t depth, const float* const* a_row, const std::int64_t* a_cols, const float* b,
                 const std::int64_t* b_rows, __mmask16 mask_low, __mmask16 mask_high, float* c, std::int64_t ldc,
                 bool accumulate) {
  // Every loop over r is fully unrolled so the accumulators live in registers (a loop the
  // compiler does not unroll makes it keep the arrays on the stack and spill on every k).
  __m512 acc_low[MR], acc_high[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    acc_low[r] = _mm512_setzero_ps();
    acc_high[r] = _mm512_setzero_ps();
    // The tile of C read at the end, on its way to L1 while the products run.
    if (accumulate) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
    }
  }
  for (std::int64_t k = 0; k < depth; ++k) {
    const float* b_row = b + b_rows[k];
    const __m512 b_low = _mm512_maskz_loadu_ps(mask_low, b_row);
    const __m512 b_high = _mm512_maskz_loadu_ps(mask_high, b_row + 16);
    const std::int64_t a_col = a_cols[k];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(a_row[r][a_col]);
      acc_low[r] = _mm512_fmadd_ps(a, b_low, acc_low[r]);
      acc_high[r] = _mm512_fmadd_ps(a, b_high, acc_high[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* c_row = c + r * ldc;
    if (accumulate) {
      acc_low[r] = _mm512_add_ps(acc_low[r], _mm512_maskz_loadu_ps(mask_low, c_row));
      acc_high[r] = _mm512_add_ps(acc_high[r], _mm512_maskz_loadu_ps(mask_high, c_row + 16));
    }
    _mm512_mask_storeu_ps(c_row, mask_low, acc_low[r]);
    _mm512_mask_storeu_ps(c_row + 16, mask_high, acc_high[r]);
  }
}

template <int MR>
inline void tile_rows(int rows, std::int64_t depth, const float* const* a_row, const std::int64_t* a_cols, const float* b,
                      const std::int64_t* b_rows, __mmask16 mask_low, __mmask16 mask_high, float* c,
                      std::int64_t ldc, bool accumulate) {
  if constexpr (MR > 1) {
    if (rows < MR)
      return tile_rows<MR - 1>(rows, depth, a_row, a_cols, b, b_rows, mask_low, mask_high, c, ldc, accumulate);
  }
  tile<MR>(depth, a_row, a_cols, b, b_rows, mask_low, mask_high, c, ldc, accumulate);
}

// One block of C for gemm.hpp's driver: `rows` (<= 8) rows by `cols` (<= 32) columns, summed
// over `depth` taps. The pointers are already advanced to the block: a_rows to its first row,
// a_cols and b_rows to its first tap, b to its first column, c to its top-left element.
inline void block(int rows, std::int64_t cols, std::int64_t depth, const float* a, const std::int64_t* a_rows,
                  const std::int64_t* a_cols, const float* b, const std::int64_t* b_rows, float* c, std::int64_t ldc,
                  bool accumulate) {
  constexpr int mr = 8;
  const __mmask16 mask_low = first_lanes(cols), mask_high = first_lanes(cols - 16);
  const float* a_row[mr];
  for (int r = 0; r < rows; ++r) a_row[r] = a + a_rows[r];
  tile_rows<mr>(rows, depth, a_row, a_cols, b, b_rows, mask_low, mask_high, c, ldc, accumulate);
}

#else

inline constexpr bool available = false;

// Declared only so that gemm.hpp's discarded `if constexpr` branch names it; never defined
// (every translation unit of a program must be built for the same instruction set).
inline void block(int rows, std::int64_t cols, std::int64_t depth, const float* a, const std::int64_t* a_rows,
                  const std::int64_t* a_cols, const float* b, const std::int64_t* b_rows, float* c, std::int64_t ldc,
                  bool accumulate);

#endif

}  // namespace minicnn::ops::cpu::avx512
