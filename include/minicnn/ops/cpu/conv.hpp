#pragma once
// 2-D convolution, parallel over images with a single-threaded GEMM inside (see docs/design.md,
// "Why im2col", and docs/performance.md). The forward pass of 3x3 stride-1 layers may instead
// run Winograd (winograd.hpp), as conv_algorithm() decides: by default in inference only.
//
// Shapes:  input [N, C_in, H, W]   weight [C_out, C_in, K_h, K_w]   bias [C_out]
//          output [N, C_out, H_out, W_out],  H_out = (H + 2 pad - K_h) / stride + 1
// (the general geometry, with per-axis stride / padding, dilation and groups, is described in
// ops/kernels/conv.hpp: weight [C_out, C_in / groups, K_h, K_w]).
//
// Plain geometries (one stride, one padding, no dilation, one group) use "implicit im2col": each
// image is copied once into a zero-padded plane [C_in, H + 2 pad, row], and the GEMM reads element
// (position, tap) of the im2col matrix as padded[position + tap], position = (oh * row + ow) *
// stride and tap = c * plane + kh * row + kw (gemm_offsets' two offset tables): no im2col copy
// (9x the image) and no col2im. The GEMM's rows are the output positions and its columns the
// output channels, so its tile runs over valid positions only and its vectors over channels, and
// the [positions, channels] result is transposed into the output planes (adding the bias).
// Backward-data is, for stride 1, the same kernel run on the padded grad_output with the flipped,
// transposed weights; for other strides a GEMM gives the columns and they are added back through
// the same offset tables (scatter_backward_data).
// Small maps (ResNet's 7x7, 4x4, 2x2) would give GEMMs of a few rows per image, each streaming the
// whole weight matrix: there the padded planes of several images lie one after the other and the
// position table runs across them, so one GEMM has images x positions rows (images_per_gemm), and
// the weight gradient is one GEMM over the whole batch (weight_gradient_over_batch).
// Geometries that are not plain (Conv2dGeometry::is_plain: per-axis strides or paddings that
// differ, dilation, groups) use explicit im2col + GEMM per group (+ col2im for backward-data):
// slow but general. A 3x3 stride-1 layer with one input channel (conv1) runs forward and
// backward-weights on the same padded plane and grid with the direct loops of conv_direct.hpp
// instead of the GEMM.
//
// The weight gradient sums over images in a fixed order that no thread count changes: fixed
// chunks of conv_reduction_chunk images whose partial sums are then added in chunk order, or, for
// small maps, the GEMM's fixed depth blocks over the whole batch, each weight summed by one thread.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "minicnn/ops/cpu/conv_direct.hpp"
#include "minicnn/ops/cpu/elementwise.hpp"
#include "minicnn/ops/cpu/gemm.hpp"
#include "minicnn/ops/cpu/lanes.hpp"
#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/ops/cpu/transpose.hpp"
#include "minicnn/ops/cpu/winograd.hpp"
#include "minicnn/ops/kernels/conv.hpp"
#include "minicnn/ops/kernels/elementwise.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::ops {

// Scratch memory a convolution keeps between calls, so a training step allocates nothing
// after the first. Grown on demand, never shrunk. Per-thread buffers are indexed by
// minicnn::thread_index().
template <typename T>
struct Conv2dWorkspace {
  std::vector<Tensor<T>> padded;        // per thread: the zero-padded images (or grad_output images) of a group
  std::vector<Tensor<T>> result;        // per thread: GEMM result [images x positions, channels] / grad_output^T
  std::vector<Tensor<T>> columns;       // per thread: explicit im2col buffer of one group
  Tensor<T> packed_weight;              // weight^T [taps, C_out] or the flipped weight [taps, C_in], in strips
  // Offset tables of gemm_offsets: taps and output positions in the padded planes, and the rows
  // of packed_weight and of grad_output^T.
  std::vector<std::int64_t> taps, positions, weight_rows, transposed_rows;
  // Strided backward-data's A: row (n, q) and column o of grad_output read in place.
  std::vector<std::int64_t> output_rows, channel_offsets;
  Tensor<T> batch_padded;               // small maps' weight gradient: every padded image of the batch
  Tensor<T> batch_transposed;           // and grad_output^T of the batch [N positions, C_out]
  // [chunks + 1, C_in / groups K_h K_w, C_out], the last one summing them (small maps: grad_weight^T alone)
  Tensor<T> partial_grad_weight;
  Tensor<T> partial_grad_bias;          // [chunks, C_out] (small maps: [C_out])
  cpu::winograd::Workspace<T> winograd;  // the forward pass by Winograd (winograd.hpp)
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
  std::int64_t image_size() const { return channels * plane(); }
  // `images` padded images one after the other, plus a zeroed tail: conv1's direct loops read
  // whole 16-lane steps past the last output.
  std::int64_t buffer_size(std::int64_t images = 1) const { return images * image_size() + gemm_nr; }
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

// The implicit path needs a plain geometry (forward and backward-weights, any stride);
// backward-data by the flipped kernel also needs stride 1 and padding <= kernel - 1.
inline bool implicit_forward(const Conv2dGeometry& g) { return g.is_plain(); }
// Within it, one input channel, a 3x3 kernel and stride 1 take the direct loops (conv_direct.hpp).
inline bool direct_single_channel(const Conv2dGeometry& g) {
  return implicit_forward(g) && g.stride_height == 1 && g.in_channels == 1 && g.kernel_height == 3 &&
         g.kernel_width == 3;
}
// The grid rounded up to whole 16-lane steps of the direct loops.
inline std::int64_t direct_grid_stride(std::int64_t grid) { return (grid + direct::lanes - 1) / direct::lanes * direct::lanes; }
inline bool implicit_backward_data(const Conv2dGeometry& g) {
  return implicit_forward(g) && g.stride_height == 1 && g.padding_height <= g.kernel_height - 1 &&
         g.padding_width <= g.kernel_width - 1;
}

// Rows a forward or backward-data GEMM should have at least, so that each strip of the weights
// loaded into L1 serves that many rows (16 row tiles of the micro-kernel). FashionCNN's maps
// (784 and 196 positions) have them in one image; ResNet-18's 7x7, 4x4 and 2x2 maps need 3, 8
// and 32 images. A first choice, not yet tuned against 64 or 256: docs/performance.md
// ("Several images per GEMM").
inline constexpr std::int64_t conv_min_gemm_rows = 128;

// Images per forward / backward-data GEMM for maps of `positions` outputs: enough for
// conv_min_gemm_rows rows, but at most one thread's share of the batch, so every thread has a
// group. Each row of the result is summed over the taps in the same order whichever rows share
// its GEMM, so this choice (thread count included) changes no bit of the result.
inline std::int64_t images_per_gemm(std::int64_t positions, std::int64_t batch) {
  const std::int64_t wanted = (conv_min_gemm_rows + positions - 1) / std::max<std::int64_t>(positions, 1);
  const std::int64_t share = (batch + num_threads() - 1) / num_threads();
  return std::max<std::int64_t>(1, std::min(wanted, share));
}

// The weight gradient of maps below this many positions is one GEMM over the whole batch
// (weight_gradient_over_batch): a chunk of conv_reduction_chunk images would not fill one depth
// block of the GEMM (gemm_kc), and each chunk's partial sum would be a whole weight matrix
// (9.4 MB for ResNet-18's layer4) written for a few products.
inline bool weight_gradient_over_batch(const Conv2dGeometry& g) {
  return implicit_forward(g) && !direct_single_channel(g) && g.column_cols() * conv_reduction_chunk < gemm_kc;
}

// One row of a padded plane: pad_left zeros, the `width` values of `in`, zeros up to `total`,
// written in one pass (std::fill, std::copy, std::fill would be three library calls for a row
// of 29 or 15 floats in FashionCNN).
template <typename T>
void pad_row(const T* in, std::int64_t pad_left, std::int64_t width, std::int64_t total, T* out) {
  for (std::int64_t j = 0; j < total; ++j) out[j] = j >= pad_left && j - pad_left < width ? in[j - pad_left] : T(0);
}

#if defined(__AVX512F__)
// `count` zeros from out, by masked 16-lane stores.
inline void zero_floats(float* out, std::int64_t count) {
  for (std::int64_t j = 0; j < count; j += 16) _mm512_mask_storeu_ps(out + j, first_lanes(count - j), _mm512_setzero_ps());
}

// The same row for float, by masked 16-lane stores: the zeros before the values, the values
// (loaded under the same mask, stored at their unaligned place), the zeros after them. Only
// addresses inside `in` are ever formed.
inline void pad_row(const float* in, std::int64_t pad_left, std::int64_t width, std::int64_t total, float* out) {
  const std::int64_t begin = std::min(pad_left, total), end = std::min(total, pad_left + width);
  zero_floats(out, begin);
  for (std::int64_t j = begin; j < end; j += 16) {
    const __mmask16 mask = first_lanes(end - j);
    _mm512_mask_storeu_ps(out + j, mask, _mm512_maskz_loadu_ps(mask, in + (j - pad_left)));
  }
  zero_floats(out + end, total - end);
}

// True when a plane's rows can be written by whole 16-lane steps: the zeros that the last step
// of a row's values writes past them (its lanes beyond the width) cover that row's right
// padding and the next row's left padding. FashionCNN's planes are such (28 values in rows of
// 29, 14 in rows of 15).
inline bool pads_by_steps(const PaddedPlane& p) {
  return p.height > 0 && p.width > 0 && (p.width + 15) / 16 * 16 >= p.padded_width;
}

// One padded plane of pads_by_steps: the rows above and the first row's left padding zeroed,
// then each row's values by whole steps (the last one loaded under a mask, so zeros past the
// values) at their unaligned place, which also writes the padding up to the next row's values
// (and, for rows under 16 values, into later rows, which are written after it); the steps that
// would reach past the plane are stored under a mask that ends with it, and the rest of the
// plane is zeroed. A few instructions a row instead of pad_row's three loops; nothing past the
// plane is written.
inline void pad_plane_by_steps(const PaddedPlane& p, const float* in, float* out) {
  const std::int64_t steps = (p.width + 15) / 16, last = (steps - 1) * 16;
  const __mmask16 tail = first_lanes(p.width - last);
  float* const plane_end = out + p.plane();
  zero_floats(out, p.pad_top * p.padded_width + p.pad_left);
  float* row = out + p.pad_top * p.padded_width + p.pad_left;
  for (std::int64_t h = 0; h < p.height; ++h, row += p.padded_width, in += p.width) {
    for (std::int64_t j = 0; j < last; j += 16) _mm512_storeu_ps(row + j, _mm512_loadu_ps(in + j));
    const __m512 values = _mm512_maskz_loadu_ps(tail, in + last);
    const std::int64_t room = plane_end - (row + last);
    if (room >= 16) _mm512_storeu_ps(row + last, values);
    else _mm512_mask_storeu_ps(row + last, first_lanes(room), values);
  }
  float* end = row - p.padded_width + p.width;  // just past the last row's values
  zero_floats(end, plane_end - end);
}
#endif

// Writes the image's padded planes, p.image_size() values (so no stale data survives a change of
// geometry), and nothing past them: images padded one after the other can be written by
// different threads.
template <typename T>
void pad_planes(const PaddedPlane& p, const T* image, T* padded) {
#if defined(__AVX512F__)
  if constexpr (std::is_same<T, float>::value) {
    if (pads_by_steps(p)) {
      for (std::int64_t c = 0; c < p.channels; ++c)
        pad_plane_by_steps(p, image + c * p.height * p.width, padded + c * p.plane());
      return;
    }
  }
#endif
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
}

// The padded planes and the zeroed tail after them: the whole p.buffer_size() buffer.
template <typename T>
void pad_image(const PaddedPlane& p, const T* image, T* padded) {
  pad_planes(p, image, padded);
  std::fill(padded + p.image_size(), padded + p.buffer_size(), T(0));
}

// The inverse of pad_planes: the source values of the padded planes, padding dropped.
template <typename T>
void unpad_image(const PaddedPlane& p, const T* padded, T* image) {
  for (std::int64_t c = 0; c < p.channels; ++c)
    for (std::int64_t h = 0; h < p.height; ++h) {
      const T* in = padded + c * p.plane() + (h + p.pad_top) * p.padded_width + p.pad_left;
      std::copy(in, in + p.width, image + (c * p.height + h) * p.width);
    }
}

// A [channels, count] matrix (rows ld apart) transposed into B's strips (packed_strip_index):
// element (c, k) to strips[(c / gemm_nr) strip_rows gemm_nr + k gemm_nr + c % gemm_nr], i.e.
// row k of a B with strip_rows rows when `strips` points at its row 0 (or at row r0 for rows
// r0 .. r0 + count). With row_sums, row_sums[c] += each value of row c in order (transpose()).
template <typename T>
void transpose_to_strips(std::int64_t channels, std::int64_t count, const T* src, std::int64_t ld, T* strips,
                         std::int64_t strip_rows, T* row_sums = nullptr) {
  for (std::int64_t c = 0; c < channels; c += gemm_nr)
    transpose(std::min(gemm_nr, channels - c), count, src + c * ld, ld, strips + c * strip_rows, gemm_nr,
              static_cast<const T*>(nullptr), false, row_sums ? row_sums + c : nullptr);
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

// Row offsets of the implicit im2col matrix of `images` padded images laid one after the other:
// output (n, h, w) of a height x width result -> n * image_size + (h * row + w) * stride.
inline void position_offsets(std::int64_t height, std::int64_t width, std::int64_t stride, std::int64_t images,
                             const PaddedPlane& p, std::vector<std::int64_t>& positions) {
  positions.resize(static_cast<std::size_t>(images * height * width));
  std::size_t i = 0;
  for (std::int64_t n = 0; n < images; ++n)
    for (std::int64_t h = 0; h < height; ++h)
      for (std::int64_t w = 0; w < width; ++w) positions[i++] = n * p.image_size() + (h * p.padded_width + w) * stride;
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

// The loop over image groups of the implicit forward and backward-data passes: the batch in
// groups of `group` consecutive images (the last one may have fewer). Images first .. first +
// count - 1 of `source` (images `source_size` apart) are padded one after the other into this
// thread's `padded` buffer, then body(padded, result, first, count) computes and stores them
// using this thread's `result` buffer (result_size values per image).
template <typename T, typename Body>
void implicit_groups(const PaddedPlane& plane, std::int64_t batch, std::int64_t group, const T* source,
                     std::int64_t source_size, std::int64_t result_size, Conv2dWorkspace<T>& ws, Body&& body) {
  ensure_thread_buffers(ws.padded, plane.buffer_size(group));
  ensure_thread_buffers(ws.result, group * result_size);
  parallel_for((batch + group - 1) / group, 2, [&](std::int64_t index) {
    T* padded = thread_buffer(ws.padded);
    T* result = thread_buffer(ws.result);
    const std::int64_t first = index * group, count = std::min(group, batch - first);
    for (std::int64_t i = 0; i < count; ++i)
      pad_planes(plane, source + (first + i) * source_size, padded + i * plane.image_size());
    std::fill(padded + count * plane.image_size(), padded + plane.buffer_size(count), T(0));
    body(static_cast<const T*>(padded), result, first, count);
  });
}

// One pass of the implicit path, shared by forward (any stride) and backward-data (stride 1).
// For each group of images of `source` (laid out as plane's unpadded source), with the padded
// images read as the im2col matrix ([images x positions, taps]) and ws.packed_weight as a
// [taps, channels] matrix stored in strips (packed_strip_index):
//   result[(n, p), c] = sum over taps k of padded[positions[(n, p)] + taps[k]] * packed_weight[k, c]
// and target image n ([channels, height * width]) = result[(n, .), .]^T, plus bias, then
// kernels::relu when relu; with `gate` (laid out as target), then kernels::relu_grad(gate,
// target) while the image is in cache (the gradient of a ReLU whose output gate is).
template <typename T>
void implicit_conv(const PaddedPlane& plane, std::int64_t kernel_height, std::int64_t kernel_width, std::int64_t stride,
                   std::int64_t batch, const T* source, std::int64_t channels, std::int64_t height,
                   std::int64_t width, const T* bias, bool relu, T* target, Conv2dWorkspace<T>& ws,
                   const T* gate = nullptr) {
  const std::int64_t positions = height * width;
  const std::int64_t group = images_per_gemm(positions, batch);
  tap_offsets(plane.channels, kernel_height, kernel_width, plane, ws.taps);
  position_offsets(height, width, stride, group, plane, ws.positions);
  dense_rows(static_cast<std::int64_t>(ws.taps.size()), gemm_nr, ws.weight_rows);
  OffsetGemm<T> p;
  p.N = channels, p.K = static_cast<std::int64_t>(ws.taps.size());
  p.a_rows = ws.positions.data(), p.a_cols = ws.taps.data();
  p.b = ws.packed_weight.data(), p.b_rows = ws.weight_rows.data(), p.b_strip = p.K * gemm_nr;
  p.ldc = channels;
  const std::int64_t source_size = plane.channels * plane.height * plane.width;
  implicit_groups(plane, batch, group, source, source_size, positions * channels, ws,
                  [&](const T* padded, T* result, std::int64_t first, std::int64_t count) {
                    OffsetGemm<T> images = p;
                    images.M = count * positions, images.a = padded, images.c = result;
                    // The groups this thread may take next: the next unclaimed one is at most
                    // `threads` groups on (threads claim them as they come free).
                    const std::int64_t next = first + count;
                    const std::int64_t ahead = std::min(group * num_threads(), batch - next);
                    if (ahead > 0)
                      images.prefetch[0] = {source + next * source_size, ahead * source_size * std::int64_t(sizeof(T))};
                    gemm_offsets(images);
                    for (std::int64_t i = 0; i < count; ++i) {
                      T* image = target + (first + i) * channels * positions;
                      transpose(positions, channels, static_cast<const T*>(result + i * positions * channels),
                                channels, image, positions, bias, relu);
                      if (gate)  // inside a chunk: runs on this thread
                        relu_backward(channels * positions, gate + (first + i) * channels * positions, image, image);
                    }
                  });
}

// Backward-data of a plain geometry with stride > 1 (or padding > kernel - 1), per group of
// images (images_per_gemm of the output positions):
//   columns[(n, q), tap] = sum over o of grad_output_n[o, q] * weight[o, tap]
// one GEMM reading grad_output in place, then the adjoint of the implicit im2col read, image by
// image: padded[position(q) + tap] += columns[(n, q), tap] over q, then tap, in order (one
// writer per image, so the same bits for any thread count); the padding is dropped into
// grad_input_n. Taps that run off a row land in padding, as they read it in the forward pass.
template <typename T>
void scatter_backward_data(const Conv2dGeometry& g, const T* weight, const T* grad_output, T* grad_input,
                           Conv2dWorkspace<T>& ws) {
  const PaddedPlane plane = input_plane(g);
  const std::int64_t taps = g.column_rows(), positions = g.column_cols();
  const std::int64_t group = images_per_gemm(positions, g.batch);
  tap_offsets(g.in_channels, g.kernel_height, g.kernel_width, plane, ws.taps);
  position_offsets(g.out_height, g.out_width, g.stride_height, 1, plane, ws.positions);
  // A(row (n, q), column o) = grad_output[n * output_image_size + o * positions + q].
  ws.output_rows.resize(static_cast<std::size_t>(group * positions));
  for (std::int64_t n = 0; n < group; ++n)
    for (std::int64_t q = 0; q < positions; ++q)
      ws.output_rows[static_cast<std::size_t>(n * positions + q)] = n * g.output_image_size() + q;
  dense_rows(g.out_channels, positions, ws.channel_offsets);
  dense_rows(g.out_channels, taps, ws.weight_rows);  // weight [C_out, taps] as it is
  ensure_thread_buffers(ws.result, group * positions * taps);
  ensure_thread_buffers(ws.padded, plane.buffer_size());
  parallel_for((g.batch + group - 1) / group, 2, [&](std::int64_t index) {
    T* columns = thread_buffer(ws.result);
    T* padded = thread_buffer(ws.padded);
    const std::int64_t first = index * group, count = std::min(group, g.batch - first);
    OffsetGemm<T> p;
    p.M = count * positions, p.N = taps, p.K = g.out_channels;
    p.a = grad_output + first * g.output_image_size();
    p.a_rows = ws.output_rows.data(), p.a_cols = ws.channel_offsets.data();
    p.b = weight, p.b_rows = ws.weight_rows.data();
    p.c = columns, p.ldc = taps;
    gemm_offsets(p);
    for (std::int64_t i = 0; i < count; ++i) {
      std::fill(padded, padded + plane.buffer_size(), T(0));
      for (std::int64_t q = 0; q < positions; ++q) {
        const T* column = columns + (i * positions + q) * taps;
        T* at = padded + ws.positions[static_cast<std::size_t>(q)];
        for (std::int64_t t = 0; t < taps; ++t) at[ws.taps[static_cast<std::size_t>(t)]] += column[t];
      }
      unpad_image(plane, static_cast<const T*>(padded), grad_input + (first + i) * g.input_image_size());
    }
  });
}

// The weight gradient of small maps (weight_gradient_over_batch), as one GEMM over the batch:
//   sum[(c, kh, kw), o] = grad_weight^T + sum over images n and positions q of
//                         padded_n[tap(c, kh, kw) + position(q)] * grad_out_n^T[q, o]
// with K = N x positions summed in the GEMM's fixed depth blocks (gemm_kc). The rows of sum (taps)
// are split into one band per thread, each band transposed in, multiplied and transposed back by
// its thread: every weight is summed by one thread in one order, whatever the thread count.
// grad_out^T [N positions, C_out] is stored in strips of gemm_nr channels (packed_strip_index).
// grad_bias += the sum over every (n, q) of grad_out^T, in order.
template <typename T>
void weight_gradient_batch(const Conv2dGeometry& g, const T* input, const T* grad_output, T* grad_weight,
                           T* grad_bias, Conv2dWorkspace<T>& ws) {
  const PaddedPlane plane = input_plane(g);
  const std::int64_t taps = g.column_rows(), positions = g.column_cols(), rows = g.batch * positions;
  ws.batch_padded.resize(Shape{plane.buffer_size(g.batch)});
  ws.batch_transposed.resize(Shape{packed_strips_size(rows, g.out_channels)});
  T* padded = ws.batch_padded.data();
  T* transposed = ws.batch_transposed.data();
  parallel_for(g.batch, 2, [&](std::int64_t n) {
    pad_planes(plane, input + n * g.input_image_size(), padded + n * plane.image_size());
    transpose_to_strips(g.out_channels, positions, grad_output + n * g.output_image_size(), positions,
                        transposed + packed_strip_index(n * positions, 0, rows), rows);
  });
  std::fill(padded + g.batch * plane.image_size(), padded + plane.buffer_size(g.batch), T(0));
  tap_offsets(g.in_channels, g.kernel_height, g.kernel_width, plane, ws.taps);
  position_offsets(g.out_height, g.out_width, g.stride_height, g.batch, plane, ws.positions);
  dense_rows(rows, gemm_nr, ws.transposed_rows);

  ws.partial_grad_weight.resize(Shape{taps, g.out_channels});
  T* sum = ws.partial_grad_weight.data();
  constexpr std::int64_t align = 16;  // whole register blocks for the transpositions
  const std::int64_t band = (taps + num_threads() * align - 1) / (num_threads() * align) * align;
  parallel_for((taps + band - 1) / band, 2, [&](std::int64_t index) {
    const std::int64_t first = index * band, count = std::min(band, taps - first);
    // grad_weight[:, first .. first + count) -> sum rows first .. first + count.
    transpose(g.out_channels, count, grad_weight + first, taps, sum + first * g.out_channels, g.out_channels);
    OffsetGemm<T> p;
    p.M = count, p.N = g.out_channels, p.K = rows;
    p.a = padded, p.a_rows = ws.taps.data() + first, p.a_cols = ws.positions.data();
    p.b = transposed, p.b_rows = ws.transposed_rows.data(), p.b_strip = rows * gemm_nr;
    p.c = sum + first * g.out_channels, p.ldc = g.out_channels;
    p.accumulate = true;
    gemm_offsets(p);
    transpose(count, g.out_channels, static_cast<const T*>(sum + first * g.out_channels), g.out_channels,
              grad_weight + first, taps);
  });
  if (grad_bias) {
    ws.partial_grad_bias.resize(Shape{g.out_channels});
    T* bias_sum = ws.partial_grad_bias.data();
    std::fill(bias_sum, bias_sum + g.out_channels, T(0));
    for (std::int64_t o0 = 0; o0 < g.out_channels; o0 += gemm_nr) {  // a strip's channels, each over r in order
      const std::int64_t width = std::min(gemm_nr, g.out_channels - o0);
      const T* strip = transposed + packed_strip_index(0, o0, rows);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t o = 0; o < width; ++o) bias_sum[o0 + o] += strip[r * gemm_nr + o];
    }
    for (std::int64_t o = 0; o < g.out_channels; ++o) grad_bias[o] += bias_sum[o];
  }
}

}  // namespace detail

// Winograd's forward pass that also applies the 2x2, stride-2 max-pool (floor mode) to its result
// as it stores it: `pooled` [N, C_out, H / 2, W / 2] gets the maxima of what conv2d_forward would
// store, no argmax (a forward pass without gradients). Returns false, doing nothing, when the
// convolution does not take Winograd: the caller then stores and pools.
template <typename T>
bool conv2d_forward_max_pool_2x2(const Conv2dGeometry& g, const T* input, const T* weight, const T* bias, T* pooled,
                                 Conv2dWorkspace<T>& ws, bool relu, bool inference) {
  switch (winograd::tile_size(g, conv_algorithm(), inference)) {
    case 2: return winograd::forward<2>(g, input, weight, bias, pooled, ws.winograd, relu, true), true;
    case 4: return winograd::forward<4>(g, input, weight, bias, pooled, ws.winograd, relu, true), true;
    default: return false;
  }
}

// output = conv(input, weight) + bias (bias may be null); with relu, that rectified as
// kernels::relu computes it (a ReLU fused into the store: no pass of its own). `inference`: no
// backward pass follows, so conv_algorithm() automatic may take Winograd (conv_algorithm.hpp).
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* input, const T* weight, const T* bias, T* output,
                    Conv2dWorkspace<T>& ws, bool relu = false, bool inference = false) {
  switch (winograd::tile_size(g, conv_algorithm(), inference)) {
    case 2: return winograd::forward<2>(g, input, weight, bias, output, ws.winograd, relu);
    case 4: return winograd::forward<4>(g, input, weight, bias, output, ws.winograd, relu);
    default: break;
  }
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
    detail::implicit_groups(plane, g.batch, 1, input, g.input_image_size(), g.out_channels * grid, ws,
                            [&](const T* padded, T* result, std::int64_t n, std::int64_t) {
                              direct::forward(g.out_channels, weight, ws.taps.data(), padded, grid, result, grid);
                              detail::crop(g.out_channels, g.out_height, g.out_width, plane.padded_width, grid,
                                           result, bias, relu, output + n * g.output_image_size());
                            });
    return;
  }
  // weight^T [taps, C_out] in strips, a register transposition per strip of channels (the calling
  // thread packs alone, while the others wait: an element-by-element loop took 28 us for conv4).
  ws.packed_weight.resize(Shape{packed_strips_size(rows, g.out_channels)});
  detail::transpose_to_strips(g.out_channels, rows, weight, rows, ws.packed_weight.data(), rows);
  detail::implicit_conv(plane, g.kernel_height, g.kernel_width, g.stride_height, g.batch, input, g.out_channels,
                        g.out_height, g.out_width, bias, relu, output, ws);
}

// grad_input = conv^T(grad_output), assigned; with relu_input (the input, when it is the output
// of a ReLU), then kernels::relu_grad(relu_input, grad_input): that ReLU's backward, applied
// image by image while each is in cache on the implicit path, by a pass over grad_input on the
// others.
template <typename T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* weight, const T* grad_output, T* grad_input,
                          Conv2dWorkspace<T>& ws, const T* relu_input = nullptr) {
  const std::int64_t rows = g.column_rows(), cols = g.column_cols();
  if (!detail::implicit_backward_data(g)) {
    if (g.is_plain()) {
      detail::scatter_backward_data(g, weight, grad_output, grad_input, ws);
    } else {
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
    }
    if (relu_input) relu_backward(g.batch * g.input_image_size(), relu_input, grad_input, grad_input);
    return;
  }
  // grad_input[c, ih, iw] = sum over (o, kh, kw) of weight[o, c, K_h-1-kh, K_w-1-kw] *
  // padded_grad_output[o, ih + kh, iw + kw]: a stride-1 convolution with flipped weights.
  const detail::PaddedPlane plane = detail::grad_output_plane(g);
  const std::int64_t depth = g.out_channels * g.kernel_height * g.kernel_width;
  const std::int64_t taps_per_channel = g.kernel_height * g.kernel_width;
  // The flipped weight [(o, kh, kw), C_in] in strips: per output channel and strip of input
  // channels, weight[o, c, .] ([channels, taps]) transposed into the rows of o's taps, written
  // from the last up (a negative row step), which flips them.
  ws.packed_weight.resize(Shape{packed_strips_size(depth, g.in_channels)});
  T* packed = ws.packed_weight.data();
  for (std::int64_t o = 0; o < g.out_channels; ++o)
    for (std::int64_t c = 0; c < g.in_channels; c += gemm_nr)
      transpose(std::min(gemm_nr, g.in_channels - c), taps_per_channel,
                weight + (o * g.in_channels + c) * taps_per_channel, taps_per_channel,
                packed + packed_strip_index(o * taps_per_channel + taps_per_channel - 1, c, depth), -gemm_nr);
  detail::implicit_conv(plane, g.kernel_height, g.kernel_width, 1, g.batch, grad_output, g.in_channels, g.in_height,
                        g.in_width, static_cast<const T*>(nullptr), false, grad_input, ws, relu_input);
}

// grad_weight += sum_n grad_output_n * column_n^T (per group); grad_bias += sum over n, h, w of
// grad_output (grad_bias may be null). grad_weight [C_out, C_in / groups, K_h, K_w] is [C_out, rows].
template <typename T>
void conv2d_backward_weights(const Conv2dGeometry& g, const T* input, const T* grad_output, T* grad_weight,
                             T* grad_bias, Conv2dWorkspace<T>& ws) {
  if (detail::weight_gradient_over_batch(g)) {
    detail::weight_gradient_batch(g, input, grad_output, grad_weight, grad_bias, ws);
    return;
  }
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
    detail::position_offsets(g.out_height, g.out_width, g.stride_height, 1, plane, ws.positions);
    detail::dense_rows(cols, gemm_nr, ws.transposed_rows);
    detail::ensure_thread_buffers(ws.padded, plane.buffer_size());
    detail::ensure_thread_buffers(ws.result, packed_strips_size(cols, g.out_channels));
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
      // padded[tap(c, kh, kw) + position(q)] * grad_out^T[q, o], grad_out^T in strips of gemm_nr
      // channels (packed_strip_index). The bias gradient is summed as grad_out is transposed: one
      // running sum per channel over q in order (chains that vectorise across channels).
      T* padded = detail::thread_buffer(ws.padded);
      T* transposed = detail::thread_buffer(ws.result);
      detail::pad_image(plane, input + n * g.input_image_size(), padded);
      detail::transpose_to_strips(g.out_channels, cols, grad_out, cols, transposed, cols, partial_bias);
      OffsetGemm<T> p;
      p.M = rows, p.N = g.out_channels, p.K = cols;
      p.a = padded, p.a_rows = ws.taps.data(), p.a_cols = ws.positions.data();
      p.b = transposed, p.b_rows = ws.transposed_rows.data(), p.b_strip = cols * gemm_nr;
      // The chunk's next image (the first image of the chunk this thread takes next is unknown:
      // threads claim chunks as they come free).
      if (n + 1 < last) {
        const std::int64_t next = n + 1;
        p.prefetch[0] = {input + next * g.input_image_size(), g.input_image_size() * std::int64_t(sizeof(T))};
        p.prefetch[1] = {grad_output + next * g.output_image_size(), g.output_image_size() * std::int64_t(sizeof(T))};
      }
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

// grad_input = conv^T(grad_output) (assigned; skipped when grad_input is null), then, with
// relu_input (the input, when it is a ReLU's output), relu_grad(relu_input, grad_input);
// grad_weight += sum_n grad_output_n * column_n^T; grad_bias += sum over n, h, w of grad_output.
template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const T* input, const T* weight, const T* grad_output,
                     T* grad_input, T* grad_weight, T* grad_bias, Conv2dWorkspace<T>& ws,
                     const T* relu_input = nullptr) {
  conv2d_backward_weights(g, input, grad_output, grad_weight, grad_bias, ws);
  if (grad_input) conv2d_backward_data(g, weight, grad_output, grad_input, ws, relu_input);
}

}  // namespace minicnn::ops::cpu
