#pragma once
// RandomStreams: keeps every Dropout layer's mask stream where a single process would have it.
//
// A Dropout draws the mask of a forward call from counters first .. first + size - 1 of its
// generator, `first` being the count of elements all earlier calls used (layers/dropout.hpp).
// In a single process training with batch N, image k of a step therefore gets the counters
// c + k E .. c + (k + 1) E - 1 (c: the counter at the step's start, E: the layer's elements
// per image). On P ranks each rank runs only some micro-batches, so its counter would not match:
// this class puts every Dropout's counter at c + (offset of the micro-batch in the step) E
// before each micro-batch, and at c + N E after the step. Each image then gets the mask it gets
// in a single-process run with batch N, whatever the micro-batch or rank that trains it.
//
// E is measured once at construction by a training-mode forward of two blank images; the
// model's state (buffers such as BatchNorm's running statistics) and the generators are restored
// afterwards, so construction changes nothing.
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/layers/dropout.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::distributed {

template <typename T>
class RandomStreams {
 public:
  // image_shape: one image's shape without the batch dimension ([1, 28, 28] for Fashion-MNIST).
  RandomStreams(Module<T>& model, const Shape& image_shape) {
    for (auto& [name, module] : model.named_modules())
      if (auto* dropout = dynamic_cast<Dropout<T>*>(module)) streams_.push_back({name, dropout, 0, 0});
    if (streams_.empty()) return;
    measure(model, image_shape);
  }

  std::size_t num_streams() const { return streams_.size(); }
  // Elements per image of Dropout `index` (E above), in named_modules() order.
  std::uint64_t elements_per_image(std::size_t index) const { return streams_.at(index).elements_per_image; }

  // At the start of a step, on every rank (the counters are equal there).
  void begin_step() {
    for (Stream& stream : streams_) stream.step_start = stream.dropout->generator().counter();
  }
  // Before the forward of a micro-batch whose first image is image `offset` of the step.
  void position(std::int64_t offset) { set_counters(offset); }
  // After the step, with the step's image count N: every rank's counters equal a single process's.
  void end_step(std::int64_t step_images) { set_counters(step_images); }

 private:
  struct Stream {
    std::string name;
    Dropout<T>* dropout;
    std::uint64_t elements_per_image;
    std::uint64_t step_start;
  };

  void set_counters(std::int64_t images) {
    if (images < 0) throw error("RandomStreams: image offset " + std::to_string(images) + ", expected >= 0");
    for (Stream& stream : streams_) {
      Generator& generator = stream.dropout->generator();
      generator.set_state(generator.seed(),
                          stream.step_start + static_cast<std::uint64_t>(images) * stream.elements_per_image);
    }
  }

  void measure(Module<T>& model, const Shape& image_shape) {
    std::vector<std::int64_t> dims{2};
    for (std::int64_t dim : image_shape.dims()) dims.push_back(dim);
    Tensor<T> probe{Shape(dims)};
    // What the probe forward may change: buffers (BatchNorm statistics), generators, the mode.
    std::vector<Tensor<T>> saved_buffers;
    for (auto& entry : model.named_buffers()) saved_buffers.push_back(*entry.second);
    std::vector<std::uint64_t> saved_counters;
    for (const Stream& stream : streams_) saved_counters.push_back(stream.dropout->generator().counter());
    const bool was_training = model.is_training();
    model.train();
    model.forward(probe);
    model.train(was_training);
    std::size_t index = 0;
    for (auto& entry : model.named_buffers()) *entry.second = saved_buffers[index++];
    for (std::size_t s = 0; s < streams_.size(); ++s) {
      Generator& generator = streams_[s].dropout->generator();
      const std::uint64_t used = generator.counter() - saved_counters[s];
      if (used % 2 != 0)
        throw error("RandomStreams: Dropout '" + streams_[s].name + "' drew " + std::to_string(used) +
                    " numbers for 2 images, expected a multiple of 2 (a fixed count per image)");
      streams_[s].elements_per_image = used / 2;
      generator.set_state(generator.seed(), saved_counters[s]);
    }
  }

  std::vector<Stream> streams_;
};

}  // namespace minicnn::distributed
