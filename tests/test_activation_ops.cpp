// The element-wise activations (ops::activation_forward / activation_backward) and the ops of
// residual and squeeze-and-excitation blocks (ops::add, ops::channel_scale_forward / backward),
// on the CPU: against the formulas evaluated directly in double, at the kinks and for NaN, by
// central differences, for 1 and 2 threads bit for bit, and against PyTorch
// (tests/fixtures/layer_activations.bin and layer_channel_scale.bin, tools/make_fixtures.py).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "fixture.hpp"
#include "minicnn/config.hpp"
#include "minicnn/ops/dispatch.hpp"
#include "minicnn/random.hpp"
#include "minicnn/tensor.hpp"
#include "same_bits.hpp"
#include "thread_count_guard.hpp"

namespace ops = minicnn::ops;
using Catch::Matchers::Contains;
using minicnn::Generator;
using minicnn::Shape;
using minicnn::Tensor;
using minicnn::testing::compare;
using minicnn::testing::Difference;
using minicnn::testing::Fixture;
using minicnn::testing::same_bits;
using minicnn::testing::scalar_name;
using minicnn::testing::ThreadCountGuard;
using ops::Activation;

namespace {

constexpr Activation all_activations[] = {Activation::relu, Activation::sigmoid,   Activation::tanh,
                                          Activation::silu, Activation::hardswish, Activation::hardsigmoid,
                                          Activation::gelu, Activation::gelu_tanh, Activation::leaky_relu};

// leaky_relu's negative slope in every test but the fixtures' (which store theirs).
constexpr double leaky_slope = 0.1;
double parameter_of(Activation kind) { return kind == Activation::leaky_relu ? leaky_slope : 0.0; }

// PyTorch's Hardsigmoid backward multiplies by the float constant 1.0f / 6.0f, also for double.
const double pytorch_one_sixth = static_cast<double>(1.0f / 6.0f);

template <typename T>
Tensor<T> random_tensor(const Shape& shape, std::uint64_t seed, double low = -1.0, double high = 1.0) {
  Generator generator(seed);
  Tensor<T> tensor(shape);
  for (T& value : tensor) value = static_cast<T>(generator.uniform(low, high));
  return tensor;
}

template <typename T>
Tensor<T> filled(const Shape& shape, T value) {
  Tensor<T> tensor(shape);
  for (T& element : tensor) element = value;
  return tensor;
}

// The standard normal CDF and density, in forms other than the kernels' (erfc, not erf).
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
double normal_pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * 3.14159265358979323846); }
double logistic(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Each activation written directly from its definition in double: the value at x, and the
// derivative d/dx (with PyTorch's convention at the kinks, tested separately below).
double reference_forward(Activation kind, double x) {
  const double gelu_tanh_scale = std::sqrt(2.0 / 3.14159265358979323846);
  switch (kind) {
    case Activation::relu:
      return x > 0 ? x : 0.0;
    case Activation::sigmoid:
      return logistic(x);
    case Activation::tanh:
      return std::tanh(x);
    case Activation::silu:
      return x * logistic(x);
    case Activation::hardswish:
      return x <= -3 ? 0.0 : x >= 3 ? x : x * (x + 3) / 6;
    case Activation::hardsigmoid:
      return x <= -3 ? 0.0 : x >= 3 ? 1.0 : x / 6 + 0.5;
    case Activation::gelu:
      return x * normal_cdf(x);
    case Activation::gelu_tanh:
      return 0.5 * x * (1 + std::tanh(gelu_tanh_scale * (x + 0.044715 * x * x * x)));
    case Activation::leaky_relu:
      return x > 0 ? x : leaky_slope * x;
  }
  return std::nan("");
}

double reference_derivative(Activation kind, double x) {
  const double gelu_tanh_scale = std::sqrt(2.0 / 3.14159265358979323846);
  switch (kind) {
    case Activation::relu:
      return x > 0 ? 1.0 : 0.0;
    case Activation::sigmoid:
      return logistic(x) * (1 - logistic(x));
    case Activation::tanh:
      return 1 - std::tanh(x) * std::tanh(x);
    case Activation::silu:
      return logistic(x) + x * logistic(x) * (1 - logistic(x));
    case Activation::hardswish:
      return x < -3 ? 0.0 : x > 3 ? 1.0 : (2 * x + 3) / 6;
    case Activation::hardsigmoid:
      return -3 < x && x < 3 ? pytorch_one_sixth : 0.0;
    case Activation::gelu:
      return normal_cdf(x) + x * normal_pdf(x);
    case Activation::gelu_tanh: {
      const double inner = gelu_tanh_scale * (x + 0.044715 * x * x * x);
      const double t = std::tanh(inner);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * gelu_tanh_scale * (1 + 3 * 0.044715 * x * x);
    }
    case Activation::leaky_relu:
      return x > 0 ? 1.0 : leaky_slope;
  }
  return std::nan("");
}

// |found - expected| <= tolerance max(1, |expected|), failing on NaN.
bool close(double found, double expected, double tolerance) {
  return std::abs(found - expected) <= tolerance * std::max(1.0, std::abs(expected));
}

template <typename T>
void check_against_formulas() {
  // Relative to max(1, |value|): float computes exp/erf/tanh in float; double to a few ulps.
  const double tolerance = std::is_same<T, double>::value ? 1e-13 : 2e-6;
  const Shape shape{4, 3, 17, 19};
  const Tensor<T> input = random_tensor<T>(shape, 11, -6.0, 6.0);
  const Tensor<T> grad_output = random_tensor<T>(shape, 12);
  for (Activation kind : all_activations) {
    INFO(ops::activation_name(kind) << " (" << scalar_name<T>() << ")");
    Tensor<T> output, grad_input;
    ops::activation_forward(kind, parameter_of(kind), input, output);
    grad_input = filled(shape, std::numeric_limits<T>::quiet_NaN());  // an unwritten element fails
    ops::activation_backward(kind, parameter_of(kind), input, output, grad_output, grad_input);
    REQUIRE(output.shape() == shape);
    REQUIRE(grad_input.shape() == shape);
    double worst_forward = 0, worst_backward = 0;
    bool forward_ok = true, backward_ok = true;
    for (std::int64_t i = 0; i < input.size(); ++i) {
      const double x = input[i];
      const double expected_output = reference_forward(kind, x);
      const double expected_grad = static_cast<double>(grad_output[i]) * reference_derivative(kind, x);
      forward_ok &= close(output[i], expected_output, tolerance);
      backward_ok &= close(grad_input[i], expected_grad, tolerance);
      worst_forward = std::max(worst_forward, std::abs(output[i] - expected_output));
      worst_backward = std::max(worst_backward, std::abs(grad_input[i] - expected_grad));
    }
    INFO("max abs difference: forward " << worst_forward << ", backward " << worst_backward);
    CHECK(forward_ok);
    CHECK(backward_ok);
  }
}

// One element through forward and backward (grad_output = 2).
struct ElementResult {
  double output, grad_input;
};
template <typename T>
ElementResult run_element(Activation kind, T x) {
  const Tensor<T> input = filled<T>(Shape{1}, x), grad_output = filled<T>(Shape{1}, T(2));
  Tensor<T> output, grad_input;
  ops::activation_forward(kind, parameter_of(kind), input, output);
  ops::activation_backward(kind, parameter_of(kind), input, output, grad_output, grad_input);
  return {static_cast<double>(output[0]), static_cast<double>(grad_input[0])};
}

// Forward and backward on every element of `input` with `threads` threads.
template <typename T>
std::pair<Tensor<T>, Tensor<T>> run_with_threads(Activation kind, const Tensor<T>& input, const Tensor<T>& grad_output,
                                                 int threads) {
  minicnn::set_num_threads(threads);
  Tensor<T> output, grad_input;
  ops::activation_forward(kind, parameter_of(kind), input, output);
  ops::activation_backward(kind, parameter_of(kind), input, output, grad_output, grad_input);
  return {output, grad_input};
}

template <typename T>
void check_thread_counts() {
  ThreadCountGuard guard;
  // Three full parallel blocks and a partial one, with NaNs, zeros and the kinks among them.
  const Shape shape{3 * ops::cpu::elementwise_block + 5};
  Tensor<T> input = random_tensor<T>(shape, 21, -6.0, 6.0);
  const T specials[] = {std::numeric_limits<T>::quiet_NaN(), T(0), T(-0.0), T(3), T(-3)};
  for (std::int64_t i = 0; i < input.size(); i += 997) input[i] = specials[(i / 997) % 5];
  const Tensor<T> grad_output = random_tensor<T>(shape, 22);
  for (Activation kind : all_activations) {
    INFO(ops::activation_name(kind) << " (" << scalar_name<T>() << ")");
    const auto one = run_with_threads(kind, input, grad_output, 1);
    const auto two = run_with_threads(kind, input, grad_output, 2);
    CHECK(same_bits(one.first, two.first));
    CHECK(same_bits(one.second, two.second));
  }
}

template <typename T>
void check_against_pytorch() {
  const double tolerance = std::is_same<T, double>::value ? 1e-10 : 1e-5;
  const Fixture fixture = Fixture::load("layer_activations.bin");
  for (Activation kind : all_activations) {
    const std::string prefix = std::string(ops::activation_name(kind)) + ".";
    const double parameter = kind == Activation::leaky_relu ? fixture.scalar(prefix + "negative_slope") : 0.0;
    const Tensor<T> input = fixture.tensor<T>(prefix + "input");
    const Tensor<T> grad_output = fixture.tensor<T>(prefix + "grad_output");
    Tensor<T> output, grad_input;
    ops::activation_forward(kind, parameter, input, output);
    ops::activation_backward(kind, parameter, input, output, grad_output, grad_input);
    const Difference forward = compare(output, fixture.tensor(prefix + "output"), prefix + "output");
    const Difference backward = compare(grad_input, fixture.tensor(prefix + "grad_input"), prefix + "grad_input");
    WARN("PyTorch parity, " << prefix.substr(0, prefix.size() - 1) << " (" << scalar_name<T>()
                            << "): output max abs difference " << forward.max_abs << " (relative " << forward.relative()
                            << "), grad_input " << backward.max_abs << " (relative " << backward.relative() << ")");
    CHECK(forward.relative() <= tolerance);
    CHECK(backward.relative() <= tolerance);
  }
}

// grad_scale summed the obvious way, for comparison.
template <typename T>
Tensor<T> naive_grad_scale(const Tensor<T>& input, const Tensor<T>& grad_output) {
  const std::int64_t planes = input.dim(0) * input.dim(1), plane_size = input.dim(2) * input.dim(3);
  Tensor<T> grad_scale(Shape{input.dim(0), input.dim(1)});
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    double sum = 0;
    for (std::int64_t i = 0; i < plane_size; ++i)
      sum += static_cast<double>(grad_output[plane * plane_size + i]) * input[plane * plane_size + i];
    grad_scale[plane] = static_cast<T>(sum);
  }
  return grad_scale;
}

template <typename T>
void check_channel_scale(const Shape& shape) {
  INFO("shape " << shape.str() << " (" << scalar_name<T>() << ")");
  const Tensor<T> input = random_tensor<T>(shape, 31), grad_output = random_tensor<T>(shape, 33);
  const Tensor<T> scale = random_tensor<T>(Shape{shape[0], shape[1]}, 32, 0.0, 1.0);
  const std::int64_t plane_size = shape[2] * shape[3];
  ThreadCountGuard guard;
  Tensor<T> outputs[2], grad_inputs[2], grad_scales[2];
  for (int threads : {1, 2}) {
    minicnn::set_num_threads(threads);
    Tensor<T>& output = outputs[threads - 1];
    Tensor<T>& grad_input = grad_inputs[threads - 1];
    Tensor<T>& grad_scale = grad_scales[threads - 1];
    ops::channel_scale_forward(input, scale, output);
    grad_input = filled(shape, std::numeric_limits<T>::quiet_NaN());
    grad_scale = filled(scale.shape(), std::numeric_limits<T>::quiet_NaN());
    ops::channel_scale_backward(input, scale, grad_output, &grad_input, grad_scale);
  }
  CHECK(same_bits(outputs[0], outputs[1]));
  CHECK(same_bits(grad_inputs[0], grad_inputs[1]));
  CHECK(same_bits(grad_scales[0], grad_scales[1]));

  // One multiplication per element: exact. The plane sums: to rounding.
  bool exact = true;
  for (std::int64_t i = 0; i < input.size(); ++i) {
    exact &= outputs[0][i] == input[i] * scale[i / plane_size];
    exact &= grad_inputs[0][i] == grad_output[i] * scale[i / plane_size];
  }
  CHECK(exact);
  const Tensor<T> expected_grad_scale = naive_grad_scale(input, grad_output);
  const double tolerance = std::is_same<T, double>::value ? 1e-12 : 1e-4;
  for (std::int64_t plane = 0; plane < scale.size(); ++plane)
    CHECK(close(grad_scales[0][plane], expected_grad_scale[plane], tolerance));

  // Without grad_input, grad_scale is the same, bit for bit.
  Tensor<T> grad_scale_alone;
  ops::channel_scale_backward<T>(input, scale, grad_output, nullptr, grad_scale_alone);
  CHECK(same_bits(grad_scale_alone, grad_scales[0]));
}

}  // namespace

TEST_CASE("activations: forward and backward match the formulas written out in double", "[ops][activation]") {
  check_against_formulas<double>();
  check_against_formulas<float>();
}

TEST_CASE("activations: NaN propagates forward; backward at NaN follows PyTorch's comparisons", "[ops][activation]") {
  // grad_output is 2. Backward at a NaN input is NaN where the derivative is arithmetic; where it
  // is a comparison, the branch a false comparison takes (PyTorch 1.13 gives the same values):
  // relu passes grad (output <= 0 is false), hardswish passes grad (x < -3 and x <= 3 false),
  // hardsigmoid gives 0 (-3 < x < 3 false), leaky_relu gives slope * grad (x > 0 false).
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Activation kind : all_activations) {
    INFO(ops::activation_name(kind));
    const ElementResult in_double = run_element<double>(kind, nan);
    const ElementResult in_float = run_element<float>(kind, std::numeric_limits<float>::quiet_NaN());
    CHECK(std::isnan(in_double.output));
    CHECK(std::isnan(in_float.output));
    for (const ElementResult& result : {in_double, in_float}) {
      switch (kind) {
        case Activation::relu:
        case Activation::hardswish:
          CHECK(result.grad_input == 2.0);
          break;
        case Activation::hardsigmoid:
          CHECK(result.grad_input == 0.0);
          break;
        case Activation::leaky_relu:
          CHECK(result.grad_input == Approx(2.0 * leaky_slope));
          break;
        default:
          CHECK(std::isnan(result.grad_input));
      }
    }
  }
}

TEST_CASE("activations: values exactly at the kinks are PyTorch's", "[ops][activation]") {
  // grad_output is 2; values as torch 1.13 computes them in float64.
  struct Kink {
    Activation kind;
    double input, output, grad_input;
  };
  const Kink kinks[] = {
      {Activation::relu, 0.0, 0.0, 0.0},        {Activation::relu, -0.0, 0.0, 0.0},
      {Activation::leaky_relu, 0.0, 0.0, 0.2},  {Activation::hardswish, -3.0, 0.0, -1.0},
      {Activation::hardswish, 3.0, 3.0, 3.0},   {Activation::hardsigmoid, -3.0, 0.0, 0.0},
      {Activation::hardsigmoid, 3.0, 1.0, 0.0}, {Activation::sigmoid, 0.0, 0.5, 0.5},
      {Activation::tanh, 0.0, 0.0, 2.0},        {Activation::silu, 0.0, 0.0, 1.0},
      {Activation::gelu, 0.0, 0.0, 1.0},        {Activation::gelu_tanh, 0.0, 0.0, 1.0},
  };
  for (const Kink& kink : kinks) {
    INFO(ops::activation_name(kink.kind) << " at " << kink.input);
    const ElementResult in_double = run_element<double>(kink.kind, kink.input);
    const ElementResult in_float = run_element<float>(kink.kind, static_cast<float>(kink.input));
    CHECK(in_double.output == kink.output);
    CHECK(in_float.output == kink.output);
    CHECK(in_double.grad_input == Approx(kink.grad_input).margin(1e-15));
    CHECK(in_float.grad_input == Approx(kink.grad_input).margin(1e-7));
  }
  // ReLU maps -0 to +0, bit for bit as before NaN propagation.
  CHECK(!std::signbit(run_element<double>(Activation::relu, -0.0).output));
  // Hardsigmoid's slope is PyTorch's float 1/6, 3e-8 away from the exact one in double.
  CHECK(run_element<double>(Activation::hardsigmoid, 1.0).grad_input == 2.0 * pytorch_one_sixth);
  CHECK(std::abs(pytorch_one_sixth - 1.0 / 6.0) < 5e-9);
}

TEST_CASE("activations: the derivative matches central differences in double, away from the kinks",
          "[ops][activation]") {
  const double step = 1e-6, tolerance = 1e-7;
  const Shape shape{2000};
  Tensor<double> input = random_tensor<double>(shape, 41, -5.0, 5.0);
  // Points within 0.01 of a kink move off it: a central difference across it is meaningless.
  for (double& x : input)
    for (double kink : {-3.0, 0.0, 3.0})
      if (std::abs(x - kink) < 0.01) x = kink + 0.02;
  Tensor<double> above(shape), below(shape);
  for (std::int64_t i = 0; i < input.size(); ++i) above[i] = input[i] + step, below[i] = input[i] - step;
  const Tensor<double> ones = filled<double>(shape, 1.0);
  for (Activation kind : all_activations) {
    INFO(ops::activation_name(kind));
    const double parameter = parameter_of(kind);
    Tensor<double> output, grad_input, output_above, output_below;
    ops::activation_forward(kind, parameter, input, output);
    ops::activation_backward(kind, parameter, input, output, ones, grad_input);
    ops::activation_forward(kind, parameter, above, output_above);
    ops::activation_forward(kind, parameter, below, output_below);
    double worst = 0;
    bool ok = true;
    for (std::int64_t i = 0; i < input.size(); ++i) {
      const double numeric = (output_above[i] - output_below[i]) / (2 * step);
      ok &= close(grad_input[i], numeric, tolerance);
      worst = std::max(worst, std::abs(grad_input[i] - numeric));
    }
    INFO("max abs difference from the central difference: " << worst);
    CHECK(ok);
  }
}

TEST_CASE("activations: CPU results are bit-identical for 1 and 2 threads", "[ops][activation][threads]") {
  check_thread_counts<double>();
  check_thread_counts<float>();
}

TEST_CASE("activations: relu through the enum is relu_forward / relu_backward, bit for bit", "[ops][activation]") {
  const Shape shape{5, 1000};
  Tensor<float> input = random_tensor<float>(shape, 51);
  input[3] = std::numeric_limits<float>::quiet_NaN(), input[4] = -0.0f, input[5] = 0.0f;
  const Tensor<float> grad_output = random_tensor<float>(shape, 52);
  Tensor<float> output(shape), grad_input(shape), enum_output, enum_grad_input;
  ops::relu_forward(input, output);
  ops::relu_backward(output, grad_output, grad_input);
  ops::activation_forward(Activation::relu, 0.0, input, enum_output);
  ops::activation_backward(Activation::relu, 0.0, input, enum_output, grad_output, enum_grad_input);
  CHECK(same_bits(output, enum_output));
  CHECK(same_bits(grad_input, enum_grad_input));
  CHECK(std::isnan(output[3]));
}

TEST_CASE("activations: in place, and the argument checks", "[ops][activation]") {
  const Shape shape{3, 4};
  const Tensor<double> input = random_tensor<double>(shape, 61), grad_output = random_tensor<double>(shape, 62);
  SECTION("output may be the input, grad_input may be grad_output") {
    Tensor<double> output, grad_input;
    ops::activation_forward(Activation::silu, 0.0, input, output);
    ops::activation_backward(Activation::silu, 0.0, input, output, grad_output, grad_input);
    Tensor<double> in_place = input, grad_in_place = grad_output;
    ops::activation_forward(Activation::silu, 0.0, in_place, in_place);
    ops::activation_backward(Activation::silu, 0.0, input, in_place, grad_in_place, grad_in_place);
    CHECK(same_bits(in_place, output));
    CHECK(same_bits(grad_in_place, grad_input));
  }
  SECTION("a parameter for an activation without one is refused") {
    Tensor<double> output;
    CHECK_THROWS_AS(ops::activation_forward(Activation::sigmoid, 0.1, input, output), minicnn::error);
    CHECK_THROWS_WITH(ops::activation_forward(Activation::sigmoid, 0.1, input, output),
                      Contains("sigmoid") && Contains("expected parameter 0") && Contains("0.1"));
  }
  SECTION("a value outside the enum is refused") {
    Tensor<double> output;
    CHECK_THROWS_WITH(ops::activation_forward(static_cast<Activation>(42), 0.0, input, output),
                      Contains("ops::Activation") && Contains("42"));
  }
  SECTION("backward operands of another shape are refused") {
    Tensor<double> output, grad_input;
    ops::activation_forward(Activation::tanh, 0.0, input, output);
    const Tensor<double> wrong(Shape{4, 3});
    CHECK_THROWS_WITH(ops::activation_backward(Activation::tanh, 0.0, input, output, wrong, grad_input),
                      Contains("grad_output") && Contains("[3, 4]") && Contains("[4, 3]"));
    CHECK_THROWS_WITH(ops::activation_backward(Activation::tanh, 0.0, input, wrong, grad_output, grad_input),
                      Contains("output") && Contains("[3, 4]") && Contains("[4, 3]"));
  }
}

TEST_CASE("activations match PyTorch (tests/fixtures/layer_activations.bin)", "[ops][activation][parity]") {
  check_against_pytorch<double>();
  check_against_pytorch<float>();
}

TEST_CASE("add: the element-wise sum, in place too, bit-identical for 1 and 2 threads", "[ops][add]") {
  ThreadCountGuard guard;
  for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{3 * ops::cpu::elementwise_block + 7}}) {
    INFO("shape " << shape.str());
    const Tensor<double> a = random_tensor<double>(shape, 71), b = random_tensor<double>(shape, 72);
    Tensor<double> sums[2];
    for (int threads : {1, 2}) {
      minicnn::set_num_threads(threads);
      ops::add(a, b, sums[threads - 1]);
    }
    CHECK(same_bits(sums[0], sums[1]));
    bool exact = true;
    for (std::int64_t i = 0; i < a.size(); ++i) exact &= sums[0][i] == a[i] + b[i];
    CHECK(exact);
    Tensor<double> in_place = a;
    ops::add(in_place, b, in_place);
    CHECK(same_bits(in_place, sums[0]));
  }
  const Tensor<float> a(Shape{2, 3}), b(Shape{3, 2});
  Tensor<float> output;
  CHECK_THROWS_WITH(ops::add(a, b, output), Contains("add") && Contains("[2, 3]") && Contains("[3, 2]"));
}

TEST_CASE("channel_scale: forward and backward match loops, bit-identical for 1 and 2 threads",
          "[ops][channel_scale]") {
  // A small case, and one with enough planes of 1155 elements to run on two threads.
  check_channel_scale<double>(Shape{3, 5, 7, 9});
  check_channel_scale<double>(Shape{4, 16, 33, 35});
  check_channel_scale<float>(Shape{3, 5, 7, 9});
  check_channel_scale<float>(Shape{4, 16, 33, 35});
}

TEST_CASE("channel_scale: the argument checks", "[ops][channel_scale]") {
  const Tensor<double> input(Shape{2, 3, 4, 5}), transposed(Shape{2, 3, 5, 4});
  const Tensor<double> scale(Shape{2, 3}), wrong_scale(Shape{3, 2});
  Tensor<double> output, grad_scale;
  CHECK_THROWS_WITH(ops::channel_scale_forward(scale, scale, output), Contains("[N, C, H, W]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(ops::channel_scale_forward(input, wrong_scale, output),
                    Contains("scale") && Contains("expected shape [2, 3]") && Contains("found [3, 2]"));
  CHECK_THROWS_WITH(ops::channel_scale_backward<double>(input, scale, transposed, nullptr, grad_scale),
                    Contains("grad_output") && Contains("[2, 3, 4, 5]") && Contains("[2, 3, 5, 4]"));
}

TEST_CASE("channel_scale matches PyTorch (tests/fixtures/layer_channel_scale.bin)", "[ops][channel_scale][parity]") {
  const Fixture fixture = Fixture::load("layer_channel_scale.bin");
  auto run = [&](auto zero, double tolerance) {
    using T = decltype(zero);
    const Tensor<T> input = fixture.tensor<T>("input"), scale = fixture.tensor<T>("scale");
    Tensor<T> output, grad_input, grad_scale;
    ops::channel_scale_forward(input, scale, output);
    ops::channel_scale_backward(input, scale, fixture.tensor<T>("grad_output"), &grad_input, grad_scale);
    const Difference differences[] = {compare(output, fixture.tensor("output"), "output"),
                                      compare(grad_input, fixture.tensor("grad_input"), "grad_input"),
                                      compare(grad_scale, fixture.tensor("grad_scale"), "grad_scale")};
    WARN("PyTorch parity, channel_scale (" << scalar_name<T>() << "): max abs difference output "
                                           << differences[0].max_abs << ", grad_input " << differences[1].max_abs
                                           << ", grad_scale " << differences[2].max_abs << " (relative "
                                           << differences[2].relative() << ")");
    for (const Difference& d : differences) CHECK(d.relative() <= tolerance);
  };
  run(0.0, 1e-10);
  run(0.0f, 1e-5);
}
