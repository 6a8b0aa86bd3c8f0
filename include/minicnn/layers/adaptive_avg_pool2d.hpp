#pragma once
#include <cstdint>
#include <string>

#include "minicnn/layers/int_pair.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// AdaptiveAvgPool2d(output_size) (one int or a pair) or (out_height, out_width), for any input
// size, with PyTorch's bins [floor(i H / out), ceil((i + 1) H / out)); bins may overlap when the
// sizes don't divide.
template <typename T = float>
class AdaptiveAvgPool2d final : public Module<T> {
 public:
  explicit AdaptiveAvgPool2d(IntPair output_size)
      : output_size_(output_size), out_height_(output_size.height), out_width_(output_size.width) {
    if (out_height_ < 1 || out_width_ < 1)
      throw error("AdaptiveAvgPool2d(" + output_size.as_given_string() + "): expected a positive output size");
  }
  AdaptiveAvgPool2d(std::int64_t out_height, std::int64_t out_width)
      : AdaptiveAvgPool2d(IntPair(out_height, out_width)) {}

  IntPair output_size() const { return output_size_; }
  std::int64_t out_height() const { return out_height_; }
  std::int64_t out_width() const { return out_width_; }

  Shape output_shape(const Shape& input) const override {
    geometry(input);
    return {input[0], input[1], out_height_, out_width_};
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    output_.resize(output_shape(input.shape()));
    ops::adaptive_avg_pool2d_forward(geometry(input.shape()), input, output_);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "AdaptiveAvgPool2d");
    grad_input_.resize(input_->shape());
    ops::adaptive_avg_pool2d_backward(geometry(input_->shape()), grad_output, grad_input_);
    return grad_input_;
  }

  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override { return "output_size=" + output_size_.as_given_string(); }

 private:
  ops::Pool2dGeometry geometry(const Shape& input) const {
    if (input.rank() != 4 || input[2] < 1 || input[3] < 1)
      throw error(this->repr() + ": expected input [N, C, H, W] with H, W >= 1, found " + input.str());
    // Adaptive bins use the sizes only; the window fields are unused.
    return {input[0] * input[1], input[2], input[3], out_height_, out_width_, 0, 0, 0, 0, 0, 0, 0, 0, false};
  }

  IntPair output_size_;
  std::int64_t out_height_, out_width_;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
};

}  // namespace minicnn
