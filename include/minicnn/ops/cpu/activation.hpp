#pragma once
// Element-wise activations on the CPU: one pass over the elements, split in the fixed blocks of
// parallel_blocks, with the per-element bodies of ops/kernels/activation.hpp (shared with the
// CUDA backend). The enum is resolved once per call, outside the loop.
#include <cstdint>

#include "minicnn/ops/cpu/elementwise.hpp"
#include "minicnn/ops/kernels/activation.hpp"

namespace minicnn::ops::cpu {

// input [count] -> output [count] (may be input itself). `parameter` is leaky_relu's slope.
template <typename T>
void activation_forward(Activation kind, T parameter, std::int64_t count, const T* input, T* output) {
  visit_activation(kind, [&](auto constant) {
    constexpr Activation activation = decltype(constant)::value;
    parallel_blocks(count, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t i = first; i < last; ++i)
        output[i] = kernels::activation_forward<activation>(input[i], parameter);
    });
  });
}

// grad_input [count] (ASSIGNED; may alias grad_output) from the forward's input and output and
// grad_output, all [count].
template <typename T>
void activation_backward(Activation kind, T parameter, std::int64_t count, const T* input, const T* output,
                         const T* grad_output, T* grad_input) {
  visit_activation(kind, [&](auto constant) {
    constexpr Activation activation = decltype(constant)::value;
    parallel_blocks(count, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t i = first; i < last; ++i)
        grad_input[i] = kernels::activation_backward<activation>(input[i], output[i], grad_output[i], parameter);
    });
  });
}

}  // namespace minicnn::ops::cpu
