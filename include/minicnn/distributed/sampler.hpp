#pragma once
// DistributedSampler: which images each rank trains on, step by step (no MPI call: every rank
// computes the same plan from the same numbers).
//
// The epoch's order is the DataLoader's: a permutation drawn from (seed, epoch), the same on
// every rank with the same seed (data/loader.hpp). Step s of the epoch takes the global batch at
// positions [s B, s B + B) of that order (B = global_batch; the last step takes what is left
// unless drop_last). The global batch is cut into M = B / micro_batch micro-batches, numbered in
// order; rank r of P trains on micro-batches [r M / P, (r + 1) M / P), so the shards are
// contiguous, disjoint, and together hold every image of the epoch exactly once. The per-rank
// batch is B / P; the global batch is the per-rank batch times the world size.
//
// A last, smaller global batch of R images is cut into the same M micro-batches, sizes as equal
// as possible (the first R mod M get one more image); when R < M some are empty.
//
// Contract: B must be a multiple of micro_batch and M a multiple of P, else the constructor
// throws minicnn::error naming the global batches that would work. The micro-batch size, not the
// process count, fixes the arithmetic (see distributed/gradient_averager.hpp): the same B and
// micro_batch give the same weights on any P that divides M.
#include <cstdint>
#include <string>

#include "minicnn/error.hpp"

namespace minicnn::distributed {

// A micro-batch: `count` images at positions first .. first + count - 1 of the epoch's order
// (DataLoader::load_positions loads them), and its number in the global batch.
struct MicroBatch {
  std::int64_t first = 0;
  std::int64_t count = 0;
  std::int64_t global_index = 0;
};

struct DistributedSamplerOptions {
  std::int64_t global_batch = 64;  // images per optimiser step, over all ranks
  std::int64_t micro_batch = 16;   // images per forward/backward pass; divides global_batch
  bool drop_last = false;          // skip a last global batch smaller than global_batch
};

class DistributedSampler {
 public:
  DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options, int rank, int world_size)
      : dataset_size_(dataset_size), options_(options), rank_(rank), world_size_(world_size) {
    if (dataset_size < 0)
      throw error("DistributedSampler: dataset_size must be >= 0, got " + std::to_string(dataset_size));
    if (world_size < 1 || rank < 0 || rank >= world_size)
      throw error("DistributedSampler: rank " + std::to_string(rank) + " of world size " + std::to_string(world_size) +
                  ", expected 0 <= rank < world size");
    if (options.global_batch < 1 || options.micro_batch < 1)
      throw error("DistributedSampler: global_batch " + std::to_string(options.global_batch) + " and micro_batch " +
                  std::to_string(options.micro_batch) + " must both be >= 1");
    if (options.global_batch % options.micro_batch != 0)
      throw error("DistributedSampler: the global batch " + std::to_string(options.global_batch) +
                  " is not a multiple of the micro-batch " + std::to_string(options.micro_batch));
    const std::int64_t micro_batches = options.global_batch / options.micro_batch;
    if (micro_batches % world_size != 0) {
      const std::int64_t unit = options.micro_batch * world_size;
      throw error("DistributedSampler: the global batch " + std::to_string(options.global_batch) + " is " +
                  std::to_string(micro_batches) + " micro-batches of " + std::to_string(options.micro_batch) +
                  ", which " + std::to_string(world_size) +
                  " processes cannot share equally; expected a global batch that is a multiple of micro_batch x "
                  "processes = " +
                  std::to_string(unit) + " (e.g. " + std::to_string(unit * ((options.global_batch + unit - 1) / unit)) +
                  "), or a micro-batch size that divides global_batch / processes");
    }
  }

  const DistributedSamplerOptions& options() const { return options_; }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // M: micro-batches per global batch (every step, the last partial one included).
  std::int64_t micro_batches_per_step() const { return options_.global_batch / options_.micro_batch; }
  // M / P: micro-batches each rank runs per step.
  std::int64_t micro_batches_per_rank() const { return micro_batches_per_step() / world_size_; }

  std::int64_t num_steps() const {
    return options_.drop_last ? dataset_size_ / options_.global_batch
                              : (dataset_size_ + options_.global_batch - 1) / options_.global_batch;
  }
  // Images in step `step`'s global batch (B, or fewer for a last partial one).
  std::int64_t step_images(std::int64_t step) const {
    check_step(step);
    const std::int64_t first = step * options_.global_batch;
    return dataset_size_ - first < options_.global_batch ? dataset_size_ - first : options_.global_batch;
  }

  // Global micro-batch `index` (0 .. M - 1) of step `step`, whichever rank runs it.
  MicroBatch global_micro_batch(std::int64_t step, std::int64_t index) const {
    const std::int64_t images = step_images(step);
    const std::int64_t micro_batches = micro_batches_per_step();
    if (index < 0 || index >= micro_batches)
      throw error("DistributedSampler: micro-batch " + std::to_string(index) + " is outside 0.." +
                  std::to_string(micro_batches - 1));
    const std::int64_t base = images / micro_batches, larger = images % micro_batches;
    const std::int64_t offset = index * base + (index < larger ? index : larger);
    return {step * options_.global_batch + offset, base + (index < larger ? 1 : 0), index};
  }
  // This rank's micro-batch `local_index` (0 .. M / P - 1) of step `step`.
  MicroBatch micro_batch(std::int64_t step, std::int64_t local_index) const {
    if (local_index < 0 || local_index >= micro_batches_per_rank())
      throw error("DistributedSampler: local micro-batch " + std::to_string(local_index) + " is outside 0.." +
                  std::to_string(micro_batches_per_rank() - 1));
    return global_micro_batch(step, rank_ * micro_batches_per_rank() + local_index);
  }

 private:
  void check_step(std::int64_t step) const {
    if (step < 0 || step >= num_steps())
      throw error("DistributedSampler: step " + std::to_string(step) + " is outside the epoch's 0.." +
                  std::to_string(num_steps() - 1));
  }

  std::int64_t dataset_size_;
  DistributedSamplerOptions options_;
  int rank_;
  int world_size_;
};

}  // namespace minicnn::distributed
