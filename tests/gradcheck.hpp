#pragma once
// One generic finite-difference gradient checker, run on every layer (tests/test_gradcheck.cpp).
//
// The scalar checked is the random projection f(x, params) = <layer(x), g> for a fixed random g,
// in double precision. Its analytic gradients come from backward(g); the numeric ones from
// central differences. Conventions checked on the way:
//   * grad_input is ASSIGNED: a backward with a NaN grad_output runs first, so any entry the
//     real backward leaves unwritten is NaN (or stale) and fails;
//   * parameter grads ACCUMULATE: they are pre-filled with a sentinel c and must come out as
//     c + analytic.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <minicnn/minicnn.hpp>

namespace gradcheck {

using minicnn::Module;
using minicnn::Tensor;

inline double projection(const Tensor<double>& y, const Tensor<double>& g) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < y.size(); ++i) sum += y[i] * g[i];
  return sum;
}

inline bool close(double analytic, double numeric, double rel_tol, double abs_tol) {
  return std::abs(analytic - numeric) <= abs_tol + rel_tol * std::max(std::abs(analytic), std::abs(numeric));
}

struct Options {
  double step = 1e-6;
  double rel_tol = 1e-6;
  double abs_tol = 1e-8;
  std::uint64_t seed = 7;
  std::int64_t max_entries = 400;            // entries checked per tensor (spread evenly)
  std::function<void()> before_forward = {};  // e.g. rewinds a dropout generator
};

// Checks d<layer(x), g>/dx and d<layer(x), g>/dparams at x. Returns the worst relative error.
inline double check_module(Module<double>& layer, Tensor<double>& x, const Options& options = {}) {
  auto forward = [&]() -> const Tensor<double>& {
    if (options.before_forward) options.before_forward();
    return layer.forward(x);
  };
  const minicnn::Shape out_shape = forward().shape();
  Tensor<double> g(out_shape);
  g.uniform(-1.0, 1.0, options.seed);

  // A NaN backward first: stale or unwritten grad_input entries would then be NaN.
  Tensor<double> nan_grad(out_shape);
  nan_grad.fill(std::numeric_limits<double>::quiet_NaN());
  forward();
  layer.backward(nan_grad);

  const double sentinel = 0.25;
  for (auto& named : layer.named_parameters()) named.parameter->grad.fill(sentinel);
  forward();
  const Tensor<double> grad_input = layer.backward(g);

  double worst = 0.0;
  auto check_tensor = [&](Tensor<double>& values, const std::function<double(std::int64_t)>& analytic,
                          const std::string& what) {
    const std::int64_t stride = std::max<std::int64_t>(1, values.size() / options.max_entries);
    for (std::int64_t i = 0; i < values.size(); i += stride) {
      const double saved = values[i];
      values[i] = saved + options.step;
      const double plus = projection(forward(), g);
      values[i] = saved - options.step;
      const double minus = projection(forward(), g);
      values[i] = saved;
      const double numeric = (plus - minus) / (2 * options.step);
      const double a = analytic(i);
      INFO(layer.repr() << ": d/d" << what << "[" << i << "] analytic " << a << " numeric " << numeric);
      REQUIRE(close(a, numeric, options.rel_tol, options.abs_tol));
      worst = std::max(worst, std::abs(a - numeric) / std::max(1e-12, std::abs(numeric)));
    }
  };

  if (layer.input_grad()) {
    REQUIRE(grad_input.shape() == x.shape());
    check_tensor(x, [&](std::int64_t i) { return grad_input[i]; }, "input");
  }
  for (auto& named : layer.named_parameters()) {
    const Tensor<double> accumulated = named.parameter->grad;
    check_tensor(named.parameter->value, [&](std::int64_t i) { return accumulated[i] - sentinel; }, named.name);
  }
  return worst;
}

// Inputs for layers with kinks: values on a grid spaced `spacing` apart, in random order, kept
// at least spacing/2 away from zero, so neither ReLU's kink nor a max-pool tie lies within the
// finite-difference step.
inline Tensor<double> kink_free_input(const minicnn::Shape& shape, std::uint64_t seed, double spacing = 1e-2) {
  Tensor<double> x(shape);
  minicnn::Generator gen(seed);
  const std::int64_t n = x.size();
  for (std::int64_t i = 0; i < n; ++i) x[i] = (static_cast<double>(i - n / 2) + 0.5) * spacing;
  for (std::int64_t i = n - 1; i > 0; --i) std::swap(x[i], x[static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(i + 1)))]);
  return x;
}

}  // namespace gradcheck
