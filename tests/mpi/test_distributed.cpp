// The MPI suite: broadcast and gradient averaging on odd sizes, the distributed sampler, and
// bit-identical training on any process count (docs/distributed.md). Every rank runs every test
// case; a check whose outcome could differ between ranks is agreed on first (all_ranks), so a
// failure on one rank fails the case everywhere instead of leaving the others in a collective.
#include <mpi.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <minicnn/data/dataset.hpp>
#include <minicnn/data/loader.hpp>
#include <minicnn/distributed.hpp>
#include <minicnn/layers/adaptive_avg_pool2d.hpp>
#include <minicnn/layers/batchnorm.hpp>
#include <minicnn/layers/conv2d.hpp>
#include <minicnn/layers/flatten.hpp>
#include <minicnn/layers/linear.hpp>
#include <minicnn/layers/relu.hpp>
#include <minicnn/layers/resnet_blocks.hpp>
#include <minicnn/layers/sequential.hpp>
#include <minicnn/loss.hpp>
#include <minicnn/models/fashion_cnn.hpp>
#include <minicnn/optim/adam.hpp>
#include <minicnn/random.hpp>

#include "../same_bits.hpp"

namespace {

namespace distributed = minicnn::distributed;
using minicnn::Shape;
using minicnn::Tensor;
using minicnn::testing::same_bits;

// Whether `ok` holds on every rank.
bool all_ranks(bool ok) {
  int value = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return value == 1;
}

// A value with a varied exponent and sign, the same on every rank for the same key: sums of
// such values round differently in every order, so an order change shows in the bits.
float varied_value(std::uint64_t key) {
  const double unit = minicnn::random_unit(12345, key);
  const double scale = 1.0 + 1000.0 * minicnn::random_unit(777, key);
  return static_cast<float>((unit - 0.5) * scale);
}

TEST_CASE("broadcast_tensors copies odd sizes, empty tensors and bucket edges from any root", "[mpi]") {
  const int rank = distributed::rank(), world = distributed::world_size();
  const std::vector<std::int64_t> sizes{0, 1, 7, 0, 13, 1000, 3, 0};
  for (const std::int64_t bucket_bytes :
       {std::int64_t{4}, std::int64_t{12}, std::int64_t{28}, std::int64_t{4096}, distributed::default_bucket_bytes})
    for (const int root : {0, world - 1}) {
      std::vector<Tensor<float>> tensors;
      std::vector<Tensor<float>*> pointers;
      for (std::size_t t = 0; t < sizes.size(); ++t) tensors.emplace_back(Shape{sizes[t]});
      for (std::size_t t = 0; t < sizes.size(); ++t) {
        for (std::int64_t i = 0; i < sizes[t]; ++i)
          tensors[t][i] = rank == root ? varied_value(t * 10000 + static_cast<std::uint64_t>(i)) : -1.0f;
        pointers.push_back(&tensors[t]);
      }
      distributed::broadcast_tensors(pointers, root, bucket_bytes);
      bool ok = true;
      for (std::size_t t = 0; t < sizes.size(); ++t)
        for (std::int64_t i = 0; i < sizes[t]; ++i)
          ok = ok && tensors[t][i] == varied_value(t * 10000 + static_cast<std::uint64_t>(i));
      INFO("bucket_bytes " << bucket_bytes << ", root " << root << ", rank " << rank);
      REQUIRE(all_ranks(ok));
    }
}

TEST_CASE("broadcast_tensors names both layouts when the ranks built different models", "[mpi]") {
  const int rank = distributed::rank(), world = distributed::world_size();
  if (world < 2) return;
  Tensor<float> tensor(Shape{rank == 1 ? 5 : 4});
  std::vector<Tensor<float>*> pointers{&tensor};
  // Every rank throws: rank 1 with both layouts, the others naming rank 1.
  const std::string expected = rank == 1 ? "rank 1 holds 1 tensors of 5 elements, expected the root's (rank 0) 1 "
                                           "tensors of 4"
                                         : "rank 1 holds tensors of other sizes than the root's (rank 0)";
  bool threw_with_message = false;
  try {
    distributed::broadcast_tensors(pointers);
  } catch (const minicnn::error& failure) {
    threw_with_message = std::string(failure.what()).find(expected) != std::string::npos;
  }
  REQUIRE(all_ranks(threw_with_message));
}

// Parameters of odd sizes whose gradients are filled per global micro-batch.
struct FakeModel {
  std::vector<std::unique_ptr<minicnn::Parameter<float>>> storage;
  std::vector<minicnn::Parameter<float>*> parameters;
  explicit FakeModel(const std::vector<std::int64_t>& sizes) {
    for (std::size_t p = 0; p < sizes.size(); ++p) {
      storage.push_back(std::make_unique<minicnn::Parameter<float>>("p" + std::to_string(p), Shape{sizes[p]}));
      parameters.push_back(storage.back().get());
    }
  }
  void fill(std::int64_t micro_batch) {
    for (std::size_t p = 0; p < parameters.size(); ++p)
      for (std::int64_t i = 0; i < parameters[p]->grad.size(); ++i)
        parameters[p]->grad[i] = varied_value(static_cast<std::uint64_t>(micro_batch) * 1000003 + p * 10007 + i);
  }
};

TEST_CASE("GradientAverager (fixed order) gives the in-order weighted sum on every rank, any bucket", "[mpi]") {
  const int rank = distributed::rank(), world = distributed::world_size();
  const std::vector<std::int64_t> sizes{0, 1, 5, 17, 0, 301, 2};
  for (const std::int64_t local : {1, 2, 3})
    for (const std::int64_t bucket_bytes :
         {std::int64_t{4}, std::int64_t{8}, std::int64_t{20}, std::int64_t{260}, distributed::default_bucket_bytes}) {
      const std::int64_t micro_batches = local * world;
      // Unequal image counts, one of them empty: a last partial step.
      std::vector<std::int64_t> images(static_cast<std::size_t>(micro_batches));
      std::int64_t step_images = 0;
      for (std::int64_t m = 0; m < micro_batches; ++m) step_images += images[m] = m % 4 == 3 ? 0 : 1 + m % 3;
      FakeModel model(sizes);
      distributed::GradientAveragerOptions options;
      options.bucket_bytes = bucket_bytes;
      distributed::GradientAverager<float> averager(model.parameters, local, options);
      for (std::int64_t j = 0; j < local; ++j) {
        const std::int64_t m = rank * local + j;
        model.fill(m);
        averager.keep(j, images[m], step_images);
      }
      averager.average();
      // The reference, on every rank: scale each micro-batch's gradient, add in global order.
      FakeModel reference(sizes);
      bool ok = true;
      for (std::size_t p = 0; p < sizes.size(); ++p)
        for (std::int64_t i = 0; i < sizes[p]; ++i) {
          float sum = 0.0f;
          for (std::int64_t m = 0; m < micro_batches; ++m) {
            const float weight = static_cast<float>(static_cast<double>(images[m]) / static_cast<double>(step_images));
            const float scaled =
                images[m] == 0 ? 0.0f : varied_value(static_cast<std::uint64_t>(m) * 1000003 + p * 10007 + i) * weight;
            sum = m == 0 ? scaled : sum + scaled;
          }
          float found = model.parameters[p]->grad[i];
          ok = ok && std::memcmp(&sum, &found, sizeof(float)) == 0;
        }
      INFO("micro-batches per rank " << local << ", bucket_bytes " << bucket_bytes << ", rank " << rank);
      REQUIRE(all_ranks(ok));
    }
}

TEST_CASE("GradientAverager (MPI_SUM) agrees with the fixed-order sum to rounding, equal on every rank", "[mpi]") {
  const int world = distributed::world_size(), rank = distributed::rank();
  const std::vector<std::int64_t> sizes{3, 0, 1001};
  FakeModel fixed(sizes), summed(sizes);
  distributed::GradientAveragerOptions sum_options;
  sum_options.reduction = distributed::Reduction::mpi_sum;
  sum_options.bucket_bytes = 400;
  distributed::GradientAverager<float> fixed_averager(fixed.parameters, 2);
  distributed::GradientAverager<float> sum_averager(summed.parameters, 2, sum_options);
  for (std::int64_t j = 0; j < 2; ++j) {
    fixed.fill(rank * 2 + j);
    fixed_averager.keep(j, 4, 8 * world);
    summed.fill(rank * 2 + j);
    sum_averager.keep(j, 4, 8 * world);
  }
  fixed_averager.average();
  sum_averager.average();
  bool close = true;
  for (std::size_t p = 0; p < sizes.size(); ++p)
    for (std::int64_t i = 0; i < sizes[p]; ++i) {
      const float a = fixed.parameters[p]->grad[i], b = summed.parameters[p]->grad[i];
      close = close && std::abs(a - b) <= 1e-5f * (1.0f + std::abs(a));
    }
  REQUIRE(all_ranks(close));
  // Every rank must hold the same MPI_SUM result, or their weights would drift apart.
  Tensor<float> mine = summed.parameters[2]->grad, root = summed.parameters[2]->grad;
  distributed::broadcast_tensors(std::vector<Tensor<float>*>{&root});
  REQUIRE(all_ranks(same_bits(mine, root)));
}

TEST_CASE("DistributedSampler: disjoint, complete, the same order on every rank, deterministic", "[mpi]") {
  const int rank = distributed::rank(), world = distributed::world_size();
  // 101 images: the last global batch (5 images over 12 micro-batches) leaves some empty.
  minicnn::data::ImageDataset dataset;
  dataset.images = Tensor<std::uint8_t>(Shape{101, 2, 2});
  dataset.labels.assign(101, 0);
  dataset.num_classes = 1;
  minicnn::data::DataLoaderOptions loader_options;
  loader_options.batch_size = 48;
  loader_options.shuffle = true;
  loader_options.seed = 9;
  minicnn::data::DataLoader loader(dataset, loader_options);
  distributed::DistributedSamplerOptions options;
  options.global_batch = 48;
  options.micro_batch = 4;
  for (const std::uint64_t epoch : {0, 1}) {
    loader.set_epoch(epoch);
    distributed::DistributedSampler sampler(dataset.size(), options, rank, world);
    // The epoch's data-set indices this rank trains on, in step order.
    std::vector<std::int64_t> mine;
    for (std::int64_t step = 0; step < sampler.num_steps(); ++step)
      for (std::int64_t j = 0; j < sampler.micro_batches_per_rank(); ++j) {
        const distributed::MicroBatch micro_batch = sampler.micro_batch(step, j);
        for (std::int64_t k = 0; k < micro_batch.count; ++k) mine.push_back(loader.index_at(micro_batch.first + k));
      }
    // Gather every rank's shard on every rank.
    int count = static_cast<int>(mine.size());
    std::vector<int> counts(static_cast<std::size_t>(world)), displacements(static_cast<std::size_t>(world));
    MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
    int total = 0;
    for (int q = 0; q < world; ++q) displacements[q] = total, total += counts[q];
    std::vector<std::int64_t> all(static_cast<std::size_t>(total));
    MPI_Allgatherv(mine.data(), count, MPI_INT64_T, all.data(), counts.data(), displacements.data(), MPI_INT64_T,
                   MPI_COMM_WORLD);
    std::vector<std::int64_t> sorted = all;
    std::sort(sorted.begin(), sorted.end());
    bool complete_and_disjoint = sorted.size() == 101;
    for (std::size_t i = 0; complete_and_disjoint && i < sorted.size(); ++i)
      complete_and_disjoint = sorted[i] == static_cast<std::int64_t>(i);
    INFO("epoch " << epoch << ", rank " << rank << ": " << total << " indices gathered");
    REQUIRE(all_ranks(complete_and_disjoint));
    // The same order on every rank: rank 0's epoch order, broadcast, against ours.
    std::vector<std::int64_t> order(101), root_order(101);
    for (std::int64_t position = 0; position < 101; ++position) order[position] = loader.index_at(position);
    root_order = order;
    MPI_Bcast(root_order.data(), 101, MPI_INT64_T, 0, MPI_COMM_WORLD);
    REQUIRE(all_ranks(order == root_order));
    // Deterministic: the shards are cut from that order in global micro-batch order, so the
    // gathered shards, rank after rank, are the epoch's order within each step.
    bool in_order = true;
    std::int64_t at = 0;
    for (std::int64_t step = 0; step < sampler.num_steps(); ++step)
      for (int q = 0; q < world; ++q) {
        distributed::DistributedSampler other(dataset.size(), options, q, world);
        for (std::int64_t j = 0; j < other.micro_batches_per_rank(); ++j) {
          const distributed::MicroBatch micro_batch = other.micro_batch(step, j);
          for (std::int64_t k = 0; k < micro_batch.count; ++k) in_order = in_order && micro_batch.first + k == at++;
        }
      }
    REQUIRE(in_order);
  }
}

TEST_CASE("DistributedSampler rejects a global batch the processes cannot share, naming one that works", "[mpi]") {
  distributed::DistributedSamplerOptions options;
  options.global_batch = 64;
  options.micro_batch = 16;
  REQUIRE_THROWS_WITH(distributed::DistributedSampler(1000, options, 0, 3),
                      Catch::Contains("the global batch 64 is 4 micro-batches of 16, which 3 processes cannot share "
                                      "equally; expected a global batch that is a multiple of micro_batch x "
                                      "processes = 48 (e.g. 96)"));
  options.micro_batch = 5;
  REQUIRE_THROWS_WITH(distributed::DistributedSampler(1000, options, 0, 1),
                      Catch::Contains("the global batch 64 is not a multiple of the micro-batch 5"));
}

// Random images and labels, the same on every rank.
minicnn::data::ImageDataset synthetic_dataset(std::int64_t count) {
  minicnn::data::ImageDataset dataset;
  dataset.images = Tensor<std::uint8_t>(Shape{count, 28, 28});
  for (std::int64_t i = 0; i < dataset.images.size(); ++i)
    dataset.images[i] = static_cast<std::uint8_t>(minicnn::random_bits(5, i) % 256);
  for (std::int64_t i = 0; i < count; ++i) dataset.labels.push_back(static_cast<int>(minicnn::random_bits(6, i) % 10));
  dataset.num_classes = 10;
  return dataset;
}

// A small model with BatchNorm: conv, BatchNorm2d, ReLU, a strided BasicBlock (two more
// BatchNorms and a downsample), global average pool, linear.
std::unique_ptr<minicnn::Sequential<float>> batchnorm_model() {
  minicnn::Generator generator(3);
  auto model = std::make_unique<minicnn::Sequential<float>>();
  model->emplace<minicnn::Conv2d<float>>(1, 8, 3, 2, 1, false, generator);
  model->emplace<minicnn::BatchNorm<float, 2>>(8);
  model->emplace<minicnn::ReLU<float>>();
  model->emplace<minicnn::BasicBlock<float>>(8, 16, 2, 0, generator);
  model->emplace<minicnn::AdaptiveAvgPool2d<float>>(1, 1);
  model->emplace<minicnn::Flatten<float>>();
  model->emplace<minicnn::Linear<float>>(16, 10, true, generator);
  model->set_input_grad(false);
  return model;
}

// Trains `model` for `epochs` epochs the distributed way on `communicator` (MPI_COMM_SELF: the
// single-process reference) and returns its state (parameters and buffers).
std::vector<Tensor<float>> train_distributed(minicnn::Module<float>& model, const minicnn::data::ImageDataset& dataset,
                                             distributed::DistributedSamplerOptions options, MPI_Comm communicator,
                                             int epochs) {
  int rank = 0, world = 1;
  MPI_Comm_rank(communicator, &rank);
  MPI_Comm_size(communicator, &world);
  minicnn::data::DataLoaderOptions loader_options;
  loader_options.batch_size = options.global_batch;
  loader_options.shuffle = true;
  loader_options.seed = 11;
  minicnn::data::DataLoader loader(dataset, loader_options);
  distributed::DistributedSampler sampler(dataset.size(), options, rank, world);
  distributed::GradientAveragerOptions averager_options;
  averager_options.communicator = communicator;
  averager_options.bucket_bytes = 64 << 10;  // several buckets for FashionCNN's 298 KB
  distributed::broadcast_state(model, 0, distributed::default_bucket_bytes, communicator);
  distributed::GradientAverager<float> averager(model.parameters(), sampler.micro_batches_per_rank(), averager_options);
  distributed::RandomStreams<float> streams(model, Shape{1, 28, 28});
  minicnn::Adam<float> optimizer(model.parameters(), 1e-3);
  minicnn::CrossEntropyLoss<float> loss;
  Tensor<float> images;
  std::vector<int> labels;
  model.train();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    loader.set_epoch(static_cast<std::uint64_t>(epoch));
    for (std::int64_t step = 0; step < sampler.num_steps(); ++step) {
      distributed::broadcast_buffers(model, 0, distributed::default_bucket_bytes, communicator);
      streams.begin_step();
      const std::int64_t step_first = step * options.global_batch;
      for (std::int64_t j = 0; j < sampler.micro_batches_per_rank(); ++j) {
        const distributed::MicroBatch micro_batch = sampler.micro_batch(step, j);
        model.zero_grad();
        if (micro_batch.count > 0) {
          loader.load_positions(micro_batch.first, micro_batch.count, images, labels);
          streams.position(micro_batch.first - step_first);
          loss.forward(model.forward(images), labels);
          model.backward(loss.backward());
        }
        averager.keep(j, micro_batch.count, sampler.step_images(step));
      }
      averager.average();
      optimizer.step();
      streams.end_step(sampler.step_images(step));
    }
  }
  std::vector<Tensor<float>> state;
  for (const minicnn::NamedTensor<float>& entry : model.state()) state.push_back(*entry.tensor);
  return state;
}

// Whether this rank's state equals rank 0's reference, tensor by tensor; `parameters_only`
// skips the buffers (BatchNorm's running statistics, which are rank 0's own; see the docs).
bool equals_reference(minicnn::Module<float>& model, std::vector<Tensor<float>> state,
                      std::vector<Tensor<float>> reference, bool parameters_only) {
  std::vector<Tensor<float>*> pointers;
  for (Tensor<float>& tensor : reference) pointers.push_back(&tensor);
  distributed::broadcast_tensors(pointers);
  bool same = state.size() == reference.size();
  const auto entries = model.state();
  for (std::size_t t = 0; same && t < state.size(); ++t) {
    if (parameters_only && !entries[t].is_parameter) continue;
    if (!same_bits(state[t], reference[t])) {
      UNSCOPED_INFO("rank " << distributed::rank() << ": " << entries[t].name << " differs from the 1-process run");
      same = false;
    }
  }
  return same;
}

TEST_CASE("FashionCNN: P processes end with the weights of the single-process run, bit for bit", "[mpi]") {
  const minicnn::data::ImageDataset dataset = synthetic_dataset(101);
  distributed::DistributedSamplerOptions options;
  options.global_batch = 48;  // 12 micro-batches of 4: any of 1, 2, 3, 4, 6 or 12 processes
  options.micro_batch = 4;
  // The reference: one process (rank 0 alone, 2 threads), all 12 micro-batches in turn.
  std::vector<Tensor<float>> reference;
  if (distributed::rank() == 0) {
    minicnn::set_num_threads(2);
    minicnn::models::FashionCNN<float> model(0);
    reference = train_distributed(model, dataset, options, MPI_COMM_SELF, 2);
    minicnn::set_num_threads(1);
  }
  minicnn::models::FashionCNN<float> model(0);
  const std::vector<Tensor<float>> state = train_distributed(model, dataset, options, MPI_COMM_WORLD, 2);
  if (distributed::rank() != 0) reference = state;  // shapes for the broadcast of rank 0's
  REQUIRE(all_ranks(equals_reference(model, state, reference, false)));
}

TEST_CASE("BatchNorm model: P processes end with the single-process run's parameters, bit for bit", "[mpi]") {
  const minicnn::data::ImageDataset dataset = synthetic_dataset(101);
  distributed::DistributedSamplerOptions options;
  options.global_batch = 48;
  options.micro_batch = 4;
  std::vector<Tensor<float>> reference;
  if (distributed::rank() == 0) {
    minicnn::set_num_threads(2);
    auto model = batchnorm_model();
    reference = train_distributed(*model, dataset, options, MPI_COMM_SELF, 2);
    minicnn::set_num_threads(1);
  }
  auto model = batchnorm_model();
  const std::vector<Tensor<float>> state = train_distributed(*model, dataset, options, MPI_COMM_WORLD, 2);
  if (distributed::rank() != 0) reference = state;
  // Parameters: equal on every process count. Buffers (running statistics): rank 0's, updated
  // by its own micro-batches only, as DDP; equal to the reference only with one process.
  REQUIRE(all_ranks(equals_reference(*model, state, reference, distributed::world_size() > 1)));
}

TEST_CASE("One process, one micro-batch: the distributed loop equals plain training with that batch", "[mpi]") {
  if (distributed::rank() != 0) return;
  const minicnn::data::ImageDataset dataset = synthetic_dataset(101);
  distributed::DistributedSamplerOptions options;
  options.global_batch = 32;
  options.micro_batch = 32;
  minicnn::models::FashionCNN<float> distributed_model(0);
  const std::vector<Tensor<float>> state = train_distributed(distributed_model, dataset, options, MPI_COMM_SELF, 2);
  // The plain loop: DataLoader batches of 32, zero_grad, forward, backward, step.
  minicnn::models::FashionCNN<float> model(0);
  minicnn::data::DataLoaderOptions loader_options;
  loader_options.batch_size = 32;
  loader_options.shuffle = true;
  loader_options.seed = 11;
  minicnn::data::DataLoader loader(dataset, loader_options);
  minicnn::Adam<float> optimizer(model.parameters(), 1e-3);
  minicnn::CrossEntropyLoss<float> loss;
  Tensor<float> images;
  std::vector<int> labels;
  for (int epoch = 0; epoch < 2; ++epoch)
    while (loader.next(images, labels)) {
      optimizer.zero_grad();
      loss.forward(model.forward(images), labels);
      model.backward(loss.backward());
      optimizer.step();
    }
  const auto entries = model.state();
  for (std::size_t t = 0; t < entries.size(); ++t) {
    INFO(entries[t].name);
    REQUIRE(same_bits(*entries[t].tensor, state[t]));
  }
}

}  // namespace
