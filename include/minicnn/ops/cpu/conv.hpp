#pragma once
// 2-D convolution, parallel over images with a single-threaded GEMM inside (see docs/design.md,
// "Why im2col", and docs/performance.md).
//
// Shapes:  input [N, C_in, H, W]   weight [C_out, C_in, K_h, K_w]   bias [C_out]
//          output [N, C_out, H_out, W_out],  H_out = (H + 2 pad - K_h) / stride + 1
// (the general geometry, with per-axis stride / padding, dilation and groups, is described in
// ops/kernels/conv.hpp: weight [C_out, C_in / groups, K_h, K_w]).
//
// Stride 1 (every FashionCNN layer) uses "implicit im2col": each image is copied once into a
// zero-padded plane [C_in, H + 2 pad, row], and the GEMM reads element (position, tap) of the
// im2col matrix as padded[position + tap], position = oh * row + ow and tap = c * plane +
// kh * row + kw (gemm_offsets' two offset tables): no im2col copy (9x the image) and no col2im.
// The GEMM's rows are the output positions and its columns the output channels, so its tile
// runs over valid positions only and its vectors over channels, and the [positions, channels]
// result is transposed into the output planes (adding the bias). Backward-data is the same
// kernel run on the padded grad_output with the flipped, transposed weights.
// Other strides, and every geometry that is not "plain" (Conv2dGeometry::is_plain: per-axis
// strides or paddings that differ, dilation, groups), use explicit im2col + GEMM per group (+
// col2im for backward-data): slow but general, and for a plain geometry the same arithmetic as
// before the general arguments existed. A 3x3 layer with one
// input channel (conv1) runs forward and backward-weights on the same padded plane and grid with
// the direct loops of conv_direct.hpp instead of the GEMM.
//
// The weight gradient sums over images in fixed chunks of conv_reduction_chunk images whose
// partial sums are then added in chunk order: the result is bit-identical for any thread count.
#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "minicnn/ops/cpu/conv_direct.hpp"
#include "minicnn/ops/cpu/gemm.hpp"
#include "minicnn/ops/cpu/lanes.hpp"
#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/ops/cpu/transpose.hpp"
#include "minicnn/ops/kernels/conv.hpp"
#include "minicnn/ops/kernels/elementwise.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::ops {

// Scratch memory a convolution keeps between calls, so a training step allocates nothing
// after the first. Grown on demand, never shrunk. Per-thread buffers are indexed by
// minicnn::thread_index().
template <typename T>
struct Conv2dWorkspace {
  std::vector<Tensor<T>> padded;        // per thread: the zero-padded image (or grad_output image)
  std::vector<Tensor<T>> result;        // per thread: GEMM result [positions, channels] / grad_output^T
  std::vector<Tensor<T>> columns;       // per thread: explicit im2col buffer of one group
  Tensor<T> packed_weight;              // weight^T [taps, C_out] or the flipped weight [taps, C_in]
  // Offset tables of gemm_offsets: taps and output positions in the padded planes, and the rows
  // of packed_weight and of grad_output^T.
  std::vector<std::int64_t> taps, positions, weight_rows, transposed_rows;
  Tensor<T> partial_grad_weight;        // [chunks + 1, C_in / groups K_h K_w, C_out]; the last one sums them
  Tensor<T> partial_grad_bias;          // [chunks, C_out]
};

// The weight gradient sums over images. To give bit-identical results for any thread count,
// images are summed in fixed chunks of this many, and the chunks are then added in order.
inline constexpr std::int64_t conv_reduction_chunk = 4;

}  // namespace minicnn::ops

namespace minicnn::ops::cpu {

// One group of an image (`image` points at its first channel) to its column:
// column[(c, kh, kw), (oh, ow)] = image[c, oh*stride_h - pad_h + kh*dilation_h,
//                                          ow*stride_w - pad_w + kw*dilation_w], 0 outside.
template <typename T>
void im2col(const Conv2dGeometry& g, const T* image, T* column) {
  const std::int64_t plane = g.out_height * g.out_width;
  for (std::int64_t c = 0; c < g.group_in_channels(); ++c) {
    const T* channel = image + c * g.in_height * g.in_width;
    for (std::int64_t kh = 0; kh < g.kernel_height; ++kh) {
      for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
        T* row = column + ((c * g.kernel_height + kh) * g.kernel_width + kw) * plane;
        for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
          const std::int64_t ih = oh * g.stride_height - g.padding_height + kh * g.dilation_height;
          T* out = row + oh * g.out_width;
          if (ih < 0 || ih >= g.in_height) {
            std::fill(out, out + g.out_width, T(0));
            continue;
          }
          const T* in = channel + ih * g.in_width;
          for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
            const std::int64_t iw = ow * g.stride_width - g.padding_width + kw * g.dilation_width;
            out[ow] = (iw >= 0 && iw < g.in_width) ? in[iw] : T(0);
          }
        }
      }
    }
  }
}

// The adjoint of im2col, for one group: image += fold(column). `image` (the group's first
// channel) must be zeroed by the caller.
template <typename T>
void col2im(const Conv2dGeometry& g, const T* column, T* image) {
  const std::int64_t plane = g.out_height * g.out_width;
  for (std::int64_t c = 0; c < g.group_in_channels(); ++c) {
    T* channel = image + c * g.in_height * g.in_width;
    for (std::int64_t kh = 0; kh < g.kernel_height; ++kh) {
      for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
        const T* row = column + ((c * g.kernel_height + kh) * g.kernel_width + kw) * plane;
        for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
          const std::int64_t ih = oh * g.stride_height - g.padding_height + kh * g.dilation_height;
          if (ih < 0 || ih >= g.in_height) continue;
          const T* in = row + oh * g.out_width;
          T* out = channel + ih * g.in_width;
          for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
            const std::int64_t iw = ow * g.stride_width - g.padding_width + kw * g.dilation_width;
            if (iw >= 0 && iw < g.in_width) out[iw] += in[ow];
          }
        }
      }
    }
  }
}

namespace detail {

// The padded planes of the implicit path (plain geometries only: one padding on both axes).
// Forward and backward-weights pad the input by `padding`; backward-data pads grad_output by
// kernel - 1 - padding (a full correlation).
struct PaddedPlane {
  std::int64_t channels, height, width;  // unpadded source
  std::int64_t pad_top, pad_left;        // zeros before the source rows / columns
  std::int64_t padded_height, padded_width;
  std::int64_t plane() const { return padded_height * padded_width; }
  // Plus a zeroed tail: conv1's direct loops read whole 16-lane steps past the last output.
  std::int64_t buffer_size() const { return channels * plane() + gemm_nr; }
};

// Neighbouring rows share their padding columns: the zeros right of row h are the zeros left of
// row h + 1, so a row is width + pad long, not width + 2 pad. A tap (kh, kw) that runs off the
// right edge of row h lands in the left padding of row h + 1 (or in the bottom rows / zeroed
// tail), which reads zero just the same. That holds while every output fits in a row,
// width + 2 pad - kernel + 1 <= width + pad, i.e. pad <= kernel - 1; larger pads get a wider row.
// It keeps the planes small: 15 columns per 14 outputs (conv3, conv4) instead of 16.
inline std::int64_t shared_pad_width(std::int64_t width, std::int64_t pad, std::int64_t kernel) {
  return std::max(width + pad, width + 2 * pad - kernel + 1);
}

inline PaddedPlane input_plane(const Conv2dGeometry& g) {
  return {g.in_channels, g.in_height, g.in_width, g.padding_height, g.padding_width, g.in_height + 2 * g.padding_height,
          shared_pad_width(g.in_width, g.padding_width, g.kernel_width)};
}
inline PaddedPlane grad_output_plane(const Conv2dGeometry& g) {
  const std::int64_t pad_h = g.kernel_height - 1 - g.padding_height, pad_w = g.kernel_width - 1 - g.padding_width;
  return {g.out_channels, g.out_height, g.out_width, pad_h, pad_w, g.out_height + 2 * pad_h,
          shared_pad_width(g.out_width, pad_w, g.kernel_width)};
}

// The implicit path needs a plain geometry with stride 1; backward-data also needs
// padding <= kernel - 1.
inline bool implicit_forward(const Conv2dGeometry& g) { return g.is_plain() && g.stride_height == 1; }
// Within it, one input channel and a 3x3 kernel take the direct loops (conv_direct.hpp).
inline bool direct_single_channel(const Conv2dGeometry& g) {
  return implicit_forward(g) && g.in_channels == 1 && g.kernel_height == 3 && g.kernel_width == 3;
}
// The grid rounded up to whole 16-lane steps of the direct loops.
inline std::int64_t direct_grid_stride(std::int64_t grid) { return (grid + direct::lanes - 1) / direct::lanes * direct::lanes; }
inline bool implicit_backward_data(const Conv2dGeometry& g) {
  return implicit_forward(g) && g.padding_height <= g.kernel_height - 1 && g.padding_width <= g.kernel_width - 1;
}

// One row of a padded plane: pad_left zeros, the `width` values of `in`, zeros up to `total`,
// written in one pass (std::fill, std::copy, std::fill would be three library calls for a row
// of 29 or 15 floats in FashionCNN).
template <typename T>
void pad_row(const T* in, std::int64_t pad_left, std::int64_t width, std::int64_t total, T* out) {
  for (std::int64_t j = 0; j < total; ++j) out[j] = j >= pad_left && j - pad_left < width ? in[j - pad_left] : T(0);
}

#if defined(__AVX512F__)
// The same row for float, 16 columns per step: the source values that fall in a step are
// loaded under a mask (the other lanes read nothing and are zero), and the step's columns of
// the row are stored under a mask. Only addresses inside `in` are ever formed.
inline void pad_row(const float* in, std::int64_t pad_left, std::int64_t width, std::int64_t total, float* out) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (std::int64_t j0 = 0; j0 < total; j0 += 16) {
    const std::int64_t first = std::clamp<std::int64_t>(pad_left - j0, 0, 16);         // first source lane
    const std::int64_t last = std::clamp<std::int64_t>(pad_left + width - j0, 0, 16);  // one past the last
    const auto source = static_cast<__mmask16>(first_lanes(last) & ~first_lanes(first));
    __m512 values = _mm512_setzero_ps();
    if (first > 0 && last > first) {  // the row's first step: in[0 ..] moved up to lane `first`
      const __m512 head = _mm512_maskz_loadu_ps(first_lanes(last - first), in);
      values =
          _mm512_maskz_permutexvar_ps(source, _mm512_sub_epi32(lane, _mm512_set1_epi32(static_cast<int>(first))), head);
    } else if (last > first) {
      values = _mm512_maskz_loadu_ps(source, in + (j0 - pad_left));
    }
    _mm512_mask_storeu_ps(out + j0, first_lanes(total - j0), values);
  }
}
#endif

// Writes the whole padded buffer (so no stale data survives a change of geometry).
template <typename T>
void pad_image(const PaddedPlane& p, const T* image, T* padded) {
  for (std::int64_t c = 0; c < p.channels; ++c) {
    T* out = padded + c * p.plane();
    const T* in = image + c * p.height * p.width;
    for (std::int64_t h = 0; h < p.padded_height; ++h, out += p.padded_width) {
      const std::int64_t row = h - p.pad_top;
      // Rows above and below the source are all padding: pad_row with no values.
      const bool inside = row >= 0 && row < p.height;
      pad_row(inside ? in + row * p.width : in, p.pad_left, inside ? p.width : 0, p.padded_width, out);
    }
  }
  std::fill(padded + p.channels * p.plane(), padded + p.buffer_size(), T(0));
}

// Column offsets of the implicit im2col matrix: tap (c, kh, kw) -> c * plane + kh * row + kw.
inline void tap_offsets(std::int64_t channels, std::int64_t kernel_height, std::int64_t kernel_width,
                        const PaddedPlane& p, std::vector<std::int64_t>& taps) {
  taps.resize(static_cast<std::size_t>(channels * kernel_height * kernel_width));
  std::size_t i = 0;
  for (std::int64_t c = 0; c < channels; ++c)
    for (std::int64_t kh = 0; kh < kernel_height; ++kh)
      for (std::int64_t kw = 0; kw < kernel_width; ++kw) taps[i++] = c * p.plane() + kh * p.padded_width + kw;
}

// Row offsets of the implicit im2col matrix: output (h, w) of a height x width result -> h * row + w.
inline void position_offsets(std::int64_t height, std::int64_t width, const PaddedPlane& p,
                             std::vector<std::int64_t>& positions) {
  positions.resize(static_cast<std::size_t>(height * width));
  std::size_t i = 0;
  for (std::int64_t h = 0; h < height; ++h)
    for (std::int64_t w = 0; w < width; ++w) positions[i++] = h * p.padded_width + w;
}

// Offsets of the rows of a dense [count, width] matrix.
inline void dense_rows(std::int64_t count, std::int64_t width, std::vector<std::int64_t>& rows) {
  rows.resize(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) rows[static_cast<std::size_t>(i)] = i * width;
}

// Sizes every per-thread buffer before a parallel region (resize keeps the allocation).
template <typename T>
void ensure_thread_buffers(std::vector<Tensor<T>>& buffers, std::int64_t size) {
  const auto threads = static_cast<std::size_t>(num_threads());
  if (buffers.size() < threads) buffers.resize(threads);
  for (auto& buffer : buffers) buffer.resize(Shape{std::max<std::int64_t>(size, 1)});
}

template <typename T>
T* thread_buffer(std::vector<Tensor<T>>& buffers) {
  return buffers[static_cast<std::size_t>(thread_index())].data();
}

// Copies the valid columns of conv1's direct result on a padded grid ([rows, *] with row stride
// `result_stride`, image rows `grid_width` apart) into a dense [rows, height, width] image,
// adding bias[row] when bias is not null, then kernels::relu when rectify.
template <typename T>
void crop(std::int64_t rows, std::int64_t height, std::int64_t width, std::int64_t grid_width,
          std::int64_t result_stride, const T* result, const T* bias, bool rectify, T* out) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T shift = bias ? bias[r] : T(0);
    for (std::int64_t h = 0; h < height; ++h) {
      const T* in = result + r * result_stride + h * grid_width;
      T* dst = out + (r * height + h) * width;
      if (rectify)
        for (std::int64_t w = 0; w < width; ++w) dst[w] = kernels::relu(in[w] + shift);
      else
        for (std::int64_t w = 0; w < width; ++w) dst[w] = in[w] + shift;
    }
  }
}

// The inverse of crop without bias: a dense [rows, height, width] image spread onto a padded
// grid ([rows, stride], image rows `grid_width` apart), zero on the discarded columns and up to
// `stride`.
template <typename T>
void spread(std::int64_t rows, std::int64_t height, std::int64_t width, std::int64_t grid_width, std::int64_t stride,
            const T* image, T* grid) {
  for (std::int64_t r = 0; r < rows; ++r) {
    T* dst = grid + r * stride;
    std::fill(dst, dst + stride, T(0));
    for (std::int64_t h = 0; h < height; ++h) std::copy(image + (r * height + h) * width,
                                                        image + (r * height + h + 1) * width, dst + h * grid_width);
  }
}

// Outputs on the padded grid of `plane`, up to the last valid one of a height x width result.
inline std::int64_t grid_size(const PaddedPlane& plane, std::int64_t height, std::int64_t width) {
  return (height - 1) * plane.padded_width + width;
}

// The per-image loop of the implicit forward and backward-data passes: image n of `source`
// (images `source_size` apart) is padded into this thread's `padded` buffer, then
// body(padded, result, n) computes and stores image n using this thread's `result` buffer.
template <typename T, typename Body>
void implicit_images(const PaddedPlane& plane, std::int64_t batch, const T* source, std::int64_t source_size,
                     std::int64_t result_size, Conv2dWorkspace<T>& ws, Body&& body) {
  ensure_thread_buffers(ws.padded, plane.buffer_size());
  ensure_thread_buffers(ws.result, result_size);
  parallel_for(batch, 2, [&](std::int64_t n) {
    T* padded = thread_buffer(ws.padded);
    T* result = thread_buffer(ws.result);
    pad_image(plane, source + n * source_size, padded);
    body(static_cast<const T*>(padded), result, n);
  });
}

// One stride-1 pass of the implicit path, shared by forward and backward-data. For each image
// n of `source` (laid out as plane's unpadded source), with the padded image read as the
// im2col matrix (positions x taps) and ws.packed_weight as a dense [taps, channels] matrix:
//   result[p, c] = sum over taps k of padded[positions[p] + taps[k]] * packed_weight[k, c]
// and target image n ([channels, height * width]) = result^T, plus bias, then kernels::relu when relu.
template <typename T>
void implicit_conv(const PaddedPlane& plane, std::int64_t kernel_height, std::int64_t kernel_width,
                   std::int64_t batch, const T* source, std::int64_t channels, std::int64_t height,
                   std::int64_t width, const T* bias, bool relu, T* target, Conv2dWorkspace<T>& ws) {
  const std::int64_t positions = height * width;
  tap_offsets(plane.channels, kernel_height, kernel_width, plane, ws.taps);
  position_offsets(height, width, plane, ws.positions);
  dense_rows(static_cast<std::int64_t>(ws.taps.size()), channels, ws.weight_rows);
  OffsetGemm<T> p;
  p.M = positions, p.N = channels, p.K = static_cast<std::int64_t>(ws.taps.size());
  p.a_rows = ws.positions.data(), p.a_cols = ws.taps.data();
  p.b = ws.packed_weight.data(), p.b_rows = ws.weight_rows.data();
  p.ldc = channels;
  implicit_images(plane, batch, source, plane.channels * plane.height * plane.width, positions * channels, ws,
                  [&](const T* padded, T* result, std::int64_t n) {
                    OffsetGemm<T> image = p;
                    image.a = padded, image.c = result;
                    gemm_offsets(image);
                    transpose(positions, channels, static_cast<const T*>(result), channels,
                              target + n * channels * positions, positions, bias, relu);
                  });
}

}  // namespace detail

// output = conv(input, weight) + bias (bias may be null); with relu, that rectified as
// kernels::relu computes it (a ReLU fused into the store: no pass of its own).
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* input, const T* weight, const T* bias, T* output,
                    Conv2dWorkspace<T>& ws, bool relu = false) {
  const std::int64_t rows = g.column_rows(), cols = g.column_cols();
  if (!detail::implicit_forward(g)) {
    detail::ensure_thread_buffers(ws.columns, rows * cols);
    const std::int64_t group_out = g.group_out_channels();
    parallel_for(g.batch, 2, [&](std::int64_t n) {
      T* column = detail::thread_buffer(ws.columns);
      T* out = output + n * g.output_image_size();
      for (std::int64_t o = 0; o < g.out_channels; ++o)
        std::fill(out + o * cols, out + (o + 1) * cols, bias ? bias[o] : T(0));
      // Group gr: out[gr C_out/groups ..] += weight[gr C_out/groups ..] [group_out, rows] x column [rows, cols].
      for (std::int64_t gr = 0; gr < g.groups; ++gr) {
        im2col(g, input + n * g.input_image_size() + gr * g.input_group_size(), column);
        gemm(false, false, group_out, cols, rows, T(1), weight + gr * group_out * rows, rows, column, cols, T(1),
             out + gr * g.output_group_size(), cols);
      }
      if (relu)
        for (std::int64_t i = 0; i < g.output_image_size(); ++i) out[i] = kernels::relu(out[i]);
    });
    return;
  }
  const detail::PaddedPlane plane = detail::input_plane(g);
  if (detail::direct_single_channel(g)) {  // conv1: direct loops on the padded grid, no GEMM
    detail::tap_offsets(g.in_channels, g.kernel_height, g.kernel_width, plane, ws.taps);
    const std::int64_t grid = detail::grid_size(plane, g.out_height, g.out_width);
    detail::implicit_images(plane, g.batch, input, g.input_image_size(), g.out_channels * grid, ws,
                            [&](const T* padded, T* result, std::int64_t n) {
                              direct::forward(g.out_channels, weight, ws.taps.data(), padded, grid, result, grid);
                              detail::crop(g.out_channels, g.out_height, g.out_width, plane.padded_width, grid,
                                           result, bias, relu, output + n * g.output_image_size());
                            });
    return;
  }
  ws.packed_weight.resize(Shape{rows * g.out_channels});  // weight^T [taps, C_out]
  T* packed = ws.packed_weight.data();
  for (std::int64_t k = 0; k < rows; ++k)  // written in order; the strided reads stay in L1
    for (std::int64_t o = 0; o < g.out_channels; ++o) packed[k * g.out_channels + o] = weight[o * rows + k];
  detail::implicit_conv(plane, g.kernel_height, g.kernel_width, g.batch, input, g.out_channels, g.out_height,
                        g.out_width, bias, relu, output, ws);
}

// grad_input = conv^T(grad_output), assigned.
template <typename T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* weight, const T* grad_output, T* grad_input,
                          Conv2dWorkspace<T>& ws) {
  const std::int64_t rows = g.column_rows(), cols = g.column_cols();
  if (!detail::implicit_backward_data(g)) {
    detail::ensure_thread_buffers(ws.columns, rows * cols);
    const std::int64_t group_out = g.group_out_channels();
    parallel_for(g.batch, 2, [&](std::int64_t n) {
      T* column = detail::thread_buffer(ws.columns);
      T* grad_in = grad_input + n * g.input_image_size();
      std::fill(grad_in, grad_in + g.input_image_size(), T(0));
      // Group gr: column = weight_gr^T [rows, group_out] x grad_output_gr [group_out, cols], folded back.
      for (std::int64_t gr = 0; gr < g.groups; ++gr) {
        gemm(true, false, rows, cols, group_out, T(1), weight + gr * group_out * rows, rows,
             grad_output + n * g.output_image_size() + gr * g.output_group_size(), cols, T(0), column, cols);
        col2im(g, column, grad_in + gr * g.input_group_size());
      }
    });
    return;
  }
  // grad_input[c, ih, iw] = sum over (o, kh, kw) of weight[o, c, K_h-1-kh, K_w-1-kw] *
  // padded_grad_output[o, ih + kh, iw + kw]: a stride-1 convolution with flipped weights.
  const detail::PaddedPlane plane = detail::grad_output_plane(g);
  const std::int64_t depth = g.out_channels * g.kernel_height * g.kernel_width;
  const std::int64_t taps_per_channel = g.kernel_height * g.kernel_width;
  ws.packed_weight.resize(Shape{depth * g.in_channels});  // flipped weight [(o, kh, kw), C_in]
  T* packed = ws.packed_weight.data();
  for (std::int64_t o = 0; o < g.out_channels; ++o)
    for (std::int64_t tap = 0; tap < taps_per_channel; ++tap)
      for (std::int64_t c = 0; c < g.in_channels; ++c)
        packed[(o * taps_per_channel + tap) * g.in_channels + c] =
            weight[(o * g.in_channels + c) * taps_per_channel + (taps_per_channel - 1 - tap)];
  detail::implicit_conv(plane, g.kernel_height, g.kernel_width, g.batch, grad_output, g.in_channels, g.in_height,
                        g.in_width, static_cast<const T*>(nullptr), false, grad_input, ws);
}

// grad_weight += sum_n grad_output_n * column_n^T (per group); grad_bias += sum over n, h, w of
// grad_output (grad_bias may be null). grad_weight [C_out, C_in / groups, K_h, K_w] is [C_out, rows].
template <typename T>
void conv2d_backward_weights(const Conv2dGeometry& g, const T* input, const T* grad_output, T* grad_weight,
                             T* grad_bias, Conv2dWorkspace<T>& ws) {
  const std::int64_t rows = g.column_rows(), cols = g.column_cols();
  const std::int64_t chunks = (g.batch + conv_reduction_chunk - 1) / conv_reduction_chunk;
  const std::int64_t weight_size = g.out_channels * rows;
  ws.partial_grad_weight.resize(Shape{chunks + 1, rows, g.out_channels});
  ws.partial_grad_bias.resize(Shape{chunks, g.out_channels});
  const bool implicit = detail::implicit_forward(g), use_direct = detail::direct_single_channel(g);
  const detail::PaddedPlane plane = detail::input_plane(g);
  const std::int64_t grid = detail::grid_size(plane, g.out_height, g.out_width);
  const std::int64_t grid_stride = detail::direct_grid_stride(grid);
  if (use_direct) {
    detail::tap_offsets(g.in_channels, g.kernel_height, g.kernel_width, plane, ws.taps);
    detail::ensure_thread_buffers(ws.padded, plane.buffer_size());
    detail::ensure_thread_buffers(ws.result, g.out_channels * grid_stride);
  } else if (implicit) {
    detail::tap_offsets(g.in_channels, g.kernel_height, g.kernel_width, plane, ws.taps);
    detail::position_offsets(g.out_height, g.out_width, plane, ws.positions);
    detail::dense_rows(cols, g.out_channels, ws.transposed_rows);
    detail::ensure_thread_buffers(ws.padded, plane.buffer_size());
    detail::ensure_thread_buffers(ws.result, cols * g.out_channels);
  } else {
    detail::ensure_thread_buffers(ws.columns, rows * cols);
  }

  parallel_for(chunks, 2, [&](std::int64_t chunk) {
    T* partial_weight = ws.partial_grad_weight.data() + chunk * weight_size;
    T* partial_bias = ws.partial_grad_bias.data() + chunk * g.out_channels;
    std::fill(partial_bias, partial_bias + g.out_channels, T(0));
    const std::int64_t first = chunk * conv_reduction_chunk;
    const std::int64_t last = std::min(g.batch, first + conv_reduction_chunk);
    for (std::int64_t n = first; n < last; ++n) {
      const T* grad_out = grad_output + n * g.output_image_size();
      if (use_direct) {  // conv1: grad_out spread onto the grid, then the direct loops
        T* padded = detail::thread_buffer(ws.padded);
        T* spread = detail::thread_buffer(ws.result);
        detail::pad_image(plane, input + n * g.input_image_size(), padded);
        detail::spread(g.out_channels, g.out_height, g.out_width, plane.padded_width, grid_stride, grad_out, spread);
        direct::backward_weights(g.out_channels, spread, grid_stride, ws.taps.data(), padded, grid_stride,
                                 partial_weight, partial_bias, n != first);
        continue;
      }
      if (!implicit) {
        for (std::int64_t o = 0; o < g.out_channels; ++o) {
          T sum = T(0);
          for (std::int64_t i = 0; i < cols; ++i) sum += grad_out[o * cols + i];
          partial_bias[o] += sum;
        }
        T* column = detail::thread_buffer(ws.columns);
        // partial [rows, C_out] (+)= column_gr [rows, cols] * grad_out_gr^T, group gr filling the
        // columns [gr C_out/groups, (gr + 1) C_out/groups) of partial.
        const std::int64_t group_out = g.group_out_channels();
        for (std::int64_t gr = 0; gr < g.groups; ++gr) {
          im2col(g, input + n * g.input_image_size() + gr * g.input_group_size(), column);
          gemm(false, true, rows, group_out, cols, T(1), column, cols, grad_out + gr * g.output_group_size(), cols,
               n == first ? T(0) : T(1), partial_weight + gr * group_out, g.out_channels);
        }
        continue;
      }
      // partial[(c, kh, kw), o] (+)= sum over the output positions q of
      // padded[tap(c, kh, kw) + position(q)] * grad_out^T[q, o]. The bias gradient is summed from
      // grad_out^T, one running sum per channel (independent chains that vectorise across
      // channels, in a fixed order).
      T* padded = detail::thread_buffer(ws.padded);
      T* transposed = detail::thread_buffer(ws.result);
      detail::pad_image(plane, input + n * g.input_image_size(), padded);
      transpose(g.out_channels, cols, grad_out, cols, transposed, g.out_channels);
      for (std::int64_t q = 0; q < cols; ++q)
        for (std::int64_t o = 0; o < g.out_channels; ++o) partial_bias[o] += transposed[q * g.out_channels + o];
      OffsetGemm<T> p;
      p.M = rows, p.N = g.out_channels, p.K = cols;
      p.a = padded, p.a_rows = ws.taps.data(), p.a_cols = ws.positions.data();
      p.b = transposed, p.b_rows = ws.transposed_rows.data();
      p.c = partial_weight, p.ldc = g.out_channels;
      p.accumulate = n != first;
      gemm_offsets(p);
    }
  });

  // Fixed-order reduction: grad_weight (transposed to [rows, C_out]) plus each chunk in order,
  // with contiguous rows (parallel over blocks of them), then transposed back.
  T* sum = ws.partial_grad_weight.data() + chunks * weight_size;
  transpose(g.out_channels, rows, static_cast<const T*>(grad_weight), rows, sum, g.out_channels);
  constexpr std::int64_t rows_per_block = 16;
  parallel_for((rows + rows_per_block - 1) / rows_per_block, 2, [&](std::int64_t block) {
    const std::int64_t begin = block * rows_per_block * g.out_channels;
    const std::int64_t end = std::min(rows, (block + 1) * rows_per_block) * g.out_channels;
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
      const T* partial = ws.partial_grad_weight.data() + chunk * weight_size;
      for (std::int64_t i = begin; i < end; ++i) sum[i] += partial[i];
    }
  });
  transpose(rows, g.out_channels, static_cast<const T*>(sum), g.out_channels, grad_weight, rows);
  if (grad_bias)
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk)
      for (std::int64_t o = 0; o < g.out_channels; ++o)
        grad_bias[o] += ws.partial_grad_bias.data()[chunk * g.out_channels + o];
}

// grad_input = conv^T(grad_output) (assigned; skipped when grad_input is null);
// grad_weight += sum_n grad_output_n * column_n^T; grad_bias += sum over n, h, w of grad_output.
template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const T* input, const T* weight, const T* grad_output,
                     T* grad_input, T* grad_weight, T* grad_bias, Conv2dWorkspace<T>& ws) {
  conv2d_backward_weights(g, input, grad_output, grad_weight, grad_bias, ws);
  if (grad_input) conv2d_backward_data(g, weight, grad_output, grad_input, ws);
}

}  // namespace minicnn::ops::cpu
