// The operator contract, checked for every registry entry automatically (a new operator is
// covered by its registry line): each gets every signal it declares, built here from simple
// physiological shapes with the events its rules look for (ectopic beats, an apnea, a leak, a
// CO2 rise, a pulse change, a desaturation, a therapy session across the noon that ends a
// night), and must
//   - give the same events when its state is snapshot mid-stream and restored into a new
//     instance (the old one destroyed first, as a plan change or a move to another machine does);
//   - give the same events whatever the chunk sizes;
//   - carry a restored state on under changed per-patient parameters, and snapshot it again.
// Bad options naming their key are checked in operator_spec_test.cpp.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "operators/core/stream_operator.h"
#include "pipeline/analysis/operator_registry.h"

namespace vigil::analysis {
namespace {

using ops::Signal;
using ops::TimeUs;

// 2026-01-01T10:45:00Z = 11:45 in Copenhagen: the run crosses the noon that ends a therapy
// night at 900 s, so the nightly rules (adherence, CO2, SpO2) close a night mid-run.
constexpr TimeUs kStartUs = 1'767'264'300'000'000;
constexpr double kSeconds = 1800;  // 30 min of every signal

struct Stream {
  Signal signal;
  double rate_hz;
  std::vector<float> values;
};

// 72 bpm with respiratory variation; every 17th beat early (an ectopic beat), the next late.
std::vector<double> BeatTimes() {
  std::vector<double> times = {0.5};
  for (int i = 1; times.back() < kSeconds + 2; ++i) {
    double rr = 0.83 + 0.04 * std::sin(0.3 * i);
    if (i % 17 == 0) rr *= 0.6;
    if (i % 17 == 1 && i > 1) rr *= 1.4;
    times.push_back(times.back() + rr);
  }
  return times;
}

// Every signal, deterministic; built once.
const std::map<Signal, Stream>& Signals() {
  static const std::map<Signal, Stream> signals = [] {
    std::map<Signal, Stream> out;
    const auto beats = BeatTimes();
    std::mt19937 noise(7);
    std::normal_distribution<float> n01(0, 1);
    auto add = [&](Signal s, double rate, auto f) {
      Stream st{s, rate, {}};
      const auto count = static_cast<size_t>(kSeconds * rate);
      st.values.resize(count);
      size_t b = 0;
      for (size_t i = 0; i < count; ++i) {
        const double t = static_cast<double>(i) / rate;
        while (b + 1 < beats.size() && beats[b + 1] <= t) ++b;
        st.values[i] = static_cast<float>(f(t, t - beats[b], static_cast<int>(b)));
      }
      out[s] = std::move(st);
    };
    add(Signal::kEcg, 250, [&](double, double since, int b) {
      const bool ectopic = b % 17 == 16;  // wide, tall, no P wave
      const double w = ectopic ? 0.045 : 0.012;
      double v = (ectopic ? 1.8 : 1.2) * std::exp(-since * since / (2 * w * w));
      v += 0.3 * std::exp(-std::pow(since - 0.25, 2) / (2 * 0.04 * 0.04));  // T
      const double next =
          beats[static_cast<size_t>(b) + 1] - (since + beats[static_cast<size_t>(b)]);
      if (!ectopic) v += 0.12 * std::exp(-std::pow(next - 0.16, 2) / (2 * 0.02 * 0.02));  // P
      return v + 0.01 * n01(noise);
    });
    // Pulses follow the beats by 0.25 s; their amplitude halves for two minutes.
    auto pulse = [](double t, double since, double scale) {
      const double a = (t > 900 && t < 1020) ? 0.5 : 1.0;
      const double x = since - 0.25;
      return scale * a * (x > 0 ? (1 - std::exp(-x / 0.05)) * std::exp(-x / 0.3) : 0);
    };
    add(Signal::kPlethysmogram, 125,
        [&](double t, double since, int) { return pulse(t, since, 100); });
    add(Signal::kArterialPressure, 125,
        [&](double t, double since, int) { return 80 + pulse(t, since, 50); });
    // Breathing at 15/min, an apnea at 600-625 s, shallow breaths at 1200-1230 s.
    auto flow = [](double t) {
      const double a = (t > 600 && t < 625) ? 0.02 : (t > 1200 && t < 1230) ? 0.4 : 1.0;
      return a * 30 * std::sin(2 * M_PI * t / 4);
    };
    add(Signal::kFlow, 25, [&](double t, double, int) { return flow(t) + 20; });
    add(Signal::kAirwayPressure, 25, [&](double t, double, int) {
      return (t < 60 ? 0.2 : 10.0) + 2 * std::sin(2 * M_PI * t / 4);
    });
    add(Signal::kSpo2, 1, [](double t, double, int) { return t > 630 && t < 660 ? 90.0 : 95.0; });
    add(Signal::kLeak, 0.5,
        [](double t, double, int) { return t > 1300 && t < 1400 ? 40.0 : 8.0; });
    // Capnogram: plateau of each expiration; end-tidal CO2 rising to 60 mmHg after 10 min.
    add(Signal::kCo2Waveform, 10, [](double t, double, int) {
      const double etco2 = t < 600 ? 45 : std::min(62.0, 45 + (t - 600) / 20);
      return std::fmod(t, 4) > 2 ? etco2 : 2.0;
    });
    add(Signal::kTranscutaneousCo2, 1,
        [](double t, double, int) { return t < 300 ? 44 : std::min(61.0, 44 + (t - 300) / 30); });
    return out;
  }();
  return signals;
}

std::string Describe(const ops::Event& event) {
  return std::visit(
      [](const auto& e) -> std::string {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, ops::Beat>) {
          return fmt::format("beat {} {} {} {:.9g} {:.9g}", e.time_us, e.sample,
                             static_cast<char>(e.label), e.rr_s, e.heart_rate_bpm);
        } else if constexpr (std::is_same_v<T, ops::Breath>) {
          return fmt::format("breath {} {} {:.9g} {:.9g} {:.9g} {:.9g}", e.start_us, e.end_us,
                             e.tidal_volume_ml, e.respiratory_rate_bpm, e.minute_ventilation_lpm,
                             e.end_tidal_co2_mm_hg.value_or(-1));
        } else if constexpr (std::is_same_v<T, ops::Episode>) {
          std::string s =
              fmt::format("episode {} {} {} {} {} {}", ops::EpisodeName(e.kind),
                          static_cast<int>(e.phase), e.start_us, e.end_us, e.why.rule, e.why.note);
          for (const auto& m : e.why.measures) s += fmt::format(" {}={:.17g}", m.name, m.value);
          for (const auto& l : e.why.limits)
            s += fmt::format(" {}{}{:.17g}", l.name, l.comparison, l.value);
          return s;
        } else if constexpr (std::is_same_v<T, ops::Measurement>) {
          return fmt::format("measurement {} {:.17g} {}", e.name, e.value, e.time_us);
        } else {
          return fmt::format("day {} {} {} {:.17g} {}", e.date, e.start_us, e.end_us, e.usage_min,
                             e.sessions);
        }
      },
      event);
}

// Feeds every input signal of `op` in time order, `chunk_s` seconds at a time (a schedule of
// sizes when `ragged`), session events around the therapy, then Finish. `pause_at_s`: stops
// there and returns (the caller continues with Continue).
class Feeder {
 public:
  Feeder(const ops::StreamOperator& op, double chunk_s, bool ragged, Signal left_out)
      : signals_(Signals()), chunk_s_(chunk_s), ragged_(ragged) {
    for (const auto s : op.inputs()) {
      if (signals_.count(s) && s != left_out) inputs_.push_back(s);
    }
  }
  bool fed_anything() const { return !inputs_.empty(); }

  // Feeds [now, until_s) to `op`/`state`; returns the events.
  std::vector<std::string> Run(const ops::StreamOperator& op, ops::OperatorState& state,
                               double until_s, bool finish) {
    ops::Events out;
    std::vector<std::string> described;
    while (now_s_ < until_s) {
      const double step =
          ragged_ ? chunk_s_ * (0.3 + 1.4 * ((steps_++ * 7) % 10) / 10.0) : chunk_s_;
      const double to = std::min(until_s, now_s_ + step);
      if (!session_started_) {
        op.OnDeviceEvent(state, {ops::DeviceEventView::Type::kSessionStart, kStartUs}, out);
        session_started_ = true;
      }
      for (const auto s : inputs_) {
        const auto& st = signals_.at(s);
        auto& pos = pos_[s];
        const auto end =
            std::min(st.values.size(), static_cast<size_t>(std::llround(to * st.rate_hz)));
        if (end <= pos) continue;
        ops::Chunk chunk;
        chunk.first_sample_us = ops::SampleTime(kStartUs, st.rate_hz, static_cast<int64_t>(pos));
        chunk.sample_rate_hz = st.rate_hz;
        chunk.values = std::span<const float>(st.values).subspan(pos, end - pos);
        op.Process(state, s, chunk, out);
        pos = end;
      }
      op.AdvanceTo(state, kStartUs + ops::FromSeconds(to), out);
      now_s_ = to;
    }
    if (finish) {
      op.OnDeviceEvent(
          state, {ops::DeviceEventView::Type::kSessionStop, kStartUs + ops::FromSeconds(kSeconds)},
          out);
      op.Finish(state, out);
    }
    for (const auto& e : out) described.push_back(Describe(e));
    return described;
  }

 private:
  const std::map<Signal, Stream>& signals_;
  std::vector<Signal> inputs_;
  std::map<Signal, size_t> pos_;
  double chunk_s_;
  bool ragged_;
  double now_s_ = 0;
  int steps_ = 0;
  bool session_started_ = false;
};

// A device streams one CO2 signal, the capnogram or transcutaneous CO2: an operator taking both
// merges their values in arrival order, so each is fed alone (kUnknown: nothing left out).
std::vector<Signal> LeftOut(const ops::OperatorSpec& spec) {
  const auto has = [&](Signal s) {
    return std::find(spec.inputs.begin(), spec.inputs.end(), s) != spec.inputs.end();
  };
  if (has(Signal::kCo2Waveform) && has(Signal::kTranscutaneousCo2)) {
    return {Signal::kCo2Waveform, Signal::kTranscutaneousCo2};
  }
  return {Signal::kUnknown};
}

std::vector<std::string> Uninterrupted(const ops::OperatorSpec& spec, double chunk_s, bool ragged,
                                       Signal left_out) {
  const auto op = spec.make({}, {});
  Feeder feed(*op, chunk_s, ragged, left_out);
  auto state = op->MakeState();
  return feed.Run(*op, *state, kSeconds, true);
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  const ops::OperatorSpec& spec() const { return *FindOperator(GetParam()); }
};

TEST_P(Conformance, SnapshotRestoreMidStreamIntoANewInstanceEqualsTheUninterruptedRun) {
  for (const auto left_out : LeftOut(spec())) {
    const auto reference = Uninterrupted(spec(), 1.0, false, left_out);
    ASSERT_FALSE(reference.empty())
        << spec().name << " emitted nothing: the comparison would be void";
    for (const double cut_s : {137.0, 911.0}) {
      auto first = spec().make({}, {});
      Feeder feed(*first, 1.0, false, left_out);
      auto state = first->MakeState();
      auto events = feed.Run(*first, *state, cut_s, false);
      const std::string bytes = state->Snapshot();
      state.reset();
      first.reset();  // nothing of the old instance may be reached from the restored state
      // The same parameters, written out: a new instance, as a plan change or another machine has.
      ops::Parameters explicit_defaults;
      for (const auto& p : spec().parameters) explicit_defaults[p.key] = p.default_value;
      const auto second = spec().make(explicit_defaults, {});
      auto restored = second->MakeState();
      restored->Restore(bytes);
      EXPECT_EQ(restored->Snapshot(), bytes) << "restore then snapshot changed the state";
      events = Concat(std::move(events), feed.Run(*second, *restored, kSeconds, true));
      ASSERT_EQ(events.size(), reference.size()) << "cut at " << cut_s << " s";
      for (size_t i = 0; i < events.size(); ++i) {
        ASSERT_EQ(events[i], reference[i]) << "event " << i << ", cut at " << cut_s << " s";
      }
    }
  }
}

TEST_P(Conformance, OutputDoesNotDependOnChunkSizes) {
  for (const auto left_out : LeftOut(spec())) {
    const auto reference = Uninterrupted(spec(), 1.0, false, left_out);
    ASSERT_FALSE(reference.empty());
    for (const auto& [chunk_s, ragged] :
         {std::pair{0.25, false}, std::pair{5.0, false}, std::pair{0.8, true}}) {
      auto events = Uninterrupted(spec(), chunk_s, ragged, left_out);
      // Events of one call come in the operator's order; across calls the order of events of
      // different times may differ, so both are compared as sorted lists.
      auto sorted_ref = reference;
      std::sort(sorted_ref.begin(), sorted_ref.end());
      std::sort(events.begin(), events.end());
      EXPECT_EQ(events, sorted_ref)
          << "chunks of " << chunk_s << " s" << (ragged ? " (ragged)" : "") << ", without "
          << ops::SignalName(left_out);
    }
  }
}

TEST_P(Conformance, RestoredStateCarriesOnUnderChangedParameters) {
  // A key moved within its valid values, one at a time: the state of the old parameters goes on
  // under the new ones (a per-patient override arriving mid-stream) and snapshots again.
  for (size_t k = 0; k < spec().parameters.size(); k += 3) {
    const auto& p = spec().parameters[k];
    double changed = p.kind == ops::ValueKind::kFlag ? 1 - p.default_value
                     : p.default_value < p.hi        ? std::min(p.hi, p.default_value + 1)
                                                     : p.lo;
    if (p.kind == ops::ValueKind::kReal && p.default_value < p.hi) {
      changed = p.default_value + 0.5 * (p.hi - p.default_value);
    }
    std::unique_ptr<const ops::StreamOperator> op2;
    try {
      op2 = spec().make({{p.key, changed}}, {});
    } catch (const ops::OptionError&) {
      continue;  // valid alone but not with the other defaults (a cross-key rule)
    }
    auto first = spec().make({}, {});
    Feeder feed(*first, 1.0, false, Signal::kUnknown);
    auto state = first->MakeState();
    feed.Run(*first, *state, 600, false);
    const std::string bytes = state->Snapshot();
    state.reset();
    first.reset();
    auto moved = op2->MakeState();
    ASSERT_NO_THROW(moved->Restore(bytes))
        << p.key << " = " << changed << ": a state of the old parameters was refused";
    EXPECT_NO_THROW(feed.Run(*op2, *moved, kSeconds, true)) << p.key << " = " << changed;
    const auto again = moved->Snapshot();
    auto check = op2->MakeState();
    EXPECT_NO_THROW(check->Restore(again)) << p.key << " = " << changed;
  }
}

std::vector<std::string> Names() {
  std::vector<std::string> names;
  for (const auto& spec : Operators()) names.emplace_back(spec.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Registry, Conformance, ::testing::ValuesIn(Names()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           for (auto& c : name)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

}  // namespace
}  // namespace vigil::analysis
