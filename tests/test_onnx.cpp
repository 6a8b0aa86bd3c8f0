// ONNX export: the graph's structure, read back with a small protobuf decoder written here
// (independent of the writer). That onnx.checker and onnxruntime accept the files and agree
// with minicnn's logits is checked by the interop tests (tests/interop/).
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "minicnn/io/onnx.hpp"
#include "minicnn/models/fashion_cnn.hpp"
#include "protobuf_reader.hpp"
#include "temp_dir.hpp"

using Catch::Matchers::Contains;
using minicnn::Shape;
using minicnn::Tensor;
namespace io = minicnn::io;

namespace {

using protobuf_reader::all;
using protobuf_reader::decode;
using protobuf_reader::Field;
using protobuf_reader::one;
using protobuf_reader::strings;

struct Node {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;
  std::map<std::string, std::vector<std::int64_t>> attributes;  // INT as a one-element list
};

struct Graph {
  std::vector<Node> nodes;
  std::vector<std::string> initializer_names;
  std::map<std::string, std::pair<std::vector<std::int64_t>, std::string>> initializers;  // dims, raw_data
  std::string input_name, output_name;
  std::vector<std::string> input_dims, output_dims;  // "N" or a number
};

std::vector<std::string> value_info_dims(const std::string& value_info) {
  const std::string tensor_type = one(one(value_info, 2).bytes, 1).bytes;
  CHECK(one(tensor_type, 1).varint == 1);  // FLOAT
  std::vector<std::string> dims;
  for (const Field& dim : all(one(tensor_type, 2).bytes, 1)) {
    const Field value = decode(dim.bytes).at(0);
    dims.push_back(value.number == 2 ? value.bytes : std::to_string(value.varint));
  }
  return dims;
}

Graph read_model(const std::string& model) {
  CHECK(one(model, 1).varint == 8);  // ir_version
  CHECK(one(model, 2).bytes == "minicnn");
  const std::string opset = one(model, 8).bytes;
  CHECK(all(opset, 1).empty());  // the default domain
  CHECK(one(opset, 2).varint == 13);
  const std::string graph_bytes = one(model, 7).bytes;
  Graph graph;
  for (const Field& node_field : all(graph_bytes, 1)) {
    Node node;
    node.inputs = strings(node_field.bytes, 1);
    node.outputs = strings(node_field.bytes, 2);
    node.name = one(node_field.bytes, 3).bytes;
    node.op_type = one(node_field.bytes, 4).bytes;
    for (const Field& attribute : all(node_field.bytes, 5)) {
      const std::string name = one(attribute.bytes, 1).bytes;
      const std::uint64_t type = one(attribute.bytes, 20).varint;
      std::vector<std::int64_t> values;
      if (type == 2)
        values.push_back(static_cast<std::int64_t>(one(attribute.bytes, 3).varint));
      else if (type == 7)
        for (const Field& value : all(attribute.bytes, 8)) values.push_back(static_cast<std::int64_t>(value.varint));
      else
        FAIL("attribute " << name << " has type " << type);
      node.attributes[name] = values;
    }
    graph.nodes.push_back(node);
  }
  for (const Field& tensor : all(graph_bytes, 5)) {
    CHECK(one(tensor.bytes, 2).varint == 1);  // FLOAT
    std::vector<std::int64_t> dims;
    for (const Field& dim : all(tensor.bytes, 1)) dims.push_back(static_cast<std::int64_t>(dim.varint));
    const std::string name = one(tensor.bytes, 8).bytes;
    graph.initializer_names.push_back(name);
    graph.initializers[name] = {dims, one(tensor.bytes, 9).bytes};
  }
  const std::string input = one(graph_bytes, 11).bytes, output = one(graph_bytes, 12).bytes;
  graph.input_name = one(input, 1).bytes;
  graph.output_name = one(output, 1).bytes;
  graph.input_dims = value_info_dims(input);
  graph.output_dims = value_info_dims(output);
  return graph;
}

std::vector<std::string> op_types(const Graph& graph) {
  std::vector<std::string> ops;
  for (const Node& node : graph.nodes) ops.push_back(node.op_type);
  return ops;
}

// Every node reads the previous node's output (the graph is a chain from "input").
void check_chain(const Graph& graph) {
  std::string current = graph.input_name;
  for (const Node& node : graph.nodes) {
    REQUIRE(node.outputs.size() == 1);
    CHECK(node.inputs.at(0) == current);
    for (std::size_t i = 1; i < node.inputs.size(); ++i) CHECK(graph.initializers.count(node.inputs[i]) == 1);
    current = node.outputs[0];
  }
  CHECK(current == graph.output_name);
}

// A layer the exporter does not know.
struct Scale : minicnn::Module<float> {
  const Tensor<float>& forward(const Tensor<float>& input) override { return input; }
  const Tensor<float>& backward(const Tensor<float>& grad_output) override { return grad_output; }
  Shape output_shape(const Shape& input) const override { return input; }
  std::string type_name() const override { return "Scale"; }
};

}  // namespace

TEST_CASE("onnx: the FashionCNN exports as the tutorial's graph", "[io][onnx]") {
  minicnn::models::FashionCNN<float> model(0);
  const Graph graph = read_model(io::onnx_model_bytes(model));
  CHECK(op_types(graph) == std::vector<std::string>{"Conv", "Relu", "Conv", "Relu", "MaxPool", "Conv", "Relu", "Conv",
                                                    "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm", "Relu",
                                                    "Gemm"});
  check_chain(graph);
  CHECK(graph.input_name == "input");
  CHECK(graph.output_name == "logits");
  CHECK(graph.input_dims == std::vector<std::string>{"N", "1", "28", "28"});
  CHECK(graph.output_dims == std::vector<std::string>{"N", "10"});
  CHECK(graph.nodes[0].name == "feature_extractor.0");
  CHECK(graph.nodes[0].attributes.at("kernel_shape") == std::vector<std::int64_t>{3, 3});
  CHECK(graph.nodes[0].attributes.at("pads") == std::vector<std::int64_t>{1, 1, 1, 1});
  CHECK(graph.nodes[0].attributes.at("strides") == std::vector<std::int64_t>{1, 1});
  CHECK(graph.nodes[4].attributes.at("kernel_shape") == std::vector<std::int64_t>{2, 2});
  CHECK(graph.nodes[4].attributes.at("strides") == std::vector<std::int64_t>{2, 2});
  CHECK(graph.nodes[11].attributes.at("axis") == std::vector<std::int64_t>{1});
  CHECK(graph.nodes[12].attributes.at("transB") == std::vector<std::int64_t>{1});
  CHECK(graph.nodes[14].name == "classifier.5");

  // Initializers: the state_dict, in order, bit for bit.
  const auto parameters = model.named_parameters();
  REQUIRE(graph.initializer_names.size() == parameters.size());
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const auto& [name, parameter] = parameters[i];
    CHECK(graph.initializer_names[i] == name);
    const auto& [dims, raw] = graph.initializers.at(name);
    CHECK(dims == parameter->value.shape().dims());
    REQUIRE(raw.size() == sizeof(float) * static_cast<std::size_t>(parameter->value.size()));
    CHECK(std::memcmp(raw.data(), parameter->value.data(), raw.size()) == 0);
  }
}

TEST_CASE("onnx: nested Sequentials, strides, no bias, AveragePool and Dropout", "[io][onnx]") {
  minicnn::Sequential<float> model;
  model.emplace<minicnn::Conv2d<float>>(3, 4, 5, /*stride=*/2, /*padding=*/0, /*bias=*/false);  // 20x20 -> 8x8
  auto inner = std::make_unique<minicnn::Sequential<float>>();
  inner->emplace<minicnn::ReLU<float>>();
  inner->emplace<minicnn::MaxPool2d<float>>(3, 1);  // 8x8 -> 6x6
  model.add("block", std::move(inner));
  model.emplace<minicnn::AdaptiveAvgPool2d<float>>(2, 3);  // 6x6 -> 2x3: windows 3x2
  model.emplace<minicnn::Flatten<float>>();
  model.emplace<minicnn::Dropout<float>>(0.5);
  model.emplace<minicnn::Linear<float>>(24, 7, /*bias=*/false);

  io::OnnxExportOptions options;
  options.sample_shape = Shape{3, 20, 20};
  options.output_name = "scores";
  options.batch_dimension = "batch";
  const Graph graph = read_model(io::onnx_model_bytes(model, options));
  CHECK(op_types(graph) == std::vector<std::string>{"Conv", "Relu", "MaxPool", "AveragePool", "Flatten", "Gemm"});
  check_chain(graph);
  CHECK(graph.nodes[0].inputs.size() == 2);  // no bias
  CHECK(graph.nodes[0].attributes.at("strides") == std::vector<std::int64_t>{2, 2});
  CHECK(graph.nodes[0].attributes.at("kernel_shape") == std::vector<std::int64_t>{5, 5});
  CHECK(graph.nodes[1].name == "block.0");
  CHECK(graph.nodes[2].name == "block.1");
  CHECK(graph.nodes[2].attributes.at("strides") == std::vector<std::int64_t>{1, 1});
  CHECK(graph.nodes[3].attributes.at("kernel_shape") == std::vector<std::int64_t>{3, 2});
  CHECK(graph.nodes[3].attributes.at("strides") == std::vector<std::int64_t>{3, 2});
  CHECK(graph.nodes[5].name == "5");  // Dropout ("4") left out
  CHECK(graph.nodes[5].inputs.size() == 2);
  CHECK(graph.initializer_names == std::vector<std::string>{"0.weight", "5.weight"});
  CHECK(graph.input_dims == std::vector<std::string>{"batch", "3", "20", "20"});
  CHECK(graph.output_name == "scores");
  CHECK(graph.output_dims == std::vector<std::string>{"batch", "7"});
}

TEST_CASE("onnx: an output of rank 4 keeps its spatial dimensions", "[io][onnx]") {
  minicnn::Sequential<float> model;
  model.emplace<minicnn::Conv2d<float>>(1, 2, 3);
  const Graph graph = read_model(io::onnx_model_bytes(model));
  CHECK(graph.output_dims == std::vector<std::string>{"N", "2", "26", "26"});
  CHECK(graph.nodes.at(0).outputs.at(0) == "logits");
}

TEST_CASE("onnx: an adaptive pool whose size does not divide the input is refused", "[io][onnx]") {
  minicnn::Sequential<float> model;
  model.emplace<minicnn::Conv2d<float>>(1, 2, 3);          // 28x28 -> 26x26
  model.emplace<minicnn::AdaptiveAvgPool2d<float>>(4, 4);  // 26 % 4 != 0
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(model),
                      Contains("export_onnx: layer 1 (AdaptiveAvgPool2d(output_size=(4, 4))) gets a 26x26 input") &&
                          Contains("must divide the input size"));
}

TEST_CASE("onnx: an unsupported layer is named", "[io][onnx]") {
  minicnn::Sequential<float> model;
  model.emplace<minicnn::ReLU<float>>();
  auto inner = std::make_unique<minicnn::Sequential<float>>();
  inner->add(std::make_unique<Scale>());
  model.add("head", std::move(inner));
  REQUIRE_THROWS_WITH(
      io::onnx_model_bytes(model),
      Contains("export_onnx: layer head.0 (Scale()) has no ONNX export (supported: Sequential, Conv2d"));
  Scale alone;
  REQUIRE_THROWS_WITH(io::onnx_model_bytes<float>(alone),
                      Contains("export_onnx: the model (Scale()) has no ONNX export"));
}

TEST_CASE("onnx: input shapes and models that cannot be exported are refused", "[io][onnx]") {
  minicnn::models::FashionCNN<float> model(0);
  io::OnnxExportOptions options;
  options.sample_shape = Shape{3, 28, 28};
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(model, options),
                      Contains("export_onnx: layer feature_extractor.0 (Conv2d(1, 32") &&
                          Contains("does not accept the shape flowing into it"));
  options.sample_shape = Shape{1, 1, 28, 28};
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(model, options), Contains("must have 1 to 3 dimensions"));

  minicnn::Sequential<float> only_dropout;
  only_dropout.emplace<minicnn::Dropout<float>>(0.1);
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(only_dropout), Contains("the model has no layers that compute anything"));

  // A child named like the graph's output would make two values share a name.
  minicnn::Sequential<float> clash;
  clash.add("logits", std::make_unique<minicnn::ReLU<float>>());
  clash.add("x", std::make_unique<minicnn::ReLU<float>>());
  io::OnnxExportOptions clash_options;
  clash_options.output_name = "logits.output";
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(clash, clash_options), Contains("already used inside the graph"));
}

TEST_CASE("onnx: a double model exports float32 weights", "[io][onnx]") {
  minicnn::models::FashionCNN<double> model(2);
  const Graph graph = read_model(io::onnx_model_bytes(model));
  const auto& weight = model.classifier().named_parameters().back().parameter->value;  // classifier.5.bias
  const std::string& raw = graph.initializers.at("classifier.5.bias").second;
  REQUIRE(raw.size() == 10 * sizeof(float));
  for (int i = 0; i < 10; ++i) {
    float value;
    std::memcpy(&value, raw.data() + i * sizeof(float), sizeof(float));
    CHECK(value == static_cast<float>(weight[i]));
  }
}

TEST_CASE("onnx: export_onnx writes the model bytes atomically", "[io][onnx][atomic]") {
  minicnn::testing::TempDir dir;
  minicnn::models::FashionCNN<float> model(0);
  io::export_onnx(model, dir.file("model.onnx"));
  CHECK(dir.entries() == std::vector<std::string>{"model.onnx"});
  CHECK(minicnn::testing::read_file_bytes(dir.file("model.onnx")) == io::onnx_model_bytes(model));
  // The weights are most of the file: 74,602 floats.
  CHECK(minicnn::testing::read_file_bytes(dir.file("model.onnx")).size() > 74602u * 4u);
}
