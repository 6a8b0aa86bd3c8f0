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

  // Advances one epoch and sets every group's learning rate, each from its own previous lr and
  // base lr, as PyTorch's get_lr() does per group.
  void step() {
    const double pi = 3.14159265358979323846;
    ++last_epoch_;
    const std::int64_t period = 2 * T_max_;
    const std::int64_t phase = ((last_epoch_ - 1 - T_max_) % period + period) % period;
    for (std::size_t group = 0; group < base_lrs_.size(); ++group) {
      const double lr = optimizer_->lr(group);
      double next;
      if (phase == 0)
        next = lr + (base_lrs_[group] - eta_min_) * (1.0 - std::cos(pi / static_cast<double>(T_max_))) / 2.0;
      else
        next = (1.0 + std::cos(pi * static_cast<double>(last_epoch_) / static_cast<double>(T_max_))) /
                   (1.0 + std::cos(pi * static_cast<double>(last_epoch_ - 1) / static_cast<double>(T_max_))) *
                   (lr - eta_min_) +
               eta_min_;
      optimizer_->set_lr(group, next);
    }
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
