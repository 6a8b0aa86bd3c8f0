// Kernel benchmarks: the FMA peak, the GEMMs at FashionCNN's per-image im2col shapes, each conv
// layer's three passes at batch 64, and the memory-bound ops (max-pool, ReLU, softmax-CE).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "minicnn/ops/cpu/conv.hpp"
#include "minicnn/ops/cpu/elementwise.hpp"
#include "minicnn/ops/cpu/gemm.hpp"
#include "minicnn/ops/cpu/pooling.hpp"
#include "minicnn/ops/cpu/softmax.hpp"
#include "minicnn/tensor.hpp"

namespace {

using namespace minicnn;
using namespace minicnn::ops;

Tensor<float> random_tensor(const Shape& shape, std::uint64_t seed) {
  Tensor<float> t(shape);
  t.uniform(-1.0f, 1.0f, seed);
  return t;
}

// FMA peak: 16 independent chains of the widest FMA per thread.
void BM_FmaPeak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const bench::WallTimer timer;
  double flops = 0;
  for (auto _ : state) flops += bench::fma_burn(1 << 18, threads);
  state.counters["GFLOP/s"] = flops / timer.seconds() * 1e-9;
  state.SetLabel(simd_level());
}
BENCHMARK(BM_FmaPeak)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();

// FashionCNN's conv layers at batch 64: {in_channels, out_channels, height (= width)}.
constexpr std::int64_t conv_layers[4][3] = {{1, 32, 28}, {32, 32, 28}, {32, 64, 14}, {64, 64, 14}};

Conv2dGeometry conv_geometry(int layer, std::int64_t batch) {
  const auto& l = conv_layers[layer - 1];
  return {batch, l[0], l[2], l[2], l[1], 3, 3, 1, 1, 1, 1, 1, 1, 1, l[2], l[2]};
}

// GEMMs of one image's im2col product, single-threaded, on a dense im2col matrix: Eigen (impl
// 0) against the minicnn micro-kernel (impl 1, AVX-512 when built for it), in the orientation
// conv.hpp uses. pass 0: forward col^T [HW, CK] x W^T [CK, Co]; 1: backward-data, the same with
// grad_output's im2col [Co K, HW] and the flipped weight [Co K, C]; 2: backward-weights
// col [CK, HW] x grad_out^T [HW, Co].
void BM_Gemm(benchmark::State& state) {
  const int layer = static_cast<int>(state.range(0)), pass = static_cast<int>(state.range(1));
  const bool kernel = state.range(2) != 0;
  const Conv2dGeometry g = conv_geometry(layer, 1);
  const std::int64_t pixels = g.column_cols();
  // C [M, N] = op(A) [M, K] x B [K, N]; A is stored [K, M] (read transposed) for passes 0 and 1.
  const bool transposed_a = pass != 2;
  const std::int64_t M = pass == 2 ? g.column_rows() : pixels;
  const std::int64_t N = pass == 1 ? g.in_channels : g.out_channels;
  const std::int64_t K = pass == 0   ? g.column_rows()
                         : pass == 1 ? g.out_channels * g.kernel_height * g.kernel_width
                                     : pixels;
  const Tensor<float> a = random_tensor({M * K}, 1), b = random_tensor({K * N}, 2);
  Tensor<float> result({M * N});
  std::vector<std::int64_t> a_rows(static_cast<std::size_t>(M)), a_cols(static_cast<std::size_t>(K)),
      b_rows(static_cast<std::size_t>(K));
  for (std::int64_t m = 0; m < M; ++m) a_rows[static_cast<std::size_t>(m)] = transposed_a ? m : m * K;
  for (std::int64_t k = 0; k < K; ++k) a_cols[static_cast<std::size_t>(k)] = transposed_a ? k * M : k;
  for (std::int64_t k = 0; k < K; ++k) b_rows[static_cast<std::size_t>(k)] = k * N;
  cpu::OffsetGemm<float> p;
  p.M = M, p.N = N, p.K = K, p.a = a.data(), p.a_rows = a_rows.data(), p.a_cols = a_cols.data();
  p.b = b.data(), p.b_rows = b_rows.data(), p.c = result.data(), p.ldc = N;
  const bench::WallTimer timer;
  for (auto _ : state) {
    if (kernel) cpu::gemm_offsets(p);
    else cpu::gemm_eigen(transposed_a, false, M, N, K, 1.0f, a.data(), transposed_a ? M : K, b.data(), N, 0.0f,
                         result.data(), N);
    benchmark::ClobberMemory();
  }
  bench::report_flops(state, 2.0 * double(M * N * K), timer.seconds(), 1);
  state.SetLabel(std::string(kernel ? "minicnn kernel" : "Eigen") + ", M N K = " + std::to_string(M) + " " +
                 std::to_string(N) + " " + std::to_string(K));
}
BENCHMARK(BM_Gemm)
    ->ArgNames({"conv", "pass", "kernel"})
    ->ArgsProduct({{2, 3, 4}, {0, 1, 2}, {0, 1}})
    ->UseRealTime();

// One pass of conv<layer> at batch 64: pass 0 forward, 1 backward-data, 2 backward-weights.
void BM_Conv(benchmark::State& state) {
  const int layer = static_cast<int>(state.range(0)), pass = static_cast<int>(state.range(1));
  const int threads = static_cast<int>(state.range(2));
  set_num_threads(threads);
  const Conv2dGeometry g = conv_geometry(layer, 64);
  const Tensor<float> input = random_tensor({g.batch, g.in_channels, g.in_height, g.in_width}, 1);
  const Tensor<float> weight = random_tensor({g.out_channels, g.in_channels, 3, 3}, 2);
  const Tensor<float> bias = random_tensor({g.out_channels}, 3);
  const Tensor<float> grad_output = random_tensor({g.batch, g.out_channels, g.out_height, g.out_width}, 4);
  Tensor<float> output(grad_output.shape()), grad_input(input.shape()), grad_weight(weight.shape()),
      grad_bias(bias.shape());
  Conv2dWorkspace<float> ws;
  auto run = [&] {
    if (pass == 0) cpu::conv2d_forward(g, input.data(), weight.data(), bias.data(), output.data(), ws);
    else if (pass == 1) cpu::conv2d_backward_data(g, weight.data(), grad_output.data(), grad_input.data(), ws);
    else cpu::conv2d_backward_weights(g, input.data(), grad_output.data(), grad_weight.data(), grad_bias.data(), ws);
  };
  run();  // sizes the workspace
  const bench::WallTimer timer;
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  bench::report_flops(state, g.flops_per_pass(), timer.seconds(), threads);
  static const char* pass_names[] = {"forward", "backward-data", "backward-weights"};
  state.SetLabel("conv" + std::to_string(layer) + " " + pass_names[pass]);
  set_num_threads(2);
}
BENCHMARK(BM_Conv)
    ->ArgNames({"conv", "pass", "threads"})
    ->ArgsProduct({{1, 2, 3, 4}, {0, 1, 2}, {1, 2}})
    ->UseRealTime();

// The forward pass of conv<layer> by each algorithm (conv_algorithm.hpp) at batch 64 and 1, in
// inference: 0 im2col + GEMM, 1 Winograd F(2x2, 3x3), 2 Winograd F(4x4, 3x3). The FLOP rate is
// the direct convolution's FLOPs over the time (an "effective" rate: Winograd's can pass the peak).
void BM_ConvAlgorithm(benchmark::State& state) {
  const int layer = static_cast<int>(state.range(0)), algorithm = static_cast<int>(state.range(1));
  const std::int64_t batch = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const ConvAlgorithm algorithms[] = {ConvAlgorithm::im2col, ConvAlgorithm::winograd_2x2, ConvAlgorithm::winograd_4x4};
  set_num_threads(threads);
  const ConvAlgorithm saved = conv_algorithm();
  set_conv_algorithm(algorithms[algorithm]);
  const Conv2dGeometry g = conv_geometry(layer, batch);
  const Tensor<float> input = random_tensor({g.batch, g.in_channels, g.in_height, g.in_width}, 1);
  const Tensor<float> weight = random_tensor({g.out_channels, g.in_channels, 3, 3}, 2);
  const Tensor<float> bias = random_tensor({g.out_channels}, 3);
  Tensor<float> output({g.batch, g.out_channels, g.out_height, g.out_width});
  Conv2dWorkspace<float> ws;
  auto run = [&] {
    cpu::conv2d_forward(g, input.data(), weight.data(), bias.data(), output.data(), ws, true, /*inference=*/true);
  };
  run();  // sizes the workspace, transforms the filters
  const bench::WallTimer timer;
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  bench::report_flops(state, g.flops_per_pass(), timer.seconds(), threads);
  state.SetLabel("conv" + std::to_string(layer) + " forward " + conv_algorithm_name(algorithms[algorithm]));
  set_conv_algorithm(saved);
  set_num_threads(2);
}
BENCHMARK(BM_ConvAlgorithm)
    ->ArgNames({"conv", "algorithm", "batch", "threads"})
    ->ArgsProduct({{2, 3, 4}, {0, 1, 2}, {64, 1}, {1, 2}})
    ->UseRealTime();

// Memory-bound ops on conv2's and conv4's activations at batch 64, 2 threads: bytes read + written.
void BM_MaxPool2d(benchmark::State& state) {
  const std::int64_t channels = state.range(0), size = state.range(1);
  const bool backward = state.range(2) != 0;
  const Pool2dGeometry g{64 * channels, size, size, size / 2, size / 2, 2, 2, 2, 2, 0, 0, 1, 1, false};
  const Tensor<float> input = random_tensor({64, channels, size, size}, 1);
  const Tensor<float> grad_output = random_tensor({64, channels, size / 2, size / 2}, 2);
  Tensor<float> output(grad_output.shape()), grad_input(input.shape());
  Tensor<std::int32_t> argmax(grad_output.shape());
  cpu::maxpool2d_forward(g, input.data(), output.data(), argmax.data());
  for (auto _ : state) {
    if (backward) cpu::maxpool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data());
    else cpu::maxpool2d_forward(g, input.data(), output.data(), argmax.data());
    benchmark::ClobberMemory();
  }
  // forward reads the input, writes output + argmax; backward reads grad_output + argmax, writes grad_input.
  const std::int64_t bytes = 4 * (input.size() + 2 * output.size());
  state.SetBytesProcessed(state.iterations() * bytes);
  state.SetLabel(backward ? "backward" : "forward");
}
BENCHMARK(BM_MaxPool2d)->ArgNames({"channels", "size", "backward"})->ArgsProduct({{32}, {28}, {0, 1}})->Args({64, 14, 0})->Args({64, 14, 1})->UseRealTime();

void BM_ReLU(benchmark::State& state) {
  const bool backward = state.range(0) != 0;
  const Tensor<float> input = random_tensor({64, 32, 28, 28}, 1), grad_output = random_tensor({64, 32, 28, 28}, 2);
  Tensor<float> output(input.shape()), grad_input(input.shape());
  for (auto _ : state) {
    if (backward) cpu::relu_backward(input.size(), input.data(), grad_output.data(), grad_input.data());
    else cpu::relu_forward(input.size(), input.data(), output.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 4 * input.size() * (backward ? 3 : 2));
  state.SetLabel(backward ? "backward [64,32,28,28]" : "forward [64,32,28,28]");
}
BENCHMARK(BM_ReLU)->ArgName("backward")->Arg(0)->Arg(1)->UseRealTime();

void BM_SoftmaxCrossEntropy(benchmark::State& state) {
  const std::int64_t batch = state.range(0), classes = 10;
  const Tensor<float> logits = random_tensor({batch, classes}, 1);
  Tensor<float> grad(logits.shape());
  std::vector<int> targets(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<int>(i % classes);
  for (auto _ : state) {
    benchmark::DoNotOptimize(cpu::softmax_cross_entropy(batch, classes, logits.data(), targets.data(), 0.0, grad.data()));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * (8 * batch * classes + 4 * batch));
}
BENCHMARK(BM_SoftmaxCrossEntropy)->ArgName("batch")->Arg(64)->Arg(1000)->UseRealTime();

}  // namespace
