#pragma once
// A small JSON value with a writer and a strict parser: enough for metrics.json and the run
// history kept in checkpoints. Numbers are written in the shortest form that reads back to
// the same double, so a history stored in a checkpoint and read again is bit-identical.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/io/detail/json_text.hpp"

namespace fashion_mnist::json {

class Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // keeps insertion order

class Value {
 public:
  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : data_(b) {}
  Value(double d) : data_(d) {}
  Value(int i) : data_(static_cast<double>(i)) {}
  Value(std::int64_t i) : data_(static_cast<double>(i)) {}
  Value(std::uint64_t i) : data_(static_cast<double>(i)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(Array a) : data_(std::move(a)) {}
  Value(Object o) : data_(std::move(o)) {}

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(data_); }
  bool is_bool() const { return std::holds_alternative<bool>(data_); }
  bool is_number() const { return std::holds_alternative<double>(data_); }
  bool is_string() const { return std::holds_alternative<std::string>(data_); }
  bool is_array() const { return std::holds_alternative<Array>(data_); }
  bool is_object() const { return std::holds_alternative<Object>(data_); }

  bool as_bool(const std::string& what) const { return get<bool>(what, "a boolean"); }
  double as_number(const std::string& what) const { return get<double>(what, "a number"); }
  std::int64_t as_integer(const std::string& what) const {
    const double d = as_number(what);
    if (d != std::floor(d) || std::abs(d) > 9007199254740992.0)
      throw minicnn::error(what + ": expected an integer, found " + std::to_string(d));
    return static_cast<std::int64_t>(d);
  }
  const std::string& as_string(const std::string& what) const { return get<std::string>(what, "a string"); }
  const Array& as_array(const std::string& what) const { return get<Array>(what, "an array"); }
  const Object& as_object(const std::string& what) const { return get<Object>(what, "an object"); }
  Array& as_array(const std::string& what) { return std::get<Array>(check<Array>(what, "an array")); }
  Object& as_object(const std::string& what) { return std::get<Object>(check<Object>(what, "an object")); }

  // Object member access; `what` names the object in the error when the key is missing.
  const Value* find(const std::string& key) const {
    if (!is_object()) return nullptr;
    for (const auto& member : std::get<Object>(data_))
      if (member.first == key) return &member.second;
    return nullptr;
  }
  const Value& at(const std::string& key, const std::string& what) const {
    as_object(what);
    const Value* found = find(key);
    if (!found) throw minicnn::error(what + ": the field \"" + key + "\" is missing");
    return *found;
  }
  // Adds or replaces a member (the value becomes an object if it was null).
  Value& set(const std::string& key, Value value) {
    if (is_null()) data_ = Object();
    Object& object = as_object("json::Value::set");
    for (auto& member : object)
      if (member.first == key) return member.second = std::move(value);
    object.emplace_back(key, std::move(value));
    return object.back().second;
  }

 private:
  template <typename T>
  const T& get(const std::string& what, const char* expected) const {
    if (!std::holds_alternative<T>(data_)) throw minicnn::error(what + ": expected " + expected + ", found " + kind());
    return std::get<T>(data_);
  }
  template <typename T>
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object>& check(const std::string& what, const char* expected) {
    if (!std::holds_alternative<T>(data_)) throw minicnn::error(what + ": expected " + expected + ", found " + kind());
    return data_;
  }
  std::string kind() const {
    static const char* names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return names[data_.index()];
  }

  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> data_;
};

// The shortest decimal form of `value` that strtod reads back exactly. Non-finite values have
// no JSON form: they are written as null.
inline std::string format_number(double value) {
  if (!std::isfinite(value)) return "null";
  if (value == std::floor(value) && std::abs(value) < 1e15) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
    return std::string(buffer) == "-0" ? "0" : buffer;
  }
  char buffer[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

inline std::string quote(const std::string& text) { return minicnn::io::json_quote(text); }

namespace detail {
// Arrays of numbers (a confusion-matrix row, a curve) stay on one line; everything else is
// indented by two spaces per level.
inline bool is_flat(const Value& value) {
  if (!value.is_array()) return false;
  for (const Value& item : value.as_array("")) if (item.is_array() || item.is_object()) return false;
  return true;
}

inline void dump(const Value& value, int depth, std::string& out) {
  const std::string indent(static_cast<std::size_t>(2 * (depth + 1)), ' '), closing(static_cast<std::size_t>(2 * depth), ' ');
  if (value.is_null()) out += "null";
  else if (value.is_bool()) out += value.as_bool("") ? "true" : "false";
  else if (value.is_number()) out += format_number(value.as_number(""));
  else if (value.is_string()) out += quote(value.as_string(""));
  else if (value.is_array()) {
    const Array& array = value.as_array("");
    if (array.empty()) { out += "[]"; return; }
    const bool flat = is_flat(value);
    out += flat ? "[" : "[\n";
    for (std::size_t i = 0; i < array.size(); ++i) {
      if (!flat) out += indent;
      dump(array[i], depth + 1, out);
      if (i + 1 < array.size()) out += flat ? ", " : ",\n";
    }
    out += flat ? "]" : "\n" + closing + "]";
  } else {
    const Object& object = value.as_object("");
    if (object.empty()) { out += "{}"; return; }
    out += "{\n";
    for (std::size_t i = 0; i < object.size(); ++i) {
      out += indent + quote(object[i].first) + ": ";
      dump(object[i].second, depth + 1, out);
      out += i + 1 < object.size() ? ",\n" : "\n";
    }
    out += closing + "}";
  }
}
}  // namespace detail

// Pretty-printed JSON text, ending without a newline.
inline std::string dump(const Value& value) {
  std::string out;
  detail::dump(value, 0, out);
  return out;
}

// Parses a complete JSON text (RFC 8259; \u escapes outside ASCII are kept as UTF-8). Errors
// name `source` and the byte offset.
class Parser {
 public:
  Parser(const std::string& text, std::string source) : text_(text), source_(std::move(source)) {}

  Value parse() {
    Value value = parse_value(0);
    skip_whitespace();
    if (position_ != text_.size()) fail("unexpected text after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw minicnn::error(source_ + ": invalid JSON at byte " + std::to_string(position_) + ": " + what);
  }
  void skip_whitespace() {
    while (position_ < text_.size() &&
           (text_[position_] == ' ' || text_[position_] == '\n' || text_[position_] == '\r' || text_[position_] == '\t'))
      ++position_;
  }
  bool consume(const char* literal) {
    const std::size_t length = std::char_traits<char>::length(literal);
    if (text_.compare(position_, length, literal) != 0) return false;
    position_ += length;
    return true;
  }
  Value parse_value(int depth) {
    if (depth > 64) fail("nested deeper than 64 levels");
    skip_whitespace();
    if (position_ >= text_.size()) fail("unexpected end of text");
    const char c = text_[position_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return parse_string();
    if (consume("true")) return true;
    if (consume("false")) return false;
    if (consume("null")) return nullptr;
    return parse_number();
  }
  Value parse_object(int depth) {
    ++position_;
    Object object;
    skip_whitespace();
    if (position_ < text_.size() && text_[position_] == '}') { ++position_; return object; }
    for (;;) {
      skip_whitespace();
      if (position_ >= text_.size() || text_[position_] != '"') fail("expected a string key");
      std::string key = parse_string().as_string("");
      skip_whitespace();
      if (position_ >= text_.size() || text_[position_] != ':') fail("expected ':'");
      ++position_;
      object.emplace_back(std::move(key), parse_value(depth + 1));
      skip_whitespace();
      if (position_ < text_.size() && text_[position_] == ',') { ++position_; continue; }
      if (position_ < text_.size() && text_[position_] == '}') { ++position_; return object; }
      fail("expected ',' or '}'");
    }
  }
  Value parse_array(int depth) {
    ++position_;
    Array array;
    skip_whitespace();
    if (position_ < text_.size() && text_[position_] == ']') { ++position_; return array; }
    for (;;) {
      array.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (position_ < text_.size() && text_[position_] == ',') { ++position_; continue; }
      if (position_ < text_.size() && text_[position_] == ']') { ++position_; return array; }
      fail("expected ',' or ']'");
    }
  }
  Value parse_string() {
    ++position_;  // the opening quote
    std::string out;
    while (position_ < text_.size()) {
      const char c = text_[position_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') { out += c; continue; }
      if (position_ >= text_.size()) break;
      const char escape = text_[position_++];
      switch (escape) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const auto decoded = minicnn::io::decode_unicode_escape(text_.data(), text_.size(), position_);
          if (decoded.problem) fail(decoded.problem);
          minicnn::io::append_utf8(decoded.code_point, out);
          break;
        }
        default: fail(std::string("unknown escape \\") + escape);
      }
    }
    fail("unterminated string");
  }
  Value parse_number() {
    const std::size_t start = position_;
    if (position_ < text_.size() && text_[position_] == '-') ++position_;
    auto digits = [&] {
      const std::size_t first = position_;
      while (position_ < text_.size() && text_[position_] >= '0' && text_[position_] <= '9') ++position_;
      return position_ > first;
    };
    if (!digits()) fail("expected a value");
    if (position_ < text_.size() && text_[position_] == '.') {
      ++position_;
      if (!digits()) fail("expected digits after '.'");
    }
    if (position_ < text_.size() && (text_[position_] == 'e' || text_[position_] == 'E')) {
      ++position_;
      if (position_ < text_.size() && (text_[position_] == '+' || text_[position_] == '-')) ++position_;
      if (!digits()) fail("expected digits in the exponent");
    }
    return std::strtod(text_.substr(start, position_ - start).c_str(), nullptr);
  }

  const std::string& text_;
  std::string source_;
  std::size_t position_ = 0;
};

inline Value parse(const std::string& text, const std::string& source) { return Parser(text, source).parse(); }

}  // namespace fashion_mnist::json
