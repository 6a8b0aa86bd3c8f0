#pragma once
// Max, average, adaptive average and adaptive max pooling, parallel over (image, channel) planes. The
// geometry and the per-window arithmetic are ops/kernels/pooling.hpp's, shared with the CUDA
// backend.
//
// Shapes: input [N, C, H, W] -> output [N, C, H_out, W_out]; `planes` = N * C.
#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "minicnn/ops/cpu/lanes.hpp"
#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/ops/kernels/pooling.hpp"

namespace minicnn::ops::cpu {

// One output row of a 2x2, stride-2 max-pool: the windows of input rows `top` and `top + W`.
// Branch-free selects in the scan order of kernels::maxpool2d_argmax (a, b on the first row,
// then c, d), so the result and the argmax equal the generic body's bit for bit (tested),
// NaN rule included; `row_offset` is the offset of `top` inside its plane. A null argmax: the
// maxima alone (a forward pass without gradients).
template <typename T>
void maxpool2x2_row(const T* top, std::int64_t in_width, std::int64_t out_width, std::int32_t row_offset, T* out,
                    std::int32_t* argmax) {
  const T* bottom = top + in_width;
  const auto width = static_cast<std::int32_t>(in_width);
  for (std::int64_t ow = 0; ow < out_width; ++ow) {
    const T a = top[2 * ow], b = top[2 * ow + 1], c = bottom[2 * ow], d = bottom[2 * ow + 1];
    const std::int32_t left = row_offset + static_cast<std::int32_t>(2 * ow);
    T best = a;
    std::int32_t at = left;
    const bool take_b = (b > best) | (b != b);  // | not ||: no branch to mispredict
    best = take_b ? b : best, at = take_b ? left + 1 : at;
    const bool take_c = (c > best) | (c != c);
    best = take_c ? c : best, at = take_c ? left + width : at;
    const bool take_d = (d > best) | (d != d);
    best = take_d ? d : best, at = take_d ? left + width + 1 : at;
    out[ow] = best;
    if (argmax) argmax[ow] = at;
  }
}

#if defined(__AVX512F__)
// The same row for float, 16 windows per step: masked loads of 32 floats from each input row
// (never past the last window), split into even and odd columns, then the same selects as
// above on whole vectors. Rows of FashionCNN's pools are 7 and 14 windows wide, too short for
// the compiler's vectorised loop, where the scalar selects become branches that random data
// mispredicts.
inline void maxpool2x2_row(const float* top, std::int64_t in_width, std::int64_t out_width,
                           std::int32_t row_offset, float* out, std::int32_t* argmax) {
  const float* bottom = top + in_width;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i one = _mm512_set1_epi32(1), width = _mm512_set1_epi32(static_cast<std::int32_t>(in_width));
  for (std::int64_t ow = 0; ow < out_width; ow += 16) {
    const std::int64_t windows = out_width - ow < 16 ? out_width - ow : 16, inputs = 2 * windows;
    const __mmask16 low = first_lanes(inputs), high = first_lanes(inputs - 16), store = first_lanes(windows);
    const float* t = top + 2 * ow;
    const float* u = bottom + 2 * ow;
    const __m512 t0 = _mm512_maskz_loadu_ps(low, t), t1 = _mm512_maskz_loadu_ps(high, t + 16);
    const __m512 u0 = _mm512_maskz_loadu_ps(low, u), u1 = _mm512_maskz_loadu_ps(high, u + 16);
    const __m512 a = _mm512_permutex2var_ps(t0, even, t1), b = _mm512_permutex2var_ps(t0, odd, t1);
    const __m512 c = _mm512_permutex2var_ps(u0, even, u1), d = _mm512_permutex2var_ps(u0, odd, u1);
    const __m512i left = _mm512_add_epi32(_mm512_set1_epi32(row_offset + static_cast<std::int32_t>(2 * ow)), even);
    __m512 best = a;
    __m512i at = left;
    // take x when x > best (ordered) or x is NaN (unordered with itself)
    auto take = [&best](__m512 x) {
      return static_cast<__mmask16>(_mm512_cmp_ps_mask(x, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q));
    };
    const __mmask16 kb = take(b);
    best = _mm512_mask_blend_ps(kb, best, b);
    const __mmask16 kc = take(c);
    best = _mm512_mask_blend_ps(kc, best, c);
    const __mmask16 kd = take(d);
    best = _mm512_mask_blend_ps(kd, best, d);
    _mm512_mask_storeu_ps(out + ow, store, best);
    if (!argmax) continue;
    at = _mm512_mask_blend_epi32(kb, at, _mm512_add_epi32(left, one));
    at = _mm512_mask_blend_epi32(kc, at, _mm512_add_epi32(left, width));
    at = _mm512_mask_blend_epi32(kd, at, _mm512_add_epi32(_mm512_add_epi32(left, width), one));
    _mm512_mask_storeu_epi32(argmax + ow, store, at);
  }
}
#endif

// output = max over each window; argmax (null in a forward pass without gradients) keeps the
// winning offset inside the input plane for backward. Ties and NaNs resolve as in PyTorch: the
// first maximum in scan order, NaN wins (see kernels::maxpool2d_argmax). The 2x2 stride-2 case
// without padding or dilation (FashionCNN's) has its own row loop, while its windows lie inside
// the input (not so for the last one of a ceil_mode pool on an odd size).
template <typename T>
void maxpool2d_forward(const Pool2dGeometry& g, const T* input, T* output, std::int32_t* argmax) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  const bool two_by_two = g.kernel_height == 2 && g.kernel_width == 2 && g.stride_height == 2 && g.stride_width == 2 &&
                          g.padding_height == 0 && g.padding_width == 0 && g.dilation_height == 1 &&
                          g.dilation_width == 1 && 2 * g.out_height <= g.in_height && 2 * g.out_width <= g.in_width;
  if (two_by_two) {
    parallel_for(g.planes, 16, [&](std::int64_t p) {
      for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
        const std::int64_t top = 2 * oh * g.in_width, o = p * out_plane + oh * g.out_width;
        maxpool2x2_row(input + p * in_plane + top, g.in_width, g.out_width, static_cast<std::int32_t>(top),
                       output + o, argmax ? argmax + o : nullptr);
      }
    });
    return;
  }
  parallel_for(g.planes, 16, [&](std::int64_t p) {
    const T* in = input + p * in_plane;
    for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
      for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
        const std::int64_t best = kernels::maxpool2d_argmax(g, in, oh, ow);
        const std::int64_t o = p * out_plane + oh * g.out_width + ow;
        output[o] = in[best];
        if (argmax) argmax[o] = static_cast<std::int32_t>(best);
      }
    }
  });
}

// grad_input = scatter of grad_output to the argmax positions (assigned), for max and adaptive
// max pooling alike. The CUDA backend gathers instead (kernels::maxpool2d_grad_input,
// kernels::adaptive_max_pool2d_grad_input), adding in the same order. With `output` (the pool's
// forward output, when its input is a ReLU's output) each gradient first goes through the ReLU's
// gradient, relu_grad(output, grad): the ReLU's backward, with no pass of its own.
template <typename T>
void maxpool2d_backward(const Pool2dGeometry& g, const T* grad_output, const std::int32_t* argmax, T* grad_input,
                        const T* output = nullptr) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 16, [&](std::int64_t p) {
    T* grad_in = grad_input + p * in_plane;
    const std::int32_t* chosen = argmax + p * out_plane;
    const T* grad_out = grad_output + p * out_plane;
    for (std::int64_t i = 0; i < in_plane; ++i) grad_in[i] = T(0);
    if (!output) {
      for (std::int64_t o = 0; o < out_plane; ++o) grad_in[chosen[o]] += grad_out[o];
      return;
    }
    // The gate in a loop of its own, which the compiler makes branch-free (in the scatter it
    // branches, and a ReLU's zeros make the branch a coin toss), then the scatter.
    const T* maxima = output + p * out_plane;
    constexpr std::int64_t step = 256;
    T gated[step];
    for (std::int64_t o0 = 0; o0 < out_plane; o0 += step) {
      const std::int64_t count = std::min(step, out_plane - o0);
      for (std::int64_t o = 0; o < count; ++o) gated[o] = kernels::relu_grad(maxima[o0 + o], grad_out[o0 + o]);
      for (std::int64_t o = 0; o < count; ++o) grad_in[chosen[o0 + o]] += gated[o];
    }
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
  if (out_plane == 1) {  // global pooling: every element gets grad / count, as the generic body computes it
    parallel_for(g.planes, 64, [&](std::int64_t p) {
      const T share = grad_output[p] / static_cast<T>(in_plane);
      std::fill(grad_input + p * in_plane, grad_input + (p + 1) * in_plane, share);
    });
    return;
  }
  parallel_for(g.planes, 64, [&](std::int64_t p) {
    T* grad_in = grad_input + p * in_plane;
    const T* grad_out = grad_output + p * out_plane;
    for (std::int64_t h = 0; h < g.in_height; ++h)
      for (std::int64_t w = 0; w < g.in_width; ++w)
        grad_in[h * g.in_width + w] = kernels::adaptive_avg_pool2d_grad_input(g, grad_out, h, w);
  });
}

// output = the average of each window (kernels::avg_pool2d_output: PyTorch's divisors).
template <typename T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* input, T* output) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 16, [&](std::int64_t p) {
    const T* in = input + p * in_plane;
    for (std::int64_t oh = 0; oh < g.out_height; ++oh)
      for (std::int64_t ow = 0; ow < g.out_width; ++ow)
        output[p * out_plane + oh * g.out_width + ow] = kernels::avg_pool2d_output(g, in, oh, ow);
  });
}

// grad_input = each output gradient over its divisor, added to its window's input elements
// (assigned), gathered per input element as the CUDA backend does.
template <typename T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* grad_output, T* grad_input) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 16, [&](std::int64_t p) {
    T* grad_in = grad_input + p * in_plane;
    const T* grad_out = grad_output + p * out_plane;
    for (std::int64_t h = 0; h < g.in_height; ++h)
      for (std::int64_t w = 0; w < g.in_width; ++w)
        grad_in[h * g.in_width + w] = kernels::avg_pool2d_grad_input(g, grad_out, h, w);
  });
}

// output = the maximum of each adaptive bin; argmax as in maxpool2d_forward. Backward is
// maxpool2d_backward (a scatter to the argmax positions).
template <typename T>
void adaptive_max_pool2d_forward(const Pool2dGeometry& g, const T* input, T* output, std::int32_t* argmax) {
  const std::int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  parallel_for(g.planes, 16, [&](std::int64_t p) {
    const T* in = input + p * in_plane;
    for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
      for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
        const std::int64_t best = kernels::adaptive_max_pool2d_argmax(g, in, oh, ow);
        const std::int64_t o = p * out_plane + oh * g.out_width + ow;
        output[o] = in[best];
        if (argmax) argmax[o] = static_cast<std::int32_t>(best);
      }
    }
  });
}

}  // namespace minicnn::ops::cpu
