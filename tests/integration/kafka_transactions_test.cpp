// Against the real test broker: a telemetry envelope produced inside a transaction is read back
// by a read_committed consumer and decodes equal; a record from an aborted transaction is never
// seen by read_committed readers (while a read_uncommitted reader proves it was written).
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "pipeline/kafka/kafka_client.h"
#include "pipeline/topics.h"
#include "support/test_support.h"
#include "vigil/v1/telemetry.pb.h"

namespace {

using namespace std::chrono_literals;
using vigil::kafka::Consumer;
using vigil::kafka::Producer;
using vigil::kafka::Record;

vigil::v1::TelemetryEnvelope SampleEnvelope(const std::string& patient, int marker) {
  vigil::v1::TelemetryEnvelope envelope;
  envelope.set_patient_id(patient);
  envelope.set_gateway_id("gw-" + std::to_string(marker));
  envelope.set_sent_time_us(1'700'000'000'000'000 + marker);
  auto* frame = envelope.add_frames();
  frame->set_device_id("holter-7");
  frame->set_kind(vigil::v1::SIGNAL_KIND_ECG);
  frame->set_unit(vigil::v1::UNIT_MILLIVOLT);
  frame->set_sample_rate_hz(250);
  frame->set_first_sample_time_us(1'700'000'000'000'000);
  frame->set_sequence(42 + marker);
  frame->set_gain(0.005);
  frame->set_offset(0);
  frame->set_lead(vigil::v1::ECG_LEAD_II);
  for (int i = 0; i < 250; ++i) frame->add_samples((i * 37 + marker) % 400 - 200);
  auto* event = envelope.add_events();
  event->set_device_id("niv-3");
  event->set_time_us(1'700'000'000'500'000);
  event->mutable_settings()->set_mode(vigil::v1::THERAPY_MODE_BILEVEL_ST);
  event->mutable_settings()->set_ipap_cm_h2o(18);
  event->mutable_settings()->set_epap_cm_h2o(6);
  event->mutable_settings()->set_backup_rate_bpm(14);
  return envelope;
}

std::vector<Record> ReadPatient(const std::string& isolation, const std::string& patient) {
  Consumer consumer({{"bootstrap.servers", vigil::testing::KafkaBootstrap()},
                     {"group.id", vigil::testing::UniqueName("txn-test-reader")},
                     {"isolation.level", isolation},
                     {"enable.auto.commit", "false"}});
  consumer.AssignAllFromBeginning(std::string(vigil::topics::kTelemetry), 10s);
  std::vector<Record> mine;
  for (auto& record : consumer.ReadUntilIdle(3s)) {
    if (record.key == patient) mine.push_back(std::move(record));
  }
  consumer.Close();
  return mine;
}

TEST(KafkaTransactions, CommittedEnvelopeReadBackEqualAbortedNeverSeen) {
  const std::string patient = vigil::testing::UniqueName("patient");
  const auto committed = SampleEnvelope(patient, 1);
  const auto aborted = SampleEnvelope(patient, 2);

  Producer producer({{"bootstrap.servers", vigil::testing::KafkaBootstrap()},
                     {"transactional.id", vigil::testing::UniqueName("txn-test")}});
  producer.InitTransactions(30s);

  producer.BeginTransaction();
  producer.Produce(std::string(vigil::topics::kTelemetry), patient, aborted.SerializeAsString());
  producer.Flush(10s);  // the aborted record really reaches the log before the abort
  producer.AbortTransaction(30s);

  producer.BeginTransaction();
  producer.Produce(std::string(vigil::topics::kTelemetry), patient, committed.SerializeAsString());
  producer.CommitTransaction(30s);

  const auto read_committed = ReadPatient("read_committed", patient);
  ASSERT_EQ(read_committed.size(), 1u) << "read_committed must see exactly the committed record";
  ASSERT_TRUE(read_committed[0].value.has_value());
  vigil::v1::TelemetryEnvelope decoded;
  ASSERT_TRUE(decoded.ParseFromString(*read_committed[0].value));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(decoded, committed))
      << decoded.DebugString();

  // Control: the aborted record is in the log, so the check above could have failed.
  const auto read_uncommitted = ReadPatient("read_uncommitted", patient);
  ASSERT_EQ(read_uncommitted.size(), 2u);
  vigil::v1::TelemetryEnvelope first;
  ASSERT_TRUE(first.ParseFromString(*read_uncommitted[0].value));
  EXPECT_EQ(first.gateway_id(), "gw-2");
}

TEST(KafkaTransactions, BadPropertyFailsWithKeyAndValue) {
  try {
    Producer producer({{"bootstrap.servers", "localhost:1"}, {"linger.ms", "-5"}});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("linger.ms = -5"), std::string::npos) << e.what();
  }
}

TEST(KafkaTransactions, SecretValuesAreNotEchoed) {
  try {
    Producer producer({{"bootstrap.servers", "localhost:1"},
                       {"sasl.password", "hunter2"},
                       {"no.such.property.password", "hunter2"}});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
  }
}

}  // namespace
