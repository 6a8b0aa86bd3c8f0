#pragma once
// The residual blocks of torchvision.models.resnet, with its state_dict names so weights load
// both ways:
//   BasicBlock(in, planes, stride, downsample):  conv1 3x3/stride, bn1, relu, conv2 3x3, bn2
//   Bottleneck(in, planes, stride, downsample):  conv1 1x1, bn1, conv2 3x3/stride, bn2,
//                                                conv3 1x1 (planes * 4), bn3, relu
//   y = relu(bn_last(...) [* se] + shortcut(x)), shortcut = downsample (a Sequential "0": 1x1
//   conv with stride, no bias; "1": BatchNorm2d) or the identity.
// `se_squeeze_channels` > 0 adds a SqueezeExcitation named "se" on the residual branch after the
// last BatchNorm and before the addition (SENet's placement).
//
// torchvision calls its one `relu` module after every stage; a minicnn module keeps its input
// for backward, so a block runs one ReLU per use and registers the first as "relu" (ReLU has no
// state, so the state_dict is the same).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "minicnn/layers/batchnorm.hpp"
#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/layers/relu.hpp"
#include "minicnn/layers/sequential.hpp"
#include "minicnn/layers/squeeze_excitation.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

namespace detail {

// What BasicBlock and Bottleneck share: stages of conv -> bn (-> relu between stages), the
// optional SE, the shortcut, the addition and the last ReLU.
template <typename T>
class ResidualBlock : public Module<T> {
 public:
  Shape output_shape(const Shape& input) const override {
    Shape shape = input;
    for (const Stage& stage : stages_) shape = stage.norm->output_shape(stage.conv->output_shape(shape));
    const Shape shortcut = downsample_ ? downsample_->output_shape(input) : input;
    if (shape != shortcut)
      throw error(this->type_name() + ": the residual branch gives " + shape.str() + " but the shortcut gives " +
                  shortcut.str() + " for input " + input.str() + " (a stride or channel change needs a downsample)");
    return shape;
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    output_shape(input.shape());
    const Tensor<T>* x = &input;
    for (std::size_t i = 0; i < stages_.size(); ++i) {
      x = &stages_[i].norm->forward(stages_[i].conv->forward(*x));
      if (i + 1 < stages_.size()) x = &relus_[i]->forward(*x);
    }
    if (se_) x = &se_->forward(*x);
    const Tensor<T>& shortcut = downsample_ ? downsample_->forward(input) : input;
    ops::add(*x, shortcut, sum_);
    return relus_.back()->forward(sum_);
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>& grad_sum = relus_.back()->backward(grad_output);
    const Tensor<T>* grad = se_ ? &se_->backward(grad_sum) : &grad_sum;
    for (std::size_t i = stages_.size(); i-- > 0;) {
      if (i + 1 < stages_.size()) grad = &relus_[i]->backward(*grad);
      grad = &stages_[i].conv->backward(stages_[i].norm->backward(*grad));
    }
    const Tensor<T>& grad_shortcut = downsample_ ? downsample_->backward(grad_sum) : grad_sum;
    if (!this->input_grad()) {
      grad_input_.resize(Shape{});
      return grad_input_;
    }
    ops::add(*grad, grad_shortcut, grad_input_);
    return grad_input_;
  }

  void set_input_grad(bool enabled) override {
    Module<T>::set_input_grad(enabled);
    stages_.front().conv->set_input_grad(enabled);
    if (downsample_) downsample_->set_input_grad(enabled);
  }

  Sequential<T>* downsample() { return downsample_; }
  SqueezeExcitation<T>* se() { return se_; }

 protected:
  struct Stage {
    Conv2d<T>* conv;
    BatchNorm2d<T>* norm;
  };

  // Registers conv<i> and bn<i> for stage i (1-based names).
  void add_stage(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel, std::int64_t stride,
                 Generator& gen) {
    const std::string index = std::to_string(stages_.size() + 1);
    auto& conv = this->register_module(
        "conv" + index, std::make_unique<Conv2d<T>>(in_channels, out_channels, kernel, stride, kernel / 2, false, gen));
    auto& norm = this->register_module("bn" + index, std::make_unique<BatchNorm2d<T>>(out_channels));
    stages_.push_back({&conv, &norm});
  }
  // Each ReLU between stages is applied by the BatchNorm before it as it stores its output (the
  // fusion Sequential plans for BatchNorm + ReLU); the last one follows the addition.
  void plan_fusion() {
    for (std::size_t i = 0; i + 1 < stages_.size(); ++i)
      if (stages_[i].norm->fuse_pointwise(Pointwise::relu)) relus_[i]->set_applied_by_producer(true);
  }
  // The ReLU registered as "relu" plus one unregistered ReLU per further use.
  void add_relus(std::size_t uses) {
    relus_.push_back(&this->register_module("relu", std::make_unique<ReLU<T>>()));
    for (std::size_t i = 1; i < uses; ++i) {
      extra_relus_.push_back(std::make_unique<ReLU<T>>());
      relus_.push_back(extra_relus_.back().get());
    }
  }
  void add_se(std::int64_t channels, std::int64_t squeeze_channels, Generator& gen) {
    if (squeeze_channels > 0)
      se_ = &this->register_module("se", std::make_unique<SqueezeExcitation<T>>(channels, squeeze_channels, gen));
  }
  // torchvision's downsample: 1x1 conv with stride, no bias, then BatchNorm2d.
  void add_downsample(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride, Generator& gen) {
    if (stride == 1 && in_channels == out_channels) return;
    auto shortcut = std::make_unique<Sequential<T>>();
    shortcut->template emplace<Conv2d<T>>(in_channels, out_channels, 1, stride, 0, false, gen);
    shortcut->template emplace<BatchNorm2d<T>>(out_channels);
    downsample_ = &this->register_module("downsample", std::move(shortcut));
  }

  std::vector<Stage> stages_;
  std::vector<ReLU<T>*> relus_;  // relus_[i] after stage i; the last one after the addition
  std::vector<std::unique_ptr<ReLU<T>>> extra_relus_;
  SqueezeExcitation<T>* se_ = nullptr;
  Sequential<T>* downsample_ = nullptr;
  Tensor<T> sum_, grad_input_;
};

}  // namespace detail

// torchvision's BasicBlock (expansion 1). The downsample is made when the stride or the channel
// count changes, as torchvision's _make_layer does.
template <typename T = float>
class BasicBlock final : public detail::ResidualBlock<T> {
 public:
  static constexpr std::int64_t expansion = 1;

  BasicBlock(std::int64_t in_channels, std::int64_t planes, std::int64_t stride = 1,
             std::int64_t se_squeeze_channels = 0, Generator& gen = default_generator()) {
    this->add_stage(in_channels, planes, 3, stride, gen);
    this->add_relus(2);
    this->add_stage(planes, planes, 3, 1, gen);
    this->add_se(planes, se_squeeze_channels, gen);
    this->add_downsample(in_channels, planes * expansion, stride, gen);
    this->plan_fusion();
  }

  std::string type_name() const override { return "BasicBlock"; }
};

// torchvision's Bottleneck (expansion 4, stride on the 3x3 conv as in ResNet v1.5).
template <typename T = float>
class Bottleneck final : public detail::ResidualBlock<T> {
 public:
  static constexpr std::int64_t expansion = 4;

  Bottleneck(std::int64_t in_channels, std::int64_t planes, std::int64_t stride = 1,
             std::int64_t se_squeeze_channels = 0, Generator& gen = default_generator()) {
    this->add_stage(in_channels, planes, 1, 1, gen);
    this->add_stage(planes, planes, 3, stride, gen);
    this->add_stage(planes, planes * expansion, 1, 1, gen);
    this->add_relus(3);
    this->add_se(planes * expansion, se_squeeze_channels, gen);
    this->add_downsample(in_channels, planes * expansion, stride, gen);
    this->plan_fusion();
  }

  std::string type_name() const override { return "Bottleneck"; }
};

}  // namespace minicnn
