// Whole models: one training step (zero_grad, forward, loss, backward, Adam step) of FashionCNN
// (BM_TrainStep), models::resnet18 (BM_TrainStepResNet18) and models::fashion_resnet, and
// FashionCNN's inference; items_per_second = images/s, on 1 and 2 threads. All on real
// Fashion-MNIST images where the data set is installed, as benchmarks/compare_pytorch.py feeds
// PyTorch (the label says which).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "minicnn/data/fashion_mnist.hpp"
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

// FLOPs of models::resnet18 per 28x28 image, forward (multiply-add = 2): conv1 at 28x28, then
// the BasicBlocks' 3x3 convs and the 1x1 downsamples at 14, 7, 4 and 2 pixels a side (maxpool
// and the stride-2 blocks halve, rounding up), and fc. About 244 MFLOP.
double resnet18_forward_flops_per_image() {
  const auto conv = [](double in, double out, double kernel, double side) {
    return 2.0 * in * kernel * kernel * out * side * side;
  };
  double flops = conv(1, 64, 3, 28);
  double in_channels = 64;
  const double sides[4] = {14, 7, 4, 2};
  for (int layer = 0; layer < 4; ++layer) {
    const double planes = 64 << layer, side = sides[layer];
    flops += conv(in_channels, planes, 3, side) + 3 * conv(planes, planes, 3, side);  // two blocks, two convs each
    if (in_channels != planes) flops += conv(in_channels, planes, 1, side);           // the downsample
    in_channels = planes;
  }
  return flops + 2.0 * 512 * 10;
}

// The first 2,560 training images (ten batches of 256), normalised as the tutorial
// ((x / 255 - 0.5) / 0.5), with their labels; empty when the data set is not installed or the
// environment says MINICNN_BENCH_DATA=random (to measure on N(0, 1) images). Every
// benchmark of a whole model feeds these, as compare_pytorch.py feeds PyTorch: PyTorch runs
// about 19% faster on real images than on N(0, 1) ones, so both sides must see the same data.
struct RealBatches {
  Tensor<float> images;  // [2560, 1, 28, 28]
  std::vector<int> labels;
  std::string problem;  // why there are none
};
const RealBatches& real_training_batches() {
  static const RealBatches batches = [] {
    RealBatches out;
    const char* choice = std::getenv("MINICNN_BENCH_DATA");
    if (choice != nullptr && std::string(choice) == "random") {
      out.problem = "MINICNN_BENCH_DATA=random";
      return out;
    }
    try {
      const data::ImageDataset train = data::load_fashion_mnist(data::Split::train);
      const std::int64_t count = 2560;
      out.images.resize({count, 1, 28, 28});
      for (std::int64_t i = 0; i < count * 784; ++i)
        out.images[i] = (static_cast<float>(train.images[i]) / 255.0f - 0.5f) / 0.5f;
      out.labels.assign(train.labels.begin(), train.labels.begin() + count);
    } catch (const minicnn::error& e) {
      out.problem = e.what();
    }
    return out;
  }();
  return batches;
}

// FLOPs of models::fashion_resnet per 28x28 image, forward, as above: conv1 and layer1 at 28x28
// (no maxpool), layer2 at 14, layer3 at 7, the downsamples, fc.
double fashion_resnet_forward_flops_per_image() {
  const models::ResNetOptions options = models::fashion_resnet_options();
  const auto conv = [](double in, double out, double kernel, double side) {
    return 2.0 * in * kernel * kernel * out * side * side;
  };
  double flops = conv(1, double(options.widths[0]), 3, 28);
  double in_channels = double(options.widths[0]), side = 28;
  for (int layer = 0; layer < 4 && options.blocks_per_layer[layer] > 0; ++layer) {
    const double planes = double(options.widths[layer]);
    if (layer > 0) side = std::ceil(side / 2);
    flops += conv(in_channels, planes, 3, side) +
             (2.0 * double(options.blocks_per_layer[layer]) - 1) * conv(planes, planes, 3, side);
    if (in_channels != planes) flops += conv(in_channels, planes, 1, side);
    in_channels = planes;
  }
  return flops + 2.0 * in_channels * 10;
}

// A training step (zero_grad, forward, loss, backward, Adam) of `model` at state.range(0) =
// batch, state.range(1) = threads; `forward_flops` per image, `conv1_channels` the first conv's
// output channels (its backward-data pass is not run: its input is the image).
void train_step_benchmark(benchmark::State& state, Sequential<float>& model, double forward_flops,
                          double conv1_channels) {
  const std::int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  set_num_threads(threads);
  Sequential<float>* const net = &model;
  Adam<float> optimizer(net->parameters(), 1e-3);
  CrossEntropyLoss<float> criterion;
  // The batches cycle through the real images (or stand-ins from N(0, 1) without the data set).
  const RealBatches& real = real_training_batches();
  const std::int64_t count = real.problem.empty() ? real.images.dim(0) : 10 * batch;
  if (count < batch) throw minicnn::error("train_step_benchmark: batch " + std::to_string(batch) + " > the real images");
  std::vector<Tensor<float>> images;
  std::vector<std::vector<int>> targets;
  for (std::int64_t first = 0; first + batch <= count; first += batch) {
    images.emplace_back(Shape{batch, 1, 28, 28});
    targets.emplace_back(static_cast<std::size_t>(batch));
    for (std::int64_t k = 0; k < batch; ++k)
      targets.back()[static_cast<std::size_t>(k)] = static_cast<int>((first + k) % 10);
    if (real.problem.empty()) {
      for (std::int64_t i = 0; i < images.back().size(); ++i) images.back()[i] = real.images[first * 784 + i];
      for (std::int64_t k = 0; k < batch; ++k)
        targets.back()[static_cast<std::size_t>(k)] = real.labels[static_cast<std::size_t>(first + k)];
    } else {
      images.back().normal(0.0f, 1.0f, static_cast<std::uint64_t>(first));
    }
  }
  state.SetLabel(real.problem.empty() ? "real Fashion-MNIST batches" : "N(0, 1) images: " + real.problem);
  std::size_t next = 0;
  auto step = [&] {
    optimizer.zero_grad();
    const Tensor<float>& logits = net->forward(images[next]);
    benchmark::DoNotOptimize(criterion.forward(logits, targets[next]));
    net->backward(criterion.backward());
    optimizer.step();
    next = (next + 1) % images.size();
  };
  step();  // first step sizes every buffer
  const bench::WallTimer timer;
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
  // forward + backward-data (not for conv1, whose input is the image) + backward-weights
  const double conv1_flops = 2.0 * 1 * 9 * conv1_channels * 784;
  const double step_flops = (3.0 * forward_flops - conv1_flops) * double(batch);
  bench::report_flops(state, step_flops, timer.seconds(), threads);
  set_num_threads(2);
}

void BM_TrainStep(benchmark::State& state) {
  models::FashionCNN<float> model(0);
  train_step_benchmark(state, model, fashion_cnn_forward_flops_per_image(), 32);
}
BENCHMARK(BM_TrainStep)->ArgNames({"batch", "threads"})->ArgsProduct({{64, 256}, {1, 2}})->UseRealTime();

// Inference on the first `batch` real images (N(0, 1) stand-ins without the data set).
void BM_Inference(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  set_num_threads(threads);
  models::FashionCNN<float> model(0);
  model.eval();
  Tensor<float> images({batch, 1, 28, 28});
  const RealBatches& real = real_training_batches();
  if (real.problem.empty() && batch <= real.images.dim(0)) {
    for (std::int64_t i = 0; i < images.size(); ++i) images[i] = real.images[i];
    state.SetLabel("real Fashion-MNIST images");
  } else {
    images.normal(0.0f, 1.0f, 7);
    state.SetLabel("N(0, 1) images" + (real.problem.empty() ? std::string() : ": " + real.problem));
  }
  const NoGradGuard no_grad;  // inference as the demo's eval and predict run it
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

void BM_TrainStepResNet18(benchmark::State& state) {
  const auto model = models::resnet18<float>(10, 0);
  train_step_benchmark(state, *model, resnet18_forward_flops_per_image(), 64);
}
BENCHMARK(BM_TrainStepResNet18)
    ->ArgNames({"batch", "threads"})
    ->ArgsProduct({{64}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The model sized for a CPU (docs/model.md): batch 128, what its training runs use.
void BM_TrainStepFashionResNet(benchmark::State& state) {
  const auto model = models::fashion_resnet<float>(10, 0);
  train_step_benchmark(state, *model, fashion_resnet_forward_flops_per_image(),
                       double(models::fashion_resnet_options().widths[0]));
}
BENCHMARK(BM_TrainStepFashionResNet)
    ->ArgNames({"batch", "threads"})
    ->ArgsProduct({{128}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
