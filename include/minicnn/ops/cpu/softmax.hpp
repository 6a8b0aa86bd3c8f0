#pragma once
// Softmax cross-entropy over a batch of logits, with optional label smoothing (PyTorch's
// CrossEntropyLoss, reduction='mean').
//
// Shapes: logits [N, classes], targets [N] -> loss (scalar), grad_logits [N, classes]
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace minicnn::ops::cpu {

// Returns the mean loss and writes d(loss)/d(logits). The loss is accumulated in double in a
// fixed order, so it does not depend on threads. Targets must be in range (callers check).
template <typename T>
double softmax_cross_entropy(std::int64_t batch, std::int64_t classes, const T* logits, const int* targets,
                             double label_smoothing, T* grad_logits) {
  double total = 0.0;
  const double smooth = label_smoothing / static_cast<double>(classes);
  for (std::int64_t n = 0; n < batch; ++n) {
    const T* row = logits + n * classes;
    T* grad = grad_logits + n * classes;
    const T max_logit = *std::max_element(row, row + classes);
    T sum_exp = T(0);
    for (std::int64_t c = 0; c < classes; ++c) sum_exp += std::exp(row[c] - max_logit);
    const T log_sum_exp = max_logit + std::log(sum_exp);
    double sum_neg_log_prob = 0.0;
    for (std::int64_t c = 0; c < classes; ++c) sum_neg_log_prob += static_cast<double>(log_sum_exp - row[c]);
    const double nll = static_cast<double>(log_sum_exp - row[targets[n]]);
    total += (1.0 - label_smoothing) * nll + smooth * sum_neg_log_prob;
    for (std::int64_t c = 0; c < classes; ++c) {
      const double target_prob = (c == targets[n] ? 1.0 - label_smoothing : 0.0) + smooth;
      grad[c] = static_cast<T>((static_cast<double>(std::exp(row[c] - log_sum_exp)) - target_prob) /
                               static_cast<double>(batch));
    }
  }
  return total / static_cast<double>(batch);
}

}  // namespace minicnn::ops::cpu
