#include "pipeline/analysis/aggregator.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "operators/core/snapshot.h"
#include "pipeline/analysis/operator_registry.h"

namespace vigil::analysis {
namespace {

// Unit of every measurement an operator declares nightly, by name.
const std::map<std::string, std::string, std::less<>>& NightlyUnits() {
  static const auto units = [] {
    std::map<std::string, std::string, std::less<>> out;
    for (const auto& spec : Operators()) {
      for (const auto& m : spec.measurements) {
        if (m.nightly) out.emplace(std::string(m.name), std::string(m.unit));
      }
    }
    return out;
  }();
  return units;
}

constexpr ops::TimeUs kMinuteUs = 60 * ops::kMicrosPerSecond;

ops::TimeUs FloorMinute(ops::TimeUs t) {
  return (t >= 0 ? t / kMinuteUs : (t - kMinuteUs + 1) / kMinuteUs) * kMinuteUs;
}

double Median(std::vector<float>& v) {
  if (v.empty()) return std::nan("");
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2 == 1) return *mid;
  const float upper = *mid;
  const float lower = *std::max_element(v.begin(), mid);
  return 0.5 * (lower + upper);
}

ops::TimeUs Overlap(ops::TimeUs a0, ops::TimeUs a1, ops::TimeUs b0, ops::TimeUs b1) {
  return std::max<ops::TimeUs>(0, std::min(a1, b1) - std::max(a0, b0));
}

}  // namespace

BinnedQuantiles::BinnedQuantiles(double lo, double hi, int bins)
    : lo_(lo), hi_(hi), width_((hi - lo) / bins), bins_(static_cast<size_t>(bins), 0) {}

void BinnedQuantiles::Add(double value, uint32_t weight) {
  if (!std::isfinite(value) || weight == 0) return;
  const double clamped = std::clamp(value, lo_, hi_);
  auto i = static_cast<size_t>((clamped - lo_) / width_);
  if (i >= bins_.size()) i = bins_.size() - 1;
  bins_[i] += weight;
  count_ += weight;
}

double BinnedQuantiles::Quantile(double q) const {
  if (count_ == 0) return std::nan("");
  const double target = q * static_cast<double>(count_);
  double seen = 0;
  for (size_t i = 0; i < bins_.size(); ++i) {
    if (bins_[i] == 0) continue;
    if (seen + bins_[i] >= target) {
      // Interpolate inside the bin for a smoother estimate than the bin centre.
      const double frac = bins_[i] ? (target - seen) / bins_[i] : 0.5;
      return lo_ + width_ * (static_cast<double>(i) + std::clamp(frac, 0.0, 1.0));
    }
    seen += bins_[i];
  }
  return hi_;
}

void BinnedQuantiles::Clear() {
  std::fill(bins_.begin(), bins_.end(), 0);
  count_ = 0;
}

void BinnedQuantiles::SetBins(std::vector<uint32_t> bins) {
  if (bins.size() != bins_.size()) throw ops::SnapshotError("histogram: bin count mismatch");
  bins_ = std::move(bins);
  count_ = 0;
  for (auto b : bins_) count_ += b;
}

TherapyDayBounds TherapyDayOf(ops::TimeUs t, const std::string& time_zone) {
  using namespace std::chrono;
  const auto* zone = date::locate_zone(time_zone);
  const sys_time<microseconds> instant{microseconds(t)};
  const auto local = zone->to_local(instant);
  // The therapy day starts at local noon; before noon belongs to the previous day.
  auto day = date::floor<date::days>(local - hours(12));
  const auto start_local = day + hours(12);
  const auto end_local = day + date::days(1) + hours(12);
  // Noon is never inside a DST transition in European zones; choose the earliest if ambiguous.
  const auto start = zone->to_sys(start_local, date::choose::earliest);
  const auto end = zone->to_sys(end_local, date::choose::earliest);
  TherapyDayBounds b;
  b.date = date::format("%F", date::year_month_day{day});
  b.start_us = duration_cast<microseconds>(start.time_since_epoch()).count();
  b.end_us = duration_cast<microseconds>(end.time_since_epoch()).count();
  return b;
}

Aggregator::Aggregator(std::string patient_id, std::string time_zone, bool minute_windows)
    : patient_id_(std::move(patient_id)),
      time_zone_(std::move(time_zone)),
      minute_windows_(minute_windows) {}

Aggregator::Minute* Aggregator::MinuteFor(ops::TimeUs t) {
  const auto start = FloorMinute(t);
  if (start < closed_until_us_) {
    ++late_events_;
    return nullptr;
  }
  auto& m = minutes_[start];
  m.start_us = start;
  return &m;
}

const std::string& Aggregator::DateOf(ops::TimeUs t) {
  if (!(t >= day_cache_start_ && t < day_cache_end_)) {
    const auto b = TherapyDayOf(t, time_zone_);
    day_cache_start_ = b.start_us;
    day_cache_end_ = b.end_us;
    day_cache_date_ = b.date;
  }
  return day_cache_date_;
}

Aggregator::Day& Aggregator::DayFor(ops::TimeUs t) {
  return days_[DateOf(t)];
}

void Aggregator::OnEcgCoverage(ops::TimeUs from_us, ops::TimeUs to_us) {
  if (!minute_windows_) return;
  for (ops::TimeUs s = FloorMinute(from_us); s < to_us; s += kMinuteUs) {
    if (auto* m = MinuteFor(s))
      m->ecg_us += static_cast<double>(Overlap(s, s + kMinuteUs, from_us, to_us));
  }
}

void Aggregator::OnEvent(const ops::Event& event) {
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, ops::Beat>) {
          if (!minute_windows_) return;
          auto* m = MinuteFor(e.time_us);
          if (!m) return;
          m->any = true;
          ++m->beats;
          if (e.label == ops::BeatClass::kVentricular) ++m->v_beats;
          if (e.heart_rate_bpm > 0) m->hr.push_back(e.heart_rate_bpm);
        } else if constexpr (std::is_same_v<T, ops::Breath>) {
          auto& d = DayFor(e.start_us);
          ++d.breaths;
          // Nightly breath medians are over time (weight = breath duration in 0.1 s), as a
          // device samples rate and volume every 2 s: counted per breath, fast breathing would
          // count more and pull the median rate up (+1.3/min against ResMed's STR.edf).
          const auto w =
              static_cast<uint32_t>(std::clamp<int64_t>((e.end_us - e.start_us) / 100'000, 1, 600));
          d.rr.Add(e.respiratory_rate_bpm, w);
          d.vt.Add(e.tidal_volume_ml, w);
          d.mv.Add(e.minute_ventilation_lpm, w);
          if (!minute_windows_) return;
          auto* m = MinuteFor(e.start_us);
          if (!m) return;
          m->any = true;
          m->rr.push_back(e.respiratory_rate_bpm);
          m->vt.push_back(e.tidal_volume_ml);
          m->mv.push_back(e.minute_ventilation_lpm);
          m->peak.push_back(e.peak_inspiratory_flow_lpm);
          if (e.end_tidal_co2_mm_hg) m->co2.push_back(*e.end_tidal_co2_mm_hg);
        } else if constexpr (std::is_same_v<T, ops::Measurement>) {
          if (NightlyUnits().count(e.name)) {
            // Emitted at the night's end at the latest: the instant before is inside it.
            const std::string& date = DateOf(e.time_us - 1);
            if (std::find(published_nights_.begin(), published_nights_.end(), date) !=
                published_nights_.end()) {
              return;  // its window went out already
            }
            if (!night_measures_.count(date) && night_measures_.size() >= kMaxHeldNights) {
              night_measures_.erase(night_measures_.begin());  // bounded: the oldest goes
            }
            auto& night = night_measures_[date];
            night.start_us = day_cache_start_;
            night.end_us = day_cache_end_;
            night.measures[e.name] = e.value;
            return;
          }
          const bool leak = e.name == "leak_lpm";
          const bool pressure = e.name == "pressure_cm_h2o";
          const bool co2 = e.name == "etco2_mm_hg" || e.name == "tcco2_mm_hg";
          if (leak) DayFor(e.time_us).leak.Add(e.value);
          if (pressure) DayFor(e.time_us).pressure.Add(e.value);
          if (!minute_windows_ || !(leak || pressure || co2)) return;
          auto* m = MinuteFor(e.time_us);
          if (!m) return;
          m->any = true;
          (leak ? m->leak : pressure ? m->pressure : m->co2).push_back(static_cast<float>(e.value));
        } else if constexpr (std::is_same_v<T, ops::Episode>) {
          const bool apnea = e.kind == ops::EpisodeKind::kApnea;
          const bool hypopnea = e.kind == ops::EpisodeKind::kHypopnea;
          if ((apnea || hypopnea) && e.phase == ops::Episode::Phase::kClosed) {
            auto& d = DayFor(e.start_us);
            (apnea ? d.apneas : d.hypopneas)++;
            if (auto* m = minute_windows_ ? MinuteFor(e.start_us) : nullptr) {
              m->any = true;
              (apnea ? m->apneas : m->hypopneas)++;
            }
          }
          if (e.kind == ops::EpisodeKind::kAtrialFibrillation && minute_windows_) {
            if (e.phase == ops::Episode::Phase::kOpened) {
              af_open_.push_back({e.start_us, 0});
            } else if (e.phase == ops::Episode::Phase::kClosed) {
              // Credit the closed episode to the minutes still open; drop its open marker.
              std::erase_if(af_open_, [&](const auto& p) { return p.first == e.start_us; });
              for (auto& [start, m] : minutes_) {
                m.af_us +=
                    static_cast<double>(Overlap(start, start + kMinuteUs, e.start_us, e.end_us));
              }
            }
          }
        } else if constexpr (std::is_same_v<T, ops::TherapyDay>) {
          EmitDay(e);
        }
      },
      event);
}

void Aggregator::EmitMinute(const Minute& m, std::vector<v1::Aggregate>& out) const {
  v1::Aggregate a;
  a.set_patient_id(patient_id_);
  a.set_window(v1::WINDOW_KIND_MINUTE);
  a.set_window_start_us(m.start_us);
  a.set_window_end_us(m.start_us + kMinuteUs);
  a.set_time_zone(time_zone_);
  auto hr = m.hr;
  if (m.beats > 0 || m.ecg_us > 0) {
    auto* c = a.mutable_cardiac();
    c->set_beats(m.beats);
    c->set_ventricular_beats(m.v_beats);
    if (!hr.empty()) {
      double sum = 0;
      for (float v : hr) sum += v;
      c->set_heart_rate_mean_bpm(sum / static_cast<double>(hr.size()));
      c->set_heart_rate_min_bpm(*std::min_element(hr.begin(), hr.end()));
      c->set_heart_rate_max_bpm(*std::max_element(hr.begin(), hr.end()));
    }
    if (m.ecg_us > 0) {
      c->set_ecg_coverage(std::min(1.0, m.ecg_us / static_cast<double>(kMinuteUs)));
      c->set_af_burden(std::min(1.0, m.af_us / m.ecg_us));
    }
  }
  auto rr = m.rr, vt = m.vt, mv = m.mv, peak = m.peak, leak = m.leak, pressure = m.pressure;
  if (!rr.empty() || !leak.empty() || m.apneas || m.hypopneas) {
    auto* r = a.mutable_respiratory();
    r->set_breaths(static_cast<uint32_t>(rr.size()));
    if (!rr.empty()) {
      r->set_respiratory_rate_median_bpm(Median(rr));
      r->set_tidal_volume_median_ml(Median(vt));
      r->set_minute_ventilation_median_lpm(Median(mv));
      r->set_peak_flow_median_lpm(Median(peak));
    }
    if (!leak.empty()) {
      r->set_leak_p50_lpm(Median(leak));
      std::sort(leak.begin(), leak.end());
      r->set_leak_p95_lpm(leak[static_cast<size_t>(0.95 * static_cast<double>(leak.size() - 1))]);
    }
    if (!pressure.empty()) r->set_pressure_median_cm_h2o(Median(pressure));
    r->set_apneas(m.apneas);
    r->set_hypopneas(m.hypopneas);
  }
  if (!m.co2.empty()) {
    auto co2 = m.co2;
    auto* c = a.mutable_co2();
    c->set_median_mm_hg(Median(co2));
    c->set_max_mm_hg(*std::max_element(co2.begin(), co2.end()));
  }
  out.push_back(std::move(a));
}

void Aggregator::MarkPublished(const std::string& date) {
  published_nights_.push_back(date);
  while (published_nights_.size() > kMaxHeldNights) published_nights_.pop_front();
}

void Aggregator::EmitDay(const ops::TherapyDay& day) {
  Day stats;
  if (auto it = days_.find(day.date); it != days_.end()) {
    stats = std::move(it->second);
    days_.erase(it);
  }
  v1::Aggregate a;
  a.set_patient_id(patient_id_);
  a.set_window(v1::WINDOW_KIND_THERAPY_DAY);
  a.set_window_start_us(day.start_us);
  a.set_window_end_us(day.end_us);
  a.set_therapy_date(day.date);
  a.set_time_zone(time_zone_);
  auto* ad = a.mutable_adherence();
  ad->set_usage_minutes(day.usage_min);
  ad->set_sessions(static_cast<uint32_t>(day.sessions));
  ad->set_first_mask_on_us(day.first_mask_on_us);
  ad->set_last_mask_off_us(day.last_mask_off_us);
  auto* r = a.mutable_respiratory();
  r->set_breaths(stats.breaths);
  r->set_apneas(stats.apneas);
  r->set_hypopneas(stats.hypopneas);
  if (day.usage_min > 0) r->set_ahi((stats.apneas + stats.hypopneas) / (day.usage_min / 60.0));
  if (stats.rr.count()) r->set_respiratory_rate_median_bpm(stats.rr.Quantile(0.5));
  if (stats.vt.count()) r->set_tidal_volume_median_ml(stats.vt.Quantile(0.5));
  if (stats.mv.count()) r->set_minute_ventilation_median_lpm(stats.mv.Quantile(0.5));
  if (stats.leak.count()) {
    r->set_leak_p50_lpm(stats.leak.Quantile(0.5));
    r->set_leak_p95_lpm(stats.leak.Quantile(0.95));
  }
  if (stats.pressure.count()) {
    r->set_pressure_median_cm_h2o(stats.pressure.Quantile(0.5));
    r->set_pressure_p95_cm_h2o(stats.pressure.Quantile(0.95));
  }
  pending_.push_back(a);

  // Rolling 30 therapy days ending with this one (CMS rule: >= 4 h on >= 70 % of nights).
  usage_history_.emplace_back(day.date, day.usage_min);
  while (usage_history_.size() > 30) usage_history_.pop_front();
  v1::Aggregate roll;
  roll.set_patient_id(patient_id_);
  roll.set_window(v1::WINDOW_KIND_ROLLING_30_DAYS);
  roll.set_window_end_us(day.end_us);
  roll.set_therapy_date(day.date);
  roll.set_time_zone(time_zone_);
  auto* rad = roll.mutable_adherence();
  uint32_t ge4 = 0;
  double sum = 0, sum7 = 0;
  size_t i = 0;
  for (const auto& [date, minutes] : usage_history_) {
    ge4 += minutes >= 240 ? 1 : 0;
    sum += minutes;
    if (i++ >= usage_history_.size() - std::min<size_t>(7, usage_history_.size())) sum7 += minutes;
  }
  const auto n = static_cast<uint32_t>(usage_history_.size());
  rad->set_nights_at_least_4h(ge4);
  rad->set_nights_in_window(n);
  rad->set_usage_minutes(sum / n);
  rad->set_usage_mean_30_nights_h(sum / n / 60.0);
  rad->set_usage_mean_7_nights_h(sum7 / std::min<uint32_t>(7, n) / 60.0);
  if (n == 30) rad->set_compliance_met(ge4 >= 21);
  pending_.push_back(std::move(roll));
}

void Aggregator::AdvanceTo(ops::TimeUs watermark_us, std::vector<v1::Aggregate>& out) {
  const auto attach = [](const Night& night, v1::Aggregate& a) {
    for (const auto& [name, value] : night.measures) {
      const auto unit = NightlyUnits().find(name);
      auto* m = a.add_measures();
      m->set_name(name);
      m->set_value(value);
      m->set_unit(unit == NightlyUnits().end() ? "" : unit->second);
    }
  };
  for (auto& a : pending_) {
    if (a.window() == v1::WINDOW_KIND_THERAPY_DAY) {
      MarkPublished(a.therapy_date());
      if (auto it = night_measures_.find(a.therapy_date()); it != night_measures_.end()) {
        attach(it->second, a);
        night_measures_.erase(it);
      }
    }
    out.push_back(std::move(a));
  }
  pending_.clear();
  // Nightly measurements whose day got no window of its own from the adherence operator.
  for (auto it = night_measures_.begin(); it != night_measures_.end();) {
    if (it->second.end_us > watermark_us - kNightGraceUs) {
      ++it;
      continue;
    }
    v1::Aggregate a;
    a.set_patient_id(patient_id_);
    a.set_window(v1::WINDOW_KIND_THERAPY_DAY);
    a.set_window_start_us(it->second.start_us);
    a.set_window_end_us(it->second.end_us);
    a.set_therapy_date(it->first);
    a.set_time_zone(time_zone_);
    attach(it->second, a);
    out.push_back(std::move(a));
    MarkPublished(it->first);
    it = night_measures_.erase(it);
  }
  const ops::TimeUs close_before = watermark_us - kAllowedLatenessUs;
  while (!minutes_.empty() && minutes_.begin()->first + kMinuteUs <= close_before) {
    auto& m = minutes_.begin()->second;
    for (const auto& [start, unused] : af_open_) {
      m.af_us +=
          static_cast<double>(Overlap(m.start_us, m.start_us + kMinuteUs, start, watermark_us));
    }
    if (m.any || m.ecg_us > 0) EmitMinute(m, out);
    minutes_.erase(minutes_.begin());
  }
  // Every minute that ended by `close_before` is closed now, with or without data, so a late
  // event cannot reopen (and publish a second aggregate for) it.
  closed_until_us_ = std::max(closed_until_us_, FloorMinute(close_before));
  // Day statistics of days long past whose TherapyDay never came (no adherence operator).
  while (days_.size() > 3) days_.erase(days_.begin());
}

void Aggregator::Finish(std::vector<v1::Aggregate>& out) {
  AdvanceTo(std::numeric_limits<ops::TimeUs>::max() / 2, out);
}

std::string Aggregator::Snapshot() const {
  ops::SnapshotWriter w;
  // Format 2 adds the nightly measurements; without any the snapshot stays format 1, which the
  // release before reads.
  w.Put<uint32_t>(night_measures_.empty() ? 1 : 2);
  w.Put<uint64_t>(minutes_.size());
  for (const auto& [start, m] : minutes_) {
    w.Put<int64_t>(start);
    for (const auto* v : {&m.hr, &m.rr, &m.vt, &m.mv, &m.peak, &m.leak, &m.co2, &m.pressure}) {
      w.PutSpan<float>(*v);
    }
    for (uint32_t c : {m.beats, m.v_beats, m.apneas, m.hypopneas}) w.Put<uint32_t>(c);
    w.Put<double>(m.af_us);
    w.Put<double>(m.ecg_us);
    w.Put<uint8_t>(m.any);
  }
  w.Put<uint64_t>(days_.size());
  for (const auto& [date, d] : days_) {
    w.PutString(date);
    for (const auto* q : {&d.leak, &d.rr, &d.vt, &d.mv, &d.pressure})
      w.PutSpan<uint32_t>(q->bins());
    for (uint32_t c : {d.apneas, d.hypopneas, d.breaths}) w.Put<uint32_t>(c);
  }
  w.Put<uint64_t>(usage_history_.size());
  for (const auto& [date, minutes] : usage_history_) {
    w.PutString(date);
    w.Put<double>(minutes);
  }
  w.Put<uint64_t>(af_open_.size());
  for (const auto& [start, unused] : af_open_) w.Put<int64_t>(start);
  w.Put<uint64_t>(pending_.size());
  for (const auto& a : pending_) w.PutString(a.SerializeAsString());
  w.Put<int64_t>(closed_until_us_);
  w.Put<uint64_t>(late_events_);
  if (!night_measures_.empty()) {
    w.Put<uint64_t>(night_measures_.size());
    for (const auto& [date, night] : night_measures_) {
      w.PutString(date);
      w.Put<int64_t>(night.start_us);
      w.Put<int64_t>(night.end_us);
      w.Put<uint64_t>(night.measures.size());
      for (const auto& [name, value] : night.measures) {
        w.PutString(name);
        w.Put<double>(value);
      }
    }
  }
  return w.Take();
}

void Aggregator::Restore(std::string_view bytes) {
  ops::SnapshotReader r(bytes);
  const uint32_t version = ops::ReadVersion(r, "aggregator", 2, 1);
  decltype(minutes_) minutes;
  const auto nm = r.Get<uint64_t>();
  for (uint64_t i = 0; i < nm; ++i) {
    Minute m;
    m.start_us = r.Get<int64_t>();
    for (auto* v : {&m.hr, &m.rr, &m.vt, &m.mv, &m.peak, &m.leak, &m.co2, &m.pressure}) {
      *v = r.GetVector<float>();
    }
    for (auto* c : {&m.beats, &m.v_beats, &m.apneas, &m.hypopneas}) *c = r.Get<uint32_t>();
    m.af_us = r.Get<double>();
    m.ecg_us = r.Get<double>();
    m.any = r.Get<uint8_t>() != 0;
    minutes.emplace(m.start_us, std::move(m));
  }
  decltype(days_) days;
  const auto nd = r.Get<uint64_t>();
  for (uint64_t i = 0; i < nd; ++i) {
    const std::string date = r.GetString();
    Day d;
    for (auto* q : {&d.leak, &d.rr, &d.vt, &d.mv, &d.pressure}) q->SetBins(r.GetVector<uint32_t>());
    for (auto* c : {&d.apneas, &d.hypopneas, &d.breaths}) *c = r.Get<uint32_t>();
    days.emplace(date, std::move(d));
  }
  decltype(usage_history_) history;
  const auto nh = r.Get<uint64_t>();
  for (uint64_t i = 0; i < nh; ++i) {
    std::string date = r.GetString();
    history.emplace_back(std::move(date), r.Get<double>());
  }
  decltype(af_open_) af_open;
  const auto na = r.Get<uint64_t>();
  for (uint64_t i = 0; i < na; ++i) af_open.push_back({r.Get<int64_t>(), 0});
  decltype(pending_) pending;
  const auto np = r.Get<uint64_t>();
  for (uint64_t i = 0; i < np; ++i) {
    v1::Aggregate a;
    if (!a.ParseFromString(r.GetString())) throw ops::SnapshotError("aggregator: bad aggregate");
    pending.push_back(std::move(a));
  }
  const auto closed_until = r.Get<int64_t>();
  const auto late = r.Get<uint64_t>();
  decltype(night_measures_) night;
  if (version >= 2) {
    const auto nn = r.Get<uint64_t>();
    if (nn > kMaxHeldNights) throw ops::SnapshotError("aggregator: too many nights");
    for (uint64_t i = 0; i < nn; ++i) {
      auto& n = night[r.GetString(64)];
      n.start_us = r.Get<int64_t>();
      n.end_us = r.Get<int64_t>();
      const auto count = r.Get<uint64_t>();
      if (count > 256) throw ops::SnapshotError("aggregator: too many nightly measures");
      for (uint64_t k = 0; k < count; ++k) {
        std::string name = r.GetString(256);
        const double value = r.Get<double>();
        // A name no operator declares any more (renamed across an upgrade) is left out.
        if (NightlyUnits().count(name)) n.measures[std::move(name)] = value;
      }
    }
  }
  r.ExpectEnd();
  closed_until_us_ = closed_until;
  late_events_ = late;
  minutes_ = std::move(minutes);
  days_ = std::move(days);
  usage_history_ = std::move(history);
  af_open_ = std::move(af_open);
  pending_ = std::move(pending);
  night_measures_ = std::move(night);
  day_cache_start_ = day_cache_end_ = 0;
}

}  // namespace vigil::analysis
