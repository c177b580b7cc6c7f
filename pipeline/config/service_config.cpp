#include "pipeline/config/service_config.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "pipeline/analysis/operator_registry.h"

extern char** environ;

namespace vigil::config {
namespace {

constexpr std::string_view kEnvPrefix = "VIGIL_";

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Replace(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// The environment variable of a scalar key.
std::string EnvName(std::string_view path) {
  return std::string(kEnvPrefix) + Upper(Replace(std::string(path), ".", "_"));
}

int ParseInt(const std::string& key, const std::string& value, long lo, long hi) {
  long v = 0;
  const auto* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, v);
  if (ec != std::errc() || ptr != end) throw ConfigError(key, value, "not an integer");
  if (v < lo || v > hi) throw ConfigError(key, value, fmt::format("must be in [{}, {}]", lo, hi));
  return static_cast<int>(v);
}

double ParseDouble(const std::string& key, const std::string& value, double lo, double hi) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(v)) {
    throw ConfigError(key, value, "not a finite number");
  }
  if (v < lo || v > hi) throw ConfigError(key, value, fmt::format("must be in [{}, {}]", lo, hi));
  return v;
}

bool ParseBool(const std::string& key, const std::string& value) {
  const auto v = Lower(value);
  if (v == "true" || v == "yes" || v == "1" || v == "on") return true;
  if (v == "false" || v == "no" || v == "0" || v == "off") return false;
  throw ConfigError(key, value, "not a boolean (true/false)");
}

// One scalar key: how to read it into the config and print it back.
struct Field {
  std::string path;
  std::function<void(ServiceConfig&, const std::string&)> set;
  std::function<std::string(const ServiceConfig&)> get;
};

template <typename Member>
Field StringField(std::string path, Member member, std::vector<std::string> allowed = {}) {
  return Field{
      path,
      [path, member, allowed](ServiceConfig& c, const std::string& v) {
        if (v.empty()) throw ConfigError(path, v, "must not be empty");
        if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
          throw ConfigError(path, v, fmt::format("must be one of {}", fmt::join(allowed, ", ")));
        }
        member(c) = v;
      },
      [member](const ServiceConfig& c) { return member(const_cast<ServiceConfig&>(c)); }};
}
template <typename Member>
Field IntField(std::string path, Member member, long lo, long hi) {
  return Field{path,
               [path, member, lo, hi](ServiceConfig& c, const std::string& v) {
                 member(c) = ParseInt(path, v, lo, hi);
               },
               [member](const ServiceConfig& c) {
                 return std::to_string(member(const_cast<ServiceConfig&>(c)));
               }};
}
template <typename Member>
Field DoubleField(std::string path, Member member, double lo, double hi) {
  return Field{path,
               [path, member, lo, hi](ServiceConfig& c, const std::string& v) {
                 member(c) = ParseDouble(path, v, lo, hi);
               },
               [member](const ServiceConfig& c) {
                 return fmt::format("{}", member(const_cast<ServiceConfig&>(c)));
               }};
}
template <typename Member>
Field BoolField(std::string path, Member member) {
  return Field{
      path,
      [path, member](ServiceConfig& c, const std::string& v) { member(c) = ParseBool(path, v); },
      [member](const ServiceConfig& c) {
        return member(const_cast<ServiceConfig&>(c)) ? std::string("true") : std::string("false");
      }};
}

#define VIGIL_MEMBER(expr)         \
  [](ServiceConfig & c) -> auto& { \
    return c.expr;                 \
  }

const std::vector<Field>& Fields() {
  static const std::vector<Field> fields = {
      StringField("kafka.bootstrap_servers", VIGIL_MEMBER(kafka.bootstrap_servers)),
      StringField("kafka.group_id", VIGIL_MEMBER(kafka.group_id)),
      StringField("kafka.instance_id", VIGIL_MEMBER(kafka.instance_id)),
      StringField("kafka.auto_offset_reset", VIGIL_MEMBER(kafka.auto_offset_reset),
                  {"earliest", "latest"}),
      IntField("kafka.session_timeout_ms", VIGIL_MEMBER(kafka.session_timeout_ms), 1000, 600000),
      IntField("kafka.transaction_timeout_ms", VIGIL_MEMBER(kafka.transaction_timeout_ms), 1000,
               900000),
      IntField("kafka.statistics_interval_ms", VIGIL_MEMBER(kafka.statistics_interval_ms), 0,
               3600000),
      StringField("topics.telemetry", VIGIL_MEMBER(topics.telemetry)),
      StringField("topics.alerts", VIGIL_MEMBER(topics.alerts)),
      StringField("topics.aggregates", VIGIL_MEMBER(topics.aggregates)),
      StringField("topics.dead_letter", VIGIL_MEMBER(topics.dead_letter)),
      StringField("topics.state", VIGIL_MEMBER(topics.state)),
      StringField("topics.patient_config", VIGIL_MEMBER(topics.patient_config)),
      IntField("analysis.alerts.max_raised_per_hour",
               VIGIL_MEMBER(analysis.alerts.max_raised_per_hour), 0, 100000),
      DoubleField("analysis.alerts.reopen_within_s", VIGIL_MEMBER(analysis.alerts.reopen_within_s),
                  0, 86400),
      DoubleField("analysis.alerts.latch_hold_s", VIGIL_MEMBER(analysis.alerts.latch_hold_s), 0,
                  86400),
      BoolField("analysis.alerts.technical_suppresses_clinical",
                VIGIL_MEMBER(analysis.alerts.technical_suppresses_clinical)),
      StringField("analysis.default_time_zone", VIGIL_MEMBER(analysis.default_time_zone)),
      StringField("analysis.af_model", VIGIL_MEMBER(analysis.af_model)),
      DoubleField("analysis.reorder_tolerance_s", VIGIL_MEMBER(analysis.reorder_tolerance_s), 0,
                  3600),
      DoubleField("analysis.gap_tolerance_s", VIGIL_MEMBER(analysis.gap_tolerance_s), 0, 3600),
      DoubleField("analysis.max_time_ahead_s", VIGIL_MEMBER(analysis.max_time_ahead_s), 1,
                  3660 * 86400.0),
      BoolField("analysis.minute_aggregates", VIGIL_MEMBER(analysis.minute_aggregates)),
      IntField("limits.lanes", VIGIL_MEMBER(limits.lanes), 0, 1024),
      IntField("limits.threads", VIGIL_MEMBER(limits.threads), 0, 1024),
      IntField("limits.max_in_flight_records", VIGIL_MEMBER(limits.max_in_flight_records), 1,
               1 << 20),
      IntField("limits.max_in_flight_bytes", VIGIL_MEMBER(limits.max_in_flight_bytes), 1L << 16,
               1L << 40),
      IntField("limits.pause_after_ms", VIGIL_MEMBER(limits.pause_after_ms), 0, 600000),
      IntField("limits.max_record_bytes", VIGIL_MEMBER(limits.max_record_bytes), 64, 1 << 30),
      IntField("limits.max_frames_per_record", VIGIL_MEMBER(limits.max_frames_per_record), 1,
               1 << 20),
      IntField("limits.max_samples_per_frame", VIGIL_MEMBER(limits.max_samples_per_frame), 1,
               1 << 26),
      IntField("limits.max_output_bytes", VIGIL_MEMBER(limits.max_output_bytes), 4096, 1 << 30),
      IntField("limits.dead_letter_value_bytes", VIGIL_MEMBER(limits.dead_letter_value_bytes), 0,
               1 << 30),
      IntField("limits.liveness_deadline_ms", VIGIL_MEMBER(limits.liveness_deadline_ms), 100,
               3600000),
      IntField("limits.transaction_interval_ms", VIGIL_MEMBER(limits.transaction_interval_ms), 10,
               600000),
      IntField("limits.snapshot_interval_ms", VIGIL_MEMBER(limits.snapshot_interval_ms), 10,
               86400000),
      DoubleField("limits.device_offline_after_s", VIGIL_MEMBER(limits.device_offline_after_s), 1,
                  7 * 86400),
      DoubleField("limits.device_check_interval_s", VIGIL_MEMBER(limits.device_check_interval_s),
                  0.1, 86400),
      DoubleField("limits.evict_idle_after_s", VIGIL_MEMBER(limits.evict_idle_after_s), 0,
                  30 * 86400),
      IntField("limits.shutdown_timeout_ms", VIGIL_MEMBER(limits.shutdown_timeout_ms), 100, 60000),
      StringField("metrics.bind_address", VIGIL_MEMBER(metrics.bind_address)),
      IntField("metrics.port", VIGIL_MEMBER(metrics.port), 0, 65535),
      IntField("metrics.health_port", VIGIL_MEMBER(metrics.health_port), 0, 65535),
      StringField("logging.level", VIGIL_MEMBER(logging.level),
                  {"trace", "debug", "info", "warn", "error", "critical", "off"}),
      StringField("logging.patient_hash_salt", VIGIL_MEMBER(logging.patient_hash_salt)),
      IntField("faults.restore_failures", VIGIL_MEMBER(faults.restore_failures), 0, 1000000),
  };
  return fields;
}
#undef VIGIL_MEMBER

// The free-form maps and the special operator section.
constexpr std::string_view kOperatorsPath = "analysis.operators";

kafka::Properties* PropertyMap(ServiceConfig& c, std::string_view path) {
  if (path == "kafka.properties") return &c.kafka.properties;
  if (path == "kafka.consumer_properties") return &c.kafka.consumer_properties;
  if (path == "kafka.producer_properties") return &c.kafka.producer_properties;
  return nullptr;
}
constexpr std::array<std::string_view, 3> kPropertyMaps = {
    "kafka.properties", "kafka.consumer_properties", "kafka.producer_properties"};

// Properties the service sets itself because exactly-once processing depends on them: offsets
// are committed inside the output transaction (an auto-commit would commit records whose
// outputs were never published), only committed records may be read (aborted outputs and
// state must stay invisible), and the transactional id is the instance's own (another value
// fences or is fenced by a different instance).
constexpr std::array<std::string_view, 3> kReservedProperties = {
    "enable.auto.commit", "isolation.level", "transactional.id"};

// librdkafka properties known to hold no secret, whose values --print-config, logs and errors
// show in clear. Every other property is redacted: an allow-list fails closed for the secrets
// a deny-list misses (ssl.key.pem, sasl.oauthbearer.config, a misspelt property) and for the
// properties librdkafka adds later.
constexpr std::string_view kPlainProperties[] = {"acks",
                                                 "allow.auto.create.topics",
                                                 "api.version.fallback.ms",
                                                 "api.version.request",
                                                 "api.version.request.timeout.ms",
                                                 "auto.commit.interval.ms",
                                                 "auto.offset.reset",
                                                 "batch.num.messages",
                                                 "batch.size",
                                                 "bootstrap.servers",
                                                 "broker.address.family",
                                                 "broker.address.ttl",
                                                 "broker.version.fallback",
                                                 "check.crcs",
                                                 "client.dns.lookup",
                                                 "client.id",
                                                 "client.rack",
                                                 "compression.codec",
                                                 "compression.level",
                                                 "compression.type",
                                                 "connections.max.idle.ms",
                                                 "debug",
                                                 "delivery.timeout.ms",
                                                 "enable.auto.commit",
                                                 "enable.gapless.guarantee",
                                                 "enable.idempotence",
                                                 "enable.partition.eof",
                                                 "enable.ssl.certificate.verification",
                                                 "fetch.error.backoff.ms",
                                                 "fetch.max.bytes",
                                                 "fetch.message.max.bytes",
                                                 "fetch.min.bytes",
                                                 "fetch.wait.max.ms",
                                                 "group.id",
                                                 "group.instance.id",
                                                 "group.protocol",
                                                 "group.remote.assignor",
                                                 "heartbeat.interval.ms",
                                                 "isolation.level",
                                                 "linger.ms",
                                                 "log.connection.close",
                                                 "log.queue",
                                                 "log.thread.name",
                                                 "log_level",
                                                 "max.in.flight",
                                                 "max.in.flight.requests.per.connection",
                                                 "max.partition.fetch.bytes",
                                                 "max.poll.interval.ms",
                                                 "message.copy.max.bytes",
                                                 "message.max.bytes",
                                                 "message.send.max.retries",
                                                 "message.timeout.ms",
                                                 "metadata.broker.list",
                                                 "metadata.max.age.ms",
                                                 "partition.assignment.strategy",
                                                 "partitioner",
                                                 "queue.buffering.max.kbytes",
                                                 "queue.buffering.max.messages",
                                                 "queue.buffering.max.ms",
                                                 "queued.max.messages.kbytes",
                                                 "queued.min.messages",
                                                 "receive.message.max.bytes",
                                                 "reconnect.backoff.max.ms",
                                                 "reconnect.backoff.ms",
                                                 "request.required.acks",
                                                 "request.timeout.ms",
                                                 "retries",
                                                 "retry.backoff.max.ms",
                                                 "retry.backoff.ms",
                                                 "sasl.kerberos.keytab",
                                                 "sasl.kerberos.min.time.before.relogin",
                                                 "sasl.kerberos.principal",
                                                 "sasl.kerberos.service.name",
                                                 "sasl.mechanism",
                                                 "sasl.mechanisms",
                                                 "sasl.oauthbearer.client.id",
                                                 "sasl.oauthbearer.method",
                                                 "sasl.oauthbearer.scope",
                                                 "sasl.oauthbearer.token.endpoint.url",
                                                 "sasl.username",
                                                 "security.protocol",
                                                 "session.timeout.ms",
                                                 "socket.connection.setup.timeout.ms",
                                                 "socket.keepalive.enable",
                                                 "socket.max.fails",
                                                 "socket.nagle.disable",
                                                 "socket.receive.buffer.bytes",
                                                 "socket.send.buffer.bytes",
                                                 "socket.timeout.ms",
                                                 "ssl.ca.certificate.stores",
                                                 "ssl.ca.location",
                                                 "ssl.certificate.location",
                                                 "ssl.cipher.suites",
                                                 "ssl.crl.location",
                                                 "ssl.curves.list",
                                                 "ssl.endpoint.identification.algorithm",
                                                 "ssl.key.location",
                                                 "ssl.keystore.location",
                                                 "ssl.sigalgs.list",
                                                 "statistics.interval.ms",
                                                 "sticky.partitioning.linger.ms",
                                                 "topic.metadata.refresh.interval.ms",
                                                 "topic.metadata.refresh.sparse",
                                                 "transaction.timeout.ms",
                                                 "transactional.id"};

// A property key ending in this names a file holding the value (ResolveSecretFiles).
constexpr std::string_view kFileSuffix = "_file";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Whether the value of configuration key `key` (a path such as "limits.lanes" or
// "kafka.properties.ssl.key.pem", possibly followed by " (from VIGIL_...)", or an environment
// variable name) may be shown in clear.
bool ShownInClear(std::string_view key) {
  key = key.substr(0, key.find(" (from "));
  if (key.rfind(kEnvPrefix, 0) == 0) return false;  // a variable no key claims: unknown content
  for (const auto map_path : kPropertyMaps) {
    if (key.size() > map_path.size() + 1 && key.substr(0, map_path.size()) == map_path &&
        key[map_path.size()] == '.') {
      const std::string_view property = key.substr(map_path.size() + 1);
      // The value of "<property>_file" is the path of the secret, not the secret.
      if (EndsWith(property, kFileSuffix)) return true;
      return std::find(std::begin(kPlainProperties), std::end(kPlainProperties), property) !=
             std::end(kPlainProperties);
    }
  }
  // Vigil's own keys (Fields()): the patient hash salt is the only secret among them.
  return key.find("salt") == std::string_view::npos &&
         key.find("password") == std::string_view::npos &&
         key.find("secret") == std::string_view::npos;
}

// Variables of the scripts and tests in this repository (deploy/local/*.sh, tests/), which share
// the prefix but configure no key; every other VIGIL_* variable must name a key.
bool IsToolingVariable(std::string_view name) {
  static constexpr std::string_view kTooling[] = {"VIGIL_BENCH_KAFKA_PORT",
                                                  "VIGIL_BINARY",
                                                  "VIGIL_BUILD_DIR",
                                                  "VIGIL_CACHE",
                                                  "VIGIL_KAFKA_DATA",
                                                  "VIGIL_KAFKA_HEAP",
                                                  "VIGIL_KAFKA_PORT",
                                                  "VIGIL_PROBE",
                                                  "VIGIL_PYTHON3",
                                                  "VIGIL_RHYTHM_PARAMETERS",
                                                  "VIGIL_ROOT",
                                                  "VIGIL_SHARED_DATA",
                                                  "VIGIL_SOURCE_DIR"};
  return name.rfind("VIGIL_TEST_", 0) == 0 ||
         std::find(std::begin(kTooling), std::end(kTooling), name) != std::end(kTooling);
}

std::string ScalarText(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) {
    throw ConfigError(path, YAML::Dump(node), "expected a single value, not a list or map");
  }
  return node.Scalar();
}

// Operators: "all" (every registered operator with defaults), a list of names, or a map
// name -> {parameter: value}.
void SetOperators(ServiceConfig& c, const YAML::Node& node) {
  const std::string path(kOperatorsPath);
  c.analysis.operators.clear();
  auto add = [&](const std::string& name) -> analysis::OperatorConfig& {
    if (!analysis::FindOperator(name)) {
      std::vector<std::string> known;
      for (const auto& e : analysis::Operators()) known.emplace_back(e.name);
      throw ConfigError(
          path + "." + name, name,
          fmt::format("unknown operator (known: {})",
                      known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
    }
    for (auto& op : c.analysis.operators) {
      if (op.name == name) return op;
    }
    c.analysis.operators.push_back({name, {}});
    return c.analysis.operators.back();
  };
  if (node.IsNull()) return;
  if (node.IsScalar()) {
    const std::string text = node.Scalar();
    if (text == "all") {
      for (const auto& e : analysis::Operators()) add(std::string(e.name));
      return;
    }
    if (text == "none" || text.empty()) return;
    size_t start = 0;
    while (start <= text.size()) {
      const size_t comma = std::min(text.find(',', start), text.size());
      const std::string name = text.substr(start, comma - start);
      if (!name.empty()) add(name);
      start = comma + 1;
    }
    return;
  }
  if (node.IsSequence()) {
    for (const auto& item : node) add(ScalarText(item, path));
    return;
  }
  for (const auto& entry : node) {
    const std::string name = entry.first.Scalar();
    auto& op = add(name);
    if (entry.second.IsNull()) continue;
    if (!entry.second.IsMap()) {
      throw ConfigError(path + "." + name, YAML::Dump(entry.second),
                        "expected a map of parameters");
    }
    for (const auto& param : entry.second) {
      const std::string key = path + "." + name + "." + param.first.Scalar();
      op.parameters[param.first.Scalar()] =
          ParseDouble(key, ScalarText(param.second, key), -1e300, 1e300);
    }
  }
}

void ApplyYaml(ServiceConfig& c, const YAML::Node& root) {
  if (root.IsNull()) return;
  if (!root.IsMap()) throw ConfigError("(top level)", YAML::Dump(root), "expected a map");
  const auto& fields = Fields();
  // Walks the tree; every leaf must be a known key.
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& node,
                                                                        const std::string& prefix) {
    for (const auto& entry : node) {
      const std::string path =
          prefix.empty() ? entry.first.Scalar() : prefix + "." + entry.first.Scalar();
      if (path == kOperatorsPath) {
        SetOperators(c, entry.second);
        continue;
      }
      if (auto* props = PropertyMap(c, path)) {
        if (entry.second.IsNull()) continue;
        if (!entry.second.IsMap())
          throw ConfigError(path, YAML::Dump(entry.second), "expected a map");
        for (const auto& p : entry.second) {
          (*props)[p.first.Scalar()] = ScalarText(p.second, path + "." + p.first.Scalar());
        }
        continue;
      }
      const auto field = std::find_if(fields.begin(), fields.end(),
                                      [&](const Field& f) { return f.path == path; });
      if (field != fields.end()) {
        field->set(c, ScalarText(entry.second, path));
        continue;
      }
      const bool is_section =
          std::any_of(fields.begin(), fields.end(),
                      [&](const Field& f) { return f.path.rfind(path + ".", 0) == 0; }) ||
          path == "kafka" || path == "analysis";
      if (is_section && entry.second.IsMap()) {
        walk(entry.second, path);
        continue;
      }
      throw ConfigError(path,
                        entry.second.IsScalar() ? entry.second.Scalar() : YAML::Dump(entry.second),
                        is_section ? "expected a map" : "unknown key");
    }
  };
  walk(root, "");
}

void ApplyEnvironment(ServiceConfig& c, const std::map<std::string, std::string>& env) {
  std::set<std::string> used;  // the variables a key claimed
  for (const auto& field : Fields()) {
    if (auto it = env.find(EnvName(field.path)); it != env.end()) {
      used.insert(it->first);
      try {
        field.set(c, it->second);
      } catch (const ConfigError& e) {
        throw ConfigError(fmt::format("{} (from {})", field.path, it->first), e.value(),
                          std::string(e.what()).substr(std::string(e.what()).rfind(": ") + 2));
      }
    }
  }
  if (auto it = env.find(EnvName(kOperatorsPath)); it != env.end()) {
    used.insert(it->first);
    SetOperators(c, YAML::Node(it->second));
  }
  for (const auto& [name, value] : env) {
    for (const auto map_path : kPropertyMaps) {
      const std::string prefix = EnvName(map_path) + "__";
      if (name.rfind(prefix, 0) == 0 && name.size() > prefix.size()) {
        used.insert(name);
        (*PropertyMap(c, map_path))[Lower(Replace(name.substr(prefix.size()), "__", "."))] = value;
      }
    }
    const std::string op_prefix = EnvName(kOperatorsPath) + "__";
    if (name.rfind(op_prefix, 0) == 0 && name.size() > op_prefix.size()) {
      used.insert(name);
      const std::string dotted = Lower(Replace(name.substr(op_prefix.size()), "__", "."));
      // The operator is the longest registered name that prefixes the key.
      const ops::OperatorSpec* match = nullptr;
      for (const auto& e : analysis::Operators()) {
        if (dotted.rfind(std::string(e.name) + ".", 0) == 0 &&
            (!match || e.name.size() > match->name.size())) {
          match = &e;
        }
      }
      const std::string key = std::string(kOperatorsPath) + "." + dotted;
      if (!match)
        throw ConfigError(fmt::format("{} (from {})", key, name), value, "unknown operator");
      const std::string op_name(match->name);
      auto it = std::find_if(c.analysis.operators.begin(), c.analysis.operators.end(),
                             [&](const auto& op) { return op.name == op_name; });
      if (it == c.analysis.operators.end()) {
        c.analysis.operators.push_back({op_name, {}});
        it = std::prev(c.analysis.operators.end());
      }
      it->parameters[dotted.substr(op_name.size() + 1)] = ParseDouble(key, value, -1e300, 1e300);
    }
  }
  // A misspelt variable (VIGIL_LIMIT_LANES) would otherwise leave its key at the default with
  // nobody told; it is refused like an unknown key in the file.
  for (const auto& [name, value] : env) {
    if (name.rfind(kEnvPrefix, 0) != 0 || used.count(name) || IsToolingVariable(name)) continue;
    throw ConfigError(name, value,
                      "no configuration key has this environment variable (misspelt? "
                      "--print-config lists every key with its variable)");
  }
}

// Secrets from files: a property key ending in "_file" (sasl.password_file, ssl.key.password_file)
// names a file whose content, without its trailing line break, becomes the value of the key
// without the suffix. This is how Kubernetes Secrets mounted as files and systemd credentials
// reach librdkafka without the secret itself in the YAML, the environment or a log line.

void ResolveSecretFiles(kafka::Properties& props, std::string_view map_path) {
  for (auto it = props.begin(); it != props.end();) {
    const std::string& key = it->first;
    if (key.size() <= kFileSuffix.size() ||
        key.compare(key.size() - kFileSuffix.size(), kFileSuffix.size(), kFileSuffix) != 0) {
      ++it;
      continue;
    }
    const std::string target = key.substr(0, key.size() - kFileSuffix.size());
    const std::string path = std::string(map_path) + "." + key;
    if (props.count(target)) {
      throw ConfigError(
          path, it->second,
          fmt::format("{}.{} is set too: set the value or the file, not both", map_path, target));
    }
    std::ifstream in(it->second, std::ios::binary);
    if (!in) throw ConfigError(path, it->second, "cannot read the file");
    std::ostringstream content;
    content << in.rdbuf();
    std::string value = content.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    if (value.empty()) throw ConfigError(path, it->second, "the file is empty");
    it = props.erase(it);
    props[target] = std::move(value);
  }
}

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

}  // namespace

ConfigError::ConfigError(std::string key, std::string value, const std::string& why)
    : std::invalid_argument(fmt::format("configuration key {} = {}: {}", key,
                                        ShownInClear(key) ? value : "<redacted>", why)),
      key_(std::move(key)),
      value_(std::move(value)) {}

ServiceConfig LoadServiceConfig(const std::filesystem::path& file,
                                const std::map<std::string, std::string>& env) {
  ServiceConfig c;
  // Default operator set: everything registered, with default parameters.
  for (const auto& e : analysis::Operators())
    c.analysis.operators.push_back({std::string(e.name), {}});
  if (!file.empty()) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(file.string());
    } catch (const YAML::BadFile&) {
      throw ConfigError("--config", file.string(), "cannot read the file");
    } catch (const YAML::Exception& e) {
      throw ConfigError("--config", file.string(), fmt::format("not valid YAML: {}", e.what()));
    }
    ApplyYaml(c, root);
  }
  ApplyEnvironment(c, env);
  for (const auto map_path : kPropertyMaps) ResolveSecretFiles(*PropertyMap(c, map_path), map_path);
  for (const auto map_path : kPropertyMaps) {
    for (const auto reserved : kReservedProperties) {
      const auto& props = *PropertyMap(c, map_path);
      if (auto it = props.find(std::string(reserved)); it != props.end()) {
        throw ConfigError(std::string(map_path) + "." + it->first, it->second,
                          "set by Vigil itself for exactly-once processing; it cannot be "
                          "overridden");
      }
    }
  }
  if (c.kafka.instance_id.empty()) c.kafka.instance_id = c.kafka.group_id + "-" + Hostname();
  if (c.limits.evict_idle_after_s > 0 &&
      c.limits.evict_idle_after_s <=
          c.limits.device_offline_after_s + c.limits.device_check_interval_s) {
    throw ConfigError(
        "limits.evict_idle_after_s", fmt::format("{}", c.limits.evict_idle_after_s),
        fmt::format("must be 0 or above limits.device_offline_after_s + "
                    "limits.device_check_interval_s ({} s): an idle patient's device-"
                    "offline alert comes first",
                    c.limits.device_offline_after_s + c.limits.device_check_interval_s));
  }
  if (c.limits.snapshot_interval_ms < c.limits.transaction_interval_ms) {
    throw ConfigError("limits.snapshot_interval_ms", std::to_string(c.limits.snapshot_interval_ms),
                      "must be >= limits.transaction_interval_ms");
  }
  // A producer that refuses what the service produces fails every transaction (a crash loop).
  for (const auto map_path : {"kafka.properties", "kafka.producer_properties"}) {
    const auto& props = *PropertyMap(c, map_path);
    const auto it = props.find("message.max.bytes");
    if (it == props.end()) continue;
    char* end = nullptr;
    const long long max = std::strtoll(it->second.c_str(), &end, 10);
    if (end != it->second.c_str() && *end == '\0' && max < c.limits.max_output_bytes + 4096LL) {
      throw ConfigError(std::string(map_path) + ".message.max.bytes", it->second,
                        fmt::format("must exceed limits.max_output_bytes ({}) by 4096 (headers and "
                                    "framing)",
                                    c.limits.max_output_bytes));
    }
  }
  // librdkafka validates the pass-through properties itself; do it now, not at first use.
  for (const auto map_path : kPropertyMaps) {
    for (const auto& [key, value] : *PropertyMap(c, map_path)) {
      try {
        kafka::MakeConf({{key, value}});
      } catch (const std::invalid_argument& e) {
        throw ConfigError(std::string(map_path) + "." + key, value, e.what());
      }
    }
  }
  return c;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos && entry.rfind(kEnvPrefix, 0) == 0) {
      env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
  }
  return env;
}

std::string DescribeConfig(const ServiceConfig& config) {
  std::string out;
  for (const auto& field : Fields()) {
    out += fmt::format("{:48} {:52} {}\n", field.path, EnvName(field.path),
                       ShownInClear(field.path) ? field.get(config) : "<redacted>");
  }
  for (const auto map_path : kPropertyMaps) {
    for (const auto& [key, value] : *PropertyMap(const_cast<ServiceConfig&>(config), map_path)) {
      out += fmt::format("{:48} {:52} {}\n", std::string(map_path) + "." + key,
                         EnvName(map_path) + "__" + Upper(Replace(key, ".", "__")),
                         ShownInClear(std::string(map_path) + "." + key) ? value : "<redacted>");
    }
  }
  for (const auto& op : config.analysis.operators) {
    out += fmt::format("{:48} {:52} enabled\n", std::string(kOperatorsPath) + "." + op.name,
                       EnvName(kOperatorsPath));
    // Every key of the operator: its configured value, else its default.
    const auto* spec = analysis::FindOperator(op.name);
    if (spec == nullptr) continue;
    for (const auto& parameter : spec->parameters) {
      const std::string path = std::string(kOperatorsPath) + "." + op.name + "." + parameter.key;
      const auto set = op.parameters.find(parameter.key);
      out += fmt::format(
          "{:48} {:52} {}\n", path,
          EnvName(kOperatorsPath) + "__" + Upper(Replace(op.name + "." + parameter.key, ".", "__")),
          set != op.parameters.end() ? fmt::format("{}", set->second)
                                     : fmt::format("{} (default)", parameter.default_value));
    }
    // A configured key the operator does not have (the start refuses it; shown so it is seen).
    for (const auto& [key, value] : op.parameters) {
      const std::string_view name = key;  // clang 14 cannot capture a structured binding
      const bool known = std::any_of(spec->parameters.begin(), spec->parameters.end(),
                                     [&](const auto& p) { return p.key == name; });
      if (known) continue;
      out += fmt::format(
          "{:48} {:52} {} (unknown parameter)\n",
          std::string(kOperatorsPath) + "." + op.name + "." + key,
          EnvName(kOperatorsPath) + "__" + Upper(Replace(op.name + "." + key, ".", "__")), value);
    }
  }
  return out;
}

}  // namespace vigil::config
