#pragma once
// Tensor<T>: one owning, 64-byte aligned, contiguous buffer plus a shape of rank 1 to 4
// (images are NCHW). Copies are deep, moves are cheap. resize() keeps the allocation when the
// new size fits, so layers can reuse their buffers and a training step allocates nothing after
// the first.
//
// The buffer lives on a Device: the CPU (the default) or, in a build with the CUDA backend, the
// GPU (device memory from the caching allocator of device.hpp). to(device) moves a tensor,
// copy_to(device) copies it, copy_from() copies elements across devices. data() is then a
// device pointer, for kernels only: element access on the host (operator[], operator(),
// begin/end) is the caller's responsibility, and the host-side helpers (at, uniform, normal,
// matrix, vector) throw minicnn::error for a GPU tensor.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "minicnn/config.hpp"
#include "minicnn/device.hpp"
#include "minicnn/error.hpp"
#include "minicnn/random.hpp"

namespace minicnn {

// The dimensions of a tensor: rank 0 (empty) to 4.
class Shape {
 public:
  static constexpr int max_rank = 4;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<std::int64_t>& dims) { assign(dims.begin(), dims.end()); }

  int rank() const { return rank_; }
  std::int64_t operator[](int axis) const {
    if (axis < 0) axis += rank_;
    if (axis < 0 || axis >= rank_)
      throw error("Shape " + str() + ": axis " + std::to_string(axis) + " out of range");
    return dims_[static_cast<std::size_t>(axis)];
  }
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return rank_ == 0 ? 0 : n;
  }
  std::vector<std::int64_t> dims() const { return {dims_.begin(), dims_.begin() + rank_}; }

  bool operator==(const Shape& other) const {
    return rank_ == other.rank_ && std::equal(dims_.begin(), dims_.begin() + rank_, other.dims_.begin());
  }
  bool operator!=(const Shape& other) const { return !(*this == other); }

  // "[64, 1, 28, 28]", as PyTorch prints a size.
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[static_cast<std::size_t>(i)]);
    return s + "]";
  }

 private:
  template <typename It>
  void assign(It first, It last) {
    const auto count = std::distance(first, last);
    if (count > max_rank)
      throw error("Shape: rank " + std::to_string(count) + " is not supported (expected 1 to 4 dimensions)");
    rank_ = static_cast<int>(count);
    std::int64_t total = 1;
    for (int i = 0; first != last; ++first, ++i) {
      if (*first < 0) throw error("Shape: dimension " + std::to_string(i) + " is negative (" + std::to_string(*first) + ")");
      // A product beyond 2^40 elements is never a real tensor: it is a corrupt size.
      if (*first > 0 && total > (std::int64_t{1} << 40) / *first)
        throw error("Shape: the dimensions' product exceeds 2^40 elements");
      total *= *first;
      dims_[static_cast<std::size_t>(i)] = *first;
    }
  }

  std::array<std::int64_t, max_rank> dims_{};
  int rank_ = 0;
};

namespace detail {
struct AlignedFree {
  void operator()(void* p) const { ::operator delete[](p, std::align_val_t{64}); }
};
inline void* aligned_allocate(std::size_t bytes) {
  return ::operator new[]((bytes + 63) / 64 * 64, std::align_val_t{64});
}

// Frees a tensor's buffer where it lives: the host heap, or the CUDA caching allocator.
struct StorageFree {
  Device device = Device::cpu;
  std::size_t bytes = 0;
  void operator()(void* p) const {
    if (device == Device::cpu) {
      AlignedFree{}(p);
    } else if constexpr (cuda_compiled) {
      cuda::deallocate(p, bytes);
    }
  }
};

inline void no_cuda_backend(const char* what) {
  throw error(std::string(what) + ": this minicnn build has no CUDA backend (configure with -DMINICNN_WITH_CUDA=ON)");
}

// A zero-filled buffer of `bytes` (> 0) on `device`.
inline void* allocate_zeroed(std::size_t bytes, Device device) {
  if (device == Device::cpu) {
    void* p = aligned_allocate(bytes);
    std::memset(p, 0, bytes);
    return p;
  }
  if constexpr (cuda_compiled) return cuda::allocate(bytes);  // cudaMalloc'd memory, zeroed
  no_cuda_backend("Tensor");
  return nullptr;
}

inline void copy_bytes(void* destination, Device destination_device, const void* source, Device source_device,
                       std::size_t bytes) {
  if (bytes == 0) return;
  if (destination_device == Device::cpu && source_device == Device::cpu) {
    std::memcpy(destination, source, bytes);
    return;
  }
  if constexpr (cuda_compiled) {
    if (destination_device == Device::cpu) cuda::copy_device_to_host(destination, source, bytes);
    else if (source_device == Device::cpu) cuda::copy_host_to_device(destination, source, bytes);
    else cuda::copy_device_to_device(destination, source, bytes);
  } else {
    no_cuda_backend("Tensor copy");
  }
}
}  // namespace detail

template <typename T>
class Tensor {
  static_assert(std::is_arithmetic<T>::value, "Tensor<T> holds arithmetic types");

 public:
  using value_type = T;
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using MatrixMap = Eigen::Map<Matrix, Eigen::Aligned64>;
  using ConstMatrixMap = Eigen::Map<const Matrix, Eigen::Aligned64>;
  using VectorMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Aligned64>;
  using ConstVectorMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Aligned64>;

  Tensor() = default;
  // A zero-filled tensor of the given shape.
  explicit Tensor(const Shape& shape) { resize(shape); }  // a new allocation is zeroed
  Tensor(std::initializer_list<std::int64_t> dims) : Tensor(Shape(dims)) {}
  // A zero-filled tensor of the given shape on `device`.
  Tensor(const Shape& shape, Device device) { resize(shape, device); }

  // A deep copy, on the device of `other`.
  Tensor(const Tensor& other) : Tensor() { *this = other; }
  Tensor& operator=(const Tensor& other) {
    if (this != &other) {
      resize(other.shape_, other.device_);
      detail::copy_bytes(data(), device_, other.data(), other.device_, bytes());
    }
    return *this;
  }
  Tensor(Tensor&& other) noexcept { swap(other); }
  Tensor& operator=(Tensor&& other) noexcept {
    Tensor(std::move(other)).swap(*this);
    return *this;
  }
  void swap(Tensor& other) noexcept {
    std::swap(shape_, other.shape_);
    std::swap(storage_, other.storage_);
    std::swap(capacity_, other.capacity_);
    std::swap(device_, other.device_);
  }

  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  std::int64_t dim(int axis) const { return shape_[axis]; }
  std::int64_t size() const { return shape_.numel(); }
  bool empty() const { return size() == 0; }
  Device device() const { return device_; }
  bool is_cuda() const { return device_ == Device::cuda; }

  T* data() { return static_cast<T*>(storage_.get()); }
  const T* data() const { return static_cast<const T*>(storage_.get()); }
  T* begin() { return data(); }
  T* end() { return data() + size(); }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size(); }

  T& operator[](std::int64_t i) { return data()[i]; }
  const T& operator[](std::int64_t i) const { return data()[i]; }

  // Element access by index per dimension, e.g. x(n, c, h, w). Unchecked, like Eigen's operator().
  template <typename... I>
  T& operator()(I... index) { return data()[offset(index...)]; }
  template <typename... I>
  const T& operator()(I... index) const { return data()[offset(index...)]; }
  // The same with bounds checks; throws minicnn::error.
  template <typename... I>
  T& at(I... index) { return data()[checked_offset(index...)]; }
  template <typename... I>
  const T& at(I... index) const { return data()[checked_offset(index...)]; }

  // Gives the tensor a new shape. The allocation is kept when the new size fits in it; the
  // contents are then unspecified (callers overwrite them). New allocations are zeroed.
  Tensor& resize(const Shape& shape) {
    const std::int64_t n = shape.numel();
    if (n > capacity_) {
      const std::size_t new_bytes = sizeof(T) * static_cast<std::size_t>(n);
      // Allocates before releasing the old buffer: a failed allocation leaves the tensor as it was.
      storage_ = Storage(detail::allocate_zeroed(new_bytes, device_), detail::StorageFree{device_, new_bytes});
      capacity_ = n;
    }
    shape_ = shape;
    return *this;
  }
  // The same on `device`: when the tensor lives elsewhere its buffer is released, not copied
  // (the contents are unspecified anyway). Ops use it to put outputs where their inputs are.
  // Throws, leaving the tensor unchanged, when the device cannot be used.
  Tensor& resize(const Shape& shape, Device device) {
    if (device == device_) return resize(shape);
    if (device == Device::cuda && !cuda_compiled) detail::no_cuda_backend("Tensor");
    Tensor placed;
    placed.device_ = device;
    placed.resize(shape);
    swap(placed);
    return *this;
  }

  // Moves the contents to `device` (a no-op when they are there already).
  Tensor& to(Device device) {
    if (device != device_) {
      Tensor moved;
      moved.resize(shape_, device);
      detail::copy_bytes(moved.data(), device, data(), device_, bytes());
      swap(moved);
    }
    return *this;
  }
  // A copy of this tensor on `device`.
  Tensor copy_to(Device device) const {
    Tensor copy;
    copy.resize(shape_, device);
    detail::copy_bytes(copy.data(), device, data(), device_, bytes());
    return copy;
  }
  // Takes the shape and elements of `source`, wherever it lives, and keeps this tensor's device
  // (a host batch copied into a GPU tensor, or GPU logits read back into a host tensor).
  Tensor& copy_from(const Tensor& source) {
    if (this != &source) {
      resize(source.shape_);
      detail::copy_bytes(data(), device_, source.data(), source.device_, bytes());
    }
    return *this;
  }
  // Same elements, new shape; never copies. The element counts must agree.
  Tensor& reshape(const Shape& shape) {
    if (shape.numel() != size())
      throw error("Tensor::reshape: cannot view a tensor of shape " + shape_.str() + " (" +
                  std::to_string(size()) + " elements) as " + shape.str() + " (" +
                  std::to_string(shape.numel()) + " elements)");
    shape_ = shape;
    return *this;
  }

  Tensor& fill(T value) {
    if (device_ == Device::cpu) {
      std::fill(begin(), end(), value);
    } else if constexpr (cuda_compiled) {
      const T zero = T(0);  // compared bitwise: -0.0 is not all-zero bytes
      if (std::memcmp(&value, &zero, sizeof(T)) == 0) cuda::fill_zero(data(), bytes());
      else if (size() > 0) cuda::fill(data(), static_cast<std::size_t>(size()), &value, sizeof(T));
    }
    return *this;
  }
  Tensor& zeros() { return fill(T(0)); }
  // Fills from an explicit generator, or from a fresh one seeded with `seed`.
  Tensor& uniform(T low, T high, Generator& gen) {
    require_host("Tensor::uniform");
    for (T& v : *this) v = static_cast<T>(gen.uniform(static_cast<double>(low), static_cast<double>(high)));
    return *this;
  }
  Tensor& uniform(T low, T high, std::uint64_t seed) {
    Generator gen(seed);
    return uniform(low, high, gen);
  }
  Tensor& normal(T mean, T stddev, Generator& gen) {
    require_host("Tensor::normal");
    for (T& v : *this) v = static_cast<T>(static_cast<double>(mean) + static_cast<double>(stddev) * gen.normal());
    return *this;
  }
  Tensor& normal(T mean, T stddev, std::uint64_t seed) {
    Generator gen(seed);
    return normal(mean, stddev, gen);
  }

  // A tensor of another scalar type with the same shape and converted values, on the same
  // device (a GPU tensor is converted on the host: a rare, slow path).
  template <typename U>
  Tensor<U> cast() const {
    if (device_ != Device::cpu) {
      Tensor<U> converted = copy_to(Device::cpu).template cast<U>();
      converted.to(device_);
      return converted;
    }
    Tensor<U> out;
    out.resize(shape_);
    std::transform(begin(), end(), out.begin(), [](T v) { return static_cast<U>(v); });
    return out;
  }

  // Eigen views for GEMMs: rows = first dimension, columns = the rest (row-major). Host only.
  MatrixMap matrix() { return MatrixMap(host_data("Tensor::matrix"), rows(), cols()); }
  ConstMatrixMap matrix() const { return ConstMatrixMap(host_data("Tensor::matrix"), rows(), cols()); }
  VectorMap vector() { return VectorMap(host_data("Tensor::vector"), size()); }
  ConstVectorMap vector() const { return ConstVectorMap(host_data("Tensor::vector"), size()); }

 private:
  using Storage = std::unique_ptr<void, detail::StorageFree>;

  std::size_t bytes() const { return sizeof(T) * static_cast<std::size_t>(size()); }
  void require_host(const char* what) const {
    if (device_ != Device::cpu)
      throw error(std::string(what) + ": the tensor " + shape_.str() + " lives on the GPU; copy it to the CPU first "
                  "(copy_to(Device::cpu))");
  }
  T* host_data(const char* what) {
    require_host(what);
    return data();
  }
  const T* host_data(const char* what) const {
    require_host(what);
    return data();
  }

  Eigen::Index rows() const { return rank() == 0 ? 0 : static_cast<Eigen::Index>(dim(0)); }
  Eigen::Index cols() const { return rank() == 0 || dim(0) == 0 ? 0 : static_cast<Eigen::Index>(size() / dim(0)); }

  template <typename... I>
  std::int64_t offset(I... index) const {
    const std::int64_t idx[] = {static_cast<std::int64_t>(index)...};
    std::int64_t off = 0;
    for (std::size_t a = 0; a < sizeof...(I); ++a) off = off * shape_[static_cast<int>(a)] + idx[a];
    return off;
  }
  template <typename... I>
  std::int64_t checked_offset(I... index) const {
    const std::int64_t idx[] = {static_cast<std::int64_t>(index)...};
    require_host("Tensor::at");
    if (static_cast<int>(sizeof...(I)) != rank())
      throw error("Tensor::at: " + std::to_string(sizeof...(I)) + " indices for a tensor of shape " + shape_.str());
    for (std::size_t a = 0; a < sizeof...(I); ++a)
      if (idx[a] < 0 || idx[a] >= shape_[static_cast<int>(a)])
        throw error("Tensor::at: index " + std::to_string(idx[a]) + " out of range for dimension " +
                    std::to_string(a) + " of shape " + shape_.str());
    return offset(index...);
  }

  Shape shape_;
  Storage storage_;
  std::int64_t capacity_ = 0;
  Device device_ = Device::cpu;
};

// Throws unless the two shapes are equal; `what` names the operation for the message.
inline void check_same_shape(const Shape& expected, const Shape& found, const std::string& what) {
  if (expected != found)
    throw error(what + ": expected shape " + expected.str() + ", found " + found.str());
}
// The same with a C-string label: builds no std::string unless the check fails (layers call it
// every step, and a training step must not allocate).
inline void check_same_shape(const Shape& expected, const Shape& found, const char* what) {
  if (expected != found) check_same_shape(expected, found, std::string(what));
}

}  // namespace minicnn
