#pragma once
// Parameter groups (PyTorch's param_groups) and the recipe that uses them most: weight decay
// kept off biases and normalisation weights.
//
//   auto groups = split_weight_decay(model.named_parameters(), 0.05);
//   AdamW<float> optimizer(groups, /*lr=*/1e-3);  // group 0 decayed, group 1 not
//
// A group's lr or weight_decay left unset takes the optimiser's default, the value passed to
// its constructor (PyTorch's rule). Per-group momentum, dampening, nesterov, betas and eps are
// not modelled: every group shares the optimiser's, so no group field is ever ignored.
#include <cstddef>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "minicnn/layers/module.hpp"
#include "minicnn/optim/optimizer.hpp"

namespace minicnn {

template <typename T>
struct ParameterGroup {
  std::vector<Parameter<T>*> parameters;
  std::optional<double> lr;            // unset: the optimiser's lr
  std::optional<double> weight_decay;  // unset: the optimiser's weight_decay
};

// The part of every concrete optimiser that deals with groups: the parameters of all groups in
// one flat list (group 0's first, each group in the order given), which is also the order of
// per-parameter state such as Adam's exp_avg()[i].
template <typename T>
class GroupedOptimizer : public Optimizer {
 public:
  void zero_grad() override {
    for (Parameter<T>* parameter : parameters_) parameter->grad.zeros();
  }

  // Every parameter, in the order of the optimiser's per-parameter state.
  const std::vector<Parameter<T>*>& parameters() const { return parameters_; }
  // Group g owns parameters()[group_begin(g)] to parameters()[group_end(g) - 1].
  std::size_t group_begin(std::size_t group) const { return group == 0 ? 0 : group_end(group - 1); }
  std::size_t group_end(std::size_t group) const {
    if (group >= group_ends_.size())
      throw error("GroupedOptimizer::group_end: expected a parameter group index below " +
                  std::to_string(group_ends_.size()) + ", got " + std::to_string(group));
    return group_ends_[group];
  }

 protected:
  GroupedOptimizer(std::vector<ParameterGroup<T>> groups, double default_lr, double default_weight_decay,
                   const std::string& who) {
    if (groups.empty()) throw error(who + ": expected at least one parameter group, got none");
    std::set<const Parameter<T>*> seen;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      add_group(groups[g].lr.value_or(default_lr), groups[g].weight_decay.value_or(default_weight_decay), who);
      for (Parameter<T>* parameter : groups[g].parameters) {
        if (parameter == nullptr)
          throw error(who + ", parameter group " + std::to_string(g) + ": a parameter pointer is null");
        // A parameter in two groups would be stepped twice per step(), as PyTorch also refuses.
        if (!seen.insert(parameter).second)
          throw error(who + ", parameter group " + std::to_string(g) + ": parameter '" + parameter->name +
                      "' is already in an earlier group (or twice in this one)");
        parameters_.push_back(parameter);
      }
      group_ends_.push_back(parameters_.size());
    }
  }

  // One list of parameters is one group with the optimiser's settings.
  static std::vector<ParameterGroup<T>> one_group(std::vector<Parameter<T>*> parameters) {
    std::vector<ParameterGroup<T>> groups(1);
    groups[0].parameters = std::move(parameters);
    return groups;
  }

 private:
  std::vector<Parameter<T>*> parameters_;
  std::vector<std::size_t> group_ends_;
};

// Splits named parameters ({name, Parameter<T>*}, as Module<T>::named_parameters() returns
// them) into the two usual groups, each in the given order:
//   group 0, decayed with `weight_decay`: tensors of rank >= 2 (conv and linear weights);
//   group 1, weight_decay 0:              tensors of rank 1 (biases, normalisation weights).
// Both groups leave lr unset, so the optimiser's lr applies. A group may be empty.
template <typename NamedParameters>
auto split_weight_decay(const NamedParameters& named_parameters, double weight_decay) {
  using ParameterType = std::remove_pointer_t<std::decay_t<decltype(std::begin(named_parameters)->parameter)>>;
  using Scalar = typename decltype(std::declval<ParameterType&>().value)::value_type;
  if (!(weight_decay >= 0.0))
    throw error("split_weight_decay: expected weight_decay >= 0, got " + std::to_string(weight_decay));
  std::vector<ParameterGroup<Scalar>> groups(2);
  groups[0].weight_decay = weight_decay;
  groups[1].weight_decay = 0.0;
  for (const auto& named : named_parameters) {
    if (named.parameter == nullptr)
      throw error("split_weight_decay: the parameter pointer of '" + std::string(named.name) + "' is null");
    groups[named.parameter->value.rank() >= 2 ? 0 : 1].parameters.push_back(named.parameter);
  }
  return groups;
}

}  // namespace minicnn
