#pragma once
// Three figures for your own data, drawn on an RgbImage with the built-in font (save them with
// write_png from viz/canvas.hpp); the fashion_mnist demo draws its figures with them:
//   plot_confusion_matrix   an annotated heatmap like seaborn's heatmap(annot=True, cmap="Blues")
//   plot_curves             line charts side by side (loss and accuracy per epoch)
//   plot_image_grid         28 x 28 gray images with two lines of caption each
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/viz/font.hpp"
#include "minicnn/viz/canvas.hpp"
#include "minicnn/metrics.hpp"

namespace minicnn::viz {

// matplotlib's "Blues" colour map (ColorBrewer's 9-class Blues), t in [0, 1] from light to dark.
inline Color blues(double t) {
  static constexpr Color stops[] = {{247, 251, 255}, {222, 235, 247}, {198, 219, 239}, {158, 202, 225}, {107, 174, 214},
                                    {66, 146, 198},  {33, 113, 181},  {8, 81, 156},    {8, 48, 107}};
  constexpr int last = static_cast<int>(sizeof(stops) / sizeof(stops[0])) - 1;
  t = std::clamp(t, 0.0, 1.0) * last;
  const int below = std::min(static_cast<int>(t), last - 1);
  return mix(stops[below], stops[below + 1], t - below);
}

namespace detail {

// Perceived brightness in [0, 255]: chooses black or white text over a filled cell.
inline double luminance(Color c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b; }

// "Nice" axis ticks covering [low, high]: steps of 1, 2 or 5 times a power of ten, about
// `target` of them. Returns the tick values; low/high are widened to the outer ticks.
inline std::vector<double> nice_ticks(double& low, double& high, int target = 5) {
  if (!(high > low)) {
    const double pad = std::abs(low) > 0 ? std::abs(low) * 0.05 : 1.0;
    low -= pad;
    high += pad;
  }
  const double raw = (high - low) / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  const double step = (normalized < 1.5 ? 1.0 : normalized < 3.5 ? 2.0 : normalized < 7.5 ? 5.0 : 10.0) * magnitude;
  low = std::floor(low / step + 1e-9) * step;
  high = std::ceil(high / step - 1e-9) * step;
  std::vector<double> ticks;
  for (double v = low; v <= high + step * 0.5; v += step) ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return ticks;
}

// A tick label with as many decimals as the tick step needs.
inline std::string tick_label(double value, double step) {
  const int decimals = step >= 1.0 ? 0 : std::min(6, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

}  // namespace detail

// The confusion matrix as a heatmap: rows = true class, columns = predicted class, the count in
// every cell, class names on both axes and a colour scale on the right.
inline RgbImage plot_confusion_matrix(const ConfusionMatrix& matrix, const std::vector<std::string>& class_names,
                                      const std::string& title) {
  const int classes = matrix.num_classes();
  if (static_cast<int>(class_names.size()) != classes)
    throw error("plot_confusion_matrix: " + std::to_string(class_names.size()) + " class names for " +
                std::to_string(classes) + " classes");
  const int cell = 56, label_scale = 2;
  int longest_name = 0;
  for (const auto& name : class_names) longest_name = std::max(longest_name, text_width(name, label_scale));

  const int axis_title_band = 2 * text_height(2) + 8;
  const int left = 16 + axis_title_band + longest_name + 12;
  const int top = 64;
  const int grid = cell * classes;
  const int colorbar_left = left + grid + 24, colorbar_width = 22;
  const int width = colorbar_left + colorbar_width + 8 + text_width("000000", 2) + 16;
  const int height = top + grid + 12 + longest_name + 16 + axis_title_band;
  RgbImage image(width, height);

  draw_text_aligned(image, left + grid / 2, 20, title, colors::black, Align::center, 2);

  std::int64_t largest = 1;
  for (int t = 0; t < classes; ++t)
    for (int p = 0; p < classes; ++p) largest = std::max(largest, matrix.count(t, p));

  for (int t = 0; t < classes; ++t)
    for (int p = 0; p < classes; ++p) {
      const std::int64_t count = matrix.count(t, p);
      const Color fill = blues(static_cast<double>(count) / static_cast<double>(largest));
      const int x = left + p * cell, y = top + t * cell;
      image.fill_rect(x, y, cell, cell, fill);
      const std::string text = std::to_string(count);
      const int scale = text_width(text, 2) <= cell - 6 ? 2 : 1;
      const Color ink = detail::luminance(fill) < 140 ? colors::white : colors::black;
      draw_text_aligned(image, x + cell / 2, y + (cell - text_height(scale)) / 2, text, ink, Align::center, scale);
    }
  image.draw_rect(left - 1, top - 1, grid + 2, grid + 2, colors::dark_gray);

  // Class names: right-aligned beside the rows, rotated under the columns.
  for (int c = 0; c < classes; ++c) {
    draw_text_aligned(image, left - 10, top + c * cell + (cell - text_height(label_scale)) / 2, class_names[static_cast<std::size_t>(c)],
                      colors::black, Align::right, label_scale);
    // Rotated text runs upwards from its y: start it below the grid by its own length so that
    // every name ends just under its column.
    draw_text_vertical(image, left + c * cell + (cell - text_height(label_scale)) / 2,
                       top + grid + 10 + text_width(class_names[static_cast<std::size_t>(c)], label_scale),
                       class_names[static_cast<std::size_t>(c)], colors::black, label_scale);
  }
  draw_text_vertical(image, 16, top + grid / 2 + text_width("True label", 2) / 2, "True label", colors::black, 2);
  draw_text_aligned(image, left + grid / 2, height - axis_title_band + 4, "Predicted label", colors::black, Align::center, 2);

  // Colour scale with ticks at nice counts.
  for (int row = 0; row < grid; ++row) {
    const double t = 1.0 - static_cast<double>(row) / (grid - 1);
    image.fill_rect(colorbar_left, top + row, colorbar_width, 1, blues(t));
  }
  image.draw_rect(colorbar_left - 1, top - 1, colorbar_width + 2, grid + 2, colors::dark_gray);
  double low = 0, high = static_cast<double>(largest);
  std::vector<double> ticks = detail::nice_ticks(low, high, 5);
  for (double tick : ticks) {
    // Counts are whole numbers: a small matrix (largest count 3) would otherwise get ticks at
    // 0.5, 1.5, ... labelled with rounded, repeated integers.
    if (tick > static_cast<double>(largest) || tick != std::floor(tick)) continue;
    const int y = top + static_cast<int>(std::lround((1.0 - tick / static_cast<double>(largest)) * (grid - 1)));
    image.fill_rect(colorbar_left + colorbar_width, y, 5, 1, colors::dark_gray);
    draw_text(image, colorbar_left + colorbar_width + 8, y - text_height(2) / 2, detail::tick_label(tick, 1.0),
              colors::black, 2);
  }
  return image;
}

// One line of a chart: y values at x = 1, 2, ... (epochs). NaN values are skipped.
struct Series {
  std::string name;
  std::vector<double> values;
  Color color = colors::blue;
};

// One chart: a title, a y-axis label and its lines.
struct Chart {
  std::string title;
  std::string y_label;
  std::vector<Series> series;
};

// Charts side by side, sharing the x-axis label ("epoch"); a legend in each chart.
inline RgbImage plot_curves(const std::vector<Chart>& charts, const std::string& x_label) {
  if (charts.empty()) throw error("plot_curves: no charts to draw");
  const int chart_width = 520, chart_height = 360;
  const int margin_left = 96, margin_top = 56, margin_bottom = 64, margin_right = 24;
  const int panel_width = margin_left + chart_width + margin_right;
  const int width = panel_width * static_cast<int>(charts.size());
  const int height = margin_top + chart_height + margin_bottom;
  RgbImage image(width, height);

  for (std::size_t index = 0; index < charts.size(); ++index) {
    const Chart& chart = charts[index];
    const int x0 = static_cast<int>(index) * panel_width + margin_left, y0 = margin_top;

    std::size_t points = 0;
    double low = std::numeric_limits<double>::infinity(), high = -low;
    for (const Series& s : chart.series) {
      points = std::max(points, s.values.size());
      for (double v : s.values)
        if (std::isfinite(v)) {
          low = std::min(low, v);
          high = std::max(high, v);
        }
    }
    if (!std::isfinite(low)) low = 0, high = 1;
    const std::vector<double> y_ticks = detail::nice_ticks(low, high, 6);
    const double y_step = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 1.0;
    const double x_low = 1, x_high = std::max<double>(2, static_cast<double>(points));
    auto to_x = [&](double x) { return x0 + (x - x_low) / (x_high - x_low) * chart_width; };
    auto to_y = [&](double y) { return y0 + (1.0 - (y - low) / (high - low)) * chart_height; };

    // Grid, ticks and tick labels.
    for (double tick : y_ticks) {
      const int y = static_cast<int>(std::lround(to_y(tick)));
      image.fill_rect(x0, y, chart_width, 1, colors::light_gray);
      image.fill_rect(x0 - 5, y, 5, 1, colors::dark_gray);
      draw_text_aligned(image, x0 - 9, y - text_height(2) / 2, detail::tick_label(tick, y_step), colors::black, Align::right, 2);
    }
    const int x_every = std::max(1, static_cast<int>(std::ceil((x_high - x_low + 1) / 10.0)));
    for (int epoch = 1; epoch <= static_cast<int>(x_high); epoch += x_every) {
      const int x = static_cast<int>(std::lround(to_x(epoch)));
      image.fill_rect(x, y0, 1, chart_height, colors::light_gray);
      image.fill_rect(x, y0 + chart_height, 1, 5, colors::dark_gray);
      draw_text_aligned(image, x, y0 + chart_height + 10, std::to_string(epoch), colors::black, Align::center, 2);
    }
    image.draw_rect(x0, y0, chart_width + 1, chart_height + 1, colors::dark_gray);

    // The lines, with a dot at every point.
    for (const Series& s : chart.series) {
      bool have_previous = false;
      double px = 0, py = 0;
      for (std::size_t i = 0; i < s.values.size(); ++i) {
        if (!std::isfinite(s.values[i])) {
          have_previous = false;
          continue;
        }
        const double x = to_x(static_cast<double>(i + 1)), y = to_y(s.values[i]);
        if (have_previous) image.draw_line(px, py, x, y, s.color, 2);
        image.fill_rect(static_cast<int>(std::lround(x)) - 3, static_cast<int>(std::lround(y)) - 3, 7, 7, s.color);
        px = x, py = y, have_previous = true;
      }
    }

    // Legend on a white box, in the corner the lines cross least (sampled along every segment).
    int legend_width = 0;
    for (const Series& s : chart.series) legend_width = std::max(legend_width, text_width(s.name, 2));
    legend_width += 44;
    const int legend_height = 10 + static_cast<int>(chart.series.size()) * 22;
    const int corners[4][2] = {{x0 + chart_width - legend_width - 10, y0 + 10},
                               {x0 + chart_width - legend_width - 10, y0 + chart_height - legend_height - 10},
                               {x0 + 10, y0 + 10},
                               {x0 + 10, y0 + chart_height - legend_height - 10}};
    int lx = corners[0][0], ly = corners[0][1], fewest = std::numeric_limits<int>::max();
    for (const auto& corner : corners) {
      int crossings = 0;
      for (const Series& s : chart.series)
        for (std::size_t i = 0; i + 1 < s.values.size(); ++i) {
          if (!std::isfinite(s.values[i]) || !std::isfinite(s.values[i + 1])) continue;
          for (int k = 0; k <= 20; ++k) {
            const double x = to_x(static_cast<double>(i) + 1 + k / 20.0);
            const double y = to_y(s.values[i] + (s.values[i + 1] - s.values[i]) * k / 20.0);
            crossings += x >= corner[0] - 4 && x <= corner[0] + legend_width + 4 && y >= corner[1] - 4 &&
                         y <= corner[1] + legend_height + 4;
          }
        }
      if (crossings < fewest) fewest = crossings, lx = corner[0], ly = corner[1];
    }
    image.fill_rect(lx, ly, legend_width, legend_height, colors::white);
    image.draw_rect(lx, ly, legend_width, legend_height, colors::gray);
    for (std::size_t i = 0; i < chart.series.size(); ++i) {
      const int y = ly + 8 + static_cast<int>(i) * 22;
      image.fill_rect(lx + 8, y + 6, 24, 3, chart.series[i].color);
      draw_text(image, lx + 38, y, chart.series[i].name, colors::black, 2);
    }

    draw_text_aligned(image, x0 + chart_width / 2, 18, chart.title, colors::black, Align::center, 2);
    draw_text_aligned(image, x0 + chart_width / 2, y0 + chart_height + 36, x_label, colors::black, Align::center, 2);
    draw_text_vertical(image, x0 - margin_left + 8, y0 + chart_height / 2 + text_width(chart.y_label, 2) / 2,
                       chart.y_label, colors::black, 2);
  }
  return image;
}

// A 28 x 28 (or any size) gray image with two caption lines under it.
struct CaptionedImage {
  std::vector<std::uint8_t> pixels;  // height x width, 0 = black
  int width = 28, height = 28;
  std::string first_line, second_line;
  Color first_color = colors::black, second_color = colors::red;
};

// The images in a grid of `columns` columns, each scaled up `scale` times, under a title.
inline RgbImage plot_image_grid(const std::vector<CaptionedImage>& images, int columns, const std::string& title,
                                int scale = 4) {
  if (columns < 1) throw error("plot_image_grid: expected columns >= 1, got " + std::to_string(columns));
  int image_width = 1, image_height = 1, caption_width = 1;
  for (const CaptionedImage& item : images) {
    if (static_cast<std::int64_t>(item.pixels.size()) != static_cast<std::int64_t>(item.width) * item.height)
      throw error("plot_image_grid: an image of " + std::to_string(item.width) + " x " + std::to_string(item.height) +
                  " has " + std::to_string(item.pixels.size()) + " pixels");
    image_width = std::max(image_width, item.width * scale);
    image_height = std::max(image_height, item.height * scale);
    caption_width = std::max({caption_width, text_width(item.first_line), text_width(item.second_line)});
  }
  const int cell_width = std::max(image_width, caption_width) + 16;
  const int cell_height = image_height + 8 + 2 * font::line_height + 10;
  const int count = static_cast<int>(images.size());
  const int used_columns = std::max(1, std::min(columns, count));
  const int rows = std::max(1, (count + columns - 1) / columns);
  const int top = 48;
  const int width = std::max(used_columns * cell_width + 16, text_width(title, 2) + 32);
  RgbImage image(width, top + rows * cell_height + 8);
  draw_text_aligned(image, width / 2, 16, title, colors::black, Align::center, 2);
  if (images.empty())
    draw_text_aligned(image, width / 2, top + 8, "(none)", colors::gray, Align::center, 2);
  for (int i = 0; i < count; ++i) {
    const CaptionedImage& item = images[static_cast<std::size_t>(i)];
    const int x = 8 + (i % columns) * cell_width, y = top + (i / columns) * cell_height;
    const int center = x + cell_width / 2;
    image.draw_gray(center - item.width * scale / 2, y, item.pixels.data(), item.width, item.height, scale);
    draw_text_aligned(image, center, y + image_height + 8, item.first_line, item.first_color, Align::center);
    draw_text_aligned(image, center, y + image_height + 8 + font::line_height, item.second_line, item.second_color,
                      Align::center);
  }
  return image;
}

}  // namespace minicnn::viz
