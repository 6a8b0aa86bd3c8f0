// Transforms: torchvision's semantics, checked against hand-derived cases and against fixtures
// written by torchvision itself (tools/make_rotation_fixture.py, tools/make_augmentation_fixture.py).
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

// ---- RandomCrop and RandomErasing ---------------------------------------------------------
// Fixture: tools/make_augmentation_fixture.py (torchvision 0.14's F.pad + F.crop, F.erase and
// RandomErasing.get_params), on the rotation fixture's inputs.

namespace {

// Input k of the augmentation fixture: 0 and 1 are Fashion-MNIST test images 0 and 1 scaled like
// ToTensor ([1, 28, 28]), 2 is the random 2-channel 9x14 image.
struct FixtureImage {
  std::vector<float> values;
  int channels = 0;
  int height = 0;
  int width = 0;
};

std::vector<FixtureImage> augmentation_inputs() {
  const Tensor<std::uint8_t> pixels = read_idx(fixture("rotation_fashion_input.idx")).get<std::uint8_t>();
  const Tensor<float> odd = read_idx(fixture("rotation_odd_input.idx")).get<float>();
  REQUIRE(pixels.shape() == (minicnn::Shape{2, 28, 28}));
  REQUIRE(odd.shape() == (minicnn::Shape{2, 9, 14}));
  std::vector<FixtureImage> inputs;
  for (int k = 0; k < 2; ++k) {
    FixtureImage image{std::vector<float>(784), 1, 28, 28};
    to_unit_range(pixels.data() + k * 784, image.values.data(), 784);
    inputs.push_back(image);
  }
  inputs.push_back(FixtureImage{std::vector<float>(odd.data(), odd.data() + odd.size()), 2, 9, 14});
  return inputs;
}

// A case table of the fixture: <name>_cases.idx i32 [K, columns], <name>_<parameter>.idx f32 [K]
// (a fill or an erasing value per case), <name>_expected.idx.gz the results, case after case.
struct FixtureCases {
  Tensor<std::int32_t> cases;
  Tensor<float> parameters;
  Tensor<float> expected;
};

FixtureCases read_cases(const std::string& name, const std::string& parameter, std::int64_t columns) {
  FixtureCases table{read_idx(fixture(name + "_cases.idx")).get<std::int32_t>(),
                     read_idx(fixture(name + "_" + parameter + ".idx")).get<float>(),
                     read_idx(fixture(name + "_expected.idx.gz")).get<float>()};
  REQUIRE(table.cases.rank() == 2);
  REQUIRE(table.cases.dim(1) == columns);
  REQUIRE(table.parameters.size() == table.cases.dim(0));
  REQUIRE(table.cases.dim(0) >= 8);
  return table;
}

// The index of the first element where a and b differ (NaN never equals), or -1.
std::int64_t first_difference(const float* a, const float* b, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i)
    if (!(a[i] == b[i])) return i;
  return -1;
}

// The bounding box of the pixels of channel `channel` that differ between `before` and `after`.
struct Box {
  int top = -1, left = -1, height = 0, width = 0;
};
Box changed_box(const std::vector<float>& before, const std::vector<float>& after, int channel, int height, int width) {
  int top = height, bottom = -1, left = width, right = -1;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const std::size_t i = static_cast<std::size_t>((channel * height + y) * width + x);
      if (before[i] != after[i]) {
        top = std::min(top, y);
        bottom = std::max(bottom, y);
        left = std::min(left, x);
        right = std::max(right, x);
      }
    }
  if (bottom < 0) return {};
  return {top, left, bottom - top + 1, right - left + 1};
}

}  // namespace

TEST_CASE("crop_padded matches torchvision's F.pad + F.crop", "[transforms]") {
  const std::vector<FixtureImage> inputs = augmentation_inputs();
  const FixtureCases crop_table = read_cases("crop", "fills", 6);

  std::int64_t offset = 0;
  int edge_cases = 0;
  for (std::int64_t k = 0; k < crop_table.cases.dim(0); ++k) {
    const std::int32_t* c = crop_table.cases.data() + k * 6;
    const FixtureImage& in = inputs.at(static_cast<std::size_t>(c[0]));
    const int padding = c[1], top = c[2], left = c[3], out_height = c[4], out_width = c[5];
    const std::int64_t count = std::int64_t{in.channels} * out_height * out_width;
    REQUIRE(offset + count <= crop_table.expected.size());
    std::vector<float> out(static_cast<std::size_t>(count), std::nanf(""));
    crop_padded(in.values.data(), out.data(), in.channels, in.height, in.width, padding, top, left, out_height,
                out_width, crop_table.parameters[k]);
    CAPTURE(k, c[0], padding, top, left, out_height, out_width, crop_table.parameters[k]);
    CHECK(first_difference(out.data(), crop_table.expected.data() + offset, count) == -1);
    offset += count;
    edge_cases += (top == 0 || top == in.height + 2 * padding - out_height) ? 1 : 0;
  }
  CHECK(offset == crop_table.expected.size());  // every expected value was compared
  CHECK(edge_cases >= 4);
}

TEST_CASE("crop_padded: padding, window and errors by hand", "[transforms]") {
  // 1 channel, 2x3, padding 1 (padded 4x5), fill 9, window 3x4 at (1, 0) of the padded image:
  //   9 9 9 9 9
  //   9 1 2 3 9        rows 1..3, columns 0..3:  9 1 2 3
  //   9 4 5 6 9                                  9 4 5 6
  //   9 9 9 9 9                                  9 9 9 9
  const std::vector<float> in = {1, 2, 3, 4, 5, 6};
  std::vector<float> out(12);
  crop_padded(in.data(), out.data(), 1, 2, 3, 1, 1, 0, 3, 4, 9.0f);
  CHECK(out == (std::vector<float>{9, 1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9}));
  // A window in an image row but entirely in the right padding: all fill.
  std::vector<float> corner(1);
  crop_padded(in.data(), corner.data(), 1, 2, 3, 1, 1, 4, 1, 1, 9.0f);
  CHECK(corner[0] == 9.0f);
  crop_padded(in.data(), corner.data(), 1, 2, 3, 1, 1, 3, 1, 1, 9.0f);
  CHECK(corner[0] == 3.0f);

  CHECK_THAT(error_of([&] { crop_padded(in.data(), out.data(), 1, 2, 3, 1, 2, 0, 3, 4); }),
             Contains("top 2 must be in [0, 1]") && Contains("padded height 4"));
  CHECK_THAT(error_of([&] { crop_padded(in.data(), out.data(), 1, 2, 3, 1, 0, -1, 3, 4); }),
             Contains("left -1 must be in [0, 1]"));
  CHECK_THAT(error_of([&] { crop_padded(in.data(), out.data(), 1, 2, 3, -1, 0, 0, 1, 1); }), Contains("padding -1"));
}

TEST_CASE("erase matches torchvision's F.erase", "[transforms]") {
  const std::vector<FixtureImage> inputs = augmentation_inputs();
  const FixtureCases erase_table = read_cases("erase", "values", 5);

  std::int64_t offset = 0;
  for (std::int64_t k = 0; k < erase_table.cases.dim(0); ++k) {
    const std::int32_t* c = erase_table.cases.data() + k * 5;
    FixtureImage image = inputs.at(static_cast<std::size_t>(c[0]));
    const std::int64_t count = static_cast<std::int64_t>(image.values.size());
    REQUIRE(offset + count <= erase_table.expected.size());
    erase(ImageView{image.values.data(), image.channels, image.height, image.width}, c[1], c[2], c[3], c[4],
          erase_table.parameters[k]);
    CAPTURE(k, c[0], c[1], c[2], c[3], c[4], erase_table.parameters[k]);
    CHECK(first_difference(image.values.data(), erase_table.expected.data() + offset, count) == -1);
    offset += count;
  }
  CHECK(offset == erase_table.expected.size());

  std::vector<float> image = ramp(1, 4, 5);
  CHECK_THAT(error_of([&] {
               erase(ImageView{image.data(), 1, 4, 5}, 2, 0, 3, 1, 0.0f);
             }),
             Contains("must lie inside the 4x5 image"));
  CHECK_THAT(error_of([&] { erase(ImageView{image.data(), 1, 4, 5}, 0, 0, 1, -1, 0.0f); }), Contains("erase_width -1"));
}

TEST_CASE("erase_size matches RandomErasing.get_params, rounding halves to even", "[transforms]") {
  const Tensor<std::int32_t> cases = read_idx(fixture("erase_size_cases.idx")).get<std::int32_t>();
  const Tensor<double> draws = read_idx(fixture("erase_size_draws.idx")).get<double>();
  REQUIRE(cases.rank() == 2);
  REQUIRE(cases.dim(1) == 5);
  REQUIRE(draws.shape() == (minicnn::Shape{cases.dim(0), 2}));
  int fitting = 0;
  for (std::int64_t k = 0; k < cases.dim(0); ++k) {
    const std::int32_t* c = cases.data() + k * 5;
    const double area_fraction = draws[2 * k], aspect_ratio = draws[2 * k + 1];
    const EraseSize size = erase_size(c[0], c[1], area_fraction, aspect_ratio);
    CAPTURE(k, c[0], c[1], area_fraction, aspect_ratio);
    CHECK(size.height == c[2]);
    CHECK(size.width == c[3]);
    CHECK(size.fits(c[0], c[1]) == (c[4] == 1));
    fitting += c[4];
  }
  CHECK(fitting > 0);
  CHECK(fitting < cases.dim(0));

  // The ties by hand (16x16, area 256, aspect 1): sqrt(6.25) = 2.5 -> 2, sqrt(12.25) = 3.5 -> 4,
  // sqrt(0.25) = 0.5 -> 0 (std::round would give 3, 4, 1).
  CHECK(erase_size(16, 16, 25.0 / 1024, 1.0).height == 2);
  CHECK(erase_size(16, 16, 49.0 / 1024, 1.0).height == 4);
  CHECK(erase_size(16, 16, 1.0 / 1024, 1.0).width == 0);
  CHECK(erase_size(16, 16, 1.0, 1.0).fits(16, 16) == false);
  CHECK_THAT(error_of([] { erase_size(28, 28, 0.1, 0.0); }), Contains("aspect_ratio > 0"));
  CHECK_THAT(error_of([] { erase_size(28, 28, std::nan(""), 1.0); }), Contains("area_fraction"));
}

TEST_CASE("RandomCrop draws top and left uniformly over all 2 * padding + 1 positions", "[transforms]") {
  // A 2-channel 6x5 image (not square) with distinct values, padding 2: each output is the crop
  // at exactly one of the 5 x 5 offsets, which the loop below identifies.
  const int channels = 2, height = 6, width = 5, padding = 2, positions = 2 * padding + 1;
  const std::vector<float> in = ramp(channels, height, width);
  std::vector<std::vector<float>> crops;
  for (int top = 0; top < positions; ++top)
    for (int left = 0; left < positions; ++left) {
      std::vector<float> crop(in.size());
      crop_padded(in.data(), crop.data(), channels, height, width, padding, top, left, height, width, -7.0f);
      crops.push_back(crop);
    }

  const RandomCrop random_crop(std::make_pair(height, width), padding, -7.0f);
  std::vector<int> counts(crops.size(), 0);
  int unmatched = 0;
  const int trials = 10000;
  std::vector<float> image, scratch(in.size());
  for (int t = 0; t < trials; ++t) {
    image = in;
    Generator gen(static_cast<std::uint64_t>(t));
    random_crop.apply(ImageView{image.data(), channels, height, width}, gen, scratch.data());
    CHECK(gen.counter() == 2);
    const auto match = std::find(crops.begin(), crops.end(), image);
    if (match == crops.end())
      ++unmatched;
    else
      ++counts[static_cast<std::size_t>(match - crops.begin())];
  }
  CHECK(unmatched == 0);
  // 25 offsets, 400 expected each: a standard deviation of 19.6; 5 sigma either side.
  for (std::size_t k = 0; k < counts.size(); ++k) {
    CAPTURE(k / positions, k % positions);
    CHECK(counts[k] > 400 - 98);
    CHECK(counts[k] < 400 + 98);
  }

  // The documented draws: top = below(H + 2p - h + 1), then left.
  Generator gen(31), replay(31);
  image = in;
  random_crop.apply(ImageView{image.data(), channels, height, width}, gen, scratch.data());
  const int top = static_cast<int>(replay.below(positions));
  const int left = static_cast<int>(replay.below(positions));
  CHECK(image == crops[static_cast<std::size_t>(top * positions + left)]);

  // Without padding the crop is the identity, still two draws.
  image = in;
  Generator identity_gen(5);
  RandomCrop(std::make_pair(height, width))
      .apply(ImageView{image.data(), channels, height, width}, identity_gen, scratch.data());
  CHECK(image == in);
  CHECK(identity_gen.counter() == 2);
}

TEST_CASE("RandomCrop checks the image size and its arguments", "[transforms]") {
  CHECK_NOTHROW(RandomCrop(28, 4).check(1, 28, 28));
  CHECK_NOTHROW(Compose(RandomCrop(28, 4), RandomRotation(10.0)).check(1, 28, 28));
  CHECK_THAT(error_of([] { RandomCrop(40, 4).check(1, 28, 28); }),
             Contains("crop size (40, 40) is larger than the padded image (36, 36)"));
  CHECK_THAT(error_of([] { RandomCrop(24, 2).check(1, 28, 28); }),
             Contains("crop size (24, 24) differs from the image size (28, 28)"));
  CHECK_THAT(error_of([] { RandomCrop(std::make_pair(9, 14), 0).check(2, 14, 9); }),
             Contains("crop size (9, 14) is larger than the padded image (14, 9)"));
  CHECK_THAT(error_of([] { RandomCrop(std::make_pair(9, 14), 1).check(2, 10, 14); }),
             Contains("crop size (9, 14) differs from the image size (10, 14)"));
  // apply() checks too (the DataLoader calls check() once up front instead).
  std::vector<float> image(16), scratch(16);
  Generator gen(0);
  CHECK_THAT(error_of([&] {
               RandomCrop(3, 1).apply(ImageView{image.data(), 1, 4, 4}, gen, scratch.data());
             }),
             Contains("differs from the image size (4, 4)"));

  CHECK_THAT(error_of([] { RandomCrop(0); }), Contains("size must be positive, got (0, 0)"));
  CHECK_THAT(error_of([] { RandomCrop(std::make_pair(28, -1)); }), Contains("size must be positive, got (28, -1)"));
  CHECK_THAT(error_of([] { RandomCrop(28, -1); }), Contains("padding must be >= 0, got -1"));
  CHECK_THAT(error_of([] { RandomCrop(28, 4, std::nanf("")); }), Contains("fill must be finite"));
  CHECK(RandomCrop(28, 4).repr() == "RandomCrop(size=(28, 28), padding=4, fill=0)");
  CHECK(RandomCrop(std::make_pair(9, 14), 3, 0.25f).repr() == "RandomCrop(size=(9, 14), padding=3, fill=0.25)");
}

TEST_CASE("RandomErasing with p = 1 erases a rectangle within scale and ratio, nothing else", "[transforms]") {
  // Tall rectangles only (ratio = height / width in [1.5, 3]), so swapped sides would show.
  const int channels = 2, height = 28, width = 28;
  const double area = height * width;
  const std::pair<double, double> scale{0.05, 0.15}, ratio{1.5, 3.0};
  const float value = -3.0f;  // no input value equals it (the ramp is positive)
  const RandomErasing erasing(1.0, scale, ratio, value);
  const std::vector<float> in = ramp(channels, height, width);
  std::vector<float> image, scratch(in.size());
  int top_min = height, top_max = -1;
  for (int t = 0; t < 2000; ++t) {
    image = in;
    Generator gen(static_cast<std::uint64_t>(t));
    erasing.apply(ImageView{image.data(), channels, height, width}, gen, scratch.data());
    CHECK(gen.counter() == RandomErasing::draws_per_image);
    const Box box = changed_box(in, image, 0, height, width);
    CAPTURE(t, box.top, box.left, box.height, box.width);
    REQUIRE(box.height > 0);  // with these sizes the first attempt always fits
    CHECK(box.height < height);
    CHECK(box.width < width);
    const Box box1 = changed_box(in, image, 1, height, width);
    CHECK((box1.top == box.top && box1.left == box.left && box1.height == box.height && box1.width == box.width));
    // Inside the box every pixel of every channel is the value; outside, nothing changed.
    bool rectangle_ok = true;
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
          const std::size_t i = static_cast<std::size_t>((c * height + y) * width + x);
          const bool inside = y >= box.top && y < box.top + box.height && x >= box.left && x < box.left + box.width;
          rectangle_ok = rectangle_ok && (inside ? image[i] == value : image[i] == in[i]);
        }
    CHECK(rectangle_ok);
    // h = round(sqrt(A r)), w = round(sqrt(A / r)): A and r lie in intervals that must meet
    // scale * area and ratio.
    const double h = box.height, w = box.width;
    CHECK((h - 0.5) * (w - 0.5) <= scale.second * area);
    CHECK((h + 0.5) * (w + 0.5) >= scale.first * area);
    CHECK((h - 0.5) / (w + 0.5) <= ratio.second);
    CHECK((h + 0.5) / (w - 0.5) >= ratio.first);
    top_min = std::min(top_min, box.top);
    top_max = std::max(top_max, box.top + box.height);
  }
  CHECK(top_min == 0);  // positions reach both edges
  CHECK(top_max == height);
}

TEST_CASE("RandomErasing follows its documented draws and is deterministic", "[transforms]") {
  const int channels = 1, height = 28, width = 28;
  const std::vector<float> in = ramp(channels, height, width);
  const RandomErasing erasing(0.7, {0.02, 0.33}, {0.3, 3.3}, 0.5f);
  std::vector<float> scratch(in.size());
  int erased = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    std::vector<float> image = in, again = in, expected = in;
    Generator gen(seed), gen_again(seed);
    gen.reserve(3);  // a transform before it drew three values
    gen_again.reserve(3);
    erasing.apply(ImageView{image.data(), channels, height, width}, gen, scratch.data());
    erasing.apply(ImageView{again.data(), channels, height, width}, gen_again, scratch.data());
    CHECK(image == again);
    CHECK(gen.counter() == 3 + RandomErasing::draws_per_image);

    // Replay: counter 3 decides, attempt a reads counters 4 + 4a ... 7 + 4a.
    Generator replay(seed);
    replay.set_state(seed, 3);
    if (replay.uniform() < 0.7) {
      for (int attempt = 0; attempt < RandomErasing::max_attempts; ++attempt) {
        replay.set_state(seed, 4 + 4 * static_cast<std::uint64_t>(attempt));
        const double area_fraction = replay.uniform(0.02, 0.33);
        const double aspect_ratio = std::exp(replay.uniform(std::log(0.3), std::log(3.3)));
        const EraseSize size = erase_size(height, width, area_fraction, aspect_ratio);
        if (!size.fits(height, width)) continue;
        const int top = static_cast<int>(replay.below(static_cast<std::uint64_t>(height - size.height + 1)));
        const int left = static_cast<int>(replay.below(static_cast<std::uint64_t>(width - size.width + 1)));
        erase(ImageView{expected.data(), channels, height, width}, top, left, size.height, size.width, 0.5f);
        break;
      }
    }
    CAPTURE(seed);
    CHECK(image == expected);
    erased += image != in;
  }
  // p = 0.7 over 200 images: 140 expected, standard deviation 6.5.
  CHECK(erased > 140 - 33);
  CHECK(erased < 140 + 33);
}

TEST_CASE("RandomErasing with p = 0, or no fitting rectangle, leaves the image unchanged", "[transforms]") {
  const std::vector<float> in = ramp(2, 9, 14);
  std::vector<float> image = in, scratch(in.size());
  Generator gen(3);
  for (int t = 0; t < 100; ++t) RandomErasing(0.0).apply(ImageView{image.data(), 2, 9, 14}, gen, scratch.data());
  CHECK(image == in);
  CHECK(gen.counter() == 100 * RandomErasing::draws_per_image);

  // The whole image (scale 1, ratio 1) never fits: 10 attempts, then nothing.
  const std::vector<float> square = ramp(1, 8, 8);
  image = square;
  Generator whole(4);
  RandomErasing(1.0, {1.0, 1.0}, {1.0, 1.0}).apply(ImageView{image.data(), 1, 8, 8}, whole, scratch.data());
  CHECK(image == square);
  CHECK(whole.counter() == RandomErasing::draws_per_image);

  // p = 0.5: about half the images are erased.
  int erased = 0;
  const RandomErasing half(0.5);
  for (int t = 0; t < 4000; ++t) {
    image = in;
    Generator per_image(static_cast<std::uint64_t>(t));
    half.apply(ImageView{image.data(), 2, 9, 14}, per_image, scratch.data());
    erased += image != in;
  }
  // Binomial(4000, 0.5 * P(an attempt fits on 9x14 within 10 tries), nearly 1): sd 32; 5 sigma.
  CHECK(erased > 2000 - 160);
  CHECK(erased < 2000 + 160);
}

TEST_CASE("RandomErasing refuses bad arguments, naming them", "[transforms]") {
  CHECK_THAT(error_of([] { RandomErasing(-0.1); }), Contains("p must be in [0, 1]"));
  CHECK_THAT(error_of([] { RandomErasing(0.5, {0.5, 0.2}); }), Contains("scale must satisfy 0 <= min <= max <= 1"));
  CHECK_THAT(error_of([] { RandomErasing(0.5, {0.1, 1.5}); }), Contains("scale") && Contains("1.5"));
  CHECK_THAT(error_of([] { RandomErasing(0.5, {-0.1, 0.3}); }), Contains("scale"));
  CHECK_THAT(error_of([] { RandomErasing(0.5, {0.02, 0.33}, {0.0, 3.3}); }), Contains("ratio must satisfy 0 < min"));
  CHECK_THAT(error_of([] { RandomErasing(0.5, {0.02, 0.33}, {2.0, 1.0}); }), Contains("ratio"));
  CHECK_THAT(error_of([] {
               RandomErasing(0.5, {0.02, 0.33}, {0.3, 3.3}, std::nanf(""));
             }),
             Contains("value must be finite"));
  CHECK(RandomErasing().repr() == "RandomErasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)");
}

TEST_CASE("Compose with RandomCrop and RandomErasing is deterministic for a seed", "[transforms]") {
  const std::vector<float> in = ramp(1, 28, 28);
  const Compose pipeline(RandomCrop(28, 4), RandomHorizontalFlip(0.5), Normalize(0.5f, 0.5f), RandomErasing(1.0));
  CHECK_NOTHROW(pipeline.check(1, 28, 28));
  CHECK_THAT(pipeline.repr(),
             Contains("RandomCrop(size=(28, 28), padding=4, fill=0)") && Contains("RandomErasing(p=1"));
  std::vector<float> a = in, b = in, scratch(in.size());
  Generator gen_a(8), gen_b(8);
  pipeline.apply(ImageView{a.data(), 1, 28, 28}, gen_a, scratch.data());
  pipeline.apply(ImageView{b.data(), 1, 28, 28}, gen_b, scratch.data());
  CHECK(a == b);
  CHECK(gen_a.counter() == 2 + 1 + RandomErasing::draws_per_image);

  // Erasing runs last, on the normalized image: against the same pipeline without it (the
  // same draws before it), the pixels it changed hold 0, the normalized mean.
  const Compose without_erasing(RandomCrop(28, 4), RandomHorizontalFlip(0.5), Normalize(0.5f, 0.5f));
  std::vector<float> c = in;
  Generator gen_c(8);
  without_erasing.apply(ImageView{c.data(), 1, 28, 28}, gen_c, scratch.data());
  int changed = 0;
  bool changed_to_zero = true;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != c[i]) {
      ++changed;
      changed_to_zero = changed_to_zero && a[i] == 0.0f;
    }
  CHECK(changed > 0);
  CHECK(changed_to_zero);
}
