#pragma once
// Weight initialisers as free functions, named as in torch.nn.init.
//
// init_pytorch_default: what Conv2d and Linear use when built (PyTorch's reset_parameters).
// kaiming_normal_, normal_, constant_: what a model applies to its layers afterwards, e.g.
// torchvision's ResNet:
//   conv weights:     kaiming_normal_(weight, FanMode::fan_out, Nonlinearity::relu)
//   BatchNorm:        constant_(weight, 1), constant_(bias, 0)
//
// The random ones draw from minicnn's counter-based Generator (Box-Muller normals, two counters
// per value), so they are deterministic for a seed but do not reproduce PyTorch's random stream
// value for value: only the distribution matches. They fill host tensors (initialise before
// model.to(Device::cuda)); constant_ works on either device.
#include <cmath>
#include <cstdint>
#include <string>

#include "minicnn/error.hpp"
#include "minicnn/random.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn {

template <typename T>
void init_pytorch_default(Tensor<T>& weight, Tensor<T>* bias, std::int64_t fan_in, Generator& gen) {
  // kaiming_uniform_ with a = sqrt(5): gain = sqrt(2 / (1 + a^2)), bound = gain * sqrt(3 / fan_in).
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  weight.uniform(static_cast<T>(-bound), static_cast<T>(bound), gen);
  if (bias) bias->uniform(static_cast<T>(-bound), static_cast<T>(bound), gen);
}

// Which fan a variance-preserving initialiser divides by: fan_in keeps the forward pass's
// activations at unit variance, fan_out the backward pass's gradients.
enum class FanMode { fan_in, fan_out };

// The nonlinearity after the layer, for calculate_gain().
enum class Nonlinearity { linear, relu, tanh };

struct Fans {
  std::int64_t fan_in;
  std::int64_t fan_out;
};

// The fans of a weight of shape [out, in, k...] (Linear [out, in], Conv2d [out, in, kh, kw]):
// fan_in = in * prod(k), fan_out = out * prod(k), as torch.nn.init._calculate_fan_in_and_fan_out.
inline Fans compute_fans(const Shape& shape) {
  if (shape.rank() < 2)
    throw error("compute_fans: expected a weight of rank >= 2 ([out, in, ...]), got shape " + shape.str());
  std::int64_t receptive_field = 1;
  for (int axis = 2; axis < shape.rank(); ++axis) receptive_field *= shape[axis];
  return Fans{shape[1] * receptive_field, shape[0] * receptive_field};
}

// The gain that keeps the variance through `nonlinearity`, as torch.nn.init.calculate_gain:
// linear 1 (also right for conv and sigmoid), relu sqrt(2), tanh 5/3.
inline double calculate_gain(Nonlinearity nonlinearity) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
      return 1.0;
    case Nonlinearity::relu:
      return std::sqrt(2.0);
    case Nonlinearity::tanh:
      return 5.0 / 3.0;
  }
  throw error("calculate_gain: unknown nonlinearity " + std::to_string(static_cast<int>(nonlinearity)));
}

// Fills `tensor` from N(mean, standard_deviation^2).
template <typename T>
void normal_(Tensor<T>& tensor, double mean, double standard_deviation, Generator& gen = default_generator()) {
  if (!(standard_deviation >= 0.0 && std::isfinite(standard_deviation) && std::isfinite(mean)))
    throw error("normal_: expected a finite mean and a finite standard deviation >= 0, got mean " +
                std::to_string(mean) + ", standard deviation " + std::to_string(standard_deviation));
  tensor.normal(static_cast<T>(mean), static_cast<T>(standard_deviation), gen);
}

// Fills `tensor` with `value` (a double, so constant_(weight, 1) works for any T).
template <typename T>
void constant_(Tensor<T>& tensor, double value) {
  tensor.fill(static_cast<T>(value));
}

// He et al. 2015: N(0, s^2) with s = gain / sqrt(fan), the fan chosen by `mode`. PyTorch's
// defaults (a = 0, mode fan_in, nonlinearity leaky_relu) give the same gain as relu, sqrt(2).
template <typename T>
void kaiming_normal_(Tensor<T>& tensor, FanMode mode = FanMode::fan_in, Nonlinearity nonlinearity = Nonlinearity::relu,
                     Generator& gen = default_generator()) {
  const Fans fans = compute_fans(tensor.shape());
  // A weight with no elements has nothing to fill (PyTorch returns it unchanged, too).
  if (tensor.empty()) return;
  const std::int64_t fan = mode == FanMode::fan_in ? fans.fan_in : fans.fan_out;
  const double standard_deviation = calculate_gain(nonlinearity) / std::sqrt(static_cast<double>(fan));
  tensor.normal(T(0), static_cast<T>(standard_deviation), gen);
}

}  // namespace minicnn
