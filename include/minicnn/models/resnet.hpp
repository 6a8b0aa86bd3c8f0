#pragma once
// ResNet as torchvision.models.resnet builds it, adapted to one-channel 28x28 images:
//   conv1 (3x3, stride 1, padding 1, no bias; torchvision's is 7x7 stride 2 on 3 channels),
//   bn1, relu, maxpool = MaxPool2d(3, 2, 1), layer1..layer4 (Sequentials "0", "1", ... of
//   BasicBlock or Bottleneck; layer1 stride 1, the others stride 2, with torchvision's
//   _make_layer downsample rule), avgpool = AdaptiveAvgPool2d(1), flatten, fc = Linear.
// The state_dict names are torchvision's exactly (conv1.weight, bn1.running_mean,
// layer1.0.conv1.weight, layer2.0.downsample.0.weight, ..., fc.bias): the child "flatten" (what
// torchvision's forward does with torch.flatten) has no state, so it adds no name. repr() shows
// it, which torchvision's does not.
// Feature maps of a 28x28 input: 28 (conv1), 14 (maxpool, layer1), 7 (layer2), 4 (layer3),
// 2 (layer4), then 1.
//
// Initialisation as torchvision (zero_init_residual = false): every Conv2d (the SE convs
// included, as torchvision's loop over self.modules() would do) kaiming_normal_(fan_out, relu);
// BatchNorm weight 1, bias 0; Linear keeps PyTorch's default. Conv biases (SE only) keep the
// default too. Values come from minicnn's generator: the distribution is torchvision's, the
// numbers are not.
//
// SE variants put a SqueezeExcitation(c, c / se_reduction) named "se" in every block, on the
// residual branch after the last BatchNorm and before the addition (see resnet_blocks.hpp).
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "minicnn/error.hpp"
#include "minicnn/layers/adaptive_avg_pool2d.hpp"
#include "minicnn/layers/batchnorm.hpp"
#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/flatten.hpp"
#include "minicnn/layers/init.hpp"
#include "minicnn/layers/linear.hpp"
#include "minicnn/layers/maxpool2d.hpp"
#include "minicnn/layers/relu.hpp"
#include "minicnn/layers/resnet_blocks.hpp"
#include "minicnn/layers/sequential.hpp"

namespace minicnn::models {

enum class ResNetBlock { basic, bottleneck };

struct ResNetOptions {
  ResNetBlock block = ResNetBlock::basic;
  std::array<std::int64_t, 4> blocks_per_layer{2, 2, 2, 2};  // resnet18
  std::int64_t in_channels = 1;
  std::int64_t num_classes = 10;
  // 0: no squeeze-and-excitation; r: SqueezeExcitation(c, c / r) in every block.
  std::int64_t se_reduction = 0;
};

template <typename T = float>
class ResNet : public Sequential<T> {
 public:
  explicit ResNet(const ResNetOptions& options, std::uint64_t seed = 0) : options_(checked(options)) {
    Generator gen(seed);
    this->add("conv1", std::make_unique<Conv2d<T>>(options.in_channels, 64, 3, 1, 1, false, gen));
    this->add("bn1", std::make_unique<BatchNorm2d<T>>(64));
    this->add("relu", std::make_unique<ReLU<T>>());
    this->add("maxpool", std::make_unique<MaxPool2d<T>>(3, 2, 1));
    const std::int64_t expansion =
        options.block == ResNetBlock::basic ? BasicBlock<T>::expansion : Bottleneck<T>::expansion;
    std::int64_t in_channels = 64;
    for (std::size_t layer = 0; layer < 4; ++layer) {
      const std::int64_t planes = std::int64_t{64} << layer;
      const std::int64_t se_squeeze = options.se_reduction > 0 ? planes * expansion / options.se_reduction : 0;
      auto blocks = std::make_unique<Sequential<T>>();
      for (std::int64_t index = 0; index < options.blocks_per_layer[layer]; ++index) {
        const std::int64_t stride = layer > 0 && index == 0 ? 2 : 1;
        if (options.block == ResNetBlock::basic)
          blocks->template emplace<BasicBlock<T>>(in_channels, planes, stride, se_squeeze, gen);
        else
          blocks->template emplace<Bottleneck<T>>(in_channels, planes, stride, se_squeeze, gen);
        in_channels = planes * expansion;
      }
      layers_[layer] = blocks.get();
      this->add("layer" + std::to_string(layer + 1), std::move(blocks));
    }
    this->add("avgpool", std::make_unique<AdaptiveAvgPool2d<T>>(1, 1));
    this->add("flatten", std::make_unique<Flatten<T>>());
    fc_ = &static_cast<Linear<T>&>(
        this->add("fc", std::make_unique<Linear<T>>(in_channels, options.num_classes, true, gen)));
    for (auto& [name, module] : this->named_modules()) {
      if (auto* conv = dynamic_cast<Conv2d<T>*>(module))
        kaiming_normal_(conv->weight.value, FanMode::fan_out, Nonlinearity::relu, gen);
      // BatchNorm2d starts with weight 1 and bias 0 already: torchvision's constants.
    }
    // The image needs no gradient: skip conv1's backward-data pass, as PyTorch does.
    this->set_input_grad(false);
  }

  const ResNetOptions& options() const { return options_; }
  // layer(1) .. layer(4), numbered as their names.
  Sequential<T>& layer(std::size_t number) {
    if (number < 1 || number > layers_.size())
      throw error("ResNet::layer(" + std::to_string(number) + "): expected 1 to 4");
    return *layers_[number - 1];
  }
  Linear<T>& fc() { return *fc_; }

  // The penultimate embedding: the flattened avgpool output [N, fc.in_features] (512 for
  // BasicBlock ResNets, 2048 for Bottleneck ones), which fc maps to the logits. Runs every child
  // but fc in the current mode: call eval() first for BatchNorm's running statistics. The result
  // is held by the model until the next forward() or features().
  const Tensor<T>& features(const Tensor<T>& input) {
    const Tensor<T>* x = &input;
    for (std::size_t i = 0; i + 1 < this->size(); ++i) x = &(*this)[i].forward(*x);
    return *x;
  }
  std::int64_t feature_size() const { return fc_->in_features(); }

  std::string type_name() const override { return "ResNet"; }

 private:
  static const ResNetOptions& checked(const ResNetOptions& options) {
    bool ok = options.in_channels >= 1 && options.num_classes >= 1 && options.se_reduction >= 0;
    for (std::int64_t count : options.blocks_per_layer) ok = ok && count >= 1;
    const std::int64_t expansion = options.block == ResNetBlock::basic ? 1 : 4;
    // The narrowest SE (layer1: 64 * expansion channels) must keep at least one channel.
    if (ok && options.se_reduction > 0) ok = 64 * expansion / options.se_reduction >= 1;
    if (!ok)
      throw error("ResNet(in_channels=" + std::to_string(options.in_channels) +
                  ", num_classes=" + std::to_string(options.num_classes) + ", blocks_per_layer=[" +
                  std::to_string(options.blocks_per_layer[0]) + ", " + std::to_string(options.blocks_per_layer[1]) +
                  ", " + std::to_string(options.blocks_per_layer[2]) + ", " +
                  std::to_string(options.blocks_per_layer[3]) +
                  "], se_reduction=" + std::to_string(options.se_reduction) +
                  "): expected positive sizes, at least one block per layer and an SE reduction that leaves "
                  "at least one squeeze channel");
    return options;
  }

  ResNetOptions options_;
  std::array<Sequential<T>*, 4> layers_{};
  Linear<T>* fc_ = nullptr;
};

// torchvision.models.resnet18(num_classes) with conv1 = Conv2d(1, 64, 3, 1, 1, bias=False):
// 11,172,810 parameters for 10 classes. Input [N, 1, 28, 28], logits [N, num_classes].
template <typename T = float>
std::unique_ptr<ResNet<T>> resnet18(std::int64_t num_classes = 10, std::uint64_t seed = 0) {
  ResNetOptions options;
  options.num_classes = num_classes;
  return std::make_unique<ResNet<T>>(options, seed);
}

// resnet18 with SqueezeExcitation(c, c / 16) named "se" in every BasicBlock (c = 64, 128, 256,
// 512: squeeze 4, 8, 16, 32): 11,261,890 parameters for 10 classes.
template <typename T = float>
std::unique_ptr<ResNet<T>> resnet18_se(std::int64_t num_classes = 10, std::uint64_t seed = 0) {
  ResNetOptions options;
  options.num_classes = num_classes;
  options.se_reduction = 16;
  return std::make_unique<ResNet<T>>(options, seed);
}

}  // namespace minicnn::models
