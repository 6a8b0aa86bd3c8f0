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
    rectified_input_ = false;
    return output_;
  }

  // For an input that is already max(x, 0) (a Conv2d's forward_relu): returns it unchanged,
  // which is what forward would compute, without the pass. Backward reads its mask from it.
  const Tensor<T>& forward_rectified(const Tensor<T>& input) {
    input_ = &input;
    rectified_input_ = true;
    return input;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>& output = rectified_input_ ? *input_ : output_;
    this->check_backward(input_, output, grad_output, "ReLU");
    grad_input_.resize(output.shape());
    ops::relu_backward(output, grad_output, grad_input_);
    return grad_input_;
  }

  std::string repr() const override { return "ReLU()"; }

 private:
  const Tensor<T>* input_ = nullptr;
  bool rectified_input_ = false;  // the last forward was forward_rectified: output = *input_
  Tensor<T> output_, grad_input_;
};

}  // namespace minicnn
