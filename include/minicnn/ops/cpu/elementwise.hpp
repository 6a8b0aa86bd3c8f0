#pragma once
// Element-wise kernels: ReLU, dropout, addition and channel scaling. Work is split in fixed blocks so large tensors use
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

// grad_input = output <= 0 ? 0 : grad_output (PyTorch's threshold_backward: a NaN output passes it).
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

// output = a + b, all [count]; output may alias a or b. (Its backward is the identity for both
// operands: a residual block hands grad_output to both branches, no op needed.)
template <typename T>
void add(std::int64_t count, const T* a, const T* b, T* output) {
  parallel_blocks(count, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t i = first; i < last; ++i) output[i] = a[i] + b[i];
  });
}

// The plane count below which a loop over whole planes runs on the calling thread: fewer than
// two elementwise_blocks of elements in all.
inline std::int64_t min_parallel_planes(std::int64_t plane_size) {
  return std::max<std::int64_t>(2, 2 * elementwise_block / std::max<std::int64_t>(plane_size, 1));
}

// Squeeze-and-excitation's multiply: input [planes, plane_size] (planes = N * C, plane_size =
// H * W), scale [planes] -> output [planes, plane_size] = input * scale[plane]. output may
// alias input.
template <typename T>
void channel_scale_forward(std::int64_t planes, std::int64_t plane_size, const T* input, const T* scale, T* output) {
  parallel_for(planes, min_parallel_planes(plane_size), [&](std::int64_t plane) {
    const T factor = scale[plane];
    const T* source = input + plane * plane_size;
    T* target = output + plane * plane_size;
    for (std::int64_t i = 0; i < plane_size; ++i) target[i] = source[i] * factor;
  });
}

// grad_input [planes, plane_size] = grad_output * scale[plane] (ASSIGNED, skipped when null);
// grad_scale [planes] = the sum over the plane of grad_output * input (ASSIGNED), each plane
// summed in index order by one thread, so the result is the same for every thread count.
template <typename T>
void channel_scale_backward(std::int64_t planes, std::int64_t plane_size, const T* input, const T* scale,
                            const T* grad_output, T* grad_input, T* grad_scale) {
  parallel_for(planes, min_parallel_planes(plane_size), [&](std::int64_t plane) {
    const std::int64_t offset = plane * plane_size;
    // grad_scale first: grad_input may alias grad_output.
    grad_scale[plane] = kernels::channel_scale_grad(plane_size, input + offset, grad_output + offset);
    if (grad_input) {
      const T factor = scale[plane];
      for (std::int64_t i = 0; i < plane_size; ++i) grad_input[offset + i] = grad_output[offset + i] * factor;
    }
  });
}

}  // namespace minicnn::ops::cpu
