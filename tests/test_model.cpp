#include <catch2/catch.hpp>
#include <minicnn/minicnn.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "same_bits.hpp"

using namespace minicnn;

TEST_CASE("FashionCNN has 74,602 parameters named as in the PyTorch state_dict", "[model]") {
  models::FashionCNN<float> model(0);
  CHECK(model.num_parameters() == 74602);
  const std::vector<std::pair<std::string, Shape>> expected{
      {"feature_extractor.0.weight", {32, 1, 3, 3}}, {"feature_extractor.0.bias", {32}},
      {"feature_extractor.2.weight", {32, 32, 3, 3}}, {"feature_extractor.2.bias", {32}},
      {"feature_extractor.5.weight", {64, 32, 3, 3}}, {"feature_extractor.5.bias", {64}},
      {"feature_extractor.7.weight", {64, 64, 3, 3}}, {"feature_extractor.7.bias", {64}},
      {"classifier.2.weight", {128, 64}},             {"classifier.2.bias", {128}},
      {"classifier.5.weight", {10, 128}},             {"classifier.5.bias", {10}}};
  const auto named = model.named_parameters();
  REQUIRE(named.size() == expected.size());
  for (std::size_t i = 0; i < named.size(); ++i) {
    CHECK(named[i].name == expected[i].first);
    CHECK(named[i].parameter->value.shape() == expected[i].second);
  }
  // Per layer, as docs/model.md lists them.
  CHECK(model.feature_extractor()[0].num_parameters() == 320);
  CHECK(model.feature_extractor()[2].num_parameters() == 9248);
  CHECK(model.feature_extractor()[5].num_parameters() == 18496);
  CHECK(model.feature_extractor()[7].num_parameters() == 36928);
  CHECK(model.classifier()[2].num_parameters() == 8320);
  CHECK(model.classifier()[5].num_parameters() == 1290);
  CHECK(model.output_shape({5, 1, 28, 28}) == Shape{5, 10});
}

TEST_CASE("PyTorch's default initialisation bounds, seeded", "[model]") {
  models::FashionCNN<float> a(0), b(0), c(1);
  const auto pa = a.named_parameters(), pb = b.named_parameters(), pc = c.named_parameters();
  const double fan_in[] = {9, 9, 288, 288, 288, 288, 576, 576, 64, 64, 128, 128};
  bool any_difference = false;
  for (std::size_t k = 0; k < pa.size(); ++k) {
    const float bound = static_cast<float>(1.0 / std::sqrt(fan_in[k]));
    const auto& va = pa[k].parameter->value;
    float max_abs = 0.f;
    for (std::int64_t i = 0; i < va.size(); ++i) {
      CHECK(va[i] == pb[k].parameter->value[i]);
      max_abs = std::max(max_abs, std::abs(va[i]));
      any_difference = any_difference || va[i] != pc[k].parameter->value[i];
    }
    INFO(pa[k].name);
    CHECK(max_abs <= bound);
    CHECK(max_abs > 0.9f * bound);  // the whole range is used
  }
  CHECK(any_difference);
}

namespace {

// Trains `steps` Adam steps in train mode (dropout on) with the given thread count and returns
// every parameter's bytes.
std::vector<float> train_weights(int threads, int steps) {
  set_num_threads(threads);
  models::FashionCNN<float> model(0);
  Adam<float> opt(model.parameters(), 1e-3);
  CrossEntropyLoss<float> loss;
  Tensor<float> x({16, 1, 28, 28});
  std::vector<int> y(16);
  for (int s = 0; s < steps; ++s) {
    x.uniform(-1.f, 1.f, static_cast<std::uint64_t>(s));
    for (int i = 0; i < 16; ++i) y[static_cast<std::size_t>(i)] = (i * 7 + s) % 10;
    opt.zero_grad();
    loss.forward(model.forward(x), y);
    model.backward(loss.backward());
    opt.step();
  }
  std::vector<float> weights;
  for (auto* p : model.parameters()) weights.insert(weights.end(), p->value.begin(), p->value.end());
  return weights;
}

}  // namespace

TEST_CASE("The same seed gives bit-identical weights after training, with 1 or 2 threads", "[model][reproducibility]") {
  const std::vector<float> one = train_weights(1, 3);
  const std::vector<float> two = train_weights(2, 3);
  const std::vector<float> again = train_weights(2, 3);
  set_num_threads(2);
  REQUIRE(one.size() == 74602);
  CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(two.data(), again.data(), two.size() * sizeof(float)) == 0);
}

TEST_CASE("The README's first program: one step gives a loss near ln(10) and a lower loss after", "[model]") {
  set_num_threads(2);
  models::FashionCNN model(/*seed=*/0);
  Tensor<float> x({64, 1, 28, 28});
  x.uniform(-1.f, 1.f, /*seed=*/1);
  std::vector<int> y(64, 3);
  CrossEntropyLoss loss;
  Adam opt(model.parameters(), /*lr=*/1e-3);
  CosineAnnealingLR sched(opt, /*T_max=*/10);
  model.train();
  Tensor<float> logits = model.forward(x);
  CHECK(logits.shape() == Shape{64, 10});
  const float first = loss.forward(logits, y);
  CHECK(first == Approx(std::log(10.0)).margin(0.2));
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    loss.forward(model.forward(x), y);
    model.backward(loss.backward());
    opt.step();
  }
  sched.step();
  CHECK(loss.forward(model.forward(x), y) < first);
  CHECK(opt.lr() == Approx(CosineAnnealingLR::lr_at(1, 1e-3, 10)));
}

TEST_CASE("Dropout is the identity in eval mode and inverted-scaled in training", "[layers]") {
  Dropout<float> dropout(0.5, 3);
  Tensor<float> x({1000});
  x.fill(1.f);
  const Tensor<float>& y = dropout.forward(x);
  int kept = 0;
  for (float v : y) {
    CHECK((v == 0.f || v == 2.f));
    kept += v != 0.f;
  }
  CHECK(kept == Approx(500).margin(60));
  dropout.eval();
  const Tensor<float>& z = dropout.forward(x);
  for (float v : z) CHECK(v == 1.f);
  CHECK_THROWS_AS(Dropout<float>(1.5), error);
}

TEST_CASE("Layers reject inputs of the wrong shape, naming the layer and both shapes", "[layers][errors]") {
  Conv2d<float> conv(3, 8, 3);
  Tensor<float> x({2, 1, 8, 8});
  CHECK_THROWS_WITH(conv.forward(x), Catch::Contains("Conv2d(3, 8") && Catch::Contains("[2, 1, 8, 8]"));
  Tensor<float> tiny({1, 3, 2, 2});
  CHECK_THROWS_AS(conv.forward(tiny), error);
  Linear<float> linear(64, 10);
  Tensor<float> wrong({4, 63});
  CHECK_THROWS_WITH(linear.forward(wrong), Catch::Contains("[N, 64]") && Catch::Contains("[4, 63]"));
  MaxPool2d<float> pool(2);
  Tensor<float> flat({4, 10});
  CHECK_THROWS_AS(pool.forward(flat), error);
  ReLU<float> relu;
  CHECK_THROWS_WITH(relu.backward(flat), Catch::Contains("before forward"));
  relu.forward(flat);
  Tensor<float> other({4, 11});
  CHECK_THROWS_WITH(relu.backward(other), Catch::Contains("[4, 10]") && Catch::Contains("[4, 11]"));
  CHECK_THROWS_AS(Conv2d<float>(0, 1, 3), error);
  CHECK_THROWS_AS(MaxPool2d<float>(0), error);
  CHECK_THROWS_AS(AdaptiveAvgPool2d<float>(0, 1), error);
  CrossEntropyLoss<float> loss;
  Tensor<float> logits({2, 10});
  CHECK_THROWS_WITH(loss.forward(logits, {1}), Catch::Contains("1 targets"));
  CHECK_THROWS_WITH(loss.forward(logits, {1, 10}), Catch::Contains("target 1 is 10"));
  models::FashionCNN<float> model(0);
  Tensor<float> image({1, 1, 28, 27});
  CHECK_NOTHROW(model.forward(image));  // adaptive pooling takes any size
  Tensor<float> color({1, 3, 28, 28});
  CHECK_THROWS_AS(model.forward(color), error);
}

TEST_CASE("Sequential names children like PyTorch and prints like it", "[layers]") {
  Sequential<float> seq;
  seq.emplace<Linear<float>>(4, 3);
  seq.emplace<ReLU<float>>();
  seq.add("head", std::make_unique<Linear<float>>(3, 2));
  const auto named = seq.named_parameters();
  REQUIRE(named.size() == 4);
  CHECK(named[0].name == "0.weight");
  CHECK(named[3].name == "head.bias");
  CHECK(seq.repr().find("(head): Linear(in_features=3, out_features=2, bias=True)") != std::string::npos);
  CHECK_THROWS_AS(seq.add("head", std::make_unique<ReLU<float>>()), error);
  seq.eval();
  CHECK_FALSE(seq[0].is_training());
}

namespace {

// Conv2d + ReLU pairs on each conv path: conv1-like (one input channel: direct loops), stride 1
// (implicit im2col), stride 2 (explicit im2col); then a pool, flatten and linear head.
template <typename T>
void build_conv_relu_stack(Sequential<T>& seq) {
  Generator gen(11);
  seq.template emplace<Conv2d<T>>(1, 16, 3, 1, 1, true, gen);
  seq.template emplace<ReLU<T>>();
  seq.template emplace<Conv2d<T>>(16, 32, 3, 1, 1, true, gen);
  seq.template emplace<ReLU<T>>();
  seq.template emplace<Conv2d<T>>(32, 16, 3, 2, 1, true, gen);
  seq.template emplace<ReLU<T>>();
  seq.template emplace<MaxPool2d<T>>(2);
  seq.template emplace<Flatten<T>>();
  seq.template emplace<Linear<T>>(16 * 4 * 4, 10, true, gen);
}

using minicnn::testing::same_bits;

template <typename T>
void check_fused_conv_relu() {
  Sequential<T> fused, separate;
  build_conv_relu_stack(fused);
  build_conv_relu_stack(separate);
  separate.set_fusion(false);
  Generator gen(5);
  Tensor<T> input({3, 1, 16, 16});
  input.normal(T(0), T(1), gen);
  Tensor<T> grad({3, 10});
  grad.normal(T(0), T(1), gen);
  // The plan fuses each Conv2d + ReLU (and nothing else), and nothing with fusion off.
  for (std::size_t i = 0; i < fused.size(); ++i) {
    INFO("child " << i);
    CHECK(fused.fused_with_next(i) == (i == 0 || i == 2 || i == 4));
    CHECK_FALSE(separate.fused_with_next(i));
  }
  const Tensor<T>& out_fused = fused.forward(input);
  const Tensor<T>* x = &input;
  for (std::size_t i = 0; i < separate.size(); ++i) x = &separate[i].forward(*x);
  CHECK(same_bits(out_fused, *x));
  const Tensor<T>& grad_fused = fused.backward(grad);
  const Tensor<T>* g = &grad;
  for (std::size_t i = separate.size(); i-- > 0;) g = &separate[i].backward(*g);
  CHECK(same_bits(grad_fused, *g));
  const auto a = fused.named_parameters(), b = separate.named_parameters();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].name);
    CHECK(same_bits(a[i].parameter->grad, b[i].parameter->grad));
  }
  // The fusion fires: the conv stores max(x, 0) and the ReLU hands that very tensor on.
  auto& conv = dynamic_cast<Conv2d<T>&>(fused[0]);
  auto& relu = dynamic_cast<ReLU<T>&>(fused[1]);
  CHECK(conv.fused_relu());
  CHECK(relu.applied_by_producer());
  const Tensor<T>& conv_output = conv.forward(input);
  CHECK(std::all_of(conv_output.begin(), conv_output.end(), [](T v) { return v >= T(0); }));
  CHECK(&relu.forward(conv_output) == &conv_output);
  CHECK_FALSE(dynamic_cast<Conv2d<T>&>(separate[0]).fused_relu());
  // Backward: each ReLU's gradient is applied by the layer after it (the implicit conv, the
  // strided conv's scatter, the max-pool), and the ReLU hands the gradient it gets on.
  for (std::size_t i = 0; i < fused.size(); ++i) {
    INFO("child " << i);
    CHECK(fused.relu_grad_by_next(i) == (i == 1 || i == 3 || i == 5));
    CHECK_FALSE(separate.relu_grad_by_next(i));
  }
  CHECK(relu.grad_applied_by_consumer());
  CHECK(dynamic_cast<Conv2d<T>&>(fused[2]).applies_input_relu_grad());
  CHECK(dynamic_cast<MaxPool2d<T>&>(fused[6]).applies_input_relu_grad());
  Tensor<T> upstream(conv_output.shape());
  upstream.fill(T(1));
  CHECK(&relu.backward(upstream) == &upstream);
  // Switching fusion off and on again re-plans.
  fused.set_fusion(false);
  CHECK_FALSE(conv.fused_relu());
  CHECK_FALSE(relu.applied_by_producer());
  CHECK_FALSE(relu.grad_applied_by_consumer());
  CHECK_FALSE(dynamic_cast<Conv2d<T>&>(fused[2]).applies_input_relu_grad());
  fused.set_fusion(true);
  CHECK(conv.fused_relu());
  CHECK(relu.grad_applied_by_consumer());
}

// ReLUs before the layers that apply their gradient, on the paths the stack above does not
// take: a grouped, dilated conv (explicit im2col), an overlapping 3x3 max-pool, and a conv on
// 4x4 maps (several images per GEMM); the head's ReLU before a Linear stays a pass of its own.
template <typename T>
void build_relu_consumer_stack(Sequential<T>& seq) {
  Generator gen(13);
  seq.template emplace<Conv2d<T>>(2, 8, 3, 1, 1, true, gen);
  seq.template emplace<ReLU<T>>();
  seq.add(std::make_unique<Conv2d<T>>(Conv2dOptions(8, 8, 3).padding(2).dilation(2).groups(2), gen));
  seq.template emplace<ReLU<T>>();
  seq.template emplace<MaxPool2d<T>>(3, 2, 1);
  seq.template emplace<Conv2d<T>>(8, 6, 3, 1, 1, true, gen);
  seq.template emplace<ReLU<T>>();
  seq.template emplace<Conv2d<T>>(6, 4, 3, 1, 1, true, gen);
  seq.template emplace<Flatten<T>>();
  seq.template emplace<ReLU<T>>();
  seq.template emplace<Linear<T>>(4 * 4 * 4, 3, true, gen);
}

template <typename T>
void check_relu_grad_by_consumer() {
  Sequential<T> fused, separate;
  build_relu_consumer_stack(fused);
  build_relu_consumer_stack(separate);
  separate.set_fusion(false);
  for (std::size_t i = 0; i < fused.size(); ++i) {
    INFO("child " << i);
    CHECK(fused.relu_grad_by_next(i) == (i == 1 || i == 3 || i == 6));
  }
  Generator gen(8);
  Tensor<T> input({5, 2, 7, 7});
  input.normal(T(0), T(1), gen);
  Tensor<T> grad({5, 3});
  grad.normal(T(0), T(1), gen);
  for (int step = 0; step < 2; ++step) {  // the second step reuses every buffer
    CHECK(same_bits(fused.forward(input), separate.forward(input)));
    CHECK(same_bits(fused.backward(grad), separate.backward(grad)));
  }
  const auto a = fused.named_parameters(), b = separate.named_parameters();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].name);
    CHECK(same_bits(a[i].parameter->grad, b[i].parameter->grad));
  }
  // The gates closed somewhere: the input gradient of the grouped conv has zeros where its
  // input (the first ReLU's output) is 0 and the gradient through it is not.
  auto& grouped = fused[2];
  std::size_t closed = 0;
  const Tensor<T>& relu_output = fused[1].forward(fused[0].forward(input));
  const Tensor<T>* upstream = &grad;
  for (std::size_t i = fused.size(); i-- > 3;) upstream = &fused[i].backward(*upstream);
  const Tensor<T>& grad_in = grouped.backward(*upstream);
  REQUIRE(grad_in.shape() == relu_output.shape());
  for (std::int64_t i = 0; i < relu_output.size(); ++i) closed += relu_output[i] == T(0) && grad_in[i] == T(0);
  CHECK(closed > 0);
}

}  // namespace

TEST_CASE("Sequential fuses Conv2d + ReLU with the same bits as running them apart, forward and backward",
          "[layers][fusion]") {
  SECTION("float") { check_fused_conv_relu<float>(); }
  SECTION("double") { check_fused_conv_relu<double>(); }
}

TEST_CASE("Sequential has the layer after a ReLU apply its gradient in backward, with the same bits",
          "[layers][fusion]") {
  SECTION("float") { check_relu_grad_by_consumer<float>(); }
  SECTION("double") { check_relu_grad_by_consumer<double>(); }
}

namespace {

// The forward pass under NoGradGuard: the conv before each 2x2 max-pool stores the maxima alone
// (Winograd while pooling, im2col by storing then pooling), with the bits of the pass with
// gradients; a backward after it throws; one with gradients again works as before.
template <typename T>
void check_no_grad_forward(Module<T>& model, const Tensor<T>& input) {
  const Tensor<T> with_grad = model.forward(input);
  Tensor<T> grad(with_grad.shape());
  grad.fill(T(1));
  Tensor<T> grad_input = model.backward(grad);
  {
    NoGradGuard no_grad;
    CHECK_FALSE(grad_enabled());
    CHECK(same_bits(model.forward(input), with_grad));
    CHECK_THROWS_WITH(model.backward(grad), Catch::Matchers::Contains("without gradients (NoGradGuard)"));
  }
  CHECK(grad_enabled());
  CHECK(same_bits(model.forward(input), with_grad));
  CHECK(same_bits(model.backward(grad), grad_input));
}

}  // namespace

TEST_CASE("NoGradGuard: a Conv2d applies the 2x2 max-pool after it, with the same bits, and backward refuses to run",
          "[layers][fusion][no_grad]") {
  SECTION("the guard nests, restores what it found, and belongs to its thread") {
    CHECK(grad_enabled());
    {
      NoGradGuard outer;
      {
        NoGradGuard inner;
        CHECK_FALSE(grad_enabled());
      }
      CHECK_FALSE(grad_enabled());
      bool other_thread = false;
      std::thread([&] { other_thread = grad_enabled(); }).join();
      CHECK(other_thread);
    }
    CHECK(grad_enabled());
  }
  SECTION("FashionCNN in eval mode (Winograd pools as it stores), float and double, every algorithm") {
    const ConvAlgorithm saved = conv_algorithm();
    for (ConvAlgorithm algorithm : {ConvAlgorithm::automatic, ConvAlgorithm::im2col, ConvAlgorithm::winograd_2x2,
                                    ConvAlgorithm::winograd_4x4}) {
      INFO(conv_algorithm_name(algorithm));
      set_conv_algorithm(algorithm);
      models::FashionCNN<float> model(3);
      model.eval();
      Tensor<float> images({3, 1, 28, 28});
      images.normal(0.0f, 1.0f, 4);
      check_no_grad_forward<float>(model.feature_extractor(), images);
      CHECK(model.feature_extractor().pools_after(2));  // conv2 + ReLU + pool1, conv4 + ReLU + pool2
      CHECK(model.feature_extractor().pools_after(7));
      {
        NoGradGuard no_grad;  // the plan fires: conv2 itself returns the pooled maps
        Sequential<float>& features = model.feature_extractor();
        CHECK(features[2].forward(features[0].forward(images)).shape() == Shape{3, 32, 14, 14});
      }
      models::FashionCNN<double> model_d(3);
      model_d.eval();
      Tensor<double> images_d({2, 1, 28, 28});
      images_d.normal(0.0, 1.0, 4);
      check_no_grad_forward<double>(model_d, images_d);  // the whole model, the classifier's backward included
    }
    set_conv_algorithm(saved);
  }
  SECTION("a strided conv in training mode (im2col: stored, then pooled) and the plan's limits") {
    Sequential<float> stack;
    build_conv_relu_stack(stack);
    Tensor<float> input({2, 1, 16, 16});
    input.normal(0.0f, 1.0f, 6);
    check_no_grad_forward<float>(stack, input);
    for (std::size_t i = 0; i < stack.size(); ++i) CHECK(stack.pools_after(i) == (i == 4));
    stack.set_fusion(false);
    for (std::size_t i = 0; i < stack.size(); ++i) CHECK_FALSE(stack.pools_after(i));
    // Only a 2x2, stride-2, unpadded, floor-mode max-pool is applied by its producer.
    for (int variant = 0; variant < 4; ++variant) {
      Sequential<float> seq;
      seq.emplace<Conv2d<float>>(2, 4, 3, 1, 1);
      if (variant == 0) seq.emplace<MaxPool2d<float>>(2, 1);
      if (variant == 1) seq.emplace<MaxPool2d<float>>(3);
      if (variant == 2) seq.emplace<MaxPool2d<float>>(2, 2, 0, 1, true);  // ceil mode
      if (variant == 3) seq.emplace<MaxPool2d<float>>(2);
      CHECK(seq.pools_after(0) == (variant == 3));
    }
  }
  SECTION("a MaxPool2d alone keeps no argmax, and its errors are the same under the guard") {
    MaxPool2d<float> pool(2);
    Tensor<float> x({1, 2, 5, 6});
    x.normal(0.0f, 1.0f, 8);
    const Tensor<float> expected = pool.forward(x);
    NoGradGuard no_grad;
    CHECK(same_bits(pool.forward(x), expected));
    CHECK_THROWS_WITH(pool.backward(expected), Catch::Matchers::Contains("NoGradGuard"));
    Sequential<float> seq;
    seq.emplace<Conv2d<float>>(2, 4, 3, 1, 0);
    seq.emplace<MaxPool2d<float>>(2);
    Tensor<float> tiny({1, 2, 3, 3});  // the conv's 1x1 output is smaller than the pool's window
    CHECK_THROWS_WITH(seq.forward(tiny), Catch::Matchers::Contains("MaxPool2d"));
  }
}
