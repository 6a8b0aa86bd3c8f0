// Batch normalisation on the GPU: one block per channel reduces the channel's values (in double,
// see kernels/batchnorm.hpp), then a grid-stride pass applies the per-element body. The formulas
// are the bodies in include/minicnn/ops/kernels/batchnorm.hpp, the ones the CPU ops run.
#include <cstdint>

#include "common.cuh"
#include "minicnn/ops/cuda/ops.hpp"
#include "minicnn/ops/kernels/batchnorm.hpp"

namespace minicnn::ops::cuda {

using minicnn::cuda::detail::blocks_for;
using minicnn::cuda::detail::check_launch;
using minicnn::cuda::detail::Scratch;
using minicnn::cuda::detail::threads_per_block;

namespace {

// Offset of the j-th value (0 <= j < N L, image-major) of channel c.
__device__ inline std::int64_t channel_offset(const BatchNormGeometry& g, std::int64_t c, std::int64_t j) {
  return ((j / g.plane) * g.channels + c) * g.plane + j % g.plane;
}

// The sum of every thread's `value` over the block, returned to every thread: a tree in shared
// memory whose order depends only on the (fixed) launch shape, so the result is deterministic.
__device__ double block_sum(double value, double* partial) {
  partial[threadIdx.x] = value;
  __syncthreads();
  for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  const double total = partial[0];
  __syncthreads();  // partial[] is reused by the next call
  return total;
}

template <typename T>
__global__ void batch_norm_statistics_kernel(BatchNormGeometry g, const T* input, double momentum, double eps,
                                             T* save_mean, T* save_invstd, T* running_mean, T* running_var) {
  __shared__ double partial[threads_per_block];
  const std::int64_t count = g.count_per_channel();
  for (std::int64_t c = blockIdx.x; c < g.channels; c += gridDim.x) {
    double sum = 0.0;
    for (std::int64_t j = threadIdx.x; j < count; j += blockDim.x)
      sum += static_cast<double>(input[channel_offset(g, c, j)]);
    const double mean = block_sum(sum, partial) / static_cast<double>(count);
    double centred_square_sum = 0.0;
    for (std::int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      const double centred = static_cast<double>(input[channel_offset(g, c, j)]) - mean;
      centred_square_sum += centred * centred;
    }
    centred_square_sum = block_sum(centred_square_sum, partial);
    if (threadIdx.x == 0)
      kernels::batch_norm_store_batch_statistics(c, count, mean, centred_square_sum, momentum, eps, save_mean,
                                                 save_invstd, running_mean, running_var);
  }
}

template <typename T>
__global__ void batch_norm_running_statistics_kernel(std::int64_t channels, const T* running_mean, const T* running_var,
                                                     double eps, T* save_mean, T* save_invstd) {
  MINICNN_CUDA_FOR(c, channels) {
    kernels::batch_norm_store_running_statistics(c, running_mean, running_var, eps, save_mean, save_invstd);
  }
}

template <typename T>
__global__ void batch_norm_output_kernel(BatchNormGeometry g, const T* input, const T* weight, const T* bias,
                                         const T* save_mean, const T* save_invstd, T* output) {
  MINICNN_CUDA_FOR(i, g.batch * g.channels * g.plane) {
    const auto affine = kernels::batch_norm_affine((i / g.plane) % g.channels, weight, bias, save_mean, save_invstd);
    output[i] = kernels::batch_norm_output(input[i], affine);
  }
}

// sums[2 c] = sum g, sums[2 c + 1] = sum g xhat over channel c; the parameter gradients are
// accumulated on the way.
template <typename T>
__global__ void batch_norm_grad_sums_kernel(BatchNormGeometry g, const T* input, const T* save_mean,
                                            const T* save_invstd, const T* grad_output, double* sums, T* grad_weight,
                                            T* grad_bias) {
  __shared__ double partial[threads_per_block];
  const std::int64_t count = g.count_per_channel();
  for (std::int64_t c = blockIdx.x; c < g.channels; c += gridDim.x) {
    const double mean = static_cast<double>(save_mean[c]);
    double sum_grad = 0.0, sum_grad_centred = 0.0;
    for (std::int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      const std::int64_t i = channel_offset(g, c, j);
      const double grad = static_cast<double>(grad_output[i]);
      sum_grad += grad;
      sum_grad_centred += grad * (static_cast<double>(input[i]) - mean);
    }
    sum_grad = block_sum(sum_grad, partial);
    const double sum_grad_xhat = block_sum(sum_grad_centred, partial) * static_cast<double>(save_invstd[c]);
    if (threadIdx.x == 0) {
      sums[2 * c] = sum_grad;
      sums[2 * c + 1] = sum_grad_xhat;
      kernels::batch_norm_accumulate_parameter_grads(c, sum_grad, sum_grad_xhat, grad_weight, grad_bias);
    }
  }
}

template <typename T>
__global__ void batch_norm_grad_input_kernel(BatchNormGeometry g, const T* input, const T* weight, const T* save_mean,
                                             const T* save_invstd, const T* grad_output, const double* sums,
                                             bool batch_stats, T* grad_input) {
  MINICNN_CUDA_FOR(i, g.batch * g.channels * g.plane) {
    const std::int64_t c = (i / g.plane) % g.channels;
    const auto gradient = kernels::batch_norm_gradient(c, g.count_per_channel(), weight, save_mean, save_invstd,
                                                       sums[2 * c], sums[2 * c + 1], batch_stats);
    grad_input[i] = kernels::batch_norm_grad_input(input[i], grad_output[i], gradient);
  }
}

unsigned int channel_blocks(std::int64_t channels) {
  return static_cast<unsigned int>(channels < 65536 ? channels : 65536);
}

}  // namespace

template <typename T>
void batch_norm_forward(const BatchNormGeometry& g, const T* input, const T* weight, const T* bias, T* running_mean,
                        T* running_var, bool use_batch_stats, double momentum, double eps, T* output, T* save_mean,
                        T* save_invstd) {
  if (g.count_per_channel() == 0 || g.channels == 0) return;
  if (use_batch_stats) {
    batch_norm_statistics_kernel<<<channel_blocks(g.channels), threads_per_block>>>(
        g, input, momentum, eps, save_mean, save_invstd, running_mean, running_var);
    check_launch("batch_norm_statistics_kernel");
  } else {
    batch_norm_running_statistics_kernel<<<blocks_for(g.channels), threads_per_block>>>(
        g.channels, running_mean, running_var, eps, save_mean, save_invstd);
    check_launch("batch_norm_running_statistics_kernel");
  }
  batch_norm_output_kernel<<<blocks_for(g.batch * g.channels * g.plane), threads_per_block>>>(
      g, input, weight, bias, save_mean, save_invstd, output);
  check_launch("batch_norm_output_kernel");
}

template <typename T>
void batch_norm_backward(const BatchNormGeometry& g, const T* input, const T* weight, const T* save_mean,
                         const T* save_invstd, const T* grad_output, bool batch_stats, T* grad_input, T* grad_weight,
                         T* grad_bias) {
  if (g.count_per_channel() == 0 || g.channels == 0) return;
  Scratch<double> sums(2 * g.channels);
  batch_norm_grad_sums_kernel<<<channel_blocks(g.channels), threads_per_block>>>(
      g, input, save_mean, save_invstd, grad_output, sums.data(), grad_weight, grad_bias);
  check_launch("batch_norm_grad_sums_kernel");
  if (!grad_input) return;
  batch_norm_grad_input_kernel<<<blocks_for(g.batch * g.channels * g.plane), threads_per_block>>>(
      g, input, weight, save_mean, save_invstd, grad_output, sums.data(), batch_stats, grad_input);
  check_launch("batch_norm_grad_input_kernel");
}

#define MINICNN_INSTANTIATE(T)                                                                                      \
  template void batch_norm_forward<T>(const BatchNormGeometry&, const T*, const T*, const T*, T*, T*, bool, double, \
                                      double, T*, T*, T*);                                                          \
  template void batch_norm_backward<T>(const BatchNormGeometry&, const T*, const T*, const T*, const T*, const T*,  \
                                       bool, T*, T*, T*);
MINICNN_INSTANTIATE(float)
MINICNN_INSTANTIATE(double)
#undef MINICNN_INSTANTIATE

}  // namespace minicnn::ops::cuda
