#include "operators/io/resmed_card.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include "operators/io/edf_file.h"

namespace vigil::io {
namespace {

namespace fs = std::filesystem;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

ops::TimeUs FileStartUtc(const EdfFile& f, const ResmedCardOptions& o) {
  return LocalToUtc(o.time_zone, f.year, f.month, f.day, f.hour, f.minute, f.second) +
         ops::FromSeconds(o.clock_offset_s);
}

// Appends one channel of `f` as a series, scaled to the ops::Signal unit; values outside
// [valid_min, valid_max] (the device's "no data" codes) become NaN.
void AddSeries(const EdfFile& f, const ResmedCardOptions& o, std::string_view label,
               ops::Signal signal, double scale, double valid_min, double valid_max,
               std::vector<CardSeries>& out) {
  const EdfSignal* s = f.Find(label);
  if (!s) return;  // optional channel (models differ); required ones use Require()
  if (!(s->sample_rate_hz > 0)) {
    throw EdfError(fmt::format("{}: EDF field 'signal {} samples per record': rate {} Hz",
                               f.path.string(), label, s->sample_rate_hz));
  }
  CardSeries series;
  series.signal = signal;
  series.first_sample_us = FileStartUtc(f, o);
  series.sample_rate_hz = s->sample_rate_hz;
  series.file = f.path.filename().string();
  series.values.resize(s->values.size());
  std::transform(s->values.begin(), s->values.end(), series.values.begin(), [&](float v) {
    return (v >= valid_min && v <= valid_max) ? static_cast<float>(v * scale) : kNaN;
  });
  out.push_back(std::move(series));
}

std::map<std::string, std::string> ReadIdentification(const fs::path& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() < 2 || line[0] != '#') continue;
    const auto space = line.find(' ');
    out[line.substr(1, space == std::string::npos ? std::string::npos : space - 1)] =
        space == std::string::npos ? "" : line.substr(space + 1);
  }
  return out;
}

std::string FormatDate(date::sys_days d) {
  return date::format("%F", d);
}

void ReadStr(const fs::path& path, const ResmedCardOptions& o, ResmedCard& card) {
  const EdfFile f = ReadEdf(path);
  const auto& date_sig = f.Require("Date");
  const auto& on = f.Require("MaskOn");
  const auto& off = f.Require("MaskOff");
  const auto& events = f.Require("MaskEvents");
  const auto& duration = f.Require("Duration");
  const auto per_day = [&](std::string_view label, size_t r, double scale) {
    const EdfSignal* s = f.Find(label);
    if (!s || r >= s->values.size() || s->values[r] < 0) return std::nan("");
    return s->values[r] * scale;
  };
  const size_t days = date_sig.values.size();
  // One Date sample per day; every per-day signal below is indexed by it, and MaskOn/MaskOff
  // hold a whole number of slots per day (divided by `days`).
  if (days == 0) {
    throw EdfError(fmt::format("{}: EDF field 'Date': no samples (a STR file holds one per day)",
                               path.string()));
  }
  for (const EdfSignal* s : {&events, &duration}) {
    if (s->values.size() < days) {
      throw EdfError(fmt::format("{}: EDF field '{}': {} samples for {} days", path.string(),
                                 s->label, s->values.size(), days));
    }
  }
  if (on.values.size() != off.values.size() || on.values.size() % days != 0) {
    throw EdfError(fmt::format("{}: EDF field 'MaskOn/MaskOff': {} / {} samples for {} days",
                               path.string(), on.values.size(), off.values.size(), days));
  }
  const size_t slots = on.values.size() / days;
  const auto* zone = date::locate_zone(o.time_zone);
  for (size_t r = 0; r < days; ++r) {
    if (date_sig.values[r] < 0) continue;
    StrDay d;
    const date::sys_days day{date::days{static_cast<int>(std::lround(date_sig.values[r]))}};
    d.date = FormatDate(day);
    d.usage_min = std::max(0.0, static_cast<double>(duration.values[r]));
    d.mask_events = std::max(0, static_cast<int>(std::lround(events.values[r])));
    d.sessions = d.mask_events / 2;
    d.ahi = per_day("AHI", r, 1);
    d.hi = per_day("HI", r, 1);
    d.ai = per_day("AI", r, 1);
    d.leak_p50_lpm = per_day("Leak.50", r, 60);
    d.leak_p95_lpm = per_day("Leak.95", r, 60);
    d.rr_median = per_day("RespRate.50", r, 1);
    d.vt_median_ml = per_day("TidVol.50", r, 1000);
    d.mv_median_lpm = per_day("MinVent.50", r, 1);
    const double mode = per_day("Mode", r, 1);
    d.mode = std::isnan(mode) ? -1 : static_cast<int>(mode);
    // The first setting present in this order describes the mode in use (CPAP, AutoSet,
    // bilevel S/ST, VAuto); the card holds only the ones its model supports.
    for (const auto& [lo, hi] :
         {std::pair{"S.C.Press", "S.C.Press"}, std::pair{"S.AS.MinPress", "S.AS.MaxPress"},
          std::pair{"S.BL.EPAP", "S.BL.IPAP"}, std::pair{"S.VA.MinEPAP", "S.VA.MaxIPAP"}}) {
      const double a = per_day(lo, r, 1), b = per_day(hi, r, 1);
      if (std::isnan(a) || std::isnan(b)) continue;
      if ((d.mode == 1 && std::string_view(lo) != "S.AS.MinPress") ||
          (d.mode == 0 && std::string_view(lo) != "S.C.Press")) {
        continue;
      }
      d.epap_cm_h2o = a;
      d.ipap_cm_h2o = b;
      break;
    }
    const auto noon = date::local_days{date::days{day.time_since_epoch()}} + std::chrono::hours(12);
    for (size_t k = 0; k < slots; ++k) {
      const float a = on.values[r * slots + k], b = off.values[r * slots + k];
      if (a < 0 || b < 0) continue;
      const auto to_utc = [&](float minutes) {
        const auto local = noon + std::chrono::minutes(std::lround(minutes));
        const auto sys = zone->to_sys(local, date::choose::earliest);
        return static_cast<ops::TimeUs>(
                   std::chrono::duration_cast<std::chrono::microseconds>(sys.time_since_epoch())
                       .count()) +
               ops::FromSeconds(o.clock_offset_s);
      };
      d.sessions_utc.emplace_back(to_utc(a), to_utc(b));
    }
    card.days.push_back(std::move(d));
  }
}

}  // namespace

ops::TimeUs LocalToUtc(const std::string& zone_name, int year, int month, int day, int hour,
                       int minute, double second) {
  const auto* zone = date::locate_zone(zone_name);
  const auto local_day = date::local_days{date::year{year} / month / day};
  const auto whole = std::floor(second);
  const auto local = local_day + std::chrono::hours(hour) + std::chrono::minutes(minute) +
                     std::chrono::seconds(static_cast<int>(whole));
  const auto sys = zone->to_sys(local, date::choose::earliest);
  return static_cast<ops::TimeUs>(
             std::chrono::duration_cast<std::chrono::microseconds>(sys.time_since_epoch())
                 .count()) +
         ops::FromSeconds(second - whole);
}

ops::Chunk TelemetryItem::chunk() const {
  ops::Chunk c;
  c.first_sample_us =
      ops::SampleTime(series->first_sample_us, series->sample_rate_hz, static_cast<int64_t>(begin));
  c.sample_rate_hz = series->sample_rate_hz;
  c.values = std::span<const float>(series->values.data() + begin, end - begin);
  return c;
}

ResmedCard ReadResmedCard(const fs::path& root, const ResmedCardOptions& o) {
  try {
    (void)date::locate_zone(o.time_zone);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("time zone '{}' unknown: {}", o.time_zone, e.what()));
  }
  if (!fs::is_directory(root)) throw CardError(fmt::format("{}: not a directory", root.string()));
  ResmedCard card;
  card.root = root;
  if (fs::exists(root / "Identification.tgt")) {
    card.identification = ReadIdentification(root / "Identification.tgt");
  }
  card.device_id = card.identification.count("SRN") ? card.identification["SRN"] : "resmed";
  if (!fs::exists(root / "STR.edf")) {
    throw CardError(fmt::format("{}: STR.edf missing (not a ResMed card?)", root.string()));
  }
  ReadStr(root / "STR.edf", o, card);
  if (!fs::is_directory(root / "DATALOG")) {
    throw CardError(fmt::format("{}: DATALOG folder missing", root.string()));
  }
  std::vector<fs::path> files;
  for (const auto& day : fs::directory_iterator(root / "DATALOG")) {
    if (!day.is_directory()) continue;
    card.datalog_days.push_back(day.path().filename().string());
    for (const auto& file : fs::directory_iterator(day.path())) {
      if (file.path().extension() == ".edf") files.push_back(file.path());
    }
  }
  std::sort(card.datalog_days.begin(), card.datalog_days.end());
  std::sort(files.begin(), files.end());

  // Settings in force, from STR (the day's record); attached to each session start.
  for (const auto& path : files) {
    const std::string name = path.stem().string();
    const std::string kind = name.size() > 3 ? name.substr(name.size() - 3) : "";
    if (kind == "EVE") {
      const EdfFile f = ReadEdf(path);
      const ops::TimeUs t0 = FileStartUtc(f, o);
      for (const auto& a : f.annotations) {
        if (a.text == "Recording starts" || a.text == "Recording ends") continue;
        // ResMed stamps an event when it has scored it, i.e. at its end (an apnea of 13 s at
        // "+21177" ends there; the flow shows it in the 13 s before): the start is onset -
        // duration.
        card.scored_events.push_back(
            {t0 + ops::FromSeconds(a.onset_s - a.duration_s), a.duration_s, a.text});
      }
      continue;
    }
    if (kind != "BRP" && kind != "PLD" && kind != "SAD") continue;
    if (!o.read_signals && kind != "BRP") continue;
    const EdfFile f = ReadEdf(path);
    if (kind == "BRP") {
      const auto& flow = f.Require("Flow.40ms");
      f.Require("Press.40ms");
      const ops::TimeUs start = FileStartUtc(f, o);
      const ops::TimeUs end =
          ops::SampleTime(start, flow.sample_rate_hz, static_cast<int64_t>(flow.values.size()));
      ops::DeviceEventView s;
      s.type = ops::DeviceEventView::Type::kSessionStart;
      s.time_us = start;
      card.device_events.push_back(s);
      // The settings in force for this session (from the STR record of its therapy day).
      for (const auto& day : card.days) {
        const bool in_day =
            std::any_of(day.sessions_utc.begin(), day.sessions_utc.end(), [&](const auto& on_off) {
              return start >= on_off.first - 120 * ops::kMicrosPerSecond && start <= on_off.second;
            });
        if (!in_day || std::isnan(day.epap_cm_h2o)) continue;
        ops::DeviceEventView settings;
        settings.type = ops::DeviceEventView::Type::kSettings;
        settings.time_us = start;
        settings.epap_cm_h2o = day.epap_cm_h2o;
        settings.ipap_cm_h2o = day.ipap_cm_h2o;
        card.device_events.push_back(settings);
        break;
      }
      ops::DeviceEventView e;
      e.type = ops::DeviceEventView::Type::kSessionStop;
      e.time_us = end;
      card.device_events.push_back(e);
      if (o.read_signals) {
        // Flow L/s -> L/min; the device's range is [-2, 3] L/s.
        AddSeries(f, o, "Flow.40ms", ops::Signal::kFlow, 60.0, -1e9, 1e9, card.series);
        AddSeries(f, o, "Press.40ms", ops::Signal::kAirwayPressure, 1.0, -1e9, 1e9, card.series);
      }
    } else if (kind == "PLD") {
      f.Require("Leak.2s");
      AddSeries(f, o, "Leak.2s", ops::Signal::kLeak, 60.0, 0, 1e9, card.series);
      AddSeries(f, o, "RespRate.2s", ops::Signal::kRespiratoryRate, 1.0, 0, 1e9, card.series);
      AddSeries(f, o, "TidVol.2s", ops::Signal::kTidalVolume, 1000.0, 0, 1e9, card.series);
      AddSeries(f, o, "MinVent.2s", ops::Signal::kMinuteVentilation, 1.0, 0, 1e9, card.series);
    } else {  // SAD: -1 (no oximeter) is stored, clipped to the channel minimum by the reader
      AddSeries(f, o, "SpO2.1s", ops::Signal::kSpo2, 1.0, 50, 100, card.series);
      AddSeries(f, o, "Pulse.1s", ops::Signal::kPulseRate, 1.0, 20, 299, card.series);
    }
  }
  std::stable_sort(card.series.begin(), card.series.end(), [](const auto& a, const auto& b) {
    return a.first_sample_us < b.first_sample_us;
  });
  std::stable_sort(card.device_events.begin(), card.device_events.end(),
                   [](const auto& a, const auto& b) { return a.time_us < b.time_us; });
  std::stable_sort(card.scored_events.begin(), card.scored_events.end(),
                   [](const auto& a, const auto& b) { return a.start_us < b.start_us; });
  return card;
}

std::vector<TelemetryItem> CardTelemetry(const ResmedCard& card, double chunk_s) {
  std::vector<TelemetryItem> items;
  for (const auto& s : card.series) {
    const size_t step =
        std::max<size_t>(1, static_cast<size_t>(std::lround(chunk_s * s.sample_rate_hz)));
    for (size_t b = 0; b < s.values.size(); b += step) {
      TelemetryItem it;
      it.series = &s;
      it.begin = b;
      it.end = std::min(s.values.size(), b + step);
      it.time_us = ops::SampleTime(s.first_sample_us, s.sample_rate_hz, static_cast<int64_t>(b));
      items.push_back(it);
    }
  }
  for (const auto& e : card.device_events) {
    TelemetryItem it;
    it.time_us = e.time_us;
    it.event = &e;
    items.push_back(it);
  }
  // Session stops sort after the chunks that end at the same instant, starts before theirs.
  std::stable_sort(items.begin(), items.end(), [](const TelemetryItem& a, const TelemetryItem& b) {
    return a.time_us < b.time_us;
  });
  return items;
}

}  // namespace vigil::io
