// Snapshots of the previous release restore (tests/data/golden/README.md): an upgrade keeps
// every patient's ECG state instead of starting it afresh.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <numbers>
#include <vector>

#include "operators/ecg/ecg_monitor.h"
#include "support/test_support.h"

namespace {

using namespace vigil;

std::string Golden(const std::string& name) {
  const auto path = vigil::testing::SourceDir() / "tests/data/golden" / name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The generator's signal (make_ecg_arrhythmia_snapshot.cpp.txt), from `from_s` on.
std::vector<float> Ecg(double from_s, double to_s) {
  const double fs = 250;
  std::vector<float> x(static_cast<size_t>((to_s - from_s) * fs));
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = from_s + static_cast<double>(i) / fs;
    double v = 0.05 * std::sin(2 * std::numbers::pi * 0.3 * t);
    for (double b = 0.6; b < to_s; b += 0.8) {
      if (std::fabs(t - b) < 0.4) {
        v += 1.2 * std::exp(-0.5 * std::pow((t - b) / 0.012, 2)) +
             0.25 * std::exp(-0.5 * std::pow((t - b - 0.25) / 0.05, 2));
      }
    }
    x[i] = static_cast<float>(v);
  }
  return x;
}

TEST(SnapshotUpgrade, PreviousEcgSnapshotRestoresAndTheRhythmGoesOn) {
  const auto op = ecg::EcgMonitor::Make(ops::Parameters{});
  auto state = op->MakeState();
  ASSERT_NO_THROW(state->Restore(Golden("ecg_arrhythmia_v5.snapshot")));
  ops::Events events;
  const auto x = Ecg(40, 60);
  for (size_t i = 0; i < x.size(); i += 250) {
    op->Process(*state, ops::Signal::kEcg,
                {ops::SampleTime(0, 250, static_cast<int64_t>(40 * 250 + i)), 250,
                 std::span<const float>(x).subspan(i, 250)},
                events);
  }
  std::vector<ops::Beat> beats;
  for (const auto& e : events) {
    if (const auto* b = std::get_if<ops::Beat>(&e)) beats.push_back(*b);
    if (const auto* p = std::get_if<ops::Episode>(&e)) {
      ADD_FAILURE() << "episode " << static_cast<int>(p->kind);
    }
  }
  ASSERT_GE(beats.size(), 20u);
  // The restored state knew the rhythm: no learning pause, RR and rate from the first beat on.
  EXPECT_NEAR(beats.front().rr_s, 0.8, 0.02);
  EXPECT_NEAR(beats.front().heart_rate_bpm, 75, 2);
  // And what it writes now restores too.
  auto again = op->MakeState();
  EXPECT_NO_THROW(again->Restore(state->Snapshot()));
}

}  // namespace
