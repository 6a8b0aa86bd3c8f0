// The module system (layers/module.hpp): state names and order as PyTorch's state_dict,
// buffers saved and loaded with the parameters, train/eval through every child, registration
// errors, and the empty batch through a whole model.
#include <catch2/catch.hpp>
#include <minicnn/minicnn.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "same_bits.hpp"
#include "temp_dir.hpp"

using namespace minicnn;
using Catch::Matchers::Contains;
using minicnn::testing::same_bits;
using minicnn::testing::TempDir;

namespace {

std::vector<std::string> state_names(Module<float>& module) {
  std::vector<std::string> names;
  for (const auto& entry : module.state()) names.push_back(entry.name);
  return names;
}

// A module with a parameter, a buffer and a child, to exercise registration directly.
struct Probe final : Module<float> {
  Parameter<float> weight{"weight", Shape{2}};
  Tensor<float> count{Shape{1}};
  Probe() {
    register_parameter(weight);
    register_buffer("count", count);
  }
  template <typename Child>
  Child& adopt(std::string name, std::unique_ptr<Child> child) { return register_module(std::move(name), std::move(child)); }
  void add_buffer(const std::string& name) { register_buffer(name, count); }
  std::string type_name() const override { return "Probe"; }
  Shape output_shape(const Shape& input) const override { return input; }
  const Tensor<float>& forward(const Tensor<float>& input) override { return input; }
  const Tensor<float>& backward(const Tensor<float>& grad_output) override { return grad_output; }
};

}  // namespace

TEST_CASE("state() lists parameters and buffers per module in PyTorch's state_dict order", "[modules]") {
  Generator gen(1);
  BasicBlock<float> block(8, 16, 2, 4, gen);
  // torchvision's BasicBlock registers conv1, bn1, relu, conv2, bn2, downsample; "se" sits
  // after bn2. Per module: parameters, then buffers.
  const std::vector<std::string> expected{
      "conv1.weight",        "bn1.weight",          "bn1.bias",
      "bn1.running_mean",    "bn1.running_var",     "bn1.num_batches_tracked",
      "conv2.weight",        "bn2.weight",          "bn2.bias",
      "bn2.running_mean",    "bn2.running_var",     "bn2.num_batches_tracked",
      "se.fc1.weight",       "se.fc1.bias",         "se.fc2.weight",
      "se.fc2.bias",         "downsample.0.weight", "downsample.1.weight",
      "downsample.1.bias",   "downsample.1.running_mean", "downsample.1.running_var",
      "downsample.1.num_batches_tracked"};
  CHECK(state_names(block) == expected);
  std::vector<std::string> buffers;
  for (const auto& [name, tensor] : block.named_buffers()) buffers.push_back(name);
  CHECK(buffers == std::vector<std::string>{"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                                            "bn2.running_mean", "bn2.running_var", "bn2.num_batches_tracked",
                                            "downsample.1.running_mean", "downsample.1.running_var",
                                            "downsample.1.num_batches_tracked"});
  CHECK(block.named_parameters().size() == 13);
  // 8*16*9 + 2*16 + 16*16*9 + 2*16 + (16*4 + 4 + 4*16 + 16) + 8*16 + 2*16
  CHECK(block.num_parameters() == 1152 + 32 + 2304 + 32 + 148 + 128 + 32);
  std::vector<std::string> modules;
  for (const auto& [name, module] : block.named_modules()) modules.push_back(name + ":" + module->type_name());
  CHECK(modules.front() == ":BasicBlock");
  CHECK(modules.back() == "downsample.1:BatchNorm2d");
}

TEST_CASE("train() and eval() reach every descendant", "[modules]") {
  Generator gen(2);
  Sequential<float> net;
  net.emplace<Conv2d<float>>(3, 8, 3, 1, 1, false, gen);
  net.add("block", std::make_unique<BasicBlock<float>>(8, 8, 1, 2, gen));
  net.eval();
  for (const auto& [name, module] : net.named_modules()) {
    INFO(name);
    CHECK_FALSE(module->is_training());
  }
  net.train();
  for (const auto& [name, module] : net.named_modules()) {
    INFO(name);
    CHECK(module->is_training());
  }
  // A child added to a container in eval mode takes its mode.
  net.eval();
  Module<float>& late = net.emplace<BatchNorm2d<float>>(8);
  CHECK_FALSE(late.is_training());
}

TEST_CASE("registration refuses duplicate and dotted names", "[modules]") {
  Probe probe;
  CHECK_THROWS_WITH(probe.add_buffer("weight"), Contains("Probe") && Contains("'weight' is registered already"));
  CHECK_THROWS_WITH(probe.add_buffer("a.b"), Contains("not a valid name"));
  CHECK_THROWS_WITH(probe.adopt("count", std::make_unique<ReLU<float>>()), Contains("'count' is registered already"));
  CHECK_THROWS_WITH(probe.adopt<ReLU<float>>("relu", nullptr), Contains("child 'relu' is null"));
  probe.adopt("relu", std::make_unique<ReLU<float>>());
  CHECK(state_names(probe) == std::vector<std::string>{"weight", "count"});
  CHECK(probe.repr() == "Probe(\n  (relu): ReLU()\n)");
  Sequential<float> seq;
  seq.add("head", std::make_unique<ReLU<float>>());
  CHECK_THROWS_WITH(seq.add("head", std::make_unique<ReLU<float>>()), Contains("'head' is registered already"));
}

TEST_CASE("safetensors saves and loads buffers with the parameters", "[modules][io]") {
  TempDir dir;
  Generator gen(3);
  BasicBlock<float> trained(4, 8, 2, 0, gen);
  Tensor<float> x({6, 4, 7, 7});
  x.uniform(-1.f, 1.f, 4);
  trained.train();
  trained.forward(x);  // moves the running statistics and counts a batch
  const auto& running_mean = *trained.named_buffers().front().second;
  CHECK(std::any_of(running_mean.begin(), running_mean.end(), [](float v) { return v != 0.f; }));
  io::save_safetensors(trained, dir.file("block.safetensors"));

  Generator other(99);
  BasicBlock<float> loaded(4, 8, 2, 0, other);
  io::load_safetensors(loaded, dir.file("block.safetensors"));
  const auto a = trained.state(), b = loaded.state();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].name);
    CHECK(a[i].name == b[i].name);
    CHECK(same_bits(*a[i].tensor, *b[i].tensor));
  }
  // Both in eval mode now compute the same function.
  trained.eval();
  loaded.eval();
  CHECK(same_bits(trained.forward(x), loaded.forward(x)));

  // A model without the buffers (BatchNorm without running statistics) refuses the file,
  // naming every tensor it does not expect.
  Sequential<float> untracked;
  untracked.emplace<BatchNorm2d<float>>(8, 1e-5, 0.1, true, false);
  Sequential<float> tracked;
  tracked.emplace<BatchNorm2d<float>>(8);
  io::save_safetensors(tracked, dir.file("bn.safetensors"));
  CHECK_THROWS_WITH(io::load_safetensors(untracked, dir.file("bn.safetensors")),
                    Contains("unexpected tensors: 0.running_mean [8], 0.running_var [8], 0.num_batches_tracked [1]"));
}

TEST_CASE("an empty batch flows through a whole model, as in PyTorch", "[modules]") {
  models::FashionCNN<float> model(0);
  const Tensor<float> empty({0, 1, 28, 28});
  model.train();
  const Tensor<float>& logits = model.forward(empty);
  CHECK(logits.shape() == Shape{0, 10});
  model.zero_grad();
  model.backward(Tensor<float>({0, 10}));
  for (const auto& named : model.named_parameters()) {
    INFO(named.name);
    CHECK(std::all_of(named.parameter->grad.begin(), named.parameter->grad.end(), [](float v) { return v == 0.f; }));
  }
  Generator gen(5);
  BasicBlock<float> block(4, 8, 2, 2, gen);
  const Tensor<float> empty_maps({0, 4, 9, 9});
  CHECK(block.forward(empty_maps).shape() == Shape{0, 8, 5, 5});
  CHECK(block.backward(Tensor<float>({0, 8, 5, 5})).shape() == Shape{0, 4, 9, 9});
  // No statistics were touched by the empty batch.
  for (const auto& [name, buffer] : block.named_buffers())
    if (name.find("num_batches_tracked") != std::string::npos) CHECK((*buffer)[0] == 0.f);
}
