#include "operators/adherence/therapy_usage.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "operators/adherence/therapy_day.h"
#include "operators/core/options.h"
#include "operators/core/parameters.h"

namespace vigil::ops {
namespace {

constexpr uint32_t kSnapshotVersion = 2;
constexpr TimeUs kBlockUs = kMicrosPerSecond;       // pressure is judged on 1-s means
constexpr TimeUs kStaleUs = 60 * kMicrosPerSecond;  // data silent this long past mask_off: off
// Device time that leaps further than this past the open therapy day (a device clock set
// centuries ahead, a forged timestamp) does not close every day in between one by one: that
// was a loop, and output, of up to 10^5 days per leap (fuzz_telemetry). Such a leap closes the
// open day and resumes with the days the adherence history still keeps (see CloseDays).
constexpr TimeUs kMaxLeapUs = 366 * 86400 * kMicrosPerSecond;

// Times a state can hold: accepted device times (at most kMaxPlausibleTimeUs) and the day
// windows around them, with room to spare.
bool Plausible(TimeUs t) {
  return t >= -2 * kMaxPlausibleTimeUs && t <= 2 * kMaxPlausibleTimeUs;
}

struct UsageState final : OperatorState {
  bool have_day = false;
  TherapyDayWindow day;
  std::vector<std::pair<TimeUs, TimeUs>> sessions;  // closed sessions >= min length (signals)
  // sessions from the device's start/stop events (session_source 1 or auto)
  std::vector<std::pair<TimeUs, TimeUs>> event_sessions;
  bool in_event_session = false;
  TimeUs event_session_start = 0;
  bool day_has_pressure = false;  // auto: the day in progress has pressure samples
  bool in_session = false;
  TimeUs session_start = 0;
  TimeUs last_on_end = 0;
  TimeUs off_since = 0;
  TimeUs latest_us = 0;         // newest device time seen
  TimeUs next_expected_us = 0;  // next pressure sample
  TimeUs flow_valid_until = 0;
  bool flow_seen = false;
  double block_sum = 0;
  int64_t block_n = 0;
  TimeUs block_start = 0;
  std::deque<double> history_h;  // closed days, oldest first
  bool decline_open = false, noncompliance_open = false;
  TimeUs decline_start = 0, noncompliance_start = 0;

  std::string Snapshot() const override {
    SnapshotWriter w;
    w.Put(kSnapshotVersion);
    w.Put<uint8_t>(have_day);
    w.PutString(day.date);
    w.Put(day.start_us);
    w.Put(day.end_us);
    w.Put<uint64_t>(sessions.size());
    for (const auto& [a, b] : sessions) {
      w.Put(a);
      w.Put(b);
    }
    w.Put<uint64_t>(event_sessions.size());
    for (const auto& [a, b] : event_sessions) {
      w.Put(a);
      w.Put(b);
    }
    w.Put<uint8_t>(in_event_session);
    w.Put(event_session_start);
    w.Put<uint8_t>(day_has_pressure);
    w.Put<uint8_t>(in_session);
    w.Put(session_start);
    w.Put(last_on_end);
    w.Put(off_since);
    w.Put(latest_us);
    w.Put(next_expected_us);
    w.Put(flow_valid_until);
    w.Put<uint8_t>(flow_seen);
    w.Put(block_sum);
    w.Put(block_n);
    w.Put(block_start);
    const std::vector<double> h(history_h.begin(), history_h.end());
    w.PutSpan<double>(h);
    w.Put<uint8_t>(decline_open);
    w.Put<uint8_t>(noncompliance_open);
    w.Put(decline_start);
    w.Put(noncompliance_start);
    return w.Take();
  }
  void Restore(std::string_view bytes) override {
    SnapshotReader r(bytes);
    ReadVersion(r, TherapyUsage::kName, kSnapshotVersion);
    UsageState s;
    s.have_day = r.Get<uint8_t>();
    s.day.date = r.GetString(16);
    s.day.start_us = r.Get<TimeUs>();
    s.day.end_us = r.Get<TimeUs>();
    const auto n = r.Get<uint64_t>();
    if (n > 100000) throw SnapshotError("adherence.usage: sessions");
    for (uint64_t i = 0; i < n; ++i) {
      const auto a = r.Get<TimeUs>();
      const auto b = r.Get<TimeUs>();
      s.sessions.emplace_back(a, b);
    }
    const auto ne = r.Get<uint64_t>();
    if (ne > 100000) throw SnapshotError("adherence.usage: event sessions");
    for (uint64_t i = 0; i < ne; ++i) {
      const auto a = r.Get<TimeUs>();
      const auto b = r.Get<TimeUs>();
      s.event_sessions.emplace_back(a, b);
    }
    s.in_event_session = r.Get<uint8_t>();
    s.event_session_start = r.Get<TimeUs>();
    s.day_has_pressure = r.Get<uint8_t>();
    s.in_session = r.Get<uint8_t>();
    s.session_start = r.Get<TimeUs>();
    s.last_on_end = r.Get<TimeUs>();
    s.off_since = r.Get<TimeUs>();
    s.latest_us = r.Get<TimeUs>();
    s.next_expected_us = r.Get<TimeUs>();
    s.flow_valid_until = r.Get<TimeUs>();
    s.flow_seen = r.Get<uint8_t>();
    s.block_sum = r.Get<double>();
    s.block_n = r.Get<int64_t>();
    s.block_start = r.Get<TimeUs>();
    const auto h = r.GetVector<double>(10000);
    s.history_h.assign(h.begin(), h.end());
    s.decline_open = r.Get<uint8_t>();
    s.noncompliance_open = r.Get<uint8_t>();
    s.decline_start = r.Get<TimeUs>();
    s.noncompliance_start = r.Get<TimeUs>();
    r.ExpectEnd();
    // Times the runtime can never have passed (PatientAnalysis refuses device times beyond
    // kMaxPlausibleTimeUs) mean a corrupt snapshot; CloseDays relies on the bound.
    bool plausible =
        Plausible(s.day.start_us) && Plausible(s.day.end_us) && Plausible(s.event_session_start) &&
        Plausible(s.session_start) && Plausible(s.last_on_end) && Plausible(s.off_since) &&
        Plausible(s.latest_us) && Plausible(s.next_expected_us) && Plausible(s.flow_valid_until) &&
        Plausible(s.block_start) && Plausible(s.decline_start) &&
        Plausible(s.noncompliance_start) && (!s.have_day || s.day.end_us > s.day.start_us);
    for (const auto& list : {&s.sessions, &s.event_sessions}) {
      for (const auto& [a, b] : *list) plausible = plausible && Plausible(a) && Plausible(b);
    }
    if (!plausible) throw SnapshotError("adherence.usage: time out of range");
    *this = std::move(s);
  }
};

UsageState& Cast(OperatorState& state) {
  return StateCast<UsageState>(state, TherapyUsage::kName);
}

Episode AdherenceEpisode(EpisodeKind kind, Episode::Phase phase, TimeUs start, TimeUs end,
                         const AdherenceSummary& a, const AdherenceRules& r, std::string rule,
                         std::string note) {
  Episode e;
  e.kind = kind;
  e.phase = phase;
  e.start_us = start;
  e.end_us = end;
  e.why.algorithm = std::string(TherapyUsage::kName);
  e.why.version = std::string(TherapyUsage::kVersion);
  e.why.rule = std::move(rule);
  e.why.note = std::move(note);
  e.why.measures = {{"nights_at_least_4h_30d", static_cast<double>(a.nights_at_least), "nights"},
                    {"usage_mean_30_nights", a.mean_window_h, "h"}};
  if (!std::isnan(a.mean_recent_h))
    e.why.measures.push_back({"usage_mean_7_nights", a.mean_recent_h, "h"});
  if (!std::isnan(a.mean_previous_h)) {
    e.why.measures.push_back({"usage_mean_previous_30_nights", a.mean_previous_h, "h"});
  }
  e.why.limits = {{"night_min", r.night_min_h, "h", ">="},
                  {"compliance_share", r.compliance_share * 100, "%", ">="}};
  return e;
}

}  // namespace

namespace {

const ParameterTable<TherapyUsageOptions>& UsageParameters() {
  using O = TherapyUsageOptions;
  static const ParameterTable<AdherenceRules> rules = {
      {"night_min_h", &AdherenceRules::night_min_h, 0.5, 12, "h",
       "use that makes a night count for compliance (CMS: 4 h)"},
      {"compliance_share", &AdherenceRules::compliance_share, 0.1, 1, "fraction",
       "share of the last 30 nights that must reach night_min_h (CMS: 70 %)"},
      {"decline_mean_h", &AdherenceRules::decline_mean_h, 0, 12, "h",
       "7-night mean use below which ADHERENCE_DECLINE is raised"},
      {"decline_drop_h", &AdherenceRules::decline_drop_h, 0.1, 12, "h",
       "... or a fall of the 7-night mean this far below the previous 30-night mean"},
  };
  static const ParameterTable<O> table = [] {
    ParameterTable<O> t = {
        {"session_source", &O::session_source, -1, 1, "",
         "-1: per day, pressure when the device streamed it, else its session events; 0: "
         "signals; 1: session events"},
        {"min_session_min", &O::min_session_min, 0, 120, "min", "shorter sessions are ignored"},
        {"mask_on_pressure_cm_h2o", &O::mask_on_pressure_cm_h2o, 0.5, 20, "cmH2O",
         "1-s mean pressure (with flow present) at which the mask is on"},
        {"mask_off_s", &O::mask_off_s, 1, 3600, "s", "time off that ends a session"},
    };
    t.Include(&O::rules, rules);
    return t;
  }();
  return table;
}

}  // namespace

TherapyUsageOptions TherapyUsageOptions::FromParameters(const Parameters& parameters,
                                                        std::string time_zone) {
  TherapyUsageOptions defaults;
  defaults.time_zone = std::move(time_zone);
  return UsageParameters().Read(TherapyUsage::kName, parameters, std::move(defaults));
}

const OperatorSpec& TherapyUsage::Spec() {
  static const OperatorSpec spec{
      kName,
      kVersion,
      "therapy sessions, noon-to-noon therapy days, compliance and decline",
      kInputs,
      UsageParameters().Describe(),
      {{EpisodeKind::kNonCompliance, "NON_COMPLIANCE", AlarmPriority::kLow, false, false, 0,
        SignalFamily::kAdherence},
       {EpisodeKind::kAdherenceDecline, "ADHERENCE_DECLINE", AlarmPriority::kLow, false, false, 0,
        SignalFamily::kAdherence}},
      {{"usage_min", "min", "therapy use of a closed therapy day"},
       {"usage_session_source", "", "0: sessions from signals, 1: from the device's events"},
       {"adherence_score", "", "0-100: 60 x share of nights >= 4 h + 40 x mean use / 7 h"},
       {"nights_at_least_4h_30d", "nights", "nights of the last 30 with >= night_min_h"},
       {"compliance_30d", "", "1 when the compliance rule is met"},
       {"usage_mean_7_nights_h", "h", "mean use of the last 7 nights"},
       {"usage_mean_30_nights_h", "h", "mean use of the 30 nights before"}},
      [](const Parameters& p, const OperatorContext& c) -> std::unique_ptr<const StreamOperator> {
        return Make(TherapyUsageOptions::FromParameters(p, c.time_zone));
      }};
  return spec;
}

std::unique_ptr<const TherapyUsage> TherapyUsage::Make(const TherapyUsageOptions& o) {
  const date::time_zone* zone = ZoneOption(kName, o.time_zone);
  UsageParameters().Check(kName, o);
  return std::unique_ptr<const TherapyUsage>(new TherapyUsage(o, zone));
}

std::unique_ptr<OperatorState> TherapyUsage::MakeState() const {
  return std::make_unique<UsageState>();
}

namespace {

struct Ctx {
  const TherapyUsageOptions& o;
  const date::time_zone* zone;
  UsageState& s;
  Events& out;

  void CloseSession(TimeUs end) {
    if (!s.in_session) return;
    s.in_session = false;
    s.off_since = 0;
    if (end - s.session_start >= FromSeconds(o.min_session_min * 60)) {
      s.sessions.emplace_back(s.session_start, end);
    }
  }

  void EnsureDay(TimeUs t) {
    if (!s.have_day) {
      s.have_day = true;
      s.day = TherapyDayAt(t, zone);
    }
  }

  void OpenSession(TimeUs start) {
    EnsureDay(start);
    s.in_session = true;
    s.session_start = start;
    s.off_since = 0;
  }

  void OpenEventSession(TimeUs start) {
    EnsureDay(start);
    s.in_event_session = true;
    s.event_session_start = start;
  }

  void CloseEventSession(TimeUs end) {
    if (!s.in_event_session) return;
    s.in_event_session = false;
    if (end - s.event_session_start >= FromSeconds(o.min_session_min * 60)) {
      s.event_sessions.emplace_back(s.event_session_start, end);
    }
  }

  // The rule of session_source -1 (auto), per therapy day: the signals when the device streamed
  // airway pressure that day (they show mask-on time itself), otherwise the device's session
  // events (a device that reports sessions but streams no pressure still has therapy days).
  bool DayUsesEvents() const {
    return o.session_source == 1 || (o.session_source == -1 && !s.day_has_pressure);
  }

  void EmitDay() {
    const auto& d = s.day;
    TherapyDay day;
    day.date = d.date;
    day.start_us = d.start_us;
    day.end_us = d.end_us;
    TimeUs used = 0;
    const bool from_events = DayUsesEvents();
    for (const auto& [a, b] : from_events ? s.event_sessions : s.sessions) {
      const TimeUs lo = std::max(a, d.start_us), hi = std::min(b, d.end_us);
      if (hi <= lo) continue;
      used += hi - lo;
      if (a >= d.start_us && a < d.end_us) {
        ++day.sessions;
        if (day.first_mask_on_us == 0) day.first_mask_on_us = a;
      }
      day.last_mask_off_us = std::max(day.last_mask_off_us, hi);
    }
    std::erase_if(s.sessions, [&](const auto& x) { return x.second <= d.end_us; });
    std::erase_if(s.event_sessions, [&](const auto& x) { return x.second <= d.end_us; });
    s.day_has_pressure = false;
    day.usage_min = ToSeconds(used) / 60.0;
    out.emplace_back(day);
    const TimeUs t = d.end_us;
    out.emplace_back(Measurement{"usage_min", day.usage_min, t});
    out.emplace_back(Measurement{"usage_session_source", from_events ? 1.0 : 0.0, t});

    s.history_h.push_back(day.usage_min / 60.0);
    const size_t keep = static_cast<size_t>(o.rules.window_nights + o.rules.recent_nights);
    while (s.history_h.size() > keep) s.history_h.pop_front();
    const std::vector<double> h(s.history_h.begin(), s.history_h.end());
    const auto a = EvaluateAdherence(h, o.rules);
    out.emplace_back(Measurement{"adherence_score", a.score, t});
    out.emplace_back(
        Measurement{"nights_at_least_4h_30d", static_cast<double>(a.nights_at_least), t});
    out.emplace_back(Measurement{"compliance_30d", a.compliance_met ? 1.0 : 0.0, t});
    if (!std::isnan(a.mean_recent_h))
      out.emplace_back(Measurement{"usage_mean_7_nights_h", a.mean_recent_h, t});
    if (h.size() >= static_cast<size_t>(o.rules.window_nights)) {
      out.emplace_back(Measurement{"usage_mean_30_nights_h", a.mean_window_h, t});
    }
    const std::string comp_rule =
        fmt::format(">= {} h on >= {:.0f} % of nights in {} days", o.rules.night_min_h,
                    o.rules.compliance_share * 100, o.rules.window_nights);
    const bool full_window = h.size() >= static_cast<size_t>(o.rules.window_nights);
    if (full_window && !a.compliance_met && !s.noncompliance_open) {
      s.noncompliance_open = true;
      s.noncompliance_start = d.start_us;
      out.emplace_back(AdherenceEpisode(EpisodeKind::kNonCompliance, Episode::Phase::kOpened,
                                        d.start_us, 0, a, o.rules, comp_rule, "CMS 30-day rule"));
    } else if (s.noncompliance_open && a.compliance_met) {
      s.noncompliance_open = false;
      out.emplace_back(AdherenceEpisode(EpisodeKind::kNonCompliance, Episode::Phase::kClosed,
                                        s.noncompliance_start, d.end_us, a, o.rules, comp_rule,
                                        "CMS 30-day rule met again"));
    }
    const std::string decl_rule = fmt::format(
        "{}-night mean < {} h, or >= {} h below the previous {}-night mean", o.rules.recent_nights,
        o.rules.decline_mean_h, o.rules.decline_drop_h, o.rules.window_nights);
    if (a.decline && !s.decline_open) {
      s.decline_open = true;
      s.decline_start = d.start_us;
      out.emplace_back(AdherenceEpisode(EpisodeKind::kAdherenceDecline, Episode::Phase::kOpened,
                                        d.start_us, 0, a, o.rules, decl_rule, a.decline_reason));
    } else if (!a.decline && s.decline_open) {
      s.decline_open = false;
      out.emplace_back(AdherenceEpisode(EpisodeKind::kAdherenceDecline, Episode::Phase::kClosed,
                                        s.decline_start, d.end_us, a, o.rules, decl_rule,
                                        "usage recovered"));
    }
    s.day = NextTherapyDay(d, zone);
  }

  // Whether a session begun before `end` is still open in a tracker the day may use.
  bool OpenInDay(TimeUs end) const {
    const bool signals = o.session_source != 1 && s.in_session && s.session_start < end;
    const bool events = o.session_source != 0 && s.in_event_session && s.event_session_start < end;
    return signals || events;
  }

  // Closes every day that has ended by `now`, unless a session begun before its end is open.
  // A leap of more than kMaxLeapUs past the open day closes that day, then skips to the last
  // `window_nights + recent_nights` days before `now`: only those can still count in the
  // adherence history, so its measurements come out as if every day had been closed; the days
  // skipped produce no therapy-day records.
  void CloseDays(TimeUs now) {
    while (s.have_day && now >= s.day.end_us && !OpenInDay(s.day.end_us)) {
      EmitDay();
      const TimeUs keep_us =
          (o.rules.window_nights + o.rules.recent_nights + 1) * 86400 * kMicrosPerSecond;
      if (now - s.day.start_us > kMaxLeapUs && now - keep_us > s.day.end_us &&
          !OpenInDay(now - keep_us)) {
        s.day = TherapyDayAt(now - keep_us, zone);
        s.day_has_pressure = false;
      }
    }
  }

  void Advance(TimeUs now) {
    s.latest_us = std::max(s.latest_us, now);
    if (o.session_source != 1 && s.in_session &&
        s.latest_us - s.last_on_end > FromSeconds(o.mask_off_s) + kStaleUs) {
      CloseSession(s.last_on_end);  // the device went silent: therapy ended with its data
    }
    CloseDays(s.latest_us);
  }
};

}  // namespace

void TherapyUsage::Process(OperatorState& state, Signal signal, const Chunk& chunk,
                           Events& out) const {
  auto& s = Cast(state);
  if (chunk.values.empty() || !(chunk.sample_rate_hz > 0)) return;
  Ctx c{options_, zone_, s, out};
  if (signal == Signal::kFlow) {
    for (float v : chunk.values) {
      if (!std::isnan(v)) {
        s.flow_seen = true;
        s.flow_valid_until = std::max(s.flow_valid_until, chunk.end_us());
        break;
      }
    }
    c.Advance(chunk.first_sample_us);
    return;
  }
  if (signal != Signal::kAirwayPressure) return;
  if (options_.session_source == 1) {
    c.Advance(chunk.end_us());
    return;
  }
  const TimeUs period = static_cast<TimeUs>(1e6 / chunk.sample_rate_hz);
  if (s.next_expected_us != 0 &&
      std::llabs(chunk.first_sample_us - s.next_expected_us) > 2 * period) {
    // Data stopped and resumed. A break shorter than mask_off_s (refitting the mask, the device
    // starting a new file) does not end the session, as a short "off" in the data would not;
    // a longer one ends it at its last "on" second.
    if (chunk.first_sample_us - s.last_on_end > FromSeconds(options_.mask_off_s)) {
      c.CloseSession(s.last_on_end);
    }
    s.block_n = 0;
    s.block_sum = 0;
  }
  s.next_expected_us = chunk.end_us();
  const TimeUs off_us = FromSeconds(options_.mask_off_s);
  for (size_t i = 0; i < chunk.values.size(); ++i) {
    const TimeUs t =
        SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i));
    if (s.block_n == 0) s.block_start = t;
    const float v = chunk.values[i];
    if (!std::isnan(v)) {
      s.block_sum += v;
      ++s.block_n;
    } else if (s.block_n == 0) {
      continue;
    }
    const TimeUs block_end = t + period;
    if (block_end - s.block_start < kBlockUs) continue;
    const double mean = s.block_sum / static_cast<double>(s.block_n);
    s.block_n = 0;
    s.block_sum = 0;
    c.CloseDays(s.block_start);  // the block's pressure counts for the day it falls in
    s.day_has_pressure = true;
    const bool flow_ok = !s.flow_seen || s.flow_valid_until >= s.block_start - kStaleUs;
    const bool on = mean >= options_.mask_on_pressure_cm_h2o && flow_ok;
    if (on) {
      if (!s.in_session) c.OpenSession(s.block_start);
      s.last_on_end = block_end;
      s.off_since = 0;
    } else if (s.in_session) {
      if (s.off_since == 0) s.off_since = s.block_start;
      if (block_end - s.off_since >= off_us) c.CloseSession(s.off_since);
    }
    c.CloseDays(block_end);
  }
  s.latest_us = std::max(s.latest_us, chunk.end_us());
}

void TherapyUsage::OnDeviceEvent(OperatorState& state, const DeviceEventView& event,
                                 Events& out) const {
  auto& s = Cast(state);
  Ctx c{options_, zone_, s, out};
  if (options_.session_source != 0) {
    if (event.type == DeviceEventView::Type::kSessionStart && !s.in_event_session) {
      c.OpenEventSession(event.time_us);
    } else if (event.type == DeviceEventView::Type::kSessionStop) {
      c.CloseEventSession(event.time_us);
    }
  }
  c.Advance(event.time_us);
}

void TherapyUsage::OnGap(OperatorState& state, Signal signal, TimeUs, TimeUs to_us,
                         Events& out) const {
  auto& s = Cast(state);
  if (signal != Signal::kAirwayPressure || options_.session_source == 1) return;
  Ctx c{options_, zone_, s, out};
  if (to_us - s.last_on_end > FromSeconds(options_.mask_off_s)) c.CloseSession(s.last_on_end);
  s.block_n = 0;
  s.block_sum = 0;
}

void TherapyUsage::AdvanceTo(OperatorState& state, TimeUs now_us, Events& out) const {
  auto& s = Cast(state);
  Ctx c{options_, zone_, s, out};
  c.Advance(now_us);
}

void TherapyUsage::Finish(OperatorState& state, Events& out) const {
  auto& s = Cast(state);
  Ctx c{options_, zone_, s, out};
  if (s.in_session) c.CloseSession(s.last_on_end);
  if (s.in_event_session) c.CloseEventSession(s.latest_us);
  c.CloseDays(s.latest_us);
  if (s.have_day) {
    c.EmitDay();
    s.have_day = false;
  }
}

}  // namespace vigil::ops
