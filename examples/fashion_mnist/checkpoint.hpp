#pragma once
// The training checkpoint: one safetensors file, written atomically (a crash mid-write leaves
// the previous checkpoint), holding everything an uninterrupted run would still have in memory:
//
//   tensors   model.<state_dict name>                  the weights and buffers (BatchNorm's
//                                                      running statistics)
//             optimizer.exp_avg.<name>, .exp_avg_sq.   Adam's moment estimates
//   metadata  "minicnn.checkpoint"  "fashion_mnist/2"  (format and version)
//             "minicnn.model"  the model's name (fashion_cnn, resnet18, ...)
//             "config"     the training configuration (JSON), the model's name included
//             "progress"   epochs done, position in the epoch in progress and its running sums,
//                          the per-epoch history (JSON)
//             "optimizer"  step count and current learning rate (JSON)
//             "scheduler"  the per-epoch cosine schedule's epoch count (JSON): written for readers
//                          of format 1, not read, since every schedule is a pure function of the
//                          optimizer's step count (lr_at)
//             "rng"        each dropout layer's generator, {"<layer name>": [seed, counter]}, and
//                          the data loader's seed and epoch (decimal strings)
//             "command"    the command line that started the run
// nlohmann/json writes doubles in the shortest form that reads back bit-identical, so --resume
// continues exactly where the run stopped. Format 1 (FashionCNN only: no buffers, one dropout
// generator as "dropout_seed" / "dropout_counter", a configuration without the later keys) is
// still read.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "device.hpp"
#include "minicnn/io/safetensors.hpp"
#include "minicnn/optim/adam.hpp"
#include "model.hpp"
#include "options.hpp"

namespace fashion_mnist {

// Objects keep their keys sorted: the files come out the same whatever order the code sets them in.
using Json = nlohmann::json;

// JSON text; bytes that are not UTF-8 (a file name in another encoding on the command line) are
// replaced rather than made an error.
inline std::string json_text(const Json& value, int indent = -1) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

inline constexpr const char* checkpoint_format = "fashion_mnist/2";
inline constexpr const char* checkpoint_format_1 = "fashion_mnist/1";

struct EpochRecord {
  std::int64_t epoch = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0, lr = 0;
  double seconds = 0, eval_seconds = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(EpochRecord, epoch, train_loss, train_accuracy, test_loss, test_accuracy, lr,
                                   seconds, eval_seconds)

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
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TrainingProgress, epoch, next_batch, loss_sum, correct, seen, seconds, history)

// A 64-bit value as format 1 stores it: a decimal string.
inline std::uint64_t parse_u64(const std::string& text, const std::string& what) {
  std::uint64_t value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || result.ec != std::errc() || result.ptr != text.data() + text.size())
    throw minicnn::error(what + ": expected an unsigned integer, found '" + text + "'");
  return value;
}

inline void to_json(Json& json, const TrainConfig& c) {
  json = {{"recipe", c.recipe},
          {"model", c.model},
          {"epochs", c.epochs},
          {"batch_size", c.batch_size},
          {"micro_batch", c.micro_batch},
          {"lr", c.lr},
          {"augment", c.augment},
          {"rotation", c.rotation},
          {"crop_padding", c.crop_padding},
          {"erasing", c.erasing},
          {"seed", std::to_string(c.seed)},
          {"optimizer", c.optimizer},
          {"weight_decay", c.weight_decay},
          {"decay_norm_and_bias", c.decay_norm_and_bias},
          {"schedule", c.schedule},
          {"warmup", c.warmup},
          {"label_smoothing", c.label_smoothing},
          {"test_batch_size", c.test_batch_size},
          {"limit_train", c.limit_train},
          {"limit_test", c.limit_test}};
}

inline void from_json(const Json& json, TrainConfig& c) {
  json.at("recipe").get_to(c.recipe);
  json.at("epochs").get_to(c.epochs);
  json.at("batch_size").get_to(c.batch_size);
  json.at("lr").get_to(c.lr);
  json.at("augment").get_to(c.augment);
  // Keys added after format 1 keep the values format 1 implied when absent.
  const TrainConfig defaults;
  c.model = json.value("model", defaults.model);
  c.rotation = json.value("rotation", defaults.rotation);
  c.crop_padding = json.value("crop_padding", defaults.crop_padding);
  c.erasing = json.value("erasing", defaults.erasing);
  c.decay_norm_and_bias = json.value("decay_norm_and_bias", defaults.decay_norm_and_bias);
  c.micro_batch = json.value("micro_batch", defaults.micro_batch);
  c.seed = parse_u64(json.at("seed").get<std::string>(), "seed");
  json.at("optimizer").get_to(c.optimizer);
  json.at("weight_decay").get_to(c.weight_decay);
  json.at("schedule").get_to(c.schedule);
  json.at("warmup").get_to(c.warmup);
  json.at("label_smoothing").get_to(c.label_smoothing);
  json.at("test_batch_size").get_to(c.test_batch_size);
  json.at("limit_train").get_to(c.limit_train);
  json.at("limit_test").get_to(c.limit_test);
  const auto known = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  if (c.epochs < 1 || c.batch_size < 1 || c.micro_batch < 0 || c.test_batch_size < 1 || !(c.lr > 0) || c.limit_train < 0 ||
      c.limit_test < 0 || !known(optimizer_names, c.optimizer) || !known(schedule_names, c.schedule) ||
      !known(model_names(), c.model) || !(c.rotation >= 0 && c.rotation <= 180) || c.crop_padding < 0 ||
      c.crop_padding > 28 || !(c.erasing >= 0 && c.erasing <= 1))
    throw minicnn::error("the configuration holds values this program does not accept");
}

// What the training loop needs to save and restore, by reference.
struct TrainingObjects {
  Model& model;
  minicnn::Adam<float>& optimizer;  // Adam or AdamW
};

// The full state_dict name of each of the optimizer's parameters, in the order of its moments
// (exp_avg()[i]): parameter groups may order them differently from the model.
inline std::vector<std::string> optimizer_parameter_names(Model& model, const minicnn::Adam<float>& optimizer) {
  std::map<const minicnn::Parameter<float>*, std::string> names;
  for (const auto& named : model.module().named_parameters()) names[named.parameter] = named.name;
  std::vector<std::string> out;
  for (const minicnn::Parameter<float>* parameter : optimizer.parameters()) out.push_back(names.at(parameter));
  return out;
}

inline void save_checkpoint(const std::string& path, const TrainConfig& config, TrainingObjects objects,
                            const TrainingProgress& progress, const std::string& command) {
  std::vector<minicnn::io::TensorRef> tensors;
  std::deque<minicnn::Tensor<float>> host_copies;  // of tensors that live on the GPU
  for (const auto& named : objects.model.module().state())
    tensors.push_back(minicnn::io::tensor_ref("model." + named.name, on_host(*named.tensor, host_copies)));
  const std::vector<std::string> names = optimizer_parameter_names(objects.model, objects.optimizer);
  for (std::size_t i = 0; i < names.size(); ++i) {
    tensors.push_back(
        minicnn::io::tensor_ref("optimizer.exp_avg." + names[i], on_host(objects.optimizer.exp_avg()[i], host_copies)));
    tensors.push_back(minicnn::io::tensor_ref("optimizer.exp_avg_sq." + names[i],
                                              on_host(objects.optimizer.exp_avg_sq()[i], host_copies)));
  }
  Json dropout = Json::object();
  for (const auto& [name, layer] : objects.model.dropouts())
    dropout[name] = {std::to_string(layer->generator().seed()), std::to_string(layer->generator().counter())};
  const bool cosine = config.schedule == "cosine";
  minicnn::io::Metadata metadata;
  metadata["minicnn.checkpoint"] = checkpoint_format;
  metadata[model_metadata_key] = objects.model.name();
  metadata["config"] = json_text(config);
  metadata["progress"] = json_text(progress);
  metadata["optimizer"] = json_text({{"step_count", objects.optimizer.step_count()}, {"lr", objects.optimizer.lr()}});
  metadata["scheduler"] = json_text({{"last_epoch", cosine ? progress.epoch : 0}});
  metadata["rng"] = json_text({{"dropout", dropout},
                               {"loader_seed", std::to_string(config.seed)},
                               {"loader_epoch", std::to_string(progress.epoch)}});
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
    if (format->second != checkpoint_format && format->second != checkpoint_format_1)
      throw minicnn::error(path() + ": checkpoint format '" + format->second + "', expected '" + checkpoint_format +
                           "' (or '" + checkpoint_format_1 + "')");
    format_1_ = format->second == checkpoint_format_1;
    config_ = field<TrainConfig>("config");
    if (format_1_ && config_.model != "fashion_cnn")
      throw minicnn::error(path() + ": format 1 holds only fashion_cnn, but its configuration names '" +
                           config_.model + "'");
    progress_ = field<TrainingProgress>("progress");
    const auto command = metadata.find("command");
    command_ = command == metadata.end() ? "" : command->second;
    if (progress_.epoch < 0 || progress_.epoch > config_.epochs || progress_.next_batch < 0 ||
        static_cast<std::int64_t>(progress_.history.size()) != progress_.epoch)
      throw minicnn::error(path() + ": progress: inconsistent (epoch " + std::to_string(progress_.epoch) + ", " +
                           std::to_string(progress_.history.size()) + " history records, " +
                           std::to_string(config_.epochs) + " epochs configured)");
  }

  const std::string& path() const { return file_.source(); }
  const TrainConfig& config() const { return config_; }
  const TrainingProgress& progress() const { return progress_; }
  const std::string& command() const { return command_; }

  // Copies the weights and buffers, the optimizer's moments, step count and lr and the dropout
  // generators' states into objects built from config().
  void restore(TrainingObjects objects) const {
    restore_weights(objects.model);
    const std::vector<std::string> names = optimizer_parameter_names(objects.model, objects.optimizer);
    for (std::size_t i = 0; i < names.size(); ++i) {
      file_.copy_to("optimizer.exp_avg." + names[i], objects.optimizer.exp_avg()[i]);
      file_.copy_to("optimizer.exp_avg_sq." + names[i], objects.optimizer.exp_avg_sq()[i]);
    }
    const Json optimizer = field<Json>("optimizer"), rng = field<Json>("rng");
    try {
      const auto steps = optimizer.at("step_count").get<std::int64_t>();
      if (steps < 0) throw minicnn::error("optimizer.step_count is negative");
      objects.optimizer.set_step_count(steps);
      objects.optimizer.set_lr(optimizer.at("lr").get<double>());
      for (const auto& [name, layer] : objects.model.dropouts()) {
        // Format 1 held FashionCNN's one dropout layer as two top-level entries.
        const Json state = format_1_ ? Json::array({rng.at("dropout_seed"), rng.at("dropout_counter")})
                                     : rng.at("dropout").at(name);
        layer->generator().set_state(parse_u64(state.at(0).get<std::string>(), "rng dropout " + name + " seed"),
                                     parse_u64(state.at(1).get<std::string>(), "rng dropout " + name + " counter"));
      }
    } catch (const std::exception& e) {
      throw minicnn::error(path() + ": optimizer or rng metadata: " + e.what());
    }
  }

  // The weights and buffers alone, into a model (eval, predict and export accept a checkpoint as
  // --model).
  void restore_weights(Model& model) const {
    for (const auto& named : model.module().state()) file_.copy_to("model." + named.name, *named.tensor);
  }

 private:
  // The metadata entry `key` parsed and converted to T; errors name the file and the entry.
  template <typename T>
  T field(const std::string& key) const {
    const auto found = file_.metadata().find(key);
    if (found == file_.metadata().end())
      throw minicnn::error(path() + ": the checkpoint has no \"" + key + "\" metadata");
    try {
      return Json::parse(found->second).get<T>();
    } catch (const std::exception& e) {
      throw minicnn::error(path() + ": metadata \"" + key + "\": " + e.what());
    }
  }

  minicnn::io::SafetensorsFile file_;
  TrainConfig config_;
  TrainingProgress progress_;
  std::string command_;
  bool format_1_ = false;
};

// Saves the weights and buffers under their state_dict names (model.safetensors), wherever they
// live, with the model's name in the metadata.
inline void save_weights(Model& model, const std::string& path, minicnn::io::Metadata metadata) {
  std::vector<minicnn::io::TensorRef> tensors;
  std::deque<minicnn::Tensor<float>> host_copies;
  for (const auto& named : model.module().state())
    tensors.push_back(minicnn::io::tensor_ref(named.name, on_host(*named.tensor, host_copies)));
  metadata[model_metadata_key] = model.name();
  minicnn::io::save_tensors(tensors, path, metadata);
}

// The model a weights file (a model.safetensors with the state_dict names, or a checkpoint)
// holds, built and loaded.
inline Model load_model(const std::string& path) {
  minicnn::io::SafetensorsFile file = minicnn::io::SafetensorsFile::read(path);
  if (Checkpoint::is_checkpoint(file)) {
    Checkpoint checkpoint(std::move(file));
    Model model = make_model(checkpoint.config().model, 0);
    checkpoint.restore_weights(model);
    return model;
  }
  Model model = make_model(identify_model(file), 0);
  minicnn::io::load_safetensors(model.module(), file);
  return model;
}

}  // namespace fashion_mnist
