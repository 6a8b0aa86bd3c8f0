// safetensors: round trips in F32 and F64, the layout other readers rely on, and one test per
// kind of malformed file, each checking its specific error.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz/fuzz_safetensors_input.hpp"
#include "minicnn/io/safetensors.hpp"
#include "minicnn/models/fashion_cnn.hpp"
#include "temp_dir.hpp"

using Catch::Matchers::Contains;
using minicnn::Shape;
using minicnn::Tensor;
using minicnn::testing::read_file_bytes;
using minicnn::testing::TempDir;
using minicnn::testing::write_file_bytes;
namespace io = minicnn::io;

namespace {

// A file from a header written by hand and a data section: what another writer (or an
// attacker) may produce.
std::string file_bytes(const std::string& header, const std::string& data = "") {
  unsigned char prefix[8];
  io::store_u64_le(header.size(), prefix);
  return std::string(reinterpret_cast<const char*>(prefix), 8) + header + data;
}

io::SafetensorsFile parse(const std::string& bytes) {
  return io::SafetensorsFile::parse(bytes.data(), bytes.size(), "test.safetensors");
}

std::string floats_bytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

template <typename T>
bool same_parameters(minicnn::Module<T>& a, minicnn::Module<T>& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  if (pa.size() != pb.size()) return false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    const Tensor<T>& x = pa[i].parameter->value;
    const Tensor<T>& y = pb[i].parameter->value;
    if (pa[i].name != pb[i].name || x.shape() != y.shape()) return false;
    if (std::memcmp(x.data(), y.data(), sizeof(T) * static_cast<std::size_t>(x.size())) != 0) return false;
  }
  return true;
}

// The FashionCNN's state_dict as a map, with one tensor's shape replaced.
minicnn::io::TensorMap<float> fashion_state(const std::string& replaced = "", Shape replacement = {}) {
  minicnn::models::FashionCNN<float> model(0);
  minicnn::io::TensorMap<float> state;
  for (const auto& named : model.named_parameters())
    state.emplace(named.name, named.name == replaced ? Tensor<float>(replacement) : named.parameter->value);
  return state;
}

}  // namespace

TEST_CASE("safetensors: a float model round-trips bit for bit", "[io][safetensors]") {
  TempDir dir;
  minicnn::models::FashionCNN<float> saved(0), loaded(1);
  REQUIRE_FALSE(same_parameters<float>(saved, loaded));
  io::save_safetensors(saved, dir.file("model.safetensors"));
  io::load_safetensors(loaded, dir.file("model.safetensors"));
  CHECK(same_parameters<float>(saved, loaded));

  const io::SafetensorsFile file = io::SafetensorsFile::read(dir.file("model.safetensors"));
  REQUIRE(file.tensors().size() == 12);
  CHECK(file.tensors().front().name == "feature_extractor.0.weight");
  CHECK(file.info("classifier.5.weight").dtype == io::Dtype::f32);
  CHECK(file.info("classifier.5.weight").shape == std::vector<std::int64_t>{10, 128});

  // Same weights, same logits.
  Tensor<float> images({4, 1, 28, 28});
  images.uniform(-1.f, 1.f, 7);
  saved.eval();
  loaded.eval();
  const Tensor<float> expected = saved.forward(images);
  const Tensor<float>& found = loaded.forward(images);
  CHECK(std::memcmp(expected.data(), found.data(), sizeof(float) * 40) == 0);
}

TEST_CASE("safetensors: a double model round-trips as F64", "[io][safetensors]") {
  TempDir dir;
  minicnn::models::FashionCNN<double> saved(3), loaded(4);
  io::save_safetensors(saved, dir.file("model64.safetensors"));
  const io::SafetensorsFile file = io::SafetensorsFile::read(dir.file("model64.safetensors"));
  for (const io::TensorInfo& info : file.tensors()) CHECK(info.dtype == io::Dtype::f64);
  io::load_safetensors(loaded, dir.file("model64.safetensors"));
  CHECK(same_parameters<double>(saved, loaded));
  // 74,602 doubles plus the header.
  CHECK(read_file_bytes(dir.file("model64.safetensors")).size() > 74602u * 8u);
}

TEST_CASE("safetensors: metadata round-trips, escapes and UTF-8 included", "[io][safetensors]") {
  TempDir dir;
  minicnn::models::FashionCNN<float> model(0);
  const io::Metadata metadata{{"epoch", "10"},
                              {"note", "quote \" backslash \\ newline \n tab \t bell \x07"},
                              {"unicode", "T-shirt/top \xC3\xA9t\xC3\xA9 \xF0\x9F\x91\x95"},
                              {"", "empty key"}};
  io::save_safetensors(model, dir.file("m.safetensors"), metadata);
  io::Metadata read_back;
  io::load_safetensors(model, dir.file("m.safetensors"), &read_back);
  CHECK(read_back == metadata);
}

TEST_CASE("safetensors: a tensor map round-trips, with zero-size tensors and unusual names", "[io][safetensors]") {
  TempDir dir;
  io::TensorMap<double> state;
  state.emplace("optimizer.exp_avg.0", Tensor<double>({3, 4}).uniform(-1.0, 1.0, 1));
  state.emplace("empty", Tensor<double>({0, 5}));
  state.emplace("step", Tensor<double>({1}).fill(42.0));
  state.emplace("name with \"quotes\", a: colon and \xC3\xA9", Tensor<double>({2, 1, 2, 1}).uniform(0.0, 1.0, 2));
  io::save_tensors(state, dir.file("state.safetensors"), {{"kind", "checkpoint"}});
  io::Metadata metadata;
  const io::TensorMap<double> loaded = io::load_tensors<double>(dir.file("state.safetensors"), &metadata);
  CHECK(metadata.at("kind") == "checkpoint");
  REQUIRE(loaded.size() == state.size());
  for (const auto& [name, tensor] : state) {
    const Tensor<double>& other = loaded.at(name);
    REQUIRE(other.shape() == tensor.shape());
    if (tensor.size() > 0)  // an empty tensor has no buffer (memcmp must not see a null pointer)
      CHECK(std::memcmp(other.data(), tensor.data(), sizeof(double) * static_cast<std::size_t>(tensor.size())) == 0);
  }
  // A float file cannot be read as double without saying so.
  io::save_tensors(io::TensorMap<float>{{"x", Tensor<float>({2})}}, dir.file("f.safetensors"));
  REQUIRE_THROWS_WITH(io::load_tensors<double>(dir.file("f.safetensors")),
                      Contains("x: expected dtype F64, found F32"));
}

TEST_CASE("safetensors: the bytes follow the format's layout", "[io][safetensors]") {
  Tensor<float> a({2, 3}), b({4});
  for (int i = 0; i < 6; ++i) a[i] = static_cast<float>(i) + 0.5f;
  for (int i = 0; i < 4; ++i) b[i] = -static_cast<float>(i);
  const std::string bytes = io::serialize_safetensors({io::tensor_ref("a", a), io::tensor_ref("b", b)}, {{"k", "v"}});
  const std::uint64_t header_length = io::load_u64_le(reinterpret_cast<const unsigned char*>(bytes.data()));
  // The data starts 8-byte aligned; the header is the JSON, then space padding.
  CHECK((8 + header_length) % 8 == 0);
  const std::string header = bytes.substr(8, header_length);
  const std::string json = header.substr(0, header.find_last_not_of(' ') + 1);
  CHECK(json ==
        "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[24,40]}}");
  CHECK(header.find_first_not_of(' ', json.size()) == std::string::npos);
  // The data section is a's bytes then b's, little-endian (this host is).
  REQUIRE(io::host_is_little_endian());
  CHECK(bytes.substr(8 + header_length) == std::string(reinterpret_cast<const char*>(a.data()), 24) +
                                               std::string(reinterpret_cast<const char*>(b.data()), 16));
}

TEST_CASE("safetensors: headers from other writers are read", "[io][safetensors]") {
  // Whitespace, any key order, escapes, tensors listed out of data order, no padding, other
  // dtypes next to F32.
  const std::string header =
      "{ \"b\" : { \"data_offsets\" : [ 8 , 16 ], \"shape\": [2], \"dtype\": \"F32\" },\n"
      "  \"__metadata__\": {\"format\": \"pt\", \"caf\\u00e9\": \"\\ud83d\\udc55 \\/ \\\"\"},\n"
      "  \"steps\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]} }";
  std::string data(8, '\0');
  data[0] = 5;
  data += floats_bytes({1.5f, -2.25f});
  const io::SafetensorsFile file = parse(file_bytes(header, data));
  CHECK(file.metadata().at("format") == "pt");
  CHECK(file.metadata().at("caf\xC3\xA9") == "\xF0\x9F\x91\x95 / \"");
  REQUIRE(file.tensors().size() == 2);
  CHECK(file.tensors()[0].name == "steps");  // sorted by offset
  CHECK(file.info("steps").dtype == io::Dtype::i64);
  const Tensor<float> b = file.tensor<float>("b");
  CHECK(b.shape() == Shape{2});
  CHECK(b[0] == 1.5f);
  CHECK(b[1] == -2.25f);
  // I64 is parsed (the file is valid) but is not a minicnn tensor type.
  REQUIRE_THROWS_WITH(file.tensor<float>("steps"), Contains("steps: expected dtype F32, found I64"));
  REQUIRE_THROWS_WITH(file.tensor<float>("nope"), Contains("no tensor named nope"));
}

TEST_CASE("safetensors: a truncated file is refused", "[io][safetensors][malformed]") {
  TempDir dir;
  minicnn::models::FashionCNN<float> model(0);
  const std::string path = dir.file("model.safetensors");
  io::save_safetensors(model, path);
  const std::string whole = read_file_bytes(path);
  const std::uint64_t header_length = io::load_u64_le(reinterpret_cast<const unsigned char*>(whole.data()));

  SECTION("inside the length prefix") {
    write_file_bytes(path, whole.substr(0, 5));
    REQUIRE_THROWS_WITH(io::load_safetensors(model, path),
                        Contains("the file is 5 bytes long, too short for the 8-byte header length"));
  }
  SECTION("inside the header") {
    write_file_bytes(path, whole.substr(0, 8 + header_length / 2));
    REQUIRE_THROWS_WITH(io::load_safetensors(model, path),
                        Contains("header length " + std::to_string(header_length) + " exceeds the " +
                                 std::to_string(header_length / 2) + " bytes that follow the length prefix"));
  }
  SECTION("inside the data") {
    write_file_bytes(path, whole.substr(0, whole.size() - 20));
    // Only the last tensor (classifier.5.bias, 40 bytes) ends past the shortened data section.
    REQUIRE_THROWS_WITH(io::load_safetensors(model, path), Contains("classifier.5.bias: data_offsets") &&
                                                               Contains("lie outside the") &&
                                                               Contains("(truncated file?)"));
  }
  SECTION("no file at all") {
    REQUIRE_THROWS_WITH(io::SafetensorsFile::read(dir.file("missing.safetensors")),
                        Contains("missing.safetensors: cannot open the file for reading"));
  }
  SECTION("an empty file") {
    write_file_bytes(path, "");
    REQUIRE_THROWS_WITH(io::SafetensorsFile::read(path), Contains("the file is 0 bytes long"));
  }
}

TEST_CASE("safetensors: a header length above 100 MB is refused before reading", "[io][safetensors][malformed]") {
  unsigned char prefix[8];
  io::store_u64_le(200'000'000, prefix);
  const std::string bytes = std::string(reinterpret_cast<const char*>(prefix), 8) + "{}";
  REQUIRE_THROWS_WITH(parse(bytes), Contains("header length 200000000 exceeds the limit of 100000000 bytes"));
  io::store_u64_le(~std::uint64_t{0}, prefix);
  REQUIRE_THROWS_WITH(parse(std::string(reinterpret_cast<const char*>(prefix), 8)),
                      Contains("header length 18446744073709551615 exceeds the limit"));
  // Too small for "{}".
  REQUIRE_THROWS_WITH(parse(file_bytes("{")), Contains("header length 1 is too small"));
}

TEST_CASE("safetensors: offsets outside the data section are refused", "[io][safetensors][malformed]") {
  const std::string data = floats_bytes({1, 2, 3, 4});
  REQUIRE_NOTHROW(parse(file_bytes(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data)));
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data)),
                      Contains("x: data_offsets [8, 24] lie outside the 16-byte data section"));
  REQUIRE_THROWS_WITH(
      parse(file_bytes(
          R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]}})", data)),
      Contains("x: data_offsets: integer does not fit in 64 bits"));
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[16,8]}})", data)),
                      Contains("x: data_offsets [16, 8] end before they begin"));
}

TEST_CASE("safetensors: overlapping tensors are refused", "[io][safetensors][malformed]") {
  const std::string data = floats_bytes({1, 2, 3, 4});
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                                       R"("b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}})",
                                       data)),
                      Contains("tensors a [0, 12] and b [4, 16] overlap"));
  // The same bytes twice (an aliasing file) overlap as well.
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                       R"("b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                                       data)),
                      Contains("overlap"));
}

TEST_CASE("safetensors: bytes that belong to no tensor are refused", "[io][safetensors][malformed]") {
  const std::string data = floats_bytes({1, 2, 3, 4});
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                       data)),
                      Contains("bytes [4, 8) of the data section belong to no tensor"));
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", data)),
                      Contains("bytes [12, 16) at the end of the data section belong to no tensor"));
}

TEST_CASE("safetensors: offsets must match the dtype and shape", "[io][safetensors][malformed]") {
  const std::string data = floats_bytes({1, 2, 3, 4});
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"a":{"dtype":"F64","shape":[4],"data_offsets":[0,16]}})", data)),
                      Contains("a: data_offsets [0, 16] hold 16 bytes, but dtype F64 with shape [4] needs 32"));
  REQUIRE_THROWS_WITH(
      parse(file_bytes(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", data)),
      Contains("needs more than 2^64"));
}

TEST_CASE("safetensors: an unknown or wrong dtype is refused", "[io][safetensors][malformed]") {
  const std::string data = floats_bytes({1, 2});
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", data)),
                      Contains("a: unknown dtype \"F33\""));
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", data)),
                      Contains("unknown dtype \"f32\""));
  REQUIRE_THROWS_WITH(parse(file_bytes(R"({"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", data)),
                      Contains("a: dtype must be a string"));

  // A valid F64 file is the wrong dtype for a float model: named, and the model is untouched.
  TempDir dir;
  minicnn::models::FashionCNN<double> model64(0);
  io::save_safetensors(model64, dir.file("m64.safetensors"));
  minicnn::models::FashionCNN<float> model(0), reference(0);
  REQUIRE_THROWS_WITH(io::load_safetensors(model, dir.file("m64.safetensors")),
                      Contains("feature_extractor.0.weight: expected dtype F32, found F64") &&
                          Contains("classifier.5.bias: expected dtype F32, found F64"));
  CHECK(same_parameters<float>(model, reference));
}

TEST_CASE("safetensors: malformed JSON is refused", "[io][safetensors][malformed]") {
  const std::string data = floats_bytes({1, 2});
  const auto check = [&](const std::string& header, const std::string& message) {
    INFO(header);
    REQUIRE_THROWS_WITH(parse(file_bytes(header, data)), Contains("test.safetensors: header: ") && Contains(message));
  };
  const std::string good_tensor = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  SECTION("not an object") { check(R"(["a"])", "expected the header to start with '{'"); }
  SECTION("leading whitespace") { check(" {\"a\":" + good_tensor + "}", "expected the header to start with '{'"); }
  SECTION("unterminated object") { check("{\"a\":" + good_tensor, "expected ',' or '}', found the end of the header"); }
  SECTION("trailing comma") { check("{\"a\":" + good_tensor + ",}", "expected a string key, found '}'"); }
  SECTION("missing colon") { check("{\"a\" " + good_tensor + "}", "after key \"a\": expected ':'"); }
  SECTION("unquoted key") { check("{a:" + good_tensor + "}", "expected a string key, found 'a'"); }
  SECTION("single quotes") { check("{'a':" + good_tensor + "}", "expected a string key, found '''"); }
  SECTION("trailing garbage") { check("{\"a\":" + good_tensor + "} x", "unexpected content after the header object"); }
  SECTION("two objects") { check("{\"a\":" + good_tensor + "}{}", "unexpected content after the header object"); }
  SECTION("duplicate key") { check("{\"a\":" + good_tensor + ",\"a\":" + good_tensor + "}", "duplicate key \"a\""); }
  SECTION("invalid escape") { check("{\"a\\q\":" + good_tensor + "}", "invalid escape sequence"); }
  SECTION("short \\u escape") {
    check("{\"a\\u12\":" + good_tensor + "}", "\\u must be followed by 4 hexadecimal digits");
  }
  SECTION("lone low surrogate") { check("{\"a\\udc55\":" + good_tensor + "}", "unpaired low surrogate"); }
  SECTION("lone high surrogate") { check("{\"a\\ud83d\":" + good_tensor + "}", "high surrogate \\u escape without"); }
  SECTION("raw control character") { check("{\"a\nb\":" + good_tensor + "}", "control character 10 inside a string"); }
  SECTION("invalid UTF-8") { check("{\"a\xC3\x28\":" + good_tensor + "}", "invalid UTF-8"); }
  SECTION("overlong UTF-8") { check("{\"a\xC0\xAF\":" + good_tensor + "}", "invalid UTF-8"); }
  SECTION("UTF-8 surrogate") { check("{\"a\xED\xA0\x80\":" + good_tensor + "}", "invalid UTF-8"); }
  SECTION("unterminated string") { check("{\"abc", "unterminated string"); }
  SECTION("leading zeros") { check(R"({"a":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}})", "leading zeros"); }
  SECTION("a fraction") {
    check(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", "found a fraction or an exponent");
  }
  SECTION("an exponent") {
    check(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8e0]}})", "found a fraction or an exponent");
  }
  SECTION("a negative number") {
    check(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "found a negative number");
  }
  SECTION("a plus sign") {
    check(R"({"a":{"dtype":"F32","shape":[+2],"data_offsets":[0,8]}})", "expected a non-negative integer, found '+'");
  }
  SECTION("missing array comma") {
    check(R"({"a":{"dtype":"F32","shape":[2 2],"data_offsets":[0,8]}})", "expected ',' or ']'");
  }
  SECTION("NUL byte") { check(std::string("{\"a\":") + '\0' + "}", "found byte 0"); }
}

TEST_CASE("safetensors: headers that break the format's schema are refused", "[io][safetensors][malformed]") {
  const std::string data = floats_bytes({1, 2});
  const auto check = [&](const std::string& header, const std::string& message) {
    INFO(header);
    REQUIRE_THROWS_WITH(parse(file_bytes(header, data)), Contains(message));
  };
  check(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", "a: missing field \"dtype\"");
  check(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", "a: missing field \"shape\"");
  check(R"({"a":{"dtype":"F32","shape":[2]}})", "a: missing field \"data_offsets\"");
  check(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", "a: unknown field \"extra\"");
  check(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})",
        "data_offsets must hold exactly 2 numbers, found more");
  check(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", "data_offsets must hold exactly 2 numbers, found 1");
  check(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", "a: shape: expected an array");
  check(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}})",
        "shape has more than 8 dimensions");
  check(R"({"a":[]})", "a: expected '{', found '['");
  check(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "a tensor has an empty name");
  check(R"({"__metadata__":{"epoch":10},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
        "__metadata__: the value of \"epoch\" must be a string");
  check(R"({"__metadata__":[],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "__metadata__: expected '{'");
}

TEST_CASE("safetensors: a shape mismatch names the tensor, expected and found shapes", "[io][safetensors]") {
  TempDir dir;
  io::save_tensors(fashion_state("classifier.5.weight", Shape{10, 64}), dir.file("bad.safetensors"));
  minicnn::models::FashionCNN<float> model(5), reference(5);
  try {
    io::load_safetensors(model, dir.file("bad.safetensors"));
    FAIL("the load did not throw");
  } catch (const minicnn::error& failure) {
    const std::string message = failure.what();
    CHECK(message == dir.file("bad.safetensors") +
                         ": does not match the model: classifier.5.weight: expected [10, 128], found [10, 64]");
  }
  // Nothing was loaded: all or nothing.
  CHECK(same_parameters<float>(model, reference));

  // copy_to names the same difference.
  const io::SafetensorsFile file = io::SafetensorsFile::read(dir.file("bad.safetensors"));
  Tensor<float> destination({10, 128});
  REQUIRE_THROWS_WITH(file.copy_to("classifier.5.weight", destination),
                      Contains("classifier.5.weight: expected [10, 128], found [10, 64]"));
}

TEST_CASE("safetensors: missing and unexpected tensors are named", "[io][safetensors]") {
  TempDir dir;
  io::TensorMap<float> state = fashion_state();
  state.erase("classifier.2.bias");
  state.erase("feature_extractor.5.weight");
  state.emplace("fc.weight", Tensor<float>({10, 64}));
  io::save_tensors(state, dir.file("other.safetensors"));
  minicnn::models::FashionCNN<float> model(0);
  REQUIRE_THROWS_WITH(io::load_safetensors(model, dir.file("other.safetensors")),
                      Contains("missing tensors: feature_extractor.5.weight [64, 32, 3, 3], classifier.2.bias [128]") &&
                          Contains("unexpected tensors: fc.weight [10, 64]"));
}

TEST_CASE("safetensors: tensors a minicnn Tensor cannot hold are refused on load", "[io][safetensors]") {
  const io::SafetensorsFile file =
      parse(file_bytes(R"({"scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                       R"("five":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[4,8]}})",
                       floats_bytes({1, 2})));
  REQUIRE_THROWS_WITH(file.tensor<float>("scalar"), Contains("scalar: shape [] (a scalar) cannot be held"));
  REQUIRE_THROWS_WITH(file.tensor<float>("five"), Contains("five: shape [1, 1, 1, 1, 1] has rank 5"));
}

TEST_CASE("safetensors: writes are atomic and leave no temporary files", "[io][safetensors][atomic]") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  minicnn::models::FashionCNN<float> first(0), second(1);
  io::save_safetensors(first, path);
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  const std::string first_bytes = read_file_bytes(path);

  // Replacing an existing file.
  io::save_safetensors(second, path);
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  CHECK(read_file_bytes(path) != first_bytes);

  // A save that fails after its temporary file was created (two tensors share a name) keeps
  // the old file and removes the temporary one.
  const std::string before = read_file_bytes(path);
  Tensor<float> x({2});
  REQUIRE_THROWS_WITH(io::save_tensors({io::tensor_ref("x", x), io::tensor_ref("x", x)}, path),
                      Contains("two tensors are named x"));
  CHECK(read_file_bytes(path) == before);
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});

  // A directory that does not exist is named.
  REQUIRE_THROWS_WITH(io::save_safetensors(first, dir.file("no/such/dir/m.safetensors")),
                      Contains("no/such/dir/m.safetensors: cannot create the temporary file"));
}

TEST_CASE("safetensors: tensors that cannot be written are refused", "[io][safetensors]") {
  Tensor<float> x({2});
  REQUIRE_THROWS_WITH(io::serialize_safetensors({io::tensor_ref("", x)}), Contains("a tensor has an empty name"));
  REQUIRE_THROWS_WITH(io::serialize_safetensors({io::tensor_ref("__metadata__", x)}),
                      Contains("\"__metadata__\" is reserved"));
  REQUIRE_THROWS_WITH(io::serialize_safetensors({io::tensor_ref("bad\xFF", x)}), Contains("is not valid UTF-8"));
  REQUIRE_THROWS_WITH(io::tensor_ref("unshaped", Tensor<float>()), Contains("unshaped: the tensor has no shape"));
  REQUIRE_THROWS_WITH(io::serialize_safetensors({io::tensor_ref("x", x)}, {{"k", "\xC0\x80"}}),
                      Contains("__metadata__ entry \"k\": keys and values must be valid UTF-8"));
  // An empty file (no tensors) is valid and reads back empty.
  const std::string empty = io::serialize_safetensors({});
  CHECK(parse(empty).tensors().empty());
}

TEST_CASE("byte order helpers", "[io]") {
  unsigned char bytes[8];
  io::store_u64_le(0x0102030405060708ull, bytes);
  CHECK(bytes[0] == 0x08);
  CHECK(bytes[7] == 0x01);
  CHECK(io::load_u64_le(bytes) == 0x0102030405060708ull);
}

TEST_CASE("safetensors fuzz regressions and seed corpus replay without crashing", "[io][safetensors][fuzz]") {
  namespace fs = std::filesystem;
  const fs::path fuzz_dir = fs::path(MINICNN_SOURCE_DIR) / "tests" / "fuzz";
  std::size_t replayed = 0, valid = 0;
  for (const char* sub : {"regressions/fuzz_safetensors", "corpus/fuzz_safetensors"}) {
    const fs::path dir = fuzz_dir / sub;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      const std::string bytes = read_file_bytes(entry.path().string());
      CAPTURE(entry.path().string());
      // minicnn::error is swallowed inside; anything else (or a sanitizer report) fails here.
      CHECK_NOTHROW(
          minicnn::fuzz::run_safetensors_input(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
      const bool is_valid = entry.path().filename().string().rfind("valid_", 0) == 0;
      if (is_valid) {
        CHECK_NOTHROW(parse(bytes));
        ++valid;
      } else if (entry.path().filename().string().rfind("malformed_", 0) == 0) {
        CHECK_THROWS_AS(parse(bytes), minicnn::error);
      }
      ++replayed;
    }
  }
  CHECK(valid >= 9);
  CHECK(replayed >= 20);  // the seed corpus alone has 22 files
}
