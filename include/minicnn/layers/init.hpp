#pragma once
// PyTorch's default initialisation of Conv2d and Linear: weight = kaiming_uniform_(a = sqrt(5)),
// which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
#include <cmath>
#include <cstdint>

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

}  // namespace minicnn
