#include "pipeline/report/report_command.h"

#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "pipeline/analysis/frame_decoder.h"
#include "pipeline/config/service_config.h"
#include "pipeline/replay/offline_replay.h"
#include "pipeline/report/html_report.h"
#include "pipeline/report/kafka_report.h"

namespace vigil::report {
namespace {

bool IsArrhythmia(v1::Condition c) {
  switch (c) {
    case v1::CONDITION_ASYSTOLE:
    case v1::CONDITION_PAUSE:
    case v1::CONDITION_BRADYCARDIA:
    case v1::CONDITION_EXTREME_BRADYCARDIA:
    case v1::CONDITION_TACHYCARDIA:
    case v1::CONDITION_EXTREME_TACHYCARDIA:
    case v1::CONDITION_VENTRICULAR_TACHYCARDIA:
    case v1::CONDITION_VENTRICULAR_FIBRILLATION:
    case v1::CONDITION_ATRIAL_FIBRILLATION:
      return true;
    default:
      return false;
  }
}

constexpr double kStripBeforeS = 4;
constexpr double kStripAfterS = 8;
constexpr size_t kMaxStrips = 40;

}  // namespace

ReportData CollectOffline(replay::TelemetrySource& source,
                          std::shared_ptr<const analysis::AnalysisPlan> plan,
                          const std::string& patient_id) {
  ReportData data;
  data.patient_id = patient_id;
  data.source = "offline analysis of " + source.description();
  data.time_zone = plan->config().default_time_zone;
  analysis::PatientAnalysis patient(patient_id, plan);
  analysis::Outputs out;
  std::vector<ops::Beat> beats;
  // The analysed ECG lead, kept whole for the strips (a 30-min record at 360 Hz is 2.6 MB).
  std::string ecg_stream;
  ops::TimeUs ecg_start = 0;
  double ecg_rate = 0;
  std::vector<float> ecg;

  auto take = [&] {
    for (auto& e : out.events) {
      if (auto* b = std::get_if<ops::Beat>(&e)) beats.push_back(*b);
      if (auto* ep = std::get_if<ops::Episode>(&e);
          ep && ep->phase == ops::Episode::Phase::kClosed) {
        data.episodes.push_back(*ep);
      }
    }
    for (auto& a : out.alerts) data.alerts.push_back(std::move(a));
    for (auto& g : out.aggregates) {
      switch (g.window()) {
        case v1::WINDOW_KIND_MINUTE:
          data.minutes.push_back(std::move(g));
          break;
        case v1::WINDOW_KIND_THERAPY_DAY:
          data.days.push_back(std::move(g));
          break;
        case v1::WINDOW_KIND_ROLLING_30_DAYS:
          data.rolling.push_back(std::move(g));
          break;
        default:
          break;
      }
    }
    out.clear();
  };

  v1::TelemetryEnvelope envelope;
  while (source.Next(envelope)) {
    replay::FeedEnvelope(envelope, patient, out, [&](const service::DecodedFrame& f) {
      if (f.signal != ops::Signal::kEcg) return;
      const std::string key = fmt::format("{}|{}", f.device_id, f.lead);
      if (ecg_stream.empty()) {
        ecg_stream = key;
        ecg_start = f.first_sample_us;
        ecg_rate = f.sample_rate_hz;
      }
      if (key == ecg_stream) ecg.insert(ecg.end(), f.values.begin(), f.values.end());
    });
    take();
  }
  patient.Finish(out);
  take();

  for (const auto& a : data.alerts) {
    if (a.state() != v1::ALERT_STATE_RAISED || !IsArrhythmia(a.condition()) || ecg.empty())
      continue;
    if (data.strips.size() == kMaxStrips) break;
    const auto first = std::max<int64_t>(
        0, static_cast<int64_t>(ops::ToSeconds(a.onset_time_us() - ecg_start) * ecg_rate -
                                kStripBeforeS * ecg_rate));
    const auto last =
        std::min<int64_t>(static_cast<int64_t>(ecg.size()),
                          first + static_cast<int64_t>((kStripBeforeS + kStripAfterS) * ecg_rate));
    if (last <= first) continue;
    EcgStrip strip;
    strip.alert = a;
    strip.sample_rate_hz = ecg_rate;
    strip.start_us = ops::SampleTime(ecg_start, ecg_rate, first);
    strip.millivolts.assign(ecg.begin() + first, ecg.begin() + last);
    const ops::TimeUs end = ops::SampleTime(ecg_start, ecg_rate, last);
    for (const auto& b : beats) {
      if (b.time_us >= strip.start_us && b.time_us < end) strip.beats.push_back(b);
    }
    data.strips.push_back(std::move(strip));
  }
  return data;
}

void AddReportCommand(CLI::App& app) {
  struct Args {
    std::string recording, out = "report.html", patient = "replay-patient";
    std::string kafka, config;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "report",
      "Write a self-contained HTML report for a patient (ECG strips around alerts, "
      "night trends, adherence calendar), from a recording or from Kafka");
  cmd->add_option("recording", args->recording,
                  "Recording to analyse offline (WFDB record path without extension, or a card)");
  cmd->add_option("--patient", args->patient, "Pseudonymous patient id")->capture_default_str();
  cmd->add_option("--out", args->out, "Output HTML file")->capture_default_str();
  auto* kafka = cmd->add_option(
      "--kafka", args->kafka,
      "Read the patient's committed telemetry, alerts and aggregates from this Kafka cluster "
      "instead of a recording");
  auto* config = cmd->add_option(
      "--config", args->config,
      "With Kafka: the service's YAML (topics, client security settings, operator set and "
      "parameters, time zone; VIGIL_* variables override it, as for vigil run)");
  config->needs(kafka);
  cmd->callback([args] {
    try {
      if (args->recording.empty() == args->kafka.empty()) {
        throw std::invalid_argument(
            "give either a recording or --kafka <bootstrap> --patient <id>, not both");
      }
      ReportData data;
      if (!args->kafka.empty()) {
        config::ServiceConfig service;
        if (!args->config.empty()) {
          service = config::LoadServiceConfig(args->config, config::ProcessEnvironment());
        } else {
          service.analysis = replay::DefaultAnalysisConfig();
        }
        KafkaReportOptions options;
        options.properties = service.kafka.properties;
        options.properties["bootstrap.servers"] = args->kafka;
        options.telemetry_topic = service.topics.telemetry;
        options.alerts_topic = service.topics.alerts;
        options.aggregates_topic = service.topics.aggregates;
        KafkaReportStats stats;
        data = CollectFromKafka(args->patient, analysis::AnalysisPlan::Make(service.analysis),
                                options, &stats);
        std::cerr << fmt::format(
            "{}: {} telemetry records ({} undecodable, skipped), {} published alert records, {} "
            "aggregates\n",
            args->patient, stats.telemetry_records, stats.undecodable_records,
            stats.published_alerts, stats.published_aggregates);
      } else {
        replay::SourceOptions options;
        options.patient_id = args->patient;
        auto source = replay::OpenRecording(args->recording, options);
        auto plan = analysis::AnalysisPlan::Make(replay::DefaultAnalysisConfig());
        data = CollectOffline(*source, plan, args->patient);
      }
      std::ofstream file(args->out);
      file << RenderHtml(data);
      if (!file) throw std::runtime_error(args->out + ": cannot write");
      std::cerr << fmt::format("{}: {} alerts, {} ECG strips, {} minutes, {} therapy days\n",
                               args->out, data.alerts.size(), data.strips.size(),
                               data.minutes.size(), data.days.size());
    } catch (const config::ConfigError& e) {
      std::cerr << "vigil report: " << e.what() << "\n";
      throw CLI::RuntimeError(2);
    } catch (const std::exception& e) {
      std::cerr << "vigil report: " << e.what() << "\n";
      throw CLI::RuntimeError(2);
    }
  });
}

}  // namespace vigil::report
