#pragma once
// The fashion_mnist command line, declared with CLI11: one subcommand per task, typed values
// checked while parsing, a generated --help per subcommand. The training configuration also
// comes from TOML or INI files: --config FILE, or --recipe NAME for a file shipped in
// examples/fashion_mnist/recipes/. A flag on the command line wins over the file.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model.hpp"

namespace fashion_mnist {

// The training configuration: everything that decides the trained weights. A checkpoint stores
// it, and --resume continues with the checkpoint's configuration. The defaults are the
// tutorial's recipe (recipes/tutorial.toml says the same).
struct TrainConfig {
  std::string recipe = "tutorial";  // the recipe or configuration file it came from (reported only)
  std::string model = "fashion_cnn";  // one of model_names() (model.hpp)
  std::int64_t epochs = 10;
  std::int64_t batch_size = 64;     // images per optimiser step (over all processes with --distributed)
  std::int64_t micro_batch = 0;     // images per forward/backward pass; 0: the whole batch (today's loop)
  double lr = 1e-3;
  bool augment = true;                // false: none of the three below
  double rotation = 10.0;             // RandomRotation(degrees); 0: none
  std::int64_t crop_padding = 0;      // RandomCrop(28, padding); 0: none
  double erasing = 0.0;               // RandomErasing(p), after Normalize; 0: none
  std::uint64_t seed = 0;
  std::string optimizer = "adam";  // adam | adamw
  double weight_decay = 0.0;
  bool decay_norm_and_bias = true;  // false: weight decay only on conv and linear weights
  std::string schedule = "cosine";  // one of schedule_names
  double warmup = 0.15;             // fraction of all steps spent warming up (onecycle, warmup-cosine)
  double label_smoothing = 0.0;
  std::int64_t test_batch_size = 1000;
  std::int64_t limit_train = 0;  // 0: every training image
  std::int64_t limit_test = 0;   // 0: every test image
};

inline const std::vector<std::string> optimizer_names = {"adam", "adamw"};
inline const std::vector<std::string> schedule_names = {"cosine", "onecycle", "warmup-cosine", "constant"};
inline const std::vector<std::string> device_names = {"cpu", "cuda"};
inline const std::vector<std::string> reduction_names = {"fixed_order", "mpi_sum"};

struct TrainOptions {
  TrainConfig config;
  std::string data;
  std::string out;  // empty: runs/fashion_mnist, or the checkpoint's folder with --resume
  std::string resume;
  int threads = 0;  // 0: the default (OMP_NUM_THREADS, else the cores)
  std::string device = "cpu";
  std::int64_t interrupt_after = 0;  // testing aid: act as if Ctrl-C came after this many batches
  bool print_config = false;
  bool distributed = false;              // train with every process of the MPI job (started by mpirun)
  std::string reduction = "fixed_order";  // with distributed: fixed_order or mpi_sum (processes.hpp)
};

struct EvalOptions {
  std::string model, data, device = "cpu";
  bool json = false;
  std::int64_t batch_size = 1000;
  std::int64_t limit_test = 0;
  int threads = 0;
};

struct PredictOptions {
  std::string model, device = "cpu";
  std::vector<std::string> images;
  int top = 3;
  int threads = 0;
  int repeat = 1;  // timed forward passes per picture, after one warm-up pass
};

struct SimilarOptions {
  std::string model, data, out = "similar.png", device = "cpu";
  std::vector<std::string> images;
  std::vector<std::int64_t> train_images;  // training-set images used as pictures, by index
  int k = 8;
  int threads = 0;
};

struct ExportOptions {
  std::string model, out;
};

// A value as the text that reads back to exactly it: CLI11's own default text prints doubles
// with 6 digits, which would make --print-config lossy.
template <typename T>
std::string exact_text(const T& value) {
  if constexpr (std::is_same_v<T, std::string>)
    return value;
  else
    return nlohmann::json(value).dump();
}

// A finite number in [low, high], or (low, high] when low_open: CLI::Range lets NaN through.
inline CLI::Validator finite_in(double low, double high, bool low_open = false) {
  const auto bound = [](double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    return std::string(text);
  };
  const std::string range = (low_open ? "(" : "[") + bound(low) + ", " + bound(high) + "]";
  return CLI::Validator(
      [=](const std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(value))
          return "expected a finite number, got '" + text + "'";
        if ((low_open ? !(value > low) : !(value >= low)) || !(value <= high))
          return "expected a number in " + range + ", got " + text;
        return {};
      },
      "");
}

// Decimal digits only, leading zeros dropped: CLI11 alone would read "-1" as 2^64 - 1 and "010"
// as octal 8. A transform, so that it may rewrite the text.
inline const CLI::Validator decimal(
    [](std::string& text) {
      if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
        return "expected a non-negative decimal integer, got '" + text + "'";
      text.erase(0, std::min(text.find_first_not_of('0'), text.size() - 1));
      return std::string();
    },
    "");

inline const CLI::Validator not_empty(
    [](const std::string& text) { return text.empty() ? std::string("expected a non-empty value") : std::string(); },
    "");

// Declares the configuration flags on `command`, bound to `config`, whose current values become
// the flags' defaults: used to parse (config holds the defaults) and to print (config holds the
// effective values).
inline void add_config_options(CLI::App& command, TrainConfig& config) {
  const auto setting = [&](const std::string& name, auto& field, const std::string& description) {
    using Field = std::decay_t<decltype(field)>;
    const char* type = std::is_same_v<Field, std::string> ? "NAME" : std::is_integral_v<Field> ? "N" : "X";
    CLI::Option* option = command.add_option(name, field, description)->default_str(exact_text(field))->type_name(type);
    if constexpr (std::is_integral_v<Field>) option->transform(decimal);
    return option;
  };
  setting("--model", config.model, "the network: " + [] {
    std::string names;
    for (const ModelEntry& entry : model_entries()) names += (names.empty() ? "" : "; ") + entry.name + ": " + entry.description;
    return names;
  }())->check(CLI::IsMember(model_names()));
  setting("--epochs", config.epochs, "epochs to train")->check(CLI::Range(1, 100000));
  setting("--batch-size", config.batch_size,
          "training batch size, the images of one optimiser step (over all processes with --distributed); batches "
          "are shuffled every epoch")
      ->check(CLI::Range(1, 65536));
  setting("--micro-batch", config.micro_batch,
          "run each batch as micro-batches of N images (gradient accumulation, combined exactly as N-image shares on "
          "several processes would be: the same --micro-batch gives the same weights with or without --distributed); "
          "0: the whole batch at once, or with --distributed batch-size / processes")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{65536}));
  setting("--lr", config.lr, "the learning rate (the peak one for onecycle / warmup-cosine)")
      ->check(finite_in(0.0, 1e300, true));
  setting("--optimizer", config.optimizer, "adam (L2 weight decay) or adamw (decoupled weight decay)")
      ->check(CLI::IsMember(optimizer_names));
  setting("--weight-decay", config.weight_decay, "weight decay")->check(finite_in(0.0, 1e6));
  command
      .add_flag("--decay-norm-and-bias,!--no-decay-norm-and-bias", config.decay_norm_and_bias,
                "apply weight decay to BatchNorm weights and biases too, or only to conv and linear weights")
      ->default_str(exact_text(config.decay_norm_and_bias))
      ->disable_flag_override()
      ->multi_option_policy(CLI::MultiOptionPolicy::Throw);
  setting("--schedule", config.schedule,
          "cosine: CosineAnnealingLR(T_max = epochs) per epoch (the tutorial's); onecycle: PyTorch's OneCycleLR "
          "per batch; warmup-cosine: linear warm-up then cosine to 0, per batch; constant")
      ->check(CLI::IsMember(schedule_names));
  setting("--warmup", config.warmup, "the fraction of all steps spent rising, for onecycle and warmup-cosine")
      ->check(finite_in(0.0, 0.99));
  setting("--label-smoothing", config.label_smoothing, "cross-entropy label smoothing")->check(finite_in(0.0, 1.0));
  command
      .add_flag("--augment,!--no-augment", config.augment,
                "augment the training images (RandomCrop, RandomRotation, RandomHorizontalFlip(0.5), "
                "RandomErasing as set below), or not at all")
      ->default_str(exact_text(config.augment))
      ->disable_flag_override()
      ->multi_option_policy(CLI::MultiOptionPolicy::Throw);
  setting("--rotation", config.rotation, "RandomRotation(degrees) when augmenting; 0: none")->check(finite_in(0.0, 180.0));
  setting("--crop-padding", config.crop_padding, "RandomCrop(28, padding) when augmenting; 0: none")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{28}));
  setting("--erasing", config.erasing, "RandomErasing(p) after Normalize when augmenting; 0: none")
      ->check(finite_in(0.0, 1.0));
  setting("--seed", config.seed, "the weights, the shuffling, the augmentation and the dropout masks follow it");
  setting("--test-batch-size", config.test_batch_size, "evaluation batch size")->check(CLI::Range(1, 65536));
  setting("--limit-train", config.limit_train, "train on the first N training images (0: all)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
  setting("--limit-test", config.limit_test, "evaluate on the first N test images (0: all)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
}

// The configuration as a TOML file that --config reads back to the same values.
inline std::string config_text(TrainConfig config) {
  CLI::App printer("fashion_mnist train configuration (from " + config.recipe + "); read it back with --config FILE");
  add_config_options(printer, config);
  return printer.config_to_str(true, true);
}

// The shipped recipes: examples/fashion_mnist/recipes/NAME.toml.
inline std::string recipe_path(const std::string& name) {
  return std::string(FASHION_MNIST_RECIPE_DIR) + "/" + name + ".toml";
}
inline std::vector<std::string> recipe_names() {
  std::vector<std::string> names;
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(FASHION_MNIST_RECIPE_DIR, ignored))
    if (entry.path().extension() == ".toml") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The whole command line. Parse with CLI11 (app.parse); a CLI::ParseError says what was wrong.
class CommandLine {
 public:
  CommandLine() {
    app.require_subcommand(1);
    app.set_version_flag("--version", "fashion_mnist (minicnn " MINICNN_VERSION_STRING ")");
    app.footer("'fashion_mnist <command> --help' lists a command's options; docs/demo.md has them all.");
    add_train();
    add_eval();
    add_predict();
    add_similar();
    add_export();
  }

  // After a successful parse: the checks that span several options.
  void check() {
    if (similar->parsed() && similar_options.images.empty() && similar_options.train_images.empty())
      throw CLI::ValidationError("similar: expected at least one IMAGE or --train-image N");
    if (!train->parsed()) return;
    if (!train_options.resume.empty()) {
      std::vector<const CLI::Option*> configuration = {recipe_option, config_option};
      for (const CLI::Option* option : train->get_options())
        if (option->get_configurable()) configuration.push_back(option);
      for (const CLI::Option* option : configuration)
        if (option->count() > 0)
          throw CLI::ValidationError(option->get_name() +
                                     " cannot be combined with --resume: a resumed run keeps its checkpoint's "
                                     "configuration");
    }
    if (config_option->count() == 0) return;
    // The files in the order given, a recipe by its name: "best + my_changes.toml".
    std::string names;
    for (const std::string& file : config_files)
      names += (names.empty() ? "" : " + ") + (file == recipe_path(recipe_name) ? recipe_name : file);
    train_options.config.recipe = names;
    // Last given first: an option already set (on the command line, or by a later file) keeps its value.
    for (auto file = config_files.rbegin(); file != config_files.rend(); ++file) apply_config_file(*file);
  }

  CLI::App app{"The PyTorch Fashion-MNIST tutorial as one program: train, evaluate, classify, find similar items, export.",
               "fashion_mnist"};
  CLI::App *train = nullptr, *eval = nullptr, *predict = nullptr, *similar = nullptr, *export_ = nullptr;
  TrainOptions train_options;
  EvalOptions eval_options;
  PredictOptions predict_options;
  SimilarOptions similar_options;
  ExportOptions export_options;

 private:
  void add_train() {
    train = app.add_subcommand("train", "train a model (the tutorial's FashionCNN by default) on Fashion-MNIST");
    train->footer(
        "The defaults are the tutorial's recipe: Adam lr 1e-3, CosineAnnealingLR(T_max = epochs) stepped per epoch, "
        "batch 64, RandomRotation(10) + RandomHorizontalFlip, Normalize(0.5, 0.5), 10 epochs. Recipe files: "
        "docs/demo.md.");
    config_option = train
                        ->add_option("--config", config_files,
                                     "read the configuration from a TOML or INI file; with several files (and "
                                     "--recipe), a later one wins, and a flag wins over every file")
                        ->type_name("FILE")
                        ->check(CLI::ExistingFile);
    recipe_option =
        train->add_option("--recipe", recipe_name, "a shipped recipe file (recipes/NAME.toml): tutorial, best, fashion_resnet, resnet18")
            ->type_name("NAME")
            ->check(CLI::IsMember(recipe_names()))
            ->trigger_on_parse()
            // A recipe is a configuration file: handing its path to --config lets CLI11 read it
            // as one, in command-line order with the other files.
            ->each([this](const std::string& name) { config_option->add_result(recipe_path(name)); });
    add_config_options(*train, train_options.config);
    train->add_flag("--print-config", train_options.print_config,
                    "print the effective configuration as a TOML file (for --config) and exit");
    train
        ->add_option("--data", train_options.data,
                     "the Fashion-MNIST folder (default: $MINICNN_DATA, else /usr/share/datasets/fashion-mnist)")
        ->type_name("DIR");
    train->add_option("--out", train_options.out, "the output folder (default: runs/fashion_mnist)")
        ->type_name("DIR")
        ->check(not_empty);
    train->add_option("--resume", train_options.resume, "continue a run from its checkpoint.safetensors")
        ->type_name("FILE")
        ->check(not_empty);
    add_runtime_options(*train, train_options.threads, train_options.device);
    train
        ->add_option("--interrupt-after", train_options.interrupt_after,
                     "act as if Ctrl-C came after N training batches (a testing aid for --resume)")
        ->type_name("N")
        ->transform(decimal)
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
    CLI::Option* distributed =
        train->add_flag("--distributed", train_options.distributed,
                        "train with every process of the MPI job: start as `mpirun -np P fashion_mnist train "
                        "--distributed ...` (builds with -DMINICNN_WITH_MPI=ON; docs/distributed.md)");
    train
        ->add_option("--reduction", train_options.reduction,
                     "with --distributed, how gradients are summed: fixed_order (the same bits on any process count) "
                     "or mpi_sum (MPI_Allreduce; the last bits depend on the process count)")
        ->type_name("NAME")
        ->default_str("fixed_order")
        ->check(CLI::IsMember(reduction_names))
        ->needs(distributed);
    for (CLI::Option* option :
         {config_option, recipe_option, train->get_option("--print-config"), train->get_option("--data"),
          train->get_option("--out"), train->get_option("--resume"), train->get_option("--threads"),
          train->get_option("--device"), train->get_option("--interrupt-after"), distributed,
          train->get_option("--reduction")})
      option->configurable(false);  // where and how to run, not what to train: not part of a recipe
  }

  void add_eval() {
    eval = app.add_subcommand("eval", "evaluate trained weights on the test set");
    eval->footer(
        "FILE is a model.safetensors (PyTorch state_dict names; tools/pytorch_to_safetensors.py converts the "
        "tutorial's fashion_cnn.pth) or a training checkpoint.");
    eval->add_option("--model", eval_options.model, "the weights")->type_name("FILE")->required();
    eval->add_option("--data", eval_options.data, "the Fashion-MNIST folder")->type_name("DIR");
    eval->add_flag("--json", eval_options.json, "print one JSON object instead of tables");
    eval->add_option("--batch-size", eval_options.batch_size, "evaluation batch size")
        ->type_name("N")
        ->transform(decimal)
        ->default_str("1000")
        ->check(CLI::Range(1, 65536));
    eval->add_option("--limit-test", eval_options.limit_test, "evaluate on the first N test images")
        ->type_name("N")
        ->transform(decimal)
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
    add_runtime_options(*eval, eval_options.threads, eval_options.device);
  }

  void add_predict() {
    predict = app.add_subcommand("predict", "classify pictures (PNG, JPEG, PGM, BMP)");
    predict->footer(
        "Each IMAGE (any size) is made to look like a Fashion-MNIST image: grayscale; inverted when its border is "
        "light; unless it is already 28x28, cropped to the object, stretched to 0-255, scaled so its longest side is "
        "28 pixels and centred on black.");
    predict->add_option("--model", predict_options.model, "the weights")->type_name("FILE")->required();
    predict->add_option("--top", predict_options.top, "how many classes to print per picture")
        ->type_name("K")
        ->transform(decimal)
        ->default_str("3")
        ->check(CLI::Range(1, 10));
    add_runtime_options(*predict, predict_options.threads, predict_options.device);
    predict
        ->add_option("--repeat", predict_options.repeat,
                     "time N forward passes per picture (after one warm-up pass) for the latency line")
        ->type_name("N")
        ->transform(decimal)
        ->default_str("1")
        ->check(CLI::Range(1, 100000));
    predict->add_option("IMAGE", predict_options.images, "the pictures")->required();
  }

  void add_similar() {
    similar = app.add_subcommand("similar", "find the test images most like pictures (visual recommendation)");
    similar->footer(
        "Each IMAGE is prepared as for predict, embedded with the model's penultimate layer (the input of its last "
        "Linear layer), and compared with every test image by cosine similarity. The k most similar are printed and "
        "drawn in a PNG grid: one row per IMAGE, the picture first.");
    similar->add_option("--model", similar_options.model, "the weights")->type_name("FILE")->required();
    similar->add_option("--k", similar_options.k, "how many similar test images per picture")
        ->type_name("K")
        ->transform(decimal)
        ->default_str("8")
        ->check(CLI::Range(1, 64));
    similar->add_option("--data", similar_options.data, "the Fashion-MNIST folder")->type_name("DIR");
    similar->add_option("--out", similar_options.out, "the PNG grid to write")
        ->type_name("FILE.png")
        ->default_str("similar.png")
        ->check(not_empty);
    add_runtime_options(*similar, similar_options.threads, similar_options.device);
    similar
        ->add_option("--train-image", similar_options.train_images,
                     "also use training image N as a picture (repeatable): a garment the test set does not hold")
        ->type_name("N")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{59999}));
    similar->add_option("IMAGE", similar_options.images, "the pictures");
  }

  void add_export() {
    export_ = app.add_subcommand("export", "write trained weights as an ONNX model");
    export_->footer(
        "ONNX IR 8, opset 13; input \"input\" [N, 1, 28, 28], output \"logits\" [N, 10]. The default output is "
        "FILE with the extension .onnx.");
    export_->add_option("--model", export_options.model, "the weights")->type_name("FILE")->required();
    export_->add_option("--onnx,--out", export_options.out, "the ONNX file to write")->type_name("FILE.onnx");
  }

  static void add_runtime_options(CLI::App& command, int& threads, std::string& device) {
    command.add_option("--threads", threads, "CPU threads (default: all cores)")
        ->type_name("N")
        ->transform(decimal)
        ->check(CLI::Range(1, 1024));
    command.add_option("--device", device, "cpu, or cuda (refused with the reason when unusable)")
        ->type_name("NAME")
        ->default_str("cpu")
        ->check(CLI::IsMember(device_names));
  }

  // CLI11 reads configuration files for the top-level command only, so the train subcommand
  // reads its own with CLI11's reader, by CLI11's rule: a setting fills an option not yet given.
  void apply_config_file(const std::string& file) {
    for (const CLI::ConfigItem& item : train->get_config_formatter()->from_file(file)) {
      if (!item.parents.empty())
        throw CLI::ConfigError(file + ": unexpected section [" + item.parents.front() +
                               "]; the settings are top-level keys");
      CLI::Option* option = train->get_option_no_throw("--" + item.name);
      if (option == nullptr) throw CLI::ConfigError(file + ": unknown setting '" + item.name + "'");
      if (!option->get_configurable())
        throw CLI::ConfigError(file + ": '" + item.name + "' is not part of a configuration; give --" + item.name +
                               " on the command line");
      if (option->count() > 0) continue;
      try {
        option->add_result(item.inputs);
        option->run_callback();  // checks the value and stores it
      } catch (const CLI::ParseError& error) {
        throw CLI::ConfigError(file + ": " + error.what());
      }
    }
  }

  std::vector<std::string> config_files;
  CLI::Option* config_option = nullptr;
  CLI::Option* recipe_option = nullptr;
  std::string recipe_name;
};

}  // namespace fashion_mnist
