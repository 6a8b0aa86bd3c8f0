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
// Beyond torchvision (ResNetOptions): other stage widths (torchvision's are 64, 128, 256, 512),
// no maxpool (the child is then absent, not an identity), and fewer stages: trailing stages of 0
// blocks are not built, so a 3-stage network has no layer4 and no layer4.* names. That is
// fashion_resnet below: layer1 at 28x28, layer2 at 14, layer3 at 7.
//
// Initialisation as torchvision (zero_init_residual = false): every Conv2d (the SE convs
// included, as torchvision's loop over self.modules() would do) kaiming_normal_(fan_out, relu);
// BatchNorm weight 1, bias 0; Linear keeps PyTorch's default. Conv biases (SE only) keep the
// default too. Values come from minicnn's generator: the distribution is torchvision's, the
// numbers are not.
//
// SE variants put a SqueezeExcitation(c, c / se_reduction) named "se" in every block, on the
// residual branch after the last BatchNorm and before the addition (see resnet_blocks.hpp).
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
  // Blocks of layer1..layer4. layer1 needs at least one; a 0 ends the network there (every
  // later entry must be 0 too): {2, 2, 2, 0} builds layer1..layer3 only.
  std::array<std::int64_t, 4> blocks_per_layer{2, 2, 2, 2};  // resnet18
  // `planes` of layer1..layer4 (a stage outputs planes * expansion channels); conv1 outputs
  // widths[0]. Entries of stages not built are not read.
  std::array<std::int64_t, 4> widths{64, 128, 256, 512};  // resnet18
  // false: no "maxpool" child, layer1 runs at the input's resolution (28x28).
  bool stem_maxpool = true;
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
    const std::int64_t stem_channels = options.widths[0];
    this->add("conv1", std::make_unique<Conv2d<T>>(options.in_channels, stem_channels, 3, 1, 1, false, gen));
    this->add("bn1", std::make_unique<BatchNorm2d<T>>(stem_channels));
    this->add("relu", std::make_unique<ReLU<T>>());
    if (options.stem_maxpool) this->add("maxpool", std::make_unique<MaxPool2d<T>>(3, 2, 1));
    const std::int64_t expansion = expansion_of(options.block);
    std::int64_t in_channels = stem_channels;
    for (std::size_t layer = 0; layer < num_stages(options); ++layer) {
      const std::int64_t planes = options.widths[layer];
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
      layers_.push_back(blocks.get());
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
  // layer(1) .. layer(num_layers()), numbered as their names.
  Sequential<T>& layer(std::size_t number) {
    if (number < 1 || number > layers_.size())
      throw error("ResNet::layer(" + std::to_string(number) + "): expected 1 to " + std::to_string(layers_.size()));
    return *layers_[number - 1];
  }
  std::size_t num_layers() const { return layers_.size(); }
  Linear<T>& fc() { return *fc_; }

  // The penultimate embedding: the flattened avgpool output [N, fc.in_features] (the last
  // stage's width times the block's expansion: 512 for resnet18, 128 for fashion_resnet, 2048
  // for a resnet50), which fc maps to the logits. Runs every child but fc in the current mode:
  // call eval() first for BatchNorm's running statistics. The result is held by the model until
  // the next forward() or features().
  const Tensor<T>& features(const Tensor<T>& input) {
    const Tensor<T>* x = &input;
    for (std::size_t i = 0; i + 1 < this->size(); ++i) x = &(*this)[i].forward(*x);
    return *x;
  }
  std::int64_t feature_size() const { return fc_->in_features(); }

  std::string type_name() const override { return "ResNet"; }

 private:
  static std::int64_t expansion_of(ResNetBlock block) {
    return block == ResNetBlock::basic ? BasicBlock<T>::expansion : Bottleneck<T>::expansion;
  }
  // The stages built: up to the first 0 in blocks_per_layer.
  static std::size_t num_stages(const ResNetOptions& options) {
    std::size_t stages = 0;
    while (stages < options.blocks_per_layer.size() && options.blocks_per_layer[stages] > 0) ++stages;
    return stages;
  }

  static std::string list(const std::array<std::int64_t, 4>& values) {
    std::string text = "[";
    for (std::size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + std::to_string(values[i]);
    return text + "]";
  }

  static const ResNetOptions& checked(const ResNetOptions& options) {
    const std::size_t stages = num_stages(options);
    std::string problem;
    if (options.in_channels < 1 || options.num_classes < 1 || options.se_reduction < 0)
      problem = "expected in_channels >= 1, num_classes >= 1 and se_reduction >= 0";
    else if (stages == 0)
      problem = "expected at least one block in layer1";
    for (std::size_t layer = stages; problem.empty() && layer < options.blocks_per_layer.size(); ++layer)
      if (options.blocks_per_layer[layer] != 0)
        problem =
            "expected no negative block counts, and only 0 after a stage of 0 blocks (trailing stages of 0 "
            "blocks are omitted; a stage in the middle cannot be)";
    std::int64_t narrowest = 0;
    for (std::size_t layer = 0; problem.empty() && layer < stages; ++layer) {
      if (options.widths[layer] < 1) problem = "expected a positive width for every stage built";
      narrowest = layer == 0 ? options.widths[0] : std::min(narrowest, options.widths[layer]);
    }
    // The narrowest SE (widths * expansion channels) must keep at least one channel.
    if (problem.empty() && options.se_reduction > 0 &&
        narrowest * expansion_of(options.block) / options.se_reduction < 1)
      problem = "expected an SE reduction that leaves at least one squeeze channel in the narrowest stage";
    if (!problem.empty())
      throw error("ResNet(in_channels=" + std::to_string(options.in_channels) + ", num_classes=" +
                  std::to_string(options.num_classes) + ", blocks_per_layer=" + list(options.blocks_per_layer) +
                  ", widths=" + list(options.widths) + ", stem_maxpool=" + (options.stem_maxpool ? "true" : "false") +
                  ", se_reduction=" + std::to_string(options.se_reduction) + "): " + problem);
    return options;
  }

  ResNetOptions options_;
  std::vector<Sequential<T>*> layers_;  // layer1, layer2, ... as built
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

// fashion_resnet: a ResNet sized for training on Fashion-MNIST on a 2-core CPU (docs/model.md):
//   conv1 3x3 stride 1 (1 -> 32), bn1, relu, no maxpool;
//   layer1: BasicBlock(32) at 28x28, layer2: BasicBlock(64, stride 2) at 14x14,
//   layer3: BasicBlock(128, stride 2) at 7x7; avgpool, flatten, fc 128 -> num_classes.
// 308,074 parameters for 10 classes. Of the candidates measured (widths 32/64/128 with [2, 2, 2]
// or [1, 1, 1] blocks, 48/96/192 and 64/128/256 with [1, 1, 1]) it has the fastest training step,
// the only one near the 60,000-image epoch in two minutes that a one-hour run needs
// (BM_TrainStepFashionResNet; the table is in docs/model.md). The others stay one
// ResNetOptions away: fashion_resnet_options() with other blocks_per_layer or widths.
inline ResNetOptions fashion_resnet_options(std::int64_t num_classes = 10) {
  ResNetOptions options;
  options.blocks_per_layer = {1, 1, 1, 0};
  options.widths = {32, 64, 128, 0};
  options.stem_maxpool = false;
  options.num_classes = num_classes;
  return options;
}

template <typename T = float>
std::unique_ptr<ResNet<T>> fashion_resnet(std::int64_t num_classes = 10, std::uint64_t seed = 0) {
  return std::make_unique<ResNet<T>>(fashion_resnet_options(num_classes), seed);
}

// fashion_resnet with SqueezeExcitation(c, c / 8) named "se" in every BasicBlock: squeeze 4, 8, 16
// for c = 32, 64, 128 (reduction 16 would leave layer1 two squeeze channels; 8 gives layer1 the
// four of resnet18_se's). 313,702 parameters for 10 classes.
template <typename T = float>
std::unique_ptr<ResNet<T>> fashion_resnet_se(std::int64_t num_classes = 10, std::uint64_t seed = 0) {
  ResNetOptions options = fashion_resnet_options(num_classes);
  options.se_reduction = 8;
  return std::make_unique<ResNet<T>>(options, seed);
}

}  // namespace minicnn::models
