#pragma once
// FashionCNN, the Fashion-MNIST tutorial's model, layer for layer:
//   feature_extractor: Conv(1->32, 3, pad 1), ReLU, Conv(32->32, 3, pad 1), ReLU, MaxPool(2),
//                      Conv(32->64, 3, pad 1), ReLU, Conv(64->64, 3, pad 1), ReLU, MaxPool(2)
//   classifier:        AdaptiveAvgPool(1, 1), Flatten, Linear(64->128), ReLU, Dropout(0.5),
//                      Linear(128->10)
// 74,602 parameters (the tutorial's text says about 1.2M; the global average pool makes the
// head tiny). Input [N, 1, 28, 28], output logits [N, 10].
// features(input) is the penultimate embedding: the 128-d output of Linear(64->128) + ReLU
// (classifier.3), the input of the last Linear (dropout, the identity in eval mode, left out).
// FashionCNNSE (fashion_cnn_se.hpp) is this model with squeeze-and-excitation after each stage.
#include <cstdint>
#include <memory>
#include <string>

#include "minicnn/layers/adaptive_avg_pool2d.hpp"
#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/dropout.hpp"
#include "minicnn/layers/flatten.hpp"
#include "minicnn/layers/linear.hpp"
#include "minicnn/layers/maxpool2d.hpp"
#include "minicnn/layers/relu.hpp"
#include "minicnn/layers/sequential.hpp"
#include "minicnn/layers/squeeze_excitation.hpp"

namespace minicnn::models {

template <typename T = float>
class FashionCNN : public Sequential<T> {
 public:
  static constexpr std::int64_t num_classes = 10;

  // Weights drawn with PyTorch's default initialisation from a generator seeded with `seed`;
  // the dropout mask stream is seeded from the same generator.
  explicit FashionCNN(std::uint64_t seed = 0) : FashionCNN(seed, 0) {}

  Sequential<T>& feature_extractor() { return *feature_extractor_; }
  Sequential<T>& classifier() { return *classifier_; }
  Dropout<T>& dropout() { return *dropout_; }

  // The penultimate embedding [N, 128]: ReLU(Linear(64->128)) of the pooled features, before
  // dropout and the last Linear. Runs in the current mode; held until the next forward().
  const Tensor<T>& features(const Tensor<T>& input) {
    const Tensor<T>* x = &feature_extractor_->forward(input);
    for (std::size_t i = 0; i <= penultimate_index; ++i) x = &(*classifier_)[i].forward(*x);
    return *x;
  }
  std::int64_t feature_size() const { return 128; }

  std::string type_name() const override { return "FashionCNN"; }

 protected:
  // se_reduction > 0 adds SqueezeExcitation(c, c / se_reduction) after each conv stage's
  // max-pool (FashionCNNSE); 0 is the tutorial's model, whose weights for a seed do not change.
  FashionCNN(std::uint64_t seed, std::int64_t se_reduction) {
    Generator gen(seed);
    auto features = std::make_unique<Sequential<T>>();
    features->template emplace<Conv2d<T>>(1, 32, 3, 1, 1, true, gen);
    features->template emplace<ReLU<T>>();
    features->template emplace<Conv2d<T>>(32, 32, 3, 1, 1, true, gen);
    features->template emplace<ReLU<T>>();
    features->template emplace<MaxPool2d<T>>(2);
    if (se_reduction > 0) features->template emplace<SqueezeExcitation<T>>(32, 32 / se_reduction, gen);
    features->template emplace<Conv2d<T>>(32, 64, 3, 1, 1, true, gen);
    features->template emplace<ReLU<T>>();
    features->template emplace<Conv2d<T>>(64, 64, 3, 1, 1, true, gen);
    features->template emplace<ReLU<T>>();
    features->template emplace<MaxPool2d<T>>(2);
    if (se_reduction > 0) features->template emplace<SqueezeExcitation<T>>(64, 64 / se_reduction, gen);
    auto classifier = std::make_unique<Sequential<T>>();
    classifier->template emplace<AdaptiveAvgPool2d<T>>(1, 1);
    classifier->template emplace<Flatten<T>>();
    classifier->template emplace<Linear<T>>(64, 128, true, gen);
    classifier->template emplace<ReLU<T>>();
    dropout_ = &classifier->template emplace<Dropout<T>>(0.5, gen.next_u64());
    classifier->template emplace<Linear<T>>(128, num_classes, true, gen);
    feature_extractor_ = features.get();
    classifier_ = classifier.get();
    this->add("feature_extractor", std::move(features));
    this->add("classifier", std::move(classifier));
    // The image needs no gradient: skip conv1's backward-data pass, as PyTorch does.
    this->set_input_grad(false);
  }

 private:
  // classifier: 0 AdaptiveAvgPool2d, 1 Flatten, 2 Linear(64->128), 3 ReLU, 4 Dropout, 5 Linear.
  static constexpr std::size_t penultimate_index = 3;

  Sequential<T>* feature_extractor_ = nullptr;
  Sequential<T>* classifier_ = nullptr;
  Dropout<T>* dropout_ = nullptr;
};

}  // namespace minicnn::models
