// PyTorch parity of the whole FashionCNN: from PyTorch's own float32 weights (manual_seed(0)
// init) and one batch of 8 images, the logits, the loss and every parameter's gradient must
// match tests/fixtures/model_fashion_cnn.bin (written by tools/make_fixtures.py, eval mode).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fixture.hpp"
#include "minicnn/conv_algorithm.hpp"
#include "minicnn/loss.hpp"
#include "minicnn/models/fashion_cnn.hpp"

using minicnn::conv_algorithm;
using minicnn::ConvAlgorithm;
using minicnn::set_conv_algorithm;
using minicnn::Tensor;
using minicnn::testing::compare;
using minicnn::testing::Difference;
using minicnn::testing::Fixture;

namespace {

// Entries of model_fashion_cnn.bin that are not parameters.
const std::set<std::string> non_parameter_entries = {"input", "targets", "logits", "loss"};

// Copies PyTorch's state_dict from the fixture into the model, checking that both have exactly
// the same parameter names and shapes.
template <typename T>
void load_state_dict(minicnn::models::FashionCNN<T>& model, const Fixture& fixture) {
  std::set<std::string> fixture_names;
  for (const std::string& name : fixture.names())
    if (non_parameter_entries.count(name) == 0 && name.rfind("grad.", 0) != 0) fixture_names.insert(name);
  std::set<std::string> model_names;
  for (auto& named : model.named_parameters()) {
    model_names.insert(named.name);
    INFO("parameter " << named.name);
    REQUIRE(fixture.has(named.name));
    Tensor<T> value = fixture.tensor<T>(named.name);
    minicnn::check_same_shape(value.shape(), named.parameter->value.shape(), "FashionCNN parameter " + named.name);
    named.parameter->value = value;
  }
  CHECK(model_names == fixture_names);
}

struct ModelDifferences {
  double logits = 0, loss = 0, worst_grad = 0;
  std::string worst_grad_name;
};

// One eval-mode forward + backward of FashionCNN<T> on the fixture's batch, the forward pass's
// 3x3 convolutions by `algorithm` (eval mode: automatic is Winograd F(4x4, 3x3) for conv2-4).
template <typename T>
ModelDifferences check_fashion_cnn(double tolerance, ConvAlgorithm algorithm = ConvAlgorithm::im2col) {
  const ConvAlgorithm saved = conv_algorithm();
  set_conv_algorithm(algorithm);
  struct Restore {
    ConvAlgorithm algorithm;
    ~Restore() { set_conv_algorithm(algorithm); }
  } restore{saved};
  const Fixture fixture = Fixture::load("model_fashion_cnn.bin");
  minicnn::models::FashionCNN<T> model(/*seed=*/12345);  // the seed is irrelevant: weights are overwritten
  load_state_dict(model, fixture);
  model.eval();  // Dropout off, as in the fixture

  const Tensor<T> input = fixture.tensor<T>("input");
  const std::vector<int> targets = fixture.integers("targets");
  minicnn::CrossEntropyLoss<T> criterion;
  ModelDifferences result;
  // Twice on the same model: the second pass runs on reused buffers.
  for (int run = 0; run < 2; ++run) {
    INFO("run " << run);
    model.zero_grad();
    const Tensor<T>& logits = model.forward(input);
    const Difference logits_difference = compare(logits, fixture.tensor("logits"), "FashionCNN logits");
    INFO("logits: max abs difference " << logits_difference.max_abs << ", relative " << logits_difference.relative());
    CHECK(logits_difference.relative() <= tolerance);
    result.logits = std::max(result.logits, logits_difference.relative());

    const double loss = static_cast<double>(criterion.forward(logits, targets));
    const double reference_loss = fixture.scalar("loss");
    const double loss_difference = std::abs(loss - reference_loss) / std::abs(reference_loss);
    INFO("loss " << loss << ", PyTorch " << reference_loss);
    CHECK(loss_difference <= tolerance);
    result.loss = std::max(result.loss, loss_difference);

    model.backward(criterion.backward());
    for (auto& named : model.named_parameters()) {
      const Difference d = compare(named.parameter->grad, fixture.tensor("grad." + named.name), "grad." + named.name);
      INFO("grad." << named.name << ": max abs difference " << d.max_abs << ", reference max " << d.reference_max
                   << ", relative " << d.relative());
      CHECK(d.relative() <= tolerance);
      if (d.relative() >= result.worst_grad) {
        result.worst_grad = d.relative();
        result.worst_grad_name = named.name;
      }
    }
  }
  return result;
}

}  // namespace

TEST_CASE("FashionCNN matches PyTorch: logits, loss and every gradient", "[parity][model]") {
  // Norm-wise relative differences (max |found - reference| / max |reference| per tensor).
  // In float both sides round differently along sums of up to 8 * 28 * 28 terms (conv1's
  // weight gradient), so a few 1e-6 is expected. The same in double from the same float32
  // weights: what remains is PyTorch's own float32 rounding, the yardstick for the float figures.
  // im2col is held to 1e-5; Winograd's forward pass (F(2x2) and F(4x4) for conv2-4, the
  // gradients taken at its activations) to the 1e-4 of the fast paths.
  for (const auto& [algorithm, tolerance] : {std::pair{ConvAlgorithm::im2col, 1e-5},
                                             std::pair{ConvAlgorithm::winograd_2x2, 1e-4},
                                             std::pair{ConvAlgorithm::winograd_4x4, 1e-4}}) {
    INFO(conv_algorithm_name(algorithm));
    const ModelDifferences in_float = check_fashion_cnn<float>(tolerance, algorithm);
    const ModelDifferences in_double = check_fashion_cnn<double>(tolerance, algorithm);
    std::printf("[parity] FashionCNN %-11s float:  logits %.3g, loss %.3g, gradients %.3g (worst: %s)\n",
                conv_algorithm_name(algorithm), in_float.logits, in_float.loss, in_float.worst_grad,
                in_float.worst_grad_name.c_str());
    std::printf("[parity] FashionCNN %-11s double: logits %.3g, loss %.3g, gradients %.3g (worst: %s)\n",
                conv_algorithm_name(algorithm), in_double.logits, in_double.loss, in_double.worst_grad,
                in_double.worst_grad_name.c_str());
  }
}

TEST_CASE("FashionCNN has the parameters of PyTorch's state_dict, in its order", "[parity][model]") {
  minicnn::models::FashionCNN<float> model(0);
  const Fixture fixture = Fixture::load("model_fashion_cnn.bin");
  std::vector<std::string> expected;  // the fixture lists PyTorch's state_dict first, in order
  for (const std::string& name : fixture.names())
    if (non_parameter_entries.count(name) == 0 && name.rfind("grad.", 0) != 0) expected.push_back(name);
  REQUIRE(expected.size() == 12);
  std::vector<std::string> found;
  for (auto& named : model.named_parameters()) found.push_back(named.name);
  CHECK(found == expected);
  // Every one of them has PyTorch's shape.
  for (auto& named : model.named_parameters()) {
    INFO(named.name);
    CHECK(fixture.shape(named.name) == named.parameter->value.shape());
  }
}
