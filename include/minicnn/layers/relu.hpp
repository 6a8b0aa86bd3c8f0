#pragma once
#include <string>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// ReLU(x) = max(x, 0). Its gradient at exactly 0 is taken as 0, as in PyTorch.
template <typename T = float>
class ReLU : public Module<T> {
 public:
  Shape output_shape(const Shape& input) const override { return input; }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    output_.resize(input.shape());
    ops::relu_forward(input, output_);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "ReLU");
    grad_input_.resize(output_.shape());
    ops::relu_backward(output_, grad_output, grad_input_);
    return grad_input_;
  }

  std::string repr() const override { return "ReLU()"; }

 private:
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
};

}  // namespace minicnn
