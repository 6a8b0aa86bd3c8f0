#pragma once
// Softmax cross-entropy over a batch of logits, with optional label smoothing (PyTorch's
// CrossEntropyLoss, reduction='mean').
//
// Shapes: logits [N, classes], targets [N] -> loss (scalar), grad_logits [N, classes]
#include <cstdint>

#include "minicnn/ops/kernels/softmax.hpp"

namespace minicnn::ops::cpu {

// Returns the mean loss and writes d(loss)/d(logits). The loss is accumulated in double in a
// fixed order, so it does not depend on threads. Targets must be in range (callers check).
template <typename T>
double softmax_cross_entropy(std::int64_t batch, std::int64_t classes, const T* logits, const int* targets,
                             double label_smoothing, T* grad_logits) {
  double total = 0.0;
  for (std::int64_t n = 0; n < batch; ++n)
    total += kernels::softmax_cross_entropy_row(classes, logits + n * classes, targets[n], label_smoothing, batch,
                                                grad_logits + n * classes);
  return total / static_cast<double>(batch);
}

}  // namespace minicnn::ops::cpu
