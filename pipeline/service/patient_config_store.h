// The latest valid per-patient configuration (alarm limits and other operator parameters, time
// zone), from the records of vigil.patient-config.v1. The run loop applies each record
// (Apply); the lanes read the entry of their patients (Get). Nothing here touches Kafka: a
// rejected record comes back with its reason, for the caller to dead-letter.
//
// Rules: a tombstone removes the patient's configuration (service defaults apply); a version not
// newer than the one in force is ignored (version 0 always applies); a record that is not a
// PatientConfig, whose key is not its patient_id, names an unknown or out-of-range parameter, a
// non-finite value or an unknown zone is rejected and the previous settings stay.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "pipeline/analysis/frame_decoder.h"
#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/kafka/kafka_client.h"

namespace vigil::service {

class PatientConfigStore {
 public:
  struct Entry {
    uint64_t version = 0;
    std::string time_zone;
    std::shared_ptr<const analysis::AnalysisPlan> plan;
  };
  struct Outcome {
    enum class Kind : uint8_t { kAccepted, kRemoved, kIgnored, kRejected } kind;
    std::optional<analysis::Rejection> rejection;  // kRejected
    uint64_t version = 0;                          // the record's version
    size_t overrides = 0;                          // kAccepted: parameters set
  };

  explicit PatientConfigStore(std::shared_ptr<const analysis::AnalysisPlan> defaults)
      : defaults_(std::move(defaults)) {}

  Outcome Apply(const kafka::Record& record);
  std::optional<Entry> Get(const std::string& patient) const;
  // 0: no configuration.
  uint64_t Version(const std::string& patient) const;

 private:
  std::shared_ptr<const analysis::AnalysisPlan> defaults_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace vigil::service
