#pragma once
// A layer argument that PyTorch accepts as one int or as a pair (height, width):
// kernel_size=3 or kernel_size=(5, 3). Converts implicitly from one int (both axes) and from a
// braced pair {5, 3}, and remembers which form it was given in, because PyTorch's repr prints
// it back in that form (MaxPool2d(kernel_size=2, ...) but MaxPool2d(kernel_size=(2, 2), ...)).
#include <cstdint>
#include <string>

namespace minicnn {

struct IntPair {
  std::int64_t height = 0, width = 0;
  bool is_scalar = true;  // given as one int

  IntPair(std::int64_t both) : height(both), width(both) {}  // NOLINT(google-explicit-constructor): 3 -> (3, 3)
  IntPair(std::int64_t height_value, std::int64_t width_value)
      : height(height_value), width(width_value), is_scalar(false) {}

  bool operator==(const IntPair& other) const { return height == other.height && width == other.width; }
  bool operator!=(const IntPair& other) const { return !(*this == other); }

  // "(5, 3)", whatever the form it was given in.
  std::string pair_string() const { return "(" + std::to_string(height) + ", " + std::to_string(width) + ")"; }
  // "3" when given as one int, else "(5, 3)": PyTorch's repr of an argument stored as given.
  std::string as_given_string() const { return is_scalar ? std::to_string(height) : pair_string(); }
};

}  // namespace minicnn
