// Every check of every layer, driven by the one list in tests/layer_registry.hpp:
//   (a) gradients: the double-precision finite-difference check (gradcheck.hpp) on every shape;
//   (b) the empty batch: forward / backward on N = 0 give [0, ...] as PyTorch does, leave every
//       parameter gradient at 0 and every buffer unchanged (BatchNorm's statistics included);
//   (c) PyTorch parity against tests/fixtures/layer_registry.bin, in double and float: state
//       loaded by its state() names, then output, grad_input, every parameter gradient and
//       every buffer after the forward;
//   (d) ONNX export: a Sequential holding the layer exports, and the entry's ops are in it;
//   (e) CUDA against the CPU, in float, when this build and machine have a GPU.
// A check an entry cannot take is a reported skip (a WARN naming entry and check); the end
// prints, per check, how many entries ran it and how many skipped it.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "fixture.hpp"
#include "gradcheck.hpp"
#include "layer_registry.hpp"
#include "minicnn/io/onnx.hpp"
#include "protobuf_reader.hpp"

using layer_registry::Entry;
using minicnn::Device;
using minicnn::Generator;
using minicnn::Module;
using minicnn::Shape;
using minicnn::Tensor;
using minicnn::testing::compare;
using minicnn::testing::Difference;
using minicnn::testing::Fixture;
using minicnn::testing::parity_tolerance;
using minicnn::testing::scalar_name;

namespace {

constexpr double cuda_tolerance = 1e-4;

Shape with_batch(const Shape& shape, std::int64_t batch) {
  std::vector<std::int64_t> dims = shape.dims();
  dims[0] = batch;
  return Shape(dims);
}

// How many entries ran each check, how many skipped it.
struct Tally {
  int run = 0, skipped = 0;
};

// (a) d<layer(x), g>/dx and /dparams against central differences, on every shape.
void check_gradients(const Entry& entry) {
  Generator gen(11);
  auto layer = entry.make<double>(gen);
  for (std::size_t index = 0; index < entry.shapes.size(); ++index) {
    INFO(entry.name << ": gradient check on input " << entry.shapes[index].str());
    Tensor<double> x = layer_registry::make_input<double>(entry, entry.shapes[index], 3 + index);
    gradcheck::Options options;
    options.abs_tol = entry.gradcheck_abs_tol;
    options.before_forward = [&] { entry.before_forward(*layer); };
    const double worst = gradcheck::check_module(*layer, x, options);
    std::printf("[registry] %-32s gradcheck %-16s max relative error %.3g\n", entry.name.c_str(),
                entry.shapes[index].str().c_str(), worst);
  }
}

// (b) The empty batch: shapes as PyTorch gives them, nothing learnt, no statistic changed.
template <typename T>
void check_empty_batch(const Entry& entry) {
  Generator gen(13);
  auto layer = entry.make<T>(gen);
  const Shape shape = entry.shapes.front();
  std::vector<Tensor<T>> buffers_before;
  for (auto& named : layer->named_buffers()) buffers_before.push_back(*named.second);
  layer->zero_grad();
  const Tensor<T> x(with_batch(shape, 0));
  INFO(entry.name << " (" << scalar_name<T>() << "): the empty batch " << x.shape().str());
  entry.before_forward(*layer);
  const Tensor<T>& y = layer->forward(x);
  CHECK(y.shape() == with_batch(layer->output_shape(with_batch(shape, 1)), 0));
  // Named: a layer that is the identity (Dropout in eval) returns grad_output itself.
  const Tensor<T> grad_output(y.shape());
  const Tensor<T>& grad_input = layer->backward(grad_output);
  CHECK(grad_input.shape() == x.shape());
  for (auto& named : layer->named_parameters())
    for (std::int64_t i = 0; i < named.parameter->grad.size(); ++i) {
      INFO("grad of " << named.name << "[" << i << "]");
      CHECK(named.parameter->grad[i] == T(0));
    }
  std::size_t index = 0;
  for (auto& named : layer->named_buffers()) {
    const Tensor<T>& before = buffers_before[index++];
    for (std::int64_t i = 0; i < before.size(); ++i) {
      INFO("buffer " << named.first << "[" << i << "]");
      CHECK((*named.second)[i] == before[i]);
    }
  }
}

// (c) PyTorch parity in T; returns the worst norm-wise relative difference over every tensor.
template <typename T>
double check_parity(const Entry& entry, const Fixture& fixture) {
  const std::string prefix = entry.name + ".";
  Generator gen(17);
  auto layer = entry.make<T>(gen);

  // The layer's state and the PyTorch module's state_dict must hold the same names.
  std::vector<std::string> expected, found;
  for (auto& named : layer->state()) expected.push_back(prefix + named.name);
  for (const std::string& name : fixture.names()) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string local = name.substr(prefix.size());
    const bool record = local == "input" || local == "output" || local == "grad_output" || local == "grad_input" ||
                        local.compare(0, 5, "grad.") == 0 || local.compare(0, 6, "after.") == 0;
    if (!record) found.push_back(name);
  }
  std::sort(expected.begin(), expected.end());
  std::sort(found.begin(), found.end());
  CHECK(found == expected);

  const double tolerance = parity_tolerance<T>();
  double worst = 0;
  auto check = [&](const Tensor<T>& value, const std::string& local) {
    const Difference d = compare(value, fixture.tensor(prefix + local), fixture.path() + " " + prefix + local);
    INFO(prefix << local << " (" << scalar_name<T>() << "): max abs difference " << d.max_abs << ", reference max "
                << d.reference_max << ", relative " << d.relative());
    CHECK(d.relative() <= tolerance);
    worst = std::max(worst, d.relative());
  };
  const Tensor<T> input = fixture.tensor<T>(prefix + "input");
  const Tensor<T> grad_output = fixture.tensor<T>(prefix + "grad_output");
  // Twice on the same layer object: a kernel that leaves stale values in a reused buffer fails
  // the second run. The state is loaded again each time (training updates the statistics).
  for (int run = 0; run < 2; ++run) {
    INFO("run " << run);
    for (auto& named : layer->state()) {
      Tensor<T> value = fixture.tensor<T>(prefix + named.name);
      minicnn::check_same_shape(value.shape(), named.tensor->shape(), prefix + named.name);
      *named.tensor = value;
    }
    layer->zero_grad();
    entry.before_forward(*layer);
    check(layer->forward(input), "output");
    check(layer->backward(grad_output), "grad_input");
    for (auto& named : layer->named_parameters()) check(named.parameter->grad, "grad." + named.name);
    for (auto& named : layer->named_buffers()) check(*named.second, "after." + named.first);
  }
  return worst;
}

// (d) ONNX: the layer inside a Sequential exports, and every op the entry names is in the graph.
void check_onnx(const Entry& entry) {
  Generator gen(19);
  minicnn::Sequential<float> model;
  model.add(entry.make<float>(gen));
  model.train(entry.mode == layer_registry::Mode::train);
  minicnn::io::OnnxExportOptions options;
  std::vector<std::int64_t> sample = entry.shapes.front().dims();
  sample.erase(sample.begin());
  options.sample_shape = Shape(sample);
  std::string bytes;
  try {
    bytes = minicnn::io::onnx_model_bytes(model, options);
  } catch (const minicnn::error& failure) {
    FAIL_CHECK(entry.name << ": the entry names ONNX ops but the export fails: " << failure.what());
    return;
  }
  const std::vector<std::string> ops = protobuf_reader::onnx_op_types(bytes);
  for (const std::string& op : entry.onnx_ops) {
    INFO(entry.name << ": ONNX op " << op << " in the exported graph");
    CHECK(std::find(ops.begin(), ops.end(), op) != ops.end());
  }
}

// (e) The same float layer on the GPU and on the CPU: output, grad_input, parameter gradients
// and buffers, on every shape.
void check_cuda(const Entry& entry) {
  Generator cpu_gen(23), gpu_gen(23);
  auto cpu = entry.make<float>(cpu_gen);
  auto gpu = entry.make<float>(gpu_gen);
  gpu->to(Device::cuda);
  double worst = 0;
  auto check = [&](const Tensor<float>& on_gpu, const Tensor<float>& on_cpu, const std::string& what) {
    const Difference d = compare(on_gpu.copy_to(Device::cpu), on_cpu.template cast<double>(), entry.name + " " + what);
    INFO(entry.name << " " << what << ": CUDA vs CPU max abs difference " << d.max_abs << ", relative "
                    << d.relative());
    CHECK(d.relative() <= cuda_tolerance);
    worst = std::max(worst, d.relative());
  };
  for (std::size_t index = 0; index < entry.shapes.size(); ++index) {
    const Tensor<float> x = layer_registry::make_input<float>(entry, entry.shapes[index], 29 + index);
    const Tensor<float> x_gpu = x.copy_to(Device::cuda);
    cpu->zero_grad();
    gpu->zero_grad();
    entry.before_forward(*cpu);
    const Tensor<float>& y = cpu->forward(x);
    entry.before_forward(*gpu);
    check(gpu->forward(x_gpu), y, "output");
    Tensor<float> grad_output(y.shape());
    grad_output.uniform(-1.0f, 1.0f, 31 + index);
    const Tensor<float> grad_output_gpu = grad_output.copy_to(Device::cuda);
    check(gpu->backward(grad_output_gpu), cpu->backward(grad_output), "grad_input");
    auto cpu_parameters = cpu->named_parameters();
    auto gpu_parameters = gpu->named_parameters();
    for (std::size_t p = 0; p < cpu_parameters.size(); ++p)
      check(gpu_parameters[p].parameter->grad, cpu_parameters[p].parameter->grad, "grad." + cpu_parameters[p].name);
    auto cpu_buffers = cpu->named_buffers();
    auto gpu_buffers = gpu->named_buffers();
    for (std::size_t b = 0; b < cpu_buffers.size(); ++b)
      check(*gpu_buffers[b].second, *cpu_buffers[b].second, "buffer " + cpu_buffers[b].first);
  }
  std::printf("[registry] %-32s CUDA vs CPU (float) max relative difference %.3g\n", entry.name.c_str(), worst);
}

}  // namespace

TEST_CASE("every registry entry passes every check it can take", "[registry][gradcheck][parity][onnx][cuda]") {
  const std::vector<Entry> entries = layer_registry::entries();
  const Fixture fixture = Fixture::load("layer_registry.bin");
  std::map<std::string, Tally> tallies;
  const bool cuda = minicnn::cuda_available();

  for (const Entry& entry : entries) {
    INFO("registry entry " << entry.name);
    REQUIRE(!entry.shapes.empty());

    check_gradients(entry);
    ++tallies["gradients"].run;

    check_empty_batch<double>(entry);
    check_empty_batch<float>(entry);
    ++tallies["empty batch"].run;

    if (entry.fixture) {
      const double worst_double = check_parity<double>(entry, fixture);
      const double worst_float = check_parity<float>(entry, fixture);
      std::printf("[registry] %-32s PyTorch parity: max relative difference double %.3g, float %.3g\n",
                  entry.name.c_str(), worst_double, worst_float);
      ++tallies["PyTorch parity"].run;
    } else {
      WARN(entry.name << ": PyTorch parity skipped (no case in layer_registry.bin)");
      ++tallies["PyTorch parity"].skipped;
    }

    if (!entry.onnx_ops.empty()) {
      check_onnx(entry);
      ++tallies["ONNX export"].run;
    } else {
      WARN(entry.name << ": ONNX export skipped (the entry names no ONNX op)");
      ++tallies["ONNX export"].skipped;
    }

    if (cuda) {
      check_cuda(entry);
      ++tallies["CUDA vs CPU"].run;
    } else {
      WARN(entry.name << ": CUDA vs CPU skipped (no GPU in this build/machine: " << minicnn::cuda_status() << ")");
      ++tallies["CUDA vs CPU"].skipped;
    }
  }

  // Every case in the fixture belongs to an entry: a renamed entry cannot leave its case unread.
  for (const std::string& name : fixture.names()) {
    const bool claimed = std::any_of(entries.begin(), entries.end(), [&](const Entry& entry) {
      return entry.fixture && name.compare(0, entry.name.size() + 1, entry.name + ".") == 0;
    });
    INFO("layer_registry.bin entry " << name);
    CHECK(claimed);
  }

  for (const char* check : {"gradients", "empty batch", "PyTorch parity", "ONNX export", "CUDA vs CPU"})
    std::printf("[registry] %-15s %2d run, %2d skipped\n", check, tallies[check].run, tallies[check].skipped);
}
