#pragma once
// A small RGB canvas (RgbImage) with the drawing primitives the plots need, and PNG output
// through stb_image_write (see viz/detail/stb_image_write.hpp for how a header-only library
// compiles it).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/io/atomic_file.hpp"
#include "minicnn/viz/detail/stb_image_write.hpp"

namespace minicnn::viz {

struct Color {
  std::uint8_t r = 0, g = 0, b = 0;
};

namespace colors {
constexpr Color white{255, 255, 255};
constexpr Color black{0, 0, 0};
constexpr Color light_gray{225, 225, 225};
constexpr Color gray{128, 128, 128};
constexpr Color dark_gray{64, 64, 64};
constexpr Color blue{31, 119, 180};    // matplotlib's first two cycle colours
constexpr Color orange{255, 127, 14};
constexpr Color green{44, 160, 44};
constexpr Color red{214, 39, 40};
}  // namespace colors

// Linear blend: t = 0 gives a, t = 1 gives b.
inline Color mix(Color a, Color b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto channel = [t](std::uint8_t x, std::uint8_t y) {
    return static_cast<std::uint8_t>(std::lround(x + (y - x) * t));
  };
  return {channel(a.r, b.r), channel(a.g, b.g), channel(a.b, b.b)};
}

// An 8-bit RGB image, row-major, origin at the top left. Drawing outside the image is clipped.
class RgbImage {
 public:
  RgbImage(int width, int height, Color background = colors::white) : width_(width), height_(height) {
    // 2^14 per side is far beyond any plot and keeps width * height * 3 well inside an int.
    if (width < 1 || height < 1 || width > (1 << 14) || height > (1 << 14))
      throw error("RgbImage: expected a size in [1, 16384] per side, got " + std::to_string(width) + " x " +
                  std::to_string(height));
    pixels_.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);
    fill(background);
  }

  int width() const { return width_; }
  int height() const { return height_; }
  const std::uint8_t* data() const { return pixels_.data(); }

  void fill(Color color) { fill_rect(0, 0, width_, height_, color); }

  void set(int x, int y, Color color) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    std::uint8_t* p = &pixels_[(static_cast<std::size_t>(y) * static_cast<std::size_t>(width_) + static_cast<std::size_t>(x)) * 3];
    p[0] = color.r;
    p[1] = color.g;
    p[2] = color.b;
  }
  Color get(int x, int y) const {
    if (x < 0 || y < 0 || x >= width_ || y >= height_)
      throw error("RgbImage::get: pixel (" + std::to_string(x) + ", " + std::to_string(y) + ") is outside " +
                  std::to_string(width_) + " x " + std::to_string(height_));
    const std::uint8_t* p = &pixels_[(static_cast<std::size_t>(y) * static_cast<std::size_t>(width_) + static_cast<std::size_t>(x)) * 3];
    return {p[0], p[1], p[2]};
  }

  // The rectangle [x, x + w) x [y, y + h).
  void fill_rect(int x, int y, int w, int h, Color color) {
    const int x0 = std::max(x, 0), y0 = std::max(y, 0);
    const int x1 = std::min(x + w, width_), y1 = std::min(y + h, height_);
    for (int row = y0; row < y1; ++row)
      for (int col = x0; col < x1; ++col) set(col, row, color);
  }
  // A one-pixel outline of the same rectangle.
  void draw_rect(int x, int y, int w, int h, Color color) {
    if (w <= 0 || h <= 0) return;
    fill_rect(x, y, w, 1, color);
    fill_rect(x, y + h - 1, w, 1, color);
    fill_rect(x, y, 1, h, color);
    fill_rect(x + w - 1, y, 1, h, color);
  }

  // A line from (x0, y0) to (x1, y1), `thickness` pixels wide (square brush).
  void draw_line(double x0, double y0, double x1, double y1, Color color, int thickness = 1) {
    const double length = std::max(std::abs(x1 - x0), std::abs(y1 - y0));
    const int steps = std::max(1, static_cast<int>(std::ceil(length)));
    const int before = (thickness - 1) / 2, after = thickness / 2;
    for (int i = 0; i <= steps; ++i) {
      const double t = static_cast<double>(i) / steps;
      const int x = static_cast<int>(std::lround(x0 + (x1 - x0) * t));
      const int y = static_cast<int>(std::lround(y0 + (y1 - y0) * t));
      fill_rect(x - before, y - before, before + after + 1, before + after + 1, color);
    }
  }

  // Draws `image` (width x height, one byte per pixel, 0 = black) scaled up `scale` times.
  void draw_gray(int x, int y, const std::uint8_t* image, int width, int height, int scale = 1) {
    for (int row = 0; row < height; ++row)
      for (int col = 0; col < width; ++col) {
        const std::uint8_t v = image[static_cast<std::size_t>(row) * static_cast<std::size_t>(width) + static_cast<std::size_t>(col)];
        fill_rect(x + col * scale, y + row * scale, scale, scale, Color{v, v, v});
      }
  }

 private:
  int width_, height_;
  std::vector<std::uint8_t> pixels_;
};

// The image as the bytes of a PNG file (8-bit RGB).
inline std::vector<unsigned char> encode_png(const RgbImage& image) {
  std::vector<unsigned char> bytes;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<unsigned char>*>(context);
    const auto* begin = static_cast<const unsigned char*>(data);
    out->insert(out->end(), begin, begin + size);
  };
  if (!stbi_write_png_to_func(append, &bytes, image.width(), image.height(), 3, image.data(), image.width() * 3))
    throw error("encode_png: stb_image_write failed to encode a " + std::to_string(image.width()) + " x " +
                std::to_string(image.height()) + " image");
  return bytes;
}

// Writes the image as a PNG file, atomically (io/atomic_file.hpp): a crash never leaves a
// truncated PNG behind, readers see the old file or the new one.
inline void write_png(const std::string& path, const RgbImage& image) {
  const std::vector<unsigned char> bytes = encode_png(image);
  io::write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace minicnn::viz
