// Per-step learning-rate schedules: invariants (endpoints, monotonic phases, continuity) and
// parity with PyTorch's OneCycleLR; the per-epoch cosine as a function of the step.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>

#include "minicnn/optim/adam.hpp"
#include "minicnn/optim/schedules.hpp"

using minicnn::OneCycleSchedule;
using minicnn::WarmupCosineSchedule;

TEST_CASE("WarmupCosineSchedule: endpoints, monotonic phases, no jumps", "[schedules]") {
  WarmupCosineSchedule schedule;
  schedule.peak_lr = 3e-3;
  schedule.total_steps = 1000;
  schedule.warmup_steps = 150;
  schedule.final_lr = 1e-5;
  schedule.warmup_start_lr = 1e-4;
  schedule.validate();

  CHECK(schedule.lr(0) == Approx(1e-4));
  CHECK(schedule.lr(150) == Approx(3e-3));
  CHECK(schedule.lr(1000) == Approx(1e-5));
  CHECK(schedule.lr(5000) == Approx(1e-5));
  // Half-way through the decay the cosine is at the mean of peak and final.
  CHECK(schedule.lr(150 + 425) == Approx((3e-3 + 1e-5) / 2));
  // Linear warm-up: equal increments.
  CHECK(schedule.lr(75) == Approx((1e-4 + 3e-3) / 2));

  const double largest_step = (3e-3 - 1e-4) / 150 * 1.0001;
  for (std::int64_t step = 1; step <= 1000; ++step) {
    INFO("step " << step);
    const double previous = schedule.lr(step - 1), current = schedule.lr(step);
    if (step <= 150) CHECK(current > previous);
    else CHECK(current < previous);
    CHECK(std::abs(current - previous) <= largest_step);
  }
}

TEST_CASE("WarmupCosineSchedule without warm-up is a cosine from the peak", "[schedules]") {
  WarmupCosineSchedule schedule;
  schedule.peak_lr = 1.0;
  schedule.total_steps = 4;
  schedule.validate();
  CHECK(schedule.lr(0) == Approx(1.0));
  CHECK(schedule.lr(1) == Approx((1 + std::cos(3.14159265358979323846 / 4)) / 2));
  CHECK(schedule.lr(2) == Approx(0.5));
  CHECK(schedule.lr(4) == Approx(0.0).margin(1e-15));
}

TEST_CASE("OneCycleSchedule matches torch.optim.lr_scheduler.OneCycleLR", "[schedules][parity]") {
  // Reference: PyTorch 1.13.1, OneCycleLR(optimizer, max_lr=3e-3, total_steps=100, pct_start=0.15),
  // defaults otherwise (div_factor 25, final_div_factor 1e4, cos); the lr read from
  // param_groups[0] after `step` calls of scheduler.step().
  const struct {
    std::int64_t step;
    double lr;
  } reference[] = {{0, 0.00011999999999999988}, {1, 0.000156103806458174},  {7, 0.00156},
                   {13, 0.002963896193541826},  {14, 0.003},                 {15, 0.0029989755943121738},
                   {50, 0.0018569073649527578}, {98, 1.036405687826499e-06}, {99, 1.2e-08}};
  OneCycleSchedule schedule;
  schedule.max_lr = 3e-3;
  schedule.total_steps = 100;
  schedule.pct_start = 0.15;
  schedule.validate();
  for (const auto& point : reference) {
    INFO("step " << point.step);
    CHECK(schedule.lr(point.step) == Approx(point.lr).epsilon(1e-12));
  }
}

TEST_CASE("OneCycleSchedule: rises to max_lr, then falls to min_lr", "[schedules]") {
  OneCycleSchedule schedule;
  schedule.max_lr = 3e-3;
  schedule.total_steps = 28140;  // 30 epochs of 938 batches
  schedule.pct_start = 0.15;
  schedule.validate();
  const auto peak = static_cast<std::int64_t>(schedule.peak_step());
  CHECK(schedule.lr(0) == Approx(3e-3 / 25));
  CHECK(schedule.lr(schedule.total_steps - 1) == Approx(3e-3 / 25 / 1e4));
  double highest = 0;
  for (std::int64_t step = 1; step < schedule.total_steps; ++step) {
    const double previous = schedule.lr(step - 1), current = schedule.lr(step);
    if (step <= peak) REQUIRE(current > previous);
    if (step > peak + 1) REQUIRE(current < previous);
    highest = std::max(highest, current);
  }
  CHECK(highest == Approx(3e-3).epsilon(1e-6));
}

TEST_CASE("Schedules reject bad settings and steps", "[schedules]") {
  OneCycleSchedule one_cycle;
  one_cycle.total_steps = 100;
  one_cycle.pct_start = 0.0;
  CHECK_THROWS_AS(one_cycle.validate(), minicnn::error);
  one_cycle.pct_start = 0.005;  // the warm-up phase would end before step 0
  CHECK_THROWS_WITH(one_cycle.validate(), Catch::Contains("empty phase"));
  one_cycle.pct_start = 0.3;
  one_cycle.validate();
  CHECK_THROWS_WITH(one_cycle.lr(101), Catch::Contains("outside [0, total_steps = 100]"));
  CHECK_THROWS_AS(one_cycle.lr(-1), minicnn::error);

  WarmupCosineSchedule warmup_cosine;
  warmup_cosine.total_steps = 10;
  warmup_cosine.warmup_steps = 11;
  CHECK_THROWS_WITH(warmup_cosine.validate(), Catch::Contains("warmup_steps"));
  warmup_cosine.warmup_steps = 2;
  warmup_cosine.peak_lr = -1;
  CHECK_THROWS_AS(warmup_cosine.validate(), minicnn::error);
}

TEST_CASE("EpochCosineSchedule: every step of an epoch gets CosineAnnealingLR's lr, bit for bit", "[schedules]") {
  const double base_lr = 1e-3;
  const std::int64_t epochs = 7, steps_per_epoch = 3;
  const minicnn::EpochCosineSchedule schedule(base_lr, epochs, steps_per_epoch, 1e-5);
  minicnn::Parameter<float> weight("weight", minicnn::Shape{4});
  minicnn::Adam<float> optimizer({&weight}, base_lr);
  minicnn::CosineAnnealingLR scheduler(optimizer, epochs, 1e-5);
  for (std::int64_t epoch = 0; epoch <= epochs; ++epoch) {
    INFO("epoch " << epoch);
    for (std::int64_t step = epoch * steps_per_epoch; step < (epoch + 1) * steps_per_epoch; ++step)
      CHECK(schedule.lr(step) == optimizer.lr());  // exactly: the same recursion, not the closed form
    scheduler.step();
  }
  CHECK_THROWS_WITH(schedule.lr((epochs + 1) * steps_per_epoch), Catch::Contains("outside"));
  CHECK_THROWS_AS(minicnn::EpochCosineSchedule(base_lr, 0, 3), minicnn::error);
}
