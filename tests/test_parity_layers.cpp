// PyTorch parity of every layer, one case at a time, against tests/fixtures/layer_*.bin
// (written by tools/make_fixtures.py in float64). Each case runs twice on the same layer
// object, so a kernel that leaves stale values in a reused buffer fails the second run.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "fixture.hpp"
#include "minicnn/layers/adaptive_avg_pool2d.hpp"
#include "minicnn/layers/adaptive_max_pool2d.hpp"
#include "minicnn/layers/avg_pool2d.hpp"
#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/flatten.hpp"
#include "minicnn/layers/linear.hpp"
#include "minicnn/layers/maxpool2d.hpp"
#include "minicnn/layers/relu.hpp"
#include "minicnn/loss.hpp"

using minicnn::Module;
using minicnn::Tensor;
using minicnn::testing::compare;
using minicnn::testing::Difference;
using minicnn::testing::Fixture;
using minicnn::testing::parity_tolerance;
using minicnn::testing::scalar_name;

namespace {

// Runs forward and backward of `layer` on case `prefix` of the fixture, loading its parameters
// first, and checks output, grad_input and every parameter's gradient. Returns the worst
// relative difference.
template <typename T>
double check_layer_case(Module<T>& layer, const Fixture& fixture, const std::string& prefix) {
  const double tolerance = parity_tolerance<T>();
  double worst = 0;
  auto check = [&](const Tensor<T>& found, const std::string& entry) {
    const Difference d = compare(found, fixture.tensor(prefix + entry), fixture.path() + " " + prefix + entry);
    INFO(fixture.path() << " " << prefix << entry << " (" << scalar_name<T>() << "): max abs difference " << d.max_abs
                        << ", reference max " << d.reference_max << ", relative " << d.relative());
    CHECK(d.relative() <= tolerance);
    worst = std::max(worst, d.relative());
  };

  // The layer must hold exactly the parameters PyTorch's has (bias=False: no bias).
  for (const char* optional : {"weight", "bias"}) {
    const auto named = layer.named_parameters();
    const bool in_layer = std::any_of(named.begin(), named.end(), [&](const auto& p) { return p.name == optional; });
    INFO(prefix << optional);
    CHECK(in_layer == fixture.has(prefix + optional));
  }
  for (auto& named : layer.named_parameters()) {
    Tensor<T> value = fixture.tensor<T>(prefix + named.name);
    minicnn::check_same_shape(value.shape(), named.parameter->value.shape(), prefix + named.name);
    named.parameter->value = value;
  }

  const Tensor<T> input = fixture.tensor<T>(prefix + "input");
  const Tensor<T> grad_output = fixture.tensor<T>(prefix + "grad_output");
  for (int run = 0; run < 2; ++run) {
    INFO("run " << run);
    layer.zero_grad();
    check(layer.forward(input), "output");
    check(layer.backward(grad_output), "grad_input");
    for (auto& named : layer.named_parameters()) check(named.parameter->grad, "grad_" + named.name);
  }
  return worst;
}

// Runs every case of a layer fixture with layers made by `make(config)`, in T.
template <typename T>
double check_layer_fixture(const std::string& file,
                           const std::function<std::unique_ptr<Module<T>>(const std::vector<int>&)>& make) {
  const Fixture fixture = Fixture::load(file);
  const int cases = static_cast<int>(fixture.scalar("num_cases"));
  REQUIRE(cases > 0);
  double worst = 0;
  for (int index = 0; index < cases; ++index) {
    const std::string prefix = "case" + std::to_string(index) + ".";
    const std::vector<int> config =
        fixture.has(prefix + "config") ? fixture.integers(prefix + "config") : std::vector<int>{};
    auto layer = make(config);
    INFO(file << " " << prefix << " " << layer->repr());
    worst = std::max(worst, check_layer_case(*layer, fixture, prefix));
  }
  std::printf("[parity] %-29s %-6s %d cases, max relative difference to PyTorch %.3g\n", file.c_str(), scalar_name<T>(),
              cases, worst);
  return worst;
}

// Layer factories from a case's `config` entry (its layout is documented in make_fixtures.py).
template <typename T>
std::unique_ptr<Module<T>> make_conv2d(const std::vector<int>& config) {
  REQUIRE(config.size() == 6);  // [in_channels, out_channels, kernel_size, stride, padding, bias]
  return std::make_unique<minicnn::Conv2d<T>>(config[0], config[1], config[2], config[3], config[4], config[5] != 0);
}
template <typename T>
std::unique_ptr<Module<T>> make_conv2d_general(const std::vector<int>& config) {
  // [in_channels, out_channels, kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w,
  //  dilation_h, dilation_w, groups, bias]
  REQUIRE(config.size() == 12);
  return std::make_unique<minicnn::Conv2d<T>>(minicnn::Conv2dOptions(config[0], config[1], {config[2], config[3]})
                                                  .stride({config[4], config[5]})
                                                  .padding({config[6], config[7]})
                                                  .dilation({config[8], config[9]})
                                                  .groups(config[10])
                                                  .bias(config[11] != 0));
}
template <typename T>
std::unique_ptr<Module<T>> make_pool_general(const std::vector<int>& config) {
  REQUIRE(!config.empty());
  switch (config[0]) {
    case 0:  // MaxPool2d: [0, kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w, dilation_h, dilation_w,
             // ceil_mode]
      REQUIRE(config.size() == 10);
      return std::make_unique<minicnn::MaxPool2d<T>>(
          minicnn::IntPair(config[1], config[2]), minicnn::IntPair(config[3], config[4]),
          minicnn::IntPair(config[5], config[6]), minicnn::IntPair(config[7], config[8]), config[9] != 0);
    case 1:  // AvgPool2d: [1, kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w, ceil_mode,
             // count_include_pad]
      REQUIRE(config.size() == 9);
      return std::make_unique<minicnn::AvgPool2d<T>>(
          minicnn::IntPair(config[1], config[2]), minicnn::IntPair(config[3], config[4]),
          minicnn::IntPair(config[5], config[6]), config[7] != 0, config[8] != 0);
    case 2:  // AdaptiveMaxPool2d: [2, out_h, out_w]
      REQUIRE(config.size() == 3);
      return std::make_unique<minicnn::AdaptiveMaxPool2d<T>>(config[1], config[2]);
    default:
      FAIL("layer_pool_general.bin: unknown pooling kind " << config[0] << ", expected 0, 1 or 2");
      return nullptr;
  }
}
template <typename T>
std::unique_ptr<Module<T>> make_relu(const std::vector<int>&) {
  return std::make_unique<minicnn::ReLU<T>>();
}
template <typename T>
std::unique_ptr<Module<T>> make_maxpool2d(const std::vector<int>& config) {
  REQUIRE(config.size() == 2);  // [kernel_size, stride]
  return std::make_unique<minicnn::MaxPool2d<T>>(config[0], config[1]);
}
template <typename T>
std::unique_ptr<Module<T>> make_adaptive_avgpool2d(const std::vector<int>& config) {
  REQUIRE(config.size() == 2);  // [out_height, out_width]
  return std::make_unique<minicnn::AdaptiveAvgPool2d<T>>(config[0], config[1]);
}
template <typename T>
std::unique_ptr<Module<T>> make_linear(const std::vector<int>& config) {
  REQUIRE(config.size() == 3);  // [in_features, out_features, bias]
  return std::make_unique<minicnn::Linear<T>>(config[0], config[1], config[2] != 0);
}
template <typename T>
std::unique_ptr<Module<T>> make_flatten(const std::vector<int>&) {
  return std::make_unique<minicnn::Flatten<T>>();
}

template <typename T>
void check_all_layers() {
  check_layer_fixture<T>("layer_conv2d.bin", make_conv2d<T>);
  check_layer_fixture<T>("layer_conv2d_general.bin", make_conv2d_general<T>);
  check_layer_fixture<T>("layer_pool_general.bin", make_pool_general<T>);
  check_layer_fixture<T>("layer_relu.bin", make_relu<T>);
  check_layer_fixture<T>("layer_maxpool2d.bin", make_maxpool2d<T>);
  check_layer_fixture<T>("layer_adaptive_avgpool2d.bin", make_adaptive_avgpool2d<T>);
  check_layer_fixture<T>("layer_linear.bin", make_linear<T>);
  check_layer_fixture<T>("layer_flatten.bin", make_flatten<T>);
}

// CrossEntropyLoss cases: loss and grad_logits, computed in T.
template <typename T>
void check_cross_entropy() {
  const Fixture fixture = Fixture::load("loss_cross_entropy.bin");
  const int cases = static_cast<int>(fixture.scalar("num_cases"));
  REQUIRE(cases > 0);
  const double tolerance = parity_tolerance<T>();
  double worst = 0;
  for (int index = 0; index < cases; ++index) {
    const std::string prefix = "case" + std::to_string(index) + ".";
    const double label_smoothing = fixture.scalar(prefix + "config");
    INFO(prefix << " label_smoothing " << label_smoothing << " (" << scalar_name<T>() << ")");
    minicnn::CrossEntropyLoss<T> loss(label_smoothing);
    const Tensor<T> logits = fixture.tensor<T>(prefix + "logits");
    const std::vector<int> targets = fixture.integers(prefix + "targets");
    for (int run = 0; run < 2; ++run) {
      const double value = static_cast<double>(loss.forward(logits, targets));
      const double reference = fixture.scalar(prefix + "loss");
      const double loss_relative = std::abs(value - reference) / std::abs(reference);
      INFO("loss " << value << ", PyTorch " << reference);
      CHECK(loss_relative <= tolerance);
      const Difference d = compare(loss.backward(), fixture.tensor(prefix + "grad_logits"), prefix + "grad_logits");
      INFO("grad_logits: max abs difference " << d.max_abs << ", relative " << d.relative());
      CHECK(d.relative() <= tolerance);
      worst = std::max({worst, loss_relative, d.relative()});
    }
  }
  std::printf("[parity] %-29s %-6s %d cases, max relative difference to PyTorch %.3g\n", "loss_cross_entropy.bin",
              scalar_name<T>(), cases, worst);
}

// Writes `bytes` to a temporary file and returns its path.
std::string write_temporary(const std::string& name, const std::string& bytes) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("minicnn_fixture_test_" + name + ".bin")).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string u32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

}  // namespace

TEST_CASE("every layer matches PyTorch in double", "[parity][layers]") { check_all_layers<double>(); }

TEST_CASE("every layer matches PyTorch in float", "[parity][layers]") { check_all_layers<float>(); }

TEST_CASE("CrossEntropyLoss matches PyTorch", "[parity][loss]") {
  check_cross_entropy<double>();
  check_cross_entropy<float>();
}

TEST_CASE("the fixture reader decodes entries and rejects bad files", "[parity][fixture]") {
  using Catch::Matchers::Contains;

  SECTION("a hand-written file round-trips") {
    std::string bytes("MCNNFIX\0", 8);
    bytes += u32(1) + u32(2);
    // "a": float64 [2] = {1.5, -2}
    bytes += u32(1) + "a" + u32(0) + u32(1) + u32(2) + u32(0);
    const double a[2] = {1.5, -2.0};
    bytes.append(reinterpret_cast<const char*>(a), sizeof(a));  // the test machines are little-endian
    // "bc": float32 scalar 0.25
    bytes += u32(2) + "bc" + u32(1) + u32(0);
    const float b = 0.25f;
    bytes.append(reinterpret_cast<const char*>(&b), sizeof(b));
    const std::string path = write_temporary("ok", bytes);
    const Fixture fixture(path);
    std::remove(path.c_str());
    CHECK(fixture.names() == std::vector<std::string>{"a", "bc"});
    CHECK(fixture.values("a") == std::vector<double>{1.5, -2.0});
    CHECK(fixture.shape("a") == minicnn::Shape{2});
    CHECK(fixture.scalar("bc") == 0.25);
    CHECK_THROWS_WITH(fixture.tensor("bc"), Contains("scalar"));
    CHECK_THROWS_WITH(fixture.values("missing"), Contains("no entry named \"missing\""));
    CHECK_THROWS_WITH(fixture.scalar("a"), Contains("expected 1"));
  }
  SECTION("a missing file") {
    CHECK_THROWS_AS(Fixture::load("no_such_fixture.bin"), minicnn::error);
    CHECK_THROWS_WITH(Fixture::load("no_such_fixture.bin"), Contains("no_such_fixture.bin") && Contains("cannot open"));
  }
  SECTION("a bad magic") {
    const std::string path = write_temporary("magic", std::string("MCNNFIY\0", 8) + u32(1) + u32(0));
    CHECK_THROWS_WITH(Fixture(path), Contains("bad magic"));
    std::remove(path.c_str());
  }
  SECTION("a future version") {
    const std::string path = write_temporary("version", std::string("MCNNFIX\0", 8) + u32(2) + u32(0));
    CHECK_THROWS_WITH(Fixture(path), Contains("version 2, expected 1"));
    std::remove(path.c_str());
  }
  SECTION("a truncated entry") {
    const std::string path =
        write_temporary("truncated", std::string("MCNNFIX\0", 8) + u32(1) + u32(1) + u32(1) + "a" + u32(0) + u32(1));
    CHECK_THROWS_WITH(Fixture(path), Contains("truncated"));
    std::remove(path.c_str());
  }
  SECTION("every committed fixture parses") {
    for (const char* file :
         {"layer_conv2d.bin", "layer_conv2d_general.bin", "layer_pool_general.bin", "layer_relu.bin",
          "layer_maxpool2d.bin", "layer_adaptive_avgpool2d.bin", "layer_linear.bin", "layer_flatten.bin",
          "layer_activations.bin", "layer_channel_scale.bin", "layer_batchnorm.bin", "loss_cross_entropy.bin",
          "model_fashion_cnn.bin", "train_fashion_cnn.bin", "optim_steps.bin", "optim_groups.bin",
          "sched_cosine.bin"}) {
      INFO(file);
      CHECK_NOTHROW(Fixture::load(file));
    }
  }
}
