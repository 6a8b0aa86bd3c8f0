#pragma once
// The device-memory interface Tensor<T> stores GPU tensors with. Plain declarations, no CUDA
// header: they are defined by the minicnn_cuda library (src/cuda/runtime.cu), which only a
// build with MINICNN_WITH_CUDA compiles and links. tensor.hpp calls them under
// `if constexpr (cuda_compiled)`, so a CPU-only build never references them.
//
// Memory is plain cudaMalloc'd device memory (never managed memory), handed out by a caching
// allocator: a freed block goes back to a per-size free list and the next request of that size
// reuses it, so a training loop whose buffer sizes repeat calls cudaMalloc only in its first step.
// Every call throws minicnn::error with the CUDA error's name and text when the runtime fails.
#include <cstddef>
#include <cstdint>
#include <string>

namespace minicnn::cuda {

// The number of usable CUDA devices; 0 when there is no device or no driver (the reason is
// then in unavailable_reason()). Asks the runtime once and remembers the answer.
int device_count();
// Why device_count() is 0, e.g. "cudaGetDeviceCount failed: error 35 (cudaErrorInsufficientDriver:
// CUDA driver version is insufficient for CUDA runtime version)"; empty when a device exists.
std::string unavailable_reason();
// "NVIDIA H200, compute capability 9.0, 132 SMs, 139.8 GiB" for the current device.
std::string device_description();

// `bytes` (> 0) of device memory, zero-filled, from the caching allocator. Throws when no
// device is usable or memory runs out.
void* allocate(std::size_t bytes);
// Returns a block from allocate() (with the same byte count) to the cache. Never throws.
void deallocate(void* pointer, std::size_t bytes) noexcept;

// Synchronous copies (they return when the data has arrived).
void copy_host_to_device(void* device_destination, const void* host_source, std::size_t bytes);
void copy_device_to_host(void* host_destination, const void* device_source, std::size_t bytes);
void copy_device_to_device(void* device_destination, const void* device_source, std::size_t bytes);

// Sets `count` elements of `value_size` bytes (1, 2, 4 or 8) to the bit pattern at `value`.
void fill(void* device_destination, std::size_t count, const void* value, std::size_t value_size);
void fill_zero(void* device_destination, std::size_t bytes);

// Waits until all work queued on the device has finished; throws on an earlier kernel fault.
void synchronize();

// What the caching allocator has done so far: tests assert that a training step after the
// first adds no device_allocations, benchmarks print the bytes.
struct MemoryStats {
  std::uint64_t device_allocations = 0;  // cudaMalloc calls
  std::uint64_t cache_hits = 0;          // requests served from the cache
  std::size_t bytes_in_use = 0;          // handed out and not yet returned
  std::size_t bytes_cached = 0;          // returned, kept for reuse
};
MemoryStats memory_stats();
// Frees every cached (unused) block with cudaFree.
void empty_cache();

// Guard bytes: when enabled, every block allocated afterwards is followed by guard_bytes bytes
// of a known pattern, and check_guards() throws minicnn::error naming the first block (size,
// offset) whose pattern a kernel overwrote. Costs a memset per allocation: tests only.
inline constexpr std::size_t guard_bytes = 256;
void set_guard_checking(bool enabled);
void check_guards();

}  // namespace minicnn::cuda
