// minicnn_benchmarks: main() adds the build flags, SIMD level and the measured FMA peak to the
// benchmark context, then runs the benchmarks of every bench_*.cpp.
//
//   minicnn_benchmarks --export-onnx=PATH   writes the FashionCNN that BM_Inference runs (seed 0)
//                                           as ONNX and exits: ONNX Runtime's side of
//                                           compare_pytorch.py's inference comparison.
#include <benchmark/benchmark.h>

#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "bench_common.hpp"
#include "minicnn/config.hpp"
#include "minicnn/io/onnx.hpp"
#include "minicnn/models/fashion_cnn.hpp"
#include "minicnn/ops/cpu/gemm.hpp"

#ifndef MINICNN_BENCH_FLAGS
#define MINICNN_BENCH_FLAGS "unknown"
#endif

int main(int argc, char** argv) {
  const char* const export_flag = "--export-onnx=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], export_flag, std::strlen(export_flag)) != 0) continue;
    try {
      minicnn::models::FashionCNN<float> model(0);
      model.eval();
      minicnn::io::export_onnx(model, argv[i] + std::strlen(export_flag));
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "minicnn_benchmarks: " << e.what() << "\n";
      return 1;
    }
  }
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
