#pragma once
// ONNX export: io::export_onnx(model, "model.onnx") writes a model built from the layers below
// as an ONNX model that onnxruntime and onnx.checker accept:
//
//   ir_version 8, opset 13 (default domain), producer "minicnn"
//   graph input  "input"  float32 [N, C, H, W]   N is symbolic; [C, H, W] from the options,
//                                                [1, 28, 28] (FashionCNN's) by default
//   graph output "logits" float32 [N, ...]       e.g. [N, 10] for FashionCNN
//
// The graph is inference-mode (as model.eval()): BatchNorm uses its running statistics and
// Dropout is the identity (left out). Layers and their nodes:
//   Conv2d -> Conv (group, dilations), ReLU -> Relu, Linear -> Gemm (transB = 1),
//   Flatten -> Flatten (axis 1), BatchNorm1d/2d -> BatchNormalization (ones / zeros for scale and
//   B when affine = false; refused without running statistics),
//   Sigmoid, Tanh -> Sigmoid, Tanh; LeakyReLU -> LeakyRelu (alpha); Hardsigmoid -> HardSigmoid
//   (alpha 1/6, beta 1/2); Hardswish -> x * HardSigmoid(x); SiLU -> x * Sigmoid(x);
//   GELU -> x/2 (1 + Erf(x / sqrt 2)), GELU("tanh") -> its formula with Mul, Add and Tanh,
//   MaxPool2d -> MaxPool, AvgPool2d -> AveragePool (pads, count_include_pad, ceil_mode; ceil_mode
//   only where ONNX's output size is PyTorch's), AdaptiveAvgPool2d / AdaptiveMaxPool2d ->
//   GlobalAveragePool / GlobalMaxPool for output 1x1, AveragePool / MaxPool when the output size
//   divides the input (PyTorch's bins are then plain windows), an error otherwise;
//   Sequential: its children in order; Residual: Add(branch, shortcut or the input);
//   SqueezeExcitation: Mul(x, Sigmoid(fc2(Relu(fc1(GlobalAveragePool(x))))));
//   BasicBlock / Bottleneck: their conv -> bn -> relu stages, the optional SE, Add with the
//   downsample (or the input), Relu.
// Any other module, leaf or composite, is refused with an error naming its path.
//
// Names: a node is named by its module's path ("layer1.0.conv1"); nodes a module adds besides
// its main one append a suffix ("act.sigmoid"), and a module used again in a block takes "_1",
// "_2" as PyTorch's exporter does ("layer1.0.relu_1"). Node outputs are "<node name>.output".
// Initializers are named as in the state_dict ("layer1.0.bn1.running_mean"); the few that are not
// state are named after their module too ("act.sqrt_2", "bn.scale").
//
// The graph is float32 whatever T is (a double model's weights are rounded to float).
// The protobuf wire format is written by hand: the few messages needed (ModelProto,
// GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto) take a hundred lines,
// less than a dependency on libprotobuf and generated code would cost every user. Field
// numbers are those of onnx/onnx.proto.
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/config.hpp"
#include "minicnn/error.hpp"
#include "minicnn/io/atomic_file.hpp"
#include "minicnn/io/byte_order.hpp"
#include "minicnn/layers/activation.hpp"
#include "minicnn/layers/adaptive_avg_pool2d.hpp"
#include "minicnn/layers/adaptive_max_pool2d.hpp"
#include "minicnn/layers/avg_pool2d.hpp"
#include "minicnn/layers/batchnorm.hpp"
#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/dropout.hpp"
#include "minicnn/layers/flatten.hpp"
#include "minicnn/layers/linear.hpp"
#include "minicnn/layers/maxpool2d.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/layers/relu.hpp"
#include "minicnn/layers/residual.hpp"
#include "minicnn/layers/resnet_blocks.hpp"
#include "minicnn/layers/sequential.hpp"
#include "minicnn/layers/squeeze_excitation.hpp"

namespace minicnn::io {

struct OnnxExportOptions {
  // One input sample without the batch dimension: [C, H, W] for image models.
  // (Built from a vector: GCC 12 misreports an initializer list here as dangling.)
  Shape sample_shape = Shape(std::vector<std::int64_t>{1, 28, 28});
  std::string input_name = "input";
  std::string output_name = "logits";
  // The name of the symbolic batch dimension.
  std::string batch_dimension = "N";
};

namespace detail::onnx {

inline constexpr std::int64_t ir_version = 8;
inline constexpr std::int64_t opset_version = 13;
inline constexpr std::int64_t float_type = 1;  // TensorProto.DataType.FLOAT

// Protobuf wire format: every field is a key varint (field number << 3 | wire type) followed
// by a varint (type 0), a length-prefixed byte string (type 2) or 4 little-endian bytes (type 5).
class ProtoWriter {
 public:
  void int_field(int field, std::int64_t value) {
    key(field, 0);
    varint(static_cast<std::uint64_t>(value));  // negative values take 10 bytes, as protobuf does
  }
  void bytes_field(int field, const void* data, std::size_t size) {
    key(field, 2);
    varint(size);
    if (size > 0) bytes_.append(static_cast<const char*>(data), size);
  }
  void float_field(int field, float value) {
    key(field, 5);
    char little_endian[sizeof(float)];
    std::memcpy(little_endian, &value, sizeof(float));  // the host is little-endian (checked on entry)
    bytes_.append(little_endian, sizeof(float));
  }
  void string_field(int field, const std::string& text) { bytes_field(field, text.data(), text.size()); }
  void message_field(int field, const ProtoWriter& message) {
    bytes_field(field, message.bytes_.data(), message.bytes_.size());
  }
  const std::string& bytes() const { return bytes_; }

 private:
  void key(int field, int wire_type) {
    varint(static_cast<std::uint64_t>(field) << 3 | static_cast<std::uint64_t>(wire_type));
  }
  void varint(std::uint64_t value) {
    while (value >= 0x80) {
      bytes_ += static_cast<char>((value & 0x7F) | 0x80);
      value >>= 7;
    }
    bytes_ += static_cast<char>(value);
  }
  std::string bytes_;
};

// An attribute of one of the three types the exporter needs: INT, INTS or FLOAT.
struct Attribute {
  enum class Type { integer, integers, real };
  std::string name;
  Type type;
  std::vector<std::int64_t> integers;  // one value for Type::integer
  float real = 0;
};

inline Attribute integer_attribute(std::string name, std::int64_t value) {
  return {std::move(name), Attribute::Type::integer, {value}, 0};
}
inline Attribute integers_attribute(std::string name, std::vector<std::int64_t> values) {
  return {std::move(name), Attribute::Type::integers, std::move(values), 0};
}
inline Attribute float_attribute(std::string name, float value) {
  return {std::move(name), Attribute::Type::real, {}, value};
}

struct Node {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;
  std::vector<Attribute> attributes;
};

struct Initializer {
  std::string name;
  std::vector<std::int64_t> dims;  // empty for a scalar
  std::vector<float> values;
};

// AttributeProto: name = 1, f = 2, i = 3, ints = 8, type = 20 (FLOAT = 1, INT = 2, INTS = 7).
inline ProtoWriter encode(const Attribute& attribute) {
  ProtoWriter out;
  out.string_field(1, attribute.name);
  switch (attribute.type) {
    case Attribute::Type::integers:
      for (const std::int64_t value : attribute.integers) out.int_field(8, value);
      out.int_field(20, 7);
      break;
    case Attribute::Type::integer:
      out.int_field(3, attribute.integers.at(0));
      out.int_field(20, 2);
      break;
    case Attribute::Type::real:
      out.float_field(2, attribute.real);
      out.int_field(20, 1);
      break;
  }
  return out;
}

// NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
inline ProtoWriter encode(const Node& node) {
  ProtoWriter out;
  for (const std::string& input : node.inputs) out.string_field(1, input);
  for (const std::string& output : node.outputs) out.string_field(2, output);
  out.string_field(3, node.name);
  out.string_field(4, node.op_type);
  for (const Attribute& attribute : node.attributes) out.message_field(5, encode(attribute));
  return out;
}

// TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian floats).
inline ProtoWriter encode(const Initializer& initializer) {
  ProtoWriter out;
  for (const std::int64_t dim : initializer.dims) out.int_field(1, dim);
  out.int_field(2, float_type);
  out.string_field(8, initializer.name);
  out.bytes_field(9, initializer.values.data(), initializer.values.size() * sizeof(float));
  return out;
}

// ValueInfoProto {name = 1, type = 2} with TypeProto {tensor_type = 1} holding
// Tensor {elem_type = 1, shape = 2}; TensorShapeProto {dim = 1}; Dimension {dim_value = 1, dim_param = 2}.
inline ProtoWriter encode_value_info(const std::string& name, const std::string& batch_dimension,
                                     const std::vector<std::int64_t>& sample_dims) {
  ProtoWriter shape;
  ProtoWriter batch;
  batch.string_field(2, batch_dimension);
  shape.message_field(1, batch);
  for (const std::int64_t dim : sample_dims) {
    ProtoWriter fixed;
    fixed.int_field(1, dim);
    shape.message_field(1, fixed);
  }
  ProtoWriter tensor_type;
  tensor_type.int_field(1, float_type);
  tensor_type.message_field(2, shape);
  ProtoWriter type;
  type.message_field(1, tensor_type);
  ProtoWriter out;
  out.string_field(1, name);
  out.message_field(2, type);
  return out;
}

// A value of the graph: its name and its shape with batch 1.
struct Value {
  std::string name;
  Shape shape;
};

// Walks the model in forward order, turning each module into nodes and initializers. Every
// module maps a named input value to a named output value, so a block may fork (several nodes
// read one value) and join (Add, Mul); shapes (with batch 1) travel along for pooling sizes and
// the output's declared shape.
//
// Dispatch: Sequential is recursed into generically; Residual, SqueezeExcitation, BasicBlock and
// Bottleneck are composites whose wiring is known here; every other module must be a leaf with
// an exporter in export_leaf (one dynamic_cast per type, like PyTorch's symbolic registry).
template <typename T>
class GraphBuilder {
 public:
  explicit GraphBuilder(const OnnxExportOptions& options) : options_(options) {
    if (options.sample_shape.rank() < 1 || options.sample_shape.rank() > 3)
      throw error("export_onnx: sample_shape " + options.sample_shape.str() +
                  " must have 1 to 3 dimensions (one sample, without the batch)");
    std::vector<std::int64_t> dims = options.sample_shape.dims();
    dims.insert(dims.begin(), 1);
    input_ = Value{options.input_name, Shape(dims)};
    value_names_.insert(input_.name);
  }

  const Value& input() const { return input_; }

  // The value `module` (at `path`, "" for the model) computes from `input`.
  Value visit(Module<T>& module, const std::string& path, const Value& input) {
    if (auto* sequence = dynamic_cast<Sequential<T>*>(&module)) {
      Value value = input;
      for (std::size_t i = 0; i < sequence->size(); ++i)
        value = visit((*sequence)[i], join(path, sequence->child_name(i)), value);
      return value;
    }
    if (auto* residual = dynamic_cast<Residual<T>*>(&module)) {
      const Shape shape = checked_output_shape(module, path, input.shape);
      const Value branch = visit(residual->branch(), join(path, "branch"), input);
      const Value shortcut = residual->shortcut() ? visit(*residual->shortcut(), join(path, "shortcut"), input) : input;
      return add_node("Add", path, {branch.name, shortcut.name}, {}, shape);
    }
    if (dynamic_cast<SqueezeExcitation<T>*>(&module)) {
      const Shape shape = checked_output_shape(module, path, input.shape);
      return add_node("Mul", path, {input.name, squeeze_excitation_scale(module, path, input).name}, {}, shape);
    }
    if (auto* block = dynamic_cast<::minicnn::detail::ResidualBlock<T>*>(&module))
      return residual_block(*block, path, input);
    if (module.num_children() > 0) throw unsupported(module, path);
    const Shape shape = checked_output_shape(module, path, input.shape);
    return export_leaf(module, path, input, shape);
  }

  std::string finish(const Value& output) {
    if (output.name == input_.name) throw error("export_onnx: the model has no layers that compute anything");
    if (!value_names_.insert(options_.output_name).second)
      throw error("export_onnx: the output name '" + options_.output_name + "' is already used inside the graph");
    for (Node& node : nodes_) {
      for (std::string& name : node.inputs)
        if (name == output.name) name = options_.output_name;
      for (std::string& name : node.outputs)
        if (name == output.name) name = options_.output_name;
    }

    ProtoWriter graph;
    for (const Node& node : nodes_) graph.message_field(1, encode(node));
    graph.string_field(2, "minicnn");
    for (const Initializer& initializer : initializers_) graph.message_field(5, encode(initializer));
    std::vector<std::int64_t> input_dims = options_.sample_shape.dims();
    std::vector<std::int64_t> output_dims = output.shape.dims();
    output_dims.erase(output_dims.begin());
    graph.message_field(11, encode_value_info(options_.input_name, options_.batch_dimension, input_dims));
    graph.message_field(12, encode_value_info(options_.output_name, options_.batch_dimension, output_dims));

    // ModelProto: ir_version = 1, producer_name = 2, producer_version = 3, graph = 7,
    // opset_import = 8 (OperatorSetIdProto: domain = 1, empty for the default; version = 2).
    ProtoWriter opset;
    opset.int_field(2, opset_version);
    ProtoWriter model;
    model.int_field(1, ir_version);
    model.string_field(2, "minicnn");
    model.string_field(3, MINICNN_VERSION_STRING);
    model.message_field(7, graph);
    model.message_field(8, opset);
    return model.bytes();
  }

 private:
  static constexpr const char* supported_list =
      "Sequential, Conv2d, ReLU, Sigmoid, Tanh, SiLU, Hardswish, Hardsigmoid, GELU, LeakyReLU, BatchNorm1d, "
      "BatchNorm2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, Flatten, Linear, Dropout, Residual, "
      "SqueezeExcitation, BasicBlock, Bottleneck";

  static std::string join(const std::string& path, const std::string& name) {
    return path.empty() ? name : path + "." + name;
  }

  static std::string describe(const Module<T>& module, const std::string& path) {
    std::string text = module.repr();
    if (const auto newline = text.find('\n'); newline != std::string::npos) text = text.substr(0, newline) + "...";
    return (path.empty() ? std::string("the model") : "layer " + path) + " (" + text + ")";
  }

  static error unsupported(const Module<T>& module, const std::string& path) {
    return error("export_onnx: " + describe(module, path) + " has no ONNX export (supported: " + supported_list + ")");
  }

  static Shape checked_output_shape(const Module<T>& module, const std::string& path, const Shape& input) {
    try {
      return module.output_shape(input);
    } catch (const error& failure) {
      throw error("export_onnx: " + describe(module, path) +
                  " does not accept the shape flowing into it: " + failure.what());
    }
  }

  // The child registered as `name`, which the composite's documented layout guarantees.
  static Module<T>& child_named(Module<T>& module, const std::string& path, const std::string& name) {
    if (Module<T>* found = find_child(module, name)) return *found;
    throw error("export_onnx: " + describe(module, path) + " has no child '" + name + "'");
  }
  static Module<T>* find_child(Module<T>& module, const std::string& name) {
    for (std::size_t i = 0; i < module.num_children(); ++i)
      if (module.child_name(i) == name) return &module.child(i);
    return nullptr;
  }

  // SE's gate [N, C, 1, 1] = scale_activation(fc2(activation(fc1(avgpool(x))))), children in
  // the order they run (not the order they are registered in).
  Value squeeze_excitation_scale(Module<T>& se, const std::string& path, const Value& input) {
    Value value = input;
    for (const char* name : {"avgpool", "fc1", "activation", "fc2", "scale_activation"})
      value = visit(child_named(se, path, name), join(path, name), value);
    return value;
  }

  // torchvision's block: conv_i -> bn_i (-> relu between stages) [-> se], + downsample(x) or x,
  // relu. The one "relu" module runs several times; its later uses are named relu_1, relu_2, as
  // PyTorch's exporter names repeated calls of a module.
  Value residual_block(::minicnn::detail::ResidualBlock<T>& block, const std::string& path, const Value& input) {
    const Shape shape = checked_output_shape(block, path, input.shape);
    Module<T>& relu = child_named(block, path, "relu");
    int relu_uses = 0;
    const auto apply_relu = [&](const Value& value) {
      const std::string name = relu_uses == 0 ? "relu" : "relu_" + std::to_string(relu_uses);
      ++relu_uses;
      return visit(relu, join(path, name), value);
    };
    Value value = input;
    for (int stage = 1; find_child(block, "conv" + std::to_string(stage)); ++stage) {
      if (stage > 1) value = apply_relu(value);
      const std::string index = std::to_string(stage);
      value = visit(child_named(block, path, "conv" + index), join(path, "conv" + index), value);
      value = visit(child_named(block, path, "bn" + index), join(path, "bn" + index), value);
    }
    if (block.se()) value = visit(*block.se(), join(path, "se"), value);
    const Value shortcut = block.downsample() ? visit(*block.downsample(), join(path, "downsample"), input) : input;
    return apply_relu(add_node("Add", path, {value.name, shortcut.name}, {}, shape));
  }

  Value export_leaf(Module<T>& module, const std::string& path, const Value& input, const Shape& shape) {
    if (auto* conv = dynamic_cast<Conv2d<T>*>(&module)) {
      const IntPair k = conv->kernel_size(), s = conv->stride(), p = conv->padding(), d = conv->dilation();
      std::vector<std::string> inputs{input.name, add_initializer(path, "weight", conv->weight.value)};
      if (conv->has_bias()) inputs.push_back(add_initializer(path, "bias", conv->bias.value));
      return add_node(
          "Conv", path, inputs,
          {integers_attribute("kernel_shape", {k.height, k.width}), integers_attribute("strides", {s.height, s.width}),
           integers_attribute("pads", {p.height, p.width, p.height, p.width}),
           integers_attribute("dilations", {d.height, d.width}), integer_attribute("group", conv->groups())},
          shape);
    }
    if (dynamic_cast<ReLU<T>*>(&module)) return add_node("Relu", path, {input.name}, {}, shape);
    ops::Activation kind{};
    double parameter = 0;
    if (find_activation<ops::Activation::sigmoid, ops::Activation::tanh, ops::Activation::silu,
                        ops::Activation::hardswish, ops::Activation::hardsigmoid, ops::Activation::gelu,
                        ops::Activation::leaky_relu>(module, kind, parameter))
      return activation(kind, parameter, path, input);
    if (auto* norm = dynamic_cast<BatchNorm2d<T>*>(&module)) return batch_norm(*norm, path, input);
    if (auto* norm = dynamic_cast<BatchNorm1d<T>*>(&module)) return batch_norm(*norm, path, input);
    if (auto* pool = dynamic_cast<MaxPool2d<T>*>(&module)) {
      const IntPair k = pool->kernel_size(), s = pool->stride(), p = pool->padding(), d = pool->dilation();
      std::vector<Attribute> attributes{integers_attribute("kernel_shape", {k.height, k.width}),
                                        integers_attribute("strides", {s.height, s.width})};
      // The optional attributes only when set, so a default pool exports as it always has.
      if (p != IntPair(0)) attributes.push_back(integers_attribute("pads", {p.height, p.width, p.height, p.width}));
      if (d != IntPair(1)) attributes.push_back(integers_attribute("dilations", {d.height, d.width}));
      if (pool->ceil_mode()) {
        check_ceil_mode(module, path, input.shape, shape, k, s, p, d);
        attributes.push_back(integer_attribute("ceil_mode", 1));
      }
      return add_node("MaxPool", path, {input.name}, attributes, shape);
    }
    if (auto* pool = dynamic_cast<AvgPool2d<T>*>(&module)) {
      const IntPair k = pool->kernel_size(), s = pool->stride(), p = pool->padding();
      std::vector<Attribute> attributes{integers_attribute("kernel_shape", {k.height, k.width}),
                                        integers_attribute("strides", {s.height, s.width})};
      if (p != IntPair(0)) {
        attributes.push_back(integers_attribute("pads", {p.height, p.width, p.height, p.width}));
        // ONNX's default is 0, PyTorch's True; it only matters where there is padding.
        if (pool->count_include_pad()) attributes.push_back(integer_attribute("count_include_pad", 1));
      }
      if (pool->ceil_mode()) {
        check_ceil_mode(module, path, input.shape, shape, k, s, p, IntPair(1));
        attributes.push_back(integer_attribute("ceil_mode", 1));
      }
      return add_node("AveragePool", path, {input.name}, attributes, shape);
    }
    if (auto* adaptive = dynamic_cast<AdaptiveAvgPool2d<T>*>(&module))
      return adaptive_pool(module, "Average", adaptive->out_height(), adaptive->out_width(), path, input, shape);
    if (auto* adaptive = dynamic_cast<AdaptiveMaxPool2d<T>*>(&module))
      return adaptive_pool(module, "Max", adaptive->out_height(), adaptive->out_width(), path, input, shape);
    if (dynamic_cast<Flatten<T>*>(&module))
      return add_node("Flatten", path, {input.name}, {integer_attribute("axis", 1)}, shape);
    if (auto* linear = dynamic_cast<Linear<T>*>(&module)) {
      std::vector<std::string> inputs{input.name, add_initializer(path, "weight", linear->weight.value)};
      if (linear->has_bias()) inputs.push_back(add_initializer(path, "bias", linear->bias.value));
      return add_node("Gemm", path, inputs, {integer_attribute("transB", 1)}, shape);
    }
    // Dropout is the identity at inference: nothing to emit.
    if (dynamic_cast<Dropout<T>*>(&module)) return input;
    throw unsupported(module, path);
  }

  template <ops::Activation... Kinds>
  static bool find_activation(Module<T>& module, ops::Activation& kind, double& parameter) {
    const auto match = [&](auto* layer) {
      if (layer == nullptr) return false;
      kind = layer->kind();  // GELU's kind says whether it is the tanh approximation
      parameter = layer->parameter();
      return true;
    };
    return (match(dynamic_cast<ElementwiseActivation<T, Kinds>*>(&module)) || ...);
  }

  // Opset 13 has Sigmoid, Tanh, LeakyRelu, HardSigmoid and Erf; SiLU, Hardswish and both GELUs are
  // written with them. The node computing the module's output carries its path; the others
  // carry the path and a suffix, and constants are scalar initializers named the same way.
  Value activation(ops::Activation kind, double parameter, const std::string& path, const Value& x) {
    namespace constants = ops::kernels::activation_constants;
    const Shape& shape = x.shape;
    switch (kind) {
      case ops::Activation::sigmoid:
        return add_node("Sigmoid", path, {x.name}, {}, shape);
      case ops::Activation::tanh:
        return add_node("Tanh", path, {x.name}, {}, shape);
      case ops::Activation::leaky_relu:
        return add_node("LeakyRelu", path, {x.name}, {float_attribute("alpha", static_cast<float>(parameter))}, shape);
      case ops::Activation::hardsigmoid:
        return add_node("HardSigmoid", path, {x.name}, hardsigmoid_attributes(), shape);
      case ops::Activation::hardswish: {  // x * hardsigmoid(x) (HardSwish is opset 14)
        const Value gate =
            add_node("HardSigmoid", join(path, "hardsigmoid"), {x.name}, hardsigmoid_attributes(), shape);
        return add_node("Mul", path, {x.name, gate.name}, {}, shape);
      }
      case ops::Activation::silu: {  // x * sigmoid(x)
        const Value gate = add_node("Sigmoid", join(path, "sigmoid"), {x.name}, {}, shape);
        return add_node("Mul", path, {x.name, gate.name}, {}, shape);
      }
      case ops::Activation::gelu: {  // x / 2 (1 + erf(x / sqrt 2))
        const Value scaled =
            add_node("Div", join(path, "div"), {x.name, add_constant(path, "sqrt_2", constants::sqrt_two)}, {}, shape);
        const Value erf = add_node("Erf", join(path, "erf"), {scaled.name}, {}, shape);
        return half_x_times_one_plus(erf, path, x);
      }
      case ops::Activation::gelu_tanh: {  // x / 2 (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        const Value square = add_node("Mul", join(path, "square"), {x.name, x.name}, {}, shape);
        const Value cube = add_node("Mul", join(path, "cube"), {square.name, x.name}, {}, shape);
        const Value cubic_term =
            add_node("Mul", join(path, "cubic_term"),
                     {cube.name, add_constant(path, "cubic", constants::gelu_tanh_cubic)}, {}, shape);
        const Value inner = add_node("Add", join(path, "inner"), {x.name, cubic_term.name}, {}, shape);
        const Value scaled =
            add_node("Mul", join(path, "scaled"),
                     {inner.name, add_constant(path, "sqrt_2_over_pi", constants::gelu_tanh_scale)}, {}, shape);
        const Value tanh = add_node("Tanh", join(path, "tanh"), {scaled.name}, {}, shape);
        return half_x_times_one_plus(tanh, path, x);
      }
      default:
        throw error("export_onnx: layer " + path + ": activation " + ops::activation_name(kind) +
                    " has no ONNX export");
    }
  }

  // GELU's common tail: x / 2 (1 + value).
  Value half_x_times_one_plus(const Value& value, const std::string& path, const Value& x) {
    const Value one_plus =
        add_node("Add", join(path, "add"), {value.name, add_constant(path, "one", 1.0)}, {}, x.shape);
    const Value product = add_node("Mul", join(path, "mul"), {x.name, one_plus.name}, {}, x.shape);
    return add_node("Mul", path, {product.name, add_constant(path, "half", 0.5)}, {}, x.shape);
  }

  // PyTorch's hardsigmoid relu6(x + 3) / 6 is ONNX's max(0, min(1, alpha x + beta)).
  static std::vector<Attribute> hardsigmoid_attributes() {
    return {float_attribute("alpha", 1.0f / 6.0f), float_attribute("beta", 0.5f)};
  }

  // Inference BatchNormalization with the running statistics. Without them PyTorch normalises
  // with the batch's own statistics even in eval mode, which BatchNormalization cannot express.
  template <int Dims>
  Value batch_norm(BatchNorm<T, Dims>& norm, const std::string& path, const Value& input) {
    if (!norm.track_running_stats())
      throw error("export_onnx: " + describe(norm, path) +
                  " has no running statistics (track_running_stats=False), so it normalises with batch statistics "
                  "at inference, which ONNX's BatchNormalization cannot express");
    std::vector<std::string> inputs{input.name};
    if (norm.affine()) {
      inputs.push_back(add_initializer(path, "weight", norm.weight.value));
      inputs.push_back(add_initializer(path, "bias", norm.bias.value));
    } else {  // BatchNormalization requires scale and B: the identity affine transform
      const std::vector<std::int64_t> dims{norm.num_features()};
      inputs.push_back(add_values(join(path, "scale"), dims, std::vector<float>(dims[0], 1.0f)));
      inputs.push_back(add_values(join(path, "B"), dims, std::vector<float>(dims[0], 0.0f)));
    }
    inputs.push_back(add_initializer(path, "running_mean", norm.running_mean));
    inputs.push_back(add_initializer(path, "running_var", norm.running_var));
    return add_node("BatchNormalization", path, inputs, {float_attribute("epsilon", static_cast<float>(norm.eps()))},
                    input.shape);
  }

  // PyTorch's adaptive bins are [floor(i H / out), ceil((i + 1) H / out)): plain windows of
  // size H / out when out divides H, which AveragePool / MaxPool compute exactly.
  Value adaptive_pool(const Module<T>& pool, const std::string& kind, std::int64_t out_height, std::int64_t out_width,
                      const std::string& path, const Value& input, const Shape& shape) {
    const std::int64_t height = input.shape[2], width = input.shape[3];
    if (out_height == 1 && out_width == 1) return add_node("Global" + kind + "Pool", path, {input.name}, {}, shape);
    if (height % out_height != 0 || width % out_width != 0)
      throw error("export_onnx: " + describe(pool, path) + " gets a " + std::to_string(height) + "x" +
                  std::to_string(width) + " input: ONNX has no adaptive " + (kind == "Max" ? "max" : "average") +
                  " pool, so the output size must divide the input size (or be 1x1)");
    const std::int64_t kernel_height = height / out_height, kernel_width = width / out_width;
    return add_node(kind + "Pool", path, {input.name},
                    {integers_attribute("kernel_shape", {kernel_height, kernel_width}),
                     integers_attribute("strides", {kernel_height, kernel_width})},
                    shape);
  }

  // ONNX opset 13's ceil_mode rounds the output size up; PyTorch then drops a last window that
  // would start in the right padding. Exported only where the two agree.
  static void check_ceil_mode(const Module<T>& pool, const std::string& path, const Shape& input, const Shape& output,
                              IntPair k, IntPair s, IntPair p, IntPair d) {
    const auto onnx_size = [](std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                              std::int64_t dilation) {
      const std::int64_t span = in + 2 * padding - dilation * (kernel - 1) - 1;
      return (span + stride - 1) / stride + 1;
    };
    const std::int64_t onnx_height = onnx_size(input[2], k.height, s.height, p.height, d.height);
    const std::int64_t onnx_width = onnx_size(input[3], k.width, s.width, p.width, d.width);
    if (onnx_height != output[2] || onnx_width != output[3])
      throw error("export_onnx: " + describe(pool, path) + " gets a " + std::to_string(input[2]) + "x" +
                  std::to_string(input[3]) + " input: with ceil_mode PyTorch gives " + std::to_string(output[2]) + "x" +
                  std::to_string(output[3]) + " (its last window would start in the padding) but ONNX opset 13 gives " +
                  std::to_string(onnx_height) + "x" + std::to_string(onnx_width));
  }

  std::string add_initializer(const std::string& path, const std::string& name, const Tensor<T>& value) {
    return add_values(join(path, name), value.shape().dims(), std::vector<float>(value.begin(), value.end()));
  }
  std::string add_constant(const std::string& path, const std::string& name, double value) {
    return add_values(join(path, name), {}, {static_cast<float>(value)});
  }
  std::string add_values(const std::string& name, std::vector<std::int64_t> dims, std::vector<float> values) {
    claim(name);
    initializers_.push_back({name, std::move(dims), std::move(values)});
    return initializers_.back().name;
  }

  Value add_node(const std::string& op_type, const std::string& path, std::vector<std::string> inputs,
                 std::vector<Attribute> attributes, const Shape& shape) {
    Node node;
    node.op_type = op_type;
    node.name = path.empty() ? op_type : path;
    node.inputs = std::move(inputs);
    // Intermediate values are named after the node that computes them.
    node.outputs = {node.name + ".output"};
    claim(node.outputs.back());
    node.attributes = std::move(attributes);
    nodes_.push_back(std::move(node));
    return Value{nodes_.back().outputs.back(), shape};
  }

  void claim(const std::string& name) {
    if (!value_names_.insert(name).second)
      throw error("export_onnx: two values of the graph would be named '" + name + "' (rename a layer)");
  }

  const OnnxExportOptions& options_;
  Value input_;
  std::vector<Node> nodes_;
  std::vector<Initializer> initializers_;
  std::set<std::string> value_names_;
};

}  // namespace detail::onnx

// The serialized ONNX ModelProto for `model` (see the top of this file).
template <typename T>
std::string onnx_model_bytes(Module<T>& model, const OnnxExportOptions& options = {}) {
  require_little_endian_host("export_onnx");
  detail::onnx::GraphBuilder<T> builder(options);
  return builder.finish(builder.visit(model, "", builder.input()));
}

// Writes `model` as an ONNX file, atomically.
template <typename T>
void export_onnx(Module<T>& model, const std::string& path, const OnnxExportOptions& options = {}) {
  write_file_atomically(path, onnx_model_bytes(model, options));
}

}  // namespace minicnn::io
