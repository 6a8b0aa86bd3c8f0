// PyTorch parity of the optimisers and the cosine schedule:
//   optim_steps.bin        three raw Adam / AdamW / SGD steps on a float64 tensor
//   sched_cosine.bin       CosineAnnealingLR's learning rates for 25 steps, past T_max
//   train_fashion_cnn.bin  the first 10 losses of FashionCNN training (float32, eval mode)
//                          with Adam, AdamW and SGD + CosineAnnealingLR(T_max = 10)
//   optim_groups.bin       AdamW and SGD (Nesterov) steps with two parameter groups of
//                          different lr and weight decay; CosineAnnealingLR over two groups
// All written by tools/make_fixtures.py.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "minicnn/loss.hpp"
#include "minicnn/models/fashion_cnn.hpp"
#include "minicnn/optim/adam.hpp"
#include "minicnn/optim/cosine_annealing.hpp"
#include "minicnn/optim/param_groups.hpp"
#include "minicnn/optim/sgd.hpp"

using minicnn::Tensor;
using minicnn::testing::compare;
using minicnn::testing::Difference;
using minicnn::testing::Fixture;

namespace {

// Relative difference of two numbers, absolute below `floor` (an lr of exactly 0 at T_max).
double relative_difference(double found, double reference, double floor) {
  return std::abs(found - reference) / std::max(std::abs(reference), floor);
}

std::unique_ptr<minicnn::Optimizer> make_optimizer(const std::string& kind, const std::vector<double>& config,
                                                   std::vector<minicnn::Parameter<double>*> parameters) {
  if (kind == "adam") {
    REQUIRE(config.size() == 5);  // [lr, beta1, beta2, eps, weight_decay]
    return std::make_unique<minicnn::Adam<double>>(parameters, config[0], config[1], config[2], config[3], config[4]);
  }
  if (kind == "adamw") {
    REQUIRE(config.size() == 5);
    return std::make_unique<minicnn::AdamW<double>>(parameters, config[0], config[1], config[2], config[3], config[4]);
  }
  REQUIRE(kind == "sgd");
  REQUIRE(config.size() == 3);  // [lr, momentum, weight_decay]
  return std::make_unique<minicnn::SGD<double>>(parameters, config[0], config[1], /*dampening=*/0.0, config[2]);
}

}  // namespace

TEST_CASE("Adam, AdamW and SGD steps match PyTorch's update rules", "[parity][optim]") {
  const Fixture fixture = Fixture::load("optim_steps.bin");
  for (const std::string kind : {"adam", "adamw", "sgd"}) {
    INFO(kind);
    minicnn::Parameter<double> parameter("weight", fixture.shape("initial"));
    parameter.value = fixture.tensor("initial");
    auto optimizer = make_optimizer(kind, fixture.values(kind + ".config"), {&parameter});
    double worst = 0;
    for (int step = 0; step < 3; ++step) {
      INFO("step " << step);
      parameter.grad = fixture.tensor("grad" + std::to_string(step));
      optimizer->step();
      const Difference d = compare(parameter.value, fixture.tensor(kind + ".after" + std::to_string(step)), kind);
      INFO("max abs difference " << d.max_abs << ", relative " << d.relative());
      CHECK(d.relative() <= 1e-13);
      worst = std::max(worst, d.relative());
    }
    std::printf("[parity] %-5s 3 steps in double: max relative difference to PyTorch %.3g\n", kind.c_str(), worst);
  }
}

TEST_CASE("CosineAnnealingLR matches PyTorch, also past T_max", "[parity][optim][schedule]") {
  const Fixture fixture = Fixture::load("sched_cosine.bin");
  for (const std::string key : {"tmax10", "tmax7"}) {
    const std::vector<double> config = fixture.values(key + ".config");  // [base_lr, T_max, eta_min]
    REQUIRE(config.size() == 3);
    const double base_lr = config[0], eta_min = config[2];
    const auto t_max = static_cast<std::int64_t>(config[1]);
    const std::vector<double> reference = fixture.values(key + ".lrs");  // before any step, then after each
    REQUIRE(reference.size() == 26);
    INFO(key);

    std::vector<minicnn::Parameter<double>*> no_parameters;
    minicnn::SGD<double> optimizer(no_parameters, base_lr);
    minicnn::CosineAnnealingLR scheduler(optimizer, t_max, eta_min);
    // The stepped object follows PyTorch's recursive formula; the closed form lr_at() agrees
    // with it to rounding, over every period.
    double worst_stepped = 0, worst_closed_form = 0;
    for (std::size_t epoch = 0; epoch < reference.size(); ++epoch) {
      if (epoch > 0) scheduler.step();
      INFO("epoch " << epoch << ": PyTorch " << reference[epoch]);
      const double stepped = relative_difference(scheduler.get_last_lr(), reference[epoch], 1e-3 * base_lr);
      const double closed_form = relative_difference(
          minicnn::CosineAnnealingLR::lr_at(static_cast<std::int64_t>(epoch), base_lr, t_max, eta_min),
          reference[epoch], 1e-3 * base_lr);
      CHECK(stepped <= 1e-12);
      CHECK(closed_form <= 1e-12);
      CHECK(optimizer.lr() == scheduler.get_last_lr());
      worst_stepped = std::max(worst_stepped, stepped);
      worst_closed_form = std::max(worst_closed_form, closed_form);
    }
    std::printf("[parity] cosine %-6s 25 steps: max relative difference to PyTorch %.3g (stepped), %.3g (lr_at)\n",
                key.c_str(), worst_stepped, worst_closed_form);
  }
}

TEST_CASE("FashionCNN's first 10 training losses match PyTorch", "[parity][optim][model]") {
  const Fixture model_fixture = Fixture::load("model_fashion_cnn.bin");
  const Fixture train_fixture = Fixture::load("train_fashion_cnn.bin");
  const Tensor<float> input = model_fixture.tensor<float>("input");
  const std::vector<int> targets = model_fixture.integers("targets");

  for (const std::string kind : {"adam", "adamw", "sgd"}) {
    INFO(kind);
    // The same fixed weights as the model fixture (PyTorch's manual_seed(0) init).
    minicnn::models::FashionCNN<float> model(/*seed=*/1);
    for (auto& named : model.named_parameters()) {
      Tensor<float> value = model_fixture.tensor<float>(named.name);
      minicnn::check_same_shape(value.shape(), named.parameter->value.shape(), named.name);
      named.parameter->value = value;
    }
    model.eval();  // dropout off, as in the fixture

    std::unique_ptr<minicnn::Optimizer> optimizer;
    if (kind == "adam") optimizer = std::make_unique<minicnn::Adam<float>>(model.parameters(), 1e-3);
    if (kind == "adamw")
      optimizer = std::make_unique<minicnn::AdamW<float>>(model.parameters(), 1e-3, 0.9, 0.999, 1e-8, 1e-2);
    if (kind == "sgd") optimizer = std::make_unique<minicnn::SGD<float>>(model.parameters(), 0.01, 0.9);
    minicnn::CosineAnnealingLR scheduler(*optimizer, /*T_max=*/10);
    minicnn::CrossEntropyLoss<float> criterion;

    const std::vector<double> reference_losses = train_fixture.values(kind + ".losses");
    const std::vector<double> reference_lrs = train_fixture.values(kind + ".lrs");
    REQUIRE(reference_losses.size() == 10);
    REQUIRE(reference_lrs.size() == 10);
    double worst_loss = 0;
    for (std::size_t step = 0; step < reference_losses.size(); ++step) {
      INFO("step " << step);
      const double lr_difference = relative_difference(optimizer->lr(), reference_lrs[step], 1e-12);
      CHECK(lr_difference <= 1e-12);
      optimizer->zero_grad();
      const double loss = static_cast<double>(criterion.forward(model.forward(input), targets));
      model.backward(criterion.backward());
      optimizer->step();
      scheduler.step();
      const double loss_difference = relative_difference(loss, reference_losses[step], 1e-12);
      INFO("loss " << loss << ", PyTorch " << reference_losses[step]);
      // Measured ~1e-7; 1e-5 (tighter than the 1e-4 the issue asks for) still leaves a wide
      // margin for other SIMD paths, and tells Adam from AdamW (their losses part by ~5e-5).
      CHECK(loss_difference <= 1e-5);
      worst_loss = std::max(worst_loss, loss_difference);
    }
    std::printf("[parity] FashionCNN 10 steps %-5s + cosine: max relative loss difference to PyTorch %.3g\n",
                kind.c_str(), worst_loss);
  }
}

namespace {

// A group as the fixture describes it: lr / weight_decay only where the PyTorch group set them.
minicnn::ParameterGroup<double> fixture_group(const Fixture& fixture, const std::string& prefix,
                                              minicnn::Parameter<double>* parameter) {
  minicnn::ParameterGroup<double> group;
  group.parameters = {parameter};
  if (fixture.has(prefix + ".lr")) group.lr = fixture.scalar(prefix + ".lr");
  if (fixture.has(prefix + ".weight_decay")) group.weight_decay = fixture.scalar(prefix + ".weight_decay");
  return group;
}

}  // namespace

TEST_CASE("AdamW and SGD (Nesterov) with two parameter groups match PyTorch", "[parity][optim]") {
  const Fixture fixture = Fixture::load("optim_groups.bin");
  for (const std::string kind : {"adamw", "sgd"}) {
    INFO(kind);
    minicnn::Parameter<double> weight("weight", fixture.shape("weight.initial"));
    minicnn::Parameter<double> bias("bias", fixture.shape("bias.initial"));
    weight.value = fixture.tensor("weight.initial");
    bias.value = fixture.tensor("bias.initial");
    std::vector<minicnn::ParameterGroup<double>> groups = {fixture_group(fixture, kind + ".group0", &weight),
                                                           fixture_group(fixture, kind + ".group1", &bias)};
    const std::vector<double> config = fixture.values(kind + ".config");
    std::unique_ptr<minicnn::Optimizer> optimizer;
    if (kind == "adamw") {
      REQUIRE(config.size() == 5);  // [lr, beta1, beta2, eps, weight_decay]
      optimizer =
          std::make_unique<minicnn::AdamW<double>>(groups, config[0], config[1], config[2], config[3], config[4]);
    } else {
      REQUIRE(config.size() == 3);  // [lr, momentum, weight_decay], Nesterov
      optimizer = std::make_unique<minicnn::SGD<double>>(groups, config[0], config[1], /*dampening=*/0.0, config[2],
                                                         /*nesterov=*/true);
    }
    // The two groups really differ, so a mixed-up group would show.
    REQUIRE(optimizer->num_groups() == 2);
    CHECK(optimizer->lr(0) != optimizer->lr(1));
    CHECK(optimizer->weight_decay(0) != optimizer->weight_decay(1));
    double worst = 0;
    for (int step = 0; step < 3; ++step) {
      INFO("step " << step);
      weight.grad = fixture.tensor("weight.grad" + std::to_string(step));
      bias.grad = fixture.tensor("bias.grad" + std::to_string(step));
      optimizer->step();
      for (minicnn::Parameter<double>* parameter : {&weight, &bias}) {
        const std::string name = kind + "." + parameter->name + ".after" + std::to_string(step);
        const Difference d = compare(parameter->value, fixture.tensor(name), name);
        INFO(name << ": max abs difference " << d.max_abs << ", relative " << d.relative());
        CHECK(d.relative() <= 1e-13);
        worst = std::max(worst, d.relative());
      }
    }
    std::printf("[parity] %-5s 2 groups, 3 steps in double: max relative difference to PyTorch %.3g\n", kind.c_str(),
                worst);
  }
}

TEST_CASE("CosineAnnealingLR over two parameter groups matches PyTorch", "[parity][optim][schedule]") {
  const Fixture fixture = Fixture::load("optim_groups.bin");
  const std::vector<double> config = fixture.values("cosine.config");  // [default lr, T_max, eta_min]
  REQUIRE(config.size() == 3);
  const auto t_max = static_cast<std::int64_t>(config[1]);
  const double eta_min = config[2];
  const Tensor<double> reference = fixture.tensor("cosine.lrs");  // [26, 2]: before any step, then after each
  REQUIRE(reference.shape() == minicnn::Shape{26, 2});

  minicnn::Parameter<double> first("first", minicnn::Shape{1}), second("second", minicnn::Shape{1});
  std::vector<minicnn::ParameterGroup<double>> groups(2);
  groups[0].parameters = {&first};
  groups[1].parameters = {&second};
  groups[1].lr = fixture.scalar("cosine.group1.lr");
  minicnn::SGD<double> optimizer(groups, config[0]);
  minicnn::CosineAnnealingLR scheduler(optimizer, t_max, eta_min);
  REQUIRE(scheduler.base_lrs() == std::vector<double>{config[0], fixture.scalar("cosine.group1.lr")});
  double worst_stepped = 0, worst_closed_form = 0;
  for (std::int64_t epoch = 0; epoch < 26; ++epoch) {
    if (epoch > 0) scheduler.step();
    const std::vector<double> stepped = scheduler.get_last_lrs();
    const std::vector<double> closed_form = scheduler.lrs_at(epoch);
    REQUIRE(stepped.size() == 2);
    REQUIRE(closed_form.size() == 2);
    for (std::size_t group = 0; group < 2; ++group) {
      const double expected = reference(epoch, static_cast<std::int64_t>(group));
      INFO("epoch " << epoch << ", group " << group << ": PyTorch " << expected);
      const double floor = 1e-3 * scheduler.base_lrs()[group];
      const double stepped_difference = relative_difference(stepped[group], expected, floor);
      const double closed_form_difference = relative_difference(closed_form[group], expected, floor);
      CHECK(stepped_difference <= 1e-12);
      CHECK(closed_form_difference <= 1e-12);
      worst_stepped = std::max(worst_stepped, stepped_difference);
      worst_closed_form = std::max(worst_closed_form, closed_form_difference);
    }
  }
  std::printf("[parity] cosine 2 groups 25 steps: max relative difference to PyTorch %.3g (stepped), %.3g (lrs_at)\n",
              worst_stepped, worst_closed_form);
}
