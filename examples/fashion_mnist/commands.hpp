#pragma once
// `fashion_mnist eval`, `predict` and `export`: they load trained weights (a model.safetensors
// with the PyTorch state_dict names, e.g. converted from the tutorial's fashion_cnn.pth by
// tools/pytorch_to_safetensors.py, or a training checkpoint).
#include <algorithm>
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
#include "model.hpp"
#include "options.hpp"
#include "terminal.hpp"

namespace fashion_mnist {

inline int run_eval(const EvalOptions& options) {
  const minicnn::Device device = parse_device(options.device);
  if (options.threads > 0) minicnn::set_num_threads(options.threads);
  Model model = make_model(0);
  load_weights(model, options.model);
  model.to(device);
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

inline int run_predict(const PredictOptions& options) {
  const minicnn::Device device = parse_device(options.device);
  if (options.threads > 0) minicnn::set_num_threads(options.threads);
  Model model = make_model(0);
  load_weights(model, options.model);
  model.to(device);
  model.eval();
  // Decode every picture first: a file that cannot be read stops the command before any output.
  std::vector<minicnn::io::GrayImage> pictures;
  for (const std::string& path : options.images) pictures.push_back(minicnn::io::read_image_gray(path));

  const std::vector<std::string> names = class_names();
  minicnn::Tensor<float> input({1, 1, 28, 28}), staged_input, host_logits;
  const minicnn::data::Normalize normalize(normalize_mean, normalize_std);
  minicnn::Generator unused(0);
  for (std::size_t i = 0; i < pictures.size(); ++i) {
    const minicnn::io::PreparedImage prepared = minicnn::io::prepare_like_fashion_mnist(pictures[i]);
    minicnn::data::to_unit_range(prepared.pixels.data(), input.data(), 28 * 28);
    normalize.apply(minicnn::data::ImageView{input.data(), 1, 28, 28}, unused, nullptr);
    host_logits.copy_from(model.forward(on_device(input, staged_input, device)));
    const std::vector<double> probabilities = softmax(host_logits.data(), host_logits.dim(1));
    std::vector<int> order(probabilities.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return probabilities[static_cast<std::size_t>(a)] > probabilities[static_cast<std::size_t>(b)];
    });
    std::string notes = std::to_string(pictures[i].width) + "x" + std::to_string(pictures[i].height);
    if (prepared.inverted) notes += ", light background inverted";
    if (prepared.resized) notes += ", cropped and scaled to 28x28";
    std::printf("%s (%s):", options.images[i].c_str(), notes.c_str());
    for (int k = 0; k < options.top && k < static_cast<int>(order.size()); ++k)
      std::printf("%s %s %.1f%%", k ? "," : "",
                  names[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])].c_str(),
                  100 * probabilities[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])]);
    std::printf("\n");
  }
  return 0;
}

inline int run_export(const ExportOptions& options) {
  Model model = make_model(0);
  load_weights(model, options.model);
  // model.safetensors -> model.onnx, beside it.
  const std::string out =
      options.out.empty() ? std::filesystem::path(options.model).replace_extension(".onnx").string() : options.out;
  minicnn::io::export_onnx(model, out);
  std::printf("wrote %s: ONNX (IR 8, opset 13), input \"input\" float32 [N, 1, 28, 28], output \"logits\" [N, 10]\n",
              out.c_str());
  return 0;
}

}  // namespace fashion_mnist
