// The CPU GEMM kernels against each other and the convolution kernels against a direct
// definition: the AVX-512 micro-kernel (when this build has it), the portable kernel and Eigen
// must agree on odd shapes (edges of every register tile), and every convolution path (implicit
// im2col for plain geometries, small maps' image groups, explicit im2col otherwise, Winograd's
// fast forward pass) must match the textbook sum.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "minicnn/conv_algorithm.hpp"
#include "minicnn/ops/cpu/conv.hpp"
#include "minicnn/ops/cpu/gemm.hpp"
#include "minicnn/ops/cpu/pooling.hpp"
#include "minicnn/ops/cpu/transpose.hpp"
#include "minicnn/ops/cpu/winograd.hpp"
#include "minicnn/random.hpp"
#include "same_bits.hpp"

using namespace minicnn;
using namespace minicnn::ops;

namespace {

std::vector<float> random_vector(std::int64_t size, std::uint64_t seed) {
  std::vector<float> v(static_cast<std::size_t>(size));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(random_unit(seed, i) * 2.0 - 1.0);
  return v;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
  return worst;
}

// C = A B (+ C) through gemm_offsets, reading A through its offset tables either as stored
// row-major (a_rows[m] = m K, a_cols[k] = k) or as stored column-major (a_rows[m] = m,
// a_cols[k] = k M), the way a convolution reads its padded image by position and by tap; B
// ([K, ldb] row-major) as given or, with strips, copied into strips of gemm_nr columns (with a
// gap of 5 values between strips, so b_strip is not their size).
std::vector<float> offsets_product(bool column_major, bool portable, bool strips, std::int64_t M, std::int64_t N,
                                   std::int64_t K, const std::vector<float>& A, const std::vector<float>& B,
                                   std::int64_t ldb, std::vector<float> C, std::int64_t ldc, bool accumulate) {
  std::vector<std::int64_t> a_rows(static_cast<std::size_t>(M)), a_cols(static_cast<std::size_t>(K)),
      b_rows(static_cast<std::size_t>(K));
  std::vector<float> a_stored(A.size());
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t k = 0; k < K; ++k)
      a_stored[static_cast<std::size_t>(column_major ? k * M + m : m * K + k)] = A[static_cast<std::size_t>(m * K + k)];
  for (std::int64_t m = 0; m < M; ++m) a_rows[static_cast<std::size_t>(m)] = column_major ? m : m * K;
  for (std::int64_t k = 0; k < K; ++k) a_cols[static_cast<std::size_t>(k)] = column_major ? k * M : k;
  for (std::int64_t k = 0; k < K; ++k) b_rows[static_cast<std::size_t>(k)] = k * (strips ? cpu::gemm_nr : ldb);
  const std::int64_t strip = K * cpu::gemm_nr + 5;
  std::vector<float> b_strips(static_cast<std::size_t>((N + cpu::gemm_nr - 1) / cpu::gemm_nr * strip), std::nanf(""));
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t n = 0; n < N; ++n)
      b_strips[static_cast<std::size_t>(n / cpu::gemm_nr * strip + k * cpu::gemm_nr + n % cpu::gemm_nr)] =
          B[static_cast<std::size_t>(k * ldb + n)];
  cpu::OffsetGemm<float> p;
  p.M = M, p.N = N, p.K = K;
  p.a = a_stored.data(), p.a_rows = a_rows.data(), p.a_cols = a_cols.data();
  p.b = strips ? b_strips.data() : B.data(), p.b_rows = b_rows.data(), p.c = C.data(), p.ldc = ldc;
  p.b_strip = strips ? strip : 0;
  p.accumulate = accumulate;
  if (portable) cpu::gemm_offsets_portable(p);
  else cpu::gemm_offsets(p);
  return C;
}

// output[n, o, oh, ow] = bias[o] + sum over the group's c, kh, kw of weight * input (zero
// outside), in double.
std::vector<double> direct_conv(const Conv2dGeometry& g, const std::vector<double>& input,
                                const std::vector<double>& weight, const std::vector<double>& bias) {
  std::vector<double> out(static_cast<std::size_t>(g.batch * g.output_image_size()));
  const std::int64_t group_in = g.group_in_channels();
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t o = 0; o < g.out_channels; ++o)
      for (std::int64_t oh = 0; oh < g.out_height; ++oh)
        for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
          double sum = bias[static_cast<std::size_t>(o)];
          const std::int64_t first_channel = o / g.group_out_channels() * group_in;
          for (std::int64_t c = 0; c < group_in; ++c)
            for (std::int64_t kh = 0; kh < g.kernel_height; ++kh)
              for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
                const std::int64_t ih = oh * g.stride_height - g.padding_height + kh * g.dilation_height;
                const std::int64_t iw = ow * g.stride_width - g.padding_width + kw * g.dilation_width;
                if (ih < 0 || ih >= g.in_height || iw < 0 || iw >= g.in_width) continue;
                sum += weight[static_cast<std::size_t>(((o * group_in + c) * g.kernel_height + kh) * g.kernel_width +
                                                       kw)] *
                       input[static_cast<std::size_t>(
                           ((n * g.in_channels + first_channel + c) * g.in_height + ih) * g.in_width + iw)];
              }
          out[static_cast<std::size_t>(((n * g.out_channels + o) * g.out_height + oh) * g.out_width + ow)] = sum;
        }
  return out;
}

}  // namespace

TEST_CASE("gemm_offsets: the built kernel, the portable kernel and Eigen agree on odd shapes", "[kernels][gemm]") {
  INFO("AVX-512 kernel in this build: " << cpu::gemm_offsets_uses_avx512<float>());
  const std::int64_t shapes[][3] = {{1, 1, 1},   {8, 32, 256},  {7, 33, 5},     {9, 31, 257}, {17, 16, 600},
                                    {3, 47, 1},  {32, 784, 288}, {64, 198, 576}, {13, 64, 840}, {5, 3, 0}};
  std::uint64_t seed = 1;
  for (const auto& shape : shapes) {
    const std::int64_t M = shape[0], N = shape[1], K = shape[2], ldb = N + 3, ldc = N + 5;
    INFO("M " << M << " N " << N << " K " << K);
    const auto A = random_vector(M * K, seed++), B = random_vector(std::max<std::int64_t>(K, 1) * ldb, seed++);
    const auto C0 = random_vector(M * ldc, seed++);
    for (bool accumulate : {false, true}) {
      std::vector<float> expected = C0;
      cpu::gemm_eigen(false, false, M, N, K, 1.0f, A.data(), K, B.data(), ldb, accumulate ? 1.0f : 0.0f,
                      expected.data(), ldc);
      for (bool column_major : {false, true})
        for (bool portable : {false, true})
          for (bool strips : {false, true}) {
            INFO("accumulate " << accumulate << " column-major A " << column_major << " portable " << portable
                               << " B in strips " << strips);
            const auto found = offsets_product(column_major, portable, strips, M, N, K, A, B, ldb, C0, ldc, accumulate);
            CHECK(max_abs_difference(found, expected) <= 1e-5 * std::max<std::int64_t>(K, 1));
            // Strips change where B's values are read, not the order they are summed in.
            if (strips)
              CHECK(minicnn::testing::same_bits(
                  found, offsets_product(column_major, portable, false, M, N, K, A, B, ldb, C0, ldc, accumulate)));
            // Columns past N in each row of C are never written.
            bool padding_untouched = true;
            for (std::int64_t m = 0; m < M; ++m)
              for (std::int64_t n = N; n < ldc; ++n)
                padding_untouched &= found[static_cast<std::size_t>(m * ldc + n)] == C0[static_cast<std::size_t>(m * ldc + n)];
            CHECK(padding_untouched);
          }
    }
  }
}

TEST_CASE("transpose moves every element, adds the shift once, rectifies like ReLU, sums each row in order, and writes "
          "nothing else",
          "[kernels][transpose]") {
  // Shapes around the 16 x 16 register blocks (full blocks, edges on either side, both) and the
  // convolutions' own ([positions, channels] and back); with no columns, nothing is written.
  const std::int64_t shapes[][2] = {{1, 1},    {16, 16},  {17, 16},  {16, 33}, {31, 47},
                                    {784, 32}, {196, 64}, {64, 196}, {5, 0}};
  std::uint64_t seed = 100;
  auto same_bits = [](float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; };
  for (const auto& shape : shapes) {
    const std::int64_t rows = shape[0], cols = shape[1], ld_src = cols + 3, ld_dst = rows + 5;
    INFO("rows " << rows << " cols " << cols);
    auto src = random_vector(rows * ld_src, seed++);
    const auto shift = random_vector(cols, seed++);
    // NaN and signed zeros, which ReLU must map exactly as kernels::relu does.
    for (std::size_t i = 0; i < src.size(); i += 7) src[i] = i % 3 == 0 ? std::nanf("") : i % 3 == 1 ? -0.0f : 0.0f;
    // The destination's cols rows, then one guard row.
    const auto before = random_vector((cols + 1) * ld_dst, seed++);
    for (bool with_shift : {false, true})
      for (bool rectify : {false, true}) {
        INFO("shift " << with_shift << " rectify " << rectify);
        std::vector<float> dst = before, plain = before;
        // Running sums with a start value per row, and one guard past the last row.
        const auto sums_before = random_vector(rows + 1, seed++);
        auto sums = sums_before, expected_sums = sums_before;
        cpu::transpose(rows, cols, src.data(), ld_src, dst.data(), ld_dst, with_shift ? shift.data() : nullptr,
                       rectify, sums.data());
        cpu::transpose(rows, cols, src.data(), ld_src, plain.data(), ld_dst, with_shift ? shift.data() : nullptr,
                       rectify);
        bool exact = true, untouched = true;
        for (std::int64_t j = 0; j <= cols; ++j)
          for (std::int64_t i = 0; i < ld_dst; ++i) {
            const auto at = static_cast<std::size_t>(j * ld_dst + i);
            if (j == cols || i >= rows) {
              untouched &= same_bits(dst[at], before[at]);
              continue;
            }
            float value = src[static_cast<std::size_t>(i * ld_src + j)];
            if (with_shift) value += shift[static_cast<std::size_t>(j)];
            if (rectify) value = kernels::relu(value);
            exact &= same_bits(dst[at], value);
            expected_sums[static_cast<std::size_t>(i)] += value;  // j in order for each row i
          }
        CHECK(exact);
        CHECK(untouched);
        CHECK(minicnn::testing::same_bits(plain, dst));  // the sums change nothing that is stored
        CHECK(minicnn::testing::same_bits(sums, expected_sums));  // NaN rows included, bit for bit; the guard untouched
      }
    // A negative ld_dst writes the same rows from the last up (how the conv flips its kernel).
    std::vector<float> down((cols + 1) * ld_dst, 0.0f), up((cols + 1) * ld_dst, 0.0f);
    cpu::transpose(rows, cols, src.data(), ld_src, down.data(), ld_dst);
    if (cols > 0) cpu::transpose(rows, cols, src.data(), ld_src, up.data() + (cols - 1) * ld_dst, -ld_dst);
    bool reversed = true;
    for (std::int64_t j = 0; j < cols; ++j)
      for (std::int64_t i = 0; i < rows; ++i)
        reversed &= same_bits(up[static_cast<std::size_t>((cols - 1 - j) * ld_dst + i)],
                              down[static_cast<std::size_t>(j * ld_dst + i)]);
    CHECK(reversed);
  }
}

TEST_CASE("pad_image writes every element of the padded buffer: the image in place, zeros around it, nothing past it",
          "[kernels][conv]") {
  // Planes around the 16-column steps of the AVX-512 rows (widths below, at and past 16, rows
  // of 29 and 15 as FashionCNN's), pads of 0 to 3 on either side, and the grad_output planes;
  // planes written by whole steps (cpu::detail::pads_by_steps: all but the 5th and 6th), among
  // them two with no padding below, whose last row must not spill into the next plane.
  struct Plane {
    std::int64_t channels, height, width, pad_top, pad_left, padded_height, padded_width;
  };
  const Plane planes[] = {{32, 28, 28, 1, 1, 30, 29}, {64, 14, 14, 1, 1, 16, 15}, {1, 28, 28, 1, 1, 30, 29},
                          {3, 5, 16, 0, 0, 5, 16},    {2, 4, 16, 2, 3, 9, 20},    {2, 3, 17, 1, 2, 5, 33},
                          {1, 1, 1, 0, 0, 1, 1},      {2, 6, 31, 3, 0, 12, 32},   {1, 2, 40, 1, 1, 4, 41},
                          {2, 3, 14, 0, 1, 3, 15},    {3, 4, 5, 0, 2, 4, 8}};
  std::uint64_t seed = 300;
  for (const Plane& q : planes) {
    const cpu::detail::PaddedPlane p{q.channels, q.height,        q.width,       q.pad_top,
                                     q.pad_left, q.padded_height, q.padded_width};
    INFO("channels " << q.channels << " " << q.height << "x" << q.width << " pad top " << q.pad_top << " left "
                     << q.pad_left << " -> " << q.padded_height << "x" << q.padded_width);
    const auto image = random_vector(q.channels * q.height * q.width, seed++);
    // Stale values everywhere, and a guard past the buffer that must survive.
    constexpr std::int64_t guard = 64;
    auto padded = random_vector(p.buffer_size() + guard, seed++);
    const auto before = padded;
    cpu::detail::pad_image(p, image.data(), padded.data());
    bool exact = true;
    for (std::int64_t i = 0; i < p.buffer_size() + guard; ++i) {
      const std::int64_t c = i / p.plane(), h = i % p.plane() / q.padded_width - q.pad_top;
      const std::int64_t w = i % p.plane() % q.padded_width - q.pad_left;
      float expected = 0.0f;
      if (i >= p.buffer_size())
        expected = before[static_cast<std::size_t>(i)];
      else if (c < q.channels && h >= 0 && h < q.height && w >= 0 && w < q.width)
        expected = image[static_cast<std::size_t>((c * q.height + h) * q.width + w)];
      exact &= padded[static_cast<std::size_t>(i)] == expected;
    }
    CHECK(exact);
    // pad_planes alone writes the planes and not one value past them (the next image's, when
    // several images are padded one after the other by different threads).
    auto planes_only = before;
    cpu::detail::pad_planes(p, image.data(), planes_only.data());
    bool rest_untouched = true;
    for (std::int64_t i = 0; i < p.buffer_size() + guard; ++i) {
      const auto at = static_cast<std::size_t>(i);
      rest_untouched &= i < p.image_size() ? planes_only[at] == padded[at] : planes_only[at] == before[at];
    }
    CHECK(rest_untouched);
  }
  // Each row on its own, through the float overload (AVX-512 in such builds) and the generic
  // template alike: every split of a row into left padding, values and right padding up to 40
  // columns, the source exactly `width` long, the output followed by a guard.
  bool rows_exact = true;
  for (std::int64_t pad_left = 0; pad_left <= 17; ++pad_left)
    for (std::int64_t width = 0; width <= 40; ++width)
      for (std::int64_t pad_right = 0; pad_right <= 17; ++pad_right) {
        const std::int64_t total = pad_left + width + pad_right;
        const auto in = random_vector(width, seed++);
        const auto before = random_vector(total + 16, seed++);
        auto fast = before, generic = before;
        cpu::detail::pad_row(in.data(), pad_left, width, total, fast.data());
        cpu::detail::pad_row<float>(in.data(), pad_left, width, total, generic.data());
        for (std::int64_t j = 0; j < total + 16; ++j) {
          const auto at = static_cast<std::size_t>(j);
          const float expected = j >= total                              ? before[at]
                                 : j >= pad_left && j < pad_left + width ? in[static_cast<std::size_t>(j - pad_left)]
                                                                         : 0.0f;
          rows_exact &= fast[at] == expected && generic[at] == expected;
        }
      }
  CHECK(rows_exact);
}

TEST_CASE("conv2d kernels match the direct sum on stride-1 and strided shapes, in float, the same bits on 1 to 3 threads",
          "[kernels][conv]") {
  struct Case {
    std::int64_t batch, in_channels, out_channels, kernel, stride, padding, height, width;
  };
  const Case cases[] = {
      {5, 1, 32, 3, 1, 1, 28, 28},  // conv1 of FashionCNN: the direct single-channel loops
      {3, 1, 7, 3, 1, 0, 9, 13},    // direct loops: no padding, odd sizes, a partial channel block
      {2, 1, 5, 3, 1, 2, 5, 6},     // direct loops: padding 2
      {3, 32, 32, 3, 1, 1, 28, 28}, // conv2
      {6, 32, 64, 3, 1, 1, 14, 14}, // conv3 (a chunk and a half of images)
      {2, 3, 9, 5, 1, 2, 7, 11},    // 5x5, odd channel counts
      {2, 4, 3, 3, 1, 0, 6, 5},     // no padding
      {2, 2, 5, 3, 1, 3, 4, 4},     // padding > kernel - 1: backward-data by scatter
      {3, 3, 4, 3, 2, 1, 9, 8},     // stride 2: backward-data by scatter, weight gradient over the batch
      {3, 2, 5, 3, 2, 1, 20, 18},   // stride 2 on a larger map: the weight gradient in chunks
      {9, 16, 40, 3, 1, 1, 2, 2},   // ResNet's 2x2 maps: groups of images per GEMM, a short last group
      {11, 8, 24, 3, 1, 1, 4, 4},   // 4x4 maps
      {7, 6, 33, 3, 1, 1, 7, 7},    // 7x7 maps, 33 channels (a masked column strip)
      {5, 6, 10, 3, 2, 1, 7, 7},    // ResNet's downsampling 3x3 stride 2 on a small map
      {6, 8, 12, 1, 2, 0, 7, 7},    // and its 1x1 stride-2 shortcut
  };
  for (const Case& c : cases) {
    const std::int64_t out_h = (c.height + 2 * c.padding - c.kernel) / c.stride + 1;
    const std::int64_t out_w = (c.width + 2 * c.padding - c.kernel) / c.stride + 1;
    const Conv2dGeometry g{c.batch,
                           c.in_channels,
                           c.height,
                           c.width,
                           c.out_channels,
                           c.kernel,
                           c.kernel,
                           c.stride,
                           c.stride,
                           c.padding,
                           c.padding,
                           1,
                           1,
                           1,
                           out_h,
                           out_w};
    INFO("in " << c.in_channels << " out " << c.out_channels << " kernel " << c.kernel << " stride " << c.stride
               << " padding " << c.padding << " " << c.height << "x" << c.width);
    const auto input = random_vector(c.batch * g.input_image_size(), 11);
    const auto weight = random_vector(c.out_channels * g.column_rows(), 12);
    const auto bias = random_vector(c.out_channels, 13);
    const auto grad_output = random_vector(c.batch * g.output_image_size(), 14);
    // Every pass on 1, 2 and 3 threads: the same bits (the image groups per GEMM and the bands of
    // the weight gradient follow the thread count; the sums must not).
    const int saved_threads = num_threads();
    std::vector<float> outputs[3], grad_inputs[3], grad_weights[3], grad_biases[3];
    for (int threads = 1; threads <= 3; ++threads) {
      set_num_threads(threads);
      Conv2dWorkspace<float> ws;
      const auto at = static_cast<std::size_t>(threads - 1);
      outputs[at].assign(static_cast<std::size_t>(c.batch * g.output_image_size()), -7.0f);
      cpu::conv2d_forward(g, input.data(), weight.data(), bias.data(), outputs[at].data(), ws);
      grad_inputs[at].assign(input.size(), 99.0f);
      grad_weights[at].assign(weight.size(), 0.5f);
      grad_biases[at].assign(bias.size(), 0.25f);
      cpu::conv2d_backward(g, input.data(), weight.data(), grad_output.data(), grad_inputs[at].data(),
                           grad_weights[at].data(), grad_biases[at].data(), ws);
    }
    set_num_threads(saved_threads);
    for (std::size_t t = 1; t < 3; ++t) {
      CHECK(outputs[t] == outputs[0]);
      CHECK(grad_inputs[t] == grad_inputs[0]);
      CHECK(grad_weights[t] == grad_weights[0]);
      CHECK(grad_biases[t] == grad_biases[0]);
    }

    // Forward against the direct sum.
    const std::vector<float>& output = outputs[0];
    const auto expected = direct_conv(g, {input.begin(), input.end()}, {weight.begin(), weight.end()},
                                      {bias.begin(), bias.end()});
    double worst = 0;
    for (std::size_t i = 0; i < output.size(); ++i) worst = std::max(worst, std::abs(output[i] - expected[i]));
    CHECK(worst < 1e-4);

    // Backward against the adjoint identities <grad_out, conv(x)> = <conv^T(grad_out), x> and
    // d<grad_out, conv_w(x)>/dw computed by the direct sum with unit weights.
    const std::vector<float>&grad_input = grad_inputs[0], &grad_weight = grad_weights[0], &grad_bias = grad_biases[0];
    // grad_input[i] = <grad_out, conv(e_i)>: check it on the sum with a random direction.
    const auto direction = random_vector(static_cast<std::int64_t>(input.size()), 15);
    const auto conv_direction = direct_conv(g, {direction.begin(), direction.end()}, {weight.begin(), weight.end()},
                                            std::vector<double>(bias.size(), 0.0));
    double lhs = 0, rhs = 0;
    for (std::size_t i = 0; i < input.size(); ++i) lhs += double(grad_input[i]) * direction[i];
    for (std::size_t i = 0; i < grad_output.size(); ++i) rhs += double(grad_output[i]) * conv_direction[i];
    CHECK(std::abs(lhs - rhs) < 1e-4 * (1 + std::abs(rhs)));
    // Every weight gradient element against the direct sum.
    for (std::int64_t o = 0; o < c.out_channels; ++o) {
      double bias_sum = 0;
      for (std::int64_t n = 0; n < c.batch; ++n)
        for (std::int64_t i = 0; i < g.column_cols(); ++i)
          bias_sum += grad_output[static_cast<std::size_t>((n * c.out_channels + o) * g.column_cols() + i)];
      CHECK(std::abs(grad_bias[static_cast<std::size_t>(o)] - (0.25 + bias_sum)) < 1e-4 * (1 + std::abs(bias_sum)));
      for (std::int64_t k = 0; k < g.column_rows(); ++k) {
        const std::int64_t ch = k / (c.kernel * c.kernel), kh = k / c.kernel % c.kernel, kw = k % c.kernel;
        double sum = 0;
        for (std::int64_t n = 0; n < c.batch; ++n)
          for (std::int64_t oh = 0; oh < out_h; ++oh)
            for (std::int64_t ow = 0; ow < out_w; ++ow) {
              const std::int64_t ih = oh * c.stride - c.padding + kh, iw = ow * c.stride - c.padding + kw;
              if (ih < 0 || ih >= c.height || iw < 0 || iw >= c.width) continue;
              sum += double(grad_output[static_cast<std::size_t>(((n * c.out_channels + o) * out_h + oh) * out_w + ow)]) *
                     input[static_cast<std::size_t>(((n * c.in_channels + ch) * c.height + ih) * c.width + iw)];
            }
        const float found = grad_weight[static_cast<std::size_t>(o * g.column_rows() + k)];
        if (std::abs(found - (0.5 + sum)) > 1e-4 * (1 + std::abs(sum))) {
          FAIL_CHECK("grad_weight[" << o << ", " << k << "] = " << found << ", expected " << 0.5 + sum);
          break;
        }
      }
    }
  }
}

TEST_CASE("conv2d general path: forward matches the direct sum, and the bits do not depend on the thread count",
          "[kernels][conv]") {
  // {batch, in, out, kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w, dilation_h, dilation_w, groups, H, W}
  const std::int64_t cases[][14] = {
      {6, 3, 6, 5, 3, 2, 1, 1, 0, 2, 2, 3, 11, 7},  // everything at once, a chunk and a half of images
      {9, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8, 9, 9},   // depthwise
      {5, 4, 6, 3, 2, 1, 2, 2, 1, 1, 2, 2, 8, 9},   // two groups
  };
  const int saved_threads = num_threads();
  for (const auto& c : cases) {
    const std::int64_t out_h = Conv2dGeometry::output_size(c[12], c[3], c[5], c[7], c[9]);
    const std::int64_t out_w = Conv2dGeometry::output_size(c[13], c[4], c[6], c[8], c[10]);
    const Conv2dGeometry g{c[0], c[1], c[12], c[13], c[2], c[3],  c[4], c[5],
                           c[6], c[7], c[8],  c[9],  c[10], c[11], out_h, out_w};
    INFO("groups " << g.groups << " kernel " << g.kernel_height << "x" << g.kernel_width);
    REQUIRE(!g.is_plain());
    const auto input = random_vector(g.batch * g.input_image_size(), 31);
    const auto weight = random_vector(g.out_channels * g.column_rows(), 32);
    const auto bias = random_vector(g.out_channels, 33);
    const auto grad_output = random_vector(g.batch * g.output_image_size(), 34);
    std::vector<float> outputs[2], grad_inputs[2], grad_weights[2], grad_biases[2];
    for (int threads = 1; threads <= 2; ++threads) {
      set_num_threads(threads);
      Conv2dWorkspace<float> ws;
      auto& output = outputs[threads - 1];
      output.assign(static_cast<std::size_t>(g.batch * g.output_image_size()), -7.0f);
      cpu::conv2d_forward(g, input.data(), weight.data(), bias.data(), output.data(), ws);
      grad_inputs[threads - 1].assign(input.size(), 99.0f);
      grad_weights[threads - 1].assign(weight.size(), 0.5f);
      grad_biases[threads - 1].assign(bias.size(), 0.25f);
      cpu::conv2d_backward(g, input.data(), weight.data(), grad_output.data(), grad_inputs[threads - 1].data(),
                           grad_weights[threads - 1].data(), grad_biases[threads - 1].data(), ws);
    }
    const auto expected = direct_conv(g, {input.begin(), input.end()}, {weight.begin(), weight.end()},
                                      {bias.begin(), bias.end()});
    double worst = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) worst = std::max(worst, std::abs(outputs[0][i] - expected[i]));
    CHECK(worst < 1e-4);
    CHECK(outputs[0] == outputs[1]);
    CHECK(grad_inputs[0] == grad_inputs[1]);
    CHECK(grad_weights[0] == grad_weights[1]);
    CHECK(grad_biases[0] == grad_biases[1]);
  }
  set_num_threads(saved_threads);
}

TEST_CASE("maxpool2d 2x2 fast path equals the generic window body, ties and NaNs included", "[kernels][pool]") {
  // Values from a small set so that ties are common; some NaNs. Odd sizes exercise floor mode.
  for (const std::int64_t size : {2, 5, 8, 14, 28, 35, 66}) {  // 66: more than 16 windows a row
    const std::int64_t planes = 3, plane = size * size, out = size / 2;
    std::vector<float> input(static_cast<std::size_t>(planes * plane));
    for (std::size_t i = 0; i < input.size(); ++i) {
      const double u = random_unit(11, i);
      input[i] = u < 0.05 ? std::nanf("") : static_cast<float>(std::floor(u * 4.0));
    }
    const Pool2dGeometry g{planes, size, size, out, out, 2, 2, 2, 2, 0, 0, 1, 1, false};
    std::vector<float> output(static_cast<std::size_t>(planes * out * out));
    std::vector<std::int32_t> argmax(output.size());
    cpu::maxpool2d_forward(g, input.data(), output.data(), argmax.data());
    // The portable template row too (maxpool2d_forward takes the AVX-512 overload when built for it).
    std::vector<float> portable(output.size());
    std::vector<std::int32_t> portable_argmax(output.size());
    for (std::int64_t p = 0; p < planes; ++p)
      for (std::int64_t oh = 0; oh < out; ++oh) {
        const std::int64_t o = p * out * out + oh * out;
        cpu::maxpool2x2_row<float>(input.data() + p * plane + 2 * oh * size, size, out,
                                   static_cast<std::int32_t>(2 * oh * size), portable.data() + o,
                                   portable_argmax.data() + o);
      }
    REQUIRE(portable_argmax == argmax);
    for (std::int64_t p = 0; p < planes; ++p) {
      for (std::int64_t oh = 0; oh < out; ++oh) {
        for (std::int64_t ow = 0; ow < out; ++ow) {
          const auto o = static_cast<std::size_t>(p * out * out + oh * out + ow);
          const std::int64_t expected = kernels::maxpool2d_argmax(g, input.data() + p * plane, oh, ow);
          REQUIRE(argmax[o] == expected);
          const float want = input[static_cast<std::size_t>(p * plane + expected)];
          REQUIRE((std::isnan(want) ? std::isnan(output[o]) : output[o] == want));
        }
      }
    }
    // Without the argmax (a forward pass without gradients): the same maxima, bit for bit.
    std::vector<float> maxima(output.size(), -5.0f);
    cpu::maxpool2d_forward(g, input.data(), maxima.data(), static_cast<std::int32_t*>(nullptr));
    CHECK(minicnn::testing::same_bits(maxima, output));
  }
}

TEST_CASE("adaptive average pooling to 1x1 (backward has a global fast path) equals the generic bodies bit for bit",
          "[kernels][pool]") {
  for (const std::int64_t size : {1, 7, 13}) {
    const std::int64_t planes = 70, plane = size * size;  // 70 planes: more than one thread's share
    const Pool2dGeometry g{planes, size, size, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, false};
    const std::vector<float> input = random_vector(planes * plane, 21), grad_output = random_vector(planes, 22);
    std::vector<float> output(static_cast<std::size_t>(planes)), grad_input(input.size());
    cpu::adaptive_avg_pool2d_forward(g, input.data(), output.data());
    cpu::adaptive_avg_pool2d_backward(g, grad_output.data(), grad_input.data());
    for (std::int64_t p = 0; p < planes; ++p) {
      REQUIRE(output[static_cast<std::size_t>(p)] == kernels::adaptive_avg_pool2d_output(g, input.data() + p * plane, 0, 0));
      for (std::int64_t i = 0; i < plane; ++i)
        REQUIRE(grad_input[static_cast<std::size_t>(p * plane + i)] ==
                kernels::adaptive_avg_pool2d_grad_input(g, grad_output.data() + p, i / size, i % size));
    }
  }
}

namespace {

Conv2dGeometry same_3x3(std::int64_t batch, std::int64_t in_channels, std::int64_t out_channels, std::int64_t padding,
                        std::int64_t height, std::int64_t width) {
  return {batch, in_channels, height, width, out_channels, 3, 3, 1, 1, padding, padding, 1, 1, 1,
          height + 2 * padding - 2, width + 2 * padding - 2};
}

// Forward by F(m x m, 3 x 3) on `threads` threads, images first .. first + count - 1 of the batch.
template <typename T>
std::vector<T> winograd_forward(ConvAlgorithm algorithm, Conv2dGeometry g, const std::vector<T>& input,
                                const std::vector<T>& weight, const T* bias, bool relu, int threads,
                                std::int64_t first, std::int64_t count) {
  const int saved_threads = num_threads();
  const ConvAlgorithm saved_algorithm = conv_algorithm();
  set_num_threads(threads);
  set_conv_algorithm(algorithm);
  g.batch = count;
  std::vector<T> output(static_cast<std::size_t>(count * g.output_image_size()), T(-7));
  Conv2dWorkspace<T> ws;
  cpu::conv2d_forward(g, input.data() + first * g.input_image_size(), weight.data(), bias, output.data(), ws, relu,
                      /*inference=*/false);
  set_num_threads(saved_threads);
  set_conv_algorithm(saved_algorithm);
  return output;
}

}  // namespace

TEST_CASE("Winograd F(2x2, 3x3) and F(4x4, 3x3) forward match the direct sum in double and float, the same bits on 1 "
          "to 3 threads and whatever images share the batch",
          "[kernels][conv][winograd]") {
  struct Case {
    std::int64_t batch, in_channels, out_channels, padding, height, width;
  };
  const Case cases[] = {
      {3, 32, 32, 1, 28, 28},  // conv2: 7 x 7 tiles of 4, 14 x 14 of 2
      {4, 64, 64, 1, 14, 14},  // conv4: 14 = 3 tiles of 4 and a half one
      {2, 5, 7, 1, 9, 13},     // channels below one vector, odd sizes
      {3, 17, 33, 0, 10, 7},   // no padding, a partial second vector of channels
      {2, 2, 3, 2, 5, 6},      // padding 2
      {5, 16, 40, 1, 2, 2},    // a map smaller than one tile
      {2, 3, 4, 1, 1, 1},      // 1 x 1
  };
  for (const Case& c : cases) {
    const Conv2dGeometry g = same_3x3(c.batch, c.in_channels, c.out_channels, c.padding, c.height, c.width);
    const auto input_f = random_vector(c.batch * g.input_image_size(), 21);
    const auto weight_f = random_vector(c.out_channels * g.column_rows(), 22);
    const auto bias_f = random_vector(c.out_channels, 23);
    // Weights scaled by the fan-in, as initialisation does, so outputs stay of order 1.
    const double scale = 1.0 / std::sqrt(double(g.column_rows()));
    std::vector<double> input(input_f.begin(), input_f.end()), weight(weight_f.size()), bias(bias_f.begin(), bias_f.end());
    for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = float(weight_f[i] * scale);
    const std::vector<float> weight_float(weight.begin(), weight.end());
    const auto expected = direct_conv(g, input, weight, bias);
    double expected_max = 0;
    for (double e : expected) expected_max = std::max(expected_max, std::abs(e));
    for (const auto& [algorithm, float_bound] :
         {std::pair{ConvAlgorithm::winograd_2x2, 5e-6}, std::pair{ConvAlgorithm::winograd_4x4, 5e-5}}) {
      INFO(conv_algorithm_name(algorithm) << ", in " << c.in_channels << " out " << c.out_channels << " padding "
                                          << c.padding << " " << c.height << "x" << c.width);
      // Error relative to the largest output (docs/performance.md, "Winograd", has the figures).
      const auto in_double = winograd_forward(algorithm, g, input, weight, bias.data(), false, 1, 0, c.batch);
      const auto in_float = winograd_forward(algorithm, g, input_f, weight_float, bias_f.data(), false, 1, 0, c.batch);
      double worst_double = 0, worst_float = 0;
      for (std::size_t i = 0; i < expected.size(); ++i) {
        worst_double = std::max(worst_double, std::abs(in_double[i] - expected[i]));
        worst_float = std::max(worst_float, std::abs(double(in_float[i]) - expected[i]));
      }
      CHECK(worst_double <= 1e-13 * expected_max);
      CHECK(worst_float <= float_bound * expected_max);
      // The same bits on 2 and 3 threads, and for one image alone (the split follows the batch).
      for (int threads = 2; threads <= 3; ++threads) {
        CHECK(winograd_forward(algorithm, g, input_f, weight_float, bias_f.data(), false, threads, 0, c.batch) ==
              in_float);
        CHECK(winograd_forward(algorithm, g, input, weight, bias.data(), false, threads, 0, c.batch) == in_double);
      }
      for (int threads = 1; threads <= 2; ++threads) {
        const auto alone = winograd_forward(algorithm, g, input_f, weight_float, bias_f.data(), false, threads, 1, 1);
        CHECK(std::equal(alone.begin(), alone.end(), in_float.begin() + g.output_image_size()));
      }
      // The fused ReLU and no bias: kernels::relu of the sum without it.
      const auto rectified =
          winograd_forward(algorithm, g, input_f, weight_float, static_cast<const float*>(nullptr), true, 2, 0, c.batch);
      const std::vector<float> zero_bias(bias_f.size(), 0.0f);
      const auto plain = winograd_forward(algorithm, g, input_f, weight_float, zero_bias.data(), false, 1, 0, c.batch);
      bool all_rectified = true;
      for (std::size_t i = 0; i < plain.size(); ++i) all_rectified &= rectified[i] == kernels::relu(plain[i]);
      CHECK(all_rectified);
    }
  }
}

namespace {

// conv2d_forward then the 2x2 max-pool (the maxima), on `threads` threads; `fused`: by Winograd's
// pooled store, else stored and then pooled by maxpool2d_forward.
template <typename T>
std::vector<T> conv_then_max_pool(ConvAlgorithm algorithm, const Conv2dGeometry& g, const std::vector<T>& input,
                                  const std::vector<T>& weight, const T* bias, bool relu, int threads, bool fused) {
  const int saved_threads = num_threads();
  const ConvAlgorithm saved_algorithm = conv_algorithm();
  set_num_threads(threads);
  set_conv_algorithm(algorithm);
  const Pool2dGeometry pool{g.batch * g.out_channels, g.out_height, g.out_width, g.out_height / 2, g.out_width / 2,
                            2, 2, 2, 2, 0, 0, 1, 1, false};
  std::vector<T> pooled(static_cast<std::size_t>(pool.planes * pool.out_height * pool.out_width), T(-7));
  Conv2dWorkspace<T> ws;
  if (fused) {
    CHECK(cpu::conv2d_forward_max_pool_2x2(g, input.data(), weight.data(), bias, pooled.data(), ws, relu, true));
  } else {
    std::vector<T> output(static_cast<std::size_t>(g.batch * g.output_image_size()));
    cpu::conv2d_forward(g, input.data(), weight.data(), bias, output.data(), ws, relu, true);
    std::vector<std::int32_t> argmax(pooled.size());
    cpu::maxpool2d_forward(pool, output.data(), pooled.data(), argmax.data());
  }
  set_num_threads(saved_threads);
  set_conv_algorithm(saved_algorithm);
  return pooled;
}

}  // namespace

TEST_CASE("Winograd's pooled store equals storing and then max-pooling, bit for bit, NaNs and odd sizes included",
          "[kernels][conv][winograd][pool]") {
  struct Case {
    std::int64_t batch, in_channels, out_channels, height, width;
  };
  const Case cases[] = {
      {3, 32, 32, 28, 28},  // conv2 + pool1
      {5, 64, 64, 14, 14},  // conv4 + pool2: the last tile row of 4 half cut off
      {2, 5, 20, 9, 13},    // odd sizes (floor mode drops the last row and column), a partial channel vector
      {7, 3, 4, 2, 3},      // one pooled row, images sharing a block
  };
  for (const Case& c : cases) {
    const Conv2dGeometry g = same_3x3(c.batch, c.in_channels, c.out_channels, 1, c.height, c.width);
    auto input = random_vector(c.batch * g.input_image_size(), 41);
    input[7] = std::nanf("");  // NaN wins a window, as in the pool's own kernel
    const auto weight = random_vector(c.out_channels * g.column_rows(), 42);
    const auto bias = random_vector(c.out_channels, 43);
    const std::vector<double> input_d(input.begin(), input.end()), weight_d(weight.begin(), weight.end()),
        bias_d(bias.begin(), bias.end());
    for (ConvAlgorithm algorithm : {ConvAlgorithm::winograd_2x2, ConvAlgorithm::winograd_4x4})
      for (bool relu : {false, true})
        for (bool with_bias : {false, true}) {
          INFO(conv_algorithm_name(algorithm) << " relu " << relu << " bias " << with_bias << ", in "
                                              << c.in_channels << " out " << c.out_channels << " " << c.height << "x"
                                              << c.width);
          const float* b = with_bias ? bias.data() : nullptr;
          const double* b_d = with_bias ? bias_d.data() : nullptr;
          const auto expected = conv_then_max_pool(algorithm, g, input, weight, b, relu, 1, false);
          using minicnn::testing::same_bits;
          CHECK(same_bits(conv_then_max_pool(algorithm, g, input, weight, b, relu, 1, true), expected));
          CHECK(same_bits(conv_then_max_pool(algorithm, g, input, weight, b, relu, 3, true), expected));
          CHECK(same_bits(conv_then_max_pool(algorithm, g, input_d, weight_d, b_d, relu, 2, true),
                          conv_then_max_pool(algorithm, g, input_d, weight_d, b_d, relu, 1, false)));
        }
  }
  // Where the convolution does not take Winograd, the pooled store declines (the caller pools).
  const Conv2dGeometry g = same_3x3(1, 4, 4, 1, 6, 6);
  Conv2dWorkspace<float> ws;
  std::vector<float> input(static_cast<std::size_t>(g.input_image_size())), weight(16 * 9), pooled(4 * 9);
  const ConvAlgorithm saved = conv_algorithm();
  set_conv_algorithm(ConvAlgorithm::im2col);
  CHECK_FALSE(cpu::conv2d_forward_max_pool_2x2(g, input.data(), weight.data(), static_cast<const float*>(nullptr),
                                               pooled.data(), ws, false, true));
  set_conv_algorithm(saved);
}

TEST_CASE("Winograd's transformed filters follow the weights: a changed weight changes the output", "[kernels][winograd]") {
  const Conv2dGeometry g = same_3x3(2, 8, 16, 1, 8, 8);
  const auto input = random_vector(g.batch * g.input_image_size(), 31);
  auto weight = random_vector(g.out_channels * g.column_rows(), 32);
  const ConvAlgorithm saved = conv_algorithm();
  set_conv_algorithm(ConvAlgorithm::winograd_4x4);
  Conv2dWorkspace<float> ws, fresh;
  std::vector<float> first(static_cast<std::size_t>(g.batch * g.output_image_size())), second(first), expected(first);
  cpu::conv2d_forward(g, input.data(), weight.data(), static_cast<const float*>(nullptr), first.data(), ws);
  weight[5] += 0.5f;  // one tap of output channel 0
  cpu::conv2d_forward(g, input.data(), weight.data(), static_cast<const float*>(nullptr), second.data(), ws);
  cpu::conv2d_forward(g, input.data(), weight.data(), static_cast<const float*>(nullptr), expected.data(), fresh);
  set_conv_algorithm(saved);
  CHECK(second == expected);
  CHECK(second != first);
}

TEST_CASE("The convolution algorithm: names, the automatic rule, and who qualifies", "[kernels][winograd]") {
  CHECK(parse_conv_algorithm("im2col", "test") == ConvAlgorithm::im2col);
  CHECK(parse_conv_algorithm("winograd4x4", "test") == ConvAlgorithm::winograd_4x4);
  for (ConvAlgorithm a : {ConvAlgorithm::automatic, ConvAlgorithm::im2col, ConvAlgorithm::winograd,
                          ConvAlgorithm::winograd_2x2, ConvAlgorithm::winograd_4x4})
    CHECK(parse_conv_algorithm(conv_algorithm_name(a), "test") == a);
  CHECK_THROWS_WITH(parse_conv_algorithm("fast", "environment variable MINICNN_CONV_ALGO"),
                    Catch::Contains("MINICNN_CONV_ALGO") && Catch::Contains("'fast'") && Catch::Contains("im2col"));
  using cpu::winograd::tile_size;
  const Conv2dGeometry conv2 = same_3x3(64, 32, 32, 1, 28, 28), small = same_3x3(64, 256, 256, 1, 7, 7);
  Conv2dGeometry conv1 = same_3x3(64, 1, 32, 1, 28, 28), strided = conv2;
  strided.stride_height = strided.stride_width = 2;
  strided.out_height = strided.out_width = 14;
  CHECK(tile_size(conv2, ConvAlgorithm::automatic, true) == 4);
  CHECK(tile_size(small, ConvAlgorithm::automatic, true) == 2);
  CHECK(tile_size(conv2, ConvAlgorithm::automatic, false) == 0);  // training keeps im2col's bits
  CHECK(tile_size(conv2, ConvAlgorithm::winograd, false) == 4);
  CHECK(tile_size(conv2, ConvAlgorithm::winograd_2x2, false) == 2);
  CHECK(tile_size(conv2, ConvAlgorithm::im2col, true) == 0);
  CHECK(tile_size(conv1, ConvAlgorithm::winograd_4x4, true) == 0);  // one input channel: the direct loops
  CHECK(tile_size(strided, ConvAlgorithm::winograd_4x4, true) == 0);
  const Conv2dGeometry single = same_3x3(4, 8, 8, 1, 1, 1);  // one output per image
  CHECK(tile_size(single, ConvAlgorithm::automatic, true) == 0);
  CHECK(tile_size(single, ConvAlgorithm::winograd_2x2, true) == 2);
}
