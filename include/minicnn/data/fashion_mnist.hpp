#pragma once
// Fashion-MNIST: 60,000 training and 10,000 test images of 28x28 grey pixels, 10 classes.
//
// The directory is, in this order: the explicit argument, else the environment variable
// MINICNN_DATA, else /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
// In it, each file is accepted under both spellings found in the wild and with or without
// .gz, e.g. train-images-idx3-ubyte, train-images-idx3-ubyte.gz, train-images.idx3-ubyte,
// train-images.idx3-ubyte.gz; whether a file is gzip is decided by its content, not its name.
#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "minicnn/data/dataset.hpp"
#include "minicnn/error.hpp"

namespace minicnn::data {

enum class Split { train, test };

inline constexpr int fashion_mnist_num_classes = 10;

// Class names in label order (label 0 is "T-shirt/top").
inline const std::array<const char*, fashion_mnist_num_classes>& fashion_mnist_class_names() {
  static const std::array<const char*, fashion_mnist_num_classes> names = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  return names;
}

inline constexpr const char* fashion_mnist_default_directory = "/usr/share/datasets/fashion-mnist";

// The directory the loader reads, and where that choice came from (for error messages).
struct DataDirectory {
  std::string path;
  std::string source;  // "argument", "MINICNN_DATA" or "default"
};

inline DataDirectory fashion_mnist_directory(const std::string& directory = {}) {
  if (!directory.empty()) return {directory, "argument"};
  const char* from_environment = std::getenv("MINICNN_DATA");
  if (from_environment != nullptr && *from_environment != '\0') return {from_environment, "MINICNN_DATA"};
  return {fashion_mnist_default_directory, "default"};
}

namespace detail {

// The first existing file among the spellings of prefix + kind, e.g. "train-images" +
// "idx3-ubyte": dash or dot before the kind, with or without .gz; else an error listing every
// path tried. `what` names the file for the message ("training images").
inline std::string find_fashion_mnist_file(const DataDirectory& directory, const std::string& prefix,
                                           const std::string& kind, const std::string& what) {
  namespace fs = std::filesystem;
  std::vector<std::string> tried;
  for (const char* separator : {"-", "."})
    for (const char* extension : {".gz", ""}) {
      const std::string path = (fs::path(directory.path) / (prefix + separator + kind + extension)).string();
      std::error_code ignored;
      if (fs::is_regular_file(path, ignored)) return path;
      tried.push_back(path);
    }
  std::string message = "Fashion-MNIST " + what + " not found in '" + directory.path + "' (directory from " +
                        (directory.source == "argument"       ? std::string("the argument")
                         : directory.source == "MINICNN_DATA" ? std::string("the environment variable MINICNN_DATA")
                                                              : std::string("the default location")) +
                        "); tried:";
  for (const std::string& path : tried) message += "\n  " + path;
  message += "\nInstall the data set with `apt-get install dataset-fashion-mnist` (it installs to " +
             std::string(fashion_mnist_default_directory) + "), or pass its directory / set MINICNN_DATA.";
  throw error(message);
}

}  // namespace detail

// The image and label files of one split, as found on disk (throws, listing the paths tried,
// when one is missing).
struct FashionMnistFiles {
  std::string images;
  std::string labels;
};

inline FashionMnistFiles fashion_mnist_files(Split split, const std::string& directory = {}) {
  const DataDirectory where = fashion_mnist_directory(directory);
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string split_name = split == Split::train ? "training" : "test";
  return {detail::find_fashion_mnist_file(where, prefix + "-images", "idx3-ubyte", split_name + " images"),
          detail::find_fashion_mnist_file(where, prefix + "-labels", "idx1-ubyte", split_name + " labels")};
}

// Loads one split, checked: u8 images [N, 28, 28], labels [N] in 0..9, class names.
inline ImageDataset load_fashion_mnist(Split split, const std::string& directory = {}) {
  const FashionMnistFiles files = fashion_mnist_files(split, directory);
  ImageDataset dataset = load_idx_dataset(files.images, files.labels, fashion_mnist_num_classes);
  if (dataset.height() != 28 || dataset.width() != 28)
    throw error("images '" + files.images + "': Fashion-MNIST images are 28x28, found " +
                std::to_string(dataset.height()) + "x" + std::to_string(dataset.width()));
  const auto& names = fashion_mnist_class_names();
  dataset.class_names.assign(names.begin(), names.end());
  return dataset;
}

}  // namespace minicnn::data
