#pragma once
#include <cstdint>
#include <string>

#include "minicnn/layers/module.hpp"

namespace minicnn {

// Flatten(start_dim = 1): [N, d1, d2, ...] -> [N, d1 * d2 * ...].
template <typename T = float>
class Flatten final : public Module<T> {
 public:
  Shape output_shape(const Shape& input) const override {
    if (input.rank() < 1) throw error("Flatten: expected an input of rank >= 1, found " + input.str());
    // The product of the trailing dimensions, not numel / N: an empty batch [0, C, H, W] gives
    // [0, C * H * W], as in PyTorch.
    std::int64_t features = 1;
    for (std::size_t axis = 1; axis < input.rank(); ++axis) features *= input[axis];
    return {input[0], features};
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    output_ = input;
    output_.reshape(output_shape(input.shape()));
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "Flatten");
    grad_input_ = grad_output;
    grad_input_.reshape(input_->shape());
    return grad_input_;
  }

  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override { return "start_dim=1, end_dim=-1"; }

 private:
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
};

}  // namespace minicnn
