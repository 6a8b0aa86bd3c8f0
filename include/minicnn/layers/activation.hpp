#pragma once
// The element-wise activations other than ReLU (which has its own layer, fused into a Conv2d
// before it): Sigmoid, Tanh, SiLU, Hardswish, Hardsigmoid, GELU and LeakyReLU, with PyTorch's
// formulas, values at the kinks and NaN rules (see ops/kernels/activation.hpp).
//
//   Sigmoid<T>()  Tanh<T>()  SiLU<T>()  Hardswish<T>()  Hardsigmoid<T>()
//   GELU<T>(approximate = "none" | "tanh")   LeakyReLU<T>(negative_slope = 0.01)
#include <sstream>
#include <string>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// One layer class for every activation: `Kind` names the PyTorch class; GELU's tanh
// approximation runs as ops::Activation::gelu_tanh.
template <typename T, ops::Activation Kind>
class ElementwiseActivation final : public Module<T> {
 public:
  // The only parameter is LeakyReLU's negative slope.
  ElementwiseActivation() : ElementwiseActivation(Kind == ops::Activation::leaky_relu ? 0.01 : 0.0) {}
  explicit ElementwiseActivation(double parameter) : kind_(Kind), parameter_(parameter) {
    static_assert(Kind != ops::Activation::relu && Kind != ops::Activation::gelu_tanh,
                  "use ReLU<T>, and GELU<T>(\"tanh\") for the tanh approximation");
    if (!ops::activation_has_parameter(Kind) && parameter != 0.0)
      throw error(type_name() + ": takes no parameter, got " + std::to_string(parameter));
  }
  // GELU(approximate): "none" (the exact erf form) or "tanh".
  explicit ElementwiseActivation(const std::string& approximate) : ElementwiseActivation() {
    static_assert(Kind == ops::Activation::gelu, "only GELU takes `approximate`");
    if (approximate == "tanh")
      kind_ = ops::Activation::gelu_tanh;
    else if (approximate != "none")
      throw error("GELU(approximate='" + approximate + "'): expected 'none' or 'tanh'");
  }

  ops::Activation kind() const { return kind_; }
  double parameter() const { return parameter_; }

  Shape output_shape(const Shape& input) const override { return input; }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    output_.resize(input.shape());
    ops::activation_forward(kind_, parameter_, input, output_);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "Activation");
    grad_input_.resize(output_.shape());
    ops::activation_backward(kind_, parameter_, *input_, output_, grad_output, grad_input_);
    return grad_input_;
  }

  std::string type_name() const override {
    switch (Kind) {
      case ops::Activation::sigmoid:
        return "Sigmoid";
      case ops::Activation::tanh:
        return "Tanh";
      case ops::Activation::silu:
        return "SiLU";
      case ops::Activation::hardswish:
        return "Hardswish";
      case ops::Activation::hardsigmoid:
        return "Hardsigmoid";
      case ops::Activation::gelu:
        return "GELU";
      case ops::Activation::leaky_relu:
        return "LeakyReLU";
      default:
        return "Activation";
    }
  }
  std::string extra_repr() const override {
    if (Kind == ops::Activation::gelu)
      return kind_ == ops::Activation::gelu_tanh ? "approximate='tanh'" : "approximate='none'";
    if (Kind == ops::Activation::leaky_relu) {
      std::ostringstream out;
      out << "negative_slope=" << parameter_;
      return out.str();
    }
    return {};
  }

 private:
  ops::Activation kind_;
  double parameter_;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
};

template <typename T = float>
using Sigmoid = ElementwiseActivation<T, ops::Activation::sigmoid>;
template <typename T = float>
using Tanh = ElementwiseActivation<T, ops::Activation::tanh>;
template <typename T = float>
using SiLU = ElementwiseActivation<T, ops::Activation::silu>;
template <typename T = float>
using Hardswish = ElementwiseActivation<T, ops::Activation::hardswish>;
template <typename T = float>
using Hardsigmoid = ElementwiseActivation<T, ops::Activation::hardsigmoid>;
template <typename T = float>
using GELU = ElementwiseActivation<T, ops::Activation::gelu>;
template <typename T = float>
using LeakyReLU = ElementwiseActivation<T, ops::Activation::leaky_relu>;

}  // namespace minicnn
