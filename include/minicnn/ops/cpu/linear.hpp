#pragma once
// Fully connected layer: y = x W^T + b. Small in our models, so single-threaded.
//
// Shapes: input [N, in]  weight [out, in]  bias [out]  output [N, out]
#include <cstdint>

#include "minicnn/ops/cpu/gemm.hpp"

namespace minicnn::ops::cpu {

template <typename T>
void linear_forward(std::int64_t batch, std::int64_t in_features, std::int64_t out_features, const T* input,
                    const T* weight, const T* bias, T* output) {
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t o = 0; o < out_features; ++o) output[n * out_features + o] = bias ? bias[o] : T(0);
  gemm(false, true, batch, out_features, in_features, T(1), input, in_features, weight, in_features, T(1), output,
       out_features);
}

// grad_input = grad_output W (assigned, skipped when null); grad_weight += grad_output^T x;
// grad_bias += column sums of grad_output.
template <typename T>
void linear_backward(std::int64_t batch, std::int64_t in_features, std::int64_t out_features, const T* input,
                     const T* weight, const T* grad_output, T* grad_input, T* grad_weight, T* grad_bias) {
  if (grad_input)
    gemm(false, false, batch, in_features, out_features, T(1), grad_output, out_features, weight, in_features, T(0),
         grad_input, in_features);
  gemm(true, false, out_features, in_features, batch, T(1), grad_output, out_features, input, in_features, T(1),
       grad_weight, in_features);
  if (grad_bias)
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t o = 0; o < out_features; ++o) grad_bias[o] += grad_output[n * out_features + o];
}

}  // namespace minicnn::ops::cpu
