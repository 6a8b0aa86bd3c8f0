#pragma once
// Helpers of the CUDA suite: random host tensors, GPU-vs-CPU comparison, guard checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "minicnn/device.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::testing {

// The bound for float; double kernels agree far more closely.
template <typename T>
constexpr double gpu_tolerance() {
  return std::is_same<T, double>::value ? 1e-10 : 1e-4;
}

template <typename T>
Tensor<T> random_tensor(const Shape& shape, std::uint64_t seed, double low = -1.0, double high = 1.0) {
  Tensor<T> t(shape);
  t.uniform(static_cast<T>(low), static_cast<T>(high), seed);
  return t;
}

// max |found - expected| / max |expected| (norm-wise), `found` read back from wherever it lives.
template <typename T>
double relative_error(const Tensor<T>& found, const Tensor<T>& expected) {
  const Tensor<T> host = found.copy_to(Device::cpu);
  REQUIRE(host.shape() == expected.shape());
  // Written so that a NaN anywhere makes the result NaN (std::max would drop it), and a NaN
  // result fails every `error <= tolerance` check.
  double max_difference = 0.0, max_expected = 0.0;
  for (std::int64_t i = 0; i < expected.size(); ++i) {
    const double difference = std::abs(static_cast<double>(host[i]) - static_cast<double>(expected[i]));
    if (difference > max_difference || std::isnan(difference)) max_difference = difference;
    const double magnitude = std::abs(static_cast<double>(expected[i]));
    if (magnitude > max_expected || std::isnan(magnitude)) max_expected = magnitude;
  }
  return max_expected > 0.0 ? max_difference / max_expected : max_difference;
}

template <typename T>
void check_close(const Tensor<T>& gpu, const Tensor<T>& cpu, const std::string& what) {
  CHECK(gpu.device() == Device::cuda);
  const double error = relative_error(gpu, cpu);
  INFO(what << ": relative error " << error << " (tolerance " << gpu_tolerance<T>() << ")");
  CHECK(error <= gpu_tolerance<T>());
}

template <typename T>
void check_equal(const Tensor<T>& gpu, const Tensor<T>& cpu, const std::string& what) {
  const Tensor<T> host = gpu.copy_to(Device::cpu);
  REQUIRE(host.shape() == cpu.shape());
  INFO(what << ": expected bit-identical results");
  CHECK(std::equal(host.begin(), host.end(), cpu.begin()));
}

// No kernel wrote past the end of any live device buffer.
inline void check_guards() { CHECK_NOTHROW(cuda::check_guards()); }

}  // namespace minicnn::testing
