#pragma once
// One row of softmax cross-entropy with label smoothing (PyTorch's CrossEntropyLoss), shared by
// the CPU and CUDA backends (see host_device.hpp).
#include <cmath>
#include <cstdint>

#include "minicnn/host_device.hpp"

namespace minicnn::ops::kernels {

// logits row [classes] with class `target` -> writes d(mean loss)/d(row) into grad_row (the
// row's share of a mean over `batch` rows) and returns the row's loss, in double.
// loss = (1 - s) * (-log p[target]) + (s / classes) * sum_c (-log p[c]).
template <typename T>
MINICNN_HOST_DEVICE inline double softmax_cross_entropy_row(std::int64_t classes, const T* row, std::int64_t target,
                                                            double label_smoothing, std::int64_t batch, T* grad_row) {
  using std::exp;
  using std::log;
  T max_logit = row[0];
  for (std::int64_t c = 1; c < classes; ++c)
    if (max_logit < row[c]) max_logit = row[c];
  T sum_exp = T(0);
  for (std::int64_t c = 0; c < classes; ++c) sum_exp += exp(row[c] - max_logit);
  const T log_sum_exp = max_logit + log(sum_exp);
  double sum_neg_log_prob = 0.0;
  for (std::int64_t c = 0; c < classes; ++c) sum_neg_log_prob += static_cast<double>(log_sum_exp - row[c]);
  const double nll = static_cast<double>(log_sum_exp - row[target]);
  const double smooth = label_smoothing / static_cast<double>(classes);
  for (std::int64_t c = 0; c < classes; ++c) {
    const double target_prob = (c == target ? 1.0 - label_smoothing : 0.0) + smooth;
    grad_row[c] =
        static_cast<T>((static_cast<double>(exp(row[c] - log_sum_exp)) - target_prob) / static_cast<double>(batch));
  }
  return (1.0 - label_smoothing) * nll + smooth * sum_neg_log_prob;
}

}  // namespace minicnn::ops::kernels
