// Record-level validation of telemetry: each bad record maps to its dead-letter reason.
#include "pipeline/service/telemetry_decoder.h"

#include <gtest/gtest.h>

#include <cmath>

#include "pipeline/analysis/frame_decoder.h"
#include "vigil/v1/telemetry.pb.h"

namespace vigil::service {
namespace {

v1::TelemetryEnvelope Envelope() {
  v1::TelemetryEnvelope e;
  e.set_patient_id("p1");
  auto* f = e.add_frames();
  f->set_device_id("d1");
  f->set_kind(v1::SIGNAL_KIND_ECG);
  f->set_sample_rate_hz(250);
  f->set_gain(0.005);
  f->set_first_sample_time_us(1'700'000'000'000'000);
  for (int i = 0; i < 250; ++i) f->add_samples(i);
  auto* ev = e.add_events();
  ev->set_device_id("d2");
  ev->mutable_session()->set_action(v1::TherapySession::ACTION_START);
  return e;
}

v1::DeadLetterReason ReasonOf(const std::optional<std::string>& key,
                              const std::optional<std::string>& value, DecodeLimits limits = {}) {
  auto result = DecodeTelemetry(key, value, limits);
  if (auto* r = std::get_if<Rejection>(&result)) return r->reason;
  return v1::DEAD_LETTER_REASON_UNSPECIFIED;
}

TEST(TelemetryDecoder, ValidRecordDecodesToPhysicalUnits) {
  const auto e = Envelope();
  auto result = DecodeTelemetry(std::string("p1"), e.SerializeAsString(), {});
  ASSERT_TRUE(std::holds_alternative<DecodedRecord>(result));
  const auto& d = std::get<DecodedRecord>(result);
  EXPECT_EQ(d.patient_id, "p1");
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_FLOAT_EQ(d.frames[0].values[200], 1.0f);
  EXPECT_EQ(d.samples, 250u);
  EXPECT_EQ(d.events.size(), 1u);
}

TEST(TelemetryDecoder, EachProblemHasItsReason) {
  const auto good = Envelope();
  EXPECT_EQ(ReasonOf("p1", std::nullopt), v1::DEAD_LETTER_REASON_UNDECODABLE);
  EXPECT_EQ(ReasonOf("p1", std::string("\xff\xff\xff")), v1::DEAD_LETTER_REASON_UNDECODABLE);
  const auto bytes = good.SerializeAsString();
  EXPECT_EQ(ReasonOf("p1", bytes.substr(0, bytes.size() - 7)), v1::DEAD_LETTER_REASON_UNDECODABLE);
  EXPECT_EQ(ReasonOf("p2", bytes), v1::DEAD_LETTER_REASON_KEY_MISMATCH);
  EXPECT_EQ(ReasonOf(std::nullopt, bytes), v1::DEAD_LETTER_REASON_KEY_MISMATCH);
  auto e = good;
  e.clear_patient_id();
  EXPECT_EQ(ReasonOf("p1", e.SerializeAsString()), v1::DEAD_LETTER_REASON_MISSING_PATIENT);
  e = good;
  e.mutable_frames(0)->set_gain(std::nan(""));
  EXPECT_EQ(ReasonOf("p1", e.SerializeAsString()), v1::DEAD_LETTER_REASON_NON_FINITE_VALUE);
  e = good;
  e.mutable_frames(0)->set_sample_rate_hz(0);
  EXPECT_EQ(ReasonOf("p1", e.SerializeAsString()), v1::DEAD_LETTER_REASON_INVALID_FRAME);
  e = good;
  e.mutable_frames(0)->set_gain(0);
  EXPECT_EQ(ReasonOf("p1", e.SerializeAsString()), v1::DEAD_LETTER_REASON_INVALID_FRAME);
  e = good;
  e.mutable_frames(0)->set_kind(static_cast<v1::SignalKind>(42));
  EXPECT_EQ(ReasonOf("p1", e.SerializeAsString()), v1::DEAD_LETTER_REASON_INVALID_FRAME);
  DecodeLimits small;
  small.max_record_bytes = 100;
  EXPECT_EQ(ReasonOf("p1", bytes, small), v1::DEAD_LETTER_REASON_OVERSIZED);
  small = {};
  small.max_frames_per_record = 0;
  EXPECT_EQ(ReasonOf("p1", bytes, small), v1::DEAD_LETTER_REASON_OVERSIZED);
}

// Issue 16 item 7: the unit is read. CO2 in kPa is analysed in mmHg, a unit of another kind is
// refused with the field named, and a gain that overflows a float is refused.
TEST(TelemetryDecoder, UnitsAreConvertedOrRefused) {
  v1::SignalFrame f;
  f.set_device_id("dev");
  f.set_kind(v1::SIGNAL_KIND_TRANSCUTANEOUS_CO2);
  f.set_unit(v1::UNIT_KILOPASCAL);
  f.set_sample_rate_hz(1);
  f.set_gain(0.01);
  f.add_samples(700);  // 7 kPa
  std::vector<float> values;
  ASSERT_FALSE(analysis::DecodeFrame(f, 0, {}, values).has_value());
  EXPECT_NEAR(values[0], 52.5, 0.01);  // mmHg
  f.set_unit(v1::UNIT_MM_HG);
  ASSERT_FALSE(analysis::DecodeFrame(f, 0, {}, values).has_value());
  EXPECT_NEAR(values[0], 7.0, 1e-6);
  f.set_unit(v1::UNIT_PERCENT);
  const auto wrong = analysis::DecodeFrame(f, 3, {}, values);
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->reason, v1::DEAD_LETTER_REASON_INVALID_FRAME);
  EXPECT_NE(wrong->detail.find("frames[3].unit = UNIT_PERCENT"), std::string::npos)
      << wrong->detail;
  f.set_kind(v1::SIGNAL_KIND_FLOW);
  f.set_unit(v1::UNIT_LITRE_PER_SECOND);
  ASSERT_FALSE(analysis::DecodeFrame(f, 0, {}, values).has_value());
  EXPECT_NEAR(values[0], 420, 1e-3);  // 7 L/s in L/min
  f.set_gain(1e38);
  const auto overflow = analysis::DecodeFrame(f, 0, {}, values);
  ASSERT_TRUE(overflow.has_value());
  EXPECT_EQ(overflow->reason, v1::DEAD_LETTER_REASON_NON_FINITE_VALUE);
  EXPECT_NE(overflow->detail.find("overflows"), std::string::npos) << overflow->detail;
}

}  // namespace
}  // namespace vigil::service
