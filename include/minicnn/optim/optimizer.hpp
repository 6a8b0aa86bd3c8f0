#pragma once
// The optimiser interface the schedulers drive. Concrete optimisers are templates on the
// scalar type; this base is not, so a scheduler works with any of them.
#include <string>

#include "minicnn/error.hpp"

namespace minicnn {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  virtual void zero_grad() = 0;

  double lr() const { return lr_; }
  void set_lr(double lr) {
    if (!(lr >= 0.0)) throw error("Optimizer::set_lr: expected a learning rate >= 0, got " + std::to_string(lr));
    lr_ = lr;
  }

 protected:
  explicit Optimizer(double lr) { set_lr(lr); }
  double lr_ = 0.0;
};

}  // namespace minicnn
