#include "pipeline/replay/card_replay.h"

#include <date/date.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "operators/adherence/therapy_usage.h"
#include "pipeline/analysis/operator_registry.h"

namespace vigil::replay {
namespace {

std::optional<double> Percentile(std::vector<double> v, double p) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const double pos = p * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// Time-weighted percentile: each value counts for `weight` seconds. Breath quantities are
// summarised over time, as a device samples them every 2 s, not over breaths (fast breathing
// would otherwise count more, and pull the median rate up).
std::optional<double> WeightedPercentile(std::vector<std::pair<double, double>> v, double p) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  double total = 0;
  for (const auto& [x, w] : v) total += w;
  double acc = 0;
  for (const auto& [x, w] : v) {
    acc += w;
    if (acc >= p * total) return x;
  }
  return v.back().first;
}

std::string Iso(ops::TimeUs t) {
  const date::sys_time<std::chrono::milliseconds> tp{std::chrono::milliseconds(t / 1000)};
  return date::format("%FT%TZ", tp);
}

std::string Num(const std::optional<double>& v, int decimals = 1) {
  if (!v || !std::isfinite(*v)) return "null";
  return fmt::format("{:.{}f}", *v, decimals);
}

std::string Escape(std::string_view s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

struct Runner {
  const ops::StreamOperator* op;
  std::unique_ptr<ops::OperatorState> state;
};

}  // namespace

bool IsResmedCard(const std::filesystem::path& path) {
  return std::filesystem::is_directory(path) && std::filesystem::exists(path / "STR.edf");
}

CardReplayResult ReplayCard(const io::ResmedCard& card, const CardReplayOptions& options) {
  const auto params = [&](const std::string& name) {
    const auto it = options.parameters.find(name);
    return it == options.parameters.end() ? ops::Parameters{} : it->second;
  };
  std::vector<std::unique_ptr<const ops::StreamOperator>> owned;
  for (const char* name : {"respiration.breaths", "respiration.events", "respiration.leak"}) {
    const auto* entry = analysis::FindOperator(name);
    if (!entry) throw std::logic_error(fmt::format("operator {} not registered", name));
    owned.push_back(entry->make(params(name)));
  }
  owned.push_back(ops::TherapyUsage::Make(
      ops::TherapyUsageOptions::FromParameters(params("adherence.usage"), options.time_zone)));
  std::vector<Runner> runners;
  for (const auto& op : owned) runners.push_back({op.get(), op->MakeState()});

  CardReplayResult result;
  ops::Events events;
  std::vector<ops::TherapyDay> days;
  std::vector<ops::Breath> breaths;
  std::vector<std::pair<ops::TimeUs, double>> leak;
  std::map<ops::EpisodeKind, ops::Episode> open;
  std::vector<std::pair<ops::TimeUs, std::pair<std::string, double>>> day_measures;
  const auto drain = [&] {
    for (auto& e : events) {
      if (auto* b = std::get_if<ops::Breath>(&e)) {
        breaths.push_back(*b);
      } else if (auto* m = std::get_if<ops::Measurement>(&e)) {
        if (m->name == "leak_lpm") {
          leak.emplace_back(m->time_us, m->value);
        } else {
          day_measures.push_back({m->time_us, {m->name, m->value}});
        }
      } else if (auto* d = std::get_if<ops::TherapyDay>(&e)) {
        days.push_back(*d);
      } else if (auto* ep = std::get_if<ops::Episode>(&e)) {
        if (ep->phase == ops::Episode::Phase::kOpened) {
          open[ep->kind] = *ep;
        } else if (ep->phase == ops::Episode::Phase::kClosed) {
          open.erase(ep->kind);
          result.episodes.push_back(*ep);
        }
      }
    }
    events.clear();
  };

  std::map<ops::Signal, ops::TimeUs> last_end;
  for (const auto& item : io::CardTelemetry(card, options.chunk_s)) {
    if (item.event) {
      for (auto& r : runners) r.op->OnDeviceEvent(*r.state, *item.event, events);
    } else {
      const ops::Chunk chunk = item.chunk();
      const ops::Signal signal = item.series->signal;
      auto [it, fresh] = last_end.try_emplace(signal, 0);
      const ops::TimeUs period = static_cast<ops::TimeUs>(1e6 / chunk.sample_rate_hz);
      if (!fresh && chunk.first_sample_us - it->second > 2 * period) {
        for (auto& r : runners) {
          const auto in = r.op->inputs();
          if (std::find(in.begin(), in.end(), signal) != in.end()) {
            r.op->OnGap(*r.state, signal, it->second, chunk.first_sample_us, events);
          }
        }
      }
      it->second = chunk.end_us();
      result.samples += chunk.values.size();
      for (auto& r : runners) {
        const auto in = r.op->inputs();
        if (std::find(in.begin(), in.end(), signal) != in.end()) {
          r.op->Process(*r.state, signal, chunk, events);
        }
      }
    }
    for (auto& r : runners) r.op->AdvanceTo(*r.state, item.time_us, events);
    drain();
  }
  for (auto& r : runners) r.op->Finish(*r.state, events);
  drain();
  for (auto& [kind, ep] : open) {  // still open at the end of the card
    ep.phase = ops::Episode::Phase::kClosed;
    result.episodes.push_back(ep);
  }
  std::sort(result.episodes.begin(), result.episodes.end(),
            [](const auto& a, const auto& b) { return a.start_us < b.start_us; });

  for (const auto& d : days) {
    TherapyDayLine line;
    line.date = d.date;
    line.start_us = d.start_us;
    line.end_us = d.end_us;
    line.usage_min = d.usage_min;
    line.sessions = d.sessions;
    const auto inside = [&](ops::TimeUs t) { return t >= d.start_us && t < d.end_us; };
    for (const auto& ep : result.episodes) {
      if (!inside(ep.start_us)) continue;
      line.apneas += ep.kind == ops::EpisodeKind::kApnea;
      line.hypopneas += ep.kind == ops::EpisodeKind::kHypopnea;
      if (ep.kind == ops::EpisodeKind::kLargeLeak) {
        line.large_leak_min = line.large_leak_min.value_or(0) + ops::ToSeconds(ep.end_us - ep.start_us) / 60;
      }
    }
    if (d.usage_min > 0) line.ahi = (line.apneas + line.hypopneas) / (d.usage_min / 60.0);
    std::vector<double> lk;
    std::vector<std::pair<double, double>> rr, vt, mv;
    for (const auto& [t, v] : leak) {
      if (inside(t)) lk.push_back(v);
    }
    for (const auto& b : breaths) {
      if (!inside(b.start_us)) continue;
      const double w = ops::ToSeconds(b.end_us - b.start_us);
      rr.emplace_back(b.respiratory_rate_bpm, w);
      vt.emplace_back(b.tidal_volume_ml, w);
      mv.emplace_back(b.minute_ventilation_lpm, w);
    }
    line.breaths = rr.size();
    line.leak_p50_lpm = Percentile(lk, 0.5);
    line.leak_p95_lpm = Percentile(lk, 0.95);
    if (line.leak_p50_lpm && !line.large_leak_min) line.large_leak_min = 0;
    line.rr_median = WeightedPercentile(rr, 0.5);
    line.vt_median_ml = WeightedPercentile(vt, 0.5);
    line.mv_median_lpm = WeightedPercentile(mv, 0.5);
    for (const auto& [t, m] : day_measures) {
      if (t != d.end_us) continue;
      if (m.first == "adherence_score") line.adherence_score = m.second;
      if (m.first == "compliance_30d") line.compliance_30d = m.second;
      if (m.first == "usage_mean_7_nights_h") line.usage_mean_7_nights_h = m.second;
    }
    result.days.push_back(std::move(line));
  }
  return result;
}

void WriteJsonLines(const CardReplayResult& r, std::ostream& out) {
  for (const auto& e : r.episodes) {
    out << fmt::format(
        R"({{"type":"episode","rhythm":"{}","start":"{}","end":"{}","start_us":{},"end_us":{},)"
        R"("duration_s":{:.1f},"algorithm":"{}","rule":"{}","note":"{}"}})",
        ops::EpisodeName(e.kind), Iso(e.start_us), Iso(e.end_us), e.start_us, e.end_us,
        ops::ToSeconds(e.end_us - e.start_us), Escape(e.why.algorithm), Escape(e.why.rule),
        Escape(e.why.note))
        << '\n';
  }
  for (const auto& d : r.days) {
    out << fmt::format(
        R"({{"type":"therapy_day","date":"{}","usage_min":{:.1f},"sessions":{},"ahi":{},)"
        R"("leak_p50_lpm":{},"leak_p95_lpm":{},"rr_median":{},"vt_median_ml":{},)"
        R"("mv_median_lpm":{}}})",
        d.date, d.usage_min, d.sessions, Num(d.ahi), Num(d.leak_p50_lpm), Num(d.leak_p95_lpm),
        Num(d.rr_median), Num(d.vt_median_ml), Num(d.mv_median_lpm))
        << '\n';
  }
  for (const auto& d : r.days) {
    out << fmt::format(
        R"({{"type":"aggregate","window":"THERAPY_DAY","therapy_date":"{}","window_start":"{}",)"
        R"("window_end":"{}","usage_minutes":{:.1f},"sessions":{},"apneas":{},"hypopneas":{},)"
        R"("breaths":{},"large_leak_minutes":{},"adherence_score":{},"compliance_met":{},)"
        R"("usage_mean_7_nights_h":{}}})",
        d.date, Iso(d.start_us), Iso(d.end_us), d.usage_min, d.sessions, d.apneas, d.hypopneas,
        d.breaths, Num(d.large_leak_min), Num(d.adherence_score),
        d.compliance_30d ? (*d.compliance_30d > 0.5 ? "true" : "false") : "null",
        Num(d.usage_mean_7_nights_h, 2))
        << '\n';
  }
}

int RunCardReplay(const std::filesystem::path& card_dir, const std::filesystem::path& out_file,
                  const std::string& time_zone, std::ostream& err) {
  try {
    io::ResmedCardOptions co;
    co.time_zone = time_zone;
    const auto card = io::ReadResmedCard(card_dir, co);
    CardReplayOptions ro;
    ro.time_zone = time_zone;
    const auto result = ReplayCard(card, ro);
    std::ofstream out(out_file);
    if (!out) {
      err << "cannot write " << out_file.string() << '\n';
      return 2;
    }
    WriteJsonLines(result, out);
    err << fmt::format("{}: {} therapy days, {} episodes, {} samples -> {}\n", card_dir.string(),
                       result.days.size(), result.episodes.size(), result.samples,
                       out_file.string());
    return 0;
  } catch (const std::exception& e) {
    err << "vigil replay: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace vigil::replay
