// Validation of operator options. Operators are built by `Make(options)`, which throws
// OptionError naming the field and the value when an option is out of range: a bad
// configuration must fail at start, never half-work.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace vigil::ops {

class OptionError : public std::invalid_argument {
 public:
  OptionError(std::string_view field, std::string_view value, std::string_view why)
      : std::invalid_argument(fmt::format("{} = {}: {}", field, value, why)), field_(field) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

// Throws OptionError unless lo <= value <= hi.
inline void RequireRange(std::string_view field, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi)) {  // also rejects NaN
    throw OptionError(field, fmt::format("{}", value), fmt::format("must be in [{}, {}]", lo, hi));
  }
}

// Throws OptionError unless `condition` holds.
inline void Require(bool condition, std::string_view field, double value, std::string_view why) {
  if (!condition) throw OptionError(field, fmt::format("{}", value), why);
}

}  // namespace vigil::ops
