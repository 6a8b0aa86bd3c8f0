#pragma once
// Max pooling and adaptive average pooling, parallel over (image, channel) planes.
//
// Shapes: input [N, C, H, W] -> output [N, C, H_out, W_out]; `planes` = N * C.
#include <cmath>
#include <cstdint>

#include "minicnn/ops/cpu/parallel.hpp"

namespace minicnn::ops {

struct Pool2dGeometry {
  std::int64_t planes, in_height, in_width, out_height, out_width;
  std::int64_t kernel, stride;  // max pooling only
};

// PyTorch's adaptive pooling bins: [floor(i * in / out), ceil((i + 1) * in / out)).
inline std::int64_t adaptive_start(std::int64_t i, std::int64_t in, std::int64_t out) { return (i * in) / out; }
inline std::int64_t adaptive_end(std::int64_t i, std::int64_t in, std::int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

}  // namespace minicnn::ops

namespace minicnn::ops::cpu {

// output = max over each window; argmax keeps the winning offset inside the input plane for
// backward. Ties and NaNs resolve as in PyTorch: the first maximum in scan order, NaN wins.
template <typename T>
void maxpool2d_forward(const Pool2dGeometry& g, const T* input, T* output, std::int32_t* argmax) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 16, [&](std::int64_t p) {
    const T* in = input + p * in_plane;
    for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
      for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
        std::int64_t best = (oh * g.stride) * g.in_width + ow * g.stride;
        for (std::int64_t kh = 0; kh < g.kernel; ++kh) {
          for (std::int64_t kw = 0; kw < g.kernel; ++kw) {
            const std::int64_t at = (oh * g.stride + kh) * g.in_width + ow * g.stride + kw;
            if (in[at] > in[best] || std::isnan(in[at])) best = at;
            if (std::isnan(in[best])) break;
          }
        }
        const std::int64_t o = p * out_plane + oh * g.out_width + ow;
        output[o] = in[best];
        argmax[o] = static_cast<std::int32_t>(best);
      }
    }
  });
}

// grad_input = scatter of grad_output to the argmax positions (assigned).
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
    for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
      const std::int64_t h0 = adaptive_start(oh, g.in_height, g.out_height), h1 = adaptive_end(oh, g.in_height, g.out_height);
      for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
        const std::int64_t w0 = adaptive_start(ow, g.in_width, g.out_width), w1 = adaptive_end(ow, g.in_width, g.out_width);
        T sum = T(0);
        for (std::int64_t h = h0; h < h1; ++h)
          for (std::int64_t w = w0; w < w1; ++w) sum += in[h * g.in_width + w];
        output[p * out_plane + oh * g.out_width + ow] = sum / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
  });
}

// grad_input = each output gradient spread evenly over its bin (assigned; bins may overlap).
template <typename T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* grad_output, T* grad_input) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 64, [&](std::int64_t p) {
    T* grad_in = grad_input + p * in_plane;
    for (std::int64_t i = 0; i < in_plane; ++i) grad_in[i] = T(0);
    for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
      const std::int64_t h0 = adaptive_start(oh, g.in_height, g.out_height), h1 = adaptive_end(oh, g.in_height, g.out_height);
      for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
        const std::int64_t w0 = adaptive_start(ow, g.in_width, g.out_width), w1 = adaptive_end(ow, g.in_width, g.out_width);
        const T share = grad_output[p * out_plane + oh * g.out_width + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
        for (std::int64_t h = h0; h < h1; ++h)
          for (std::int64_t w = w0; w < w1; ++w) grad_in[h * g.in_width + w] += share;
      }
    }
  });
}

}  // namespace minicnn::ops::cpu
