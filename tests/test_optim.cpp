#include <catch2/catch.hpp>
#include <minicnn/minicnn.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

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

TEST_CASE("Parameter groups: unset lr and weight_decay take the optimiser's defaults", "[optim][groups]") {
  auto a = scalar_parameter(2.0), b = scalar_parameter(2.0);
  std::vector<ParameterGroup<double>> groups(2);
  groups[0].parameters = {&a};
  groups[0].lr = 0.5;
  groups[1].parameters = {&b};
  groups[1].weight_decay = 0.0;
  SGD<double> sgd(groups, /*lr=*/0.1, 0.0, 0.0, /*weight_decay=*/0.25);
  REQUIRE(sgd.num_groups() == 2);
  CHECK(sgd.lr(0) == 0.5);
  CHECK(sgd.weight_decay(0) == 0.25);
  CHECK(sgd.lr(1) == 0.1);
  CHECK(sgd.weight_decay(1) == 0.0);
  CHECK(sgd.lr() == 0.5);  // group 0's
  a.grad[0] = b.grad[0] = 1.0;
  sgd.step();
  CHECK(a.value[0] == Approx(2.0 - 0.5 * (1.0 + 0.25 * 2.0)).epsilon(1e-15));
  CHECK(b.value[0] == Approx(2.0 - 0.1 * 1.0).epsilon(1e-15));
  // State follows the flat order: group 0's parameters first.
  CHECK(sgd.parameters() == std::vector<Parameter<double>*>{&a, &b});
  CHECK(sgd.group_begin(1) == 1);
  CHECK(sgd.group_end(1) == 2);
}

TEST_CASE("Parameter groups: set_lr sets every group, set_lr_scale keeps their ratios", "[optim][groups]") {
  auto a = scalar_parameter(1.0), b = scalar_parameter(1.0);
  std::vector<ParameterGroup<double>> groups(2);
  groups[0].parameters = {&a};
  groups[1].parameters = {&b};
  groups[1].lr = 4e-3;
  AdamW<double> adamw(groups, 1e-3);
  adamw.set_lr_scale(0.5);
  CHECK(adamw.lr(0) == 0.5e-3);
  CHECK(adamw.lr(1) == 2e-3);
  CHECK(adamw.initial_lr(1) == 4e-3);
  adamw.set_lr(1, 1e-2);
  CHECK(adamw.lr(1) == 1e-2);
  CHECK(adamw.lr(0) == 0.5e-3);
  adamw.set_lr(3e-4);
  CHECK(adamw.lr(0) == 3e-4);
  CHECK(adamw.lr(1) == 3e-4);
  CHECK_THROWS_WITH(adamw.lr(2), Catch::Contains("expected a parameter group index below 2, got 2"));
  CHECK_THROWS_AS(adamw.set_lr_scale(-1.0), error);
  CHECK_THROWS_AS(adamw.set_lr(0, std::nan("")), error);
}

TEST_CASE("Parameter groups: a group with one parameter of the other steps like an optimiser of its own",
          "[optim][groups]") {
  // Groups must not leak into each other: two groups in one Adam give what two Adams give.
  auto a = scalar_parameter(1.0), b = scalar_parameter(-3.0), a_alone = scalar_parameter(1.0),
       b_alone = scalar_parameter(-3.0);
  std::vector<ParameterGroup<double>> groups(2);
  groups[0].parameters = {&a};
  groups[0].weight_decay = 0.3;
  groups[1].parameters = {&b};
  groups[1].lr = 0.02;
  Adam<double> together(groups, 0.1);
  Adam<double> first({&a_alone}, 0.1, 0.9, 0.999, 1e-8, 0.3), second({&b_alone}, 0.02);
  for (int step = 0; step < 4; ++step) {
    a.grad[0] = a_alone.grad[0] = 0.5 - step;
    b.grad[0] = b_alone.grad[0] = 1.0 + step;
    together.step();
    first.step();
    second.step();
    CHECK(a.value[0] == a_alone.value[0]);
    CHECK(b.value[0] == b_alone.value[0]);
  }
}

TEST_CASE("Parameter groups: refused when empty, null, or a parameter is in two groups", "[optim][groups]") {
  auto a = scalar_parameter(1.0), b = scalar_parameter(1.0);
  CHECK_THROWS_WITH(Adam<double>(std::vector<ParameterGroup<double>>{}),
                    Catch::Contains("at least one parameter group"));
  std::vector<ParameterGroup<double>> groups(2);
  groups[0].parameters = {&a};
  groups[1].parameters = {&b, &a};
  CHECK_THROWS_WITH(SGD<double>(groups, 0.1), Catch::Contains("parameter group 1: parameter 'w' is already"));
  groups[1].parameters = {nullptr};
  CHECK_THROWS_WITH(AdamW<double>(groups), Catch::Contains("AdamW, parameter group 1: a parameter pointer is null"));
  groups[1].parameters = {&b};
  groups[1].weight_decay = -1.0;
  CHECK_THROWS_WITH(Adam<double>(groups), Catch::Contains("parameter group 1: expected weight_decay >= 0"));
  groups[1].weight_decay.reset();
  groups[1].lr = -1.0;
  CHECK_THROWS_WITH(SGD<double>(groups, 0.1), Catch::Contains("parameter group 1: expected a learning rate >= 0"));
  // An empty group is allowed: a model without biases still splits into two groups.
  groups[1].parameters.clear();
  groups[1].lr.reset();
  SGD<double> with_empty_group(groups, 0.1);
  CHECK(with_empty_group.num_groups() == 2);
}

TEST_CASE("split_weight_decay keeps weight decay off biases and other rank-1 parameters", "[optim][groups]") {
  // Any list of {name, parameter} works, in the order given; here one as a model would list it.
  Parameter<double> conv_weight("conv.weight", Shape{2, 1, 3, 3}), conv_bias("conv.bias", Shape{2}),
      norm_weight("norm.weight", Shape{2}), linear_weight("fc.weight", Shape{3, 8}), linear_bias("fc.bias", Shape{3});
  struct Named {
    std::string name;
    Parameter<double>* parameter;
  };
  const std::vector<Named> named = {{"conv.weight", &conv_weight},
                                    {"conv.bias", &conv_bias},
                                    {"norm.weight", &norm_weight},
                                    {"fc.weight", &linear_weight},
                                    {"fc.bias", &linear_bias}};
  const auto groups = split_weight_decay(named, 0.05);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].parameters == std::vector<Parameter<double>*>{&conv_weight, &linear_weight});
  CHECK(groups[1].parameters == std::vector<Parameter<double>*>{&conv_bias, &norm_weight, &linear_bias});
  CHECK(groups[0].weight_decay == 0.05);
  CHECK(groups[1].weight_decay == 0.0);
  CHECK_FALSE(groups[0].lr.has_value());
  CHECK_FALSE(groups[1].lr.has_value());
  CHECK_THROWS_AS(split_weight_decay(named, -1.0), error);
}

TEST_CASE("split_weight_decay on a layer's named_parameters(), driving AdamW", "[optim][groups]") {
  Conv2d<double> conv(1, 2, 3);
  const auto groups = split_weight_decay(conv.named_parameters(), 0.05);
  REQUIRE(groups[0].parameters.size() == 1);
  REQUIRE(groups[1].parameters.size() == 1);
  Parameter<double>& weight = *groups[0].parameters[0];
  Parameter<double>& bias = *groups[1].parameters[0];
  CHECK(weight.value.rank() == 4);
  CHECK(bias.value.rank() == 1);
  // With zero gradients only the decoupled decay moves anything: the weight shrinks, the bias stays.
  AdamW<double> optimizer(groups, 0.1);
  optimizer.zero_grad();
  const double weight_before = weight.value[0], bias_before = bias.value[0];
  optimizer.step();
  CHECK(weight.value[0] == Approx(weight_before * (1.0 - 0.1 * 0.05)).epsilon(1e-15));
  CHECK(bias.value[0] == bias_before);
}

TEST_CASE("Cosine annealing over groups: each group from its own initial lr", "[optim][scheduler][groups]") {
  auto a = scalar_parameter(0.0), b = scalar_parameter(0.0);
  std::vector<ParameterGroup<double>> groups(2);
  groups[0].parameters = {&a};
  groups[1].parameters = {&b};
  groups[1].lr = 1e-2;
  SGD<double> optimizer(groups, 1e-3);
  CosineAnnealingLR scheduler(optimizer, 5, 1e-5);
  for (int epoch = 1; epoch <= 10; ++epoch) {
    scheduler.step();
    INFO("epoch " << epoch);
    CHECK(optimizer.lr(0) == Approx(CosineAnnealingLR::lr_at(epoch, 1e-3, 5, 1e-5)).epsilon(1e-12));
    CHECK(optimizer.lr(1) == Approx(CosineAnnealingLR::lr_at(epoch, 1e-2, 5, 1e-5)).epsilon(1e-12));
    CHECK(scheduler.get_last_lr() == optimizer.lr(0));
  }
}

namespace {

// A gradient value with a varied exponent and sign: sums of such values round differently in
// every order, so a change of order or grouping shows in the bits.
float varied_gradient(std::uint64_t micro_batch, std::uint64_t element) {
  const double unit = random_unit(12345, micro_batch * 1000003 + element);
  const double scale = 1.0 + 1000.0 * random_unit(777, micro_batch * 1000003 + element);
  return static_cast<float>((unit - 0.5) * scale);
}

}  // namespace

TEST_CASE("GradientAccumulator: the in-order sum of fl(n_m / N) g_m, bit for bit; one micro-batch changes nothing",
          "[optim][accumulate]") {
  Parameter<float> a("a", Shape{3, 5}), b("b", Shape{1}), c("c", Shape{0}), d("d", Shape{301});
  const std::vector<Parameter<float>*> parameters{&a, &b, &c, &d};
  // Unequal image counts and an empty micro-batch: a last, partial step.
  const std::vector<std::int64_t> images{3, 3, 2, 0};
  const std::int64_t step_images = 8;
  GradientAccumulator<float> accumulator(parameters, 4);
  for (std::int64_t m = 0; m < 4; ++m) {
    std::uint64_t element = 0;
    for (Parameter<float>* parameter : parameters)
      for (float& value : parameter->grad) value = varied_gradient(static_cast<std::uint64_t>(m), element++);
    accumulator.keep(m, images[static_cast<std::size_t>(m)], step_images);
  }
  accumulator.average();
  // The reference: every scaled gradient stored, then added left to right.
  std::uint64_t element = 0;
  for (Parameter<float>* parameter : parameters)
    for (const float found : parameter->grad) {
      // volatile: each product rounded and stored on its own, never fused into the additions.
      volatile float scaled[4];
      for (std::size_t m = 0; m < 4; ++m) {
        const auto weight = static_cast<float>(static_cast<double>(images[m]) / static_cast<double>(step_images));
        scaled[m] = images[m] == 0 ? 0.0f : varied_gradient(m, element) * weight;
      }
      float expected = scaled[0];
      for (std::size_t m = 1; m < 4; ++m) expected = expected + scaled[m];
      INFO(parameter->name << " element " << element);
      CHECK(std::memcmp(&expected, &found, sizeof(float)) == 0);
      ++element;
    }

  // One micro-batch of the whole step: weight 1, the gradient's bits unchanged.
  GradientAccumulator<float> whole(parameters, 1);
  const Tensor<float> before = d.grad;
  whole.keep(0, 64, 64);
  whole.average();
  CHECK(std::memcmp(before.data(), d.grad.data(), sizeof(float) * 301) == 0);

  // Out of order, or averaged before every micro-batch was kept: an error that says so.
  CHECK_THROWS_WITH(accumulator.keep(1, 1, 8), Catch::Contains("micro-batch 1, expected 0"));
  accumulator.keep(0, 1, 8);
  CHECK_THROWS_WITH(accumulator.average(), Catch::Contains("1 of 4 micro-batches were kept"));
  CHECK_THROWS_WITH(GradientAccumulator<float>(parameters, 0), Catch::Contains("micro_batches must be >= 1"));
}
