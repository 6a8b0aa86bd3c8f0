#pragma once
// Reading pictures (PNG, JPEG, PGM/PPM, BMP through stb_image) and turning any of them into a
// 28 x 28 Fashion-MNIST-like image.
//
// Fashion-MNIST images are light garments on a black background, trimmed to the object, its
// longest side scaled to 28 pixels and centred. prepare_like_fashion_mnist() does the same to an
// ordinary photo:
//   1. grayscale (ITU-R 601 luma; transparent pixels are composited over white);
//   2. if the border of the picture is light (its mean is above mid-gray), the picture is
//      inverted, so that a product photographed on a white background becomes light-on-black;
//   3. a picture that is already 28 x 28 is kept as it is (a data-set image saved to a file
//      comes back unchanged); any other size is
//   4. cropped to the bounding box of the pixels clearly brighter than the border,
//   5. stretched so that the border level becomes 0 and the brightest pixel 255,
//   6. scaled (area averaging) so that its longest side is 28 pixels, keeping the aspect ratio,
//      and centred on a black 28 x 28 canvas.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/io/detail/stb_image.hpp"

namespace minicnn::io {

// An 8-bit grayscale picture, row-major.
struct GrayImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;
  std::uint8_t at(int x, int y) const {
    return pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)];
  }
};

// Pictures beyond this many pixels are refused rather than decoded (a 64-megapixel photo is
// 256 MB as RGBA).
constexpr std::int64_t max_image_pixels = std::int64_t{1} << 26;

// Decodes a PNG, JPEG, PGM/PPM or BMP held in memory; `name` is used in error messages.
inline GrayImage decode_image_gray(const std::vector<unsigned char>& bytes, const std::string& name) {
  if (bytes.empty()) throw error("image '" + name + "': the file is empty");
  if (bytes.size() > static_cast<std::size_t>(1) << 30) throw error("image '" + name + "': larger than 1 GiB");
  const int length = static_cast<int>(bytes.size());
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(bytes.data(), length, &width, &height, &channels))
    throw error("image '" + name + "': cannot decode it (" + stbi_failure_reason() +
                "); expected a PNG, JPEG, PGM/PPM or BMP file");
  if (static_cast<std::int64_t>(width) * height > max_image_pixels)
    throw error("image '" + name + "': " + std::to_string(width) + " x " + std::to_string(height) +
                " pixels is more than the " + std::to_string(max_image_pixels) + " accepted");
  std::unique_ptr<stbi_uc, void (*)(void*)> rgba(stbi_load_from_memory(bytes.data(), length, &width, &height, &channels, 4),
                                                stbi_image_free);
  if (!rgba)
    throw error("image '" + name + "': cannot decode it (" + stbi_failure_reason() + ")");
  GrayImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height));
  for (std::size_t i = 0; i < image.pixels.size(); ++i) {
    const stbi_uc* p = rgba.get() + 4 * i;
    const double luma = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    const double alpha = p[3] / 255.0;
    image.pixels[i] = static_cast<std::uint8_t>(std::lround(std::clamp(alpha * luma + (1.0 - alpha) * 255.0, 0.0, 255.0)));
  }
  return image;
}

inline GrayImage read_image_gray(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error("image '" + path + "': cannot open the file");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw error("image '" + path + "': reading the file failed");
  return decode_image_gray(bytes, path);
}

// A 28 x 28 image ready for the network (pixels 0..255, light object on black) and what was
// done to get it.
struct PreparedImage {
  std::array<std::uint8_t, 28 * 28> pixels{};
  bool inverted = false;  // the picture had a light background
  bool resized = false;   // cropped and scaled (any size other than 28 x 28)
};

namespace detail {

// Area-averaging resize of a float image: every output pixel is the mean of the source area it
// covers (fractional coverage at the edges). Separable: rows first, then columns.
inline std::vector<float> resize_area(const std::vector<float>& source, int source_width, int source_height,
                                      int target_width, int target_height) {
  auto resize_axis = [](const float* in, std::ptrdiff_t in_stride, int in_count, float* out, std::ptrdiff_t out_stride,
                        int out_count) {
    const double ratio = static_cast<double>(in_count) / out_count;
    for (int o = 0; o < out_count; ++o) {
      const double begin = o * ratio, end = (o + 1) * ratio;
      double sum = 0;
      for (int i = static_cast<int>(begin); i < in_count && i < end; ++i) {
        const double covered = std::min(end, i + 1.0) - std::max(begin, static_cast<double>(i));
        if (covered > 0) sum += covered * in[i * in_stride];
      }
      out[o * out_stride] = static_cast<float>(sum / ratio);
    }
  };
  std::vector<float> rows(static_cast<std::size_t>(target_width) * static_cast<std::size_t>(source_height));
  for (int y = 0; y < source_height; ++y)
    resize_axis(&source[static_cast<std::size_t>(y) * static_cast<std::size_t>(source_width)], 1, source_width,
                &rows[static_cast<std::size_t>(y) * static_cast<std::size_t>(target_width)], 1, target_width);
  std::vector<float> out(static_cast<std::size_t>(target_width) * static_cast<std::size_t>(target_height));
  for (int x = 0; x < target_width; ++x)
    resize_axis(&rows[static_cast<std::size_t>(x)], target_width, source_height, &out[static_cast<std::size_t>(x)],
                target_width, target_height);
  return out;
}

}  // namespace detail

inline PreparedImage prepare_like_fashion_mnist(const GrayImage& image) {
  if (image.width < 1 || image.height < 1 ||
      image.pixels.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height))
    throw error("prepare_like_fashion_mnist: an image of " + std::to_string(image.width) + " x " +
                std::to_string(image.height) + " with " + std::to_string(image.pixels.size()) + " pixels");
  const int width = image.width, height = image.height;

  // Mean of the outermost ring of pixels: the background level.
  double border_sum = 0;
  std::int64_t border_count = 0;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      if (x == 0 || y == 0 || x == width - 1 || y == height - 1) {
        border_sum += image.at(x, y);
        ++border_count;
      }
  PreparedImage prepared;
  prepared.inverted = border_sum / static_cast<double>(border_count) > 127.5;
  std::vector<float> values(image.pixels.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = prepared.inverted ? 255.0f - image.pixels[i] : static_cast<float>(image.pixels[i]);

  if (width == 28 && height == 28) {
    for (std::size_t i = 0; i < values.size(); ++i) prepared.pixels[i] = static_cast<std::uint8_t>(values[i]);
    return prepared;
  }
  prepared.resized = true;

  const double background = prepared.inverted ? 255.0 - border_sum / static_cast<double>(border_count)
                                              : border_sum / static_cast<double>(border_count);
  const float brightest = *std::max_element(values.begin(), values.end());
  // "Clearly brighter": a quarter of the way from the background to the brightest pixel.
  const double threshold = background + 0.25 * (brightest - background);
  int left = width, right = -1, top = height, bottom = -1;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      if (brightest > background && values[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)] > threshold) {
        left = std::min(left, x);
        right = std::max(right, x);
        top = std::min(top, y);
        bottom = std::max(bottom, y);
      }
  if (right < 0) left = 0, right = width - 1, top = 0, bottom = height - 1;  // a flat picture: keep all of it
  const int crop_width = right - left + 1, crop_height = bottom - top + 1;

  const double range = std::max(1.0, brightest - background);
  std::vector<float> crop(static_cast<std::size_t>(crop_width) * static_cast<std::size_t>(crop_height));
  for (int y = 0; y < crop_height; ++y)
    for (int x = 0; x < crop_width; ++x) {
      const float v = values[static_cast<std::size_t>(top + y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(left + x)];
      crop[static_cast<std::size_t>(y) * static_cast<std::size_t>(crop_width) + static_cast<std::size_t>(x)] =
          static_cast<float>(std::clamp((v - background) / range, 0.0, 1.0) * 255.0);
    }

  const int longest = std::max(crop_width, crop_height);
  const int target_width = std::max(1, static_cast<int>(std::lround(28.0 * crop_width / longest)));
  const int target_height = std::max(1, static_cast<int>(std::lround(28.0 * crop_height / longest)));
  const std::vector<float> scaled = detail::resize_area(crop, crop_width, crop_height, target_width, target_height);
  const int offset_x = (28 - target_width) / 2, offset_y = (28 - target_height) / 2;
  for (int y = 0; y < target_height; ++y)
    for (int x = 0; x < target_width; ++x)
      prepared.pixels[static_cast<std::size_t>(offset_y + y) * 28 + static_cast<std::size_t>(offset_x + x)] =
          static_cast<std::uint8_t>(std::lround(std::clamp(scaled[static_cast<std::size_t>(y) * static_cast<std::size_t>(target_width) + static_cast<std::size_t>(x)], 0.0f, 255.0f)));
  return prepared;
}

}  // namespace minicnn::io
