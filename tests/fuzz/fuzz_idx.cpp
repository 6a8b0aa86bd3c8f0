// libFuzzer target for the IDX reader (raw and gzip). Built and run by tests/fuzz/run_fuzzers.sh:
//   clang++ -fsanitize=fuzzer,address,undefined ... tests/fuzz/fuzz_idx.cpp -lz
// Seeds: tests/fuzz/corpus/fuzz_idx/; every crash found goes to tests/fuzz/regressions/fuzz_idx/,
// which the normal test suite replays.
#include <cstddef>
#include <cstdint>

#include "fuzz_idx_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  minicnn::fuzz::run_idx_input(data, size);
  return 0;
}
