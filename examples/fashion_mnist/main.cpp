// fashion_mnist: the Fashion-MNIST tutorial as one program.
//
//   fashion_mnist train    [options]             train FashionCNN, write model, checkpoint, metrics, figures
//   fashion_mnist eval     --model FILE [...]    test accuracy, per-class table, confusion matrix
//   fashion_mnist predict  --model FILE IMAGE... top-3 classes of pictures (PNG, JPEG, PGM, BMP)
//   fashion_mnist export   --model FILE [...]    ONNX
//
// Exit codes: 0 success; 2 bad input (a one-line "error: ..." on stderr); 1 training diverged;
// 130 training interrupted by Ctrl-C (a checkpoint was saved). Every flag: docs/demo.md.
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "commands.hpp"
#include "options.hpp"
#include "training.hpp"

namespace {

constexpr int exit_bad_input = 2;

const char* const general_usage =
    "usage: fashion_mnist <command> [options]\n"
    "\n"
    "commands:\n"
    "  train     train the tutorial's FashionCNN on Fashion-MNIST\n"
    "  eval      evaluate trained weights on the test set\n"
    "  predict   classify pictures (PNG, JPEG, PGM, BMP)\n"
    "  export    write trained weights as an ONNX model\n"
    "\n"
    "'fashion_mnist <command> --help' lists a command's options; docs/demo.md has them all.\n";

const char* const train_usage =
    "usage: fashion_mnist train [options]\n"
    "\n"
    "The defaults are the tutorial's recipe: Adam lr 1e-3, CosineAnnealingLR(T_max = epochs) stepped\n"
    "per epoch, batch 64, RandomRotation(10) + RandomHorizontalFlip, Normalize(0.5, 0.5), 10 epochs.\n"
    "\n"
    "  --recipe tutorial|best   a named preset; 'best': AdamW lr 4e-3, weight decay 0.02, one-cycle\n"
    "                           schedule with 15% warm-up, label smoothing 0.1, no augmentation,\n"
    "                           12 epochs. Flags below override the preset's values.\n"
    "  --epochs N               epochs to train (10)\n"
    "  --batch-size N           training batch size (64)\n"
    "  --lr X                   (peak) learning rate (1e-3)\n"
    "  --optimizer adam|adamw   (adam)\n"
    "  --weight-decay X         L2 for adam, decoupled for adamw (0)\n"
    "  --schedule S             cosine (per epoch) | onecycle | warmup-cosine | constant (cosine)\n"
    "  --warmup F               warm-up fraction of all steps for onecycle / warmup-cosine (0.15)\n"
    "  --label-smoothing X      cross-entropy label smoothing (0)\n"
    "  --no-augment, --augment  switch the random rotation and flip off / on (on)\n"
    "  --seed N                 weights, shuffling, augmentation and dropout all follow it (0)\n"
    "  --test-batch-size N      evaluation batch size (1000)\n"
    "  --limit-train N          train on the first N training images only\n"
    "  --limit-test N           evaluate on the first N test images only\n"
    "  --data DIR               Fashion-MNIST folder (MINICNN_DATA, else /usr/share/datasets/fashion-mnist)\n"
    "  --out DIR                output folder (runs/fashion_mnist)\n"
    "  --resume FILE            continue a run from its checkpoint.safetensors\n"
    "  --threads N              CPU threads (all cores)\n"
    "  --device cpu|cuda        (cpu)\n"
    "  --interrupt-after N      act as if Ctrl-C came after N batches (for testing resume)\n";

const char* const eval_usage =
    "usage: fashion_mnist eval --model FILE [--data DIR] [--json] [--batch-size N] [--limit-test N]\n"
    "                          [--threads N] [--device cpu|cuda]\n"
    "\n"
    "FILE is a model.safetensors (PyTorch state_dict names; tools/pytorch_to_safetensors.py converts\n"
    "the tutorial's fashion_cnn.pth) or a training checkpoint. --json prints machine-readable output.\n";

const char* const predict_usage =
    "usage: fashion_mnist predict --model FILE [--top K] [--threads N] IMAGE...\n"
    "\n"
    "Each IMAGE (PNG, JPEG, PGM/PPM or BMP, any size) is made to look like a Fashion-MNIST image:\n"
    "grayscale; inverted when its border is light (a product photographed on white); unless it is\n"
    "already 28x28, cropped to the object, stretched to the full 0-255 range, scaled so its longest\n"
    "side is 28 pixels and centred on black. Prints the top K (3) classes with probabilities.\n";

const char* const export_usage =
    "usage: fashion_mnist export --model FILE [--onnx FILE.onnx]\n"
    "\n"
    "Writes the model as ONNX (IR 8, opset 13; input \"input\" [N, 1, 28, 28], output \"logits\"\n"
    "[N, 10]). The default output is FILE with the extension .onnx.\n";

// Library messages may span lines (a list of paths tried); the program's contract is one line.
std::string one_line(const std::string& message) {
  std::string out;
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] != '\n') {
      out += message[i];
      continue;
    }
    while (i + 1 < message.size() && (message[i + 1] == ' ' || message[i + 1] == '\n')) ++i;
    out += out.empty() || out.back() == ':' ? " " : "; ";
  }
  return out;
}

int fail(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "error: %s\n", one_line(message).c_str());
  return exit_bad_input;
}

int run(int argc, char** argv) {
  if (argc < 2)
    throw fashion_mnist::UsageError("no command given; expected train, eval, predict or export (see 'fashion_mnist --help')");
  const std::string command = argv[1];
  const std::vector<std::string> arguments(argv + 2, argv + argc);
  std::string command_line = "fashion_mnist";
  for (int i = 1; i < argc; ++i) command_line += std::string(" ") + argv[i];

  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(general_usage, stdout);
    return 0;
  }
  if (command == "--version") {
    std::printf("fashion_mnist (%s)\n", minicnn::build_info().c_str());
    return 0;
  }
  if (command == "train") {
    const auto options = fashion_mnist::parse_train(arguments);
    if (!options) return std::fputs(train_usage, stdout), 0;
    return fashion_mnist::Trainer(*options, command_line).run();
  }
  if (command == "eval") {
    const auto options = fashion_mnist::parse_eval(arguments);
    if (!options) return std::fputs(eval_usage, stdout), 0;
    return fashion_mnist::run_eval(*options);
  }
  if (command == "predict") {
    const auto options = fashion_mnist::parse_predict(arguments);
    if (!options) return std::fputs(predict_usage, stdout), 0;
    return fashion_mnist::run_predict(*options);
  }
  if (command == "export") {
    const auto options = fashion_mnist::parse_export(arguments);
    if (!options) return std::fputs(export_usage, stdout), 0;
    return fashion_mnist::run_export(*options);
  }
  throw fashion_mnist::UsageError("unknown command '" + command + "'; expected train, eval, predict or export "
                                  "(see 'fashion_mnist --help')");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const fashion_mnist::UsageError& e) {
    const std::string hint = e.command().empty() ? "" : " (see 'fashion_mnist " + e.command() + " --help')";
    return fail(e.what() + hint);
  } catch (const std::bad_alloc&) {
    return fail("out of memory");
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
