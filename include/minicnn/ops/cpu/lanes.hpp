#pragma once
// Lane masks for the AVX-512 loops of the CPU backend, which handle the ragged end of a row
// with masked loads and stores.
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>

namespace minicnn::ops::cpu {

// The mask of the first n of 16 lanes: none for n <= 0, all for n >= 16.
inline __mmask16 first_lanes(std::int64_t n) {
  return static_cast<__mmask16>(n <= 0 ? 0u : n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}

}  // namespace minicnn::ops::cpu
#endif
