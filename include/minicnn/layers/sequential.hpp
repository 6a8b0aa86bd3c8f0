#pragma once
// Sequential: runs its children in order. Children are named "0", "1", ... like PyTorch's
// nn.Sequential (or given names), so parameter names come out as in a PyTorch state_dict:
// "feature_extractor.0.weight", "classifier.5.bias".
//
// Fusion is planned when a child is added, never discovered during forward: when a child can
// apply the element-wise function of the child after it as it stores its output (a Conv2d
// followed by a ReLU), it is asked to, and the next child is told to pass its input through.
// The results are the same bits as running them one after the other; the pass over memory is
// saved. fused_with_next(i) says which pairs the plan fused.
//
// Likewise in backward: a ReLU's gradient, relu_grad(its output, grad), is applied by the child
// after it (a Conv2d or a MaxPool2d, whose input that output is) as that child stores the
// gradient of its input, and the ReLU's backward passes it through: the same bits, one pass over
// memory fewer. relu_grad_by_next(i) says which ReLUs the plan gave to their consumer.
//
// In forward passes without gradients (NoGradGuard, grad_mode.hpp) a child may also apply the
// 2x2 max-pool that follows it (or follows the pointwise function it applies): a Conv2d stores
// only the maxima, and neither the full-size output nor the pool's argmax, which only backward
// would read, is written. pools_after(i) says which children the plan gave a pool.
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/layers/module.hpp"

namespace minicnn {

template <typename T = float>
class Sequential : public Module<T> {
 public:
  Sequential() = default;

  // Appends a child named by its position.
  Module<T>& add(std::unique_ptr<Module<T>> child) {
    return add(std::to_string(this->num_children()), std::move(child));
  }
  Module<T>& add(std::string name, std::unique_ptr<Module<T>> child) {
    Module<T>& added = this->register_module(std::move(name), std::move(child));
    if (this->num_children() == 1) added.set_input_grad(this->input_grad());
    plan_fusion();
    return added;
  }
  // Constructs a layer in place and returns it: seq.emplace<Conv2d<float>>(1, 32, 3, 1, 1).
  template <typename Layer, typename... Args>
  Layer& emplace(Args&&... args) {
    auto layer = std::make_unique<Layer>(std::forward<Args>(args)...);
    Layer& added = *layer;
    add(std::move(layer));
    return added;
  }

  std::size_t size() const { return this->num_children(); }
  Module<T>& operator[](std::size_t index) { return this->child(index); }
  const Module<T>& operator[](std::size_t index) const { return this->child(index); }

  std::string type_name() const override { return "Sequential"; }

  Shape output_shape(const Shape& input) const override {
    Shape shape = input;
    for (std::size_t i = 0; i < size(); ++i) shape = (*this)[i].output_shape(shape);
    return shape;
  }

  const Tensor<T>& forward(const Tensor<T>& input) override {
    const Tensor<T>* x = &input;
    for (std::size_t i = 0; i < size(); ++i) x = &(*this)[i].forward(*x);
    return *x;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>* grad = &grad_output;
    for (std::size_t i = size(); i-- > 0;) grad = &(*this)[i].backward(*grad);
    return *grad;
  }

  // Whether the fusion plan has child `index` apply the element-wise function of the next one.
  bool fused_with_next(std::size_t index) const { return index < fused_.size() && fused_[index]; }
  // Whether child `index` applies the max-pool after it in forward passes without gradients.
  bool pools_after(std::size_t index) const { return index < pooled_.size() && pooled_[index]; }
  // Whether the backward of child `index` (a ReLU) is applied by the next child.
  bool relu_grad_by_next(std::size_t index) const { return index < relu_grad_.size() && relu_grad_[index]; }

  // Fusion is on by default; off, every child runs its own pass (for comparisons and profiling).
  void set_fusion(bool enabled) {
    fusion_ = enabled;
    plan_fusion();
  }

  // Only the first child sees this sequence's input.
  void set_input_grad(bool enabled) override {
    Module<T>::set_input_grad(enabled);
    if (size() > 0) (*this)[0].set_input_grad(enabled);
  }

 private:
  void plan_fusion() {
    fused_.assign(size(), false);
    pooled_.assign(size(), false);
    relu_grad_.assign(size(), false);
    for (std::size_t i = 0; i < size(); ++i) {
      (*this)[i].fuse_pointwise(Pointwise::none);
      (*this)[i].set_applied_by_producer(false);
      (*this)[i].fuse_max_pool_2x2(nullptr);
      (*this)[i].set_pooled_by_producer(false);
      (*this)[i].apply_input_relu_grad(false);
      (*this)[i].set_grad_applied_by_consumer(false);
    }
    for (std::size_t i = 0; fusion_ && i + 1 < size(); ++i) {
      const Pointwise op = (*this)[i + 1].pointwise();
      if (op != Pointwise::none && (*this)[i].fuse_pointwise(op)) {
        (*this)[i + 1].set_applied_by_producer(true);
        fused_[i] = true;
      }
      const std::size_t pool = fused_[i] ? i + 2 : i + 1;  // after the pointwise child it applies
      if (pool < size() && (*this)[pool].is_max_pool_2x2() && (*this)[i].fuse_max_pool_2x2(&(*this)[pool])) {
        (*this)[pool].set_pooled_by_producer(true);
        pooled_[i] = true;
      }
      if ((*this)[i].pointwise() == Pointwise::relu && (*this)[i + 1].apply_input_relu_grad(true)) {
        (*this)[i].set_grad_applied_by_consumer(true);
        relu_grad_[i] = true;
      }
    }
  }

  std::vector<bool> fused_, pooled_, relu_grad_;
  bool fusion_ = true;
};

}  // namespace minicnn
