// Pairing images with labels, the Fashion-MNIST file finder, and the real data set ("[data]":
// needs Debian's dataset-fashion-mnist, which CI installs; without it those tests fail with the
// loader's message).
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <zlib.h>

#include "data_test_util.hpp"
#include "minicnn/data/fashion_mnist.hpp"

using Catch::Matchers::Contains;
using minicnn::Tensor;
using namespace minicnn::data;
using minicnn::testing::TempDir;

using minicnn::data_testing::error_of;

namespace {

// u8 images [count, height, width] whose pixels encode the image index, and labels index % 10.
Tensor<std::uint8_t> fake_images(std::int64_t count, std::int64_t height = 28, std::int64_t width = 28) {
  Tensor<std::uint8_t> images({count, height, width});
  for (std::int64_t i = 0; i < images.size(); ++i) images[i] = static_cast<std::uint8_t>(i / (height * width));
  return images;
}
Tensor<std::uint8_t> fake_labels(std::int64_t count) {
  Tensor<std::uint8_t> labels({count});
  for (std::int64_t i = 0; i < count; ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
  return labels;
}

// Sets an environment variable for the scope, restoring the old value (or its absence) after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_old_ = old != nullptr;
    if (had_old_) old_ = old;
    if (value != nullptr)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_old_)
      ::setenv(name_.c_str(), old_.c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::string old_;
  bool had_old_ = false;
};

}  // namespace

TEST_CASE("data set error: image and label counts differ", "[dataset]") {
  TempDir dir;
  write_idx(dir.file("images.idx"), fake_images(3, 2, 2));
  write_idx(dir.file("labels.idx"), fake_labels(4));
  CHECK_THAT(error_of([&] { load_idx_dataset(dir.file("images.idx"), dir.file("labels.idx"), 10); }),
             Contains("count mismatch") && Contains("hold 3 images") && Contains("hold 4 labels") &&
                 Contains(dir.file("images.idx")) && Contains(dir.file("labels.idx")));
}

TEST_CASE("data set error: label out of range", "[dataset]") {
  TempDir dir;
  Tensor<std::uint8_t> labels = fake_labels(3);
  labels[2] = 10;
  write_idx(dir.file("images.idx"), fake_images(3, 2, 2));
  write_idx(dir.file("labels.idx"), labels);
  CHECK_THAT(error_of([&] { load_idx_dataset(dir.file("images.idx"), dir.file("labels.idx"), 10); }),
             Contains("label 10 at index 2 is out of range") && Contains("expected 0 to 9") &&
                 Contains(dir.file("labels.idx")));
  // Signed label files: negative labels are out of range too.
  Tensor<std::int32_t> signed_labels({3});
  signed_labels[1] = -1;
  write_idx(dir.file("signed.idx"), signed_labels);
  CHECK_THAT(error_of([&] { load_idx_dataset(dir.file("images.idx"), dir.file("signed.idx"), 10); }),
             Contains("label -1 at index 1 is out of range"));
}

TEST_CASE("data set error: images must be u8 [count, height, width], labels integer [count]", "[dataset]") {
  TempDir dir;
  write_idx(dir.file("labels.idx"), fake_labels(2));
  write_idx(dir.file("float_images.idx"), Tensor<float>({2, 2, 2}));
  CHECK_THAT(error_of([&] { load_idx_dataset(dir.file("float_images.idx"), dir.file("labels.idx"), 10); }),
             Contains("element type is f32, expected u8") && Contains(dir.file("float_images.idx")));
  write_idx(dir.file("flat_images.idx"), Tensor<std::uint8_t>({2, 4}));
  CHECK_THAT(error_of([&] { load_idx_dataset(dir.file("flat_images.idx"), dir.file("labels.idx"), 10); }),
             Contains("has 2 dimensions, expected 3"));
  write_idx(dir.file("images.idx"), fake_images(2, 2, 2));
  write_idx(dir.file("float_labels.idx"), Tensor<float>({2}));
  CHECK_THAT(error_of([&] { load_idx_dataset(dir.file("images.idx"), dir.file("float_labels.idx"), 10); }),
             Contains("element type is f32, expected an integer type") && Contains(dir.file("float_labels.idx")));
  write_idx(dir.file("matrix_labels.idx"), Tensor<std::uint8_t>({2, 1}));
  CHECK_THAT(error_of([&] { load_idx_dataset(dir.file("images.idx"), dir.file("matrix_labels.idx"), 10); }),
             Contains("expected 1 [count]"));
}

TEST_CASE("Fashion-MNIST: both file-name spellings, with or without .gz, from a directory argument",
          "[fashion_mnist]") {
  TempDir dir;
  // Training split: dot spelling raw, dash spelling gzip.
  write_idx(dir.file("train-images.idx3-ubyte"), fake_images(5));
  write_idx(dir.file("train-labels-idx1-ubyte.gz"), fake_labels(5), Compression::gzip);
  // Test split: dash spelling raw but named .gz (content decides), dot spelling gzip.
  write_idx(dir.file("t10k-images-idx3-ubyte.gz"), fake_images(3));
  write_idx(dir.file("t10k-labels.idx1-ubyte.gz"), fake_labels(3), Compression::gzip);

  const ScopedEnv no_env("MINICNN_DATA", "/nonexistent-minicnn-data");  // the argument wins
  const FashionMnistFiles files = fashion_mnist_files(Split::train, dir.path());
  CHECK(files.images == dir.file("train-images.idx3-ubyte"));
  CHECK(files.labels == dir.file("train-labels-idx1-ubyte.gz"));
  const ImageDataset train = load_fashion_mnist(Split::train, dir.path());
  CHECK(train.size() == 5);
  CHECK(train.height() == 28);
  CHECK(train.width() == 28);
  CHECK(train.labels == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(train.images(4, 27, 27) == 4);
  CHECK(train.num_classes == 10);
  CHECK(train.class_names.size() == 10);
  const ImageDataset test = load_fashion_mnist(Split::test, dir.path());
  CHECK(test.size() == 3);
}

TEST_CASE("Fashion-MNIST: MINICNN_DATA is the directory when no argument is given", "[fashion_mnist]") {
  TempDir dir;
  write_idx(dir.file("t10k-images-idx3-ubyte"), fake_images(2));
  write_idx(dir.file("t10k-labels-idx1-ubyte"), fake_labels(2));
  const ScopedEnv env("MINICNN_DATA", dir.path().c_str());
  CHECK(fashion_mnist_directory().path == dir.path());
  CHECK(fashion_mnist_directory().source == "MINICNN_DATA");
  CHECK(load_fashion_mnist(Split::test).size() == 2);
}

TEST_CASE("Fashion-MNIST: without MINICNN_DATA the default is Debian's directory", "[fashion_mnist]") {
  const ScopedEnv env("MINICNN_DATA", nullptr);
  CHECK(fashion_mnist_directory().path == "/usr/share/datasets/fashion-mnist");
  CHECK(fashion_mnist_directory("/some/dir").path == "/some/dir");
}

TEST_CASE("Fashion-MNIST error: a missing data set lists every path tried and how to install it", "[fashion_mnist]") {
  TempDir dir;
  const std::string message = error_of([&] { load_fashion_mnist(Split::train, dir.path()); });
  CHECK_THAT(message, Contains("Fashion-MNIST training images not found"));
  CHECK_THAT(message, Contains("directory from the argument"));
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-images-idx3-ubyte", "train-images.idx3-ubyte.gz",
                           "train-images.idx3-ubyte"})
    CHECK_THAT(message, Contains(dir.file(name)));
  CHECK_THAT(message, Contains("apt-get install dataset-fashion-mnist"));

  // Images present, labels missing: the labels' paths are listed.
  write_idx(dir.file("train-images-idx3-ubyte"), fake_images(1));
  CHECK_THAT(error_of([&] { load_fashion_mnist(Split::train, dir.path()); }),
             Contains("training labels not found") && Contains(dir.file("train-labels.idx1-ubyte.gz")));
}

TEST_CASE("Fashion-MNIST error: images that are not 28x28", "[fashion_mnist]") {
  TempDir dir;
  write_idx(dir.file("train-images-idx3-ubyte"), fake_images(2, 32, 32));
  write_idx(dir.file("train-labels-idx1-ubyte"), fake_labels(2));
  CHECK_THAT(error_of([&] { load_fashion_mnist(Split::train, dir.path()); }), Contains("are 28x28, found 32x32"));
}

TEST_CASE("Fashion-MNIST: class names in label order", "[fashion_mnist]") {
  const auto& names = fashion_mnist_class_names();
  REQUIRE(names.size() == 10);
  const std::array<std::string, 10> expected = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  for (std::size_t i = 0; i < names.size(); ++i) CHECK(names[i] == expected[i]);
}

namespace {

ImageDataset load_real(Split split) {
  try {
    return load_fashion_mnist(split);
  } catch (const minicnn::error& e) {
    FAIL("the real Fashion-MNIST data set is needed for [data] tests: " << e.what());
  }
  return {};
}

std::array<int, 10> class_counts(const ImageDataset& dataset) {
  std::array<int, 10> counts{};
  for (int label : dataset.labels) ++counts.at(static_cast<std::size_t>(label));
  return counts;
}

// CRC-32 and byte sum of image `index`.
std::pair<unsigned long, long> image_checksum(const ImageDataset& dataset, std::int64_t index) {
  const std::uint8_t* pixels = dataset.images.data() + index * 28 * 28;
  long sum = 0;
  for (int i = 0; i < 28 * 28; ++i) sum += pixels[i];
  return {crc32(0L, pixels, 28 * 28), sum};
}

}  // namespace

TEST_CASE("Fashion-MNIST real data: training split", "[data]") {
  const ImageDataset train = load_real(Split::train);
  REQUIRE(train.size() == 60000);
  CHECK(train.height() == 28);
  CHECK(train.width() == 28);
  for (int count : class_counts(train)) CHECK(count == 6000);
  // Derived independently of minicnn, with numpy and Python's zlib:
  //   /usr/bin/python3 -c "import gzip, zlib, numpy as np; d = '/usr/share/datasets/fashion-mnist/';
  //     x = np.frombuffer(gzip.open(d + 'train-images-idx3-ubyte.gz').read(), np.uint8, offset=16);
  //     print(hex(zlib.crc32(x[:784].tobytes())), int(x[:784].sum()))"
  // prints 0xf270beb5 76247; the first label (offset 8 of the labels file) is 9, "Ankle boot".
  const auto [crc, sum] = image_checksum(train, 0);
  CHECK(crc == 0xF270BEB5ul);
  CHECK(sum == 76247);
  CHECK(train.labels[0] == 9);
  CHECK(std::string(train.class_names[9]) == "Ankle boot");
}

TEST_CASE("Fashion-MNIST real data: test split", "[data]") {
  const ImageDataset test = load_real(Split::test);
  REQUIRE(test.size() == 10000);
  CHECK(test.height() == 28);
  CHECK(test.width() == 28);
  for (int count : class_counts(test)) CHECK(count == 1000);
  // Same Python one-liner on t10k-images-idx3-ubyte.gz: 0x52830860 33456; first label 9.
  const auto [crc, sum] = image_checksum(test, 0);
  CHECK(crc == 0x52830860ul);
  CHECK(sum == 33456);
  CHECK(test.labels[0] == 9);
}
