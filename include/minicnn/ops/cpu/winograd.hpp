#pragma once
// Winograd convolution F(m x m, 3 x 3), m = 2 or 4, for the forward pass of 3x3 stride-1
// convolutions with several input channels (docs/design.md, "Winograd"; Lavin and Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016).
//
// An output tile of m x m positions is computed from an alpha x alpha input tile d (alpha = m + 2):
//   Y = A^T [ sum over input channels of (G g G^T) .* (B^T d B) ] A
// so the alpha^2 products per tile and channel pair replace 9 m^2 multiply-adds: 2.25x fewer for
// m = 2, 4x fewer for m = 4. The sum over channels is, for each of the alpha^2 points xi, a GEMM
//   M_xi [tiles, C_out] = V_xi [tiles, C_in] x U_xi [C_in, C_out]
// run on gemm_offsets (the convolutions' own micro-kernel), with V = B^T d B of every tile and
// U = G g G^T of every filter.
//
// Layouts (16 channels to a vector: the transforms run on 16 channels at once):
//   input    each image transposed once to channels-last, zero-padded: [H_p, W_p, C_in_p]
//   V        [alpha^2, tiles, C_in_p]     a block of tiles of a group of images
//   U        [alpha^2, C_in, C_out_p]     cached: recomputed only when the weights change
//   M        [alpha^2, tiles, C_out_p]    the same block
//   result   [positions, C_out_p] per image, transposed into NCHW with the bias and the fused ReLU
//            (or, in a forward pass without gradients that ends in a 2x2 max-pool, first pooled in
//            place: the bias, the ReLU and the pool's selects on 16 channels at once, then
//            transposed into the pooled NCHW output)
// (X_p: X rounded up to 16.)
//
// Each output value is a fixed sum of fixed products whichever images share a group or a block and
// whichever thread computes it, so the results are the same bits for every thread count. They are
// not the bits of im2col + GEMM: the transforms round differently (docs/performance.md states the
// error per tile size, float and double), which is why training keeps im2col unless asked
// (conv_algorithm.hpp).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "minicnn/config.hpp"
#include "minicnn/conv_algorithm.hpp"
#include "minicnn/ops/cpu/gemm.hpp"
#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/ops/cpu/transpose.hpp"
#include "minicnn/ops/kernels/conv.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::ops::cpu::winograd {

// Channels handled together by the transforms (one AVX-512 vector of floats).
inline constexpr std::int64_t lanes = 16;
inline std::int64_t round_up(std::int64_t n) { return (n + lanes - 1) / lanes * lanes; }

// `lanes` channels of one position, as one GCC / Clang vector (one zmm register of floats): the
// transforms' arithmetic, written once, runs on all lanes at once on any target.
template <typename T>
using Pack __attribute__((vector_size(lanes * sizeof(T)))) = T;
template <typename T>
inline Pack<T> load(const T* p) {
  Pack<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T, typename V>  // V: Pack<T>, which a call cannot deduce T from
inline void store(T* p, const V& v) {
  static_assert(sizeof(V) == lanes * sizeof(T), "a Pack of T");
  std::memcpy(p, &v, sizeof v);
}

// The one-dimensional transforms of F(m, 3) on `lanes` channels at once. Each reads its operands
// `stride` values apart and writes its results `out_stride` apart; the two-dimensional transform
// is the one-dimensional one along columns, then along rows.
template <int M>
struct Transform;

// F(2, 3), interpolation points 0, 1, -1 and infinity.
template <>
struct Transform<2> {
  static constexpr int m = 2, alpha = 4;
  // B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
  template <typename T>
  static void input(const T* d, std::int64_t stride, T* out, std::int64_t out_stride) {
    const Pack<T> d0 = load(d), d1 = load(d + stride), d2 = load(d + 2 * stride), d3 = load(d + 3 * stride);
    store(out, d0 - d2);
    store(out + out_stride, d1 + d2);
    store(out + 2 * out_stride, d2 - d1);
    store(out + 3 * out_stride, d1 - d3);
  }
  // A^T = [1 1 1 0; 0 1 -1 -1]
  template <typename T>
  static void output(const T* x, std::int64_t stride, T* out, std::int64_t out_stride) {
    const Pack<T> x0 = load(x), x1 = load(x + stride), x2 = load(x + 2 * stride), x3 = load(x + 3 * stride);
    store(out, x0 + x1 + x2);
    store(out + out_stride, x1 - x2 - x3);
  }
  // G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
  static void filter(const double* g, std::int64_t stride, double* out, std::int64_t out_stride) {
    const double g0 = g[0], g1 = g[stride], g2 = g[2 * stride];
    out[0] = g0;
    out[out_stride] = (g0 + g1 + g2) / 2;
    out[2 * out_stride] = (g0 - g1 + g2) / 2;
    out[3 * out_stride] = g2;
  }
};

// F(4, 3), interpolation points 0, 1, -1, 2, -2 and infinity.
template <>
struct Transform<4> {
  static constexpr int m = 4, alpha = 6;
  // B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
  template <typename T>
  static void input(const T* d, std::int64_t stride, T* out, std::int64_t out_stride) {
    const Pack<T> d0 = load(d), d1 = load(d + stride), d2 = load(d + 2 * stride), d3 = load(d + 3 * stride),
                  d4 = load(d + 4 * stride), d5 = load(d + 5 * stride);
    const Pack<T> a = d4 - T(4) * d2, b = d3 - T(4) * d1;  // rows 1 and 2 share these
    const Pack<T> c = d4 - d2, e = T(2) * (d3 - d1);        // rows 3 and 4
    store(out, T(4) * d0 - T(5) * d2 + d4);
    store(out + out_stride, a + b);
    store(out + 2 * out_stride, a - b);
    store(out + 3 * out_stride, c + e);
    store(out + 4 * out_stride, c - e);
    store(out + 5 * out_stride, T(4) * d1 - T(5) * d3 + d5);
  }
  // A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
  template <typename T>
  static void output(const T* x, std::int64_t stride, T* out, std::int64_t out_stride) {
    const Pack<T> x0 = load(x), x1 = load(x + stride), x2 = load(x + 2 * stride), x3 = load(x + 3 * stride),
                  x4 = load(x + 4 * stride), x5 = load(x + 5 * stride);
    const Pack<T> s12 = x1 + x2, d12 = x1 - x2, s34 = x3 + x4, d34 = x3 - x4;
    store(out, x0 + s12 + s34);
    store(out + out_stride, d12 + T(2) * d34);
    store(out + 2 * out_stride, s12 + T(4) * s34);
    store(out + 3 * out_stride, d12 + T(8) * d34 + x5);
  }
  // G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
  static void filter(const double* g, std::int64_t stride, double* out, std::int64_t out_stride) {
    const double g0 = g[0], g1 = g[stride], g2 = g[2 * stride];
    out[0] = g0 / 4;
    out[out_stride] = -(g0 + g1 + g2) / 6;
    out[2 * out_stride] = -(g0 - g1 + g2) / 6;
    out[3 * out_stride] = (g0 + 2 * g1 + 4 * g2) / 24;
    out[4 * out_stride] = (g0 - 2 * g1 + 4 * g2) / 24;
    out[5 * out_stride] = g2;
  }
};

// Layers Winograd can run: 3x3, stride 1, one padding, no dilation, one group, and more than one
// input channel (one input channel, conv1, has direct loops that are faster: conv.hpp).
inline bool qualifies(const Conv2dGeometry& g) {
  return g.is_plain() && g.kernel_height == 3 && g.kernel_width == 3 && g.stride_height == 1 && g.in_channels > 1;
}

// The tile size m for this layer (0: im2col + GEMM), given the algorithm setting and whether the
// pass is inference. The rule of `automatic` and `winograd`: m = 4 where both sides of the output
// map are at least 8, else m = 2 (a 4x4 tile on a smaller map would mostly compute outputs that
// are cut off), and im2col for maps one output wide or high. Benchmarked on FashionCNN's 28 x 28
// and 14 x 14 maps, where F(4x4) is 1.1-1.6x faster than F(2x2) (docs/performance.md,
// "Winograd"); maps below 8 were not measured.
inline int tile_size(const Conv2dGeometry& g, ConvAlgorithm algorithm, bool inference) {
  if (!qualifies(g) || algorithm == ConvAlgorithm::im2col) return 0;
  if (algorithm == ConvAlgorithm::winograd_2x2) return 2;
  if (algorithm == ConvAlgorithm::winograd_4x4) return 4;
  if (algorithm == ConvAlgorithm::automatic && !inference) return 0;
  if (g.out_height < 2 || g.out_width < 2) return 0;  // a 2x2 tile for one output: more work than im2col
  return g.out_height >= 8 && g.out_width >= 8 ? 4 : 2;
}

// Scratch memory of the Winograd path (part of Conv2dWorkspace): grown on demand, never shrunk.
template <typename T>
struct Workspace {
  Tensor<T> filters;          // U [alpha^2, C_in, C_out_p]
  Tensor<T> filters_source;   // the weights U was computed from, its tile size and channels
  int filters_tile = 0;       // 0: no valid U
  std::int64_t filters_in = 0, filters_out = 0;
  Tensor<T> bias;             // [C_out_p], zeros past C_out: the pooled store's whole vectors
  // Per thread, for the block it runs: the padded input rows channels-last, V, M and the result.
  std::vector<Tensor<T>> input, result, transformed, products;
  std::vector<std::int64_t> tile_rows, channels, filter_rows;  // the GEMMs' offset tables
};

// The bytes of V and M a block of tiles may take: they are written, read and written again while
// the block passes the three stages, so they should stay in the L2 cache (1 MB or more per core on
// the machines of docs/performance.md).
inline constexpr std::int64_t block_bytes = 256 * 1024;

// The geometry of one layer's tiling.
template <int M>
struct Tiling {
  std::int64_t tiles_high, tiles_wide;  // per image
  std::int64_t padded_width, in_stride, out_stride;  // channels-last input rows; C_in_p, C_out_p

  explicit Tiling(const Conv2dGeometry& g)
      : tiles_high((g.out_height + M - 1) / M),
        tiles_wide((g.out_width + M - 1) / M),
        padded_width(tiles_wide * M + 2),
        in_stride(round_up(g.in_channels)),
        out_stride(round_up(g.out_channels)) {}
};

// U = G g G^T of every filter, in double, rounded once to T; reused while the weights are the
// same values (compared, so a changed weight can never be missed).
template <int M, typename T>
void transform_filters(const Conv2dGeometry& g, const T* weight, Workspace<T>& ws) {
  constexpr int alpha = M + 2;
  const std::int64_t count = g.out_channels * g.in_channels * 9, out_stride = round_up(g.out_channels);
  if (ws.filters_tile == M && ws.filters_in == g.in_channels && ws.filters_out == g.out_channels &&
      std::memcmp(weight, ws.filters_source.data(), sizeof(T) * static_cast<std::size_t>(count)) == 0)
    return;
  ws.filters_tile = 0;  // invalid until U and its key are both written
  ws.filters.resize(Shape{alpha * alpha * g.in_channels * out_stride});  // columns past C_out: never read
  T* u = ws.filters.data();
  parallel_for(g.out_channels, 8, [&](std::int64_t o) {
    for (std::int64_t c = 0; c < g.in_channels; ++c) {
      double filter[9], rows[alpha * 3], point[alpha * alpha];
      for (int i = 0; i < 9; ++i) filter[i] = static_cast<double>(weight[(o * g.in_channels + c) * 9 + i]);
      for (int j = 0; j < 3; ++j) Transform<M>::filter(filter + j, 3, rows + j, 3);           // G g: [alpha, 3]
      for (int i = 0; i < alpha; ++i) Transform<M>::filter(rows + 3 * i, 1, point + alpha * i, 1);  // (G g) G^T
      for (int xi = 0; xi < alpha * alpha; ++xi)
        u[(xi * g.in_channels + c) * out_stride + o] = static_cast<T>(point[xi]);
    }
  });
  ws.filters_source.resize(Shape{count});
  std::copy(weight, weight + count, ws.filters_source.data());
  ws.filters_in = g.in_channels, ws.filters_out = g.out_channels;
  ws.filters_tile = M;
}

// The 2x2, stride-2 max-pool (floor mode) of `result` [positions of output rows first_row ..
// end_row - 1, C_out_p], in place: pooled row r's maxima go to [(r - first_row / 2) * (W / 2) + w,
// C_out_p], which no later window reads (it reads at twice the offset or more). Each of the four
// values gets the bias (if any) and the ReLU (if relu) as transpose() would store them, then the
// selects of maxpool2x2_row in its scan order (NaN wins): the bits of storing, then pooling.
template <typename T>
void max_pool_2x2_in_place(T* result, std::int64_t first_row, std::int64_t end_row, std::int64_t width,
                           std::int64_t channels, std::int64_t stride, const T* bias, bool relu) {
  const std::int64_t pooled_width = width / 2;
  const Pack<T> zero{};
  for (std::int64_t r = first_row / 2; r < end_row / 2; ++r)
    for (std::int64_t w = 0; w < pooled_width; ++w)
      for (std::int64_t o = 0; o < channels; o += lanes) {
        const T* top = result + ((2 * r - first_row) * width + 2 * w) * stride + o;
        Pack<T> x[4] = {load(top), load(top + stride), load(top + width * stride), load(top + (width + 1) * stride)};
        for (Pack<T>& v : x) {
          if (bias) v = v + load(bias + o);
          if (relu) v = (v > zero) | (v != v) ? v : zero;  // kernels::relu: NaN kept, -0 to +0
        }
        Pack<T> best = x[0];
        for (int i = 1; i < 4; ++i) best = (x[i] > best) | (x[i] != x[i]) ? x[i] : best;
        store(result + ((r - first_row / 2) * pooled_width + w) * stride + o, best);
      }
}

// One block: global tile rows first_row .. first_row + rows - 1 of the batch (row r: image
// r / tiles_high, tile row r % tiles_high), a segment per image they touch, all in this thread's
// buffers and caches:
//   1. the segment's padded input rows, channels-last: zero rows and columns, each image row
//      transposed into place 16 channels at a time;
//   2. V = B^T d B of each tile, 16 channels at a time;
//   3. M_xi = V_xi U_xi, one GEMM per point;
//   4. Y = A^T M A of each tile into the result [positions, C_out_p] of the segment's output rows;
//   5. the result transposed into those output rows, adding the bias, then the ReLU; with pool,
//      the result's 2x2 max-pool (max_pool_2x2_in_place) into the pooled output's rows.
template <int M, typename T>
void forward_block(const Conv2dGeometry& g, const Tiling<M>& t, const T* input, const T* bias, bool relu, bool pool,
                   std::int64_t first_row, std::int64_t rows, T* output, Workspace<T>& ws) {
  using F = Transform<M>;
  constexpr int alpha = F::alpha, points = alpha * alpha;
  T* padded = detail::thread_buffer(ws.input);
  T* result = detail::thread_buffer(ws.result);
  T* v = detail::thread_buffer(ws.transformed);         // V [points, n, C_in_p]
  T* products = detail::thread_buffer(ws.products);     // M [points, n, C_out_p]
  const std::int64_t n = rows * t.tiles_wide, row = t.padded_width * t.in_stride;
  const std::int64_t pad = g.padding_height, plane = g.in_height * g.in_width, positions = g.out_height * g.out_width;

  struct Segment {
    std::int64_t image, first, last;  // tile rows first .. last - 1 of the image
    T* input;                         // its padded rows: tile row `first`'s top row first
    T* result;                        // its output rows' results
  };
  Segment segments[2 * gemm_mr];  // one per image touched: at most rows <= 2 gemm_mr (forward())
  int count = 0;
  for (std::int64_t r = first_row, in_rows = 0, out_positions = 0; r < first_row + rows;) {
    const std::int64_t image = r / t.tiles_high, first = r % t.tiles_high;
    const std::int64_t last = std::min(t.tiles_high, first + first_row + rows - r);
    segments[count++] = {image, first, last, padded + in_rows * row, result + out_positions * t.out_stride};
    in_rows += (last - first) * M + 2;
    out_positions += (std::min(g.out_height, last * M) - first * M) * g.out_width;
    r += last - first;
  }

  // 1. Padded input rows first * M .. last * M + 1 of each segment.
  for (int s = 0; s < count; ++s) {
    const Segment& seg = segments[s];
    for (std::int64_t y = seg.first * M; y < seg.last * M + 2; ++y) {
      T* out = seg.input + (y - seg.first * M) * row;
      const std::int64_t h = y - pad;
      const bool inside = h >= 0 && h < g.in_height;
      const std::int64_t left = inside ? pad : t.padded_width, right = inside ? pad + g.in_width : t.padded_width;
      std::fill(out, out + left * t.in_stride, T(0));
      if (inside)
        for (std::int64_t c = 0; c < g.in_channels; c += lanes)
          transpose(std::min(lanes, g.in_channels - c), g.in_width,
                    input + seg.image * g.input_image_size() + c * plane + h * g.in_width, plane,
                    out + pad * t.in_stride + c, t.in_stride);
      std::fill(out + right * t.in_stride, out + row, T(0));
    }
  }

  // 2. V = B^T d B: along each tile's columns (rows[r][s] = (B^T d)[r][s]), then along its rows.
  T rows_buffer[(M + 2) * (M + 2) * lanes], y[M * M * lanes];
  for (int s = 0, j = 0; s < count; ++s) {
    const Segment& seg = segments[s];
    for (std::int64_t ty = seg.first; ty < seg.last; ++ty)
      for (std::int64_t tx = 0; tx < t.tiles_wide; ++tx, ++j) {
        const T* d = seg.input + ((ty - seg.first) * M * t.padded_width + tx * M) * t.in_stride;
        for (std::int64_t c = 0; c < g.in_channels; c += lanes) {
          for (int col = 0; col < alpha; ++col)
            F::input(d + col * t.in_stride + c, row, rows_buffer + col * lanes, alpha * lanes);
          for (int r = 0; r < alpha; ++r)
            F::input(rows_buffer + r * alpha * lanes, lanes, v + (r * alpha * n + j) * t.in_stride + c,
                     n * t.in_stride);
        }
      }
  }

  // 3. M_xi = V_xi U_xi.
  for (int xi = 0; xi < points; ++xi) {
    OffsetGemm<T> p;
    p.M = n, p.N = g.out_channels, p.K = g.in_channels;
    p.a = v + xi * n * t.in_stride, p.a_rows = ws.tile_rows.data(), p.a_cols = ws.channels.data();
    p.b = ws.filters.data() + xi * g.in_channels * t.out_stride, p.b_rows = ws.filter_rows.data();
    p.c = products + xi * n * t.out_stride, p.ldc = t.out_stride;
    gemm_offsets(p);
  }

  // 4. and 5. Y = A^T M A into the result, then the segment's output rows.
  for (int s = 0, j = 0; s < count; ++s) {
    const Segment& seg = segments[s];
    for (std::int64_t ty = seg.first; ty < seg.last; ++ty)
      for (std::int64_t tx = 0; tx < t.tiles_wide; ++tx, ++j) {
        const std::int64_t height = std::min<std::int64_t>(M, g.out_height - ty * M);
        const std::int64_t width = std::min<std::int64_t>(M, g.out_width - tx * M);
        for (std::int64_t o = 0; o < g.out_channels; o += lanes) {
          const T* x = products + j * t.out_stride + o;
          for (int col = 0; col < alpha; ++col)
            F::output(x + col * n * t.out_stride, alpha * n * t.out_stride, rows_buffer + col * lanes, alpha * lanes);
          for (int a = 0; a < M; ++a) F::output(rows_buffer + a * alpha * lanes, lanes, y + a * M * lanes, lanes);
          for (std::int64_t a = 0; a < height; ++a)
            for (std::int64_t b = 0; b < width; ++b)
              std::memcpy(seg.result + (((ty - seg.first) * M + a) * g.out_width + tx * M + b) * t.out_stride + o,
                          y + (a * M + b) * lanes, sizeof(T) * lanes);
        }
      }
    const std::int64_t first_out_row = seg.first * M, end_out_row = std::min(g.out_height, seg.last * M);
    if (pool) {  // M is even: a segment holds whole pairs of rows
      const std::int64_t pooled_width = g.out_width / 2, pooled_positions = g.out_height / 2 * pooled_width;
      max_pool_2x2_in_place(seg.result, first_out_row, end_out_row, g.out_width, g.out_channels, t.out_stride,
                            bias ? ws.bias.data() : nullptr, relu);
      transpose((end_out_row / 2 - first_out_row / 2) * pooled_width, g.out_channels,
                static_cast<const T*>(seg.result), t.out_stride,
                output + (seg.image * g.out_channels * pooled_positions + first_out_row / 2 * pooled_width),
                pooled_positions);
      continue;
    }
    transpose((end_out_row - first_out_row) * g.out_width, g.out_channels, static_cast<const T*>(seg.result),
              t.out_stride, output + seg.image * g.output_image_size() + first_out_row * g.out_width, positions,
              bias, relu);
  }
}

// output = conv(input, weight) + bias (bias may be null), then ReLU when relu, by F(M x M, 3 x 3):
// the batch's tile rows in blocks of `block_rows` (blocks may span images), one parallel loop.
// A batch too small to give every thread a block of the preferred size gets smaller blocks.
// With pool, output is instead that result's 2x2, stride-2 max-pool (floor mode)
// [N, C_out, H / 2, W / 2], the maxima alone (a forward pass without gradients).
template <int M, typename T>
void forward(const Conv2dGeometry& g, const T* input, const T* weight, const T* bias, T* output, Workspace<T>& ws,
             bool relu, bool pool = false) {
  constexpr int points = (M + 2) * (M + 2);
  const Tiling<M> t(g);
  transform_filters<M>(g, weight, ws);
  const int threads = num_threads();
  const std::int64_t total_rows = g.batch * t.tiles_high;
  // Tile rows whose V and M fit block_bytes, but at least one row and at most a thread's share.
  const std::int64_t fitting = block_bytes / (points * (t.in_stride + t.out_stride) * std::int64_t{sizeof(T)}) /
                               t.tiles_wide;
  const std::int64_t block_rows =
      std::clamp<std::int64_t>(std::min(fitting, (total_rows + threads - 1) / threads), 1, 2 * gemm_mr);
  const std::int64_t n = block_rows * t.tiles_wide;
  // A block's segments: one per image it touches, each with a row of the block, so at most
  // block_rows <= 2 gemm_mr of them (forward_block's Segment array), each 2 padded rows longer.
  const std::int64_t images = std::min<std::int64_t>(block_rows, g.batch);
  // The input rows' padding channels are read and never written: zero from the allocation.
  detail::ensure_thread_buffers(ws.input, (block_rows * M + 2 * images) * t.padded_width * t.in_stride);
  detail::ensure_thread_buffers(ws.result, block_rows * M * g.out_width * t.out_stride);
  detail::ensure_thread_buffers(ws.transformed, points * n * t.in_stride);
  detail::ensure_thread_buffers(ws.products, points * n * t.out_stride);
  detail::dense_rows(n, t.in_stride, ws.tile_rows);
  detail::dense_rows(g.in_channels, 1, ws.channels);
  detail::dense_rows(g.in_channels, t.out_stride, ws.filter_rows);
  if (pool && bias) {
    ws.bias.resize(Shape{t.out_stride});
    std::fill(std::copy(bias, bias + g.out_channels, ws.bias.data()), ws.bias.data() + t.out_stride, T(0));
  }
  parallel_for((total_rows + block_rows - 1) / block_rows, 2, [&](std::int64_t b) {
    const std::int64_t first_row = b * block_rows;
    forward_block<M>(g, t, input, bias, relu, pool, first_row, std::min(block_rows, total_rows - first_row), output,
                     ws);
  });
}

}  // namespace minicnn::ops::cpu::winograd
