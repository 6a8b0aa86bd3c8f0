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
  Child& adopt(std::string name, std::unique_ptr<Child> child) {
    return register_module(std::move(name), std::move(child));
  }
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
  const std::vector<std::string> expected{"conv1.weight",
                                          "bn1.weight",
                                          "bn1.bias",
                                          "bn1.running_mean",
                                          "bn1.running_var",
                                          "bn1.num_batches_tracked",
                                          "conv2.weight",
                                          "bn2.weight",
                                          "bn2.bias",
                                          "bn2.running_mean",
                                          "bn2.running_var",
                                          "bn2.num_batches_tracked",
                                          "se.fc1.weight",
                                          "se.fc1.bias",
                                          "se.fc2.weight",
                                          "se.fc2.bias",
                                          "downsample.0.weight",
                                          "downsample.1.weight",
                                          "downsample.1.bias",
                                          "downsample.1.running_mean",
                                          "downsample.1.running_var",
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

namespace {

template <typename T>
void build_bn_relu_stack(Sequential<T>& seq) {
  Generator gen(12);
  seq.template emplace<Conv2d<T>>(2, 8, 3, 1, 1, false, gen);
  seq.template emplace<BatchNorm2d<T>>(8);
  seq.template emplace<ReLU<T>>();
  seq.template emplace<Conv2d<T>>(8, 4, 3, 2, 1, false, gen);
  seq.template emplace<BatchNorm2d<T>>(4);
  seq.template emplace<ReLU<T>>();
  seq.template emplace<AdaptiveAvgPool2d<T>>(1);
  seq.template emplace<Flatten<T>>();
  seq.template emplace<Linear<T>>(4, 3, true, gen);
}

template <typename T>
void check_fused_bn_relu(bool training) {
  Sequential<T> fused, separate;
  build_bn_relu_stack(fused);
  build_bn_relu_stack(separate);
  separate.set_fusion(false);
  fused.train(training);
  separate.train(training);
  // The plan fuses each BatchNorm with the ReLU after it, and nothing else (the convs are
  // followed by BatchNorms, not ReLUs).
  for (std::size_t i = 0; i < fused.size(); ++i) {
    INFO("child " << i);
    CHECK(fused.fused_with_next(i) == (i == 1 || i == 4));
  }
  CHECK(dynamic_cast<BatchNorm2d<T>&>(fused[1]).fused_relu());
  Generator gen(6);
  Tensor<T> input({4, 2, 9, 9});
  input.normal(T(0), T(1), gen);
  Tensor<T> grad({4, 3});
  grad.normal(T(0), T(1), gen);
  for (int step = 0; step < 2; ++step) {  // the second step sees updated running statistics
    CHECK(same_bits(fused.forward(input), separate.forward(input)));
    CHECK(same_bits(fused.backward(grad), separate.backward(grad)));
  }
  const auto a = fused.state(), b = separate.state();
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].name);
    CHECK(same_bits(*a[i].tensor, *b[i].tensor));
  }
  const auto pa = fused.named_parameters(), pb = separate.named_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].name);
    CHECK(same_bits(pa[i].parameter->grad, pb[i].parameter->grad));
  }
  // The fusion fires: the ReLU hands on the BatchNorm's own output.
  const Tensor<T>& normalised = fused[1].forward(fused[0].forward(input));
  CHECK(&fused[2].forward(normalised) == &normalised);
}

}  // namespace

TEST_CASE("Sequential fuses BatchNorm + ReLU with the same bits as running them apart", "[modules][fusion]") {
  SECTION("float, training") { check_fused_bn_relu<float>(true); }
  SECTION("double, training") { check_fused_bn_relu<double>(true); }
  SECTION("float, evaluation") { check_fused_bn_relu<float>(false); }
}

TEST_CASE("the ResNet blocks apply their inner ReLUs in the BatchNorm before them", "[modules][fusion]") {
  Generator gen(7);
  Bottleneck<float> block(8, 2, 1, 0, gen);
  std::size_t fused = 0;
  for (const auto& [name, module] : block.named_modules())
    if (auto* norm = dynamic_cast<BatchNorm2d<float>*>(module); norm && norm->fused_relu()) ++fused;
  CHECK(fused == 2);  // bn1 and bn2; bn3 is followed by the addition
  for (const auto& [name, module] : block.named_modules())
    if (name == "relu") CHECK(dynamic_cast<ReLU<float>&>(*module).applied_by_producer());
}
