#pragma once
// Classification metrics from a confusion matrix: accuracy and per-class precision, recall and
// F1, with scikit-learn's conventions (a class never predicted has precision 0, a class absent
// from the targets has recall 0, and F1 is 0 when precision + recall is 0).
//
// Layout: count(true_class, predicted_class), rows = true classes, columns = predictions, as
// sklearn.metrics.confusion_matrix and the tutorial's heatmap.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn {

// Index of the largest of `count` values; the first one on ties, as torch.argmax on the CPU.
// A NaN is never chosen over a number.
template <typename T>
int argmax(const T* values, std::int64_t count) {
  if (count < 1) throw error("argmax: expected at least one value, got " + std::to_string(count));
  std::int64_t best = 0;
  for (std::int64_t i = 1; i < count; ++i)
    if (values[i] > values[best] || (values[best] != values[best] && values[i] == values[i])) best = i;
  return static_cast<int>(best);
}

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes) : num_classes_(num_classes) {
    if (num_classes < 1)
      throw error("ConfusionMatrix: expected num_classes >= 1, got " + std::to_string(num_classes));
    counts_.assign(static_cast<std::size_t>(num_classes) * static_cast<std::size_t>(num_classes), 0);
  }

  int num_classes() const { return num_classes_; }

  void add(int true_class, int predicted_class) {
    check_class(true_class, "true class");
    check_class(predicted_class, "predicted class");
    ++counts_[index(true_class, predicted_class)];
  }

  // Adds a batch: logits [N, num_classes], targets N class indices. The prediction of a row is
  // its argmax. Returns how many of the N were right.
  template <typename T>
  std::int64_t add_batch(const Tensor<T>& logits, const std::vector<int>& targets) {
    if (logits.rank() != 2 || logits.dim(1) != num_classes_)
      throw error("ConfusionMatrix::add_batch: expected logits [N, " + std::to_string(num_classes_) + "], found " +
                  logits.shape().str());
    if (static_cast<std::int64_t>(targets.size()) != logits.dim(0))
      throw error("ConfusionMatrix::add_batch: " + std::to_string(targets.size()) + " targets for logits " +
                  logits.shape().str());
    std::int64_t right = 0;
    for (std::int64_t row = 0; row < logits.dim(0); ++row) {
      const int predicted = argmax(logits.data() + row * num_classes_, num_classes_);
      add(targets[static_cast<std::size_t>(row)], predicted);
      right += predicted == targets[static_cast<std::size_t>(row)];
    }
    return right;
  }

  // Adds every count of another matrix of the same size (e.g. one per evaluation shard).
  void merge(const ConfusionMatrix& other) {
    if (other.num_classes_ != num_classes_)
      throw error("ConfusionMatrix::merge: expected " + std::to_string(num_classes_) + " classes, found " +
                  std::to_string(other.num_classes_));
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  }

  void reset() { counts_.assign(counts_.size(), 0); }

  std::int64_t count(int true_class, int predicted_class) const {
    check_class(true_class, "true class");
    check_class(predicted_class, "predicted class");
    return counts_[index(true_class, predicted_class)];
  }

  std::int64_t total() const {
    std::int64_t n = 0;
    for (std::int64_t c : counts_) n += c;
    return n;
  }
  std::int64_t correct() const {
    std::int64_t n = 0;
    for (int c = 0; c < num_classes_; ++c) n += counts_[index(c, c)];
    return n;
  }
  // Fraction right, in [0, 1]; 0 for an empty matrix.
  double accuracy() const { return ratio(correct(), total()); }

  // How many samples of class c there are (row sum) and how many were predicted as c (column sum).
  std::int64_t support(int true_class) const {
    check_class(true_class, "true class");
    std::int64_t n = 0;
    for (int p = 0; p < num_classes_; ++p) n += counts_[index(true_class, p)];
    return n;
  }
  std::int64_t predicted(int predicted_class) const {
    check_class(predicted_class, "predicted class");
    std::int64_t n = 0;
    for (int t = 0; t < num_classes_; ++t) n += counts_[index(t, predicted_class)];
    return n;
  }

  // TP / (TP + FP): of the samples predicted as c, the fraction that are c.
  double precision(int c) const { return ratio(count(c, c), predicted(c)); }
  // TP / (TP + FN): of the samples of class c, the fraction predicted as c.
  double recall(int c) const { return ratio(count(c, c), support(c)); }
  // Harmonic mean of precision and recall.
  double f1(int c) const {
    const double p = precision(c), r = recall(c);
    return p + r > 0.0 ? 2.0 * p * r / (p + r) : 0.0;
  }

  // Unweighted means over classes (sklearn's average="macro").
  double macro_precision() const { return mean_over_classes(&ConfusionMatrix::precision); }
  double macro_recall() const { return mean_over_classes(&ConfusionMatrix::recall); }
  double macro_f1() const { return mean_over_classes(&ConfusionMatrix::f1); }

 private:
  std::size_t index(int true_class, int predicted_class) const {
    return static_cast<std::size_t>(true_class) * static_cast<std::size_t>(num_classes_) +
           static_cast<std::size_t>(predicted_class);
  }
  void check_class(int c, const char* what) const {
    if (c < 0 || c >= num_classes_)
      throw error(std::string("ConfusionMatrix: ") + what + " " + std::to_string(c) + " is out of range [0, " +
                  std::to_string(num_classes_) + ")");
  }
  static double ratio(std::int64_t numerator, std::int64_t denominator) {
    return denominator > 0 ? static_cast<double>(numerator) / static_cast<double>(denominator) : 0.0;
  }
  double mean_over_classes(double (ConfusionMatrix::*metric)(int) const) const {
    double sum = 0.0;
    for (int c = 0; c < num_classes_; ++c) sum += (this->*metric)(c);
    return sum / num_classes_;
  }

  int num_classes_;
  std::vector<std::int64_t> counts_;
};

}  // namespace minicnn
