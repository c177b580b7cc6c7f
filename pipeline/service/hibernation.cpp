#include "pipeline/service/hibernation.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cstring>

#include "operators/core/snapshot.h"

namespace vigil::service {

std::string Hibernate(const analysis::PatientAnalysis& patient) {
  const std::string bytes = patient.Snapshot().SerializeAsString();
  // Size first (8 bytes), then the deflated snapshot; level 1: most of the gain at little cost.
  uLongf size = compressBound(static_cast<uLong>(bytes.size()));
  std::string packed(sizeof(uint64_t) + size, '\0');
  const uint64_t original = bytes.size();
  std::memcpy(packed.data(), &original, sizeof original);
  const int rc =
      compress2(reinterpret_cast<Bytef*>(packed.data() + sizeof original), &size,
                reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uLong>(bytes.size()), 1);
  if (rc != Z_OK) throw std::runtime_error(fmt::format("hibernating a patient: zlib error {}", rc));
  packed.resize(sizeof original + size);
  packed.shrink_to_fit();
  return packed;
}

v1::PatientStateSnapshot Unpack(const std::string& packed) {
  uint64_t original = 0;
  if (packed.size() < sizeof original) throw ops::SnapshotError("hibernated patient: truncated");
  std::memcpy(&original, packed.data(), sizeof original);
  if (original > (uint64_t{1} << 31))
    throw ops::SnapshotError("hibernated patient: implausible size");
  std::string bytes(original, '\0');
  uLongf size = static_cast<uLongf>(original);
  const int rc = uncompress(reinterpret_cast<Bytef*>(bytes.data()), &size,
                            reinterpret_cast<const Bytef*>(packed.data() + sizeof original),
                            static_cast<uLong>(packed.size() - sizeof original));
  if (rc != Z_OK || size != original) {
    throw ops::SnapshotError(fmt::format("hibernated patient: zlib error {}", rc));
  }
  v1::PatientStateSnapshot snapshot;
  if (!snapshot.ParseFromString(bytes))
    throw ops::SnapshotError("hibernated patient: not a snapshot");
  return snapshot;
}

std::unique_ptr<analysis::PatientAnalysis> Wake(const std::string& patient_id,
                                                std::shared_ptr<const analysis::AnalysisPlan> plan,
                                                const std::string& packed) {
  const v1::PatientStateSnapshot snapshot = Unpack(packed);
  auto patient = std::make_unique<analysis::PatientAnalysis>(patient_id, std::move(plan));
  patient->Restore(snapshot);
  return patient;
}

}  // namespace vigil::service
