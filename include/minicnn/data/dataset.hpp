#pragma once
// An image-classification data set held in memory as the IDX files store it: uint8 pixels
// [N, H, W] (47 MB for Fashion-MNIST's training split) and integer labels. Conversion to
// float, scaling and augmentation happen per batch in the DataLoader.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/data/idx.hpp"
#include "minicnn/error.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::data {

struct ImageDataset {
  Tensor<std::uint8_t> images;  // [N, H, W], pixel values 0..255
  std::vector<int> labels;      // [N], each in [0, num_classes)
  int num_classes = 0;
  std::vector<std::string> class_names;  // empty, or num_classes names

  std::int64_t size() const { return images.rank() == 3 ? images.dim(0) : 0; }
  std::int64_t height() const { return images.rank() == 3 ? images.dim(1) : 0; }
  std::int64_t width() const { return images.rank() == 3 ? images.dim(2) : 0; }
};

// Checks and pairs an images array [N, H, W] of u8 with a labels array [N] of an integer type.
// `images_name` and `labels_name` (usually the file paths) appear in the error messages.
inline ImageDataset make_image_dataset(IdxArray images, const IdxArray& labels, int num_classes,
                                       const std::string& images_name, const std::string& labels_name) {
  if (num_classes < 1) throw error("image data set: expected num_classes >= 1, got " + std::to_string(num_classes));
  if (!images.holds<std::uint8_t>())
    throw error("images '" + images_name + "': element type is " + idx_type_name(images.type()) +
                ", expected u8 (0x08) pixels");
  if (images.shape().rank() != 3)
    throw error("images '" + images_name + "': shape " + images.shape().str() + " has " +
                std::to_string(images.shape().rank()) + " dimensions, expected 3 [count, height, width]");
  const IdxType label_type = labels.type();
  if (label_type == IdxType::f32 || label_type == IdxType::f64)
    throw error("labels '" + labels_name + "': element type is " + idx_type_name(label_type) +
                ", expected an integer type (u8, i8, i16 or i32)");
  if (labels.shape().rank() != 1)
    throw error("labels '" + labels_name + "': shape " + labels.shape().str() + " has " +
                std::to_string(labels.shape().rank()) + " dimensions, expected 1 [count]");
  const std::int64_t image_count = images.shape()[0];
  const std::int64_t label_count = labels.shape()[0];
  if (image_count != label_count)
    throw error("image/label count mismatch: images '" + images_name + "' hold " + std::to_string(image_count) +
                " images, labels '" + labels_name + "' hold " + std::to_string(label_count) + " labels");

  ImageDataset dataset;
  dataset.num_classes = num_classes;
  const Tensor<std::int32_t> label_values = labels.to<std::int32_t>();
  dataset.labels.assign(label_values.begin(), label_values.end());
  for (std::size_t i = 0; i < dataset.labels.size(); ++i)
    if (dataset.labels[i] < 0 || dataset.labels[i] >= num_classes)
      throw error("labels '" + labels_name + "': label " + std::to_string(dataset.labels[i]) + " at index " +
                  std::to_string(i) + " is out of range, expected 0 to " + std::to_string(num_classes - 1));
  dataset.images = std::move(images.get<std::uint8_t>());
  return dataset;
}

// Reads an images file and a labels file (IDX, raw or gzip) into a checked data set.
inline ImageDataset load_idx_dataset(const std::string& images_path, const std::string& labels_path, int num_classes) {
  return make_image_dataset(read_idx(images_path), read_idx(labels_path), num_classes, images_path, labels_path);
}

}  // namespace minicnn::data
