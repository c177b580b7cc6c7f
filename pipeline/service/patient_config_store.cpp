#include "pipeline/service/patient_config_store.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "operators/core/options.h"
#include "pipeline/service/telemetry_decoder.h"
#include "vigil/v1/patient_config.pb.h"

namespace vigil::service {

PatientConfigStore::Outcome PatientConfigStore::Apply(const kafka::Record& record) {
  using Kind = Outcome::Kind;
  auto outcome = [](Kind kind, uint64_t version = 0, size_t overrides = 0) {
    return Outcome{kind, std::nullopt, version, overrides};
  };
  auto reject = [](v1::DeadLetterReason reason, std::string detail) {
    return Outcome{Kind::kRejected, analysis::Rejection{reason, std::move(detail), -1}, 0, 0};
  };
  if (!record.key)
    return reject(v1::DEAD_LETTER_REASON_MISSING_PATIENT, "patient config without key");
  if (record.key->size() > kMaxPatientIdBytes) {
    return reject(v1::DEAD_LETTER_REASON_OVERSIZED,
                  fmt::format("patient config key = {} bytes: a patient id has at most {}",
                              record.key->size(), kMaxPatientIdBytes));
  }
  if (!record.value) {  // tombstone: back to the service defaults
    std::lock_guard lock(mutex_);
    entries_.erase(*record.key);
    return outcome(Kind::kRemoved);
  }
  v1::PatientConfig pc;
  if (!pc.ParseFromString(*record.value)) {
    return reject(v1::DEAD_LETTER_REASON_UNDECODABLE, "not a vigil.v1.PatientConfig");
  }
  if (pc.patient_id() != *record.key) {
    return reject(v1::DEAD_LETTER_REASON_KEY_MISMATCH, "record key differs from patient_id");
  }
  const uint64_t current = Version(*record.key);
  if (pc.version() != 0 && pc.version() <= current) return outcome(Kind::kIgnored, pc.version());
  std::map<std::string, double> overrides(pc.parameters().begin(), pc.parameters().end());
  Entry entry;
  try {
    for (const auto& [key, value] : overrides) {
      if (!std::isfinite(value))
        throw ops::OptionError(key, fmt::format("{}", value), "not finite");
    }
    entry.plan = overrides.empty() && pc.time_zone().empty()
                     ? defaults_
                     : defaults_->WithOverrides(overrides, pc.time_zone());
  } catch (const std::exception& e) {
    return reject(v1::DEAD_LETTER_REASON_OPERATOR_FAILURE,
                  fmt::format("patient config: {}", e.what()));
  }
  entry.time_zone = pc.time_zone();
  // Version 0 still has to differ from "no configuration".
  entry.version = std::max<uint64_t>(pc.version(), current + 1);
  {
    std::lock_guard lock(mutex_);
    entries_[*record.key] = std::move(entry);
  }
  return outcome(Kind::kAccepted, pc.version(), overrides.size());
}

std::optional<PatientConfigStore::Entry> PatientConfigStore::Get(const std::string& patient) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(patient);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

uint64_t PatientConfigStore::Version(const std::string& patient) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(patient);
  return it == entries_.end() ? 0 : it->second.version;
}

}  // namespace vigil::service
