// ConfusionMatrix: a hand-worked example, scikit-learn's zero-division conventions, a
// brute-force cross-check on random labels, add_batch from logits, and argument errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "minicnn/metrics.hpp"
#include "minicnn/random.hpp"

using minicnn::ConfusionMatrix;

TEST_CASE("ConfusionMatrix: a worked three-class example", "[metrics]") {
  // targets     0 0 0 | 1 1 | 2 2 2 2
  // predictions 0 1 0 | 1 2 | 2 2 1 2
  // matrix (rows true, columns predicted):  [2 1 0]
  //                                         [0 1 1]
  //                                         [0 1 3]
  const std::vector<int> targets = {0, 0, 0, 1, 1, 2, 2, 2, 2};
  const std::vector<int> predictions = {0, 1, 0, 1, 2, 2, 2, 1, 2};
  ConfusionMatrix matrix(3);
  for (std::size_t i = 0; i < targets.size(); ++i) matrix.add(targets[i], predictions[i]);

  CHECK(matrix.count(0, 0) == 2);
  CHECK(matrix.count(0, 1) == 1);
  CHECK(matrix.count(1, 2) == 1);
  CHECK(matrix.count(2, 1) == 1);
  CHECK(matrix.count(2, 0) == 0);
  CHECK(matrix.total() == 9);
  CHECK(matrix.correct() == 6);
  CHECK(matrix.accuracy() == Approx(6.0 / 9.0));
  CHECK(matrix.support(2) == 4);
  CHECK(matrix.predicted(1) == 3);

  // class 0: TP 2, predicted 2, support 3
  CHECK(matrix.precision(0) == Approx(1.0));
  CHECK(matrix.recall(0) == Approx(2.0 / 3.0));
  CHECK(matrix.f1(0) == Approx(0.8));
  // class 1: TP 1, predicted 3, support 2
  CHECK(matrix.precision(1) == Approx(1.0 / 3.0));
  CHECK(matrix.recall(1) == Approx(0.5));
  CHECK(matrix.f1(1) == Approx(0.4));
  // class 2: TP 3, predicted 4, support 4
  CHECK(matrix.precision(2) == Approx(0.75));
  CHECK(matrix.recall(2) == Approx(0.75));
  CHECK(matrix.f1(2) == Approx(0.75));

  CHECK(matrix.macro_precision() == Approx((1.0 + 1.0 / 3.0 + 0.75) / 3.0));
  CHECK(matrix.macro_recall() == Approx((2.0 / 3.0 + 0.5 + 0.75) / 3.0));
  CHECK(matrix.macro_f1() == Approx((0.8 + 0.4 + 0.75) / 3.0));
}

TEST_CASE("ConfusionMatrix: classes never seen or never predicted score 0, not NaN", "[metrics]") {
  ConfusionMatrix matrix(3);
  CHECK(matrix.accuracy() == 0.0);  // empty
  matrix.add(0, 0);
  matrix.add(1, 0);  // class 1 present but never predicted; class 2 neither present nor predicted
  CHECK(matrix.precision(1) == 0.0);
  CHECK(matrix.recall(1) == 0.0);
  CHECK(matrix.f1(1) == 0.0);
  CHECK(matrix.precision(2) == 0.0);
  CHECK(matrix.recall(2) == 0.0);
  CHECK(matrix.f1(2) == 0.0);
  CHECK(matrix.precision(0) == Approx(0.5));
  CHECK(matrix.recall(0) == Approx(1.0));
  CHECK_FALSE(std::isnan(matrix.macro_f1()));
}

TEST_CASE("ConfusionMatrix agrees with counting from the raw pairs", "[metrics]") {
  const int classes = 10, samples = 5000;
  minicnn::Generator gen(42);
  std::vector<int> targets(samples), predictions(samples);
  ConfusionMatrix matrix(classes);
  for (int i = 0; i < samples; ++i) {
    targets[static_cast<std::size_t>(i)] = static_cast<int>(gen.below(classes));
    // Right 70% of the time, otherwise a uniform guess: every cell gets some mass.
    predictions[static_cast<std::size_t>(i)] =
        gen.uniform() < 0.7 ? targets[static_cast<std::size_t>(i)] : static_cast<int>(gen.below(classes));
    matrix.add(targets[static_cast<std::size_t>(i)], predictions[static_cast<std::size_t>(i)]);
  }
  int right = 0;
  for (int i = 0; i < samples; ++i) right += targets[static_cast<std::size_t>(i)] == predictions[static_cast<std::size_t>(i)];
  CHECK(matrix.accuracy() == Approx(static_cast<double>(right) / samples));
  for (int c = 0; c < classes; ++c) {
    int true_positive = 0, false_positive = 0, false_negative = 0;
    for (int i = 0; i < samples; ++i) {
      const bool is_c = targets[static_cast<std::size_t>(i)] == c, said_c = predictions[static_cast<std::size_t>(i)] == c;
      true_positive += is_c && said_c;
      false_positive += !is_c && said_c;
      false_negative += is_c && !said_c;
    }
    const double precision = static_cast<double>(true_positive) / (true_positive + false_positive);
    const double recall = static_cast<double>(true_positive) / (true_positive + false_negative);
    INFO("class " << c);
    CHECK(matrix.precision(c) == Approx(precision));
    CHECK(matrix.recall(c) == Approx(recall));
    CHECK(matrix.f1(c) == Approx(2 * precision * recall / (precision + recall)));
  }
}

TEST_CASE("ConfusionMatrix::add_batch predicts by argmax, first index on ties", "[metrics]") {
  minicnn::Tensor<float> logits({4, 3});
  const float rows[4][3] = {{0.1f, 2.0f, -1.0f},   // -> 1
                            {5.0f, 5.0f, 1.0f},    // tie -> 0
                            {-3.0f, -2.0f, -1.0f}, // -> 2
                            {std::numeric_limits<float>::quiet_NaN(), 0.0f, -1.0f}};  // NaN skipped -> 1
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 3; ++c) logits(r, c) = rows[r][c];
  ConfusionMatrix matrix(3);
  const std::int64_t right = matrix.add_batch(logits, {1, 1, 2, 0});
  CHECK(right == 2);
  CHECK(matrix.count(1, 1) == 1);
  CHECK(matrix.count(1, 0) == 1);
  CHECK(matrix.count(2, 2) == 1);
  CHECK(matrix.count(0, 1) == 1);

  ConfusionMatrix other(3);
  other.add(0, 0);
  matrix.merge(other);
  CHECK(matrix.total() == 5);
  CHECK(matrix.count(0, 0) == 1);
  matrix.reset();
  CHECK(matrix.total() == 0);
}

TEST_CASE("ConfusionMatrix rejects bad arguments with minicnn::error", "[metrics]") {
  CHECK_THROWS_AS(ConfusionMatrix(0), minicnn::error);
  ConfusionMatrix matrix(3);
  CHECK_THROWS_WITH(matrix.add(3, 0), Catch::Contains("true class 3 is out of range [0, 3)"));
  CHECK_THROWS_WITH(matrix.add(0, -1), Catch::Contains("predicted class -1"));
  CHECK_THROWS_AS(matrix.precision(7), minicnn::error);
  minicnn::Tensor<float> logits({2, 4});
  CHECK_THROWS_WITH(matrix.add_batch(logits, {0, 1}), Catch::Contains("expected logits [N, 3]"));
  minicnn::Tensor<float> right_width({2, 3});
  CHECK_THROWS_WITH(matrix.add_batch(right_width, {0}), Catch::Contains("1 targets"));
  CHECK_THROWS_AS(matrix.merge(ConfusionMatrix(4)), minicnn::error);
}
