#pragma once
// What the safetensors fuzz target does with one input; shared by
// tests/fuzz/fuzz_safetensors.cpp (libFuzzer) and tests/test_safetensors.cpp (which replays
// tests/fuzz/regressions/fuzz_safetensors/ and the seed corpus).
//
// minicnn::error is the expected outcome for malformed input and is swallowed; anything else
// escapes: a crash for libFuzzer, a failure for the test suite. An input that parses must
// survive a round trip: written again (any dtype, same order, same metadata) and parsed, it
// gives the same tensors, bytes and metadata; its F32/F64 tensors that a Tensor can hold
// are loaded too.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "minicnn/io/safetensors.hpp"

namespace minicnn::fuzz {

inline void check_round_trip(const io::SafetensorsFile& file) {
  std::vector<io::TensorRef> refs;
  for (const io::TensorInfo& entry : file.tensors())
    refs.push_back({entry.name, entry.dtype, entry.shape, file.raw_data(entry)});
  const std::string bytes = io::serialize_safetensors(refs, file.metadata());
  const io::SafetensorsFile again = io::SafetensorsFile::parse(bytes.data(), bytes.size(), "fuzz-round-trip");
  if (again.metadata() != file.metadata()) throw std::logic_error("fuzz_safetensors: metadata changed in a round trip");
  if (again.tensors().size() != file.tensors().size())
    throw std::logic_error("fuzz_safetensors: tensor count changed in a round trip");
  for (std::size_t i = 0; i < file.tensors().size(); ++i) {
    const io::TensorInfo& a = file.tensors()[i];
    const io::TensorInfo& b = again.tensors()[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.byte_size() != b.byte_size() ||
        (a.byte_size() > 0 && std::memcmp(file.raw_data(a), again.raw_data(b), a.byte_size()) != 0))
      throw std::logic_error("fuzz_safetensors: tensor " + a.name + " changed in a round trip");
  }
}

inline void run_safetensors_input(const std::uint8_t* data, std::size_t size) {
  try {
    const io::SafetensorsFile file = io::SafetensorsFile::parse(data, size, "fuzz-input");
    check_round_trip(file);
    for (const io::TensorInfo& entry : file.tensors()) {
      try {
        if (entry.dtype == io::Dtype::f32) (void)file.tensor<float>(entry.name);
        if (entry.dtype == io::Dtype::f64) (void)file.tensor<double>(entry.name);
      } catch (const minicnn::error&) {
        // Rank 0 or above 4: refused by design, the other tensors are still tried.
      }
    }
  } catch (const minicnn::error&) {
  }
}

}  // namespace minicnn::fuzz
