// Every vigil.v1 message round-trips through the binary and the JSON encodings unchanged.
// Messages are found by reflection, so a message added to schemas/ is covered without editing
// this test; every field (nested messages, repeated, maps, oneofs, enums) is filled.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "vigil/v1/aggregate.pb.h"
#include "vigil/v1/alert.pb.h"
#include "vigil/v1/dead_letter.pb.h"
#include "vigil/v1/patient_config.pb.h"
#include "vigil/v1/state.pb.h"
#include "vigil/v1/telemetry.pb.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::Message;
using google::protobuf::MessageFactory;
using google::protobuf::Reflection;

// Sets one value of `field` (appending when repeated), distinct per `seed`.
void SetValue(Message& m, const FieldDescriptor* f, int seed, int depth);

void Fill(Message& m, int seed, int depth) {
  const Descriptor* d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    // In a oneof only the last member set survives; fill the first one for determinism.
    if (f->containing_oneof() && f->index_in_oneof() != 0) continue;
    if (f->is_repeated()) {
      SetValue(m, f, seed + i, depth);
      SetValue(m, f, seed + i + 7, depth);
    } else {
      SetValue(m, f, seed + i, depth);
    }
  }
}

void SetValue(Message& m, const FieldDescriptor* f, int seed, int depth) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      rep ? r->AddInt32(&m, f, -seed) : r->SetInt32(&m, f, -seed - 1);
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      rep ? r->AddInt64(&m, f, 1'700'000'000'000'000LL + seed)
          : r->SetInt64(&m, f, 1'700'000'000'000'000LL + seed);
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      rep ? r->AddUInt32(&m, f, seed + 1) : r->SetUInt32(&m, f, seed + 1);
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      rep ? r->AddUInt64(&m, f, 1ULL << 40 | seed) : r->SetUInt64(&m, f, 1ULL << 40 | seed);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      rep ? r->AddDouble(&m, f, seed + 0.25) : r->SetDouble(&m, f, seed + 0.25);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      rep ? r->AddFloat(&m, f, seed + 0.5f) : r->SetFloat(&m, f, seed + 0.5f);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      rep ? r->AddBool(&m, f, true) : r->SetBool(&m, f, true);
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* e = f->enum_type();
      const auto* v = e->value(e->value_count() - 1 - seed % e->value_count());
      if (v->number() == 0) v = e->value(e->value_count() - 1);  // unset would not round-trip
      rep ? r->AddEnum(&m, f, v) : r->SetEnum(&m, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string s = f->type() == FieldDescriptor::TYPE_BYTES
                          ? std::string("\x00\xff\x10 bytes", 9) + std::to_string(seed)
                          : "value-" + std::to_string(seed) + " æøå";
      rep ? r->AddString(&m, f, s) : r->SetString(&m, f, s);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      if (depth > 4) return;
      Message* child = rep ? r->AddMessage(&m, f) : r->MutableMessage(&m, f);
      Fill(*child, seed * 3 + 1, depth + 1);
      break;
    }
  }
}

std::vector<const Descriptor*> AllV1Messages() {
  // Touch one message per file so the generated descriptors are linked in and registered.
  const std::vector<const FileDescriptor*> files = {
      vigil::v1::TelemetryEnvelope::descriptor()->file(),
      vigil::v1::Alert::descriptor()->file(),
      vigil::v1::Aggregate::descriptor()->file(),
      vigil::v1::DeadLetter::descriptor()->file(),
      vigil::v1::PatientStateSnapshot::descriptor()->file(),
      vigil::v1::PatientConfig::descriptor()->file()};
  std::vector<const Descriptor*> out;
  std::vector<const Descriptor*> stack;
  for (const auto* file : files) {
    EXPECT_EQ(file->package(), "vigil.v1") << file->name();
    for (int i = 0; i < file->message_type_count(); ++i) stack.push_back(file->message_type(i));
  }
  while (!stack.empty()) {
    const Descriptor* d = stack.back();
    stack.pop_back();
    if (d->options().map_entry()) continue;
    out.push_back(d);
    for (int i = 0; i < d->nested_type_count(); ++i) stack.push_back(d->nested_type(i));
  }
  return out;
}

TEST(SchemasRoundTrip, CoversEveryTopicMessage) {
  std::set<std::string> names;
  for (const auto* d : AllV1Messages()) names.insert(d->full_name());
  for (const char* expected :
       {"vigil.v1.TelemetryEnvelope", "vigil.v1.SignalFrame", "vigil.v1.DeviceEvent",
        "vigil.v1.Alert", "vigil.v1.Aggregate", "vigil.v1.DeadLetter",
        "vigil.v1.PatientStateSnapshot", "vigil.v1.PatientConfig", "vigil.v1.TherapySession"}) {
    EXPECT_TRUE(names.count(expected)) << expected;
  }
}

TEST(SchemasRoundTrip, EveryMessageThroughBinaryAndJson) {
  MessageFactory* factory = MessageFactory::generated_factory();
  int checked = 0;
  for (const Descriptor* d : AllV1Messages()) {
    SCOPED_TRACE(d->full_name());
    std::unique_ptr<Message> original(factory->GetPrototype(d)->New());
    Fill(*original, 3, 0);
    ASSERT_GT(original->ByteSizeLong(), 0u) << "nothing was filled";

    std::unique_ptr<Message> from_binary(original->New());
    ASSERT_TRUE(from_binary->ParseFromString(original->SerializeAsString()));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*original, *from_binary))
        << original->DebugString() << "\nvs\n"
        << from_binary->DebugString();

    std::string json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(*original, &json).ok());
    std::unique_ptr<Message> from_json(original->New());
    const auto status = google::protobuf::util::JsonStringToMessage(json, from_json.get());
    ASSERT_TRUE(status.ok()) << status.ToString() << "\n" << json;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*original, *from_json)) << json;
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST(SchemasRoundTrip, UnsetOptionalMeasureStaysUnset) {
  vigil::v1::Aggregate aggregate;
  aggregate.mutable_respiratory()->set_apneas(0);
  vigil::v1::Aggregate back;
  ASSERT_TRUE(back.ParseFromString(aggregate.SerializeAsString()));
  EXPECT_FALSE(back.respiratory().has_ahi()) << "absent must stay distinguishable from zero";
  aggregate.mutable_respiratory()->set_ahi(0.0);
  ASSERT_TRUE(back.ParseFromString(aggregate.SerializeAsString()));
  EXPECT_TRUE(back.respiratory().has_ahi());
}

}  // namespace
