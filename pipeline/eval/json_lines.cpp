#include "pipeline/eval/json_lines.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>

namespace vigil::eval {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  JsonFields Object() {
    JsonFields fields;
    Skip();
    Expect('{');
    Skip();
    if (Peek() == '}') {
      ++pos_;
    } else {
      for (;;) {
        Skip();
        std::string key = String();
        Skip();
        Expect(':');
        Skip();
        if (Peek() == '{' || Peek() == '[') {
          SkipNested();
        } else {
          fields[std::move(key)] = Scalar();
        }
        Skip();
        if (Peek() == ',') {
          ++pos_;
          continue;
        }
        Expect('}');
        break;
      }
    }
    Skip();
    if (pos_ != s_.size()) Fail("trailing characters");
    return fields;
  }

 private:
  [[noreturn]] void Fail(const char* why) const {
    throw JsonError(fmt::format("JSON: {} at byte {}", why, pos_));
  }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void Skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void Expect(char c) {
    if (Peek() != c) Fail("unexpected character");
    ++pos_;
  }
  std::string String() {
    Expect('"');
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\\') {
        if (pos_ >= s_.size()) Fail("unterminated escape");
        const char e = s_[pos_++];
        switch (e) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case 'r':
            c = '\r';
            break;
          case 'b':
            c = '\b';
            break;
          case 'f':
            c = '\f';
            break;
          case 'u':  // kept as text: eval never needs non-ASCII keys or labels
            if (pos_ + 4 > s_.size()) Fail("short \\u escape");
            out += "\\u";
            out.append(s_.substr(pos_, 4));
            pos_ += 4;
            continue;
          default:
            c = e;
        }
      }
      out += c;
    }
    Expect('"');
    return out;
  }
  JsonScalar Scalar() {
    const char c = Peek();
    if (c == '"') return String();
    if (s_.substr(pos_, 4) == "true") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "false") {
      pos_ += 5;
      return false;
    }
    if (s_.substr(pos_, 4) == "null") {
      pos_ += 4;
      return std::monostate{};
    }
    double v = 0;
    const auto [end, ec] = std::from_chars(s_.data() + pos_, s_.data() + s_.size(), v);
    if (ec != std::errc()) Fail("bad value");
    pos_ = static_cast<size_t>(end - s_.data());
    return v;
  }
  void SkipNested() {
    int depth = 0;
    do {
      const char c = Peek();
      if (c == '\0') Fail("unterminated object or array");
      if (c == '"') {
        String();
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') --depth;
      ++pos_;
    } while (depth > 0);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

JsonFields ParseJsonObjectLine(std::string_view line) {
  return Parser(line).Object();
}

std::optional<double> NumberField(const JsonFields& fields, std::string_view key) {
  const auto it = fields.find(key);
  if (it == fields.end() || !std::holds_alternative<double>(it->second)) return std::nullopt;
  return std::get<double>(it->second);
}

std::optional<std::string> StringField(const JsonFields& fields, std::string_view key) {
  const auto it = fields.find(key);
  if (it == fields.end() || !std::holds_alternative<std::string>(it->second)) return std::nullopt;
  return std::get<std::string>(it->second);
}

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  return fmt::format("{}", value);
}

}  // namespace vigil::eval
