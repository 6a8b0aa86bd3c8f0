#pragma once
// Element-wise kernels: ReLU and dropout. Work is split in fixed blocks so large tensors use
// every thread and small ones run inline. The per-element arithmetic is ops/kernels/
// elementwise.hpp's, shared with the CUDA backend.
#include <algorithm>
#include <cstdint>

#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/ops/kernels/elementwise.hpp"

namespace minicnn::ops::cpu {

inline constexpr std::int64_t elementwise_block = 16384;

template <typename Body>
void parallel_blocks(std::int64_t count, Body&& body) {
  const std::int64_t blocks = (count + elementwise_block - 1) / elementwise_block;
  parallel_for(blocks, 2, [&](std::int64_t b) {
    body(b * elementwise_block, std::min(count, (b + 1) * elementwise_block));
  });
}

template <typename T>
void relu_forward(std::int64_t count, const T* input, T* output) {
  parallel_blocks(count, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t i = first; i < last; ++i) output[i] = kernels::relu(input[i]);
  });
}

// grad_input = grad_output where output > 0 (PyTorch's threshold_backward), else 0.
template <typename T>
void relu_backward(std::int64_t count, const T* output, const T* grad_output, T* grad_input) {
  parallel_blocks(count, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t i = first; i < last; ++i) grad_input[i] = kernels::relu_grad(output[i], grad_output[i]);
  });
}

// Inverted dropout: element i is kept when random_unit(seed, first_counter + i) >= p and then
// scaled by 1 / (1 - p). mask[i] holds that factor (0 or 1 / (1 - p)) for backward.
template <typename T>
void dropout_forward(std::int64_t count, double p, std::uint64_t seed, std::uint64_t first_counter,
                     const T* input, T* output, T* mask) {
  const T scale = kernels::dropout_scale<T>(p);
  parallel_blocks(count, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t i = first; i < last; ++i) {
      mask[i] = kernels::dropout_mask(seed, first_counter + static_cast<std::uint64_t>(i), p, scale);
      output[i] = input[i] * mask[i];
    }
  });
}

template <typename T>
void dropout_backward(std::int64_t count, const T* mask, const T* grad_output, T* grad_input) {
  parallel_blocks(count, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t i = first; i < last; ++i) grad_input[i] = grad_output[i] * mask[i];
  });
}

}  // namespace minicnn::ops::cpu
