// minicnn_benchmarks: main() adds the build flags, SIMD level and the measured FMA peak to the
// benchmark context, then runs the benchmarks of every bench_*.cpp.
#include <benchmark/benchmark.h>

#include <string>

#include "bench_common.hpp"
#include "minicnn/config.hpp"
#include "minicnn/ops/cpu/gemm.hpp"

#ifndef MINICNN_BENCH_FLAGS
#define MINICNN_BENCH_FLAGS "unknown"
#endif

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  minicnn::set_num_threads(2);
  benchmark::AddCustomContext("minicnn", minicnn::build_info());
  benchmark::AddCustomContext("simd_level", minicnn::simd_level());
  benchmark::AddCustomContext("gemm_kernel", minicnn::ops::cpu::gemm_offsets_uses_avx512<float>()
                                                 ? "AVX-512 intrinsics micro-kernel"
                                                 : "portable C++ micro-kernel");
  benchmark::AddCustomContext("build_flags", MINICNN_BENCH_FLAGS);
  benchmark::AddCustomContext("fma_peak_gflops_1_thread", std::to_string(minicnn::bench::peak_gflops(1)));
  benchmark::AddCustomContext("fma_peak_gflops_2_threads", std::to_string(minicnn::bench::peak_gflops(2)));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
