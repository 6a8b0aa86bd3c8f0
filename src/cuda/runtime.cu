// Device discovery, the caching allocator, copies and fills: the definitions of device.hpp.
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.cuh"
#include "minicnn/error.hpp"

namespace minicnn::cuda {
namespace detail {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* what) {
  throw error(std::string("CUDA error in ") + what + ": error " + std::to_string(static_cast<int>(status)) + " (" +
              cudaGetErrorName(status) + ": " + cudaGetErrorString(status) + ")");
}

namespace {

struct DeviceState {
  int count = 0;
  std::string reason;
};

// Asked once: the answer cannot change while the process runs.
const DeviceState& device_state() {
  static const DeviceState state = [] {
    DeviceState s;
    const cudaError_t status = cudaGetDeviceCount(&s.count);
    if (status != cudaSuccess) {
      s.count = 0;
      s.reason = std::string("cudaGetDeviceCount failed: error ") + std::to_string(static_cast<int>(status)) + " (" +
                 cudaGetErrorName(status) + ": " + cudaGetErrorString(status) + ")";
      cudaGetLastError();  // clear it, so that it is not reported by a later, unrelated check
    } else if (s.count == 0) {
      s.reason = "cudaGetDeviceCount found no CUDA device";
    }
    return s;
  }();
  return state;
}

void require_device(const char* what) {
  if (device_state().count == 0)
    throw error(std::string(what) + ": no usable CUDA device (" + device_state().reason + ")");
}

constexpr unsigned char guard_pattern = 0xA5;
// Blocks are rounded up to this many bytes, so that buffers whose sizes differ a little
// (a last, smaller batch) share a free list.
constexpr std::size_t size_class = 512;

struct Block {
  std::size_t requested;  // bytes the caller asked for; guard bytes start here
  std::size_t capacity;   // size class; the cudaMalloc'd block has capacity + guard_bytes
  bool guarded;
};

// A caching allocator in the spirit of PyTorch's: freed blocks are kept in exact-size free
// lists and reused; cudaFree runs only in empty_cache() (or to retry a failed cudaMalloc).
class CachingAllocator {
 public:
  void* allocate(std::size_t bytes) {
    const std::size_t capacity = (bytes + size_class - 1) / size_class * size_class;
    std::lock_guard<std::mutex> lock(mutex_);
    void* pointer = nullptr;
    auto cached = free_.find(capacity);
    if (cached != free_.end() && !cached->second.empty()) {
      pointer = cached->second.back();
      cached->second.pop_back();
      ++stats_.cache_hits;
      stats_.bytes_cached -= capacity;
    } else {
      require_device("cudaMalloc");
      cudaError_t status = cudaMalloc(&pointer, capacity + guard_bytes);
      if (status == cudaErrorMemoryAllocation) {  // cached blocks of other sizes may be in the way
        cudaGetLastError();
        release_cached();
        status = cudaMalloc(&pointer, capacity + guard_bytes);
      }
      if (status != cudaSuccess)
        throw error("CUDA error in cudaMalloc of " + std::to_string(capacity + guard_bytes) +
                    " bytes: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
      ++stats_.device_allocations;
    }
    live_[pointer] = Block{bytes, capacity, guard_checking_};
    stats_.bytes_in_use += capacity;
    if (guard_checking_)
      check(cudaMemset(static_cast<unsigned char*>(pointer) + bytes, guard_pattern, capacity + guard_bytes - bytes),
            "cudaMemset (guard bytes)");
    return pointer;
  }

  void deallocate(void* pointer) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(pointer);
    if (it == live_.end()) return;  // not ours: never happens through Tensor
    const std::size_t capacity = it->second.capacity;
    live_.erase(it);
    free_[capacity].push_back(pointer);
    stats_.bytes_in_use -= capacity;
    stats_.bytes_cached += capacity;
  }

  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached();
  }

  void set_guard_checking(bool enabled) {
    std::lock_guard<std::mutex> lock(mutex_);
    guard_checking_ = enabled;
  }

  void check_guards() {
    std::lock_guard<std::mutex> lock(mutex_);
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (before checking guard bytes)");
    std::vector<unsigned char> host;
    for (const auto& [pointer, block] : live_) {
      if (!block.guarded) continue;
      host.resize(block.capacity + guard_bytes - block.requested);
      check(cudaMemcpy(host.data(), static_cast<const unsigned char*>(pointer) + block.requested, host.size(),
                       cudaMemcpyDeviceToHost),
            "cudaMemcpy (guard bytes)");
      for (std::size_t i = 0; i < host.size(); ++i)
        if (host[i] != guard_pattern) {
          char address[32];
          std::snprintf(address, sizeof address, "%p", pointer);
          throw error("CUDA guard bytes overwritten: the block of " + std::to_string(block.requested) + " bytes at " +
                      address + " was written " + std::to_string(i) + " bytes past its end (expected 0xA5, found " +
                      std::to_string(static_cast<int>(host[i])) + ")");
        }
    }
  }

 private:
  void release_cached() {
    for (auto& [capacity, pointers] : free_) {
      for (void* pointer : pointers) cudaFree(pointer);
      stats_.bytes_cached -= capacity * pointers.size();
      pointers.clear();
    }
  }

  std::mutex mutex_;
  std::unordered_map<void*, Block> live_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  MemoryStats stats_;
  bool guard_checking_ = false;
};

// Never destroyed: tensors with static storage duration may release their blocks after every
// other static object is gone, and cudaFree during process exit can fail anyway.
CachingAllocator& allocator() {
  static CachingAllocator* const instance = new CachingAllocator;
  return *instance;
}

template <typename Word>
__global__ void fill_kernel(Word* destination, std::int64_t count, Word value) {
  MINICNN_CUDA_FOR(i, count) destination[i] = value;
}

template <typename Word>
void fill_words(void* destination, std::size_t count, const void* value) {
  Word word;
  std::memcpy(&word, value, sizeof word);
  const auto n = static_cast<std::int64_t>(count);
  fill_kernel<Word><<<blocks_for(n), threads_per_block>>>(static_cast<Word*>(destination), n, word);
  check_launch("fill_kernel");
}

}  // namespace

void* allocate_uninitialized(std::size_t bytes) { return allocator().allocate(bytes); }

}  // namespace detail

int device_count() { return detail::device_state().count; }
std::string unavailable_reason() { return detail::device_state().reason; }

std::string device_description() {
  detail::require_device("device_description");
  int device = 0;
  detail::check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp properties{};
  detail::check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  std::ostringstream text;
  text << properties.name << ", compute capability " << properties.major << '.' << properties.minor << ", "
       << properties.multiProcessorCount << " SMs, " << std::fixed << std::setprecision(1)
       << static_cast<double>(properties.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0) << " GiB";
  return text.str();
}

void* allocate(std::size_t bytes) {
  void* pointer = detail::allocator().allocate(bytes);
  detail::check(cudaMemset(pointer, 0, bytes), "cudaMemset (new tensor)");
  return pointer;
}

void deallocate(void* pointer, std::size_t /*bytes: the allocator knows the block's size*/) noexcept {
  detail::allocator().deallocate(pointer);
}

void copy_host_to_device(void* device_destination, const void* host_source, std::size_t bytes) {
  if (bytes == 0) return;
  detail::check(cudaMemcpy(device_destination, host_source, bytes, cudaMemcpyHostToDevice),
                "cudaMemcpy (host to device)");
}
void copy_device_to_host(void* host_destination, const void* device_source, std::size_t bytes) {
  if (bytes == 0) return;
  detail::check(cudaMemcpy(host_destination, device_source, bytes, cudaMemcpyDeviceToHost),
                "cudaMemcpy (device to host)");
}
void copy_device_to_device(void* device_destination, const void* device_source, std::size_t bytes) {
  if (bytes == 0) return;
  detail::check(cudaMemcpy(device_destination, device_source, bytes, cudaMemcpyDeviceToDevice),
                "cudaMemcpy (device to device)");
}

void fill(void* device_destination, std::size_t count, const void* value, std::size_t value_size) {
  if (count == 0) return;
  switch (value_size) {
    case 1:
      detail::fill_words<std::uint8_t>(device_destination, count, value);
      break;
    case 2:
      detail::fill_words<std::uint16_t>(device_destination, count, value);
      break;
    case 4:
      detail::fill_words<std::uint32_t>(device_destination, count, value);
      break;
    case 8:
      detail::fill_words<std::uint64_t>(device_destination, count, value);
      break;
    default:
      throw error("cuda::fill: expected an element size of 1, 2, 4 or 8 bytes, got " + std::to_string(value_size));
  }
}

void fill_zero(void* device_destination, std::size_t bytes) {
  if (bytes == 0) return;
  detail::check(cudaMemset(device_destination, 0, bytes), "cudaMemset");
}

void synchronize() { detail::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

MemoryStats memory_stats() { return detail::allocator().stats(); }
void empty_cache() { detail::allocator().empty_cache(); }
void set_guard_checking(bool enabled) { detail::allocator().set_guard_checking(enabled); }
void check_guards() { detail::allocator().check_guards(); }

}  // namespace minicnn::cuda
