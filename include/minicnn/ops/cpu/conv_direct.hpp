#pragma once
// Direct 3x3 convolution for layers with ONE input channel (FashionCNN's conv1). There the
// im2col matrix has only 9 rows, far too shallow for the GEMM: its 8-row tiles run half empty
// and every tile loads and stores C for 9 multiply-adds. These loops keep 16 outputs (one
// AVX-512 vector) of several output channels in registers instead, over the same zero-padded
// plane and output grid as the implicit-im2col path of conv.hpp (which pads, crops and reduces).
//
// Layout: `padded` is one padded image plane, row pitch W + pad (conv.hpp, "rows share their
// padding columns"); `taps[t]` = kh * pitch + kw for t = kh * 3 + kw; the grid runs over
// q in [0, grid). Reads may run up to 15 elements past the grid (the buffer has a zeroed tail).
#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "minicnn/ops/cpu/lanes.hpp"

namespace minicnn::ops::cpu::direct {

inline constexpr std::int64_t taps = 9;    // 3 x 3
inline constexpr std::int64_t lanes = 16;  // outputs per step: one AVX-512 vector of floats

// a * b + c, fused when the target has FMA (as the GEMM micro-kernel is), else plain.
template <typename T>
inline T multiply_add(T a, T b, T c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// The portable loops (any T; the float overloads below take over on AVX-512 builds). The
// compiler does not vectorise these well: they are the reference and the fallback.
//
// result[o * result_stride + q] = sum over t of weight[o * 9 + t] * padded[q + taps[t]], the
// taps added in order from zero, as the GEMM would. Four output channels at a time share each
// load of the image.
template <typename T>
void forward(std::int64_t out_channels, const T* weight, const std::int64_t* tap, const T* padded, std::int64_t grid,
             T* result, std::int64_t result_stride) {
  constexpr std::int64_t block = 4;
  for (std::int64_t o0 = 0; o0 < out_channels; o0 += block) {
    const std::int64_t channels = std::min(block, out_channels - o0);
    T w[block][taps];
    for (std::int64_t c = 0; c < block; ++c)
      for (std::int64_t t = 0; t < taps; ++t) w[c][t] = c < channels ? weight[(o0 + c) * taps + t] : T(0);
    for (std::int64_t q0 = 0; q0 < grid; q0 += lanes) {
      T acc[block][lanes] = {};
      for (std::int64_t t = 0; t < taps; ++t) {
        const T* p = padded + q0 + tap[t];
        for (std::int64_t c = 0; c < block; ++c)
          for (std::int64_t j = 0; j < lanes; ++j) acc[c][j] = multiply_add(w[c][t], p[j], acc[c][j]);
      }
      const std::int64_t width = std::min(lanes, grid - q0);
      for (std::int64_t c = 0; c < channels; ++c)
        for (std::int64_t j = 0; j < width; ++j) result[(o0 + c) * result_stride + q0 + j] = acc[c][j];
    }
  }
}

// For one image: weight_grad[t * out_channels + o] (+)= sum over q of grad[o * grad_stride + q] *
// padded[q + taps[t]], and bias_grad[o] += sum over q of grad[o * grad_stride + q]; `grad` is the
// output gradient spread onto the grid (zero on the discarded columns) and padded with zeros to
// a multiple of 16. Assigns the weight gradient when `accumulate` is false. Each sum runs in 16
// lanes that are added in a fixed order at the end, so the result does not depend on threads.
template <typename T>
void backward_weights(std::int64_t out_channels, const T* grad, std::int64_t grad_stride, const std::int64_t* tap,
                      const T* padded, std::int64_t grid, T* weight_grad, T* bias_grad, bool accumulate) {
  for (std::int64_t o = 0; o < out_channels; ++o) {
    const T* g = grad + o * grad_stride;
    T acc[taps][lanes] = {};
    T bias_acc[lanes] = {};
    for (std::int64_t q0 = 0; q0 < grid; q0 += lanes) {
      for (std::int64_t j = 0; j < lanes; ++j) bias_acc[j] += g[q0 + j];
      for (std::int64_t t = 0; t < taps; ++t) {
        const T* p = padded + q0 + tap[t];
        for (std::int64_t j = 0; j < lanes; ++j) acc[t][j] = multiply_add(g[q0 + j], p[j], acc[t][j]);
      }
    }
    for (std::int64_t t = 0; t < taps; ++t) {
      T sum = T(0);
      for (std::int64_t j = 0; j < lanes; ++j) sum += acc[t][j];
      T& dst = weight_grad[t * out_channels + o];
      dst = accumulate ? dst + sum : sum;
    }
    T bias_sum = T(0);
    for (std::int64_t j = 0; j < lanes; ++j) bias_sum += bias_acc[j];
    bias_grad[o] += bias_sum;
  }
}

#if defined(__AVX512F__)
// AVX-512 versions for float: the same sums in the same order (lanes are independent outputs in
// forward; in backward_weights the 16 lanes are reduced by _mm512_reduce_add_ps, a fixed tree).

// Eight output channels share each load of 16 image values: 9 loads and 72 FMAs (weights
// broadcast from memory) per 128 outputs, in 8 independent chains.
inline void forward(std::int64_t out_channels, const float* weight, const std::int64_t* tap, const float* padded,
                    std::int64_t grid, float* result, std::int64_t result_stride) {
  constexpr std::int64_t block = 8;
  alignas(64) float w[block * taps];
  for (std::int64_t o0 = 0; o0 < out_channels; o0 += block) {
    const std::int64_t channels = std::min(block, out_channels - o0);
    for (std::int64_t i = 0; i < block * taps; ++i) w[i] = i < channels * taps ? weight[o0 * taps + i] : 0.0f;
    for (std::int64_t q0 = 0; q0 < grid; q0 += lanes) {
      __m512 acc[block];
#pragma GCC unroll 8
      for (std::int64_t c = 0; c < block; ++c) acc[c] = _mm512_setzero_ps();
#pragma GCC unroll 9
      for (std::int64_t t = 0; t < taps; ++t) {
        const __m512 p = _mm512_loadu_ps(padded + q0 + tap[t]);
#pragma GCC unroll 8
        for (std::int64_t c = 0; c < block; ++c) acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(w[c * taps + t]), p, acc[c]);
      }
      const std::int64_t width = std::min(lanes, grid - q0);
      const __mmask16 mask = first_lanes(width);
#pragma GCC unroll 8
      for (std::int64_t c = 0; c < block; ++c)
        if (c < channels) _mm512_mask_storeu_ps(result + (o0 + c) * result_stride + q0, mask, acc[c]);
    }
  }
}

// Two output channels share each load of the image: 11 loads, 18 FMAs and 2 adds per 16 grid
// points, in 20 independent chains.
inline void backward_weights(std::int64_t out_channels, const float* grad, std::int64_t grad_stride,
                             const std::int64_t* tap, const float* padded, std::int64_t grid, float* weight_grad,
                             float* bias_grad, bool accumulate) {
  constexpr std::int64_t block = 2;
  for (std::int64_t o0 = 0; o0 < out_channels; o0 += block) {
    const std::int64_t channels = std::min(block, out_channels - o0);
    const float* g0 = grad + o0 * grad_stride;
    const float* g1 = channels > 1 ? g0 + grad_stride : g0;  // a lone last channel computes twice, keeps one
    __m512 acc[block][taps], bias_acc[block];
#pragma GCC unroll 9
    for (std::int64_t t = 0; t < taps; ++t) acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    bias_acc[0] = bias_acc[1] = _mm512_setzero_ps();
    for (std::int64_t q0 = 0; q0 < grid; q0 += lanes) {
      const __m512 a = _mm512_loadu_ps(g0 + q0), b = _mm512_loadu_ps(g1 + q0);
      bias_acc[0] = _mm512_add_ps(bias_acc[0], a);
      bias_acc[1] = _mm512_add_ps(bias_acc[1], b);
#pragma GCC unroll 9
      for (std::int64_t t = 0; t < taps; ++t) {
        const __m512 p = _mm512_loadu_ps(padded + q0 + tap[t]);
        acc[0][t] = _mm512_fmadd_ps(a, p, acc[0][t]);
        acc[1][t] = _mm512_fmadd_ps(b, p, acc[1][t]);
      }
    }
    for (std::int64_t c = 0; c < channels; ++c) {
      for (std::int64_t t = 0; t < taps; ++t) {
        const float sum = _mm512_reduce_add_ps(acc[c][t]);
        float& dst = weight_grad[t * out_channels + o0 + c];
        dst = accumulate ? dst + sum : sum;
      }
      bias_grad[o0 + c] += _mm512_reduce_add_ps(bias_acc[c]);
    }
  }
}
#endif

}  // namespace minicnn::ops::cpu::direct
