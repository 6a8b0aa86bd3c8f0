#pragma once
// `fashion_mnist train`: the tutorial's training loop with checkpoints, resume, Ctrl-C,
// divergence detection and the output folder (model, checkpoint, metrics.json, figures).
//
// The loop, in Trainer::run:
//   while epochs remain:  train_epoch()   batches of the epoch: lr_at(step), forward, loss, backward, step
//                         end_of_epoch()  evaluate on the test set, record, save everything, print a line
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
#include "minicnn/io/atomic_file.hpp"
#include "minicnn/io/safetensors.hpp"
#include "minicnn/loss.hpp"
#include "minicnn/optim/adam.hpp"
#include "minicnn/optim/param_groups.hpp"
#include "minicnn/optim/schedules.hpp"
#include "minicnn/viz/plot.hpp"
#include "model.hpp"
#include "options.hpp"
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

// One line describing the recipe.
inline std::string describe(const TrainConfig& c, const std::string& schedule) {
  const minicnn::data::Compose transform = make_train_transform(c);
  return "recipe " + c.recipe + ": " + c.model + ", " + std::to_string(c.epochs) + " epochs, batch " +
         std::to_string(c.batch_size) + ", " + (c.optimizer == "adamw" ? "AdamW" : "Adam") + " lr " +
         format("%g", c.lr) +
         (c.weight_decay > 0
              ? ", weight decay " + format("%g", c.weight_decay) + (c.decay_norm_and_bias ? "" : " (weights only)")
              : "") +
         ", " + schedule + ", label smoothing " + format("%g", c.label_smoothing) + ", " +
         (c.augment ? transform.repr() : "no augmentation") + ", seed " + std::to_string(c.seed);
}

class Trainer {
 public:
  Trainer(TrainOptions options, std::string command_line)
      : options_(std::move(options)), command_line_(std::move(command_line)) {}

  int run() {
    install_interrupt_handler();
    device_ = parse_device(options_.device);
    if (options_.threads > 0) minicnn::set_num_threads(options_.threads);
    const std::unique_ptr<Checkpoint> checkpoint =
        options_.resume.empty() ? nullptr : std::make_unique<Checkpoint>(options_.resume);
    config_ = checkpoint ? checkpoint->config() : options_.config;
    if (options_.print_config) return std::fputs(config_text(config_).c_str(), stdout), 0;
    prepare_output_folder();
    load_data();

    Model model = make_model(config_.model, config_.seed);
    model_ = &model;
    optimizer_ = make_optimizer(config_, model);
    criterion_ = minicnn::CrossEntropyLoss<float>(config_.label_smoothing);
    loader_ = std::make_unique<minicnn::data::DataLoader>(make_train_loader(config_, train_));
    schedule_ = make_schedule(config_, loader_->num_batches());
    std::printf("%s\n", describe(config_, schedule_.description).c_str());
    std::printf("model: %s, %lld parameters\n", model.name().c_str(),
                static_cast<long long>(model.module().num_parameters()));
    if (checkpoint) resume_from(*checkpoint);
    model.module().to(device_);  // after restoring: checkpoints are read into host memory
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

  // The rest of the epoch in progress, from progress_.next_batch. Leaves the running sums in
  // progress_; on divergence, says why in divergence_.
  EpochEnd train_epoch() {
    loader_->set_epoch(static_cast<std::uint64_t>(progress_.epoch));
    model_->module().train();
    const std::int64_t batches = loader_->num_batches();
    Progress bar(stdout_is_terminal(), progress_.epoch + 1, config_.epochs, batches, progress_.next_batch);
    const Clock::time_point start = Clock::now();
    const double seconds_before = progress_.seconds;
    std::int64_t images_this_process = 0;
    EpochEnd end = EpochEnd::completed;
    for (; progress_.next_batch < batches; ++progress_.next_batch) {
      if (interrupted() || (options_.interrupt_after > 0 && batches_this_process_ == options_.interrupt_after)) {
        end = EpochEnd::interrupted;
        break;
      }
      loader_->load_batch(progress_.next_batch, images_, labels_);
      optimizer_->set_lr(schedule_.lr_at(optimizer_->step_count()));
      const minicnn::Tensor<float>& logits = model_->forward(on_device(images_, staged_images_, device_));
      const float loss = criterion_.forward(logits, labels_);
      if (!std::isfinite(loss)) {
        divergence_ = "the training loss is " + format("%g", loss) + " at epoch " +
                      std::to_string(progress_.epoch + 1) + ", batch " + std::to_string(progress_.next_batch + 1);
        end = EpochEnd::diverged;
        break;
      }
      host_logits_.copy_from(logits);
      const std::int64_t classes = host_logits_.dim(1);
      for (std::size_t row = 0; row < labels_.size(); ++row)
        progress_.correct +=
            minicnn::argmax(host_logits_.data() + static_cast<std::int64_t>(row) * classes, classes) == labels_[row];
      optimizer_->zero_grad();
      model_->backward(criterion_.backward());
      optimizer_->step();
      const auto count = static_cast<std::int64_t>(labels_.size());
      progress_.loss_sum += static_cast<double>(loss) * static_cast<double>(count);
      progress_.seen += count;
      images_this_process += count;
      ++batches_this_process_;
      bar.update(progress_.next_batch + 1, images_this_process,
                 progress_.loss_sum / static_cast<double>(progress_.seen));
    }
    bar.finish();
    progress_.seconds = seconds_before + seconds_since(start);
    return end;
  }

  // After the epoch's last batch: checks the weights, evaluates, records the epoch and writes
  // every output. Returns false (with divergence_ set) when the run diverged.
  bool end_of_epoch() {
    if (!parameters_finite()) {
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
    const Clock::time_point eval_start = Clock::now();
    Evaluation evaluation = evaluate_test_set();
    record.eval_seconds = seconds_since(eval_start);
    record.test_loss = evaluation.loss;
    record.test_accuracy = evaluation.accuracy();
    if (!std::isfinite(record.test_loss)) {
      divergence_ =
          "the test loss is " + format("%g", record.test_loss) + " after epoch " + std::to_string(record.epoch);
      return false;
    }
    last_evaluation_ = std::make_unique<Evaluation>(std::move(evaluation));

    progress_.history.push_back(record);
    progress_.epoch += 1;
    progress_.next_batch = progress_.correct = progress_.seen = 0;
    progress_.loss_sum = progress_.seconds = 0;
    save_checkpoint(path("checkpoint.safetensors"), config_, {*model_, *optimizer_}, progress_, command_line_);
    save_weights(*model_, path("model.safetensors"), model_metadata(record));
    write_metrics(progress_.epoch == config_.epochs ? "completed" : "running");
    write_figures();
    std::printf(
        "epoch %2lld/%lld  train loss %.4f  acc %.2f%%  |  test loss %.4f  acc %.2f%%  |  lr %.3g  |  %.1f s (+%.1f s "
        "eval)\n",
        static_cast<long long>(record.epoch), static_cast<long long>(config_.epochs), record.train_loss,
        100 * record.train_accuracy, record.test_loss, 100 * record.test_accuracy, record.lr, record.seconds,
        record.eval_seconds);
    std::fflush(stdout);
    return true;
  }

  Evaluation evaluate_test_set() {
    Evaluation evaluation;
    evaluate(*model_, test_, config_.test_batch_size, criterion_, 32, evaluation, device_, [] { return false; });
    return evaluation;
  }

  int summary() {
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
    save_checkpoint(path("checkpoint.safetensors"), config_, {*model_, *optimizer_}, progress_, command_line_);
    write_metrics("interrupted");
    std::printf("interrupted: checkpoint saved at epoch %lld, batch %lld/%lld; continue with\n  %s train --resume %s\n",
                static_cast<long long>(progress_.epoch + 1), static_cast<long long>(progress_.next_batch),
                static_cast<long long>(loader_->num_batches()), "fashion_mnist",
                path("checkpoint.safetensors").c_str());
    return exit_interrupted;
  }

  int stop_diverged() {
    const bool have_checkpoint = progress_.epoch > 0 || !options_.resume.empty();
    const std::string advice =
        have_checkpoint ? "the last good checkpoint stays in " + path("checkpoint.safetensors") + "; try a smaller --lr"
                        : "no epoch had completed, so there is no checkpoint; try a smaller --lr";
    std::fprintf(stderr, "error: training diverged: %s (lr %g). Stopped; %s\n", divergence_.c_str(), config_.lr,
                 advice.c_str());
    write_metrics("diverged");
    return exit_diverged;
  }

  void prepare_output_folder() {
    if (options_.out.empty() && !options_.resume.empty()) {
      const std::filesystem::path folder = std::filesystem::path(options_.resume).parent_path();
      options_.out = folder.empty() ? "." : folder.string();
    }
    if (options_.out.empty()) options_.out = "runs/fashion_mnist";
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
  std::string divergence_;
  std::unique_ptr<Evaluation> last_evaluation_;
  minicnn::Tensor<float> images_, staged_images_, host_logits_;  // reused from batch to batch
  std::vector<int> labels_;
};

}  // namespace fashion_mnist
