#pragma once
// The processes that train together: this one alone (a plain run), or every process of an MPI
// job (`train --distributed`, started by mpirun). The training loop asks them for the few things
// a data-parallel step needs (docs/distributed.md): equal starting weights, rank 0's buffers,
// the combined gradient, and agreement on when to stop. This is the demo's only file that knows
// whether the build has MPI (MINICNN_WITH_MPI, defined by the minicnn target).
//
// Fault contract under MPI: an error that every process finds alike (a ConfigurationError: it
// depends only on the flags and the process count) prints one line from rank 0 and every process
// exits 2; any other exception ends the whole job through distributed::run_or_abort (the rank's
// one-line message, a non-zero exit), since the other processes may be waiting in a collective.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/optim/gradient_accumulator.hpp"
#include "options.hpp"
#include "terminal.hpp"

#if defined(MINICNN_WITH_MPI)
#include <mpi.h>

#include "minicnn/distributed.hpp"
#endif

namespace fashion_mnist {

// Bad input that every process of a run detects alike (see the fault contract above).
class ConfigurationError : public minicnn::error {
 public:
  explicit ConfigurationError(const std::string& message) : minicnn::error(message) {}
};

// How the gradients of a step's micro-batches become the gradient the optimiser applies:
// keep() after each micro-batch's backward, average() once per step.
class GradientCombiner {
 public:
  virtual ~GradientCombiner() = default;
  virtual void keep(std::int64_t local_index, std::int64_t images, std::int64_t step_images) = 0;
  virtual void average() = 0;
};

// One process: minicnn::GradientAccumulator, the same arithmetic as the MPI averager.
class AccumulatingCombiner final : public GradientCombiner {
 public:
  AccumulatingCombiner(std::vector<minicnn::Parameter<float>*> parameters, std::int64_t micro_batches)
      : accumulator_(std::move(parameters), micro_batches) {}
  void keep(std::int64_t local_index, std::int64_t images, std::int64_t step_images) override {
    accumulator_.keep(local_index, images, step_images);
  }
  void average() override { accumulator_.average(); }

 private:
  minicnn::GradientAccumulator<float> accumulator_;
};

// The processes of a run. This base is the single process of a plain run: every collective is
// the identity. MpiProcesses (below) is the distributed one.
class Processes {
 public:
  virtual ~Processes() = default;
  virtual bool distributed() const { return false; }
  virtual int rank() const { return 0; }
  virtual int count() const { return 1; }
  bool is_root() const { return rank() == 0; }
  virtual std::string description() const { return "1 process"; }

  // Every process gets rank 0's parameters and buffers.
  virtual void broadcast_state(minicnn::Module<float>&) {}
  // Every process gets rank 0's buffers (DDP's broadcast_buffers, at the start of a step).
  virtual void broadcast_buffers(minicnn::Module<float>&) {}
  // Whether `flag` holds on any process.
  virtual bool any(bool flag) { return flag; }
  // Rank 0's `flag`, on every process.
  virtual bool from_root(bool flag) { return flag; }
  // Every process's `values` (the same count on each), concatenated in rank order.
  virtual std::vector<double> gather(const std::vector<double>& values) { return values; }
  virtual std::unique_ptr<GradientCombiner> combiner(std::vector<minicnn::Parameter<float>*> parameters,
                                                     std::int64_t micro_batches_per_process) {
    return std::make_unique<AccumulatingCombiner>(std::move(parameters), micro_batches_per_process);
  }
  // Seconds spent in communication so far (the wait for slower processes included).
  virtual double communication_seconds() const { return 0.0; }
};

#if defined(MINICNN_WITH_MPI)

// distributed::GradientAverager; its time in average() is added to the processes' total.
class AveragingCombiner final : public GradientCombiner {
 public:
  AveragingCombiner(std::vector<minicnn::Parameter<float>*> parameters, std::int64_t micro_batches_per_process,
                    minicnn::distributed::GradientAveragerOptions options, double& communication_seconds)
      : averager_(std::move(parameters), micro_batches_per_process, options),
        communication_seconds_(communication_seconds) {}
  void keep(std::int64_t local_index, std::int64_t images, std::int64_t step_images) override {
    averager_.keep(local_index, images, step_images);
  }
  void average() override {
    const double before = averager_.seconds();
    averager_.average();
    communication_seconds_ += averager_.seconds() - before;
  }

 private:
  minicnn::distributed::GradientAverager<float> averager_;
  double& communication_seconds_;
};

// Every process of MPI_COMM_WORLD. Rank 0 alone prints: the others' stdout goes to /dev/null
// (their errors still reach stderr).
class MpiProcesses final : public Processes {
 public:
  explicit MpiProcesses(const std::string& reduction)
      : rank_(minicnn::distributed::rank()), count_(minicnn::distributed::world_size()) {
    options_.reduction = reduction == "mpi_sum" ? minicnn::distributed::Reduction::mpi_sum
                                                : minicnn::distributed::Reduction::fixed_order;
    if (rank_ != 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
      throw minicnn::error("rank " + std::to_string(rank_) + ": cannot silence stdout");
  }

  bool distributed() const override { return true; }
  int rank() const override { return rank_; }
  int count() const override { return count_; }
  std::string description() const override {
    return std::to_string(count_) + (count_ == 1 ? " process" : " processes") + " (MPI, " +
           (options_.reduction == minicnn::distributed::Reduction::mpi_sum ? "mpi_sum" : "fixed_order") +
           " reduction)";
  }

  void broadcast_state(minicnn::Module<float>& model) override {
    const auto start = Clock::now();
    minicnn::distributed::broadcast_state(model);
    seconds_ += seconds_since(start);
  }
  void broadcast_buffers(minicnn::Module<float>& model) override {
    const auto start = Clock::now();
    minicnn::distributed::broadcast_buffers(model);
    seconds_ += seconds_since(start);
  }
  bool any(bool flag) override {
    const auto start = Clock::now();
    int value = flag ? 1 : 0;
    minicnn::distributed::check_mpi(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD),
                                    "MPI_Allreduce");
    seconds_ += seconds_since(start);
    return value != 0;
  }
  // Not counted as communication: the other processes wait here while rank 0 evaluates.
  bool from_root(bool flag) override {
    int value = flag ? 1 : 0;
    minicnn::distributed::check_mpi(MPI_Bcast(&value, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
    return value != 0;
  }
  std::vector<double> gather(const std::vector<double>& values) override {
    const auto start = Clock::now();
    std::vector<double> all(values.size() * static_cast<std::size_t>(count_));
    minicnn::distributed::check_mpi(MPI_Allgather(values.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                                                  all.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                                                  MPI_COMM_WORLD),
                                    "MPI_Allgather");
    seconds_ += seconds_since(start);
    return all;
  }
  std::unique_ptr<GradientCombiner> combiner(std::vector<minicnn::Parameter<float>*> parameters,
                                             std::int64_t micro_batches_per_process) override {
    return std::make_unique<AveragingCombiner>(std::move(parameters), micro_batches_per_process, options_, seconds_);
  }
  double communication_seconds() const override { return seconds_; }

 private:
  int rank_, count_;
  minicnn::distributed::GradientAveragerOptions options_;
  double seconds_ = 0.0;
};

#endif

// Runs body(processes) with the processes of this run and returns its exit status: this process
// alone, or with --distributed every process of the MPI job (MPI is started and ended here).
// Throws minicnn::error (bad input, exit 2) when --distributed cannot be honoured: a build without
// MPI, or a process not started by mpirun.
template <typename Body>
int with_processes(int& argc, char**& argv, const TrainOptions& options, Body body) {
  if (!options.distributed) {
    Processes single;
    return body(single);
  }
#if defined(MINICNN_WITH_MPI)
  minicnn::distributed::Environment environment(argc, argv);  // throws unless started by a launcher
  std::string bad_input;
  const int status = minicnn::distributed::run_or_abort([&] {
    MpiProcesses processes(options.reduction);
    try {
      return body(processes);
    } catch (const ConfigurationError& error) {
      bad_input = error.what();
      return 2;
    }
  });
  // Every process found it; rank 0 says it, once (the caller prints it and exits 2).
  if (!bad_input.empty() && environment.rank() == 0) throw ConfigurationError(bad_input);
  return status;
#else
  (void)argc;
  (void)argv;
  (void)body;
  throw minicnn::error(
      "--distributed: this fashion_mnist was built without MPI; configure with -DMINICNN_WITH_MPI=ON (Debian: "
      "openmpi-bin libopenmpi-dev), rebuild, and start it as `mpirun -np 2 fashion_mnist train --distributed ...`");
#endif
}

}  // namespace fashion_mnist
