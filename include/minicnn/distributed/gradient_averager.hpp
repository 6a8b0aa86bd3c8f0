#pragma once
// GradientAverager: combines the gradients of a step's micro-batches, computed on all ranks,
// into the gradient every rank's optimiser then applies.
//
// The step (see distributed/sampler.hpp for which images each rank gets):
//   for each of this rank's micro-batches j (j = 0 .. M / P - 1):
//     model.zero_grad(); forward; loss; backward;   // the gradient g_m of micro-batch m
//     averager.keep(j, images_in_micro_batch, images_in_step);
//   averager.average();                              // every parameter's grad, on every rank:
//                                                    //   sum over m = 0 .. M - 1, in that order,
//                                                    //   of fl(n_m / N) * g_m
//   optimizer.step();
// where n_m is micro-batch m's image count and N the step's (n_m / N = 1 / M for a full step).
//
// The weights, the scaling pass and the in-order summation are GradientAccumulator's
// (optim/gradient_accumulator.hpp: micro_batch_weight, scale_gradients, sum_in_order), the
// single-process accumulation of the same micro-batches, so both give the same bits.
//
// Determinism (Reduction::fixed_order, the default). Each g_m is a function of micro-batch m's
// images and the weights only: every kernel's reductions are fixed-order and independent of the
// thread count (conv's chunks of conv_reduction_chunk images, BatchNorm's per-channel sums in
// double, the single-threaded GEMMs), so the rank and thread count that compute g_m do not
// matter. keep() scales g_m by the weight, rounded once (a multiply by 1 when M = 1). average()
// then adds the M scaled gradients element by element in global micro-batch order — the same
// additions in the same order whatever the number of processes P and the bucket size, and no
// reduction inside MPI decides any rounding. Hence: the weights after any number of steps are
// bit-identical for every P that divides M, and for P = 1 and M = 1 they are those of plain
// single-process training with batch N.
//
// How (fixed_order): per bucket, the parameter elements are cut into P slices; an all-to-all
// gives rank q slice q of all M micro-batch gradients; rank q sums them in order; an allgather
// returns the summed slices to everyone. Bytes sent per rank and step: (M / P + 1) (P - 1) / P
// x the gradient's bytes — with one micro-batch per rank (M = P), 2 (P - 1) / P x the gradient,
// the same as a ring allreduce.
//
// Reduction::mpi_sum: each rank sums its own scaled micro-batch gradients in order, then
// MPI_Allreduce(MPI_SUM) per bucket (non-blocking, all buckets in flight, then waited on). The
// same bytes for M = P and fewer for M > P, but MPI's reduction order (which depends on P and
// the algorithm MPI picks) decides the last bits: weights then differ between process counts.
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "minicnn/distributed/broadcast.hpp"
#include "minicnn/distributed/environment.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/optim/gradient_accumulator.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::distributed {

enum class Reduction {
  fixed_order,  // gather the micro-batch gradients, add them in global order: P-independent bits
  mpi_sum,      // MPI_Allreduce(MPI_SUM) of per-rank sums: MPI's order decides the last bits
};

struct GradientAveragerOptions {
  Reduction reduction = Reduction::fixed_order;
  std::int64_t bucket_bytes = default_bucket_bytes;
  // A collective that waits longer than this ends the job (CollectiveWatchdog); 0: wait forever.
  // It covers the other ranks' compute time too, so keep it well above a step's duration.
  std::chrono::seconds collective_timeout{300};
  // keep() throws minicnn::error naming the parameter when a gradient holds a NaN or infinity.
  bool check_finite = false;
  // The ranks that train together (MPI_COMM_SELF: a world of one, the single-process reference).
  MPI_Comm communicator = MPI_COMM_WORLD;
};

template <typename T>
class GradientAverager {
 public:
  GradientAverager(std::vector<Parameter<T>*> parameters, std::int64_t micro_batches_per_rank,
                   GradientAveragerOptions options = {})
      : parameters_(std::move(parameters)),
        micro_batches_per_rank_(micro_batches_per_rank),
        options_(options),
        rank_(communicator_rank(options.communicator)),
        world_size_(communicator_size(options.communicator)),
        watchdog_(options.collective_timeout) {
    if (micro_batches_per_rank < 1)
      throw error("GradientAverager: micro_batches_per_rank must be >= 1, got " +
                  std::to_string(micro_batches_per_rank));
    if (options.bucket_bytes < static_cast<std::int64_t>(sizeof(T)))
      throw error("GradientAverager: bucket_bytes " + std::to_string(options.bucket_bytes) +
                  " is smaller than one element");
    for (const Parameter<T>* parameter : parameters_) {
      offsets_.push_back(total_);
      total_ += parameter->grad.size();
    }
    // Every rank must average the same number of elements, or the collectives would mismatch.
    std::int64_t smallest = total_, largest = total_;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &smallest, 1, MPI_INT64_T, MPI_MIN, options_.communicator), "MPI_Allreduce");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &largest, 1, MPI_INT64_T, MPI_MAX, options_.communicator), "MPI_Allreduce");
    if (smallest != largest)
      throw error("GradientAverager: rank " + std::to_string(rank_) + " has " + std::to_string(total_) +
                  " parameter elements, but the ranks range from " + std::to_string(smallest) + " to " +
                  std::to_string(largest) + ": every rank must build the same model");
    slots_.resize(Shape{micro_batches_per_rank_, total_});
    averaged_.resize(Shape{total_});
    kept_.assign(static_cast<std::size_t>(micro_batches_per_rank_), false);
  }

  std::int64_t num_elements() const { return total_; }
  std::int64_t micro_batches_per_rank() const { return micro_batches_per_rank_; }
  const GradientAveragerOptions& options() const { return options_; }

  // After the backward of this rank's micro-batch `local_index` (gradients zeroed before it):
  // keeps every parameter's grad times images / step_images. images = 0 (an empty micro-batch
  // at the end of an epoch) keeps zeros without reading the gradients.
  void keep(std::int64_t local_index, std::int64_t images, std::int64_t step_images) {
    if (local_index < 0 || local_index >= micro_batches_per_rank_)
      throw error("GradientAverager::keep: local micro-batch " + std::to_string(local_index) + " is outside 0.." +
                  std::to_string(micro_batches_per_rank_ - 1));
    scale_gradients(parameters_, images, step_images, slots_.data() + local_index * total_, options_.check_finite,
                    "GradientAverager::keep: local micro-batch " + std::to_string(local_index));
    kept_[static_cast<std::size_t>(local_index)] = true;
  }

  // Collective: every rank calls it once per step, after keeping all its micro-batches. Writes
  // the combined gradient into every parameter's grad on every rank.
  void average() {
    for (std::size_t j = 0; j < kept_.size(); ++j)
      if (!kept_[j])
        throw error("GradientAverager::average: local micro-batch " + std::to_string(j) + " of " +
                    std::to_string(kept_.size()) + " was not kept this step (call keep() after each backward)");
    const auto start = std::chrono::steady_clock::now();
    const std::int64_t bucket_elements = options_.bucket_bytes / static_cast<std::int64_t>(sizeof(T));
    if (options_.reduction == Reduction::fixed_order) {
      for (std::int64_t first = 0; first < total_; first += bucket_elements)
        fixed_order_bucket(first, std::min(bucket_elements, total_ - first));
    } else {
      sum_buckets(bucket_elements);
    }
    for (std::size_t p = 0; p < parameters_.size(); ++p) {
      Tensor<T>& grad = parameters_[p]->grad;
      if (grad.size() > 0) std::memcpy(grad.data(), averaged_.data() + offsets_[p], sizeof(T) * grad.size());
    }
    kept_.assign(kept_.size(), false);
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  // Seconds spent in average() (packing, summing and MPI, the wait for slower ranks included)
  // since construction.
  double seconds() const { return seconds_; }

 private:
  static int communicator_rank(MPI_Comm communicator) {
    int value = 0;
    check_mpi(MPI_Comm_rank(communicator, &value), "MPI_Comm_rank");
    return value;
  }
  static int communicator_size(MPI_Comm communicator) {
    int value = 0;
    check_mpi(MPI_Comm_size(communicator, &value), "MPI_Comm_size");
    return value;
  }

  // Slice q of a bucket of `length` elements: [length q / P, length (q + 1) / P).
  std::int64_t slice_begin(std::int64_t length, int q) const { return length * q / world_size_; }

  void fixed_order_bucket(std::int64_t first, std::int64_t length) {
    const std::int64_t local = micro_batches_per_rank_;
    const std::int64_t total_micro_batches = local * world_size_;
    if (world_size_ == 1) {
      parts_.clear();
      for (std::int64_t j = 0; j < local; ++j) parts_.push_back(slots_.data() + j * total_ + first);
      sum_in_order(parts_.data(), local, length, averaged_.data() + first);
      return;
    }
    // All-to-all: to rank q, slice q of each of our micro-batch gradients, in local order; from
    // rank q, our slice of each of its. Rank q's micro-batches are global q M / P .. so the
    // receive buffer holds all M micro-batches of our slice in global order.
    const std::int64_t own_begin = slice_begin(length, rank_), own_length = slice_begin(length, rank_ + 1) - own_begin;
    send_.resize(static_cast<std::size_t>(local * length));
    receive_.resize(static_cast<std::size_t>(total_micro_batches * own_length));
    send_counts_.assign(world_size_, 0);
    send_displacements_.assign(world_size_, 0);
    receive_counts_.assign(world_size_, 0);
    receive_displacements_.assign(world_size_, 0);
    std::int64_t at = 0;
    for (int q = 0; q < world_size_; ++q) {
      const std::int64_t begin = slice_begin(length, q), slice_length = slice_begin(length, q + 1) - begin;
      send_displacements_[q] = static_cast<int>(at);
      send_counts_[q] = static_cast<int>(local * slice_length);
      for (std::int64_t j = 0; j < local; ++j, at += slice_length)
        if (slice_length > 0)
          std::memcpy(send_.data() + at, slots_.data() + j * total_ + first + begin, sizeof(T) * slice_length);
      receive_counts_[q] = static_cast<int>(local * own_length);
      receive_displacements_[q] = static_cast<int>(q * local * own_length);
    }
    watchdog_.arm("MPI_Alltoallv (gradients)");
    check_mpi(
        MPI_Alltoallv(send_.data(), send_counts_.data(), send_displacements_.data(), mpi_datatype<T>(), receive_.data(),
                      receive_counts_.data(), receive_displacements_.data(), mpi_datatype<T>(), options_.communicator),
        "MPI_Alltoallv");
    watchdog_.disarm();
    parts_.clear();
    for (std::int64_t m = 0; m < total_micro_batches; ++m) parts_.push_back(receive_.data() + m * own_length);
    sum_in_order(parts_.data(), total_micro_batches, own_length, averaged_.data() + first + own_begin);
    // Allgather of the summed slices, in place in averaged_.
    for (int q = 0; q < world_size_; ++q) {
      receive_counts_[q] = static_cast<int>(slice_begin(length, q + 1) - slice_begin(length, q));
      receive_displacements_[q] = static_cast<int>(slice_begin(length, q));
    }
    watchdog_.arm("MPI_Allgatherv (gradients)");
    check_mpi(MPI_Allgatherv(MPI_IN_PLACE, 0, mpi_datatype<T>(), averaged_.data() + first, receive_counts_.data(),
                             receive_displacements_.data(), mpi_datatype<T>(), options_.communicator),
              "MPI_Allgatherv");
    watchdog_.disarm();
  }

  void sum_buckets(std::int64_t bucket_elements) {
    parts_.clear();
    for (std::int64_t j = 0; j < micro_batches_per_rank_; ++j) parts_.push_back(slots_.data() + j * total_);
    sum_in_order(parts_.data(), micro_batches_per_rank_, total_, averaged_.data());
    if (world_size_ == 1) return;
    requests_.clear();
    for (std::int64_t first = 0; first < total_; first += bucket_elements) {
      requests_.emplace_back();
      check_mpi(MPI_Iallreduce(MPI_IN_PLACE, averaged_.data() + first,
                               static_cast<int>(std::min(bucket_elements, total_ - first)), mpi_datatype<T>(), MPI_SUM,
                               options_.communicator, &requests_.back()),
                "MPI_Iallreduce");
    }
    watchdog_.arm("MPI_Waitall (gradient allreduce)");
    check_mpi(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    watchdog_.disarm();
  }

  std::vector<Parameter<T>*> parameters_;
  std::vector<std::int64_t> offsets_;  // parameter p's first element in the flat gradient
  std::int64_t total_ = 0;
  std::int64_t micro_batches_per_rank_;
  GradientAveragerOptions options_;
  int rank_;
  int world_size_;
  CollectiveWatchdog watchdog_;
  Tensor<T> slots_;     // [M / P, total]: this rank's scaled micro-batch gradients
  Tensor<T> averaged_;  // [total]: the combined gradient
  std::vector<bool> kept_;
  std::vector<T> send_, receive_;
  std::vector<const T*> parts_;
  std::vector<int> send_counts_, send_displacements_, receive_counts_, receive_displacements_;
  std::vector<MPI_Request> requests_;
  double seconds_ = 0.0;
};

}  // namespace minicnn::distributed
