#pragma once
// The one parallel loop of the CPU kernels: a static split of [0, count) over
// minicnn::num_threads() threads. Work below `min_parallel` items runs on the calling thread
// (starting threads costs more than tiny loops). A kernel's result must not depend on the split.
#include <cstdint>

#include "minicnn/config.hpp"

namespace minicnn::ops::cpu {

template <typename Body>
void parallel_for(std::int64_t count, std::int64_t min_parallel, Body&& body) {
  if (count <= 0) return;
  const int threads = num_threads();
  if (threads <= 1 || count < min_parallel) {
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  MINICNN_OMP(parallel for num_threads(threads) schedule(static))
  for (std::int64_t i = 0; i < count; ++i) body(i);
}

}  // namespace minicnn::ops::cpu
