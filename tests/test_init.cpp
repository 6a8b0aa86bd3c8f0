// Initialisers of layers/init.hpp: the fan computation, the gains, and the distribution of the
// random fills (they match PyTorch's distribution, not its random stream).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>

#include "minicnn/layers/init.hpp"

using namespace minicnn;

namespace {

struct SampleMoments {
  double mean = 0;
  double standard_deviation = 0;
  double within_one_deviation = 0;  // fraction of values within one standard deviation of the mean
};

template <typename T>
SampleMoments moments(const Tensor<T>& tensor, double expected_mean, double expected_deviation) {
  SampleMoments result;
  const auto n = static_cast<double>(tensor.size());
  for (T value : tensor) result.mean += static_cast<double>(value);
  result.mean /= n;
  double sum_of_squares = 0, within = 0;
  for (T value : tensor) {
    const double centred = static_cast<double>(value) - result.mean;
    sum_of_squares += centred * centred;
    within += std::abs(static_cast<double>(value) - expected_mean) <= expected_deviation ? 1.0 : 0.0;
  }
  result.standard_deviation = std::sqrt(sum_of_squares / (n - 1));
  result.within_one_deviation = within / n;
  return result;
}

// Checks a sample against N(mean, deviation^2), each statistic within 5 of its standard errors
// (a false alarm about once in 10^6 runs; the seeds are fixed anyway).
template <typename T>
void check_normal(const Tensor<T>& tensor, double mean, double deviation) {
  const auto n = static_cast<double>(tensor.size());
  const SampleMoments found = moments(tensor, mean, deviation);
  INFO("n " << n << ", mean " << found.mean << " (expected " << mean << "), standard deviation "
            << found.standard_deviation << " (expected " << deviation << "), within one deviation "
            << found.within_one_deviation);
  CHECK(std::abs(found.mean - mean) <= 5 * deviation / std::sqrt(n));
  CHECK(std::abs(found.standard_deviation - deviation) <= 5 * deviation / std::sqrt(2 * n));
  // The shape, not only two moments: 68.27 % within one deviation (a uniform fill of the same
  // deviation has 57.7 %).
  const double p = 0.682689492137086;
  CHECK(std::abs(found.within_one_deviation - p) <= 5 * std::sqrt(p * (1 - p) / n));
}

}  // namespace

TEST_CASE("compute_fans: [out, in, kh, kw] and [out, in]", "[init]") {
  const Fans conv = compute_fans(Shape{8, 3, 5, 7});
  CHECK(conv.fan_in == 3 * 5 * 7);
  CHECK(conv.fan_out == 8 * 5 * 7);
  const Fans linear = compute_fans(Shape{10, 20});
  CHECK(linear.fan_in == 20);
  CHECK(linear.fan_out == 10);
  CHECK_THROWS_WITH(compute_fans(Shape{4}),
                    Catch::Contains("expected a weight of rank >= 2") && Catch::Contains("got shape [4]"));
}

TEST_CASE("calculate_gain as torch.nn.init.calculate_gain", "[init]") {
  CHECK(calculate_gain(Nonlinearity::linear) == 1.0);
  CHECK(calculate_gain(Nonlinearity::relu) == std::sqrt(2.0));
  CHECK(calculate_gain(Nonlinearity::tanh) == 5.0 / 3.0);
}

TEST_CASE("kaiming_normal_ draws N(0, 2 / fan) for relu, by fan_out or fan_in", "[init]") {
  Generator gen(42);
  Tensor<double> weight(Shape{256, 64, 3, 3});  // 147,456 values
  kaiming_normal_(weight, FanMode::fan_out, Nonlinearity::relu, gen);
  check_normal(weight, 0.0, std::sqrt(2.0 / (256 * 3 * 3)));
  kaiming_normal_(weight, FanMode::fan_in, Nonlinearity::relu, gen);
  check_normal(weight, 0.0, std::sqrt(2.0 / (64 * 3 * 3)));

  Tensor<float> linear_weight(Shape{300, 500});
  kaiming_normal_(linear_weight, FanMode::fan_in, Nonlinearity::linear, gen);
  check_normal(linear_weight, 0.0, 1.0 / std::sqrt(500.0));

  Tensor<float> bias(Shape{16});
  CHECK_THROWS_AS(kaiming_normal_(bias), error);
}

TEST_CASE("kaiming_normal_ is deterministic for a seed; the default generator is used when none is given", "[init]") {
  Tensor<float> first(Shape{4, 3, 3, 3}), second(Shape{4, 3, 3, 3}), other(Shape{4, 3, 3, 3});
  Generator a(7), b(7), c(8);
  kaiming_normal_(first, FanMode::fan_out, Nonlinearity::relu, a);
  kaiming_normal_(second, FanMode::fan_out, Nonlinearity::relu, b);
  kaiming_normal_(other, FanMode::fan_out, Nonlinearity::relu, c);
  bool all_equal = true, any_different = false;
  for (std::int64_t i = 0; i < first.size(); ++i) {
    all_equal = all_equal && first[i] == second[i];
    any_different = any_different || first[i] != other[i];
  }
  CHECK(all_equal);
  CHECK(any_different);
  // Two values per normal draw: the generator moved on by two counters per element.
  CHECK(a.counter() == static_cast<std::uint64_t>(2 * first.size()));

  manual_seed(7);
  Tensor<float> from_default(Shape{4, 3, 3, 3});
  kaiming_normal_(from_default, FanMode::fan_out);
  for (std::int64_t i = 0; i < first.size(); ++i) REQUIRE(from_default[i] == first[i]);
}

TEST_CASE("normal_ and constant_", "[init]") {
  Generator gen(3);
  Tensor<double> values(Shape{200000});
  normal_(values, 3.0, 0.5, gen);
  check_normal(values, 3.0, 0.5);
  CHECK_THROWS_WITH(normal_(values, 0.0, -1.0, gen), Catch::Contains("standard deviation >= 0"));
  CHECK_THROWS_AS(normal_(values, std::nan(""), 1.0, gen), error);

  Tensor<float> weight(Shape{2, 3}), bias(Shape{3});
  constant_(weight, 1);
  constant_(bias, 0.25);
  for (float value : weight) CHECK(value == 1.0f);
  for (float value : bias) CHECK(value == 0.25f);
}
