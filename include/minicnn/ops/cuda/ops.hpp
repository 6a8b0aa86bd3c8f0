#pragma once
// The CUDA backend's ops, the counterparts of ops/cpu/*: free functions on raw device pointers,
// declared here in plain C++ (no CUDA header) and defined, for T = float and double, by the
// minicnn_cuda library (src/cuda/*.cu, compiled by nvcc). Only ops/dispatch.hpp includes this
// file, in every build: a CPU-only build compiles the call sites and discards them (see there).
// Layers never see it.
//
// Conventions are the CPU ops': shapes as in the comments, outputs ASSIGNED, parameter
// gradients ACCUMULATED (+=), a null grad_input or bias skips that work. Every pointer is device
// memory except where a name says host_. Work is queued on the default stream; calls that
// return a value to the host (softmax_cross_entropy) wait for it. Errors throw minicnn::error.
//
// Results are deterministic run to run: no atomics, fixed reduction orders, cuBLAS in its
// default (non-TF32) math mode.
#include <cstdint>
#include <type_traits>

#include "minicnn/ops/kernels/activation.hpp"
#include "minicnn/ops/kernels/batchnorm.hpp"
#include "minicnn/ops/kernels/conv.hpp"
#include "minicnn/ops/kernels/optim.hpp"
#include "minicnn/ops/kernels/pooling.hpp"

namespace minicnn::ops::cuda {

// The scalar types the library is instantiated for.
template <typename T>
inline constexpr bool supports = std::is_same<T, float>::value || std::is_same<T, double>::value;

// C[M, N] = alpha op(A) op(B) + beta C, row-major with leading dimensions, as cpu::gemm.
template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
          std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc);

// All g.batch images at once: input [N, C_in, H, W] -> columns [N, groups, C_in / groups K_h K_w,
// H_out W_out], and the adjoint, columns -> input (ASSIGNED).
template <typename T>
void im2col(const Conv2dGeometry& g, const T* input, T* columns);
template <typename T>
void col2im(const Conv2dGeometry& g, const T* columns, T* input);

// input [N, C_in, H, W], weight [C_out, C_in / groups, K_h, K_w], bias [C_out] or null -> output [N, C_out, H_out,
// W_out].
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* input, const T* weight, const T* bias, T* output);
// grad_input (assigned, skipped when null); grad_weight += ...; grad_bias += ... (skipped when null).
// (The ReLU gradient of an input that is a ReLU's output is applied by ops::conv2d_backward.)
template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const T* input, const T* weight, const T* grad_output, T* grad_input,
                     T* grad_weight, T* grad_bias);

// input [N, in], weight [out, in], bias [out] or null -> output [N, out].
template <typename T>
void linear_forward(std::int64_t batch, std::int64_t in_features, std::int64_t out_features, const T* input,
                    const T* weight, const T* bias, T* output);
template <typename T>
void linear_backward(std::int64_t batch, std::int64_t in_features, std::int64_t out_features, const T* input,
                     const T* weight, const T* grad_output, T* grad_input, T* grad_weight, T* grad_bias);

template <typename T>
void relu_forward(std::int64_t count, const T* input, T* output);
template <typename T>
void relu_backward(std::int64_t count, const T* output, const T* grad_output, T* grad_input);

// Element-wise activation `kind` with leaky_relu's slope `parameter`: output [count] may be
// input; grad_input [count] (assigned) may be grad_output. Bodies: ops/kernels/activation.hpp.
template <typename T>
void activation_forward(Activation kind, T parameter, std::int64_t count, const T* input, T* output);
template <typename T>
void activation_backward(Activation kind, T parameter, std::int64_t count, const T* input, const T* output,
                         const T* grad_output, T* grad_input);

// output [count] = a + b; output may alias a or b.
template <typename T>
void add(std::int64_t count, const T* a, const T* b, T* output);

// input [planes, plane_size], scale [planes] -> output = input * scale[plane].
// Backward: grad_input = grad_output * scale[plane] (assigned, skipped when null); grad_scale
// [planes] = the plane's sum of grad_output * input (ASSIGNED), one thread per plane in index
// order, as the CPU sums it.
template <typename T>
void channel_scale_forward(std::int64_t planes, std::int64_t plane_size, const T* input, const T* scale, T* output);
template <typename T>
void channel_scale_backward(std::int64_t planes, std::int64_t plane_size, const T* input, const T* scale,
                            const T* grad_output, T* grad_input, T* grad_scale);

// Element i uses counter first_counter + i of `seed`: the CPU's mask, bit for bit.
template <typename T>
void dropout_forward(std::int64_t count, double p, std::uint64_t seed, std::uint64_t first_counter, const T* input,
                     T* output, T* mask);
template <typename T>
void dropout_backward(std::int64_t count, const T* mask, const T* grad_output, T* grad_input);

// argmax may be null (a forward pass without gradients).
template <typename T>
void maxpool2d_forward(const Pool2dGeometry& g, const T* input, T* output, std::int32_t* argmax);
// output: the forward output, to apply the ReLU gradient of the input (null: none; see
// cpu::maxpool2d_backward).
template <typename T>
void maxpool2d_backward(const Pool2dGeometry& g, const T* grad_output, const std::int32_t* argmax, T* grad_input,
                        const T* output = nullptr);

template <typename T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* input, T* output);
template <typename T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* grad_output, T* grad_input);

// input [N, C, L]; weight, bias, running_mean, running_var, save_mean, save_invstd [C]; the
// contract of cpu::batch_norm_forward / batch_norm_backward (null weight, bias, running
// statistics, grad_input, grad_weight, grad_bias skip them). Channel sums are taken in double,
// one block per channel in a fixed order: deterministic, but not the CPU's order.
template <typename T>
void batch_norm_forward(const BatchNormGeometry& g, const T* input, const T* weight, const T* bias, T* running_mean,
                        T* running_var, bool use_batch_stats, double momentum, double eps, T* output, T* save_mean,
                        T* save_invstd);
template <typename T>
void batch_norm_backward(const BatchNormGeometry& g, const T* input, const T* weight, const T* save_mean,
                         const T* save_invstd, const T* grad_output, bool batch_stats, T* grad_input, T* grad_weight,
                         T* grad_bias);
template <typename T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* input, T* output);
template <typename T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* grad_output, T* grad_input);

template <typename T>
void adaptive_max_pool2d_forward(const Pool2dGeometry& g, const T* input, T* output, std::int32_t* argmax);
template <typename T>
void adaptive_max_pool2d_backward(const Pool2dGeometry& g, const T* grad_output, const std::int32_t* argmax,
                                  T* grad_input);

// logits [N, classes], host_targets [N] (host memory) -> mean loss; grad_logits [N, classes].
// Row losses are summed on the host in row order, as the CPU op does.
template <typename T>
double softmax_cross_entropy(std::int64_t batch, std::int64_t classes, const T* logits, const int* host_targets,
                             double label_smoothing, T* grad_logits);

template <typename T>
void adam_update(std::int64_t count, const kernels::AdamCoefficients<T>& coefficients, T* value, const T* grad,
                 T* exp_avg, T* exp_avg_sq);
template <typename T>
void sgd_update(std::int64_t count, const kernels::SgdCoefficients<T>& coefficients, T* value, const T* grad,
                T* momentum_buffer);

}  // namespace minicnn::ops::cuda
