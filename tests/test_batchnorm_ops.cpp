// The batch-normalisation ops (ops::batch_norm_forward / batch_norm_backward through dispatch,
// so the CPU backend here) against a naive double-precision definition, central finite
// differences and PyTorch (tests/fixtures/layer_batchnorm.bin), plus their contract: grad_input
// assigned, parameter gradients accumulated, null outputs skipped, results independent of the
// thread count, empty batches a no-op, one value per channel refused in training.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "fixture.hpp"
#include "minicnn/config.hpp"
#include "minicnn/ops/dispatch.hpp"
#include "minicnn/tensor.hpp"
#include "same_bits.hpp"

using minicnn::Shape;
using minicnn::Tensor;
using minicnn::testing::compare;
using minicnn::testing::Difference;
using minicnn::testing::Fixture;
using minicnn::testing::same_bits;
using minicnn::testing::scalar_name;

namespace {

// One configuration of the op. Tensors absent from it (affine=False, no running statistics) are
// passed as null.
struct Config {
  Shape shape;
  bool affine = true;
  bool running_stats = true;  // running_mean / running_var passed
  bool batch_stats = true;    // use_batch_stats (training)
  double momentum = 0.1;
  double eps = 1e-5;
};

std::string describe(const Config& config) {
  return config.shape.str() + (config.affine ? " affine" : " affine=False") +
         (config.running_stats ? " with running stats" : " without running stats") +
         (config.batch_stats ? ", batch statistics" : ", running statistics") + ", momentum " +
         std::to_string(config.momentum) + ", eps " + std::to_string(config.eps);
}

template <typename T>
Tensor<T> uniform_tensor(const Shape& shape, std::uint64_t seed, double low, double high) {
  Tensor<T> t(shape);
  t.uniform(static_cast<T>(low), static_cast<T>(high), seed);
  return t;
}

template <typename To, typename From>
Tensor<To> cast(const Tensor<From>& from) {
  Tensor<To> to(from.shape());
  for (std::int64_t i = 0; i < from.size(); ++i) to[i] = static_cast<To>(from[i]);
  return to;
}

// The operands of one forward + backward. Tensors a Config leaves out stay empty.
template <typename T>
struct Operands {
  Tensor<T> input, weight, bias, running_mean, running_var, grad_output;

  static Operands random(const Config& config, std::uint64_t seed) {
    const std::int64_t channels = config.shape[1];
    Operands o;
    o.input = uniform_tensor<T>(config.shape, seed, -1.0, 3.0);  // mean away from 0
    o.grad_output = uniform_tensor<T>(config.shape, seed + 1, -1.0, 1.0);
    if (config.affine) {
      o.weight = uniform_tensor<T>(Shape{channels}, seed + 2, 0.5, 1.5);
      o.bias = uniform_tensor<T>(Shape{channels}, seed + 3, -1.0, 1.0);
    }
    if (config.running_stats) {
      o.running_mean = uniform_tensor<T>(Shape{channels}, seed + 4, -1.0, 1.0);
      o.running_var = uniform_tensor<T>(Shape{channels}, seed + 5, 0.5, 1.5);
    }
    return o;
  }

  template <typename U>
  Operands<U> as() const {
    return {cast<U>(input),        cast<U>(weight),      cast<U>(bias),
            cast<U>(running_mean), cast<U>(running_var), cast<U>(grad_output)};
  }
};

template <typename T>
const Tensor<T>* optional(const Tensor<T>& t) {
  return t.empty() ? nullptr : &t;
}
template <typename T>
Tensor<T>* optional(Tensor<T>& t) {
  return t.empty() ? nullptr : &t;
}

// What the ops return: running statistics after the forward, gradients after the backward.
template <typename T>
struct Results {
  Tensor<T> output, save_mean, save_invstd, running_mean, running_var, grad_input, grad_weight, grad_bias;
};

constexpr double grad_sentinel = 0.5;

// Forward then backward through ops:: with the conventions made visible: grad_input pre-filled
// with NaN (it must be assigned everywhere), parameter gradients pre-filled with grad_sentinel
// (they must accumulate; the returned gradients have it subtracted again).
template <typename T>
Results<T> run_ops(const Config& config, const Operands<T>& operands) {
  const std::int64_t channels = config.shape[1];
  Results<T> r;
  r.output.resize(config.shape);
  r.save_mean.resize(Shape{channels});
  r.save_invstd.resize(Shape{channels});
  r.running_mean = operands.running_mean;
  r.running_var = operands.running_var;
  minicnn::ops::batch_norm_forward(operands.input, optional(operands.weight), optional(operands.bias),
                                   optional(r.running_mean), optional(r.running_var), config.batch_stats,
                                   config.momentum, config.eps, r.output, r.save_mean, r.save_invstd);
  r.grad_input.resize(config.shape);
  r.grad_input.fill(std::numeric_limits<T>::quiet_NaN());
  if (config.affine) {
    r.grad_weight.resize(Shape{channels});
    r.grad_bias.resize(Shape{channels});
    r.grad_weight.fill(static_cast<T>(grad_sentinel));
    r.grad_bias.fill(static_cast<T>(grad_sentinel));
  }
  minicnn::ops::batch_norm_backward(operands.input, optional(operands.weight), r.save_mean, r.save_invstd,
                                    operands.grad_output, config.batch_stats, &r.grad_input, optional(r.grad_weight),
                                    optional(r.grad_bias));
  for (std::int64_t c = 0; c < r.grad_weight.size(); ++c) {
    r.grad_weight[c] -= static_cast<T>(grad_sentinel);
    r.grad_bias[c] -= static_cast<T>(grad_sentinel);
  }
  return r;
}

// The definition, element by element in double, written from PyTorch's documentation rather
// than from the ops: per channel, the statistics of its N L values, then the formulas of the
// brief (grad_input = weight invstd / n (n g - sum g - xhat sum g xhat) with batch statistics).
Results<double> reference(const Config& config, const Operands<double>& o) {
  const std::int64_t batch = config.shape[0], channels = config.shape[1];
  const std::int64_t plane = config.shape.numel() / std::max<std::int64_t>(1, batch * channels);
  const auto n = static_cast<double>(batch * plane);
  Results<double> r;
  r.output.resize(config.shape);
  r.grad_input.resize(config.shape);
  r.running_mean = o.running_mean;
  r.running_var = o.running_var;
  if (config.affine) {
    r.grad_weight.resize(Shape{channels});
    r.grad_bias.resize(Shape{channels});
  }
  for (std::int64_t c = 0; c < channels; ++c) {
    std::vector<std::int64_t> at;
    for (std::int64_t image = 0; image < batch; ++image)
      for (std::int64_t l = 0; l < plane; ++l) at.push_back((image * channels + c) * plane + l);
    double sum = 0;
    for (std::int64_t i : at) sum += o.input[i];
    const double batch_mean = sum / n;
    double square_sum = 0;
    for (std::int64_t i : at) square_sum += (o.input[i] - batch_mean) * (o.input[i] - batch_mean);
    const double batch_var = square_sum / n;
    const double mean = config.batch_stats ? batch_mean : o.running_mean[c];
    const double var = config.batch_stats ? batch_var : o.running_var[c];
    const double invstd = 1.0 / std::sqrt(var + config.eps);
    const double weight = config.affine ? o.weight[c] : 1.0, bias = config.affine ? o.bias[c] : 0.0;
    if (config.batch_stats && config.running_stats) {
      r.running_mean[c] = (1 - config.momentum) * o.running_mean[c] + config.momentum * batch_mean;
      r.running_var[c] = (1 - config.momentum) * o.running_var[c] + config.momentum * batch_var * n / (n - 1);
    }
    double sum_grad = 0, sum_grad_xhat = 0;
    for (std::int64_t i : at) {
      const double xhat = (o.input[i] - mean) * invstd;
      r.output[i] = xhat * weight + bias;
      sum_grad += o.grad_output[i];
      sum_grad_xhat += o.grad_output[i] * xhat;
    }
    for (std::int64_t i : at) {
      const double xhat = (o.input[i] - mean) * invstd;
      r.grad_input[i] = config.batch_stats
                            ? weight * invstd / n * (n * o.grad_output[i] - sum_grad - xhat * sum_grad_xhat)
                            : o.grad_output[i] * weight * invstd;
    }
    if (config.affine) {
      r.grad_weight[c] = sum_grad_xhat;
      r.grad_bias[c] = sum_grad;
    }
  }
  return r;
}

template <typename T>
constexpr double tolerance() {
  return std::is_same<T, double>::value ? 1e-12 : 1e-5;
}

template <typename T>
double check_against(const Results<T>& found, const Results<double>& expected, const Config& config, double tolerance) {
  double worst = 0;
  auto check = [&](const Tensor<T>& value, const Tensor<double>& reference, const char* name) {
    const Difference d = compare(value, reference, name);
    INFO(describe(config) << ": " << name << " max abs difference " << d.max_abs << ", relative " << d.relative());
    CHECK(d.relative() <= tolerance);
    worst = std::max(worst, d.relative());
  };
  check(found.output, expected.output, "output");
  check(found.grad_input, expected.grad_input, "grad_input");
  check(found.running_mean, expected.running_mean, "running_mean");
  check(found.running_var, expected.running_var, "running_var");
  check(found.grad_weight, expected.grad_weight, "grad_weight");
  check(found.grad_bias, expected.grad_bias, "grad_bias");
  return worst;
}

const std::vector<Config>& reference_configs() {
  static const std::vector<Config> configs = {
      {Shape{4, 3, 5, 6}, true, true, true, 0.1, 1e-5},    // BatchNorm2d training
      {Shape{4, 3, 5, 6}, true, true, false, 0.1, 1e-5},   // BatchNorm2d evaluation
      {Shape{4, 3, 5, 6}, false, false, true, 0.1, 1e-5},  // affine=False, track_running_stats=False
      {Shape{4, 3, 5, 6}, false, true, true, 0.25, 1e-3},  // affine=False with running statistics
      {Shape{8, 5}, true, true, true, 0.1, 1e-5},          // BatchNorm1d on [N, C]
      {Shape{8, 5}, false, true, false, 0.1, 1e-5},        // BatchNorm1d evaluation, affine=False
      {Shape{3, 4, 7}, true, true, true, 1.0, 1e-5},       // [N, C, L]; momentum 1: the batch's stats
      {Shape{1, 2, 3, 3}, true, true, true, 0.1, 1e-5},    // one image, several values per channel
      // Three values per channel: n / (n - 1) = 1.5. (With two, xhat = +-1 and grad_input
      // cancels to ~eps / var: no relative comparison is meaningful there.)
      {Shape{3, 4}, true, true, true, 0.5, 1e-5},
      {Shape{16, 6, 28, 28}, true, true, true, 0.1, 1e-5},  // long channels (12,544 values each)
  };
  return configs;
}

}  // namespace

TEMPLATE_TEST_CASE("batch_norm ops match the naive double-precision definition", "[batchnorm]", float, double) {
  double worst = 0;
  std::uint64_t seed = 10;
  for (const Config& config : reference_configs()) {
    INFO(describe(config));
    const auto operands = Operands<TestType>::random(config, seed += 10);
    const Results<TestType> found = run_ops(config, operands);
    worst = std::max(
        worst, check_against(found, reference(config, operands.template as<double>()), config, tolerance<TestType>()));
    // In evaluation save_mean / save_invstd hold the running statistics that normalised.
    if (!config.batch_stats) {
      for (std::int64_t c = 0; c < config.shape[1]; ++c) {
        CHECK(found.save_mean[c] == operands.running_mean[c]);
        const double invstd = 1.0 / std::sqrt(static_cast<double>(operands.running_var[c]) + config.eps);
        CHECK(std::abs(found.save_invstd[c] - invstd) <= tolerance<TestType>() * invstd);
      }
    }
  }
  WARN("worst relative difference against the definition (" << scalar_name<TestType>() << "): " << worst);
}

TEMPLATE_TEST_CASE("batch_norm backward: a null grad_input skips it, parameter gradients accumulate", "[batchnorm]",
                   float, double) {
  const Config config{Shape{4, 3, 5, 6}, true, true, true, 0.1, 1e-5};
  const auto o = Operands<TestType>::random(config, 3);
  const Results<TestType> full = run_ops(config, o);

  // Forward again from the same running statistics: the same saved statistics.
  Tensor<TestType> output(config.shape), save_mean(Shape{3}), save_invstd(Shape{3});
  Tensor<TestType> running_mean = o.running_mean, running_var = o.running_var;
  minicnn::ops::batch_norm_forward(o.input, &o.weight, &o.bias, &running_mean, &running_var, true, config.momentum,
                                   config.eps, output, save_mean, save_invstd);
  CHECK(same_bits(output, full.output));
  Tensor<TestType> grad_weight(Shape{3}), grad_bias(Shape{3});
  minicnn::ops::batch_norm_backward(o.input, &o.weight, save_mean, save_invstd, o.grad_output, true,
                                    static_cast<Tensor<TestType>*>(nullptr), &grad_weight, &grad_bias);
  // From zero: exactly the gradients (run_ops subtracted its sentinel, which can round in
  // float, so compare closely rather than bit for bit).
  CHECK(compare(grad_weight, cast<double>(full.grad_weight), "grad_weight").relative() <= tolerance<TestType>());
  CHECK(compare(grad_bias, cast<double>(full.grad_bias), "grad_bias").relative() <= tolerance<TestType>());
  // A second backward adds the same amounts again.
  const Tensor<TestType> once_weight = grad_weight, once_bias = grad_bias;
  minicnn::ops::batch_norm_backward(o.input, &o.weight, save_mean, save_invstd, o.grad_output, true,
                                    static_cast<Tensor<TestType>*>(nullptr), &grad_weight, &grad_bias);
  for (std::int64_t c = 0; c < 3; ++c) {
    CHECK(grad_weight[c] == once_weight[c] + once_weight[c]);
    CHECK(grad_bias[c] == once_bias[c] + once_bias[c]);
  }
}

TEST_CASE("batch_norm ops give bit-identical results on 1 and 2 threads", "[batchnorm]") {
  const int previous = minicnn::num_threads();
  // Large enough that both the per-channel and the per-plane loops split across threads.
  for (const Config& config : {Config{Shape{16, 8, 28, 28}, true, true, true, 0.1, 1e-5},
                               Config{Shape{16, 8, 28, 28}, true, true, false, 0.1, 1e-5},
                               Config{Shape{1024, 64}, true, true, true, 0.1, 1e-5}}) {
    INFO(describe(config));
    const auto operands = Operands<float>::random(config, 5);
    minicnn::set_num_threads(1);
    const Results<float> one = run_ops(config, operands);
    minicnn::set_num_threads(2);
    const Results<float> two = run_ops(config, operands);
    minicnn::set_num_threads(previous);
    CHECK(same_bits(one.output, two.output));
    CHECK(same_bits(one.save_mean, two.save_mean));
    CHECK(same_bits(one.save_invstd, two.save_invstd));
    CHECK(same_bits(one.running_mean, two.running_mean));
    CHECK(same_bits(one.running_var, two.running_var));
    CHECK(same_bits(one.grad_input, two.grad_input));
    CHECK(same_bits(one.grad_weight, two.grad_weight));
    CHECK(same_bits(one.grad_bias, two.grad_bias));
  }
}

namespace {

// <forward(input, weight, bias), projection>, the scalar whose gradients backward computes.
double projected_output(const Config& config, const Operands<double>& o) {
  Tensor<double> output(config.shape), save_mean(Shape{config.shape[1]}), save_invstd(Shape{config.shape[1]});
  Tensor<double> running_mean = o.running_mean, running_var = o.running_var;  // the forward may update them
  minicnn::ops::batch_norm_forward(o.input, optional(o.weight), optional(o.bias), optional(running_mean),
                                   optional(running_var), config.batch_stats, config.momentum, config.eps, output,
                                   save_mean, save_invstd);
  double sum = 0;
  for (std::int64_t i = 0; i < output.size(); ++i) sum += output[i] * o.grad_output[i];
  return sum;
}

}  // namespace

TEST_CASE("batch_norm backward matches central finite differences in double", "[batchnorm][gradcheck]") {
  const double step = 1e-6, rel_tol = 1e-6, abs_tol = 1e-8;
  double worst = 0;
  for (const Config& config :
       {Config{Shape{3, 2, 2, 3}, true, true, true, 0.1, 1e-5}, Config{Shape{5, 3}, true, false, true, 0.1, 1e-5},
        Config{Shape{4, 2, 3}, false, false, true, 0.1, 1e-5},
        Config{Shape{3, 2, 2, 3}, true, true, false, 0.1, 1e-5}}) {
    INFO(describe(config));
    Operands<double> o = Operands<double>::random(config, 77);
    const Results<double> analytic = run_ops(config, o);
    auto check_tensor = [&](Tensor<double>& perturbed, const Tensor<double>& gradient, const char* name) {
      for (std::int64_t i = 0; i < perturbed.size(); ++i) {
        const double saved = perturbed[i];
        perturbed[i] = saved + step;
        const double plus = projected_output(config, o);
        perturbed[i] = saved - step;
        const double minus = projected_output(config, o);
        perturbed[i] = saved;
        const double numeric = (plus - minus) / (2 * step);
        const double difference = std::abs(gradient[i] - numeric);
        const double scale = std::max(std::abs(gradient[i]), std::abs(numeric));
        INFO(name << "[" << i << "]: analytic " << gradient[i] << ", numeric " << numeric);
        CHECK(difference <= abs_tol + rel_tol * scale);
        worst = std::max(worst, difference / std::max(scale, 1e-300));
      }
    };
    check_tensor(o.input, analytic.grad_input, "grad_input");
    if (config.affine) {
      check_tensor(o.weight, analytic.grad_weight, "grad_weight");
      check_tensor(o.bias, analytic.grad_bias, "grad_bias");
    }
  }
  WARN("worst relative difference against central differences: " << worst);
}

TEST_CASE("batch_norm refuses one value per channel in training, as PyTorch does", "[batchnorm]") {
  for (const Shape& shape : {Shape{1, 3}, Shape{1, 3, 1, 1}}) {
    Tensor<double> input(shape), output(shape), save_mean(Shape{3}), save_invstd(Shape{3});
    Tensor<double> running_mean(Shape{3}), running_var(Shape{3});
    running_var.fill(1.0);
    CHECK_THROWS_WITH(
        minicnn::ops::batch_norm_forward(input, static_cast<const Tensor<double>*>(nullptr),
                                         static_cast<const Tensor<double>*>(nullptr), &running_mean, &running_var, true,
                                         0.1, 1e-5, output, save_mean, save_invstd),
        Catch::Contains("Expected more than 1 value per channel when training") && Catch::Contains(shape.str()));
    // Without running statistics too (PyTorch checks whenever it normalises with the batch's).
    CHECK_THROWS_AS(minicnn::ops::batch_norm_forward(
                        input, static_cast<const Tensor<double>*>(nullptr), static_cast<const Tensor<double>*>(nullptr),
                        static_cast<Tensor<double>*>(nullptr), static_cast<Tensor<double>*>(nullptr), true, 0.1, 1e-5,
                        output, save_mean, save_invstd),
                    minicnn::error);
    // Evaluation normalises one value fine.
    input.fill(2.0);
    minicnn::ops::batch_norm_forward(input, static_cast<const Tensor<double>*>(nullptr),
                                     static_cast<const Tensor<double>*>(nullptr), &running_mean, &running_var, false,
                                     0.1, 0.0, output, save_mean, save_invstd);
    CHECK(output[0] == 2.0);
  }
}

TEST_CASE("batch_norm on an empty batch is a no-op", "[batchnorm]") {
  const Shape shape{0, 3, 4, 4};
  const Config config{shape, true, true, true, 0.1, 1e-5};
  const auto o = Operands<double>::random(config, 9);
  Tensor<double> output(shape), save_mean(Shape{3}), save_invstd(Shape{3});
  save_mean.fill(7.0);
  save_invstd.fill(7.0);
  Tensor<double> running_mean = o.running_mean, running_var = o.running_var;
  minicnn::ops::batch_norm_forward(o.input, &o.weight, &o.bias, &running_mean, &running_var, true, 0.1, 1e-5, output,
                                   save_mean, save_invstd);
  CHECK(output.shape() == shape);
  CHECK(same_bits(running_mean, o.running_mean));
  CHECK(same_bits(running_var, o.running_var));
  CHECK(save_mean[0] == 7.0);
  Tensor<double> grad_input(shape), grad_weight(Shape{3}), grad_bias(Shape{3});
  grad_weight.fill(1.0);
  minicnn::ops::batch_norm_backward(o.input, &o.weight, save_mean, save_invstd, o.grad_output, true, &grad_input,
                                    &grad_weight, &grad_bias);
  CHECK(grad_weight[0] == 1.0);
  CHECK(grad_bias[0] == 0.0);
}

TEST_CASE("batch_norm names the argument it cannot use", "[batchnorm]") {
  const Shape shape{2, 3, 2, 2};
  Tensor<double> input(shape), output(shape), save_mean(Shape{3}), save_invstd(Shape{3}), statistic(Shape{3});
  const Tensor<double>* none = nullptr;
  Tensor<double>* no_running = nullptr;
  const Tensor<double> wrong_weight(Shape{4});
  CHECK_THROWS_WITH(minicnn::ops::batch_norm_forward(input, &wrong_weight, none, no_running, no_running, true, 0.1,
                                                     1e-5, output, save_mean, save_invstd),
                    Catch::Contains("weight") && Catch::Contains("expected shape [3], found [4]"));
  CHECK_THROWS_WITH(minicnn::ops::batch_norm_forward(input, none, none, &statistic, no_running, true, 0.1, 1e-5, output,
                                                     save_mean, save_invstd),
                    Catch::Contains("running_var"));
  CHECK_THROWS_WITH(minicnn::ops::batch_norm_forward(input, none, none, no_running, no_running, false, 0.1, 1e-5,
                                                     output, save_mean, save_invstd),
                    Catch::Contains("needs running_mean and running_var"));
  Tensor<double> vector_input(Shape{6}), vector_output(Shape{6});
  CHECK_THROWS_WITH(minicnn::ops::batch_norm_forward(vector_input, none, none, no_running, no_running, true, 0.1, 1e-5,
                                                     vector_output, save_mean, save_invstd),
                    Catch::Contains("expected an input of shape [N, C]") && Catch::Contains("found [6]"));
  Tensor<double> short_output(Shape{2, 3, 2, 1});
  CHECK_THROWS_WITH(minicnn::ops::batch_norm_forward(input, none, none, no_running, no_running, true, 0.1, 1e-5,
                                                     short_output, save_mean, save_invstd),
                    Catch::Contains("output") && Catch::Contains("found [2, 3, 2, 1]"));
}

namespace {

// Case `prefix` of layer_batchnorm.bin through the ops in T; returns the worst relative
// difference over every checked tensor.
template <typename T>
double check_fixture_case(const Fixture& fixture, const std::string& prefix) {
  const std::vector<double> config = fixture.values(prefix + "config");
  const auto channels = static_cast<std::int64_t>(config[0]);
  const double eps = config[1], momentum = config[2];
  const bool affine = config[3] != 0, track_running_stats = config[4] != 0, training = config[5] != 0;
  const double tolerance = std::is_same<T, double>::value ? 1e-10 : 1e-5;
  INFO(fixture.path() << " " << prefix << " (" << scalar_name<T>() << ")");
  CHECK(fixture.has(prefix + "weight") == affine);
  CHECK(fixture.has(prefix + "running_mean") == track_running_stats);

  const Tensor<T> input = fixture.tensor<T>(prefix + "input");
  const Tensor<T> grad_output = fixture.tensor<T>(prefix + "grad_output");
  Tensor<T> weight, bias, running_mean, running_var;
  if (affine) weight = fixture.tensor<T>(prefix + "weight"), bias = fixture.tensor<T>(prefix + "bias");
  if (track_running_stats) {
    running_mean = fixture.tensor<T>(prefix + "running_mean_before");
    running_var = fixture.tensor<T>(prefix + "running_var_before");
  }
  const bool use_batch_stats = training || !track_running_stats;

  Tensor<T> output(input.shape()), save_mean(Shape{channels}), save_invstd(Shape{channels});
  minicnn::ops::batch_norm_forward(input, optional(weight), optional(bias), optional(running_mean),
                                   optional(running_var), use_batch_stats, momentum, eps, output, save_mean,
                                   save_invstd);
  Tensor<T> grad_input(input.shape()), grad_weight, grad_bias;
  if (affine) grad_weight.resize(Shape{channels}), grad_bias.resize(Shape{channels});
  minicnn::ops::batch_norm_backward(input, optional(weight), save_mean, save_invstd, grad_output, use_batch_stats,
                                    &grad_input, optional(grad_weight), optional(grad_bias));

  double worst = 0;
  auto check = [&](const Tensor<T>& found, const std::string& entry) {
    const Difference d = compare(found, fixture.tensor(prefix + entry), prefix + entry);
    INFO(prefix << entry << ": max abs difference " << d.max_abs << ", reference max " << d.reference_max
                << ", relative " << d.relative());
    CHECK(d.relative() <= tolerance);
    worst = std::max(worst, d.relative());
  };
  check(output, "output");
  check(grad_input, "grad_input");
  if (affine) check(grad_weight, "grad_weight"), check(grad_bias, "grad_bias");
  if (track_running_stats) check(running_mean, "running_mean"), check(running_var, "running_var");
  return worst;
}

}  // namespace

TEMPLATE_TEST_CASE("batch_norm ops match PyTorch's BatchNorm1d / BatchNorm2d", "[batchnorm][parity]", float, double) {
  const Fixture fixture = Fixture::load("layer_batchnorm.bin");
  const int cases = static_cast<int>(fixture.scalar("num_cases"));
  REQUIRE(cases >= 7);
  double worst = 0;
  for (int index = 0; index < cases; ++index)
    worst = std::max(worst, check_fixture_case<TestType>(fixture, "case" + std::to_string(index) + "."));
  WARN("worst relative difference against PyTorch (" << scalar_name<TestType>() << "): " << worst);
}
