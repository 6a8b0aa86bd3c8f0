// Transforms: torchvision's semantics, checked against hand-derived cases and against a
// fixture written by torchvision itself (tools/make_rotation_fixture.py).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "data_test_util.hpp"
#include "minicnn/data/idx.hpp"
#include "minicnn/data/transforms.hpp"

using Catch::Matchers::Contains;
using minicnn::Generator;
using minicnn::Tensor;
using namespace minicnn::data;

using minicnn::data_testing::error_of;

namespace {

std::string fixture(const std::string& name) { return std::string(MINICNN_FIXTURE_DIR) + "/" + name; }

// Values that differ at every pixel, so a misplaced pixel always shows.
std::vector<float> ramp(int channels, int height, int width) {
  std::vector<float> values(static_cast<std::size_t>(channels * height * width));
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 0.01f * static_cast<float>(i) + 0.5f;
  return values;
}

float max_abs_difference(const float* a, const float* b, std::int64_t count) {
  float worst = 0.0f;
  for (std::int64_t i = 0; i < count; ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("to_unit_range is ToTensor's x / 255", "[transforms]") {
  const std::vector<std::uint8_t> pixels = {0, 1, 128, 254, 255};
  std::vector<float> out(pixels.size());
  to_unit_range(pixels.data(), out.data(), static_cast<std::int64_t>(pixels.size()));
  CHECK(out[0] == 0.0f);
  CHECK(out[4] == 1.0f);
  for (std::size_t i = 0; i < pixels.size(); ++i) CHECK(out[i] == static_cast<float>(pixels[i]) / 255.0f);
  CHECK(out[2] == Approx(128.0 / 255.0).epsilon(1e-7));
}

TEST_CASE("Normalize subtracts the mean and divides by the std, per channel", "[transforms]") {
  std::vector<float> image = {0.0f, 0.5f, 1.0f, 0.25f,   // channel 0
                              0.0f, 0.5f, 1.0f, 0.25f};  // channel 1
  Generator gen(0);
  std::vector<float> scratch(image.size());
  Normalize({0.5f, 0.0f}, {0.5f, 2.0f}).apply(ImageView{image.data(), 2, 2, 2}, gen, scratch.data());
  CHECK(image[0] == -1.0f);
  CHECK(image[1] == 0.0f);
  CHECK(image[2] == 1.0f);
  CHECK(image[3] == -0.5f);
  CHECK(image[4] == 0.0f);
  CHECK(image[6] == 0.5f);
  CHECK(gen.counter() == 0);  // deterministic: draws nothing

  CHECK_THAT(error_of([] { Normalize(0.5f, 0.0f); }), Contains("non-zero std"));
  CHECK_THAT(error_of([] { Normalize({0.5f, 0.5f}, {0.5f}); }), Contains("as many means as stds"));
  CHECK_THAT(error_of([] {
               Normalize({0.1f, 0.2f}, {1.0f, 1.0f}).check(3, 28, 28);
             }),
             Contains("2 channel means, the images have 3 channels"));
}

TEST_CASE("rotate by 0 degrees is the identity", "[transforms]") {
  const std::vector<float> in = ramp(1, 5, 6);
  std::vector<float> out(in.size());
  rotate(in.data(), out.data(), 1, 5, 6, 0.0);
  CHECK(out == in);
}

TEST_CASE("rotate: a positive angle turns the image counter-clockwise", "[transforms]") {
  // 5x5, one bright pixel right of the centre (row 2, column 4). +90 degrees counter-clockwise
  // (rows go down) moves it above the centre: row 0, column 2.
  std::vector<float> in(25, 0.0f);
  in[2 * 5 + 4] = 1.0f;
  std::vector<float> out(25);
  rotate(in.data(), out.data(), 1, 5, 5, 90.0);
  CHECK(out[0 * 5 + 2] == Approx(1.0f).margin(1e-6));
  float total = 0.0f;
  for (float v : out) total += v;
  CHECK(total == Approx(1.0f).margin(1e-5));
  rotate(in.data(), out.data(), 1, 5, 5, -90.0);
  CHECK(out[4 * 5 + 2] == Approx(1.0f).margin(1e-6));
}

TEST_CASE("rotate: the centre of an even-sized image lies between pixels", "[transforms]") {
  // Centre (1.5, 1.5) of a 4x4 image: +90 degrees maps pixel (row r, column c) to
  // (row 3 - c, column r), exactly a permutation of pixels, nothing falls outside.
  const std::vector<float> in = ramp(1, 4, 4);
  std::vector<float> out(16);
  rotate(in.data(), out.data(), 1, 4, 4, 90.0);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) CHECK(out[(3 - c) * 4 + r] == Approx(in[r * 4 + c]).margin(1e-5));
}

TEST_CASE("rotate: corners rotated out of the image take the fill value", "[transforms]") {
  const std::vector<float> in(2 * 28 * 28, 1.0f);
  std::vector<float> out(in.size());
  rotate(in.data(), out.data(), 2, 28, 28, 45.0, 0.25f);
  for (int c = 0; c < 2; ++c) {
    CHECK(out[c * 784 + 0] == 0.25f);                    // top-left corner: far outside
    CHECK(out[c * 784 + 14 * 28 + 14] == Approx(1.0f));  // centre: inside
  }
  CHECK_THAT(error_of([&] { rotate(in.data(), out.data(), 1, 28, 28, std::nan("")); }), Contains("finite"));
}

TEST_CASE("rotate matches torchvision's RandomRotation (bilinear) at fixed angles", "[transforms]") {
  // Fixture: tools/make_rotation_fixture.py, torchvision 0.14 F.rotate(img, angle, BILINEAR,
  // fill=[fill] * C), exactly the call RandomRotation.forward makes on a tensor.
  const Tensor<double> angles = read_idx(fixture("rotation_angles.idx")).get<double>();
  REQUIRE(angles.size() >= 4);

  // Fashion-MNIST test images 0 and 1, scaled like ToTensor, fill 0.
  const Tensor<std::uint8_t> pixels = read_idx(fixture("rotation_fashion_input.idx")).get<std::uint8_t>();
  const Tensor<float> expected = read_idx(fixture("rotation_fashion_expected.idx.gz")).get<float>();
  const std::int64_t images = pixels.dim(0);
  REQUIRE(expected.shape() == (minicnn::Shape{angles.size(), images, 28, 28}));
  std::vector<float> in(784), out(784);
  float worst = 0.0f;
  for (std::int64_t a = 0; a < angles.size(); ++a)
    for (std::int64_t k = 0; k < images; ++k) {
      to_unit_range(pixels.data() + k * 784, in.data(), 784);
      rotate(in.data(), out.data(), 1, 28, 28, angles[a]);
      const float difference = max_abs_difference(out.data(), expected.data() + (a * images + k) * 784, 784);
      CAPTURE(angles[a], k);
      // Both sides interpolate the same points; torchvision builds its sampling grid in float32,
      // so positions differ by ~1e-6 pixel and values by about that much.
      CHECK(difference < 2e-5f);
      worst = std::max(worst, difference);
    }

  // A 2-channel 9x14 image (odd height, even width) with fill 0.25: the centre convention on
  // both axes and the fill blending along the border.
  const Tensor<float> odd = read_idx(fixture("rotation_odd_input.idx")).get<float>();
  const Tensor<float> odd_expected = read_idx(fixture("rotation_odd_expected.idx.gz")).get<float>();
  REQUIRE(odd.shape() == (minicnn::Shape{2, 9, 14}));
  std::vector<float> odd_out(static_cast<std::size_t>(odd.size()));
  for (std::int64_t a = 0; a < angles.size(); ++a) {
    rotate(odd.data(), odd_out.data(), 2, 9, 14, angles[a], 0.25f);
    const float difference = max_abs_difference(odd_out.data(), odd_expected.data() + a * odd.size(), odd.size());
    CAPTURE(angles[a]);
    CHECK(difference < 2e-5f);
    worst = std::max(worst, difference);
  }
  INFO("largest difference from torchvision: " << worst);
  CHECK(worst < 2e-5f);
}

TEST_CASE("RandomRotation draws one angle uniformly in [-degrees, degrees]", "[transforms]") {
  const std::vector<float> in = ramp(1, 28, 28);
  std::vector<float> image = in, scratch(in.size()), expected(in.size());
  const RandomRotation rotation(10.0);
  Generator gen(1234);
  rotation.apply(ImageView{image.data(), 1, 28, 28}, gen, scratch.data());
  CHECK(gen.counter() == 1);
  Generator replay(1234);
  const double angle = replay.uniform(-10.0, 10.0);
  rotate(in.data(), expected.data(), 1, 28, 28, angle);
  CHECK(image == expected);

  // Over many draws the angles cover the range and stay inside it.
  Generator angles(99);
  double low = 1e9, high = -1e9;
  for (int i = 0; i < 10000; ++i) {
    const double a = angles.uniform(-10.0, 10.0);
    low = std::min(low, a);
    high = std::max(high, a);
  }
  CHECK(low >= -10.0);
  CHECK(high < 10.0);
  CHECK(low < -9.9);
  CHECK(high > 9.9);

  CHECK_THAT(error_of([] { RandomRotation(-1.0); }), Contains("degrees must be >= 0"));
  CHECK_THAT(error_of([] { RandomRotation(5.0, -5.0, 0.0f); }), Contains("min_degrees <= max_degrees"));
}

TEST_CASE("RandomHorizontalFlip mirrors rows with probability p", "[transforms]") {
  const std::vector<float> in = ramp(2, 3, 4);
  std::vector<float> image = in, scratch(in.size());
  Generator gen(7);
  RandomHorizontalFlip(1.0).apply(ImageView{image.data(), 2, 3, 4}, gen, scratch.data());
  for (int row = 0; row < 6; ++row)
    for (int x = 0; x < 4; ++x) CHECK(image[row * 4 + x] == in[row * 4 + (3 - x)]);
  image = in;
  RandomHorizontalFlip(0.0).apply(ImageView{image.data(), 2, 3, 4}, gen, scratch.data());
  CHECK(image == in);
  CHECK(gen.counter() == 2);  // one draw per image, flipped or not

  int flipped = 0;
  const int trials = 4000;
  const RandomHorizontalFlip half(0.5);
  for (int t = 0; t < trials; ++t) {
    image = in;
    Generator per_image(static_cast<std::uint64_t>(t));
    half.apply(ImageView{image.data(), 2, 3, 4}, per_image, scratch.data());
    flipped += image != in;
  }
  // Binomial(4000, 0.5): standard deviation 32; 5 sigma either side.
  CHECK(flipped > 2000 - 160);
  CHECK(flipped < 2000 + 160);
  CHECK_THAT(error_of([] { RandomHorizontalFlip(1.5); }), Contains("p must be in [0, 1]"));
}

TEST_CASE("Compose applies its transforms in order and is deterministic for a seed", "[transforms]") {
  const std::vector<float> in = ramp(1, 28, 28);
  const Compose pipeline(RandomRotation(10.0), RandomHorizontalFlip(0.5), Normalize(0.5f, 0.5f));
  CHECK(pipeline.size() == 3);
  CHECK_THAT(pipeline.repr(), Contains("RandomRotation") && Contains("RandomHorizontalFlip(p=0.5)") &&
                                  Contains("Normalize(mean=[0.5], std=[0.5])"));

  std::vector<float> a = in, b = in, scratch(in.size());
  Generator gen_a(42), gen_b(42);
  pipeline.apply(ImageView{a.data(), 1, 28, 28}, gen_a, scratch.data());
  pipeline.apply(ImageView{b.data(), 1, 28, 28}, gen_b, scratch.data());
  CHECK(a == b);

  // The same steps by hand, drawing from the same stream.
  Generator gen_manual(42);
  const double angle = gen_manual.uniform(-10.0, 10.0);
  std::vector<float> rotated(in.size());
  rotate(in.data(), rotated.data(), 1, 28, 28, angle);
  if (gen_manual.uniform() < 0.5) horizontal_flip(ImageView{rotated.data(), 1, 28, 28});
  for (float& v : rotated) v = (v - 0.5f) / 0.5f;
  CHECK(a == rotated);

  std::vector<float> c = in;
  Generator gen_c(43);
  pipeline.apply(ImageView{c.data(), 1, 28, 28}, gen_c, scratch.data());
  CHECK(c != a);
}
