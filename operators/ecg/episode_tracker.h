// Turns a condition that is sampled over time (per beat or per analysis block) into episodes:
// opened once the condition has held for `min_duration` (with its true start, in the past),
// closed once it has been absent for `clear_after` (with the end of its last occurrence).
// The hysteresis in time is what keeps a condition that flickers around a threshold from
// flooding the alert stage with one episode per flicker.
//
// Plain data with value semantics; one tracker per condition inside a detector's state.
#pragma once

#include <optional>

#include "operators/core/event.h"
#include "operators/core/snapshot.h"
#include "operators/core/time.h"

namespace vigil::ecg {

struct EpisodeTracker {
  enum class Change { kNone, kOpened, kClosed };

  bool in_run = false;  // the condition was seen and has not been absent for clear_after
  bool open = false;    // the run lasted min_duration: an episode was emitted
  ops::TimeUs run_start_us = 0;
  ops::TimeUs last_seen_us = 0;  // end of the last observation that met the condition

  // The condition held over [from_us, to_us]. Returns kOpened when this makes the run an episode.
  Change Present(ops::TimeUs from_us, ops::TimeUs to_us, ops::TimeUs min_duration_us);
  // The condition did not hold up to `now_us`. Returns kClosed when the episode ends (its end
  // is last_seen_us).
  Change Absent(ops::TimeUs now_us, ops::TimeUs clear_after_us);
  // Ends the run at once (gap, end of recording). Returns kClosed if an episode was open.
  Change Stop();

  void Save(ops::SnapshotWriter& w) const;
  void Load(ops::SnapshotReader& r);
};

// An episode event with an explanation.
ops::Episode MakeEpisode(ops::EpisodeKind kind, ops::Episode::Phase phase, ops::TimeUs start_us,
                         ops::TimeUs end_us, ops::Explanation why);

}  // namespace vigil::ecg
