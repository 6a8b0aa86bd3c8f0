#pragma once
// Learning-rate schedules as pure functions of the optimiser step: lr(step) depends on the step
// and the schedule's settings only, so a checkpoint needs nothing but the step count, and every
// invariant can be tested without a training loop. Call optimizer.set_lr(schedule.lr(step))
// before optimizer step number `step` (0-based). With several parameter groups of different
// learning rates, optimizer.set_lr_scale(schedule.lr(step) / peak) keeps their ratios instead
// (each group gets its initial_lr times that scale; `peak` is the schedule's peak_lr or max_lr).
//
// CosineAnnealingLR (cosine_annealing.hpp) stays the tutorial's per-epoch scheduler object;
// EpochCosineSchedule gives its learning rates as the same kind of pure function of the step, so
// a training loop can call one lr(step) whatever the schedule.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/optim/cosine_annealing.hpp"

namespace minicnn {

namespace detail {
// Cosine interpolation from `start` (fraction 0) to `end` (fraction 1), as PyTorch's
// OneCycleLR._annealing_cos.
inline double cosine_anneal(double start, double end, double fraction) {
  const double pi = 3.14159265358979323846;
  return end + (start - end) / 2.0 * (std::cos(pi * fraction) + 1.0);
}
}  // namespace detail

// Linear warm-up from `warmup_start_lr` to `peak_lr` over steps [0, warmup_steps], then a
// half cosine down to `final_lr` at step total_steps. Steps past total_steps stay at final_lr.
//   lr(0) = warmup_start_lr, lr(warmup_steps) = peak_lr, lr(total_steps) = final_lr.
struct WarmupCosineSchedule {
  double peak_lr = 1e-3;
  std::int64_t total_steps = 1;
  std::int64_t warmup_steps = 0;
  double final_lr = 0.0;
  double warmup_start_lr = 0.0;

  void validate() const {
    const std::string prefix = "WarmupCosineSchedule: ";
    if (total_steps < 1) throw error(prefix + "expected total_steps >= 1, got " + std::to_string(total_steps));
    if (warmup_steps < 0 || warmup_steps > total_steps)
      throw error(prefix + "expected 0 <= warmup_steps <= total_steps (" + std::to_string(total_steps) + "), got " +
                  std::to_string(warmup_steps));
    if (!(peak_lr >= 0.0 && final_lr >= 0.0 && warmup_start_lr >= 0.0 && std::isfinite(peak_lr) &&
          std::isfinite(final_lr) && std::isfinite(warmup_start_lr)))
      throw error(prefix + "expected finite learning rates >= 0");
  }

  double lr(std::int64_t step) const {
    if (step < 0) throw error("WarmupCosineSchedule::lr: expected step >= 0, got " + std::to_string(step));
    if (step < warmup_steps)
      return warmup_start_lr + (peak_lr - warmup_start_lr) * static_cast<double>(step) / static_cast<double>(warmup_steps);
    if (step >= total_steps) return final_lr;
    const std::int64_t decay_steps = total_steps - warmup_steps;  // >= 1 here
    return detail::cosine_anneal(peak_lr, final_lr,
                                 static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps));
  }
};

// The one-cycle policy exactly as torch.optim.lr_scheduler.OneCycleLR with anneal_strategy="cos",
// three_phase=False (learning rate only; its momentum cycling is not modelled):
//   initial_lr = max_lr / div_factor, min_lr = initial_lr / final_div_factor
//   phase 1, steps [0, pct_start * total_steps - 1]: cosine from initial_lr up to max_lr
//   phase 2, up to step total_steps - 1:             cosine from max_lr down to min_lr
// PyTorch's `step_num` is this function's `step`; like PyTorch, steps past total_steps are an error.
struct OneCycleSchedule {
  double max_lr = 1e-3;
  std::int64_t total_steps = 1;
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;

  double initial_lr() const { return max_lr / div_factor; }
  double min_lr() const { return initial_lr() / final_div_factor; }
  // The (fractional) step at which the learning rate peaks, as PyTorch computes it.
  double peak_step() const { return pct_start * static_cast<double>(total_steps) - 1.0; }

  void validate() const {
    const std::string prefix = "OneCycleSchedule: ";
    if (total_steps < 2) throw error(prefix + "expected total_steps >= 2, got " + std::to_string(total_steps));
    if (!(pct_start > 0.0 && pct_start < 1.0))
      throw error(prefix + "expected 0 < pct_start < 1, got " + std::to_string(pct_start));
    // Both phases must span at least one step, or PyTorch divides by zero.
    if (!(peak_step() > 0.0 && peak_step() < static_cast<double>(total_steps - 1)))
      throw error(prefix + "pct_start " + std::to_string(pct_start) + " leaves an empty phase for total_steps " +
                  std::to_string(total_steps));
    if (!(max_lr > 0.0 && std::isfinite(max_lr))) throw error(prefix + "expected a finite max_lr > 0, got " + std::to_string(max_lr));
    if (!(div_factor > 0.0 && final_div_factor > 0.0)) throw error(prefix + "expected div_factor > 0 and final_div_factor > 0");
  }

  double lr(std::int64_t step) const {
    if (step < 0 || step > total_steps)
      throw error("OneCycleSchedule::lr: step " + std::to_string(step) + " is outside [0, total_steps = " +
                  std::to_string(total_steps) + "]");
    const double position = static_cast<double>(step);
    const double first_end = peak_step(), second_end = static_cast<double>(total_steps - 1);
    if (position <= first_end) return detail::cosine_anneal(initial_lr(), max_lr, position / first_end);
    return detail::cosine_anneal(max_lr, min_lr(), (position - first_end) / (second_end - first_end));
  }
};

// The tutorial's CosineAnnealingLR(T_max) stepped once per epoch, as a function of the optimiser
// step: every step of epoch e = step / steps_per_epoch gets the learning rate CosineAnnealingLR
// holds after e calls of step(), bit for bit (PyTorch's recursive update, not the closed form,
// which differs in the last bits). The per-epoch values are computed once, for epochs [0, T_max].
class EpochCosineSchedule {
 public:
  EpochCosineSchedule(double base_lr, std::int64_t T_max, std::int64_t steps_per_epoch, double eta_min = 0.0)
      : steps_per_epoch_(steps_per_epoch) {
    if (T_max < 1) throw error("EpochCosineSchedule: expected T_max >= 1, got " + std::to_string(T_max));
    if (steps_per_epoch < 1)
      throw error("EpochCosineSchedule: expected steps_per_epoch >= 1, got " + std::to_string(steps_per_epoch));
    if (!(base_lr >= 0.0 && std::isfinite(base_lr)))
      throw error("EpochCosineSchedule: expected a finite base_lr >= 0, got " + std::to_string(base_lr));
    epoch_lrs_.push_back(base_lr);
    for (std::int64_t epoch = 1; epoch <= T_max; ++epoch)
      epoch_lrs_.push_back(CosineAnnealingLR::next_lr(epoch_lrs_.back(), epoch, base_lr, T_max, eta_min));
  }

  double lr(std::int64_t step) const {
    const std::int64_t epoch = step / steps_per_epoch_;
    if (step < 0 || epoch >= static_cast<std::int64_t>(epoch_lrs_.size()))
      throw error("EpochCosineSchedule::lr: step " + std::to_string(step) + " is outside the " +
                  std::to_string(epoch_lrs_.size() - 1) + " epochs of " + std::to_string(steps_per_epoch_) + " steps");
    return epoch_lrs_[static_cast<std::size_t>(epoch)];
  }

 private:
  std::int64_t steps_per_epoch_;
  std::vector<double> epoch_lrs_;  // epoch_lrs_[e]: the learning rate during epoch e
};

}  // namespace minicnn
