#pragma once
// What the IDX fuzz target does with one input; shared by tests/fuzz/fuzz_idx.cpp (libFuzzer)
// and tests/test_idx.cpp (which replays tests/fuzz/regressions/fuzz_idx/ and the seed corpus).
//
// The input is parsed as given (raw IDX or a gzip file), and, unless it already is gzip, also
// after wrapping it in gzip, so that mutations of the IDX structure reach the gzip path too
// (random mutations of a gzip file rarely survive its CRC). minicnn::error is the expected
// outcome for malformed input and is swallowed; anything else escapes: a crash for libFuzzer,
// a failure for the test suite. For raw input that parses, the writer must reproduce it byte
// for byte (a raw IDX file has exactly one encoding).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "minicnn/data/idx.hpp"

namespace minicnn::fuzz {

inline void parse_idx_checked(const std::uint8_t* data, std::size_t size, bool raw) {
  try {
    const data::IdxArray array = data::parse_idx(data, size, "fuzz-input");
    if (raw) {
      const std::vector<unsigned char> again = data::encode_idx(array);
      if (again.size() != size || (size > 0 && std::memcmp(again.data(), data, size) != 0))
        throw std::logic_error("fuzz_idx: re-encoding a parsed raw IDX input does not reproduce it");
    }
    // Exercise the checked conversions too (they throw minicnn::error for values out of range).
    if (array.size() <= (1 << 16)) {
      (void)array.to<float>();
      (void)array.to<std::uint8_t>();
    }
  } catch (const minicnn::error&) {
  }
}

inline void run_idx_input(const std::uint8_t* data, std::size_t size) {
  const bool is_gzip = size >= 2 && data[0] == 0x1F && data[1] == 0x8B;
  parse_idx_checked(data, size, !is_gzip);
  if (!is_gzip) {
    std::vector<unsigned char> wrapped;
    data::detail::append_gzip(data, size, wrapped, "fuzz-input");
    parse_idx_checked(wrapped.data(), wrapped.size(), false);
  }
}

}  // namespace minicnn::fuzz
