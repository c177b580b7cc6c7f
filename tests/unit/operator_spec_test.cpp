// Every registry entry's OperatorSpec against the operator it builds: the spec is what the
// configuration, the listings, the guide and the alert manager read, so it must say what the
// operator does. Run for every entry automatically: a new operator is checked by adding it.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "operators/core/stream_operator.h"
#include "pipeline/analysis/alert_manager.h"
#include "pipeline/analysis/operator_docs.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/config/service_config.h"
#include "support/test_support.h"

namespace vigil::analysis {
namespace {

// A value outside the parameter's valid values (NaN when every double is valid).
double Invalid(const ops::ParameterInfo& p) {
  if (p.kind == ops::ValueKind::kFlag) return 2;
  if (std::isfinite(p.hi) && p.hi + 1 != p.off) return p.hi + 1;
  return p.lo - 1;
}

class EveryOperator : public ::testing::TestWithParam<std::string> {
 protected:
  const ops::OperatorSpec& spec() const { return *FindOperator(GetParam()); }
};

TEST_P(EveryOperator, SpecNamesWhatTheOperatorIs) {
  const auto op = spec().make({}, {});
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->name(), spec().name);
  EXPECT_EQ(op->version(), spec().version);
  ASSERT_EQ(op->inputs().size(), spec().inputs.size());
  for (size_t i = 0; i < spec().inputs.size(); ++i) EXPECT_EQ(op->inputs()[i], spec().inputs[i]);
  EXPECT_FALSE(spec().summary.empty());
}

TEST_P(EveryOperator, EveryParameterIsDocumentedAndItsDefaultIsValid) {
  std::set<std::string> keys;
  for (const auto& p : spec().parameters) {
    EXPECT_TRUE(keys.insert(p.key).second) << "key twice: " << p.key;
    EXPECT_FALSE(p.doc.empty()) << p.key;
    EXPECT_LE(p.lo, p.hi) << p.key;
    EXPECT_TRUE((p.default_value >= p.lo && p.default_value <= p.hi) || p.default_value == p.off)
        << p.key << " default " << p.default_value << " outside " << p.Range();
    // Set explicitly to its default, every key is accepted.
    EXPECT_NO_THROW(spec().make({{p.key, p.default_value}}, {})) << p.key;
  }
}

TEST_P(EveryOperator, BadOptionsFailWithTheKeyNamed) {
  for (const auto& p : spec().parameters) {
    // Below the range too (unless that is its "off" value).
    if (p.kind != ops::ValueKind::kFlag && p.lo - 1 != p.off) {
      try {
        spec().make({{p.key, p.lo - 1}}, {});
        ADD_FAILURE() << p.key << " = " << p.lo - 1 << " accepted (valid: " << p.Range() << ")";
      } catch (const ops::OptionError& e) {
        EXPECT_EQ(e.field(), std::string(spec().name) + "." + p.key) << e.what();
      }
    }
    const double bad = Invalid(p);
    try {
      spec().make({{p.key, bad}}, {});
      ADD_FAILURE() << p.key << " = " << bad << " accepted (valid: " << p.Range() << ")";
    } catch (const ops::OptionError& e) {
      EXPECT_EQ(e.field(), std::string(spec().name) + "." + p.key) << e.what();
      EXPECT_NE(std::string(e.what()).find("must be"), std::string::npos) << e.what();
    }
    if (p.kind == ops::ValueKind::kWhole && p.hi > p.lo) {
      EXPECT_THROW(spec().make({{p.key, p.lo + 0.5}}, {}), ops::OptionError) << p.key;
    }
  }
  try {
    spec().make({{"no_such_key", 1}}, {});
    ADD_FAILURE() << "an unknown key was accepted";
  } catch (const ops::OptionError& e) {
    EXPECT_EQ(e.field(), std::string(spec().name) + ".no_such_key");
  }
}

TEST_P(EveryOperator, EveryAlertRuleReachesTheAlertManager) {
  for (const auto& rule : spec().alerts) {
    const auto& resolved = RuleFor(rule.kind);
    if (rule.condition.empty()) {
      EXPECT_EQ(resolved.condition, v1::CONDITION_UNSPECIFIED);
      continue;
    }
    EXPECT_EQ(v1::Condition_Name(resolved.condition), "CONDITION_" + std::string(rule.condition));
    EXPECT_EQ(resolved.latching, rule.latching);
    EXPECT_EQ(resolved.technical, rule.technical);
    EXPECT_EQ(resolved.min_duration_s, rule.min_duration_s);
    EXPECT_EQ(resolved.alerts, rule.alarm);
  }
}

// The guide holds each operator's parameter table verbatim (regenerate it with
// `vigil operators --markdown`).
TEST_P(EveryOperator, TheGuideHoldsItsParameterTable) {
  std::ifstream file(testing::SourceDir() / "docs/operators.md");
  ASSERT_TRUE(file) << "docs/operators.md not found";
  std::stringstream guide;
  guide << file.rdbuf();
  const auto table = ParameterTableMarkdown(spec());
  EXPECT_NE(guide.str().find(table), std::string::npos)
      << "docs/operators.md lacks the current parameter table of " << spec().name
      << " (vigil operators --markdown prints it):\n"
      << table;
}

// --print-config lists every key of every enabled operator with its value or default.
TEST_P(EveryOperator, PrintConfigListsEveryKey) {
  const auto config = config::LoadServiceConfig("", {});
  const auto listing = config::DescribeConfig(config);
  for (const auto& p : spec().parameters) {
    const auto path = "analysis.operators." + std::string(spec().name) + "." + p.key;
    const auto at = listing.find(path + " ");
    ASSERT_NE(at, std::string::npos) << path << " missing from --print-config";
    const auto line = listing.substr(at, listing.find('\n', at) - at);
    EXPECT_NE(line.find("(default)"), std::string::npos) << line;
  }
}

std::vector<std::string> Names() {
  std::vector<std::string> names;
  for (const auto& spec : Operators()) names.emplace_back(spec.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryOperator, ::testing::ValuesIn(Names()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           for (auto& c : name)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

TEST(OperatorRegistry, ListsEveryOperatorOnceSortedByName) {
  const auto names = Names();
  ASSERT_FALSE(names.empty());
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
}

TEST(ConditionTitle, OneTitlePerCondition) {
  EXPECT_EQ(ConditionTitle(v1::CONDITION_VENTRICULAR_TACHYCARDIA), "Ventricular tachycardia");
  EXPECT_EQ(ConditionTitle(v1::CONDITION_ECG_LEAD_OFF), "Ecg lead off");
}

TEST(PrintConfig, AnOverrideShowsItsValue) {
  const auto config = config::LoadServiceConfig(
      "", {{"VIGIL_ANALYSIS_OPERATORS__ECG__ARRHYTHMIA__HR_LOW_BPM", "45"}});
  const auto listing = config::DescribeConfig(config);
  const auto at = listing.find("analysis.operators.ecg.arrhythmia.hr_low_bpm ");
  ASSERT_NE(at, std::string::npos);
  const auto line = listing.substr(at, listing.find('\n', at) - at);
  EXPECT_NE(line.find(" 45"), std::string::npos) << line;
  EXPECT_EQ(line.find("(default)"), std::string::npos) << line;
}

}  // namespace
}  // namespace vigil::analysis

#include "operators/ecg/beat_absence_detector.h"

namespace vigil::ecg {
namespace {

// A clinician who changed a limit reads the new one in the alert's rule (the texts used to
// hard-code the defaults: "no QRS for 4 s", "RR > 3 s").
TEST(RuleText, ExplanationsStateTheLimitsInForce) {
  BeatAbsenceOptions o;
  o.pause_s = 2.5;
  o.asystole_s = 6;
  const auto detector = BeatAbsenceDetector::Make(o);
  BeatAbsenceDetector::State s;
  ops::Events out;
  detector.Start(s, 0);
  detector.OnBeat(s, ops::FromSeconds(1), out);
  detector.AdvanceTo(s, ops::FromSeconds(10), out);
  std::string pause, asystole;
  for (const auto& e : out) {
    if (const auto* ep = std::get_if<ops::Episode>(&e)) {
      if (ep->kind == ops::EpisodeKind::kPause) pause = ep->why.rule;
      if (ep->kind == ops::EpisodeKind::kAsystole) asystole = ep->why.rule;
    }
  }
  EXPECT_NE(pause.find("RR > 2.5 s"), std::string::npos) << pause;
  EXPECT_NE(asystole.find("no QRS for 6 s"), std::string::npos) << asystole;
}

}  // namespace
}  // namespace vigil::ecg
