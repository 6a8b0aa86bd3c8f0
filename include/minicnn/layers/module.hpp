#pragma once
// The layer contract, written once (see docs/design.md, "Gradient convention"):
//
//   forward(input)       returns the layer's output, held in a buffer the layer owns. The input
//                        must stay alive and unchanged until backward() has run: layers keep a
//                        pointer to it instead of a copy.
//   backward(grad_out)   grad_out has the shape of the last forward's output. Returns the
//                        gradient with respect to the input (ASSIGNED, in a buffer the layer
//                        owns) and ACCUMULATES (+=) into every parameter's grad, like PyTorch:
//                        call zero_grad() (or the optimiser's) before each step.
//                        When input gradients are switched off (set_input_grad(false)) the
//                        returned tensor is empty and that work is skipped.
//   train() / eval()     switch the mode (Dropout is the identity in eval mode).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/tensor.hpp"

namespace minicnn {

// A trainable tensor and its gradient. `name` is the local name ("weight", "bias"); full
// names like "feature_extractor.0.weight" come from Module::named_parameters().
template <typename T>
struct Parameter {
  std::string name;
  Tensor<T> value;
  Tensor<T> grad;

  Parameter(std::string parameter_name, const Shape& shape)
      : name(std::move(parameter_name)), value(shape), grad(shape) {}
};

template <typename T>
struct NamedParameter {
  std::string name;
  Parameter<T>* parameter;
};

template <typename T>
class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual const Tensor<T>& forward(const Tensor<T>& input) = 0;
  virtual const Tensor<T>& backward(const Tensor<T>& grad_output) = 0;

  // The output shape for an input shape; throws minicnn::error naming the layer when the input
  // does not fit it. forward() checks the same way.
  virtual Shape output_shape(const Shape& input) const = 0;
  // PyTorch-style description, e.g. "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))".
  virtual std::string repr() const = 0;

  // Appends this module's parameters, with `prefix` + local name, in PyTorch state_dict order.
  virtual void collect_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) {
    for (Parameter<T>* p : own_parameters()) out.push_back({prefix + p->name, p});
  }

  std::vector<NamedParameter<T>> named_parameters() {
    std::vector<NamedParameter<T>> out;
    collect_parameters("", out);
    return out;
  }
  std::vector<Parameter<T>*> parameters() {
    std::vector<Parameter<T>*> out;
    for (auto& named : named_parameters()) out.push_back(named.parameter);
    return out;
  }
  std::int64_t num_parameters() {
    std::int64_t n = 0;
    for (auto& named : named_parameters()) n += named.parameter->value.size();
    return n;
  }
  void zero_grad() {
    for (auto& named : named_parameters()) named.parameter->grad.zeros();
  }

  // Moves every parameter (value and grad) to `device`. The layers' own buffers need no move:
  // the ops put them where the input is (see ops/dispatch.hpp), so after model.to(Device::cuda)
  // a forward on a GPU tensor runs on the GPU. Throws minicnn::error for Device::cuda in a
  // build without the CUDA backend or on a machine without a usable GPU.
  void to(Device device) {
    for (auto& named : named_parameters()) {
      named.parameter->value.to(device);
      named.parameter->grad.to(device);
    }
  }
  // Where the parameters live (the CPU for a module without parameters).
  Device device() {
    const auto named = named_parameters();
    return named.empty() ? Device::cpu : named.front().parameter->value.device();
  }

  virtual void set_training(bool training) { training_ = training; }
  void train(bool training = true) { set_training(training); }
  void eval() { set_training(false); }
  bool is_training() const { return training_; }

  // Whether backward() computes the gradient with respect to the input. The first layer of a
  // network does not need it (PyTorch skips it too when the input does not require grad).
  virtual void set_input_grad(bool enabled) { input_grad_ = enabled; }
  bool input_grad() const { return input_grad_; }

 protected:
  // A leaf layer's own parameters, in state_dict order.
  virtual std::vector<Parameter<T>*> own_parameters() { return {}; }

  // Throws unless backward() follows a forward() whose output had the shape of grad_output.
  void check_backward(const Tensor<T>* input, const Tensor<T>& output, const Tensor<T>& grad_output,
                      const char* layer) const {
    if (input == nullptr)
      throw error(std::string(layer) + ".backward: called before forward");
    if (output.shape() != grad_output.shape())  // the label is built only on failure: no allocation per step
      check_same_shape(output.shape(), grad_output.shape(), std::string(layer) + ".backward: grad_output");
  }

  bool training_ = true;
  bool input_grad_ = true;
};

}  // namespace minicnn
