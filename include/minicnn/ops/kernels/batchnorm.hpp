#pragma once
// Batch normalisation geometry and the per-channel / per-element bodies shared by the CPU and
// CUDA backends (see host_device.hpp). The backends differ only in how they walk the data and
// reduce it; every formula is written here once.
//
// Shapes: input [N, C, L] (BatchNorm2d's [N, C, H, W] with L = H W, BatchNorm1d's [N, C] with
// L = 1); element (n, c, l) sits at (n C + c) L + l. Per-channel vectors (weight, bias, running
// and saved statistics) are [C]. A channel holds count = N L values.
//
// Per-channel sums are taken in double for every T: a float channel of a 64-image batch of
// 28x28 maps holds n = 50,176 values, and a float running sum of n terms can be off by about
// n 2^-24 = 3e-3 relative, far more than float's own rounding of the result; in double the
// bound is n 2^-53 = 6e-12, invisible once the statistics are rounded to float.
#include <cmath>
#include <cstdint>

#include "minicnn/host_device.hpp"

namespace minicnn::ops {

struct BatchNormGeometry {
  std::int64_t batch, channels, plane;  // N, C, L

  MINICNN_HOST_DEVICE std::int64_t count_per_channel() const { return batch * plane; }
};

}  // namespace minicnn::ops

namespace minicnn::ops::kernels {

// Statistics of channel c from its batch: `mean` and `centred_square_sum` = sum (x - mean)^2
// over the count values. Writes save_mean[c] = mean and save_invstd[c] = 1 / sqrt(var + eps)
// with the biased var = centred_square_sum / count (what normalises the batch), and, when
// running_mean and running_var are not null, blends the unbiased variance
// centred_square_sum / (count - 1) into the running statistics with factor `momentum`
// (PyTorch's (1 - momentum) running + momentum batch; requires count > 1).
template <typename T>
MINICNN_HOST_DEVICE inline void batch_norm_store_batch_statistics(std::int64_t c, std::int64_t count, double mean,
                                                                  double centred_square_sum, double momentum,
                                                                  double eps, T* save_mean, T* save_invstd,
                                                                  T* running_mean, T* running_var) {
  using std::sqrt;
  const double variance = centred_square_sum / static_cast<double>(count);
  save_mean[c] = static_cast<T>(mean);
  save_invstd[c] = static_cast<T>(1.0 / sqrt(variance + eps));
  if (running_mean && running_var) {
    const double unbiased_variance = centred_square_sum / static_cast<double>(count - 1);
    running_mean[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(running_mean[c]) + momentum * mean);
    running_var[c] =
        static_cast<T>((1.0 - momentum) * static_cast<double>(running_var[c]) + momentum * unbiased_variance);
  }
}

// Evaluation: channel c is normalised with the running statistics.
template <typename T>
MINICNN_HOST_DEVICE inline void batch_norm_store_running_statistics(std::int64_t c, const T* running_mean,
                                                                    const T* running_var, double eps, T* save_mean,
                                                                    T* save_invstd) {
  using std::sqrt;
  save_mean[c] = running_mean[c];
  save_invstd[c] = static_cast<T>(1.0 / sqrt(static_cast<double>(running_var[c]) + eps));
}

// Channel c's forward map y = (x - mean) scale + shift, with scale = weight invstd and
// shift = bias (weight 1 and bias 0 when null: affine=False). Subtracting the mean before
// scaling keeps the result accurate when |mean| is large against the spread.
template <typename T>
struct BatchNormAffine {
  T mean, scale, shift;
};

template <typename T>
MINICNN_HOST_DEVICE inline BatchNormAffine<T> batch_norm_affine(std::int64_t c, const T* weight, const T* bias,
                                                                const T* save_mean, const T* save_invstd) {
  return {save_mean[c], weight ? weight[c] * save_invstd[c] : save_invstd[c], bias ? bias[c] : T(0)};
}

template <typename T>
MINICNN_HOST_DEVICE inline T batch_norm_output(T input, const BatchNormAffine<T>& affine) {
  return (input - affine.mean) * affine.scale + affine.shift;
}

// Channel c's backward map, from the channel sums sum_grad = sum g and
// sum_grad_xhat = sum g xhat (xhat = (x - mean) invstd):
//   batch statistics:   grad_input = (g - sum_grad / count - xhat sum_grad_xhat / count) weight invstd
//   running statistics: grad_input = g weight invstd (the statistics are constants)
template <typename T>
struct BatchNormGradient {
  T mean, invstd, scale;  // scale = weight invstd
  T mean_grad;            // sum_grad / count (0 with running statistics)
  T projection;           // sum_grad_xhat / count (0 with running statistics)
  bool batch_stats;
};

template <typename T>
MINICNN_HOST_DEVICE inline BatchNormGradient<T> batch_norm_gradient(std::int64_t c, std::int64_t count, const T* weight,
                                                                    const T* save_mean, const T* save_invstd,
                                                                    double sum_grad, double sum_grad_xhat,
                                                                    bool batch_stats) {
  const double n = static_cast<double>(count);
  return {save_mean[c],
          save_invstd[c],
          weight ? weight[c] * save_invstd[c] : save_invstd[c],
          batch_stats ? static_cast<T>(sum_grad / n) : T(0),
          batch_stats ? static_cast<T>(sum_grad_xhat / n) : T(0),
          batch_stats};
}

template <typename T>
MINICNN_HOST_DEVICE inline T batch_norm_grad_input(T input, T grad_output, const BatchNormGradient<T>& gradient) {
  if (!gradient.batch_stats) return grad_output * gradient.scale;
  const T xhat = (input - gradient.mean) * gradient.invstd;
  return (grad_output - gradient.mean_grad - xhat * gradient.projection) * gradient.scale;
}

// Finishes channel c's parameter gradients (ACCUMULATED; a null pointer skips it) from the
// channel sums sum_grad = sum g and sum_grad_xhat = sum g xhat.
template <typename T>
MINICNN_HOST_DEVICE inline void batch_norm_accumulate_parameter_grads(std::int64_t c, double sum_grad,
                                                                      double sum_grad_xhat, T* grad_weight,
                                                                      T* grad_bias) {
  if (grad_weight) grad_weight[c] += static_cast<T>(sum_grad_xhat);
  if (grad_bias) grad_bias[c] += static_cast<T>(sum_grad);
}

}  // namespace minicnn::ops::kernels
