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
#include "minicnn/ops/cpu/activation.hpp"
#include "minicnn/ops/cpu/batchnorm.hpp"
#include "minicnn/ops/cpu/conv.hpp"
#include "minicnn/ops/cpu/elementwise.hpp"
#include "minicnn/ops/cpu/linear.hpp"
#include "minicnn/ops/cpu/optim.hpp"
#include "minicnn/ops/cpu/pooling.hpp"
#include "minicnn/ops/cpu/softmax.hpp"
#include "minicnn/ops/cuda/ops.hpp"
#include "minicnn/ops/kernels/activation.hpp"
#include "minicnn/ops/kernels/batchnorm.hpp"
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
inline constexpr bool cuda_kernels = cuda_compiled&& cuda::supports<T>;

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

// Gives an output the result's shape on `device` (no allocation when its buffer is big enough).
template <typename U>
void shape_output(Device device, const Shape& shape, Tensor<U>& output) {
  output.resize(shape, device);
}

// Throws for a value outside ops::Activation, and for a nonzero parameter given to an
// activation that has none (a slope meant for leaky_relu must not be dropped silently).
inline void check_activation(Activation kind, double parameter, const char* op) {
  visit_activation(kind, [](auto) {});
  if (!activation_has_parameter(kind) && parameter != 0.0)
    throw error(std::string(op) + " (" + activation_name(kind) + "): expected parameter 0 (only leaky_relu takes " +
                "one, its negative slope), found " + std::to_string(parameter));
}

// Throws unless `tensor` is [N, C, H, W]; `what` names the op and the argument.
template <typename U>
void require_rank4(const Tensor<U>& tensor, const char* what) {
  if (tensor.rank() != 4)
    throw error(std::string(what) + ": expected a tensor of shape [N, C, H, W], found " + tensor.shape().str());
}

}  // namespace detail

template <typename T>
const T* data_or_null(const Tensor<T>* t) {
  return t && !t->empty() ? t->data() : nullptr;
}
template <typename T>
T* data_or_null(Tensor<T>* t) {
  return t && !t->empty() ? t->data() : nullptr;
}

template <typename T>
void relu_forward(const Tensor<T>& input, Tensor<T>& output);

// With relu, output = max(conv + bias, 0): fused into the CPU kernel's store; on CUDA a
// separate in-place ReLU pass.
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>* bias,
                    Tensor<T>& output, Conv2dWorkspace<T>& ws, bool relu = false, bool inference = false) {
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
    if constexpr (cuda_kernels<T>)
      return cuda::conv2d_forward(g, input.data(), weight.data(), data_or_null(bias), output.data());
  }
  cpu::conv2d_forward(g, input.data(), weight.data(), data_or_null(bias), output.data(), ws, relu, inference);
}

template <typename T>
void maxpool2d_forward(const Pool2dGeometry& g, const Tensor<T>& input, Tensor<T>& output,
                       Tensor<std::int32_t>* argmax);

// conv2d_forward, then the 2x2, stride-2 max-pool (floor mode) of its result into `pooled`
// [N, C_out, H / 2, W / 2], the maxima alone: a forward pass without gradients. The CPU's
// Winograd pools as it stores its result; the other paths store `output` [N, C_out, H, W] first
// (resized here only then).
template <typename T>
void conv2d_forward_max_pool_2x2(const Conv2dGeometry& g, const Tensor<T>& input, const Tensor<T>& weight,
                                 const Tensor<T>* bias, Tensor<T>& output, Tensor<T>& pooled, Conv2dWorkspace<T>& ws,
                                 bool relu, bool inference) {
  const Device device = input.device();
  if (device == Device::cpu) {
    detail::require_device(device, weight, "Conv2d forward", "weight");
    if (bias) detail::require_device(device, *bias, "Conv2d forward", "bias");
    detail::place(device, pooled);
    if (cpu::conv2d_forward_max_pool_2x2(g, input.data(), weight.data(), data_or_null(bias), pooled.data(), ws, relu,
                                         inference))
      return;
  }
  output.resize(Shape{g.batch, g.out_channels, g.out_height, g.out_width});
  conv2d_forward(g, input, weight, bias, output, ws, relu, inference);
  const Pool2dGeometry pool{g.batch * g.out_channels, g.out_height, g.out_width, g.out_height / 2, g.out_width / 2,
                            2, 2, 2, 2, 0, 0, 1, 1, false};
  maxpool2d_forward(pool, output, pooled, nullptr);
}

// relu_input: the input is the output of a ReLU whose gradient grad_input gets
// (Module::apply_input_relu_grad): grad_input = relu_grad(input, conv^T(grad_output)).
template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const Tensor<T>& input, const Tensor<T>& weight,
                     const Tensor<T>& grad_output, Tensor<T>* grad_input, Tensor<T>& grad_weight, Tensor<T>* grad_bias,
                     Conv2dWorkspace<T>& ws, bool relu_input = false) {
  const Device device = input.device();
  detail::require_device(device, weight, "Conv2d backward", "weight");
  detail::require_device(device, grad_output, "Conv2d backward", "grad_output");
  detail::require_device(device, grad_weight, "Conv2d backward", "weight.grad");
  if (grad_bias) detail::require_device(device, *grad_bias, "Conv2d backward", "bias.grad");
  detail::place(device, grad_input);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>) {
      cuda::conv2d_backward(g, input.data(), weight.data(), grad_output.data(), data_or_null(grad_input),
                            grad_weight.data(), data_or_null(grad_bias));
      if (grad_input && relu_input)  // a pass of its own on the GPU
        cuda::relu_backward(grad_input->size(), input.data(), grad_input->data(), grad_input->data());
      return;
    }
  }
  cpu::conv2d_backward(g, input.data(), weight.data(), grad_output.data(), data_or_null(grad_input), grad_weight.data(),
                       data_or_null(grad_bias), ws, relu_input ? input.data() : nullptr);
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
    if constexpr (cuda_kernels<T>)
      return cuda::relu_backward(output.size(), output.data(), grad_output.data(), grad_input.data());
  }
  cpu::relu_backward(output.size(), output.data(), grad_output.data(), grad_input.data());
}

// Element-wise activation `kind` (see ops/kernels/activation.hpp for each formula, PyTorch's):
// output = kind(input), resized to input's shape on input's device; output may be input.
// `parameter` is leaky_relu's negative slope and must be 0 for every other activation.
template <typename T>
void activation_forward(Activation kind, double parameter, const Tensor<T>& input, Tensor<T>& output) {
  detail::check_activation(kind, parameter, "activation forward");
  detail::shape_output(input.device(), input.shape(), output);
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>)
      return cuda::activation_forward(kind, static_cast<T>(parameter), input.size(), input.data(), output.data());
  }
  cpu::activation_forward(kind, static_cast<T>(parameter), input.size(), input.data(), output.data());
}
// grad_input (ASSIGNED, resized to input's shape; may be grad_output itself) from the forward's
// input and output and grad_output, all of one shape on one device. relu, sigmoid and tanh read
// the output, the others the input: both are required, so a caller need not know which.
template <typename T>
void activation_backward(Activation kind, double parameter, const Tensor<T>& input, const Tensor<T>& output,
                         const Tensor<T>& grad_output, Tensor<T>& grad_input) {
  detail::check_activation(kind, parameter, "activation backward");
  const Device device = input.device();
  detail::require_device(device, output, "activation backward", "output");
  detail::require_device(device, grad_output, "activation backward", "grad_output");
  check_same_shape(input.shape(), output.shape(), "activation backward: output");
  check_same_shape(input.shape(), grad_output.shape(), "activation backward: grad_output");
  detail::shape_output(device, input.shape(), grad_input);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>)
      return cuda::activation_backward(kind, static_cast<T>(parameter), input.size(), input.data(), output.data(),
                                       grad_output.data(), grad_input.data());
  }
  cpu::activation_backward(kind, static_cast<T>(parameter), input.size(), input.data(), output.data(),
                           grad_output.data(), grad_input.data());
}

// output = a + b, element by element, for a and b of one shape on one device (a residual
// connection, or two gradient branches summed); output is resized to that shape and may be a
// or b. The backward of a sum is grad_output for both operands, so there is no add_backward.
template <typename T>
void add(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& output) {
  detail::require_device(a.device(), b, "add", "b");
  check_same_shape(a.shape(), b.shape(), "add: b (must match a)");
  detail::shape_output(a.device(), a.shape(), output);
  if (on_gpu<T>(a.device())) {
    if constexpr (cuda_kernels<T>) return cuda::add(a.size(), a.data(), b.data(), output.data());
  }
  cpu::add(a.size(), a.data(), b.data(), output.data());
}

// Squeeze-and-excitation's multiply: input [N, C, H, W], scale [N, C] ->
// output [N, C, H, W] = input * scale[:, :, None, None] (resized; may be input).
template <typename T>
void channel_scale_forward(const Tensor<T>& input, const Tensor<T>& scale, Tensor<T>& output) {
  detail::require_rank4(input, "channel_scale forward: input");
  detail::require_device(input.device(), scale, "channel_scale forward", "scale");
  check_same_shape(Shape{input.dim(0), input.dim(1)}, scale.shape(), "channel_scale forward: scale");
  detail::shape_output(input.device(), input.shape(), output);
  const std::int64_t planes = input.dim(0) * input.dim(1), plane_size = input.dim(2) * input.dim(3);
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>)
      return cuda::channel_scale_forward(planes, plane_size, input.data(), scale.data(), output.data());
  }
  cpu::channel_scale_forward(planes, plane_size, input.data(), scale.data(), output.data());
}
// grad_input [N, C, H, W] = grad_output * scale[:, :, None, None] (ASSIGNED; skipped when null);
// grad_scale [N, C] = the sum over H, W of grad_output * input (ASSIGNED, resized), each plane
// summed in index order, so CPU results are bit-identical for every thread count.
template <typename T>
void channel_scale_backward(const Tensor<T>& input, const Tensor<T>& scale, const Tensor<T>& grad_output,
                            Tensor<T>* grad_input, Tensor<T>& grad_scale) {
  detail::require_rank4(input, "channel_scale backward: input");
  const Device device = input.device();
  detail::require_device(device, scale, "channel_scale backward", "scale");
  detail::require_device(device, grad_output, "channel_scale backward", "grad_output");
  const Shape scale_shape{input.dim(0), input.dim(1)};
  check_same_shape(scale_shape, scale.shape(), "channel_scale backward: scale");
  check_same_shape(input.shape(), grad_output.shape(), "channel_scale backward: grad_output");
  if (grad_input) detail::shape_output(device, input.shape(), *grad_input);
  detail::shape_output(device, scale_shape, grad_scale);
  const std::int64_t planes = input.dim(0) * input.dim(1), plane_size = input.dim(2) * input.dim(3);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>)
      return cuda::channel_scale_backward(planes, plane_size, input.data(), scale.data(), grad_output.data(),
                                          data_or_null(grad_input), grad_scale.data());
  }
  cpu::channel_scale_backward(planes, plane_size, input.data(), scale.data(), grad_output.data(),
                              data_or_null(grad_input), grad_scale.data());
}

// argmax may be null: the maxima alone, for a forward pass without gradients.
template <typename T>
void maxpool2d_forward(const Pool2dGeometry& g, const Tensor<T>& input, Tensor<T>& output,
                       Tensor<std::int32_t>* argmax) {
  detail::place(input.device(), output);
  if (argmax) detail::place(input.device(), *argmax);
  std::int32_t* winners = argmax ? argmax->data() : nullptr;
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>) return cuda::maxpool2d_forward(g, input.data(), output.data(), winners);
  }
  cpu::maxpool2d_forward(g, input.data(), output.data(), winners);
}
// relu_output: the pool's forward output when its input is the output of a ReLU whose gradient
// the pool applies (Module::apply_input_relu_grad); null: none.
template <typename T>
void maxpool2d_backward(const Pool2dGeometry& g, const Tensor<T>& grad_output, const Tensor<std::int32_t>& argmax,
                        Tensor<T>& grad_input, const Tensor<T>* relu_output = nullptr) {
  detail::require_device(grad_output.device(), argmax, "MaxPool2d backward", "argmax");
  if (relu_output) detail::require_device(grad_output.device(), *relu_output, "MaxPool2d backward", "output");
  detail::place(grad_output.device(), grad_input);
  const T* maxima = relu_output ? relu_output->data() : nullptr;
  if (on_gpu<T>(grad_output.device())) {
    if constexpr (cuda_kernels<T>)
      return cuda::maxpool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data(), maxima);
  }
  cpu::maxpool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data(), maxima);
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
    if constexpr (cuda_kernels<T>)
      return cuda::adaptive_max_pool2d_forward(g, input.data(), output.data(), argmax.data());
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
    if constexpr (cuda_kernels<T>)
      return cuda::adaptive_max_pool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data());
  }
  cpu::maxpool2d_backward(g, grad_output.data(), argmax.data(), grad_input.data());
}

template <typename T>
void dropout_forward(double p, std::uint64_t seed, std::uint64_t first_counter, const Tensor<T>& input,
                     Tensor<T>& output, Tensor<T>& mask) {
  detail::place(input.device(), output);
  detail::place(input.device(), mask);
  if (on_gpu<T>(input.device())) {
    if constexpr (cuda_kernels<T>)
      return cuda::dropout_forward(input.size(), p, seed, first_counter, input.data(), output.data(), mask.data());
  }
  cpu::dropout_forward(input.size(), p, seed, first_counter, input.data(), output.data(), mask.data());
}
template <typename T>
void dropout_backward(const Tensor<T>& mask, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
  detail::require_device(grad_output.device(), mask, "Dropout backward", "mask");
  detail::place(grad_output.device(), grad_input);
  if (on_gpu<T>(grad_output.device())) {
    if constexpr (cuda_kernels<T>)
      return cuda::dropout_backward(mask.size(), mask.data(), grad_output.data(), grad_input.data());
  }
  cpu::dropout_backward(mask.size(), mask.data(), grad_output.data(), grad_input.data());
}

// The [N, C, L] view of a batch-norm input of shape [N, C, d2, d3, ...] (rank 2 or more):
// L = d2 d3 ... (1 for [N, C]).
inline BatchNormGeometry batch_norm_geometry(const Shape& input, const char* op) {
  if (input.rank() < 2)
    throw error(std::string(op) + ": expected an input of shape [N, C] or [N, C, ...], found " + input.str());
  std::int64_t plane = 1;
  for (int axis = 2; axis < input.rank(); ++axis) plane *= input[axis];
  return {input[0], input[1], plane};
}

namespace detail {

// Throws unless `vector` (when given) is a [C] vector on `device`.
template <typename T>
void require_channel_vector(Device device, const Tensor<T>* vector, std::int64_t channels, const char* op,
                            const char* name) {
  if (!vector) return;
  require_device(device, *vector, op, name);
  // Builds the message only on a mismatch: a training step must not allocate.
  if (vector->shape() != Shape{channels})
    check_same_shape(Shape{channels}, vector->shape(), std::string(op) + ": " + name);
}

}  // namespace detail

// Batch normalisation over the channels of input [N, C, ...] (PyTorch's BatchNorm1d/2d/3d
// arithmetic); every [C] tensor may be null where a pointer is taken.
//   use_batch_stats (training, or track_running_stats=False): normalise with the batch's mean and
//     biased variance; when running_mean and running_var are given, update them:
//     running = (1 - momentum) running + momentum batch, with the unbiased variance. `momentum` is
//     the factor itself: PyTorch's momentum, or 1 / num_batches_tracked for momentum=None.
//     Throws for N L == 1 (one value per channel), as PyTorch does.
//   otherwise (evaluation): normalise with running_mean and running_var, which are required.
// output = (input - mean) / sqrt(var + eps) weight + bias, ASSIGNED; weight and bias may be null
// (affine=False). save_mean and save_invstd receive the mean and 1 / sqrt(var + eps) used, for
// batch_norm_backward. The caller sizes output like input and the save tensors [C]; outputs
// move to the input's device. An empty batch (N L == 0) is a no-op: empty output, running and
// saved statistics untouched (PyTorch would turn the running statistics into NaN).
// With relu, output = max(output, 0): fused into the CPU store; on CUDA a separate in-place pass.
template <typename T>
void batch_norm_forward(const Tensor<T>& input, const Tensor<T>* weight, const Tensor<T>* bias, Tensor<T>* running_mean,
                        Tensor<T>* running_var, bool use_batch_stats, double momentum, double eps, Tensor<T>& output,
                        Tensor<T>& save_mean, Tensor<T>& save_invstd, bool relu = false) {
  constexpr const char* op = "BatchNorm forward";
  const BatchNormGeometry g = batch_norm_geometry(input.shape(), op);
  const Device device = input.device();
  if (static_cast<bool>(running_mean) != static_cast<bool>(running_var))
    throw error(std::string(op) + ": expected both running_mean and running_var or neither, found only " +
                (running_mean ? "running_mean" : "running_var"));
  if (!use_batch_stats && !running_mean)
    throw error(std::string(op) + ": evaluation with running statistics needs running_mean and running_var");
  if (use_batch_stats && g.count_per_channel() == 1)
    throw error(std::string(op) + ": Expected more than 1 value per channel when training, got input of shape " +
                input.shape().str());
  detail::require_channel_vector(device, weight, g.channels, op, "weight");
  detail::require_channel_vector(device, bias, g.channels, op, "bias");
  detail::require_channel_vector(device, running_mean, g.channels, op, "running_mean");
  detail::require_channel_vector(device, running_var, g.channels, op, "running_var");
  check_same_shape(input.shape(), output.shape(), "BatchNorm forward: output");
  check_same_shape(Shape{g.channels}, save_mean.shape(), "BatchNorm forward: save_mean");
  check_same_shape(Shape{g.channels}, save_invstd.shape(), "BatchNorm forward: save_invstd");
  detail::place(device, output);
  detail::place(device, save_mean);
  detail::place(device, save_invstd);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>) {
      cuda::batch_norm_forward(g, input.data(), data_or_null(weight), data_or_null(bias), data_or_null(running_mean),
                               data_or_null(running_var), use_batch_stats, momentum, eps, output.data(),
                               save_mean.data(), save_invstd.data());
      if (relu) cuda::relu_forward(output.size(), output.data(), output.data());
      return;
    }
  }
  cpu::batch_norm_forward(g, input.data(), data_or_null(weight), data_or_null(bias), data_or_null(running_mean),
                          data_or_null(running_var), use_batch_stats, momentum, eps, output.data(), save_mean.data(),
                          save_invstd.data(), relu);
}

// Backward of batch_norm_forward, from its input and the save_mean / save_invstd it wrote;
// batch_stats: the forward's use_batch_stats.
//   grad_input (ASSIGNED; skipped when null; sized like input by the caller):
//     batch_stats:  weight invstd / n (n g - sum g - xhat sum g xhat), n = N L per channel
//     otherwise:    g weight invstd
//   grad_weight += sum g xhat, grad_bias += sum g (ACCUMULATED; null skips: affine=False)
// with g = grad_output, xhat = (input - save_mean) save_invstd and weight 1 when null.
template <typename T>
void batch_norm_backward(const Tensor<T>& input, const Tensor<T>* weight, const Tensor<T>& save_mean,
                         const Tensor<T>& save_invstd, const Tensor<T>& grad_output, bool batch_stats,
                         Tensor<T>* grad_input, Tensor<T>* grad_weight, Tensor<T>* grad_bias) {
  constexpr const char* op = "BatchNorm backward";
  const BatchNormGeometry g = batch_norm_geometry(input.shape(), op);
  const Device device = input.device();
  detail::require_channel_vector(device, weight, g.channels, op, "weight");
  detail::require_channel_vector(device, &save_mean, g.channels, op, "save_mean");
  detail::require_channel_vector(device, &save_invstd, g.channels, op, "save_invstd");
  detail::require_channel_vector(device, grad_weight, g.channels, op, "weight.grad");
  detail::require_channel_vector(device, grad_bias, g.channels, op, "bias.grad");
  detail::require_device(device, grad_output, op, "grad_output");
  check_same_shape(input.shape(), grad_output.shape(), "BatchNorm backward: grad_output");
  if (grad_input) check_same_shape(input.shape(), grad_input->shape(), "BatchNorm backward: grad_input");
  detail::place(device, grad_input);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>)
      return cuda::batch_norm_backward(g, input.data(), data_or_null(weight), save_mean.data(), save_invstd.data(),
                                       grad_output.data(), batch_stats, data_or_null(grad_input),
                                       data_or_null(grad_weight), data_or_null(grad_bias));
  }
  cpu::batch_norm_backward(g, input.data(), data_or_null(weight), save_mean.data(), save_invstd.data(),
                           grad_output.data(), batch_stats, data_or_null(grad_input), data_or_null(grad_weight),
                           data_or_null(grad_bias));
}

// input [N, in], weight [out, in], bias [out] or null, output [N, out].
template <typename T>
void linear_forward(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>* bias, Tensor<T>& output) {
  const Device device = input.device();
  detail::require_device(device, weight, "Linear forward", "weight");
  if (bias) detail::require_device(device, *bias, "Linear forward", "bias");
  detail::place(device, output);
  if (on_gpu<T>(device)) {
    if constexpr (cuda_kernels<T>)
      return cuda::linear_forward(input.dim(0), weight.dim(1), weight.dim(0), input.data(), weight.data(),
                                  data_or_null(bias), output.data());
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
    if constexpr (cuda_kernels<T>)
      return cuda::linear_backward(input.dim(0), weight.dim(1), weight.dim(0), input.data(), weight.data(),
                                   grad_output.data(), data_or_null(grad_input), grad_weight.data(),
                                   data_or_null(grad_bias));
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
    if constexpr (cuda_kernels<T>)
      return cuda::softmax_cross_entropy(logits.dim(0), logits.dim(1), logits.data(), targets, label_smoothing,
                                         grad_logits.data());
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
    if constexpr (cuda_kernels<T>)
      return cuda::adam_update(value.size(), coefficients, value.data(), grad.data(), exp_avg.data(),
                               exp_avg_sq.data());
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
    if constexpr (cuda_kernels<T>)
      return cuda::sgd_update(value.size(), coefficients, value.data(), grad.data(), momentum_buffer.data());
  }
  cpu::sgd_update(value.size(), coefficients, value.data(), grad.data(), momentum_buffer.data());
}

}  // namespace ops
}  // namespace minicnn
