#pragma once
// Element-wise kernel bodies shared by the CPU and CUDA backends (see host_device.hpp): the CPU
// loops in ops/cpu/elementwise.hpp and the CUDA kernels in src/cuda/ call these per element.
#include <cstdint>

#include "minicnn/host_device.hpp"
#include "minicnn/random.hpp"

namespace minicnn::ops::kernels {

template <typename T>
MINICNN_HOST_DEVICE inline T relu(T input) {
  return input > T(0) ? input : T(0);
}

// d relu / d input from the forward output: grad_output where output > 0 (PyTorch's
// threshold_backward), else 0.
template <typename T>
MINICNN_HOST_DEVICE inline T relu_grad(T output, T grad_output) {
  return output > T(0) ? grad_output : T(0);
}

// Inverted dropout's scale for kept elements, 1 / (1 - p); 0 when everything is dropped.
template <typename T>
MINICNN_HOST_DEVICE inline T dropout_scale(double p) {
  return p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
}

// The mask factor of the element drawing `counter`: kept (scale) when
// random_unit(seed, counter) >= p, else 0. Pure integer hashing plus one exact conversion, so
// both backends produce bit-identical masks.
template <typename T>
MINICNN_HOST_DEVICE inline T dropout_mask(std::uint64_t seed, std::uint64_t counter, double p, T scale) {
  return random_unit(seed, counter) >= p ? scale : T(0);
}

}  // namespace minicnn::ops::kernels
