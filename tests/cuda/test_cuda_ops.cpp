// Every CUDA op against the CPU op, through the same dispatch and layer code the library uses,
// plus the device side of Tensor and the caching allocator. After every op the guard bytes
// behind every live device buffer are checked (main.cpp switches them on).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"
#include "minicnn/layers/adaptive_avg_pool2d.hpp"
#include "minicnn/layers/adaptive_max_pool2d.hpp"
#include "minicnn/layers/avg_pool2d.hpp"
#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/dropout.hpp"
#include "minicnn/layers/flatten.hpp"
#include "minicnn/layers/linear.hpp"
#include "minicnn/layers/maxpool2d.hpp"
#include "minicnn/layers/relu.hpp"
#include "minicnn/loss.hpp"
#include "minicnn/ops/cpu/gemm.hpp"
#include "minicnn/ops/cuda/ops.hpp"
#include "minicnn/ops/dispatch.hpp"
#include "minicnn/ops/kernels/conv.hpp"
#include "minicnn/optim/adam.hpp"
#include "minicnn/optim/sgd.hpp"

using minicnn::Device;
using minicnn::Module;
using minicnn::Shape;
using minicnn::Tensor;
using minicnn::testing::check_close;
using minicnn::testing::check_equal;
using minicnn::testing::check_guards;
using minicnn::testing::random_tensor;
namespace cuda_ops = minicnn::ops::cuda;
namespace kernels = minicnn::ops::kernels;

namespace {

// Runs forward and backward twice on a CPU layer and its GPU twin (same weights), comparing
// output, grad_input and every parameter gradient; the second pass catches stale buffers and
// checks that parameter gradients accumulate.
template <typename T>
void compare_layer(Module<T>& cpu_layer, Module<T>& gpu_layer, const Shape& input_shape, std::uint64_t seed,
                   const std::string& name, bool bit_identical = false) {
  gpu_layer.to(Device::cuda);
  REQUIRE(gpu_layer.device() == (gpu_layer.parameters().empty() ? Device::cpu : Device::cuda));
  const Tensor<T> input = random_tensor<T>(input_shape, seed);
  const Tensor<T> gpu_input = input.copy_to(Device::cuda);
  auto compare = [&](const Tensor<T>& gpu, const Tensor<T>& cpu, const std::string& what) {
    if (bit_identical)
      check_equal(gpu, cpu, name + " " + what);
    else
      check_close(gpu, cpu, name + " " + what);
  };
  for (int pass = 0; pass < 2; ++pass) {
    const Tensor<T>& cpu_output = cpu_layer.forward(input);
    const Tensor<T>& gpu_output = gpu_layer.forward(gpu_input);
    compare(gpu_output, cpu_output, "output");
    const Tensor<T> grad_output = random_tensor<T>(cpu_output.shape(), seed + 10 + static_cast<std::uint64_t>(pass));
    const Tensor<T> gpu_grad_output = grad_output.copy_to(Device::cuda);
    const Tensor<T>& cpu_grad_input = cpu_layer.backward(grad_output);
    const Tensor<T>& gpu_grad_input = gpu_layer.backward(gpu_grad_output);
    if (!cpu_grad_input.empty()) compare(gpu_grad_input, cpu_grad_input, "grad_input");
    const auto cpu_parameters = cpu_layer.named_parameters();
    const auto gpu_parameters = gpu_layer.named_parameters();
    for (std::size_t i = 0; i < cpu_parameters.size(); ++i)
      check_close(gpu_parameters[i].parameter->grad, cpu_parameters[i].parameter->grad,
                  name + " " + cpu_parameters[i].name + ".grad");
    check_guards();
  }
}

}  // namespace

TEMPLATE_TEST_CASE("cuda: Conv2d matches the CPU for FashionCNN's and other geometries", "[cuda][ops]", float, double) {
  struct Case {
    std::int64_t batch, in_channels, out_channels, height, width, kernel, stride, padding;
    bool bias;
  };
  for (const Case& c : {Case{4, 1, 32, 28, 28, 3, 1, 1, true}, Case{3, 32, 64, 14, 14, 3, 1, 1, true},
                        Case{2, 3, 5, 9, 7, 3, 2, 1, false}, Case{5, 4, 6, 8, 8, 5, 1, 2, true},
                        Case{2, 6, 3, 5, 6, 1, 1, 0, true}, Case{1, 2, 4, 11, 10, 4, 3, 2, true}}) {
    const std::string name = "Conv2d(" + std::to_string(c.in_channels) + ", " + std::to_string(c.out_channels) + ", k" +
                             std::to_string(c.kernel) + " s" + std::to_string(c.stride) + " p" +
                             std::to_string(c.padding) + ")";
    minicnn::Generator cpu_gen(7), gpu_gen(7);
    minicnn::Conv2d<TestType> cpu_layer(c.in_channels, c.out_channels, c.kernel, c.stride, c.padding, c.bias, cpu_gen);
    minicnn::Conv2d<TestType> gpu_layer(c.in_channels, c.out_channels, c.kernel, c.stride, c.padding, c.bias, gpu_gen);
    compare_layer<TestType>(cpu_layer, gpu_layer, Shape{c.batch, c.in_channels, c.height, c.width}, 100, name);
  }
}

TEMPLATE_TEST_CASE("cuda: Conv2d matches the CPU with per-axis arguments, dilation and groups", "[cuda][ops]", float,
                   double) {
  using minicnn::Conv2dOptions;
  const Conv2dOptions cases[] = {
      Conv2dOptions(3, 6, {5, 3}).stride({2, 1}).padding({1, 0}).dilation(2).groups(3).bias(false),
      Conv2dOptions(4, 4, 3).padding(1).groups(4),  // depthwise
      Conv2dOptions(4, 6, 3).stride({1, 2}).padding({2, 1}).dilation({1, 2}).groups(2),
      Conv2dOptions(2, 4, {1, 3}).stride(2).padding({0, 1}),
  };
  for (const Conv2dOptions& options : cases) {
    minicnn::Generator cpu_gen(9), gpu_gen(9);
    minicnn::Conv2d<TestType> cpu_layer(options, cpu_gen), gpu_layer(options, gpu_gen);
    compare_layer<TestType>(cpu_layer, gpu_layer, Shape{3, options.in_channels(), 11, 9}, 150, cpu_layer.repr());
  }
}

TEST_CASE("cuda: Conv2d without input gradient, and with the batch cut into column chunks", "[cuda][ops]") {
  minicnn::Generator cpu_gen(3), gpu_gen(3);
  minicnn::Conv2d<float> cpu_first(1, 8, 3, 1, 1, true, cpu_gen), gpu_first(1, 8, 3, 1, 1, true, gpu_gen);
  cpu_first.set_input_grad(false);
  gpu_first.set_input_grad(false);
  compare_layer<float>(cpu_first, gpu_first, Shape{6, 1, 12, 12}, 5, "Conv2d without grad_input");

  // 64 x 9 rows x 112 x 112 columns x 4 bytes = 29 MB of columns per image: 8 images per
  // 256 MB chunk, so 10 images take two chunks.
  minicnn::Generator cpu_big(4), gpu_big(4);
  minicnn::Conv2d<float> cpu_layer(64, 4, 3, 1, 1, true, cpu_big), gpu_layer(64, 4, 3, 1, 1, true, gpu_big);
  compare_layer<float>(cpu_layer, gpu_layer, Shape{10, 64, 112, 112}, 6, "Conv2d over two chunks");
}

TEMPLATE_TEST_CASE("cuda: Linear matches the CPU", "[cuda][ops]", float, double) {
  for (bool bias : {true, false}) {
    minicnn::Generator cpu_gen(9), gpu_gen(9);
    minicnn::Linear<TestType> cpu_layer(64, 128, bias, cpu_gen), gpu_layer(64, 128, bias, gpu_gen);
    compare_layer<TestType>(cpu_layer, gpu_layer, Shape{37, 64}, 200, bias ? "Linear" : "Linear(bias=False)");
  }
}

TEMPLATE_TEST_CASE("cuda: ReLU and every pooling layer match the CPU bit for bit", "[cuda][ops]", float, double) {
  {
    minicnn::ReLU<TestType> cpu_layer, gpu_layer;
    compare_layer<TestType>(cpu_layer, gpu_layer, Shape{3, 5, 7, 9}, 300, "ReLU", true);
  }
  for (const auto& [kernel, stride, height, width] :
       std::vector<std::array<std::int64_t, 4>>{{2, 2, 28, 28}, {2, 2, 7, 9}, {3, 2, 9, 8}, {3, 1, 6, 6}}) {
    minicnn::MaxPool2d<TestType> cpu_layer(kernel, stride), gpu_layer(kernel, stride);
    compare_layer<TestType>(cpu_layer, gpu_layer, Shape{2, 3, height, width}, 400, cpu_layer.repr(), true);
  }
  for (const auto& [out_height, out_width, height, width] :
       std::vector<std::array<std::int64_t, 4>>{{1, 1, 7, 7}, {3, 3, 7, 7}, {2, 3, 5, 8}, {5, 7, 3, 4}}) {
    minicnn::AdaptiveAvgPool2d<TestType> cpu_layer(out_height, out_width), gpu_layer(out_height, out_width);
    compare_layer<TestType>(cpu_layer, gpu_layer, Shape{2, 3, height, width}, 500, cpu_layer.repr(), true);
  }
  for (const bool ceil_mode : {false, true}) {
    minicnn::MaxPool2d<TestType> cpu_max({3, 2}, {2, 1}, {1, 0}, {2, 1}, ceil_mode),
        gpu_max({3, 2}, {2, 1}, {1, 0}, {2, 1}, ceil_mode);
    compare_layer<TestType>(cpu_max, gpu_max, Shape{2, 3, 9, 8}, 410, cpu_max.repr(), true);
    for (const bool count_include_pad : {false, true}) {
      minicnn::AvgPool2d<TestType> cpu_avg(3, 2, 1, ceil_mode, count_include_pad),
          gpu_avg(3, 2, 1, ceil_mode, count_include_pad);
      compare_layer<TestType>(cpu_avg, gpu_avg, Shape{2, 3, 8, 7}, 420, cpu_avg.repr(), true);
    }
  }
  for (const auto& [out_height, out_width, height, width] :
       std::vector<std::array<std::int64_t, 4>>{{1, 1, 7, 7}, {3, 3, 7, 7}, {2, 3, 5, 8}, {5, 7, 3, 4}}) {
    minicnn::AdaptiveMaxPool2d<TestType> cpu_layer(out_height, out_width), gpu_layer(out_height, out_width);
    compare_layer<TestType>(cpu_layer, gpu_layer, Shape{2, 3, height, width}, 510, cpu_layer.repr(), true);
  }
  {
    minicnn::Flatten<TestType> cpu_layer, gpu_layer;
    compare_layer<TestType>(cpu_layer, gpu_layer, Shape{4, 3, 2, 5}, 600, "Flatten", true);
  }
}

TEMPLATE_TEST_CASE("cuda: activations, add and channel_scale match the CPU", "[cuda][ops]", float, double) {
  using T = TestType;
  const Shape shape{3, 5, 7, 9};
  const Tensor<T> input = random_tensor<T>(shape, 800), other = random_tensor<T>(shape, 801);
  const Tensor<T> grad_output = random_tensor<T>(shape, 802);
  const Tensor<T> gpu_input = input.copy_to(Device::cuda), gpu_other = other.copy_to(Device::cuda);
  const Tensor<T> gpu_grad_output = grad_output.copy_to(Device::cuda);
  using minicnn::ops::Activation;
  for (Activation kind :
       {Activation::relu, Activation::sigmoid, Activation::tanh, Activation::silu, Activation::hardswish,
        Activation::hardsigmoid, Activation::gelu, Activation::gelu_tanh, Activation::leaky_relu}) {
    const std::string name = minicnn::ops::activation_name(kind);
    const double parameter = kind == Activation::leaky_relu ? 0.1 : 0.0;
    Tensor<T> output, grad_input, gpu_output, gpu_grad_input;
    minicnn::ops::activation_forward(kind, parameter, input, output);
    minicnn::ops::activation_backward(kind, parameter, input, output, grad_output, grad_input);
    minicnn::ops::activation_forward(kind, parameter, gpu_input, gpu_output);
    minicnn::ops::activation_backward(kind, parameter, gpu_input, gpu_output, gpu_grad_output, gpu_grad_input);
    REQUIRE(gpu_output.device() == Device::cuda);
    // Comparisons, clamps and single multiplications or divisions are exact on both; exp, erf
    // and tanh are CUDA's own.
    const bool exact = kind == Activation::relu || kind == Activation::leaky_relu || kind == Activation::hardswish ||
                       kind == Activation::hardsigmoid;
    if (exact) {
      check_equal(gpu_output, output, name + " output");
      check_equal(gpu_grad_input, grad_input, name + " grad_input");
    } else {
      check_close(gpu_output, output, name + " output");
      check_close(gpu_grad_input, grad_input, name + " grad_input");
    }
    check_guards();
  }
  Tensor<T> sum, gpu_sum;
  minicnn::ops::add(input, other, sum);
  minicnn::ops::add(gpu_input, gpu_other, gpu_sum);
  check_equal(gpu_sum, sum, "add");

  const Tensor<T> scale = random_tensor<T>(Shape{3, 5}, 803);
  const Tensor<T> gpu_scale = scale.copy_to(Device::cuda);
  Tensor<T> scaled, grad_input, grad_scale, gpu_scaled, gpu_grad_input, gpu_grad_scale, gpu_grad_scale_alone;
  minicnn::ops::channel_scale_forward(input, scale, scaled);
  minicnn::ops::channel_scale_backward(input, scale, grad_output, &grad_input, grad_scale);
  minicnn::ops::channel_scale_forward(gpu_input, gpu_scale, gpu_scaled);
  minicnn::ops::channel_scale_backward(gpu_input, gpu_scale, gpu_grad_output, &gpu_grad_input, gpu_grad_scale);
  minicnn::ops::channel_scale_backward<T>(gpu_input, gpu_scale, gpu_grad_output, nullptr, gpu_grad_scale_alone);
  check_equal(gpu_scaled, scaled, "channel_scale output");
  check_equal(gpu_grad_input, grad_input, "channel_scale grad_input");
  // The same summation order, but nvcc may fuse each multiply-add.
  check_close(gpu_grad_scale, grad_scale, "channel_scale grad_scale");
  check_equal(gpu_grad_scale_alone, gpu_grad_scale.copy_to(Device::cpu), "channel_scale grad_scale without grad_input");
  check_guards();
}

TEMPLATE_TEST_CASE("cuda: Dropout masks are the CPU's, bit for bit", "[cuda][ops]", float, double) {
  for (double p : {0.5, 0.1}) {
    minicnn::Dropout<TestType> cpu_layer(p, 1234), gpu_layer(p, 1234);
    compare_layer<TestType>(cpu_layer, gpu_layer, Shape{64, 128}, 700, cpu_layer.repr(), true);
    CHECK(gpu_layer.generator().counter() == cpu_layer.generator().counter());
  }
}

TEMPLATE_TEST_CASE("cuda: batch normalisation matches the CPU in training and evaluation", "[cuda][ops]", float,
                   double) {
  struct Case {
    Shape shape;
    bool affine, running_stats, batch_stats;
  };
  // FashionCNN-sized channels (64 x 28 x 28 per channel: many strides of the block), [N, C]
  // with more channels than a block has threads, affine=False, evaluation, an empty batch.
  for (const Case& c : {Case{Shape{64, 4, 28, 28}, true, true, true}, Case{Shape{8, 300}, true, true, true},
                        Case{Shape{3, 5, 7}, false, false, true}, Case{Shape{4, 3, 5, 6}, true, true, false},
                        Case{Shape{0, 3, 4, 4}, true, true, true}}) {
    const std::int64_t channels = c.shape[1];
    INFO("input " << c.shape.str() << (c.affine ? "" : " affine=False") << (c.batch_stats ? " training" : " eval"));
    const Tensor<TestType> input = random_tensor<TestType>(c.shape, 21, -1.0, 3.0);
    const Tensor<TestType> grad_output = random_tensor<TestType>(c.shape, 22);
    Tensor<TestType> weight, bias, running_mean, running_var;
    if (c.affine) {
      weight = random_tensor<TestType>(Shape{channels}, 23, 0.5, 1.5);
      bias = random_tensor<TestType>(Shape{channels}, 24);
    }
    if (c.running_stats) {
      running_mean = random_tensor<TestType>(Shape{channels}, 25);
      running_var = random_tensor<TestType>(Shape{channels}, 26, 0.5, 1.5);
    }
    struct Run {
      Tensor<TestType> input, grad_output, weight, bias, running_mean, running_var, output, save_mean, save_invstd,
          grad_input, grad_weight, grad_bias;
    };
    auto run = [&](Device device) {
      Run r{input.copy_to(device),
            grad_output.copy_to(device),
            weight.copy_to(device),
            bias.copy_to(device),
            running_mean.copy_to(device),
            running_var.copy_to(device),
            Tensor<TestType>(c.shape, device),
            Tensor<TestType>(Shape{channels}, device),
            Tensor<TestType>(Shape{channels}, device),
            Tensor<TestType>(c.shape, device),
            Tensor<TestType>(),
            Tensor<TestType>()};
      if (c.affine) {  // accumulated into: both backends start from the same non-zero values
        r.grad_weight = Tensor<TestType>(Shape{channels}, device);
        r.grad_bias = Tensor<TestType>(Shape{channels}, device);
        r.grad_weight.fill(TestType(0.5));
        r.grad_bias.fill(TestType(0.5));
      }
      auto optional = [](Tensor<TestType>& t) { return t.empty() ? nullptr : &t; };
      minicnn::ops::batch_norm_forward(r.input, optional(r.weight), optional(r.bias), optional(r.running_mean),
                                       optional(r.running_var), c.batch_stats, 0.1, 1e-5, r.output, r.save_mean,
                                       r.save_invstd);
      minicnn::ops::batch_norm_backward(r.input, optional(r.weight), r.save_mean, r.save_invstd, r.grad_output,
                                        c.batch_stats, &r.grad_input, optional(r.grad_weight), optional(r.grad_bias));
      return r;
    };
    const Run cpu = run(Device::cpu), gpu = run(Device::cuda);
    check_guards();
    check_close(gpu.output, cpu.output, "output");
    check_close(gpu.grad_input, cpu.grad_input, "grad_input");
    if (c.shape[0] > 0) {  // an empty batch leaves the saved statistics unwritten
      check_close(gpu.save_mean, cpu.save_mean, "save_mean");
      check_close(gpu.save_invstd, cpu.save_invstd, "save_invstd");
    }
    if (c.running_stats) {
      check_close(gpu.running_mean, cpu.running_mean, "running_mean");
      check_close(gpu.running_var, cpu.running_var, "running_var");
    }
    if (c.affine) {
      check_close(gpu.grad_weight, cpu.grad_weight, "grad_weight");
      check_close(gpu.grad_bias, cpu.grad_bias, "grad_bias");
    }
  }
}

TEMPLATE_TEST_CASE("cuda: softmax cross-entropy matches the CPU, with and without label smoothing", "[cuda][ops]",
                   float, double) {
  for (double smoothing : {0.0, 0.1}) {
    const Tensor<TestType> logits = random_tensor<TestType>(Shape{64, 10}, 800, -4.0, 4.0);
    const Tensor<TestType> gpu_logits = logits.copy_to(Device::cuda);
    std::vector<int> targets;
    minicnn::Generator gen(801);
    for (int i = 0; i < 64; ++i) targets.push_back(static_cast<int>(gen.below(10)));
    minicnn::CrossEntropyLoss<TestType> cpu_loss(smoothing), gpu_loss(smoothing);
    const double expected = static_cast<double>(cpu_loss.forward(logits, targets));
    const double found = static_cast<double>(gpu_loss.forward(gpu_logits, targets));
    INFO("label smoothing " << smoothing << ": CPU loss " << expected << ", GPU loss " << found);
    CHECK(std::abs(found - expected) <= minicnn::testing::gpu_tolerance<TestType>() * std::abs(expected));
    check_close(gpu_loss.backward(), cpu_loss.backward(), "grad_logits");
    check_guards();
  }
}

TEMPLATE_TEST_CASE("cuda: Adam, AdamW and SGD steps match the CPU", "[cuda][ops]", float, double) {
  auto run = [](const std::string& name, auto make_optimizer) {
    minicnn::Generator cpu_gen(11), gpu_gen(11);
    minicnn::Linear<TestType> cpu_layer(32, 16, true, cpu_gen), gpu_layer(32, 16, true, gpu_gen);
    gpu_layer.to(Device::cuda);
    auto cpu_optimizer = make_optimizer(cpu_layer.parameters());
    auto gpu_optimizer = make_optimizer(gpu_layer.parameters());
    for (int step = 0; step < 3; ++step) {
      const auto cpu_parameters = cpu_layer.parameters();
      const auto gpu_parameters = gpu_layer.parameters();
      for (std::size_t i = 0; i < cpu_parameters.size(); ++i) {
        cpu_parameters[i]->grad = random_tensor<TestType>(cpu_parameters[i]->value.shape(), 900 + 10 * step + i);
        gpu_parameters[i]->grad.copy_from(cpu_parameters[i]->grad);
      }
      cpu_optimizer.step();
      gpu_optimizer.step();
      for (std::size_t i = 0; i < cpu_parameters.size(); ++i)
        check_close(gpu_parameters[i]->value, cpu_parameters[i]->value, name + " step " + std::to_string(step));
      check_guards();
    }
  };
  run("Adam", [](auto parameters) { return minicnn::Adam<TestType>(parameters, 1e-2, 0.9, 0.999, 1e-8, 0.0); });
  run("Adam with weight decay",
      [](auto parameters) { return minicnn::Adam<TestType>(parameters, 1e-2, 0.9, 0.999, 1e-8, 0.05); });
  run("AdamW", [](auto parameters) { return minicnn::AdamW<TestType>(parameters, 1e-2); });
  run("SGD with Nesterov momentum",
      [](auto parameters) { return minicnn::SGD<TestType>(parameters, 1e-2, 0.9, 0.0, 1e-3, true); });
}

TEMPLATE_TEST_CASE("cuda: GEMM (cuBLAS, row-major) matches cpu::gemm for every transpose", "[cuda][ops]", float,
                   double) {
  const std::int64_t M = 37, N = 29, K = 53;
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true}) {
      // Leading dimensions wider than the matrices, to exercise them.
      const std::int64_t lda = (trans_a ? M : K) + 3, ldb = (trans_b ? K : N) + 2, ldc = N + 5;
      const Tensor<TestType> a = random_tensor<TestType>(Shape{trans_a ? K : M, lda}, 1000);
      const Tensor<TestType> b = random_tensor<TestType>(Shape{trans_b ? N : K, ldb}, 1001);
      Tensor<TestType> c = random_tensor<TestType>(Shape{M, ldc}, 1002);
      const Tensor<TestType> gpu_a = a.copy_to(Device::cuda), gpu_b = b.copy_to(Device::cuda);
      Tensor<TestType> gpu_c = c.copy_to(Device::cuda);
      const TestType alpha = TestType(1.5), beta = TestType(0.5);
      minicnn::ops::cpu::gemm(trans_a, trans_b, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      cuda_ops::gemm(trans_a, trans_b, M, N, K, alpha, gpu_a.data(), lda, gpu_b.data(), ldb, beta, gpu_c.data(), ldc);
      check_close(gpu_c, c, std::string("gemm ") + (trans_a ? "T" : "N") + (trans_b ? "T" : "N"));
      check_guards();
    }
}

TEST_CASE("cuda: batched im2col and col2im match the shared bodies run on the host", "[cuda][ops]") {
  const minicnn::ops::Conv2dGeometry g{
      3, 2, 9, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, (9 + 2 - 3) / 2 + 1, (7 + 2 - 3) / 2 + 1};
  const std::int64_t rows = g.column_rows(), cols = g.column_cols();
  const Tensor<float> input = random_tensor<float>(Shape{g.batch, g.in_channels, g.in_height, g.in_width}, 1100);
  const Tensor<float> columns = random_tensor<float>(Shape{g.batch, rows, cols}, 1101);
  Tensor<float> expected_columns(columns.shape()), expected_input(input.shape());
  for (std::int64_t n = 0; n < g.batch; ++n) {
    for (std::int64_t row = 0; row < rows; ++row)
      for (std::int64_t col = 0; col < cols; ++col)
        expected_columns(n, row, col) = kernels::im2col_value(g, input.data() + n * g.input_image_size(), row, col);
    for (std::int64_t c = 0; c < g.in_channels; ++c)
      for (std::int64_t h = 0; h < g.in_height; ++h)
        for (std::int64_t w = 0; w < g.in_width; ++w)
          expected_input(n, c, h, w) = kernels::col2im_value(g, columns.data() + n * rows * cols, c, h, w);
  }
  const Tensor<float> gpu_input = input.copy_to(Device::cuda), gpu_columns = columns.copy_to(Device::cuda);
  Tensor<float> found_columns(columns.shape(), Device::cuda), found_input(input.shape(), Device::cuda);
  cuda_ops::im2col(g, gpu_input.data(), found_columns.data());
  cuda_ops::col2im(g, gpu_columns.data(), found_input.data());
  check_equal(found_columns, expected_columns, "im2col");
  check_equal(found_input, expected_input, "col2im");
  check_guards();
}

TEMPLATE_TEST_CASE("cuda: tensors move, copy and fill on the device, bit for bit", "[cuda][tensor]", float, double,
                   std::int32_t, std::uint8_t, std::int16_t) {
  Tensor<TestType> host({3, 4, 5});
  for (std::int64_t i = 0; i < host.size(); ++i) host[i] = static_cast<TestType>(i * 7 % 101);
  Tensor<TestType> gpu = host.copy_to(Device::cuda);
  CHECK(gpu.device() == Device::cuda);
  CHECK(gpu.is_cuda());
  check_equal(gpu, host, "copy_to(cuda)");

  const Tensor<TestType> gpu_copy = gpu;  // deep copy on the device
  CHECK(gpu_copy.device() == Device::cuda);
  CHECK(gpu_copy.data() != gpu.data());
  check_equal(gpu_copy, host, "device copy");

  Tensor<TestType> moved = host;
  moved.to(Device::cuda).to(Device::cpu);
  CHECK(moved.device() == Device::cpu);
  CHECK(std::equal(moved.begin(), moved.end(), host.begin()));

  Tensor<TestType> filled(Shape{1000}, Device::cuda);
  check_equal(filled, Tensor<TestType>(Shape{1000}), "a new device tensor is zero-filled");
  filled.fill(static_cast<TestType>(42));
  Tensor<TestType> expected(Shape{1000});
  expected.fill(static_cast<TestType>(42));
  check_equal(filled, expected, "fill(42)");

  Tensor<TestType> destination(Shape{2}, Device::cuda);
  destination.copy_from(host);  // keeps its device
  CHECK(destination.device() == Device::cuda);
  check_equal(destination, host, "copy_from(host)");

  const Tensor<double> converted = gpu.template cast<double>();
  CHECK(converted.device() == Device::cuda);
  check_equal(converted, host.template cast<double>(), "cast<double>");
  check_guards();
}

TEST_CASE("cuda: host-only helpers refuse GPU tensors, and ops refuse mixed devices", "[cuda][tensor]") {
  Tensor<float> gpu(Shape{2, 3}, Device::cuda);
  CHECK_THROWS_AS(gpu.at(0, 0), minicnn::error);
  CHECK_THROWS_AS(gpu.uniform(0.f, 1.f, 1), minicnn::error);
  CHECK_THROWS_AS(gpu.matrix(), minicnn::error);

  gpu.fill(-0.0f);  // not all-zero bytes: must not be a memset to 0
  const Tensor<float> host = gpu.copy_to(Device::cpu);
  CHECK(std::signbit(host[0]));

  minicnn::Linear<float> layer(3, 2);
  layer.to(Device::cuda);
  const Tensor<float> cpu_input({4, 3});
  try {
    layer.forward(cpu_input);
    FAIL("a CPU input to a GPU layer must throw");
  } catch (const minicnn::error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find("weight is on cuda but the input is on cpu") != std::string::npos);
  }
  layer.to(Device::cpu);
  CHECK(layer.device() == Device::cpu);
  CHECK_NOTHROW(layer.forward(cpu_input));
}

TEST_CASE("cuda: the caching allocator reuses blocks and the guard bytes catch an overrun", "[cuda][memory]") {
  minicnn::cuda::synchronize();
  {
    Tensor<float> warm(Shape{12345}, Device::cuda);  // puts a block of this size class in the cache
  }
  const auto before = minicnn::cuda::memory_stats();
  {
    Tensor<float> reused(Shape{12345}, Device::cuda);
    reused.resize(Shape{100});  // fits: keeps the block
    reused.resize(Shape{12345});
  }
  const auto after = minicnn::cuda::memory_stats();
  CHECK(after.device_allocations == before.device_allocations);
  CHECK(after.cache_hits == before.cache_hits + 1);
  CHECK(after.bytes_in_use == before.bytes_in_use);

  Tensor<float> victim(Shape{10}, Device::cuda);
  check_guards();
  const float stray = 1.0f;
  minicnn::cuda::copy_host_to_device(victim.data() + victim.size(), &stray, sizeof stray);  // one element too far
  CHECK_THROWS_AS(minicnn::cuda::check_guards(), minicnn::error);
}
