#pragma once
// Pooling geometry and the per-window / per-element pooling bodies shared by the CPU and CUDA
// backends (see host_device.hpp).
//
// Shapes: input [N, C, H, W] -> output [N, C, H_out, W_out]; `planes` = N * C. Every body
// works on one (image, channel) plane: `plane` points at its first element.
#include <cstdint>

#include "minicnn/host_device.hpp"

namespace minicnn::ops {

struct Pool2dGeometry {
  std::int64_t planes, in_height, in_width, out_height, out_width;
  std::int64_t kernel, stride;  // max pooling only
};

// PyTorch's adaptive pooling bins: [floor(i * in / out), ceil((i + 1) * in / out)).
MINICNN_HOST_DEVICE inline std::int64_t adaptive_start(std::int64_t i, std::int64_t in, std::int64_t out) {
  return (i * in) / out;
}
MINICNN_HOST_DEVICE inline std::int64_t adaptive_end(std::int64_t i, std::int64_t in, std::int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

}  // namespace minicnn::ops

namespace minicnn::ops::kernels {

// The offset inside the plane of the maximum of window (oh, ow). Ties keep the first maximum in
// scan order; a NaN wins, and a later NaN wins over an earlier one (PyTorch's rule:
// `val > max || isnan(val)`).
template <typename T>
MINICNN_HOST_DEVICE inline std::int64_t maxpool2d_argmax(const Pool2dGeometry& g, const T* plane, std::int64_t oh,
                                                         std::int64_t ow) {
  const std::int64_t top = oh * g.stride, left = ow * g.stride;
  std::int64_t best = top * g.in_width + left;
  T best_value = plane[best];
  for (std::int64_t kh = 0; kh < g.kernel; ++kh) {
    for (std::int64_t kw = 0; kw < g.kernel; ++kw) {
      const std::int64_t at = (top + kh) * g.in_width + left + kw;
      const T value = plane[at];
      if (value > best_value || value != value) {  // value != value: NaN (isnan is host-only)
        best = at;
        best_value = value;
      }
    }
  }
  return best;
}

// The gradient of input element (h, w) of a plane: the sum of grad_output over the windows
// that contain it and chose it as their maximum (the gather form of max-pool backward: one
// writer per element, no atomics). Windows are visited in output order, the order in which a
// scatter over outputs would add them, so both forms round identically.
template <typename T>
MINICNN_HOST_DEVICE inline T maxpool2d_grad_input(const Pool2dGeometry& g, const T* grad_output_plane,
                                                  const std::int32_t* argmax_plane, std::int64_t h, std::int64_t w) {
  // Window oh covers rows [oh * stride, oh * stride + kernel).
  const std::int64_t oh_first = h < g.kernel ? 0 : (h - g.kernel) / g.stride + 1;
  const std::int64_t ow_first = w < g.kernel ? 0 : (w - g.kernel) / g.stride + 1;
  const std::int64_t oh_last = h / g.stride < g.out_height - 1 ? h / g.stride : g.out_height - 1;
  const std::int64_t ow_last = w / g.stride < g.out_width - 1 ? w / g.stride : g.out_width - 1;
  const std::int64_t offset = h * g.in_width + w;
  T sum = T(0);
  for (std::int64_t oh = oh_first; oh <= oh_last; ++oh)
    for (std::int64_t ow = ow_first; ow <= ow_last; ++ow)
      if (argmax_plane[oh * g.out_width + ow] == offset) sum += grad_output_plane[oh * g.out_width + ow];
  return sum;
}

// Output (oh, ow) of adaptive average pooling: the mean of its bin.
template <typename T>
MINICNN_HOST_DEVICE inline T adaptive_avg_pool2d_output(const Pool2dGeometry& g, const T* plane, std::int64_t oh,
                                                        std::int64_t ow) {
  const std::int64_t h0 = adaptive_start(oh, g.in_height, g.out_height),
                     h1 = adaptive_end(oh, g.in_height, g.out_height);
  const std::int64_t w0 = adaptive_start(ow, g.in_width, g.out_width), w1 = adaptive_end(ow, g.in_width, g.out_width);
  T sum = T(0);
  for (std::int64_t h = h0; h < h1; ++h)
    for (std::int64_t w = w0; w < w1; ++w) sum += plane[h * g.in_width + w];
  return sum / static_cast<T>((h1 - h0) * (w1 - w0));
}

// The gradient of input element (h, w): each output's gradient is spread evenly over its bin,
// and bins may overlap. The bins containing row h are exactly oh in
// [floor(h * out / in), ceil((h + 1) * out / in)) - adaptive_start/end with in and out swapped.
// Bins are visited in output order, as a scatter over outputs adds them.
template <typename T>
MINICNN_HOST_DEVICE inline T adaptive_avg_pool2d_grad_input(const Pool2dGeometry& g, const T* grad_output_plane,
                                                            std::int64_t h, std::int64_t w) {
  const std::int64_t oh_first = adaptive_start(h, g.out_height, g.in_height);
  const std::int64_t oh_end = adaptive_end(h, g.out_height, g.in_height);
  const std::int64_t ow_first = adaptive_start(w, g.out_width, g.in_width);
  const std::int64_t ow_end = adaptive_end(w, g.out_width, g.in_width);
  T sum = T(0);
  for (std::int64_t oh = oh_first; oh < oh_end; ++oh) {
    const std::int64_t rows =
        adaptive_end(oh, g.in_height, g.out_height) - adaptive_start(oh, g.in_height, g.out_height);
    for (std::int64_t ow = ow_first; ow < ow_end; ++ow) {
      const std::int64_t cols = adaptive_end(ow, g.in_width, g.out_width) - adaptive_start(ow, g.in_width, g.out_width);
      sum += grad_output_plane[oh * g.out_width + ow] / static_cast<T>(rows * cols);
    }
  }
  return sum;
}

}  // namespace minicnn::ops::kernels
