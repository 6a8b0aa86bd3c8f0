#pragma once
// 2-D convolution as im2col + GEMM, parallel over images with a single-threaded GEMM inside
// (see docs/design.md, "Why im2col"). Each thread unfolds one image at a time into its own
// column buffer, which stays in L2 (conv2: 288 x 784 floats = 0.9 MB).
//
// Shapes:  input [N, C_in, H, W]   weight [C_out, C_in, K_h, K_w]   bias [C_out]
//          output [N, C_out, H_out, W_out],  H_out = (H + 2 pad - K_h) / stride + 1
#include <algorithm>
#include <cstdint>
#include <vector>

#include "minicnn/ops/cpu/gemm.hpp"
#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::ops {

struct Conv2dGeometry {
  std::int64_t batch, in_channels, in_height, in_width;
  std::int64_t out_channels, kernel_height, kernel_width, stride, padding;
  std::int64_t out_height, out_width;

  std::int64_t column_rows() const { return in_channels * kernel_height * kernel_width; }
  std::int64_t column_cols() const { return out_height * out_width; }
  std::int64_t input_image_size() const { return in_channels * in_height * in_width; }
  std::int64_t output_image_size() const { return out_channels * out_height * out_width; }
};

// Scratch memory a convolution keeps between calls, so a training step allocates nothing
// after the first. Grown on demand, never shrunk.
template <typename T>
struct Conv2dWorkspace {
  std::vector<Tensor<T>> columns;       // one [column_rows, column_cols] buffer per thread
  Tensor<T> partial_grad_weight;        // [chunks, C_out, C_in K_h K_w]
  Tensor<T> partial_grad_bias;          // [chunks, C_out]
};

// The weight gradient sums over images. To give bit-identical results for any thread count,
// images are summed in fixed chunks of this many, and the chunks are then added in order.
inline constexpr std::int64_t conv_reduction_chunk = 4;

}  // namespace minicnn::ops

namespace minicnn::ops::cpu {

// column[(c, kh, kw), (oh, ow)] = image[c, oh*stride - pad + kh, ow*stride - pad + kw], 0 outside.
template <typename T>
void im2col(const Conv2dGeometry& g, const T* image, T* column) {
  const std::int64_t plane = g.out_height * g.out_width;
  for (std::int64_t c = 0; c < g.in_channels; ++c) {
    const T* channel = image + c * g.in_height * g.in_width;
    for (std::int64_t kh = 0; kh < g.kernel_height; ++kh) {
      for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
        T* row = column + ((c * g.kernel_height + kh) * g.kernel_width + kw) * plane;
        for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
          const std::int64_t ih = oh * g.stride - g.padding + kh;
          T* out = row + oh * g.out_width;
          if (ih < 0 || ih >= g.in_height) {
            std::fill(out, out + g.out_width, T(0));
            continue;
          }
          const T* in = channel + ih * g.in_width;
          for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
            const std::int64_t iw = ow * g.stride - g.padding + kw;
            out[ow] = (iw >= 0 && iw < g.in_width) ? in[iw] : T(0);
          }
        }
      }
    }
  }
}

// The adjoint of im2col: image += fold(column). `image` must be zeroed by the caller.
template <typename T>
void col2im(const Conv2dGeometry& g, const T* column, T* image) {
  const std::int64_t plane = g.out_height * g.out_width;
  for (std::int64_t c = 0; c < g.in_channels; ++c) {
    T* channel = image + c * g.in_height * g.in_width;
    for (std::int64_t kh = 0; kh < g.kernel_height; ++kh) {
      for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
        const T* row = column + ((c * g.kernel_height + kh) * g.kernel_width + kw) * plane;
        for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
          const std::int64_t ih = oh * g.stride - g.padding + kh;
          if (ih < 0 || ih >= g.in_height) continue;
          const T* in = row + oh * g.out_width;
          T* out = channel + ih * g.in_width;
          for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
            const std::int64_t iw = ow * g.stride - g.padding + kw;
            if (iw >= 0 && iw < g.in_width) out[iw] += in[ow];
          }
        }
      }
    }
  }
}

template <typename T>
void ensure_columns(const Conv2dGeometry& g, Conv2dWorkspace<T>& ws) {
  const auto threads = static_cast<std::size_t>(num_threads());
  if (ws.columns.size() < threads) ws.columns.resize(threads);
  for (auto& column : ws.columns) column.resize(Shape{g.column_rows(), g.column_cols()});
}

// output = conv(input, weight) + bias (bias may be null).
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* input, const T* weight, const T* bias, T* output,
                    Conv2dWorkspace<T>& ws) {
  ensure_columns(g, ws);
  const std::int64_t rows = g.column_rows(), cols = g.column_cols();
  parallel_for(g.batch, 2, [&](std::int64_t n) {
    T* column = ws.columns[static_cast<std::size_t>(thread_index())].data();
    T* out = output + n * g.output_image_size();
    im2col(g, input + n * g.input_image_size(), column);
    for (std::int64_t o = 0; o < g.out_channels; ++o)
      std::fill(out + o * cols, out + (o + 1) * cols, bias ? bias[o] : T(0));
    gemm(false, false, g.out_channels, cols, rows, T(1), weight, rows, column, cols, T(1), out, cols);
  });
}

// grad_input = conv^T(grad_output) (assigned; skipped when grad_input is null);
// grad_weight += sum_n grad_output_n * column_n^T; grad_bias += sum over n, h, w of grad_output.
template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const T* input, const T* weight, const T* grad_output,
                     T* grad_input, T* grad_weight, T* grad_bias, Conv2dWorkspace<T>& ws) {
  ensure_columns(g, ws);
  const std::int64_t rows = g.column_rows(), cols = g.column_cols();
  const std::int64_t chunks = (g.batch + conv_reduction_chunk - 1) / conv_reduction_chunk;
  const std::int64_t weight_size = g.out_channels * rows;
  ws.partial_grad_weight.resize(Shape{chunks, g.out_channels, rows});
  ws.partial_grad_bias.resize(Shape{chunks, g.out_channels});

  parallel_for(chunks, 2, [&](std::int64_t chunk) {
    T* column = ws.columns[static_cast<std::size_t>(thread_index())].data();
    T* partial_weight = ws.partial_grad_weight.data() + chunk * weight_size;
    T* partial_bias = ws.partial_grad_bias.data() + chunk * g.out_channels;
    std::fill(partial_bias, partial_bias + g.out_channels, T(0));
    const std::int64_t first = chunk * conv_reduction_chunk;
    const std::int64_t last = std::min(g.batch, first + conv_reduction_chunk);
    for (std::int64_t n = first; n < last; ++n) {
      const T* grad_out = grad_output + n * g.output_image_size();
      im2col(g, input + n * g.input_image_size(), column);
      gemm(false, true, g.out_channels, rows, cols, T(1), grad_out, cols, column, cols,
           n == first ? T(0) : T(1), partial_weight, rows);
      for (std::int64_t o = 0; o < g.out_channels; ++o) {
        T sum = T(0);
        for (std::int64_t i = 0; i < cols; ++i) sum += grad_out[o * cols + i];
        partial_bias[o] += sum;
      }
      if (grad_input) {
        T* grad_in = grad_input + n * g.input_image_size();
        gemm(true, false, rows, cols, g.out_channels, T(1), weight, rows, grad_out, cols, T(0), column, cols);
        std::fill(grad_in, grad_in + g.input_image_size(), T(0));
        col2im(g, column, grad_in);
      }
    }
  });

  // Fixed-order reduction over chunks, parallel over weight elements.
  parallel_for(g.out_channels, 8, [&](std::int64_t o) {
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
      const T* partial = ws.partial_grad_weight.data() + chunk * weight_size + o * rows;
      T* dst = grad_weight + o * rows;
      for (std::int64_t i = 0; i < rows; ++i) dst[i] += partial[i];
      if (grad_bias) grad_bias[o] += ws.partial_grad_bias.data()[chunk * g.out_channels + o];
    }
  });
}

}  // namespace minicnn::ops::cpu
