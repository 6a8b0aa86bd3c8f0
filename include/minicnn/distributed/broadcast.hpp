#pragma once
// Broadcast of a model's state from one rank (rank 0 by default) to all, in buckets.
//
//   broadcast_state(model)    parameters and buffers: call once after building (and after
//                             loading a checkpoint on rank 0), so every rank starts equal;
//   broadcast_buffers(model)  buffers only (BatchNorm's running statistics): DDP's
//                             broadcast_buffers, called at the start of every step.
// `communicator` is MPI_COMM_WORLD unless a program trains several groups. Every rank must call with a model of the
// same layout; a rank whose layout differs from the root's throws minicnn::error naming both (and run_or_abort() ends
// the job).
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "minicnn/distributed/environment.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::distributed {

// The default bucket: large enough that per-message latency is amortised, small enough to stay
// in the last-level cache while it is packed and summed.
inline constexpr std::int64_t default_bucket_bytes = std::int64_t{4} << 20;

template <typename T>
MPI_Datatype mpi_datatype() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double tensors");
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

// Copies `tensors` (in order) from rank `root` to every rank, packed into buckets of at most
// bucket_bytes. Empty tensors take part (with no bytes). Throws minicnn::error when this rank's
// tensor sizes differ from the root's.
template <typename T>
void broadcast_tensors(const std::vector<Tensor<T>*>& tensors, int root = 0,
                       std::int64_t bucket_bytes = default_bucket_bytes, MPI_Comm communicator = MPI_COMM_WORLD) {
  if (bucket_bytes < static_cast<std::int64_t>(sizeof(T)))
    throw error("distributed::broadcast_tensors: bucket_bytes " + std::to_string(bucket_bytes) +
                " is smaller than one element");
  int my_rank = 0;
  check_mpi(MPI_Comm_rank(communicator, &my_rank), "MPI_Comm_rank");
  // The layout check: the root's sizes against ours.
  std::vector<std::int64_t> sizes;
  for (const Tensor<T>* tensor : tensors) sizes.push_back(tensor->size());
  std::int64_t count = static_cast<std::int64_t>(sizes.size());
  std::int64_t root_count = count;
  check_mpi(MPI_Bcast(&root_count, 1, MPI_INT64_T, root, communicator), "MPI_Bcast");
  std::vector<std::int64_t> root_sizes(static_cast<std::size_t>(root_count));
  if (my_rank == root) root_sizes = sizes;
  check_mpi(MPI_Bcast(root_sizes.data(), static_cast<int>(root_count), MPI_INT64_T, root, communicator), "MPI_Bcast");
  // Agreed on by every rank, so that all of them throw together instead of some waiting in the
  // next broadcast: the lowest rank whose layout differs.
  int first_different = root_sizes != sizes ? my_rank : std::numeric_limits<int>::max();
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &first_different, 1, MPI_INT, MPI_MIN, communicator), "MPI_Allreduce");
  if (first_different != std::numeric_limits<int>::max() && root_sizes == sizes)
    throw error("distributed::broadcast_tensors: rank " + std::to_string(first_different) +
                " holds tensors of other sizes than the root's (rank " + std::to_string(root) +
                "): the ranks built different models");
  if (root_sizes != sizes) {
    std::int64_t total = 0, root_total = 0;
    for (std::int64_t size : sizes) total += size;
    for (std::int64_t size : root_sizes) root_total += size;
    throw error("distributed::broadcast_tensors: rank " + std::to_string(my_rank) + " holds " + std::to_string(count) +
                " tensors of " + std::to_string(total) + " elements, expected the root's (rank " +
                std::to_string(root) + ") " + std::to_string(root_count) + " tensors of " + std::to_string(root_total) +
                " elements: the ranks built different models");
  }

  const std::int64_t bucket_elements = bucket_bytes / static_cast<std::int64_t>(sizeof(T));
  std::vector<T> bucket;
  bucket.reserve(static_cast<std::size_t>(bucket_elements));
  // Tensors are walked as one flat sequence cut into buckets; (tensor, offset) is where the
  // current bucket starts.
  std::size_t tensor = 0;
  std::int64_t offset = 0;
  const bool is_root = my_rank == root;
  while (tensor < tensors.size()) {
    // Pack (on the root) the next bucket, remembering where it came from.
    const std::size_t first_tensor = tensor;
    const std::int64_t first_offset = offset;
    bucket.clear();
    while (tensor < tensors.size() && static_cast<std::int64_t>(bucket.size()) < bucket_elements) {
      const Tensor<T>& source = *tensors[tensor];
      const std::int64_t take =
          std::min(source.size() - offset, bucket_elements - static_cast<std::int64_t>(bucket.size()));
      if (is_root)
        bucket.insert(bucket.end(), source.data() + offset, source.data() + offset + take);
      else
        bucket.resize(bucket.size() + static_cast<std::size_t>(take));
      offset += take;
      if (offset == source.size()) {
        ++tensor;
        offset = 0;
      }
    }
    if (bucket.empty()) continue;  // only empty tensors were left
    check_mpi(MPI_Bcast(bucket.data(), static_cast<int>(bucket.size()), mpi_datatype<T>(), root, communicator),
              "MPI_Bcast");
    if (is_root) continue;
    // Unpack the same walk.
    std::size_t at = 0;
    std::size_t target = first_tensor;
    std::int64_t target_offset = first_offset;
    while (at < bucket.size()) {
      Tensor<T>& destination = *tensors[target];
      const std::int64_t take =
          std::min(destination.size() - target_offset, static_cast<std::int64_t>(bucket.size() - at));
      if (take > 0) std::memcpy(destination.data() + target_offset, bucket.data() + at, sizeof(T) * take);
      at += static_cast<std::size_t>(take);
      target_offset += take;
      if (target_offset == destination.size()) {
        ++target;
        target_offset = 0;
      }
    }
  }
}

// Parameters and buffers, in state() order.
template <typename T>
void broadcast_state(Module<T>& model, int root = 0, std::int64_t bucket_bytes = default_bucket_bytes,
                     MPI_Comm communicator = MPI_COMM_WORLD) {
  std::vector<Tensor<T>*> tensors;
  for (const NamedTensor<T>& entry : model.state()) tensors.push_back(entry.tensor);
  broadcast_tensors(tensors, root, bucket_bytes, communicator);
}

// Buffers only (BatchNorm's running statistics and batch counts), in named_buffers() order.
template <typename T>
void broadcast_buffers(Module<T>& model, int root = 0, std::int64_t bucket_bytes = default_bucket_bytes,
                       MPI_Comm communicator = MPI_COMM_WORLD) {
  std::vector<Tensor<T>*> tensors;
  for (auto& entry : model.named_buffers()) tensors.push_back(entry.second);
  broadcast_tensors(tensors, root, bucket_bytes, communicator);
}

}  // namespace minicnn::distributed
