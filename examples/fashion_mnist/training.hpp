#pragma once
// `fashion_mnist train`: the tutorial's training loop with checkpoints, resume, Ctrl-C,
// divergence detection and the output folder (model, checkpoint, metrics.json, figures).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "device.hpp"
#include "evaluation.hpp"
#include "json.hpp"
#include "minicnn/config.hpp"
#include "minicnn/data/fashion_mnist.hpp"
#include "minicnn/data/loader.hpp"
#include "minicnn/data/transforms.hpp"
#include "minicnn/io/atomic_file.hpp"
#include "minicnn/viz/plot.hpp"
#include "minicnn/io/safetensors.hpp"
#include "minicnn/loss.hpp"
#include "minicnn/optim/adam.hpp"
#include "minicnn/optim/cosine_annealing.hpp"
#include "minicnn/optim/schedules.hpp"
#include "options.hpp"
#include "terminal.hpp"

namespace fashion_mnist {

// Exit codes of `train` besides 0 and 2 (bad input): documented in docs/demo.md.
inline constexpr int exit_diverged = 1;
inline constexpr int exit_interrupted = 130;  // the shell's code for "ended by SIGINT"

// One line describing the recipe.
inline std::string describe(const TrainConfig& c) {
  char buffer[512];
  std::string schedule;
  if (c.schedule == "cosine") schedule = "CosineAnnealingLR(T_max=" + std::to_string(c.epochs) + ") per epoch";
  else if (c.schedule == "onecycle") schedule = "one-cycle per step, " + format("%g", 100 * c.warmup) + "% warm-up";
  else if (c.schedule == "warmup-cosine") schedule = "linear warm-up " + format("%g", 100 * c.warmup) + "% then cosine, per step";
  else schedule = "constant lr";
  std::snprintf(buffer, sizeof buffer,
                "recipe %s: %lld epochs, batch %lld, %s lr %g%s, %s, label smoothing %g, %s, seed %llu", c.recipe.c_str(),
                static_cast<long long>(c.epochs), static_cast<long long>(c.batch_size),
                c.optimizer == "adamw" ? "AdamW" : "Adam", c.lr,
                c.weight_decay > 0 ? (", weight decay " + format("%g", c.weight_decay)).c_str() : "", schedule.c_str(),
                c.label_smoothing, c.augment ? "RandomRotation(10) + RandomHorizontalFlip" : "no augmentation",
                static_cast<unsigned long long>(c.seed));
  return buffer;
}

class Trainer {
 public:
  Trainer(TrainOptions options, std::string command_line)
      : options_(std::move(options)), command_line_(std::move(command_line)) {}

  int run() {
    install_interrupt_handler();
    device_ = parse_device(options_.device);
    if (options_.threads > 0) minicnn::set_num_threads(options_.threads);

    std::unique_ptr<Checkpoint> checkpoint;
    if (!options_.resume.empty()) {
      for (const std::string& flag : options_.explicit_config)
        throw UsageError(flag + " cannot be combined with --resume: a resumed run keeps its checkpoint's configuration",
                         "train");
      checkpoint = std::make_unique<Checkpoint>(options_.resume);
      config_ = checkpoint->config();
      if (options_.out.empty()) {
        const std::filesystem::path folder = std::filesystem::path(options_.resume).parent_path();
        options_.out = folder.empty() ? "." : folder.string();
      }
    } else {
      config_ = options_.config;
    }
    if (options_.out.empty()) options_.out = "runs/fashion_mnist";
    std::error_code created;
    std::filesystem::create_directories(options_.out, created);
    if (created || !std::filesystem::is_directory(options_.out))
      throw minicnn::error("--out '" + options_.out + "': cannot create the folder" +
                           (created ? " (" + created.message() + ")" : std::string()));

    std::printf("%s\n", minicnn::build_info().c_str());
    const auto directory = minicnn::data::fashion_mnist_directory(options_.data);
    train_ = first_images(minicnn::data::load_fashion_mnist(minicnn::data::Split::train, options_.data),
                          config_.limit_train, "--limit-train");
    test_ = first_images(minicnn::data::load_fashion_mnist(minicnn::data::Split::test, options_.data),
                         config_.limit_test, "--limit-test");
    std::printf("data: %lld training images%s, %lld test images, from %s\n", static_cast<long long>(train_.size()),
                config_.limit_train > 0 ? " (--limit-train)" : "", static_cast<long long>(test_.size()),
                directory.path.c_str());
    std::printf("%s\n", describe(config_).c_str());

    Model model(config_.seed);
    std::unique_ptr<minicnn::Adam<float>> optimizer;
    if (config_.optimizer == "adamw")
      optimizer = std::make_unique<minicnn::AdamW<float>>(model.parameters(), config_.lr, 0.9, 0.999, 1e-8, config_.weight_decay);
    else
      optimizer = std::make_unique<minicnn::Adam<float>>(model.parameters(), config_.lr, 0.9, 0.999, 1e-8, config_.weight_decay);
    minicnn::CrossEntropyLoss<float> criterion(config_.label_smoothing);
    std::printf("model: FashionCNN, %lld parameters\n", static_cast<long long>(model.num_parameters()));

    minicnn::data::Compose transform;
    if (config_.augment) {
      transform.add(minicnn::data::RandomRotation(10.0));
      transform.add(minicnn::data::RandomHorizontalFlip(0.5));
    }
    transform.add(minicnn::data::Normalize(normalize_mean, normalize_std));
    minicnn::data::DataLoaderOptions loader_options;
    loader_options.batch_size = config_.batch_size;
    loader_options.shuffle = true;
    loader_options.seed = config_.seed;
    minicnn::data::DataLoader loader(train_, loader_options, std::move(transform));
    const std::int64_t batches = loader.num_batches();
    const std::int64_t total_steps = batches * config_.epochs;

    // The tutorial's scheduler steps once per epoch; the others are pure functions of the step.
    minicnn::CosineAnnealingLR cosine(*optimizer, config_.epochs);
    std::int64_t cosine_epoch = 0;
    minicnn::OneCycleSchedule one_cycle;
    minicnn::WarmupCosineSchedule warmup_cosine;
    if (config_.schedule == "onecycle") {
      one_cycle.max_lr = config_.lr;
      one_cycle.total_steps = total_steps;
      one_cycle.pct_start = config_.warmup;
      one_cycle.validate();
    } else if (config_.schedule == "warmup-cosine") {
      warmup_cosine.peak_lr = config_.lr;
      warmup_cosine.total_steps = total_steps;
      warmup_cosine.warmup_steps = static_cast<std::int64_t>(std::llround(config_.warmup * static_cast<double>(total_steps)));
      warmup_cosine.validate();
    }
    auto step_lr = [&](std::int64_t step) -> std::optional<double> {
      if (config_.schedule == "onecycle") return one_cycle.lr(step);
      if (config_.schedule == "warmup-cosine") return warmup_cosine.lr(step);
      return std::nullopt;
    };

    TrainingObjects objects{model, *optimizer, cosine_epoch};
    TrainingProgress progress;
    if (checkpoint) {
      checkpoint->restore(objects);
      cosine.set_last_epoch(cosine_epoch);
      progress = checkpoint->progress();
      if (progress.next_batch > batches)
        throw minicnn::error(options_.resume + ": position " + std::to_string(progress.next_batch) + " is past the " +
                             std::to_string(batches) + " batches of an epoch");
      if (!checkpoint->command().empty()) command_line_ = checkpoint->command();
      std::printf("resumed from %s: epoch %lld, batch %lld of %lld\n", options_.resume.c_str(),
                  static_cast<long long>(progress.epoch + (progress.epoch < config_.epochs ? 1 : 0)),
                  static_cast<long long>(progress.next_batch), static_cast<long long>(batches));
    }
    model.to(device_);  // after restoring: checkpoints are read into host memory
    std::printf("output: %s\n", options_.out.c_str());
    std::fflush(stdout);

    const std::string checkpoint_path = path("checkpoint.safetensors");
    const bool terminal = stdout_is_terminal();
    minicnn::Tensor<float> images, staged_images, host_logits;
    std::vector<int> labels;
    std::int64_t batches_this_process = 0;

    auto save = [&] { save_checkpoint(checkpoint_path, config_, objects, progress, command_line_); };

    while (progress.epoch < config_.epochs) {
      loader.set_epoch(static_cast<std::uint64_t>(progress.epoch));
      model.train();
      Progress bar(terminal, progress.epoch + 1, config_.epochs, batches, progress.next_batch);
      const Clock::time_point epoch_start = Clock::now();
      const double seconds_before = progress.seconds;
      std::int64_t images_this_process = 0;
      for (; progress.next_batch < batches; ++progress.next_batch) {
        if (interrupted() || (options_.interrupt_after > 0 && batches_this_process == options_.interrupt_after)) {
          bar.finish();
          progress.seconds = seconds_before + seconds_since(epoch_start);
          save();
          write_metrics(progress, nullptr, "interrupted");
          std::printf("interrupted: checkpoint saved at epoch %lld, batch %lld/%lld; continue with\n  %s train --resume %s\n",
                      static_cast<long long>(progress.epoch + 1), static_cast<long long>(progress.next_batch),
                      static_cast<long long>(batches), program_name().c_str(), checkpoint_path.c_str());
          return exit_interrupted;
        }
        loader.load_batch(progress.next_batch, images, labels);
        if (const auto lr = step_lr(optimizer->step_count())) optimizer->set_lr(*lr);
        const minicnn::Tensor<float>& logits = model.forward(on_device(images, staged_images, device_));
        const float loss = criterion.forward(logits, labels);
        if (!std::isfinite(loss)) {
          bar.finish();
          return diverged(progress, "the training loss is " + format("%g", loss) + " at epoch " +
                                        std::to_string(progress.epoch + 1) + ", batch " +
                                        std::to_string(progress.next_batch + 1));
        }
        host_logits.copy_from(logits);
        for (std::size_t row = 0; row < labels.size(); ++row)
          progress.correct +=
              minicnn::argmax(host_logits.data() + static_cast<std::int64_t>(row) * host_logits.dim(1), host_logits.dim(1)) ==
              labels[row];
        optimizer->zero_grad();
        model.backward(criterion.backward());
        optimizer->step();
        const auto count = static_cast<std::int64_t>(labels.size());
        progress.loss_sum += static_cast<double>(loss) * static_cast<double>(count);
        progress.seen += count;
        images_this_process += count;
        ++batches_this_process;
        bar.update(progress.next_batch + 1, images_this_process, progress.loss_sum / static_cast<double>(progress.seen));
      }
      bar.finish();
      const double lr_used = optimizer->lr();
      if (config_.schedule == "cosine") {
        cosine.step();
        cosine_epoch = cosine.last_epoch();
      }
      if (!parameters_finite(model))
        return diverged(progress, "a weight is no longer finite after epoch " + std::to_string(progress.epoch + 1));

      EpochRecord record;
      record.epoch = progress.epoch + 1;
      record.seconds = seconds_before + seconds_since(epoch_start);
      record.train_loss = progress.loss_sum / static_cast<double>(std::max<std::int64_t>(progress.seen, 1));
      record.train_accuracy = static_cast<double>(progress.correct) / static_cast<double>(std::max<std::int64_t>(progress.seen, 1));
      record.lr = lr_used;
      const Clock::time_point eval_start = Clock::now();
      Evaluation evaluation;
      evaluate(model, test_, config_.test_batch_size, criterion, 32, evaluation, device_, [] { return false; });
      record.eval_seconds = seconds_since(eval_start);
      record.test_loss = evaluation.loss;
      record.test_accuracy = evaluation.accuracy();
      if (!std::isfinite(record.test_loss))
        return diverged(progress, "the test loss is " + format("%g", record.test_loss) + " after epoch " +
                                      std::to_string(record.epoch));

      progress.history.push_back(record);
      progress.epoch += 1;
      progress.next_batch = 0;
      progress.loss_sum = 0;
      progress.correct = progress.seen = 0;
      progress.seconds = 0;
      save();
      save_weights(model, path("model.safetensors"), model_metadata(record));
      write_metrics(progress, &evaluation, progress.epoch == config_.epochs ? "completed" : "running");
      write_figures(progress, evaluation);

      std::printf("epoch %2lld/%lld  train loss %.4f  acc %.2f%%  |  test loss %.4f  acc %.2f%%  |  lr %.3g  |  %.1f s (+%.1f s eval)\n",
                  static_cast<long long>(record.epoch), static_cast<long long>(config_.epochs), record.train_loss,
                  100 * record.train_accuracy, record.test_loss, 100 * record.test_accuracy, record.lr, record.seconds,
                  record.eval_seconds);
      std::fflush(stdout);
      last_evaluation_ = std::make_unique<Evaluation>(evaluation);
    }

    if (!last_evaluation_) {
      // Resumed from a finished run: evaluate once so the summary has something to show.
      last_evaluation_ = std::make_unique<Evaluation>();
      evaluate(model, test_, config_.test_batch_size, criterion, 32, *last_evaluation_, device_, [] { return false; });
    }
    std::printf("\nfinal test accuracy %.2f%% (%lld/%lld)\n", 100 * last_evaluation_->accuracy(),
                static_cast<long long>(last_evaluation_->matrix.correct()),
                static_cast<long long>(last_evaluation_->matrix.total()));
    print_per_class_table(last_evaluation_->matrix, class_names());
    std::printf("wrote %s/{model.safetensors, checkpoint.safetensors, metrics.json, confusion_matrix.png, "
                "training_curves.png, misclassified.png}\n",
                options_.out.c_str());
    return 0;
  }

 private:
  std::string path(const std::string& name) const { return (std::filesystem::path(options_.out) / name).string(); }
  static std::string program_name() { return "fashion_mnist"; }

  static bool parameters_finite(Model& model) {
    std::deque<minicnn::Tensor<float>> host_copies;
    for (const auto& named : model.named_parameters())
      for (const float v : on_host(named.parameter->value, host_copies))
        if (!std::isfinite(v)) return false;
    return true;
  }

  minicnn::io::Metadata model_metadata(const EpochRecord& record) const {
    return {{"format", "pt"},
            {"producer", "minicnn fashion_mnist " MINICNN_VERSION_STRING},
            {"epoch", std::to_string(record.epoch)},
            {"test_accuracy", json::format_number(record.test_accuracy)}};
  }

  int diverged(const TrainingProgress& progress, const std::string& what) {
    const bool have_checkpoint = progress.epoch > 0 || !options_.resume.empty();
    std::fprintf(stderr, "error: training diverged: %s (lr %g). Stopped; %s\n", what.c_str(), config_.lr,
                 have_checkpoint ? ("the last good checkpoint stays in " + path("checkpoint.safetensors") +
                                    "; try a smaller --lr")
                                       .c_str()
                                 : "no epoch had completed, so there is no checkpoint; try a smaller --lr");
    write_metrics(progress, nullptr, "diverged");
    return exit_diverged;
  }

  // metrics.json: the configuration, the per-epoch history and the latest evaluation.
  void write_metrics(const TrainingProgress& progress, const Evaluation* evaluation, const std::string& status) {
    json::Value root;
    root.set("status", status);
    root.set("command", command_line_);
    root.set("seed", std::to_string(config_.seed));
    root.set("build", minicnn::build_info());
    root.set("config", config_to_json(config_));
    json::Value data;
    data.set("train_images", train_.size());
    data.set("test_images", test_.size());
    root.set("data", data);
    json::Array history;
    double best = -1;
    std::int64_t best_epoch = 0;
    for (const EpochRecord& record : progress.history) {
      history.push_back(record.to_json());
      if (record.test_accuracy > best) best = record.test_accuracy, best_epoch = record.epoch;
    }
    root.set("epochs_completed", static_cast<std::int64_t>(progress.history.size()));
    root.set("history", history);
    if (!progress.history.empty()) {
      root.set("final_test_accuracy", progress.history.back().test_accuracy);
      root.set("best_test_accuracy", best);
      root.set("best_epoch", best_epoch);
    }
    const Evaluation* shown = evaluation ? evaluation : last_evaluation_.get();
    if (shown) root.set("evaluation", evaluation_json(*shown, class_names()));
    minicnn::io::write_file_atomically(path("metrics.json"), json::dump(root) + "\n");
  }

  void write_figures(const TrainingProgress& progress, const Evaluation& evaluation) {
    const std::vector<std::string> names = class_names();
    write_confusion_png(path("confusion_matrix.png"), evaluation, names);
    write_mistakes_png(path("misclassified.png"), evaluation, test_, names);
    minicnn::viz::Chart loss{"Loss", "cross-entropy", {{"train", {}, minicnn::viz::colors::blue}, {"test", {}, minicnn::viz::colors::orange}}};
    minicnn::viz::Chart accuracy{"Accuracy", "accuracy (%)", {{"train", {}, minicnn::viz::colors::blue}, {"test", {}, minicnn::viz::colors::orange}}};
    for (const EpochRecord& record : progress.history) {
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
  std::unique_ptr<Evaluation> last_evaluation_;
};

}  // namespace fashion_mnist
