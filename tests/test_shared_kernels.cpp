// The kernel bodies shared by the CPU and CUDA backends (include/minicnn/ops/kernels/), checked
// on the CPU against independent references: brute-force definitions, scatter forms, adjoint
// identities and PyTorch's update formulas written out in double. The CUDA kernels are grid
// loops around these same bodies, so this suite covers their arithmetic on machines without a
// GPU (tests/cuda/ then checks the kernels' indexing on one).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "minicnn/layers/linear.hpp"
#include "minicnn/ops/dispatch.hpp"
#include "minicnn/ops/kernels/conv.hpp"
#include "minicnn/ops/kernels/elementwise.hpp"
#include "minicnn/ops/kernels/optim.hpp"
#include "minicnn/ops/kernels/pooling.hpp"
#include "minicnn/ops/kernels/softmax.hpp"
#include "minicnn/random.hpp"
#include "minicnn/tensor.hpp"

namespace kernels = minicnn::ops::kernels;
using minicnn::Device;
using minicnn::Generator;
using minicnn::Tensor;
using minicnn::ops::Pool2dGeometry;

namespace {

std::vector<double> random_values(std::size_t count, std::uint64_t seed, double low = -1.0, double high = 1.0) {
  Generator gen(seed);
  std::vector<double> values(count);
  for (double& v : values) v = gen.uniform(low, high);
  return values;
}

Pool2dGeometry max_geometry(std::int64_t planes, std::int64_t height, std::int64_t width, std::int64_t kernel,
                            std::int64_t stride) {
  return {planes,
          height,
          width,
          (height - kernel) / stride + 1,
          (width - kernel) / stride + 1,
          kernel,
          kernel,
          stride,
          stride,
          0,
          0,
          1,
          1,
          false};
}

}  // namespace

TEST_CASE("shared kernels: relu and its gradient, with the kink at 0 taken as 0 and NaN propagated",
          "[kernels][shared]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(kernels::relu(2.5f) == 2.5f);
  CHECK(kernels::relu(-2.5f) == 0.0f);
  CHECK(kernels::relu(0.0) == 0.0);
  CHECK(!std::signbit(kernels::relu(-0.0)));  // -0 -> +0, as before NaN propagation
  CHECK(std::isnan(kernels::relu(nan)));      // PyTorch: relu(NaN) = NaN
  CHECK(std::isnan(kernels::relu(std::numeric_limits<float>::quiet_NaN())));
  CHECK(kernels::relu_grad(3.0f, 7.0f) == 7.0f);
  CHECK(kernels::relu_grad(0.0f, 7.0f) == 0.0f);  // PyTorch's threshold_backward: output <= 0 ? 0 : grad
  CHECK(kernels::relu_grad(-1.0, 7.0) == 0.0);
  CHECK(kernels::relu_grad(nan, 7.0) == 7.0);  // a NaN output passes the gradient
}

TEST_CASE("shared kernels: dropout masks are the counter-based stream, kept with probability 1 - p",
          "[kernels][shared]") {
  const std::uint64_t seed = 1234, first = 99;
  CHECK(kernels::dropout_scale<float>(0.5) == 2.0f);
  CHECK(kernels::dropout_scale<double>(0.2) == 1.0 / 0.8);
  CHECK(kernels::dropout_scale<float>(1.0) == 0.0f);
  for (double p : {0.1, 0.5, 0.9}) {
    const float scale = kernels::dropout_scale<float>(p);
    std::int64_t kept = 0;
    const std::int64_t count = 200000;
    for (std::int64_t i = 0; i < count; ++i) {
      const std::uint64_t counter = first + static_cast<std::uint64_t>(i);
      const float mask = kernels::dropout_mask(seed, counter, p, scale);
      REQUIRE((mask == 0.0f || mask == scale));
      REQUIRE((mask == scale) == (minicnn::random_unit(seed, counter) >= p));
      kept += mask == scale;
    }
    // Binomial(count, 1 - p): 6 standard deviations.
    const double expected = static_cast<double>(count) * (1.0 - p);
    const double sigma = std::sqrt(static_cast<double>(count) * p * (1.0 - p));
    INFO("p = " << p << ": kept " << kept << " of " << count);
    CHECK(std::abs(static_cast<double>(kept) - expected) < 6.0 * sigma);
  }
  // p = 0 keeps everything with scale 1; p = 1 drops everything.
  for (std::uint64_t i = 0; i < 1000; ++i) {
    REQUIRE(kernels::dropout_mask(seed, i, 0.0, kernels::dropout_scale<double>(0.0)) == 1.0);
    REQUIRE(kernels::dropout_mask(seed, i, 1.0, kernels::dropout_scale<double>(1.0)) == 0.0);
  }
}

TEST_CASE("shared kernels: max-pool window argmax is the brute-force first maximum", "[kernels][shared]") {
  for (const auto& [height, width, kernel, stride] : std::vector<std::array<std::int64_t, 4>>{
           {8, 8, 2, 2}, {7, 9, 2, 2}, {9, 7, 3, 2}, {6, 6, 3, 1}, {5, 8, 1, 1}, {10, 10, 4, 3}}) {
    const Pool2dGeometry g = max_geometry(1, height, width, kernel, stride);
    // Values on a coarse grid, so that windows contain ties.
    std::vector<double> plane = random_values(static_cast<std::size_t>(height * width), 17 + height * width);
    for (double& v : plane) v = std::round(v * 3.0);
    for (std::int64_t oh = 0; oh < g.out_height; ++oh)
      for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
        std::int64_t expected = -1;
        for (std::int64_t kh = 0; kh < kernel; ++kh)
          for (std::int64_t kw = 0; kw < kernel; ++kw) {
            const std::int64_t at = (oh * stride + kh) * width + ow * stride + kw;
            if (expected < 0 || plane[static_cast<std::size_t>(at)] > plane[static_cast<std::size_t>(expected)])
              expected = at;
          }
        REQUIRE(kernels::maxpool2d_argmax(g, plane.data(), oh, ow) == expected);
      }
  }
}

TEST_CASE("shared kernels: max-pool NaNs win, the last one in scan order, as in PyTorch", "[kernels][shared]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Pool2dGeometry g = max_geometry(1, 2, 2, 2, 2);
  // Indices printed by torch.nn.functional.max_pool2d(x, 2, return_indices=True), PyTorch 1.13.
  const float first[] = {nan, 1.0f, nan, 2.0f};
  const float second[] = {1.0f, nan, nan, 2.0f};
  const float third[] = {nan, nan, 3.0f, 2.0f};
  CHECK(kernels::maxpool2d_argmax(g, first, 0, 0) == 2);
  CHECK(kernels::maxpool2d_argmax(g, second, 0, 0) == 2);
  CHECK(kernels::maxpool2d_argmax(g, third, 0, 0) == 1);
}

TEST_CASE("shared kernels: max-pool gather backward equals the scatter over windows, bit for bit, with and without "
          "the gradient of a ReLU before the pool", "[kernels][shared]") {
  // Overlapping windows (stride < kernel) make one input the argmax of several windows.
  std::size_t zeros = 0;  // gradients the ReLU's gate stopped
  for (const auto& [height, width, kernel, stride] :
       std::vector<std::array<std::int64_t, 4>>{{8, 8, 2, 2}, {7, 9, 3, 2}, {6, 6, 3, 1}, {9, 9, 4, 3}}) {
    const Pool2dGeometry g = max_geometry(1, height, width, kernel, stride);
    const std::vector<double> plane = random_values(static_cast<std::size_t>(height * width), 5 + kernel);
    const std::vector<double> grad_output = random_values(static_cast<std::size_t>(g.out_height * g.out_width), 6);
    std::vector<std::int32_t> argmax;
    for (std::int64_t oh = 0; oh < g.out_height; ++oh)
      for (std::int64_t ow = 0; ow < g.out_width; ++ow)
        argmax.push_back(static_cast<std::int32_t>(kernels::maxpool2d_argmax(g, plane.data(), oh, ow)));
    std::vector<double> scattered(plane.size(), 0.0);
    for (std::size_t o = 0; o < argmax.size(); ++o) scattered[static_cast<std::size_t>(argmax[o])] += grad_output[o];
    for (std::int64_t h = 0; h < height; ++h)
      for (std::int64_t w = 0; w < width; ++w)
        REQUIRE(kernels::maxpool2d_grad_input(g, grad_output.data(), argmax.data(), h, w) ==
                scattered[static_cast<std::size_t>(h * width + w)]);
    // A ReLU's output, relu(plane - 0.8) (monotone: the windows choose the same elements; many
    // hold zeros alone): with the pool's output the gather gives relu_grad(rectified,
    // scattered), the ReLU's backward after the pool's, and the CPU's gated scatter the same bits.
    std::vector<double> rectified(plane);
    for (double& v : rectified) v = kernels::relu(v - 0.8);
    std::vector<double> maxima;
    for (std::int32_t chosen : argmax) maxima.push_back(rectified[static_cast<std::size_t>(chosen)]);
    std::vector<double> gated(plane.size());
    minicnn::ops::cpu::maxpool2d_backward(g, grad_output.data(), argmax.data(), gated.data(), maxima.data());
    for (std::int64_t h = 0; h < height; ++h)
      for (std::int64_t w = 0; w < width; ++w) {
        const auto i = static_cast<std::size_t>(h * width + w);
        const double expected = kernels::relu_grad(rectified[i], scattered[i]);
        zeros += scattered[i] != 0.0 && expected == 0.0;
        REQUIRE(kernels::maxpool2d_grad_input(g, grad_output.data(), argmax.data(), h, w, maxima.data()) == expected);
        REQUIRE(gated[i] == expected);
      }
  }
  CHECK(zeros > 0);  // the gate closed somewhere a gradient arrived
}

TEST_CASE("shared kernels: adaptive average pooling, forward as bin means and backward gather == scatter",
          "[kernels][shared]") {
  // Divisible, overlapping (7 -> 3, 5 -> 2) and upsampling (3 -> 5) bins, rectangular too.
  for (const auto& [in_height, in_width, out_height, out_width] : std::vector<std::array<std::int64_t, 4>>{
           {7, 7, 1, 1}, {7, 7, 3, 3}, {5, 8, 2, 3}, {3, 4, 5, 7}, {10, 6, 4, 6}}) {
    const Pool2dGeometry g{1, in_height, in_width, out_height, out_width, 0, 0, 0, 0, 0, 0, 0, 0, false};
    const std::vector<double> plane = random_values(static_cast<std::size_t>(in_height * in_width), 11);
    const std::vector<double> grad_output = random_values(static_cast<std::size_t>(out_height * out_width), 12);
    std::vector<double> scattered(plane.size(), 0.0);
    for (std::int64_t oh = 0; oh < out_height; ++oh)
      for (std::int64_t ow = 0; ow < out_width; ++ow) {
        // PyTorch's bins, written out: [floor(i in / out), ceil((i + 1) in / out)).
        const auto h0 = static_cast<std::int64_t>(std::floor(static_cast<double>(oh * in_height) / out_height));
        const auto h1 = static_cast<std::int64_t>(std::ceil(static_cast<double>((oh + 1) * in_height) / out_height));
        const auto w0 = static_cast<std::int64_t>(std::floor(static_cast<double>(ow * in_width) / out_width));
        const auto w1 = static_cast<std::int64_t>(std::ceil(static_cast<double>((ow + 1) * in_width) / out_width));
        double sum = 0.0;
        for (std::int64_t h = h0; h < h1; ++h)
          for (std::int64_t w = w0; w < w1; ++w) sum += plane[static_cast<std::size_t>(h * in_width + w)];
        const double count = static_cast<double>((h1 - h0) * (w1 - w0));
        REQUIRE(kernels::adaptive_avg_pool2d_output(g, plane.data(), oh, ow) == Approx(sum / count).epsilon(1e-14));
        const double share = grad_output[static_cast<std::size_t>(oh * out_width + ow)] / count;
        for (std::int64_t h = h0; h < h1; ++h)
          for (std::int64_t w = w0; w < w1; ++w) scattered[static_cast<std::size_t>(h * in_width + w)] += share;
      }
    for (std::int64_t h = 0; h < in_height; ++h)
      for (std::int64_t w = 0; w < in_width; ++w)
        REQUIRE(kernels::adaptive_avg_pool2d_grad_input(g, grad_output.data(), h, w) ==
                scattered[static_cast<std::size_t>(h * in_width + w)]);
  }
}

TEST_CASE("shared kernels: im2col_value is the definition, col2im_value its adjoint and the scatter",
          "[kernels][shared]") {
  struct Case {
    std::int64_t channels, height, width, kernel, stride, padding;
  };
  for (const Case& c : {Case{1, 28, 28, 3, 1, 1}, Case{3, 9, 7, 3, 2, 1}, Case{2, 8, 8, 5, 1, 2},
                        Case{4, 6, 5, 1, 1, 0}, Case{2, 11, 10, 4, 3, 2}}) {
    minicnn::ops::Conv2dGeometry g{1,
                                   c.channels,
                                   c.height,
                                   c.width,
                                   1,
                                   c.kernel,
                                   c.kernel,
                                   c.stride,
                                   c.stride,
                                   c.padding,
                                   c.padding,
                                   1,
                                   1,
                                   1,
                                   (c.height + 2 * c.padding - c.kernel) / c.stride + 1,
                                   (c.width + 2 * c.padding - c.kernel) / c.stride + 1};
    const std::int64_t rows = g.column_rows(), cols = g.column_cols();
    const std::vector<double> image = random_values(static_cast<std::size_t>(g.input_image_size()), 21);
    const std::vector<double> column = random_values(static_cast<std::size_t>(rows * cols), 22);

    // The definition with its loops nested the other way round, and the scatter form of col2im.
    std::vector<double> expected_columns(static_cast<std::size_t>(rows * cols), 0.0);
    std::vector<double> scattered(image.size(), 0.0);
    for (std::int64_t ch = 0; ch < c.channels; ++ch)
      for (std::int64_t kh = 0; kh < c.kernel; ++kh)
        for (std::int64_t kw = 0; kw < c.kernel; ++kw)
          for (std::int64_t oh = 0; oh < g.out_height; ++oh)
            for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
              const std::int64_t ih = oh * c.stride - c.padding + kh, iw = ow * c.stride - c.padding + kw;
              const auto at =
                  static_cast<std::size_t>(((ch * c.kernel + kh) * c.kernel + kw) * cols + oh * g.out_width + ow);
              if (ih < 0 || ih >= c.height || iw < 0 || iw >= c.width) continue;
              const auto pixel = static_cast<std::size_t>((ch * c.height + ih) * c.width + iw);
              expected_columns[at] = image[pixel];
              scattered[pixel] += column[at];
            }
    double columns_dot = 0.0, image_dot = 0.0;
    for (std::int64_t row = 0; row < rows; ++row)
      for (std::int64_t col = 0; col < cols; ++col) {
        const double value = kernels::im2col_value(g, image.data(), row, col);
        REQUIRE(value == expected_columns[static_cast<std::size_t>(row * cols + col)]);
        columns_dot += value * column[static_cast<std::size_t>(row * cols + col)];
      }
    for (std::int64_t ch = 0; ch < c.channels; ++ch)
      for (std::int64_t h = 0; h < c.height; ++h)
        for (std::int64_t w = 0; w < c.width; ++w) {
          const double value = kernels::col2im_value(g, column.data(), ch, h, w);
          const auto pixel = static_cast<std::size_t>((ch * c.height + h) * c.width + w);
          REQUIRE(value == scattered[pixel]);  // same additions in the same order
          image_dot += image[pixel] * value;
        }
    // <im2col(x), y> = <x, col2im(y)>.
    CHECK(columns_dot == Approx(image_dot).epsilon(1e-12));
  }
}

TEST_CASE("shared kernels: softmax cross-entropy row against log-softmax written out in double", "[kernels][shared]") {
  const std::int64_t classes = 10, batch = 4;
  for (double smoothing : {0.0, 0.1}) {
    for (double offset : {0.0, 1000.0}) {  // large logits: the max subtraction keeps exp finite
      std::vector<double> row = random_values(classes, 31, -3.0, 3.0);
      for (double& v : row) v += offset;
      const std::int64_t target = 6;
      std::vector<double> grad(classes, 0.0);
      const double loss =
          kernels::softmax_cross_entropy_row(classes, row.data(), target, smoothing, batch, grad.data());

      const double max_logit = *std::max_element(row.begin(), row.end());
      double sum_exp = 0.0;
      for (double v : row) sum_exp += std::exp(v - max_logit);
      double expected_loss = 0.0, grad_sum = 0.0;
      for (std::int64_t c = 0; c < classes; ++c) {
        const double log_prob = row[static_cast<std::size_t>(c)] - max_logit - std::log(sum_exp);
        const double weight = (c == target ? 1.0 - smoothing : 0.0) + smoothing / static_cast<double>(classes);
        expected_loss -= weight * log_prob;
        const double expected_grad = (std::exp(log_prob) - weight) / static_cast<double>(batch);
        CHECK(grad[static_cast<std::size_t>(c)] == Approx(expected_grad).margin(1e-15));
        grad_sum += grad[static_cast<std::size_t>(c)];
      }
      INFO("smoothing " << smoothing << ", offset " << offset);
      CHECK(loss == Approx(expected_loss).epsilon(1e-12));
      CHECK(std::abs(grad_sum) < 1e-12);  // softmax minus a distribution sums to 0 (up to rounding)
    }
  }
}

TEST_CASE("shared kernels: Adam, AdamW and SGD updates follow PyTorch's formulas", "[kernels][shared]") {
  const double lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.05;
  const std::vector<double> grads = random_values(3, 41);
  for (bool decoupled : {false, true}) {
    double value = 0.7, exp_avg = 0.0, exp_avg_sq = 0.0;
    double expected = 0.7, m = 0.0, v = 0.0;
    for (int step = 1; step <= 3; ++step) {
      kernels::AdamCoefficients<double> c{};
      c.step_size = lr / (1.0 - std::pow(beta1, step));
      c.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, step));
      c.beta1 = beta1;
      c.beta2 = beta2;
      c.one_minus_beta1 = 1.0 - beta1;
      c.one_minus_beta2 = 1.0 - beta2;
      c.eps = eps;
      c.weight_decay = weight_decay;
      c.decay_factor = 1.0 - lr * weight_decay;
      c.decoupled = decoupled;
      c.has_weight_decay = true;
      const double grad = grads[static_cast<std::size_t>(step - 1)];
      kernels::adam_update(c, value, grad, exp_avg, exp_avg_sq);

      // torch.optim.Adam / AdamW, written out.
      double g = grad;
      if (decoupled)
        expected *= 1.0 - lr * weight_decay;
      else
        g += weight_decay * expected;
      m = beta1 * m + (1.0 - beta1) * g;
      v = beta2 * v + (1.0 - beta2) * g * g;
      const double m_hat = m / (1.0 - std::pow(beta1, step));
      const double v_hat = v / (1.0 - std::pow(beta2, step));
      expected -= lr * m_hat / (std::sqrt(v_hat) + eps);
      INFO((decoupled ? "AdamW" : "Adam") << " step " << step);
      CHECK(value == Approx(expected).epsilon(1e-12));
    }
  }
  for (bool nesterov : {false, true}) {
    double value = -0.3, buffer = 0.0, expected = -0.3, expected_buffer = 0.0;
    const double momentum = 0.9, dampening = nesterov ? 0.0 : 0.1;
    for (int step = 0; step < 3; ++step) {
      kernels::SgdCoefficients<double> c{};
      c.lr = lr;
      c.momentum = momentum;
      c.one_minus_dampening = 1.0 - dampening;
      c.weight_decay = weight_decay;
      c.has_weight_decay = true;
      c.has_momentum = true;
      c.nesterov = nesterov;
      c.first_step = step == 0;
      const double grad = grads[static_cast<std::size_t>(step)];
      kernels::sgd_update(c, value, grad, buffer);

      double g = grad + weight_decay * expected;
      expected_buffer = step == 0 ? g : momentum * expected_buffer + (1.0 - dampening) * g;
      g = nesterov ? g + momentum * expected_buffer : expected_buffer;
      expected -= lr * g;
      INFO((nesterov ? "Nesterov" : "momentum") << " step " << step);
      CHECK(value == Approx(expected).epsilon(1e-14));
      CHECK(buffer == Approx(expected_buffer).epsilon(1e-14));
    }
  }
}

TEST_CASE("devices: the CPU side of the device API, and a clear error when no GPU can be used", "[tensor][device]") {
  Tensor<float> host({2, 3});
  for (std::int64_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i) - 2.5f;
  CHECK(host.device() == Device::cpu);
  CHECK_FALSE(host.is_cuda());

  const Tensor<float> copy = host.copy_to(Device::cpu);
  CHECK(copy.device() == Device::cpu);
  CHECK(std::equal(copy.begin(), copy.end(), host.begin()));
  CHECK(copy.data() != host.data());

  Tensor<float> destination({7});
  destination.copy_from(host);
  CHECK(destination.shape() == host.shape());
  CHECK(std::equal(destination.begin(), destination.end(), host.begin()));

  host.to(Device::cpu);  // no-op
  CHECK(host[5] == 2.5f);

  const std::string status = minicnn::cuda_status();
  CHECK(status.rfind("CUDA: ", 0) == 0);
  if (!minicnn::cuda_available()) {
    INFO(status);
    CHECK_THROWS_AS(host.to(Device::cuda), minicnn::error);
    CHECK_THROWS_AS(Tensor<float>(minicnn::Shape{4}, Device::cuda), minicnn::error);
    minicnn::Linear<float> layer(3, 2);
    CHECK_THROWS_AS(layer.to(Device::cuda), minicnn::error);
    CHECK(host.device() == Device::cpu);  // a failed move leaves the tensor where it was
    CHECK(host[5] == 2.5f);
    CHECK(layer.device() == Device::cpu);
  }
}
