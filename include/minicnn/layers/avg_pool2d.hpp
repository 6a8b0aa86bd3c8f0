#pragma once
#include <cstdint>
#include <string>

#include "minicnn/layers/int_pair.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// AvgPool2d(kernel_size, stride = kernel_size, padding = 0, ceil_mode = false,
// count_include_pad = true), the first three one int or a pair (height, width), as in PyTorch.
// The divisor of a window is its size clipped to the padded input (a ceil_mode window may run
// past it), and further to the input itself when count_include_pad is false.
template <typename T = float>
class AvgPool2d final : public Module<T> {
 public:
  // stride 0 (the default) means stride = kernel_size, PyTorch's stride=None.
  explicit AvgPool2d(IntPair kernel_size, IntPair stride = 0, IntPair padding = 0, bool ceil_mode = false,
                     bool count_include_pad = true)
      : kernel_size_(kernel_size),
        stride_(stride == IntPair(0) ? kernel_size : stride),
        padding_(padding),
        ceil_mode_(ceil_mode),
        count_include_pad_(count_include_pad) {
    const IntPair k = kernel_size_, s = stride_, p = padding_;
    if (k.height < 1 || k.width < 1 || s.height < 1 || s.width < 1 || p.height < 0 || p.width < 0 ||
        p.height > k.height / 2 || p.width > k.width / 2)
      throw error("AvgPool2d(kernel_size=" + kernel_size.as_given_string() + ", stride=" + stride.as_given_string() +
                  ", padding=" + padding.as_given_string() +
                  "): expected a positive kernel size and stride, and 0 <= padding <= kernel_size / 2");
  }

  IntPair kernel_size() const { return kernel_size_; }
  IntPair stride() const { return stride_; }
  IntPair padding() const { return padding_; }
  bool ceil_mode() const { return ceil_mode_; }
  bool count_include_pad() const { return count_include_pad_; }

  Shape output_shape(const Shape& input) const override {
    const auto g = geometry(input);
    return {input[0], input[1], g.out_height, g.out_width};
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    const auto g = geometry(input.shape());
    output_.resize(output_shape(input.shape()));
    ops::avg_pool2d_forward(g, input, output_);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "AvgPool2d");
    grad_input_.resize(input_->shape());
    ops::avg_pool2d_backward(geometry(input_->shape()), grad_output, grad_input_);
    return grad_input_;
  }

  // PyTorch's repr names kernel_size, stride and padding only, each in the form it was given.
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override {
    return "kernel_size=" + kernel_size_.as_given_string() + ", stride=" + stride_.as_given_string() +
           ", padding=" + padding_.as_given_string();
  }

 private:
  ops::Pool2dGeometry geometry(const Shape& input) const {
    if (input.rank() != 4) throw error(this->repr() + ": expected input [N, C, H, W], found " + input.str());
    const IntPair k = kernel_size_, s = stride_, p = padding_;
    const std::int64_t out_height =
        ops::Pool2dGeometry::output_size(input[2], k.height, s.height, p.height, 1, ceil_mode_);
    const std::int64_t out_width = ops::Pool2dGeometry::output_size(input[3], k.width, s.width, p.width, 1, ceil_mode_);
    if (out_height < 1 || out_width < 1)
      throw error(this->repr() + ": input " + input.str() + " gives output size " + std::to_string(out_height) + "x" +
                  std::to_string(out_width) + ", expected at least 1x1 (the window must fit the padded input)");
    return {input[0] * input[1],
            input[2],
            input[3],
            out_height,
            out_width,
            k.height,
            k.width,
            s.height,
            s.width,
            p.height,
            p.width,
            1,
            1,
            count_include_pad_};
  }

  IntPair kernel_size_, stride_, padding_;
  bool ceil_mode_, count_include_pad_;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
};

}  // namespace minicnn
