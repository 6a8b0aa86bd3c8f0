#pragma once
// Private helpers of the minicnn_cuda library: error checks, launch shapes, scratch buffers.
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "minicnn/device.hpp"

namespace minicnn::cuda::detail {

// Throws minicnn::error("CUDA error in <what>: <name> (<text>)").
[[noreturn]] void throw_cuda_error(cudaError_t status, const char* what);

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw_cuda_error(status, what);
}
// After a kernel launch: reports a bad launch configuration at once (faults inside the kernel
// surface at the next synchronising call).
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Device memory from the caching allocator without the zero fill (scratch that is written
// before it is read). Released with cuda::deallocate.
void* allocate_uninitialized(std::size_t bytes);

inline constexpr int threads_per_block = 256;

// Blocks for a grid-stride loop over `count` items: enough to fill the GPU, capped so that
// index arithmetic stays cheap.
inline unsigned int blocks_for(std::int64_t count) {
  const std::int64_t blocks = (count + threads_per_block - 1) / threads_per_block;
  return static_cast<unsigned int>(blocks < 65536 ? blocks : 65536);
}

// An RAII block of `count` elements of scratch from the caching allocator: after the first
// training step every request is served from the cache, so scratch costs no cudaMalloc.
template <typename T>
class Scratch {
 public:
  explicit Scratch(std::int64_t count)
      : bytes_(sizeof(T) * static_cast<std::size_t>(count > 0 ? count : 1)),
        data_(static_cast<T*>(allocate_uninitialized(bytes_))) {}
  ~Scratch() { deallocate(data_, bytes_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  T* data() const { return data_; }

 private:
  std::size_t bytes_;
  T* data_;
};

}  // namespace minicnn::cuda::detail

// Grid-stride loop over [0, count) with 64-bit indices.
#define MINICNN_CUDA_FOR(index, count)                                                                         \
  for (std::int64_t index = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; index < (count); \
       index += static_cast<std::int64_t>(blockDim.x) * gridDim.x)

namespace minicnn::ops::cuda::detail {

// output[(n C + c) inner + i] = bias ? bias[c] : 0, for n < outer, c < channels, i < inner
// (the bias planes a conv or linear GEMM then accumulates onto).
template <typename T>
void broadcast_bias(std::int64_t outer, std::int64_t channels, std::int64_t inner, const T* bias, T* output);

// sums[c] += the sum over n < outer, i < inner of input[(n C + c) inner + i], in a fixed order
// (bias gradients, and the per-image weight-gradient partials of a convolution).
template <typename T>
void accumulate_channel_sums(std::int64_t outer, std::int64_t channels, std::int64_t inner, const T* input, T* sums);

}  // namespace minicnn::ops::cuda::detail
