// docs/viz.md's example: plotting your own results with minicnn/viz, no training involved.
// Writes confusion_matrix.png, curves.png and grid.png into the folder given as the first
// argument (default: the current folder).
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/metrics.hpp"
#include "minicnn/viz/plot.hpp"

int main(int argc, char** argv) {
  const std::string folder = argc > 1 ? argv[1] : ".";

  // A confusion matrix from your own predictions: rows are true classes, columns predicted ones.
  const std::vector<std::string> class_names = {"cat", "dog", "bird"};
  const std::vector<int> true_classes = {0, 0, 0, 1, 1, 1, 1, 2, 2, 2};
  const std::vector<int> predicted_classes = {0, 0, 1, 1, 1, 1, 0, 2, 2, 1};
  minicnn::ConfusionMatrix matrix(static_cast<int>(class_names.size()));
  for (std::size_t i = 0; i < true_classes.size(); ++i) matrix.add(true_classes[i], predicted_classes[i]);
  minicnn::viz::write_png(folder + "/confusion_matrix.png",
                          minicnn::viz::plot_confusion_matrix(matrix, class_names, "My classifier"));

  // Curves: one chart per quantity, any number of series each, x = 1, 2, ...
  minicnn::viz::Chart loss{"Loss",
                           "loss",
                           {{"train", {0.9, 0.6, 0.45, 0.4}, minicnn::viz::colors::blue},
                            {"validation", {0.8, 0.62, 0.55, 0.53}, minicnn::viz::colors::orange}}};
  minicnn::viz::write_png(folder + "/curves.png", minicnn::viz::plot_curves({loss}, "epoch"));

  // An image grid with two caption lines per image (8-bit gray pixels, 0 = black).
  minicnn::viz::CaptionedImage gradient;
  gradient.width = gradient.height = 16;
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) gradient.pixels.push_back(static_cast<std::uint8_t>(16 * x + y));
  gradient.first_line = "a gradient";
  gradient.second_line = "16 x 16";
  minicnn::viz::write_png(folder + "/grid.png", minicnn::viz::plot_image_grid({gradient, gradient}, 2, "Samples"));
  return 0;
}
