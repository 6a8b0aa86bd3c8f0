// Training throughput of a distributed run (built with -DMINICNN_WITH_MPI=ON), for
// docs/distributed.md:
//   mpirun -np P minicnn_distributed_throughput MODEL GLOBAL_BATCH MICRO_BATCH STEPS [fixed_order|mpi_sum]
// MODEL: fashion_cnn, batchnorm (a conv + BatchNorm + BasicBlock model) or resnet18 (torchvision's
// resnet18 with a 3x3 stride-1 first conv for 1 channel, 11,172,810 parameters). Synthetic
// 28x28 images (the arithmetic does not depend on the pixels). One warm-up step, then STEPS
// timed; prints images/s over all ranks and the seconds per step spent in average() (packing,
// the collectives, and the wait for the slowest rank), the largest over the ranks.
#include <minicnn/distributed.hpp>
#include <minicnn/layers/adaptive_avg_pool2d.hpp>
#include <minicnn/layers/batchnorm.hpp>
#include <minicnn/layers/conv2d.hpp>
#include <minicnn/layers/flatten.hpp>
#include <minicnn/layers/linear.hpp>
#include <minicnn/layers/maxpool2d.hpp>
#include <minicnn/layers/relu.hpp>
#include <minicnn/layers/resnet_blocks.hpp>
#include <minicnn/layers/sequential.hpp>
#include <minicnn/loss.hpp>
#include <minicnn/models/fashion_cnn.hpp>
#include <minicnn/optim/adam.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

using minicnn::Sequential;

std::unique_ptr<minicnn::Module<float>> make_model(const std::string& name) {
  minicnn::Generator generator(0);
  if (name == "fashion_cnn") return std::make_unique<minicnn::models::FashionCNN<float>>(0);
  auto model = std::make_unique<Sequential<float>>();
  if (name == "batchnorm") {
    model->emplace<minicnn::Conv2d<float>>(1, 32, 3, 1, 1, false, generator);
    model->emplace<minicnn::BatchNorm<float, 2>>(32);
    model->emplace<minicnn::ReLU<float>>();
    model->emplace<minicnn::BasicBlock<float>>(32, 64, 2, 0, generator);
    model->emplace<minicnn::BasicBlock<float>>(64, 64, 2, 0, generator);
    model->emplace<minicnn::AdaptiveAvgPool2d<float>>(1, 1);
    model->emplace<minicnn::Flatten<float>>();
    model->emplace<minicnn::Linear<float>>(64, 10, true, generator);
  } else if (name == "resnet18") {
    model->emplace<minicnn::Conv2d<float>>(1, 64, 3, 1, 1, false, generator);
    model->emplace<minicnn::BatchNorm<float, 2>>(64);
    model->emplace<minicnn::ReLU<float>>();
    model->emplace<minicnn::MaxPool2d<float>>(3, 2, 1);
    std::int64_t in_channels = 64;
    for (const std::int64_t planes : {64, 128, 256, 512})
      for (int block = 0; block < 2; ++block) {
        const std::int64_t stride = block == 0 && planes != 64 ? 2 : 1;
        model->emplace<minicnn::BasicBlock<float>>(in_channels, planes, stride, 0, generator);
        in_channels = planes;
      }
    model->emplace<minicnn::AdaptiveAvgPool2d<float>>(1, 1);
    model->emplace<minicnn::Flatten<float>>();
    model->emplace<minicnn::Linear<float>>(512, 10, true, generator);
  } else {
    throw minicnn::error("minicnn_distributed_throughput: model '" + name +
                         "', expected fashion_cnn, batchnorm or resnet18");
  }
  model->set_input_grad(false);
  return model;
}

}  // namespace

int main(int argc, char** argv) {
  namespace distributed = minicnn::distributed;
  distributed::Environment environment(argc, argv, distributed::Launch::allow_singleton);
  return distributed::run_or_abort([&] {
    if (argc < 5)
      throw minicnn::error(
          "usage: minicnn_distributed_throughput MODEL GLOBAL_BATCH MICRO_BATCH STEPS [fixed_order|mpi_sum]");
    const std::string model_name = argv[1];
    distributed::DistributedSamplerOptions options;
    options.global_batch = std::stoll(argv[2]);
    options.micro_batch = std::stoll(argv[3]);
    const int steps = std::stoi(argv[4]);
    const std::string reduction = argc > 5 ? argv[5] : "fixed_order";
    const int rank = environment.rank(), world = environment.world_size();
    auto model = make_model(model_name);
    distributed::DistributedSampler sampler(options.global_batch * (steps + 1), options, rank, world);
    distributed::GradientAveragerOptions averager_options;
    averager_options.reduction =
        reduction == "mpi_sum" ? distributed::Reduction::mpi_sum : distributed::Reduction::fixed_order;
    distributed::broadcast_state(*model);
    distributed::GradientAverager<float> averager(model->parameters(), sampler.micro_batches_per_rank(),
                                                  averager_options);
    minicnn::Adam<float> optimizer(model->parameters(), 1e-3);
    minicnn::CrossEntropyLoss<float> loss;
    minicnn::Tensor<float> images(minicnn::Shape{options.micro_batch, 1, 28, 28});
    for (std::int64_t i = 0; i < images.size(); ++i) images[i] = static_cast<float>(minicnn::random_unit(1, i));
    std::vector<int> labels(static_cast<std::size_t>(options.micro_batch));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % 10);
    double communication = 0.0;
    std::chrono::steady_clock::time_point start;
    for (int step = 0; step <= steps; ++step) {
      if (step == 1) {
        MPI_Barrier(MPI_COMM_WORLD);
        start = std::chrono::steady_clock::now();
        communication = averager.seconds();
      }
      distributed::broadcast_buffers(*model);
      for (std::int64_t j = 0; j < sampler.micro_batches_per_rank(); ++j) {
        model->zero_grad();
        loss.forward(model->forward(images), labels);
        model->backward(loss.backward());
        averager.keep(j, options.micro_batch, options.global_batch);
      }
      averager.average();
      optimizer.step();
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double communication_per_step = (averager.seconds() - communication) / steps;
    MPI_Allreduce(MPI_IN_PLACE, &communication_per_step, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0)
      std::printf(
          "%s: %d process(es) x %d thread(s), global batch %lld, micro-batch %lld, %s, %lld parameters: "
          "%.1f images/s, %.1f ms per step, %.2f ms per step in average()\n",
          model_name.c_str(), world, minicnn::num_threads(), static_cast<long long>(options.global_batch),
          static_cast<long long>(options.micro_batch), reduction.c_str(),
          static_cast<long long>(model->num_parameters()), options.global_batch * steps / seconds,
          1000.0 * seconds / steps, 1000.0 * communication_per_step);
    return 0;
  });
}
