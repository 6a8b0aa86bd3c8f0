// Where a training step spends its time, layer by layer: wall-clock time of every layer's
// forward and backward, the loss and the Adam step, averaged over many steps at batch 64 or --batch (random
// images, after warm-up steps that size every buffer). A table on stdout. --eval: the forward
// passes alone in eval mode (inference: the convolutions' algorithm is conv_algorithm()'s), under
// NoGradGuard as the demo's eval runs them (a conv then applies the 2x2 max-pool after it), or
// with gradients enabled with --with-grad.
//
//   minicnn_profile_layers [--threads N] [--steps N] [--batch N] [--eval [--with-grad]]
//                          [--model fashion_cnn|resnet18|resnet18_se|fashion_resnet|fashion_resnet_se]
//
// Sequentials are opened down to their children (a ResNet's rows are conv1, bn1, ..., every
// BasicBlock of layer1..layer4, avgpool, flatten, fc).
// The layers are run one by one, as Sequential::forward / backward would run them (a Conv2d
// followed by a ReLU fused: the conv's forward applies the ReLU, the ReLU's passes it through),
// so the sum is a training step; timing each call adds a few microseconds per layer.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "minicnn/minicnn.hpp"

int main(int argc, char** argv) {
  using namespace minicnn;
  using clock = std::chrono::steady_clock;
  int threads = 2, steps = 50;
  std::int64_t batch = 64;
  bool inference = false;  // --eval: forward passes in eval mode (the convolutions' fast algorithms)
  bool with_grad = false;  // --with-grad: those passes without NoGradGuard
  std::string model_name = "fashion_cnn";
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--threads" && has_value)
      threads = std::atoi(argv[++i]);
    else if (flag == "--steps" && has_value)
      steps = std::atoi(argv[++i]);
    else if (flag == "--model" && has_value)
      model_name = argv[++i];
    else if (flag == "--batch" && has_value)
      batch = std::atoll(argv[++i]);
    else if (flag == "--eval")
      inference = true;
    else if (flag == "--with-grad")
      with_grad = true;
    else {
      std::fprintf(stderr,
                   "usage: minicnn_profile_layers [--threads N] [--steps N] [--batch N] [--eval [--with-grad]] [--model "
                   "fashion_cnn|resnet18|resnet18_se|fashion_resnet|fashion_resnet_se]\n");
      return 2;
    }
  }
  if (threads < 1 || steps < 1 || batch < 1) {
    std::fprintf(stderr, "minicnn_profile_layers: --threads, --steps and --batch must be positive\n");
    return 2;
  }
  set_num_threads(threads);
  std::unique_ptr<Sequential<float>> built;
  if (model_name == "fashion_cnn")
    built = std::make_unique<models::FashionCNN<float>>(0);
  else if (model_name == "resnet18")
    built = models::resnet18<float>(10, 0);
  else if (model_name == "resnet18_se")
    built = models::resnet18_se<float>(10, 0);
  else if (model_name == "fashion_resnet")
    built = models::fashion_resnet<float>(10, 0);
  else if (model_name == "fashion_resnet_se")
    built = models::fashion_resnet_se<float>(10, 0);
  else {
    std::fprintf(stderr, "minicnn_profile_layers: unknown model '%s'\n", model_name.c_str());
    return 2;
  }
  Sequential<float>& model = *built;
  if (inference) model.eval();
  std::optional<NoGradGuard> no_grad;
  if (inference && !with_grad) no_grad.emplace();
  Adam<float> optimizer(model.parameters(), 1e-3);
  CrossEntropyLoss<float> criterion;
  Tensor<float> images({batch, 1, 28, 28});
  images.normal(0.0f, 1.0f, 7);
  std::vector<int> targets(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<int>(i % 10);

  struct Layer {
    std::string name;
    Module<float>* module;
    double forward_ms = 0, backward_ms = 0;
  };
  std::vector<Layer> layers;
  // The children run one by one as Sequential runs them: with its fusion plan applied.
  const std::function<void(Sequential<float>&, const std::string&)> open = [&](Sequential<float>& part,
                                                                               const std::string& prefix) {
    for (std::size_t i = 0; i < part.size(); ++i) {
      const std::string name = prefix + part.child_name(i);
      if (auto* inner = dynamic_cast<Sequential<float>*>(&part[i])) {
        open(*inner, name + ".");
        continue;
      }
      Layer layer{name + " " + part[i].type_name(), &part[i]};
      if (part.fused_with_next(i))
        layer.name += " (+ ReLU forward)";
      if (no_grad && part.pools_after(i)) layer.name += " (+ max-pool)";
      if (auto* pool = dynamic_cast<MaxPool2d<float>*>(&part[i]); no_grad && pool && pool->pooled_by_producer())
        layer.name += " (applied by the conv)";
      else if (i > 0 && part.fused_with_next(i - 1))
        layer.name += " (forward fused)";
      layers.push_back(layer);
    }
  };
  open(model, "");
  double loss_ms = 0, optimizer_ms = 0, step_ms = 0;
  const int warmup = 5;
  for (int step = 0; step < warmup + steps; ++step) {
    const bool record = step >= warmup;
    auto since = [](clock::time_point start) {
      return std::chrono::duration<double, std::milli>(clock::now() - start).count();
    };
    const auto step_start = clock::now();
    auto start = clock::now();
    optimizer.zero_grad();
    const Tensor<float>* x = &images;
    for (auto& layer : layers) {
      start = clock::now();
      x = &layer.module->forward(*x);
      if (record) layer.forward_ms += since(start);
    }
    if (inference) {
      if (record) step_ms += since(step_start);
      continue;
    }
    start = clock::now();
    criterion.forward(*x, targets);
    const Tensor<float>* grad = &criterion.backward();
    if (record) loss_ms += since(start);
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
      start = clock::now();
      grad = &it->module->backward(*grad);  // conv1 skips its input gradient (set_input_grad(false))
      if (record) it->backward_ms += since(start);
    }
    start = clock::now();
    optimizer.step();
    if (record) optimizer_ms += since(start);
    if (record) step_ms += since(step_start);
  }
  std::printf("%s (%s) %s, batch %lld, %d thread%s, mean of %d steps (ms)\n%s\n\n", model_name.c_str(),
              model.type_name().c_str(),
              inference ? (std::string("inference") + (no_grad ? " (NoGradGuard)" : " (gradients enabled)") +
                           ", conv algorithm " + conv_algorithm_name(conv_algorithm()))
                              .c_str()
                        : "training step",
              static_cast<long long>(batch), threads, threads == 1 ? "" : "s", steps, build_info().c_str());
  std::printf("| layer | forward | backward |\n|---|---|---|\n");
  for (const auto& layer : layers)
    std::printf("| %s | %.3f | %.3f |\n", layer.name.c_str(), layer.forward_ms / steps, layer.backward_ms / steps);
  if (!inference)
    std::printf("| loss (forward + backward) | %.3f | |\n| zero_grad + Adam step | %.3f | |\n", loss_ms / steps,
                optimizer_ms / steps);
  std::printf("| **whole step** | %.3f | (%.0f images/s) |\n", step_ms / steps,
              double(batch) / (step_ms / steps) * 1e3);
  return 0;
}
