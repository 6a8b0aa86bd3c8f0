#pragma once
// Which algorithm the CPU backend's 3x3 stride-1 convolutions use: the one switch of the fast
// paths (docs/design.md, "Winograd").
//
//   automatic     (the default) Winograd for inference (a Conv2d in eval mode) where the layer
//                 qualifies, F(4x4, 3x3) or F(2x2, 3x3) by the rule of ops/cpu/winograd.hpp;
//                 im2col + GEMM for training, so a training run has the exact-parity bits
//   im2col        im2col + GEMM everywhere (the reference every fast path is tested against)
//   winograd      Winograd by the same rule, in training's forward pass too (backward stays
//                 im2col + GEMM: the gradients are those of the exact convolution)
//   winograd_2x2, winograd_4x4   that tile size wherever a layer qualifies, training included
//
// The environment variable MINICNN_CONV_ALGO (auto, im2col, winograd, winograd2x2, winograd4x4)
// gives the starting value; set_conv_algorithm() overrides it.
#include <atomic>
#include <cstdlib>
#include <string>

#include "minicnn/error.hpp"

namespace minicnn {

enum class ConvAlgorithm { automatic, im2col, winograd, winograd_2x2, winograd_4x4 };

inline const char* conv_algorithm_name(ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::im2col: return "im2col";
    case ConvAlgorithm::winograd: return "winograd";
    case ConvAlgorithm::winograd_2x2: return "winograd2x2";
    case ConvAlgorithm::winograd_4x4: return "winograd4x4";
    default: return "auto";
  }
}

// The algorithm named `text` (one of the names above); `where` says who gave it, for the error.
inline ConvAlgorithm parse_conv_algorithm(const std::string& text, const std::string& where) {
  for (ConvAlgorithm algorithm : {ConvAlgorithm::automatic, ConvAlgorithm::im2col, ConvAlgorithm::winograd,
                                  ConvAlgorithm::winograd_2x2, ConvAlgorithm::winograd_4x4})
    if (text == conv_algorithm_name(algorithm)) return algorithm;
  throw error(where + ": expected auto, im2col, winograd, winograd2x2 or winograd4x4, got '" + text + "'");
}

namespace detail {
// The environment's choice, read once (a bad value throws each time it is asked for).
inline ConvAlgorithm conv_algorithm_from_environment() {
  static const ConvAlgorithm algorithm = [] {
    const char* text = std::getenv("MINICNN_CONV_ALGO");
    return text && *text ? parse_conv_algorithm(text, "environment variable MINICNN_CONV_ALGO")
                         : ConvAlgorithm::automatic;
  }();
  return algorithm;
}
// set_conv_algorithm()'s choice, or -1: none yet (atomic: threads may read it while one sets it).
inline std::atomic<int>& conv_algorithm_override() {
  static std::atomic<int> algorithm{-1};
  return algorithm;
}
}  // namespace detail

// Overrides MINICNN_CONV_ALGO (which is then never read, so a bad value in it no longer matters).
inline void set_conv_algorithm(ConvAlgorithm algorithm) {
  detail::conv_algorithm_override().store(static_cast<int>(algorithm), std::memory_order_relaxed);
}
inline ConvAlgorithm conv_algorithm() {
  const int chosen = detail::conv_algorithm_override().load(std::memory_order_relaxed);
  return chosen >= 0 ? static_cast<ConvAlgorithm>(chosen) : detail::conv_algorithm_from_environment();
}

}  // namespace minicnn
