#pragma once
// The one parallel loop of the CPU kernels: [0, count) cut into chunks that minicnn::num_threads()
// threads claim as they come free (thread_pool.hpp says why not OpenMP's static split). Work below
// `min_parallel` items runs on the calling thread (waking threads costs more than tiny loops).
// A kernel's result must not depend on which thread runs which index. Scratch memory a loop's
// bodies need is one buffer per thread (ensure_thread_buffers, thread_buffer).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "minicnn/config.hpp"
#include "minicnn/tensor.hpp"
#include "minicnn/thread_pool.hpp"

namespace minicnn::ops::cpu {

template <typename Body>
void parallel_for(std::int64_t count, std::int64_t min_parallel, Body&& body) {
  if (count <= 0) return;
  const int threads = num_threads();
  if (threads <= 1 || count < min_parallel) {
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  // A chunk holds at least half the items that make parallelism pay at all.
  minicnn::detail::ThreadPool::instance().run(threads, count, std::max<std::int64_t>(min_parallel / 2, 1), body);
}

namespace detail {

// Sizes every per-thread buffer before a parallel region (resize keeps the allocation; a new one
// is zeroed).
template <typename T>
void ensure_thread_buffers(std::vector<Tensor<T>>& buffers, std::int64_t size) {
  const auto threads = static_cast<std::size_t>(num_threads());
  if (buffers.size() < threads) buffers.resize(threads);
  for (auto& buffer : buffers) buffer.resize(Shape{std::max<std::int64_t>(size, 1)});
}

// The calling thread's buffer.
template <typename T>
T* thread_buffer(std::vector<Tensor<T>>& buffers) {
  return buffers[static_cast<std::size_t>(thread_index())].data();
}

}  // namespace detail

}  // namespace minicnn::ops::cpu
