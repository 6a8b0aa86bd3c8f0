#include <catch2/catch.hpp>
#include <minicnn/minicnn.hpp>

#include <cmath>

using namespace minicnn;

namespace {

Parameter<double> scalar_parameter(double value) {
  Parameter<double> p("w", Shape{1});
  p.value[0] = value;
  return p;
}

}  // namespace

TEST_CASE("Adam's first steps, computed by hand", "[optim]") {
  auto p = scalar_parameter(1.0);
  Adam<double> opt({&p}, 0.1, 0.9, 0.999, 1e-8);
  // Step 1 with g = 0.5: m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25;
  // p = 1 - 0.1 * 0.5 / (0.5 + 1e-8).
  p.grad[0] = 0.5;
  opt.step();
  CHECK(p.value[0] == Approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-14));
  // Step 2 with g = -1: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975.
  const double m = 0.9 * 0.05 + 0.1 * -1.0, v = 0.999 * 0.00025 + 0.001 * 1.0;
  const double expected = p.value[0] - 0.1 / (1 - 0.81) * m / (std::sqrt(v) / std::sqrt(1 - 0.999 * 0.999) + 1e-8);
  p.grad[0] = -1.0;
  opt.step();
  CHECK(p.value[0] == Approx(expected).epsilon(1e-14));
  CHECK(opt.step_count() == 2);
}

TEST_CASE("Adam's L2 weight decay adds to the gradient; AdamW's decays the weight", "[optim]") {
  auto a = scalar_parameter(2.0), b = scalar_parameter(2.0);
  Adam<double> adam({&a}, 0.1, 0.9, 0.999, 1e-8, 0.5);
  AdamW<double> adamw({&b}, 0.1, 0.9, 0.999, 1e-8, 0.5);
  a.grad[0] = 0.0;
  b.grad[0] = 0.0;
  adam.step();
  adamw.step();
  // Adam: g = 0 + 0.5 * 2 = 1 -> p = 2 - 0.1 * 1 / (1 + 1e-8).
  CHECK(a.value[0] == Approx(2.0 - 0.1 / (1.0 + 1e-8)).epsilon(1e-14));
  // AdamW: p = 2 * (1 - 0.1 * 0.5) = 1.9, and a zero gradient moves it no further.
  CHECK(b.value[0] == Approx(1.9).epsilon(1e-14));
}

TEST_CASE("SGD with momentum and Nesterov, by hand", "[optim]") {
  auto p = scalar_parameter(1.0), q = scalar_parameter(1.0);
  SGD<double> sgd({&p}, 0.1, 0.9);
  SGD<double> nesterov({&q}, 0.1, 0.9, 0.0, 0.0, true);
  p.grad[0] = q.grad[0] = 1.0;
  sgd.step();
  nesterov.step();
  CHECK(p.value[0] == Approx(0.9));          // b = 1
  CHECK(q.value[0] == Approx(1.0 - 0.19));   // g + 0.9 b = 1.9
  sgd.step();
  CHECK(p.value[0] == Approx(0.9 - 0.1 * 1.9));  // b = 0.9 + 1
  CHECK_THROWS_AS(SGD<double>({&p}, 0.1, 0.0, 0.0, 0.0, true), error);
}

TEST_CASE("zero_grad clears every gradient; optimisers reject bad hyper-parameters", "[optim]") {
  auto p = scalar_parameter(1.0);
  p.grad[0] = 3.0;
  Adam<double> opt({&p});
  opt.zero_grad();
  CHECK(p.grad[0] == 0.0);
  CHECK_THROWS_AS(Adam<double>({&p}, -1.0), error);
  CHECK_THROWS_AS(Adam<double>({&p}, 1e-3, 1.0), error);
  CHECK_THROWS_AS(opt.set_lr(std::nan("")), error);
}

TEST_CASE("Cosine annealing: the closed form's invariants", "[optim][scheduler]") {
  const double base = 1e-3, eta_min = 1e-5;
  const int T_max = 10;
  CHECK(CosineAnnealingLR::lr_at(0, base, T_max, eta_min) == Approx(base));
  CHECK(CosineAnnealingLR::lr_at(T_max, base, T_max, eta_min) == Approx(eta_min));
  CHECK(CosineAnnealingLR::lr_at(T_max / 2, base, T_max, eta_min) == Approx((base + eta_min) / 2));
  for (int e = 0; e < T_max; ++e) {
    CHECK(CosineAnnealingLR::lr_at(e + 1, base, T_max, eta_min) < CosineAnnealingLR::lr_at(e, base, T_max, eta_min));
    // Symmetric about T_max / 2.
    CHECK(CosineAnnealingLR::lr_at(e, base, T_max, eta_min) - eta_min ==
          Approx(base - CosineAnnealingLR::lr_at(T_max - e, base, T_max, eta_min)));
  }
}

TEST_CASE("Cosine annealing: stepping follows the closed form within rounding, and rises past T_max", "[optim][scheduler]") {
  auto p = scalar_parameter(0.0);
  Adam<double> opt({&p}, 1e-3);
  CosineAnnealingLR sched(opt, 7, 1e-5);
  double previous = opt.lr();
  for (int epoch = 1; epoch <= 14; ++epoch) {
    sched.step();
    INFO("epoch " << epoch);
    CHECK(opt.lr() == Approx(CosineAnnealingLR::lr_at(epoch, 1e-3, 7, 1e-5)).epsilon(1e-12));
    if (epoch <= 7) CHECK(opt.lr() < previous);
    else CHECK(opt.lr() > previous);
    previous = opt.lr();
  }
  CHECK(sched.last_epoch() == 14);
  CHECK_THROWS_AS(CosineAnnealingLR(opt, 0), error);
}
