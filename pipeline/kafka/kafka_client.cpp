#include "pipeline/kafka/kafka_client.h"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

namespace vigil::kafka {
namespace {

bool IsSecretKey(std::string_view key) {
  return key.find("password") != std::string_view::npos ||
         key.find("secret") != std::string_view::npos ||
         key.find("sasl.oauthbearer.config") != std::string_view::npos;
}

// Takes ownership of an RdKafka::Error and throws it as a KafkaError if it is an error.
void ThrowIfError(RdKafka::Error* raw, std::string_view what) {
  std::unique_ptr<RdKafka::Error> error(raw);
  if (!error) return;
  throw KafkaError(fmt::format("{}: {}", what, error->str()), error->code(), error->is_retriable(),
                   error->txn_requires_abort(), error->is_fatal());
}

}  // namespace

KafkaError::KafkaError(std::string what, RdKafka::ErrorCode code, bool retriable, bool abortable,
                       bool fatal)
    : std::runtime_error(std::move(what)),
      code_(code),
      retriable_(retriable),
      abortable_(abortable),
      fatal_(fatal) {}

std::unique_ptr<RdKafka::Conf> MakeConf(const Properties& properties) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  for (const auto& [key, value] : properties) {
    std::string error;
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      throw std::invalid_argument(fmt::format("kafka property {} = {}: {}", key,
                                              IsSecretKey(key) ? "<redacted>" : value, error));
    }
  }
  return conf;
}

// Remembers the first delivery failure since the last Flush.
class Producer::DeliveryReports : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() == RdKafka::ERR_NO_ERROR) return;
    std::lock_guard lock(mutex_);
    if (!failure_) {
      failure_ = KafkaError(
          fmt::format("delivery to {} failed: {}", message.topic_name(), message.errstr()),
          message.err());
    }
  }
  std::optional<KafkaError> Take() {
    std::lock_guard lock(mutex_);
    auto failure = std::move(failure_);
    failure_.reset();
    return failure;
  }

 private:
  std::mutex mutex_;
  std::optional<KafkaError> failure_;
};

Producer::Producer(const Properties& properties, RdKafka::EventCb* events)
    : reports_(std::make_unique<DeliveryReports>()) {
  auto conf = MakeConf(properties);
  std::string error;
  if (events && conf->set("event_cb", events, error) != RdKafka::Conf::CONF_OK) {
    throw std::logic_error(error);
  }
  if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(reports_.get()), error) !=
      RdKafka::Conf::CONF_OK) {
    throw std::logic_error(error);
  }
  producer_.reset(RdKafka::Producer::create(conf.get(), error));
  if (!producer_) {
    throw KafkaError("creating the Kafka producer: " + error, RdKafka::ERR__INVALID_ARG);
  }
}

Producer::~Producer() {
  if (producer_) producer_->flush(5000);
}

void Producer::Produce(const std::string& topic, std::string_view key, std::string_view value,
                       int32_t partition, int64_t timestamp_ms) {
  for (;;) {
    const auto err = producer_->produce(topic, partition, RdKafka::Producer::RK_MSG_COPY,
                                        const_cast<char*>(value.data()), value.size(), key.data(),
                                        key.size(), timestamp_ms, nullptr, nullptr);
    if (err == RdKafka::ERR_NO_ERROR) return;
    if (err != RdKafka::ERR__QUEUE_FULL) {
      throw KafkaError(fmt::format("producing to {}: {}", topic, RdKafka::err2str(err)), err);
    }
    producer_->poll(50);  // bounded queue: wait for deliveries instead of buffering more
  }
}

void Producer::ProduceTombstone(const std::string& topic, std::string_view key) {
  for (;;) {
    const auto err =
        producer_->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                           nullptr, 0, key.data(), key.size(), 0, nullptr, nullptr);
    if (err == RdKafka::ERR_NO_ERROR) return;
    if (err != RdKafka::ERR__QUEUE_FULL) {
      throw KafkaError(fmt::format("producing a tombstone to {}: {}", topic, RdKafka::err2str(err)),
                       err);
    }
    producer_->poll(50);
  }
}

void Producer::Flush(std::chrono::milliseconds timeout) {
  const auto err = producer_->flush(static_cast<int>(timeout.count()));
  if (err != RdKafka::ERR_NO_ERROR) {
    throw KafkaError(fmt::format("flush: {}", RdKafka::err2str(err)), err, true);
  }
  if (auto failure = reports_->Take()) throw *failure;
}

void Producer::InitTransactions(std::chrono::milliseconds timeout) {
  ThrowIfError(producer_->init_transactions(static_cast<int>(timeout.count())),
               "init_transactions");
}

void Producer::BeginTransaction() {
  ThrowIfError(producer_->begin_transaction(), "begin_transaction");
}

void Producer::SendOffsetsToTransaction(const std::vector<RdKafka::TopicPartition*>& offsets,
                                        const RdKafka::ConsumerGroupMetadata& group,
                                        std::chrono::milliseconds timeout) {
  ThrowIfError(producer_->send_offsets_to_transaction(
                   offsets, const_cast<RdKafka::ConsumerGroupMetadata*>(&group),
                   static_cast<int>(timeout.count())),
               "send_offsets_to_transaction");
}

void Producer::CommitTransaction(std::chrono::milliseconds timeout) {
  ThrowIfError(producer_->commit_transaction(static_cast<int>(timeout.count())),
               "commit_transaction");
  reports_->Take();  // failures surface through commit_transaction itself
}

void Producer::AbortTransaction(std::chrono::milliseconds timeout) {
  ThrowIfError(producer_->abort_transaction(static_cast<int>(timeout.count())),
               "abort_transaction");
  reports_->Take();  // aborted records report purge errors; they are expected
}

void Producer::Poll(std::chrono::milliseconds timeout) {
  producer_->poll(static_cast<int>(timeout.count()));
}

Consumer::Consumer(const Properties& properties, RdKafka::RebalanceCb* rebalance,
                   RdKafka::EventCb* events) {
  auto conf = MakeConf(properties);
  std::string error;
  if (events && conf->set("event_cb", events, error) != RdKafka::Conf::CONF_OK) {
    throw std::logic_error(error);
  }
  if (rebalance && conf->set("rebalance_cb", rebalance, error) != RdKafka::Conf::CONF_OK) {
    throw std::logic_error(error);
  }
  consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer_) {
    throw KafkaError("creating the Kafka consumer: " + error, RdKafka::ERR__INVALID_ARG);
  }
}

Consumer::~Consumer() {
  if (consumer_ && !closed_) consumer_->close();
}

void Consumer::Subscribe(const std::vector<std::string>& topics) {
  const auto err = consumer_->subscribe(topics);
  if (err != RdKafka::ERR_NO_ERROR) {
    throw KafkaError(fmt::format("subscribe: {}", RdKafka::err2str(err)), err);
  }
}

int PartitionCount(RdKafka::Handle& handle, const std::string& topic,
                   std::chrono::milliseconds timeout) {
  std::string error;
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(&handle, topic, nullptr, error));
  if (!t) throw KafkaError("topic handle " + topic + ": " + error, RdKafka::ERR__INVALID_ARG);
  // A topic created a moment ago can be reported unknown, or without leaders, until the
  // controller has propagated it: retry those within the timeout instead of failing.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    RdKafka::Metadata* raw = nullptr;
    const auto err = handle.metadata(false, t.get(), &raw,
                                     static_cast<int>(std::max<int64_t>(100, left.count())));
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
    RdKafka::ErrorCode topic_err = RdKafka::ERR_UNKNOWN_TOPIC_OR_PART;
    int partitions = 0;
    if (err == RdKafka::ERR_NO_ERROR) {
      for (const auto* tm : *metadata->topics()) {
        if (tm->topic() != topic) continue;
        topic_err = tm->err();
        partitions = static_cast<int>(tm->partitions()->size());
      }
      if (topic_err == RdKafka::ERR_NO_ERROR && partitions > 0) return partitions;
    }
    // Anything else (TOPIC_AUTHORIZATION_FAILED above all) fails at once: waiting cannot help.
    const bool transient = err != RdKafka::ERR_NO_ERROR ||
                           topic_err == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART ||
                           topic_err == RdKafka::ERR_LEADER_NOT_AVAILABLE ||
                           (topic_err == RdKafka::ERR_NO_ERROR && partitions == 0);
    if (!transient || std::chrono::steady_clock::now() >= deadline) {
      const auto code = err != RdKafka::ERR_NO_ERROR ? err : topic_err;
      throw KafkaError(fmt::format("topic {}: {}", topic, RdKafka::err2str(code)), code, transient);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void CreateTopics(const Properties& properties, const std::vector<TopicSpec>& topics,
                  std::chrono::milliseconds timeout) {
  if (topics.empty()) return;
  Producer client(properties);  // any handle can send admin requests
  rd_kafka_t* rk = client.handle().c_ptr();
  std::vector<rd_kafka_NewTopic_t*> requests;
  char error[512];
  auto cleanup = [&] {
    for (auto* r : requests) rd_kafka_NewTopic_destroy(r);
  };
  for (const auto& spec : topics) {
    auto* request = rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions,
                                          spec.replication_factor, error, sizeof(error));
    if (!request) {
      cleanup();
      throw KafkaError(fmt::format("topic {}: {}", spec.name, error), RdKafka::ERR__INVALID_ARG);
    }
    requests.push_back(request);
    for (const auto& [key, value] : spec.config) {
      rd_kafka_NewTopic_set_config(request, key.c_str(), value.c_str());
    }
  }
  std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> queue(
      rd_kafka_queue_new(rk), &rd_kafka_queue_destroy);
  rd_kafka_CreateTopics(rk, requests.data(), requests.size(), nullptr, queue.get());
  cleanup();
  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> event(
      rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count())), &rd_kafka_event_destroy);
  if (!event) throw KafkaError("CreateTopics: timed out", RdKafka::ERR__TIMED_OUT, true);
  if (rd_kafka_event_error(event.get())) {
    throw KafkaError(fmt::format("CreateTopics: {}", rd_kafka_event_error_string(event.get())),
                     static_cast<RdKafka::ErrorCode>(rd_kafka_event_error(event.get())));
  }
  const auto* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const auto** results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    const auto err = rd_kafka_topic_result_error(results[i]);
    if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      throw KafkaError(fmt::format("creating topic {}: {}", rd_kafka_topic_result_name(results[i]),
                                   rd_kafka_topic_result_error_string(results[i])),
                       static_cast<RdKafka::ErrorCode>(err));
    }
  }
}

void Consumer::AssignAllFromBeginning(const std::string& topic, std::chrono::milliseconds timeout) {
  const int partitions = PartitionCount(*consumer_, topic, timeout);
  std::vector<RdKafka::TopicPartition*> assignment;
  for (int p = 0; p < partitions; ++p) {
    assignment.push_back(
        RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
  }
  const auto err = consumer_->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  if (err != RdKafka::ERR_NO_ERROR) {
    throw KafkaError(fmt::format("assign {}: {}", topic, RdKafka::err2str(err)), err);
  }
}

Record ToRecord(const RdKafka::Message& message) {
  Record record;
  record.topic = message.topic_name();
  record.partition = message.partition();
  record.offset = message.offset();
  record.timestamp_ms = message.timestamp().timestamp;
  if (message.key_pointer()) {
    record.key.emplace(static_cast<const char*>(message.key_pointer()), message.key_len());
  }
  if (message.payload()) {
    record.value.emplace(static_cast<const char*>(message.payload()), message.len());
  }
  return record;
}

std::optional<Record> Consumer::Poll(std::chrono::milliseconds timeout) {
  std::unique_ptr<RdKafka::Message> message(consumer_->consume(static_cast<int>(timeout.count())));
  switch (message->err()) {
    case RdKafka::ERR_NO_ERROR:
      return ToRecord(*message);
    case RdKafka::ERR__TIMED_OUT:
    case RdKafka::ERR__PARTITION_EOF:
      return std::nullopt;
    default:
      throw KafkaError(fmt::format("consume: {}", message->errstr()), message->err());
  }
}

std::vector<Record> Consumer::ReadUntilIdle(std::chrono::milliseconds idle, size_t max) {
  std::vector<Record> records;
  auto last = std::chrono::steady_clock::now();
  while (records.size() < max) {
    if (auto record = Poll(std::chrono::milliseconds(100))) {
      records.push_back(std::move(*record));
      last = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last >= idle) {
      break;
    }
  }
  return records;
}

void Consumer::ReadToEnd(int partitions, std::chrono::milliseconds idle,
                         const std::function<void(const RdKafka::Message&)>& take) {
  std::set<int32_t> at_end;
  auto last_progress = std::chrono::steady_clock::now();
  while (static_cast<int>(at_end.size()) < partitions) {
    std::unique_ptr<RdKafka::Message> m(consumer_->consume(200));
    const auto now = std::chrono::steady_clock::now();
    switch (m->err()) {
      case RdKafka::ERR_NO_ERROR:
        last_progress = now;
        take(*m);
        break;
      case RdKafka::ERR__PARTITION_EOF:
        last_progress = now;
        at_end.insert(m->partition());
        break;
      case RdKafka::ERR__TIMED_OUT:
        if (now - last_progress >= idle) {
          throw KafkaError(
              fmt::format("{}: {} of {} partitions did not reach their end within {} ms (an open "
                          "transaction or an unreachable broker)",
                          m->topic_name(), partitions - static_cast<int>(at_end.size()), partitions,
                          idle.count()),
              RdKafka::ERR__TIMED_OUT);
        }
        break;
      default:
        throw KafkaError(fmt::format("consume: {}", m->errstr()), m->err());
    }
  }
}

void Consumer::Close() {
  if (!closed_) {
    consumer_->close();
    closed_ = true;
  }
}

}  // namespace vigil::kafka
