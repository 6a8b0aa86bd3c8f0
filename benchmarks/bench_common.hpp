#pragma once
// Shared by the benchmark files: the measured FMA peak (the denominator of every "% of peak"),
// and a helper that turns a timed loop into GFLOP/s counters.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>

#include "minicnn/config.hpp"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace minicnn::bench {

// Runs `iterations` rounds of 16 independent FMA chains on the widest vectors this build has
// (AVX-512, else AVX2, else scalar) on each of `threads` threads. Returns the FLOPs done.
inline double fma_burn(std::int64_t iterations, int threads) {
#if defined(__AVX512F__)
  using Vector = __m512;
  constexpr int lanes = 16;
  auto fill = [](float x) { return _mm512_set1_ps(x); };
  auto fma = [](Vector a, Vector b, Vector c) { return _mm512_fmadd_ps(a, b, c); };
  auto first_lane = [](Vector v) { return _mm512_cvtss_f32(v); };
#elif defined(__AVX2__) && defined(__FMA__)
  using Vector = __m256;
  constexpr int lanes = 8;
  auto fill = [](float x) { return _mm256_set1_ps(x); };
  auto fma = [](Vector a, Vector b, Vector c) { return _mm256_fmadd_ps(a, b, c); };
  auto first_lane = [](Vector v) { return _mm256_cvtss_f32(v); };
#else
  using Vector = float;
  constexpr int lanes = 1;
  auto fill = [](float x) { return x; };
  auto fma = [](Vector a, Vector b, Vector c) { return a * b + c; };
  auto first_lane = [](Vector v) { return v; };
#endif
  constexpr int chains = 16;
  float sink = 0.0f;
  MINICNN_OMP(parallel num_threads(threads) reduction(+ : sink))
  {
    Vector acc[chains];
    for (int j = 0; j < chains; ++j) acc[j] = fill(static_cast<float>(j) * 1e-3f);
    const Vector scale = fill(0.9999999f), shift = fill(1e-7f);
    for (std::int64_t i = 0; i < iterations; ++i)
      for (int j = 0; j < chains; ++j) acc[j] = fma(acc[j], scale, shift);
    float total = 0.0f;
    for (int j = 0; j < chains; ++j) total += first_lane(acc[j]);
    sink += total;
  }
  benchmark::DoNotOptimize(sink);
#if !defined(MINICNN_WITH_OPENMP)
  threads = 1;
#endif
  return 2.0 * chains * lanes * static_cast<double>(iterations) * threads;
}

// The machine's fp32 FMA peak in GFLOP/s on `threads` threads, measured once (best of 10,
// after an untimed round that starts the OpenMP threads: without it a cold second thread once
// halved the 2-thread figure, and the percentages of peak came out above 100).
inline double peak_gflops(int threads) {
  static std::map<int, double> cache;
  auto found = cache.find(threads);
  if (found != cache.end()) return found->second;
  fma_burn(1 << 20, threads);
  double best = 0.0;
  for (int rep = 0; rep < 10; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    const double flops = fma_burn(1 << 20, threads);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, flops / seconds * 1e-9);
  }
  return cache[threads] = best;
}

// Wall-clock timer over a benchmark loop (the kernels run on OpenMP threads, so CPU time of the
// main thread would undercount).
class WallTimer {
 public:
  WallTimer() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

// GFLOP/s and % of the measured peak for `threads`, from FLOPs per iteration and the loop's time.
inline void report_flops(benchmark::State& state, double flops_per_iteration, double seconds, int threads) {
  const double gflops = flops_per_iteration * static_cast<double>(state.iterations()) / seconds * 1e-9;
  state.counters["GFLOP/s"] = gflops;
  state.counters["pct_peak"] = 100.0 * gflops / peak_gflops(threads);
}

}  // namespace minicnn::bench
