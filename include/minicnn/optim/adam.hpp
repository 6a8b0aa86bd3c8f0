#pragma once
// Adam and AdamW with PyTorch's exact update (torch.optim.Adam / AdamW, single-tensor path):
//   Adam:  g += weight_decay * p
//   AdamW: p *= 1 - lr * weight_decay
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"
#include "minicnn/optim/param_groups.hpp"

namespace minicnn {

// State (step count, exp_avg, exp_avg_sq) is per parameter, in the order of parameters(): one
// list's order, or with groups group 0's parameters first. Every group steps together, so one
// step count serves all (PyTorch keeps one per parameter; they agree when every parameter is
// stepped every time, which this optimiser always does).
template <typename T = float>
class Adam : public GroupedOptimizer<T> {
 public:
  // One group of `parameters` with these settings.
  Adam(std::vector<Parameter<T>*> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0.0)
      : Adam(GroupedOptimizer<T>::one_group(std::move(parameters)), lr, beta1, beta2, eps, weight_decay, false) {}
  // Several groups; `lr` and `weight_decay` are the defaults of groups that leave them unset.
  Adam(std::vector<ParameterGroup<T>> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0.0)
      : Adam(std::move(groups), lr, beta1, beta2, eps, weight_decay, false) {}

  void step() override {
    ++step_count_;
    const double bias_correction1 = 1.0 - std::pow(beta1_, static_cast<double>(step_count_));
    const double bias_correction2 = 1.0 - std::pow(beta2_, static_cast<double>(step_count_));
    ops::kernels::AdamCoefficients<T> coefficients{};
    coefficients.bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
    coefficients.beta1 = static_cast<T>(beta1_);
    coefficients.beta2 = static_cast<T>(beta2_);
    coefficients.one_minus_beta1 = static_cast<T>(1.0 - beta1_);
    coefficients.one_minus_beta2 = static_cast<T>(1.0 - beta2_);
    coefficients.eps = static_cast<T>(eps_);
    coefficients.decoupled = decoupled_;
    const std::vector<Parameter<T>*>& parameters = this->parameters();
    for (std::size_t group = 0; group < this->num_groups(); ++group) {
      const double lr = this->lr(group), weight_decay = this->weight_decay(group);
      coefficients.step_size = static_cast<T>(lr / bias_correction1);
      coefficients.weight_decay = static_cast<T>(weight_decay);
      coefficients.decay_factor = static_cast<T>(1.0 - lr * weight_decay);
      coefficients.has_weight_decay = weight_decay != 0.0;
      for (std::size_t i = this->group_begin(group); i < this->group_end(group); ++i) {
        Parameter<T>& parameter = *parameters[i];
        // The state follows its parameter (a no-op unless the model moved since the last step).
        exp_avg_[i].to(parameter.value.device());
        exp_avg_sq_[i].to(parameter.value.device());
        ops::adam_update(coefficients, parameter.value, parameter.grad, exp_avg_[i], exp_avg_sq_[i]);
      }
    }
  }

  // State, for checkpoints: the step count and both moment estimates, one per parameter.
  std::int64_t step_count() const { return step_count_; }
  void set_step_count(std::int64_t steps) { step_count_ = steps; }
  std::vector<Tensor<T>>& exp_avg() { return exp_avg_; }
  std::vector<Tensor<T>>& exp_avg_sq() { return exp_avg_sq_; }

 protected:
  Adam(std::vector<ParameterGroup<T>> groups, double lr, double beta1, double beta2, double eps, double weight_decay,
       bool decoupled)
      : GroupedOptimizer<T>(std::move(groups), lr, weight_decay, decoupled ? "AdamW" : "Adam"),
        beta1_(beta1),
        beta2_(beta2),
        eps_(eps),
        decoupled_(decoupled) {
    const std::string name = decoupled ? "AdamW" : "Adam";
    if (!(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0))
      throw error(name + ": expected betas in [0, 1), got (" + std::to_string(beta1) + ", " + std::to_string(beta2) +
                  ")");
    if (!(eps >= 0.0)) throw error(name + ": expected eps >= 0, got " + std::to_string(eps));
    for (Parameter<T>* p : this->parameters()) {
      exp_avg_.emplace_back(p->value.shape());
      exp_avg_sq_.emplace_back(p->value.shape());
    }
  }

 private:
  std::vector<Tensor<T>> exp_avg_, exp_avg_sq_;
  double beta1_, beta2_, eps_;
  bool decoupled_;
  std::int64_t step_count_ = 0;
};

// AdamW: Adam with decoupled weight decay (PyTorch's default weight_decay = 1e-2).
template <typename T = float>
class AdamW : public Adam<T> {
 public:
  AdamW(std::vector<Parameter<T>*> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 1e-2)
      : Adam<T>(GroupedOptimizer<T>::one_group(std::move(parameters)), lr, beta1, beta2, eps, weight_decay, true) {}
  // Several groups; `lr` and `weight_decay` are the defaults of groups that leave them unset.
  AdamW(std::vector<ParameterGroup<T>> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 1e-2)
      : Adam<T>(std::move(groups), lr, beta1, beta2, eps, weight_decay, true) {}
};

}  // namespace minicnn
