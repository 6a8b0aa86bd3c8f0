#pragma once
// The module system: what every layer and every network is (see docs/design.md, "Modules").
//
// A Module owns, in registration order,
//   * its parameters  (Parameter<T>: a trained tensor and its gradient), registered by the layer
//                     that holds them as members: register_parameter(weight);
//   * its buffers     (named tensors that are state but not trained, such as BatchNorm's
//                     running_mean), registered the same way: register_buffer("running_mean", t);
//   * its children    (named sub-modules it owns): register_module("conv1", std::make_unique<...>).
// From these, everything that walks a model is written once, here: named_parameters(),
// named_buffers(), state() (PyTorch's state_dict order: per module its parameters, then its
// buffers, then its children, recursively), train()/eval(), to(device), zero_grad() and repr().
//
// The layer contract (see docs/design.md, "Gradient convention"):
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
//   train() / eval()     switch the mode of the module and all its children.
#include <cstdint>
#include <memory>
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

// One entry of a module's state (PyTorch's state_dict): a parameter's value or a buffer.
template <typename T>
struct NamedTensor {
  std::string name;
  Tensor<T>* tensor;
  bool is_parameter;
};

// An element-wise function a layer applies and that the layer before it may apply instead, as
// it stores its output (see Module::fuse_pointwise and Sequential's fusion plan).
enum class Pointwise { none, relu };

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

  // The class name PyTorch prints ("Conv2d") and the arguments inside its parentheses
  // ("1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)"), as PyTorch's extra_repr.
  virtual std::string type_name() const = 0;
  virtual std::string extra_repr() const { return {}; }

  // PyTorch's repr: "Conv2d(1, 32, ...)" for a module without children, else the type name and
  // one indented "(name): child" line per child.
  std::string repr() const {
    if (children_.empty()) return type_name() + "(" + extra_repr() + ")";
    std::string text = type_name() + "(\n";
    if (const std::string extra = extra_repr(); !extra.empty()) text += "  " + extra + "\n";
    for (const Child& child : children_) {
      std::string indented;
      for (char c : child.module->repr()) indented += c == '\n' ? std::string("\n  ") : std::string(1, c);
      text += "  (" + child.name + "): " + indented + "\n";
    }
    return text + ")";
  }

  // --- The walks, in registration order -------------------------------------------------------

  std::vector<NamedParameter<T>> named_parameters() {
    std::vector<NamedParameter<T>> out;
    walk("", [&](Module& module, const std::string& prefix) {
      for (Parameter<T>* p : module.parameters_) out.push_back({prefix + p->name, p});
    });
    return out;
  }
  std::vector<Parameter<T>*> parameters() {
    std::vector<Parameter<T>*> out;
    for (auto& named : named_parameters()) out.push_back(named.parameter);
    return out;
  }
  std::vector<std::pair<std::string, Tensor<T>*>> named_buffers() {
    std::vector<std::pair<std::string, Tensor<T>*>> out;
    walk("", [&](Module& module, const std::string& prefix) {
      for (auto& [name, tensor] : module.buffers_) out.push_back({prefix + name, tensor});
    });
    return out;
  }
  // Every tensor a saved model holds, with PyTorch's state_dict names and order: for each
  // module (pre-order), its parameters, then its buffers.
  std::vector<NamedTensor<T>> state() {
    std::vector<NamedTensor<T>> out;
    walk("", [&](Module& module, const std::string& prefix) {
      for (Parameter<T>* p : module.parameters_) out.push_back({prefix + p->name, &p->value, true});
      for (auto& [name, tensor] : module.buffers_) out.push_back({prefix + name, tensor, false});
    });
    return out;
  }
  // The module and its descendants, pre-order, with their dotted names ("" for this one).
  std::vector<std::pair<std::string, Module*>> named_modules() {
    std::vector<std::pair<std::string, Module*>> out;
    walk("", [&](Module& module, const std::string& prefix) {
      out.push_back({prefix.empty() ? prefix : prefix.substr(0, prefix.size() - 1), &module});
    });
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

  // Moves every parameter (value and grad) and buffer to `device`. The layers' own work buffers
  // need no move: the ops put them where the input is (see ops/dispatch.hpp), so after
  // model.to(Device::cuda) a forward on a GPU tensor runs on the GPU. Throws minicnn::error for
  // Device::cuda in a build without the CUDA backend or on a machine without a usable GPU.
  void to(Device device) {
    for (auto& named : named_parameters()) {
      named.parameter->value.to(device);
      named.parameter->grad.to(device);
    }
    for (auto& named : named_buffers()) named.second->to(device);
  }
  // Where the parameters live (the CPU for a module without parameters).
  Device device() {
    const auto named = named_parameters();
    return named.empty() ? Device::cpu : named.front().parameter->value.device();
  }

  // Training mode for this module and all its children.
  void train(bool training = true) {
    walk("", [&](Module& module, const std::string&) { module.training_ = training; });
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Whether backward() computes the gradient with respect to the input. The first layer of a
  // network does not need it (PyTorch skips it too when the input does not require grad).
  // A container passes the switch on to the child that sees its input.
  virtual void set_input_grad(bool enabled) { input_grad_ = enabled; }
  bool input_grad() const { return input_grad_; }

  // --- Fusion capabilities (containers plan fusions once, see Sequential) -----------------------

  // The element-wise function this layer is, if a producer can apply it instead (ReLU: relu).
  virtual Pointwise pointwise() const { return Pointwise::none; }
  // Asks this layer to apply `op` to its output as it stores it; returns whether it will.
  // Pointwise::none undoes it. backward() then still takes the gradient with respect to the
  // output before `op` (which the pointwise layer's backward returns).
  virtual bool fuse_pointwise(Pointwise op) { return op == Pointwise::none; }
  // Tells a pointwise layer that its producer applies it: forward passes its input through.
  virtual void set_applied_by_producer(bool /*applied*/) {}

  // Asks this layer, whose input is the output of a ReLU just before it, to apply that ReLU's
  // gradient to the gradient it computes for its input, relu_grad(input, grad), as it stores it
  // where its kernels can (MaxPool2d, Conv2d's implicit path; elsewhere a pass over the result,
  // the ReLU's own pass moved); false undoes it. Returns whether it will.
  virtual bool apply_input_relu_grad(bool enabled) { return !enabled; }
  // Tells a ReLU that the layer after it applies its gradient: backward passes grad_output through.
  virtual void set_grad_applied_by_consumer(bool /*applied*/) {}

  // Whether this layer is a max-pool a producer can apply as it stores its output (MaxPool2d
  // with a 2x2 window, stride 2, no padding or dilation, floor mode).
  virtual bool is_max_pool_2x2() const { return false; }
  // Asks this layer to apply `pool` (such a max-pool; nullptr undoes it) after its output, and
  // after the pointwise function it applies, in forward passes without gradients (grad_mode.hpp);
  // returns whether it will. The pool's output_shape() checks the sizes, with its own errors.
  virtual bool fuse_max_pool_2x2(const Module* pool) { return pool == nullptr; }
  // Tells a max-pool that its producer applies it in forward passes without gradients: those
  // pass their input through.
  virtual void set_pooled_by_producer(bool /*pooled*/) {}

  // The children, in registration order.
  std::size_t num_children() const { return children_.size(); }
  Module& child(std::size_t index) { return *children_.at(index).module; }
  const Module& child(std::size_t index) const { return *children_.at(index).module; }
  const std::string& child_name(std::size_t index) const { return children_.at(index).name; }

 protected:
  // Registration: parameters and buffers are members of the derived layer (their addresses are
  // stable: modules are neither copied nor moved); children are owned here.
  void register_parameter(Parameter<T>& parameter) {
    claim(parameter.name);
    parameters_.push_back(&parameter);
  }
  void register_buffer(const std::string& name, Tensor<T>& buffer) {
    claim(name);
    buffers_.push_back({name, &buffer});
  }
  template <typename Child>
  Child& register_module(std::string name, std::unique_ptr<Child> child) {
    if (!child) throw error(type_name() + ": child '" + name + "' is null");
    claim(name);
    Child& registered = *child;
    registered.train(training_);
    children_.push_back({std::move(name), std::move(child)});
    return registered;
  }

  // Throws unless backward() follows a forward() whose output had the shape of grad_output.
  void check_backward(const Tensor<T>* input, const Tensor<T>& output, const Tensor<T>& grad_output,
                      const char* layer) const {
    if (input == nullptr) throw error(std::string(layer) + ".backward: called before forward");
    if (output.shape() != grad_output.shape())  // the label is built only on failure: no allocation per step
      check_same_shape(output.shape(), grad_output.shape(), std::string(layer) + ".backward: grad_output");
  }

 private:
  struct Child {
    std::string name;
    std::unique_ptr<Module> module;
  };

  // Calls visit(module, "dotted.prefix.") on this module and its descendants, pre-order.
  template <typename Visit>
  void walk(const std::string& prefix, Visit&& visit) {
    visit(*this, prefix);
    for (Child& child : children_) child.module->walk(prefix + child.name + ".", visit);
  }

  // One name space per module for parameters, buffers and children, as in PyTorch.
  void claim(const std::string& name) const {
    if (name.empty() || name.find('.') != std::string::npos)
      throw error(type_name() + ": '" + name + "' is not a valid name (non-empty, no '.')");
    bool taken = false;
    for (const Parameter<T>* p : parameters_) taken = taken || p->name == name;
    for (const auto& buffer : buffers_) taken = taken || buffer.first == name;
    for (const Child& child : children_) taken = taken || child.name == name;
    if (taken) throw error(type_name() + ": the name '" + name + "' is registered already");
  }

  std::vector<Parameter<T>*> parameters_;
  std::vector<std::pair<std::string, Tensor<T>*>> buffers_;
  std::vector<Child> children_;
  bool training_ = true;
  bool input_grad_ = true;
};

}  // namespace minicnn
