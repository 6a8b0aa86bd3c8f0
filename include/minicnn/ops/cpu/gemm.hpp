#pragma once
// Single-threaded GEMMs. Callers parallelise around them (over images), so they must never
// start threads of their own.
//
// Two entry points:
//   gemm(...)          the BLAS-like row-major product, on Eigen (used by the small linear layers
//                      and kept as the portable reference);
//   gemm_offsets(...)  the convolution core: a product whose operands are addressed through
//                      row-offset tables, so a convolution can read a padded image directly as the
//                      im2col matrix ("implicit im2col", no copy). Register-blocked micro-kernel:
//                      AVX-512 intrinsics when the compiler targets AVX-512 (ops/cpu/gemm_avx512.hpp),
//                      else portable C++ that the compiler vectorises.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "minicnn/ops/cpu/gemm_avx512.hpp"

namespace minicnn::ops::cpu {

// C[M, N] = alpha * op(A) * op(B) + beta * C, all row-major with leading dimensions lda, ldb,
// ldc; op(X) is X or its transpose. beta == 0 overwrites C (NaNs in C do not propagate).
template <typename T>
void gemm_eigen(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
                std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ColMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  using Stride = Eigen::OuterStride<>;
  if (M == 0 || N == 0) return;
  Eigen::Map<RowMajor, 0, Stride> c(C, M, N, Stride(ldc));
  if (beta == T(0)) c.setZero();
  else if (beta != T(1)) c *= beta;
  if (K == 0) return;
  // A transposed row-major matrix is the same memory read as column-major.
  auto run = [&](const auto& a) {
    if (trans_b) c.noalias() += alpha * a * Eigen::Map<const ColMajor, 0, Stride>(B, K, N, Stride(ldb));
    else c.noalias() += alpha * a * Eigen::Map<const RowMajor, 0, Stride>(B, K, N, Stride(ldb));
  };
  if (trans_a) run(Eigen::Map<const ColMajor, 0, Stride>(A, M, K, Stride(lda)));
  else run(Eigen::Map<const RowMajor, 0, Stride>(A, M, K, Stride(lda)));
}

template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
          std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  gemm_eigen(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// The operands of C (+)= A B with
//   A(m, k) = a[a_rows[m] + a_cols[k]]      a_rows: M offsets, a_cols: K offsets
//   B(k, n) = b[b_rows[k] + n]              b_rows: K offsets, each row contiguous along n
//             or, with b_strip > 0, b[(n / gemm_nr) b_strip + b_rows[k] + n % gemm_nr]:
//             B stored as strips of gemm_nr columns, b_strip apart (see packed_strip_index)
//   C(m, n) = c[m * ldc + n]
// A plain row-major A has a_rows[m] = m * lda and a_cols[k] = k. A convolution reads its padded
// image as A: row m is an output position (h * padded_width + w), column k a tap
// (c * plane + kh * padded_width + kw), so the im2col matrix is never written (see conv.hpp).
template <typename T>
struct OffsetGemm {
  std::int64_t M = 0, N = 0, K = 0;
  const T* a = nullptr;
  const std::int64_t* a_rows = nullptr;
  const std::int64_t* a_cols = nullptr;
  const T* b = nullptr;
  const std::int64_t* b_rows = nullptr;
  T* c = nullptr;
  std::int64_t ldc = 0;
  std::int64_t b_strip = 0;  // 0: B's rows contiguous along n; else the distance between its strips
  bool accumulate = false;  // false: C = A B; true: C += A B
  // Memory the caller reads next (a convolution's next image and its gradient), fetched into
  // the cache a slice per tile while the product computes: reading it afterwards then waits on
  // no memory. Nothing else is done with it; empty ranges fetch nothing.
  struct Range {
    const void* begin = nullptr;
    std::int64_t bytes = 0;
  };
  Range prefetch[2];
};

// Register tile of the portable kernel: MR rows of C by NR columns (two AVX-512 vectors of
// floats), as in the AVX-512 one.
inline constexpr std::int64_t gemm_mr = 8;
inline constexpr std::int64_t gemm_nr = 32;
// Depth block: a [gemm_kc x gemm_nr] strip of B stays in L1 (32 KB of floats) while every
// row panel of A passes over it.
inline constexpr std::int64_t gemm_kc = 256;

// B as strips: the [K, gemm_nr] blocks of columns one after the other, so that the block the
// micro-kernel walks down is contiguous. A B with 64 columns stored row by row puts a strip's
// rows 256 bytes apart, on a quarter of L1's sets, where a depth block (192 rows x 2 lines) no
// longer fits their ways: the strips measured 86% -> 95% of peak on conv3-4's weight gradient.
// Element (k, n) of a [K, N] matrix so stored (b_rows[k] = k gemm_nr, b_strip = K gemm_nr):
inline std::int64_t packed_strip_index(std::int64_t k, std::int64_t n, std::int64_t K) {
  return (n / gemm_nr) * K * gemm_nr + k * gemm_nr + n % gemm_nr;
}
inline std::int64_t packed_strips_size(std::int64_t K, std::int64_t N) {
  return (N + gemm_nr - 1) / gemm_nr * K * gemm_nr;
}

namespace detail {

// The first column n0 (a multiple of gemm_nr) of B, as the kernels read it: b + b_rows[k] is
// then row k of the gemm_nr columns from n0.
template <typename T>
const T* b_columns(const OffsetGemm<T>& p, std::int64_t n0) {
  return p.b_strip > 0 ? p.b + n0 / gemm_nr * p.b_strip : p.b + n0;
}

// Offsets of the rows of a dense [count, width] matrix (a_rows or b_rows of a plain operand;
// width 1: the identity, a plain A's a_cols).
inline void dense_rows(std::int64_t count, std::int64_t width, std::vector<std::int64_t>& rows) {
  rows.resize(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) rows[static_cast<std::size_t>(i)] = i * width;
}

// Splits K into equal blocks of at most gemm_kc.
inline std::int64_t depth_block(std::int64_t K) {
  const std::int64_t blocks = (K + gemm_kc - 1) / gemm_kc;
  return blocks > 0 ? (K + blocks - 1) / blocks : 0;
}

// One MR x NR tile (rows < MR and cols < NR at the edges), K = depth, in plain C++.
template <typename T, int MR>
void portable_tile(const OffsetGemm<T>& p, std::int64_t m0, std::int64_t n0, std::int64_t cols, std::int64_t k0,
                   std::int64_t depth, bool accumulate) {
  T acc[MR][gemm_nr] = {};
  const T* a_row[MR];
  for (int r = 0; r < MR; ++r) a_row[r] = p.a + p.a_rows[m0 + r];
  for (std::int64_t k = 0; k < depth; ++k) {
    const T* b_row = b_columns(p, n0) + p.b_rows[k0 + k];
    T b_vals[gemm_nr] = {};
    for (std::int64_t j = 0; j < cols; ++j) b_vals[j] = b_row[j];
    for (int r = 0; r < MR; ++r) {
      const T a_val = a_row[r][p.a_cols[k0 + k]];
      for (std::int64_t j = 0; j < gemm_nr; ++j) acc[r][j] += a_val * b_vals[j];
    }
  }
  for (int r = 0; r < MR; ++r) {
    T* c_row = p.c + (m0 + r) * p.ldc + n0;
    if (accumulate)
      for (std::int64_t j = 0; j < cols; ++j) c_row[j] += acc[r][j];
    else
      for (std::int64_t j = 0; j < cols; ++j) c_row[j] = acc[r][j];
  }
}

template <typename T, int MR>
void portable_tile_rows(int rows, const OffsetGemm<T>& p, std::int64_t m0, std::int64_t n0, std::int64_t cols,
                        std::int64_t k0, std::int64_t depth, bool accumulate) {
  if constexpr (MR > 1) {
    if (rows < MR) return portable_tile_rows<T, MR - 1>(rows, p, m0, n0, cols, k0, depth, accumulate);
  }
  portable_tile<T, MR>(p, m0, n0, cols, k0, depth, accumulate);
}

// The cache lines of an OffsetGemm's prefetch ranges, spread evenly over its `tiles` tiles: the
// t-th call of next() fetches the lines up to (t + 1) lines / tiles of each range, counted by
// additions (a division per tile cost a short product's tiles several percent).
class PrefetchSpread {
 public:
  template <typename T>
  PrefetchSpread(const OffsetGemm<T>& p, std::int64_t tiles) : tiles_(tiles) {
    for (int r = 0; r < 2; ++r) {
      begin_[r] = static_cast<const char*>(p.prefetch[r].begin);
      lines_[r] = begin_[r] ? (p.prefetch[r].bytes + line_bytes - 1) / line_bytes : 0;
      any_ = any_ || lines_[r] > 0;
    }
  }
  void next() {
    if (!any_) return;
    for (int r = 0; r < 2; ++r)
      for (owed_[r] += lines_[r]; owed_[r] >= tiles_; owed_[r] -= tiles_)
        __builtin_prefetch(begin_[r] + line_bytes * done_[r]++, 0, 2);
  }

 private:
  static constexpr std::int64_t line_bytes = 64;
  std::int64_t tiles_;
  const char* begin_[2] = {};
  std::int64_t lines_[2] = {}, done_[2] = {}, owed_[2] = {};
  bool any_ = false;
};

// The block loops of gemm_offsets, shared by both kernels: depth blocks, then column strips of
// B, then row panels of A, so each B strip is reused from L1. tile(rows, m0, n0, cols, k0,
// depth, accumulate) computes one block of at most gemm_mr x gemm_nr.
template <typename T, typename Tile>
void for_each_tile(const OffsetGemm<T>& p, Tile&& tile) {
  if (p.M <= 0 || p.N <= 0) return;
  if (p.K <= 0) {
    if (!p.accumulate)
      for (std::int64_t m = 0; m < p.M; ++m) std::fill(p.c + m * p.ldc, p.c + m * p.ldc + p.N, T(0));
    return;
  }
  const std::int64_t kc = depth_block(p.K);
  const std::int64_t tiles = (p.K + kc - 1) / kc * ((p.N + gemm_nr - 1) / gemm_nr) * ((p.M + gemm_mr - 1) / gemm_mr);
  PrefetchSpread spread(p, tiles);
  for (std::int64_t k0 = 0; k0 < p.K; k0 += kc) {
    const std::int64_t depth = std::min(kc, p.K - k0);
    const bool accumulate = p.accumulate || k0 > 0;
    for (std::int64_t n0 = 0; n0 < p.N; n0 += gemm_nr) {
      const std::int64_t cols = std::min(gemm_nr, p.N - n0);
      for (std::int64_t m0 = 0; m0 < p.M; m0 += gemm_mr) {
        spread.next();
        tile(static_cast<int>(std::min(gemm_mr, p.M - m0)), m0, n0, cols, k0, depth, accumulate);
      }
    }
  }
}

}  // namespace detail

// The portable implementation of gemm_offsets (any T, any machine).
template <typename T>
void gemm_offsets_portable(const OffsetGemm<T>& p) {
  detail::for_each_tile(p, [&p](int rows, std::int64_t m0, std::int64_t n0, std::int64_t cols, std::int64_t k0,
                                std::int64_t depth, bool accumulate) {
    detail::portable_tile_rows<T, static_cast<int>(gemm_mr)>(rows, p, m0, n0, cols, k0, depth, accumulate);
  });
}

// True when gemm_offsets<T> runs the AVX-512 micro-kernel in this build.
template <typename T>
constexpr bool gemm_offsets_uses_avx512() {
  return std::is_same<T, float>::value && avx512::available;
}

template <typename T>
void gemm_offsets(const OffsetGemm<T>& p) {
  if constexpr (gemm_offsets_uses_avx512<T>()) {
    static_assert(gemm_mr == 8 && gemm_nr == 32, "the AVX-512 kernel's tile is 8 x 32");
    detail::for_each_tile(p, [&p](int rows, std::int64_t m0, std::int64_t n0, std::int64_t cols, std::int64_t k0,
                                  std::int64_t depth, bool accumulate) {
      avx512::block(rows, cols, depth, p.a, p.a_rows + m0, p.a_cols + k0, detail::b_columns(p, n0), p.b_rows + k0,
                    p.c + m0 * p.ldc + n0, p.ldc, accumulate);
    });
  } else {
    gemm_offsets_portable(p);
  }
}

}  // namespace minicnn::ops::cpu
