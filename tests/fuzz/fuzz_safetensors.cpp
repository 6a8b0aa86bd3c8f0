// libFuzzer target for the safetensors reader (header length, JSON header, layout checks).
// Built and run by tests/fuzz/run_fuzzers.sh:
//   clang++ -fsanitize=fuzzer,address,undefined ... tests/fuzz/fuzz_safetensors.cpp
// Seeds: tests/fuzz/corpus/fuzz_safetensors/ (tests/fuzz/make_safetensors_corpus.py); every
// crash found goes to tests/fuzz/regressions/fuzz_safetensors/, which the normal test suite
// replays.
#include <cstddef>
#include <cstdint>

#include "fuzz_safetensors_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  minicnn::fuzz::run_safetensors_input(data, size);
  return 0;
}
