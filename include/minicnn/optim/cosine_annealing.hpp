#pragma once
// CosineAnnealingLR, as torch.optim.lr_scheduler.CosineAnnealingLR.
//
// lr_at() is the closed form, a pure function of the epoch:
//   eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2
// step() reproduces PyTorch's recursive update bit for bit (PyTorch steps from the previous lr,
// which differs from the closed form in the last bits, and past T_max it goes back up).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/optim/optimizer.hpp"

namespace minicnn {

class CosineAnnealingLR {
 public:
  // Anneals every parameter group from its initial_lr (PyTorch's base_lrs) to eta_min.
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min = 0.0)
      : optimizer_(&optimizer), T_max_(T_max), eta_min_(eta_min) {
    if (T_max < 1) throw error("CosineAnnealingLR: expected T_max >= 1, got " + std::to_string(T_max));
    for (std::size_t group = 0; group < optimizer.num_groups(); ++group)
      base_lrs_.push_back(optimizer.initial_lr(group));
  }

  static double lr_at(std::int64_t epoch, double base_lr, std::int64_t T_max, double eta_min = 0.0) {
    const double pi = 3.14159265358979323846;
    return eta_min +
           (base_lr - eta_min) * (1.0 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(T_max))) / 2.0;
  }
  // The closed form for every group: lr_at(epoch, base_lrs()[g], T_max, eta_min).
  std::vector<double> lrs_at(std::int64_t epoch) const {
    std::vector<double> lrs;
    for (double base_lr : base_lrs_) lrs.push_back(lr_at(epoch, base_lr, T_max_, eta_min_));
    return lrs;
  }

  // PyTorch's recursive update: the learning rate of epoch `epoch` (>= 1) from that of epoch
  // epoch - 1. A pure function, so per-step code (EpochCosineSchedule) gets the same bits as step().
  static double next_lr(double previous_lr, std::int64_t epoch, double base_lr, std::int64_t T_max, double eta_min) {
    const double pi = 3.14159265358979323846;
    const std::int64_t period = 2 * T_max;
    const std::int64_t phase = ((epoch - 1 - T_max) % period + period) % period;
    if (phase == 0) return previous_lr + (base_lr - eta_min) * (1.0 - std::cos(pi / static_cast<double>(T_max))) / 2.0;
    return (1.0 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(T_max))) /
               (1.0 + std::cos(pi * static_cast<double>(epoch - 1) / static_cast<double>(T_max))) *
               (previous_lr - eta_min) +
           eta_min;
  }

  // Advances one epoch and sets every group's learning rate, each from its own previous lr and
  // base lr, as PyTorch's get_lr() does per group.
  void step() {
    ++last_epoch_;
    for (std::size_t group = 0; group < base_lrs_.size(); ++group)
      optimizer_->set_lr(group, next_lr(optimizer_->lr(group), last_epoch_, base_lrs_[group], T_max_, eta_min_));
  }

  // Group 0's learning rate (PyTorch's get_last_lr()[0]); get_last_lrs() has every group's.
  double get_last_lr() const { return optimizer_->lr(); }
  std::vector<double> get_last_lrs() const {
    std::vector<double> lrs;
    for (std::size_t group = 0; group < base_lrs_.size(); ++group) lrs.push_back(optimizer_->lr(group));
    return lrs;
  }
  std::int64_t last_epoch() const { return last_epoch_; }
  double base_lr() const { return base_lrs_.at(0); }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // For resuming: the epoch count; the optimiser's lr is restored with the optimiser.
  void set_last_epoch(std::int64_t epoch) { last_epoch_ = epoch; }

 private:
  Optimizer* optimizer_;
  std::vector<double> base_lrs_;
  std::int64_t T_max_;
  double eta_min_;
  std::int64_t last_epoch_ = 0;
};

}  // namespace minicnn
