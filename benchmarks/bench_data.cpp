// The data pipeline's two costs that matter for training:
//   - loading Fashion-MNIST's 60,000 gzipped training images (target < 0.5 s), and
//   - preparing one augmented batch of 64 (RandomRotation(10) + RandomHorizontalFlip +
//     Normalize), which must stay under 5% of a training step (about 45 ms on 2 threads, so
//     under about 2.2 ms).
// Needs the data set (Debian's dataset-fashion-mnist, or MINICNN_DATA); without it these
// benchmarks report an error and the others still run.
//   minicnn_benchmarks --benchmark_filter='Data' --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "minicnn/config.hpp"
#include "minicnn/data/fashion_mnist.hpp"
#include "minicnn/data/idx.hpp"
#include "minicnn/data/loader.hpp"

namespace {

using namespace minicnn::data;

// The 60,000 training images as stored (train-images-idx3-ubyte.gz, 26 MB -> 47 MB).
void BM_DataReadTrainImagesGzip(benchmark::State& state) {
  std::string path;
  try {
    path = fashion_mnist_files(Split::train).images;
  } catch (const minicnn::error& e) {
    state.SkipWithError(e.what());
    return;
  }
  std::int64_t images = 0;
  for (auto _ : state) {
    const IdxArray array = read_idx(path);
    images = array.shape()[0];
    benchmark::DoNotOptimize(array.get<std::uint8_t>().data());
  }
  state.counters["images"] = static_cast<double>(images);
  state.SetItemsProcessed(state.iterations() * images);
}
BENCHMARK(BM_DataReadTrainImagesGzip)->Unit(benchmark::kMillisecond)->UseRealTime();

// The whole training split: images + labels, checked and paired.
void BM_DataLoadFashionMnistTrain(benchmark::State& state) {
  for (auto _ : state) {
    try {
      const ImageDataset train = load_fashion_mnist(Split::train);
      benchmark::DoNotOptimize(train.images.data());
    } catch (const minicnn::error& e) {
      state.SkipWithError(e.what());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * 60000);
}
BENCHMARK(BM_DataLoadFashionMnistTrain)->Unit(benchmark::kMillisecond)->UseRealTime();

// One augmented, normalized batch of 64 written into a preallocated tensor; arg = threads.
void BM_DataPrepareAugmentedBatch64(benchmark::State& state) {
  static ImageDataset train;  // loaded once for all thread counts
  if (train.size() == 0) {
    try {
      train = load_fashion_mnist(Split::train);
    } catch (const minicnn::error& e) {
      state.SkipWithError(e.what());
      return;
    }
  }
  const int previous_threads = minicnn::num_threads();
  minicnn::set_num_threads(static_cast<int>(state.range(0)));
  DataLoader loader(train, {64, true, true, 0},
                    Compose(RandomRotation(10.0), RandomHorizontalFlip(0.5), Normalize(0.5f, 0.5f)));
  minicnn::Tensor<float> images(loader.batch_shape());
  std::vector<int> labels(64);
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (!loader.next(images, labels)) loader.next(images, labels);
    benchmark::DoNotOptimize(images.data());
    benchmark::ClobberMemory();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  minicnn::set_num_threads(previous_threads);
  state.SetItemsProcessed(state.iterations() * 64);
  // A training step at batch 64 takes about 45 ms on 2 threads (docs/data.md).
  constexpr double training_step_seconds = 0.045;
  const double batch_seconds =
      seconds / static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  state.counters["ms_per_batch"] = batch_seconds * 1e3;
  state.counters["fraction_of_step"] = batch_seconds / training_step_seconds;
}
BENCHMARK(BM_DataPrepareAugmentedBatch64)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
