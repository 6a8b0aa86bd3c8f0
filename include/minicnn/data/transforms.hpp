#pragma once
// Image transforms with torchvision's semantics, applied to one float image [C, H, W] at a
// time, in place:
//   to_unit_range          uint8 0..255 -> float [0, 1]           (ToTensor: x / 255)
//   Normalize(mean, std)   (x - mean) / std per channel           (Normalize)
//   RandomRotation(d)      angle uniform in [-d, d] degrees, counter-clockwise, about the image
//                          centre, bilinear, fill 0               (RandomRotation on a tensor,
//                                                                  interpolation=BILINEAR)
//   RandomHorizontalFlip(p) mirror left-right with probability p  (RandomHorizontalFlip)
//   Compose(t1, t2, ...)   each in turn                           (Compose)
// Random transforms draw from a Generator passed in by the caller, always the same number of
// draws per image, so a result depends only on the generator's (seed, counter), never on
// which thread runs it. The DataLoader keys that generator by (seed, epoch, image index).
#include <algorithm>
#include <cmath>
#include <cstdint>
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
