// DataLoader: batching, shuffling, determinism (seed, epoch, thread count), checkpointable
// state, and batches written into the caller's preallocated buffers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "data_test_util.hpp"
#include "minicnn/config.hpp"
#include "minicnn/data/fashion_mnist.hpp"
#include "minicnn/data/loader.hpp"
#include "same_bits.hpp"
#include "thread_count_guard.hpp"

using Catch::Matchers::Contains;
using minicnn::testing::ThreadCountGuard;
using minicnn::Generator;
using minicnn::Shape;
using minicnn::Tensor;
using namespace minicnn::data;

using minicnn::data_testing::error_of;

namespace {

// `count` images of height x width; every pixel of image i is i (so a batch shows which images
// it holds) unless `random_pixels`, then pixels are random (for augmentation tests).
ImageDataset synthetic(std::int64_t count, std::int64_t height, std::int64_t width, bool random_pixels = false) {
  ImageDataset dataset;
  dataset.num_classes = 10;
  dataset.images = Tensor<std::uint8_t>({count, height, width});
  Generator gen(2024);
  for (std::int64_t i = 0; i < dataset.images.size(); ++i)
    dataset.images[i] = static_cast<std::uint8_t>(random_pixels ? gen.below(256) : i / (height * width));
  for (std::int64_t i = 0; i < count; ++i) dataset.labels.push_back(static_cast<int>((i * 7) % 10));
  return dataset;
}

// The image index a batch entry came from, for data sets made with synthetic(..., false).
std::int64_t index_of(const Tensor<float>& images, std::int64_t entry) {
  const std::int64_t image_size = images.dim(2) * images.dim(3);
  return static_cast<std::int64_t>(images[entry * image_size] * 255.0f + 0.5f);
}

struct Epoch {
  std::vector<Tensor<float>> images;
  std::vector<std::vector<int>> labels;
};

Epoch run_epoch(DataLoader& loader) {
  Epoch epoch;
  Tensor<float> images;
  std::vector<int> labels;
  while (loader.next(images, labels)) {
    epoch.images.push_back(images);
    epoch.labels.push_back(labels);
  }
  return epoch;
}

using minicnn::testing::same_bits;

bool same_epoch(const Epoch& a, const Epoch& b) {
  if (a.images.size() != b.images.size() || a.labels != b.labels) return false;
  for (std::size_t i = 0; i < a.images.size(); ++i)
    if (!same_bits(a.images[i], b.images[i])) return false;
  return true;
}

Compose augmentation() { return Compose(RandomRotation(10.0), RandomHorizontalFlip(0.5), Normalize(0.5f, 0.5f)); }

}  // namespace

TEST_CASE("DataLoader without shuffle: batches in data-set order, a partial last batch", "[loader]") {
  const ImageDataset dataset = synthetic(103, 6, 5);
  DataLoader loader(dataset, {10, false, false, 0});
  CHECK(loader.num_batches() == 11);
  CHECK(loader.batch_shape() == (Shape{10, 1, 6, 5}));
  const Epoch epoch = run_epoch(loader);
  REQUIRE(epoch.images.size() == 11);
  CHECK(epoch.images[0].shape() == (Shape{10, 1, 6, 5}));
  CHECK(epoch.images[10].shape() == (Shape{3, 1, 6, 5}));
  CHECK(epoch.labels[10].size() == 3);
  for (std::size_t b = 0; b < epoch.images.size(); ++b)
    for (std::int64_t i = 0; i < epoch.images[b].dim(0); ++i) {
      const std::int64_t index = static_cast<std::int64_t>(b) * 10 + i;
      CHECK(index_of(epoch.images[b], i) == index);
      CHECK(epoch.labels[b][static_cast<std::size_t>(i)] == dataset.labels[static_cast<std::size_t>(index)]);
      // Every pixel scaled by ToTensor's x / 255.
      CHECK(epoch.images[b](i, 0, 5, 4) == static_cast<float>(index) / 255.0f);
    }
}

TEST_CASE("DataLoader drop_last skips the partial batch", "[loader]") {
  const ImageDataset dataset = synthetic(103, 2, 2);
  DataLoader loader(dataset, {10, true, true, 3});
  CHECK(loader.num_batches() == 10);
  const Epoch epoch = run_epoch(loader);
  CHECK(epoch.images.size() == 10);
  for (const auto& batch : epoch.images) CHECK(batch.dim(0) == 10);
  DataLoader tiny(dataset, {200, false, true, 0});
  CHECK(tiny.num_batches() == 0);
  Tensor<float> images;
  std::vector<int> labels;
  CHECK_FALSE(tiny.next(images, labels));
}

TEST_CASE("DataLoader shuffle: a fresh permutation each epoch, fixed by the seed", "[loader]") {
  const ImageDataset dataset = synthetic(100, 2, 3);
  auto order = [&](std::uint64_t seed, int epochs) {
    DataLoader loader(dataset, {16, true, false, seed});
    std::vector<std::vector<std::int64_t>> orders;
    for (int e = 0; e < epochs; ++e) {
      const Epoch epoch = run_epoch(loader);
      std::vector<std::int64_t> indices;
      for (const auto& batch : epoch.images)
        for (std::int64_t i = 0; i < batch.dim(0); ++i) indices.push_back(index_of(batch, i));
      orders.push_back(indices);
    }
    return orders;
  };
  const auto seed7 = order(7, 3);
  for (const auto& indices : seed7) {
    REQUIRE(indices.size() == 100);
    CHECK(std::set<std::int64_t>(indices.begin(), indices.end()).size() == 100);  // each image once
  }
  std::vector<std::int64_t> identity(100);
  for (std::int64_t i = 0; i < 100; ++i) identity[static_cast<std::size_t>(i)] = i;
  CHECK(seed7[0] != identity);
  CHECK(seed7[0] != seed7[1]);  // a fresh permutation each epoch
  CHECK(seed7[1] != seed7[2]);
  CHECK(order(7, 3) == seed7);        // same seed: same order, epoch after epoch
  CHECK(order(8, 1)[0] != seed7[0]);  // another seed: another order
}

TEST_CASE("DataLoader writes into the caller's buffers without reallocating", "[loader]") {
  const ImageDataset dataset = synthetic(53, 28, 28, true);
  DataLoader loader(dataset, {16, true, false, 1}, augmentation());
  Tensor<float> images;
  std::vector<int> labels;
  REQUIRE(loader.next(images, labels));
  const float* image_buffer = images.data();
  const int* label_buffer = labels.data();
  int batches = 1;
  for (int epoch = 0; epoch < 2; ++epoch)
    while (loader.next(images, labels)) {
      // The partial last batch (5 images) shrinks the shape, not the allocation.
      CHECK(images.data() == image_buffer);
      CHECK(labels.data() == label_buffer);
      ++batches;
    }
  CHECK(batches == 8);  // 4 batches per epoch, 2 epochs
}

TEST_CASE("DataLoader augmentation is identical for 1 and 2 threads", "[loader]") {
  const ImageDataset dataset = synthetic(70, 28, 28, true);
  const ThreadCountGuard guard;
  auto two_epochs = [&](int threads) {
    minicnn::set_num_threads(threads);
    DataLoader loader(dataset, {16, true, false, 5}, augmentation());
    const Epoch first = run_epoch(loader);
    const Epoch second = run_epoch(loader);
    return std::make_pair(first, second);
  };
  const auto one = two_epochs(1);
  const auto two = two_epochs(2);
  CHECK(same_epoch(one.first, two.first));
  CHECK(same_epoch(one.second, two.second));
  CHECK(one.first.labels != one.second.labels);  // epochs are shuffled differently
}

TEST_CASE("DataLoader: an image's augmentation depends on (seed, epoch, index) only", "[loader]") {
  const ImageDataset dataset = synthetic(30, 28, 28, true);
  // Batch sizes 4 and 7 put image i at different positions; its pixels must not change.
  DataLoader by4(dataset, {4, true, false, 11}, augmentation());
  DataLoader by7(dataset, {7, true, false, 11}, augmentation());
  const Epoch a = run_epoch(by4);
  const Epoch b = run_epoch(by7);
  auto image_of = [](const Epoch& epoch, std::int64_t batch_size, std::int64_t position) {
    const Tensor<float>& batch = epoch.images[static_cast<std::size_t>(position / batch_size)];
    const float* begin = batch.data() + (position % batch_size) * 784;
    return std::vector<float>(begin, begin + 784);
  };
  // Same seed: same order; so positions line up and images must be identical.
  for (std::int64_t p = 0; p < 30; ++p) CHECK(image_of(a, 4, p) == image_of(b, 7, p));

  // Another epoch or another seed changes the augmentation of the same image.
  DataLoader again(dataset, {30, false, false, 11}, augmentation());
  Tensor<float> epoch0, epoch1;
  std::vector<int> labels;
  again.load_batch(0, epoch0, labels);
  again.set_epoch(1);
  again.load_batch(0, epoch1, labels);
  CHECK_FALSE(same_bits(epoch0, epoch1));
  DataLoader other_seed(dataset, {30, false, false, 12}, augmentation());
  Tensor<float> seed12;
  other_seed.load_batch(0, seed12, labels);
  CHECK_FALSE(same_bits(epoch0, seed12));
}

TEST_CASE("DataLoader state: a checkpointed (seed, epoch, batch) resumes exactly", "[loader]") {
  const ImageDataset dataset = synthetic(50, 28, 28, true);
  DataLoader original(dataset, {8, true, false, 21}, augmentation());
  Tensor<float> images;
  std::vector<int> labels;
  run_epoch(original);  // epoch 0
  for (int b = 0; b < 3; ++b) original.next(images, labels);
  const DataLoaderState saved = original.state();
  CHECK(saved.seed == 21);
  CHECK(saved.epoch == 1);
  CHECK(saved.next_batch == 3);
  const Epoch rest = run_epoch(original);

  DataLoader resumed(dataset, {8, true, false, 999}, augmentation());  // the state overrides the seed
  resumed.set_state(saved);
  const Epoch resumed_rest = run_epoch(resumed);
  CHECK(same_epoch(rest, resumed_rest));
  CHECK(resumed.epoch() == 2);

  CHECK_THAT(error_of([&] { resumed.set_state({21, 0, 8}); }), Contains("next_batch 8 is outside 0..7"));
}

TEST_CASE("DataLoader errors", "[loader]") {
  const ImageDataset dataset = synthetic(10, 4, 4);
  CHECK_THAT(error_of([&] { DataLoader(dataset, {0, false, false, 0}); }), Contains("batch_size must be >= 1"));
  CHECK_THAT(error_of([&] {
               DataLoader(dataset, {4, false, false, 0}, Compose(Normalize({0.1f, 0.2f}, {1.0f, 1.0f})));
             }),
             Contains("2 channel means, the images have 1 channels"));
  DataLoader loader(dataset, {4, false, false, 0});
  Tensor<float> images;
  std::vector<int> labels;
  CHECK_THAT(error_of([&] { loader.load_batch(3, images, labels); }), Contains("batch 3 is outside 0..2"));
  ImageDataset broken = synthetic(10, 4, 4);
  broken.labels.pop_back();
  CHECK_THAT(error_of([&] { DataLoader(broken, {4, false, false, 0}); }), Contains("10 images but 9 labels"));
}

TEST_CASE("DataLoader on the real training set: normalized augmented batches", "[data][loader]") {
  ImageDataset train;
  try {
    train = load_fashion_mnist(Split::train);
  } catch (const minicnn::error& e) {
    FAIL("the real Fashion-MNIST data set is needed for [data] tests: " << e.what());
  }
  DataLoader loader(train, {64, true, true, 0}, augmentation());
  CHECK(loader.num_batches() == 937);
  Tensor<float> images;
  std::vector<int> labels;
  for (int b = 0; b < 3; ++b) {
    REQUIRE(loader.next(images, labels));
    CHECK(images.shape() == (Shape{64, 1, 28, 28}));
    const auto [low, high] = std::minmax_element(images.begin(), images.end());
    CHECK(*low >= -1.0f);
    CHECK(*high <= 1.0f);
    CHECK(*high > 0.5f);  // not all background
    for (int label : labels) CHECK((label >= 0 && label < 10));
  }
}
