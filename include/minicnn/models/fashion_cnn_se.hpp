#pragma once
// FashionCNNSE: the tutorial's FashionCNN with a squeeze-and-excitation block after each of its
// two conv stages, after the stage's max-pool (an SE scale is positive per channel, so it
// commutes with the max-pool; after it, the squeeze averages a quarter of the values):
//   feature_extractor: 0 Conv(1->32), 1 ReLU, 2 Conv(32->32), 3 ReLU, 4 MaxPool(2),
//                      5 SqueezeExcitation(32, 8),
//                      6 Conv(32->64), 7 ReLU, 8 Conv(64->64), 9 ReLU, 10 MaxPool(2),
//                      11 SqueezeExcitation(64, 16)
//   classifier:        as FashionCNN (classifier.2 and classifier.5 are the Linears)
// The SE blocks' state is feature_extractor.5.fc1.weight, .fc1.bias, .fc2.weight, .fc2.bias
// (and .11.*); the convs after the first SE move to indices 6 and 8. Reduction 4 (squeeze 8 and
// 16 channels), not SENet's 16, which would leave 2 and 4 channels at these widths.
// 77,282 parameters. tools/fashion_cnn_torch.py's FashionCNNSE is the PyTorch twin.
#include <cstdint>
#include <string>

#include "minicnn/models/fashion_cnn.hpp"

namespace minicnn::models {

template <typename T = float>
class FashionCNNSE final : public FashionCNN<T> {
 public:
  static constexpr std::int64_t se_reduction = 4;

  // Weights with PyTorch's default initialisation (the SE convs included), as FashionCNN.
  explicit FashionCNNSE(std::uint64_t seed = 0) : FashionCNN<T>(seed, se_reduction) {}

  std::string type_name() const override { return "FashionCNNSE"; }
};

}  // namespace minicnn::models
