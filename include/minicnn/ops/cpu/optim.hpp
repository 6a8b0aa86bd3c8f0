#pragma once
// Optimiser updates over one parameter tensor, parallel over elements. The per-element
// arithmetic is ops/kernels/optim.hpp's, shared with the CUDA backend; elements are
// independent, so the result does not depend on the thread count.
#include <cstdint>

#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/ops/kernels/optim.hpp"

namespace minicnn::ops::cpu {

// Below this many elements an update runs on the calling thread.
inline constexpr std::int64_t optimizer_parallel_threshold = std::int64_t{1} << 15;

template <typename T>
void adam_update(std::int64_t count, const kernels::AdamCoefficients<T>& coefficients, T* value, const T* grad,
                 T* exp_avg, T* exp_avg_sq) {
  parallel_for(count, optimizer_parallel_threshold, [&](std::int64_t i) {
    kernels::adam_update(coefficients, value[i], grad[i], exp_avg[i], exp_avg_sq[i]);
  });
}

template <typename T>
void sgd_update(std::int64_t count, const kernels::SgdCoefficients<T>& coefficients, T* value, const T* grad,
                T* momentum_buffer) {
  parallel_for(count, optimizer_parallel_threshold,
               [&](std::int64_t i) { kernels::sgd_update(coefficients, value[i], grad[i], momentum_buffer[i]); });
}

}  // namespace minicnn::ops::cpu
