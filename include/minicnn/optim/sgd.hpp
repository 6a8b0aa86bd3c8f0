#pragma once
// SGD with momentum, dampening, weight decay and Nesterov, as torch.optim.SGD:
//   g += weight_decay * p;  b = g (first step) or momentum b + (1 - dampening) g
//   g = nesterov ? g + momentum b : b;  p -= lr g
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"
#include "minicnn/optim/optimizer.hpp"

namespace minicnn {

template <typename T = float>
class SGD : public Optimizer {
 public:
  SGD(std::vector<Parameter<T>*> parameters, double lr, double momentum = 0.0, double dampening = 0.0,
      double weight_decay = 0.0, bool nesterov = false)
      : Optimizer(lr), parameters_(std::move(parameters)), momentum_(momentum), dampening_(dampening),
        weight_decay_(weight_decay), nesterov_(nesterov) {
    if (!(momentum >= 0.0)) throw error("SGD: expected momentum >= 0, got " + std::to_string(momentum));
    if (!(weight_decay >= 0.0)) throw error("SGD: expected weight_decay >= 0, got " + std::to_string(weight_decay));
    if (nesterov && (momentum <= 0.0 || dampening != 0.0))
      throw error("SGD: Nesterov momentum needs momentum > 0 and dampening = 0");
    for (Parameter<T>* p : parameters_) {
      if (p == nullptr) throw error("SGD: a parameter pointer is null");
      momentum_buffer_.emplace_back(p->value.shape());
    }
  }

  void step() override {
    ops::kernels::SgdCoefficients<T> coefficients{};
    coefficients.lr = static_cast<T>(this->lr());
    coefficients.momentum = static_cast<T>(momentum_);
    coefficients.one_minus_dampening = static_cast<T>(1.0 - dampening_);
    coefficients.weight_decay = static_cast<T>(weight_decay_);
    coefficients.has_weight_decay = weight_decay_ != 0.0;
    coefficients.has_momentum = momentum_ != 0.0;
    coefficients.nesterov = nesterov_;
    coefficients.first_step = steps_ == 0;
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      Parameter<T>& parameter = *parameters_[i];
      momentum_buffer_[i].to(parameter.value.device());  // the state follows its parameter
      ops::sgd_update(coefficients, parameter.value, parameter.grad, momentum_buffer_[i]);
    }
    ++steps_;
  }

  void zero_grad() override {
    for (Parameter<T>* p : parameters_) p->grad.zeros();
  }

  std::int64_t step_count() const { return steps_; }
  void set_step_count(std::int64_t steps) { steps_ = steps; }
  std::vector<Tensor<T>>& momentum_buffer() { return momentum_buffer_; }

 private:
  std::vector<Parameter<T>*> parameters_;
  std::vector<Tensor<T>> momentum_buffer_;
  double momentum_, dampening_, weight_decay_;
  bool nesterov_;
  std::int64_t steps_ = 0;
};

}  // namespace minicnn
