#pragma once
// Max pooling and adaptive average pooling, parallel over (image, channel) planes. The
// geometry and the per-window arithmetic are ops/kernels/pooling.hpp's, shared with the CUDA
// backend.
//
// Shapes: input [N, C, H, W] -> output [N, C, H_out, W_out]; `planes` = N * C.
#include <cstdint>

#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/ops/kernels/pooling.hpp"

namespace minicnn::ops::cpu {

// output = max over each window; argmax keeps the winning offset inside the input plane for
// backward. Ties and NaNs resolve as in PyTorch: the first maximum in scan order, NaN wins
// (see kernels::maxpool2d_argmax).
template <typename T>
void maxpool2d_forward(const Pool2dGeometry& g, const T* input, T* output, std::int32_t* argmax) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 16, [&](std::int64_t p) {
    const T* in = input + p * in_plane;
    for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
      for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
        const std::int64_t best = kernels::maxpool2d_argmax(g, in, oh, ow);
        const std::int64_t o = p * out_plane + oh * g.out_width + ow;
        output[o] = in[best];
        argmax[o] = static_cast<std::int32_t>(best);
      }
    }
  });
}

// grad_input = scatter of grad_output to the argmax positions (assigned). The CUDA backend
// gathers instead (kernels::maxpool2d_grad_input), adding in the same order.
template <typename T>
void maxpool2d_backward(const Pool2dGeometry& g, const T* grad_output, const std::int32_t* argmax, T* grad_input) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 16, [&](std::int64_t p) {
    T* grad_in = grad_input + p * in_plane;
    for (std::int64_t i = 0; i < in_plane; ++i) grad_in[i] = T(0);
    for (std::int64_t o = 0; o < out_plane; ++o) grad_in[argmax[p * out_plane + o]] += grad_output[p * out_plane + o];
  });
}

template <typename T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* input, T* output) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 64, [&](std::int64_t p) {
    const T* in = input + p * in_plane;
    for (std::int64_t oh = 0; oh < g.out_height; ++oh)
      for (std::int64_t ow = 0; ow < g.out_width; ++ow)
        output[p * out_plane + oh * g.out_width + ow] = kernels::adaptive_avg_pool2d_output(g, in, oh, ow);
  });
}

// grad_input = each output gradient spread evenly over its bin (assigned; bins may overlap),
// gathered per input element as the CUDA backend does.
template <typename T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* grad_output, T* grad_input) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 64, [&](std::int64_t p) {
    T* grad_in = grad_input + p * in_plane;
    const T* grad_out = grad_output + p * out_plane;
    for (std::int64_t h = 0; h < g.in_height; ++h)
      for (std::int64_t w = 0; w < g.in_width; ++w)
        grad_in[h * g.in_width + w] = kernels::adaptive_avg_pool2d_grad_input(g, grad_out, h, w);
  });
}

}  // namespace minicnn::ops::cpu
