#pragma once
#include <cstdint>
#include <sstream>
#include <string>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// Dropout(p): in training, zeroes each element with probability p and scales the rest by
// 1 / (1 - p); the identity in eval mode. Masks come from a counter-based generator: the mask
// of a forward call depends only on (seed, how many elements earlier calls used), not on
// threads or backend. generator() exposes that state for checkpoints.
template <typename T = float>
class Dropout final : public Module<T> {
 public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0) : p_(p), generator_(seed) {
    if (!(p >= 0.0 && p <= 1.0)) throw error("Dropout(p=" + std::to_string(p) + "): expected 0 <= p <= 1");
  }

  double p() const { return p_; }
  Generator& generator() { return generator_; }

  Shape output_shape(const Shape& input) const override { return input; }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    input_ = &input;
    active_ = this->is_training() && p_ > 0.0;
    if (!active_) return input;
    output_.resize(input.shape());
    mask_.resize(input.shape());
    const std::uint64_t first = generator_.reserve(static_cast<std::uint64_t>(input.size()));
    ops::dropout_forward(p_, generator_.seed(), first, input, output_, mask_);
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    if (input_ == nullptr) throw error("Dropout.backward: called before forward");
    check_same_shape(input_->shape(), grad_output.shape(), "Dropout.backward: grad_output");
    if (!active_) return grad_output;
    grad_input_.resize(grad_output.shape());
    ops::dropout_backward(mask_, grad_output, grad_input_);
    return grad_input_;
  }

  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override {
    std::ostringstream out;
    out << "p=" << p_ << ", inplace=False";
    return out.str();
  }

 private:
  double p_;
  Generator generator_;
  bool active_ = false;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, mask_, grad_input_;
};

}  // namespace minicnn
