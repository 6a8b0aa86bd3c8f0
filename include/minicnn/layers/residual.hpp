#pragma once
// Residual(branch, shortcut): y = branch(x) + shortcut(x), with the identity as the default
// shortcut. Children "branch" and, when given, "shortcut". Backward sums the two input
// gradients (ops::add).
#include <memory>
#include <string>
#include <utility>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

template <typename T = float>
class Residual final : public Module<T> {
 public:
  explicit Residual(std::unique_ptr<Module<T>> branch, std::unique_ptr<Module<T>> shortcut = nullptr)
      : branch_(&this->register_module("branch", std::move(branch))),
        shortcut_(shortcut ? &this->register_module("shortcut", std::move(shortcut)) : nullptr) {}

  Module<T>& branch() { return *branch_; }
  Module<T>* shortcut() { return shortcut_; }

  std::string type_name() const override { return "Residual"; }

  Shape output_shape(const Shape& input) const override {
    const Shape branch_shape = branch_->output_shape(input);
    const Shape shortcut_shape = shortcut_ ? shortcut_->output_shape(input) : input;
    if (branch_shape != shortcut_shape)
      throw error("Residual: the branch gives " + branch_shape.str() + " but the shortcut gives " +
                  shortcut_shape.str() + " for input " + input.str() + " (add a shortcut that matches)");
    return branch_shape;
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    output_shape(input.shape());
    const Tensor<T>& branch_output = branch_->forward(input);
    const Tensor<T>& shortcut_output = shortcut_ ? shortcut_->forward(input) : input;
    ops::add(branch_output, shortcut_output, output_);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "Residual");
    const Tensor<T>& grad_branch = branch_->backward(grad_output);
    const Tensor<T>& grad_shortcut = shortcut_ ? shortcut_->backward(grad_output) : grad_output;
    if (!this->input_grad()) {
      grad_input_.resize(Shape{});
      return grad_input_;
    }
    ops::add(grad_branch, grad_shortcut, grad_input_);
    return grad_input_;
  }

  void set_input_grad(bool enabled) override {
    Module<T>::set_input_grad(enabled);
    branch_->set_input_grad(enabled);
    if (shortcut_) shortcut_->set_input_grad(enabled);
  }

 private:
  Module<T>* branch_;
  Module<T>* shortcut_;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
};

}  // namespace minicnn
