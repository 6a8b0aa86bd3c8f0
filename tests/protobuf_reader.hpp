#pragma once
// A small protobuf decoder for reading exported ONNX models back in the tests (independent of
// the writer in io/onnx.hpp): fields by number, varints and length-delimited bytes only.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace protobuf_reader {

// One protobuf field: its number, and a varint or the bytes of a length-delimited value.
struct Field {
  int number;
  int wire_type;
  std::uint64_t varint;
  std::string bytes;
};

inline std::vector<Field> decode(const std::string& message) {
  std::vector<Field> fields;
  std::size_t position = 0;
  const auto read_varint = [&]() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (position >= message.size()) throw std::runtime_error("protobuf: truncated varint");
      const auto byte = static_cast<unsigned char>(message[position++]);
      value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
    throw std::runtime_error("protobuf: varint too long");
  };
  while (position < message.size()) {
    const std::uint64_t key = read_varint();
    Field field{static_cast<int>(key >> 3), static_cast<int>(key & 7), 0, {}};
    if (field.wire_type == 0) {
      field.varint = read_varint();
    } else if (field.wire_type == 2) {
      const std::uint64_t length = read_varint();
      if (length > message.size() - position) throw std::runtime_error("protobuf: truncated bytes");
      field.bytes = message.substr(position, length);
      position += length;
    } else if (field.wire_type == 5) {  // fixed32: FLOAT attributes
      if (4 > message.size() - position) throw std::runtime_error("protobuf: truncated fixed32");
      field.bytes = message.substr(position, 4);
      position += 4;
    } else {
      throw std::runtime_error("protobuf: unexpected wire type " + std::to_string(field.wire_type));
    }
    fields.push_back(std::move(field));
  }
  return fields;
}

inline std::vector<Field> all(const std::string& message, int number) {
  std::vector<Field> out;
  for (Field& field : decode(message))
    if (field.number == number) out.push_back(std::move(field));
  return out;
}
inline Field one(const std::string& message, int number) {
  const auto fields = all(message, number);
  if (fields.size() != 1)
    throw std::runtime_error("protobuf: field " + std::to_string(number) + " appears " + std::to_string(fields.size()) +
                             " times");
  return fields[0];
}
inline std::vector<std::string> strings(const std::string& message, int number) {
  std::vector<std::string> out;
  for (const Field& field : all(message, number)) out.push_back(field.bytes);
  return out;
}

// The op_type of every node of an ONNX ModelProto's graph, in order
// (ModelProto.graph = 7, GraphProto.node = 1, NodeProto.op_type = 4).
inline std::vector<std::string> onnx_op_types(const std::string& model) {
  std::vector<std::string> ops;
  for (const Field& node : all(one(model, 7).bytes, 1)) ops.push_back(one(node.bytes, 4).bytes);
  return ops;
}

}  // namespace protobuf_reader
