// Test-only helpers to drive one operator over constructed signals (header-only).
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "operators/core/event.h"
#include "operators/core/stream_operator.h"

namespace vigil::testing {

// One signal as evenly spaced samples; `gaps` are not modelled here (use separate Streams).
struct Stream {
  ops::Signal signal = ops::Signal::kUnknown;
  ops::TimeUs first_us = 0;
  double rate_hz = 1;
  std::vector<float> values;
};

// Feeds the streams in time order in chunks of `chunk_s`, then Finish(). Returns all events.
inline ops::Events Run(const ops::StreamOperator& op, ops::OperatorState& state,
                       const std::vector<Stream>& streams, double chunk_s = 10,
                       bool finish = true) {
  struct Piece {
    ops::TimeUs t;
    const Stream* s;
    size_t b, e;
  };
  std::vector<Piece> pieces;
  for (const auto& s : streams) {
    const size_t step = std::max<size_t>(1, static_cast<size_t>(chunk_s * s.rate_hz));
    for (size_t b = 0; b < s.values.size(); b += step) {
      pieces.push_back({ops::SampleTime(s.first_us, s.rate_hz, static_cast<int64_t>(b)), &s, b,
                        std::min(s.values.size(), b + step)});
    }
  }
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const Piece& a, const Piece& b) { return a.t < b.t; });
  ops::Events out;
  for (const auto& p : pieces) {
    ops::Chunk c;
    c.first_sample_us = p.t;
    c.sample_rate_hz = p.s->rate_hz;
    c.values = std::span<const float>(p.s->values.data() + p.b, p.e - p.b);
    op.Process(state, p.s->signal, c, out);
    op.AdvanceTo(state, c.end_us(), out);
  }
  if (finish) op.Finish(state, out);
  return out;
}

template <typename T>
std::vector<T> Only(const ops::Events& events) {
  std::vector<T> out;
  for (const auto& e : events) {
    if (const auto* x = std::get_if<T>(&e)) out.push_back(*x);
  }
  return out;
}

inline std::vector<ops::Episode> EpisodesOf(const ops::Events& events, ops::EpisodeKind kind,
                                            ops::Episode::Phase phase) {
  std::vector<ops::Episode> out;
  for (const auto& e : Only<ops::Episode>(events)) {
    if (e.kind == kind && e.phase == phase) out.push_back(e);
  }
  return out;
}

// A stable text form of events, to compare two runs (snapshot/restore equivalence).
inline std::string Describe(const ops::Events& events) {
  std::string s;
  for (const auto& e : events) {
    if (const auto* b = std::get_if<ops::Breath>(&e)) {
      s += fmt::format("B {} {} {:.4f} {:.4f}\n", b->start_us, b->end_us, b->tidal_volume_ml,
                       b->respiratory_rate_bpm);
    } else if (const auto* ep = std::get_if<ops::Episode>(&e)) {
      s += fmt::format("E {} {} {} {} {}\n", ops::EpisodeName(ep->kind),
                       static_cast<int>(ep->phase), ep->start_us, ep->end_us, ep->why.note);
    } else if (const auto* m = std::get_if<ops::Measurement>(&e)) {
      s += fmt::format("M {} {:.6f} {}\n", m->name, m->value, m->time_us);
    } else if (const auto* d = std::get_if<ops::TherapyDay>(&e)) {
      s += fmt::format("D {} {:.4f} {} {} {}\n", d->date, d->usage_min, d->sessions, d->start_us,
                       d->end_us);
    }
  }
  return s;
}

}  // namespace vigil::testing
