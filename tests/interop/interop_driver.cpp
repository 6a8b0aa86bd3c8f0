// The C++ side of the interop tests (tests/interop/run_interop.sh). Data travels between the
// tools as safetensors files: data.safetensors (written by prepare_data.py) holds
// "test_images" [T, 1, 28, 28] (T = 1000, or 250 for the ResNets), "train_images" [M, 1, 28, 28]
// and "train_labels" [M] (class indices as floats), all F32; logits files hold "logits" [T, 10] F32.
//
// The first three commands take `--model NAME` first: fashion_cnn (the default), fashion_cnn_se,
// resnet18, resnet18_se, fashion_resnet or fashion_resnet_se (tools/resnet_torch.py's MODELS are
// the PyTorch twins).
//
//   interop_driver [--model NAME] train DATA WEIGHTS_OUT LOGITS_OUT [STEPS]
//       The model (seed 0), STEPS Adam steps (lr 1e-3, batch 64) on the training images in order,
//       cycled (default 20 for fashion_cnn; 40 for fashion_cnn_se, whose sigmoid gates slow its
//       start: its logits need the spread that makes the comparison mean something; 0 for the
//       ResNets: CI trains nothing long). A model with
//       BatchNorm then gets non-trivial statistics: three training-mode forwards of the first
//       three batches of 64 training images, then every BatchNorm weight and bias shifted by
//       uniform(-0.5, 0.5). Saves the weights and the eval-mode logits of the test images.
//   interop_driver [--model NAME] logits WEIGHTS DATA LOGITS_OUT
//       loads WEIGHTS into the model and saves the eval-mode logits of the test images.
//   interop_driver [--model NAME] export-onnx WEIGHTS ONNX_OUT
//       loads WEIGHTS into the model and exports it as ONNX.
//   interop_driver export-onnx-graphs OUT_DIR
//       builds the small graph models below (residual blocks with SE; BatchNorm and every
//       activation), and writes for each NAME: NAME.onnx, NAME.input.safetensors ("input") and
//       NAME.output.safetensors ("output", minicnn's eval-mode forward of that input).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "minicnn/minicnn.hpp"

namespace {

using minicnn::Shape;
using minicnn::Tensor;
namespace io = minicnn::io;

constexpr std::int64_t batch_size = 64;

// Rows [first, first + count) of an [N, ...] tensor.
Tensor<float> rows(const Tensor<float>& all, std::int64_t first, std::int64_t count) {
  std::vector<std::int64_t> dims = all.shape().dims();
  const std::int64_t row_size = all.size() / dims[0];
  dims[0] = count;
  Tensor<float> out{Shape(dims)};
  std::memcpy(out.data(), all.data() + first * row_size, sizeof(float) * static_cast<std::size_t>(count * row_size));
  return out;
}

constexpr std::int64_t num_classes = 10;

// Adam steps `train` takes by default (check_pytorch.py's TRAINED_STEPS: the same).
int default_steps(const std::string& model) {
  if (model == "fashion_cnn") return 20;
  if (model == "fashion_cnn_se") return 40;
  return 0;
}

std::unique_ptr<minicnn::Sequential<float>> make_model(const std::string& name, std::uint64_t seed) {
  if (name == "fashion_cnn") return std::make_unique<minicnn::models::FashionCNN<float>>(seed);
  if (name == "fashion_cnn_se") return std::make_unique<minicnn::models::FashionCNNSE<float>>(seed);
  if (name == "resnet18") return minicnn::models::resnet18<float>(num_classes, seed);
  if (name == "resnet18_se") return minicnn::models::resnet18_se<float>(num_classes, seed);
  if (name == "fashion_resnet") return minicnn::models::fashion_resnet<float>(num_classes, seed);
  if (name == "fashion_resnet_se") return minicnn::models::fashion_resnet_se<float>(num_classes, seed);
  throw minicnn::error("interop_driver: unknown model '" + name +
                       "' (expected fashion_cnn, fashion_cnn_se, resnet18, resnet18_se, fashion_resnet or "
                       "fashion_resnet_se)");
}

Tensor<float> test_logits(minicnn::Module<float>& model, const Tensor<float>& images) {
  model.eval();
  const minicnn::NoGradGuard no_grad;  // inference as the demo runs it
  const std::int64_t count = images.dim(0);
  Tensor<float> logits({count, num_classes});
  for (std::int64_t first = 0; first < count; first += 250) {
    const std::int64_t n = std::min<std::int64_t>(250, count - first);
    const Tensor<float> batch = rows(images, first, n);
    const Tensor<float>& out = model.forward(batch);
    std::memcpy(logits.data() + first * num_classes, out.data(), sizeof(float) * static_cast<std::size_t>(out.size()));
  }
  return logits;
}

// Gives every BatchNorm non-trivial statistics and affine parameters: a training-mode forward of
// each input, then every weight and bias shifted by uniform(-0.5, 0.5). Leaves the model in eval
// mode.
void randomize_batch_norms(minicnn::Module<float>& model, const std::vector<Tensor<float>>& inputs,
                           minicnn::Generator& gen) {
  model.train();
  for (const Tensor<float>& input : inputs) model.forward(input);
  for (const auto& [name, module] : model.named_modules()) {
    Tensor<float>* affine[2] = {nullptr, nullptr};
    if (auto* norm = dynamic_cast<minicnn::BatchNorm2d<float>*>(module); norm && norm->affine())
      affine[0] = &norm->weight.value, affine[1] = &norm->bias.value;
    if (auto* norm = dynamic_cast<minicnn::BatchNorm1d<float>*>(module); norm && norm->affine())
      affine[0] = &norm->weight.value, affine[1] = &norm->bias.value;
    for (Tensor<float>* tensor : affine)
      if (tensor)
        for (float& value : *tensor) value += static_cast<float>(gen.uniform(-0.5, 0.5));
  }
  model.eval();
}

bool has_batch_norm(minicnn::Module<float>& model) {
  for (const auto& [name, module] : model.named_modules())
    if (module->type_name().rfind("BatchNorm", 0) == 0) return true;
  return false;
}

void save_logits(const Tensor<float>& logits, const std::string& path) {
  io::save_tensors({io::tensor_ref("logits", logits)}, path, {{"producer", "minicnn interop_driver"}});
}

int train(const std::string& model_name, const std::string& data_path, const std::string& weights_path,
          const std::string& logits_path, int steps) {
  const io::SafetensorsFile data = io::SafetensorsFile::read(data_path);
  const Tensor<float> train_images = data.tensor<float>("train_images");
  const Tensor<float> train_labels = data.tensor<float>("train_labels");
  const std::int64_t batches = train_images.dim(0) / batch_size;
  if (batches < 3)  // the BatchNorm warm-up takes three
    throw minicnn::error(data_path + ": train_images holds " + std::to_string(train_images.dim(0)) +
                         " images, fewer than 3 batches of " + std::to_string(batch_size));
  const std::unique_ptr<minicnn::Sequential<float>> trained = make_model(model_name, 0);
  minicnn::Sequential<float>& model = *trained;
  minicnn::CrossEntropyLoss<float> loss;
  minicnn::Adam<float> optimizer(model.parameters(), 1e-3);
  model.train();
  float first_loss = 0, last_loss = 0;
  for (int step = 0; step < steps; ++step) {
    const std::int64_t first = (step % batches) * batch_size;  // the batches in order, cycled
    const Tensor<float> images = rows(train_images, first, batch_size);
    std::vector<int> targets(batch_size);
    for (std::int64_t i = 0; i < batch_size; ++i)
      targets[static_cast<std::size_t>(i)] = static_cast<int>(train_labels[first + i]);
    optimizer.zero_grad();
    const float value = loss.forward(model.forward(images), targets);
    model.backward(loss.backward());
    optimizer.step();
    if (step == 0) first_loss = value;
    last_loss = value;
  }
  if (steps > 0)
    std::cout << "minicnn: " << model_name << ", " << steps << " Adam steps, loss " << first_loss << " -> " << last_loss
              << "\n";
  if (has_batch_norm(model)) {
    std::vector<Tensor<float>> batches;
    for (std::int64_t batch = 0; batch < 3; ++batch)
      batches.push_back(rows(train_images, batch * batch_size, batch_size));
    minicnn::Generator gen(11);
    randomize_batch_norms(model, batches, gen);
    std::cout << "minicnn: BatchNorm statistics from 3 training-mode forwards, affine parameters shifted\n";
  }
  io::save_safetensors(model, weights_path, {{"model", model_name}, {"steps", std::to_string(steps)}, {"seed", "0"}});
  save_logits(test_logits(model, data.tensor<float>("test_images")), logits_path);
  return 0;
}

int logits(const std::string& model_name, const std::string& weights_path, const std::string& data_path,
           const std::string& logits_path) {
  const auto model = make_model(model_name, 12345);  // every weight and buffer is overwritten by the load
  io::load_safetensors(*model, weights_path);
  save_logits(test_logits(*model, io::SafetensorsFile::read(data_path).tensor<float>("test_images")), logits_path);
  return 0;
}

// A network of torchvision's blocks: a BasicBlock with a downsample and SE, one without either,
// a Bottleneck with SE, and a Residual with a convolution shortcut. Input [3, 16, 16].
std::unique_ptr<minicnn::Sequential<float>> residual_blocks_model(minicnn::Generator& gen) {
  auto model = std::make_unique<minicnn::Sequential<float>>();
  model->emplace<minicnn::Conv2d<float>>(3, 8, 3, 1, 1, false, gen);
  model->emplace<minicnn::BatchNorm2d<float>>(8);
  model->emplace<minicnn::ReLU<float>>();
  model->emplace<minicnn::BasicBlock<float>>(8, 16, /*stride=*/2, /*se_squeeze_channels=*/4, gen);
  model->emplace<minicnn::BasicBlock<float>>(16, 16, 1, 0, gen);
  model->emplace<minicnn::Bottleneck<float>>(16, 4, 1, /*se_squeeze_channels=*/8, gen);
  auto branch = std::make_unique<minicnn::Sequential<float>>();
  branch->emplace<minicnn::Conv2d<float>>(16, 24, 3, 2, 1, false, gen);
  branch->emplace<minicnn::BatchNorm2d<float>>(24);
  model->emplace<minicnn::Residual<float>>(std::move(branch),
                                           std::make_unique<minicnn::Conv2d<float>>(16, 24, 1, 2, 0, true, gen));
  model->emplace<minicnn::AdaptiveAvgPool2d<float>>(1, 1);
  model->emplace<minicnn::Flatten<float>>();
  model->emplace<minicnn::Linear<float>>(24, 10, true, gen);
  return model;
}

// BatchNorm (affine or not, 2d and 1d), every activation, grouped and dilated convolution and
// the pools with their options. Input [4, 12, 12].
std::unique_ptr<minicnn::Sequential<float>> activations_model(minicnn::Generator& gen) {
  using minicnn::Conv2dOptions;
  auto model = std::make_unique<minicnn::Sequential<float>>();
  model->emplace<minicnn::Conv2d<float>>(Conv2dOptions(4, 8, 3).padding(2).dilation(2).groups(2), gen);
  model->emplace<minicnn::BatchNorm2d<float>>(8);
  model->emplace<minicnn::Sigmoid<float>>();
  model->emplace<minicnn::Conv2d<float>>(8, 8, 3, 1, 1, true, gen);
  model->emplace<minicnn::BatchNorm2d<float>>(8, 1e-3, 0.1, /*affine=*/false);
  model->emplace<minicnn::Tanh<float>>();
  model->emplace<minicnn::Conv2d<float>>(8, 8, 1, 1, 0, true, gen);
  model->emplace<minicnn::SiLU<float>>();
  model->emplace<minicnn::Conv2d<float>>(8, 8, 1, 1, 0, true, gen);
  model->emplace<minicnn::Hardswish<float>>();
  model->emplace<minicnn::MaxPool2d<float>>(3, 2, 1);  // 12x12 -> 6x6
  model->emplace<minicnn::Conv2d<float>>(8, 8, 1, 1, 0, true, gen);
  model->emplace<minicnn::Hardsigmoid<float>>();
  model->emplace<minicnn::Conv2d<float>>(8, 8, 1, 1, 0, true, gen);
  model->emplace<minicnn::GELU<float>>();
  // 6x6 -> 4x4: the last ceil_mode window runs past the padding, which its divisor leaves out.
  model->emplace<minicnn::AvgPool2d<float>>(3, 2, 1, /*ceil_mode=*/true, /*count_include_pad=*/true);
  model->emplace<minicnn::Conv2d<float>>(8, 8, 1, 1, 0, true, gen);
  model->emplace<minicnn::GELU<float>>("tanh");
  model->emplace<minicnn::MaxPool2d<float>>(3, 2, 0, 1, /*ceil_mode=*/true);  // 4x4 -> 2x2
  model->emplace<minicnn::LeakyReLU<float>>(0.2);
  model->emplace<minicnn::AdaptiveMaxPool2d<float>>(1, 1);
  model->emplace<minicnn::Flatten<float>>();
  model->emplace<minicnn::BatchNorm1d<float>>(8);
  model->emplace<minicnn::Linear<float>>(8, 5, true, gen);
  return model;
}

// randomize_batch_norms with three random inputs of `input_shape`.
void randomize_batch_norms(minicnn::Module<float>& model, const Shape& input_shape, minicnn::Generator& gen) {
  std::vector<Tensor<float>> inputs;
  for (int pass = 0; pass < 3; ++pass) {
    inputs.emplace_back(input_shape);
    for (float& value : inputs.back()) value = static_cast<float>(gen.normal() * 2.0 + 0.5);
  }
  randomize_batch_norms(model, inputs, gen);
}

int export_onnx_graphs(const std::string& out_dir) {
  struct Case {
    std::string name;
    std::unique_ptr<minicnn::Sequential<float>> model;
    Shape sample_shape;
  };
  minicnn::Generator gen(7);
  std::vector<Case> cases;
  cases.push_back({"residual_blocks", residual_blocks_model(gen), Shape{3, 16, 16}});
  cases.push_back({"activations", activations_model(gen), Shape{4, 12, 12}});
  for (Case& test : cases) {
    std::vector<std::int64_t> dims = test.sample_shape.dims();
    dims.insert(dims.begin(), 5);
    randomize_batch_norms(*test.model, Shape(dims), gen);
    Tensor<float> input{Shape(dims)};
    for (float& value : input) value = static_cast<float>(gen.normal());
    const Tensor<float>& output = test.model->forward(input);
    io::OnnxExportOptions options;
    options.sample_shape = test.sample_shape;
    options.output_name = "output";
    io::export_onnx(*test.model, out_dir + "/" + test.name + ".onnx", options);
    io::save_tensors({io::tensor_ref("input", input)}, out_dir + "/" + test.name + ".input.safetensors");
    io::save_tensors({io::tensor_ref("output", output)}, out_dir + "/" + test.name + ".output.safetensors");
    std::cout << "minicnn: " << test.name << " " << input.shape().str() << " -> " << output.shape().str() << "\n";
  }
  return 0;
}

int export_onnx(const std::string& model_name, const std::string& weights_path, const std::string& onnx_path) {
  const auto model = make_model(model_name, 12345);
  io::load_safetensors(*model, weights_path);
  io::export_onnx(*model, onnx_path);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    minicnn::set_num_threads(2);
    std::string model = "fashion_cnn";
    if (args.size() >= 2 && args[0] == "--model") {
      model = args[1];
      args.erase(args.begin(), args.begin() + 2);
      make_model(model, 0);  // an unknown name fails here, before any file is read
    }
    if (args.size() >= 4 && args.size() <= 5 && args[0] == "train")
      return train(model, args[1], args[2], args[3], args.size() > 4 ? std::stoi(args[4]) : default_steps(model));
    if (args.size() == 4 && args[0] == "logits") return logits(model, args[1], args[2], args[3]);
    if (args.size() == 3 && args[0] == "export-onnx") return export_onnx(model, args[1], args[2]);
    if (args.size() == 2 && args[0] == "export-onnx-graphs") return export_onnx_graphs(args[1]);
    std::cerr << "usage: interop_driver [--model NAME] train DATA WEIGHTS_OUT LOGITS_OUT [STEPS]\n"
                 "       interop_driver [--model NAME] logits WEIGHTS DATA LOGITS_OUT\n"
                 "       interop_driver [--model NAME] export-onnx WEIGHTS ONNX_OUT\n"
                 "       interop_driver export-onnx-graphs OUT_DIR\n";
    return 2;
  } catch (const std::exception& failure) {
    std::cerr << "interop_driver: " << failure.what() << "\n";
    return 1;
  }
}
