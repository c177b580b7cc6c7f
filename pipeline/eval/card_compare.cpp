#include "pipeline/eval/card_compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

namespace vigil::eval {
namespace {

// Flat JSON objects as `vigil replay` writes them: string, number and null values only.
std::map<std::string, std::string> ParseFlat(const std::string& line, size_t number) {
  std::map<std::string, std::string> kv;
  size_t i = 0;
  const auto fail = [&](std::string_view why) {
    throw std::runtime_error(fmt::format("replay line {}: {} at column {}", number, why, i + 1));
  };
  const auto skip = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  };
  const auto string = [&] {
    if (line[i] != '"') fail("string expected");
    std::string s;
    for (++i; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) ++i;
      s += line[i];
    }
    if (i >= line.size()) fail("unterminated string");
    ++i;
    return s;
  };
  skip();
  if (i >= line.size() || line[i] != '{') fail("'{' expected");
  ++i;
  while (true) {
    skip();
    if (i < line.size() && line[i] == '}') break;
    const std::string key = string();
    skip();
    if (i >= line.size() || line[i] != ':') fail("':' expected");
    ++i;
    skip();
    if (i >= line.size()) fail("value expected");
    std::string value;
    if (line[i] == '"') {
      value = string();
    } else {
      const size_t b = i;
      while (i < line.size() && line[i] != ',' && line[i] != '}') ++i;
      value = line.substr(b, i - b);
      while (!value.empty() && value.back() == ' ') value.pop_back();
    }
    kv[key] = value;
    skip();
    if (i < line.size() && line[i] == ',') {
      ++i;
      continue;
    }
    if (i < line.size() && line[i] == '}') break;
    fail("',' or '}' expected");
  }
  return kv;
}

std::optional<double> Number(const std::map<std::string, std::string>& kv, const std::string& k) {
  const auto it = kv.find(k);
  if (it == kv.end() || it->second == "null" || it->second.empty()) return std::nullopt;
  return std::stod(it->second);
}

bool IsRespiratoryEve(const std::string& label) {
  return label.find("Apnea") != std::string::npos || label.find("Hypopnea") != std::string::npos;
}

std::string Cell(const std::optional<double>& v, int decimals) {
  if (!v || !std::isfinite(*v)) return "-";
  return fmt::format("{:.{}f}", *v, decimals);
}
std::optional<double> Opt(double v) {
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

}  // namespace

ReplayLines ParseReplayLines(std::istream& in) {
  ReplayLines out;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto kv = ParseFlat(line, number);
    const auto type = kv.find("type");
    if (type == kv.end()) throw std::runtime_error(fmt::format("replay line {}: no type", number));
    if (type->second == "therapy_day") {
      ReplayDay d;
      d.date = kv.at("date");
      d.usage_min = Number(kv, "usage_min").value_or(0);
      d.sessions = static_cast<int>(Number(kv, "sessions").value_or(0));
      d.ahi = Number(kv, "ahi");
      d.leak_p50_lpm = Number(kv, "leak_p50_lpm");
      d.leak_p95_lpm = Number(kv, "leak_p95_lpm");
      d.rr_median = Number(kv, "rr_median");
      d.vt_median_ml = Number(kv, "vt_median_ml");
      d.mv_median_lpm = Number(kv, "mv_median_lpm");
      out.days.push_back(d);
    } else if (type->second == "episode") {
      ReplayEpisode e;
      e.rhythm = kv.count("rhythm") ? kv.at("rhythm") : "";
      if (const auto us = Number(kv, "start_us")) e.start_us = static_cast<ops::TimeUs>(*us);
      if (const auto us = Number(kv, "end_us")) e.end_us = static_cast<ops::TimeUs>(*us);
      e.start_s = Number(kv, "start").value_or(0);
      e.end_s = Number(kv, "end").value_or(e.start_s);
      out.episodes.push_back(e);
    }
  }
  return out;
}

CardComparison CompareCard(const ReplayLines& lines, const io::ResmedCard& card, double match_s) {
  CardComparison c;
  std::map<std::string, DayComparison> by_date;
  for (const auto& d : card.days) {
    auto& row = by_date[d.date];
    row.date = d.date;
    row.device = &d;
    std::string folder = d.date;
    std::erase(folder, '-');
    row.with_data = d.has_data() &&
                    std::binary_search(card.datalog_days.begin(), card.datalog_days.end(), folder);
  }
  for (const auto& d : lines.days) {
    auto& row = by_date[d.date];
    row.date = d.date;
    row.vigil = &d;
  }
  // Event agreement: greedy one-to-one matching by start time within match_s.
  std::vector<const io::CardScoredEvent*> eve;
  for (const auto& e : card.scored_events) {
    if (IsRespiratoryEve(e.label)) eve.push_back(&e);
  }
  // Relative episode times count from the card's first telemetry item (CardTelemetry order).
  ops::TimeUs origin = card.device_events.empty() ? 0 : card.device_events.front().time_us;
  if (!card.series.empty()) origin = std::min(origin, card.series.front().first_sample_us);
  std::vector<ops::TimeUs> starts, ends;
  std::vector<const ReplayEpisode*> mine;
  for (const auto& e : lines.episodes) {
    if (e.rhythm != "APNEA" && e.rhythm != "HYPOPNEA") continue;
    mine.push_back(&e);
    starts.push_back(e.start_us ? *e.start_us : origin + ops::FromSeconds(e.start_s));
    ends.push_back(e.end_us ? *e.end_us : origin + ops::FromSeconds(e.end_s));
  }
  std::vector<bool> used(mine.size(), false);
  const ops::TimeUs tol = ops::FromSeconds(match_s);
  const auto day_of = [&](ops::TimeUs t) -> DayComparison* {
    for (const auto& d : card.days) {
      for (const auto& [on, off] : d.sessions_utc) {
        if (t >= on - 60 * ops::kMicrosPerSecond && t <= off + 60 * ops::kMicrosPerSecond) {
          return &by_date[d.date];
        }
      }
    }
    return nullptr;
  };
  for (const auto* e : eve) {
    ++c.eve_events;
    DayComparison* day = day_of(e->start_us);
    if (day) ++day->eve_events;
    size_t best = mine.size();
    ops::TimeUs best_d = tol + 1;
    // Without a duration the device's stamp is the event's end (see the header).
    const bool stamped_at_end = e->duration_s <= 0;
    for (size_t i = 0; i < mine.size(); ++i) {
      if (used[i]) continue;
      const ops::TimeUs d = std::llabs((stamped_at_end ? ends[i] : starts[i]) - e->start_us);
      if (d <= tol && d < best_d) {
        best = i;
        best_d = d;
      }
    }
    if (best < mine.size()) {
      used[best] = true;
      ++c.matched;
      if (day) ++day->matched;
    }
  }
  for (const ops::TimeUs t : starts) {
    ++c.vigil_events;
    if (DayComparison* day = day_of(t)) ++day->vigil_events;
  }
  for (auto& [date, row] : by_date) {
    if (!row.device && !row.vigil) continue;
    if (row.with_data) {
      ++c.days_with_data;
      if (row.vigil) {
        const auto* d = row.device;
        const auto* v = row.vigil;
        c.usage_within_5min += std::fabs(v->usage_min - d->usage_min) <= 5;
        c.ahi_within_1 += v->ahi && std::fabs(*v->ahi - d->ahi) <= 1;
        c.rr_within_1 += v->rr_median && std::fabs(*v->rr_median - d->rr_median) <= 1;
        c.vt_within_10pct += v->vt_median_ml &&
                             std::fabs(*v->vt_median_ml - d->vt_median_ml) <= 0.1 * d->vt_median_ml;
      }
    }
    c.days.push_back(row);
  }
  return c;
}

void PrintComparison(const CardComparison& c, std::ostream& out) {
  out << fmt::format(
      "{:<10} {:>4} | {:>6} {:>6} | {:>4} {:>4} | {:>5} {:>5} | {:>5} {:>5} | "
      "{:>5} {:>5} | {:>5} {:>5} | {:>5} {:>5} | {:>5} {:>5} | {:>9}\n",
      "date", "data", "use_V", "use_D", "ss_V", "ss_D", "ahi_V", "ahi_D", "l50_V", "l50_D", "l95_V",
      "l95_D", "rr_V", "rr_D", "vt_V", "vt_D", "mv_V", "mv_D", "EVE m/D/V");
  for (const auto& r : c.days) {
    if (!r.with_data && !r.vigil) continue;
    const auto* d = r.device;
    const auto* v = r.vigil;
    const auto dv = [&](double x) { return d ? Opt(x) : std::nullopt; };
    out << fmt::format(
        "{:<10} {:>4} | {:>6} {:>6} | {:>4} {:>4} | {:>5} {:>5} | {:>5} {:>5} | {:>5} {:>5} | "
        "{:>5} {:>5} | {:>5} {:>5} | {:>5} {:>5} | {:>9}\n",
        r.date, r.with_data ? "yes" : "no", Cell(v ? Opt(v->usage_min) : std::nullopt, 1),
        Cell(d ? dv(d->usage_min) : std::nullopt, 0), v ? std::to_string(v->sessions) : "-",
        d ? std::to_string(d->sessions) : "-", Cell(v ? v->ahi : std::nullopt, 1),
        Cell(d ? dv(d->ahi) : std::nullopt, 1), Cell(v ? v->leak_p50_lpm : std::nullopt, 1),
        Cell(d ? dv(d->leak_p50_lpm) : std::nullopt, 1),
        Cell(v ? v->leak_p95_lpm : std::nullopt, 1),
        Cell(d ? dv(d->leak_p95_lpm) : std::nullopt, 1), Cell(v ? v->rr_median : std::nullopt, 1),
        Cell(d ? dv(d->rr_median) : std::nullopt, 1), Cell(v ? v->vt_median_ml : std::nullopt, 0),
        Cell(d ? dv(d->vt_median_ml) : std::nullopt, 0),
        Cell(v ? v->mv_median_lpm : std::nullopt, 2),
        Cell(d ? dv(d->mv_median_lpm) : std::nullopt, 2),
        fmt::format("{}/{}/{}", r.matched, r.eve_events, r.vigil_events));
  }
  const auto pct = [&](int n) { return c.days_with_data ? 100.0 * n / c.days_with_data : 0.0; };
  out << fmt::format(
      "days with data: {}; usage within 5 min: {} ({:.0f} %); AHI within 1/h: {} ({:.0f} %); "
      "RR median within 1/min: {} ({:.0f} %); Vt median within 10 %: {} ({:.0f} %)\n",
      c.days_with_data, c.usage_within_5min, pct(c.usage_within_5min), c.ahi_within_1,
      pct(c.ahi_within_1), c.rr_within_1, pct(c.rr_within_1), c.vt_within_10pct,
      pct(c.vt_within_10pct));
  out << fmt::format(
      "EVE apneas+hypopneas: {}; Vigil: {}; matched within 10 s: {} (sensitivity {:.0f} %, "
      "positive predictivity {:.0f} %)\n",
      c.eve_events, c.vigil_events, c.matched,
      c.eve_events ? 100.0 * c.matched / c.eve_events : 0.0,
      c.vigil_events ? 100.0 * c.matched / c.vigil_events : 0.0);
}

int RunEvalCard(const std::filesystem::path& jsonl, const std::filesystem::path& card_dir,
                const std::string& time_zone, std::ostream& out, std::ostream& err) {
  try {
    std::ifstream in(jsonl);
    if (!in) {
      err << "vigil eval-card: cannot read " << jsonl.string() << '\n';
      return 2;
    }
    const auto lines = ParseReplayLines(in);
    io::ResmedCardOptions o;
    o.time_zone = time_zone;
    o.read_signals = false;
    const auto card = io::ReadResmedCard(card_dir, o);
    const auto c = CompareCard(lines, card);
    out << "Vigil (V) vs device (D, STR.edf / EVE) for " << card_dir.string() << '\n';
    PrintComparison(c, out);
    return 0;
  } catch (const std::exception& e) {
    err << "vigil eval-card: " << e.what() << '\n';
    return 1;
  }
}

void AddEvalCardCommand(CLI::App& app) {
  struct Args {
    std::string jsonl, card, tz = "Europe/Copenhagen";
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "eval-card", "Compare a card replay with the card's own STR.edf summaries and EVE events");
  cmd->add_option("replay", args->jsonl, "JSON Lines from `vigil replay <card-dir>`")->required();
  cmd->add_option("--card", args->card, "The ResMed card folder")->required();
  cmd->add_option("--tz", args->tz, "IANA zone of the device clock")->capture_default_str();
  cmd->callback([args] {
    const int rc = RunEvalCard(args->jsonl, args->card, args->tz, std::cout, std::cerr);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace vigil::eval
