#pragma once
// The ONE place that chooses a backend. Layers call ops::relu_forward(...) and friends with
// tensors; this file sends the call to cpu:: or, when the tensors live on the GPU, to cuda::.
//
// The CUDA entry points (ops/cuda/ops.hpp, device.hpp) are declared in every build, and every
// call site below is compiled in every build: a GPU branch reads
// `if (on_gpu<T>(device)) { if constexpr (cuda_kernels<T>) return cuda::op(...); }`, so a
// CPU-only build parses and name-checks each CUDA call and discards it (nothing to link), and
// a CUDA build runs it. No file tests MINICNN_WITH_CUDA except config.hpp, which turns it into
// the constant cuda_compiled.
//
// Routing is by tensor: an op runs where its first input lives. Every other input (weights,
// accumulated gradients) must live there too, or the op throws minicnn::error naming both
// devices; outputs are moved there (Tensor::resize(shape, device): their contents are
// overwritten anyway). So a layer's buffers follow its input to the GPU and back, and layers
// never know which backend runs them.
#include <cstdint>
#include <string>

#include "minicnn/device.hpp"
#include "minicnn/ops/cpu/conv.hpp"
#include "minicnn/ops/cpu/elementwise.hpp"
#include "minicnn/ops/cpu/linear.hpp"
#include "minicnn/ops/cpu/optim.hpp"
#include "minicnn/ops/cpu/pooling.hpp"
#include "minicnn/ops/cpu/softmax.hpp"
#include "minicnn/ops/cuda/ops.hpp"
#include "minicnn/ops/kernels/conv.hpp"
#include "minicnn/ops/kernels/optim.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn {

// Whether a CUDA device can be used by this build on this machine: false without the CUDA
// backend, or when the runtime finds no device or driver.
inline bool cuda_available() {
  if constexpr (cuda_compiled) return cuda::device_count() > 0;
  return false;
}

// One line on the CUDA backend for logs and error messages: "CUDA: off (not compiled in)",
// "CUDA: NVIDIA H200, compute capability 9.0, ...", or "CUDA: compiled in, but no usable
// device: cudaGetDeviceCount failed: error 35 (cudaErrorInsufficientDriver: ...)".
inline std::string cuda_status() {
  if constexpr (cuda_compiled) {
    if (cuda::device_count() > 0) return "CUDA: " + cuda::device_description();
    return "CUDA: compiled in, but no usable device: " + cuda::unavailable_reason();
  }
  return "CUDA: off (not compiled in; configure with -DMINICNN_WITH_CUDA=ON)";
}

namespace ops {

// Whether this build has CUDA kernels for T tensors (float and double, with the backend).
template <typename T>
inline constexpr bool cuda_kernels = cuda_compiled && cuda::supports<T>;

// Whether an op on a T tensor that lives on `device` runs on the GPU. Throws for a GPU tensor of
// a scalar type the backend has no kernels for. In a CPU-only build no tensor is on the GPU.
template <typename T>
bool on_gpu(Device device) {
  if (device != Device::cuda) return false;
  if constexpr (!cuda_kernels<T>) throw error("the CUDA backend supports float and double tensors only");
  return true;
}

namespace detail {

// Throws unless `operand` lives on `device`, the device of the op's input.
template <typename U>
void require_device(Device device, const Tensor<U>& operand, const char* op, const char* operand_name) {
  if (operand.device() != device)
    throw error(std::string(op) + ": " + operand_name + " is on " + device_name(operand.device()) +
                " but the input is on " + device_name(device) +
                " (move the model with model.to(device) and each batch with tensor.to(device) or copy_from)");
}

// Moves an output to `device`, keeping its shape; its contents are about to be overwritten.
template <typename U>
void place(Device device, Tensor<U>& output) {
  if (output.device() != device) output.resize(output.shape(), device);
}
template <typename U>
void place(Device device, Tensor<U>* output) {
  if (output) place(device, *output);
}

}  // namespace detail

template <typename T>
const T* data_or_null(const Tensor<T>* t) { return t && !t->empty() ? t->data() : nullptr; }
template <typename T>
T* data_or_null(Tensor<T>* t) { return t && !t->empty() ? t->data() : nullptr; }

template <typename T>
void relu_forward(const Tensor<T>& input, Tensor<T>& output);

// With relu, output = max(conv + bias, 0): fused into the CPU kernel's store; on CUDA a
// separate in-place ReLU pass.
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>* bias,
                    Tensor<T>& output, Conv2dWorkspace<T>& ws, bool relu = false) {
  const Device device = input.device();
  if (relu && device != Device::cpu) {
    conv2d_forward(g, input, weight, bias, output, ws, false);
    relu_forward(output, output);
    return;
  }
  detail::require_device(device, weight, "Conv2d forward", "weight");
  if (bias) detail::require_device(device, *bias, "Conv2d forward", "bias");
  detail::place(device, output);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>) return cuda::conv2d_forward(g, input.data(), weight.data(), data_or_null(bias), output.data());
  }
  cpu::conv2d_forward(g, input.data(), weight.data(), data_or_null(bias), output.data(), ws, relu);
}

template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const Tensor<T>& input, const Tensor<T>& weight,
                     const Tensor<T>& grad_output, Tensor<T>* grad_input, Tensor<T>& grad_weight, Tensor<T>* grad_bias,
                     Conv2dWorkspace<T>& ws) {
  const Device device = input.device();
  detail::require_device(device, weight, "Conv2d backward", "weight");
  detail::require_device(device, grad_output, "Conv2d backward", "grad_output");
  detail::require_device(device, grad_weight, "Conv2d backward", "weight.grad");
  if (grad_bias) detail::require_device(device, *grad_bias, "Conv2d backward", "bias.grad");
  detail::place(device, grad_input);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>) return cuda::conv2d_backward(g, input.data(), weight.data(), grad_output.data(), data_or_null(grad_input), grad_weight.data(), data_or_null(grad_bias));
  }
  cpu::conv2d_backward(g, input.data(), weight.data(), grad_output.data(), data_or_null(grad_input),
                       grad_weight.data(), data_or_null(grad_bias), ws);
}

template <typename T>
void relu_forward(const Tensor<T>& input, Tensor<T>& output) {
  detail::place(input.device(), output);
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>) return cuda::relu_forward(input.size(), input.data(), output.data());
  }
  cpu::relu_forward(input.size(), input.data(), output.data());
}
template <typename T>
void relu_backward(const Tensor<T>& output, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
  detail::require_device(output.device(), grad_output, "ReLU backward", "grad_output");
  detail::place(output.device(), grad_input);
  if (on_gpu<T>(output.device())) {
    if constexpr (cuda_kernels<T>) return cuda::relu_backward(output.size(), output.data(), grad_output.data(), grad_input.data());
  }
  cpu::relu_backward(output.size(), output.data(), grad_output.data(), grad_input.data());
}

template <typename T>
void maxpool2d_forward(const Pool2dGeometry& g, const Tensor<T>& input, Tensor<T>& output, Tensor<std::int32_t>& argmax) {
  detail::place(input.device(), output);
  detail::place(input.device(), argmax);
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>) return cuda::maxpool2d_forward(g, input.data(), output.data(), argmax.data());
  }
  cpu::maxpool2d_forward(g, input.data(), output.data(), argmax.data());
}
template <typename T>
void maxpool2d_backward(const Pool2dGeometry& g, const Tensor<T>& grad_output, const Tensor<std::int32_t>& argmax,
                        Tensor<T>& grad_input) {
  detail::require_device(grad_output.device(), argmax, "MaxPool2d backward", "argmax");
  detail::place(grad_output.device(), grad_input);
  if (on_gpu<T>(grad_output.device())) {
    if constexpr (cuda_kernels<T>) return cuda::maxpool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data());
  }
  cpu::maxpool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data());
}

template <typename T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const Tensor<T>& input, Tensor<T>& output) {
  detail::place(input.device(), output);
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>) return cuda::adaptive_avg_pool2d_forward(g, input.data(), output.data());
  }
  cpu::adaptive_avg_pool2d_forward(g, input.data(), output.data());
}
template <typename T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
  detail::place(grad_output.device(), grad_input);
  if (on_gpu<T>(grad_output.device())) {
    if constexpr (cuda_kernels<T>) return cuda::adaptive_avg_pool2d_backward(g, grad_output.data(), grad_input.data());
  }
  cpu::adaptive_avg_pool2d_backward(g, grad_output.data(), grad_input.data());
}

template <typename T>
void avg_pool2d_forward(const Pool2dGeometry& g, const Tensor<T>& input, Tensor<T>& output) {
  detail::place(input.device(), output);
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>) return cuda::avg_pool2d_forward(g, input.data(), output.data());
  }
  cpu::avg_pool2d_forward(g, input.data(), output.data());
}
template <typename T>
void avg_pool2d_backward(const Pool2dGeometry& g, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
  detail::place(grad_output.device(), grad_input);
  if (on_gpu<T>(grad_output.device())) {
    if constexpr (cuda_kernels<T>) return cuda::avg_pool2d_backward(g, grad_output.data(), grad_input.data());
  }
  cpu::avg_pool2d_backward(g, grad_output.data(), grad_input.data());
}

template <typename T>
void adaptive_max_pool2d_forward(const Pool2dGeometry& g, const Tensor<T>& input, Tensor<T>& output,
                                 Tensor<std::int32_t>& argmax) {
  detail::place(input.device(), output);
  detail::place(input.device(), argmax);
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>) return cuda::adaptive_max_pool2d_forward(g, input.data(), output.data(), argmax.data());
  }
  cpu::adaptive_max_pool2d_forward(g, input.data(), output.data(), argmax.data());
}
// On the CPU the scatter of max pooling: it needs only the argmax, not the windows.
template <typename T>
void adaptive_max_pool2d_backward(const Pool2dGeometry& g, const Tensor<T>& grad_output,
                                  const Tensor<std::int32_t>& argmax, Tensor<T>& grad_input) {
  detail::require_device(grad_output.device(), argmax, "AdaptiveMaxPool2d backward", "argmax");
  detail::place(grad_output.device(), grad_input);
  if (on_gpu<T>(grad_output.device())) {
    if constexpr (cuda_kernels<T>) return cuda::adaptive_max_pool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data());
  }
  cpu::maxpool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data());
}

template <typename T>
void dropout_forward(double p, std::uint64_t seed, std::uint64_t first_counter, const Tensor<T>& input,
                     Tensor<T>& output, Tensor<T>& mask) {
  detail::place(input.device(), output);
  detail::place(input.device(), mask);
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>) return cuda::dropout_forward(input.size(), p, seed, first_counter, input.data(), output.data(), mask.data());
  }
  cpu::dropout_forward(input.size(), p, seed, first_counter, input.data(), output.data(), mask.data());
}
template <typename T>
void dropout_backward(const Tensor<T>& mask, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
  detail::require_device(grad_output.device(), mask, "Dropout backward", "mask");
  detail::place(grad_output.device(), grad_input);
  if (on_gpu<T>(grad_output.device())) {
    if constexpr (cuda_kernels<T>) return cuda::dropout_backward(mask.size(), mask.data(), grad_output.data(), grad_input.data());
  }
  cpu::dropout_backward(mask.size(), mask.data(), grad_output.data(), grad_input.data());
}

// input [N, in], weight [out, in], bias [out] or null, output [N, out].
template <typename T>
void linear_forward(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>* bias, Tensor<T>& output) {
  const Device device = input.device();
  detail::require_device(device, weight, "Linear forward", "weight");
  if (bias) detail::require_device(device, *bias, "Linear forward", "bias");
  detail::place(device, output);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>) return cuda::linear_forward(input.dim(0), weight.dim(1), weight.dim(0), input.data(), weight.data(), data_or_null(bias), output.data());
  }
  cpu::linear_forward(input.dim(0), weight.dim(1), weight.dim(0), input.data(), weight.data(), data_or_null(bias),
                      output.data());
}
template <typename T>
void linear_backward(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& grad_output,
                     Tensor<T>* grad_input, Tensor<T>& grad_weight, Tensor<T>* grad_bias) {
  const Device device = input.device();
  detail::require_device(device, weight, "Linear backward", "weight");
  detail::require_device(device, grad_output, "Linear backward", "grad_output");
  detail::require_device(device, grad_weight, "Linear backward", "weight.grad");
  if (grad_bias) detail::require_device(device, *grad_bias, "Linear backward", "bias.grad");
  detail::place(device, grad_input);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>) return cuda::linear_backward(input.dim(0), weight.dim(1), weight.dim(0), input.data(), weight.data(), grad_output.data(), data_or_null(grad_input), grad_weight.data(), data_or_null(grad_bias));
  }
  cpu::linear_backward(input.dim(0), weight.dim(1), weight.dim(0), input.data(), weight.data(), grad_output.data(),
                       data_or_null(grad_input), grad_weight.data(), data_or_null(grad_bias));
}

// logits [N, classes], targets [N] -> mean loss; grad_logits [N, classes].
// `targets` is host memory on either backend.
template <typename T>
double softmax_cross_entropy(const Tensor<T>& logits, const int* targets, double label_smoothing,
                             Tensor<T>& grad_logits) {
  detail::place(logits.device(), grad_logits);
  if (on_gpu<T>(logits.device())) {
    if constexpr (cuda_kernels<T>) return cuda::softmax_cross_entropy(logits.dim(0), logits.dim(1), logits.data(), targets, label_smoothing, grad_logits.data());
  }
  return cpu::softmax_cross_entropy(logits.dim(0), logits.dim(1), logits.data(), targets, label_smoothing,
                                    grad_logits.data());
}

// One optimiser step on one parameter: value, grad and the state tensors live on one device.
template <typename T>
void adam_update(const kernels::AdamCoefficients<T>& coefficients, Tensor<T>& value, const Tensor<T>& grad,
                 Tensor<T>& exp_avg, Tensor<T>& exp_avg_sq) {
  const Device device = value.device();
  detail::require_device(device, grad, "Adam step", "grad");
  detail::require_device(device, exp_avg, "Adam step", "exp_avg");
  detail::require_device(device, exp_avg_sq, "Adam step", "exp_avg_sq");
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>) return cuda::adam_update(value.size(), coefficients, value.data(), grad.data(), exp_avg.data(), exp_avg_sq.data());
  }
  cpu::adam_update(value.size(), coefficients, value.data(), grad.data(), exp_avg.data(), exp_avg_sq.data());
}

template <typename T>
void sgd_update(const kernels::SgdCoefficients<T>& coefficients, Tensor<T>& value, const Tensor<T>& grad,
                Tensor<T>& momentum_buffer) {
  const Device device = value.device();
  detail::require_device(device, grad, "SGD step", "grad");
  detail::require_device(device, momentum_buffer, "SGD step", "momentum_buffer");
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>) return cuda::sgd_update(value.size(), coefficients, value.data(), grad.data(), momentum_buffer.data());
  }
  cpu::sgd_update(value.size(), coefficients, value.data(), grad.data(), momentum_buffer.data());
}

}  // namespace ops
}  // namespace minicnn

