// The whole FashionCNN on the GPU against the CPU: the same seed gives the same weights and
// dropout masks, so 20 Adam steps must produce the CPU's losses (within 1e-3), and after the
// first step a training step must not call cudaMalloc.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "cuda_test_util.hpp"
#include "minicnn/loss.hpp"
#include "minicnn/models/fashion_cnn.hpp"
#include "minicnn/optim/adam.hpp"

using minicnn::Device;
using minicnn::Shape;
using minicnn::Tensor;

namespace {

// A learnable synthetic batch: noise plus a bright band whose row encodes the class, so the
// loss falls over 20 steps and the comparison covers a real training trajectory.
void make_batch(std::int64_t batch, std::uint64_t seed, Tensor<float>& images, std::vector<int>& targets) {
  minicnn::Generator gen(seed);
  images.resize(Shape{batch, 1, 28, 28});
  targets.resize(static_cast<std::size_t>(batch));
  for (std::int64_t n = 0; n < batch; ++n) {
    const int label = static_cast<int>(gen.below(10));
    targets[static_cast<std::size_t>(n)] = label;
    for (std::int64_t h = 0; h < 28; ++h)
      for (std::int64_t w = 0; w < 28; ++w) {
        const bool band = h >= 2 + 2 * label && h < 4 + 2 * label;
        images(n, 0, h, w) = static_cast<float>(gen.uniform(-0.5, 0.5)) + (band ? 1.5f : 0.0f);
      }
  }
}

}  // namespace

TEST_CASE("cuda: 20 FashionCNN training steps give the CPU's losses", "[cuda][model]") {
  const int steps = 20;
  const std::int64_t batch = 32;
  minicnn::models::FashionCNN<float> cpu_model(0), gpu_model(0);
  gpu_model.to(Device::cuda);
  REQUIRE(gpu_model.device() == Device::cuda);
  minicnn::Adam<float> cpu_optimizer(cpu_model.parameters(), 1e-3), gpu_optimizer(gpu_model.parameters(), 1e-3);
  minicnn::CrossEntropyLoss<float> cpu_loss, gpu_loss;

  Tensor<float> images, gpu_images(Shape{batch, 1, 28, 28}, Device::cuda);
  std::vector<int> targets;
  std::uint64_t allocations_after_first_step = 0;
  double worst = 0.0;
  for (int step = 0; step < steps; ++step) {
    make_batch(batch, 1000 + static_cast<std::uint64_t>(step), images, targets);
    gpu_images.copy_from(images);

    cpu_optimizer.zero_grad();
    const float expected = cpu_loss.forward(cpu_model.forward(images), targets);
    cpu_model.backward(cpu_loss.backward());
    cpu_optimizer.step();

    gpu_optimizer.zero_grad();
    const float found = gpu_loss.forward(gpu_model.forward(gpu_images), targets);
    gpu_model.backward(gpu_loss.backward());
    gpu_optimizer.step();

    const double difference = std::abs(static_cast<double>(found) - static_cast<double>(expected));
    worst = std::max(worst, difference);
    std::printf("[cuda] step %2d: CPU loss %.6f, GPU loss %.6f, difference %.2e\n", step + 1, expected, found,
                difference);
    INFO("step " << step + 1 << ": CPU loss " << expected << ", GPU loss " << found);
    CHECK(difference <= 1e-3);
    if (step == 0) {
      minicnn::cuda::synchronize();
      allocations_after_first_step = minicnn::cuda::memory_stats().device_allocations;
    }
  }
  const auto stats = minicnn::cuda::memory_stats();
  std::printf("[cuda] 20 steps: worst loss difference %.2e; %llu cudaMalloc calls, all in step 1; %.1f MB in use\n",
              worst, static_cast<unsigned long long>(stats.device_allocations),
              static_cast<double>(stats.bytes_in_use) / 1e6);
  CHECK(stats.device_allocations == allocations_after_first_step);

  // The weights after 20 steps, for the record and as a sanity bound.
  const auto cpu_parameters = cpu_model.named_parameters();
  const auto gpu_parameters = gpu_model.named_parameters();
  for (std::size_t i = 0; i < cpu_parameters.size(); ++i) {
    const double error =
        minicnn::testing::relative_error(gpu_parameters[i].parameter->value, cpu_parameters[i].parameter->value);
    INFO(cpu_parameters[i].name << ": relative error " << error);
    CHECK(error <= 1e-2);
  }
  minicnn::testing::check_guards();
}

TEST_CASE("cuda: FashionCNN eval-mode logits match the CPU", "[cuda][model]") {
  minicnn::models::FashionCNN<float> cpu_model(5), gpu_model(5);
  gpu_model.to(Device::cuda);
  cpu_model.eval();
  gpu_model.eval();
  Tensor<float> images;
  std::vector<int> targets;
  make_batch(64, 77, images, targets);
  const Tensor<float> gpu_images = images.copy_to(Device::cuda);
  minicnn::testing::check_close(gpu_model.forward(gpu_images), cpu_model.forward(images), "FashionCNN logits");
  minicnn::testing::check_guards();
}
