#pragma once
// CrossEntropyLoss: mean over the batch of -log softmax(logits)[target], with optional label
// smoothing (PyTorch's formula: (1 - s) * nll + s * mean over classes of -log p).
#include <string>
#include <vector>

#include "minicnn/ops/dispatch.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn {

template <typename T = float>
class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(double label_smoothing = 0.0) : label_smoothing_(label_smoothing) {
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
      throw error("CrossEntropyLoss(label_smoothing=" + std::to_string(label_smoothing) + "): expected a value in [0, 1]");
  }

  double label_smoothing() const { return label_smoothing_; }

  // logits [N, classes], targets: N class indices in [0, classes).
  T forward(const Tensor<T>& logits, const std::vector<int>& targets) {
    if (logits.rank() != 2 || logits.dim(0) < 1)
      throw error("CrossEntropyLoss: expected logits [N, classes] with N >= 1, found " + logits.shape().str());
    if (static_cast<std::int64_t>(targets.size()) != logits.dim(0))
      throw error("CrossEntropyLoss: " + std::to_string(targets.size()) + " targets for logits of shape " +
                  logits.shape().str() + " (expected " + std::to_string(logits.dim(0)) + ")");
    for (std::size_t i = 0; i < targets.size(); ++i)
      if (targets[i] < 0 || targets[i] >= logits.dim(1))
        throw error("CrossEntropyLoss: target " + std::to_string(i) + " is " + std::to_string(targets[i]) +
                    ", expected a class index in [0, " + std::to_string(logits.dim(1)) + ")");
    grad_.resize(logits.shape());
    loss_ = static_cast<T>(ops::softmax_cross_entropy(logits, targets.data(), label_smoothing_, grad_));
    return loss_;
  }

  // d(loss)/d(logits) of the last forward, [N, classes].
  const Tensor<T>& backward() const {
    if (grad_.empty()) throw error("CrossEntropyLoss.backward: called before forward");
    return grad_;
  }

  T value() const { return loss_; }

 private:
  double label_smoothing_;
  T loss_ = T(0);
  Tensor<T> grad_;
};

}  // namespace minicnn
