// Owning wrappers around librdkafka's C++ handles, and the small amount of policy every Vigil
// Kafka client shares (configuration from key/value maps, errors as exceptions with context).
//
// Threading: a Producer or Consumer object is used from one thread at a time, except where a
// method says otherwise. librdkafka's own background threads are internal.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::kafka {

// librdkafka properties, e.g. {"bootstrap.servers", "localhost:9092"}.
using Properties = std::map<std::string, std::string>;

// A Kafka operation failed. `retriable()` and `abortable()` mirror librdkafka's transactional
// error classes so callers can decide between retry, abort-and-retry and giving up.
class KafkaError : public std::runtime_error {
 public:
  KafkaError(std::string what, RdKafka::ErrorCode code, bool retriable = false,
             bool abortable = false, bool fatal = false);
  RdKafka::ErrorCode code() const { return code_; }
  bool retriable() const { return retriable_; }
  bool abortable() const { return abortable_; }
  bool fatal() const { return fatal_; }

 private:
  RdKafka::ErrorCode code_;
  bool retriable_;
  bool abortable_;
  bool fatal_;
};

// Builds an RdKafka::Conf from properties. Throws std::invalid_argument naming the key and the
// librdkafka message when a property is unknown or its value invalid. Values of keys containing
// "password" or "secret" are never echoed in the message.
std::unique_ptr<RdKafka::Conf> MakeConf(const Properties& properties);

// One record read back, decoupled from librdkafka's message lifetime.
struct Record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;  // nullopt = tombstone
};

// A producer. With "transactional.id" set it is transactional: call InitTransactions() once,
// then Begin/Commit/Abort around each batch.
class Producer {
 public:
  // Throws std::invalid_argument on bad properties, KafkaError if the handle cannot be created.
  // `events` (not owned, must outlive the producer) receives statistics and client errors.
  explicit Producer(const Properties& properties, RdKafka::EventCb* events = nullptr);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues one record. Blocks (polling delivery reports) while librdkafka's queue is full.
  // Throws KafkaError on non-retriable enqueue errors.
  // `timestamp_ms` 0 = now (the record's CreateTime).
  void Produce(const std::string& topic, std::string_view key, std::string_view value,
               int32_t partition = RdKafka::Topic::PARTITION_UA, int64_t timestamp_ms = 0);
  // Queues a tombstone (null value) for `key`.
  void ProduceTombstone(const std::string& topic, std::string_view key);

  // Waits until every queued record is delivered. Throws KafkaError on timeout or if any
  // record since the last Flush failed delivery (non-transactional producers only; a
  // transactional producer reports delivery failures through CommitTransaction).
  void Flush(std::chrono::milliseconds timeout);

  // Transactions; each throws KafkaError with retriable/abortable/fatal set from librdkafka.
  void InitTransactions(std::chrono::milliseconds timeout);
  void BeginTransaction();
  void SendOffsetsToTransaction(const std::vector<RdKafka::TopicPartition*>& offsets,
                                const RdKafka::ConsumerGroupMetadata& group,
                                std::chrono::milliseconds timeout);
  void CommitTransaction(std::chrono::milliseconds timeout);
  void AbortTransaction(std::chrono::milliseconds timeout);

  // Serves delivery reports and statistics callbacks.
  void Poll(std::chrono::milliseconds timeout);
  RdKafka::Producer& handle() { return *producer_; }

 private:
  class DeliveryReports;
  std::unique_ptr<DeliveryReports> reports_;
  std::unique_ptr<RdKafka::Producer> producer_;
};

// A group consumer (subscribe) or a standalone reader (assign). Not thread-safe.
// A consumed message as a Record (copies key and value).
Record ToRecord(const RdKafka::Message& message);

class Consumer {
 public:
  // Throws std::invalid_argument on bad properties, KafkaError if the handle cannot be created.
  // `rebalance` and `events` are not owned and must outlive the consumer.
  explicit Consumer(const Properties& properties, RdKafka::RebalanceCb* rebalance = nullptr,
                    RdKafka::EventCb* events = nullptr);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  void Subscribe(const std::vector<std::string>& topics);
  // Reads every partition of `topic` from the beginning, without a group.
  void AssignAllFromBeginning(const std::string& topic, std::chrono::milliseconds timeout);

  // Next record, or nullopt when none arrived within `timeout` (or on partition EOF).
  // Throws KafkaError on non-transient consumer errors.
  std::optional<Record> Poll(std::chrono::milliseconds timeout);

  // Reads until `idle` passes without a record, at most `max` records.
  std::vector<Record> ReadUntilIdle(std::chrono::milliseconds idle, size_t max = SIZE_MAX);

  // Reads the `partitions` assigned partitions to their end as of now (needs
  // "enable.partition.eof" = "true"; with read_committed the end is the last stable offset).
  // Calls `take` for each record. Throws KafkaError when a partition neither delivers nor
  // reports its end for `idle`.
  void ReadToEnd(int partitions, std::chrono::milliseconds idle,
                 const std::function<void(const RdKafka::Message&)>& take);

  void Close();
  // Destroys the handle without a consumer close (nothing was ever assigned to commit).
  void Abandon() { closed_ = true; }
  RdKafka::KafkaConsumer& handle() { return *consumer_; }

 private:
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  bool closed_ = false;
};

// A topic to create (tests, benchmarks, `vigil` set-up helpers).
struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication_factor = 1;
  std::map<std::string, std::string> config;  // e.g. {"cleanup.policy", "compact"}
};

// Creates the topics that do not exist yet (existing ones are left as they are). Throws
// KafkaError naming the topic on any other failure.
void CreateTopics(const Properties& properties, const std::vector<TopicSpec>& topics,
                  std::chrono::milliseconds timeout);

// Number of partitions of `topic`, read from the cluster's metadata. A topic that is unknown or
// leaderless (just created) is retried until `timeout`; then, or on other errors, throws
// KafkaError.
int PartitionCount(RdKafka::Handle& handle, const std::string& topic,
                   std::chrono::milliseconds timeout);

}  // namespace vigil::kafka
