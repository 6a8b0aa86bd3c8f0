#pragma once
// Image transforms with torchvision's semantics, applied to one float image [C, H, W] at a
// time, in place:
//   to_unit_range          uint8 0..255 -> float [0, 1]           (ToTensor: x / 255)
//   Normalize(mean, std)   (x - mean) / std per channel           (Normalize)
//   RandomRotation(d)      angle uniform in [-d, d] degrees, counter-clockwise, about the image
//                          centre, bilinear, fill 0               (RandomRotation on a tensor,
//                                                                  interpolation=BILINEAR)
//   RandomHorizontalFlip(p) mirror left-right with probability p  (RandomHorizontalFlip)
//   RandomCrop(size, padding, fill)
//                          pad by `padding` pixels of `fill`, crop a window at a uniform
//                          position                               (RandomCrop, constant padding)
//   RandomErasing(p, scale, ratio, value)
//                          with probability p, set a random rectangle to `value`
//                                                                 (RandomErasing, one value)
//   Compose(t1, t2, ...)   each in turn                           (Compose)
// Random transforms draw from a Generator passed in by the caller, always the same number of
// draws per image, so a result depends only on the generator's (seed, counter), never on
// which thread runs it. The DataLoader keys that generator by (seed, epoch, image index).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/random.hpp"

namespace minicnn::data {

// One image: [channels, height, width] floats, row-major and contiguous.
struct ImageView {
  float* data = nullptr;
  int channels = 1;
  int height = 0;
  int width = 0;
  std::int64_t size() const { return std::int64_t{channels} * height * width; }
};

// Pixel values 0..255 to [0, 1]. A division, not a multiplication by 1/255, so the result is
// bit-identical to torchvision's ToTensor.
inline void to_unit_range(const std::uint8_t* pixels, float* out, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(pixels[i]) / 255.0f;
}

// Rotates `in` by `angle_degrees` counter-clockwise (as displayed, rows going down) about the
// image centre, which is ((width - 1) / 2, (height - 1) / 2) in pixel indices, into `out`
// (same shape, must not alias `in`). This is torchvision's tensor rotate: for output pixel
// (x, y) it samples the input bilinearly at R(angle) (x - cx, y - cy) + (cx, cy), where samples
// outside the image read 0 (grid_sample, padding zeros, align_corners=False); then, as
// RandomRotation does with a fill value, blends with the fill by the in-image weight m:
// out = sample * m + (1 - m) * fill.
inline void rotate(const float* in, float* out, int channels, int height, int width, double angle_degrees,
                   float fill = 0.0f) {
  if (!std::isfinite(angle_degrees)) throw error("rotate: angle must be finite, got " + std::to_string(angle_degrees));
  constexpr double pi = 3.14159265358979323846;
  const double radians = angle_degrees * pi / 180.0;
  const double cos_a = std::cos(radians);
  const double sin_a = std::sin(radians);
  const double centre_x = (width - 1) * 0.5;
  const double centre_y = (height - 1) * 0.5;
  const std::int64_t plane = std::int64_t{height} * width;
  for (int y = 0; y < height; ++y) {
    const double offset_y = y - centre_y;
    // Source position of output pixel (x, y) is (row_x + cos_a * x, row_y + sin_a * x).
    const double row_x = -cos_a * centre_x - sin_a * offset_y + centre_x;
    const double row_y = -sin_a * centre_x + cos_a * offset_y + centre_y;
    for (int x = 0; x < width; ++x) {
      const double source_x = row_x + cos_a * x;
      const double source_y = row_y + sin_a * x;
      const std::int64_t out_offset = std::int64_t{y} * width + x;
      // Entirely outside (no corner within the image): the fill value.
      if (!(source_x > -1.0 && source_x < width && source_y > -1.0 && source_y < height)) {
        for (int c = 0; c < channels; ++c) out[c * plane + out_offset] = fill;
        continue;
      }
      const double floor_x = std::floor(source_x);
      const double floor_y = std::floor(source_y);
      const float right = static_cast<float>(source_x - floor_x);
      const float down = static_cast<float>(source_y - floor_y);
      const int x0 = static_cast<int>(floor_x);
      const int y0 = static_cast<int>(floor_y);
      // Corner weights: top-left, top-right, bottom-left, bottom-right. Corners outside the
      // image read 0 (grid_sample's zero padding) and drop out of the in-image weight.
      const std::int64_t top_left = std::int64_t{y0} * width + x0;
      if (x0 >= 0 && x0 + 1 < width && y0 >= 0 && y0 + 1 < height) {
        const float w_tl = (1.0f - right) * (1.0f - down);
        const float w_tr = right * (1.0f - down);
        const float w_bl = (1.0f - right) * down;
        const float w_br = right * down;
        const float inside = w_tl + w_tr + w_bl + w_br;  // 1 up to rounding, as in torchvision
        for (int c = 0; c < channels; ++c) {
          const float* src = in + c * plane + top_left;
          const float sample = w_tl * src[0] + w_tr * src[1] + w_bl * src[width] + w_br * src[width + 1];
          out[c * plane + out_offset] = sample * inside + (1.0f - inside) * fill;
        }
        continue;
      }
      const bool left_in = x0 >= 0;
      const bool right_in = x0 + 1 < width;
      const bool top_in = y0 >= 0;
      const bool bottom_in = y0 + 1 < height;
      const float w_tl = (top_in && left_in) ? (1.0f - right) * (1.0f - down) : 0.0f;
      const float w_tr = (top_in && right_in) ? right * (1.0f - down) : 0.0f;
      const float w_bl = (bottom_in && left_in) ? (1.0f - right) * down : 0.0f;
      const float w_br = (bottom_in && right_in) ? right * down : 0.0f;
      const float inside = w_tl + w_tr + w_bl + w_br;
      for (int c = 0; c < channels; ++c) {
        const float* src = in + c * plane;
        float sample = 0.0f;
        if (top_in && left_in) sample += w_tl * src[top_left];
        if (top_in && right_in) sample += w_tr * src[top_left + 1];
        if (bottom_in && left_in) sample += w_bl * src[top_left + width];
        if (bottom_in && right_in) sample += w_br * src[top_left + width + 1];
        out[c * plane + out_offset] = sample * inside + (1.0f - inside) * fill;
      }
    }
  }
}

// Mirrors each row of `image` in place.
inline void horizontal_flip(ImageView image) {
  for (std::int64_t row = 0; row < std::int64_t{image.channels} * image.height; ++row) {
    float* begin = image.data + row * image.width;
    std::reverse(begin, begin + image.width);
  }
}

// Pads `in` [channels, height, width] by `padding` pixels of `fill` on all four sides and copies
// the window of out_height x out_width at (top, left) of the padded image into `out`
// [channels, out_height, out_width] (must not alias `in`): torchvision's
// F.crop(F.pad(img, padding, fill, "constant"), top, left, out_height, out_width). The window
// must lie inside the padded image: 0 <= top <= height + 2 * padding - out_height, and the same
// for left (torchvision's crop would pad with zeros beyond it).
inline void crop_padded(const float* in, float* out, int channels, int height, int width, int padding, int top,
                        int left, int out_height, int out_width, float fill = 0.0f) {
  if (channels < 1 || height < 1 || width < 1 || out_height < 1 || out_width < 1 || padding < 0)
    throw error("crop_padded: expected sizes >= 1 and padding >= 0, got channels " + std::to_string(channels) +
                ", height " + std::to_string(height) + ", width " + std::to_string(width) + ", out_height " +
                std::to_string(out_height) + ", out_width " + std::to_string(out_width) + ", padding " +
                std::to_string(padding));
  const std::int64_t padded_height = std::int64_t{height} + 2 * std::int64_t{padding};
  const std::int64_t padded_width = std::int64_t{width} + 2 * std::int64_t{padding};
  if (top < 0 || top + std::int64_t{out_height} > padded_height)
    throw error("crop_padded: top " + std::to_string(top) + " must be in [0, " +
                std::to_string(padded_height - out_height) + "] for out_height " + std::to_string(out_height) +
                " in the padded height " + std::to_string(padded_height) + " (height " + std::to_string(height) +
                " + 2 * padding " + std::to_string(padding) + ")");
  if (left < 0 || left + std::int64_t{out_width} > padded_width)
    throw error("crop_padded: left " + std::to_string(left) + " must be in [0, " +
                std::to_string(padded_width - out_width) + "] for out_width " + std::to_string(out_width) +
                " in the padded width " + std::to_string(padded_width) + " (width " + std::to_string(width) +
                " + 2 * padding " + std::to_string(padding) + ")");
  // Output columns [first, last) come from the image, the others from the padding.
  const int first = std::clamp(padding - left, 0, out_width);
  const int last =
      static_cast<int>(std::clamp(std::int64_t{padding} + width - left, std::int64_t{0}, std::int64_t{out_width}));
  const std::int64_t plane = std::int64_t{height} * width;
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < out_height; ++y) {
      float* row = out + (std::int64_t{c} * out_height + y) * out_width;
      const int source_y = top + y - padding;
      if (source_y < 0 || source_y >= height) {
        std::fill(row, row + out_width, fill);
        continue;
      }
      // Output column x reads input column x + left - padding.
      const float* source_row = in + c * plane + std::int64_t{source_y} * width;
      std::fill(row, row + first, fill);
      if (first < last)
        std::copy(source_row + (first + left - padding), source_row + (last + left - padding), row + first);
      std::fill(row + last, row + out_width, fill);
    }
}

// Sets image[:, top : top + erase_height, left : left + erase_width] to `value`, every channel:
// torchvision's F.erase(img, top, left, erase_height, erase_width, v) with a single value. An
// empty rectangle (a side of 0) changes nothing. The rectangle must lie inside the image
// (torchvision's slicing would silently clip it).
inline void erase(ImageView image, int top, int left, int erase_height, int erase_width, float value) {
  if (erase_height < 0 || erase_width < 0 || top < 0 || left < 0 || top + std::int64_t{erase_height} > image.height ||
      left + std::int64_t{erase_width} > image.width)
    throw error("erase: the rectangle at (top " + std::to_string(top) + ", left " + std::to_string(left) +
                ") of erase_height " + std::to_string(erase_height) + ", erase_width " + std::to_string(erase_width) +
                " must lie inside the " + std::to_string(image.height) + "x" + std::to_string(image.width) + " image");
  const std::int64_t plane = std::int64_t{image.height} * image.width;
  for (int c = 0; c < image.channels; ++c)
    for (int y = top; y < top + erase_height; ++y) {
      float* row = image.data + c * plane + std::int64_t{y} * image.width + left;
      std::fill(row, row + erase_width, value);
    }
}

// The sides of the rectangle RandomErasing tries.
struct EraseSize {
  int height = 0;
  int width = 0;
  // RandomErasing erases only a rectangle strictly smaller than the image on both sides.
  bool fits(int image_height, int image_width) const { return height < image_height && width < image_width; }
};

namespace detail {
// Python's round(): to the nearest integer, halves to the even neighbour (2.5 -> 2, 3.5 -> 4).
inline double round_half_to_even(double x) {
  const double below = std::floor(x);
  const double fraction = x - below;  // exact
  if (fraction != 0.5) return fraction < 0.5 ? below : below + 1.0;
  return std::fmod(below, 2.0) == 0.0 ? below : below + 1.0;
}
}  // namespace detail

// The rectangle RandomErasing.get_params makes of an area fraction and an aspect ratio
// (height / width) on an image_height x image_width image, with its roundings:
//   erase_area = image_height * image_width * area_fraction
//   height = round(sqrt(erase_area * aspect_ratio)), width = round(sqrt(erase_area / aspect_ratio))
// where round is Python's (halves to even). Sides too large for an int saturate (they never fit).
inline EraseSize erase_size(int image_height, int image_width, double area_fraction, double aspect_ratio) {
  if (!(area_fraction >= 0.0 && std::isfinite(area_fraction) && aspect_ratio > 0.0 && std::isfinite(aspect_ratio)))
    throw error("erase_size: expected a finite area_fraction >= 0 and a finite aspect_ratio > 0, got " +
                std::to_string(area_fraction) + " and " + std::to_string(aspect_ratio));
  const double erase_area = static_cast<double>(image_height) * image_width * area_fraction;
  const auto side = [](double length) {
    return static_cast<int>(
        std::min(detail::round_half_to_even(length), static_cast<double>(std::numeric_limits<int>::max())));
  };
  return {side(std::sqrt(erase_area * aspect_ratio)), side(std::sqrt(erase_area / aspect_ratio))};
}

class Transform {
 public:
  virtual ~Transform() = default;
  // Transforms `image` in place. `scratch` holds at least image.size() floats the transform
  // may overwrite. Throws only for an image shape that check() rejects: callers that run it
  // inside a parallel loop (the DataLoader) call check() once before the loop.
  virtual void apply(ImageView image, Generator& gen, float* scratch) const = 0;
  // Throws minicnn::error if images of this shape cannot be transformed (called once, up front).
  virtual void check(int /*channels*/, int /*height*/, int /*width*/) const {}
  virtual std::string repr() const = 0;
};

class Normalize final : public Transform {
 public:
  // One mean and std per channel; a single value applies to every channel.
  Normalize(std::vector<float> mean, std::vector<float> stddev) : mean_(std::move(mean)), std_(std::move(stddev)) {
    if (mean_.empty() || mean_.size() != std_.size())
      throw error("Normalize: expected as many means as stds (at least one), got " + std::to_string(mean_.size()) +
                  " means and " + std::to_string(std_.size()) + " stds");
    for (std::size_t c = 0; c < std_.size(); ++c)
      if (!(std::isfinite(std_[c]) && std_[c] != 0.0f) || !std::isfinite(mean_[c]))
        throw error("Normalize: channel " + std::to_string(c) + " has mean " + std::to_string(mean_[c]) + ", std " +
                    std::to_string(std_[c]) + "; expected finite values and a non-zero std");
  }
  Normalize(float mean, float stddev) : Normalize(std::vector<float>{mean}, std::vector<float>{stddev}) {}

  void apply(ImageView image, Generator& /*gen*/, float* /*scratch*/) const override {
    check(image.channels, image.height, image.width);
    const std::int64_t plane = std::int64_t{image.height} * image.width;
    for (int c = 0; c < image.channels; ++c) {
      const std::size_t k = mean_.size() == 1 ? 0 : static_cast<std::size_t>(c);
      const float mean = mean_[k];
      const float stddev = std_[k];
      float* values = image.data + c * plane;
      // Subtract, then divide: the same two roundings as torchvision's sub_(mean).div_(std).
      for (std::int64_t i = 0; i < plane; ++i) values[i] = (values[i] - mean) / stddev;
    }
  }
  void check(int channels, int, int) const override {
    if (mean_.size() != 1 && mean_.size() != static_cast<std::size_t>(channels))
      throw error("Normalize: has " + std::to_string(mean_.size()) + " channel means, the images have " +
                  std::to_string(channels) + " channels");
  }
  std::string repr() const override {
    std::ostringstream out;
    out << "Normalize(mean=" << list(mean_) << ", std=" << list(std_) << ")";
    return out.str();
  }

 private:
  static std::string list(const std::vector<float>& values) {
    std::ostringstream out;
    out << "[";
    for (std::size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
    out << "]";
    return out.str();
  }
  std::vector<float> mean_;
  std::vector<float> std_;
};

class RandomRotation final : public Transform {
 public:
  // An angle uniform in [-degrees, degrees].
  explicit RandomRotation(double degrees, float fill = 0.0f)
      : RandomRotation(-symmetric_range(degrees), symmetric_range(degrees), fill) {}
  // An angle uniform in [min_degrees, max_degrees].
  RandomRotation(double min_degrees, double max_degrees, float fill)
      : min_degrees_(min_degrees), max_degrees_(max_degrees), fill_(fill) {
    if (!(std::isfinite(min_degrees) && std::isfinite(max_degrees) && min_degrees <= max_degrees))
      throw error("RandomRotation: expected finite min_degrees <= max_degrees, got [" + std::to_string(min_degrees) +
                  ", " + std::to_string(max_degrees) + "]");
    if (!std::isfinite(fill)) throw error("RandomRotation: fill must be finite");
  }

  // One draw per image.
  void apply(ImageView image, Generator& gen, float* scratch) const override {
    const double angle = gen.uniform(min_degrees_, max_degrees_);
    rotate(image.data, scratch, image.channels, image.height, image.width, angle, fill_);
    std::copy(scratch, scratch + image.size(), image.data);
  }
  std::string repr() const override {
    std::ostringstream out;
    out << "RandomRotation(degrees=[" << min_degrees_ << ", " << max_degrees_
        << "], interpolation=bilinear, fill=" << fill_ << ")";
    return out.str();
  }

 private:
  static double symmetric_range(double degrees) {
    if (!(degrees >= 0.0))
      throw error("RandomRotation: degrees must be >= 0 for a symmetric range, got " + std::to_string(degrees));
    return degrees;
  }

  double min_degrees_;
  double max_degrees_;
  float fill_;
};

class RandomHorizontalFlip final : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5) : p_(p) {
    if (!(p >= 0.0 && p <= 1.0)) throw error("RandomHorizontalFlip: p must be in [0, 1], got " + std::to_string(p));
  }
  // One draw per image; flips when it is below p (p = 0 never flips, p = 1 always does).
  void apply(ImageView image, Generator& gen, float* /*scratch*/) const override {
    if (gen.uniform() < p_) horizontal_flip(image);
  }
  std::string repr() const override {
    std::ostringstream out;
    out << "RandomHorizontalFlip(p=" << p_ << ")";
    return out.str();
  }

 private:
  double p_;
};

// torchvision's RandomCrop(size, padding=padding, fill=fill) with padding_mode="constant" (the
// only mode here), one padding for all four sides and pad_if_needed=False: pads the image by
// `padding` pixels of `fill` on every side, then crops a window of `size` (height, width) whose
// top is uniform in [0, H + 2 * padding - height] and left in [0, W + 2 * padding - width].
// Transforms work in place and keep the image's shape, so in a pipeline the crop size must be
// the image size, as in the usual RandomCrop(28, 4), which shifts the image by up to `padding`
// pixels each way (check() refuses another size); crop_padded() makes any crop. The fill goes
// in wherever the crop sits in the Compose: before Normalize, 0 is black, as with torchvision's
// RandomCrop on a PIL image.
class RandomCrop final : public Transform {
 public:
  // A square crop, size x size.
  explicit RandomCrop(int size, int padding = 0, float fill = 0.0f)
      : RandomCrop(std::pair<int, int>{size, size}, padding, fill) {}
  // A crop of (height, width).
  explicit RandomCrop(std::pair<int, int> size, int padding = 0, float fill = 0.0f)
      : height_(size.first), width_(size.second), padding_(padding), fill_(fill) {
    if (height_ < 1 || width_ < 1)
      throw error("RandomCrop: size must be positive, got (" + std::to_string(height_) + ", " + std::to_string(width_) +
                  ")");
    if (padding < 0) throw error("RandomCrop: padding must be >= 0, got " + std::to_string(padding));
    if (!std::isfinite(fill)) throw error("RandomCrop: fill must be finite");
  }

  // Two draws per image, top then left (Generator::below), also when a range holds a single
  // position (torchvision then draws nothing).
  void apply(ImageView image, Generator& gen, float* scratch) const override {
    check(image.channels, image.height, image.width);
    const std::int64_t top_positions = std::int64_t{image.height} + 2 * std::int64_t{padding_} - height_ + 1;
    const std::int64_t left_positions = std::int64_t{image.width} + 2 * std::int64_t{padding_} - width_ + 1;
    const int top = static_cast<int>(gen.below(static_cast<std::uint64_t>(top_positions)));
    const int left = static_cast<int>(gen.below(static_cast<std::uint64_t>(left_positions)));
    crop_padded(image.data, scratch, image.channels, image.height, image.width, padding_, top, left, height_, width_,
                fill_);
    std::copy(scratch, scratch + image.size(), image.data);
  }
  void check(int /*channels*/, int height, int width) const override {
    const std::int64_t padded_height = std::int64_t{height} + 2 * std::int64_t{padding_};
    const std::int64_t padded_width = std::int64_t{width} + 2 * std::int64_t{padding_};
    if (height_ > padded_height || width_ > padded_width)
      throw error("RandomCrop: crop size (" + std::to_string(height_) + ", " + std::to_string(width_) +
                  ") is larger than the padded image (" + std::to_string(padded_height) + ", " +
                  std::to_string(padded_width) + ") = image (" + std::to_string(height) + ", " + std::to_string(width) +
                  ") + 2 * padding " + std::to_string(padding_));
    if (height_ != height || width_ != width)
      throw error("RandomCrop: crop size (" + std::to_string(height_) + ", " + std::to_string(width_) +
                  ") differs from the image size (" + std::to_string(height) + ", " + std::to_string(width) +
                  "); transforms keep the image's shape, so crop to the image size (padding shifts it) or call "
                  "crop_padded()");
  }
  std::string repr() const override {
    std::ostringstream out;
    out << "RandomCrop(size=(" << height_ << ", " << width_ << "), padding=" << padding_ << ", fill=" << fill_ << ")";
    return out.str();
  }

 private:
  int height_;
  int width_;
  int padding_;
  float fill_;
};

// torchvision's RandomErasing(p, scale, ratio, value) with a single value for every channel
// (value="random" and per-channel values are not supported): with probability p, up to
// max_attempts times draws an area fraction uniform in `scale` and an aspect ratio (height /
// width) whose log is uniform in [log ratio.first, log ratio.second], turns them into sides
// (erase_size), and erases the first rectangle that fits (both sides smaller than the image's)
// at a top uniform in [0, H - h] and a left uniform in [0, W - w]; if none fits, the image is
// unchanged. It sets whatever values the image holds at its place in the Compose: torchvision
// pipelines put it after Normalize, where value 0 is the mean; before Normalize, 0 is black.
//
// Draws: each image reserves draws_per_image (41) consecutive counters c, c + 1, ... of the
// generator, whatever happens, and reads
//   c               the decision: erase when uniform() < p
//   c + 1 + 4a      attempt a (0 .. 9): the area fraction, uniform(scale.first, scale.second)
//   c + 2 + 4a                          the log aspect ratio, uniform(log ratio.first, log ratio.second)
//   c + 3 + 4a                          top, below(H - h + 1)    (only the attempt that fits)
//   c + 4 + 4a                          left, below(W - w + 1)
// torchvision draws in float32 from its own generator: the same seed gives other rectangles
// there, the mapping from draws to a rectangle is the same.
class RandomErasing final : public Transform {
 public:
  static constexpr int max_attempts = 10;
  static constexpr std::uint64_t draws_per_image = 1 + 4 * max_attempts;

  explicit RandomErasing(double p = 0.5, std::pair<double, double> scale = {0.02, 0.33},
                         std::pair<double, double> ratio = {0.3, 3.3}, float value = 0.0f)
      : p_(p), scale_(scale), ratio_(ratio), value_(value) {
    if (!(p >= 0.0 && p <= 1.0)) throw error("RandomErasing: p must be in [0, 1], got " + std::to_string(p));
    if (!(scale.first >= 0.0 && scale.first <= scale.second && scale.second <= 1.0))
      throw error("RandomErasing: scale must satisfy 0 <= min <= max <= 1, got (" + std::to_string(scale.first) + ", " +
                  std::to_string(scale.second) + ")");
    if (!(ratio.first > 0.0 && ratio.first <= ratio.second && std::isfinite(ratio.second)))
      throw error("RandomErasing: ratio must satisfy 0 < min <= max, finite, got (" + std::to_string(ratio.first) +
                  ", " + std::to_string(ratio.second) + ")");
    if (!std::isfinite(value)) throw error("RandomErasing: value must be finite");
  }

  void apply(ImageView image, Generator& gen, float* /*scratch*/) const override {
    const std::uint64_t first = gen.reserve(draws_per_image);
    Generator draws(gen.seed());
    draws.set_state(gen.seed(), first);
    if (!(draws.uniform() < p_)) return;
    const double log_ratio_min = std::log(ratio_.first);
    const double log_ratio_max = std::log(ratio_.second);
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      draws.set_state(gen.seed(), first + 1 + 4 * static_cast<std::uint64_t>(attempt));
      const double area_fraction = draws.uniform(scale_.first, scale_.second);
      const double aspect_ratio = std::exp(draws.uniform(log_ratio_min, log_ratio_max));
      const EraseSize size = erase_size(image.height, image.width, area_fraction, aspect_ratio);
      if (!size.fits(image.height, image.width)) continue;
      const int top = static_cast<int>(draws.below(static_cast<std::uint64_t>(image.height - size.height + 1)));
      const int left = static_cast<int>(draws.below(static_cast<std::uint64_t>(image.width - size.width + 1)));
      erase(image, top, left, size.height, size.width, value_);
      return;
    }
  }
  std::string repr() const override {
    std::ostringstream out;
    out << "RandomErasing(p=" << p_ << ", scale=(" << scale_.first << ", " << scale_.second << "), ratio=("
        << ratio_.first << ", " << ratio_.second << "), value=" << value_ << ")";
    return out.str();
  }

 private:
  double p_;
  std::pair<double, double> scale_;
  std::pair<double, double> ratio_;
  float value_;
};

// Transforms applied in order. Move-only (it owns its transforms).
class Compose final : public Transform {
 public:
  Compose() = default;
  template <typename... Ts, typename = std::enable_if_t<(sizeof...(Ts) > 0) &&
                                                        (std::is_base_of<Transform, std::decay_t<Ts>>::value && ...) &&
                                                        !(std::is_same<std::decay_t<Ts>, Compose>::value || ...)>>
  explicit Compose(Ts&&... transforms) {
    (add(std::forward<Ts>(transforms)), ...);
  }
  Compose(Compose&&) = default;
  Compose& operator=(Compose&&) = default;

  Compose& add(std::unique_ptr<Transform> transform) {
    if (!transform) throw error("Compose::add: null transform");
    transforms_.push_back(std::move(transform));
    return *this;
  }
  template <typename T, typename = std::enable_if_t<std::is_base_of<Transform, std::decay_t<T>>::value>>
  Compose& add(T&& transform) {
    return add(std::unique_ptr<Transform>(new std::decay_t<T>(std::forward<T>(transform))));
  }

  std::size_t size() const { return transforms_.size(); }
  bool empty() const { return transforms_.empty(); }

  void apply(ImageView image, Generator& gen, float* scratch) const override {
    for (const auto& transform : transforms_) transform->apply(image, gen, scratch);
  }
  void check(int channels, int height, int width) const override {
    for (const auto& transform : transforms_) transform->check(channels, height, width);
  }
  std::string repr() const override {
    std::string out = "Compose(";
    for (std::size_t i = 0; i < transforms_.size(); ++i) out += (i ? ", " : "") + transforms_[i]->repr();
    return out + ")";
  }

 private:
  std::vector<std::unique_ptr<Transform>> transforms_;
};

}  // namespace minicnn::data
