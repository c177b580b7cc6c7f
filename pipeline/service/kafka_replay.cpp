#include "pipeline/service/kafka_replay.h"

#include <chrono>
#include <limits>
#include <thread>

namespace vigil::service {
namespace {

// Device time an envelope describes: its earliest frame or event.
int64_t EnvelopeTimeUs(const v1::TelemetryEnvelope& e) {
  int64_t t = std::numeric_limits<int64_t>::max();
  for (const auto& f : e.frames()) t = std::min(t, f.first_sample_time_us());
  for (const auto& ev : e.events()) t = std::min(t, ev.time_us());
  return t == std::numeric_limits<int64_t>::max() ? 0 : t;
}

}  // namespace

KafkaReplayStats ReplayToKafka(replay::TelemetrySource& source, const KafkaReplayOptions& options,
                               const std::atomic<bool>& stop) {
  kafka::Properties props = options.properties;
  props["enable.idempotence"] = "true";
  props["acks"] = "all";
  props.try_emplace("linger.ms", "5");
  kafka::Producer producer(props);
  KafkaReplayStats stats;
  const auto wall_start = std::chrono::steady_clock::now();
  int64_t device_start = 0;
  v1::TelemetryEnvelope envelope;
  std::string bytes;
  while (!stop.load() && source.Next(envelope)) {
    if (options.speed > 0) {
      const int64_t t = EnvelopeTimeUs(envelope);
      if (stats.envelopes == 0) device_start = t;
      const auto due = wall_start + std::chrono::microseconds(static_cast<int64_t>(
                                        static_cast<double>(t - device_start) / options.speed));
      while (!stop.load() && std::chrono::steady_clock::now() < due) {
        producer.Poll(std::chrono::milliseconds(0));
        std::this_thread::sleep_until(
            std::min(due, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)));
      }
    }
    envelope.SerializeToString(&bytes);
    producer.Produce(options.topic, envelope.patient_id(), bytes);
    ++stats.envelopes;
    stats.bytes += bytes.size();
    if (stats.envelopes % 1024 == 0) producer.Poll(std::chrono::milliseconds(0));
  }
  producer.Flush(std::chrono::seconds(60));
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return stats;
}

}  // namespace vigil::service
