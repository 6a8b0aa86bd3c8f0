#pragma once
// Element-wise kernel bodies shared by the CPU and CUDA backends (see host_device.hpp): the CPU
// loops in ops/cpu/elementwise.hpp and the CUDA kernels in src/cuda/ call these per element.
#include <cstdint>

#include "minicnn/host_device.hpp"
#include "minicnn/random.hpp"

namespace minicnn::ops::kernels {

// ReLU. `input <= 0 ? 0 : input` rather than `input > 0 ? input : 0`: a NaN input is returned
// (PyTorch propagates NaN), and every other input, -0 included, gives the bits it always gave
// (-0 -> +0).
template <typename T>
MINICNN_HOST_DEVICE inline T relu(T input) {
  return input <= T(0) ? T(0) : input;
}

// d relu / d input from the forward output: PyTorch's threshold_backward(grad, output, 0),
// `output <= 0 ? 0 : grad_output`, so the gradient passes through a NaN output.
template <typename T>
MINICNN_HOST_DEVICE inline T relu_grad(T output, T grad_output) {
  return output <= T(0) ? T(0) : grad_output;
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

// grad_scale of one (image, channel) plane of squeeze-and-excitation's channel scaling
// (output = input * scale): the sum over the plane's plane_size elements of
// grad_output * input, accumulated in index order (the same order on both backends and for
// every thread count).
template <typename T>
MINICNN_HOST_DEVICE inline T channel_scale_grad(std::int64_t plane_size, const T* input_plane,
                                                const T* grad_output_plane) {
  T sum = T(0);
  for (std::int64_t i = 0; i < plane_size; ++i) sum += grad_output_plane[i] * input_plane[i];
  return sum;
}

}  // namespace minicnn::ops::kernels
