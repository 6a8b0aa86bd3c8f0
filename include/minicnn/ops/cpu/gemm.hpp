#pragma once
// Single-threaded GEMM on row-major matrices. Callers parallelise around it (over images), so
// it must never start threads of its own.
#include <cstdint>

#include <Eigen/Core>

namespace minicnn::ops::cpu {

// C[M, N] = alpha * op(A) * op(B) + beta * C, all row-major with leading dimensions lda, ldb,
// ldc; op(X) is X or its transpose. beta == 0 overwrites C (NaNs in C do not propagate).
template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha,
          const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
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

}  // namespace minicnn::ops::cpu
