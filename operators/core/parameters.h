// Operator parameters as data. One table per options struct says, for every configuration key,
// which field it sets, its valid range, its unit and what it does. Parsing and validation, the
// `--print-config` and `vigil operators` listings and the parameter tables of docs/operators.md
// all come from these tables, so a parameter is written once: a field in its options struct and
// a line in its table.
//
// Every message names the parameter as configured, `<operator>.<key> = <value>: must be ...`.
// Ranges that depend on another parameter (a high limit above a low one) are checked by the
// options' own validation with RequireParameter, in the same format.
//
// Tables are immutable after construction and safe to share between threads.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "operators/core/options.h"

namespace vigil::ops {

// Parameters by configuration key without the operator prefix, e.g. {"hr_low_bpm", 45}. Built
// from the service YAML and per-patient overrides.
using Parameters = std::map<std::string, double, std::less<>>;

// "<op>.<key>", as every message and listing names a parameter.
std::string ParameterName(std::string_view op, std::string_view key);

// Throws OptionError naming "<op>.<key>" and `value` unless `condition`.
void RequireParameter(bool condition, std::string_view op, std::string_view key, double value,
                      std::string_view why);

// How a configured number (always a double) maps onto a field.
enum class ValueKind : uint8_t {
  kReal,
  kWhole,  // an int field: the value must be a whole number
  kFlag,   // a bool field: the value must be 0 or 1
};

constexpr double kNoOff = std::numeric_limits<double>::quiet_NaN();

// One parameter as listings show it.
struct ParameterInfo {
  std::string key;  // without the operator prefix
  double default_value = 0;
  double lo = 0, hi = 0;
  double off = kNoOff;  // a value outside [lo, hi] that is also allowed (it turns a rule off)
  ValueKind kind = ValueKind::kReal;
  std::string_view unit;
  std::string_view doc;

  // "[5, 64]", "0 or [5, 64]", "0 or 1".
  std::string Range() const;
};

// The parameters of one options struct O.
template <class O>
class ParameterTable {
 public:
  using Field = std::variant<double O::*, int O::*, bool O::*>;
  // One line of a table: key, the field it sets, its range [lo, hi], unit, one-line doc, and
  // optionally a value outside the range that is allowed too (0 = off).
  struct Param {
    std::string_view key;
    Field field;
    double lo;
    double hi;
    std::string_view unit;
    std::string_view doc;
    double off = kNoOff;
  };

  ParameterTable(std::initializer_list<Param> params) {
    for (const auto& p : params) {
      entries_.push_back({std::string(p.key),
                          [field = p.field](O& o) {
                            return std::visit([&o](auto member) -> Ref { return &(o.*member); },
                                              field);
                          },
                          p.lo, p.hi, p.off, p.unit, p.doc, KindOf(p.field)});
    }
  }

  // Adds the parameters of a part of O (e.g. EcgMonitorOptions::qrs) under the same keys.
  template <class Inner>
  ParameterTable& Include(Inner O::*part, const ParameterTable<Inner>& inner) {
    for (const auto& e : inner.entries_) {
      entries_.push_back({e.key, [part, ref = e.ref](O& o) { return ref(o.*part); }, e.lo, e.hi,
                          e.off, e.unit, e.doc, e.kind});
    }
    return *this;
  }

  // `defaults` with every key of `parameters` applied, then checked (Check). Throws OptionError
  // naming "<op>.<key>" and the value for an unknown key, a value out of its range, a fraction
  // for a whole number, or a flag other than 0 or 1.
  O Read(std::string_view op, const Parameters& parameters, O defaults = O{}) const {
    for (const auto& entry : parameters) {
      // Named copies: clang 14 cannot capture structured bindings in the lambda below.
      const std::string& key = entry.first;
      const double value = entry.second;
      const Entry* e = Find(key);
      if (e == nullptr) {
        throw OptionError(ParameterName(op, key), fmt::format("{}", value),
                          fmt::format("unknown parameter of operator {}", op));
      }
      std::visit(
          [&](auto* field) {
            using T = std::remove_pointer_t<decltype(field)>;
            if constexpr (std::is_same_v<T, bool>) {
              RequireParameter(value == 0 || value == 1, op, key, value, "must be 0 or 1");
              *field = value == 1;
            } else if constexpr (std::is_same_v<T, int>) {
              RequireParameter(value == std::floor(value) && std::fabs(value) < 1e6, op, key, value,
                               "must be a whole number");
              *field = static_cast<int>(value);
            } else {
              *field = value;
            }
          },
          e->ref(defaults));
    }
    Check(op, defaults);
    return defaults;
  }

  // Throws OptionError for the first field of `o` outside its range.
  void Check(std::string_view op, const O& o) const {
    O copy = o;
    for (const auto& e : entries_) {
      const double v = Value(e.ref(copy));
      if (v == e.off) continue;
      if (!(v >= e.lo && v <= e.hi)) {  // also rejects NaN
        RequireParameter(false, op, e.key, v, fmt::format("must be {}", Info(e, v).Range()));
      }
    }
  }

  // Every parameter with its value in `values` (the defaults when left out).
  std::vector<ParameterInfo> Describe(const O& values = O{}) const {
    O copy = values;
    std::vector<ParameterInfo> out;
    for (const auto& e : entries_) out.push_back(Info(e, Value(e.ref(copy))));
    return out;
  }

 private:
  template <class>
  friend class ParameterTable;
  using Ref = std::variant<double*, int*, bool*>;
  struct Entry {
    std::string key;
    std::function<Ref(O&)> ref;
    double lo, hi, off;
    std::string_view unit, doc;
    ValueKind kind;  // follows the field's type
  };

  static ValueKind KindOf(const Field& field) {
    return std::visit(
        [](auto member) {
          using T = std::remove_reference_t<decltype(std::declval<O&>().*member)>;
          return std::is_same_v<T, bool>  ? ValueKind::kFlag
                 : std::is_same_v<T, int> ? ValueKind::kWhole
                                          : ValueKind::kReal;
        },
        field);
  }

  const Entry* Find(std::string_view key) const {
    for (const auto& e : entries_) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }
  static double Value(Ref ref) {
    return std::visit([](auto* field) { return static_cast<double>(*field); }, ref);
  }
  static ParameterInfo Info(const Entry& e, double value) {
    ParameterInfo info;
    info.key = e.key;
    info.default_value = value;
    info.lo = e.lo;
    info.hi = e.hi;
    info.off = e.off;
    info.unit = e.unit;
    info.doc = e.doc;
    info.kind = e.kind;
    return info;
  }

  std::vector<Entry> entries_;
};

}  // namespace vigil::ops
