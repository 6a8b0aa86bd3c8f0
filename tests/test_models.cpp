// The models beyond the tutorial (models/resnet.hpp, models/fashion_cnn_se.hpp): sizes and
// state_dict names as torchvision's, torchvision's initialisation, the penultimate embedding,
// and a few training steps on a few hundred images (loss falls, nothing NaN). Agreement with
// PyTorch itself is the interop tests' job (tests/interop, models resnet18, resnet18_se,
// fashion_resnet, fashion_resnet_se, fashion_cnn_se).
#include <catch2/catch.hpp>
#include <minicnn/minicnn.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace minicnn;

namespace {

bool has_state(Module<float>& model, const std::string& name, const Shape& shape) {
  for (const NamedTensor<float>& named : model.state())
    if (named.name == name) return named.tensor->shape() == shape;
  return false;
}

// `count` learnable images: class c is a bright 6x6 square at one of ten places, on noise.
struct SyntheticSet {
  Tensor<float> images;
  std::vector<int> labels;
};
SyntheticSet synthetic_set(std::int64_t count, std::uint64_t seed) {
  SyntheticSet set{Tensor<float>({count, 1, 28, 28}), std::vector<int>(static_cast<std::size_t>(count))};
  Generator gen(seed);
  for (std::int64_t i = 0; i < count; ++i) {
    const int label = static_cast<int>(i % 10);
    set.labels[static_cast<std::size_t>(i)] = label;
    const std::int64_t top = 2 + (label / 5) * 14, left = 2 + (label % 5) * 5;
    for (std::int64_t y = 0; y < 28; ++y)
      for (std::int64_t x = 0; x < 28; ++x) {
        const bool inside = y >= top && y < top + 6 && x >= left && x < left + 6;
        set.images[(i * 28 + y) * 28 + x] = static_cast<float>((inside ? 1.0 : -0.8) + 0.3 * gen.normal());
      }
  }
  return set;
}

// Trains `epochs` passes of Adam over `set` in batches of `batch`; returns the mean loss per epoch.
std::vector<double> train_epochs(Module<float>& model, const SyntheticSet& set, int epochs, double lr,
                                 std::int64_t batch) {
  set_num_threads(2);
  Adam<float> optimizer(model.parameters(), lr);
  CrossEntropyLoss<float> loss;
  model.train();
  const std::int64_t count = set.images.dim(0);
  std::vector<double> means;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    double total = 0;
    int steps = 0;
    for (std::int64_t first = 0; first + batch <= count; first += batch, ++steps) {
      Tensor<float> images({batch, 1, 28, 28});
      for (std::int64_t k = 0; k < images.size(); ++k) images[k] = set.images[first * 784 + k];
      const std::vector<int> targets(set.labels.begin() + first, set.labels.begin() + first + batch);
      optimizer.zero_grad();
      const float value = loss.forward(model.forward(images), targets);
      model.backward(loss.backward());
      optimizer.step();
      total += value;
    }
    means.push_back(total / steps);
  }
  return means;
}

void check_training(Module<float>& model, double lr, std::int64_t images, int epochs, std::int64_t batch = 32) {
  const std::vector<double> losses = train_epochs(model, synthetic_set(images, 3), epochs, lr, batch);
  INFO("mean loss per epoch " << losses.front() << " ... " << losses.back());
  for (double loss : losses) CHECK(std::isfinite(loss));
  CHECK(losses.back() < 0.8 * losses.front());  // falls by a fifth at least
  bool all_finite = true;
  for (Parameter<float>* parameter : model.parameters())
    for (float value : parameter->value) all_finite = all_finite && std::isfinite(value);
  for (const auto& [name, buffer] : model.named_buffers())
    for (float value : *buffer) all_finite = all_finite && std::isfinite(value);
  CHECK(all_finite);
}

}  // namespace

TEST_CASE("resnet18 has torchvision's 11,172,810 parameters and state_dict names", "[models][resnet]") {
  auto model = models::resnet18<float>(10, 0);
  CHECK(model->num_parameters() == 11172810);
  // Per child, as torchvision's resnet18(num_classes=10) with the 1-channel 3x3 conv1.
  const std::vector<std::pair<std::string, std::int64_t>> per_child{
      {"conv1", 576},      {"bn1", 128},        {"relu", 0},    {"maxpool", 0}, {"layer1", 147968}, {"layer2", 525568},
      {"layer3", 2099712}, {"layer4", 8393728}, {"avgpool", 0}, {"flatten", 0}, {"fc", 5130}};
  REQUIRE(model->size() == per_child.size());
  for (std::size_t i = 0; i < per_child.size(); ++i) {
    CHECK(model->child_name(i) == per_child[i].first);
    CHECK((*model)[i].num_parameters() == per_child[i].second);
  }
  const auto state = model->state();
  CHECK(state.size() == 122);  // torchvision's state_dict: 62 parameters, 60 BatchNorm buffers
  CHECK(model->parameters().size() == 62);
  CHECK(state.front().name == "conv1.weight");
  CHECK(state[5].name == "bn1.num_batches_tracked");
  CHECK(state[6].name == "layer1.0.conv1.weight");
  CHECK(state.back().name == "fc.bias");
  CHECK(has_state(*model, "conv1.weight", {64, 1, 3, 3}));
  CHECK(has_state(*model, "layer2.0.conv1.weight", {128, 64, 3, 3}));
  CHECK(has_state(*model, "layer2.0.downsample.0.weight", {128, 64, 1, 1}));
  CHECK(has_state(*model, "layer2.0.downsample.1.running_var", {128}));
  CHECK(has_state(*model, "layer4.1.bn2.num_batches_tracked", {1}));
  CHECK(has_state(*model, "fc.weight", {10, 512}));
  CHECK_FALSE(has_state(*model, "layer1.0.downsample.0.weight", {64, 64, 1, 1}));
  CHECK(model->output_shape({3, 1, 28, 28}) == Shape{3, 10});
  CHECK(model->feature_size() == 512);
}

TEST_CASE("resnet18_se adds SqueezeExcitation(c, c / 16) named se to every BasicBlock", "[models][resnet]") {
  auto model = models::resnet18_se<float>(10, 0);
  // Per block 2 c (c / 16) + c / 16 + c; two blocks of each width 64, 128, 256, 512.
  CHECK(model->num_parameters() == 11172810 + 2 * (580 + 2184 + 8464 + 33312));
  CHECK(has_state(*model, "layer1.0.se.fc1.weight", {4, 64, 1, 1}));
  CHECK(has_state(*model, "layer1.1.se.fc2.bias", {64}));
  CHECK(has_state(*model, "layer4.1.se.fc1.weight", {32, 512, 1, 1}));
  CHECK(has_state(*model, "layer4.0.se.fc2.weight", {512, 32, 1, 1}));
  CHECK(model->state().size() == 122 + 8 * 4);
}

TEST_CASE("ResNet takes torchvision's initialisation", "[models][resnet]") {
  auto a = models::resnet18<float>(10, 0), b = models::resnet18<float>(10, 0), c = models::resnet18<float>(10, 1);
  const auto named_a = a->state(), named_b = b->state(), named_c = c->state();
  bool same = true, differs = false;
  for (std::size_t k = 0; k < named_a.size(); ++k)
    for (std::int64_t i = 0; i < named_a[k].tensor->size(); ++i) {
      same = same && (*named_a[k].tensor)[i] == (*named_b[k].tensor)[i];
      differs = differs || (*named_a[k].tensor)[i] != (*named_c[k].tensor)[i];
    }
  CHECK(same);
  CHECK(differs);
  for (const auto& [name, module] : a->named_modules()) {
    INFO(name);
    if (auto* conv = dynamic_cast<Conv2d<float>*>(module)) {
      // kaiming_normal_(fan_out, relu): standard deviation sqrt(2 / (out * kh * kw)).
      const Tensor<float>& weight = conv->weight.value;
      const double expected = std::sqrt(2.0 / double(weight.dim(0) * weight.dim(2) * weight.dim(3)));
      double sum_of_squares = 0;
      for (float value : weight) sum_of_squares += double(value) * value;
      CHECK(std::sqrt(sum_of_squares / double(weight.size())) == Approx(expected).epsilon(0.1));
    }
    if (auto* norm = dynamic_cast<BatchNorm2d<float>*>(module)) {
      for (float value : norm->weight.value) CHECK(value == 1.0f);
      for (float value : norm->bias.value) CHECK(value == 0.0f);
    }
  }
  // fc keeps Linear's default: uniform within 1 / sqrt(512).
  float largest = 0;
  for (float value : a->fc().weight.value) largest = std::max(largest, std::abs(value));
  CHECK(largest <= 1.0f / std::sqrt(512.0f));
  CHECK(largest > 0.9f / std::sqrt(512.0f));
}

TEST_CASE("ResNet rejects options it cannot build, naming them", "[models][resnet][errors]") {
  models::ResNetOptions options;
  options.blocks_per_layer = {2, 0, 2, 2};
  CHECK_THROWS_WITH(models::ResNet<float>(options), Catch::Contains("blocks_per_layer=[2, 0, 2, 2]"));
  options.blocks_per_layer = {1, 1, 1, 1};
  options.se_reduction = 128;
  CHECK_THROWS_AS(models::ResNet<float>(options), error);
  models::ResNet<float> model(models::ResNetOptions{}, 0);
  CHECK_THROWS_WITH(model.layer(0), Catch::Contains("expected 1 to 4"));
  CHECK(model.layer(4).size() == 2);
}

TEST_CASE("fashion_resnet: 3 stages of BasicBlocks for 28x28, no maxpool, 308,074 parameters", "[models][resnet]") {
  auto model = models::fashion_resnet<float>(10, 0);
  CHECK(model->num_parameters() == 308074);
  // conv1 1 -> 32; layer1 32 at 28x28, layer2 64 at 14x14, layer3 128 at 7x7, one BasicBlock each.
  const std::vector<std::pair<std::string, std::int64_t>> per_child{
      {"conv1", 288},     {"bn1", 64},    {"relu", 0},    {"layer1", 18560}, {"layer2", 57728},
      {"layer3", 230144}, {"avgpool", 0}, {"flatten", 0}, {"fc", 1290}};
  REQUIRE(model->size() == per_child.size());
  for (std::size_t i = 0; i < per_child.size(); ++i) {
    CHECK(model->child_name(i) == per_child[i].first);
    CHECK((*model)[i].num_parameters() == per_child[i].second);
  }
  CHECK(model->num_layers() == 3);
  CHECK(model->layer(3).size() == 1);
  CHECK_THROWS_WITH(model->layer(4), Catch::Contains("expected 1 to 3"));
  CHECK(has_state(*model, "conv1.weight", {32, 1, 3, 3}));
  CHECK(has_state(*model, "layer1.0.conv2.weight", {32, 32, 3, 3}));
  CHECK_FALSE(has_state(*model, "layer1.0.downsample.0.weight", {32, 32, 1, 1}));
  CHECK(has_state(*model, "layer2.0.downsample.0.weight", {64, 32, 1, 1}));
  CHECK(has_state(*model, "layer3.0.bn2.running_var", {128}));
  CHECK(has_state(*model, "fc.weight", {10, 128}));
  for (const NamedTensor<float>& named : model->state()) CHECK(named.name.rfind("layer4", 0) != 0);
  CHECK(model->state().front().name == "conv1.weight");
  CHECK(model->state().back().name == "fc.bias");
  CHECK(model->feature_size() == 128);
  CHECK(model->output_shape({3, 1, 28, 28}) == Shape{3, 10});
  // The feature maps: 28 (conv1, layer1), 14 (layer2), 7 (layer3).
  CHECK(model->layer(1).output_shape({3, 32, 28, 28}) == Shape{3, 32, 28, 28});
  CHECK(model->layer(3).output_shape({3, 64, 14, 14}) == Shape{3, 128, 7, 7});
  CHECK(models::fashion_resnet<float>(7, 0)->output_shape({2, 1, 28, 28}) == Shape{2, 7});
}

TEST_CASE("fashion_resnet_se adds SqueezeExcitation(c, c / 8) named se to every BasicBlock", "[models][resnet]") {
  auto model = models::fashion_resnet_se<float>(10, 0);
  // Per block 2 c (c / 8) + c / 8 + c for c = 32, 64, 128: squeeze 4, 8, 16.
  CHECK(model->num_parameters() == 308074 + 292 + 1096 + 4240);
  CHECK(has_state(*model, "layer1.0.se.fc1.weight", {4, 32, 1, 1}));
  CHECK(has_state(*model, "layer3.0.se.fc2.weight", {128, 16, 1, 1}));
  CHECK(model->options().se_reduction == 8);
  CHECK(model->output_shape({2, 1, 28, 28}) == Shape{2, 10});
}

TEST_CASE("ResNetOptions: widths, no maxpool and fewer stages leave resnet18 as it was", "[models][resnet]") {
  // The defaults are resnet18's, so resnet18's weights for a seed are those of ResNetOptions{}.
  models::ResNetOptions defaults;
  CHECK(defaults.widths == std::array<std::int64_t, 4>{64, 128, 256, 512});
  CHECK(defaults.stem_maxpool);
  auto resnet = models::resnet18<float>(10, 5);
  models::ResNet<float> same(defaults, 5);
  const auto named_a = resnet->state(), named_b = same.state();
  REQUIRE(named_a.size() == named_b.size());
  bool equal = true;
  for (std::size_t k = 0; k < named_a.size(); ++k) {
    equal = equal && named_a[k].name == named_b[k].name;
    for (std::int64_t i = 0; i < named_a[k].tensor->size(); ++i)
      equal = equal && (*named_a[k].tensor)[i] == (*named_b[k].tensor)[i];
  }
  CHECK(equal);
  // Two stages with the maxpool kept and other widths: 28 -> 14 (maxpool) -> 7 (layer2).
  models::ResNetOptions options;
  options.blocks_per_layer = {1, 2, 0, 0};
  options.widths = {8, 16, 0, 0};  // the widths of stages not built are not read
  models::ResNet<float> two(options, 0);
  CHECK(two.num_layers() == 2);
  CHECK(two.child_name(3) == "maxpool");
  CHECK(two.layer(2).size() == 2);
  CHECK(two.layer(2).output_shape({1, 8, 14, 14}) == Shape{1, 16, 7, 7});
  CHECK(two.feature_size() == 16);
  CHECK(two.output_shape({1, 1, 28, 28}) == Shape{1, 10});
}

TEST_CASE("ResNetOptions beyond torchvision's are checked, the message naming them", "[models][resnet][errors]") {
  models::ResNetOptions options = models::fashion_resnet_options();
  options.blocks_per_layer = {1, 0, 1, 0};  // a stage in the middle cannot be omitted
  CHECK_THROWS_WITH(models::ResNet<float>(options), Catch::Contains("blocks_per_layer=[1, 0, 1, 0]") &&
                                                        Catch::Contains("only 0 after a stage of 0 blocks"));
  options.blocks_per_layer = {0, 0, 0, 0};
  CHECK_THROWS_WITH(models::ResNet<float>(options), Catch::Contains("at least one block in layer1"));
  options.blocks_per_layer = {1, 1, -1, 0};
  CHECK_THROWS_AS(models::ResNet<float>(options), error);
  options.blocks_per_layer = {1, 1, 1, 0};
  options.widths = {32, 0, 128, 0};
  CHECK_THROWS_WITH(models::ResNet<float>(options), Catch::Contains("widths=[32, 0, 128, 0]") &&
                                                        Catch::Contains("positive width for every stage built"));
  options.widths = {32, 64, 128, 0};
  options.se_reduction = 33;  // 32 / 33: no squeeze channel left in layer1
  CHECK_THROWS_WITH(models::ResNet<float>(options),
                    Catch::Contains("se_reduction=33") && Catch::Contains("stem_maxpool=false"));
  options.se_reduction = 32;
  CHECK_NOTHROW(models::ResNet<float>(options));
}

TEST_CASE("A Bottleneck ResNet has torchvision's resnet50 shapes", "[models][resnet]") {
  models::ResNetOptions options;
  options.block = models::ResNetBlock::bottleneck;
  options.blocks_per_layer = {1, 1, 1, 1};
  models::ResNet<float> model(options, 0);
  CHECK(has_state(model, "layer1.0.downsample.0.weight", {256, 64, 1, 1}));
  CHECK(has_state(model, "layer4.0.conv3.weight", {2048, 512, 1, 1}));
  CHECK(model.feature_size() == 2048);
  CHECK(model.output_shape({2, 1, 28, 28}) == Shape{2, 10});
}

TEST_CASE("features() is the penultimate embedding: fc of it gives the logits", "[models]") {
  set_num_threads(2);
  const SyntheticSet set = synthetic_set(4, 9);
  auto resnet = models::resnet18<float>(10, 0);
  auto small = models::fashion_resnet<float>(10, 0);
  models::FashionCNN<float> fashion(0);
  models::FashionCNNSE<float> fashion_se(0);
  struct Case {
    Module<float>* model;
    std::function<const Tensor<float>&(const Tensor<float>&)> features;
    Linear<float>* last;
    std::int64_t size;
  };
  const std::vector<Case> cases{
      {resnet.get(), [&](const Tensor<float>& x) -> const Tensor<float>& { return resnet->features(x); }, &resnet->fc(),
       512},
      {small.get(), [&](const Tensor<float>& x) -> const Tensor<float>& { return small->features(x); }, &small->fc(),
       128},
      {&fashion, [&](const Tensor<float>& x) -> const Tensor<float>& { return fashion.features(x); },
       &static_cast<Linear<float>&>(fashion.classifier()[5]), 128},
      {&fashion_se, [&](const Tensor<float>& x) -> const Tensor<float>& { return fashion_se.features(x); },
       &static_cast<Linear<float>&>(fashion_se.classifier()[5]), 128}};
  for (const Case& test : cases) {
    INFO(test.model->type_name());
    test.model->eval();
    const Tensor<float> logits = test.model->forward(set.images);
    const Tensor<float> features = test.features(set.images);
    REQUIRE(features.shape() == Shape{4, test.size});
    for (float value : features) CHECK(value >= 0.0f);  // after a ReLU
    const Tensor<float>& again = test.last->forward(features);
    for (std::int64_t i = 0; i < logits.size(); ++i) CHECK(again[i] == Approx(logits[i]).margin(1e-5));
  }
}

TEST_CASE("FashionCNNSE: the tutorial's model with SE after each stage, 77,282 parameters", "[models]") {
  models::FashionCNNSE<float> model(0);
  CHECK(model.num_parameters() == 74602 + 552 + 2128);
  CHECK(model.type_name() == "FashionCNNSE");
  CHECK(model.feature_extractor()[5].type_name() == "SqueezeExcitation");
  CHECK(model.feature_extractor()[11].type_name() == "SqueezeExcitation");
  CHECK(has_state(model, "feature_extractor.5.fc1.weight", {8, 32, 1, 1}));
  CHECK(has_state(model, "feature_extractor.11.fc2.weight", {64, 16, 1, 1}));
  CHECK(has_state(model, "feature_extractor.6.weight", {64, 32, 3, 3}));
  CHECK(has_state(model, "classifier.5.weight", {10, 128}));
  CHECK(model.output_shape({2, 1, 28, 28}) == Shape{2, 10});
  // The plain model's weights for a seed are untouched by the SE option.
  models::FashionCNN<float> plain(0);
  CHECK(plain.num_parameters() == 74602);
}

TEST_CASE("resnet18 trains: a few steps on a few hundred images lower the loss, nothing NaN",
          "[models][resnet][training]") {
  auto model = models::resnet18<float>(10, 0);
  // 8 steps of 16 images: ResNet-18's cost is per image, and this test also runs under the sanitizers.
  check_training(*model, 1e-3, 64, 2, 16);
}

TEST_CASE("resnet18_se trains: a few steps on a few hundred images lower the loss, nothing NaN",
          "[models][resnet][training]") {
  auto model = models::resnet18_se<float>(10, 0);
  check_training(*model, 1e-3, 64, 2, 16);
}

TEST_CASE("fashion_resnet trains: a few steps on a few hundred images lower the loss, nothing NaN",
          "[models][resnet][training]") {
  auto model = models::fashion_resnet<float>(10, 0);
  check_training(*model, 3e-3, 160, 2);  // as fashion_resnet_se below
}

TEST_CASE("fashion_resnet_se trains: a few steps on a few hundred images lower the loss, nothing NaN",
          "[models][resnet][training]") {
  auto model = models::fashion_resnet_se<float>(10, 0);
  check_training(*model, 3e-3, 160, 2);  // at 1e-3 the SE variant's loss falls by less than a fifth in 10 steps
}

TEST_CASE("FashionCNNSE trains: a few steps on a few hundred images lower the loss, nothing NaN",
          "[models][training]") {
  models::FashionCNNSE<float> model(0);
  check_training(model, 3e-3, 320, 6);
}
