// minicnn_bench_cuda: the CUDA variants of the per-layer and end-to-end benchmarks (built only
// with -DMINICNN_WITH_CUDA=ON). Every iteration ends with cuda::synchronize(), so the wall time
// is the GPU's time for the work; counters give GFLOP/s and images/s. On a machine without a
// usable GPU it prints one SKIPPED line and exits 0.
//
//   build-cuda/benchmarks/minicnn_bench_cuda --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../bench_common.hpp"
#include "minicnn/device.hpp"
#include "minicnn/minicnn.hpp"

namespace {

using namespace minicnn;

using bench::WallTimer;  // bench_common.hpp

void report_gflops(benchmark::State& state, double flops_per_iteration, double seconds) {
  state.counters["GFLOP/s"] = flops_per_iteration * static_cast<double>(state.iterations()) / seconds * 1e-9;
}

// FashionCNN's four convolutions at 28x28 input: in_channels, out_channels, spatial size.
constexpr std::int64_t conv_layers[4][3] = {{1, 32, 28}, {32, 32, 28}, {32, 64, 14}, {64, 64, 14}};

// FLOPs of FashionCNN's forward pass per image (multiply-add = 2).
double forward_flops_per_image() {
  double flops = 0;
  for (const auto& c : conv_layers) flops += 2.0 * static_cast<double>(c[0] * 9 * c[1] * c[2] * c[2]);
  return flops + 2.0 * (64 * 128 + 128 * 10);
}

// One of FashionCNN's convolutions on the GPU; pass 0 = forward, 1 = backward (data + weights).
void BM_CudaConv(benchmark::State& state) {
  const auto& layer = conv_layers[state.range(0)];
  const std::int64_t batch = state.range(2);
  const bool backward = state.range(1) == 1;
  Generator gen(1);
  Conv2d<float> conv(layer[0], layer[1], 3, 1, 1, true, gen);
  conv.to(Device::cuda);
  Tensor<float> input({batch, layer[0], layer[2], layer[2]});
  input.uniform(-1.f, 1.f, 2);
  input.to(Device::cuda);
  Tensor<float> grad_output({batch, layer[1], layer[2], layer[2]});
  grad_output.uniform(-1.f, 1.f, 3);
  grad_output.to(Device::cuda);
  auto run = [&] {
    conv.forward(input);
    if (backward) conv.backward(grad_output);
    cuda::synchronize();
  };
  run();  // sizes every buffer and fills the allocator's cache
  const WallTimer timer;
  for (auto _ : state) run();
  const double pass_flops = 2.0 * static_cast<double>(batch * layer[1] * layer[0] * 9 * layer[2] * layer[2]);
  report_gflops(state, backward ? 3.0 * pass_flops : pass_flops, timer.seconds());
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_CudaConv)
    ->ArgNames({"conv", "backward", "batch"})
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1}, {64}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// One training step: zero_grad, forward, loss, backward, Adam step; the batch is copied from
// the host each step, as a data loader would.
void BM_CudaTrainStep(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  models::FashionCNN<float> model(0);
  model.to(Device::cuda);
  Adam<float> optimizer(model.parameters(), 1e-3);
  CrossEntropyLoss<float> criterion;
  Tensor<float> host_images({batch, 1, 28, 28});
  host_images.normal(0.0f, 1.0f, 7);
  Tensor<float> images(host_images.shape(), Device::cuda);
  std::vector<int> targets(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<int>((i * 7) % 10);
  auto step = [&] {
    images.copy_from(host_images);
    optimizer.zero_grad();
    benchmark::DoNotOptimize(criterion.forward(model.forward(images), targets));  // waits for the loss
    model.backward(criterion.backward());
    optimizer.step();
    cuda::synchronize();
  };
  step();
  const auto allocations = cuda::memory_stats().device_allocations;
  const WallTimer timer;
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
  // forward + backward-data (not for conv1) + backward-weights
  const double step_flops = 3.0 * forward_flops_per_image() * double(batch) - 2.0 * 1 * 9 * 32 * 784 * double(batch);
  report_gflops(state, step_flops, timer.seconds());
  state.counters["cudaMalloc_per_step"] = static_cast<double>(cuda::memory_stats().device_allocations - allocations) /
                                          static_cast<double>(state.iterations());
}
BENCHMARK(BM_CudaTrainStep)->ArgName("batch")->Arg(64)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_CudaInference(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  models::FashionCNN<float> model(0);
  model.to(Device::cuda);
  model.eval();
  Tensor<float> images({batch, 1, 28, 28});
  images.normal(0.0f, 1.0f, 7);
  images.to(Device::cuda);
  model.forward(images);
  cuda::synchronize();
  const WallTimer timer;
  for (auto _ : state) {
    benchmark::DoNotOptimize(model.forward(images).data());
    cuda::synchronize();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  report_gflops(state, forward_flops_per_image() * double(batch), timer.seconds());
}
BENCHMARK(BM_CudaInference)->ArgName("batch")->Arg(1)->Arg(1000)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!minicnn::cuda_available()) {
    std::printf("SKIPPED: the CUDA benchmarks need a usable GPU: %s\n", minicnn::cuda::unavailable_reason().c_str());
    return 0;
  }
  benchmark::AddCustomContext("minicnn", minicnn::build_info());
  benchmark::AddCustomContext("cuda", minicnn::cuda_status());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
