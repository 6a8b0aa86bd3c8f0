#pragma once
// The one list of layer cases that every per-layer check runs over (tests/test_layer_registry.cpp),
// in the spirit of ggml's test-backend-ops: the finite-difference gradient check, PyTorch
// parity, the empty batch, ONNX export and CUDA-vs-CPU. Adding a layer is adding one entry; a
// check an entry cannot take (no PyTorch case, no ONNX op, no GPU) is reported as a skip.
//
// An entry:
//   name          also the prefix of its case in tests/fixtures/layer_registry.bin, written by
//                 tools/make_fixtures.py --only registry from the same layer (REGISTRY_CASES)
//   make<T>(gen)  the layer in double or float, from one generic factory
//   shapes        the inputs the gradient check tries, batch first; the first one is also the
//                 PyTorch case's, the empty batch's and the ONNX sample's shape
//   inputs        smooth (uniform in [-1, 1)) or kink_free (see kink_free_input below)
//   mode          train or eval, set on the whole layer before any check
//   fixture       whether layer_registry.bin has the case
//   onnx_ops      op types the exported graph must contain; empty: the layer has no ONNX export
//   before_forward<T>(layer)  run before every forward (a dropout entry rewinds its generator)
//   gradcheck_abs_tol  the gradient check's absolute tolerance (gradcheck::Options::abs_tol)
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <minicnn/minicnn.hpp>

#include "gradcheck.hpp"

namespace layer_registry {

using minicnn::Generator;
using minicnn::Module;
using minicnn::Shape;
using minicnn::Tensor;

enum class Inputs { smooth, kink_free };
enum class Mode { train, eval };

template <typename T>
using Factory = std::function<std::unique_ptr<Module<T>>(Generator&)>;
template <typename T>
using Hook = std::function<void(Module<T>&)>;

struct Entry {
  std::string name;
  Factory<double> make_double;
  Factory<float> make_float;
  std::vector<Shape> shapes;
  Inputs inputs = Inputs::smooth;
  Mode mode = Mode::train;
  bool fixture = true;
  std::vector<std::string> onnx_ops;
  Hook<double> before_forward_double;
  Hook<float> before_forward_float;
  double gradcheck_abs_tol = gradcheck::Options{}.abs_tol;

  template <typename T>
  std::unique_ptr<Module<T>> make(Generator& gen) const {
    std::unique_ptr<Module<T>> layer;
    if constexpr (std::is_same<T, double>::value) layer = make_double(gen);
    else layer = make_float(gen);
    layer->train(mode == Mode::train);
    return layer;
  }
  template <typename T>
  void before_forward(Module<T>& layer) const {
    if constexpr (std::is_same<T, double>::value) {
      if (before_forward_double) before_forward_double(layer);
    } else if (before_forward_float) {
      before_forward_float(layer);
    }
  }

  // Chained setters for the list below.
  Entry& with_shapes(std::vector<Shape> values) { return shapes = std::move(values), *this; }
  Entry& kink_free() { return inputs = Inputs::kink_free, *this; }
  Entry& eval() { return mode = Mode::eval, *this; }
  Entry& without_fixture() { return fixture = false, *this; }
  // For deep composites: <layer(x), g> sums hundreds of terms through several batch
  // normalisations, and central differences of it carry an absolute error near 1e-8.
  Entry& deep_composite() { return gradcheck_abs_tol = 1e-7, *this; }
  Entry& exports_to(std::vector<std::string> ops) { return onnx_ops = std::move(ops), *this; }
  // `hook(scalar, layer)`: a generic lambda; `scalar` is a T (0.0 or 0.0f) naming the type.
  template <typename Hooked>
  Entry& before_each_forward(Hooked hook) {
    before_forward_double = [hook](Module<double>& layer) { hook(0.0, layer); };
    before_forward_float = [hook](Module<float>& layer) { hook(0.0f, layer); };
    return *this;
  }
};

// An entry from a generic factory `make(scalar, gen)`, where `scalar` is a T (0.0 or 0.0f)
// naming the type: [](auto scalar, Generator& gen) { return std::make_unique<ReLU<decltype(scalar)>>(); }
template <typename Make>
Entry layer(std::string name, Make make) {
  Entry entry;
  entry.name = std::move(name);
  entry.make_double = [make](Generator& gen) -> std::unique_ptr<Module<double>> { return make(0.0, gen); };
  entry.make_float = [make](Generator& gen) -> std::unique_ptr<Module<float>> { return make(0.0f, gen); };
  return entry;
}

// Distinct values (no max-pool ties), shuffled, within about +-4 so that every activation's
// curved part is covered, each at least half a spacing away from 0 and +-3 (the kinks of ReLU,
// LeakyReLU, Hardswish and Hardsigmoid): the spacing 3 / ceil(0.375 n) puts +-3 on a multiple
// of it, and the grid points at odd multiples of half of it. tools/make_fixtures.py's
// kink_free_grid draws from the same grid.
inline Tensor<double> kink_free_input(const Shape& shape, std::uint64_t seed) {
  const double count = static_cast<double>(Tensor<double>(shape).size());
  return gradcheck::kink_free_input(shape, seed, 3.0 / std::ceil(0.375 * count));
}

template <typename T>
Tensor<T> make_input(const Entry& entry, const Shape& shape, std::uint64_t seed) {
  Tensor<double> x(shape);
  if (entry.inputs == Inputs::kink_free) x = kink_free_input(shape, seed);
  else x.uniform(-1.0, 1.0, seed);
  if constexpr (std::is_same<T, double>::value) return x;
  else return x.template cast<T>();
}

// Every layer case. Shapes are small: the gradient check perturbs up to 400 entries of every
// tensor, with two forwards each.
inline std::vector<Entry> entries() {
  using namespace minicnn;
  std::vector<Entry> list;
  auto add = [&](Entry& entry) { list.push_back(entry); };

  // Conv2d: the plain path and every general argument.
  add(layer("conv2d_fashion", [](auto s, Generator& gen) {
        return std::make_unique<Conv2d<decltype(s)>>(1, 4, 3, 1, 1, true, gen);
      }).with_shapes({{2, 1, 6, 6}, {3, 1, 5, 7}}).exports_to({"Conv"}));
  add(layer("conv2d_stride2", [](auto s, Generator& gen) {
        return std::make_unique<Conv2d<decltype(s)>>(3, 2, 3, 2, 0, true, gen);
      }).with_shapes({{2, 3, 7, 9}, {1, 3, 8, 8}}).exports_to({"Conv"}));
  add(layer("conv2d_5x3_per_axis", [](auto s, Generator& gen) {
        return std::make_unique<Conv2d<decltype(s)>>(Conv2dOptions(3, 2, {5, 3}).stride({2, 1}).padding({1, 0}), gen);
      }).with_shapes({{2, 3, 9, 6}}).exports_to({"Conv"}));
  add(layer("conv2d_dilation", [](auto s, Generator& gen) {
        return std::make_unique<Conv2d<decltype(s)>>(
            Conv2dOptions(2, 2, 3).padding({2, 1}).dilation({2, 1}).bias(false), gen);
      }).with_shapes({{2, 2, 7, 6}}).exports_to({"Conv"}));
  add(layer("conv2d_groups", [](auto s, Generator& gen) {
        return std::make_unique<Conv2d<decltype(s)>>(Conv2dOptions(4, 6, 3).stride({1, 2}).padding(1).groups(2), gen);
      }).with_shapes({{2, 4, 6, 7}}).exports_to({"Conv"}));
  add(layer("conv2d_depthwise", [](auto s, Generator& gen) {
        return std::make_unique<Conv2d<decltype(s)>>(Conv2dOptions(3, 3, 3).padding(1).groups(3), gen);
      }).with_shapes({{2, 3, 5, 5}}).exports_to({"Conv"}));
  add(layer("conv2d_no_bias", [](auto s, Generator& gen) {
        return std::make_unique<Conv2d<decltype(s)>>(2, 2, 5, 2, 1, false, gen);
      }).with_shapes({{2, 2, 9, 8}}).exports_to({"Conv"}));

  // Element-wise activations (kink-free inputs where the function has a kink).
  const std::vector<Shape> activation_shapes{{2, 3, 4, 5}, {3, 7}};
  add(layer("relu", [](auto s, Generator&) { return std::make_unique<ReLU<decltype(s)>>(); })
          .with_shapes(activation_shapes).kink_free().exports_to({"Relu"}));
  add(layer("sigmoid", [](auto s, Generator&) { return std::make_unique<Sigmoid<decltype(s)>>(); })
          .with_shapes(activation_shapes).exports_to({"Sigmoid"}));
  add(layer("tanh", [](auto s, Generator&) { return std::make_unique<Tanh<decltype(s)>>(); })
          .with_shapes(activation_shapes).exports_to({"Tanh"}));
  add(layer("silu", [](auto s, Generator&) { return std::make_unique<SiLU<decltype(s)>>(); })
          .with_shapes(activation_shapes).exports_to({"Sigmoid", "Mul"}));
  add(layer("hardswish", [](auto s, Generator&) { return std::make_unique<Hardswish<decltype(s)>>(); })
          .with_shapes(activation_shapes).kink_free().exports_to({"HardSigmoid", "Mul"}));
  add(layer("hardsigmoid", [](auto s, Generator&) { return std::make_unique<Hardsigmoid<decltype(s)>>(); })
          .with_shapes(activation_shapes).kink_free().exports_to({"HardSigmoid"}));
  add(layer("gelu", [](auto s, Generator&) { return std::make_unique<GELU<decltype(s)>>("none"); })
          .with_shapes(activation_shapes).exports_to({"Erf"}));
  add(layer("gelu_tanh", [](auto s, Generator&) { return std::make_unique<GELU<decltype(s)>>("tanh"); })
          .with_shapes(activation_shapes).exports_to({"Tanh"}));
  add(layer("leaky_relu", [](auto s, Generator&) { return std::make_unique<LeakyReLU<decltype(s)>>(0.2); })
          .with_shapes(activation_shapes).kink_free().exports_to({"LeakyRelu"}));

  // Pooling (max pools on inputs without ties).
  add(layer("maxpool2d_2", [](auto s, Generator&) { return std::make_unique<MaxPool2d<decltype(s)>>(2); })
          .with_shapes({{2, 3, 8, 8}, {2, 3, 7, 9}}).kink_free().exports_to({"MaxPool"}));
  add(layer("maxpool2d_resnet", [](auto s, Generator&) { return std::make_unique<MaxPool2d<decltype(s)>>(3, 2, 1); })
          .with_shapes({{2, 3, 8, 7}}).kink_free().exports_to({"MaxPool"}));
  add(layer("maxpool2d_ceil", [](auto s, Generator&) {
        return std::make_unique<MaxPool2d<decltype(s)>>(3, 2, 0, 1, true);
      }).with_shapes({{2, 3, 8, 7}}).kink_free().exports_to({"MaxPool"}));
  add(layer("avgpool2d_padding", [](auto s, Generator&) { return std::make_unique<AvgPool2d<decltype(s)>>(3, 2, 1); })
          .with_shapes({{2, 3, 7, 8}}).exports_to({"AveragePool"}));
  add(layer("avgpool2d_ceil_exclude_pad", [](auto s, Generator&) {
        return std::make_unique<AvgPool2d<decltype(s)>>(3, 2, 1, true, false);
      }).with_shapes({{2, 3, 8, 7}}).exports_to({"AveragePool"}));
  add(layer("adaptive_avgpool2d_1", [](auto s, Generator&) { return std::make_unique<AdaptiveAvgPool2d<decltype(s)>>(1); })
          .with_shapes({{2, 3, 5, 7}}).exports_to({"GlobalAveragePool"}));
  // ONNX has no adaptive pool for output sizes that do not divide the input: no export.
  add(layer("adaptive_avgpool2d_nondividing", [](auto s, Generator&) {
        return std::make_unique<AdaptiveAvgPool2d<decltype(s)>>(3, 2);
      }).with_shapes({{2, 3, 5, 7}, {1, 2, 3, 2}}));
  add(layer("adaptive_maxpool2d", [](auto s, Generator&) {
        return std::make_unique<AdaptiveMaxPool2d<decltype(s)>>(3, 2);
      }).with_shapes({{2, 3, 5, 7}, {1, 2, 10, 4}}).kink_free());

  // Linear, Flatten, Dropout.
  add(layer("linear", [](auto s, Generator& gen) { return std::make_unique<Linear<decltype(s)>>(7, 5, true, gen); })
          .with_shapes({{4, 7}, {1, 7}}).exports_to({"Gemm"}));
  add(layer("linear_no_bias", [](auto s, Generator& gen) {
        return std::make_unique<Linear<decltype(s)>>(6, 3, false, gen);
      }).with_shapes({{2, 6}}).exports_to({"Gemm"}));
  add(layer("flatten", [](auto s, Generator&) { return std::make_unique<Flatten<decltype(s)>>(); })
          .with_shapes({{3, 2, 3, 4}}).exports_to({"Flatten"}));
  // The exporter emits nothing for Dropout (the identity at inference): no op to look for.
  add(layer("dropout_eval", [](auto s, Generator&) { return std::make_unique<Dropout<decltype(s)>>(0.3, 42); })
          .with_shapes({{4, 50}}).eval());
  // PyTorch's masks come from another generator: no PyTorch case. The mask is rewound before
  // every forward so that the function the gradient check differentiates is fixed.
  add(layer("dropout_train", [](auto s, Generator&) { return std::make_unique<Dropout<decltype(s)>>(0.3, 42); })
          .with_shapes({{4, 50}})
          .without_fixture()
          .before_each_forward([](auto s, auto& module) {
            dynamic_cast<Dropout<decltype(s)>&>(module).generator().set_state(42, 0);
          }));

  // Batch normalisation.
  add(layer("batchnorm2d_train", [](auto s, Generator&) { return std::make_unique<BatchNorm2d<decltype(s)>>(3); })
          .with_shapes({{4, 3, 3, 2}, {2, 3, 1, 1}}).exports_to({"BatchNormalization"}));
  add(layer("batchnorm2d_eval", [](auto s, Generator&) { return std::make_unique<BatchNorm2d<decltype(s)>>(3); })
          .with_shapes({{4, 3, 3, 2}}).eval().exports_to({"BatchNormalization"}));
  add(layer("batchnorm2d_affine_false", [](auto s, Generator&) {
        return std::make_unique<BatchNorm2d<decltype(s)>>(3, 1e-5, 0.1, false);
      }).with_shapes({{4, 3, 3, 2}}).exports_to({"BatchNormalization"}));
  add(layer("batchnorm1d", [](auto s, Generator&) { return std::make_unique<BatchNorm1d<decltype(s)>>(4); })
          .with_shapes({{5, 4}, {3, 4, 6}}).exports_to({"BatchNormalization"}));

  // Composites.
  add(layer("residual_conv", [](auto s, Generator& gen) {
        using T = decltype(s);
        auto branch = std::make_unique<Sequential<T>>();
        branch->template emplace<Conv2d<T>>(3, 3, 3, 1, 1, true, gen);
        branch->template emplace<Tanh<T>>();
        branch->template emplace<Conv2d<T>>(3, 3, 3, 1, 1, true, gen);
        return std::make_unique<Residual<T>>(std::move(branch));
      }).with_shapes({{2, 3, 5, 5}}).exports_to({"Conv", "Tanh", "Add"}));
  add(layer("squeeze_excitation", [](auto s, Generator& gen) {
        return std::make_unique<SqueezeExcitation<decltype(s)>>(4, 2, gen);
      }).with_shapes({{2, 4, 5, 5}}).exports_to({"GlobalAveragePool", "Conv", "Relu", "Sigmoid", "Mul"}));
  add(layer("basic_block", [](auto s, Generator& gen) { return std::make_unique<BasicBlock<decltype(s)>>(4, 4, 1, 0, gen); })
          .with_shapes({{2, 4, 6, 6}}).deep_composite().exports_to({"Conv", "BatchNormalization", "Relu", "Add"}));
  add(layer("basic_block_downsample", [](auto s, Generator& gen) {
        return std::make_unique<BasicBlock<decltype(s)>>(4, 8, 2, 0, gen);
      }).with_shapes({{2, 4, 7, 7}}).deep_composite().exports_to({"Conv", "BatchNormalization", "Relu", "Add"}));
  add(layer("basic_block_se", [](auto s, Generator& gen) {
        return std::make_unique<BasicBlock<decltype(s)>>(4, 4, 1, 2, gen);
      }).with_shapes({{2, 4, 6, 6}}).eval().deep_composite().exports_to({"Conv", "BatchNormalization", "Relu", "Sigmoid", "Mul", "Add"}));
  add(layer("bottleneck", [](auto s, Generator& gen) { return std::make_unique<Bottleneck<decltype(s)>>(4, 2, 2, 0, gen); })
          .with_shapes({{2, 4, 6, 6}}).deep_composite().exports_to({"Conv", "BatchNormalization", "Relu", "Add"}));
  add(layer("sequential_mixed", [](auto s, Generator& gen) {
        using T = decltype(s);
        auto net = std::make_unique<Sequential<T>>();
        // No bias before a BatchNorm in training: its gradient is zero in exact arithmetic, and
        // rounding noise cannot be compared relative to zero.
        net->template emplace<Conv2d<T>>(2, 4, 3, 1, 1, false, gen);
        net->template emplace<BatchNorm2d<T>>(4);
        net->template emplace<ReLU<T>>();
        net->template emplace<MaxPool2d<T>>(2);
        net->template emplace<Conv2d<T>>(4, 3, 3, 2, 1, true, gen);
        net->template emplace<SiLU<T>>();
        net->template emplace<AdaptiveAvgPool2d<T>>(2, 1);
        net->template emplace<Flatten<T>>();
        net->template emplace<Linear<T>>(6, 3, true, gen);
        return net;
      }).with_shapes({{2, 2, 8, 7}}).deep_composite().exports_to({"Conv", "BatchNormalization", "Relu", "MaxPool", "Sigmoid", "Mul", "AveragePool", "Flatten", "Gemm"}));
  add(layer("sequential_exportable", [](auto s, Generator& gen) {
        using T = decltype(s);
        auto net = std::make_unique<Sequential<T>>();
        net->template emplace<Conv2d<T>>(1, 4, 3, 1, 1, true, gen);
        net->template emplace<ReLU<T>>();
        net->template emplace<MaxPool2d<T>>(2);
        net->template emplace<AdaptiveAvgPool2d<T>>(1);
        net->template emplace<Flatten<T>>();
        net->template emplace<Linear<T>>(4, 3, true, gen);
        net->template emplace<Dropout<T>>(0.5);
        return net;
      }).with_shapes({{2, 1, 6, 6}}).eval().exports_to({"Conv", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm"}));
  return list;
}

}  // namespace layer_registry
