#include "pipeline/output/json_lines.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <stdexcept>

namespace vigil::output {
namespace {

double Seconds(ops::TimeUs t, ops::TimeUs origin) {
  return ops::ToSeconds(t - origin);
}

// `text` as a JSON string literal (quotes, backslashes and control characters escaped).
std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

template <typename T>
std::string OrNull(bool has, T value) {
  return has ? fmt::format("{:.3f}", value) : "null";
}

}  // namespace

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) throw std::runtime_error("protobuf JSON: " + status.ToString());
  return json;
}

std::string BeatLine(const ops::Beat& beat, ops::TimeUs origin_us) {
  return fmt::format(R"({{"type":"beat","t":{:.4f},"sample":{},"label":"{}"}})",
                     Seconds(beat.time_us, origin_us), beat.sample, static_cast<char>(beat.label));
}

std::string EpisodeLine(const ops::Episode& episode, ops::TimeUs origin_us) {
  return fmt::format(R"({{"type":"episode","rhythm":"{}","start":{:.3f},"end":{:.3f}}})",
                     ops::EpisodeName(episode.kind), Seconds(episode.start_us, origin_us),
                     Seconds(episode.end_us, origin_us));
}

std::string MeasurementLine(const ops::Measurement& m, ops::TimeUs origin_us) {
  return fmt::format(R"({{"type":"measurement","name":"{}","t":{:.4f},"value":{}}})", m.name,
                     Seconds(m.time_us, origin_us),
                     std::isfinite(m.value) ? fmt::format("{:.7g}", m.value) : "null");
}

std::string AlertLine(const v1::Alert& alert) {
  return fmt::format(R"({{"type":"alert","alert":{}}})", ToJson(alert));
}

std::string ReplayLine(ops::TimeUs origin_us, std::string_view patient_id) {
  return fmt::format(R"({{"type":"replay","origin_us":{},"patient":{}}})", origin_us,
                     Quoted(patient_id));
}

std::string AggregateLine(const v1::Aggregate& aggregate) {
  return fmt::format(R"({{"type":"aggregate","aggregate":{}}})", ToJson(aggregate));
}

std::string TherapyDayLine(const v1::Aggregate& day) {
  const auto& r = day.respiratory();
  const auto& a = day.adherence();
  return fmt::format(
      R"({{"type":"therapy_day","date":"{}","usage_min":{:.1f},"sessions":{},"ahi":{},)"
      R"("leak_p50_lpm":{},"leak_p95_lpm":{},"rr_median":{},"vt_median_ml":{},"mv_median_lpm":{}}})",
      day.therapy_date(), a.usage_minutes(), a.sessions(), OrNull(r.has_ahi(), r.ahi()),
      OrNull(r.has_leak_p50_lpm(), r.leak_p50_lpm()),
      OrNull(r.has_leak_p95_lpm(), r.leak_p95_lpm()),
      OrNull(r.has_respiratory_rate_median_bpm(), r.respiratory_rate_median_bpm()),
      OrNull(r.has_tidal_volume_median_ml(), r.tidal_volume_median_ml()),
      OrNull(r.has_minute_ventilation_median_lpm(), r.minute_ventilation_median_lpm()));
}

}  // namespace vigil::output
