#pragma once
// A built-in 5 x 9 bitmap font for printable ASCII, so plots need no font files. Each glyph is
// 5 pixels wide; rows 0-6 hold capitals and digits (baseline under row 6), rows 7-8 hold the
// descenders of g, j, p, q, y. Text is drawn at an integer `scale` (2 doubles every pixel).
//
// The table below is the font itself: one glyph per entry, its rows top to bottom separated by
// '|', '#' = ink. Rows not written (the descender rows, mostly) are blank.
#include <array>
#include <cstdint>
#include <string>

#include "minicnn/viz/canvas.hpp"

namespace minicnn::viz {

namespace font {
constexpr int glyph_width = 5;
constexpr int glyph_height = 9;   // including descenders
constexpr int cap_height = 7;     // capitals and digits
constexpr int advance = 6;        // glyph plus one column of spacing
constexpr int line_height = 11;

namespace detail {
struct GlyphSource {
  char character;
  const char* rows;
};

// clang-format off
constexpr GlyphSource glyph_sources[] = {
  {' ', ""},
  {'!', "..#..|..#..|..#..|..#..|..#..|.....|..#.."},
  {'"', ".#.#.|.#.#.|.#.#."},
  {'#', ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#."},
  {'$', "..#..|.####|#.#..|.###.|..#.#|####.|..#.."},
  {'%', "##...|##..#|...#.|..#..|.#...|#..##|...##"},
  {'&', ".##..|#..#.|#.#..|.#...|#.#.#|#..#.|.##.#"},
  {'\'', "..#..|..#..|.#..."},
  {'(', "...#.|..#..|.#...|.#...|.#...|..#..|...#."},
  {')', ".#...|..#..|...#.|...#.|...#.|..#..|.#..."},
  {'*', ".....|..#..|#.#.#|.###.|#.#.#|..#..|....."},
  {'+', ".....|..#..|..#..|#####|..#..|..#..|....."},
  {',', ".....|.....|.....|.....|.##..|..#..|.#..."},
  {'-', ".....|.....|.....|#####|.....|.....|....."},
  {'.', ".....|.....|.....|.....|.....|.##..|.##.."},
  {'/', ".....|....#|...#.|..#..|.#...|#....|....."},
  {'0', ".###.|#...#|#..##|#.#.#|##..#|#...#|.###."},
  {'1', "..#..|.##..|..#..|..#..|..#..|..#..|.###."},
  {'2', ".###.|#...#|....#|...#.|..#..|.#...|#####"},
  {'3', "#####|...#.|..#..|...#.|....#|#...#|.###."},
  {'4', "...#.|..##.|.#.#.|#..#.|#####|...#.|...#."},
  {'5', "#####|#....|####.|....#|....#|#...#|.###."},
  {'6', "..##.|.#...|#....|####.|#...#|#...#|.###."},
  {'7', "#####|....#|...#.|..#..|.#...|.#...|.#..."},
  {'8', ".###.|#...#|#...#|.###.|#...#|#...#|.###."},
  {'9', ".###.|#...#|#...#|.####|....#|...#.|.##.."},
  {':', ".....|.##..|.##..|.....|.##..|.##..|....."},
  {';', ".....|.##..|.##..|.....|.##..|..#..|.#..."},
  {'<', "...#.|..#..|.#...|#....|.#...|..#..|...#."},
  {'=', ".....|.....|#####|.....|#####|.....|....."},
  {'>', ".#...|..#..|...#.|....#|...#.|..#..|.#..."},
  {'?', ".###.|#...#|....#|...#.|..#..|.....|..#.."},
  {'@', ".###.|#...#|....#|.##.#|#.#.#|#.#.#|.###."},
  {'A', ".###.|#...#|#...#|#####|#...#|#...#|#...#"},
  {'B', "####.|#...#|#...#|####.|#...#|#...#|####."},
  {'C', ".###.|#...#|#....|#....|#....|#...#|.###."},
  {'D', "###..|#..#.|#...#|#...#|#...#|#..#.|###.."},
  {'E', "#####|#....|#....|####.|#....|#....|#####"},
  {'F', "#####|#....|#....|####.|#....|#....|#...."},
  {'G', ".###.|#...#|#....|#.###|#...#|#...#|.####"},
  {'H', "#...#|#...#|#...#|#####|#...#|#...#|#...#"},
  {'I', ".###.|..#..|..#..|..#..|..#..|..#..|.###."},
  {'J', "..###|...#.|...#.|...#.|...#.|#..#.|.##.."},
  {'K', "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#"},
  {'L', "#....|#....|#....|#....|#....|#....|#####"},
  {'M', "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#"},
  {'N', "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#"},
  {'O', ".###.|#...#|#...#|#...#|#...#|#...#|.###."},
  {'P', "####.|#...#|#...#|####.|#....|#....|#...."},
  {'Q', ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#"},
  {'R', "####.|#...#|#...#|####.|#.#..|#..#.|#...#"},
  {'S', ".####|#....|#....|.###.|....#|....#|####."},
  {'T', "#####|..#..|..#..|..#..|..#..|..#..|..#.."},
  {'U', "#...#|#...#|#...#|#...#|#...#|#...#|.###."},
  {'V', "#...#|#...#|#...#|#...#|#...#|.#.#.|..#.."},
  {'W', "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#."},
  {'X', "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#"},
  {'Y', "#...#|#...#|.#.#.|..#..|..#..|..#..|..#.."},
  {'Z', "#####|....#|...#.|..#..|.#...|#....|#####"},
  {'[', ".###.|.#...|.#...|.#...|.#...|.#...|.###."},
  {'\\', ".....|#....|.#...|..#..|...#.|....#|....."},
  {']', ".###.|...#.|...#.|...#.|...#.|...#.|.###."},
  {'^', "..#..|.#.#.|#...#"},
  {'_', ".....|.....|.....|.....|.....|.....|.....|#####"},
  {'`', ".#...|..#..|...#."},
  {'a', ".....|.....|.###.|....#|.####|#...#|.####"},
  {'b', "#....|#....|#.##.|##..#|#...#|#...#|####."},
  {'c', ".....|.....|.###.|#....|#....|#...#|.###."},
  {'d', "....#|....#|.##.#|#..##|#...#|#...#|.####"},
  {'e', ".....|.....|.###.|#...#|#####|#....|.###."},
  {'f', "..##.|.#..#|.#...|###..|.#...|.#...|.#..."},
  {'g', ".....|.....|.####|#...#|#...#|#...#|.####|....#|.###."},
  {'h', "#....|#....|#.##.|##..#|#...#|#...#|#...#"},
  {'i', "..#..|.....|.##..|..#..|..#..|..#..|.###."},
  {'j', "...#.|.....|..##.|...#.|...#.|...#.|...#.|#..#.|.##.."},
  {'k', "#....|#....|#..#.|#.#..|##...|#.#..|#..#."},
  {'l', ".##..|..#..|..#..|..#..|..#..|..#..|.###."},
  {'m', ".....|.....|##.#.|#.#.#|#.#.#|#.#.#|#.#.#"},
  {'n', ".....|.....|#.##.|##..#|#...#|#...#|#...#"},
  {'o', ".....|.....|.###.|#...#|#...#|#...#|.###."},
  {'p', ".....|.....|####.|#...#|#...#|#...#|####.|#....|#...."},
  {'q', ".....|.....|.####|#...#|#...#|#...#|.####|....#|....#"},
  {'r', ".....|.....|#.##.|##..#|#....|#....|#...."},
  {'s', ".....|.....|.####|#....|.###.|....#|####."},
  {'t', ".#...|.#...|###..|.#...|.#...|.#..#|..##."},
  {'u', ".....|.....|#...#|#...#|#...#|#..##|.##.#"},
  {'v', ".....|.....|#...#|#...#|#...#|.#.#.|..#.."},
  {'w', ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#."},
  {'x', ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#"},
  {'y', ".....|.....|#...#|#...#|#...#|#...#|.####|....#|.###."},
  {'z', ".....|.....|#####|...#.|..#..|.#...|#####"},
  {'{', "...##|..#..|..#..|.#...|..#..|..#..|...##"},
  {'|', "..#..|..#..|..#..|..#..|..#..|..#..|..#.."},
  {'}', "##...|..#..|..#..|...#.|..#..|..#..|##..."},
  {'~', ".....|.....|.#...|#.#.#|...#.|.....|....."},
};
// clang-format on

// One glyph as row bit masks: bit (glyph_width - 1 - column) of rows[row] is ink.
using GlyphBits = std::array<std::uint8_t, glyph_height>;

// The parsed table for characters 32..126, built once.
inline const std::array<GlyphBits, 95>& glyph_table() {
  static const std::array<GlyphBits, 95> table = [] {
    std::array<GlyphBits, 95> parsed{};
    for (const GlyphSource& source : glyph_sources) {
      GlyphBits& bits = parsed[static_cast<std::size_t>(source.character - ' ')];
      int row = 0, column = 0;
      for (const char* p = source.rows; *p != '\0'; ++p) {
        if (*p == '|') {
          ++row;
          column = 0;
          continue;
        }
        if (*p == '#') bits[static_cast<std::size_t>(row)] |= static_cast<std::uint8_t>(1u << (glyph_width - 1 - column));
        ++column;
      }
    }
    return parsed;
  }();
  return table;
}
}  // namespace detail

// The glyph for a character; characters outside printable ASCII draw as '?'.
inline const detail::GlyphBits& glyph(char character) {
  const int code = static_cast<unsigned char>(character);
  return detail::glyph_table()[static_cast<std::size_t>(code >= 32 && code <= 126 ? code - 32 : '?' - 32)];
}

inline bool ink(char character, int row, int column) {
  if (row < 0 || row >= glyph_height || column < 0 || column >= glyph_width) return false;
  return (glyph(character)[static_cast<std::size_t>(row)] >> (glyph_width - 1 - column)) & 1u;
}
}  // namespace font

// Width in pixels of a line of text (no trailing spacing column).
inline int text_width(const std::string& text, int scale = 1) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * font::advance - 1) * scale;
}
// Height of one line of capitals, the usual size to centre text by.
inline int text_height(int scale = 1) { return font::cap_height * scale; }

// Horizontal text; (x, y) is the top left of the first capital.
inline void draw_text(RgbImage& image, int x, int y, const std::string& text, Color color, int scale = 1) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int origin = x + static_cast<int>(i) * font::advance * scale;
    for (int row = 0; row < font::glyph_height; ++row)
      for (int column = 0; column < font::glyph_width; ++column)
        if (font::ink(text[i], row, column)) image.fill_rect(origin + column * scale, y + row * scale, scale, scale, color);
  }
}

enum class Align { left, center, right };

// Text aligned about x: its left end, centre or right end at x.
inline void draw_text_aligned(RgbImage& image, int x, int y, const std::string& text, Color color, Align align,
                              int scale = 1) {
  const int width = text_width(text, scale);
  const int left = align == Align::left ? x : align == Align::center ? x - width / 2 : x - width;
  draw_text(image, left, y, text, color, scale);
}

// Text rotated 90 degrees counter-clockwise (read bottom to top, as a y-axis title). (x, y) is
// the bottom left of the rotated text: the text runs upwards from y, its capitals' tops on the
// left at column x.
inline void draw_text_vertical(RgbImage& image, int x, int y, const std::string& text, Color color, int scale = 1) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int origin = y - static_cast<int>(i) * font::advance * scale;
    for (int row = 0; row < font::glyph_height; ++row)
      for (int column = 0; column < font::glyph_width; ++column)
        if (font::ink(text[i], row, column))
          image.fill_rect(x + row * scale, origin - (column + 1) * scale, scale, scale, color);
  }
}

}  // namespace minicnn::viz
