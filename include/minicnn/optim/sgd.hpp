#pragma once
// SGD with momentum, dampening, weight decay and Nesterov, as torch.optim.SGD:
//   g += weight_decay * p;  b = g (first step) or momentum b + (1 - dampening) g
//   g = nesterov ? g + momentum b : b;  p -= lr g
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"
#include "minicnn/optim/param_groups.hpp"

namespace minicnn {

// momentum_buffer()[i] belongs to parameters()[i]: one list's order, or with groups group 0's
// parameters first. Momentum, dampening and nesterov are shared by all groups.
template <typename T = float>
class SGD : public GroupedOptimizer<T> {
 public:
  // One group of `parameters` with these settings.
  SGD(std::vector<Parameter<T>*> parameters, double lr, double momentum = 0.0, double dampening = 0.0,
      double weight_decay = 0.0, bool nesterov = false)
      : SGD(GroupedOptimizer<T>::one_group(std::move(parameters)), lr, momentum, dampening, weight_decay, nesterov) {}
  // Several groups; `lr` and `weight_decay` are the defaults of groups that leave them unset.
  SGD(std::vector<ParameterGroup<T>> groups, double lr, double momentum = 0.0, double dampening = 0.0,
      double weight_decay = 0.0, bool nesterov = false)
      : GroupedOptimizer<T>(std::move(groups), lr, weight_decay, "SGD"),
        momentum_(momentum),
        dampening_(dampening),
        nesterov_(nesterov) {
    if (!(momentum >= 0.0)) throw error("SGD: expected momentum >= 0, got " + std::to_string(momentum));
    if (nesterov && (momentum <= 0.0 || dampening != 0.0))
      throw error("SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got momentum " +
                  std::to_string(momentum) + ", dampening " + std::to_string(dampening));
    for (Parameter<T>* p : this->parameters()) momentum_buffer_.emplace_back(p->value.shape());
  }

  void step() override {
    ops::kernels::SgdCoefficients<T> coefficients{};
    coefficients.momentum = static_cast<T>(momentum_);
    coefficients.one_minus_dampening = static_cast<T>(1.0 - dampening_);
    coefficients.has_momentum = momentum_ != 0.0;
    coefficients.nesterov = nesterov_;
    coefficients.first_step = steps_ == 0;
    const std::vector<Parameter<T>*>& parameters = this->parameters();
    for (std::size_t group = 0; group < this->num_groups(); ++group) {
      const double weight_decay = this->weight_decay(group);
      coefficients.lr = static_cast<T>(this->lr(group));
      coefficients.weight_decay = static_cast<T>(weight_decay);
      coefficients.has_weight_decay = weight_decay != 0.0;
      for (std::size_t i = this->group_begin(group); i < this->group_end(group); ++i) {
        Parameter<T>& parameter = *parameters[i];
        momentum_buffer_[i].to(parameter.value.device());  // the state follows its parameter
        ops::sgd_update(coefficients, parameter.value, parameter.grad, momentum_buffer_[i]);
      }
    }
    ++steps_;
  }

  std::int64_t step_count() const { return steps_; }
  void set_step_count(std::int64_t steps) { steps_ = steps; }
  std::vector<Tensor<T>>& momentum_buffer() { return momentum_buffer_; }

 private:
  std::vector<Tensor<T>> momentum_buffer_;
  double momentum_, dampening_;
  bool nesterov_;
  std::int64_t steps_ = 0;
};

}  // namespace minicnn
