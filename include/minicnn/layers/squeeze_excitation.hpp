#pragma once
// SqueezeExcitation(input_channels, squeeze_channels), as torchvision.ops.SqueezeExcitation:
//   scale = scale_activation(fc2(activation(fc1(avgpool(x)))))   [N, C, 1, 1]
//   y     = x * scale                                              (ops::channel_scale)
// with avgpool = AdaptiveAvgPool2d(1), fc1 / fc2 1x1 Conv2d with bias, activation ReLU and
// scale_activation Sigmoid: state_dict names fc1.weight, fc1.bias, fc2.weight, fc2.bias.
// Backward: d/dx = g * scale + the path through the scale, whose gradient is
// sum over H, W of g * x (ops::channel_scale_backward).
#include <cstdint>
#include <memory>
#include <string>

#include "minicnn/layers/activation.hpp"
#include "minicnn/layers/adaptive_avg_pool2d.hpp"
#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/layers/relu.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

template <typename T = float>
class SqueezeExcitation final : public Module<T> {
 public:
  SqueezeExcitation(std::int64_t input_channels, std::int64_t squeeze_channels, Generator& gen = default_generator())
      : avgpool_(&this->register_module("avgpool", std::make_unique<AdaptiveAvgPool2d<T>>(1, 1))),
        fc1_(&this->register_module("fc1",
                                    std::make_unique<Conv2d<T>>(input_channels, squeeze_channels, 1, 1, 0, true, gen))),
        fc2_(&this->register_module("fc2",
                                    std::make_unique<Conv2d<T>>(squeeze_channels, input_channels, 1, 1, 0, true, gen))),
        activation_(&this->register_module("activation", std::make_unique<ReLU<T>>())),
        scale_activation_(&this->register_module("scale_activation", std::make_unique<Sigmoid<T>>())) {}

  Conv2d<T>& fc1() { return *fc1_; }
  Conv2d<T>& fc2() { return *fc2_; }

  std::string type_name() const override { return "SqueezeExcitation"; }

  Shape output_shape(const Shape& input) const override {
    fc2_->output_shape(fc1_->output_shape(avgpool_->output_shape(input)));
    return input;
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    output_shape(input.shape());
    const Tensor<T>& gate =
        scale_activation_->forward(fc2_->forward(activation_->forward(fc1_->forward(avgpool_->forward(input)))));
    scale_ = gate;  // [N, C, 1, 1] seen as [N, C]
    scale_.reshape({input.dim(0), input.dim(1)});
    ops::channel_scale_forward(input, scale_, output_);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "SqueezeExcitation");
    ops::channel_scale_backward(*input_, scale_, grad_output, &grad_direct_, grad_scale_);
    grad_scale_.reshape({input_->dim(0), input_->dim(1), 1, 1});
    const Tensor<T>& grad_through_scale = avgpool_->backward(
        fc1_->backward(activation_->backward(fc2_->backward(scale_activation_->backward(grad_scale_)))));
    ops::add(grad_direct_, grad_through_scale, grad_input_);
    return grad_input_;
  }

 private:
  AdaptiveAvgPool2d<T>* avgpool_;
  Conv2d<T>* fc1_;
  Conv2d<T>* fc2_;
  ReLU<T>* activation_;
  Sigmoid<T>* scale_activation_;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> scale_, output_, grad_direct_, grad_scale_, grad_input_;
};

}  // namespace minicnn
