#pragma once
// The optimiser interface the schedulers drive. Concrete optimisers are templates on the
// scalar type; this base is not, so a scheduler works with any of them.
//
// Parameter groups, as PyTorch's optimizer.param_groups: an optimiser holds one or more groups,
// each with its own learning rate and weight decay (the parameters themselves live in the
// templated optimiser; see param_groups.hpp). An optimiser built from one list of parameters
// has exactly one group, and then lr() / set_lr() mean what they always meant.
//
// With several groups:
//   lr()           is group 0's learning rate (PyTorch's param_groups[0]["lr"]);
//   set_lr(lr)     gives every group that learning rate (PyTorch's
//                  `for g in param_groups: g["lr"] = lr`), dropping any ratio between groups;
//   set_lr_scale(s) gives every group initial_lr * s (LambdaLR's rule), keeping the ratios:
//                  the way to drive groups from a pure schedule of schedules.hpp.
// initial_lr(g) is the learning rate group g was built with. PyTorch stores "initial_lr" when
// the first scheduler attaches; here it is fixed when the optimiser is built, so a set_lr()
// before a scheduler is made does not move the scheduler's base.
#include <cstddef>
#include <string>
#include <vector>

#include "minicnn/error.hpp"

namespace minicnn {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  virtual void zero_grad() = 0;

  std::size_t num_groups() const { return groups_.size(); }

  double lr() const { return lr(0); }
  double lr(std::size_t group) const { return settings(group, "lr").lr; }
  double initial_lr(std::size_t group) const { return settings(group, "initial_lr").initial_lr; }
  double weight_decay() const { return weight_decay(0); }
  double weight_decay(std::size_t group) const { return settings(group, "weight_decay").weight_decay; }

  void set_lr(double lr) {
    check_lr(lr, "Optimizer::set_lr");
    for (GroupSettings& group : groups_) group.lr = lr;
  }
  void set_lr(std::size_t group, double lr) {
    check_lr(lr, "Optimizer::set_lr");
    settings(group, "set_lr").lr = lr;
  }
  void set_lr_scale(double scale) {
    if (!(scale >= 0.0)) throw error("Optimizer::set_lr_scale: expected a scale >= 0, got " + std::to_string(scale));
    for (GroupSettings& group : groups_) group.lr = group.initial_lr * scale;
  }

 protected:
  Optimizer() = default;

  // Appends a group; `who` names the optimiser in error messages.
  void add_group(double lr, double weight_decay, const std::string& who) {
    const std::string where = who + ", parameter group " + std::to_string(groups_.size());
    check_lr(lr, where);
    if (!(weight_decay >= 0.0))
      throw error(where + ": expected weight_decay >= 0, got " + std::to_string(weight_decay));
    groups_.push_back(GroupSettings{lr, lr, weight_decay});
  }

 private:
  struct GroupSettings {
    double lr;
    double initial_lr;
    double weight_decay;
  };

  static void check_lr(double lr, const std::string& where) {
    if (!(lr >= 0.0)) throw error(where + ": expected a learning rate >= 0, got " + std::to_string(lr));
  }
  const GroupSettings& settings(std::size_t group, const char* accessor) const {
    if (group >= groups_.size())
      throw error(std::string("Optimizer::") + accessor + ": expected a parameter group index below " +
                  std::to_string(groups_.size()) + ", got " + std::to_string(group));
    return groups_[group];
  }
  GroupSettings& settings(std::size_t group, const char* accessor) {
    return const_cast<GroupSettings&>(static_cast<const Optimizer&>(*this).settings(group, accessor));
  }

  std::vector<GroupSettings> groups_;
};

}  // namespace minicnn
