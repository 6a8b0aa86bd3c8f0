#pragma once
// Command-line parsing for the fashion_mnist program: one options struct per subcommand,
// strict value parsing (the whole text must be a number in range), and a UsageError for every
// mistake, which main() turns into one line on stderr and exit code 2.
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace fashion_mnist {

// A mistake on the command line. `command` names the subcommand for the "see --help" hint.
class UsageError : public std::runtime_error {
 public:
  UsageError(const std::string& message, std::string command = {})
      : std::runtime_error(message), command_(std::move(command)) {}
  const std::string& command() const { return command_; }

 private:
  std::string command_;
};

// The training configuration: everything that decides the trained weights. A checkpoint stores
// it, and --resume continues with the checkpoint's configuration.
struct TrainConfig {
  std::string recipe = "tutorial";
  std::int64_t epochs = 10;
  std::int64_t batch_size = 64;
  double lr = 1e-3;
  bool augment = true;
  std::uint64_t seed = 0;
  std::string optimizer = "adam";    // adam | adamw
  double weight_decay = 0.0;
  std::string schedule = "cosine";   // cosine (per epoch, the tutorial's) | onecycle | warmup-cosine | constant
  double warmup = 0.15;              // fraction of all steps spent warming up (onecycle, warmup-cosine)
  double label_smoothing = 0.0;
  std::int64_t test_batch_size = 1000;
  std::int64_t limit_train = 0;      // 0: every training image
  std::int64_t limit_test = 0;       // 0: every test image
};

// The "best" recipe: found by experiment for the same FashionCNN (docs/results.md). 12 epochs
// is what fits, with the evaluations, in the wall-clock time PyTorch needs for the tutorial's
// 10 epochs on the same machine.
inline void apply_best_recipe(TrainConfig& config) {
  config.recipe = "best";
  config.epochs = 12;
  config.lr = 4e-3;
  config.augment = false;
  config.optimizer = "adamw";
  config.weight_decay = 0.02;
  config.schedule = "onecycle";
  config.warmup = 0.15;
  config.label_smoothing = 0.1;
}

struct TrainOptions {
  TrainConfig config;
  std::set<std::string> explicit_config;  // config flags given on the command line
  std::string data;
  std::string out;  // empty: runs/fashion_mnist, or the checkpoint's folder with --resume
  std::string resume;
  int threads = 0;  // 0: OpenMP's default
  std::string device = "cpu";
  std::int64_t interrupt_after = 0;  // testing aid: act as if Ctrl-C came after this many batches
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
};

struct ExportOptions {
  std::string model, out;
};

namespace detail {

// The whole of `text` as a decimal Int, or nothing: no spaces, no '+', nothing after the digits,
// nothing out of Int's range.
template <typename Int>
std::optional<Int> whole_integer(const std::string& text) {
  Int value = 0;
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (text.empty() || result.ec != std::errc() || result.ptr != end) return std::nullopt;
  return value;
}

inline std::int64_t parse_integer(const std::string& flag, const std::string& text, std::int64_t low, std::int64_t high,
                                  const std::string& command) {
  const std::optional<std::int64_t> parsed = whole_integer<std::int64_t>(text);
  if (!parsed) throw UsageError(flag + ": expected an integer, got '" + text + "'", command);
  const std::int64_t value = *parsed;
  if (value < low || value > high)
    throw UsageError(flag + ": expected an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "], got " +
                         text, command);
  return value;
}

inline std::uint64_t parse_unsigned(const std::string& flag, const std::string& text, const std::string& command) {
  const std::optional<std::uint64_t> value = whole_integer<std::uint64_t>(text);
  if (!value) throw UsageError(flag + ": expected a non-negative integer below 2^64, got '" + text + "'", command);
  return *value;
}

inline std::string format_bound(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

// A finite number in [low, high] (or (low, high] when low_open).
inline double parse_number(const std::string& flag, const std::string& text, double low, double high, bool low_open,
                           const std::string& command) {
  char* end = nullptr;
  errno = 0;
  const double value = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value))
    throw UsageError(flag + ": expected a finite number, got '" + text + "'", command);
  if ((low_open ? !(value > low) : !(value >= low)) || !(value <= high))
    throw UsageError(flag + ": expected a number in " + std::string(low_open ? "(" : "[") + format_bound(low) + ", " +
                         format_bound(high) + "], got " + text, command);
  return value;
}

inline std::string parse_choice(const std::string& flag, const std::string& text, const std::vector<std::string>& choices,
                                const std::string& command) {
  std::string list;
  for (const std::string& choice : choices) {
    if (choice == text) return text;
    list += (list.empty() ? "" : ", ") + choice;
  }
  throw UsageError(flag + ": expected one of " + list + ", got '" + text + "'", command);
}

// Walks the arguments of one subcommand: flags from a table (with a value as the next argument
// or after '='), positional arguments when the command takes them.
class FlagReader {
 public:
  using Handler = std::function<void(const std::string& value)>;

  explicit FlagReader(std::string command) : command_(std::move(command)) {}

  void flag(const std::string& name, Handler handler) { flags_[name] = {true, std::move(handler)}; }
  void option(const std::string& name, std::function<void()> handler) {
    flags_[name] = {false, [handler = std::move(handler)](const std::string&) { handler(); }};
  }
  void positional(Handler handler) { positional_ = std::move(handler); }

  // Returns false when --help was asked for.
  bool run(const std::vector<std::string>& arguments) {
    std::set<std::string> seen;
    bool only_positional = false;
    for (std::size_t i = 0; i < arguments.size(); ++i) {
      const std::string& argument = arguments[i];
      if (!only_positional && argument == "--") {
        only_positional = true;
        continue;
      }
      if (!only_positional && (argument == "--help" || argument == "-h")) return false;
      if (only_positional || argument.size() < 2 || argument[0] != '-') {
        if (!positional_) throw UsageError("unexpected argument '" + argument + "'", command_);
        positional_(argument);
        continue;
      }
      const std::size_t equals = argument.find('=');
      const std::string name = argument.substr(0, equals);
      const auto found = flags_.find(name);
      if (found == flags_.end()) throw UsageError("unknown option '" + name + "'", command_);
      if (!seen.insert(name).second) throw UsageError(name + " is given twice", command_);
      if (!found->second.takes_value) {
        if (equals != std::string::npos) throw UsageError(name + " takes no value", command_);
        found->second.handler("");
        continue;
      }
      std::string value;
      if (equals != std::string::npos) {
        value = argument.substr(equals + 1);
      } else {
        if (i + 1 >= arguments.size()) throw UsageError(name + " needs a value", command_);
        value = arguments[++i];
      }
      found->second.handler(value);
    }
    return true;
  }

  const std::string& command() const { return command_; }

 private:
  struct Flag {
    bool takes_value;
    Handler handler;
  };
  std::string command_;
  std::map<std::string, Flag> flags_;
  Handler positional_;
};

inline int parse_threads(const std::string& text, const std::string& command) {
  return static_cast<int>(parse_integer("--threads", text, 1, 1024, command));
}

}  // namespace detail

// Returns nullopt when --help was asked for.
inline std::optional<TrainOptions> parse_train(const std::vector<std::string>& arguments) {
  using namespace detail;
  const std::string command = "train";
  TrainOptions options;
  // Config flags are applied after the recipe, whatever their order on the command line.
  std::map<std::string, std::function<void(TrainConfig&)>> overrides;
  FlagReader reader(command);
  auto config_flag = [&](const std::string& name, std::function<std::function<void(TrainConfig&)>(const std::string&)> parse) {
    reader.flag(name, [&, name, parse](const std::string& value) {
      overrides[name] = parse(value);
      options.explicit_config.insert(name);
    });
  };
  bool best = false;
  reader.flag("--recipe", [&](const std::string& value) {
    best = parse_choice("--recipe", value, {"tutorial", "best"}, command) == "best";
    options.explicit_config.insert("--recipe");
  });
  config_flag("--epochs", [&](const std::string& v) {
    const auto n = parse_integer("--epochs", v, 1, 100000, command);
    return [n](TrainConfig& c) { c.epochs = n; };
  });
  config_flag("--batch-size", [&](const std::string& v) {
    const auto n = parse_integer("--batch-size", v, 1, 65536, command);
    return [n](TrainConfig& c) { c.batch_size = n; };
  });
  config_flag("--test-batch-size", [&](const std::string& v) {
    const auto n = parse_integer("--test-batch-size", v, 1, 65536, command);
    return [n](TrainConfig& c) { c.test_batch_size = n; };
  });
  config_flag("--lr", [&](const std::string& v) {
    const double x = parse_number("--lr", v, 0.0, 1e300, true, command);
    return [x](TrainConfig& c) { c.lr = x; };
  });
  config_flag("--weight-decay", [&](const std::string& v) {
    const double x = parse_number("--weight-decay", v, 0.0, 1e6, false, command);
    return [x](TrainConfig& c) { c.weight_decay = x; };
  });
  config_flag("--label-smoothing", [&](const std::string& v) {
    const double x = parse_number("--label-smoothing", v, 0.0, 1.0, false, command);
    return [x](TrainConfig& c) { c.label_smoothing = x; };
  });
  config_flag("--warmup", [&](const std::string& v) {
    const double x = parse_number("--warmup", v, 0.0, 0.99, false, command);
    return [x](TrainConfig& c) { c.warmup = x; };
  });
  config_flag("--optimizer", [&](const std::string& v) {
    const std::string x = parse_choice("--optimizer", v, {"adam", "adamw"}, command);
    return [x](TrainConfig& c) { c.optimizer = x; };
  });
  config_flag("--schedule", [&](const std::string& v) {
    const std::string x = parse_choice("--schedule", v, {"cosine", "onecycle", "warmup-cosine", "constant"}, command);
    return [x](TrainConfig& c) { c.schedule = x; };
  });
  config_flag("--seed", [&](const std::string& v) {
    const std::uint64_t x = parse_unsigned("--seed", v, command);
    return [x](TrainConfig& c) { c.seed = x; };
  });
  config_flag("--limit-train", [&](const std::string& v) {
    const auto n = parse_integer("--limit-train", v, 1, std::int64_t{1} << 40, command);
    return [n](TrainConfig& c) { c.limit_train = n; };
  });
  config_flag("--limit-test", [&](const std::string& v) {
    const auto n = parse_integer("--limit-test", v, 1, std::int64_t{1} << 40, command);
    return [n](TrainConfig& c) { c.limit_test = n; };
  });
  reader.option("--no-augment", [&] {
    if (overrides.count("--augment")) throw UsageError("--augment and --no-augment contradict each other", command);
    overrides["--no-augment"] = [](TrainConfig& c) { c.augment = false; };
    options.explicit_config.insert("--no-augment");
  });
  reader.option("--augment", [&] {
    if (overrides.count("--no-augment")) throw UsageError("--augment and --no-augment contradict each other", command);
    overrides["--augment"] = [](TrainConfig& c) { c.augment = true; };
    options.explicit_config.insert("--augment");
  });
  reader.flag("--data", [&](const std::string& v) { options.data = v; });
  reader.flag("--out", [&](const std::string& v) {
    if (v.empty()) throw UsageError("--out: expected a folder name", command);
    options.out = v;
  });
  reader.flag("--resume", [&](const std::string& v) {
    if (v.empty()) throw UsageError("--resume: expected a checkpoint file", command);
    options.resume = v;
  });
  reader.flag("--threads", [&](const std::string& v) { options.threads = parse_threads(v, command); });
  reader.flag("--device", [&](const std::string& v) { options.device = parse_choice("--device", v, {"cpu", "cuda"}, command); });
  reader.flag("--interrupt-after", [&](const std::string& v) {
    options.interrupt_after = parse_integer("--interrupt-after", v, 1, std::int64_t{1} << 40, command);
  });
  if (!reader.run(arguments)) return std::nullopt;
  if (best) apply_best_recipe(options.config);
  for (const auto& entry : overrides) entry.second(options.config);
  return options;
}

inline std::optional<EvalOptions> parse_eval(const std::vector<std::string>& arguments) {
  using namespace detail;
  const std::string command = "eval";
  EvalOptions options;
  FlagReader reader(command);
  reader.flag("--model", [&](const std::string& v) { options.model = v; });
  reader.flag("--data", [&](const std::string& v) { options.data = v; });
  reader.option("--json", [&] { options.json = true; });
  reader.flag("--batch-size", [&](const std::string& v) { options.batch_size = parse_integer("--batch-size", v, 1, 65536, command); });
  reader.flag("--limit-test", [&](const std::string& v) {
    options.limit_test = parse_integer("--limit-test", v, 1, std::int64_t{1} << 40, command);
  });
  reader.flag("--threads", [&](const std::string& v) { options.threads = parse_threads(v, command); });
  reader.flag("--device", [&](const std::string& v) { options.device = parse_choice("--device", v, {"cpu", "cuda"}, command); });
  if (!reader.run(arguments)) return std::nullopt;
  if (options.model.empty()) throw UsageError("--model FILE is required", command);
  return options;
}

inline std::optional<PredictOptions> parse_predict(const std::vector<std::string>& arguments) {
  using namespace detail;
  const std::string command = "predict";
  PredictOptions options;
  FlagReader reader(command);
  reader.flag("--model", [&](const std::string& v) { options.model = v; });
  reader.flag("--top", [&](const std::string& v) { options.top = static_cast<int>(parse_integer("--top", v, 1, 10, command)); });
  reader.flag("--threads", [&](const std::string& v) { options.threads = parse_threads(v, command); });
  reader.flag("--device", [&](const std::string& v) { options.device = parse_choice("--device", v, {"cpu", "cuda"}, command); });
  reader.positional([&](const std::string& v) { options.images.push_back(v); });
  if (!reader.run(arguments)) return std::nullopt;
  if (options.model.empty()) throw UsageError("--model FILE is required", command);
  if (options.images.empty()) throw UsageError("expected at least one image file", command);
  return options;
}

inline std::optional<ExportOptions> parse_export(const std::vector<std::string>& arguments) {
  using namespace detail;
  const std::string command = "export";
  ExportOptions options;
  FlagReader reader(command);
  reader.flag("--model", [&](const std::string& v) { options.model = v; });
  reader.flag("--onnx", [&](const std::string& v) { options.out = v; });
  reader.flag("--out", [&](const std::string& v) { options.out = v; });  // the same, as in the other commands
  if (!reader.run(arguments)) return std::nullopt;
  if (options.model.empty()) throw UsageError("--model FILE is required", command);
  if (options.out.empty()) {
    // model.safetensors -> model.onnx, beside it.
    const std::size_t dot = options.model.find_last_of('.');
    const std::size_t slash = options.model.find_last_of('/');
    options.out = (dot != std::string::npos && (slash == std::string::npos || dot > slash) ? options.model.substr(0, dot)
                                                                                             : options.model) + ".onnx";
  }
  return options;
}

}  // namespace fashion_mnist
