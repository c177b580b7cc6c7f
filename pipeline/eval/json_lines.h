// Just enough JSON for `vigil eval`: reading the top-level scalar fields of one JSON Lines
// object (nested objects and arrays are parsed and skipped) and writing JSON text. Kept small
// on purpose: replay output lines are flat records, and adding a JSON library for this would
// be one more dependency to install everywhere.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace vigil::eval {

class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// null, bool, number, string.
using JsonScalar = std::variant<std::monostate, bool, double, std::string>;
using JsonFields = std::map<std::string, JsonScalar, std::less<>>;

// The top-level scalar fields of the JSON object in `line`. Throws JsonError (with the byte
// offset) when the line is not one complete JSON object.
JsonFields ParseJsonObjectLine(std::string_view line);

std::optional<double> NumberField(const JsonFields& fields, std::string_view key);
std::optional<std::string> StringField(const JsonFields& fields, std::string_view key);

// `s` as a JSON string literal (quotes included).
std::string JsonQuote(std::string_view s);
// A JSON number; NaN and infinities become null.
std::string JsonNumber(double value);

}  // namespace vigil::eval
