#include "pipeline/console/alert_console.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include "pipeline/analysis/alert_manager.h"
#include "pipeline/eval/json_lines.h"
#include "pipeline/kafka/kafka_client.h"
#include "pipeline/topics.h"

namespace vigil::console {
namespace {

constexpr const char* kReset = "\033[0m";

const char* Colour(v1::Priority p) {
  switch (p) {
    case v1::PRIORITY_HIGH:
      return "\033[1;37;41m";  // white on red
    case v1::PRIORITY_MEDIUM:
      return "\033[1;30;43m";  // black on yellow
    default:
      return "\033[36m";  // cyan
  }
}

std::string Clock(int64_t t_us, const std::string& zone) {
  using namespace std::chrono;
  const sys_time<seconds> t = floor<seconds>(sys_time<microseconds>(microseconds(t_us)));
  try {
    return date::format("%H:%M:%S", date::locate_zone(zone)->to_local(t));
  } catch (const std::exception&) {
    return date::format("%H:%M:%SZ", t);
  }
}

// Which alert conditions stand for which injected kind, and how far from the injected interval
// an alert onset may be to count (detectors confirm with a delay; AF alerts wait 30 s).
struct MatchRule {
  std::vector<v1::Condition> conditions;
  double before_s = 15;
  double after_s = 60;
};

// The alert rule whose minimum duration applies to a truth kind: an event shorter than that is
// correctly not alarmed (brief technical artefacts would flood clinicians).
std::optional<ops::EpisodeKind> MinimumOf(const std::string& kind) {
  if (kind == "NOISE") return ops::EpisodeKind::kEcgNoise;
  if (kind == "LEADOFF") return ops::EpisodeKind::kEcgLeadOff;
  return std::nullopt;
}

const std::map<std::string, MatchRule>& Rules() {
  static const std::map<std::string, MatchRule> rules = {
      {"AFIB", {{v1::CONDITION_ATRIAL_FIBRILLATION}, 15, 60}},
      {"VT",
       {{v1::CONDITION_VENTRICULAR_TACHYCARDIA, v1::CONDITION_VENTRICULAR_FIBRILLATION,
         v1::CONDITION_EXTREME_TACHYCARDIA},
        10,
        30}},
      {"VF",
       {{v1::CONDITION_VENTRICULAR_FIBRILLATION, v1::CONDITION_VENTRICULAR_TACHYCARDIA,
         v1::CONDITION_ASYSTOLE},
        10,
        30}},
      {"PAUSE", {{v1::CONDITION_PAUSE, v1::CONDITION_ASYSTOLE}, 10, 30}},
      {"ASYS", {{v1::CONDITION_ASYSTOLE}, 10, 30}},
      {"BRADY", {{v1::CONDITION_BRADYCARDIA, v1::CONDITION_EXTREME_BRADYCARDIA}, 15, 60}},
      {"TACHY", {{v1::CONDITION_TACHYCARDIA, v1::CONDITION_EXTREME_TACHYCARDIA}, 15, 60}},
      {"NOISE", {{v1::CONDITION_ECG_NOISE, v1::CONDITION_ECG_SATURATION}, 15, 60}},
      {"LEADOFF",
       {{v1::CONDITION_ECG_LEAD_OFF, v1::CONDITION_ECG_FLAT_LINE, v1::CONDITION_ECG_NOISE},
        15,
        60}},
      {"LARGE_LEAK", {{v1::CONDITION_LARGE_LEAK, v1::CONDITION_DISCONNECTION}, 30, 300}},
      {"DISCONNECTION", {{v1::CONDITION_DISCONNECTION, v1::CONDITION_LARGE_LEAK}, 15, 120}},
      {"HYPOVENTILATION", {{v1::CONDITION_SLEEP_HYPOVENTILATION}, 60, 900}},
      {"ADHERENCE_DECLINE", {{v1::CONDITION_ADHERENCE_DECLINE}, 86400 * 31.0, 86400 * 2.0}},
      {"NON_COMPLIANCE", {{v1::CONDITION_NON_COMPLIANCE}, 86400 * 31.0, 86400 * 2.0}},
  };
  return rules;
}

bool Overlaps(int64_t a0, int64_t a1, int64_t b0, int64_t b1) {
  return a0 < b1 && b0 < a1;
}

}  // namespace

std::string FormatAlert(const v1::Alert& a, bool colour, const std::string& time_zone) {
  std::string priority = v1::Priority_Name(a.priority());
  priority.erase(0, std::string("PRIORITY_").size());
  std::string state = v1::AlertState_Name(a.state());
  state.erase(0, std::string("ALERT_STATE_").size());
  const std::string tag = fmt::format(" {:<6} ", priority);
  return fmt::format("{}  {}{}{}  {:<10} {:<26} {:<8} {}", Clock(a.event_time_us(), time_zone),
                     colour ? Colour(a.priority()) : "", tag, colour ? kReset : "", a.patient_id(),
                     analysis::ConditionTitle(a.condition()), state, a.summary());
}

std::vector<TruthRecord> ReadTruth(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the truth file");
  std::vector<TruthRecord> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      const auto f = eval::ParseJsonObjectLine(line);
      TruthRecord r;
      r.patient = eval::StringField(f, "patient").value_or("");
      r.kind = eval::StringField(f, "kind").value_or("");
      r.start_us = static_cast<int64_t>(eval::NumberField(f, "start_us").value_or(0));
      r.end_us = static_cast<int64_t>(eval::NumberField(f, "end_us").value_or(0));
      if (r.patient.empty() || r.kind.empty()) throw eval::JsonError("patient or kind missing");
      out.push_back(std::move(r));
    } catch (const eval::JsonError& e) {
      throw std::runtime_error(fmt::format("{}:{}: {}", path, n, e.what()));
    }
  }
  return out;
}

std::vector<Detection> ScoreAgainstTruth(const std::vector<TruthRecord>& truth,
                                         const std::vector<v1::Alert>& alerts,
                                         const std::vector<v1::Aggregate>& aggregates) {
  std::vector<Detection> out;
  // An alert's end is on its CLEARED record; its RAISED record (end 0) alone would make a long
  // cleared alert look active for ever and "detect" every later event of its kind.
  std::map<std::string, int64_t> ended;
  for (const auto& a : alerts) {
    if (a.end_time_us() != 0) ended[a.alert_id()] = std::max(ended[a.alert_id()], a.end_time_us());
  }
  for (const auto& t : truth) {
    Detection d{t, Detection::Outcome::kMissed, ""};
    if (t.kind == "PVC") {
      d.outcome = Detection::Outcome::kNotAlarmed;
      d.how = "isolated ectopic beat: counted in aggregates, never an alarm";
      out.push_back(d);
      continue;
    }
    if (t.kind == "APNEA" || t.kind == "HYPOPNEA") {
      // Respiratory events feed the AHI: find a minute aggregate that counted one.
      for (const auto& g : aggregates) {
        if (g.patient_id() != t.patient || g.window() != v1::WINDOW_KIND_MINUTE) continue;
        const uint32_t n =
            t.kind == "APNEA" ? g.respiratory().apneas() : g.respiratory().hypopneas();
        const uint32_t any = g.respiratory().apneas() + g.respiratory().hypopneas();
        if (any > 0 && Overlaps(g.window_start_us() - 30'000'000, g.window_end_us() + 30'000'000,
                                t.start_us, t.end_us)) {
          d.outcome = Detection::Outcome::kDetected;
          d.how = n > 0 ? "scored in the AHI" : "scored in the AHI (as the other event type)";
          break;
        }
      }
      if (d.outcome == Detection::Outcome::kMissed) d.how = "no respiratory event scored near it";
      out.push_back(d);
      continue;
    }
    if (t.kind == "HYPOVENTILATION_NEAR_MISS") {
      d.outcome = Detection::Outcome::kCorrectlySilent;
      d.how = "below the AASM rule: correctly no alert";
      for (const auto& a : alerts) {
        if (a.patient_id() == t.patient && a.condition() == v1::CONDITION_SLEEP_HYPOVENTILATION &&
            a.state() == v1::ALERT_STATE_RAISED &&
            Overlaps(a.onset_time_us(), a.onset_time_us() + 1, t.start_us,
                     t.end_us + 600'000'000)) {
          d.outcome = Detection::Outcome::kMissed;
          d.how = "false alert " + a.alert_id() + " on a night below the rule";
        }
      }
      out.push_back(d);
      continue;
    }
    const auto rule = Rules().find(t.kind);
    if (rule == Rules().end()) {
      d.how = "no alert rule for this kind";
      out.push_back(d);
      continue;
    }
    const auto& r = rule->second;
    const int64_t lo = t.start_us - static_cast<int64_t>(r.before_s * 1e6);
    const int64_t hi = t.end_us + static_cast<int64_t>(r.after_s * 1e6);
    for (const auto& a : alerts) {
      if (a.patient_id() != t.patient) continue;
      if (std::find(r.conditions.begin(), r.conditions.end(), a.condition()) ==
          r.conditions.end()) {
        continue;
      }
      // An alert already active when the event began also covers it.
      const auto cleared = ended.find(a.alert_id());
      const int64_t a_end = cleared != ended.end() ? cleared->second : INT64_MAX;
      if ((a.onset_time_us() >= lo && a.onset_time_us() <= hi) ||
          Overlaps(a.onset_time_us(), a_end, t.start_us, t.end_us)) {
        d.outcome = Detection::Outcome::kDetected;
        d.how = fmt::format("{} alert {} ({:+.0f} s from onset)",
                            analysis::ConditionTitle(a.condition()), a.alert_id().substr(0, 8),
                            (a.onset_time_us() - t.start_us) / 1e6);
        break;
      }
    }
    if (const auto minimum_of = MinimumOf(t.kind);
        d.outcome == Detection::Outcome::kMissed && minimum_of) {
      const double minimum_s = analysis::RuleFor(*minimum_of).min_duration_s;
      if (static_cast<double>(t.end_us - t.start_us) < minimum_s * 1e6) {
        d.outcome = Detection::Outcome::kNotAlarmed;
        d.how = fmt::format("shorter than the {:.0f} s the alert rule requires", minimum_s);
      }
    }
    if (t.kind == "AFIB" && d.outcome == Detection::Outcome::kMissed) {
      for (const auto& g : aggregates) {
        if (g.patient_id() == t.patient && g.window() == v1::WINDOW_KIND_MINUTE &&
            g.cardiac().af_burden() > 0 &&
            Overlaps(g.window_start_us(), g.window_end_us(), t.start_us, t.end_us)) {
          d.outcome = Detection::Outcome::kDetected;
          d.how = "AF burden in minute aggregates (episode shorter than the 30 s alert rule)";
          break;
        }
      }
    }
    if (d.outcome == Detection::Outcome::kMissed) {
      d.how = "no matching alert (missed, suppressed by a technical condition, or rate-limited)";
    }
    out.push_back(d);
  }
  return out;
}

void PrintSummary(const std::vector<v1::Alert>& alerts,
                  const std::vector<v1::Aggregate>& aggregates,
                  const std::vector<Detection>& detections, bool colour, std::ostream& out) {
  struct PerPatient {
    int high = 0, medium = 0, low = 0;
    double ecg_s = 0, af_s = 0;
    double usage_min = -1, ahi = -1, co2_max = -1;
    int apneas = 0, hypopneas = 0;
    double breath_min = 0;
  };
  std::map<std::string, PerPatient> patients;
  for (const auto& a : alerts) {
    if (a.state() != v1::ALERT_STATE_RAISED) continue;
    auto& p = patients[a.patient_id()];
    (a.priority() == v1::PRIORITY_HIGH     ? p.high
     : a.priority() == v1::PRIORITY_MEDIUM ? p.medium
                                           : p.low)++;
  }
  for (const auto& g : aggregates) {
    auto& p = patients[g.patient_id()];
    if (g.window() == v1::WINDOW_KIND_MINUTE) {
      if (g.cardiac().has_ecg_coverage()) {
        p.ecg_s += 60 * g.cardiac().ecg_coverage();
        p.af_s += 60 * g.cardiac().ecg_coverage() * g.cardiac().af_burden();
      }
      p.apneas += static_cast<int>(g.respiratory().apneas());
      p.hypopneas += static_cast<int>(g.respiratory().hypopneas());
      if (g.respiratory().breaths() > 0) p.breath_min += 1;
      if (g.co2().has_max_mm_hg()) p.co2_max = std::max(p.co2_max, g.co2().max_mm_hg());
    } else if (g.window() == v1::WINDOW_KIND_THERAPY_DAY) {
      p.usage_min = g.adherence().usage_minutes();
      if (g.respiratory().has_ahi()) p.ahi = g.respiratory().ahi();
    }
  }
  out << fmt::format("\n{:<12} {:>5} {:>6} {:>4}  {:>9}  {:>10}  {:>9}  {:>8}\n", "patient", "high",
                     "medium", "low", "AF burden", "usage (h)", "AHI", "CO2 max");
  for (const auto& [id, p] : patients) {
    const double ahi = p.ahi >= 0         ? p.ahi
                       : p.breath_min > 0 ? (p.apneas + p.hypopneas) / (p.breath_min / 60.0)
                                          : -1;
    out << fmt::format("{:<12} {:>5} {:>6} {:>4}  {:>9}  {:>10}  {:>9}  {:>8}\n", id, p.high,
                       p.medium, p.low,
                       p.ecg_s > 0 ? fmt::format("{:.1f} %", 100 * p.af_s / p.ecg_s) : "-",
                       p.usage_min >= 0 ? fmt::format("{:.1f}", p.usage_min / 60) : "-",
                       ahi >= 0 ? fmt::format("{:.1f}/h", ahi) : "-",
                       p.co2_max >= 0 ? fmt::format("{:.0f} mmHg", p.co2_max) : "-");
  }
  if (detections.empty()) return;
  std::map<std::string, std::array<int, 4>> by_kind;
  out << "\nInjected events (simulator truth) and what Vigil did:\n";
  for (const auto& d : detections) {
    by_kind[d.truth.kind][static_cast<int>(d.outcome)]++;
    const char* word = d.outcome == Detection::Outcome::kDetected          ? "detected"
                       : d.outcome == Detection::Outcome::kCorrectlySilent ? "silent (ok)"
                       : d.outcome == Detection::Outcome::kNotAlarmed      ? "not alarmed"
                                                                           : "MISSED";
    const bool bad = d.outcome == Detection::Outcome::kMissed;
    out << fmt::format("  {:<11} {:<26} {:>9.0f} s  {}{:<11}{}  {}\n", d.truth.patient,
                       d.truth.kind, (d.truth.end_us - d.truth.start_us) / 1e6,
                       bad && colour ? "\033[31m" : "", word, bad && colour ? kReset : "", d.how);
  }
  out << "\nBy kind: detected / missed / correctly silent / not alarmed by design\n";
  for (const auto& [kind, n] : by_kind) {
    out << fmt::format("  {:<26} {:>3} / {:>3} / {:>3} / {:>3}\n", kind, n[0], n[1], n[2], n[3]);
  }
}

namespace {

std::vector<kafka::Record> ReadAll(const std::string& bootstrap, const std::string& topic,
                                   double idle_s) {
  kafka::Consumer consumer({{"bootstrap.servers", bootstrap},
                            {"group.id", fmt::format("vigil-summary-{}", getpid())},
                            {"isolation.level", "read_committed"},
                            {"enable.auto.commit", "false"}});
  consumer.AssignAllFromBeginning(topic, std::chrono::seconds(10));
  auto records =
      consumer.ReadUntilIdle(std::chrono::milliseconds(static_cast<int64_t>(idle_s * 1000)));
  consumer.Close();
  return records;
}

volatile std::sig_atomic_t g_stop = 0;

}  // namespace

void AddConsoleCommands(CLI::App& app) {
  struct Args {
    std::string bootstrap = "localhost:9092";
    std::string truth;
    std::string time_zone = "Europe/Copenhagen";
    bool no_colour = false;
    bool from_beginning = false;
    double idle_s = 3;
  };
  auto args = std::make_shared<Args>();

  auto* watch = app.add_subcommand(
      "watch", "Show alerts live as clinicians would see them: one colour-coded line each");
  watch->add_option("--kafka", args->bootstrap, "Kafka bootstrap servers")->capture_default_str();
  watch->add_option("--time-zone", args->time_zone, "Zone for clock times")->capture_default_str();
  watch->add_flag("--from-beginning", args->from_beginning, "Also show alerts already published");
  watch->add_flag("--no-colour", args->no_colour, "Plain text");
  watch->callback([args] {
    std::signal(SIGINT, [](int) { g_stop = 1; });
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    const bool colour = !args->no_colour && isatty(STDOUT_FILENO);
    kafka::Consumer consumer({{"bootstrap.servers", args->bootstrap},
                              {"group.id", fmt::format("vigil-watch-{}", getpid())},
                              {"isolation.level", "read_committed"},
                              {"enable.auto.commit", "false"},
                              {"auto.offset.reset", args->from_beginning ? "earliest" : "latest"}});
    consumer.Subscribe({std::string(topics::kAlerts)});
    while (!g_stop) {
      auto record = consumer.Poll(std::chrono::milliseconds(200));
      if (!record || !record->value) continue;
      v1::Alert alert;
      if (!alert.ParseFromString(*record->value)) continue;
      std::cout << FormatAlert(alert, colour, args->time_zone) << std::endl;
    }
    consumer.Close();
  });

  auto* summary = app.add_subcommand(
      "summary",
      "Per-patient summary of the committed alerts and aggregates, and detection "
      "against a simulator truth file");
  summary->add_option("--kafka", args->bootstrap, "Kafka bootstrap servers")->capture_default_str();
  summary->add_option("--truth", args->truth, "Ground truth from `vigil simulate --truth`");
  summary->add_option("--until-idle", args->idle_s, "Stop reading a topic after this many idle s")
      ->capture_default_str();
  summary->add_flag("--no-colour", args->no_colour, "Plain text");
  summary->callback([args] {
    try {
      std::vector<v1::Alert> alerts;
      for (const auto& r : ReadAll(args->bootstrap, std::string(topics::kAlerts), args->idle_s)) {
        v1::Alert a;
        if (r.value && a.ParseFromString(*r.value)) alerts.push_back(std::move(a));
      }
      std::vector<v1::Aggregate> aggregates;
      for (const auto& r :
           ReadAll(args->bootstrap, std::string(topics::kAggregates), args->idle_s)) {
        v1::Aggregate g;
        if (r.value && g.ParseFromString(*r.value)) aggregates.push_back(std::move(g));
      }
      std::vector<Detection> detections;
      if (!args->truth.empty())
        detections = ScoreAgainstTruth(ReadTruth(args->truth), alerts, aggregates);
      PrintSummary(alerts, aggregates, detections, !args->no_colour && isatty(STDOUT_FILENO),
                   std::cout);
    } catch (const std::exception& e) {
      std::cerr << "vigil summary: " << e.what() << "\n";
      throw CLI::RuntimeError(2);
    }
  });
}

}  // namespace vigil::console
