#pragma once
#include <cstdint>
#include <string>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// MaxPool2d(kernel_size, stride = kernel_size), no padding, floor mode. Remembers the argmax
// of every window for backward.
template <typename T = float>
class MaxPool2d final : public Module<T> {
 public:
  explicit MaxPool2d(std::int64_t kernel_size, std::int64_t stride = 0)
      : kernel_size_(kernel_size), stride_(stride == 0 ? kernel_size : stride) {
    if (kernel_size_ < 1 || stride_ < 1)
      throw error("MaxPool2d(kernel_size=" + std::to_string(kernel_size) + ", stride=" + std::to_string(stride) +
                  "): expected a positive kernel size and stride");
  }

  std::int64_t kernel_size() const { return kernel_size_; }
  std::int64_t stride() const { return stride_; }

  Shape output_shape(const Shape& input) const override {
    const auto g = geometry(input);
    return {input[0], input[1], g.out_height, g.out_width};
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    const auto g = geometry(input.shape());
    output_.resize(output_shape(input.shape()));
    argmax_.resize(output_.shape());
    ops::maxpool2d_forward(g, input, output_, argmax_);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "MaxPool2d");
    grad_input_.resize(input_->shape());
    ops::maxpool2d_backward(geometry(input_->shape()), grad_output, argmax_, grad_input_);
    return grad_input_;
  }

  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override {
    return "kernel_size=" + std::to_string(kernel_size_) + ", stride=" + std::to_string(stride_) +
           ", padding=0, dilation=1, ceil_mode=False";
  }

 private:
  ops::Pool2dGeometry geometry(const Shape& input) const {
    if (input.rank() != 4 || input[2] < kernel_size_ || input[3] < kernel_size_)
      throw error(this->repr() + ": expected input [N, C, H, W] with H, W >= " + std::to_string(kernel_size_) + ", found " +
                  input.str());
    return {input[0] * input[1], input[2], input[3], (input[2] - kernel_size_) / stride_ + 1,
            (input[3] - kernel_size_) / stride_ + 1, kernel_size_, stride_};
  }

  std::int64_t kernel_size_, stride_;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
  Tensor<std::int32_t> argmax_;
};

}  // namespace minicnn
