// ONNX export: the graph's structure, read back with a small protobuf decoder written here
// (independent of the writer). That onnx.checker and onnxruntime accept the files and agree
// with minicnn's logits is checked by the interop tests (tests/interop/).
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "minicnn/io/onnx.hpp"
#include "minicnn/layers/activation.hpp"
#include "minicnn/layers/batchnorm.hpp"
#include "minicnn/layers/resnet_blocks.hpp"
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
  std::map<std::string, float> float_attributes;
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
      else if (type == 1) {
        const Field value = one(attribute.bytes, 2);
        REQUIRE(value.wire_type == 5);
        float real;
        std::memcpy(&real, value.bytes.data(), sizeof(float));
        node.float_attributes[name] = real;
        continue;
      } else
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

// A composite the exporter does not know: its wiring cannot be guessed from its children.
struct Wrapper : minicnn::Module<float> {
  Wrapper() { register_module("inner", std::make_unique<minicnn::ReLU<float>>()); }
  const Tensor<float>& forward(const Tensor<float>& input) override { return child(0).forward(input); }
  const Tensor<float>& backward(const Tensor<float>& grad_output) override { return child(0).backward(grad_output); }
  Shape output_shape(const Shape& input) const override { return input; }
  std::string type_name() const override { return "Wrapper"; }
};

const Node& node_named(const Graph& graph, const std::string& name) {
  for (const Node& node : graph.nodes)
    if (node.name == name) return node;
  throw std::runtime_error("no node named " + name);
}

std::vector<std::string> node_names(const Graph& graph) {
  std::vector<std::string> names;
  for (const Node& node : graph.nodes) names.push_back(node.name);
  return names;
}

// Every node reads only the graph input, initializers and values computed before it, and each
// value is computed once.
void check_topological(const Graph& graph) {
  std::set<std::string> known{graph.input_name};
  for (const Node& node : graph.nodes) {
    for (const std::string& input : node.inputs)
      CHECK((known.count(input) == 1 || graph.initializers.count(input) == 1));
    for (const std::string& output : node.outputs) CHECK(known.insert(output).second);
  }
  CHECK(known.count(graph.output_name) == 1);
}

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

TEST_CASE("onnx: a BasicBlock with downsample and SE forks and joins", "[io][onnx]") {
  minicnn::Generator gen(3);
  minicnn::Sequential<float> model;
  auto layer = std::make_unique<minicnn::Sequential<float>>();
  layer->emplace<minicnn::BasicBlock<float>>(8, 16, /*stride=*/2, /*se_squeeze_channels=*/4, gen);
  model.add("layer1", std::move(layer));
  io::OnnxExportOptions options;
  options.sample_shape = Shape{8, 10, 10};
  const Graph graph = read_model(io::onnx_model_bytes(model, options));
  check_topological(graph);
  CHECK(op_types(graph) == std::vector<std::string>{"Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization",
                                                    "GlobalAveragePool", "Conv", "Relu", "Conv", "Sigmoid", "Mul",
                                                    "Conv", "BatchNormalization", "Add", "Relu"});
  CHECK(node_names(graph) ==
        std::vector<std::string>{"layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.bn2",
                                 "layer1.0.se.avgpool", "layer1.0.se.fc1", "layer1.0.se.activation", "layer1.0.se.fc2",
                                 "layer1.0.se.scale_activation", "layer1.0.se", "layer1.0.downsample.0",
                                 "layer1.0.downsample.1", "layer1.0", "layer1.0.relu_1"});
  CHECK(graph.output_dims == std::vector<std::string>{"N", "16", "5", "5"});

  // The fork: the input feeds conv1 and the downsample; SE multiplies bn2's output by its gate.
  CHECK(node_named(graph, "layer1.0.conv1").inputs.at(0) == "input");
  CHECK(node_named(graph, "layer1.0.downsample.0").inputs.at(0) == "input");
  CHECK(node_named(graph, "layer1.0.conv1").attributes.at("strides") == std::vector<std::int64_t>{2, 2});
  CHECK(node_named(graph, "layer1.0.se.avgpool").inputs == std::vector<std::string>{"layer1.0.bn2.output"});
  CHECK(node_named(graph, "layer1.0.se").inputs ==
        std::vector<std::string>{"layer1.0.bn2.output", "layer1.0.se.scale_activation.output"});
  // The join: Add takes the branch (after SE) and the shortcut; the last Relu gives the output.
  CHECK(node_named(graph, "layer1.0").inputs ==
        std::vector<std::string>{"layer1.0.se.output", "layer1.0.downsample.1.output"});
  CHECK(node_named(graph, "layer1.0.relu_1").inputs == std::vector<std::string>{"layer1.0.output"});
  CHECK(node_named(graph, "layer1.0.relu_1").outputs == std::vector<std::string>{"logits"});

  const Node& bn1 = node_named(graph, "layer1.0.bn1");
  CHECK(bn1.inputs == std::vector<std::string>{"layer1.0.conv1.output", "layer1.0.bn1.weight", "layer1.0.bn1.bias",
                                               "layer1.0.bn1.running_mean", "layer1.0.bn1.running_var"});
  CHECK(bn1.float_attributes.at("epsilon") == 1e-5f);

  // Initializers: the state_dict in its order, without num_batches_tracked.
  std::vector<std::string> expected_names;
  for (const auto& entry : model.state())
    if (entry.name.find("num_batches_tracked") == std::string::npos) {
      expected_names.push_back(entry.name);
      CHECK(graph.initializers.at(entry.name).first == entry.tensor->shape().dims());
    }
  CHECK(graph.initializer_names == expected_names);
  CHECK(graph.initializers.at("layer1.0.se.fc1.weight").first == std::vector<std::int64_t>{4, 16, 1, 1});
  CHECK(graph.initializers.at("layer1.0.downsample.1.running_var").first == std::vector<std::int64_t>{16});
}

TEST_CASE("onnx: a Residual adds its branch to the identity", "[io][onnx]") {
  minicnn::Sequential<float> model;
  auto branch = std::make_unique<minicnn::Sequential<float>>();
  branch->emplace<minicnn::Conv2d<float>>(2, 2, 3, 1, 1);
  branch->emplace<minicnn::Dropout<float>>(0.5);
  model.emplace<minicnn::Residual<float>>(std::move(branch));
  io::OnnxExportOptions options;
  options.sample_shape = Shape{2, 6, 6};
  const Graph graph = read_model(io::onnx_model_bytes(model, options));
  CHECK(op_types(graph) == std::vector<std::string>{"Conv", "Add"});
  CHECK(node_named(graph, "0").inputs == std::vector<std::string>{"0.branch.0.output", "input"});
  CHECK(node_named(graph, "0").outputs == std::vector<std::string>{"logits"});
}

TEST_CASE("onnx: BatchNorm2d and every activation", "[io][onnx]") {
  minicnn::Sequential<float> model;
  model.emplace<minicnn::Conv2d<float>>(3, 4, 3, 1, 1);
  model.emplace<minicnn::BatchNorm2d<float>>(4);
  model.emplace<minicnn::Sigmoid<float>>();
  model.emplace<minicnn::Tanh<float>>();
  model.emplace<minicnn::SiLU<float>>();
  model.emplace<minicnn::Hardswish<float>>();
  model.emplace<minicnn::Hardsigmoid<float>>();
  model.emplace<minicnn::GELU<float>>();
  model.emplace<minicnn::GELU<float>>("tanh");
  model.emplace<minicnn::LeakyReLU<float>>(0.25);
  model.emplace<minicnn::BatchNorm2d<float>>(4, 1e-3, 0.1, /*affine=*/false);
  io::OnnxExportOptions options;
  options.sample_shape = Shape{3, 5, 5};
  const Graph graph = read_model(io::onnx_model_bytes(model, options));
  check_topological(graph);
  CHECK(op_types(graph) == std::vector<std::string>{"Conv",        "BatchNormalization",
                                                    "Sigmoid",     "Tanh",
                                                    "Sigmoid",     "Mul",  // SiLU
                                                    "HardSigmoid", "Mul",  // Hardswish
                                                    "HardSigmoid",         // Hardsigmoid
                                                    "Div",         "Erf",
                                                    "Add",         "Mul",
                                                    "Mul",  // GELU
                                                    "Mul",         "Mul",
                                                    "Mul",         "Add",
                                                    "Mul",         "Tanh",
                                                    "Add",         "Mul",
                                                    "Mul",  // GELU tanh
                                                    "LeakyRelu",   "BatchNormalization"});
  CHECK(graph.output_dims == std::vector<std::string>{"N", "4", "5", "5"});

  // x * f(x): the Mul reads the activation's input and the gate computed from it.
  CHECK(node_named(graph, "4.sigmoid").inputs == std::vector<std::string>{"3.output"});
  CHECK(node_named(graph, "4").inputs == std::vector<std::string>{"3.output", "4.sigmoid.output"});
  CHECK(node_named(graph, "5").inputs == std::vector<std::string>{"4.output", "5.hardsigmoid.output"});
  for (const std::string name : {"5.hardsigmoid", "6"}) {
    CHECK(node_named(graph, name).float_attributes.at("alpha") == 1.0f / 6.0f);
    CHECK(node_named(graph, name).float_attributes.at("beta") == 0.5f);
  }
  CHECK(node_named(graph, "7.div").inputs == std::vector<std::string>{"6.output", "7.sqrt_2"});
  CHECK(node_named(graph, "7.mul").inputs == std::vector<std::string>{"6.output", "7.add.output"});
  CHECK(node_named(graph, "7").inputs == std::vector<std::string>{"7.mul.output", "7.half"});
  CHECK(node_named(graph, "8.square").inputs == std::vector<std::string>{"7.output", "7.output"});
  CHECK(node_named(graph, "9").float_attributes.at("alpha") == 0.25f);
  CHECK(node_named(graph, "10").inputs ==
        std::vector<std::string>{"9.output", "10.scale", "10.B", "10.running_mean", "10.running_var"});
  CHECK(node_named(graph, "10").float_attributes.at("epsilon") == 1e-3f);
  CHECK(node_named(graph, "10").outputs == std::vector<std::string>{"logits"});

  CHECK(graph.initializer_names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias",
                                                            "1.running_mean", "1.running_var", "7.sqrt_2", "7.one",
                                                            "7.half", "8.cubic", "8.sqrt_2_over_pi", "8.one", "8.half",
                                                            "10.scale", "10.B", "10.running_mean", "10.running_var"});
  CHECK(graph.initializers.at("7.sqrt_2").first.empty());  // scalars
  const auto scalar = [&](const std::string& name) {
    float value;
    std::memcpy(&value, graph.initializers.at(name).second.data(), sizeof(float));
    return value;
  };
  CHECK(scalar("7.sqrt_2") == static_cast<float>(1.41421356237309504880));
  CHECK(scalar("8.cubic") == 0.044715f);
  CHECK(graph.initializers.at("10.scale").first == std::vector<std::int64_t>{4});
  CHECK(graph.initializers.at("10.scale").second ==
        std::string(reinterpret_cast<const char*>(std::vector<float>(4, 1.0f).data()), 4 * sizeof(float)));
  CHECK(graph.initializers.at("10.B").second == std::string(4 * sizeof(float), '\0'));
}

TEST_CASE("onnx: pools with padding, ceil_mode, count_include_pad and adaptive max", "[io][onnx]") {
  minicnn::Sequential<float> model;
  model.emplace<minicnn::MaxPool2d<float>>(3, 2, 1, 2);  // 9x9 -> 4x4, dilation 2
  model.emplace<minicnn::AvgPool2d<float>>(3, 1, 1, /*ceil_mode=*/false, /*count_include_pad=*/true);  // 4x4
  model.emplace<minicnn::AvgPool2d<float>>(3, 2, 1, /*ceil_mode=*/true, /*count_include_pad=*/false);  // 4x4 -> 3x3
  model.emplace<minicnn::AdaptiveMaxPool2d<float>>(1, 3);  // 3x3 -> 1x3: windows 3x1
  model.emplace<minicnn::AdaptiveMaxPool2d<float>>(1, 1);
  io::OnnxExportOptions options;
  options.sample_shape = Shape{2, 9, 9};
  const Graph graph = read_model(io::onnx_model_bytes(model, options));
  check_chain(graph);
  CHECK(op_types(graph) ==
        std::vector<std::string>{"MaxPool", "AveragePool", "AveragePool", "MaxPool", "GlobalMaxPool"});
  CHECK(graph.nodes[0].attributes.at("pads") == std::vector<std::int64_t>{1, 1, 1, 1});
  CHECK(graph.nodes[0].attributes.at("dilations") == std::vector<std::int64_t>{2, 2});
  CHECK(graph.nodes[1].attributes.at("count_include_pad") == std::vector<std::int64_t>{1});
  CHECK(graph.nodes[1].attributes.count("ceil_mode") == 0);
  CHECK(graph.nodes[2].attributes.count("count_include_pad") == 0);
  CHECK(graph.nodes[2].attributes.at("ceil_mode") == std::vector<std::int64_t>{1});
  CHECK(graph.nodes[3].attributes.at("kernel_shape") == std::vector<std::int64_t>{3, 1});
  CHECK(graph.nodes[3].attributes.at("strides") == std::vector<std::int64_t>{3, 1});
  CHECK(graph.output_dims == std::vector<std::string>{"N", "2", "1", "1"});
}

TEST_CASE("onnx: graphs that cannot be exported are refused, naming the layer", "[io][onnx]") {
  minicnn::Sequential<float> wrapped;
  wrapped.add("wrapper", std::make_unique<Wrapper>());
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(wrapped),
                      Contains("export_onnx: layer wrapper (Wrapper(...) has no ONNX export (supported: Sequential"));

  minicnn::Sequential<float> batch_statistics;
  batch_statistics.emplace<minicnn::BatchNorm2d<float>>(1, 1e-5, 0.1, true, /*track_running_stats=*/false);
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(batch_statistics),
                      Contains("export_onnx: layer 0 (BatchNorm2d(1") && Contains("track_running_stats=False"));

  // PyTorch drops the last window (it would start in the padding); ONNX opset 13 keeps it.
  minicnn::Sequential<float> ceil_pool;
  ceil_pool.emplace<minicnn::MaxPool2d<float>>(2, 2, 1, 1, /*ceil_mode=*/true);  // 5x5: PyTorch 3x3, ONNX 4x4
  io::OnnxExportOptions five;
  five.sample_shape = Shape{1, 5, 5};
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(ceil_pool, five), Contains("export_onnx: layer 0 (MaxPool2d(") &&
                                                                 Contains("PyTorch gives 3x3") &&
                                                                 Contains("ONNX opset 13 gives 4x4"));

  minicnn::Sequential<float> adaptive;
  adaptive.emplace<minicnn::AdaptiveMaxPool2d<float>>(3, 3);  // 28 % 3 != 0
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(adaptive), Contains("ONNX has no adaptive max pool"));

  minicnn::BasicBlock<float> block(4, 4);
  io::OnnxExportOptions options;
  options.sample_shape = Shape{3, 8, 8};
  REQUIRE_THROWS_WITH(io::onnx_model_bytes(block, options),
                      Contains("export_onnx: the model (BasicBlock(...) does not accept the shape flowing into it"));
}
