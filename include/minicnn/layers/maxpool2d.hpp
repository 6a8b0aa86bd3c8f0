#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "minicnn/grad_mode.hpp"
#include "minicnn/layers/int_pair.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// MaxPool2d(kernel_size, stride = kernel_size, padding = 0, dilation = 1, ceil_mode = false),
// each of the first four one int or a pair (height, width), as in PyTorch: padding is -inf
// (never chosen), ceil_mode keeps a last partial window that starts inside the input or its
// left padding. Remembers the argmax of every window for backward, except in a forward pass
// without gradients (NoGradGuard), which computes the maxima alone; there, in a Sequential whose
// plan has the layer before apply the pool (is_max_pool_2x2), forward passes its input through.
template <typename T = float>
class MaxPool2d final : public Module<T> {
 public:
  // stride 0 (the default) means stride = kernel_size, PyTorch's stride=None.
  explicit MaxPool2d(IntPair kernel_size, IntPair stride = 0, IntPair padding = 0, IntPair dilation = 1,
                     bool ceil_mode = false)
      : kernel_size_(kernel_size),
        stride_(stride == IntPair(0) ? kernel_size : stride),
        padding_(padding),
        dilation_(dilation),
        ceil_mode_(ceil_mode) {
    const IntPair k = kernel_size_, s = stride_, p = padding_, d = dilation_;
    if (k.height < 1 || k.width < 1 || s.height < 1 || s.width < 1 || d.height < 1 || d.width < 1 || p.height < 0 ||
        p.width < 0 || p.height > k.height / 2 || p.width > k.width / 2)
      throw error("MaxPool2d(kernel_size=" + kernel_size.as_given_string() + ", stride=" + stride.as_given_string() +
                  ", padding=" + padding.as_given_string() + ", dilation=" + dilation.as_given_string() +
                  "): expected a positive kernel size, stride and dilation, and 0 <= padding <= kernel_size / 2");
  }

  IntPair kernel_size() const { return kernel_size_; }
  IntPair stride() const { return stride_; }
  IntPair padding() const { return padding_; }
  IntPair dilation() const { return dilation_; }
  bool ceil_mode() const { return ceil_mode_; }

  Shape output_shape(const Shape& input) const override {
    const auto g = geometry(input);
    return {input[0], input[1], g.out_height, g.out_width};
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    recorded_ = grad_enabled();
    if (!recorded_ && pooled_by_producer_) return input;
    const auto g = geometry(input.shape());
    output_.resize(output_shape(input.shape()));
    if (recorded_) argmax_.resize(output_.shape());
    ops::maxpool2d_forward(g, input, output_, recorded_ ? &argmax_ : nullptr);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    if (!recorded_)
      throw error("MaxPool2d.backward: the last forward ran without gradients (NoGradGuard), expected a forward "
                  "with gradients enabled before backward");
    this->check_backward(input_, output_, grad_output, "MaxPool2d");
    grad_input_.resize(input_->shape());
    ops::maxpool2d_backward(geometry(input_->shape()), grad_output, argmax_, grad_input_,
                            input_relu_grad_ ? &output_ : nullptr);
    return grad_input_;
  }

  // The gradient of a ReLU before the pool (its output is the pool's input), applied to each
  // window's gradient as backward scatters it: a window's maximum is the input element it chose
  // (planned by the container).
  bool apply_input_relu_grad(bool enabled) override {
    input_relu_grad_ = enabled;
    return true;
  }
  bool applies_input_relu_grad() const { return input_relu_grad_; }

  bool is_max_pool_2x2() const override {
    return kernel_size_ == IntPair(2) && stride_ == IntPair(2) && padding_ == IntPair(0) && dilation_ == IntPair(1) &&
           !ceil_mode_;
  }
  void set_pooled_by_producer(bool pooled) override { pooled_by_producer_ = pooled; }
  bool pooled_by_producer() const { return pooled_by_producer_; }

  // PyTorch's repr: each argument in the form it was given (stride as kernel_size's by default).
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override {
    return "kernel_size=" + kernel_size_.as_given_string() + ", stride=" + stride_.as_given_string() +
           ", padding=" + padding_.as_given_string() + ", dilation=" + dilation_.as_given_string() +
           ", ceil_mode=" + (ceil_mode_ ? "True" : "False");
  }

 private:
  ops::Pool2dGeometry geometry(const Shape& input) const {
    if (input.rank() != 4) throw error(this->repr() + ": expected input [N, C, H, W], found " + input.str());
    const IntPair k = kernel_size_, s = stride_, p = padding_, d = dilation_;
    const std::int64_t out_height =
        ops::Pool2dGeometry::output_size(input[2], k.height, s.height, p.height, d.height, ceil_mode_);
    const std::int64_t out_width =
        ops::Pool2dGeometry::output_size(input[3], k.width, s.width, p.width, d.width, ceil_mode_);
    if (out_height < 1 || out_width < 1)
      throw error(this->repr() + ": input " + input.str() + " gives output size " + std::to_string(out_height) + "x" +
                  std::to_string(out_width) + ", expected at least 1x1 (the dilated window must fit the padded input)");
    // A window whose taps all fall in the padding would have no maximum (PyTorch reads out of
    // bounds there); with padding <= kernel / 2 only dilation can cause it.
    for (const auto& [out, in, stride, pad, kernel, dilation] :
         {std::array<std::int64_t, 6>{out_height, input[2], s.height, p.height, k.height, d.height},
          std::array<std::int64_t, 6>{out_width, input[3], s.width, p.width, k.width, d.width}})
      for (std::int64_t o = 0; o < out; ++o) {
        const std::int64_t start = o * stride - pad;
        if (ops::kernels::first_tap(start, dilation) >= ops::kernels::end_tap(start, kernel, dilation, in))
          throw error(this->repr() + ": input " + input.str() + " leaves window " + std::to_string(o) +
                      " with only padding, expected every window to hold an input element");
      }
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
            d.height,
            d.width,
            false};
  }

  IntPair kernel_size_, stride_, padding_, dilation_;
  bool ceil_mode_;
  bool pooled_by_producer_ = false;
  bool input_relu_grad_ = false;  // backward applies the gradient of the ReLU before it
  bool recorded_ = true;  // whether the last forward kept the argmax (gradients enabled)
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
  Tensor<std::int32_t> argmax_;
};

}  // namespace minicnn
