#pragma once
#include <string>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// ReLU(x) = max(x, 0). Its gradient at exactly 0 is taken as 0, as in PyTorch.
template <typename T = float>
class ReLU final : public Module<T> {
 public:
  Shape output_shape(const Shape& input) const override { return input; }

  // When the producer applies the ReLU (see Sequential's fusion plan) the input is already
  // max(x, 0): it is returned unchanged, which is what the pass would compute, and backward
  // reads its mask from it.
  const Tensor<T>& forward(const Tensor<T>& input) override {
    input_ = &input;
    if (applied_by_producer_) return input;
    output_.resize(input.shape());
    ops::relu_forward(input, output_);
    return output_;
  }

  // When the layer after applies the gradient (see Sequential's fusion plan), grad_output is
  // already the gradient with respect to the input: it is returned.
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>& output = applied_by_producer_ && input_ ? *input_ : output_;
    this->check_backward(input_, output, grad_output, "ReLU");
    if (grad_applied_by_consumer_) return grad_output;
    grad_input_.resize(output.shape());
    ops::relu_backward(output, grad_output, grad_input_);
    return grad_input_;
  }

  std::string type_name() const override { return "ReLU"; }
  Pointwise pointwise() const override { return Pointwise::relu; }
  void set_applied_by_producer(bool applied) override { applied_by_producer_ = applied; }
  bool applied_by_producer() const { return applied_by_producer_; }
  void set_grad_applied_by_consumer(bool applied) override { grad_applied_by_consumer_ = applied; }
  bool grad_applied_by_consumer() const { return grad_applied_by_consumer_; }

 private:
  const Tensor<T>* input_ = nullptr;
  bool applied_by_producer_ = false, grad_applied_by_consumer_ = false;
  Tensor<T> output_, grad_input_;
};

}  // namespace minicnn
