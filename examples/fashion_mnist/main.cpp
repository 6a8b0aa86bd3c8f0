// fashion_mnist: the Fashion-MNIST tutorial as one program.
//
//   fashion_mnist train    [options]             train a model (--model NAME), write model, checkpoint,
//                                                metrics, figures
//   fashion_mnist eval     --model FILE [...]    test accuracy, per-class table, confusion matrix
//   fashion_mnist predict  --model FILE IMAGE... top-3 classes of pictures (PNG, JPEG, PGM, BMP), latency
//   fashion_mnist similar  --model FILE IMAGE... the most similar test images, as text and a PNG grid
//   fashion_mnist export   --model FILE [...]    ONNX
//
// Exit codes: 0 success; 2 bad input (a one-line "error: ..." on stderr); 1 training diverged;
// 130 training interrupted by Ctrl-C (a checkpoint was saved). Every flag: docs/demo.md.
// `mpirun -np P fashion_mnist train --distributed ...` trains with P processes (processes.hpp,
// docs/distributed.md); an error on one of them ends the whole job (non-zero exit).
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "commands.hpp"
#include "options.hpp"
#include "processes.hpp"
#include "training.hpp"

namespace {

constexpr int exit_bad_input = 2;

// Library and CLI11 messages may span lines (a list of paths tried); the program's contract is
// one line.
std::string one_line(const std::string& message) {
  std::string out;
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] != '\n') {
      out += message[i];
      continue;
    }
    while (i + 1 < message.size() && (message[i + 1] == ' ' || message[i + 1] == '\n')) ++i;
    if (i + 1 < message.size()) out += out.empty() || out.back() == ':' ? " " : "; ";
  }
  return out;
}

int fail(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "error: %s\n", one_line(message).c_str());
  return exit_bad_input;
}

// A command-line mistake in the words of CLI11, with a pointer to the right --help. Only a
// missing or unknown command gets its own words: CLI11 would call it "a subcommand" or "an
// argument not expected".
int usage_error(const fashion_mnist::CommandLine& command_line, const CLI::ParseError& error, int argc, char** argv) {
  const auto commands = command_line.app.get_subcommands();
  if (commands.empty()) {
    const std::string expected = "expected train, eval, predict, similar or export (see 'fashion_mnist --help')";
    return fail(argc < 2 ? "no command given; " + expected
                         : "unknown command '" + std::string(argv[1]) + "'; " + expected);
  }
  return fail(std::string(error.what()) + " (see 'fashion_mnist " + commands.back()->get_name() + " --help')");
}

int run(const fashion_mnist::CommandLine& command_line, const std::string& text, int& argc, char**& argv) {
  if (command_line.train->parsed())
    return fashion_mnist::with_processes(argc, argv, command_line.train_options, [&](fashion_mnist::Processes& processes) {
      return fashion_mnist::Trainer(command_line.train_options, text, processes).run();
    });
  if (command_line.eval->parsed()) return fashion_mnist::run_eval(command_line.eval_options);
  if (command_line.predict->parsed()) return fashion_mnist::run_predict(command_line.predict_options);
  if (command_line.similar->parsed()) return fashion_mnist::run_similar(command_line.similar_options);
  return fashion_mnist::run_export(command_line.export_options);
}

}  // namespace

int main(int argc, char** argv) {
  fashion_mnist::CommandLine command_line;
  try {
    command_line.app.parse(argc, argv);
    command_line.check();
  } catch (const CLI::CallForHelp& help) {
    return command_line.app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return command_line.app.exit(help);
  } catch (const CLI::CallForVersion& version) {
    return command_line.app.exit(version);
  } catch (const CLI::ParseError& error) {
    return usage_error(command_line, error, argc, argv);
  }
  std::string text = "fashion_mnist";
  for (int i = 1; i < argc; ++i) text += std::string(" ") + argv[i];
  try {
    return run(command_line, text, argc, argv);
  } catch (const std::bad_alloc&) {
    return fail("out of memory");
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
