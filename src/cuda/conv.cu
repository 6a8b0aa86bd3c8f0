// The GEMM-based ops of the CUDA backend: cuBLAS GEMMs, im2col / col2im, Conv2d and Linear.
//
// A convolution runs over chunks of images: im2col of the chunk into one column buffer
// [images, groups, C_in / groups K_h K_w, H_out W_out], then one strided-batched GEMM per pass
// and group (the group's weights shared through a zero batch stride). The weight gradient is formed per image and
// summed over images in a fixed order, the input gradient is folded back by a gather col2im: no atomics, so every run
// gives the same bits.
#include <cstdint>
#include <mutex>
#include <string>

#include <cublas_v2.h>

#include "common.cuh"
#include "minicnn/error.hpp"
#include "minicnn/ops/cuda/ops.hpp"
#include "minicnn/ops/kernels/conv.hpp"

namespace minicnn::ops::cuda {

using minicnn::cuda::detail::blocks_for;
using minicnn::cuda::detail::check_launch;
using minicnn::cuda::detail::Scratch;
using minicnn::cuda::detail::threads_per_block;

namespace {

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw error(std::string("cuBLAS error in ") + what + ": " + cublasGetStatusName(status) + " (" +
                cublasGetStatusString(status) + ")");
}

// One handle for the process, on the default stream, created on first use. Default math mode:
// full FP32 (no TF32 tensor-core rounding), which keeps results within 1e-4 of the CPU.
cublasHandle_t cublas_handle() {
  static std::once_flag once;
  static cublasHandle_t handle = nullptr;
  std::call_once(once, [] {
    if (minicnn::cuda::device_count() == 0)
      throw error("cuBLAS: no usable CUDA device (" + minicnn::cuda::unavailable_reason() + ")");
    check_cublas(cublasCreate(&handle), "cublasCreate");
    check_cublas(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  });
  return handle;
}

int blas_int(std::int64_t value, const char* what) {
  if (value < 0 || value > 0x7fffffff)
    throw error(std::string("cuBLAS: ") + what + " = " + std::to_string(value) + " does not fit in an int");
  return static_cast<int>(value);
}
// cuBLAS rejects a leading dimension of 0 even for an empty matrix.
int leading_dimension(std::int64_t value, const char* what) { return blas_int(value > 1 ? value : 1, what); }

// The typed cuBLAS calls, in cuBLAS's column-major terms: C (m x n) = op(A) (m x k) op(B) (k x n).
cublasStatus_t gemm_batched(cublasHandle_t handle, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
                            const float* alpha, const float* A, int lda, long long stride_a, const float* B, int ldb,
                            long long stride_b, const float* beta, float* C, int ldc, long long stride_c, int batch) {
  return cublasSgemmStridedBatched(handle, op_a, op_b, m, n, k, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc,
                                   stride_c, batch);
}
cublasStatus_t gemm_batched(cublasHandle_t handle, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
                            const double* alpha, const double* A, int lda, long long stride_a, const double* B, int ldb,
                            long long stride_b, const double* beta, double* C, int ldc, long long stride_c, int batch) {
  return cublasDgemmStridedBatched(handle, op_a, op_b, m, n, k, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc,
                                   stride_c, batch);
}

// `batch` row-major GEMMs C_i[M, N] = alpha op(A_i) op(B_i) + beta C_i, X_i = X + i * stride_x.
template <typename T>
void gemm_strided_batched(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha,
                          const T* A, std::int64_t lda, std::int64_t stride_a, const T* B, std::int64_t ldb,
                          std::int64_t stride_b, T beta, T* C, std::int64_t ldc, std::int64_t stride_c,
                          std::int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  // A row-major matrix read column-major is its transpose, so row-major C = op(A) op(B) is the
  // column-major product C^T = op(B)^T op(A)^T: pass B first, swap M and N, keep the flags.
  // K == 0 is legal for cuBLAS (C = beta C), as for cpu::gemm.
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  check_cublas(gemm_batched(cublas_handle(), op_b, op_a, blas_int(N, "N"), blas_int(M, "M"), blas_int(K, "K"), &alpha,
                            B, leading_dimension(ldb, "ldb"), stride_b, A, leading_dimension(lda, "lda"), stride_a,
                            &beta, C, leading_dimension(ldc, "ldc"), stride_c, blas_int(batch, "batch")),
               "gemm (strided batched)");
}

// columns [images, groups, rows, cols]: column matrix `slice` = n * groups + group.
template <typename T>
__global__ void im2col_kernel(Conv2dGeometry g, std::int64_t images, const T* input, T* columns) {
  const std::int64_t rows = g.column_rows(), cols = g.column_cols();
  MINICNN_CUDA_FOR(i, images * g.groups * rows * cols) {
    const std::int64_t slice = i / (rows * cols), row = (i / cols) % rows, col = i % cols;
    const std::int64_t n = slice / g.groups, group = slice % g.groups;
    columns[i] = kernels::im2col_value(g, input + n * g.input_image_size() + group * g.input_group_size(), row, col);
  }
}

template <typename T>
__global__ void col2im_kernel(Conv2dGeometry g, std::int64_t images, const T* columns, T* input) {
  const std::int64_t plane = g.in_height * g.in_width, image = g.input_image_size();
  const std::int64_t column_size = g.column_rows() * g.column_cols(), group_channels = g.group_in_channels();
  MINICNN_CUDA_FOR(i, images * image) {
    const std::int64_t n = i / image, c = (i % image) / plane, h = (i % plane) / g.in_width, w = i % g.in_width;
    const std::int64_t group = c / group_channels;
    input[i] = kernels::col2im_value(g, columns + (n * g.groups + group) * column_size, c % group_channels, h, w);
  }
}

template <typename T>
void launch_im2col(const Conv2dGeometry& g, std::int64_t images, const T* input, T* columns) {
  const std::int64_t count = images * g.groups * g.column_rows() * g.column_cols();
  if (count == 0) return;
  im2col_kernel<<<blocks_for(count), threads_per_block>>>(g, images, input, columns);
  check_launch("im2col_kernel");
}

template <typename T>
void launch_col2im(const Conv2dGeometry& g, std::int64_t images, const T* columns, T* input) {
  const std::int64_t count = images * g.input_image_size();
  if (count == 0) return;
  col2im_kernel<<<blocks_for(count), threads_per_block>>>(g, images, columns, input);
  check_launch("col2im_kernel");
}

// Images per chunk: the column buffer of a whole batch of 64 for FashionCNN's conv2 is 58 MB;
// larger batches or images are cut into chunks of at most this many bytes of columns.
constexpr std::int64_t column_budget_bytes = std::int64_t{256} << 20;

template <typename T>
std::int64_t images_per_chunk(const Conv2dGeometry& g) {
  const std::int64_t per_image = g.groups * g.column_rows() * g.column_cols() * static_cast<std::int64_t>(sizeof(T));
  const std::int64_t images = per_image > 0 ? column_budget_bytes / per_image : g.batch;
  return images < 1 ? 1 : (images < g.batch ? images : g.batch);
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
          std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  gemm_strided_batched(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

template <typename T>
void im2col(const Conv2dGeometry& g, const T* input, T* columns) {
  launch_im2col(g, g.batch, input, columns);
}

template <typename T>
void col2im(const Conv2dGeometry& g, const T* columns, T* input) {
  launch_col2im(g, g.batch, columns, input);
}

template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* input, const T* weight, const T* bias, T* output) {
  if (g.batch == 0) return;
  const std::int64_t rows = g.column_rows(), cols = g.column_cols(), group_out = g.group_out_channels();
  const std::int64_t chunk = images_per_chunk<T>(g), slice = rows * cols, image_columns = g.groups * slice;
  Scratch<T> columns(chunk * image_columns);
  // output = bias, then output_gr += weight_gr [C_out / groups, rows] x columns_(n, gr) [rows, cols]
  // per image and group gr.
  detail::broadcast_bias(g.batch, g.out_channels, cols, bias, output);
  for (std::int64_t first = 0; first < g.batch; first += chunk) {
    const std::int64_t images = first + chunk < g.batch ? chunk : g.batch - first;
    launch_im2col(g, images, input + first * g.input_image_size(), columns.data());
    for (std::int64_t group = 0; group < g.groups; ++group)
      gemm_strided_batched(false, false, group_out, cols, rows, T(1), weight + group * group_out * rows, rows, 0,
                           columns.data() + group * slice, cols, image_columns, T(1),
                           output + first * g.output_image_size() + group * g.output_group_size(), cols,
                           g.output_image_size(), images);
  }
}

template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const T* input, const T* weight, const T* grad_output, T* grad_input,
                     T* grad_weight, T* grad_bias) {
  if (g.batch == 0) return;
  const std::int64_t rows = g.column_rows(), cols = g.column_cols(), group_out = g.group_out_channels();
  const std::int64_t weight_size = g.out_channels * rows;
  const std::int64_t chunk = images_per_chunk<T>(g), slice = rows * cols, image_columns = g.groups * slice;
  Scratch<T> columns(chunk * image_columns);
  Scratch<T> partial_grad_weight(chunk * weight_size);  // [images, C_out, rows]
  if (grad_bias) detail::accumulate_channel_sums(g.batch, g.out_channels, cols, grad_output, grad_bias);
  for (std::int64_t first = 0; first < g.batch; first += chunk) {
    const std::int64_t images = first + chunk < g.batch ? chunk : g.batch - first;
    const T* grad_out = grad_output + first * g.output_image_size();
    launch_im2col(g, images, input + first * g.input_image_size(), columns.data());
    // partial_(n, gr) = grad_output_(n, gr) [C_out / groups, cols] x columns_(n, gr)^T [cols, rows],
    // the rows of group gr in partial_n [C_out, rows]; grad_weight += sum over n.
    for (std::int64_t group = 0; group < g.groups; ++group)
      gemm_strided_batched(false, true, group_out, rows, cols, T(1), grad_out + group * g.output_group_size(), cols,
                           g.output_image_size(), columns.data() + group * slice, cols, image_columns, T(0),
                           partial_grad_weight.data() + group * group_out * rows, rows, weight_size, images);
    detail::accumulate_channel_sums(images, weight_size, std::int64_t{1}, partial_grad_weight.data(), grad_weight);
    if (grad_input) {
      // columns_(n, gr) = weight_gr^T [rows, C_out / groups] x grad_output_(n, gr) [C_out / groups, cols],
      // folded back by col2im.
      for (std::int64_t group = 0; group < g.groups; ++group)
        gemm_strided_batched(true, false, rows, cols, group_out, T(1), weight + group * group_out * rows, rows, 0,
                             grad_out + group * g.output_group_size(), cols, g.output_image_size(), T(0),
                             columns.data() + group * slice, cols, image_columns, images);
      launch_col2im(g, images, columns.data(), grad_input + first * g.input_image_size());
    }
  }
}

template <typename T>
void linear_forward(std::int64_t batch, std::int64_t in_features, std::int64_t out_features, const T* input,
                    const T* weight, const T* bias, T* output) {
  // output = bias, then output += input [N, in] x weight^T [in, out].
  detail::broadcast_bias(batch, out_features, std::int64_t{1}, bias, output);
  gemm(false, true, batch, out_features, in_features, T(1), input, in_features, weight, in_features, T(1), output,
       out_features);
}

template <typename T>
void linear_backward(std::int64_t batch, std::int64_t in_features, std::int64_t out_features, const T* input,
                     const T* weight, const T* grad_output, T* grad_input, T* grad_weight, T* grad_bias) {
  if (grad_input)
    gemm(false, false, batch, in_features, out_features, T(1), grad_output, out_features, weight, in_features, T(0),
         grad_input, in_features);
  gemm(true, false, out_features, in_features, batch, T(1), grad_output, out_features, input, in_features, T(1),
       grad_weight, in_features);
  if (grad_bias) detail::accumulate_channel_sums(batch, out_features, std::int64_t{1}, grad_output, grad_bias);
}

#define MINICNN_INSTANTIATE(T)                                                                                     \
  template void gemm<T>(bool, bool, std::int64_t, std::int64_t, std::int64_t, T, const T*, std::int64_t, const T*, \
                        std::int64_t, T, T*, std::int64_t);                                                        \
  template void im2col<T>(const Conv2dGeometry&, const T*, T*);                                                    \
  template void col2im<T>(const Conv2dGeometry&, const T*, T*);                                                    \
  template void conv2d_forward<T>(const Conv2dGeometry&, const T*, const T*, const T*, T*);                        \
  template void conv2d_backward<T>(const Conv2dGeometry&, const T*, const T*, const T*, T*, T*, T*);               \
  template void linear_forward<T>(std::int64_t, std::int64_t, std::int64_t, const T*, const T*, const T*, T*);     \
  template void linear_backward<T>(std::int64_t, std::int64_t, std::int64_t, const T*, const T*, const T*, T*, T*, T*);
MINICNN_INSTANTIATE(float)
MINICNN_INSTANTIATE(double)
#undef MINICNN_INSTANTIATE

}  // namespace minicnn::ops::cuda
