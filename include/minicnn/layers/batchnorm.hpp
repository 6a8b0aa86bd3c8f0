#pragma once
// BatchNorm1d / BatchNorm2d with PyTorch's semantics (ops/dispatch.hpp's batch_norm_forward):
//   training (or track_running_stats = false): normalise with the batch mean and the biased
//     batch variance; with running statistics, update them with the unbiased variance:
//     running = (1 - momentum) running + momentum batch (momentum = none: the cumulative
//     average, factor 1 / num_batches_tracked);
//   evaluation with running statistics: normalise with them.
// State, in PyTorch's state_dict order: parameters weight, bias [C] (affine), then buffers
// running_mean, running_var [C] and num_batches_tracked (track_running_stats).
//
// num_batches_tracked is a [1] tensor of T here (PyTorch: an int64 scalar []); the conversion
// scripts in tools/ translate. A float counts batches exactly up to 2^24.
// An empty batch (N = 0) gives an empty output and leaves every statistic unchanged.
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

#include "minicnn/layers/module.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace minicnn {

// Dims: 1 for BatchNorm1d (input [N, C] or [N, C, L]), 2 for BatchNorm2d ([N, C, H, W]).
template <typename T, int Dims>
class BatchNorm final : public Module<T> {
  static_assert(Dims == 1 || Dims == 2, "BatchNorm1d or BatchNorm2d");

 public:
  Parameter<T> weight;                                       // [C], ones at start; empty when affine = false
  Parameter<T> bias;                                         // [C], zeros at start; empty when affine = false
  Tensor<T> running_mean, running_var, num_batches_tracked;  // [C], [C], [1]; empty without tracking

  explicit BatchNorm(std::int64_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                     bool affine = true, bool track_running_stats = true)
      : weight("weight", affine ? Shape{checked(num_features, eps, momentum)} : Shape{}),
        bias("bias", affine ? Shape{num_features} : Shape{}),
        num_features_(checked(num_features, eps, momentum)),
        eps_(eps),
        momentum_(momentum),
        affine_(affine),
        track_running_stats_(track_running_stats) {
    if (affine) {
      weight.value.fill(T(1));
      this->register_parameter(weight);
      this->register_parameter(bias);
    }
    if (track_running_stats) {
      running_mean.resize({num_features});
      running_var.resize({num_features});
      running_var.fill(T(1));
      num_batches_tracked.resize({1});
      this->register_buffer("running_mean", running_mean);
      this->register_buffer("running_var", running_var);
      this->register_buffer("num_batches_tracked", num_batches_tracked);
    }
  }

  std::int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  std::optional<double> momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_running_stats_; }

  Shape output_shape(const Shape& input) const override {
    const bool rank_ok = Dims == 2 ? input.rank() == 4 : input.rank() == 2 || input.rank() == 3;
    if (!rank_ok || input[1] != num_features_)
      throw error(
          this->repr() + ": expected input " +
          (Dims == 2 ? "[N, " + std::to_string(num_features_) + ", H, W]"
                     : "[N, " + std::to_string(num_features_) + "] or [N, " + std::to_string(num_features_) + ", L]") +
          ", found " + input.str());
    return input;
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    output_.resize(output_shape(input.shape()));
    batch_stats_ = this->is_training() || !track_running_stats_;
    const bool update = this->is_training() && track_running_stats_ && input.size() > 0;
    double factor = momentum_.value_or(0.0);
    if (update) {
      // PyTorch counts the batch first, so momentum = none averages over this batch too.
      T count;
      if (num_batches_tracked.device() == Device::cpu) {
        count = num_batches_tracked[0] += T(1);
      } else {  // one value through the host
        Tensor<T> counted = num_batches_tracked.copy_to(Device::cpu);
        count = counted[0] += T(1);
        num_batches_tracked.copy_from(counted);
      }
      if (!momentum_) factor = 1.0 / static_cast<double>(count);
    }
    save_mean_.resize({num_features_});
    save_invstd_.resize({num_features_});
    ops::batch_norm_forward(input, affine_ ? &weight.value : nullptr, affine_ ? &bias.value : nullptr,
                            update || !batch_stats_ ? &running_mean : nullptr,
                            update || !batch_stats_ ? &running_var : nullptr, batch_stats_, factor, eps_, output_,
                            save_mean_, save_invstd_, fused_relu_);
    input_ = &input;
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(input_, output_, grad_output, "BatchNorm");
    grad_input_.resize(this->input_grad() ? input_->shape() : Shape{});
    ops::batch_norm_backward(*input_, affine_ ? &weight.value : nullptr, save_mean_, save_invstd_, grad_output,
                             batch_stats_, this->input_grad() ? &grad_input_ : nullptr,
                             affine_ ? &weight.grad : nullptr, affine_ ? &bias.grad : nullptr);
    return grad_input_;
  }

  // A ReLU after the normalisation is applied as the output is stored (see Conv2d's).
  bool fuse_pointwise(Pointwise op) override {
    fused_relu_ = op == Pointwise::relu;
    return op == Pointwise::none || fused_relu_;
  }
  bool fused_relu() const { return fused_relu_; }

  std::string type_name() const override { return Dims == 2 ? "BatchNorm2d" : "BatchNorm1d"; }
  std::string extra_repr() const override {
    std::ostringstream out;
    out << num_features_ << ", eps=" << eps_ << ", momentum=";
    if (momentum_)
      out << *momentum_;
    else
      out << "None";
    out << ", affine=" << (affine_ ? "True" : "False")
        << ", track_running_stats=" << (track_running_stats_ ? "True" : "False");
    return out.str();
  }

 private:
  static std::int64_t checked(std::int64_t num_features, double eps, std::optional<double> momentum) {
    if (num_features < 1 || !(eps > 0.0) || (momentum && !(*momentum >= 0.0 && *momentum <= 1.0)))
      throw error(std::string(Dims == 2 ? "BatchNorm2d" : "BatchNorm1d") +
                  "(num_features=" + std::to_string(num_features) + ", eps=" + std::to_string(eps) +
                  "): expected num_features >= 1, eps > 0 and 0 <= momentum <= 1");
    return num_features;
  }

  std::int64_t num_features_;
  double eps_;
  std::optional<double> momentum_;
  bool affine_, track_running_stats_;
  bool batch_stats_ = true;  // the last forward normalised with batch statistics
  bool fused_relu_ = false;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_, grad_input_, save_mean_, save_invstd_;
};

template <typename T = float>
using BatchNorm1d = BatchNorm<T, 1>;
template <typename T = float>
using BatchNorm2d = BatchNorm<T, 2>;

}  // namespace minicnn
