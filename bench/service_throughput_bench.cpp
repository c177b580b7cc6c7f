// Driver of bench/service_throughput.sh (the script starts the broker and `vigil run`; this
// program makes and measures the load):
//   topics  --bootstrap B --prefix P [--partitions 12]      create P.telemetry, P.alerts, ...
//   fill    --bootstrap B --topic T --patients N --seconds S  pre-fill synthetic telemetry
//   drain   --bootstrap B --topic T                          bare librdkafka consumer, records/s
//   watch   --metrics-port M --records N                     a running service until N processed
//   load    --bootstrap B --topic T --patients N --rate R --seconds S   steady live load
//   latency --metrics-port M                                 p50/p99 of end-to-end latency
// Every result is one line "key=value ..." for the script to collect.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/kafka/kafka_client.h"
#include "pipeline/service/synthetic_telemetry.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::map<std::string, std::string> Args(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 2; i + 1 < argc; i += 2) args[std::string(argv[i]).substr(2)] = argv[i + 1];
  return args;
}

std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = fmt::format("GET {} HTTP/1.0\r\n\r\n", path);
    if (write(fd, request.data(), request.size()) > 0) {
      char buffer[65536];
      for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;)
        response.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  return response;
}

double Metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return 0;
}

int Topics(std::map<std::string, std::string> a) {
  const int partitions = a.count("partitions") ? std::stoi(a["partitions"]) : 12;
  const std::string p = a["prefix"];
  const std::map<std::string, std::string> compact = {{"cleanup.policy", "compact"}};
  vigil::kafka::CreateTopics({{"bootstrap.servers", a["bootstrap"]}},
                             {{p + ".telemetry", partitions, 1, {}},
                              {p + ".alerts", partitions, 1, {}},
                              {p + ".aggregates", partitions, 1, {}},
                              {p + ".dlq", 1, 1, {}},
                              {p + ".state", partitions, 1, compact},
                              {p + ".patient-config", partitions, 1, compact}},
                             60s);
  std::cout << "topics=created prefix=" << p << " partitions=" << partitions << "\n";
  return 0;
}

int Fill(std::map<std::string, std::string> a) {
  vigil::service::SyntheticOptions options;
  options.patients = std::stoi(a["patients"]);
  options.seconds = std::stod(a["seconds"]);
  options.patient_prefix = a.count("prefix") ? a["prefix"] : "bench";
  vigil::kafka::Producer producer({{"bootstrap.servers", a["bootstrap"]},
                                   {"enable.idempotence", "true"},
                                   {"linger.ms", "20"},
                                   {"batch.size", "1000000"},
                                   {"compression.type", "lz4"}});
  uint64_t samples = 0, bytes = 0;
  std::string value;
  const auto start = Clock::now();
  const size_t records = vigil::service::GenerateTelemetry(
      options,
      [&](const vigil::v1::TelemetryEnvelope& e) {
        e.SerializeToString(&value);
        bytes += value.size();
        producer.Produce(a["topic"], e.patient_id(), value);
      },
      &samples);
  producer.Flush(300s);
  std::cout << fmt::format("fill_records={} fill_samples={} fill_bytes={} fill_seconds={:.1f}\n",
                           records, samples, bytes,
                           std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

int Drain(std::map<std::string, std::string> a) {
  const std::string topic = a["topic"];
  vigil::kafka::Consumer consumer({{"bootstrap.servers", a["bootstrap"]},
                                   {"group.id", fmt::format("bench-bare-{}", getpid())},
                                   {"enable.auto.commit", "false"},
                                   {"isolation.level", "read_committed"},
                                   {"queued.max.messages.kbytes", "16384"}});
  const int partitions = vigil::kafka::PartitionCount(consumer.handle(), topic, 30s);
  int64_t total = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    consumer.handle().query_watermark_offsets(topic, p, &low, &high, 10000);
    total += high - low;
  }
  consumer.AssignAllFromBeginning(topic, 30s);
  int64_t records = 0, bytes = 0;
  Clock::time_point first{};
  while (records < total) {
    std::unique_ptr<RdKafka::Message> m(consumer.handle().consume(1000));
    if (m->err() != RdKafka::ERR_NO_ERROR) continue;
    if (records == 0) first = Clock::now();
    ++records;
    bytes += static_cast<int64_t>(m->len());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - first).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
  std::cout << fmt::format(
      "bare_records={} bare_seconds={:.2f} bare_records_per_s={:.0f} bare_mb_per_s={:.1f} "
      "bare_cpu_s={:.2f} bare_records_per_cpu_s={:.0f}\n",
      records, seconds, static_cast<double>(records) / seconds,
      static_cast<double>(bytes) / seconds / 1e6, cpu, static_cast<double>(records) / cpu);
  consumer.Close();
  return 0;
}

int Watch(std::map<std::string, std::string> a) {
  const int port = std::stoi(a["metrics-port"]);
  const double target = std::stod(a["records"]);
  Clock::time_point first{};
  bool started = false;
  double samples = 0;
  const auto deadline =
      Clock::now() + std::chrono::seconds(a.count("timeout") ? std::stoi(a["timeout"]) : 1800);
  for (;;) {
    const std::string text = HttpGet(port, "/metrics");
    const double in = Metric(text, R"(vigil_events_total{event="records_in"})");
    const double processed = Metric(text, R"(vigil_events_total{event="records_processed"})");
    samples = Metric(text, R"(vigil_events_total{event="samples_in"})");
    if (!started && in > 0) {
      started = true;
      first = Clock::now();
    }
    if (processed >= target) break;
    if (Clock::now() > deadline) {
      std::cout << "service_timeout=1 processed=" << processed << "\n";
      return 1;
    }
    std::this_thread::sleep_for(100ms);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - first).count();
  std::cout << fmt::format(
      "service_records={:.0f} service_seconds={:.2f} service_records_per_s={:.0f} "
      "service_samples_per_s={:.0f}\n",
      target, seconds, target / seconds, samples / seconds);
  return 0;
}

int Load(std::map<std::string, std::string> a) {
  vigil::service::SyntheticOptions options;
  options.patients = std::stoi(a["patients"]);
  options.patient_prefix = a.count("prefix") ? a["prefix"] : "load";
  const double rate = std::stod(a["rate"]);
  const double seconds = std::stod(a["seconds"]);
  // Enough device time for the run: every patient sends one envelope per device second.
  options.seconds = std::ceil(rate * seconds / options.patients) + 1;
  vigil::kafka::Producer producer(
      {{"bootstrap.servers", a["bootstrap"]}, {"enable.idempotence", "true"}, {"linger.ms", "2"}});
  const auto start = Clock::now();
  size_t sent = 0;
  const size_t limit = static_cast<size_t>(rate * seconds);
  std::string value;
  vigil::service::GenerateTelemetry(options, [&](const vigil::v1::TelemetryEnvelope& e) {
    if (sent >= limit) return;
    const auto due = start + std::chrono::microseconds(
                                 static_cast<int64_t>(static_cast<double>(sent) / rate * 1e6));
    std::this_thread::sleep_until(due);
    e.SerializeToString(&value);
    producer.Produce(a["topic"], e.patient_id(), value);
    if (++sent % 256 == 0) producer.Poll(0ms);
  });
  producer.Flush(60s);
  std::cout << fmt::format("load_records={} load_seconds={:.1f}\n", sent,
                           std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

// Quantile of a Prometheus histogram by linear interpolation inside the bucket.
double Quantile(const std::vector<std::pair<double, double>>& buckets, double q) {
  const double total = buckets.back().second;
  const double rank = q * total;
  double lower = 0, below = 0;
  for (const auto& [le, count] : buckets) {
    if (count >= rank) {
      if (std::isinf(le)) return lower;
      return lower + (le - lower) * (count > below ? (rank - below) / (count - below) : 0);
    }
    lower = le;
    below = count;
  }
  return lower;
}

int Latency(std::map<std::string, std::string> a) {
  const std::string text = HttpGet(std::stoi(a["metrics-port"]), "/metrics");
  std::vector<std::pair<double, double>> buckets;
  std::istringstream in(text);
  const std::string prefix = R"(vigil_latency_seconds_bucket{kind="end_to_end",le=")";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    const auto quote = line.find('"', prefix.size());
    const std::string le = line.substr(prefix.size(), quote - prefix.size());
    buckets.emplace_back(le == "+Inf" ? INFINITY : std::stod(le),
                         std::stod(line.substr(line.rfind(' ') + 1)));
  }
  if (buckets.empty() || buckets.back().second == 0) {
    std::cout << "latency=none\n";
    return 1;
  }
  std::cout << fmt::format("latency_count={:.0f} latency_p50_ms={:.0f} latency_p99_ms={:.0f}\n",
                           buckets.back().second, Quantile(buckets, 0.5) * 1e3,
                           Quantile(buckets, 0.99) * 1e3);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr
        << "usage: service_throughput_bench topics|fill|drain|watch|load|latency --key value ...\n";
    return 2;
  }
  const std::string command = argv[1];
  auto args = Args(argc, argv);
  try {
    if (command == "topics") return Topics(args);
    if (command == "fill") return Fill(args);
    if (command == "drain") return Drain(args);
    if (command == "watch") return Watch(args);
    if (command == "load") return Load(args);
    if (command == "latency") return Latency(args);
  } catch (const std::exception& e) {
    std::cerr << command << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << "unknown command " << command << "\n";
  return 2;
}
