// End-to-end FashionCNN: one training step (zero_grad, forward, loss, backward, Adam step) and
// inference, items_per_second = images/s, on 1 and 2 threads.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench_common.hpp"
#include "minicnn/minicnn.hpp"

namespace {

using namespace minicnn;

// FLOPs of FashionCNN per image (forward; a training step is forward + 2 backward passes of the
// convs, as counted in docs/performance.md).
double fashion_cnn_forward_flops_per_image() {
  const double convs[4][3] = {{1, 32, 28}, {32, 32, 28}, {32, 64, 14}, {64, 64, 14}};
  double flops = 0;
  for (const auto& c : convs) flops += 2.0 * c[0] * 9 * c[1] * c[2] * c[2];
  return flops + 2.0 * (64 * 128 + 128 * 10);
}

void BM_TrainStep(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  set_num_threads(threads);
  models::FashionCNN<float> model(0);
  Adam<float> optimizer(model.parameters(), 1e-3);
  CrossEntropyLoss<float> criterion;
  Tensor<float> images({batch, 1, 28, 28});
  images.normal(0.0f, 1.0f, 7);
  std::vector<int> targets(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<int>((i * 7) % 10);
  auto step = [&] {
    optimizer.zero_grad();
    const Tensor<float>& logits = model.forward(images);
    benchmark::DoNotOptimize(criterion.forward(logits, targets));
    model.backward(criterion.backward());
    optimizer.step();
  };
  step();  // first step sizes every buffer
  const bench::WallTimer timer;
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
  // forward + backward-data (not for conv1) + backward-weights
  const double step_flops = 3.0 * fashion_cnn_forward_flops_per_image() * double(batch) - 2.0 * 1 * 9 * 32 * 784 * double(batch);
  bench::report_flops(state, step_flops, timer.seconds(), threads);
  set_num_threads(2);
}
BENCHMARK(BM_TrainStep)->ArgNames({"batch", "threads"})->ArgsProduct({{64, 256}, {1, 2}})->UseRealTime();

void BM_Inference(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  set_num_threads(threads);
  models::FashionCNN<float> model(0);
  model.eval();
  Tensor<float> images({batch, 1, 28, 28});
  images.normal(0.0f, 1.0f, 7);
  benchmark::DoNotOptimize(model.forward(images).data());
  const bench::WallTimer timer;
  for (auto _ : state) {
    benchmark::DoNotOptimize(model.forward(images).data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  bench::report_flops(state, fashion_cnn_forward_flops_per_image() * double(batch), timer.seconds(), threads);
  set_num_threads(2);
}
BENCHMARK(BM_Inference)->ArgNames({"batch", "threads"})->ArgsProduct({{1, 1000}, {1, 2}})->UseRealTime();

}  // namespace
