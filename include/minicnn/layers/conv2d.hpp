#pragma once
// Conv2d with PyTorch's arguments: kernel_size, stride, padding (zeros) and dilation, each one
// int or a pair (height, width); groups (groups == in_channels: depthwise); bias. The
// arithmetic lives in ops/ (im2col + GEMM; tuned paths for one stride and padding, no dilation,
// one group).
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/grad_mode.hpp"
#include "minicnn/layers/init.hpp"
#include "minicnn/layers/int_pair.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// Every argument of Conv2d, with PyTorch's defaults, set by chained calls in libtorch's style:
//   Conv2d<float> conv(Conv2dOptions(3, 6, {5, 3}).stride({2, 1}).dilation(2).groups(3).bias(false));
class Conv2dOptions {
 public:
  Conv2dOptions(std::int64_t in_channels, std::int64_t out_channels, IntPair kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}

  Conv2dOptions& stride(IntPair value) { return stride_ = value, *this; }
  Conv2dOptions& padding(IntPair value) { return padding_ = value, *this; }
  Conv2dOptions& dilation(IntPair value) { return dilation_ = value, *this; }
  Conv2dOptions& groups(std::int64_t value) { return groups_ = value, *this; }
  Conv2dOptions& bias(bool value) { return bias_ = value, *this; }

  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  IntPair kernel_size() const { return kernel_size_; }
  IntPair stride() const { return stride_; }
  IntPair padding() const { return padding_; }
  IntPair dilation() const { return dilation_; }
  std::int64_t groups() const { return groups_; }
  bool bias() const { return bias_; }

 private:
  std::int64_t in_channels_, out_channels_;
  IntPair kernel_size_, stride_ = 1, padding_ = 0, dilation_ = 1;
  std::int64_t groups_ = 1;
  bool bias_ = true;
};

template <typename T = float>
class Conv2d final : public Module<T> {
 public:
  Parameter<T> weight;  // [out_channels, in_channels / groups, kernel_height, kernel_width]
  Parameter<T> bias;    // [out_channels], empty when bias = false

  // Conv2d(3, 8, 3, 1, 1) as before, and pairs where PyTorch takes them: Conv2d(3, 8, {5, 3}, {2, 1}).
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, IntPair kernel_size, IntPair stride = 1,
         IntPair padding = 0, bool use_bias = true, Generator& gen = default_generator())
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size).stride(stride).padding(padding).bias(use_bias),
               gen) {}

  explicit Conv2d(const Conv2dOptions& options, Generator& gen = default_generator())
      : weight("weight", checked_weight_shape(options)),
        bias("bias", options.bias() ? Shape{options.out_channels()} : Shape{}),
        in_channels_(options.in_channels()),
        out_channels_(options.out_channels()),
        kernel_size_(options.kernel_size()),
        stride_(options.stride()),
        padding_(options.padding()),
        dilation_(options.dilation()),
        groups_(options.groups()) {
    // PyTorch's fan_in: the inputs one output sees, in_channels / groups * K_h * K_w.
    init_pytorch_default(weight.value, has_bias() ? &this->bias.value : nullptr,
                         in_channels_ / groups_ * kernel_size_.height * kernel_size_.width, gen);
    this->register_parameter(weight);
    if (has_bias()) this->register_parameter(bias);
  }

  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  IntPair kernel_size() const { return kernel_size_; }
  IntPair stride() const { return stride_; }
  IntPair padding() const { return padding_; }
  IntPair dilation() const { return dilation_; }
  std::int64_t groups() const { return groups_; }
  bool has_bias() const { return !bias.value.empty(); }

  Shape output_shape(const Shape& input) const override { return geometry(input).out_shape(); }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    const Geometry g = geometry(input.shape());
    const Tensor<T>* bias_value = has_bias() ? &bias.value : nullptr;
    input_ = &input;
    pooled_last_ = pool_ && !grad_enabled();
    if (pooled_last_) {
      // The max-pool after this layer (planned by the container), which checks the sizes with
      // its own errors. Winograd pools as it stores its result; other paths store output_ first.
      pooled_.resize(pool_->output_shape(g.out_shape()));
      ops::conv2d_forward_max_pool_2x2(g.conv, input, weight.value, bias_value, output_, pooled_, workspace_,
                                       fused_relu_, !this->is_training());
      return pooled_;
    }
    output_.resize(g.out_shape());
    // In eval mode the CPU backend may take a fast algorithm for this pass (conv_algorithm.hpp);
    // a backward pass after it still gives the exact convolution's gradients (at its output).
    ops::conv2d_forward(g.conv, input, weight.value, bias_value, output_, workspace_, fused_relu_,
                        !this->is_training());
    return output_;
  }

  // A ReLU after the conv is applied as the output is stored (no pass of its own); backward()
  // still takes the gradient with respect to the conv's own output (what the ReLU's backward
  // returns). Planned by the container (see Sequential).
  bool fuse_pointwise(Pointwise op) override {
    fused_relu_ = op == Pointwise::relu;
    return op == Pointwise::none || fused_relu_;
  }
  bool fused_relu() const { return fused_relu_; }

  // A 2x2 max-pool after the output (and the fused ReLU), applied in forward passes without
  // gradients (planned by the container, see Sequential).
  bool fuse_max_pool_2x2(const Module<T>* pool) override {
    pool_ = pool;
    return true;
  }

  // The gradient of a ReLU before the conv (its output is the conv's input), applied to the
  // input gradient image by image as backward stores it (planned by the container).
  bool apply_input_relu_grad(bool enabled) override {
    input_relu_grad_ = enabled;
    return true;
  }
  bool applies_input_relu_grad() const { return input_relu_grad_; }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    if (pooled_last_)
      throw error("Conv2d.backward: the last forward ran without gradients (NoGradGuard) and stored the max-pooled "
                  "output alone, expected a forward with gradients enabled before backward");
    this->check_backward(input_, output_, grad_output, "Conv2d");
    const Geometry g = geometry(input_->shape());
    if (this->input_grad())
      grad_input_.resize(input_->shape());
    else
      grad_input_.resize(Shape{});
    ops::conv2d_backward(g.conv, *input_, weight.value, grad_output, this->input_grad() ? &grad_input_ : nullptr,
                         weight.grad, has_bias() ? &bias.grad : nullptr, workspace_, input_relu_grad_);
    return grad_input_;
  }

  // PyTorch's repr: pairs always; padding, dilation and groups only when not the default.
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override {
    return std::to_string(in_channels_) + ", " + std::to_string(out_channels_) +
           ", kernel_size=" + kernel_size_.pair_string() + ", stride=" + stride_.pair_string() +
           (padding_ != IntPair(0) ? ", padding=" + padding_.pair_string() : "") +
           (dilation_ != IntPair(1) ? ", dilation=" + dilation_.pair_string() : "") +
           (groups_ != 1 ? ", groups=" + std::to_string(groups_) : "") + (has_bias() ? "" : ", bias=False");
  }

 private:
  struct Geometry {
    ops::Conv2dGeometry conv;
    Shape out_shape() const { return {conv.batch, conv.out_channels, conv.out_height, conv.out_width}; }
  };

  static Shape checked_weight_shape(const Conv2dOptions& o) {
    const IntPair k = o.kernel_size(), s = o.stride(), p = o.padding(), d = o.dilation();
    const std::int64_t groups = o.groups();
    auto fail = [&](const std::string& expected) {
      throw error("Conv2d(in_channels=" + std::to_string(o.in_channels()) +
                  ", out_channels=" + std::to_string(o.out_channels()) + ", kernel_size=" + k.as_given_string() +
                  ", stride=" + s.as_given_string() + ", padding=" + p.as_given_string() + ", dilation=" +
                  d.as_given_string() + ", groups=" + std::to_string(groups) + "): expected " + expected);
    };
    if (o.in_channels() < 1 || o.out_channels() < 1 || k.height < 1 || k.width < 1 || s.height < 1 || s.width < 1 ||
        p.height < 0 || p.width < 0 || d.height < 1 || d.width < 1 || groups < 1)
      fail("positive channels, kernel size, stride, dilation and groups, and padding >= 0");
    if (o.in_channels() % groups != 0 || o.out_channels() % groups != 0)
      fail("in_channels and out_channels divisible by groups");
    return {o.out_channels(), o.in_channels() / groups, k.height, k.width};
  }

  Geometry geometry(const Shape& input) const {
    if (input.rank() != 4 || input[1] != in_channels_)
      throw error(this->repr() + ": expected input [N, " + std::to_string(in_channels_) + ", H, W], found " +
                  input.str());
    const std::int64_t out_height = ops::Conv2dGeometry::output_size(input[2], kernel_size_.height, stride_.height,
                                                                     padding_.height, dilation_.height);
    const std::int64_t out_width =
        ops::Conv2dGeometry::output_size(input[3], kernel_size_.width, stride_.width, padding_.width, dilation_.width);
    if (out_height < 1 || out_width < 1)
      throw error(this->repr() + ": input " + input.str() + " is smaller than the (dilated) kernel (after padding)");
    ops::Conv2dGeometry g{
        input[0],           in_channels_,   input[2],      input[3],        out_channels_,  kernel_size_.height,
        kernel_size_.width, stride_.height, stride_.width, padding_.height, padding_.width, dilation_.height,
        dilation_.width,    groups_,        out_height,    out_width};
    return {g};
  }

  std::int64_t in_channels_, out_channels_;
  IntPair kernel_size_, stride_, padding_, dilation_;
  std::int64_t groups_;
  bool fused_relu_ = false;
  bool input_relu_grad_ = false;  // backward applies the gradient of the ReLU before it
  const Module<T>* pool_ = nullptr;
  bool pooled_last_ = false;  // whether the last forward returned the pooled output
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, pooled_, grad_input_;
  ops::Conv2dWorkspace<T> workspace_;
};

}  // namespace minicnn
