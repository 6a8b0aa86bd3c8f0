#pragma once
// `fashion_mnist eval`, `predict` and `export`: they load trained weights (a model.safetensors
// with the PyTorch state_dict names, e.g. converted from the tutorial's fashion_cnn.pth by
// tools/pytorch_to_safetensors.py, or a training checkpoint).
#include <algorithm>
#include <cmath>
#include <utility>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "device.hpp"
#include "evaluation.hpp"
#include "minicnn/config.hpp"
#include "minicnn/data/fashion_mnist.hpp"
#include "minicnn/data/transforms.hpp"
#include "minicnn/io/image.hpp"
#include "minicnn/io/onnx.hpp"
#include "minicnn/viz/plot.hpp"
#include "model.hpp"
#include "options.hpp"
#include "terminal.hpp"

namespace fashion_mnist {

// --device and --threads of eval, predict and similar: the device to compute on.
inline minicnn::Device set_up_runtime(const std::string& device, int threads) {
  if (threads > 0) minicnn::set_num_threads(threads);
  return parse_device(device);
}

// The model a weights file holds, on `device`, in eval mode.
inline Model load_for_inference(const std::string& path, minicnn::Device device) {
  Model model = load_model(path);
  model.module().to(device);
  model.module().eval();
  return model;
}

inline int run_eval(const EvalOptions& options) {
  const minicnn::Device device = set_up_runtime(options.device, options.threads);
  Model model = load_for_inference(options.model, device);
  const minicnn::data::ImageDataset test = first_images(
      minicnn::data::load_fashion_mnist(minicnn::data::Split::test, options.data), options.limit_test, "--limit-test");
  minicnn::CrossEntropyLoss<float> criterion;
  Evaluation evaluation;
  const Clock::time_point start = Clock::now();
  evaluate(model, test, options.batch_size, criterion, 0, evaluation, device, [] { return false; });
  const double seconds = seconds_since(start);
  const std::vector<std::string> names = class_names();
  if (options.json) {
    Json root = {{"model", options.model}, {"build", minicnn::build_info()}};
    root.update(evaluation_json(evaluation, names));
    root["seconds"] = seconds;
    std::printf("%s\n", json_text(root, 2).c_str());
    return 0;
  }
  std::printf("%s\n", minicnn::build_info().c_str());
  std::printf("model %s: test accuracy %.2f%% (%lld/%lld), test loss %.4f, %.1f s (%.0f images/s)\n\n",
              options.model.c_str(), 100 * evaluation.accuracy(), static_cast<long long>(evaluation.matrix.correct()),
              static_cast<long long>(evaluation.matrix.total()), evaluation.loss, seconds,
              static_cast<double>(evaluation.matrix.total()) / std::max(seconds, 1e-9));
  print_per_class_table(evaluation.matrix, names);
  std::printf("\n");
  print_confusion_matrix(evaluation.matrix, names);
  return 0;
}

// A picture made to look like a Fashion-MNIST image (io::prepare_like_fashion_mnist), as the
// model's normalised input, with a note on what was done to it.
struct Picture {
  minicnn::io::PreparedImage prepared;
  std::string notes;  // "300x400, light background inverted, ..."
};

// Decodes every picture first: a file that cannot be read stops the command before any output.
inline std::vector<Picture> read_pictures(const std::vector<std::string>& paths) {
  std::vector<Picture> pictures;
  for (const std::string& path : paths) {
    const minicnn::io::GrayImage image = minicnn::io::read_image_gray(path);
    Picture picture{minicnn::io::prepare_like_fashion_mnist(image),
                    std::to_string(image.width) + "x" + std::to_string(image.height)};
    if (picture.prepared.inverted) picture.notes += ", light background inverted";
    if (picture.prepared.resized) picture.notes += ", cropped and scaled to 28x28";
    pictures.push_back(std::move(picture));
  }
  return pictures;
}

// Writes `picture` into `input` ([1, 1, 28, 28]) as the loader would: x / 255, then Normalize.
inline void to_model_input(const Picture& picture, minicnn::Tensor<float>& input) {
  input.resize({1, 1, 28, 28});
  minicnn::data::to_unit_range(picture.prepared.pixels.data(), input.data(), 28 * 28);
  minicnn::Generator unused(0);
  minicnn::data::Normalize(normalize_mean, normalize_std)
      .apply(minicnn::data::ImageView{input.data(), 1, 28, 28}, unused, nullptr);
}

inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n == 0 ? 0.0 : n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

inline int run_predict(const PredictOptions& options) {
  const minicnn::Device device = set_up_runtime(options.device, options.threads);
  Model model = load_for_inference(options.model, device);
  const std::vector<Picture> pictures = read_pictures(options.images);

  const std::vector<std::string> names = class_names();
  minicnn::Tensor<float> input, staged_input, host_logits;
  std::vector<double> latencies;  // milliseconds per forward pass, batch 1
  const minicnn::NoGradGuard no_grad;
  for (std::size_t i = 0; i < pictures.size(); ++i) {
    to_model_input(pictures[i], input);
    const minicnn::Tensor<float>& device_input = on_device(input, staged_input, device);
    // One untimed pass first: the first forward allocates the layers' buffers. The logits are
    // read back inside the timing, as a caller would.
    if (i == 0) host_logits.copy_from(model.forward(device_input));
    for (int r = 0; r < options.repeat; ++r) {
      const Clock::time_point start = Clock::now();
      host_logits.copy_from(model.forward(device_input));
      latencies.push_back(1e3 * seconds_since(start));
    }
    const std::vector<double> probabilities = softmax(host_logits.data(), host_logits.dim(1));
    std::vector<int> order(probabilities.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return probabilities[static_cast<std::size_t>(a)] > probabilities[static_cast<std::size_t>(b)];
    });
    std::printf("%s (%s):", options.images[i].c_str(), pictures[i].notes.c_str());
    for (int k = 0; k < options.top && k < static_cast<int>(order.size()); ++k)
      std::printf("%s %s %.1f%%", k ? "," : "",
                  names[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])].c_str(),
                  100 * probabilities[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])]);
    std::printf("\n");
  }
  std::printf("latency: %.3f ms per image (median of %zu forward passes, batch 1, %s, %d thread%s, after a warm-up pass)\n",
              median(latencies), latencies.size(), model.name().c_str(), minicnn::num_threads(),
              minicnn::num_threads() == 1 ? "" : "s");
  return 0;
}

// Rows of `embeddings` ([N, D]) scaled to unit length (a zero row stays zero).
inline void normalize_rows(minicnn::Tensor<float>& embeddings) {
  const std::int64_t rows = embeddings.dim(0), width = embeddings.dim(1);
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = embeddings.data() + r * width;
    double sum = 0;
    for (std::int64_t c = 0; c < width; ++c) sum += static_cast<double>(row[c]) * row[c];
    const float scale = sum > 0 ? static_cast<float>(1 / std::sqrt(sum)) : 0.0f;
    for (std::int64_t c = 0; c < width; ++c) row[c] *= scale;
  }
}

inline int run_similar(const SimilarOptions& options) {
  const minicnn::Device device = set_up_runtime(options.device, options.threads);
  Model model = load_for_inference(options.model, device);
  const std::vector<std::string> names = class_names();
  std::vector<Picture> pictures = read_pictures(options.images);
  std::vector<std::string> picture_names = options.images;
  if (!options.train_images.empty()) {
    const minicnn::data::ImageDataset train =
        minicnn::data::load_fashion_mnist(minicnn::data::Split::train, options.data);
    for (const std::int64_t index : options.train_images) {
      if (index >= train.size())
        throw minicnn::error("--train-image " + std::to_string(index) + ": the training set has " +
                             std::to_string(train.size()) + " images");
      const int label = train.labels[static_cast<std::size_t>(index)];
      Picture picture{{}, "training image, " + names[static_cast<std::size_t>(label)]};
      const std::uint8_t* source = train.images.data() + index * 28 * 28;
      std::copy(source, source + 28 * 28, picture.prepared.pixels.begin());
      pictures.push_back(std::move(picture));
      picture_names.push_back("train image " + std::to_string(index));
    }
  }
  const minicnn::data::ImageDataset test = minicnn::data::load_fashion_mnist(minicnn::data::Split::test, options.data);

  // The test set's embeddings, unit length, [test images, D].
  const std::int64_t width = model.feature_size();
  minicnn::Tensor<float> gallery({test.size(), width}), images, staged, host_features;
  {
    minicnn::data::DataLoaderOptions loader_options;
    loader_options.batch_size = eval_slice;
    minicnn::data::DataLoader loader(test, loader_options,
                                     minicnn::data::Compose(minicnn::data::Normalize(normalize_mean, normalize_std)));
    std::vector<int> labels;
    for (std::int64_t batch = 0, row = 0; batch < loader.num_batches(); ++batch) {
      loader.load_batch(batch, images, labels);
      host_features.copy_from(model.features(on_device(images, staged, device)));
      std::copy(host_features.data(), host_features.data() + host_features.size(), gallery.data() + row * width);
      row += host_features.dim(0);
    }
  }
  normalize_rows(gallery);

  const auto k = static_cast<std::size_t>(std::min<std::int64_t>(options.k, test.size()));
  std::vector<minicnn::viz::CaptionedImage> grid;
  minicnn::Tensor<float> input;
  for (std::size_t i = 0; i < pictures.size(); ++i) {
    to_model_input(pictures[i], input);
    host_features.copy_from(model.features(on_device(input, staged, device)));
    normalize_rows(host_features);
    std::vector<std::pair<float, std::int64_t>> scores(static_cast<std::size_t>(test.size()));
    for (std::int64_t j = 0; j < test.size(); ++j) {
      const float* row = gallery.data() + j * width;
      double dot = 0;
      for (std::int64_t c = 0; c < width; ++c) dot += static_cast<double>(row[c]) * host_features.data()[c];
      scores[static_cast<std::size_t>(j)] = {static_cast<float>(dot), j};
    }
    // Most similar first; equal scores in test-set order.
    std::partial_sort(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(k), scores.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    std::printf("%s (%s):\n", picture_names[i].c_str(), pictures[i].notes.c_str());
    minicnn::viz::CaptionedImage query;
    query.pixels = std::vector<std::uint8_t>(pictures[i].prepared.pixels.begin(), pictures[i].prepared.pixels.end());
    query.first_line = "query " + std::to_string(i + 1);
    query.second_line = std::filesystem::path(picture_names[i]).filename().string().substr(0, 14);
    query.second_color = minicnn::viz::colors::black;
    grid.push_back(std::move(query));
    for (std::size_t rank = 0; rank < k; ++rank) {
      const auto [score, index] = scores[rank];
      const std::string& label = names[static_cast<std::size_t>(test.labels[static_cast<std::size_t>(index)])];
      std::printf("  %2zu. test image %5lld  %-11s cosine %.4f\n", rank + 1, static_cast<long long>(index),
                  label.c_str(), static_cast<double>(score));
      minicnn::viz::CaptionedImage item;
      const std::uint8_t* source = test.images.data() + index * 28 * 28;
      item.pixels = std::vector<std::uint8_t>(source, source + 28 * 28);
      item.first_line = label;
      char caption[32];
      std::snprintf(caption, sizeof caption, "#%lld %.3f", static_cast<long long>(index), static_cast<double>(score));
      item.second_line = caption;
      item.second_color = minicnn::viz::colors::black;
      grid.push_back(std::move(item));
    }
  }
  minicnn::viz::write_png(options.out,
                          minicnn::viz::plot_image_grid(grid, static_cast<int>(k) + 1,
                                                        "Most similar test images (" + model.name() +
                                                            " penultimate layer, cosine similarity)"));
  std::printf("wrote %s: one row per picture, the picture first, then its %zu most similar test images\n",
              options.out.c_str(), k);
  return 0;
}

inline int run_export(const ExportOptions& options) {
  Model model = load_model(options.model);
  // model.safetensors -> model.onnx, beside it.
  const std::string out =
      options.out.empty() ? std::filesystem::path(options.model).replace_extension(".onnx").string() : options.out;
  minicnn::io::export_onnx(model.module(), out);
  std::printf("wrote %s: ONNX (IR 8, opset 13), input \"input\" float32 [N, 1, 28, 28], output \"logits\" [N, 10]\n",
              out.c_str());
  return 0;
}

}  // namespace fashion_mnist
