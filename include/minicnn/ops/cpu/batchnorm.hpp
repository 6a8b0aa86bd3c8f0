#pragma once
// Batch normalisation (PyTorch's BatchNorm1d / BatchNorm2d arithmetic), forward and backward.
// The formulas are ops/kernels/batchnorm.hpp's, shared with the CUDA backend.
//
// Shapes: input, output, grad_output, grad_input [N, C, L]; weight, bias, running_mean,
// running_var, save_mean, save_invstd [C].
//
// Determinism: each channel's sums run on one thread in a fixed order (image by image, then
// along the plane), in double (see kernels/batchnorm.hpp for why), so results are bit-identical
// for any thread count. The sums (and backward's grad_input, written with them) are parallel
// over channels; forward's element-wise pass over (image, channel) planes.
#include <algorithm>
#include <cstdint>

#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/ops/kernels/batchnorm.hpp"

namespace minicnn::ops::cpu {

// Below about this many elements a pass runs on the calling thread.
inline constexpr std::int64_t batch_norm_parallel_elements = 32768;

// Calls body(offset) for the offset of every element of channel c, in the fixed summation order.
template <typename Body>
void for_each_in_channel(const BatchNormGeometry& g, std::int64_t c, Body&& body) {
  for (std::int64_t n = 0; n < g.batch; ++n) {
    const std::int64_t first = (n * g.channels + c) * g.plane;
    for (std::int64_t l = 0; l < g.plane; ++l) body(first + l);
  }
}

// Parallel over channels, each heavy in proportion to its count.
template <typename Body>
void parallel_over_channels(const BatchNormGeometry& g, Body&& body) {
  const std::int64_t min_channels = std::max<std::int64_t>(2, batch_norm_parallel_elements / g.count_per_channel());
  parallel_for(g.channels, min_channels, body);
}

// use_batch_stats (training, or track_running_stats=False): normalises with the batch mean and
// biased variance, writes them to save_mean / save_invstd (as mean and 1 / sqrt(var + eps)) and,
// when running_mean and running_var are not null, updates them with factor `momentum` and the
// unbiased variance. Requires N L > 1 then (ops::batch_norm_forward checks).
// Otherwise (evaluation): normalises with running_mean / running_var (required), copied into
// save_mean / save_invstd the same way, and leaves them unchanged.
// output = (input - save_mean) save_invstd weight + bias (ASSIGNED), weight and bias optional;
// with relu, max(that, 0) (a following ReLU applied as the output is stored).
// An empty batch (N L = 0) is a no-op: nothing is read or written.
template <typename T>
void batch_norm_forward(const BatchNormGeometry& g, const T* input, const T* weight, const T* bias, T* running_mean,
                        T* running_var, bool use_batch_stats, double momentum, double eps, T* output, T* save_mean,
                        T* save_invstd, bool relu = false) {
  const std::int64_t count = g.count_per_channel();
  if (count == 0 || g.channels == 0) return;
  if (use_batch_stats) {
    parallel_over_channels(g, [&](std::int64_t c) {
      double sum = 0.0;
      for_each_in_channel(g, c, [&](std::int64_t i) { sum += static_cast<double>(input[i]); });
      const double mean = sum / static_cast<double>(count);
      // Two passes: sum (x - mean)^2 does not cancel as sum x^2 - count mean^2 would.
      double centred_square_sum = 0.0;
      for_each_in_channel(g, c, [&](std::int64_t i) {
        const double centred = static_cast<double>(input[i]) - mean;
        centred_square_sum += centred * centred;
      });
      kernels::batch_norm_store_batch_statistics(c, count, mean, centred_square_sum, momentum, eps, save_mean,
                                                 save_invstd, running_mean, running_var);
    });
  } else {
    for (std::int64_t c = 0; c < g.channels; ++c)
      kernels::batch_norm_store_running_statistics(c, running_mean, running_var, eps, save_mean, save_invstd);
  }
  const std::int64_t min_planes = std::max<std::int64_t>(2, batch_norm_parallel_elements / g.plane);
  parallel_for(g.batch * g.channels, min_planes, [&](std::int64_t p) {
    const auto affine = kernels::batch_norm_affine(p % g.channels, weight, bias, save_mean, save_invstd);
    T* out = output + p * g.plane;
    const T* in = input + p * g.plane;
    if (relu) {
      for (std::int64_t l = 0; l < g.plane; ++l) out[l] = kernels::relu(kernels::batch_norm_output(in[l], affine));
    } else {
      for (std::int64_t l = 0; l < g.plane; ++l) out[l] = kernels::batch_norm_output(in[l], affine);
    }
  });
}

// From the statistics the forward used (save_mean, save_invstd) and whether they were the
// batch's (batch_stats):
//   grad_input (ASSIGNED; skipped when null):
//     batch_stats:  weight invstd / n (n g - sum g - xhat sum g xhat), n = N L
//     otherwise:    g weight invstd
//   grad_weight += sum g xhat, grad_bias += sum g (ACCUMULATED; skipped when null)
// with xhat = (input - save_mean) save_invstd and weight 1 when null. An empty batch is a no-op.
template <typename T>
void batch_norm_backward(const BatchNormGeometry& g, const T* input, const T* weight, const T* save_mean,
                         const T* save_invstd, const T* grad_output, bool batch_stats, T* grad_input, T* grad_weight,
                         T* grad_bias) {
  const std::int64_t count = g.count_per_channel();
  if (count == 0 || g.channels == 0) return;
  parallel_over_channels(g, [&](std::int64_t c) {
    const double mean = static_cast<double>(save_mean[c]);
    double sum_grad = 0.0, sum_grad_centred = 0.0;
    for_each_in_channel(g, c, [&](std::int64_t i) {
      const double grad = static_cast<double>(grad_output[i]);
      sum_grad += grad;
      sum_grad_centred += grad * (static_cast<double>(input[i]) - mean);
    });
    const double sum_grad_xhat = sum_grad_centred * static_cast<double>(save_invstd[c]);
    kernels::batch_norm_accumulate_parameter_grads(c, sum_grad, sum_grad_xhat, grad_weight, grad_bias);
    if (!grad_input) return;
    const auto gradient =
        kernels::batch_norm_gradient(c, count, weight, save_mean, save_invstd, sum_grad, sum_grad_xhat, batch_stats);
    for_each_in_channel(g, c, [&](std::int64_t i) {
      grad_input[i] = kernels::batch_norm_grad_input(input[i], grad_output[i], gradient);
    });
  });
}

}  // namespace minicnn::ops::cpu
