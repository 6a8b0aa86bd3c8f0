#pragma once
// Bit-for-bit tensor equality for the tests: the same shape and the same bytes (so NaNs with
// the same payload compare equal and -0 differs from +0).
#include <cstddef>
#include <cstring>
#include <vector>

#include "minicnn/tensor.hpp"

namespace minicnn::testing {

template <typename T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0);
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), sizeof(T) * a.size()) == 0);
}

}  // namespace minicnn::testing
