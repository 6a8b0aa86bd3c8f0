#pragma once
// The model the program trains, evaluates and exports, and the data conventions that go with it:
// the one place to change for another model.
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/data/fashion_mnist.hpp"
#include "minicnn/models/fashion_cnn.hpp"

namespace fashion_mnist {

using Model = minicnn::models::FashionCNN<float>;
inline constexpr const char* model_name = "FashionCNN";

// The model with the PyTorch-default initialisation drawn from `seed`.
inline Model make_model(std::uint64_t seed) { return Model(seed); }

// The tutorial's preprocessing: ToTensor (x / 255, done by the loader), then Normalize(0.5, 0.5).
inline constexpr float normalize_mean = 0.5f, normalize_std = 0.5f;

inline std::vector<std::string> class_names() {
  const auto& names = minicnn::data::fashion_mnist_class_names();
  return {names.begin(), names.end()};
}

}  // namespace fashion_mnist
