#pragma once
#include <cstdint>
#include <string>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// AdaptiveAvgPool2d(out_height, out_width) for any input size, with PyTorch's bins
// [floor(i H / out), ceil((i + 1) H / out)); bins may overlap when the sizes don't divide.
template <typename T = float>
class AdaptiveAvgPool2d final : public Module<T> {
 public:
  AdaptiveAvgPool2d(std::int64_t out_height, std::int64_t out_width) : out_height_(out_height), out_width_(out_width) {
    if (out_height < 1 || out_width < 1)
      throw error("AdaptiveAvgPool2d(" + std::to_string(out_height) + ", " + std::to_string(out_width) +
                  "): expected a positive output size");
  }

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
  std::string extra_repr() const override {
    return "output_size=(" + std::to_string(out_height_) + ", " + std::to_string(out_width_) + ")";
  }

 private:
  ops::Pool2dGeometry geometry(const Shape& input) const {
    if (input.rank() != 4 || input[2] < 1 || input[3] < 1)
      throw error(this->repr() + ": expected input [N, C, H, W] with H, W >= 1, found " + input.str());
    return {input[0] * input[1], input[2], input[3], out_height_, out_width_, 0, 0};
  }

  std::int64_t out_height_, out_width_;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
};

}  // namespace minicnn
