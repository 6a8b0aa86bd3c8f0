#pragma once
// The convolution geometry (both backends), and im2col / col2im per element, shared by the CUDA
// backend's kernels and checked on the CPU by tests/test_shared_kernels.cpp. (The CPU convolution
// has its own tuned loops in ops/cpu/conv.hpp.)
//
// Shapes: one group of an image [C_in / groups, H, W]; its column [C_in / groups K_h K_w,
// H_out W_out] with row (c, kh, kw) and column (oh, ow):
//   column[(c, kh, kw), (oh, ow)] = image[c, oh*stride_h - pad_h + kh*dilation_h,
//                                            ow*stride_w - pad_w + kw*dilation_w],
// 0 outside the image. Group g of an image starts at channel g * C_in / groups.
#include <cstdint>

#include "minicnn/host_device.hpp"

namespace minicnn::ops {

// The geometry of a 2-D convolution, shared by the CPU and CUDA backends, with PyTorch's
// arguments: per-axis stride, zero padding and dilation, and groups (groups == C_in: depthwise).
// Shapes: input [N, C_in, H, W], weight [C_out, C_in / groups, K_h, K_w],
// output [N, C_out, H_out, W_out], H_out = (H + 2 pad_h - dilation_h (K_h - 1) - 1) / stride_h + 1.
// Output channels [g C_out / groups, (g + 1) C_out / groups) see input channels
// [g C_in / groups, (g + 1) C_in / groups).
struct Conv2dGeometry {
  std::int64_t batch, in_channels, in_height, in_width;
  std::int64_t out_channels, kernel_height, kernel_width;
  std::int64_t stride_height, stride_width, padding_height, padding_width;
  std::int64_t dilation_height, dilation_width, groups;
  std::int64_t out_height, out_width;

  // The output size along one axis (PyTorch's rule); below 1 when the dilated kernel does not fit.
  MINICNN_HOST_DEVICE static std::int64_t output_size(std::int64_t in, std::int64_t kernel, std::int64_t stride,
                                                      std::int64_t padding, std::int64_t dilation) {
    const std::int64_t span = in + 2 * padding - dilation * (kernel - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
  }

  MINICNN_HOST_DEVICE std::int64_t group_in_channels() const { return in_channels / groups; }
  MINICNN_HOST_DEVICE std::int64_t group_out_channels() const { return out_channels / groups; }
  // The column matrix of one group of one image: [column_rows, column_cols]; a weight row.
  MINICNN_HOST_DEVICE std::int64_t column_rows() const { return group_in_channels() * kernel_height * kernel_width; }
  MINICNN_HOST_DEVICE std::int64_t column_cols() const { return out_height * out_width; }
  MINICNN_HOST_DEVICE std::int64_t input_image_size() const { return in_channels * in_height * in_width; }
  MINICNN_HOST_DEVICE std::int64_t output_image_size() const { return out_channels * out_height * out_width; }
  // The input channels of one group of one image.
  MINICNN_HOST_DEVICE std::int64_t input_group_size() const { return group_in_channels() * in_height * in_width; }
  MINICNN_HOST_DEVICE std::int64_t output_group_size() const { return group_out_channels() * out_height * out_width; }
  // Today's tuned shape: one stride, one padding, dilation 1, one group.
  MINICNN_HOST_DEVICE bool is_plain() const {
    return stride_height == stride_width && padding_height == padding_width && dilation_height == 1 &&
           dilation_width == 1 && groups == 1;
  }
  // FLOPs (multiply-add = 2) of one pass (forward, backward-data or backward-weights).
  double flops_per_pass() const {
    return 2.0 * static_cast<double>(batch) * static_cast<double>(out_channels) * static_cast<double>(column_rows()) *
           static_cast<double>(column_cols());
  }
};

}  // namespace minicnn::ops

namespace minicnn::ops::kernels {

// column[row, col] of one group of one image (`image` points at the group's first channel).
template <typename T>
MINICNN_HOST_DEVICE inline T im2col_value(const Conv2dGeometry& g, const T* image, std::int64_t row, std::int64_t col) {
  const std::int64_t kw = row % g.kernel_width;
  const std::int64_t kh = (row / g.kernel_width) % g.kernel_height;
  const std::int64_t c = row / (g.kernel_width * g.kernel_height);
  const std::int64_t ih = (col / g.out_width) * g.stride_height - g.padding_height + kh * g.dilation_height;
  const std::int64_t iw = (col % g.out_width) * g.stride_width - g.padding_width + kw * g.dilation_width;
  if (ih < 0 || ih >= g.in_height || iw < 0 || iw >= g.in_width) return T(0);
  return image[(c * g.in_height + ih) * g.in_width + iw];
}

// image[c, ih, iw] of col2im (the adjoint of im2col) for one group: the sum of the column
// entries that im2col copies from that pixel, gathered (one writer per pixel, no atomics).
// Kernel offsets are visited in (kh, kw) order, the order in which a scatter over the column
// adds them.
template <typename T>
MINICNN_HOST_DEVICE inline T col2im_value(const Conv2dGeometry& g, const T* column, std::int64_t c, std::int64_t ih,
                                          std::int64_t iw) {
  const std::int64_t plane = g.out_height * g.out_width;
  T sum = T(0);
  for (std::int64_t kh = 0; kh < g.kernel_height; ++kh) {
    const std::int64_t y = ih + g.padding_height - kh * g.dilation_height;  // = oh * stride_h
    if (y < 0 || y % g.stride_height != 0 || y / g.stride_height >= g.out_height) continue;
    for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
      const std::int64_t x = iw + g.padding_width - kw * g.dilation_width;  // = ow * stride_w
      if (x < 0 || x % g.stride_width != 0 || x / g.stride_width >= g.out_width) continue;
      sum += column[((c * g.kernel_height + kh) * g.kernel_width + kw) * plane + (y / g.stride_height) * g.out_width +
                    x / g.stride_width];
    }
  }
  return sum;
}

}  // namespace minicnn::ops::kernels
