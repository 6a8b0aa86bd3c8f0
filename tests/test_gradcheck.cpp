// Finite-difference gradient checks of every layer, the loss and a whole network, in double.
#include "gradcheck.hpp"

using namespace minicnn;
using gradcheck::check_module;
using gradcheck::kink_free_input;

namespace {

Tensor<double> random_input(const Shape& shape, std::uint64_t seed) {
  Tensor<double> x(shape);
  x.uniform(-1.0, 1.0, seed);
  return x;
}

}  // namespace

TEST_CASE("Conv2d gradients match finite differences", "[gradcheck][conv]") {
  struct Case {
    std::int64_t in_channels, out_channels, kernel, stride, padding, height, width;
    bool bias;
  };
  const Case cases[] = {
      {1, 4, 3, 1, 1, 6, 6, true},    // the FashionCNN shape, small
      {3, 2, 3, 2, 0, 7, 9, true},    // stride 2, odd, non-square
      {2, 3, 3, 1, 2, 5, 4, true},    // padding 2
      {2, 2, 5, 2, 1, 9, 8, false},   // 5x5, stride 2, no bias
      {3, 4, 1, 1, 0, 4, 5, true},    // 1x1
      {2, 3, 2, 3, 1, 8, 7, true},    // stride larger than the kernel
  };
  for (const Case& c : cases) {
    Generator gen(11);
    Conv2d<double> conv(c.in_channels, c.out_channels, c.kernel, c.stride, c.padding, c.bias, gen);
    Tensor<double> x = random_input({2, c.in_channels, c.height, c.width}, 3);
    check_module(conv, x);
  }
}

TEST_CASE("Conv2d gradients match finite differences with PyTorch's general arguments", "[gradcheck][conv]") {
  struct Case {
    std::int64_t in_channels, out_channels;
    IntPair kernel, stride, padding, dilation;
    std::int64_t groups;
    bool bias;
    std::int64_t height, width;
  };
  const Case cases[] = {
      {2, 3, {3, 2}, 1, 0, 1, 1, true, 6, 5},            // non-square kernel, stride 1
      {3, 2, {5, 3}, {2, 1}, {1, 0}, 1, 1, true, 9, 6},  // per-axis stride and padding
      {2, 2, 3, 1, {2, 1}, {2, 1}, 1, false, 7, 6},      // per-axis dilation
      {4, 6, 3, {1, 2}, 1, 1, 2, true, 6, 7},            // two groups
      {3, 3, {3, 3}, 1, 1, 1, 3, true, 5, 5},            // depthwise, stride 1 padding 1
      {3, 6, {2, 3}, 2, {1, 1}, {2, 1}, 3, true, 8, 7},  // depthwise with a multiplier, all together
      {2, 4, 1, 1, 0, 1, 1, true, 3, 4},                 // 1x1 given as pairs elsewhere: plain path
  };
  for (const Case& c : cases) {
    Generator gen(17);
    Conv2d<double> conv(Conv2dOptions(c.in_channels, c.out_channels, c.kernel)
                            .stride(c.stride)
                            .padding(c.padding)
                            .dilation(c.dilation)
                            .groups(c.groups)
                            .bias(c.bias),
                        gen);
    Tensor<double> x = random_input({2, c.in_channels, c.height, c.width}, 19);
    check_module(conv, x);
  }
}

TEST_CASE("Conv2d without input gradient skips it and still gives parameter gradients", "[gradcheck][conv]") {
  Generator gen(5);
  Conv2d<double> conv(2, 3, 3, 1, 1, true, gen);
  conv.set_input_grad(false);
  Tensor<double> x = random_input({3, 2, 5, 5}, 4);
  check_module(conv, x);
  CHECK(conv.backward(Tensor<double>(conv.output_shape(x.shape()))).empty());
}

TEST_CASE("ReLU gradients match finite differences away from the kink", "[gradcheck]") {
  ReLU<double> relu;
  Tensor<double> x = kink_free_input({2, 3, 4, 5}, 1);
  check_module(relu, x);
}

TEST_CASE("MaxPool2d gradients match finite differences away from ties", "[gradcheck][pool]") {
  for (auto [kernel, stride, height, width] : {std::array<std::int64_t, 4>{2, 2, 8, 8}, {2, 2, 7, 9}, {3, 2, 7, 8},
                                                 {3, 1, 5, 6}}) {
    MaxPool2d<double> pool(kernel, stride);
    Tensor<double> x = kink_free_input({2, 3, height, width}, 2);
    check_module(pool, x);
  }
}

TEST_CASE("MaxPool2d gradients match finite differences with padding, dilation and ceil_mode", "[gradcheck][pool]") {
  struct Case {
    IntPair kernel, stride, padding, dilation;
    bool ceil_mode;
    std::int64_t height, width;
  };
  const Case cases[] = {
      {{3, 2}, {2, 1}, {1, 0}, 1, false, 7, 6},  // non-square, per-axis stride and padding
      {3, 2, 1, 1, true, 8, 7},                  // ceil_mode: a last window past the input
      {2, 2, 0, 1, true, 7, 9},                  // the 2x2 shape in ceil_mode on odd sizes
      {3, 1, 1, 2, false, 7, 8},                 // dilation 2
      {{2, 3}, {3, 2}, {1, 1}, {2, 1}, true, 9, 8},
  };
  for (const Case& c : cases) {
    MaxPool2d<double> pool(c.kernel, c.stride, c.padding, c.dilation, c.ceil_mode);
    Tensor<double> x = kink_free_input({2, 3, c.height, c.width}, 4);
    check_module(pool, x);
  }
}

TEST_CASE("AvgPool2d gradients match finite differences, both count_include_pad values and ceil_mode",
          "[gradcheck][pool]") {
  struct Case {
    IntPair kernel, stride, padding;
    bool ceil_mode;
    std::int64_t height, width;
  };
  const Case cases[] = {
      {2, 0, 0, false, 8, 8},  // the default stride
      {3, 2, 1, false, 7, 8},  // padding
      {3, 2, 1, true, 8, 7},   // ceil_mode: windows past the padding, smaller divisors
      {{3, 2}, {2, 1}, {1, 0}, true, 6, 5},
      {{2, 4}, {3, 2}, {1, 2}, false, 9, 7},
  };
  for (const Case& c : cases) {
    for (const bool count_include_pad : {true, false}) {
      AvgPool2d<double> pool(c.kernel, c.stride, c.padding, c.ceil_mode, count_include_pad);
      INFO("count_include_pad " << count_include_pad);
      Tensor<double> x = random_input({2, 3, c.height, c.width}, 6);
      check_module(pool, x);
    }
  }
}

TEST_CASE("AdaptiveMaxPool2d gradients match finite differences away from ties", "[gradcheck][pool]") {
  for (auto [out_h, out_w, height, width] :
       {std::array<std::int64_t, 4>{1, 1, 7, 7}, {3, 2, 5, 7}, {3, 4, 10, 10}, {4, 4, 4, 4}, {5, 3, 3, 2}}) {
    AdaptiveMaxPool2d<double> pool(out_h, out_w);
    Tensor<double> x = kink_free_input({2, 3, height, width}, 8);
    check_module(pool, x);
  }
  AdaptiveMaxPool2d<double> square(3);
  Tensor<double> x = kink_free_input({1, 2, 7, 8}, 9);
  check_module(square, x);
}

TEST_CASE("an empty batch flows through Conv2d and every pool, forward and backward", "[gradcheck][pool][conv]") {
  Generator gen(23);
  Conv2d<double> plain(3, 4, 3, 1, 1, true, gen);
  Conv2d<double> general(Conv2dOptions(4, 6, {3, 2}).stride({2, 1}).dilation(2).groups(2), gen);
  MaxPool2d<double> max_pool(2);
  MaxPool2d<double> max_pool_general({3, 2}, 2, 1, 1, true);
  AvgPool2d<double> avg_pool(3, 2, 1, true, false);
  AdaptiveAvgPool2d<double> adaptive_avg(2);
  AdaptiveMaxPool2d<double> adaptive_max(2, 3);
  Module<double>* layers[] = {&plain, &general, &max_pool, &max_pool_general, &avg_pool, &adaptive_avg, &adaptive_max};
  for (Module<double>* layer : layers) {
    INFO(layer->repr());
    const std::int64_t channels = layer == &general ? 4 : 3;
    const Tensor<double> x(Shape{0, channels, 9, 8});
    const Tensor<double>& y = layer->forward(x);
    const Shape expected = layer->output_shape(Shape{1, channels, 9, 8});
    CHECK(y.shape() == Shape{0, expected[1], expected[2], expected[3]});
    layer->zero_grad();
    const Tensor<double>& grad_input = layer->backward(Tensor<double>(y.shape()));
    CHECK(grad_input.shape() == x.shape());
    // No image: every parameter gradient stays zero.
    for (auto& named : layer->named_parameters())
      for (std::int64_t i = 0; i < named.parameter->grad.size(); ++i) CHECK(named.parameter->grad[i] == 0.0);
  }
}

TEST_CASE("AdaptiveAvgPool2d gradients match finite differences, also for sizes that don't divide", "[gradcheck][pool]") {
  for (auto [out_h, out_w, height, width] : {std::array<std::int64_t, 4>{1, 1, 7, 7}, {3, 2, 5, 7}, {3, 4, 10, 10},
                                               {4, 4, 4, 4}, {5, 3, 3, 2}}) {
    AdaptiveAvgPool2d<double> pool(out_h, out_w);
    Tensor<double> x = random_input({2, 3, height, width}, 5);
    check_module(pool, x);
  }
}

TEST_CASE("Linear gradients match finite differences", "[gradcheck]") {
  Generator gen(3);
  Linear<double> linear(7, 5, true, gen);
  Tensor<double> x = random_input({4, 7}, 6);
  check_module(linear, x);
  Linear<double> no_bias(6, 3, false, gen);
  Tensor<double> x2 = random_input({2, 6}, 7);
  check_module(no_bias, x2);
}

TEST_CASE("Flatten gradients match finite differences", "[gradcheck]") {
  Flatten<double> flatten;
  Tensor<double> x = random_input({3, 2, 3, 4}, 8);
  check_module(flatten, x);
}

TEST_CASE("Dropout gradients match finite differences for a fixed mask", "[gradcheck]") {
  Dropout<double> dropout(0.3, 42);
  Tensor<double> x = random_input({4, 50}, 9);
  gradcheck::Options options;
  options.before_forward = [&] { dropout.generator().set_state(42, 0); };
  check_module(dropout, x, options);
  dropout.eval();
  check_module(dropout, x);
}

TEST_CASE("A small network's gradients match finite differences", "[gradcheck]") {
  Generator gen(21);
  Sequential<double> net;
  net.emplace<Conv2d<double>>(2, 4, 3, 1, 1, true, gen);
  net.emplace<ReLU<double>>();
  net.emplace<MaxPool2d<double>>(2);
  net.emplace<Conv2d<double>>(4, 3, 3, 2, 1, true, gen);
  net.emplace<ReLU<double>>();
  net.emplace<AdaptiveAvgPool2d<double>>(2, 1);
  net.emplace<Flatten<double>>();
  net.emplace<Linear<double>>(6, 3, true, gen);
  Tensor<double> x = random_input({2, 2, 8, 7}, 10);
  gradcheck::Options options;
  options.rel_tol = 1e-5;  // a stray ReLU/max-pool kink shows up as a much larger error
  check_module(net, x, options);
}

TEST_CASE("CrossEntropyLoss gradient matches finite differences, with and without label smoothing", "[gradcheck][loss]") {
  for (double smoothing : {0.0, 0.1}) {
    CrossEntropyLoss<double> loss(smoothing);
    Tensor<double> logits = random_input({5, 4}, 12);
    logits[3] = 30.0;  // a large logit: the log-softmax must stay stable
    const std::vector<int> targets{0, 3, 1, 2, 3};
    loss.forward(logits, targets);
    const Tensor<double> grad = loss.backward();
    for (std::int64_t i = 0; i < logits.size(); ++i) {
      const double saved = logits[i], h = 1e-6;
      logits[i] = saved + h;
      const double plus = loss.forward(logits, targets);
      logits[i] = saved - h;
      const double minus = loss.forward(logits, targets);
      logits[i] = saved;
      INFO("label_smoothing " << smoothing << " logit " << i);
      CHECK(gradcheck::close(grad[i], (plus - minus) / (2 * h), 1e-6, 1e-9));
    }
  }
}

TEST_CASE("FashionCNN in double: directional derivatives match finite differences", "[gradcheck][model]") {
  models::FashionCNN<double> model(3);
  model.eval();  // dropout off: the function must be deterministic
  Tensor<double> x = random_input({2, 1, 28, 28}, 13);
  const std::vector<int> targets{4, 7};
  CrossEntropyLoss<double> loss;
  auto objective = [&] { return static_cast<double>(loss.forward(model.forward(x), targets)); };

  model.zero_grad();
  objective();
  model.backward(loss.backward());
  auto params = model.named_parameters();
  // Three random directions over all 74,602 parameters at once.
  for (std::uint64_t direction = 0; direction < 3; ++direction) {
    Generator gen(100 + direction);
    std::vector<Tensor<double>> v;
    double analytic = 0.0;
    for (auto& p : params) {
      v.emplace_back(p.parameter->value.shape());
      v.back().uniform(-1.0, 1.0, gen);
      for (std::int64_t i = 0; i < v.back().size(); ++i) analytic += v.back()[i] * p.parameter->grad[i];
    }
    const double h = 1e-6;
    auto shift = [&](double scale) {
      for (std::size_t k = 0; k < params.size(); ++k)
        for (std::int64_t i = 0; i < v[k].size(); ++i) params[k].parameter->value[i] += scale * v[k][i];
    };
    shift(h);
    const double plus = objective();
    shift(-2 * h);
    const double minus = objective();
    shift(h);
    const double numeric = (plus - minus) / (2 * h);
    INFO("direction " << direction << ": analytic " << analytic << " numeric " << numeric);
    CHECK(gradcheck::close(analytic, numeric, 1e-5, 1e-8));
  }
}
