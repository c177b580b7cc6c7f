#include "operators/ecg/episode_tracker.h"

#include <utility>

namespace vigil::ecg {

EpisodeTracker::Change EpisodeTracker::Present(ops::TimeUs from_us, ops::TimeUs to_us,
                                               ops::TimeUs min_duration_us) {
  if (!in_run) {
    in_run = true;
    run_start_us = from_us;
  }
  if (to_us > last_seen_us) last_seen_us = to_us;
  if (!open && last_seen_us - run_start_us >= min_duration_us) {
    open = true;
    return Change::kOpened;
  }
  return Change::kNone;
}

EpisodeTracker::Change EpisodeTracker::Absent(ops::TimeUs now_us, ops::TimeUs clear_after_us) {
  if (!in_run || now_us - last_seen_us < clear_after_us) return Change::kNone;
  return Stop();
}

EpisodeTracker::Change EpisodeTracker::Stop() {
  const bool was_open = open;
  in_run = false;
  open = false;
  return was_open ? Change::kClosed : Change::kNone;
}

void EpisodeTracker::Save(ops::SnapshotWriter& w) const {
  w.Put<uint8_t>(in_run);
  w.Put<uint8_t>(open);
  w.Put<int64_t>(run_start_us);
  w.Put<int64_t>(last_seen_us);
}

void EpisodeTracker::Load(ops::SnapshotReader& r) {
  in_run = r.Get<uint8_t>() != 0;
  open = r.Get<uint8_t>() != 0;
  run_start_us = r.Get<int64_t>();
  last_seen_us = r.Get<int64_t>();
}

ops::Episode MakeEpisode(ops::EpisodeKind kind, ops::Episode::Phase phase, ops::TimeUs start_us,
                         ops::TimeUs end_us, ops::Explanation why) {
  ops::Episode e;
  e.kind = kind;
  e.phase = phase;
  e.start_us = start_us;
  e.end_us = phase == ops::Episode::Phase::kClosed ? end_us : 0;
  e.why = std::move(why);
  return e;
}

}  // namespace vigil::ecg
