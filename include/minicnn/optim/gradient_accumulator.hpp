#pragma once
// Gradient accumulation: one optimiser step over a global batch of N images trained as M
// micro-batches in turn, in one process. The combined gradient is
//
//   grad = (((s_0 + s_1) + s_2) + ... + s_{M-1}),   s_m = fl(n_m / N) * g_m
//
// (g_m: the gradient of micro-batch m's mean loss, n_m its images), added element by element in
// micro-batch order. This is exactly the arithmetic of distributed::GradientAverager, which
// computes the same sum with the micro-batches spread over P processes; both use the helpers
// below (micro_batch_weight, scale_gradients, sum_in_order / add_in_place), so one process
// accumulating M micro-batches and P processes sharing them end with the same bits.
//
// The step:
//   for m = 0 .. M - 1:
//     optimizer.zero_grad(); forward; loss; backward;   // g_m in every parameter's grad
//     accumulator.keep(m, n_m, N);
//   accumulator.average();                             // grad = the sum above
//   optimizer.step();
//
// Why a separate, stored scaling pass: s_m is written to memory before it is added, so no fused
// multiply-add (GCC contracts a * b + c by default) can make the bits depend on how the sum is
// grouped. With M = 1 the weight is exactly 1 and the gradient is unchanged.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn {

// The weight of a micro-batch of `images` in a step of `step_images`: n / N, rounded once to T.
template <typename T>
T micro_batch_weight(std::int64_t images, std::int64_t step_images) {
  return static_cast<T>(static_cast<double>(images) / static_cast<double>(step_images));
}

// out[i] += values[i]: the one addition every configuration uses (element-wise, so vectorising
// it changes nothing).
template <typename T>
void add_in_place(const T* values, std::int64_t length, T* out) {
  for (std::int64_t i = 0; i < length; ++i) out[i] += values[i];
}

// Adds parts[0][i] + parts[1][i] + ... + parts[count - 1][i], left to right, into out[i] (zeros
// when count is 0).
template <typename T>
void sum_in_order(const T* const* parts, std::int64_t count, std::int64_t length, T* out) {
  if (count == 0) {
    for (std::int64_t i = 0; i < length; ++i) out[i] = T(0);
    return;
  }
  for (std::int64_t i = 0; i < length; ++i) out[i] = parts[0][i];
  for (std::int64_t part = 1; part < count; ++part) add_in_place(parts[part], length, out);
}

// Writes every parameter's grad times micro_batch_weight(images, step_images) into
// `destination`, one parameter after another (parameters' order, sizes summed). images = 0 (an
// empty micro-batch at the end of an epoch) writes zeros without reading the gradients.
// check_finite: throws minicnn::error, starting with `context` and naming the parameter, when a
// gradient holds a NaN or infinity.
template <typename T>
void scale_gradients(const std::vector<Parameter<T>*>& parameters, std::int64_t images, std::int64_t step_images,
                     T* destination, bool check_finite, const std::string& context) {
  if (images < 0 || step_images < 1 || images > step_images)
    throw error(context + ": " + std::to_string(images) + " images of a step of " + std::to_string(step_images) +
                ", expected 0 <= images <= step_images and step_images >= 1");
  const T weight = micro_batch_weight<T>(images, step_images);
  for (std::size_t p = 0; p < parameters.size(); ++p) {
    const Tensor<T>& grad = parameters[p]->grad;
    const std::int64_t length = grad.size();
    if (images == 0) {
      for (std::int64_t i = 0; i < length; ++i) destination[i] = T(0);
    } else {
      const T* source = grad.data();
      if (check_finite)
        for (std::int64_t i = 0; i < length; ++i)
          if (!std::isfinite(source[i]))
            throw error(context + ": the gradient of parameter " + std::to_string(p) + " ('" + parameters[p]->name +
                        "') holds " + std::to_string(source[i]) + " at element " + std::to_string(i) +
                        ", expected finite values");
      for (std::int64_t i = 0; i < length; ++i) destination[i] = source[i] * weight;
    }
    destination += length;
  }
}

// The single-process gradient accumulation described above. Gradients live in host memory.
template <typename T>
class GradientAccumulator {
 public:
  GradientAccumulator(std::vector<Parameter<T>*> parameters, std::int64_t micro_batches, bool check_finite = false)
      : parameters_(std::move(parameters)), micro_batches_(micro_batches), check_finite_(check_finite) {
    if (micro_batches < 1)
      throw error("GradientAccumulator: micro_batches must be >= 1, got " + std::to_string(micro_batches));
    std::int64_t total = 0;
    for (const Parameter<T>* parameter : parameters_) total += parameter->grad.size();
    sum_.resize(Shape{total});
    scaled_.resize(Shape{total});
  }

  std::int64_t micro_batches() const { return micro_batches_; }
  std::int64_t num_elements() const { return sum_.size(); }

  // After the backward of micro-batch `index` (gradients zeroed before it): adds its scaled
  // gradient to the running sum. Micro-batches come in order, 0 .. micro_batches() - 1.
  void keep(std::int64_t index, std::int64_t images, std::int64_t step_images) {
    if (index != kept_)
      throw error("GradientAccumulator::keep: micro-batch " + std::to_string(index) + ", expected " +
                  std::to_string(kept_) + " (micro-batches are kept in order, 0.." +
                  std::to_string(micro_batches_ - 1) + ")");
    // Micro-batch 0 is scaled straight into the sum (sum_in_order's out = parts[0]); the others
    // are scaled, stored, then added.
    T* destination = index == 0 ? sum_.data() : scaled_.data();
    scale_gradients(parameters_, images, step_images, destination, check_finite_,
                    "GradientAccumulator::keep: micro-batch " + std::to_string(index));
    if (index > 0) add_in_place(scaled_.data(), sum_.size(), sum_.data());
    ++kept_;
  }

  // After keeping every micro-batch of the step: writes the sum into every parameter's grad.
  void average() {
    if (kept_ != micro_batches_)
      throw error("GradientAccumulator::average: " + std::to_string(kept_) + " of " +
                  std::to_string(micro_batches_) + " micro-batches were kept this step (call keep() after each backward)");
    const T* source = sum_.data();
    for (Parameter<T>* parameter : parameters_) {
      T* grad = parameter->grad.data();
      for (std::int64_t i = 0; i < parameter->grad.size(); ++i) grad[i] = source[i];
      source += parameter->grad.size();
    }
    kept_ = 0;
  }

 private:
  std::vector<Parameter<T>*> parameters_;
  std::int64_t micro_batches_;
  bool check_finite_;
  std::int64_t kept_ = 0;
  Tensor<T> sum_;     // [total]: the running sum of the step's scaled gradients
  Tensor<T> scaled_;  // [total]: the latest micro-batch's scaled gradient
};

}  // namespace minicnn
