#pragma once
// The ONE place that chooses a backend. Layers call ops::relu_forward(...) and friends with
// tensors; this file sends the call to cpu:: (or, when MINICNN_WITH_CUDA is defined and the
// tensors live on the GPU, to cuda::). No other file has a backend #ifdef.
#include <cstdint>

#include "minicnn/ops/cpu/conv.hpp"
#include "minicnn/ops/cpu/elementwise.hpp"
#include "minicnn/ops/cpu/linear.hpp"
#include "minicnn/ops/cpu/pooling.hpp"
#include "minicnn/ops/cpu/softmax.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn {

// Whether a CUDA device can be used by this build on this machine.
inline bool cuda_available() { return false; }

namespace ops {

template <typename T>
const T* data_or_null(const Tensor<T>* t) { return t && !t->empty() ? t->data() : nullptr; }
template <typename T>
T* data_or_null(Tensor<T>* t) { return t && !t->empty() ? t->data() : nullptr; }

template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>* bias,
                    Tensor<T>& output, Conv2dWorkspace<T>& ws) {
  cpu::conv2d_forward(g, input.data(), weight.data(), data_or_null(bias), output.data(), ws);
}

template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const Tensor<T>& input, const Tensor<T>& weight,
                     const Tensor<T>& grad_output, Tensor<T>* grad_input, Tensor<T>& grad_weight, Tensor<T>* grad_bias,
                     Conv2dWorkspace<T>& ws) {
  cpu::conv2d_backward(g, input.data(), weight.data(), grad_output.data(), data_or_null(grad_input),
                       grad_weight.data(), data_or_null(grad_bias), ws);
}

template <typename T>
void relu_forward(const Tensor<T>& input, Tensor<T>& output) {
  cpu::relu_forward(input.size(), input.data(), output.data());
}
template <typename T>
void relu_backward(const Tensor<T>& output, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
  cpu::relu_backward(output.size(), output.data(), grad_output.data(), grad_input.data());
}

template <typename T>
void maxpool2d_forward(const Pool2dGeometry& g, const Tensor<T>& input, Tensor<T>& output, Tensor<std::int32_t>& argmax) {
  cpu::maxpool2d_forward(g, input.data(), output.data(), argmax.data());
}
template <typename T>
void maxpool2d_backward(const Pool2dGeometry& g, const Tensor<T>& grad_output, const Tensor<std::int32_t>& argmax,
                        Tensor<T>& grad_input) {
  cpu::maxpool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data());
}

template <typename T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const Tensor<T>& input, Tensor<T>& output) {
  cpu::adaptive_avg_pool2d_forward(g, input.data(), output.data());
}
template <typename T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
  cpu::adaptive_avg_pool2d_backward(g, grad_output.data(), grad_input.data());
}

template <typename T>
void dropout_forward(double p, std::uint64_t seed, std::uint64_t first_counter, const Tensor<T>& input,
                     Tensor<T>& output, Tensor<T>& mask) {
  cpu::dropout_forward(input.size(), p, seed, first_counter, input.data(), output.data(), mask.data());
}
template <typename T>
void dropout_backward(const Tensor<T>& mask, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
  cpu::dropout_backward(mask.size(), mask.data(), grad_output.data(), grad_input.data());
}

// input [N, in], weight [out, in], bias [out] or null, output [N, out].
template <typename T>
void linear_forward(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>* bias, Tensor<T>& output) {
  cpu::linear_forward(input.dim(0), weight.dim(1), weight.dim(0), input.data(), weight.data(), data_or_null(bias),
                      output.data());
}
template <typename T>
void linear_backward(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& grad_output,
                     Tensor<T>* grad_input, Tensor<T>& grad_weight, Tensor<T>* grad_bias) {
  cpu::linear_backward(input.dim(0), weight.dim(1), weight.dim(0), input.data(), weight.data(), grad_output.data(),
                       data_or_null(grad_input), grad_weight.data(), data_or_null(grad_bias));
}

// logits [N, classes], targets [N] -> mean loss; grad_logits [N, classes].
template <typename T>
double softmax_cross_entropy(const Tensor<T>& logits, const int* targets, double label_smoothing,
                             Tensor<T>& grad_logits) {
  return cpu::softmax_cross_entropy(logits.dim(0), logits.dim(1), logits.data(), targets, label_smoothing,
                                    grad_logits.data());
}

}  // namespace ops
}  // namespace minicnn
