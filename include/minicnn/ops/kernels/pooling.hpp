#pragma once
// Pooling geometry and the per-window / per-element pooling bodies shared by the CPU and CUDA
// backends (see host_device.hpp).
//
// Shapes: input [N, C, H, W] -> output [N, C, H_out, W_out]; `planes` = N * C. Every body
// works on one (image, channel) plane: `plane` points at its first element.
#include <cstdint>

#include "minicnn/host_device.hpp"
#include "minicnn/ops/kernels/elementwise.hpp"

namespace minicnn::ops {

// Window pooling (max and average) reads window (oh, ow) at rows oh*stride_h - pad_h +
// kh*dilation_h, kh < kernel_h (columns alike); padding is never chosen by a max and counts in
// an average's divisor only with count_include_pad. Adaptive pooling uses the sizes only.
struct Pool2dGeometry {
  std::int64_t planes, in_height, in_width, out_height, out_width;
  std::int64_t kernel_height, kernel_width, stride_height, stride_width;
  std::int64_t padding_height, padding_width, dilation_height, dilation_width;
  bool count_include_pad;  // average pooling only

  // PyTorch's output size along one axis (pooling_output_shape): with ceil_mode the last
  // window may run past the input, but it must start inside the input or its left padding.
  static std::int64_t output_size(std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                                  std::int64_t dilation, bool ceil_mode) {
    const std::int64_t span = in + 2 * padding - dilation * (kernel - 1) - 1;
    if (span < 0) return 0;
    std::int64_t out = (span + (ceil_mode ? stride - 1 : 0)) / stride + 1;
    if (ceil_mode && (out - 1) * stride >= in + padding) --out;
    return out;
  }
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

// The first tap of a window (start, start + dilation, ...) that lies inside [0, in), and one
// past the last: taps [first, end) step `dilation`. first >= end when the window holds only
// padding (the layers reject such geometries).
MINICNN_HOST_DEVICE inline std::int64_t first_tap(std::int64_t start, std::int64_t dilation) {
  return start >= 0 ? start : start + ((-start + dilation - 1) / dilation) * dilation;
}
MINICNN_HOST_DEVICE inline std::int64_t end_tap(std::int64_t start, std::int64_t kernel, std::int64_t dilation,
                                                std::int64_t in) {
  const std::int64_t end = start + (kernel - 1) * dilation + 1;
  return end < in ? end : in;
}

// The offset inside the plane of the maximum of window (oh, ow), padding excluded. Ties keep
// the first maximum in scan order; a NaN wins, and a later NaN wins over an earlier one
// (PyTorch's rule: `val > max || isnan(val)`).
template <typename T>
MINICNN_HOST_DEVICE inline std::int64_t maxpool2d_argmax(const Pool2dGeometry& g, const T* plane, std::int64_t oh,
                                                         std::int64_t ow) {
  const std::int64_t top = oh * g.stride_height - g.padding_height, left = ow * g.stride_width - g.padding_width;
  const std::int64_t h0 = first_tap(top, g.dilation_height), w0 = first_tap(left, g.dilation_width);
  const std::int64_t h1 = end_tap(top, g.kernel_height, g.dilation_height, g.in_height);
  const std::int64_t w1 = end_tap(left, g.kernel_width, g.dilation_width, g.in_width);
  std::int64_t best = h0 * g.in_width + w0;
  T best_value = plane[best];
  for (std::int64_t h = h0; h < h1; h += g.dilation_height) {
    for (std::int64_t w = w0; w < w1; w += g.dilation_width) {
      const std::int64_t at = h * g.in_width + w;
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
// scatter over outputs would add them, so both forms round identically. With `output_plane`
// (the pool's forward output, when its input is a ReLU's output), each window's gradient is
// first passed through that ReLU's gradient, relu_grad(output, grad): a window's maximum is the
// input element it chose, so this is the ReLU's backward applied to the result.
template <typename T>
MINICNN_HOST_DEVICE inline T maxpool2d_grad_input(const Pool2dGeometry& g, const T* grad_output_plane,
                                                  const std::int32_t* argmax_plane, std::int64_t h, std::int64_t w,
                                                  const T* output_plane = nullptr) {
  // Row h is tap kh of window oh when h = oh * stride - pad + kh * dilation. Taps are visited
  // from the last to the first, so windows come in increasing oh (and ow) order.
  const std::int64_t offset = h * g.in_width + w;
  T sum = T(0);
  for (std::int64_t kh = g.kernel_height - 1; kh >= 0; --kh) {
    const std::int64_t y = h + g.padding_height - kh * g.dilation_height;  // = oh * stride_h
    if (y < 0 || y % g.stride_height != 0 || y / g.stride_height >= g.out_height) continue;
    const std::int64_t oh = y / g.stride_height;
    for (std::int64_t kw = g.kernel_width - 1; kw >= 0; --kw) {
      const std::int64_t x = w + g.padding_width - kw * g.dilation_width;  // = ow * stride_w
      if (x < 0 || x % g.stride_width != 0 || x / g.stride_width >= g.out_width) continue;
      const std::int64_t o = oh * g.out_width + x / g.stride_width;
      if (argmax_plane[o] == offset)
        sum += output_plane ? relu_grad(output_plane[o], grad_output_plane[o]) : grad_output_plane[o];
    }
  }
  return sum;
}

// The divisor of average-pooling window (oh, ow), PyTorch's rule: the window clipped to the
// padded input (a ceil_mode window may run past it), and further to the input itself unless
// count_include_pad.
MINICNN_HOST_DEVICE inline std::int64_t avg_pool2d_divisor(const Pool2dGeometry& g, std::int64_t oh, std::int64_t ow) {
  std::int64_t h0 = oh * g.stride_height - g.padding_height, w0 = ow * g.stride_width - g.padding_width;
  std::int64_t h1 = h0 + g.kernel_height, w1 = w0 + g.kernel_width;
  h1 = h1 < g.in_height + g.padding_height ? h1 : g.in_height + g.padding_height;
  w1 = w1 < g.in_width + g.padding_width ? w1 : g.in_width + g.padding_width;
  if (g.count_include_pad) return (h1 - h0) * (w1 - w0);
  h0 = h0 > 0 ? h0 : 0, w0 = w0 > 0 ? w0 : 0;
  h1 = h1 < g.in_height ? h1 : g.in_height, w1 = w1 < g.in_width ? w1 : g.in_width;
  return (h1 - h0) * (w1 - w0);
}

// Output (oh, ow) of average pooling (dilation 1): the sum of the window's input elements over
// its divisor.
template <typename T>
MINICNN_HOST_DEVICE inline T avg_pool2d_output(const Pool2dGeometry& g, const T* plane, std::int64_t oh,
                                               std::int64_t ow) {
  const std::int64_t top = oh * g.stride_height - g.padding_height, left = ow * g.stride_width - g.padding_width;
  const std::int64_t h0 = top > 0 ? top : 0, w0 = left > 0 ? left : 0;
  const std::int64_t h1 = end_tap(top, g.kernel_height, 1, g.in_height);
  const std::int64_t w1 = end_tap(left, g.kernel_width, 1, g.in_width);
  T sum = T(0);
  for (std::int64_t h = h0; h < h1; ++h)
    for (std::int64_t w = w0; w < w1; ++w) sum += plane[h * g.in_width + w];
  return sum / static_cast<T>(avg_pool2d_divisor(g, oh, ow));
}

// The gradient of input element (h, w) of average pooling: grad_output / divisor summed over
// the windows that contain it, in increasing (oh, ow) order as a scatter over outputs adds them.
template <typename T>
MINICNN_HOST_DEVICE inline T avg_pool2d_grad_input(const Pool2dGeometry& g, const T* grad_output_plane, std::int64_t h,
                                                   std::int64_t w) {
  T sum = T(0);
  for (std::int64_t kh = g.kernel_height - 1; kh >= 0; --kh) {
    const std::int64_t y = h + g.padding_height - kh;
    if (y < 0 || y % g.stride_height != 0 || y / g.stride_height >= g.out_height) continue;
    const std::int64_t oh = y / g.stride_height;
    for (std::int64_t kw = g.kernel_width - 1; kw >= 0; --kw) {
      const std::int64_t x = w + g.padding_width - kw;
      if (x < 0 || x % g.stride_width != 0 || x / g.stride_width >= g.out_width) continue;
      const std::int64_t ow = x / g.stride_width;
      sum += grad_output_plane[oh * g.out_width + ow] / static_cast<T>(avg_pool2d_divisor(g, oh, ow));
    }
  }
  return sum;
}

// The offset inside the plane of the maximum of adaptive bin (oh, ow), with the tie and NaN
// rules of maxpool2d_argmax.
template <typename T>
MINICNN_HOST_DEVICE inline std::int64_t adaptive_max_pool2d_argmax(const Pool2dGeometry& g, const T* plane,
                                                                   std::int64_t oh, std::int64_t ow) {
  const std::int64_t h0 = adaptive_start(oh, g.in_height, g.out_height),
                     h1 = adaptive_end(oh, g.in_height, g.out_height);
  const std::int64_t w0 = adaptive_start(ow, g.in_width, g.out_width), w1 = adaptive_end(ow, g.in_width, g.out_width);
  std::int64_t best = h0 * g.in_width + w0;
  T best_value = plane[best];
  for (std::int64_t h = h0; h < h1; ++h) {
    for (std::int64_t w = w0; w < w1; ++w) {
      const T value = plane[h * g.in_width + w];
      if (value > best_value || value != value) {  // value != value: NaN
        best = h * g.in_width + w;
        best_value = value;
      }
    }
  }
  return best;
}

// The gradient of input element (h, w) of adaptive max pooling: the sum of grad_output over
// the bins that contain it and chose it, in output order (bins as in
// adaptive_avg_pool2d_grad_input).
template <typename T>
MINICNN_HOST_DEVICE inline T adaptive_max_pool2d_grad_input(const Pool2dGeometry& g, const T* grad_output_plane,
                                                            const std::int32_t* argmax_plane, std::int64_t h,
                                                            std::int64_t w) {
  const std::int64_t oh_first = adaptive_start(h, g.out_height, g.in_height);
  const std::int64_t oh_end = adaptive_end(h, g.out_height, g.in_height);
  const std::int64_t ow_first = adaptive_start(w, g.out_width, g.in_width);
  const std::int64_t ow_end = adaptive_end(w, g.out_width, g.in_width);
  const std::int64_t offset = h * g.in_width + w;
  T sum = T(0);
  for (std::int64_t oh = oh_first; oh < oh_end; ++oh)
    for (std::int64_t ow = ow_first; ow < ow_end; ++ow)
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
