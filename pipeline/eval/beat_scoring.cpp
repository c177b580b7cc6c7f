#include "pipeline/eval/beat_scoring.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

namespace vigil::eval {
namespace {

constexpr int kVfOn = 32;   // WFDB VFON "["
constexpr int kVfOff = 33;  // WFDB VFOFF "]"

double Ratio(int64_t num, int64_t den) {
  return den == 0 ? std::numeric_limits<double>::quiet_NaN()
                  : 100.0 * static_cast<double>(num) / static_cast<double>(den);
}

struct Excluded {
  std::vector<std::pair<int64_t, int64_t>> ranges;  // [from, to)
  bool Contains(int64_t s) const {
    for (const auto& [a, b] : ranges) {
      if (s >= a && s < b) return true;
    }
    return false;
  }
};

}  // namespace

BeatCounts& BeatCounts::operator+=(const BeatCounts& o) {
  tp += o.tp;
  fn += o.fn;
  fp += o.fp;
  v_tp += o.v_tp;
  v_fn += o.v_fn;
  v_fp += o.v_fp;
  ref_beats += o.ref_beats;
  return *this;
}
double BeatCounts::Se() const {
  return Ratio(tp, tp + fn);
}
double BeatCounts::PPlus() const {
  return Ratio(tp, tp + fp);
}
double BeatCounts::VSe() const {
  return Ratio(v_tp, v_tp + v_fn);
}
double BeatCounts::VPPlus() const {
  return Ratio(v_tp, v_tp + v_fp);
}

BeatCounts ScoreBeats(const std::vector<io::WfdbAnnotation>& reference, std::vector<TestBeat> test,
                      double fs, const BeatScoringOptions& options) {
  const auto start = static_cast<int64_t>(std::llround(options.start_s * fs));
  const auto window = static_cast<int64_t>(std::llround(options.match_window_s * fs));

  Excluded vf;
  int64_t vf_start = -1;
  struct Ref {
    int64_t sample;
    char cls;
  };
  std::vector<Ref> refs;
  for (const auto& a : reference) {
    if (a.code == kVfOn) {
      vf_start = a.sample;
    } else if (a.code == kVfOff && vf_start >= 0) {
      vf.ranges.push_back({vf_start, a.sample + 1});
      vf_start = -1;
    } else if (a.IsBeat()) {
      refs.push_back({a.sample, a.AamiClass()});
    }
  }
  if (vf_start >= 0) vf.ranges.push_back({vf_start, std::numeric_limits<int64_t>::max()});
  std::erase_if(refs, [&](const Ref& r) { return r.sample < start || vf.Contains(r.sample); });
  std::sort(refs.begin(), refs.end(),
            [](const Ref& a, const Ref& b) { return a.sample < b.sample; });
  // A test beat just before `start` may match a reference beat just after it: keep test beats
  // from start - window and drop the unmatched ones before `start` afterwards.
  std::erase_if(
      test, [&](const TestBeat& t) { return t.sample < start - window || vf.Contains(t.sample); });
  std::sort(test.begin(), test.end(),
            [](const TestBeat& a, const TestBeat& b) { return a.sample < b.sample; });

  // Candidate pairs within the window, matched closest first.
  std::vector<std::tuple<int64_t, size_t, size_t>> pairs;  // |dt|, ref, test
  size_t lo = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    while (lo < test.size() && test[lo].sample < refs[i].sample - window) ++lo;
    for (size_t j = lo; j < test.size() && test[j].sample <= refs[i].sample + window; ++j) {
      pairs.emplace_back(std::abs(test[j].sample - refs[i].sample), i, j);
    }
  }
  std::sort(pairs.begin(), pairs.end());
  std::vector<int64_t> ref_match(refs.size(), -1), test_match(test.size(), -1);
  for (const auto& [dt, i, j] : pairs) {
    if (ref_match[i] < 0 && test_match[j] < 0) {
      ref_match[i] = static_cast<int64_t>(j);
      test_match[j] = static_cast<int64_t>(i);
    }
  }

  BeatCounts c;
  c.ref_beats = static_cast<int64_t>(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    const bool ref_v = refs[i].cls == 'V';
    if (ref_match[i] < 0) {
      ++c.fn;
      if (ref_v) ++c.v_fn;
      continue;
    }
    ++c.tp;
    const bool test_v = test[static_cast<size_t>(ref_match[i])].label == 'V';
    if (ref_v && test_v) ++c.v_tp;
    if (ref_v && !test_v) ++c.v_fn;
    if (!ref_v && test_v && refs[i].cls != 'F' && refs[i].cls != 'Q') ++c.v_fp;
  }
  for (size_t j = 0; j < test.size(); ++j) {
    if (test_match[j] >= 0 || test[j].sample < start) continue;
    ++c.fp;
    if (test[j].label == 'V') ++c.v_fp;
  }
  return c;
}

bool IsPacedRecord(const std::string& record_name) {
  return record_name == "102" || record_name == "104" || record_name == "107" ||
         record_name == "217";
}

}  // namespace vigil::eval
