#pragma once
// Per-element optimiser updates shared by the CPU and CUDA backends (see host_device.hpp). The
// optimiser computes the step's scalars once on the host (bias corrections, step size) and
// passes them in a coefficients struct; the bodies are PyTorch's single-tensor updates.
#include <cmath>

#include "minicnn/host_device.hpp"

namespace minicnn::ops::kernels {

template <typename T>
struct AdamCoefficients {
  T step_size;              // lr / (1 - beta1^t)
  T bias_correction2_sqrt;  // sqrt(1 - beta2^t)
  T beta1, beta2, one_minus_beta1, one_minus_beta2, eps;
  T weight_decay;         // Adam: added to the gradient as weight_decay * p
  T decay_factor;         // AdamW: p *= 1 - lr * weight_decay
  bool decoupled;         // AdamW
  bool has_weight_decay;  // weight_decay != 0
};

//   Adam:  g += weight_decay * p          AdamW: p *= 1 - lr * weight_decay
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
template <typename T>
MINICNN_HOST_DEVICE inline void adam_update(const AdamCoefficients<T>& c, T& value, T grad, T& exp_avg, T& exp_avg_sq) {
  using std::sqrt;
  T g = grad;
  if (c.decoupled)
    value *= c.decay_factor;
  else if (c.has_weight_decay)
    g += c.weight_decay * value;
  exp_avg = exp_avg * c.beta1 + c.one_minus_beta1 * g;
  exp_avg_sq = exp_avg_sq * c.beta2 + c.one_minus_beta2 * g * g;
  const T denom = sqrt(exp_avg_sq) / c.bias_correction2_sqrt + c.eps;
  value += -c.step_size * (exp_avg / denom);
}

template <typename T>
struct SgdCoefficients {
  T lr, momentum, one_minus_dampening, weight_decay;
  bool has_weight_decay, has_momentum, nesterov;
  bool first_step;  // the momentum buffer starts as the first gradient
};

//   g += weight_decay * p;  b = g (first step) or momentum b + (1 - dampening) g
//   g = nesterov ? g + momentum b : b;  p -= lr g
template <typename T>
MINICNN_HOST_DEVICE inline void sgd_update(const SgdCoefficients<T>& c, T& value, T grad, T& momentum_buffer) {
  T g = grad;
  if (c.has_weight_decay) g += c.weight_decay * value;
  if (c.has_momentum) {
    momentum_buffer = c.first_step ? g : momentum_buffer * c.momentum + c.one_minus_dampening * g;
    g = c.nesterov ? g + c.momentum * momentum_buffer : momentum_buffer;
  }
  value += -c.lr * g;
}

}  // namespace minicnn::ops::kernels
