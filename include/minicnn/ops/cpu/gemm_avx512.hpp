#pragma once
// The AVX-512 micro-kernel behind ops::cpu::gemm_offsets for float (see gemm.hpp for the operand
// layout). Compiled only when the compiler targets AVX-512 (-mavx512f or -march=native on such a
// machine); otherwise `available` is false and gemm.hpp uses its portable kernel.
//
// Tile: MR (<= 8) rows of C by 32 columns = 2 x MR zmm accumulators. Per k: two loads of B (masked
// at the right edge), MR broadcasts of A, 2 MR FMAs. With MR = 8 that is 16 independent FMA chains,
// enough to hide the FMA latency on two pipes.
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

// C (+)= A B for the offset-addressed operands of gemm.hpp's OffsetGemm; depth blocks of `kc`.
template <typename T>
void gemm_offsets(std::int64_t M, std::int64_t N, std::int64_t K, const T* a, const std::int64_t* a_rows,
                  const std::int64_t* a_cols, const T* b, const std::int64_t* b_rows, T* c, std::int64_t ldc,
                  bool accumulate, std::int64_t kc) {
  static_assert(sizeof(T) == sizeof(float), "the AVX-512 kernel is for float");
  constexpr std::int64_t mr = 8, nr = 32;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t n = 0; n < N; ++n) c[m * ldc + n] = 0.0f;
    return;
  }
  for (std::int64_t k0 = 0; k0 < K; k0 += kc) {
    const std::int64_t depth = K - k0 < kc ? K - k0 : kc;
    const bool add = accumulate || k0 > 0;
    for (std::int64_t n0 = 0; n0 < N; n0 += nr) {
      const std::int64_t cols = N - n0 < nr ? N - n0 : nr;
      const auto mask_low = static_cast<__mmask16>(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
      const auto mask_high = static_cast<__mmask16>(cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (1u << (cols - 16)) - 1u);
      for (std::int64_t m0 = 0; m0 < M; m0 += mr) {
        const int rows = static_cast<int>(M - m0 < mr ? M - m0 : mr);
        const float* a_row[mr];
        for (int r = 0; r < rows; ++r) a_row[r] = a + a_rows[m0 + r];
        tile_rows<static_cast<int>(mr)>(rows, depth, a_row, a_cols + k0, b + n0, b_rows + k0, mask_low, mask_high,
                                        c + m0 * ldc + n0, ldc, add);
      }
    }
  }
}

#else

inline constexpr bool available = false;

// Declared only so that gemm.hpp's discarded `if constexpr` branch names it; never defined.
template <typename T>
void gemm_offsets(std::int64_t M, std::int64_t N, std::int64_t K, const T* a, const std::int64_t* a_rows,
                  const std::int64_t* a_cols, const T* b, const std::int64_t* b_rows, T* c, std::int64_t ldc,
                  bool accumulate, std::int64_t kc);

#endif

}  // namespace minicnn::ops::cpu::avx512
