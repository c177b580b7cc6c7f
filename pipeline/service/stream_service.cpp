#include "pipeline/service/stream_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "operators/core/options.h"
#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/kafka/kafka_client.h"
#include "pipeline/metrics/service_metrics.h"
#include "pipeline/service/hibernation.h"
#include "pipeline/service/kafka_client_properties.h"
#include "pipeline/service/kafka_statistics.h"
#include "pipeline/service/liveness.h"
#include "pipeline/service/log_id.h"
#include "pipeline/service/output_limits.h"
#include "pipeline/service/patient_config_store.h"
#include "pipeline/service/record_feed.h"
#include "pipeline/service/telemetry_decoder.h"
#include "vigil/v1/dead_letter.pb.h"
#include "vigil/v1/patient_config.pb.h"

namespace vigil::service {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using analysis::Outputs;
using analysis::PatientAnalysis;

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A unit of work for one lane: a telemetry record, or a device-offline tick of a partition.
// Transparent hash: maps keyed by std::string looked up with a string_view, no copy.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
};

struct Work {
  enum class Kind { kRecord, kTick } kind = Kind::kRecord;
  uint64_t lane_sequence = 0;  // position in the lane, for the sequencer
  kafka::Record record;
  // Catch-up after a restore: the record's outputs were committed before; analyse it to rebuild
  // the state, publish nothing.
  bool replay = false;
  std::variant<DecodedRecord, Rejection> decoded;
  int32_t tick_partition = 0;
  int64_t tick_now_us = 0;
  int64_t bytes = 0;  // of the record, counted in flight until analysed
};
using WorkPtr = std::shared_ptr<Work>;

struct PatientSlot {
  std::unique_ptr<PatientAnalysis> analysis;
  int32_t partition = 0;
  uint64_t config_version = 0;  // of the PatientConfig applied; 0 = service defaults
  bool dirty = false;           // changed since its last snapshot
  // Restored from a snapshot taken at this telemetry offset: earlier records re-read by the
  // catch-up are already in its state (-1: none).
  int64_t resume_offset = -1;
  int64_t last_record_ms = -1;  // Kafka timestamp of its newest record
  // Idle: `analysis` is null and this holds its compressed snapshot (hibernation.h).
  std::string hibernated;
};

// The run loop's view of one assigned telemetry partition.
struct PartitionState {
  int64_t start_offset = -1;  // where reading began after assignment or recovery; -1 = committed
  int64_t next_offset = -1;   // offset after the last dispatched record; -1 = none yet
  int64_t replay_until = -1;  // records below this offset are catch-up (outputs suppressed)
  int64_t last_timestamp_ms = -1;
  bool needs_snapshot = false;  // snapshot every patient at the next commit (new owner)
  // A catch-up that starts below the partition's newest snapshot (a patient's newest snapshot
  // was corrupt) writes no snapshot of the partition until it has passed this offset: a restore
  // reads from the newest snapshot offset, so an older one would leave records out.
  int64_t snapshot_floor = -1;
};

}  // namespace

class StreamService::Impl : public RdKafka::RebalanceCb, public RdKafka::EventCb {
 public:
  explicit Impl(config::ServiceConfig config);
  int Run();
  void RequestStop() { stop_.store(true); }

  // RdKafka::RebalanceCb: runs inside consumer_->consume() on the run loop's thread.
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override;
  // RdKafka::EventCb: statistics and client errors (librdkafka threads or poll callers).
  void event_cb(RdKafka::Event& event) override;

 private:
  struct Lane {
    std::unordered_map<std::string, PatientSlot> patients;
    uint64_t next_sequence = 0;                    // run loop only
    std::vector<int64_t> committed_timestamps_ms;  // lane only, read by the loop when idle
    // Per-operator histograms by operator name: looking a labelled series up in its family
    // per record and operator cost more than the leak and CO2 operators together.
    std::unordered_map<std::string, prometheus::Histogram*, NameHash, std::equal_to<>>
        operator_seconds;
    std::unique_ptr<tbb::flow::function_node<WorkPtr, WorkPtr>> decode;
    std::unique_ptr<tbb::flow::sequencer_node<WorkPtr>> order;
    std::unique_ptr<tbb::flow::function_node<WorkPtr>> analyse;
  };

  void BuildGraph();
  void Dispatch(kafka::Record record);
  void DispatchTick(int32_t partition, int64_t now_ms, bool replay);
  void Analyse(Lane& lane, Work& work);
  void AnalyseRecord(Lane& lane, Work& work);
  PatientSlot& Slot(Lane& lane, const std::string& patient, int32_t partition);
  void Publish(const Work& work, const std::string& patient, Outputs& out);
  void DeadLetter(const kafka::Record& record, const Rejection& rejection);
  void WaitIdle();

  void PollPatientConfigs();
  void OnPatientConfig(const kafka::Record& record);

  void BeginTransaction();
  // Commits the open transaction: every finished record's offset and the snapshots that are
  // due (all dirty patients when `snapshot_all` or the interval passed, else those of
  // `snapshot_partitions` and of partitions without any snapshot yet). Returns false when the
  // transaction had to be aborted (the caller then calls Recover); throws KafkaError when the
  // error is fatal. Begins the next transaction after a commit unless `begin_next` is false.
  bool Commit(bool snapshot_all, const std::set<int32_t>* snapshot_partitions = nullptr,
              bool begin_next = true);
  // After an abort: forgets every patient, restores the assigned partitions from the state
  // topic, rewinds the consumer to where that state was taken and begins a new transaction.
  void Recover(const std::string& why);
  // Restores the patients of `partitions` and returns the position each must be read from.
  std::map<int32_t, int64_t> RestorePartitions(const std::vector<int32_t>& partitions);
  void DropPartitions(const std::set<int32_t>& partitions);
  void UpdateBackpressure();

  config::ServiceConfig config_;
  std::atomic<bool> stop_{false};
  // Before metrics_, whose health server reads it: members are destroyed in reverse order.
  std::unique_ptr<LivenessWatch> liveness_;  // per lane and the run loop, for /healthz
  metrics::ServiceMetrics metrics_;
  std::shared_ptr<const analysis::AnalysisPlan> plan_;
  std::unique_ptr<PatientConfigStore> patient_configs_;  // after plan_
  DecodeLimits limits_;

  prometheus::Histogram* decode_seconds_ = &metrics_.StageSeconds("decode");
  prometheus::Histogram* analysis_seconds_ = &metrics_.StageSeconds("analysis");
  std::unique_ptr<tbb::global_control> threads_;
  // The graph runs in an arena of its own with every slot open to worker threads. In the
  // implicit arena one slot is kept for the run loop's thread, which joins only while it waits
  // for a commit: pinned to one core (affinity mask of 1), the graph then had no worker at all
  // and ran only during commits (3.6k records/s).
  std::unique_ptr<tbb::task_arena> arena_;
  std::unique_ptr<tbb::flow::graph> graph_;
  std::vector<Lane> lanes_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> in_flight_bytes_{0};  // record keys and values in flight
  // Backpressure: in flight at a limit (records or bytes), or back to half of both.
  bool InFlightFull() const {
    return in_flight_.load(std::memory_order_acquire) >= config_.limits.max_in_flight_records ||
           in_flight_bytes_.load(std::memory_order_acquire) >= config_.limits.max_in_flight_bytes;
  }
  bool InFlightHalf() const {
    return in_flight_.load(std::memory_order_acquire) <= config_.limits.max_in_flight_records / 2 &&
           in_flight_bytes_.load(std::memory_order_acquire) <=
               config_.limits.max_in_flight_bytes / 2;
  }
  std::atomic<bool> lane_failed_{false};
  std::mutex lane_error_mutex_;
  std::string lane_error_;

  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<kafka::Consumer> config_reader_;
  std::map<int32_t, PartitionState> partitions_;  // assigned telemetry partitions
  bool paused_ = false;
  bool rebalanced_ = false;                      // the group's first rebalance reached this member
  std::optional<Clock::time_point> full_since_;  // in flight reached the limit (not yet half)
  bool fatal_ = false;
  int consecutive_aborts_ = 0;
  bool transaction_open_ = false;
  bool transaction_dirty_ = false;  // something was produced or dispatched in it
  Clock::time_point transaction_started_;
  Clock::time_point last_snapshot_;
  Clock::time_point last_progress_;
  int restore_failures_left_ = 0;  // faults.restore_failures
};

StreamService::Impl::Impl(config::ServiceConfig config) : config_(std::move(config)) {
  try {
    plan_ = analysis::AnalysisPlan::Make(config_.analysis);
  } catch (const ops::OptionError& e) {
    throw config::ConfigError("analysis.operators." + e.field(), e.what(),
                              "rejected by the operator");
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError("analysis.operators", e.what(), "invalid operator configuration");
  }
  patient_configs_ = std::make_unique<PatientConfigStore>(plan_);
  restore_failures_left_ = config_.faults.restore_failures;
  limits_.max_record_bytes = static_cast<size_t>(config_.limits.max_record_bytes);
  limits_.max_frames_per_record = static_cast<size_t>(config_.limits.max_frames_per_record);
  limits_.frame.max_samples_per_frame = static_cast<size_t>(config_.limits.max_samples_per_frame);
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = config_.limits.threads > 0 ? config_.limits.threads : hw;
  // + 1: the run loop's thread takes part only while it waits for the graph (commits), so
  // `threads` workers are needed for `threads` lanes to run at once.
  threads_ = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                   static_cast<size_t>(threads) + 1);
  arena_ = std::make_unique<tbb::task_arena>(threads, /*reserved_for_masters=*/0);
  // A graph spawns its tasks in the arena it was created in.
  arena_->execute([this] { graph_ = std::make_unique<tbb::flow::graph>(); });
  lanes_.resize(static_cast<size_t>(config_.limits.lanes > 0 ? config_.limits.lanes : threads));
  liveness_ = std::make_unique<LivenessWatch>(
      lanes_.size(), std::chrono::milliseconds(config_.limits.liveness_deadline_ms));
  metrics_.SetLivenessCheck([this] { return liveness_->Stalled(); });
  BuildGraph();
}

// All wiring in one place: per lane, decode (parallel) -> sequencer (lane order) -> analyse
// (serial). Node bodies catch everything: an exception escaping a node would cancel the graph.
void StreamService::Impl::BuildGraph() {
  using namespace tbb::flow;
  for (auto& lane : lanes_) {
    lane.decode =
        std::make_unique<function_node<WorkPtr, WorkPtr>>(*graph_, unlimited, [this](WorkPtr work) {
          if (work->kind != Work::Kind::kRecord) return work;
          const auto start = Clock::now();
          try {
            work->decoded = DecodeTelemetry(work->record.key, work->record.value, limits_);
          } catch (const std::exception& e) {  // e.g. std::bad_alloc on a hostile size
            work->decoded = Rejection{v1::DEAD_LETTER_REASON_UNDECODABLE, e.what(), -1};
          }
          decode_seconds_->Observe(std::chrono::duration<double>(Clock::now() - start).count());
          return work;
        });
    lane.order = std::make_unique<sequencer_node<WorkPtr>>(
        *graph_, [](const WorkPtr& work) { return static_cast<size_t>(work->lane_sequence); });
    lane.analyse = std::make_unique<function_node<WorkPtr>>(
        *graph_, serial,
        [this, &lane, index = static_cast<size_t>(&lane - lanes_.data())](WorkPtr work) {
          liveness_->Begin(index);
          try {
            Analyse(lane, *work);
          } catch (const std::exception& e) {
            // Only Kafka produce failures get here (data problems are dead letters): the
            // transaction cannot be trusted any more; the run loop aborts it.
            std::lock_guard lock(lane_error_mutex_);
            if (!lane_failed_.exchange(true)) lane_error_ = e.what();
          }
          liveness_->End(index);
          in_flight_bytes_.fetch_sub(work->bytes, std::memory_order_acq_rel);
          in_flight_.fetch_sub(1, std::memory_order_acq_rel);
        });
    make_edge(*lane.decode, *lane.order);
    make_edge(*lane.order, *lane.analyse);
  }
}

void StreamService::Impl::Dispatch(kafka::Record record) {
  const int32_t partition = record.partition;
  auto& part = partitions_[partition];
  const size_t lane_index = record.key ? std::hash<std::string>{}(*record.key) % lanes_.size() : 0;
  Lane& lane = lanes_[lane_index];
  auto work = std::make_shared<Work>();
  work->lane_sequence = lane.next_sequence++;
  const bool replay = record.offset < part.replay_until;
  work->replay = replay;
  part.next_offset = record.offset + 1;
  const int64_t ts = record.timestamp_ms;
  const int64_t previous_ts = part.last_timestamp_ms;
  part.last_timestamp_ms = std::max(part.last_timestamp_ms, ts);
  work->bytes = static_cast<int64_t>((record.key ? record.key->size() : 0) +
                                     (record.value ? record.value->size() : 0));
  work->record = std::move(record);
  in_flight_bytes_.fetch_add(work->bytes, std::memory_order_acq_rel);
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  transaction_dirty_ = true;
  lane.decode->try_put(std::move(work));
  // Device-offline checks for silent patients, driven by the partition's record time so that a
  // re-read after a restore ticks at the same records as the first reading did. A tick within
  // the silent re-read publishes nothing: its device-offline alerts were committed the first time.
  const auto bucket = [this](int64_t ms) {
    return static_cast<int64_t>(static_cast<double>(ms) /
                                (config_.limits.device_check_interval_s * 1000));
  };
  if (previous_ts >= 0 && bucket(ts) > bucket(previous_ts)) DispatchTick(partition, ts, replay);
}

void StreamService::Impl::DispatchTick(int32_t partition, int64_t now_ms, bool replay) {
  for (auto& lane : lanes_) {
    auto work = std::make_shared<Work>();
    work->kind = Work::Kind::kTick;
    work->replay = replay;
    work->lane_sequence = lane.next_sequence++;
    work->tick_partition = partition;
    work->tick_now_us = ops::FromMillis(now_ms);
    in_flight_.fetch_add(1, std::memory_order_acq_rel);
    lane.decode->try_put(std::move(work));
  }
}

PatientSlot& StreamService::Impl::Slot(Lane& lane, const std::string& patient, int32_t partition) {
  auto it = lane.patients.find(patient);
  if (it == lane.patients.end()) {
    PatientSlot slot;
    slot.analysis = std::make_unique<PatientAnalysis>(patient, plan_);
    slot.partition = partition;
    it = lane.patients.emplace(patient, std::move(slot)).first;
    metrics_.patients.Increment();
  }
  PatientSlot& slot = it->second;
  if (!slot.hibernated.empty()) {
    try {
      slot.analysis = Wake(patient, plan_, slot.hibernated);
    } catch (const std::exception& e) {
      // Cannot happen with this process's own bytes; if it does, monitoring goes on fresh.
      spdlog::error("patient {}: hibernated state not restorable ({}), starting fresh",
                    PatientLogId(config_.logging.patient_hash_salt, patient), e.what());
      slot.analysis = std::make_unique<PatientAnalysis>(patient, plan_);
    }
    slot.hibernated.clear();
    slot.hibernated.shrink_to_fit();
    // Its configuration (or the defaults, if it was removed meanwhile) is applied again below.
    slot.config_version = std::numeric_limits<uint64_t>::max();
    metrics_.patients_hibernated.Decrement();
  }
  // A changed per-patient configuration takes effect from this record on.
  const uint64_t version = patient_configs_->Version(patient);
  if (version != slot.config_version) {
    if (auto entry = patient_configs_->Get(patient)) {
      slot.analysis->SetPlan(entry->plan, entry->time_zone);
      slot.config_version = entry->version;
    } else {
      slot.analysis->SetPlan(plan_, config_.analysis.default_time_zone);
      slot.config_version = 0;
    }
    slot.dirty = true;
  }
  return slot;
}

void StreamService::Impl::Analyse(Lane& lane, Work& work) {
  if (work.kind == Work::Kind::kTick) {
    Outputs out;
    const double evict_s = config_.limits.evict_idle_after_s;
    for (auto& [patient, slot] : lane.patients) {
      if (slot.partition != work.tick_partition || !slot.analysis) continue;
      out.clear();
      slot.analysis->CheckDevicesOnline(work.tick_now_us, config_.limits.device_offline_after_s,
                                        out);
      if (!out.alerts.empty() || !out.aggregates.empty()) {
        slot.dirty = true;
        Publish(work, patient, out);
      }
      // Idle: keep only its compressed snapshot (a commit writes it from there if it is dirty).
      if (evict_s > 0 && slot.last_record_ms >= 0 &&
          ops::ToSeconds(work.tick_now_us - ops::FromMillis(slot.last_record_ms)) > evict_s) {
        slot.hibernated = Hibernate(*slot.analysis);
        slot.analysis.reset();
        metrics_.patients_hibernated.Increment();
        metrics_.hibernations.Increment();
      }
    }
    return;
  }
  AnalyseRecord(lane, work);
  if (!work.replay) lane.committed_timestamps_ms.push_back(work.record.timestamp_ms);
}

void StreamService::Impl::AnalyseRecord(Lane& lane, Work& work) {
  if (const auto* rejection = std::get_if<Rejection>(&work.decoded)) {
    if (!work.replay) DeadLetter(work.record, *rejection);
    return;
  }
  auto& decoded = std::get<DecodedRecord>(work.decoded);
  // A catch-up that starts before this patient's snapshot (another patient's newest snapshot
  // was corrupt, so it re-reads from that one's older one) must not apply a record twice - nor
  // touch the patient at all (waking it, applying its configuration), so it stays clean.
  if (const auto known = lane.patients.find(decoded.patient_id);
      known != lane.patients.end() && work.record.offset < known->second.resume_offset) {
    return;
  }
  PatientSlot& slot = Slot(lane, decoded.patient_id, work.record.partition);
  slot.dirty = true;
  slot.last_record_ms = std::max(slot.last_record_ms, work.record.timestamp_ms);
  Outputs out;
  const auto start = Clock::now();
  const std::vector<Rejection> item_rejections =
      FeedRecord(decoded, ops::FromMillis(work.record.timestamp_ms), *slot.analysis, out);
  slot.analysis->CheckDevicesOnline(ops::FromMillis(work.record.timestamp_ms),
                                    config_.limits.device_offline_after_s, out);
  analysis_seconds_->Observe(std::chrono::duration<double>(Clock::now() - start).count());
  for (const auto& [op, ns] : out.operator_ns) {
    auto it = lane.operator_seconds.find(op);
    if (it == lane.operator_seconds.end()) {
      it = lane.operator_seconds.emplace(std::string(op), &metrics_.OperatorSeconds(op)).first;
    }
    it->second->Observe(static_cast<double>(ns) * 1e-9);
  }
  if (work.replay) {
    metrics_.records_replayed.Increment();
    return;
  }
  metrics_.records_processed.Increment();
  metrics_.samples_in.Increment(static_cast<double>(decoded.samples));
  for (const auto& r : item_rejections) DeadLetter(work.record, r);
  Publish(work, decoded.patient_id, out);
}

void StreamService::Impl::Publish(const Work& work, const std::string& patient, Outputs& out) {
  if (work.replay) return;
  for (const auto& alert : out.alerts) {
    producer_->Produce(config_.topics.alerts, patient, alert.SerializeAsString());
    metrics_.records_out_alerts.Increment();
    metrics_.Alerts(v1::Condition_Name(alert.condition()), v1::Priority_Name(alert.priority()))
        .Increment();
  }
  for (const auto& aggregate : out.aggregates) {
    producer_->Produce(config_.topics.aggregates, patient, aggregate.SerializeAsString());
    metrics_.records_out_aggregates.Increment();
  }
}

void StreamService::Impl::DeadLetter(const kafka::Record& record, const Rejection& rejection) {
  v1::DeadLetter letter;
  letter.set_reason(rejection.reason);
  letter.set_detail(rejection.detail);
  letter.set_topic(record.topic);
  letter.set_partition(record.partition);
  letter.set_offset(record.offset);
  letter.set_kafka_timestamp_ms(record.timestamp_ms);
  if (record.key) {
    SetOriginalKey(letter, *record.key,
                   static_cast<size_t>(config_.limits.dead_letter_value_bytes));
  }
  if (record.value) {
    SetOriginalValue(letter, *record.value,
                     static_cast<size_t>(config_.limits.dead_letter_value_bytes));
  }
  letter.set_consumer_group(config_.kafka.group_id);
  letter.set_instance_id(config_.kafka.instance_id);
  letter.set_dead_lettered_at_us(WallMicros());
  letter.set_item_index(rejection.item_index);
  const std::string_view key = record.key ? std::string_view(*record.key) : std::string_view();
  producer_->Produce(config_.topics.dead_letter,
                     key.substr(0, std::min(key.size(), kMaxPatientIdBytes)),
                     letter.SerializeAsString());
  metrics_.DeadLetters(v1::DeadLetterReason_Name(rejection.reason)).Increment();
  spdlog::debug("dead letter {}[{}]@{}: {} ({})", record.topic, record.partition, record.offset,
                v1::DeadLetterReason_Name(rejection.reason), rejection.detail);
}

void StreamService::Impl::WaitIdle() {
  graph_->wait_for_all();
  metrics_.in_flight_records.Set(0);
  metrics_.in_flight_bytes.Set(0);
}

void StreamService::Impl::UpdateBackpressure() {
  if (!paused_ && InFlightFull()) {
    // Full: wait for the lanes (at most a few ms per loop turn, so that commits and producer
    // callbacks still run). Pausing is kept for a real stall, because librdkafka discards the
    // prefetched records of a paused partition and fetches them again after the resume.
    const auto now = Clock::now();
    if (!full_since_) {
      full_since_ = now;
      metrics_.backpressure_waits.Increment();
    }
    const auto until = now + 20ms;
    while (!InFlightHalf() && Clock::now() < until && !lane_failed_.load()) {
      std::this_thread::sleep_for(500us);
    }
    if (!InFlightHalf() &&
        Clock::now() - *full_since_ >= std::chrono::milliseconds(config_.limits.pause_after_ms)) {
      std::vector<RdKafka::TopicPartition*> assignment;
      consumer_->handle().assignment(assignment);
      consumer_->handle().pause(assignment);
      RdKafka::TopicPartition::destroy(assignment);
      paused_ = true;
      metrics_.partitions_paused.Increment();
    }
  } else if (paused_ && InFlightHalf()) {
    std::vector<RdKafka::TopicPartition*> assignment;
    consumer_->handle().assignment(assignment);
    consumer_->handle().resume(assignment);
    RdKafka::TopicPartition::destroy(assignment);
    paused_ = false;
  }
  if (InFlightHalf()) full_since_.reset();
  metrics_.in_flight_records.Set(static_cast<double>(in_flight_.load(std::memory_order_acquire)));
  metrics_.in_flight_bytes.Set(
      static_cast<double>(in_flight_bytes_.load(std::memory_order_acquire)));
}

// --- per-patient configuration ---------------------------------------------------------------

void StreamService::Impl::PollPatientConfigs() {
  for (int i = 0; i < 1000; ++i) {
    auto record = config_reader_->Poll(0ms);
    if (!record) return;
    OnPatientConfig(*record);
  }
}

void StreamService::Impl::OnPatientConfig(const kafka::Record& record) {
  using Kind = PatientConfigStore::Outcome::Kind;
  const auto outcome = patient_configs_->Apply(record);
  const std::string log_id =
      record.key ? PatientLogId(config_.logging.patient_hash_salt, *record.key) : "(no key)";
  switch (outcome.kind) {
    case Kind::kRemoved:
      spdlog::info("patient {}: configuration removed, service defaults apply", log_id);
      return;
    case Kind::kIgnored:
      spdlog::info("patient {}: configuration version {} ignored (not newer)", log_id,
                   outcome.version);
      return;
    case Kind::kAccepted:
      metrics_.patient_config_applied.Increment();
      spdlog::info("patient {}: configuration version {} accepted ({} overrides)", log_id,
                   outcome.version, outcome.overrides);
      return;
    case Kind::kRejected:
      break;
  }
  // A record without a usable key is a dead letter without a patient to warn about.
  if (record.key && record.key->size() <= kMaxPatientIdBytes) {
    metrics_.patient_config_rejected.Increment();
    spdlog::warn("patient {}: configuration at {}[{}]@{} rejected, previous settings stay: {}",
                 log_id, record.topic, record.partition, record.offset, outcome.rejection->detail);
  }
  DeadLetter(record, *outcome.rejection);
  transaction_dirty_ = true;
}

// --- transactions, state and rebalances ----------------------------------------------------

void StreamService::Impl::BeginTransaction() {
  producer_->BeginTransaction();
  transaction_open_ = true;
  transaction_dirty_ = false;
  transaction_started_ = Clock::now();
}

bool StreamService::Impl::Commit(bool snapshot_all, const std::set<int32_t>* snapshot_partitions,
                                 bool begin_next) {
  WaitIdle();
  const auto start = Clock::now();
  try {
    if (lane_failed_.load()) {
      std::lock_guard lock(lane_error_mutex_);
      throw kafka::KafkaError("producing from a lane: " + lane_error_, RdKafka::ERR__STATE, false,
                              true);
    }
    const bool interval_due = Clock::now() - last_snapshot_ >=
                              std::chrono::milliseconds(config_.limits.snapshot_interval_ms);
    const bool all = snapshot_all || interval_due;
    int snapshots = 0;
    for (auto& lane : lanes_) {
      for (auto& [patient, slot] : lane.patients) {
        if (!slot.dirty) continue;
        auto part = partitions_.find(slot.partition);
        if (part == partitions_.end() || part->second.next_offset < 0) continue;
        if (part->second.next_offset < part->second.snapshot_floor) continue;  // still below it
        if (!all && !part->second.needs_snapshot &&
            !(snapshot_partitions && snapshot_partitions->count(slot.partition))) {
          continue;
        }
        v1::PatientStateSnapshot snapshot;
        try {
          snapshot = slot.analysis ? slot.analysis->Snapshot() : Unpack(slot.hibernated);
        } catch (const std::exception& e) {  // cannot happen with this process's own bytes
          spdlog::error("patient {}: hibernated state not readable ({}), starting fresh",
                        PatientLogId(config_.logging.patient_hash_salt, patient), e.what());
          slot.analysis = std::make_unique<PatientAnalysis>(patient, plan_);
          slot.hibernated.clear();
          slot.config_version = std::numeric_limits<uint64_t>::max();
          metrics_.patients_hibernated.Decrement();
          snapshot = slot.analysis->Snapshot();
        }
        snapshot.set_snapshot_wall_time_us(WallMicros());
        snapshot.set_source_partition(slot.partition);
        snapshot.set_source_offset(part->second.next_offset);
        if (part->second.last_timestamp_ms >= 0) {
          snapshot.set_source_record_time_ms(part->second.last_timestamp_ms);
        }
        const auto fit =
            FitSnapshot(snapshot, static_cast<size_t>(config_.limits.max_output_bytes));
        if (!fit.dropped.empty() || !fit.fits) {
          const std::string log_id = PatientLogId(config_.logging.patient_hash_salt, patient);
          if (!fit.fits) {
            // Cannot happen with a bounded patient id (every part can be dropped). If it does, a
            // restore gets this patient's previous snapshot without the records since it.
            metrics_.snapshots_skipped.Increment();
            spdlog::error(
                "patient {}: state of {} bytes cannot fit limits.max_output_bytes = {}; "
                "not written: after a restore this patient lacks its records since its "
                "previous snapshot",
                log_id, fit.original_bytes, config_.limits.max_output_bytes);
            slot.dirty = false;
            continue;
          }
          metrics_.snapshots_reduced.Increment();
          spdlog::warn(
              "patient {}: state of {} bytes is over limits.max_output_bytes = {}; "
              "written without {} ({} bytes), which restart fresh after a restore",
              log_id, fit.original_bytes, config_.limits.max_output_bytes,
              fmt::join(fit.dropped, ", "), fit.bytes);
        }
        producer_->Produce(config_.topics.state, patient, snapshot.SerializeAsString(),
                           slot.partition);
        slot.dirty = false;
        ++snapshots;
      }
    }
    if (all) last_snapshot_ = Clock::now();
    // Every partition that needed a snapshot has had all its changed patients written above. (It
    // used to keep the flag until the next full snapshot, writing every changed patient of a
    // new partition at each commit for up to a snapshot interval.)
    for (auto& [p, part] : partitions_) part.needs_snapshot = false;
    metrics_.records_out_state.Increment(snapshots);
    std::vector<RdKafka::TopicPartition*> offsets;
    for (const auto& [p, part] : partitions_) {
      // During catch-up the group's committed offset is already past what was re-read: sending
      // the lower position would move it back, and a crash, revocation or Recover would then
      // publish the records up to the old committed offset a second time.
      if (part.next_offset >= 0 && part.next_offset >= part.replay_until) {
        offsets.push_back(
            RdKafka::TopicPartition::create(config_.topics.telemetry, p, part.next_offset));
      }
    }
    struct Destroy {
      std::vector<RdKafka::TopicPartition*>& v;
      ~Destroy() { RdKafka::TopicPartition::destroy(v); }
    } destroy{offsets};
    if (!offsets.empty()) {
      // Fresh each time: it carries the current generation and member id, which is what lets
      // the coordinator fence a zombie that lost these partitions (KIP-447).
      std::unique_ptr<RdKafka::ConsumerGroupMetadata> group(consumer_->handle().groupMetadata());
      producer_->SendOffsetsToTransaction(offsets, *group, 30s);
    }
    for (int attempt = 1;; ++attempt) {
      liveness_->Turn();  // a commit that is retried is progress, not a stall
      try {
        producer_->CommitTransaction(30s);
        break;
      } catch (const kafka::KafkaError& e) {
        if (!e.retriable() || attempt >= 3) throw;
        spdlog::warn("commit_transaction failed, retrying: {}", e.what());
      }
    }
    transaction_open_ = false;
    consecutive_aborts_ = 0;
    metrics_.transactions_committed.Increment();
    const auto now = Clock::now();
    metrics_.transaction_commit_seconds.Observe(std::chrono::duration<double>(now - start).count());
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    for (auto& lane : lanes_) {
      for (const int64_t ts : lane.committed_timestamps_ms) {
        metrics_.end_to_end_latency.Observe(static_cast<double>(std::max<int64_t>(0, now_ms - ts)) *
                                            1e-3);
      }
      lane.committed_timestamps_ms.clear();
    }
    last_progress_ = now;
  } catch (const kafka::KafkaError& e) {
    if (e.fatal() || e.code() == RdKafka::ERR_FENCED_INSTANCE_ID) throw;
    spdlog::warn("transaction failed, aborting it: {}", e.what());
    try {
      producer_->AbortTransaction(30s);
    } catch (const kafka::KafkaError& abort_error) {
      if (abort_error.fatal() || !abort_error.retriable()) {
        throw kafka::KafkaError(std::string("abort_transaction: ") + abort_error.what(),
                                abort_error.code(), false, false, true);
      }
      producer_->AbortTransaction(30s);
    }
    transaction_open_ = false;
    lane_failed_ = false;
    metrics_.transactions_aborted.Increment();
    if (++consecutive_aborts_ > 5) {
      // Something outside this process is wrong (fenced, ACLs, broker): let the orchestrator
      // restart us rather than spin.
      throw kafka::KafkaError(
          fmt::format("{} transactions aborted in a row, last: {}", consecutive_aborts_, e.what()),
          e.code(), false, false, true);
    }
    for (auto& lane : lanes_) lane.committed_timestamps_ms.clear();
    return false;
  }
  if (begin_next) BeginTransaction();
  return true;
}

std::map<int32_t, int64_t> StreamService::Impl::RestorePartitions(
    const std::vector<int32_t>& partitions) {
  std::map<int32_t, int64_t> positions;
  if (partitions.empty()) return positions;
  if (restore_failures_left_ > 0) {
    --restore_failures_left_;
    throw kafka::KafkaError(
        "reading the state topic: injected restore failure (faults.restore_failures)",
        RdKafka::ERR__TRANSPORT, true, true);
  }
  const auto start = Clock::now();
  // Committed offsets of the group: where the outputs stop.
  std::map<int32_t, int64_t> committed;
  {
    std::vector<RdKafka::TopicPartition*> tps;
    for (int32_t p : partitions)
      tps.push_back(RdKafka::TopicPartition::create(config_.topics.telemetry, p));
    const auto err = consumer_->handle().committed(tps, 30000);
    for (auto* tp : tps) committed[tp->partition()] = tp->offset();
    RdKafka::TopicPartition::destroy(tps);
    if (err != RdKafka::ERR_NO_ERROR) {
      throw kafka::KafkaError(fmt::format("reading committed offsets: {}", RdKafka::err2str(err)),
                              err, true, true);
    }
  }
  // The latest snapshot of every patient in the same-numbered state partitions.
  std::map<int32_t, std::map<std::string, v1::PatientStateSnapshot>> snapshots;
  // Patients whose newest snapshot record is undecodable: their restorable state (an older
  // snapshot, or none) is older than the partition's newest snapshots.
  std::map<int32_t, std::set<std::string>> corrupt;
  {
    kafka::Properties props = config_.kafka.properties;
    props["bootstrap.servers"] = config_.kafka.bootstrap_servers;
    props["group.id"] = config_.kafka.instance_id + "-restore";  // never commits
    props["enable.auto.commit"] = "false";
    props["isolation.level"] = "read_committed";
    props["enable.partition.eof"] = "true";
    props["client.id"] = config_.kafka.instance_id + "-restore";
    // The end of an idle partition is only known when a fetch returns: do not let the broker
    // hold an empty fetch for the default 500 ms.
    props["fetch.wait.max.ms"] = "20";
    kafka::Consumer reader(props);
    std::vector<RdKafka::TopicPartition*> tps;
    for (int32_t p : partitions) {
      tps.push_back(RdKafka::TopicPartition::create(config_.topics.state, p,
                                                    RdKafka::Topic::OFFSET_BEGINNING));
    }
    reader.handle().assign(tps);
    RdKafka::TopicPartition::destroy(tps);
    std::set<int32_t> pending(partitions.begin(), partitions.end());
    const auto deadline = Clock::now() + 120s;
    while (!pending.empty()) {
      if (Clock::now() > deadline) {
        throw kafka::KafkaError("reading the state topic: no end reached within 120 s",
                                RdKafka::ERR__TIMED_OUT, true, true);
      }
      liveness_->Turn();  // reading state is progress (it has a deadline of its own)
      std::unique_ptr<RdKafka::Message> m(reader.handle().consume(200));
      if (m->err() == RdKafka::ERR__PARTITION_EOF) {
        pending.erase(m->partition());
        continue;
      }
      if (m->err() == RdKafka::ERR__TIMED_OUT) continue;
      if (m->err() != RdKafka::ERR_NO_ERROR) {
        throw kafka::KafkaError(fmt::format("reading the state topic: {}", m->errstr()), m->err(),
                                true, true);
      }
      if (!m->key_pointer()) continue;
      std::string key(static_cast<const char*>(m->key_pointer()), m->key_len());
      auto& partition_snapshots = snapshots[m->partition()];
      if (!m->payload()) {
        partition_snapshots.erase(key);
        corrupt[m->partition()].erase(key);
        continue;
      }
      v1::PatientStateSnapshot snapshot;
      if (!snapshot.ParseFromArray(m->payload(), static_cast<int>(m->len())) ||
          snapshot.patient_id() != key) {
        spdlog::error(
            "state topic {}[{}]@{}: undecodable snapshot of patient {}; restoring its "
            "previous one and re-reading from there",
            config_.topics.state, m->partition(), m->offset(),
            PatientLogId(config_.logging.patient_hash_salt, key));
        corrupt[m->partition()].insert(key);
        continue;
      }
      corrupt[m->partition()].erase(key);
      partition_snapshots[key] = std::move(snapshot);
    }
    reader.Close();
  }
  int restored = 0;
  for (int32_t p : partitions) {
    PartitionState state;
    const int64_t c = committed[p];
    auto& patient_snapshots = snapshots[p];
    int64_t s = -1;
    int64_t record_time_ms = -1;
    for (const auto& [patient, snapshot] : patient_snapshots) {
      s = std::max(s, snapshot.source_offset());
      if (snapshot.has_source_record_time_ms()) {
        record_time_ms = std::max(record_time_ms, snapshot.source_record_time_ms());
      }
    }
    if (c < 0) {
      // A partition this group never committed: start fresh (auto.offset.reset). Snapshots from
      // another group sharing the state topic do not belong to this position.
      if (!patient_snapshots.empty()) {
        spdlog::warn("partition {}: no committed offset, {} state snapshots ignored", p,
                     patient_snapshots.size());
      }
      positions[p] = RdKafka::Topic::OFFSET_INVALID;
      state.needs_snapshot = true;
      partitions_[p] = state;
      continue;
    }
    if (s < 0 || s > c) {
      if (s > c) spdlog::error("partition {}: snapshot offset {} beyond committed {}", p, s, c);
      // Committed without any snapshot (the snapshot interval had not passed): rebuild the
      // state from the start of the partition, publishing nothing before the committed offset.
      spdlog::warn("partition {}: no usable state snapshot, re-reading from the beginning to {}", p,
                   c);
      positions[p] = RdKafka::Topic::OFFSET_BEGINNING;
      state.replay_until = c;
      state.needs_snapshot = true;
      partitions_[p] = state;
      continue;
    }
    // Re-read from the oldest state a patient with a corrupt newest snapshot can restore, or from
    // the beginning when it has none; every restored patient skips what its own snapshot has.
    int64_t from = s;
    bool from_beginning = false;
    for (const auto& patient : corrupt[p]) {
      const auto it = patient_snapshots.find(patient);
      if (it == patient_snapshots.end()) {
        from_beginning = true;
      } else {
        from = std::min(from, it->second.source_offset());
      }
    }
    for (auto& [patient, snapshot] : patient_snapshots) {
      Lane& lane = lanes_[std::hash<std::string>{}(patient) % lanes_.size()];
      PatientSlot& slot = Slot(lane, patient, p);
      slot.resume_offset = snapshot.source_offset();
      // Idle since at least the partition's newest record before the snapshot (an upper bound).
      slot.last_record_ms = record_time_ms;
      try {
        slot.analysis->Restore(snapshot);
        ++restored;
        for (const auto& part : slot.analysis->restore_fallbacks()) {
          spdlog::warn("patient {}: state part restarted fresh, the rest restored: {}",
                       PatientLogId(config_.logging.patient_hash_salt, patient), part);
        }
      } catch (const std::exception& e) {
        spdlog::error("patient {}: state snapshot not restorable ({}), starting fresh",
                      PatientLogId(config_.logging.patient_hash_salt, patient), e.what());
        slot.analysis = std::make_unique<PatientAnalysis>(patient, plan_);
      }
      slot.config_version = 0;  // re-applied at its next record
      slot.dirty = false;
    }
    if (from_beginning) {
      spdlog::warn(
          "partition {}: a patient has no restorable snapshot, re-reading from the "
          "beginning to {}",
          p, c);
      positions[p] = RdKafka::Topic::OFFSET_BEGINNING;
      state.replay_until = c;
      state.snapshot_floor = s;
      state.last_timestamp_ms = record_time_ms;
      partitions_[p] = state;
      continue;
    }
    spdlog::info(
        "partition {}: {} patients at offset {}, committed {}: {} records to re-analyse silently",
        p, patient_snapshots.size(), from, c, c - from);
    positions[p] = from;
    state.start_offset = from;
    state.snapshot_floor = s;
    state.replay_until = c;
    state.last_timestamp_ms = record_time_ms;
    partitions_[p] = state;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  metrics_.state_restore_seconds.Observe(seconds);
  spdlog::info("restored {} patients of {} partitions in {:.3f} s", restored, partitions.size(),
               seconds);
  return positions;
}

void StreamService::Impl::DropPartitions(const std::set<int32_t>& partitions) {
  for (auto& lane : lanes_) {
    for (auto it = lane.patients.begin(); it != lane.patients.end();) {
      if (partitions.count(it->second.partition)) {
        if (!it->second.hibernated.empty()) metrics_.patients_hibernated.Decrement();
        it = lane.patients.erase(it);
        metrics_.patients.Decrement();
      } else {
        ++it;
      }
    }
  }
  for (int32_t p : partitions) {
    partitions_.erase(p);
    metrics_.PartitionLag(p).Set(0);
  }
}

void StreamService::Impl::Recover(const std::string& why) {
  spdlog::warn("recovering every assigned partition from the state topic: {}", why);
  WaitIdle();
  std::set<int32_t> assigned;
  for (const auto& [p, part] : partitions_) assigned.insert(p);
  std::map<int32_t, int64_t> first_offsets;
  for (const auto& [p, part] : partitions_) first_offsets[p] = part.start_offset;
  DropPartitions(assigned);
  const auto positions = RestorePartitions({assigned.begin(), assigned.end()});
  for (const auto& [p, position] : positions) {
    int64_t offset = position;
    if (offset == RdKafka::Topic::OFFSET_INVALID) {
      // Nothing was ever committed: back to where this instance began reading.
      offset = first_offsets[p] >= 0                           ? first_offsets[p]
               : config_.kafka.auto_offset_reset == "earliest" ? RdKafka::Topic::OFFSET_BEGINNING
                                                               : RdKafka::Topic::OFFSET_END;
    }
    partitions_[p].start_offset = offset >= 0 ? offset : first_offsets[p];
    std::unique_ptr<RdKafka::TopicPartition> tp(
        RdKafka::TopicPartition::create(config_.topics.telemetry, p, offset));
    const auto err = consumer_->handle().seek(*tp, 10000);
    if (err != RdKafka::ERR_NO_ERROR) {
      throw kafka::KafkaError(fmt::format("seek partition {}: {}", p, RdKafka::err2str(err)), err,
                              false, false, true);
    }
  }
  if (paused_) {
    std::vector<RdKafka::TopicPartition*> assignment;
    consumer_->handle().assignment(assignment);
    consumer_->handle().resume(assignment);
    RdKafka::TopicPartition::destroy(assignment);
    paused_ = false;
  }
  BeginTransaction();
}

void StreamService::Impl::rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                                       std::vector<RdKafka::TopicPartition*>& partitions) {
  rebalanced_ = true;
  if (fatal_) {
    // Leaving after a fatal error: no more transactions, just let go.
    if (err == RdKafka::ERR__REVOKE_PARTITIONS) {
      std::unique_ptr<RdKafka::Error> e(consumer->incremental_unassign(partitions));
    }
    return;
  }
  std::vector<int32_t> numbers;
  for (const auto* tp : partitions) {
    if (tp->topic() == config_.topics.telemetry) numbers.push_back(tp->partition());
  }
  try {
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      metrics_.SetReady(false);
      WaitIdle();  // lanes must not touch their patient maps while restored patients go in
      const auto positions = RestorePartitions(numbers);
      for (auto* tp : partitions) {
        auto it = positions.find(tp->partition());
        if (it != positions.end()) tp->set_offset(it->second);
        partitions_[tp->partition()].start_offset = it != positions.end() ? it->second : -1;
      }
      std::unique_ptr<RdKafka::Error> error(consumer->incremental_assign(partitions));
      if (error)
        throw kafka::KafkaError("incremental_assign: " + error->str(), error->code(), false, false,
                                true);
      if (paused_) consumer->pause(partitions);
      metrics_.rebalances_assigned.Increment(static_cast<double>(numbers.size()));
      spdlog::info("assigned telemetry partitions [{}]", fmt::join(numbers, ", "));
    } else if (err == RdKafka::ERR__REVOKE_PARTITIONS) {
      const std::set<int32_t> revoked(numbers.begin(), numbers.end());
      const bool lost = consumer->assignment_lost();
      const bool attempt = !lost && transaction_open_;
      // The next owner restores these patients from what this commit writes.
      const bool committed = attempt && Commit(false, &revoked, !stop_.load());
      if (!attempt) WaitIdle();
      DropPartitions(revoked);
      std::unique_ptr<RdKafka::Error> error(consumer->incremental_unassign(partitions));
      metrics_.rebalances_revoked.Increment(static_cast<double>(numbers.size()));
      spdlog::info("{} telemetry partitions [{}]", lost ? "lost" : "revoked",
                   fmt::join(numbers, ", "));
      if (lost || (attempt && !committed)) {
        // What this instance did since the last commit is void: rebuild the partitions it keeps.
        if (transaction_open_) {
          producer_->AbortTransaction(30s);
          transaction_open_ = false;
          metrics_.transactions_aborted.Increment();
        }
        if (!stop_.load()) Recover(lost ? "partitions lost" : "commit on revocation failed");
      }
    } else {
      spdlog::error("rebalance error: {}", RdKafka::err2str(err));
      std::unique_ptr<RdKafka::Error> error(consumer->incremental_unassign(partitions));
    }
  } catch (const kafka::KafkaError& e) {
    if (e.fatal()) {
      spdlog::critical("fatal Kafka error during rebalance: {}", e.what());
      fatal_ = true;
      stop_ = true;
      return;
    }
    // Could not restore or commit: give the partitions back and try again at the next rebalance.
    spdlog::error("rebalance handling failed, retrying through recovery: {}", e.what());
    if (transaction_open_) {
      try {
        producer_->AbortTransaction(30s);
      } catch (const std::exception&) {
        fatal_ = true;
        stop_ = true;
        return;
      }
      transaction_open_ = false;
    }
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      std::unique_ptr<RdKafka::Error> error(consumer->incremental_assign(partitions));
      // Known to the recovery below, which restores them (and seeks) before anything of them is
      // analysed; if it cannot, the process stops rather than analyse them with empty state and
      // overwrite their good snapshots.
      for (const int32_t p : numbers) partitions_.try_emplace(p);
    }
    try {
      Recover(e.what());
    } catch (const std::exception& again) {
      spdlog::critical("recovery failed: {}", again.what());
      fatal_ = true;
      stop_ = true;
    }
  }
  metrics_.assigned_partitions.Set(static_cast<double>(partitions_.size()));
  metrics_.SetReady(!fatal_);
}

void StreamService::Impl::event_cb(RdKafka::Event& event) {
  switch (event.type()) {
    case RdKafka::Event::EVENT_STATS: {
      const auto stats = ParseKafkaStatistics(event.str(), config_.topics.telemetry);
      if (!stats) return;
      for (const auto& [key, value] : stats->counters) {
        metrics_.KafkaStatistic(key, stats->client).Set(value);
      }
      if (!stats->total_lag) return;
      for (const auto& [partition, lag] : stats->partition_lag)
        metrics_.PartitionLag(partition).Set(lag);
      metrics_.consumer_lag.Set(*stats->total_lag);
      return;
    }
    case RdKafka::Event::EVENT_ERROR:
      if (event.fatal()) {
        spdlog::critical("fatal Kafka client error: {}", event.str());
        fatal_ = true;
        stop_ = true;
      } else if (event.err() == RdKafka::ERR__AUTHENTICATION) {
        // librdkafka retries these forever; without this line a wrong password reads as a
        // generic "transport failure" at start-up (deploy/README.md, exit codes).
        spdlog::critical(
            "Kafka authentication failed: {} (check kafka.properties sasl.mechanisms, "
            "sasl.username and the password or its _file)",
            event.str());
      } else {
        spdlog::warn("Kafka client: {} ({})", event.str(), RdKafka::err2str(event.err()));
      }
      return;
    case RdKafka::Event::EVENT_LOG:
      // Error-level client logs carry the root cause that the API error hides (e.g. "Topic
      // authorization failed" behind a transaction's "Erroneous state"): operators need them.
      if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_ERROR) {
        spdlog::warn("librdkafka {}: {}", event.fac(), event.str());
      } else {
        spdlog::debug("librdkafka {}: {}", event.fac(), event.str());
      }
      return;
    default:
      return;
  }
}

// --- the run loop ------------------------------------------------------------------------------

namespace {
std::atomic<bool> g_signal_stop{false};
extern "C" void OnStopSignal(int) {
  g_signal_stop.store(true);
}
}  // namespace

int StreamService::Impl::Run() {
  metrics_.Serve(config_.metrics.bind_address, config_.metrics.port, config_.metrics.health_port);
  const auto& k = config_.kafka;
  const auto props = KafkaClientProperties(k);
  producer_ = std::make_unique<kafka::Producer>(props.producer, this);

  // The state topic must mirror the telemetry partitions: restore reads one partition.
  const int telemetry_partitions =
      kafka::PartitionCount(producer_->handle(), config_.topics.telemetry, 30s);
  const int state_partitions =
      kafka::PartitionCount(producer_->handle(), config_.topics.state, 30s);
  if (telemetry_partitions != state_partitions) {
    throw config::ConfigError(
        "topics.state", config_.topics.state,
        fmt::format("has {} partitions but {} has {}: they must be equal", state_partitions,
                    config_.topics.telemetry, telemetry_partitions));
  }
  // A restarted instance with the same transactional.id fences its predecessor and aborts the
  // transaction a crash left open.
  producer_->InitTransactions(60s);

  consumer_ = std::make_unique<kafka::Consumer>(props.consumer, this, this);

  config_reader_ = std::make_unique<kafka::Consumer>(props.patient_config);
  config_reader_->AssignAllFromBeginning(config_.topics.patient_config, 30s);

  spdlog::info("vigil run: group {}, instance {}, {} lanes, {} operators, bootstrap {}", k.group_id,
               k.instance_id, lanes_.size(), plan_->operators().size(), k.bootstrap_servers);
  consumer_->Subscribe({config_.topics.telemetry});
  last_snapshot_ = Clock::now();
  BeginTransaction();
  // Every patient's settings (alarm limits among them) are known before any of their telemetry
  // is analysed: the config topic is read to its end first (rejected ones are dead letters).
  const int config_partitions =
      kafka::PartitionCount(producer_->handle(), config_.topics.patient_config, 30s);
  size_t configs = 0;
  config_reader_->ReadToEnd(config_partitions, 30s, [&](const RdKafka::Message& m) {
    OnPatientConfig(kafka::ToRecord(m));
    ++configs;
  });
  spdlog::info("patient configuration read to its end: {} records", configs);

  const auto interval = std::chrono::milliseconds(config_.limits.transaction_interval_ms);
  int exit_code = 0;
  try {
    while (!stop_.load() && !g_signal_stop.load()) {
      liveness_->Turn();
      // Housekeeping once per batch, not per record: at tens of thousands of records per second
      // the per-call overhead of these polls is what limits the loop.
      PollPatientConfigs();
      UpdateBackpressure();
      producer_->Poll(0ms);
      // Paused: still call consume() (it serves rebalances), with a short wait instead of a spin.
      const int max_batch = paused_ ? 1 : 512;
      for (int batch = 0; batch < max_batch && !fatal_; ++batch) {
        if (!paused_ && InFlightFull()) break;  // backpressure next turn
        std::optional<kafka::Record> record;
        try {
          record = consumer_->Poll(paused_ ? 5ms : batch == 0 ? 50ms : 0ms);
        } catch (const kafka::KafkaError& e) {
          spdlog::warn("consumer: {}", e.what());
        }
        if (!record) break;
        metrics_.records_in.Increment();
        Dispatch(std::move(*record));
        if ((batch & 63) == 63 && Clock::now() - transaction_started_ >= interval) break;
      }
      if (fatal_) break;
      if (!transaction_open_) {
        Recover("no open transaction");
      } else if (lane_failed_.load() ||
                 (transaction_dirty_ && Clock::now() - transaction_started_ >= interval)) {
        if (!Commit(false)) Recover("transaction aborted");
      }
    }
  } catch (const kafka::KafkaError& e) {
    spdlog::critical("fatal Kafka error: {}", e.what());
    fatal_ = true;
  }
  if (fatal_) exit_code = 1;

  // Shutdown: finish or abort the open transaction, leave the group. A watchdog makes sure the
  // process is gone within limits.shutdown_timeout_ms whatever the broker does.
  spdlog::info("stopping: {}", fatal_ ? "fatal error" : "signal");
  metrics_.SetReady(false);
  const auto deadline = std::chrono::milliseconds(config_.limits.shutdown_timeout_ms);
  std::thread([deadline, code = fatal_ ? 1 : 0] {
    std::this_thread::sleep_for(deadline);
    spdlog::error("shutdown took longer than {} ms: exiting now", deadline.count());
    spdlog::default_logger()->flush();
    std::_Exit(code == 0 ? 3 : code);
  }).detach();
  stop_ = true;
  try {
    WaitIdle();
    if (!fatal_) {
      if (transaction_open_ && !Commit(true, nullptr, true)) {
        exit_code = 1;
        BeginTransaction();
      }
    }
    if (rebalanced_) {
      consumer_->Close();  // revocation commits the last offsets and snapshots
    } else {
      // Stopped before the group's first rebalance: nothing to commit or hand over, and
      // librdkafka 2.0's cooperative-sticky close asserts on an assignor that never ran.
      consumer_->Abandon();
    }
    if (transaction_open_ && !fatal_ && transaction_dirty_) {
      producer_->CommitTransaction(5s);  // e.g. dead letters of patient configs, no offsets
    }
    config_reader_->Close();
  } catch (const std::exception& e) {
    spdlog::error("shutdown: {}", e.what());
    exit_code = 1;
  }
  consumer_.reset();
  config_reader_.reset();
  spdlog::debug("consumers destroyed");
  producer_.reset();
  spdlog::info("stopped (exit {})", exit_code);
  return exit_code;
}

StreamService::StreamService(config::ServiceConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}
StreamService::~StreamService() = default;
int StreamService::Run() {
  return impl_->Run();
}
void StreamService::RequestStop() {
  impl_->RequestStop();
}

std::atomic<bool>& InstallStopSignals() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  return g_signal_stop;
}

}  // namespace vigil::service
