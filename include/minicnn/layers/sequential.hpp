#pragma once
// Sequential: runs its children in order. Children are named "0", "1", ... like PyTorch's
// nn.Sequential (or given names), so parameter names come out as in a PyTorch state_dict:
// "feature_extractor.0.weight", "classifier.5.bias".
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/layers/relu.hpp"

namespace minicnn {

template <typename T = float>
class Sequential : public Module<T> {
 public:
  Sequential() = default;

  // Appends a child named by its position.
  Module<T>& add(std::unique_ptr<Module<T>> child) { return add(std::to_string(children_.size()), std::move(child)); }
  Module<T>& add(std::string name, std::unique_ptr<Module<T>> child) {
    if (!child) throw error("Sequential::add: child '" + name + "' is null");
    for (const auto& existing : children_)
      if (existing.name == name) throw error("Sequential::add: a child named '" + name + "' exists already");
    child->set_training(this->is_training());
    children_.push_back({std::move(name), std::move(child)});
    return *children_.back().module;
  }
  // Constructs a layer in place and returns it: seq.emplace<Conv2d<float>>(1, 32, 3, 1, 1).
  template <typename Layer, typename... Args>
  Layer& emplace(Args&&... args) {
    return static_cast<Layer&>(add(std::make_unique<Layer>(std::forward<Args>(args)...)));
  }

  std::size_t size() const { return children_.size(); }
  Module<T>& operator[](std::size_t index) { return *children_.at(index).module; }
  const Module<T>& operator[](std::size_t index) const { return *children_.at(index).module; }
  const std::string& child_name(std::size_t index) const { return children_.at(index).name; }

  Shape output_shape(const Shape& input) const override {
    Shape shape = input;
    for (const auto& child : children_) shape = child.module->output_shape(shape);
    return shape;
  }

  // A Conv2d directly followed by a ReLU runs as one: the conv applies the ReLU as it stores its
  // output and the ReLU passes it through (Conv2d::forward_relu, ReLU::forward_rectified). The
  // results are the same bits as running them one after the other; the ReLU's pass over memory
  // is saved. Backward is unchanged.
  const Tensor<T>& forward(const Tensor<T>& input) override {
    const Tensor<T>* x = &input;
    for (std::size_t i = 0; i < children_.size(); ++i) {
      if (fuses_with_next(i)) {
        auto& conv = static_cast<Conv2d<T>&>(*children_[i].module);
        auto& relu = static_cast<ReLU<T>&>(*children_[i + 1].module);
        x = &relu.forward_rectified(conv.forward_relu(*x));
        ++i;
        continue;
      }
      x = &children_[i].module->forward(*x);
    }
    return *x;
  }

  // Whether forward runs child `index` (a Conv2d) fused with the ReLU that follows it.
  bool fuses_with_next(std::size_t index) const {
    return index + 1 < children_.size() && dynamic_cast<const Conv2d<T>*>(children_[index].module.get()) &&
           dynamic_cast<const ReLU<T>*>(children_[index + 1].module.get());
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>* grad = &grad_output;
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) grad = &it->module->backward(*grad);
    return *grad;
  }

  void collect_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override {
    for (auto& child : children_) child.module->collect_parameters(prefix + child.name + ".", out);
  }

  void set_training(bool training) override {
    Module<T>::set_training(training);
    for (auto& child : children_) child.module->set_training(training);
  }

  // Only the first child sees this sequence's input.
  void set_input_grad(bool enabled) override {
    Module<T>::set_input_grad(enabled);
    if (!children_.empty()) children_.front().module->set_input_grad(enabled);
  }

  std::string repr() const override {
    std::string s = "Sequential(\n";
    for (const auto& child : children_) {
      std::string body = child.module->repr(), indented;
      for (char c : body) indented += c == '\n' ? std::string("\n  ") : std::string(1, c);
      s += "  (" + child.name + "): " + indented + "\n";
    }
    return s + ")";
  }

 private:
  struct Child {
    std::string name;
    std::unique_ptr<Module<T>> module;
  };
  std::vector<Child> children_;
};

}  // namespace minicnn
