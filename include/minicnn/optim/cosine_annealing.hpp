#pragma once
// CosineAnnealingLR, as torch.optim.lr_scheduler.CosineAnnealingLR.
//
// lr_at() is the closed form, a pure function of the epoch:
//   eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2
// step() reproduces PyTorch's recursive update bit for bit (PyTorch steps from the previous lr,
// which differs from the closed form in the last bits, and past T_max it goes back up).
#include <cmath>
#include <cstdint>
#include <string>

#include "minicnn/optim/optimizer.hpp"

namespace minicnn {

class CosineAnnealingLR {
 public:
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min = 0.0)
      : optimizer_(&optimizer), base_lr_(optimizer.lr()), T_max_(T_max), eta_min_(eta_min) {
    if (T_max < 1) throw error("CosineAnnealingLR: expected T_max >= 1, got " + std::to_string(T_max));
  }

  static double lr_at(std::int64_t epoch, double base_lr, std::int64_t T_max, double eta_min = 0.0) {
    const double pi = 3.14159265358979323846;
    return eta_min + (base_lr - eta_min) * (1.0 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(T_max))) / 2.0;
  }

  // Advances one epoch and sets the optimiser's learning rate.
  void step() {
    const double pi = 3.14159265358979323846;
    const double lr = optimizer_->lr();
    ++last_epoch_;
    const std::int64_t period = 2 * T_max_;
    const std::int64_t phase = ((last_epoch_ - 1 - T_max_) % period + period) % period;
    double next;
    if (phase == 0)
      next = lr + (base_lr_ - eta_min_) * (1.0 - std::cos(pi / static_cast<double>(T_max_))) / 2.0;
    else
      next = (1.0 + std::cos(pi * static_cast<double>(last_epoch_) / static_cast<double>(T_max_))) /
                 (1.0 + std::cos(pi * static_cast<double>(last_epoch_ - 1) / static_cast<double>(T_max_))) *
                 (lr - eta_min_) +
             eta_min_;
    optimizer_->set_lr(next);
  }

  double get_last_lr() const { return optimizer_->lr(); }
  std::int64_t last_epoch() const { return last_epoch_; }
  double base_lr() const { return base_lr_; }
  // For resuming: the epoch count; the optimiser's lr is restored with the optimiser.
  void set_last_epoch(std::int64_t epoch) { last_epoch_ = epoch; }

 private:
  Optimizer* optimizer_;
  double base_lr_;
  std::int64_t T_max_;
  double eta_min_;
  std::int64_t last_epoch_ = 0;
};

}  // namespace minicnn
