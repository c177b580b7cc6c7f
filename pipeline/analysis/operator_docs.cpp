#include "pipeline/analysis/operator_docs.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "pipeline/analysis/operator_registry.h"

namespace vigil::analysis {
namespace {

std::string Number(double v) {
  return fmt::format("{}", v);
}

std::string Inputs(const ops::OperatorSpec& spec) {
  std::string out;
  for (const auto signal : spec.inputs) {
    out += fmt::format("{}{}", out.empty() ? "" : ", ", ops::SignalName(signal));
  }
  return out;
}

std::string Alerts(const ops::OperatorSpec& spec) {
  static constexpr const char* kPriority[] = {"low", "medium", "high"};
  std::string out;
  for (const auto& rule : spec.alerts) {
    std::string what =
        rule.condition.empty() || !rule.alarm
            ? fmt::format("{} (scored, not alarmed)", ops::EpisodeName(rule.kind))
            : fmt::format("{} -> {} ({}{}{})", ops::EpisodeName(rule.kind), rule.condition,
                          kPriority[static_cast<int>(rule.priority)],
                          rule.latching ? ", latching" : "", rule.technical ? ", technical" : "");
    out += (out.empty() ? "" : "; ") + what;
  }
  return out.empty() ? "none" : out;
}

}  // namespace

std::string ParameterTableMarkdown(const ops::OperatorSpec& spec) {
  std::string out = "| key | default | valid | unit | what it does |\n|---|---|---|---|---|\n";
  for (const auto& p : spec.parameters) {
    out += fmt::format("| `{}` | {} | {} | {} | {} |\n", p.key, Number(p.default_value), p.Range(),
                       p.unit, p.doc);
  }
  return out;
}

std::string OperatorListing(bool markdown) {
  std::string out;
  for (const auto& spec : Operators()) {
    if (markdown) {
      out += fmt::format("### `{}` {}\n{}\n\nInputs: {}. Alerts: {}.\n\n", spec.name, spec.version,
                         spec.summary, Inputs(spec), Alerts(spec));
      out += ParameterTableMarkdown(spec) + "\n";
      continue;
    }
    out += fmt::format("{} {} - {}\n  inputs: {}\n  alerts: {}\n", spec.name, spec.version,
                       spec.summary, Inputs(spec), Alerts(spec));
    for (const auto& m : spec.measurements) {
      out += fmt::format("  measurement {} ({}): {}\n", m.name, m.unit, m.doc);
    }
    for (const auto& p : spec.parameters) {
      out += fmt::format("  {}.{:36} {:>10} {:8} {:22} {}\n", spec.name, p.key,
                         Number(p.default_value), p.unit, p.Range(), p.doc);
    }
    out += "\n";
  }
  return out;
}

void AddOperatorsCommand(CLI::App& app) {
  auto markdown = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "operators", "List the registered operators with every parameter, its default and range");
  cmd->add_flag("--markdown", *markdown, "Markdown, as in docs/operators.md");
  cmd->callback([markdown] { std::cout << OperatorListing(*markdown); });
}

}  // namespace vigil::analysis
