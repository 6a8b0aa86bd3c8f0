// The fashion_mnist program, driven as a user would: a smoke training run whose every output is
// opened and checked, resume equivalence (bit-identical weights), eval / predict / export on the
// result, Ctrl-C, divergence, and every class of bad input (exit code 2, one line on stderr).
//
// The program's path comes from examples/CMakeLists.txt (MINICNN_DEMO_BINARY); without the
// examples these tests are not compiled. They need Fashion-MNIST (Debian's dataset-fashion-mnist
// or MINICNN_DATA) and skip themselves without it.
#if defined(MINICNN_DEMO_BINARY)
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "minicnn/data/fashion_mnist.hpp"
#include "minicnn/io/image.hpp"
#include "minicnn/viz/canvas.hpp"
#include "minicnn/io/safetensors.hpp"
#include "minicnn/models/fashion_cnn.hpp"
#include "minicnn/models/fashion_cnn_se.hpp"
#include "minicnn/ops/dispatch.hpp"

namespace {

namespace fs = std::filesystem;

// A scratch folder for one test, removed afterwards.
class Scratch {
 public:
  Scratch() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("minicnn_demo_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~Scratch() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

// Runs the program with `arguments` (shell syntax), stdout and stderr captured to files.
Result run(const std::string& arguments, const Scratch& scratch, const std::string& prefix = "") {
  const std::string out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  const std::string command = prefix + "'" MINICNN_DEMO_BINARY "' " + arguments + " > '" + out + "' 2> '" + err + "'";
  const int status = std::system(command.c_str());
  Result result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

bool have_data() {
  try {
    minicnn::data::load_fashion_mnist(minicnn::data::Split::test);
    return true;
  } catch (const minicnn::error&) {
    return false;
  }
}

std::uint32_t big_endian_u32(const std::string& bytes, std::size_t offset) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(bytes[offset + i]);
  return v;
}

// Checks a PNG's signature and IHDR, decodes it, and returns its size.
void check_png(const std::string& path, int min_width, int min_height) {
  INFO(path);
  const std::string bytes = read_file(path);
  REQUIRE(bytes.size() > 33);
  CHECK(bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(bytes.compare(12, 4, "IHDR") == 0);
  const std::uint32_t width = big_endian_u32(bytes, 16), height = big_endian_u32(bytes, 20);
  CHECK(width >= static_cast<std::uint32_t>(min_width));
  CHECK(height >= static_cast<std::uint32_t>(min_height));
  const minicnn::io::GrayImage decoded = minicnn::io::read_image_gray(path);
  CHECK(decoded.width == static_cast<int>(width));
  CHECK(decoded.height == static_cast<int>(height));
}

// The tutorial's state_dict: names and shapes.
const std::vector<std::pair<std::string, std::vector<std::int64_t>>>& expected_state_dict() {
  static const std::vector<std::pair<std::string, std::vector<std::int64_t>>> names = {
      {"feature_extractor.0.weight", {32, 1, 3, 3}}, {"feature_extractor.0.bias", {32}},
      {"feature_extractor.2.weight", {32, 32, 3, 3}}, {"feature_extractor.2.bias", {32}},
      {"feature_extractor.5.weight", {64, 32, 3, 3}}, {"feature_extractor.5.bias", {64}},
      {"feature_extractor.7.weight", {64, 64, 3, 3}}, {"feature_extractor.7.bias", {64}},
      {"classifier.2.weight", {128, 64}},             {"classifier.2.bias", {128}},
      {"classifier.5.weight", {10, 128}},             {"classifier.5.bias", {10}}};
  return names;
}

// Every error must be exactly one line on stderr, starting "error: ", and exit code 2.
void check_bad_input(const Result& result, const std::string& expected_fragment) {
  INFO("stderr: " << result.err);
  CHECK(result.exit_code == 2);
  CHECK(result.err.rfind("error: ", 0) == 0);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK(result.err.find(expected_fragment) != std::string::npos);
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

const char* const small_run = "--limit-train 128 --limit-test 100 --epochs 2 --batch-size 32 --test-batch-size 100 --threads 2";

}  // namespace

TEST_CASE("fashion_mnist train: a smoke run writes every output, and eval / predict / export use it", "[demo]") {
  if (!have_data()) {
    WARN("Fashion-MNIST not found: skipping the demo smoke test");
    return;
  }
  Scratch scratch;
  const std::string out = scratch / "run";
  const Result trained = run("train --limit-train 2000 --limit-test 500 --test-batch-size 250 --epochs 1 --threads 2 --out '" + out + "'", scratch);
  INFO("stdout: " << trained.out << "\nstderr: " << trained.err);
  REQUIRE(trained.exit_code == 0);
  CHECK(trained.err.empty());
  // The build configuration first, the data found, one line per epoch, plain progress lines
  // (stdout is a file here, not a terminal).
  CHECK(trained.out.rfind("minicnn ", 0) == 0);
  CHECK(trained.out.find("SIMD") != std::string::npos);
  CHECK(trained.out.find("data: 2000 training images") != std::string::npos);
  CHECK(trained.out.find("epoch  1/1  train loss") != std::string::npos);
  CHECK(trained.out.find("  epoch 1/1: 16/32 batches") != std::string::npos);
  CHECK(trained.out.find('\r') == std::string::npos);

  // model.safetensors: the tutorial's state_dict names and shapes, F32, nothing else.
  const std::string model_path = out + "/model.safetensors";
  const minicnn::io::SafetensorsFile model = minicnn::io::SafetensorsFile::read(model_path);
  REQUIRE(model.tensors().size() == expected_state_dict().size());
  std::uint64_t bytes = 0;
  for (const auto& [name, shape] : expected_state_dict()) {
    INFO(name);
    REQUIRE(model.contains(name));
    CHECK(model.info(name).dtype == minicnn::io::Dtype::f32);
    CHECK(model.info(name).shape == shape);
    bytes += model.info(name).byte_size();
  }
  CHECK(bytes == 74602 * 4);
  const std::string model_bytes = read_file(model_path);
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = header_length << 8 | static_cast<unsigned char>(model_bytes[static_cast<std::size_t>(i)]);
  CHECK(model_bytes.size() == 8 + header_length + bytes);

  // The checkpoint holds the weights and Adam's moments.
  const minicnn::io::SafetensorsFile checkpoint = minicnn::io::SafetensorsFile::read(out + "/checkpoint.safetensors");
  CHECK(checkpoint.tensors().size() == 3 * expected_state_dict().size());
  CHECK(checkpoint.metadata().at("minicnn.checkpoint") == "fashion_mnist/2");
  CHECK(checkpoint.metadata().at("minicnn.model") == "fashion_cnn");
  CHECK(model.metadata().at("minicnn.model") == "fashion_cnn");
  CHECK(checkpoint.contains("optimizer.exp_avg_sq.classifier.5.weight"));

  // metrics.json
  const nlohmann::json metrics = read_json(out + "/metrics.json");
  CHECK(metrics.at("status").get<std::string>() == "completed");
  CHECK(metrics.at("seed").get<std::string>() == "0");
  CHECK(metrics.at("command").get<std::string>().find("train --limit-train 2000") != std::string::npos);
  const auto& history = metrics.at("history");
  REQUIRE(history.size() == 1);
  for (const char* field : {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr", "seconds"})
    CHECK(history[0].at(field).is_number());
  const double accuracy = metrics.at("final_test_accuracy").get<double>();
  CHECK(accuracy > 0.1);  // better than chance after 2,000 images
  const auto& evaluation = metrics.at("evaluation");
  const auto& matrix = evaluation.at("confusion_matrix");
  REQUIRE(matrix.size() == 10);
  std::int64_t total = 0, diagonal = 0;
  for (std::size_t t = 0; t < 10; ++t) {
    const auto& row = matrix[t];
    REQUIRE(row.size() == 10);
    for (std::size_t p = 0; p < 10; ++p) {
      total += row[p].get<std::int64_t>();
      if (p == t) diagonal += row[p].get<std::int64_t>();
    }
  }
  CHECK(total == 500);
  CHECK(static_cast<double>(diagonal) / 500 == Approx(accuracy));
  const auto& per_class = evaluation.at("per_class");
  REQUIRE(per_class.size() == 10);
  CHECK(per_class[0].at("class").get<std::string>() == "T-shirt/top");
  for (const char* field : {"precision", "recall", "f1", "support"}) CHECK(per_class[9].at(field).is_number());

  // The figures.
  check_png(out + "/confusion_matrix.png", 500, 500);
  check_png(out + "/training_curves.png", 800, 300);
  check_png(out + "/misclassified.png", 400, 100);

  // eval on the same test images agrees with training's last evaluation.
  const Result evaluated = run("eval --model '" + model_path + "' --limit-test 500 --json --threads 2", scratch);
  REQUIRE(evaluated.exit_code == 0);
  const auto eval_json = nlohmann::json::parse(evaluated.out);
  CHECK(eval_json.at("test_accuracy").get<double>() == accuracy);
  // ... from the checkpoint too.
  const Result from_checkpoint = run("eval --model '" + out + "/checkpoint.safetensors' --limit-test 500 --threads 2", scratch);
  CHECK(from_checkpoint.exit_code == 0);
  CHECK(from_checkpoint.out.find("per") == std::string::npos);  // the table, not JSON
  CHECK(from_checkpoint.out.find("confusion matrix") != std::string::npos);

  // predict: a test image saved as PNG, and a "photo" (dark object on white, any size).
  const minicnn::data::ImageDataset test = minicnn::data::load_fashion_mnist(minicnn::data::Split::test);
  minicnn::viz::RgbImage digit_like(28, 28);
  digit_like.draw_gray(0, 0, test.images.data(), 28, 28);
  minicnn::viz::write_png(scratch / "test0.png", digit_like);
  minicnn::viz::RgbImage photo(300, 200, minicnn::viz::colors::white);
  photo.fill_rect(60, 40, 180, 120, minicnn::viz::Color{40, 40, 40});
  minicnn::viz::write_png(scratch / "photo.png", photo);
  const Result predicted = run("predict --model '" + model_path + "' '" + (scratch / "test0.png") + "' '" + (scratch / "photo.png") + "'", scratch);
  INFO("predict: " << predicted.out << predicted.err);
  REQUIRE(predicted.exit_code == 0);
  CHECK(predicted.out.find("test0.png (28x28)") != std::string::npos);
  CHECK(predicted.out.find("photo.png (300x200, light background inverted, cropped and scaled to 28x28)") != std::string::npos);
  CHECK(std::count(predicted.out.begin(), predicted.out.end(), '%') == 6);  // top 3 for each
  CHECK(predicted.out.find("latency: ") != std::string::npos);
  CHECK(predicted.out.find("ms per image (median of 2 forward passes, batch 1, fashion_cnn") != std::string::npos);

  // similar: the test image itself is the most similar test image (cosine 1).
  const Result similar = run("similar --model '" + model_path + "' --k 3 --out '" + (scratch / "similar.png") + "' '" +
                                 (scratch / "test0.png") + "' '" + (scratch / "photo.png") + "'",
                             scratch);
  INFO("similar: " << similar.out << similar.err);
  REQUIRE(similar.exit_code == 0);
  CHECK(similar.out.find("   1. test image     0  Ankle boot  cosine 1.0000") != std::string::npos);
  CHECK(std::count(similar.out.begin(), similar.out.end(), '\n') == 2 * 4 + 1);
  check_png(scratch / "similar.png", 4 * 4 * 28, 2 * 4 * 28);
  // A training image as the picture; no picture at all is a usage error.
  const Result from_train = run("similar --model '" + model_path + "' --k 2 --train-image 3 --out '" +
                                    (scratch / "similar_train.png") + "'",
                                scratch);
  INFO("similar --train-image: " << from_train.out << from_train.err);
  CHECK(from_train.exit_code == 0);
  CHECK(from_train.out.find("train image 3 (training image, Dress):") != std::string::npos);
  check_bad_input(run("similar --model '" + model_path + "'", scratch), "expected at least one IMAGE or --train-image N");

  // export writes an ONNX protobuf holding every weight.
  const Result exported = run("export --model '" + model_path + "' --out '" + (scratch / "model.onnx") + "'", scratch);
  REQUIRE(exported.exit_code == 0);
  const std::string onnx = read_file(scratch / "model.onnx");
  CHECK(onnx.size() > 74602 * 4);
  CHECK(onnx.find("feature_extractor.0.weight") != std::string::npos);
}

TEST_CASE("fashion_mnist --model: every model trains, resumes bit-identically, and eval / predict / similar / export find it from the file", "[demo]") {
  if (!have_data()) {
    WARN("Fashion-MNIST not found: skipping");
    return;
  }
  // A few steps each: 64 images, batches of 32, with the augmentations such models use, weight
  // decay kept off BatchNorm and biases, and the BatchNorm buffers in every file.
  const std::string tiny =
      "--limit-train 64 --limit-test 50 --epochs 2 --batch-size 32 --test-batch-size 50 --threads 2 "
      "--optimizer adamw --weight-decay 0.05 --no-decay-norm-and-bias --schedule onecycle --warmup 0.5 --lr 0.002 "
      "--rotation 0 --crop-padding 2 --erasing 0.5";
  for (const char* name : {"fashion_cnn_se", "fashion_resnet", "resnet18"}) {
    DYNAMIC_SECTION(name) {
      Scratch scratch;
      const std::string out = scratch / "run";
      const Result trained = run(std::string("train --model ") + name + " " + tiny + " --out '" + out + "'", scratch);
      INFO(trained.out << trained.err);
      REQUIRE(trained.exit_code == 0);
      CHECK(trained.out.find(std::string("model: ") + name + ", ") != std::string::npos);
      CHECK(trained.out.find("RandomCrop(size=(28, 28), padding=2") != std::string::npos);
      CHECK(trained.out.find("RandomErasing(p=0.5") != std::string::npos);
      CHECK(trained.out.find("weight decay 0.05 (weights only)") != std::string::npos);
      const minicnn::io::SafetensorsFile model = minicnn::io::SafetensorsFile::read(out + "/model.safetensors");
      CHECK(model.metadata().at("minicnn.model") == name);
      if (std::string(name) != "fashion_cnn_se") {
        CHECK(model.contains("bn1.running_var"));
        CHECK(model.contains("layer3.0.bn2.num_batches_tracked"));
      }

      // Interrupted in epoch 2 and resumed: the same weights and buffers as the straight run.
      const std::string stopped = scratch / "stopped";
      CHECK(run(std::string("train --model ") + name + " " + tiny + " --out '" + stopped + "' --interrupt-after 3",
                scratch)
                .exit_code == 130);
      const Result resumed = run("train --threads 2 --resume '" + stopped + "/checkpoint.safetensors'", scratch);
      INFO(resumed.out << resumed.err);
      REQUIRE(resumed.exit_code == 0);
      CHECK(read_file(stopped + "/model.safetensors") == read_file(out + "/model.safetensors"));

      // No --model NAME needed: the file says what it holds.
      const Result evaluated = run("eval --model '" + out + "/model.safetensors' --limit-test 50 --json --threads 2", scratch);
      REQUIRE(evaluated.exit_code == 0);
      CHECK(nlohmann::json::parse(evaluated.out).at("test_accuracy").get<double>() ==
            read_json(out + "/metrics.json").at("final_test_accuracy").get<double>());
      const minicnn::data::ImageDataset test = minicnn::data::load_fashion_mnist(minicnn::data::Split::test);
      minicnn::viz::RgbImage picture(28, 28);
      picture.draw_gray(0, 0, test.images.data() + 28 * 28, 28, 28);
      minicnn::viz::write_png(scratch / "test1.png", picture);
      const Result predicted = run("predict --model '" + out + "/checkpoint.safetensors' '" + (scratch / "test1.png") + "'", scratch);
      CHECK(predicted.exit_code == 0);
      CHECK(predicted.out.find(std::string("batch 1, ") + name) != std::string::npos);
      const Result similar = run("similar --model '" + out + "/model.safetensors' --k 2 --out '" +
                                     (scratch / "similar.png") + "' '" + (scratch / "test1.png") + "'",
                                 scratch);
      INFO(similar.out << similar.err);
      CHECK(similar.exit_code == 0);
      // A few steps of training leave embeddings that are alike; the image itself is among the first.
      CHECK(similar.out.find("test image     1  Pullover    cosine 1.0000") != std::string::npos);
      const Result exported = run("export --model '" + out + "/model.safetensors' --out '" + (scratch / "m.onnx") + "'", scratch);
      CHECK(exported.exit_code == 0);
      CHECK(read_file(scratch / "m.onnx").size() > 70000 * 4);
    }
  }
}

TEST_CASE("fashion_mnist: a weights file without the model's name is recognised by its tensor names", "[demo]") {
  Scratch scratch;
  // A FashionCNNSE state_dict with no metadata, as tools/ converters from PyTorch write it.
  minicnn::models::FashionCNNSE<float> network(3);
  minicnn::io::save_safetensors(network, scratch / "plain.safetensors");
  const Result exported = run("export --model '" + (scratch / "plain.safetensors") + "' --out '" + (scratch / "m.onnx") + "'", scratch);
  INFO(exported.out << exported.err);
  CHECK(exported.exit_code == 0);
  CHECK(read_file(scratch / "m.onnx").find("feature_extractor.5.fc1.weight") != std::string::npos);
  // Names of no known model: one line that says so.
  minicnn::io::save_tensors(minicnn::io::TensorMap<float>{{"w", minicnn::Tensor<float>({2})}}, scratch / "odd.safetensors");
  check_bad_input(run("export --model '" + (scratch / "odd.safetensors") + "'", scratch),
                  "odd.safetensors: no \"minicnn.model\" metadata, and its 1 tensor names are those of none of the models");
}

TEST_CASE("fashion_mnist train --resume ends bit-identical to an uninterrupted run", "[demo]") {
  if (!have_data()) {
    WARN("Fashion-MNIST not found: skipping");
    return;
  }
  Scratch scratch;
  const std::string straight = scratch / "straight";
  REQUIRE(run(std::string("train ") + small_run + " --out '" + straight + "'", scratch).exit_code == 0);
  const std::string reference = read_file(straight + "/model.safetensors");
  REQUIRE(!reference.empty());

  // 4 batches per epoch: stop inside epoch 1, exactly at its end, and inside epoch 2.
  for (const char* stop : {"3", "4", "6"}) {
    INFO("interrupted after " << stop << " batches");
    const std::string out = scratch / (std::string("stopped_") + stop);
    const Result first = run(std::string("train ") + small_run + " --out '" + out + "' --interrupt-after " + stop, scratch);
    CHECK(first.exit_code == 130);
    CHECK(first.out.find("interrupted: checkpoint saved") != std::string::npos);
    CHECK(read_json(out + "/metrics.json").at("status").get<std::string>() == "interrupted");
    const Result resumed = run("train --threads 2 --resume '" + out + "/checkpoint.safetensors'", scratch);
    INFO(resumed.out << resumed.err);
    REQUIRE(resumed.exit_code == 0);
    CHECK(resumed.out.find("resumed from") != std::string::npos);
    CHECK(read_file(out + "/model.safetensors") == reference);
    // The history matches too (times aside).
    const auto a = read_json(straight + "/metrics.json").at("history");
    const auto b = read_json(out + "/metrics.json").at("history");
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      for (const char* field : {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr"})
        CHECK(a[i].at(field).get<double>() == b[i].at(field).get<double>());
  }
}

TEST_CASE("fashion_mnist train --micro-batch: the whole batch as one micro-batch is the plain loop's bits; micro-batched runs resume bit-identically", "[demo]") {
  if (!have_data()) {
    WARN("Fashion-MNIST not found: skipping");
    return;
  }
  Scratch scratch;
  // The plain loop, and the micro-batch machinery (GradientAccumulator, RandomStreams, the
  // sampler's positions) with one micro-batch of the whole batch of 32: the same bits.
  const std::string plain = scratch / "plain", whole = scratch / "whole";
  REQUIRE(run(std::string("train ") + small_run + " --out '" + plain + "'", scratch).exit_code == 0);
  const Result one_micro_batch = run(std::string("train ") + small_run + " --micro-batch 32 --out '" + whole + "'", scratch);
  INFO(one_micro_batch.out << one_micro_batch.err);
  REQUIRE(one_micro_batch.exit_code == 0);
  CHECK(one_micro_batch.out.find("batch 32 in micro-batches of 32, ") != std::string::npos);
  const std::string reference = read_file(plain + "/model.safetensors");
  REQUIRE(!reference.empty());
  CHECK(read_file(whole + "/model.safetensors") == reference);
  const auto a = read_json(plain + "/metrics.json").at("history"), b = read_json(whole + "/metrics.json").at("history");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    for (const char* field : {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr"})
      CHECK(a[i].at(field).get<double>() == b[i].at(field).get<double>());

  // Micro-batches of 8 (4 per step): other weights, and an interrupted run resumes to them.
  const std::string straight = scratch / "straight", stopped = scratch / "stopped";
  const std::string micro = std::string("train ") + small_run + " --micro-batch 8";
  REQUIRE(run(micro + " --out '" + straight + "'", scratch).exit_code == 0);
  const std::string micro_batched = read_file(straight + "/model.safetensors");
  CHECK(micro_batched != reference);
  CHECK(read_json(straight + "/metrics.json").at("config").at("micro_batch").get<std::int64_t>() == 8);
  CHECK(run(micro + " --out '" + stopped + "' --interrupt-after 3", scratch).exit_code == 130);
  const Result resumed = run("train --threads 2 --resume '" + stopped + "/checkpoint.safetensors'", scratch);
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK(resumed.out.find("in micro-batches of 8") != std::string::npos);
  CHECK(read_file(stopped + "/model.safetensors") == micro_batched);
}

TEST_CASE("fashion_mnist train: Ctrl-C saves a checkpoint and exits 130", "[demo]") {
  if (!have_data()) {
    WARN("Fashion-MNIST not found: skipping");
    return;
  }
  Scratch scratch;
  const std::string out = scratch / "run";
  // A run far too long to finish, interrupted by SIGINT after 3 s. --foreground: without it
  // timeout signals the child and then its whole process group, so the child can get two
  // SIGINTs, and the second one (a second Ctrl-C) ends it at once, before the checkpoint.
  const Result result = run("train --limit-train 2000 --epochs 1000 --threads 2 --out '" + out + "'", scratch,
                            "timeout --foreground --preserve-status -s INT 3 ");
  INFO(result.out << result.err);
  CHECK(result.exit_code == 130);
  CHECK(result.out.find("interrupted: checkpoint saved") != std::string::npos);
  CHECK(minicnn::io::SafetensorsFile::read(out + "/checkpoint.safetensors").metadata().count("progress") == 1);
}

TEST_CASE("fashion_mnist train: a diverging loss stops with a clear message", "[demo]") {
  if (!have_data()) {
    WARN("Fashion-MNIST not found: skipping");
    return;
  }
  Scratch scratch;
  const std::string out = scratch / "run";
  const Result result = run("train --limit-train 256 --limit-test 100 --epochs 1 --lr 1e30 --threads 2 --out '" + out + "'", scratch);
  INFO(result.out << result.err);
  CHECK(result.exit_code == 1);
  CHECK(result.err.rfind("error: training diverged: ", 0) == 0);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK(read_json(out + "/metrics.json").at("status").get<std::string>() == "diverged");
  CHECK_FALSE(fs::exists(out + "/model.safetensors"));
}

TEST_CASE("fashion_mnist: every bad input is one line on stderr and exit code 2", "[demo]") {
  Scratch scratch;
  const std::string garbage = scratch / "garbage.safetensors";
  std::ofstream(garbage) << "not a safetensors file at all";
  const std::string text_png = scratch / "notes.png";
  std::ofstream(text_png) << "hello";
  // A safetensors file with the right names but a wrong shape.
  minicnn::models::FashionCNN<float> model(0);
  std::vector<minicnn::io::TensorRef> refs;
  minicnn::Tensor<float> wrong({10, 64});
  for (const auto& named : model.named_parameters())
    refs.push_back(named.name == "classifier.5.weight" ? minicnn::io::tensor_ref(named.name, wrong)
                                                       : minicnn::io::tensor_ref(named.name, named.parameter->value));
  const std::string mismatched = scratch / "mismatched.safetensors";
  minicnn::io::save_tensors(refs, mismatched);
  const std::string good = scratch / "good.safetensors";
  minicnn::io::save_safetensors(model, good);

  const struct {
    std::string arguments, fragment;
  } cases[] = {
      {"", "no command given"},
      {"fly", "unknown command 'fly'"},
      {"train --bogus", "not expected: --bogus"},
      {"train --epochs", "--epochs: 1 required N"},
      {"train --epochs abc", "--epochs: expected a non-negative decimal integer, got 'abc'"},
      {"train --epochs 0", "--epochs: Value 0 not in range 1 to "},
      {"train --epochs 3 --epochs 4", "--epochs: At Most 1 required but received 2"},
      {"train --lr -1", "--lr: expected a number in (0, "},
      {"train --lr nan", "--lr: expected a finite number"},
      {"train --batch-size 99999999", "--batch-size"},
      {"train --threads 0", "--threads"},
      {"train --device gpu", "--device: gpu not in {cpu,cuda}"},
      {"train --recipe fastest", "--recipe: fastest not in {best,fashion_resnet,resnet18,tutorial}"},
      {"train --schedule linear", "--schedule"},
      {"train --batch-size 64 --micro-batch 24", "--micro-batch 24: the batch size 64 is not a multiple of it; expected a divisor of 64 (e.g. 16)"},
      {"train --micro-batch 100", "--micro-batch 100: the batch size 64 is not a multiple of it"},
      {"train --reduction mpi_sum", "--reduction requires --distributed"},
#if defined(MINICNN_WITH_MPI)
      // Started without mpirun: how to start it.
      {"train --distributed", "start it as `mpirun -np 2 "},
#else
      {"train --distributed", "--distributed: this fashion_mnist was built without MPI; configure with -DMINICNN_WITH_MPI=ON"},
#endif
      {"train --label-smoothing 2", "--label-smoothing"},
      {"train --augment --no-augment", "--augment: At Most 1 required but received 2"},
      {"train --no-augment=yes", "no-augment was given a disallowed flag override"},
      {"train --data /nonexistent/folder --out '" + (scratch / "x") + "'", "Fashion-MNIST training images not found in '/nonexistent/folder'"},
      {"train --out /proc/forbidden", "--out '/proc/forbidden'"},
      {"train --resume /nonexistent.safetensors", "/nonexistent.safetensors"},
      {"train --resume '" + good + "'", "not a fashion_mnist checkpoint"},
      {"train --resume '" + good + "' --epochs 3", "--epochs cannot be combined with --resume"},
      {"eval", "--model is required"},
      {"eval --model /nonexistent.safetensors", "/nonexistent.safetensors: cannot open"},
      {"eval --model '" + garbage + "'", garbage},
      {"eval --model '" + mismatched + "'", "classifier.5.weight: expected [10, 128], found [10, 64]"},
      {"eval --model '" + good + "' --data /nonexistent/folder", "Fashion-MNIST test images not found"},
      {"eval --model '" + good + "' extra", "not expected: extra"},
      {"predict --model '" + good + "'", "IMAGE is required"},
      {"predict --model '" + good + "' /nonexistent.png", "/nonexistent.png': cannot open"},
      {"predict --model '" + good + "' '" + text_png + "'", "cannot decode"},
      {"predict --model '" + good + "' --top 11 '" + text_png + "'", "--top"},
      {"export", "--model is required"},
      {"export --model '" + mismatched + "'", "expected [10, 128]"},
      {"export --model '" + good + "' --out /nonexistent/dir/model.onnx", "/nonexistent/dir/model.onnx"},
  };
  for (const auto& c : cases) {
    INFO("fashion_mnist " << c.arguments);
    check_bad_input(run(c.arguments, scratch), c.fragment);
  }
  if (!minicnn::cuda_available())  // no CUDA backend, or no GPU: a clear refusal
    check_bad_input(run("train --device cuda --limit-train 64 --epochs 1", scratch), "--device cuda: CUDA");
  if (have_data()) {  // errors found after the data is loaded
    check_bad_input(run("train --limit-train 70000 --out '" + (scratch / "x") + "'", scratch),
                    "--limit-train 70000: the data set has only 60000 images");
    check_bad_input(run("eval --model '" + good + "' --limit-test 20000", scratch),
                    "--limit-test 20000: the data set has only 10000 images");
  }
  // --help is not an error.
  const Result help = run("train --help", scratch);
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--recipe") != std::string::npos);
}
TEST_CASE("fashion_mnist train: recipes and configuration files, flags win, --print-config reads back", "[demo]") {
  Scratch scratch;
  // The body of --print-config's output: everything after its first line, which names the source.
  const auto settings = [](const Result& result) { return result.out.substr(result.out.find('\n') + 1); };

  const Result best = run("train --recipe best --epochs 3 --print-config", scratch);
  INFO(best.out << best.err);
  REQUIRE(best.exit_code == 0);
  CHECK(best.out.find("from best)") != std::string::npos);
  for (const char* line : {"\nepochs=3\n", "\nlr=0.004\n", "\noptimizer=\"adamw\"\n", "\nschedule=\"onecycle\"\n",
                           "\nlabel-smoothing=0.1\n", "\naugment=false\n"})
    CHECK(best.out.find(line) != std::string::npos);

  // What --print-config writes, --config reads back to the same configuration.
  std::ofstream(scratch / "written.toml") << best.out;
  const Result again = run("train --config '" + (scratch / "written.toml") + "' --print-config", scratch);
  CHECK(again.exit_code == 0);
  CHECK(settings(again) == settings(best));

  // The shipped tutorial recipe is exactly the defaults.
  CHECK(settings(run("train --recipe tutorial --print-config", scratch)) ==
        settings(run("train --print-config", scratch)));

  // Files in order, the later one wins; a flag wins over both; INI syntax is read too.
  std::ofstream(scratch / "mine.ini") << "; my changes\nlr=0.0123456789\nepochs = 5\n";
  const Result layered = run("train --recipe best --config '" + (scratch / "mine.ini") + "' --epochs 7 --print-config", scratch);
  CHECK(layered.exit_code == 0);
  CHECK(layered.out.find("\nlr=0.0123456789\n") != std::string::npos);
  CHECK(layered.out.find("\nepochs=7\n") != std::string::npos);
  CHECK(layered.out.find("\nweight-decay=0.02\n") != std::string::npos);

  // Mistakes in a file are bad input like mistakes on the command line.
  std::ofstream(scratch / "unknown.toml") << "epochs = 2\nbogus = 3\n";
  check_bad_input(run("train --config '" + (scratch / "unknown.toml") + "'", scratch), "unknown setting 'bogus'");
  std::ofstream(scratch / "range.toml") << "epochs = 0\n";
  check_bad_input(run("train --config '" + (scratch / "range.toml") + "'", scratch), "range.toml: --epochs: Value 0");
  std::ofstream(scratch / "section.toml") << "[train]\nepochs = 2\n";
  check_bad_input(run("train --config '" + (scratch / "section.toml") + "'", scratch), "unexpected section [train]");
  check_bad_input(run("train --config /nonexistent.toml", scratch), "--config: File does not exist");
  check_bad_input(run("train --recipe best --resume x.safetensors", scratch), "--recipe cannot be combined with --resume");
  check_bad_input(run("train --seed -1", scratch), "--seed");
  // Integers are decimal, whatever CLI11's own reading of a leading zero (octal).
  CHECK(run("train --epochs 010 --print-config", scratch).out.find("\nepochs=10\n") != std::string::npos);
}
#endif
