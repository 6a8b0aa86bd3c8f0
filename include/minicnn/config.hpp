#pragma once
// Version, feature macros and the one thread-control API.
//
// Feature macros reach users only through the CMake target's INTERFACE compile definitions:
//   MINICNN_WITH_OPENMP  kernels run in parallel (set_num_threads is honoured) on minicnn's thread
//                        pool (thread_pool.hpp); OpenMP gives the default count (OMP_NUM_THREADS)
//   MINICNN_WITH_CUDA    the CUDA backend is compiled in (see ops/dispatch.hpp)
#include <cstdint>
#include <sstream>
#include <string>

#include <Eigen/Core>

#include "minicnn/error.hpp"

#if defined(MINICNN_WITH_OPENMP)
#include <omp.h>
#endif

#define MINICNN_VERSION_MAJOR 0
#define MINICNN_VERSION_MINOR 1
#define MINICNN_VERSION_PATCH 0
#define MINICNN_VERSION_STRING "0.1.0"

// OpenMP pragmas go through this macro so that a build without OpenMP compiles them away
// silently instead of warning about unknown pragmas.
#define MINICNN_STRINGIFY_(x) #x
#if defined(MINICNN_WITH_OPENMP)
#define MINICNN_OMP(directive) _Pragma(MINICNN_STRINGIFY_(omp directive))
#else
#define MINICNN_OMP(directive)
#endif

namespace minicnn {

// Where a tensor's storage lives. Only the CPU exists unless MINICNN_WITH_CUDA is defined.
enum class Device { cpu, cuda };

inline const char* device_name(Device device) { return device == Device::cuda ? "cuda" : "cpu"; }

// Whether this build has the CUDA backend. This is the only place that reads the macro: every
// other file (the Tensor's storage, ops/dispatch.hpp) tests this constant with `if constexpr`,
// so a CPU-only build still compiles every CUDA call site and never references the backend's
// functions.
#if defined(MINICNN_WITH_CUDA)
inline constexpr bool cuda_compiled = true;
#else
inline constexpr bool cuda_compiled = false;
#endif

namespace detail {
inline int& requested_threads() {
  static int threads = 0;  // 0: not set, use OpenMP's default
  return threads;
}
}  // namespace detail

// Sets the number of threads every minicnn kernel uses. Eigen's own threading is switched off
// for good: our kernels parallelise over images and call single-threaded GEMMs inside
// (Eigen's threading collapses on our shapes, and nesting it in our threads oversubscribes).
inline void set_num_threads(int threads) {
  if (threads < 1)
    throw error("set_num_threads: expected a thread count >= 1, got " + std::to_string(threads));
  detail::requested_threads() = threads;
  Eigen::setNbThreads(1);
#if defined(MINICNN_WITH_OPENMP)
  omp_set_num_threads(threads);
#endif
}

// The number of threads kernels will use.
inline int num_threads() {
#if defined(MINICNN_WITH_OPENMP)
  return detail::requested_threads() > 0 ? detail::requested_threads() : omp_get_max_threads();
#else
  return 1;
#endif
}

namespace detail {
// Set by the thread pool (thread_pool.hpp) on each of its workers: 1, 2, ...; 0 on every other thread.
inline int& current_thread_index() {
  thread_local int index = 0;
  return index;
}
}  // namespace detail

// The index of the calling thread inside a minicnn parallel loop, in [0, num_threads()): 0 for the
// thread that started the loop (and outside loops), 1.. for the pool's workers.
inline int thread_index() { return detail::current_thread_index(); }

inline bool openmp_enabled() {
#if defined(MINICNN_WITH_OPENMP)
  return true;
#else
  return false;
#endif
}

// The widest SIMD instruction set this translation unit was compiled for.
inline const char* simd_level() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "AVX2+FMA";
#elif defined(__AVX__)
  return "AVX";
#elif defined(__SSE2__)
  return "SSE2";
#elif defined(__ARM_NEON)
  return "NEON";
#else
  return "scalar";
#endif
}

inline const char* compiler_name() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "g++ " __VERSION__;
#elif defined(_MSC_VER)
  return "MSVC";
#else
  return "unknown compiler";
#endif
}

// One line that says what this build uses: printed by the demo and the benchmarks at start.
inline std::string build_info() {
  std::ostringstream out;
  out << "minicnn " << MINICNN_VERSION_STRING << " | " << compiler_name() << " | SIMD "
      << simd_level() << " | " << num_threads() << " thread" << (num_threads() == 1 ? "" : "s")
      << (openmp_enabled() ? "" : " (built without MINICNN_WITH_OPENMP)") << " | CUDA "
      << (cuda_compiled ? "compiled in" : "off");
  return out.str();
}

}  // namespace minicnn
