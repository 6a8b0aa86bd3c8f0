#pragma once
// `fashion_mnist train`: the tutorial's training loop with checkpoints, resume, Ctrl-C,
// divergence detection and the output folder (model, checkpoint, metrics.json, figures).
//
// The loop, in Trainer::run:
//   while epochs remain:  train_epoch()   steps of the epoch: lr_at(step), then train_batch() (forward, loss,
//                                         backward, step) or, with --micro-batch or --distributed,
//                                         train_micro_batches()
//                         end_of_epoch()  evaluate on the test set, record, save everything, print a line
//
// Micro-batches (docs/distributed.md): a step's global batch of --batch-size images is cut into
// micro-batches of --micro-batch images (distributed::DistributedSampler, which also says which
// of them each process runs); each gets zero_grad, forward, loss, backward, and the gradients
// are combined as fl(n_m / N) g_m added in micro-batch order (GradientAccumulator in one
// process, GradientAverager over MPI), so one process and P processes write the same weights.
// Dropout masks are placed as a single process with the whole batch would draw them
// (distributed::RandomStreams). Rank 0 alone evaluates, prints and writes files.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "device.hpp"
#include "evaluation.hpp"
#include "minicnn/config.hpp"
#include "minicnn/data/fashion_mnist.hpp"
#include "minicnn/data/loader.hpp"
#include "minicnn/data/transforms.hpp"
#include "minicnn/distributed/random_streams.hpp"
#include "minicnn/distributed/sampler.hpp"
#include "minicnn/io/atomic_file.hpp"
#include "minicnn/io/safetensors.hpp"
#include "minicnn/loss.hpp"
#include "minicnn/optim/adam.hpp"
#include "minicnn/optim/param_groups.hpp"
#include "minicnn/optim/schedules.hpp"
#include "minicnn/viz/plot.hpp"
#include "model.hpp"
#include "options.hpp"
#include "processes.hpp"
#include "terminal.hpp"

namespace fashion_mnist {

// Exit codes of `train` besides 0 and 2 (bad input): documented in docs/demo.md.
inline constexpr int exit_diverged = 1;
inline constexpr int exit_interrupted = 130;  // the shell's code for "ended by SIGINT"

// The learning rate of every optimizer step, whatever the schedule: the one place that reads
// config.schedule. Every schedule is a pure function of the step, so a checkpoint needs only
// the optimizer's step count.
struct LearningRateSchedule {
  std::function<double(std::int64_t step)> lr_at;
  std::string description;
};

inline LearningRateSchedule make_schedule(const TrainConfig& config, std::int64_t steps_per_epoch) {
  const std::int64_t total_steps = steps_per_epoch * config.epochs;
  const std::string warmup = format("%g", 100 * config.warmup) + "%";
  if (config.schedule == "cosine") {
    const minicnn::EpochCosineSchedule cosine(config.lr, config.epochs, steps_per_epoch);
    return {[cosine](std::int64_t step) { return cosine.lr(step); },
            "CosineAnnealingLR(T_max=" + std::to_string(config.epochs) + ") per epoch"};
  }
  if (config.schedule == "onecycle") {
    minicnn::OneCycleSchedule one_cycle;
    one_cycle.max_lr = config.lr;
    one_cycle.total_steps = total_steps;
    one_cycle.pct_start = config.warmup;
    one_cycle.validate();
    return {[one_cycle](std::int64_t step) { return one_cycle.lr(step); },
            "one-cycle per step, " + warmup + " warm-up"};
  }
  if (config.schedule == "warmup-cosine") {
    minicnn::WarmupCosineSchedule warmup_cosine;
    warmup_cosine.peak_lr = config.lr;
    warmup_cosine.total_steps = total_steps;
    warmup_cosine.warmup_steps = std::llround(config.warmup * static_cast<double>(total_steps));
    warmup_cosine.validate();
    return {[warmup_cosine](std::int64_t step) { return warmup_cosine.lr(step); },
            "linear warm-up " + warmup + " then cosine, per step"};
  }
  return {[lr = config.lr](std::int64_t) { return lr; }, "constant lr"};
}

// Adam with L2 weight decay (the tutorial's) or AdamW: the one place that reads config.optimizer.
// Adam or AdamW over every parameter; with decay_norm_and_bias off, two parameter groups:
// conv and linear weights decayed, biases and BatchNorm weights not (split_weight_decay).
inline std::unique_ptr<minicnn::Adam<float>> make_optimizer(const TrainConfig& config, Model& model) {
  std::vector<minicnn::ParameterGroup<float>> groups(1);
  if (config.decay_norm_and_bias)
    groups[0].parameters = model.module().parameters();
  else
    groups = minicnn::split_weight_decay(model.module().named_parameters(), config.weight_decay);
  if (config.optimizer == "adamw")
    return std::make_unique<minicnn::AdamW<float>>(std::move(groups), config.lr, 0.9, 0.999, 1e-8,
                                                   config.weight_decay);
  return std::make_unique<minicnn::Adam<float>>(std::move(groups), config.lr, 0.9, 0.999, 1e-8, config.weight_decay);
}

// The training images' transforms, in torchvision's order: the geometric ones on [0, 1] pixels,
// then Normalize, then RandomErasing (which torchvision applies to the normalised tensor).
inline minicnn::data::Compose make_train_transform(const TrainConfig& config) {
  minicnn::data::Compose transform;
  if (config.augment && config.crop_padding > 0) transform.add(minicnn::data::RandomCrop(28, static_cast<int>(config.crop_padding)));
  if (config.augment && config.rotation > 0) transform.add(minicnn::data::RandomRotation(config.rotation));
  if (config.augment) transform.add(minicnn::data::RandomHorizontalFlip(0.5));
  transform.add(minicnn::data::Normalize(normalize_mean, normalize_std));
  if (config.augment && config.erasing > 0) transform.add(minicnn::data::RandomErasing(config.erasing));
  return transform;
}

inline minicnn::data::DataLoader make_train_loader(const TrainConfig& config,
                                                   const minicnn::data::ImageDataset& train) {
  minicnn::data::DataLoaderOptions options;
  options.batch_size = config.batch_size;
  options.shuffle = true;
  options.seed = config.seed;
  return minicnn::data::DataLoader(train, options, make_train_transform(config));
}

// One line describing the recipe; `micro_batch_note` says where a default micro-batch came from.
inline std::string describe(const TrainConfig& c, const std::string& schedule, const std::string& micro_batch_note = "") {
  const minicnn::data::Compose transform = make_train_transform(c);
  return "recipe " + c.recipe + ": " + c.model + ", " + std::to_string(c.epochs) + " epochs, batch " +
         std::to_string(c.batch_size) +
         (c.micro_batch > 0 ? " in micro-batches of " + std::to_string(c.micro_batch) + micro_batch_note : "") + ", " +
         (c.optimizer == "adamw" ? "AdamW" : "Adam") + " lr " + format("%g", c.lr) +
         (c.weight_decay > 0
              ? ", weight decay " + format("%g", c.weight_decay) + (c.decay_norm_and_bias ? "" : " (weights only)")
              : "") +
         ", " + schedule + ", label smoothing " + format("%g", c.label_smoothing) + ", " +
         (c.augment ? transform.repr() : "no augmentation") + ", seed " + std::to_string(c.seed);
}

// The largest divisor of n that is at most `limit` (1 at least): a working value for a message.
inline std::int64_t divisor_at_most(std::int64_t n, std::int64_t limit) {
  for (std::int64_t d = std::min(n, limit); d > 1; --d)
    if (n % d == 0) return d;
  return 1;
}

// The micro-batch size a run trains with: 0 for whole batches (the plain loop), else
// config.micro_batch, or with --distributed and micro_batch 0, batch_size / processes. Throws
// ConfigurationError, naming values that work, when the processes cannot share the batch
// (distributed::DistributedSampler's contract: micro-batches of equal size, as many on each process).
inline std::int64_t resolve_micro_batch(const TrainConfig& config, int processes, bool distributed,
                                        minicnn::Device device) {
  const std::int64_t batch = config.batch_size;
  const std::string batch_text = std::to_string(batch), processes_text = std::to_string(processes);
  std::int64_t micro_batch = config.micro_batch;
  if (micro_batch == 0 && distributed) {
    if (batch % processes != 0)
      throw ConfigurationError("--distributed with " + processes_text + " processes: the batch size " + batch_text +
                               " is not a multiple of " + processes_text +
                               ", so the processes cannot share it; expected a --batch-size that is a multiple of " +
                               processes_text + " (e.g. " +
                               std::to_string((batch + processes - 1) / processes * processes) + ")");
    micro_batch = batch / processes;
  }
  if (micro_batch == 0) return 0;
  const std::string micro_text = std::to_string(micro_batch);
  if (batch % micro_batch != 0)
    throw ConfigurationError("--micro-batch " + micro_text + ": the batch size " + batch_text +
                             " is not a multiple of it; expected a divisor of " + batch_text + " (e.g. " +
                             std::to_string(divisor_at_most(batch, micro_batch)) + ")");
  const std::int64_t micro_batches = batch / micro_batch;
  if (micro_batches % processes != 0) {
    const std::int64_t unit = micro_batch * processes;
    throw ConfigurationError(
        "--batch-size " + batch_text + " is " + std::to_string(micro_batches) + " micro-batches of " + micro_text +
        ", which " + processes_text + " processes cannot share equally; expected a batch size that is a multiple of "
        "micro-batch x processes = " + std::to_string(unit) + " (e.g. " +
        std::to_string((batch + unit - 1) / unit * unit) + ")" +
        (batch % processes == 0 ? ", or a --micro-batch that divides " + std::to_string(batch / processes) + " (e.g. " +
                                      std::to_string(divisor_at_most(batch / processes, micro_batch)) + ")"
                                : ""));
  }
  if (device != minicnn::Device::cpu)
    throw ConfigurationError(std::string(distributed ? "--distributed" : "--micro-batch") +
                             " computes on the CPU only; use --device cpu");
  return micro_batch;
}

class Trainer {
 public:
  Trainer(TrainOptions options, std::string command_line, Processes& processes)
      : options_(std::move(options)), command_line_(std::move(command_line)), processes_(processes) {}

  int run() {
    install_interrupt_handler();
    device_ = parse_device(options_.device);
    if (options_.threads > 0) minicnn::set_num_threads(options_.threads);
    // With --distributed every process reads the checkpoint itself: on several hosts the output
    // folder must be shared (or copied), as the data set is.
    const std::unique_ptr<Checkpoint> checkpoint =
        options_.resume.empty() ? nullptr : std::make_unique<Checkpoint>(options_.resume);
    config_ = checkpoint ? checkpoint->config() : options_.config;
    if (options_.print_config) return std::fputs(config_text(config_).c_str(), stdout), 0;
    const bool default_micro_batch = config_.micro_batch == 0;
    // Stored resolved, so that a resumed run keeps the arithmetic whatever its process count.
    config_.micro_batch = resolve_micro_batch(config_, processes_.count(), processes_.distributed(), device_);
    prepare_output_folder();
    load_data();

    Model model = make_model(config_.model, config_.seed);
    model_ = &model;
    optimizer_ = make_optimizer(config_, model);
    criterion_ = minicnn::CrossEntropyLoss<float>(config_.label_smoothing);
    loader_ = std::make_unique<minicnn::data::DataLoader>(make_train_loader(config_, train_));
    schedule_ = make_schedule(config_, loader_->num_batches());
    const std::string micro_batch_note =
        default_micro_batch && config_.micro_batch > 0
            ? " (batch size / " + std::to_string(processes_.count()) + ", the --distributed default)"
            : "";
    std::printf("%s\n", describe(config_, schedule_.description, micro_batch_note).c_str());
    std::printf("model: %s, %lld parameters\n", model.name().c_str(),
                static_cast<long long>(model.module().num_parameters()));
    if (checkpoint) resume_from(*checkpoint);
    processes_.broadcast_state(model.module());  // every process starts from rank 0's weights and buffers
    model.module().to(device_);  // after restoring: checkpoints are read into host memory
    if (config_.micro_batch > 0) prepare_micro_batches();
    std::printf("output: %s\n", options_.out.c_str());
    std::fflush(stdout);

    while (progress_.epoch < config_.epochs) {
      const EpochEnd end = train_epoch();
      if (end == EpochEnd::interrupted) return stop_interrupted();
      if (end == EpochEnd::diverged) return stop_diverged();
      if (!end_of_epoch()) return stop_diverged();
    }
    return summary();
  }

 private:
  enum class EpochEnd { completed, interrupted, diverged };

  void prepare_micro_batches() {
    minicnn::distributed::DistributedSamplerOptions options;
    options.global_batch = config_.batch_size;
    options.micro_batch = config_.micro_batch;
    sampler_ = std::make_unique<minicnn::distributed::DistributedSampler>(train_.size(), options, processes_.rank(),
                                                                          processes_.count());
    combiner_ = processes_.combiner(model_->module().parameters(), sampler_->micro_batches_per_rank());
    streams_ = std::make_unique<minicnn::distributed::RandomStreams<float>>(
        model_->module(), minicnn::Shape{1, train_.height(), train_.width()});
    if (processes_.distributed())
      std::printf("processes: %s; each runs %lld micro-batch%s of %lld images per step\n",
                  processes_.description().c_str(), static_cast<long long>(sampler_->micro_batches_per_rank()),
                  sampler_->micro_batches_per_rank() == 1 ? "" : "es", static_cast<long long>(config_.micro_batch));
  }

  // The rest of the epoch in progress, from progress_.next_batch. Leaves the running sums in
  // progress_; on divergence, says why in divergence_.
  EpochEnd train_epoch() {
    loader_->set_epoch(static_cast<std::uint64_t>(progress_.epoch));
    model_->module().train();
    const std::int64_t batches = loader_->num_batches();
    // Under mpirun every process's stdout is a pseudo-terminal, wherever mpirun's own output goes:
    // plain lines then.
    Progress bar(stdout_is_terminal() && !processes_.distributed(), progress_.epoch + 1, config_.epochs, batches,
                 progress_.next_batch);
    const Clock::time_point start = Clock::now();
    const double seconds_before = progress_.seconds, communication_before = processes_.communication_seconds();
    std::int64_t images_this_run = 0, steps_this_run = 0;  // images: by every process
    EpochEnd end = EpochEnd::completed;
    for (; progress_.next_batch < batches; ++progress_.next_batch) {
      // Agreed by every process, so that all of them stop at the same step.
      const bool stop =
          interrupted() || (options_.interrupt_after > 0 && batches_this_process_ == options_.interrupt_after);
      if (processes_.any(stop)) {
        end = EpochEnd::interrupted;
        break;
      }
      optimizer_->set_lr(schedule_.lr_at(optimizer_->step_count()));
      const std::int64_t seen_before = progress_.seen;
      if (!(sampler_ ? train_micro_batches() : train_batch())) {
        end = EpochEnd::diverged;
        break;
      }
      images_this_run += progress_.seen - seen_before;
      ++steps_this_run;
      ++batches_this_process_;
      communication_ms_per_step_ =
          processes_.distributed()
              ? 1e3 * (processes_.communication_seconds() - communication_before) / static_cast<double>(steps_this_run)
              : -1.0;
      bar.update(progress_.next_batch + 1, images_this_run, progress_.loss_sum / static_cast<double>(progress_.seen),
                 communication_ms_per_step_);
    }
    bar.finish();
    const double seconds = seconds_since(start);
    images_per_second_ = seconds > 0 ? static_cast<double>(images_this_run) / seconds : 0.0;
    progress_.seconds = seconds_before + seconds;
    return end;
  }

  // Step progress_.next_batch as one batch: the plain loop. Adds its loss, right predictions and
  // images to progress_; returns false (divergence_ set, nothing added) on a non-finite loss.
  bool train_batch() {
    loader_->load_batch(progress_.next_batch, images_, labels_);
    const minicnn::Tensor<float>& logits = model_->forward(on_device(images_, staged_images_, device_));
    const float loss = criterion_.forward(logits, labels_);
    if (!std::isfinite(loss)) {
      divergence_ = training_loss_message(loss);
      return false;
    }
    progress_.correct += count_correct(logits);
    optimizer_->zero_grad();
    model_->backward(criterion_.backward());
    optimizer_->step();
    const auto count = static_cast<std::int64_t>(labels_.size());
    progress_.loss_sum += static_cast<double>(loss) * static_cast<double>(count);
    progress_.seen += count;
    return true;
  }

  // Step progress_.next_batch as micro-batches: this process's share of them, the gradients
  // combined over every process, one optimiser step. The loss sums follow the global
  // micro-batch order, so they too are the same on any process count. Returns as train_batch().
  bool train_micro_batches() {
    const std::int64_t step = progress_.next_batch;
    const std::int64_t step_images = sampler_->step_images(step), step_first = step * config_.batch_size;
    const std::int64_t local = sampler_->micro_batches_per_rank();
    processes_.broadcast_buffers(model_->module());
    streams_->begin_step();
    // Per micro-batch of this process: loss, right predictions, images (zeros if not run).
    std::vector<double> results(static_cast<std::size_t>(3 * local), 0.0);
    for (std::int64_t j = 0; j < local; ++j) {
      const minicnn::distributed::MicroBatch micro_batch = sampler_->micro_batch(step, j);
      optimizer_->zero_grad();
      if (micro_batch.count > 0) {
        loader_->load_positions(micro_batch.first, micro_batch.count, images_, labels_);
        streams_->position(micro_batch.first - step_first);
        const minicnn::Tensor<float>& logits = model_->forward(images_);
        const float loss = criterion_.forward(logits, labels_);
        double* result = results.data() + 3 * j;
        result[0] = static_cast<double>(loss);
        result[1] = static_cast<double>(count_correct(logits));
        result[2] = static_cast<double>(micro_batch.count);
        if (!std::isfinite(loss)) break;  // every process learns it below; nothing is averaged
        model_->backward(criterion_.backward());
      }
      combiner_->keep(j, micro_batch.count, step_images);
    }
    const std::vector<double> all = processes_.gather(results);  // in global micro-batch order
    for (std::size_t m = 0; m < all.size(); m += 3)
      if (!std::isfinite(all[m])) {
        divergence_ = training_loss_message(all[m]);
        return false;
      }
    combiner_->average();
    optimizer_->step();
    streams_->end_step(step_images);
    for (std::size_t m = 0; m < all.size(); m += 3) {
      progress_.loss_sum += all[m] * all[m + 2];
      progress_.correct += static_cast<std::int64_t>(all[m + 1]);
      progress_.seen += static_cast<std::int64_t>(all[m + 2]);
    }
    return true;
  }

  std::string training_loss_message(double loss) const {
    return "the training loss is " + format("%g", loss) + " at epoch " + std::to_string(progress_.epoch + 1) +
           ", batch " + std::to_string(progress_.next_batch + 1);
  }

  // Right predictions among `logits`' rows against labels_.
  std::int64_t count_correct(const minicnn::Tensor<float>& logits) {
    host_logits_.copy_from(logits);
    const std::int64_t classes = host_logits_.dim(1);
    std::int64_t correct = 0;
    for (std::size_t row = 0; row < labels_.size(); ++row)
      correct +=
          minicnn::argmax(host_logits_.data() + static_cast<std::int64_t>(row) * classes, classes) == labels_[row];
    return correct;
  }

  // After the epoch's last batch: checks the weights, evaluates, records the epoch and writes
  // every output (rank 0 alone evaluates and writes; every process keeps the same progress).
  // Returns false (with divergence_ set on rank 0) when the run diverged.
  bool end_of_epoch() {
    if (!parameters_finite()) {  // the same weights, so the same answer, on every process
      divergence_ = "a weight is no longer finite after epoch " + std::to_string(progress_.epoch + 1);
      return false;
    }
    EpochRecord record;
    record.epoch = progress_.epoch + 1;
    record.seconds = progress_.seconds;
    record.train_loss = progress_.loss_sum / static_cast<double>(std::max<std::int64_t>(progress_.seen, 1));
    record.train_accuracy =
        static_cast<double>(progress_.correct) / static_cast<double>(std::max<std::int64_t>(progress_.seen, 1));
    record.lr = optimizer_->lr();  // the learning rate of the epoch's last step
    bool test_loss_finite = true;
    if (processes_.is_root()) {
      const Clock::time_point eval_start = Clock::now();
      Evaluation evaluation = evaluate_test_set();
      record.eval_seconds = seconds_since(eval_start);
      record.test_loss = evaluation.loss;
      record.test_accuracy = evaluation.accuracy();
      test_loss_finite = std::isfinite(record.test_loss);
      if (!test_loss_finite)
        divergence_ =
            "the test loss is " + format("%g", record.test_loss) + " after epoch " + std::to_string(record.epoch);
      else
        last_evaluation_ = std::make_unique<Evaluation>(std::move(evaluation));
    }
    if (!processes_.from_root(test_loss_finite)) return false;

    progress_.history.push_back(record);
    progress_.epoch += 1;
    progress_.next_batch = progress_.correct = progress_.seen = 0;
    progress_.loss_sum = progress_.seconds = 0;
    if (!processes_.is_root()) return true;
    save_checkpoint(path("checkpoint.safetensors"), config_, {*model_, *optimizer_}, progress_, command_line_);
    save_weights(*model_, path("model.safetensors"), model_metadata(record));
    write_metrics(progress_.epoch == config_.epochs ? "completed" : "running");
    write_figures();
    const std::string speed =
        processes_.distributed() ? "  |  " + format("%.0f", images_per_second_) + " img/s on " +
                                       std::to_string(processes_.count()) +
                                       (processes_.count() == 1 ? " process" : " processes") + ", communication " +
                                       format("%.1f", communication_ms_per_step_) + " ms/step"
                                 : "";
    std::printf(
        "epoch %2lld/%lld  train loss %.4f  acc %.2f%%  |  test loss %.4f  acc %.2f%%  |  lr %.3g  |  %.1f s (+%.1f s "
        "eval)%s\n",
        static_cast<long long>(record.epoch), static_cast<long long>(config_.epochs), record.train_loss,
        100 * record.train_accuracy, record.test_loss, 100 * record.test_accuracy, record.lr, record.seconds,
        record.eval_seconds, speed.c_str());
    std::fflush(stdout);
    return true;
  }

  Evaluation evaluate_test_set() {
    Evaluation evaluation;
    evaluate(*model_, test_, config_.test_batch_size, criterion_, 32, evaluation, device_, [] { return false; });
    return evaluation;
  }

  int summary() {
    if (!processes_.is_root()) return 0;
    // Resumed from a finished run: evaluate once so the summary has something to show.
    if (!last_evaluation_) last_evaluation_ = std::make_unique<Evaluation>(evaluate_test_set());
    std::printf("\nfinal test accuracy %.2f%% (%lld/%lld)\n", 100 * last_evaluation_->accuracy(),
                static_cast<long long>(last_evaluation_->matrix.correct()),
                static_cast<long long>(last_evaluation_->matrix.total()));
    print_per_class_table(last_evaluation_->matrix, class_names());
    std::printf(
        "wrote %s/{model.safetensors, checkpoint.safetensors, metrics.json, confusion_matrix.png, "
        "training_curves.png, misclassified.png}\n",
        options_.out.c_str());
    return 0;
  }

  int stop_interrupted() {
    if (!processes_.is_root()) return exit_interrupted;
    save_checkpoint(path("checkpoint.safetensors"), config_, {*model_, *optimizer_}, progress_, command_line_);
    write_metrics("interrupted");
    const std::string program =
        processes_.distributed()
            ? "mpirun -np " + std::to_string(processes_.count()) + " fashion_mnist train --distributed"
            : std::string("fashion_mnist train");
    std::printf("interrupted: checkpoint saved at epoch %lld, batch %lld/%lld; continue with\n  %s --resume %s\n",
                static_cast<long long>(progress_.epoch + 1), static_cast<long long>(progress_.next_batch),
                static_cast<long long>(loader_->num_batches()), program.c_str(),
                path("checkpoint.safetensors").c_str());
    return exit_interrupted;
  }

  int stop_diverged() {
    if (!processes_.is_root()) return exit_diverged;
    const bool have_checkpoint = progress_.epoch > 0 || !options_.resume.empty();
    const std::string advice =
        have_checkpoint ? "the last good checkpoint stays in " + path("checkpoint.safetensors") + "; try a smaller --lr"
                        : "no epoch had completed, so there is no checkpoint; try a smaller --lr";
    std::fprintf(stderr, "error: training diverged: %s (lr %g). Stopped; %s\n", divergence_.c_str(), config_.lr,
                 advice.c_str());
    write_metrics("diverged");
    return exit_diverged;
  }

  // The output folder's path on every process; rank 0 alone creates it (and writes into it).
  void prepare_output_folder() {
    if (options_.out.empty() && !options_.resume.empty()) {
      const std::filesystem::path folder = std::filesystem::path(options_.resume).parent_path();
      options_.out = folder.empty() ? "." : folder.string();
    }
    if (options_.out.empty()) options_.out = "runs/fashion_mnist";
    if (!processes_.is_root()) return;
    std::error_code created;
    std::filesystem::create_directories(options_.out, created);
    if (created || !std::filesystem::is_directory(options_.out))
      throw minicnn::error("--out '" + options_.out + "': cannot create the folder" +
                           (created ? " (" + created.message() + ")" : std::string()));
  }

  void load_data() {
    std::printf("%s\n", minicnn::build_info().c_str());
    const auto directory = minicnn::data::fashion_mnist_directory(options_.data);
    train_ = first_images(minicnn::data::load_fashion_mnist(minicnn::data::Split::train, options_.data),
                          config_.limit_train, "--limit-train");
    test_ = first_images(minicnn::data::load_fashion_mnist(minicnn::data::Split::test, options_.data),
                         config_.limit_test, "--limit-test");
    std::printf("data: %lld training images%s, %lld test images, from %s\n", static_cast<long long>(train_.size()),
                config_.limit_train > 0 ? " (--limit-train)" : "", static_cast<long long>(test_.size()),
                directory.path.c_str());
  }

  void resume_from(const Checkpoint& checkpoint) {
    checkpoint.restore({*model_, *optimizer_});
    progress_ = checkpoint.progress();
    const std::int64_t batches = loader_->num_batches();
    if (progress_.next_batch > batches)
      throw minicnn::error(options_.resume + ": position " + std::to_string(progress_.next_batch) + " is past the " +
                           std::to_string(batches) + " batches of an epoch");
    if (!checkpoint.command().empty()) command_line_ = checkpoint.command();
    std::printf("resumed from %s: epoch %lld, batch %lld of %lld\n", options_.resume.c_str(),
                static_cast<long long>(progress_.epoch + (progress_.epoch < config_.epochs ? 1 : 0)),
                static_cast<long long>(progress_.next_batch), static_cast<long long>(batches));
  }

  std::string path(const std::string& name) const { return (std::filesystem::path(options_.out) / name).string(); }

  bool parameters_finite() {
    std::deque<minicnn::Tensor<float>> host_copies;
    for (const auto& named : model_->module().named_parameters())
      for (const float v : on_host(named.parameter->value, host_copies))
        if (!std::isfinite(v)) return false;
    return true;
  }

  minicnn::io::Metadata model_metadata(const EpochRecord& record) const {
    return {{"format", "pt"},
            {model_metadata_key, model_->name()},
            {"producer", "minicnn fashion_mnist " MINICNN_VERSION_STRING},
            {"epoch", std::to_string(record.epoch)},
            {"test_accuracy", json_text(record.test_accuracy)}};
  }

  // metrics.json: the configuration, the per-epoch history and the latest evaluation.
  void write_metrics(const std::string& status) {
    Json root = {{"status", status},
                 {"command", command_line_},
                 {"processes", processes_.count()},
                 {"seed", std::to_string(config_.seed)},
                 {"build", minicnn::build_info()},
                 {"config", config_},
                 {"data", {{"train_images", train_.size()}, {"test_images", test_.size()}}},
                 {"epochs_completed", progress_.history.size()},
                 {"history", progress_.history}};
    if (!progress_.history.empty()) {
      const auto best = std::max_element(
          progress_.history.begin(), progress_.history.end(),
          [](const EpochRecord& a, const EpochRecord& b) { return a.test_accuracy < b.test_accuracy; });
      root["final_test_accuracy"] = progress_.history.back().test_accuracy;
      root["best_test_accuracy"] = best->test_accuracy;
      root["best_epoch"] = best->epoch;
    }
    if (last_evaluation_) root["evaluation"] = evaluation_json(*last_evaluation_, class_names());
    minicnn::io::write_file_atomically(path("metrics.json"), json_text(root, 2) + "\n");
  }

  void write_figures() {
    const std::vector<std::string> names = class_names();
    write_confusion_png(path("confusion_matrix.png"), *last_evaluation_, names);
    write_mistakes_png(path("misclassified.png"), *last_evaluation_, test_, names);
    using minicnn::viz::colors::blue, minicnn::viz::colors::orange;
    minicnn::viz::Chart loss{"Loss", "cross-entropy", {{"train", {}, blue}, {"test", {}, orange}}};
    minicnn::viz::Chart accuracy{"Accuracy", "accuracy (%)", {{"train", {}, blue}, {"test", {}, orange}}};
    for (const EpochRecord& record : progress_.history) {
      loss.series[0].values.push_back(record.train_loss);
      loss.series[1].values.push_back(record.test_loss);
      accuracy.series[0].values.push_back(100 * record.train_accuracy);
      accuracy.series[1].values.push_back(100 * record.test_accuracy);
    }
    minicnn::viz::write_png(path("training_curves.png"), minicnn::viz::plot_curves({loss, accuracy}, "epoch"));
  }

  TrainOptions options_;
  std::string command_line_;
  Processes& processes_;
  TrainConfig config_;
  minicnn::Device device_ = minicnn::Device::cpu;
  minicnn::data::ImageDataset train_, test_;
  // Built by run() from the configuration; the model lives on run()'s stack (modules do not move).
  Model* model_ = nullptr;
  std::unique_ptr<minicnn::Adam<float>> optimizer_;
  minicnn::CrossEntropyLoss<float> criterion_;
  std::unique_ptr<minicnn::data::DataLoader> loader_;
  LearningRateSchedule schedule_;
  TrainingProgress progress_;
  std::int64_t batches_this_process_ = 0;
  // With micro-batches: which ones this process runs, how their gradients combine, the dropout masks.
  std::unique_ptr<minicnn::distributed::DistributedSampler> sampler_;
  std::unique_ptr<GradientCombiner> combiner_;
  std::unique_ptr<minicnn::distributed::RandomStreams<float>> streams_;
  double images_per_second_ = 0.0, communication_ms_per_step_ = -1.0;  // of the latest epoch, this run
  std::string divergence_;
  std::unique_ptr<Evaluation> last_evaluation_;
  minicnn::Tensor<float> images_, staged_images_, host_logits_;  // reused from batch to batch
  std::vector<int> labels_;
};

}  // namespace fashion_mnist
