#pragma once
// The training checkpoint: one safetensors file, written atomically (a crash mid-write leaves
// the previous checkpoint), holding everything an uninterrupted run would still have in memory:
//
//   tensors   model.<state_dict name>                  the weights
//             optimizer.exp_avg.<name>, .exp_avg_sq.   Adam's moment estimates
//   metadata  "minicnn.checkpoint"  "fashion_mnist/1"  (format and version)
//             "config"     the training configuration (JSON)
//             "progress"   epochs done, position in the epoch in progress and its running sums,
//                          the per-epoch history (JSON)
//             "optimizer"  step count and current learning rate (JSON)
//             "scheduler"  the per-epoch cosine schedule's epoch count (JSON); per-step schedules
//                          are pure functions of the optimizer's step count
//             "rng"        the dropout generator's (seed, counter) and the data loader's seed and
//                          epoch (decimal strings: 64-bit values do not fit a JSON number)
//             "command"    the command line that started the run
// Floating-point values are written in the shortest form that reads back bit-identical, so
// --resume continues exactly where the run stopped.
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "device.hpp"
#include "json.hpp"
#include "minicnn/io/safetensors.hpp"
#include "minicnn/models/fashion_cnn.hpp"
#include "minicnn/optim/adam.hpp"
#include "options.hpp"

namespace fashion_mnist {

using Model = minicnn::models::FashionCNN<float>;

inline constexpr const char* checkpoint_format = "fashion_mnist/1";

struct EpochRecord {
  std::int64_t epoch = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0, lr = 0;
  double seconds = 0, eval_seconds = 0;

  json::Value to_json() const {
    json::Value v;
    v.set("epoch", epoch);
    v.set("train_loss", train_loss);
    v.set("train_accuracy", train_accuracy);
    v.set("test_loss", test_loss);
    v.set("test_accuracy", test_accuracy);
    v.set("lr", lr);
    v.set("seconds", seconds);
    v.set("eval_seconds", eval_seconds);
    return v;
  }
  static EpochRecord from_json(const json::Value& v, const std::string& what) {
    EpochRecord r;
    r.epoch = v.at("epoch", what).as_integer(what + ".epoch");
    r.train_loss = v.at("train_loss", what).as_number(what + ".train_loss");
    r.train_accuracy = v.at("train_accuracy", what).as_number(what + ".train_accuracy");
    r.test_loss = v.at("test_loss", what).as_number(what + ".test_loss");
    r.test_accuracy = v.at("test_accuracy", what).as_number(what + ".test_accuracy");
    r.lr = v.at("lr", what).as_number(what + ".lr");
    r.seconds = v.at("seconds", what).as_number(what + ".seconds");
    r.eval_seconds = v.at("eval_seconds", what).as_number(what + ".eval_seconds");
    return r;
  }
};

// Where a run stands.
struct TrainingProgress {
  std::int64_t epoch = 0;       // epochs completed = index of the epoch in progress
  std::int64_t next_batch = 0;  // batches of that epoch already trained
  double loss_sum = 0;          // its running sums: sum of loss * batch size,
  std::int64_t correct = 0;     //   right predictions,
  std::int64_t seen = 0;        //   images trained on
  double seconds = 0;           // its wall time so far (reported, not part of the identity)
  std::vector<EpochRecord> history;
};

inline json::Value config_to_json(const TrainConfig& c) {
  json::Value v;
  v.set("recipe", c.recipe);
  v.set("epochs", c.epochs);
  v.set("batch_size", c.batch_size);
  v.set("lr", c.lr);
  v.set("augment", c.augment);
  v.set("seed", std::to_string(c.seed));
  v.set("optimizer", c.optimizer);
  v.set("weight_decay", c.weight_decay);
  v.set("schedule", c.schedule);
  v.set("warmup", c.warmup);
  v.set("label_smoothing", c.label_smoothing);
  v.set("test_batch_size", c.test_batch_size);
  v.set("limit_train", c.limit_train);
  v.set("limit_test", c.limit_test);
  return v;
}

inline std::uint64_t parse_u64(const std::string& text, const std::string& what) {
  const std::optional<std::uint64_t> value = detail::whole_integer<std::uint64_t>(text);
  if (!value) throw minicnn::error(what + ": expected an unsigned integer, found '" + text + "'");
  return *value;
}

inline TrainConfig config_from_json(const json::Value& v, const std::string& what) {
  TrainConfig c;
  c.recipe = v.at("recipe", what).as_string(what + ".recipe");
  c.epochs = v.at("epochs", what).as_integer(what + ".epochs");
  c.batch_size = v.at("batch_size", what).as_integer(what + ".batch_size");
  c.lr = v.at("lr", what).as_number(what + ".lr");
  c.augment = v.at("augment", what).as_bool(what + ".augment");
  c.seed = parse_u64(v.at("seed", what).as_string(what + ".seed"), what + ".seed");
  c.optimizer = v.at("optimizer", what).as_string(what + ".optimizer");
  c.weight_decay = v.at("weight_decay", what).as_number(what + ".weight_decay");
  c.schedule = v.at("schedule", what).as_string(what + ".schedule");
  c.warmup = v.at("warmup", what).as_number(what + ".warmup");
  c.label_smoothing = v.at("label_smoothing", what).as_number(what + ".label_smoothing");
  c.test_batch_size = v.at("test_batch_size", what).as_integer(what + ".test_batch_size");
  c.limit_train = v.at("limit_train", what).as_integer(what + ".limit_train");
  c.limit_test = v.at("limit_test", what).as_integer(what + ".limit_test");
  if (c.epochs < 1 || c.batch_size < 1 || c.test_batch_size < 1 || !(c.lr > 0) || c.limit_train < 0 || c.limit_test < 0 ||
      (c.optimizer != "adam" && c.optimizer != "adamw") ||
      (c.schedule != "cosine" && c.schedule != "onecycle" && c.schedule != "warmup-cosine" && c.schedule != "constant"))
    throw minicnn::error(what + ": the configuration holds values this program does not accept");
  return c;
}

// What the training loop needs to save and restore, by reference.
struct TrainingObjects {
  Model& model;
  minicnn::Adam<float>& optimizer;  // Adam or AdamW
  std::int64_t& scheduler_last_epoch;
};

inline void save_checkpoint(const std::string& path, const TrainConfig& config, TrainingObjects objects,
                            const TrainingProgress& progress, const std::string& command) {
  std::vector<minicnn::io::TensorRef> tensors;
  std::deque<minicnn::Tensor<float>> host_copies;  // of tensors that live on the GPU
  const auto parameters = objects.model.named_parameters();
  for (const auto& named : parameters)
    tensors.push_back(minicnn::io::tensor_ref("model." + named.name, on_host(named.parameter->value, host_copies)));
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    tensors.push_back(minicnn::io::tensor_ref("optimizer.exp_avg." + parameters[i].name,
                                              on_host(objects.optimizer.exp_avg()[i], host_copies)));
    tensors.push_back(minicnn::io::tensor_ref("optimizer.exp_avg_sq." + parameters[i].name,
                                              on_host(objects.optimizer.exp_avg_sq()[i], host_copies)));
  }
  json::Value progress_json;
  progress_json.set("epoch", progress.epoch);
  progress_json.set("next_batch", progress.next_batch);
  progress_json.set("loss_sum", progress.loss_sum);
  progress_json.set("correct", progress.correct);
  progress_json.set("seen", progress.seen);
  progress_json.set("seconds", progress.seconds);
  json::Array history;
  for (const EpochRecord& record : progress.history) history.push_back(record.to_json());
  progress_json.set("history", history);

  json::Value optimizer_json;
  optimizer_json.set("step_count", objects.optimizer.step_count());
  optimizer_json.set("lr", objects.optimizer.lr());
  json::Value scheduler_json;
  scheduler_json.set("last_epoch", objects.scheduler_last_epoch);
  json::Value rng;
  rng.set("dropout_seed", std::to_string(objects.model.dropout().generator().seed()));
  rng.set("dropout_counter", std::to_string(objects.model.dropout().generator().counter()));
  rng.set("loader_seed", std::to_string(config.seed));
  rng.set("loader_epoch", std::to_string(progress.epoch));

  minicnn::io::Metadata metadata;
  metadata["minicnn.checkpoint"] = checkpoint_format;
  metadata["config"] = json::dump(config_to_json(config));
  metadata["progress"] = json::dump(progress_json);
  metadata["optimizer"] = json::dump(optimizer_json);
  metadata["scheduler"] = json::dump(scheduler_json);
  metadata["rng"] = json::dump(rng);
  metadata["command"] = command;
  minicnn::io::save_tensors(tensors, path, metadata);
}

// A checkpoint read and checked, ready to restore into freshly built objects.
class Checkpoint {
 public:
  static bool is_checkpoint(const minicnn::io::SafetensorsFile& file) {
    return file.metadata().count("minicnn.checkpoint") != 0;
  }

  explicit Checkpoint(const std::string& path) : Checkpoint(minicnn::io::SafetensorsFile::read(path)) {}
  // A checkpoint from a file already read (SafetensorsFile::read).
  explicit Checkpoint(minicnn::io::SafetensorsFile file) : file_(std::move(file)) {
    const auto& metadata = file_.metadata();
    const auto format = metadata.find("minicnn.checkpoint");
    if (format == metadata.end())
      throw minicnn::error(path() +
                           ": not a fashion_mnist checkpoint (no \"minicnn.checkpoint\" metadata); "
                           "--resume takes the checkpoint.safetensors of a run's output folder");
    if (format->second != checkpoint_format)
      throw minicnn::error(path() + ": checkpoint format '" + format->second + "', expected '" + checkpoint_format +
                           "'");
    config_ = config_from_json(field("config"), path() + ": config");
    progress_json_ = field("progress");
    optimizer_json_ = field("optimizer");
    scheduler_json_ = field("scheduler");
    rng_json_ = field("rng");
    const auto command = metadata.find("command");
    command_ = command == metadata.end() ? "" : command->second;

    const std::string what = path() + ": progress";
    progress_.epoch = progress_json_.at("epoch", what).as_integer(what + ".epoch");
    progress_.next_batch = progress_json_.at("next_batch", what).as_integer(what + ".next_batch");
    progress_.loss_sum = progress_json_.at("loss_sum", what).as_number(what + ".loss_sum");
    progress_.correct = progress_json_.at("correct", what).as_integer(what + ".correct");
    progress_.seen = progress_json_.at("seen", what).as_integer(what + ".seen");
    progress_.seconds = progress_json_.at("seconds", what).as_number(what + ".seconds");
    for (const json::Value& record : progress_json_.at("history", what).as_array(what + ".history"))
      progress_.history.push_back(EpochRecord::from_json(record, what + ".history"));
    if (progress_.epoch < 0 || progress_.epoch > config_.epochs || progress_.next_batch < 0 ||
        static_cast<std::int64_t>(progress_.history.size()) != progress_.epoch)
      throw minicnn::error(what + ": inconsistent (epoch " + std::to_string(progress_.epoch) + ", " +
                           std::to_string(progress_.history.size()) + " history records, " +
                           std::to_string(config_.epochs) + " epochs configured)");
  }

  const std::string& path() const { return file_.source(); }
  const TrainConfig& config() const { return config_; }
  const TrainingProgress& progress() const { return progress_; }
  const std::string& command() const { return command_; }

  // Copies the weights, the optimizer's moments, step count and lr, the scheduler's epoch and
  // the dropout generator's state into objects built from config().
  void restore(TrainingObjects objects) const {
    const auto parameters = objects.model.named_parameters();
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      file_.copy_to("model." + parameters[i].name, parameters[i].parameter->value);
      file_.copy_to("optimizer.exp_avg." + parameters[i].name, objects.optimizer.exp_avg()[i]);
      file_.copy_to("optimizer.exp_avg_sq." + parameters[i].name, objects.optimizer.exp_avg_sq()[i]);
    }
    const std::string what = path() + ": ";
    const std::int64_t steps = optimizer_json_.at("step_count", what + "optimizer").as_integer(what + "optimizer.step_count");
    if (steps < 0) throw minicnn::error(what + "optimizer.step_count is negative");
    objects.optimizer.set_step_count(steps);
    objects.optimizer.set_lr(optimizer_json_.at("lr", what + "optimizer").as_number(what + "optimizer.lr"));
    objects.scheduler_last_epoch =
        scheduler_json_.at("last_epoch", what + "scheduler").as_integer(what + "scheduler.last_epoch");
    const std::uint64_t dropout_seed =
        parse_u64(rng_json_.at("dropout_seed", what + "rng").as_string(what + "rng.dropout_seed"), what + "rng.dropout_seed");
    const std::uint64_t dropout_counter = parse_u64(
        rng_json_.at("dropout_counter", what + "rng").as_string(what + "rng.dropout_counter"), what + "rng.dropout_counter");
    objects.model.dropout().generator().set_state(dropout_seed, dropout_counter);
  }

  // The weights alone, into a model (eval, predict and export accept a checkpoint as --model).
  void restore_weights(Model& model) const {
    for (const auto& named : model.named_parameters()) file_.copy_to("model." + named.name, named.parameter->value);
  }

 private:
  json::Value field(const std::string& key) const {
    const auto found = file_.metadata().find(key);
    if (found == file_.metadata().end())
      throw minicnn::error(path() + ": the checkpoint has no \"" + key + "\" metadata");
    return json::parse(found->second, path() + ": metadata \"" + key + "\"");
  }

  minicnn::io::SafetensorsFile file_;
  TrainConfig config_;
  TrainingProgress progress_;
  json::Value progress_json_, optimizer_json_, scheduler_json_, rng_json_;
  std::string command_;
};

// Saves the weights under their state_dict names (model.safetensors), wherever they live.
inline void save_weights(Model& model, const std::string& path, const minicnn::io::Metadata& metadata) {
  std::vector<minicnn::io::TensorRef> tensors;
  std::deque<minicnn::Tensor<float>> host_copies;
  for (const auto& named : model.named_parameters())
    tensors.push_back(minicnn::io::tensor_ref(named.name, on_host(named.parameter->value, host_copies)));
  minicnn::io::save_tensors(tensors, path, metadata);
}

// Loads weights into `model` from a model.safetensors (the state_dict names) or a checkpoint.
inline void load_weights(Model& model, const std::string& path) {
  minicnn::io::SafetensorsFile file = minicnn::io::SafetensorsFile::read(path);
  if (Checkpoint::is_checkpoint(file)) {
    Checkpoint(std::move(file)).restore_weights(model);
    return;
  }
  minicnn::io::load_safetensors(model, file);
}

}  // namespace fashion_mnist
