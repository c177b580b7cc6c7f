#include "pipeline/analysis/alert_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "operators/core/snapshot.h"
#include "pipeline/analysis/operator_registry.h"

namespace vigil::analysis {
namespace {

using Family = ConditionRule::Family;
using ops::EpisodeKind;

// Conditions the runtime raises itself (frames stopped arriving), not an operator.
const std::vector<ops::AlertRule>& RuntimeRules() {
  static const std::vector<ops::AlertRule> rules = {
      {EpisodeKind::kSignalLost, "SIGNAL_LOST", ops::AlarmPriority::kLow, false, true, 10,
       Family::kAny},
      {EpisodeKind::kDeviceOffline, "DEVICE_OFFLINE", ops::AlarmPriority::kLow, false, true, 0,
       Family::kAny},
  };
  return rules;
}

ConditionRule Resolve(const ops::AlertRule& r) {
  ConditionRule rule;
  if (!r.condition.empty() &&
      !v1::Condition_Parse("CONDITION_" + std::string(r.condition), &rule.condition)) {
    throw std::logic_error(fmt::format("alert rule of {}: {} is not a vigil.v1.Condition",
                                       ops::EpisodeName(r.kind), r.condition));
  }
  static constexpr v1::Priority kPriorities[] = {v1::PRIORITY_LOW, v1::PRIORITY_MEDIUM,
                                                 v1::PRIORITY_HIGH};
  rule.priority = kPriorities[static_cast<size_t>(r.priority)];
  rule.latching = r.latching;
  rule.technical = r.technical;
  rule.min_duration_s = r.min_duration_s;
  rule.family = r.family;
  rule.alerts = r.alarm;
  return rule;
}

// Collected once from the operator specs and the runtime's own rules.
const std::map<EpisodeKind, ConditionRule>& Rules() {
  static const std::map<EpisodeKind, ConditionRule> rules = [] {
    std::map<EpisodeKind, std::pair<ConditionRule, ops::AlertRule>> found;
    auto add = [&found](const ops::AlertRule& r) {
      const ConditionRule rule = Resolve(r);
      const auto [it, fresh] = found.try_emplace(r.kind, rule, r);
      const auto& a = it->second.second;
      if (!fresh &&
          (a.condition != r.condition || a.priority != r.priority || a.latching != r.latching ||
           a.technical != r.technical || a.min_duration_s != r.min_duration_s ||
           a.family != r.family || a.alarm != r.alarm)) {
        throw std::logic_error(
            fmt::format("two different alert rules for {}", ops::EpisodeName(r.kind)));
      }
    };
    for (const auto& spec : Operators()) {
      for (const auto& r : spec.alerts) add(r);
    }
    for (const auto& r : RuntimeRules()) add(r);
    std::map<EpisodeKind, ConditionRule> out;
    for (const auto& [kind, rule] : found) out.emplace(kind, rule.first);
    return out;
  }();
  return rules;
}

const ConditionRule kNoAlert{
    v1::CONDITION_UNSPECIFIED, v1::PRIORITY_LOW, false, false, 0, Family::kAny, false};

std::string Duration(ops::TimeUs us) {
  const int64_t s = us / ops::kMicrosPerSecond;
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min {} s", s / 60, s % 60);
  return fmt::format("{} h {} min", s / 3600, (s % 3600) / 60);
}

// "Atrial fibrillation for 2 min 10 s: heart_rate 118 bpm, rr_irregularity 0.21".
std::string Summary(const v1::Alert& a, ops::TimeUs now_us) {
  const ops::TimeUs end = a.end_time_us() ? a.end_time_us() : now_us;
  std::string s =
      fmt::format("{} for {}", ConditionTitle(a.condition()), Duration(end - a.onset_time_us()));
  int shown = 0;
  for (const auto& m : a.evidence().measurements()) {
    if (shown++ == 3) break;
    s += fmt::format("{} {} {:.3g} {}", shown == 1 ? ":" : ",", m.name(), m.value(), m.unit());
  }
  if (a.condition_ended() && a.latching()) s += " (ended; latched for review)";
  return s;
}

}  // namespace

void CheckAlertRules() {
  Rules();
}

std::string ConditionTitle(v1::Condition condition) {
  std::string name = v1::Condition_Name(condition);
  name.erase(0, std::string("CONDITION_").size());
  return ops::ConditionTitle(name);
}

const ConditionRule& RuleFor(ops::EpisodeKind kind) {
  const auto& rules = Rules();
  const auto it = rules.find(kind);
  return it == rules.end() ? kNoAlert : it->second;
}

std::string AlertId(const std::string& patient_id, v1::Condition condition, ops::TimeUs onset_us) {
  // FNV-1a 64 over a canonical text: stable across platforms, builds and restarts.
  const std::string key =
      fmt::format("{}|{}|{}", patient_id, static_cast<int>(condition), onset_us);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", h);
}

AlertManager::AlertManager(std::string patient_id, AlertPolicy policy)
    : patient_id_(std::move(patient_id)), policy_(policy) {}

v1::Alert AlertManager::Prepare(const std::string& patient_id, const ConditionRule& rule,
                                const ops::Episode& episode, const std::string& device_id) {
  v1::Alert a;
  a.set_alert_id(AlertId(patient_id, rule.condition, episode.start_us));
  a.set_patient_id(patient_id);
  a.set_condition(rule.condition);
  a.set_priority(rule.priority);
  a.set_technical(rule.technical);
  a.set_latching(rule.latching);
  a.set_onset_time_us(episode.start_us);
  a.set_device_id(device_id);
  auto* ev = a.mutable_evidence();
  for (const auto& m : episode.why.measures) {
    auto* pm = ev->add_measurements();
    pm->set_name(m.name);
    pm->set_value(m.value);
    pm->set_unit(m.unit);
  }
  for (const auto& l : episode.why.limits) {
    auto* pl = ev->add_thresholds();
    pl->set_name(l.name);
    pl->set_value(l.value);
    pl->set_unit(l.unit);
    pl->set_comparison(l.comparison);
  }
  if (rule.min_duration_s > 0) {
    auto* pl = ev->add_thresholds();
    pl->set_name("alert_min_duration");
    pl->set_value(rule.min_duration_s);
    pl->set_unit("s");
    pl->set_comparison(">=");
  }
  ev->set_algorithm(episode.why.algorithm);
  ev->set_algorithm_version(episode.why.version);
  ev->set_rule(episode.why.note.empty() ? episode.why.rule
                                        : episode.why.rule + " (" + episode.why.note + ")");
  return a;
}

bool AlertManager::TechnicalActive(ConditionRule::Family family) const {
  for (const auto& [condition, a] : active_) {
    if (!a.alert.technical() || a.ended) continue;
    const auto& rule = RuleFor(a.kind);
    if (rule.family == family || rule.family == Family::kAny) return true;
  }
  return false;
}

bool AlertManager::RateLimited(ops::TimeUs now_us, v1::Priority priority) {
  if (priority == v1::PRIORITY_HIGH) return false;  // never hold back a high-priority alarm
  const ops::TimeUs hour = 3600 * ops::kMicrosPerSecond;
  std::erase_if(raised_times_, [&](ops::TimeUs t) { return t <= now_us - hour; });
  return static_cast<int>(raised_times_.size()) >= policy_.max_raised_per_hour;
}

void AlertManager::Emit(Active& a, v1::AlertState state, ops::TimeUs event_us,
                        std::vector<v1::Alert>& out) {
  if (state == v1::ALERT_STATE_RAISED) {
    a.alert.set_revision(0);
  } else {
    a.alert.set_revision(a.alert.revision() + 1);
  }
  a.alert.set_state(state);
  a.alert.set_event_time_us(event_us);
  a.alert.set_end_time_us(a.ended ? a.end_us : 0);
  a.alert.set_condition_ended(a.ended);
  auto& held = held_back_[a.alert.condition()];
  a.alert.set_suppressed_count(held);
  held = 0;
  a.alert.set_summary(Summary(a.alert, event_us));
  out.push_back(a.alert);
}

void AlertManager::OnEpisode(const ops::Episode& episode, const std::string& device_id,
                             std::vector<v1::Alert>& out) {
  const ConditionRule& rule = RuleFor(episode.kind);
  if (!rule.alerts || rule.condition == v1::CONDITION_UNSPECIFIED) return;
  auto it = active_.find(rule.condition);

  if (episode.phase == ops::Episode::Phase::kClosed) {
    if (it == active_.end() || it->second.ended) {
      // Closed without a prior Opened: operators that know episodes only afterwards. Treat as
      // an episode of known duration: raise (if long enough) and end it.
      if (it == active_.end() &&
          episode.end_us - episode.start_us >= ops::FromSeconds(rule.min_duration_s)) {
        ops::Episode opened = episode;
        opened.phase = ops::Episode::Phase::kOpened;
        OnEpisode(opened, device_id, out);
        AdvanceTo(episode.end_us, out);  // long enough: raise before ending it
        it = active_.find(rule.condition);
        if (it == active_.end()) return;
      } else {
        return;
      }
    }
    Active& a = it->second;
    if (!a.raised) {  // never reached its minimum duration: nothing was said, nothing to clear
      active_.erase(it);
      return;
    }
    a.ended = true;
    a.end_us = episode.end_us;
    if (a.alert.latching()) Emit(a, v1::ALERT_STATE_UPDATED, episode.end_us, out);
    return;
  }

  if (it != active_.end()) {
    Active& a = it->second;
    if (a.ended && episode.start_us - a.end_us <= ops::FromSeconds(policy_.reopen_within_s)) {
      // Hysteresis: the condition came back quickly - the same alert goes on.
      a.ended = false;
      a.end_us = 0;
      if (a.raised) Emit(a, v1::ALERT_STATE_UPDATED, episode.start_us, out);
      return;
    }
    if (!a.ended) {
      if (episode.phase == ops::Episode::Phase::kUpdated && a.raised) {
        // Keep the newest evidence; say it only when the picture changes (priority) to avoid
        // a record per beat.
        v1::Alert fresh = Prepare(patient_id_, rule, episode, device_id);
        *a.alert.mutable_evidence() = fresh.evidence();
      }
      return;
    }
    // An old, ended alert that was not yet cleared: clear it now, then open the new one.
    Emit(a, v1::ALERT_STATE_CLEARED, episode.start_us, out);
    active_.erase(it);
  }

  if (policy_.technical_suppresses_clinical && !rule.technical && TechnicalActive(rule.family)) {
    ++suppressed_by_technical_;
    return;
  }
  Active a;
  a.kind = episode.kind;
  a.alert = Prepare(patient_id_, rule, episode, device_id);
  auto [pos, inserted] = active_.emplace(rule.condition, std::move(a));
  (void)inserted;
  // Raise at once if the episode is already long enough (operators confirm with a delay).
  AdvanceTo(std::max(episode.start_us, pos->second.alert.onset_time_us()), out);
}

void AlertManager::AdvanceTo(ops::TimeUs now_us, std::vector<v1::Alert>& out) {
  for (auto it = active_.begin(); it != active_.end();) {
    Active& a = it->second;
    const ConditionRule& rule = RuleFor(a.kind);
    if (!a.raised) {
      if (now_us - a.alert.onset_time_us() >= ops::FromSeconds(rule.min_duration_s)) {
        if (!rule.technical && policy_.technical_suppresses_clinical &&
            TechnicalActive(rule.family)) {
          ++suppressed_by_technical_;
          it = active_.erase(it);
          continue;
        }
        if (RateLimited(now_us, a.alert.priority())) {
          ++suppressed_by_rate_limit_;
          ++held_back_[a.alert.condition()];
          it = active_.erase(it);
          continue;
        }
        a.raised = true;
        raised_times_.push_back(now_us);
        Emit(a, v1::ALERT_STATE_RAISED, now_us, out);
      }
      ++it;
      continue;
    }
    if (a.ended) {
      const double hold = a.alert.latching()
                              ? std::max(policy_.latch_hold_s, policy_.reopen_within_s)
                              : policy_.reopen_within_s;
      if (now_us - a.end_us >= ops::FromSeconds(hold)) {
        Emit(a, v1::ALERT_STATE_CLEARED, now_us, out);
        it = active_.erase(it);
        continue;
      }
    }
    ++it;
  }
}

void AlertManager::Finish(ops::TimeUs end_us, std::vector<v1::Alert>& out) {
  for (auto& [condition, a] : active_) {
    if (!a.raised) continue;
    if (!a.ended) {
      a.ended = true;
      a.end_us = end_us;
    }
    Emit(a, v1::ALERT_STATE_CLEARED, end_us, out);
  }
  active_.clear();
}

std::string AlertManager::Snapshot() const {
  ops::SnapshotWriter w;
  w.Put<uint32_t>(1);  // format version
  w.Put<uint64_t>(active_.size());
  for (const auto& [condition, a] : active_) {
    w.Put<uint8_t>(static_cast<uint8_t>(a.kind));
    w.PutString(a.alert.SerializeAsString());
    w.Put<uint8_t>(a.raised);
    w.Put<uint8_t>(a.ended);
    w.Put<int64_t>(a.end_us);
  }
  w.PutSpan<ops::TimeUs>(raised_times_);
  w.Put<uint64_t>(held_back_.size());
  for (const auto& [condition, n] : held_back_) {
    w.Put<int32_t>(condition);
    w.Put<uint32_t>(n);
  }
  w.Put<uint64_t>(suppressed_by_technical_);
  w.Put<uint64_t>(suppressed_by_rate_limit_);
  return w.Take();
}

void AlertManager::Restore(std::string_view bytes) {
  ops::SnapshotReader r(bytes);
  ops::ReadVersion(r, "alert manager", 1);
  std::map<v1::Condition, Active> active;
  const auto n = r.Get<uint64_t>();
  for (uint64_t i = 0; i < n; ++i) {
    Active a;
    a.kind = static_cast<ops::EpisodeKind>(r.Get<uint8_t>());
    if (!a.alert.ParseFromString(r.GetString())) {
      throw ops::SnapshotError("alert manager: undecodable alert");
    }
    a.raised = r.Get<uint8_t>() != 0;
    a.ended = r.Get<uint8_t>() != 0;
    a.end_us = r.Get<int64_t>();
    active.emplace(a.alert.condition(), std::move(a));
  }
  auto raised = r.GetVector<ops::TimeUs>();
  std::map<v1::Condition, uint32_t> held;
  const auto nh = r.Get<uint64_t>();
  for (uint64_t i = 0; i < nh; ++i) {
    const auto c = static_cast<v1::Condition>(r.Get<int32_t>());
    held[c] = r.Get<uint32_t>();
  }
  const auto by_technical = r.Get<uint64_t>();
  const auto by_rate = r.Get<uint64_t>();
  r.ExpectEnd();
  active_ = std::move(active);
  raised_times_ = std::move(raised);
  held_back_ = std::move(held);
  suppressed_by_technical_ = by_technical;
  suppressed_by_rate_limit_ = by_rate;
}

}  // namespace vigil::analysis
