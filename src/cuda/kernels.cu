// Element-wise, pooling, loss and optimiser kernels of the CUDA backend. Each kernel is a
// grid-stride loop around a body from include/minicnn/ops/kernels/, the same body the CPU ops
// run, so the CPU test suite covers this arithmetic.
#include <cstdint>
#include <vector>

#include "common.cuh"
#include "minicnn/ops/cuda/ops.hpp"
#include "minicnn/ops/kernels/activation.hpp"
#include "minicnn/ops/kernels/elementwise.hpp"
#include "minicnn/ops/kernels/optim.hpp"
#include "minicnn/ops/kernels/pooling.hpp"
#include "minicnn/ops/kernels/softmax.hpp"

namespace minicnn::ops::cuda {

using minicnn::cuda::detail::blocks_for;
using minicnn::cuda::detail::check;
using minicnn::cuda::detail::check_launch;
using minicnn::cuda::detail::Scratch;
using minicnn::cuda::detail::threads_per_block;

namespace {

template <typename T>
__global__ void relu_forward_kernel(std::int64_t count, const T* input, T* output) {
  MINICNN_CUDA_FOR(i, count) output[i] = kernels::relu(input[i]);
}

template <typename T>
__global__ void relu_backward_kernel(std::int64_t count, const T* output, const T* grad_output, T* grad_input) {
  MINICNN_CUDA_FOR(i, count) grad_input[i] = kernels::relu_grad(output[i], grad_output[i]);
}

template <Activation kind, typename T>
__global__ void activation_forward_kernel(std::int64_t count, T parameter, const T* input, T* output) {
  MINICNN_CUDA_FOR(i, count) output[i] = kernels::activation_forward<kind>(input[i], parameter);
}

template <Activation kind, typename T>
__global__ void activation_backward_kernel(std::int64_t count, T parameter, const T* input, const T* output,
                                           const T* grad_output, T* grad_input) {
  MINICNN_CUDA_FOR(i, count) {
    grad_input[i] = kernels::activation_backward<kind>(input[i], output[i], grad_output[i], parameter);
  }
}

template <typename T>
__global__ void add_kernel(std::int64_t count, const T* a, const T* b, T* output) {
  MINICNN_CUDA_FOR(i, count) output[i] = a[i] + b[i];
}

// One thread per element; used for the forward (factor = scale) and for grad_input.
template <typename T>
__global__ void channel_scale_kernel(std::int64_t count, std::int64_t plane_size, const T* input, const T* scale,
                                     T* output) {
  MINICNN_CUDA_FOR(i, count) output[i] = input[i] * scale[i / plane_size];
}

// One thread per (image, channel) plane, summing it in index order like the CPU: squeeze-and-
// excitation planes are small (H * W after the last convolutions), and planes are many.
template <typename T>
__global__ void channel_scale_grad_kernel(std::int64_t planes, std::int64_t plane_size, const T* input,
                                          const T* grad_output, T* grad_scale) {
  MINICNN_CUDA_FOR(plane, planes) {
    grad_scale[plane] =
        kernels::channel_scale_grad(plane_size, input + plane * plane_size, grad_output + plane * plane_size);
  }
}

template <typename T>
__global__ void dropout_forward_kernel(std::int64_t count, double p, T scale, std::uint64_t seed,
                                       std::uint64_t first_counter, const T* input, T* output, T* mask) {
  MINICNN_CUDA_FOR(i, count) {
    const T factor = kernels::dropout_mask(seed, first_counter + static_cast<std::uint64_t>(i), p, scale);
    mask[i] = factor;
    output[i] = input[i] * factor;
  }
}

template <typename T>
__global__ void dropout_backward_kernel(std::int64_t count, const T* mask, const T* grad_output, T* grad_input) {
  MINICNN_CUDA_FOR(i, count) grad_input[i] = grad_output[i] * mask[i];
}

// One thread per output element.
template <typename T>
__global__ void maxpool2d_forward_kernel(Pool2dGeometry g, const T* input, T* output, std::int32_t* argmax) {
  const std::int64_t out_plane = g.out_height * g.out_width, in_plane = g.in_height * g.in_width;
  MINICNN_CUDA_FOR(o, g.planes * out_plane) {
    const std::int64_t p = o / out_plane, oh = (o % out_plane) / g.out_width, ow = o % g.out_width;
    const T* plane = input + p * in_plane;
    const std::int64_t best = kernels::maxpool2d_argmax(g, plane, oh, ow);
    output[o] = plane[best];
    if (argmax) argmax[o] = static_cast<std::int32_t>(best);  // null: a forward pass without gradients
  }
}

// One thread per input element (gather: no atomics, deterministic).
template <typename T>
__global__ void maxpool2d_backward_kernel(Pool2dGeometry g, const T* grad_output, const std::int32_t* argmax,
                                          T* grad_input, const T* output) {
  const std::int64_t out_plane = g.out_height * g.out_width, in_plane = g.in_height * g.in_width;
  MINICNN_CUDA_FOR(i, g.planes * in_plane) {
    const std::int64_t p = i / in_plane, h = (i % in_plane) / g.in_width, w = i % g.in_width;
    grad_input[i] = kernels::maxpool2d_grad_input(g, grad_output + p * out_plane, argmax + p * out_plane, h, w,
                                                  output ? output + p * out_plane : nullptr);
  }
}

template <typename T>
__global__ void adaptive_avg_pool2d_forward_kernel(Pool2dGeometry g, const T* input, T* output) {
  const std::int64_t out_plane = g.out_height * g.out_width, in_plane = g.in_height * g.in_width;
  MINICNN_CUDA_FOR(o, g.planes * out_plane) {
    const std::int64_t p = o / out_plane, oh = (o % out_plane) / g.out_width, ow = o % g.out_width;
    output[o] = kernels::adaptive_avg_pool2d_output(g, input + p * in_plane, oh, ow);
  }
}

template <typename T>
__global__ void adaptive_avg_pool2d_backward_kernel(Pool2dGeometry g, const T* grad_output, T* grad_input) {
  const std::int64_t out_plane = g.out_height * g.out_width, in_plane = g.in_height * g.in_width;
  MINICNN_CUDA_FOR(i, g.planes * in_plane) {
    const std::int64_t p = i / in_plane, h = (i % in_plane) / g.in_width, w = i % g.in_width;
    grad_input[i] = kernels::adaptive_avg_pool2d_grad_input(g, grad_output + p * out_plane, h, w);
  }
}

template <typename T>
__global__ void avg_pool2d_forward_kernel(Pool2dGeometry g, const T* input, T* output) {
  const std::int64_t out_plane = g.out_height * g.out_width, in_plane = g.in_height * g.in_width;
  MINICNN_CUDA_FOR(o, g.planes * out_plane) {
    const std::int64_t p = o / out_plane, oh = (o % out_plane) / g.out_width, ow = o % g.out_width;
    output[o] = kernels::avg_pool2d_output(g, input + p * in_plane, oh, ow);
  }
}

template <typename T>
__global__ void avg_pool2d_backward_kernel(Pool2dGeometry g, const T* grad_output, T* grad_input) {
  const std::int64_t out_plane = g.out_height * g.out_width, in_plane = g.in_height * g.in_width;
  MINICNN_CUDA_FOR(i, g.planes * in_plane) {
    const std::int64_t p = i / in_plane, h = (i % in_plane) / g.in_width, w = i % g.in_width;
    grad_input[i] = kernels::avg_pool2d_grad_input(g, grad_output + p * out_plane, h, w);
  }
}

template <typename T>
__global__ void adaptive_max_pool2d_forward_kernel(Pool2dGeometry g, const T* input, T* output, std::int32_t* argmax) {
  const std::int64_t out_plane = g.out_height * g.out_width, in_plane = g.in_height * g.in_width;
  MINICNN_CUDA_FOR(o, g.planes * out_plane) {
    const std::int64_t p = o / out_plane, oh = (o % out_plane) / g.out_width, ow = o % g.out_width;
    const T* plane = input + p * in_plane;
    const std::int64_t best = kernels::adaptive_max_pool2d_argmax(g, plane, oh, ow);
    output[o] = plane[best];
    argmax[o] = static_cast<std::int32_t>(best);
  }
}

// One thread per input element (gather: no atomics, deterministic).
template <typename T>
__global__ void adaptive_max_pool2d_backward_kernel(Pool2dGeometry g, const T* grad_output, const std::int32_t* argmax,
                                                    T* grad_input) {
  const std::int64_t out_plane = g.out_height * g.out_width, in_plane = g.in_height * g.in_width;
  MINICNN_CUDA_FOR(i, g.planes * in_plane) {
    const std::int64_t p = i / in_plane, h = (i % in_plane) / g.in_width, w = i % g.in_width;
    grad_input[i] =
        kernels::adaptive_max_pool2d_grad_input(g, grad_output + p * out_plane, argmax + p * out_plane, h, w);
  }
}

// One thread per row: the rows of a classifier are short (10 classes here).
template <typename T>
__global__ void softmax_cross_entropy_kernel(std::int64_t batch, std::int64_t classes, const T* logits,
                                             const int* targets, double label_smoothing, T* grad_logits,
                                             double* row_losses) {
  MINICNN_CUDA_FOR(n, batch) {
    row_losses[n] = kernels::softmax_cross_entropy_row(classes, logits + n * classes, targets[n], label_smoothing,
                                                       batch, grad_logits + n * classes);
  }
}

template <typename T>
__global__ void adam_kernel(std::int64_t count, kernels::AdamCoefficients<T> coefficients, T* value, const T* grad,
                            T* exp_avg, T* exp_avg_sq) {
  MINICNN_CUDA_FOR(i, count) kernels::adam_update(coefficients, value[i], grad[i], exp_avg[i], exp_avg_sq[i]);
}

template <typename T>
__global__ void sgd_kernel(std::int64_t count, kernels::SgdCoefficients<T> coefficients, T* value, const T* grad,
                           T* momentum_buffer) {
  MINICNN_CUDA_FOR(i, count) kernels::sgd_update(coefficients, value[i], grad[i], momentum_buffer[i]);
}

template <typename T>
__global__ void broadcast_bias_kernel(std::int64_t outer, std::int64_t channels, std::int64_t inner, const T* bias,
                                      T* output) {
  MINICNN_CUDA_FOR(i, outer * channels * inner) output[i] = bias ? bias[(i / inner) % channels] : T(0);
}

// inner == 1: one thread per channel walks the rows; neighbouring threads read neighbouring
// addresses.
template <typename T>
__global__ void column_sums_kernel(std::int64_t rows, std::int64_t channels, const T* input, T* sums) {
  MINICNN_CUDA_FOR(c, channels) {
    T sum = T(0);
    for (std::int64_t n = 0; n < rows; ++n) sum += input[n * channels + c];
    sums[c] += sum;
  }
}

// inner > 1: one block per channel; each thread sums a strided share in order, then a tree
// reduction in shared memory. The order depends only on the launch shape, which is fixed.
template <typename T>
__global__ void plane_sums_kernel(std::int64_t outer, std::int64_t channels, std::int64_t inner, const T* input,
                                  T* sums) {
  __shared__ T partial[threads_per_block];
  for (std::int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    T sum = T(0);
    for (std::int64_t j = threadIdx.x; j < outer * inner; j += blockDim.x)
      sum += input[((j / inner) * channels + c) * inner + j % inner];
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) sums[c] += partial[0];
    __syncthreads();  // partial[] is reused by the next channel
  }
}

}  // namespace

namespace detail {

template <typename T>
void broadcast_bias(std::int64_t outer, std::int64_t channels, std::int64_t inner, const T* bias, T* output) {
  const std::int64_t count = outer * channels * inner;
  if (count == 0) return;
  broadcast_bias_kernel<<<blocks_for(count), threads_per_block>>>(outer, channels, inner, bias, output);
  check_launch("broadcast_bias_kernel");
}

template <typename T>
void accumulate_channel_sums(std::int64_t outer, std::int64_t channels, std::int64_t inner, const T* input, T* sums) {
  if (channels == 0) return;
  if (inner == 1) {
    column_sums_kernel<<<blocks_for(channels), threads_per_block>>>(outer, channels, input, sums);
    check_launch("column_sums_kernel");
  } else {
    const auto blocks = static_cast<unsigned int>(channels < 65536 ? channels : 65536);
    plane_sums_kernel<<<blocks, threads_per_block>>>(outer, channels, inner, input, sums);
    check_launch("plane_sums_kernel");
  }
}

}  // namespace detail

template <typename T>
void relu_forward(std::int64_t count, const T* input, T* output) {
  if (count == 0) return;
  relu_forward_kernel<<<blocks_for(count), threads_per_block>>>(count, input, output);
  check_launch("relu_forward_kernel");
}

template <typename T>
void relu_backward(std::int64_t count, const T* output, const T* grad_output, T* grad_input) {
  if (count == 0) return;
  relu_backward_kernel<<<blocks_for(count), threads_per_block>>>(count, output, grad_output, grad_input);
  check_launch("relu_backward_kernel");
}

template <typename T>
void activation_forward(Activation kind, T parameter, std::int64_t count, const T* input, T* output) {
  if (count == 0) return;
  visit_activation(kind, [&](auto constant) {
    constexpr Activation activation = decltype(constant)::value;
    activation_forward_kernel<activation><<<blocks_for(count), threads_per_block>>>(count, parameter, input, output);
  });
  check_launch("activation_forward_kernel");
}

template <typename T>
void activation_backward(Activation kind, T parameter, std::int64_t count, const T* input, const T* output,
                         const T* grad_output, T* grad_input) {
  if (count == 0) return;
  visit_activation(kind, [&](auto constant) {
    constexpr Activation activation = decltype(constant)::value;
    activation_backward_kernel<activation>
        <<<blocks_for(count), threads_per_block>>>(count, parameter, input, output, grad_output, grad_input);
  });
  check_launch("activation_backward_kernel");
}

template <typename T>
void add(std::int64_t count, const T* a, const T* b, T* output) {
  if (count == 0) return;
  add_kernel<<<blocks_for(count), threads_per_block>>>(count, a, b, output);
  check_launch("add_kernel");
}

template <typename T>
void channel_scale_forward(std::int64_t planes, std::int64_t plane_size, const T* input, const T* scale, T* output) {
  const std::int64_t count = planes * plane_size;
  if (count == 0) return;
  channel_scale_kernel<<<blocks_for(count), threads_per_block>>>(count, plane_size, input, scale, output);
  check_launch("channel_scale_kernel");
}

template <typename T>
void channel_scale_backward(std::int64_t planes, std::int64_t plane_size, const T* input, const T* scale,
                            const T* grad_output, T* grad_input, T* grad_scale) {
  if (planes == 0) return;
  // grad_scale first: grad_input may alias grad_output (the default stream orders the kernels).
  channel_scale_grad_kernel<<<blocks_for(planes), threads_per_block>>>(planes, plane_size, input, grad_output,
                                                                       grad_scale);
  check_launch("channel_scale_grad_kernel");
  const std::int64_t count = planes * plane_size;
  if (!grad_input || count == 0) return;
  channel_scale_kernel<<<blocks_for(count), threads_per_block>>>(count, plane_size, grad_output, scale, grad_input);
  check_launch("channel_scale_kernel");
}

template <typename T>
void dropout_forward(std::int64_t count, double p, std::uint64_t seed, std::uint64_t first_counter, const T* input,
                     T* output, T* mask) {
  if (count == 0) return;
  dropout_forward_kernel<<<blocks_for(count), threads_per_block>>>(count, p, kernels::dropout_scale<T>(p), seed,
                                                                   first_counter, input, output, mask);
  check_launch("dropout_forward_kernel");
}

template <typename T>
void dropout_backward(std::int64_t count, const T* mask, const T* grad_output, T* grad_input) {
  if (count == 0) return;
  dropout_backward_kernel<<<blocks_for(count), threads_per_block>>>(count, mask, grad_output, grad_input);
  check_launch("dropout_backward_kernel");
}

template <typename T>
void maxpool2d_forward(const Pool2dGeometry& g, const T* input, T* output, std::int32_t* argmax) {
  const std::int64_t count = g.planes * g.out_height * g.out_width;
  if (count == 0) return;
  maxpool2d_forward_kernel<<<blocks_for(count), threads_per_block>>>(g, input, output, argmax);
  check_launch("maxpool2d_forward_kernel");
}

template <typename T>
void maxpool2d_backward(const Pool2dGeometry& g, const T* grad_output, const std::int32_t* argmax, T* grad_input,
                        const T* output) {
  const std::int64_t count = g.planes * g.in_height * g.in_width;
  if (count == 0) return;
  maxpool2d_backward_kernel<<<blocks_for(count), threads_per_block>>>(g, grad_output, argmax, grad_input, output);
  check_launch("maxpool2d_backward_kernel");
}

template <typename T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* input, T* output) {
  const std::int64_t count = g.planes * g.out_height * g.out_width;
  if (count == 0) return;
  adaptive_avg_pool2d_forward_kernel<<<blocks_for(count), threads_per_block>>>(g, input, output);
  check_launch("adaptive_avg_pool2d_forward_kernel");
}

template <typename T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* grad_output, T* grad_input) {
  const std::int64_t count = g.planes * g.in_height * g.in_width;
  if (count == 0) return;
  adaptive_avg_pool2d_backward_kernel<<<blocks_for(count), threads_per_block>>>(g, grad_output, grad_input);
  check_launch("adaptive_avg_pool2d_backward_kernel");
}

template <typename T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* input, T* output) {
  const std::int64_t count = g.planes * g.out_height * g.out_width;
  if (count == 0) return;
  avg_pool2d_forward_kernel<<<blocks_for(count), threads_per_block>>>(g, input, output);
  check_launch("avg_pool2d_forward_kernel");
}

template <typename T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* grad_output, T* grad_input) {
  const std::int64_t count = g.planes * g.in_height * g.in_width;
  if (count == 0) return;
  avg_pool2d_backward_kernel<<<blocks_for(count), threads_per_block>>>(g, grad_output, grad_input);
  check_launch("avg_pool2d_backward_kernel");
}

template <typename T>
void adaptive_max_pool2d_forward(const Pool2dGeometry& g, const T* input, T* output, std::int32_t* argmax) {
  const std::int64_t count = g.planes * g.out_height * g.out_width;
  if (count == 0) return;
  adaptive_max_pool2d_forward_kernel<<<blocks_for(count), threads_per_block>>>(g, input, output, argmax);
  check_launch("adaptive_max_pool2d_forward_kernel");
}

template <typename T>
void adaptive_max_pool2d_backward(const Pool2dGeometry& g, const T* grad_output, const std::int32_t* argmax,
                                  T* grad_input) {
  const std::int64_t count = g.planes * g.in_height * g.in_width;
  if (count == 0) return;
  adaptive_max_pool2d_backward_kernel<<<blocks_for(count), threads_per_block>>>(g, grad_output, argmax, grad_input);
  check_launch("adaptive_max_pool2d_backward_kernel");
}

template <typename T>
double softmax_cross_entropy(std::int64_t batch, std::int64_t classes, const T* logits, const int* host_targets,
                             double label_smoothing, T* grad_logits) {
  if (batch == 0) return 0.0;
  Scratch<int> targets(batch);
  Scratch<double> row_losses(batch);
  check(cudaMemcpy(targets.data(), host_targets, sizeof(int) * static_cast<std::size_t>(batch), cudaMemcpyHostToDevice),
        "cudaMemcpy (targets)");
  softmax_cross_entropy_kernel<<<blocks_for(batch), threads_per_block>>>(
      batch, classes, logits, targets.data(), label_smoothing, grad_logits, row_losses.data());
  check_launch("softmax_cross_entropy_kernel");
  std::vector<double> host_losses(static_cast<std::size_t>(batch));
  check(cudaMemcpy(host_losses.data(), row_losses.data(), sizeof(double) * host_losses.size(), cudaMemcpyDeviceToHost),
        "cudaMemcpy (row losses)");
  double total = 0.0;
  for (double loss : host_losses) total += loss;
  return total / static_cast<double>(batch);
}

template <typename T>
void adam_update(std::int64_t count, const kernels::AdamCoefficients<T>& coefficients, T* value, const T* grad,
                 T* exp_avg, T* exp_avg_sq) {
  if (count == 0) return;
  adam_kernel<<<blocks_for(count), threads_per_block>>>(count, coefficients, value, grad, exp_avg, exp_avg_sq);
  check_launch("adam_kernel");
}

template <typename T>
void sgd_update(std::int64_t count, const kernels::SgdCoefficients<T>& coefficients, T* value, const T* grad,
                T* momentum_buffer) {
  if (count == 0) return;
  sgd_kernel<<<blocks_for(count), threads_per_block>>>(count, coefficients, value, grad, momentum_buffer);
  check_launch("sgd_kernel");
}

#define MINICNN_INSTANTIATE(T)                                                                                 \
  template void detail::broadcast_bias<T>(std::int64_t, std::int64_t, std::int64_t, const T*, T*);             \
  template void detail::accumulate_channel_sums<T>(std::int64_t, std::int64_t, std::int64_t, const T*, T*);    \
  template void relu_forward<T>(std::int64_t, const T*, T*);                                                   \
  template void relu_backward<T>(std::int64_t, const T*, const T*, T*);                                        \
  template void activation_forward<T>(Activation, T, std::int64_t, const T*, T*);                              \
  template void activation_backward<T>(Activation, T, std::int64_t, const T*, const T*, const T*, T*);         \
  template void add<T>(std::int64_t, const T*, const T*, T*);                                                  \
  template void channel_scale_forward<T>(std::int64_t, std::int64_t, const T*, const T*, T*);                  \
  template void channel_scale_backward<T>(std::int64_t, std::int64_t, const T*, const T*, const T*, T*, T*);   \
  template void dropout_forward<T>(std::int64_t, double, std::uint64_t, std::uint64_t, const T*, T*, T*);      \
  template void dropout_backward<T>(std::int64_t, const T*, const T*, T*);                                     \
  template void maxpool2d_forward<T>(const Pool2dGeometry&, const T*, T*, std::int32_t*);                      \
  template void maxpool2d_backward<T>(const Pool2dGeometry&, const T*, const std::int32_t*, T*, const T*);               \
  template void adaptive_avg_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*);                           \
  template void adaptive_avg_pool2d_backward<T>(const Pool2dGeometry&, const T*, T*);                          \
  template void avg_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*);                                    \
  template void avg_pool2d_backward<T>(const Pool2dGeometry&, const T*, T*);                                   \
  template void adaptive_max_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*, std::int32_t*);            \
  template void adaptive_max_pool2d_backward<T>(const Pool2dGeometry&, const T*, const std::int32_t*, T*);     \
  template double softmax_cross_entropy<T>(std::int64_t, std::int64_t, const T*, const int*, double, T*);      \
  template void adam_update<T>(std::int64_t, const kernels::AdamCoefficients<T>&, T*, const T*, T*, T*);       \
  template void sgd_update<T>(std::int64_t, const kernels::SgdCoefficients<T>&, T*, const T*, T*);
MINICNN_INSTANTIATE(float)
MINICNN_INSTANTIATE(double)
#undef MINICNN_INSTANTIATE

}  // namespace minicnn::ops::cuda
