#pragma once
// Conv2d: square kernel, same stride and zero padding on both axes, like the PyTorch layer
// with int arguments. The arithmetic lives in ops/ (im2col + GEMM).
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/layers/init.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

template <typename T = float>
class Conv2d final : public Module<T> {
 public:
  Parameter<T> weight;  // [out_channels, in_channels, kernel_size, kernel_size]
  Parameter<T> bias;    // [out_channels], empty when bias = false

  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, std::int64_t stride = 1,
         std::int64_t padding = 0, bool use_bias = true, Generator& gen = default_generator())
      : weight("weight", checked_weight_shape(in_channels, out_channels, kernel_size, stride, padding)),
        bias("bias", use_bias ? Shape{out_channels} : Shape{}),
        in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size), stride_(stride),
        padding_(padding) {
    init_pytorch_default(weight.value, has_bias() ? &this->bias.value : nullptr, in_channels * kernel_size * kernel_size, gen);
    this->register_parameter(weight);
    if (has_bias()) this->register_parameter(bias);
  }

  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  std::int64_t kernel_size() const { return kernel_size_; }
  std::int64_t stride() const { return stride_; }
  std::int64_t padding() const { return padding_; }
  bool has_bias() const { return !bias.value.empty(); }

  Shape output_shape(const Shape& input) const override { return geometry(input).out_shape(); }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    const Geometry g = geometry(input.shape());
    output_.resize(g.out_shape());
    ops::conv2d_forward(g.conv, input, weight.value, has_bias() ? &bias.value : nullptr, output_, workspace_,
                        fused_relu_);
    input_ = &input;
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

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "Conv2d");
    const Geometry g = geometry(input_->shape());
    if (this->input_grad()) grad_input_.resize(input_->shape());
    else grad_input_.resize(Shape{});
    ops::conv2d_backward(g.conv, *input_, weight.value, grad_output, this->input_grad() ? &grad_input_ : nullptr,
                         weight.grad, has_bias() ? &bias.grad : nullptr, workspace_);
    return grad_input_;
  }

  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override {
    const auto k = std::to_string(kernel_size_), s = std::to_string(stride_), p = std::to_string(padding_);
    return std::to_string(in_channels_) + ", " + std::to_string(out_channels_) + ", kernel_size=(" + k + ", " + k +
           "), stride=(" + s + ", " + s + ")" + (padding_ ? ", padding=(" + p + ", " + p + ")" : "") +
           (has_bias() ? "" : ", bias=False");
  }

 private:
  struct Geometry {
    ops::Conv2dGeometry conv;
    Shape out_shape() const { return {conv.batch, conv.out_channels, conv.out_height, conv.out_width}; }
  };

  static Shape checked_weight_shape(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size,
                                    std::int64_t stride, std::int64_t padding) {
    if (in_channels < 1 || out_channels < 1 || kernel_size < 1 || stride < 1 || padding < 0)
      throw error("Conv2d(in_channels=" + std::to_string(in_channels) + ", out_channels=" + std::to_string(out_channels) +
                  ", kernel_size=" + std::to_string(kernel_size) + ", stride=" + std::to_string(stride) +
                  ", padding=" + std::to_string(padding) +
                  "): expected positive channels, kernel size and stride, and padding >= 0");
    return {out_channels, in_channels, kernel_size, kernel_size};
  }

  Geometry geometry(const Shape& input) const {
    if (input.rank() != 4 || input[1] != in_channels_)
      throw error(this->repr() + ": expected input [N, " + std::to_string(in_channels_) + ", H, W], found " + input.str());
    const std::int64_t height = input[2] + 2 * padding_, width = input[3] + 2 * padding_;
    if (height < kernel_size_ || width < kernel_size_)
      throw error(this->repr() + ": input " + input.str() + " is smaller than the kernel (after padding)");
    ops::Conv2dGeometry g{input[0], in_channels_, input[2], input[3], out_channels_, kernel_size_, kernel_size_,
                          stride_, padding_, (height - kernel_size_) / stride_ + 1, (width - kernel_size_) / stride_ + 1};
    return {g};
  }

  std::int64_t in_channels_, out_channels_, kernel_size_, stride_, padding_;
  bool fused_relu_ = false;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_;
  ops::Conv2dWorkspace<T> workspace_;
};

}  // namespace minicnn
