// The CUDA suite's entry point: runs the Catch2 tests when a GPU is usable, and otherwise exits
// with 77 (CTest's SKIP_RETURN_CODE for this test) after one line that says why.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "minicnn/config.hpp"
#include "minicnn/device.hpp"
#include "minicnn/ops/dispatch.hpp"

int main(int argc, char* argv[]) {
  if (!minicnn::cuda_available()) {
    std::printf("SKIPPED: the CUDA suite needs a usable GPU: %s\n", minicnn::cuda::unavailable_reason().c_str());
    return 77;
  }
  std::printf("%s\n%s\n", minicnn::build_info().c_str(), minicnn::cuda_status().c_str());
  // Every device block allocated from here on is followed by guard bytes; the tests call
  // check_guards() after each op.
  minicnn::cuda::set_guard_checking(true);
  return Catch::Session().run(argc, argv);
}
