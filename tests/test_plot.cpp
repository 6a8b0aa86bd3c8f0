// PNG output, the built-in font, the plots and picture preprocessing (viz/canvas.hpp, viz/font.hpp,
// viz/plot.hpp, io/image.hpp). PNGs are decoded back with stb_image to check what was drawn.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "minicnn/io/image.hpp"
#include "minicnn/viz/canvas.hpp"
#include "minicnn/viz/font.hpp"
#include "minicnn/viz/plot.hpp"

using namespace minicnn::io;
using namespace minicnn::viz;

namespace {

std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// Decodes PNG bytes to RGB with stb_image (an independent decoder of what stb_image_write wrote).
std::vector<unsigned char> decode_rgb(const std::vector<unsigned char>& png, int& width, int& height) {
  int channels = 0;
  unsigned char* pixels = stbi_load_from_memory(png.data(), static_cast<int>(png.size()), &width, &height, &channels, 3);
  REQUIRE(pixels != nullptr);
  std::vector<unsigned char> out(pixels, pixels + static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);
  stbi_image_free(pixels);
  return out;
}

// A gray picture as PNG bytes (through an RgbImage).
std::vector<unsigned char> gray_png(const std::vector<std::uint8_t>& gray, int width, int height) {
  RgbImage image(width, height);
  image.draw_gray(0, 0, gray.data(), width, height);
  return encode_png(image);
}

}  // namespace

TEST_CASE("encode_png writes a PNG that decodes to the same pixels", "[viz][png]") {
  RgbImage image(7, 5, Color{10, 20, 30});
  image.set(0, 0, Color{255, 0, 0});
  image.set(6, 4, Color{0, 255, 0});
  image.fill_rect(2, 1, 3, 2, Color{1, 2, 3});
  image.set(100, 100, colors::black);  // outside: ignored
  const std::vector<unsigned char> png = encode_png(image);
  REQUIRE(png.size() > 33);
  const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  CHECK(std::memcmp(png.data(), signature, 8) == 0);
  CHECK(std::memcmp(png.data() + 12, "IHDR", 4) == 0);
  CHECK(big_endian_u32(png.data() + 16) == 7);
  CHECK(big_endian_u32(png.data() + 20) == 5);

  int width = 0, height = 0;
  const std::vector<unsigned char> rgb = decode_rgb(png, width, height);
  REQUIRE(width == 7);
  REQUIRE(height == 5);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) {
      const Color expected = image.get(x, y);
      const unsigned char* p = &rgb[(static_cast<std::size_t>(y) * 7 + static_cast<std::size_t>(x)) * 3];
      INFO("pixel " << x << ", " << y);
      CHECK(p[0] == expected.r);
      CHECK(p[1] == expected.g);
      CHECK(p[2] == expected.b);
    }
  CHECK(image.get(3, 2).r == 1);
  CHECK_THROWS_AS(image.get(7, 0), minicnn::error);
  CHECK_THROWS_AS(RgbImage(0, 5), minicnn::error);
}

TEST_CASE("write_png writes the file and leaves no temporary behind; a bad folder is an error", "[viz][png]") {
  namespace fs = std::filesystem;
  const fs::path folder = fs::temp_directory_path() / ("minicnn_test_write_png_" + std::to_string(::getpid()));
  fs::create_directories(folder);
  const std::string path = (folder / "plot.png").string();
  write_png(path, RgbImage(3, 2));
  write_png(path, RgbImage(4, 2));  // replaces it
  std::vector<std::string> entries;
  for (const auto& entry : fs::directory_iterator(folder)) entries.push_back(entry.path().filename().string());
  CHECK(entries == std::vector<std::string>{"plot.png"});
  int width = 0, height = 0;
  std::ifstream in(path, std::ios::binary);
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  decode_rgb(bytes, width, height);
  CHECK(width == 4);
  fs::remove_all(folder);
  CHECK_THROWS_WITH(write_png("/nonexistent-folder/x.png", RgbImage(3, 2)), Catch::Contains("/nonexistent-folder/x.png"));
}

TEST_CASE("The font covers printable ASCII with well-formed 5-pixel rows", "[viz][font]") {
  std::set<char> covered;
  for (const auto& source : font::detail::glyph_sources) {
    INFO("glyph '" << source.character << "'");
    CHECK(covered.insert(source.character).second);  // no duplicates
    int rows = 1, column = 0;
    for (const char* p = source.rows; *p != '\0'; ++p) {
      if (*p == '|') {
        CHECK(column == font::glyph_width);
        ++rows;
        column = 0;
        continue;
      }
      CHECK((*p == '#' || *p == '.'));
      ++column;
    }
    if (*source.rows != '\0') CHECK(column == font::glyph_width);
    CHECK(rows <= font::glyph_height);
  }
  for (int c = 32; c <= 126; ++c) CHECK(covered.count(static_cast<char>(c)) == 1);
  // Every glyph but the space has ink, and distinct characters look distinct.
  std::set<font::detail::GlyphBits> shapes;
  for (int c = 33; c <= 126; ++c) {
    const auto& bits = font::glyph(static_cast<char>(c));
    bool any = false;
    for (auto row : bits) any = any || row != 0;
    INFO("character " << static_cast<char>(c));
    CHECK(any);
    CHECK(shapes.insert(bits).second);
  }
  CHECK(font::glyph('\x01') == font::glyph('?'));
}

TEST_CASE("draw_text puts the glyph's ink where the table says, scaled", "[viz][font]") {
  RgbImage image(20, 30);
  draw_text(image, 2, 3, "T", colors::black, 2);
  // 'T' is "#####|..#..|..#.." ...: the top row is full, the stem in column 2.
  for (int column = 0; column < 5; ++column) CHECK(image.get(2 + 2 * column, 3).r == 0);
  CHECK(image.get(2 + 2 * 2, 3 + 2 * 4).r == 0);       // stem, row 4
  CHECK(image.get(2 + 2 * 0, 3 + 2 * 4).r == 255);     // beside the stem: paper
  CHECK(text_width("T", 2) == 10);
  CHECK(text_width("Ab", 1) == 11);
  CHECK(text_width("") == 0);

  RgbImage vertical(30, 30);
  draw_text_vertical(vertical, 5, 20, "T", colors::black, 1);
  // Rotated counter-clockwise: the top row of 'T' becomes the left column, reading upwards.
  for (int column = 0; column < 5; ++column) CHECK(vertical.get(5, 20 - 1 - column).r == 0);
  CHECK(vertical.get(5 + 4, 20 - 1 - 2).r == 0);  // the stem
  CHECK(vertical.get(5 + 4, 20 - 1 - 0).r == 255);
}

TEST_CASE("The confusion-matrix heatmap colours cells by count and writes the counts", "[viz][plot]") {
  minicnn::ConfusionMatrix matrix(3);
  for (int i = 0; i < 50; ++i) matrix.add(0, 0);
  for (int i = 0; i < 5; ++i) matrix.add(1, 2);
  const RgbImage image = plot_confusion_matrix(matrix, {"alpha", "beta", "gamma"}, "title");
  CHECK(image.width() > 3 * 56);
  CHECK(image.height() > 3 * 56);
  // The darkest blue appears (the 50 cell) and so does the lightest (empty cells).
  bool darkest = false, lightest = false;
  const Color dark = blues(1.0), light = blues(0.0);
  for (int y = 0; y < image.height(); ++y)
    for (int x = 0; x < image.width(); ++x) {
      const Color c = image.get(x, y);
      darkest = darkest || (c.r == dark.r && c.g == dark.g && c.b == dark.b);
      lightest = lightest || (c.r == light.r && c.g == light.g && c.b == light.b);
    }
  CHECK(darkest);
  CHECK(lightest);
  CHECK_THROWS_WITH(plot_confusion_matrix(matrix, {"a", "b"}, "t"), Catch::Contains("2 class names for 3 classes"));
}

TEST_CASE("blues runs from near-white to dark blue, darker as t grows", "[viz][plot]") {
  double previous = 1e9;
  for (int i = 0; i <= 20; ++i) {
    const Color c = blues(i / 20.0);
    const double brightness = c.r + c.g + c.b;
    CHECK(brightness < previous);
    CHECK(c.b >= c.r);
    previous = brightness;
  }
}

TEST_CASE("plot_curves and plot_image_grid size their canvas from their content", "[viz][plot]") {
  Chart loss{"Loss", "loss", {{"train", {2.0, 1.0, 0.5}, colors::blue}, {"test", {2.1, 1.2, std::nan("")}, colors::orange}}};
  const RgbImage one = plot_curves({loss}, "epoch");
  const RgbImage two = plot_curves({loss, loss}, "epoch");
  CHECK(two.width() == 2 * one.width());
  CHECK(two.height() == one.height());
  CHECK_THROWS_AS(plot_curves({}, "epoch"), minicnn::error);
  // The series colour is drawn.
  bool found_blue = false;
  for (int y = 0; y < one.height() && !found_blue; ++y)
    for (int x = 0; x < one.width() && !found_blue; ++x) {
      const Color c = one.get(x, y);
      found_blue = c.r == colors::blue.r && c.g == colors::blue.g && c.b == colors::blue.b;
    }
  CHECK(found_blue);

  std::vector<CaptionedImage> items(10);
  for (auto& item : items) {
    item.pixels.assign(28 * 28, 200);
    item.first_line = "true: Bag";
    item.second_line = "pred: Sandal 51%";
  }
  const RgbImage grid = plot_image_grid(items, 4, "title", 3);
  CHECK(grid.width() >= 4 * 28 * 3);
  CHECK(grid.height() >= 3 * 28 * 3);
  items[3].pixels.resize(5);
  CHECK_THROWS_WITH(plot_image_grid(items, 4, "title"), Catch::Contains("has 5 pixels"));
  CHECK_NOTHROW(plot_image_grid({}, 4, "nothing wrong"));
}

TEST_CASE("decode_image_gray reads PNG and PGM and rejects what it cannot decode", "[io][image]") {
  std::vector<std::uint8_t> gray(6 * 4);
  for (std::size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<std::uint8_t>(i * 10);
  const GrayImage from_png = decode_image_gray(gray_png(gray, 6, 4), "test.png");
  CHECK(from_png.width == 6);
  CHECK(from_png.height == 4);
  CHECK(from_png.pixels == gray);

  const std::string pgm_header = "P5\n3 2\n255\n";
  std::vector<unsigned char> pgm(pgm_header.begin(), pgm_header.end());
  for (unsigned char v : {0, 50, 100, 150, 200, 250}) pgm.push_back(v);
  const GrayImage from_pgm = decode_image_gray(pgm, "test.pgm");
  CHECK(from_pgm.width == 3);
  CHECK(from_pgm.pixels == std::vector<std::uint8_t>{0, 50, 100, 150, 200, 250});

  const std::string text = "this is not a picture";
  CHECK_THROWS_WITH(decode_image_gray(std::vector<unsigned char>(text.begin(), text.end()), "notes.png"),
                    Catch::Contains("notes.png") && Catch::Contains("cannot decode"));
  CHECK_THROWS_WITH(decode_image_gray({}, "empty.png"), Catch::Contains("empty"));
  CHECK_THROWS_WITH(read_image_gray("/nonexistent/picture.png"), Catch::Contains("cannot open"));
}

TEST_CASE("prepare_like_fashion_mnist keeps 28x28 images and normalises photos", "[io][image]") {
  SECTION("a 28 x 28 data-set image comes back unchanged") {
    GrayImage image{28, 28, std::vector<std::uint8_t>(28 * 28, 0)};
    for (int y = 5; y < 20; ++y)
      for (int x = 8; x < 18; ++x) image.pixels[static_cast<std::size_t>(y * 28 + x)] = static_cast<std::uint8_t>(100 + x);
    const PreparedImage prepared = prepare_like_fashion_mnist(image);
    CHECK_FALSE(prepared.inverted);
    CHECK_FALSE(prepared.resized);
    CHECK(std::equal(prepared.pixels.begin(), prepared.pixels.end(), image.pixels.begin()));
  }
  SECTION("a dark object on a light background is inverted, cropped, scaled and centred") {
    // 200 x 100 white picture with a dark 100 x 50 rectangle off-centre.
    GrayImage photo{200, 100, std::vector<std::uint8_t>(200 * 100, 250)};
    for (int y = 10; y < 60; ++y)
      for (int x = 20; x < 120; ++x) photo.pixels[static_cast<std::size_t>(y * 200 + x)] = 30;
    const PreparedImage prepared = prepare_like_fashion_mnist(photo);
    CHECK(prepared.inverted);
    CHECK(prepared.resized);
    // The 2:1 object fills the width (28) and half the height (14), centred: rows 7..20.
    auto at = [&](int x, int y) { return prepared.pixels[static_cast<std::size_t>(y * 28 + x)]; };
    CHECK(at(0, 14) == 255);
    CHECK(at(27, 14) == 255);
    CHECK(at(14, 7) == 255);
    CHECK(at(14, 20) == 255);
    CHECK(at(14, 6) == 0);
    CHECK(at(14, 21) == 0);
    CHECK(at(14, 0) == 0);
  }
  SECTION("a flat picture does not crash and stays dark") {
    GrayImage flat{50, 40, std::vector<std::uint8_t>(50 * 40, 255)};
    const PreparedImage prepared = prepare_like_fashion_mnist(flat);
    CHECK(prepared.inverted);
    for (auto v : prepared.pixels) CHECK(v == 0);
  }
  CHECK_THROWS_AS(prepare_like_fashion_mnist(GrayImage{3, 3, {}}), minicnn::error);
}
