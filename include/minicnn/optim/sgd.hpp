#pragma once
// SGD with momentum, dampening, weight decay and Nesterov, as torch.optim.SGD:
//   g += weight_decay * p;  b = g (first step) or momentum b + (1 - dampening) g
//   g = nesterov ? g + momentum b : b;  p -= lr g
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/layers/module.hpp"
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
    const T lr = static_cast<T>(this->lr()), momentum = static_cast<T>(momentum_);
    const T one_minus_dampening = static_cast<T>(1.0 - dampening_), weight_decay = static_cast<T>(weight_decay_);
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      T* p = parameters_[i]->value.data();
      const T* grad = parameters_[i]->grad.data();
      T* buffer = momentum_buffer_[i].data();
      for (std::int64_t j = 0; j < parameters_[i]->value.size(); ++j) {
        T g = grad[j];
        if (weight_decay_ != 0.0) g += weight_decay * p[j];
        if (momentum_ != 0.0) {
          buffer[j] = steps_ == 0 ? g : buffer[j] * momentum + one_minus_dampening * g;
          g = nesterov_ ? g + momentum * buffer[j] : buffer[j];
        }
        p[j] += -lr * g;
      }
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
