// Pause (no QRS for more than `pause_s`, 3 s: the Holter criterion RR > 3 s) and asystole (no
// QRS for `asystole_s`, 4 s: EDAN / Philips defaults, within IEC 60601-2-27's 10 s) while the
// signal is present and usable. Time without a QRS is counted from the latest of: the last
// beat, the end of unusable signal (gap, lead off, flat line, saturation, noise - where a QRS
// may have been missed, so its absence proves nothing) and the end of a fibrillatory window
// (VF is not asystole), and of QRS-like activity the detector did not report (see
// BeatAbsenceOptions::activity_ratio). Both open as soon as that time reaches their limit, with the
// start set to that reference (normally the last beat), and close at the next beat, or when the
// signal becomes unusable (the condition can no longer be verified; the alert stage latches
// asystole).
#pragma once

#include "operators/core/event.h"
#include "operators/core/parameters.h"
#include "operators/core/snapshot.h"

namespace vigil::ecg {

struct BeatAbsenceOptions {
  double pause_s = 3.0;
  double asystole_s = 4.0;
  // A stretch without detected beats but with slopes (1-30 Hz band) of at least
  // min(`activity_ratio` x the patient's recent QRS slope, `activity_slope_mv_s`) holds QRS
  // complexes the detector missed (low amplitude, odd morphology, a detector that learnt its
  // levels on an artefact): it is not asystole. A real asystole keeps at most P waves (about
  // 0.1-0.25 mV over 40-60 ms, i.e. < 6 mV/s). The rhythm analyzer applies this rule through
  // OnUnusable.
  double activity_ratio = 0.3;
  double activity_slope_mv_s = 10.0;
  // Likewise a stretch whose band-passed (1-30 Hz) peak-to-peak reaches `activity_p2p_mv` is not
  // the near-silent signal of asystole (at most P waves of 0.1-0.25 mV): on MIT-BIH 116 the
  // complexes shrink for seconds within electrode artefact and the detector loses them.
  double activity_p2p_mv = 0.5;
  // A quality block whose raw baseline moves by at least `baseline_shift_mv` (mean of its last
  // fifth against its first) is not the still signal of asystole either: an amplifier
  // recovering from an artefact or a moving electrode, where a QRS can shrink below the
  // detector's reach (MIT-BIH 116 at 1355 s: 0.2 mV complexes on a baseline settling by
  // 1 mV/s after a 4 mV electrode jump). A lead with the heart stopped keeps at most P waves
  // (about 0.1-0.25 mV over 80-100 ms), which move a fifth-second mean far less.
  double baseline_shift_mv = 0.3;
};

// Keys "pause_s" and "asystole_*" of ecg.arrhythmia.
const ops::ParameterTable<BeatAbsenceOptions>& BeatAbsenceParameters();

class BeatAbsenceDetector {
 public:
  // Throws ops::OptionError naming the field and value.
  static BeatAbsenceDetector Make(const BeatAbsenceOptions& options);

  struct State {
    ops::TimeUs reference_us = -1;  // -1: nothing seen yet
    ops::TimeUs last_beat_us = -1;
    bool pause_open = false;
    bool asystole_open = false;
    ops::TimeUs open_start_us = 0;
    void Save(ops::SnapshotWriter& w) const;
    void Load(ops::SnapshotReader& r);
  };

  // The stream starts (or restarts after a gap) at `time_us`.
  void Start(State& state, ops::TimeUs time_us) const;
  void OnBeat(State& state, ops::TimeUs time_us, ops::Events& out) const;
  // Signal was unusable (or fibrillatory) up to `until_us`, starting at `from_us`.
  void OnUnusable(State& state, ops::TimeUs from_us, ops::TimeUs until_us, ops::Events& out) const;
  // Both beats and signal quality are known up to `now_us`.
  void AdvanceTo(State& state, ops::TimeUs now_us, ops::Events& out) const;
  void Stop(State& state, ops::TimeUs end_us, ops::Events& out) const;

 private:
  explicit BeatAbsenceDetector(const BeatAbsenceOptions& o) : options_(o) {}
  ops::Explanation Explain(bool asystole, double seconds) const;
  BeatAbsenceOptions options_;
};

}  // namespace vigil::ecg
