#pragma once
// Test-set evaluation and the reports built from it: the per-class table and confusion matrix
// printed in the terminal, the JSON form, and the two figures drawn from it (minicnn/viz).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "device.hpp"
#include "minicnn/data/loader.hpp"
#include "minicnn/loss.hpp"
#include "minicnn/metrics.hpp"
#include "minicnn/viz/plot.hpp"
#include "model.hpp"

namespace fashion_mnist {

using minicnn::ConfusionMatrix;
using minicnn::Tensor;

// The first `count` images of a data set (all of them when count is 0). Takes the data set by
// value so that the whole one is moved through, not copied and kept beside the subset.
inline minicnn::data::ImageDataset first_images(minicnn::data::ImageDataset dataset, std::int64_t count,
                                                const std::string& flag) {
  if (count == 0 || count == dataset.size()) return dataset;
  if (count > dataset.size())
    throw minicnn::error(flag + " " + std::to_string(count) + ": the data set has only " +
                         std::to_string(dataset.size()) + " images");
  minicnn::Tensor<std::uint8_t> images(minicnn::Shape{count, dataset.height(), dataset.width()});
  std::copy(dataset.images.data(), dataset.images.data() + images.size(), images.data());
  dataset.images = std::move(images);
  dataset.labels.resize(static_cast<std::size_t>(count));
  return dataset;
}

// A test image the model got wrong.
struct Mistake {
  std::int64_t index;  // in the test set
  int true_class, predicted_class;
  double confidence;  // softmax probability of the predicted class
};

struct Evaluation {
  double loss = 0.0;  // mean over the images, with the criterion's label smoothing
  ConfusionMatrix matrix{10};
  std::vector<Mistake> mistakes;  // the first ones in test-set order
  double accuracy() const { return matrix.accuracy(); }
};

// Softmax probabilities of one row of logits.
inline std::vector<double> softmax(const float* logits, std::int64_t classes) {
  const float largest = *std::max_element(logits, logits + classes);
  std::vector<double> p(static_cast<std::size_t>(classes));
  double sum = 0;
  for (std::int64_t c = 0; c < classes; ++c)
    sum += p[static_cast<std::size_t>(c)] = std::exp(static_cast<double>(logits[c] - largest));
  for (double& v : p) v /= sum;
  return p;
}

// Evaluation reads and runs at most this many images at a time, whatever the test batch size.
// No layer mixes images in eval mode, so every image's logits are what a batch of 1,000 would
// give, while the layers' buffers (kept between calls) hold the activations of 100 images, not
// of 1,000: about 70 MB instead of 0.7 GB of peak memory.
inline constexpr std::int64_t eval_slice = 100;

// Runs the model in eval mode over the whole test set, in order, `batch_size` images at a time.
// `should_stop` is polled between batches (Ctrl-C); returns false if it stopped early.
// The model's parameters must live on `device`.
template <typename StopPredicate>
bool evaluate(Model& model, const minicnn::data::ImageDataset& test, std::int64_t batch_size,
              minicnn::CrossEntropyLoss<float>& criterion, std::size_t keep_mistakes, Evaluation& result,
              minicnn::Device device, StopPredicate should_stop) {
  minicnn::data::DataLoaderOptions options;
  options.batch_size = std::min(batch_size, eval_slice);
  minicnn::data::DataLoader loader(test, options,
                                   minicnn::data::Compose(minicnn::data::Normalize(normalize_mean, normalize_std)));
  const bool was_training = model.module().is_training();
  model.module().eval();
  const minicnn::NoGradGuard no_grad;  // no backward follows: the pools' argmax is never stored
  result = Evaluation();
  result.matrix = ConfusionMatrix(static_cast<int>(num_classes));
  Tensor<float> images, staged_images, host_logits;
  std::vector<int> labels;
  double loss_sum = 0;
  std::int64_t position = 0;
  for (std::int64_t batch = 0; batch < loader.num_batches(); ++batch) {
    if (should_stop()) {
      model.module().train(was_training);
      return false;
    }
    loader.load_batch(batch, images, labels);
    const Tensor<float>& logits = model.forward(on_device(images, staged_images, device));
    loss_sum += static_cast<double>(criterion.forward(logits, labels)) * static_cast<double>(labels.size());
    host_logits.copy_from(logits);
    const std::int64_t classes = host_logits.dim(1);
    for (std::size_t row = 0; row < labels.size(); ++row, ++position) {
      const float* row_logits = host_logits.data() + static_cast<std::int64_t>(row) * classes;
      const int predicted = minicnn::argmax(row_logits, classes);
      result.matrix.add(labels[row], predicted);
      if (predicted != labels[row] && result.mistakes.size() < keep_mistakes)
        result.mistakes.push_back(
            {position, labels[row], predicted, softmax(row_logits, classes)[static_cast<std::size_t>(predicted)]});
    }
  }
  result.loss = loss_sum / static_cast<double>(std::max<std::int64_t>(position, 1));
  model.module().train(was_training);
  return true;
}

// --- reports --------------------------------------------------------------------------------

// Accuracy, loss, confusion matrix (rows: true class) and per-class scores as one JSON object.
inline Json evaluation_json(const Evaluation& evaluation, const std::vector<std::string>& names) {
  const ConfusionMatrix& matrix = evaluation.matrix;
  Json confusion = Json::array(), per_class = Json::array();
  for (int row = 0; row < matrix.num_classes(); ++row) {
    Json counts = Json::array();
    for (int column = 0; column < matrix.num_classes(); ++column) counts.push_back(matrix.count(row, column));
    confusion.push_back(counts);
    per_class.push_back({{"class", names[static_cast<std::size_t>(row)]},
                         {"precision", matrix.precision(row)},
                         {"recall", matrix.recall(row)},
                         {"f1", matrix.f1(row)},
                         {"support", matrix.support(row)}});
  }
  return {{"test_accuracy", evaluation.accuracy()},
          {"test_loss", evaluation.loss},
          {"test_images", matrix.total()},
          {"class_names", names},
          {"confusion_matrix", confusion},
          {"per_class", per_class},
          {"macro_average",
           {{"precision", matrix.macro_precision()}, {"recall", matrix.macro_recall()}, {"f1", matrix.macro_f1()}}}};
}

inline void print_per_class_table(const ConfusionMatrix& matrix, const std::vector<std::string>& names) {
  std::printf("%-12s %9s %7s %7s %8s\n", "class", "precision", "recall", "f1", "support");
  for (int c = 0; c < matrix.num_classes(); ++c)
    std::printf("%-12s %9.4f %7.4f %7.4f %8lld\n", names[static_cast<std::size_t>(c)].c_str(), matrix.precision(c),
                matrix.recall(c), matrix.f1(c), static_cast<long long>(matrix.support(c)));
  std::printf("%-12s %9.4f %7.4f %7.4f %8lld\n", "macro avg", matrix.macro_precision(), matrix.macro_recall(),
              matrix.macro_f1(), static_cast<long long>(matrix.total()));
}

inline void print_confusion_matrix(const ConfusionMatrix& matrix, const std::vector<std::string>& names) {
  std::printf("confusion matrix (rows: true class, columns: predicted class)\n%-15s", "");
  for (int p = 0; p < matrix.num_classes(); ++p) std::printf("%6d", p);
  std::printf("\n");
  for (int t = 0; t < matrix.num_classes(); ++t) {
    std::printf("%d %-13s", t, names[static_cast<std::size_t>(t)].c_str());
    for (int p = 0; p < matrix.num_classes(); ++p) std::printf("%6lld", static_cast<long long>(matrix.count(t, p)));
    std::printf("\n");
  }
}

inline void write_confusion_png(const std::string& path, const Evaluation& evaluation,
                                const std::vector<std::string>& names) {
  char title[96];
  std::snprintf(title, sizeof title, "Confusion matrix - test accuracy %.2f%%", 100.0 * evaluation.accuracy());
  minicnn::viz::write_png(path, minicnn::viz::plot_confusion_matrix(evaluation.matrix, names, title));
}

inline void write_mistakes_png(const std::string& path, const Evaluation& evaluation,
                               const minicnn::data::ImageDataset& test, const std::vector<std::string>& names) {
  std::vector<minicnn::viz::CaptionedImage> images;
  const std::int64_t pixels = test.height() * test.width();
  for (const Mistake& mistake : evaluation.mistakes) {
    minicnn::viz::CaptionedImage item;
    item.width = static_cast<int>(test.width());
    item.height = static_cast<int>(test.height());
    const std::uint8_t* source = test.images.data() + mistake.index * pixels;
    item.pixels.assign(source, source + pixels);
    item.first_line = "true: " + names[static_cast<std::size_t>(mistake.true_class)];
    char predicted[64];
    std::snprintf(predicted, sizeof predicted, "pred: %s %.0f%%",
                  names[static_cast<std::size_t>(mistake.predicted_class)].c_str(), 100.0 * mistake.confidence);
    item.second_line = predicted;
    images.push_back(std::move(item));
  }
  const std::int64_t wrong = evaluation.matrix.total() - evaluation.matrix.correct();
  const std::string title =
      "Misclassified test images: the first " + std::to_string(images.size()) + " of " + std::to_string(wrong);
  minicnn::viz::write_png(path, minicnn::viz::plot_image_grid(images, 8, title));
}

}  // namespace fashion_mnist
