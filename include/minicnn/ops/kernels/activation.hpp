#pragma once
// Element-wise activations: the Activation enum and the per-element forward and backward bodies
// shared by the CPU loops (ops/cpu/activation.hpp) and the CUDA kernels (src/cuda/kernels.cu).
//
// Every formula is PyTorch's CPU kernel written out (aten/src/ATen/native/cpu/Activation.cpp,
// UnaryOpsKernel.cpp, BinaryOpsKernel.cpp), in the same order of operations, so float64 results
// agree with PyTorch to a few ulps. That includes the values exactly at the kinks and for NaN:
//
//   activation   forward                          backward (d/d input, times grad_output)
//   relu         NaN -> NaN, x <= 0 -> 0          from the output y: y <= 0 ? 0 : grad
//                                                 (threshold_backward; a NaN y passes grad)
//   sigmoid      1 / (1 + exp(-x))                from y: grad (1 - y) y
//   tanh         tanh(x)                          from y: grad (1 - y y)
//   silu         x / (1 + exp(-x))                from x: grad s (1 + x (1 - s)), s = sigmoid(x)
//   hardswish    x min(max(x + 3, 0), 6) / 6      from x: x < -3: 0; x <= 3: grad (x / 3 + 1/2);
//                                                 else grad (so 1.5 grad at 3, -0.5 grad at -3)
//   hardsigmoid  min(max(x + 3, 0), 6) / 6        from x: -3 < x < 3 ? grad / 6 : 0 (0 at +-3)
//   gelu         x/2 (1 + erf(x / sqrt 2))        from x: grad (cdf + x pdf)
//   gelu_tanh    x/2 (1 + tanh(b (x + k x^3)))    from x: the product rule on that expression
//   leaky_relu   x > 0 ? x : slope x              from x: x > 0 ? grad : slope grad (slope at 0)
//
// hardsigmoid's backward multiplies by PyTorch's constant 1.0f / 6.0f, a float even for double
// tensors (0.16666667163372040 in float64): we use the same constant, so double gradients match
// PyTorch to the last bit rather than to 3e-8.
#include <cmath>
#include <string>
#include <type_traits>

#include "minicnn/error.hpp"
#include "minicnn/host_device.hpp"
#include "minicnn/ops/kernels/elementwise.hpp"  // relu, relu_grad

namespace minicnn::ops {

// The element-wise activations of ops::activation_forward / activation_backward. Only
// leaky_relu takes a parameter (its negative slope).
enum class Activation { relu, sigmoid, tanh, silu, hardswish, hardsigmoid, gelu, gelu_tanh, leaky_relu };

// The lower-case name, as in the table above ("gelu_tanh"), for messages and test names.
inline const char* activation_name(Activation kind) {
  switch (kind) {
    case Activation::relu:
      return "relu";
    case Activation::sigmoid:
      return "sigmoid";
    case Activation::tanh:
      return "tanh";
    case Activation::silu:
      return "silu";
    case Activation::hardswish:
      return "hardswish";
    case Activation::hardsigmoid:
      return "hardsigmoid";
    case Activation::gelu:
      return "gelu";
    case Activation::gelu_tanh:
      return "gelu_tanh";
    case Activation::leaky_relu:
      return "leaky_relu";
  }
  return "unknown activation";
}

inline constexpr bool activation_has_parameter(Activation kind) { return kind == Activation::leaky_relu; }

template <Activation kind>
using ActivationConstant = std::integral_constant<Activation, kind>;

// Calls body(ActivationConstant<kind>{}): the one switch from the run-time enum to a
// compile-time constant, so each backend's loop is compiled once per activation with no branch
// per element. Throws minicnn::error for a value outside the enum.
template <typename Body>
void visit_activation(Activation kind, Body&& body) {
  switch (kind) {
    case Activation::relu:
      body(ActivationConstant<Activation::relu>{});
      return;
    case Activation::sigmoid:
      body(ActivationConstant<Activation::sigmoid>{});
      return;
    case Activation::tanh:
      body(ActivationConstant<Activation::tanh>{});
      return;
    case Activation::silu:
      body(ActivationConstant<Activation::silu>{});
      return;
    case Activation::hardswish:
      body(ActivationConstant<Activation::hardswish>{});
      return;
    case Activation::hardsigmoid:
      body(ActivationConstant<Activation::hardsigmoid>{});
      return;
    case Activation::gelu:
      body(ActivationConstant<Activation::gelu>{});
      return;
    case Activation::gelu_tanh:
      body(ActivationConstant<Activation::gelu_tanh>{});
      return;
    case Activation::leaky_relu:
      body(ActivationConstant<Activation::leaky_relu>{});
      return;
  }
  throw error("activation: expected an ops::Activation enumerator, found the value " +
              std::to_string(static_cast<int>(kind)));
}

}  // namespace minicnn::ops

namespace minicnn::ops::kernels {

// The constants of PyTorch's GELU kernels, formed in double as there and then rounded to T.
namespace activation_constants {
inline constexpr double sqrt_half = 0.70710678118654752440;                   // M_SQRT1_2
inline constexpr double two_over_sqrt_pi = 1.12837916709551257390;            // M_2_SQRTPI
inline constexpr double sqrt_two = 1.41421356237309504880;                    // M_SQRT2
inline constexpr double gelu_pdf_scale = two_over_sqrt_pi * sqrt_half * 0.5;  // 1 / sqrt(2 pi)
inline constexpr double gelu_tanh_scale = sqrt_two * two_over_sqrt_pi * 0.5;  // sqrt(2 / pi)
inline constexpr double gelu_tanh_cubic = 0.044715;
}  // namespace activation_constants

// max and min as std::max(a, b) and std::min(a, b) evaluate them (a NaN first operand is
// returned), written out because std::max is not a device function.
template <typename T>
MINICNN_HOST_DEVICE inline T max_as_std(T a, T b) {
  return a < b ? b : a;
}
template <typename T>
MINICNN_HOST_DEVICE inline T min_as_std(T a, T b) {
  return b < a ? b : a;
}

template <typename T>
MINICNN_HOST_DEVICE inline T sigmoid(T input) {
  using std::exp;
  return T(1) / (T(1) + exp(-input));
}

// The forward of activation `kind` at one element; `parameter` is leaky_relu's slope (unused by
// the others).
template <Activation kind, typename T>
MINICNN_HOST_DEVICE inline T activation_forward(T input, T parameter) {
  using std::erf;
  using std::exp;
  using std::tanh;
  namespace constants = activation_constants;
  if constexpr (kind == Activation::relu) {
    return relu(input);
  } else if constexpr (kind == Activation::sigmoid) {
    return sigmoid(input);
  } else if constexpr (kind == Activation::tanh) {
    return tanh(input);
  } else if constexpr (kind == Activation::silu) {
    return input / (T(1) + exp(-input));
  } else if constexpr (kind == Activation::hardswish) {
    return input * min_as_std(max_as_std(input + T(3), T(0)), T(6)) / T(6);
  } else if constexpr (kind == Activation::hardsigmoid) {
    return min_as_std(max_as_std(input + T(3), T(0)), T(6)) / T(6);
  } else if constexpr (kind == Activation::gelu) {
    return input * T(0.5) * (T(1) + erf(input * T(constants::sqrt_half)));
  } else if constexpr (kind == Activation::gelu_tanh) {
    const T cube = input * input * input;
    const T inner = T(constants::gelu_tanh_scale) * (input + T(constants::gelu_tanh_cubic) * cube);
    return T(0.5) * input * (T(1) + tanh(inner));
  } else {
    static_assert(kind == Activation::leaky_relu, "every Activation has a forward body");
    return input > T(0) ? input : input * parameter;
  }
}

// grad_input at one element from the forward's input and output and grad_output (each
// activation reads the one its exact derivative is written in: see the table above).
template <Activation kind, typename T>
MINICNN_HOST_DEVICE inline T activation_backward(T input, T output, T grad_output, T parameter) {
  using std::erf;
  using std::exp;
  using std::tanh;
  namespace constants = activation_constants;
  if constexpr (kind == Activation::relu) {
    return relu_grad(output, grad_output);
  } else if constexpr (kind == Activation::sigmoid) {
    return grad_output * (T(1) - output) * output;
  } else if constexpr (kind == Activation::tanh) {
    return grad_output * (T(1) - output * output);
  } else if constexpr (kind == Activation::silu) {
    const T input_sigmoid = sigmoid(input);
    return grad_output * input_sigmoid * (T(1) + input * (T(1) - input_sigmoid));
  } else if constexpr (kind == Activation::hardswish) {
    if (input < T(-3)) return T(0);
    if (input <= T(3)) return grad_output * (input / T(3) + T(0.5));
    return grad_output;
  } else if constexpr (kind == Activation::hardsigmoid) {
    return input > T(-3) && input < T(3) ? grad_output * T(1.0f / 6.0f) : T(0);
  } else if constexpr (kind == Activation::gelu) {
    const T cdf = T(0.5) * (T(1) + erf(input * T(constants::sqrt_half)));
    const T pdf = T(constants::gelu_pdf_scale) * exp(input * input * T(-0.5));
    return grad_output * (cdf + input * pdf);
  } else if constexpr (kind == Activation::gelu_tanh) {
    const T square = input * input;
    const T cube = square * input;
    const T inner = T(constants::gelu_tanh_scale) * (input + T(constants::gelu_tanh_cubic) * cube);
    const T tanh_inner = tanh(inner);
    const T left = T(0.5) * input;
    const T right = T(1) + tanh_inner;
    const T left_derivative = T(0.5) * right;
    const T tanh_derivative = T(1) - tanh_inner * tanh_inner;
    const T inner_derivative = T(constants::gelu_tanh_scale) * (T(1) + T(3) * T(constants::gelu_tanh_cubic) * square);
    const T right_derivative = left * tanh_derivative * inner_derivative;
    return grad_output * (left_derivative + right_derivative);
  } else {
    static_assert(kind == Activation::leaky_relu, "every Activation has a backward body");
    return input > T(0) ? grad_output : grad_output * parameter;
  }
}

}  // namespace minicnn::ops::kernels
