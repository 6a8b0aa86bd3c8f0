#pragma once
// The models the program trains, evaluates and exports (--model NAME), and the data conventions
// that go with them: the one place to change to add a model.
//
// A model is built by name; the name is stored in every file the program writes (metadata
// "minicnn.model" of model.safetensors and checkpoint.safetensors), so eval, predict, similar and
// export find the architecture from the file alone. A file without that entry (converted from
// PyTorch by tools/pytorch_to_safetensors.py or tools/resnet_torch.py) is recognised by its
// tensor names.
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/data/fashion_mnist.hpp"
#include "minicnn/error.hpp"
#include "minicnn/io/safetensors.hpp"
#include "minicnn/layers/dropout.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/models/fashion_cnn.hpp"
#include "minicnn/models/fashion_cnn_se.hpp"
#include "minicnn/models/resnet.hpp"

namespace fashion_mnist {

inline constexpr std::int64_t num_classes = 10;

// A network with its name and its penultimate embedding (what `similar` compares).
class Model {
 public:
  using Features = std::function<const minicnn::Tensor<float>&(const minicnn::Tensor<float>&)>;

  Model(std::string name, std::unique_ptr<minicnn::Module<float>> module, Features features,
        std::int64_t feature_size)
      : name_(std::move(name)),
        module_(std::move(module)),
        features_(std::move(features)),
        feature_size_(feature_size) {}

  const std::string& name() const { return name_; }
  minicnn::Module<float>& module() { return *module_; }

  const minicnn::Tensor<float>& forward(const minicnn::Tensor<float>& input) { return module_->forward(input); }
  void backward(const minicnn::Tensor<float>& grad_logits) { module_->backward(grad_logits); }
  // [N, feature_size()]: the input of the last Linear layer, in the current mode.
  const minicnn::Tensor<float>& features(const minicnn::Tensor<float>& input) { return features_(input); }
  std::int64_t feature_size() const { return feature_size_; }

  // The dropout layers, by their state_dict-style names: their mask generators are part of a
  // checkpoint.
  std::vector<std::pair<std::string, minicnn::Dropout<float>*>> dropouts() {
    std::vector<std::pair<std::string, minicnn::Dropout<float>*>> out;
    for (auto& [name, module] : module_->named_modules())
      if (auto* dropout = dynamic_cast<minicnn::Dropout<float>*>(module)) out.push_back({name, dropout});
    return out;
  }

 private:
  std::string name_;
  std::unique_ptr<minicnn::Module<float>> module_;
  Features features_;
  std::int64_t feature_size_;
};

struct ModelEntry {
  std::string name, description;
  std::function<Model(std::uint64_t seed)> make;
};

namespace detail {

// An entry for a network class with features() and feature_size(), as FashionCNN and ResNet
// have; `build(seed)` returns the network.
template <typename Build>
ModelEntry entry(std::string name, std::string description, Build build) {
  auto make = [name, build](std::uint64_t seed) {
    auto network = build(seed);
    auto* raw = network.get();
    const std::int64_t feature_size = raw->feature_size();
    return Model(
        name, std::move(network),
        [raw](const minicnn::Tensor<float>& input) -> const minicnn::Tensor<float>& { return raw->features(input); },
        feature_size);
  };
  return {std::move(name), std::move(description), std::move(make)};
}

}  // namespace detail

// Every model --model accepts, the default first. Weights for a seed are each model's own
// initialisation (PyTorch's default for FashionCNN, torchvision's for the ResNets).
inline const std::vector<ModelEntry>& model_entries() {
  using namespace minicnn::models;
  using detail::entry;
  static const std::vector<ModelEntry> entries = {
      entry("fashion_cnn", "the tutorial's FashionCNN, 74,602 parameters",
            [](std::uint64_t seed) { return std::make_unique<FashionCNN<float>>(seed); }),
      entry("fashion_cnn_se",
            "FashionCNN with a squeeze-and-excitation block after each conv stage, 77,282 parameters",
            [](std::uint64_t seed) { return std::make_unique<FashionCNNSE<float>>(seed); }),
      entry("resnet18", "torchvision's ResNet-18 with a 3x3 stride-1 one-channel conv1, 11,172,810 parameters",
            [](std::uint64_t seed) { return resnet18<float>(num_classes, seed); }),
      entry("resnet18_se", "resnet18 with SqueezeExcitation(c, c / 16) in every block, 11,261,890 parameters",
            [](std::uint64_t seed) { return resnet18_se<float>(num_classes, seed); }),
      entry("fashion_resnet",
            "a small ResNet for 28x28 images: one BasicBlock each at 32, 64, 128 channels, no stem max-pool, "
            "308,074 parameters",
            [](std::uint64_t seed) { return fashion_resnet<float>(num_classes, seed); }),
      entry("fashion_resnet_se", "fashion_resnet with SqueezeExcitation(c, c / 8) in every block, 313,702 parameters",
            [](std::uint64_t seed) { return fashion_resnet_se<float>(num_classes, seed); }),
  };
  return entries;
}

inline std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const ModelEntry& entry : model_entries()) names.push_back(entry.name);
  return names;
}

// "fashion_cnn, fashion_cnn_se, ...", for error messages.
inline std::string model_list() {
  std::string list;
  for (const std::string& name : model_names()) list += (list.empty() ? "" : ", ") + name;
  return list;
}

// The entry called `name`, or an error that names the known ones.
inline const ModelEntry& model_entry(const std::string& name) {
  for (const ModelEntry& entry : model_entries())
    if (entry.name == name) return entry;
  throw minicnn::error("unknown model '" + name + "'; expected one of " + model_list());
}

inline Model make_model(const std::string& name, std::uint64_t seed) { return model_entry(name).make(seed); }

// The metadata entry naming the architecture of a file this program writes.
inline constexpr const char* model_metadata_key = "minicnn.model";

// The model a weights file holds: its "minicnn.model" metadata, else the model whose state_dict
// names are exactly the file's tensor names (each candidate is built to list them: only files
// without the metadata pay for it).
inline std::string identify_model(const minicnn::io::SafetensorsFile& file) {
  const auto stored = file.metadata().find(model_metadata_key);
  if (stored != file.metadata().end()) return model_entry(stored->second).name;
  std::set<std::string> names;
  for (const minicnn::io::TensorInfo& entry : file.tensors()) names.insert(entry.name);
  for (const ModelEntry& entry : model_entries()) {
    Model candidate = entry.make(0);
    std::set<std::string> expected;
    for (const auto& named : candidate.module().state()) expected.insert(named.name);
    if (expected == names) return entry.name;
  }
  throw minicnn::error(file.source() + ": no \"" + model_metadata_key + "\" metadata, and its " +
                       std::to_string(names.size()) + " tensor names are those of none of the models (" +
                       model_list() + ")");
}

// The tutorial's preprocessing: ToTensor (x / 255, done by the loader), then Normalize(0.5, 0.5).
inline constexpr float normalize_mean = 0.5f, normalize_std = 0.5f;

inline std::vector<std::string> class_names() {
  const auto& names = minicnn::data::fashion_mnist_class_names();
  return {names.begin(), names.end()};
}

}  // namespace fashion_mnist
