#include "pipeline/report/html_report.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>

#include "pipeline/analysis/alert_manager.h"

namespace vigil::report {
namespace {

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string LocalTime(ops::TimeUs t, const std::string& zone, const char* format = "%F %T") {
  using namespace std::chrono;
  try {
    const auto* z = date::locate_zone(zone);
    const auto local = z->to_local(sys_time<microseconds>(microseconds(t)));
    return date::format(format, date::floor<seconds>(local));
  } catch (const std::exception&) {
    return date::format(format, date::floor<seconds>(sys_time<microseconds>(microseconds(t))));
  }
}

const char* PriorityClass(v1::Priority p) {
  switch (p) {
    case v1::PRIORITY_HIGH:
      return "high";
    case v1::PRIORITY_MEDIUM:
      return "medium";
    default:
      return "low";
  }
}

// A time-series panel: one or more series against device time, optional shaded intervals.
struct Series {
  std::string label;
  std::string colour;
  std::vector<std::pair<ops::TimeUs, double>> points;
};
struct Shade {
  ops::TimeUs start_us, end_us;
  std::string colour;
  std::string label;
};

std::string Panel(const std::string& title, const std::string& unit, ops::TimeUs t0, ops::TimeUs t1,
                  const std::vector<Series>& series, const std::vector<Shade>& shades,
                  const std::string& zone, std::optional<double> threshold = std::nullopt) {
  constexpr double W = 960, H = 150, L = 50, R = 10, T = 18, B = 22;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& s : series) {
    for (const auto& [t, v] : s.points) {
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (threshold) {
    lo = std::min(lo, *threshold);
    hi = std::max(hi, *threshold);
  }
  if (!std::isfinite(lo)) return "";
  if (hi - lo < 1e-9) {
    hi += 1;
    lo -= 1;
  }
  const double pad = 0.08 * (hi - lo);
  lo -= pad;
  hi += pad;
  const double span = static_cast<double>(std::max<ops::TimeUs>(1, t1 - t0));
  auto x = [&](ops::TimeUs t) { return L + (W - L - R) * static_cast<double>(t - t0) / span; };
  auto y = [&](double v) { return T + (H - T - B) * (1 - (v - lo) / (hi - lo)); };

  std::string svg = fmt::format(
      R"(<svg class="panel" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">)",
      W, H, W, H, Escape(title));
  svg += fmt::format(R"(<text x="{}" y="12" class="ptitle">{} ({})</text>)", L, Escape(title),
                     Escape(unit));
  for (const auto& s : shades) {
    const double x0 = std::max(L, x(s.start_us)), x1 = std::min(W - R, x(s.end_us));
    if (x1 <= x0) continue;
    svg += fmt::format(
        R"(<rect x="{:.1f}" y="{}" width="{:.1f}" height="{}" fill="{}" opacity="0.35"><title>{}</title></rect>)",
        x0, T, std::max(1.0, x1 - x0), H - T - B, s.colour, Escape(s.label));
  }
  for (int i = 0; i <= 4; ++i) {
    const double v = lo + (hi - lo) * i / 4.0;
    svg += fmt::format(R"(<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" class="grid"/>)", L, W - R,
                       y(v), y(v));
    svg += fmt::format(R"(<text x="{}" y="{:.1f}" class="tick" text-anchor="end">{:.3g}</text>)",
                       L - 4, y(v) + 4, v);
  }
  for (int i = 0; i <= 6; ++i) {
    const ops::TimeUs t = t0 + static_cast<ops::TimeUs>(span * i / 6.0);
    svg += fmt::format(R"(<text x="{:.1f}" y="{}" class="tick" text-anchor="middle">{}</text>)",
                       x(t), H - 6, LocalTime(t, zone, "%H:%M"));
  }
  if (threshold) {
    svg += fmt::format(
        R"(<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" class="limit"/><text x="{}" y="{:.1f}" class="tick">{:.3g}</text>)",
        L, W - R, y(*threshold), y(*threshold), W - R - 30, y(*threshold) - 3, *threshold);
  }
  int legend = 0;
  for (const auto& s : series) {
    std::string pts;
    for (const auto& [t, v] : s.points) {
      if (std::isfinite(v)) pts += fmt::format("{:.1f},{:.1f} ", x(t), y(v));
    }
    svg += fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="1.3"/>)", pts,
                       s.colour);
    svg += fmt::format(R"(<text x="{}" y="12" class="legend" fill="{}">{}</text>)",
                       W - R - 150 + 75 * legend++, s.colour, Escape(s.label));
  }
  svg += "</svg>";
  return svg;
}

std::string Strip(const EcgStrip& strip, const std::string& zone) {
  const size_t n = strip.millivolts.size();
  if (n < 2 || strip.sample_rate_hz <= 0) return "";
  const double seconds = static_cast<double>(n) / strip.sample_rate_hz;
  constexpr double kPxPerS = 100, kPxPerMv = 60, H = 220, T = 14;
  const double W = seconds * kPxPerS;
  auto [mn, mx] = std::minmax_element(strip.millivolts.begin(), strip.millivolts.end());
  const double mid = 0.5 * (*mn + *mx);
  auto y = [&](double mv) { return T + (H - T) / 2 - (mv - mid) * kPxPerMv; };
  std::string svg = fmt::format(
      R"(<svg class="ecg" viewBox="0 0 {:.0f} {:.0f}" width="{:.0f}" height="{:.0f}" role="img" aria-label="ECG strip">)",
      W, H, W, H);
  // ECG paper: 0.2 s and 0.5 mV major lines at 25 mm/s equivalent scale.
  for (double gx = 0; gx <= W; gx += 0.2 * kPxPerS) {
    svg += fmt::format(R"(<line x1="{:.1f}" x2="{:.1f}" y1="{}" y2="{}" class="paper"/>)", gx, gx,
                       T, H);
  }
  for (double gy = T; gy <= H; gy += 0.5 * kPxPerMv) {
    svg += fmt::format(R"(<line x1="0" x2="{:.0f}" y1="{:.1f}" y2="{:.1f}" class="paper"/>)", W, gy,
                       gy);
  }
  std::string pts;
  const size_t step = std::max<size_t>(1, n / 4000);
  for (size_t i = 0; i < n; i += step) {
    pts += fmt::format("{:.1f},{:.1f} ", static_cast<double>(i) / strip.sample_rate_hz * kPxPerS,
                       y(strip.millivolts[i]));
  }
  svg += fmt::format(R"(<polyline points="{}" class="trace"/>)", pts);
  const double onset_x = ops::ToSeconds(strip.alert.onset_time_us() - strip.start_us) * kPxPerS;
  if (onset_x >= 0 && onset_x <= W) {
    svg += fmt::format(
        R"(<line x1="{:.1f}" x2="{:.1f}" y1="{}" y2="{}" class="onset"/><text x="{:.1f}" y="11" class="tick">onset</text>)",
        onset_x, onset_x, T, H, onset_x + 3);
  }
  for (const auto& b : strip.beats) {
    const double bx = ops::ToSeconds(b.time_us - strip.start_us) * kPxPerS;
    if (bx < 0 || bx > W) continue;
    const char label = static_cast<char>(b.label);
    svg += fmt::format(
        R"(<g class="beat beat-{}"><line x1="{:.1f}" x2="{:.1f}" y1="{}" y2="{}"/><text x="{:.1f}" y="{}">{}</text></g>)",
        label, bx, bx, H - 16, H - 4, bx - 3, T + 10, label);
  }
  svg += "</svg>";
  return fmt::format(
      R"(<figure class="strip"><figcaption><span class="pill {}">{}</span> {} &mdash; {} (strip from {}, {:.0f} s, 1 s = 100 px, 1 mV = 60 px)</figcaption><div class="scroll">{}</div></figure>)",
      PriorityClass(strip.alert.priority()),
      Escape(analysis::ConditionTitle(strip.alert.condition())),
      Escape(LocalTime(strip.alert.onset_time_us(), zone)), Escape(strip.alert.summary()),
      Escape(LocalTime(strip.start_us, zone, "%T")), seconds, svg);
}

std::string AlertTable(const ReportData& d) {
  if (d.alerts.empty()) return "<p class=\"muted\">No alerts.</p>";
  std::string rows;
  for (const auto& a : d.alerts) {
    if (a.state() != v1::ALERT_STATE_RAISED) continue;
    // Find how it ended, if it did.
    std::string ended = "active at end of data";
    for (const auto& b : d.alerts) {
      if (b.alert_id() == a.alert_id() && b.state() == v1::ALERT_STATE_CLEARED) {
        ended = "cleared " + LocalTime(b.event_time_us(), d.time_zone, "%T");
      }
    }
    rows += fmt::format(
        "<tr><td>{}</td><td><span class=\"pill {}\">{}</span></td><td>{}</td><td>{}</td>"
        "<td class=\"small\">{}<br>{} {}</td><td class=\"small\">{}</td></tr>",
        Escape(LocalTime(a.onset_time_us(), d.time_zone)), PriorityClass(a.priority()),
        Escape(v1::Priority_Name(a.priority()).substr(9)),
        Escape(analysis::ConditionTitle(a.condition())), Escape(a.summary()),
        Escape(a.evidence().rule()), Escape(a.evidence().algorithm()),
        Escape(a.evidence().algorithm_version()), Escape(ended));
  }
  return "<table class=\"alerts\"><tr><th>Onset (local)</th><th>Priority</th><th>Condition</th>"
         "<th>Why</th><th>Rule and algorithm</th><th>End</th></tr>" +
         rows + "</table>";
}

std::vector<Shade> ShadesFor(const ReportData& d, std::initializer_list<ops::EpisodeKind> kinds,
                             const char* colour) {
  std::vector<Shade> shades;
  for (const auto& e : d.episodes) {
    if (std::find(kinds.begin(), kinds.end(), e.kind) == kinds.end()) continue;
    shades.push_back({e.start_us, e.end_us, colour, std::string(ops::EpisodeName(e.kind))});
  }
  return shades;
}

std::string Trends(const ReportData& d) {
  if (d.minutes.empty()) return "<p class=\"muted\">No minute aggregates.</p>";
  std::string html;
  // Group minutes into nights (therapy days) when there are any, else one span.
  std::vector<std::pair<ops::TimeUs, ops::TimeUs>> spans;
  ops::TimeUs covered_until = std::numeric_limits<ops::TimeUs>::min();
  for (const auto& day : d.days) {
    spans.push_back({day.window_start_us(), day.window_end_us()});
    covered_until = std::max(covered_until, day.window_end_us());
  }
  // Minutes after the last closed therapy day (tonight, still open) get a span of their own:
  // a patient whose closed days are an uploaded history otherwise showed no trends at all.
  if (d.minutes.back().window_end_us() > covered_until) {
    spans.push_back({std::max(covered_until, d.minutes.front().window_start_us()),
                     d.minutes.back().window_end_us()});
  }
  for (const auto& span : spans) {
    // Plain copies, not a structured binding: lambdas below capture them (clang < 16 cannot
    // capture structured bindings).
    const ops::TimeUs s0 = span.first, s1 = span.second;
    ops::TimeUs t0 = s1, t1 = s0;
    auto series = [&](const char* label, const char* colour,
                      const std::function<std::optional<double>(const v1::Aggregate&)>& get) {
      Series s{label, colour, {}};
      for (const auto& m : d.minutes) {
        if (m.window_start_us() < s0 || m.window_start_us() >= s1) continue;
        if (auto v = get(m)) {
          s.points.push_back({m.window_start_us() + 30'000'000, *v});
          t0 = std::min(t0, m.window_start_us());
          t1 = std::max(t1, m.window_end_us());
        }
      }
      return s;
    };
    auto hr = series("HR", "#b3261e", [](const v1::Aggregate& m) -> std::optional<double> {
      if (m.cardiac().has_heart_rate_mean_bpm()) return m.cardiac().heart_rate_mean_bpm();
      return std::nullopt;
    });
    auto pressure =
        series("pressure", "#1a5fb4", [](const v1::Aggregate& m) -> std::optional<double> {
          if (m.respiratory().has_pressure_median_cm_h2o())
            return m.respiratory().pressure_median_cm_h2o();
          return std::nullopt;
        });
    auto leak = series("leak p50", "#986a44", [](const v1::Aggregate& m) -> std::optional<double> {
      if (m.respiratory().has_leak_p50_lpm()) return m.respiratory().leak_p50_lpm();
      return std::nullopt;
    });
    auto rr = series("resp. rate", "#26a269", [](const v1::Aggregate& m) -> std::optional<double> {
      if (m.respiratory().has_respiratory_rate_median_bpm())
        return m.respiratory().respiratory_rate_median_bpm();
      return std::nullopt;
    });
    auto mv =
        series("minute vent.", "#613583", [](const v1::Aggregate& m) -> std::optional<double> {
          if (m.respiratory().has_minute_ventilation_median_lpm())
            return m.respiratory().minute_ventilation_median_lpm();
          return std::nullopt;
        });
    auto co2 = series("CO2", "#c64600", [](const v1::Aggregate& m) -> std::optional<double> {
      if (m.co2().has_median_mm_hg()) return m.co2().median_mm_hg();
      return std::nullopt;
    });
    if (t1 <= t0) continue;
    html += fmt::format("<h3>{} &ndash; {}</h3>", Escape(LocalTime(t0, d.time_zone, "%F %H:%M")),
                        Escape(LocalTime(t1, d.time_zone, "%F %H:%M")));
    const auto resp_shades =
        ShadesFor(d, {ops::EpisodeKind::kApnea, ops::EpisodeKind::kHypopnea}, "#62a0ea");
    if (!hr.points.empty()) {
      html += Panel("Heart rate, atrial fibrillation shaded", "bpm", t0, t1, {hr},
                    ShadesFor(d, {ops::EpisodeKind::kAtrialFibrillation}, "#f6d32d"), d.time_zone);
    }
    if (!pressure.points.empty()) {
      html += Panel("Mask pressure, apneas and hypopneas shaded", "cmH2O", t0, t1, {pressure},
                    resp_shades, d.time_zone);
    }
    if (!leak.points.empty()) {
      html += Panel("Unintentional leak (large leak above the line)", "L/min", t0, t1, {leak},
                    ShadesFor(d, {ops::EpisodeKind::kLargeLeak}, "#f66151"), d.time_zone, 24.0);
    }
    if (!rr.points.empty() || !mv.points.empty()) {
      html += Panel("Respiratory rate and minute ventilation", "breaths/min, L/min", t0, t1,
                    {rr, mv}, resp_shades, d.time_zone);
    }
    if (!co2.points.empty()) {
      html += Panel("CO2, hypoventilation shaded", "mmHg", t0, t1, {co2},
                    ShadesFor(d, {ops::EpisodeKind::kSleepHypoventilation}, "#ffa348"), d.time_zone,
                    55.0);
    }
  }
  return html;
}

std::string Calendar(const ReportData& d) {
  if (d.days.empty()) return "<p class=\"muted\">No therapy days in this data.</p>";
  std::string cells;
  int ge4 = 0;
  const size_t first = d.days.size() > 30 ? d.days.size() - 30 : 0;
  for (size_t i = first; i < d.days.size(); ++i) {
    const auto& day = d.days[i];
    const double h = day.adherence().usage_minutes() / 60.0;
    ge4 += h >= 4 ? 1 : 0;
    const char* cls = h >= 4 ? "ok" : h > 0 ? "short" : "none";
    cells += fmt::format(
        R"(<div class="day {}" title="{}: {:.1f} h, {} sessions, AHI {}"><b>{}</b><span>{:.1f} h</span></div>)",
        cls, day.therapy_date(), h, day.adherence().sessions(),
        day.respiratory().has_ahi() ? fmt::format("{:.1f}", day.respiratory().ahi()) : "n/a",
        day.therapy_date().substr(5), h);
  }
  const size_t n = d.days.size() - first;
  const double share = n ? 100.0 * ge4 / static_cast<double>(n) : 0;
  std::string verdict;
  if (n >= 30) {
    verdict = share >= 70 ? "<b class=\"good\">met</b>" : "<b class=\"bad\">not met</b>";
  } else {
    verdict = fmt::format("not yet decidable ({} of 30 nights recorded)", n);
  }
  return fmt::format(
      R"(<div class="calendar">{}</div><p>Compliance rule (CMS): at least 4 h of use on at least 70 % of nights in 30 consecutive days. {} of {} nights &ge; 4 h ({:.0f} %): {}.</p>)",
      cells, ge4, n, share, verdict);
}

// The nightly measurements operators declare (Aggregate.measures), one row per night.
std::string NightlyMeasures(const ReportData& d) {
  std::vector<std::string> names;
  std::map<std::string, std::string> units;
  for (const auto& day : d.days) {
    for (const auto& m : day.measures()) {
      if (units.emplace(m.name(), m.unit()).second) names.push_back(m.name());
    }
  }
  if (names.empty()) return "";
  std::string head = "<tr><th>night</th>";
  for (const auto& n : names) head += fmt::format("<th>{} ({})</th>", Escape(n), Escape(units[n]));
  std::string rows;
  for (const auto& day : d.days) {
    if (day.measures().empty()) continue;
    std::string row = fmt::format("<tr><td>{}</td>", Escape(day.therapy_date()));
    for (const auto& n : names) {
      std::string cell = "&ndash;";
      for (const auto& m : day.measures()) {
        if (m.name() == n) cell = fmt::format("{:.3g}", m.value());
      }
      row += "<td>" + cell + "</td>";
    }
    rows += row + "</tr>";
  }
  return fmt::format(R"(<h2>Nightly measures</h2><table class="alerts">{}{}</table>)", head, rows);
}

constexpr const char* kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px;margin-bottom:2px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
h3{font-size:14px;color:#555}.muted{color:#777}.small{font-size:12px;color:#444}
table.alerts{border-collapse:collapse;width:100%;font-size:13px}table.alerts td,table.alerts th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
.pill{border-radius:10px;padding:1px 8px;font-size:12px;color:#fff;white-space:nowrap}.pill.high{background:#c01c28}.pill.medium{background:#e5a50a;color:#222}.pill.low{background:#1c71d8}
svg .grid{stroke:#eee}svg .limit{stroke:#c01c28;stroke-dasharray:4 3}svg .tick{font-size:10px;fill:#666}svg .ptitle{font-size:12px;fill:#333}svg .legend{font-size:11px}
svg.ecg{background:#fff7f7}svg .paper{stroke:#f4c7c7;stroke-width:.6}svg .trace{fill:none;stroke:#111;stroke-width:1.1}svg .onset{stroke:#c01c28;stroke-width:1.5;stroke-dasharray:5 3}
svg .beat line{stroke:#1c71d8}svg .beat text{font-size:11px;fill:#1c71d8}svg .beat-V line,svg .beat-V text{stroke:#c01c28;fill:#c01c28}
figure.strip{margin:12px 0}figcaption{font-size:13px;margin-bottom:4px}.scroll{overflow-x:auto;border:1px solid #eee}
.calendar{display:grid;grid-template-columns:repeat(10,1fr);gap:4px;max-width:700px}.day{border-radius:4px;padding:4px;font-size:11px;text-align:center}.day span{display:block}
.day.ok{background:#8ff0a4}.day.short{background:#f9f06b}.day.none{background:#ddd}.good{color:#26a269}.bad{color:#c01c28}
)";

}  // namespace

std::string RenderHtml(const ReportData& d) {
  std::string strips;
  for (const auto& s : d.strips) strips += Strip(s, d.time_zone);
  if (strips.empty()) strips = "<p class=\"muted\">No arrhythmia alerts with an ECG strip.</p>";
  int raised = 0;
  for (const auto& a : d.alerts) raised += a.state() == v1::ALERT_STATE_RAISED;
  return fmt::format(
      R"(<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Vigil report {}</title><style>{}</style></head><body>
<h1>Vigil patient report: {}</h1><p class="muted">{} &middot; times in {} &middot; {} alerts raised</p>
<h2>Alerts</h2>{}
<h2>ECG around arrhythmia alerts</h2>{}
<h2>Night trends</h2>{}
<h2>Adherence (last 30 therapy days)</h2>{}
{}
<p class="muted small">Generated by vigil report. Priorities after IEC 60601-1-8; rules and sources: CLINICAL.md. Alerts are decision support, not a diagnosis.</p>
</body></html>)",
      Escape(d.patient_id), kStyle, Escape(d.patient_id), Escape(d.source), Escape(d.time_zone),
      raised, AlertTable(d), strips, Trends(d), Calendar(d), NightlyMeasures(d));
}

}  // namespace vigil::report
