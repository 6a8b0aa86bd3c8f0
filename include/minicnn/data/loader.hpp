#pragma once
// DataLoader: batches of an ImageDataset as float tensors [B, 1, H, W] plus labels.
//
// Determinism contract. Everything random is a pure function of (seed, epoch, ...):
//   - the epoch's order: a Fisher-Yates shuffle driven by Generator(random_bits(seed, 2 * epoch));
//   - image i's augmentation: a Generator keyed by random_bits(random_bits(seed, 2 * epoch + 1), i),
//     where i is the image's index in the data set.
// So batches are identical for any thread count, and the loader's whole state is
// DataLoaderState {seed, epoch, next_batch}: save it with a checkpoint, set_state() resumes.
//
// Per batch: pixels are scaled to [0, 1] (x / 255, as ToTensor), then the transform runs;
// images are prepared in parallel over the batch (ops::cpu::parallel_for). The output tensor and label
// vector are resized in place, so after the first batch nothing is allocated.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "minicnn/config.hpp"
#include "minicnn/data/dataset.hpp"
#include "minicnn/data/transforms.hpp"
#include "minicnn/error.hpp"
#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/random.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::data {

struct DataLoaderOptions {
  std::int64_t batch_size = 64;
  bool shuffle = false;    // a fresh permutation each epoch; off for evaluation
  bool drop_last = false;  // skip a last batch smaller than batch_size
  std::uint64_t seed = 0;
};

// Where a loader stands; enough to resume exactly.
struct DataLoaderState {
  std::uint64_t seed = 0;
  std::uint64_t epoch = 0;
  std::int64_t next_batch = 0;  // the batch the next call to next() writes
};

// One loader serves one consumer: next() and load_batch() use the loader's scratch buffers and
// must not be called concurrently on the same loader.
class DataLoader {
 public:
  // `dataset` must outlive the loader. `transform` runs on every image after scaling to [0, 1].
  DataLoader(const ImageDataset& dataset, DataLoaderOptions options, Compose transform = Compose())
      : dataset_(dataset), options_(options), transform_(std::move(transform)) {
    if (options_.batch_size < 1)
      throw error("DataLoader: batch_size must be >= 1, got " + std::to_string(options_.batch_size));
    if (dataset_.images.rank() != 3)
      throw error("DataLoader: the data set's images have shape " + dataset_.images.shape().str() +
                  ", expected [count, height, width]");
    if (static_cast<std::int64_t>(dataset_.labels.size()) != dataset_.size())
      throw error("DataLoader: the data set has " + std::to_string(dataset_.size()) + " images but " +
                  std::to_string(dataset_.labels.size()) + " labels");
    transform_.check(1, static_cast<int>(dataset_.height()), static_cast<int>(dataset_.width()));
    order_.resize(static_cast<std::size_t>(dataset_.size()));
    set_epoch(0);
  }

  std::int64_t size() const { return dataset_.size(); }
  std::int64_t batch_size() const { return options_.batch_size; }
  const DataLoaderOptions& options() const { return options_; }
  const Compose& transform() const { return transform_; }
  // Batches per epoch.
  std::int64_t num_batches() const {
    return options_.drop_last ? size() / options_.batch_size : (size() + options_.batch_size - 1) / options_.batch_size;
  }
  // The shape of a full batch: [batch_size, 1, height, width].
  Shape batch_shape() const { return Shape{options_.batch_size, 1, dataset_.height(), dataset_.width()}; }

  std::uint64_t epoch() const { return epoch_; }
  DataLoaderState state() const { return {options_.seed, epoch_, next_batch_}; }
  void set_state(const DataLoaderState& state) {
    if (state.next_batch < 0 || state.next_batch > num_batches())
      throw error("DataLoader::set_state: next_batch " + std::to_string(state.next_batch) + " is outside 0.." +
                  std::to_string(num_batches()));
    options_.seed = state.seed;
    set_epoch(state.epoch);
    next_batch_ = state.next_batch;
  }
  // Starts epoch `epoch` from its first batch.
  void set_epoch(std::uint64_t epoch) {
    epoch_ = epoch;
    next_batch_ = 0;
    std::iota(order_.begin(), order_.end(), std::int64_t{0});
    if (options_.shuffle && order_.size() > 1) {
      Generator gen(random_bits(options_.seed, 2 * epoch));
      for (std::size_t i = order_.size() - 1; i > 0; --i) std::swap(order_[i], order_[gen.below(i + 1)]);
    }
  }

  // Writes the next batch of the current epoch and returns true; at the end of the epoch
  // returns false and moves on to the next epoch, so `while (loader.next(x, y))` runs one epoch.
  bool next(Tensor<float>& images, std::vector<int>& labels) {
    if (next_batch_ >= num_batches()) {
      set_epoch(epoch_ + 1);
      return false;
    }
    load_batch(next_batch_++, images, labels);
    return true;
  }

  // Writes batch `batch_index` of the current epoch into images [b, 1, H, W] and labels [b]
  // (b = batch_size, fewer for a last partial batch). Does not move the position.
  void load_batch(std::int64_t batch_index, Tensor<float>& images, std::vector<int>& labels) {
    if (batch_index < 0 || batch_index >= num_batches())
      throw error("DataLoader::load_batch: batch " + std::to_string(batch_index) + " is outside 0.." +
                  std::to_string(num_batches() - 1));
    const std::int64_t first = batch_index * options_.batch_size;
    load_positions(first, std::min(options_.batch_size, size() - first), images, labels);
  }

  // Writes the `count` samples at positions first .. first + count - 1 of the current epoch's
  // order into images [count, 1, H, W] and labels [count], exactly as load_batch() writes them
  // (the same pixels and augmentation whatever batch they fall in). Distributed training loads
  // its micro-batches this way (distributed/sampler.hpp). Does not move the position.
  void load_positions(std::int64_t first, std::int64_t count, Tensor<float>& images, std::vector<int>& labels) {
    if (first < 0 || count < 0 || first > size() - count)
      throw error("DataLoader::load_positions: positions " + std::to_string(first) + " + " + std::to_string(count) +
                  " are outside the epoch's 0.." + std::to_string(size()));
    const int height = static_cast<int>(dataset_.height());
    const int width = static_cast<int>(dataset_.width());
    const std::int64_t image_size = std::int64_t{height} * width;
    images.resize(Shape{count, 1, height, width});
    labels.resize(static_cast<std::size_t>(count));

    const int threads = std::max(1, num_threads());
    const std::size_t scratch_needed = static_cast<std::size_t>(threads) * static_cast<std::size_t>(image_size);
    if (scratch_.size() < scratch_needed) scratch_.resize(scratch_needed);  // grows only with the thread count

    const std::uint64_t augmentation_key = random_bits(options_.seed, 2 * epoch_ + 1);
    const std::uint8_t* pixels = dataset_.images.data();
    float* out = images.data();
    float* scratch = scratch_.data();
    const std::int64_t* order = order_.data() + first;
    const int* source_labels = dataset_.labels.data();
    int* out_labels = labels.data();
    const bool transform = !transform_.empty();
    ops::cpu::parallel_for(count, 2, [&](std::int64_t i) {
      const std::int64_t index = order[i];
      float* image = out + i * image_size;
      to_unit_range(pixels + index * image_size, image, image_size);
      if (transform) {
        Generator gen(random_bits(augmentation_key, static_cast<std::uint64_t>(index)));
        transform_.apply(ImageView{image, 1, height, width}, gen, scratch + thread_index() * image_size);
      }
      out_labels[i] = source_labels[index];
    });
  }

  // The data-set index of the sample at `position` in the current epoch's order.
  std::int64_t index_at(std::int64_t position) const {
    if (position < 0 || position >= size())
      throw error("DataLoader::index_at: position " + std::to_string(position) + " is outside 0.." +
                  std::to_string(size() - 1));
    return order_[static_cast<std::size_t>(position)];
  }

 private:
  const ImageDataset& dataset_;
  DataLoaderOptions options_;
  Compose transform_;
  std::vector<std::int64_t> order_;  // the current epoch's permutation of 0..size()-1
  std::vector<float> scratch_;       // one image per thread, for transforms that need it
  std::uint64_t epoch_ = 0;
  std::int64_t next_batch_ = 0;
};

}  // namespace minicnn::data
