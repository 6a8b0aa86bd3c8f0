#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/layers/init.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// Linear(in_features, out_features): y = x W^T + b for x [N, in_features].
template <typename T = float>
class Linear final : public Module<T> {
 public:
  Parameter<T> weight;  // [out_features, in_features]
  Parameter<T> bias;    // [out_features], empty when use_bias = false

  Linear(std::int64_t in_features, std::int64_t out_features, bool use_bias = true,
         Generator& gen = default_generator())
      : weight("weight", checked_weight_shape(in_features, out_features)),
        bias("bias", use_bias ? Shape{out_features} : Shape{}) {
    init_pytorch_default(weight.value, has_bias() ? &bias.value : nullptr, in_features, gen);
    this->register_parameter(weight);
    if (has_bias()) this->register_parameter(bias);
  }

  std::int64_t in_features() const { return weight.value.dim(1); }
  std::int64_t out_features() const { return weight.value.dim(0); }
  bool has_bias() const { return !bias.value.empty(); }

  Shape output_shape(const Shape& input) const override {
    if (input.rank() != 2 || input[1] != in_features())
      throw error(this->repr() + ": expected input [N, " + std::to_string(in_features()) + "], found " + input.str());
    return {input[0], out_features()};
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    output_.resize(output_shape(input.shape()));
    ops::linear_forward(input, weight.value, has_bias() ? &bias.value : nullptr, output_);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "Linear");
    if (this->input_grad()) grad_input_.resize(input_->shape());
    else grad_input_.resize(Shape{});
    ops::linear_backward(*input_, weight.value, grad_output, this->input_grad() ? &grad_input_ : nullptr, weight.grad,
                         has_bias() ? &bias.grad : nullptr);
    return grad_input_;
  }

  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override {
    return "in_features=" + std::to_string(in_features()) + ", out_features=" + std::to_string(out_features()) +
           ", bias=" + (has_bias() ? "True" : "False");
  }

 private:
  static Shape checked_weight_shape(std::int64_t in_features, std::int64_t out_features) {
    if (in_features < 1 || out_features < 1)
      throw error("Linear(in_features=" + std::to_string(in_features) + ", out_features=" +
                  std::to_string(out_features) + "): expected positive sizes");
    return {out_features, in_features};
  }

  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
};

}  // namespace minicnn
