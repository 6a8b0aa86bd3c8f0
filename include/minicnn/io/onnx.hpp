#pragma once
// ONNX export: io::export_onnx(model, "model.onnx") writes any Sequential (nested ones too) of
// Conv2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear and Dropout as an ONNX model that
// onnxruntime and onnx.checker accept:
//
//   ir_version 8, opset 13 (default domain), producer "minicnn"
//   graph input  "input"  float32 [N, C, H, W]   N is symbolic; [C, H, W] from the options,
//                                                [1, 28, 28] (FashionCNN's) by default
//   graph output "logits" float32 [N, ...]       e.g. [N, 10] for FashionCNN
//   Conv2d -> Conv, ReLU -> Relu, MaxPool2d -> MaxPool, Flatten -> Flatten (axis 1),
//   Linear -> Gemm (transB = 1), AdaptiveAvgPool2d -> GlobalAveragePool for output size 1x1,
//   AveragePool when the output size divides the input evenly (PyTorch's bins are then plain
//   windows), an error otherwise. Dropout is the identity at inference and is left out.
//   Parameters become initializers named as in the state_dict ("feature_extractor.0.weight").
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
#include <vector>

#include "minicnn/config.hpp"
#include "minicnn/error.hpp"
#include "minicnn/io/atomic_file.hpp"
#include "minicnn/io/byte_order.hpp"
#include "minicnn/layers/adaptive_avg_pool2d.hpp"
#include "minicnn/layers/conv2d.hpp"
#include "minicnn/layers/dropout.hpp"
#include "minicnn/layers/flatten.hpp"
#include "minicnn/layers/linear.hpp"
#include "minicnn/layers/maxpool2d.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/layers/relu.hpp"
#include "minicnn/layers/sequential.hpp"

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

struct Attribute {
  std::string name;
  std::vector<std::int64_t> values;
  bool is_list;  // INTS rather than INT
};

struct Node {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;
  std::vector<Attribute> attributes;
};

struct Initializer {
  std::string name;
  std::vector<std::int64_t> dims;
  std::vector<float> values;
};

// AttributeProto: name = 1, i = 3, ints = 8, type = 20 (INT = 2, INTS = 7).
inline ProtoWriter encode(const Attribute& attribute) {
  ProtoWriter out;
  out.string_field(1, attribute.name);
  if (attribute.is_list) {
    for (const std::int64_t value : attribute.values) out.int_field(8, value);
    out.int_field(20, 7);
  } else {
    out.int_field(3, attribute.values.at(0));
    out.int_field(20, 2);
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

// Walks the model in forward order, turning each layer into nodes and initializers while
// tracking the shape of the tensor flowing through (with batch 1) for pooling sizes and the
// output's declared shape.
template <typename T>
class GraphBuilder {
 public:
  explicit GraphBuilder(const OnnxExportOptions& options) : options_(options), current_(options.input_name) {
    if (options.sample_shape.rank() < 1 || options.sample_shape.rank() > 3)
      throw error("export_onnx: sample_shape " + options.sample_shape.str() +
                  " must have 1 to 3 dimensions (one sample, without the batch)");
    std::vector<std::int64_t> dims = options.sample_shape.dims();
    dims.insert(dims.begin(), 1);
    shape_ = Shape(dims);
    value_names_.insert(current_);
  }

  void visit(Module<T>& module, const std::string& path) {
    if (auto* sequence = dynamic_cast<Sequential<T>*>(&module)) {
      for (std::size_t i = 0; i < sequence->size(); ++i)
        visit((*sequence)[i], path.empty() ? sequence->child_name(i) : path + "." + sequence->child_name(i));
      return;
    }
    if (!supported(module))
      throw error("export_onnx: " + describe(module, path) +
                  " has no ONNX export (supported: Sequential, Conv2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, "
                  "Flatten, Linear, Dropout)");
    const Shape input = shape_;
    try {
      shape_ = module.output_shape(input);
    } catch (const error& failure) {
      throw error("export_onnx: " + describe(module, path) +
                  " does not accept the shape flowing into it: " + failure.what());
    }
    if (auto* conv = dynamic_cast<Conv2d<T>*>(&module)) {
      const IntPair k = conv->kernel_size(), s = conv->stride(), p = conv->padding(), d = conv->dilation();
      std::vector<std::string> inputs{current_, add_initializer(path, "weight", conv->weight.value)};
      if (conv->has_bias()) inputs.push_back(add_initializer(path, "bias", conv->bias.value));
      add_node("Conv", path, inputs,
               {{"kernel_shape", {k.height, k.width}, true},
                {"strides", {s.height, s.width}, true},
                {"pads", {p.height, p.width, p.height, p.width}, true},
                {"dilations", {d.height, d.width}, true},
                {"group", {conv->groups()}, false}});
    } else if (dynamic_cast<ReLU<T>*>(&module)) {
      add_node("Relu", path, {current_}, {});
    } else if (auto* pool = dynamic_cast<MaxPool2d<T>*>(&module)) {
      const IntPair k = pool->kernel_size(), s = pool->stride(), p = pool->padding(), d = pool->dilation();
      std::vector<Attribute> attributes{{"kernel_shape", {k.height, k.width}, true},
                                        {"strides", {s.height, s.width}, true}};
      // The optional attributes only when set, so a default pool exports as it always has.
      if (p != IntPair(0)) attributes.push_back({"pads", {p.height, p.width, p.height, p.width}, true});
      if (d != IntPair(1)) attributes.push_back({"dilations", {d.height, d.width}, true});
      if (pool->ceil_mode()) attributes.push_back({"ceil_mode", {1}, false});
      add_node("MaxPool", path, {current_}, attributes);
    } else if (auto* adaptive = dynamic_cast<AdaptiveAvgPool2d<T>*>(&module)) {
      add_adaptive_avg_pool(*adaptive, path, input);
    } else if (dynamic_cast<Flatten<T>*>(&module)) {
      add_node("Flatten", path, {current_}, {{"axis", {1}, false}});
    } else if (auto* linear = dynamic_cast<Linear<T>*>(&module)) {
      std::vector<std::string> inputs{current_, add_initializer(path, "weight", linear->weight.value)};
      if (linear->has_bias()) inputs.push_back(add_initializer(path, "bias", linear->bias.value));
      add_node("Gemm", path, inputs, {{"transB", {1}, false}});
    }
    // Dropout is the identity at inference: nothing to emit.
  }

  std::string finish() {
    if (nodes_.empty()) throw error("export_onnx: the model has no layers that compute anything");
    nodes_.back().outputs.back() = options_.output_name;
    if (!value_names_.insert(options_.output_name).second)
      throw error("export_onnx: the output name '" + options_.output_name + "' is already used inside the graph");

    ProtoWriter graph;
    for (const Node& node : nodes_) graph.message_field(1, encode(node));
    graph.string_field(2, "minicnn");
    for (const Initializer& initializer : initializers_) graph.message_field(5, encode(initializer));
    std::vector<std::int64_t> input_dims = options_.sample_shape.dims();
    std::vector<std::int64_t> output_dims = shape_.dims();
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
  static bool supported(Module<T>& module) {
    return dynamic_cast<Conv2d<T>*>(&module) || dynamic_cast<ReLU<T>*>(&module) ||
           dynamic_cast<MaxPool2d<T>*>(&module) || dynamic_cast<AdaptiveAvgPool2d<T>*>(&module) ||
           dynamic_cast<Flatten<T>*>(&module) || dynamic_cast<Linear<T>*>(&module) ||
           dynamic_cast<Dropout<T>*>(&module);
  }

  static std::string describe(const Module<T>& module, const std::string& path) {
    std::string text = module.repr();
    if (const auto newline = text.find('\n'); newline != std::string::npos) text = text.substr(0, newline) + "...";
    return (path.empty() ? std::string("the model") : "layer " + path) + " (" + text + ")";
  }

  std::string add_initializer(const std::string& path, const std::string& name, const Tensor<T>& value) {
    Initializer initializer;
    initializer.name = path.empty() ? name : path + "." + name;
    initializer.dims = value.shape().dims();
    initializer.values.assign(value.begin(), value.end());
    claim(initializer.name);
    initializers_.push_back(std::move(initializer));
    return initializers_.back().name;
  }

  void add_node(const std::string& op_type, const std::string& path, std::vector<std::string> inputs,
                std::vector<Attribute> attributes) {
    Node node;
    node.op_type = op_type;
    node.name = path.empty() ? op_type : path;
    node.inputs = std::move(inputs);
    // Intermediate values are named after the layer that computes them.
    node.outputs = {node.name + ".output"};
    claim(node.outputs.back());
    node.attributes = std::move(attributes);
    current_ = node.outputs.back();
    nodes_.push_back(std::move(node));
  }

  // PyTorch's adaptive bins are [floor(i H / out), ceil((i + 1) H / out)): plain windows of
  // size H / out when out divides H, which AveragePool computes exactly.
  void add_adaptive_avg_pool(const AdaptiveAvgPool2d<T>& pool, const std::string& path, const Shape& input) {
    const std::int64_t height = input[2], width = input[3];
    const std::int64_t out_height = pool.out_height(), out_width = pool.out_width();
    if (out_height == 1 && out_width == 1) {
      add_node("GlobalAveragePool", path, {current_}, {});
      return;
    }
    if (height % out_height != 0 || width % out_width != 0)
      throw error("export_onnx: " + describe(pool, path) + " gets a " + std::to_string(height) + "x" +
                  std::to_string(width) +
                  " input: ONNX has no adaptive average pool, so the output size must "
                  "divide the input size (or be 1x1)");
    const std::int64_t kernel_height = height / out_height, kernel_width = width / out_width;
    add_node("AveragePool", path, {current_},
             {{"kernel_shape", {kernel_height, kernel_width}, true}, {"strides", {kernel_height, kernel_width}, true}});
  }

  void claim(const std::string& name) {
    if (!value_names_.insert(name).second)
      throw error("export_onnx: two values of the graph would be named '" + name + "' (rename a layer)");
  }

  const OnnxExportOptions& options_;
  std::string current_;
  Shape shape_;
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
  builder.visit(model, "");
  return builder.finish();
}

// Writes `model` as an ONNX file, atomically.
template <typename T>
void export_onnx(Module<T>& model, const std::string& path, const OnnxExportOptions& options = {}) {
  write_file_atomically(path, onnx_model_bytes(model, options));
}

}  // namespace minicnn::io
