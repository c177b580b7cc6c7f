#include "support/service_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "pipeline/service/record_feed.h"
#include "pipeline/service/synthetic_telemetry.h"
#include "pipeline/service/telemetry_decoder.h"
#include "support/test_support.h"
#include "vigil/v1/aggregate.pb.h"
#include "vigil/v1/alert.pb.h"

namespace vigil::testing {

using namespace std::chrono_literals;

TopicSet CreateTestTopics(const std::string& prefix, int partitions,
                          const std::map<std::string, std::string>& telemetry_config) {
  TopicSet t;
  t.partitions = partitions;
  t.telemetry = prefix + ".telemetry";
  t.alerts = prefix + ".alerts";
  t.aggregates = prefix + ".aggregates";
  t.dead_letter = prefix + ".dlq";
  t.state = prefix + ".state";
  t.patient_config = prefix + ".patient-config";
  const std::map<std::string, std::string> compact = {{"cleanup.policy", "compact"}};
  kafka::CreateTopics({{"bootstrap.servers", KafkaBootstrap()}},
                      {{t.telemetry, partitions, 1, telemetry_config},
                       {t.alerts, partitions, 1, {}},
                       {t.aggregates, partitions, 1, {}},
                       {t.dead_letter, 1, 1, {}},
                       {t.state, partitions, 1, compact},
                       {t.patient_config, partitions, 1, compact}},
                      30s);
  return t;
}

namespace {
std::filesystem::path WorkDir() {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("vigil-tests-{}", getuid());
  std::filesystem::create_directories(dir);
  return dir;
}
}  // namespace

ServiceProcess::ServiceProcess(std::string name, const std::string& yaml,
                               std::map<std::string, std::string> env)
    : name_(std::move(name)) {
  const auto dir = WorkDir();
  const auto config = dir / (name_ + ".yaml");
  std::ofstream(config) << yaml;
  log_ = dir / (name_ + ".log");
  const std::string binary = VigilBinary().string();
  // Truncated here, before the child exists: a log left by an earlier run under the same name
  // must not be read as this process's (WaitForLog would find its lines at once).
  const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + log_.string());
  pid_ = fork();
  if (pid_ < 0) {
    close(fd);
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    execl(binary.c_str(), binary.c_str(), "run", "--config", config.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fd);
}

ServiceProcess::~ServiceProcess() {
  if (Running()) Kill();
}

bool ServiceProcess::Running() {
  if (status_ || pid_ <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return false;
  }
  return true;
}

void ServiceProcess::Kill() {
  if (!Running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  status_ = -SIGKILL;
}

std::optional<int> ServiceProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
  return status_;
}

std::optional<int> ServiceProcess::Terminate(std::chrono::milliseconds timeout,
                                             std::chrono::milliseconds* took) {
  const auto start = std::chrono::steady_clock::now();
  if (Running()) kill(pid_, SIGTERM);
  auto result = Wait(timeout);
  if (took) {
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start);
  }
  return result;
}

std::string ServiceProcess::Log() const {
  std::ifstream in(log_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool ServiceProcess::WaitForLog(const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Log().find(text) != std::string::npos) return true;
    if (!Running()) return Log().find(text) != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int RunVigil(const std::vector<std::string>& args, std::string* output,
             const std::map<std::string, std::string>& env) {
  const auto out = WorkDir() / UniqueName("vigil-out");
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    const std::string binary = VigilBinary().string();
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (output) {
    std::ifstream in(out);
    std::stringstream s;
    s << in.rdbuf();
    *output = s.str();
  }
  std::filesystem::remove(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string ServiceYaml(const TopicSet& topics, const std::string& group,
                        const std::string& instance, int metrics_port, const std::string& extra) {
  return fmt::format(R"(kafka:
  bootstrap_servers: {}
  group_id: {}
  instance_id: {}
  session_timeout_ms: 6000
  transaction_timeout_ms: 10000
  statistics_interval_ms: 1000
topics:
  telemetry: {}
  alerts: {}
  aggregates: {}
  dead_letter: {}
  state: {}
  patient_config: {}
limits:
  lanes: 2
  threads: 2
  transaction_interval_ms: 200
  snapshot_interval_ms: 1000
  shutdown_timeout_ms: 8000
metrics:
  bind_address: 127.0.0.1
  port: {}
  health_port: {}
logging:
  level: info
{})",
                     KafkaBootstrap(), group, instance, topics.telemetry, topics.alerts,
                     topics.aggregates, topics.dead_letter, topics.state, topics.patient_config,
                     metrics_port, metrics_port + 1, extra);
}

std::vector<v1::TelemetryEnvelope> SyntheticEnvelopes(const std::string& prefix, int patients,
                                                      double seconds, int drop_every) {
  service::SyntheticOptions options;
  options.patients = patients;
  options.seconds = seconds;
  options.patient_prefix = prefix;
  options.drop_every = drop_every;
  std::vector<v1::TelemetryEnvelope> out;
  service::GenerateTelemetry(options, [&](const v1::TelemetryEnvelope& e) { out.push_back(e); });
  return out;
}

void ProduceEnvelopes(const std::string& topic,
                      const std::vector<v1::TelemetryEnvelope>& envelopes) {
  std::vector<std::pair<std::string, std::string>> records;
  records.reserve(envelopes.size());
  for (const auto& e : envelopes) records.emplace_back(e.patient_id(), e.SerializeAsString());
  ProduceRaw(topic, records);
}

void ProduceRaw(const std::string& topic,
                const std::vector<std::pair<std::string, std::string>>& records,
                const kafka::Properties& properties) {
  kafka::Properties props = properties;
  props["bootstrap.servers"] = KafkaBootstrap();
  props["enable.idempotence"] = "true";
  props["linger.ms"] = "5";
  kafka::Producer producer(props);
  for (const auto& [key, value] : records) producer.Produce(topic, key, value);
  producer.Flush(60s);
}

std::vector<kafka::Record> ReadCommitted(const std::string& topic, std::chrono::milliseconds idle) {
  kafka::Consumer consumer({{"bootstrap.servers", KafkaBootstrap()},
                            {"group.id", UniqueName("reader")},
                            {"isolation.level", "read_committed"},
                            {"enable.auto.commit", "false"}});
  consumer.AssignAllFromBeginning(topic, 10s);
  auto records = consumer.ReadUntilIdle(idle);
  consumer.Close();
  return records;
}

bool WaitForGroupCaughtUp(const std::string& group, const std::string& topic,
                          std::chrono::milliseconds timeout) {
  kafka::Consumer probe({{"bootstrap.servers", KafkaBootstrap()},
                         {"group.id", group},
                         {"enable.auto.commit", "false"}});
  const int partitions = kafka::PartitionCount(probe.handle(), topic, 10s);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    bool done = true;
    std::vector<RdKafka::TopicPartition*> tps;
    for (int p = 0; p < partitions; ++p) tps.push_back(RdKafka::TopicPartition::create(topic, p));
    if (probe.handle().committed(tps, 5000) != RdKafka::ERR_NO_ERROR) done = false;
    for (auto* tp : tps) {
      int64_t low = 0, high = 0;
      probe.handle().query_watermark_offsets(topic, tp->partition(), &low, &high, 5000);
      const int64_t committed = tp->offset() < 0 ? 0 : tp->offset();
      if (committed < high) done = false;
    }
    RdKafka::TopicPartition::destroy(tps);
    if (done) {
      probe.Close();
      return true;
    }
    std::this_thread::sleep_for(200ms);
  }
  probe.Close();
  return false;
}

size_t PatientOutputs::total() const {
  size_t n = 0;
  for (const auto& [p, v] : alerts) n += v.size();
  for (const auto& [p, v] : aggregates) n += v.size();
  return n;
}

PatientOutputs OutputsFromTopics(const TopicSet& topics) {
  PatientOutputs out;
  // Records of one patient share a partition, so reading partition by partition keeps order.
  for (auto& r : ReadCommitted(topics.alerts))
    out.alerts[r.key.value_or("")].push_back(r.value.value_or(""));
  for (auto& r : ReadCommitted(topics.aggregates)) {
    out.aggregates[r.key.value_or("")].push_back(r.value.value_or(""));
  }
  return out;
}

PatientOutputs OfflineReference(const std::vector<kafka::Record>& telemetry,
                                const analysis::AnalysisConfig& config,
                                double device_offline_after_s) {
  auto plan = analysis::AnalysisPlan::Make(config);
  std::map<std::string, analysis::PatientAnalysis> patients;
  PatientOutputs out;
  service::DecodeLimits limits;
  // Per partition in offset order (ReadCommitted returns records partition-interleaved but each
  // partition in order, and a patient lives in one partition).
  for (const auto& record : telemetry) {
    auto decoded = service::DecodeTelemetry(record.key, record.value, limits);
    auto* d = std::get_if<service::DecodedRecord>(&decoded);
    if (!d) continue;
    auto it = patients.find(d->patient_id);
    if (it == patients.end())
      it = patients.emplace(d->patient_id, analysis::PatientAnalysis(d->patient_id, plan)).first;
    analysis::Outputs o;
    service::FeedRecord(*d, record.timestamp_ms * 1000, it->second, o);  // as the service does
    it->second.CheckDevicesOnline(record.timestamp_ms * 1000, device_offline_after_s, o);
    for (const auto& a : o.alerts) out.alerts[d->patient_id].push_back(a.SerializeAsString());
    for (const auto& g : o.aggregates)
      out.aggregates[d->patient_id].push_back(g.SerializeAsString());
  }
  return out;
}

int HttpGet(int port, const std::string& path, std::string* body) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  const std::string request = fmt::format("GET {} HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
  if (write(fd, request.data(), request.size()) < 0) {
    close(fd);
    return 0;
  }
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;)
    response.append(buffer, static_cast<size_t>(n));
  close(fd);
  int status = 0;
  if (std::sscanf(response.c_str(), "HTTP/%*s %d", &status) != 1) return 0;
  if (body) {
    const auto split = response.find("\r\n\r\n");
    *body = split == std::string::npos ? "" : response.substr(split + 4);
  }
  return status;
}

double MetricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return 0;
}

namespace {
bool CanBind(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Lowest port the kernel hands to outgoing connections (net.ipv4.ip_local_port_range).
int EphemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 32768;
  in >> low;
  return in ? low : 32768;
}
}  // namespace

int FreePort() {
  // Below the ephemeral range: a port from that range that is free now can be given to an
  // outgoing connection a moment later (a Kafka client's), and a service started or restarted
  // on it then fails to bind - seen once in CI as "cannot serve /healthz" on port + 1, which
  // the old choice (a port the kernel picked, plus the next one unchecked) never reserved.
  // The suites' fixed ports (brokers, Prometheus, deploy tests) lie below 20000.
  static std::mt19937 random(std::random_device{}());
  const int high = std::min(EphemeralLow(), 32768) - 2;
  if (high > 21000) {
    std::uniform_int_distribution<int> pick(20000, high);
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const int port = pick(random);
      if (CanBind(port) && CanBind(port + 1)) return port;
    }
  }
  // An unusual ephemeral range: let the kernel choose, and check the health port too.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    const int port = ntohs(addr.sin_port);
    close(fd);
    if (port < 65000 && CanBind(port + 1)) return port;
  }
  throw std::runtime_error("no two adjacent free loopback ports for metrics and health");
}

}  // namespace vigil::testing
