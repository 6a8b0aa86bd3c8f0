#pragma once
// The convolution geometry (both backends), and im2col / col2im per element, shared by the CUDA
// backend's kernels and checked on the CPU by tests/test_shared_kernels.cpp. (The CPU convolution
// has its own tuned loops in ops/cpu/conv.hpp.)
//
// Shapes: image [C_in, H, W]; column [C_in K_h K_w, H_out W_out] with row (c, kh, kw) and
// column (oh, ow): column[(c, kh, kw), (oh, ow)] = image[c, oh*stride - pad + kh, ow*stride - pad + kw],
// 0 outside the image.
#include <cstdint>

#include "minicnn/host_device.hpp"

namespace minicnn::ops {

// The geometry of a 2-D convolution, shared by the CPU and CUDA backends.
// Shapes: input [N, C_in, H, W], weight [C_out, C_in, K_h, K_w], output [N, C_out, H_out, W_out].
struct Conv2dGeometry {
  std::int64_t batch, in_channels, in_height, in_width;
  std::int64_t out_channels, kernel_height, kernel_width, stride, padding;
  std::int64_t out_height, out_width;

  MINICNN_HOST_DEVICE std::int64_t column_rows() const { return in_channels * kernel_height * kernel_width; }
  MINICNN_HOST_DEVICE std::int64_t column_cols() const { return out_height * out_width; }
  MINICNN_HOST_DEVICE std::int64_t input_image_size() const { return in_channels * in_height * in_width; }
  MINICNN_HOST_DEVICE std::int64_t output_image_size() const { return out_channels * out_height * out_width; }
  // FLOPs (multiply-add = 2) of one pass (forward, backward-data or backward-weights).
  double flops_per_pass() const {
    return 2.0 * static_cast<double>(batch) * static_cast<double>(out_channels) * static_cast<double>(column_rows()) *
           static_cast<double>(column_cols());
  }
};

}  // namespace minicnn::ops

namespace minicnn::ops::kernels {

// column[row, col] of one image.
template <typename T>
MINICNN_HOST_DEVICE inline T im2col_value(const Conv2dGeometry& g, const T* image, std::int64_t row, std::int64_t col) {
  const std::int64_t kw = row % g.kernel_width;
  const std::int64_t kh = (row / g.kernel_width) % g.kernel_height;
  const std::int64_t c = row / (g.kernel_width * g.kernel_height);
  const std::int64_t ih = (col / g.out_width) * g.stride - g.padding + kh;
  const std::int64_t iw = (col % g.out_width) * g.stride - g.padding + kw;
  if (ih < 0 || ih >= g.in_height || iw < 0 || iw >= g.in_width) return T(0);
  return image[(c * g.in_height + ih) * g.in_width + iw];
}

// image[c, ih, iw] of col2im (the adjoint of im2col): the sum of the column entries that im2col
// copies from that pixel, gathered (one writer per pixel, no atomics). Kernel offsets are
// visited in (kh, kw) order, the order in which a scatter over the column adds them.
template <typename T>
MINICNN_HOST_DEVICE inline T col2im_value(const Conv2dGeometry& g, const T* column, std::int64_t c, std::int64_t ih,
                                          std::int64_t iw) {
  const std::int64_t plane = g.out_height * g.out_width;
  T sum = T(0);
  for (std::int64_t kh = 0; kh < g.kernel_height; ++kh) {
    const std::int64_t y = ih + g.padding - kh;  // = oh * stride
    if (y < 0 || y % g.stride != 0 || y / g.stride >= g.out_height) continue;
    for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
      const std::int64_t x = iw + g.padding - kw;  // = ow * stride
      if (x < 0 || x % g.stride != 0 || x / g.stride >= g.out_width) continue;
      sum += column[((c * g.kernel_height + kh) * g.kernel_width + kw) * plane + (y / g.stride) * g.out_width +
                    x / g.stride];
    }
  }
  return sum;
}

}  // namespace minicnn::ops::kernels
