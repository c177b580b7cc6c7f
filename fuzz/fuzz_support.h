// Helpers shared by the libFuzzer targets (docs/fuzzing.md) and their seed writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "operators/core/time.h"
#include "pipeline/analysis/patient_analysis.h"

namespace vigil::fuzz {

// Inputs that hold several files (or records) separate them with this byte sequence; the fuzz
// dictionaries (fuzz/dict/*.dict) contain it so that mutations can add and remove parts.
inline constexpr std::string_view kSeparator{"\xFE\xFESPLIT\xFE\xFE", 9};

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// `data` cut at every separator into at most `max_parts` parts (the last keeps the rest,
// separators included). An input without separator is one part.
std::vector<std::string_view> SplitInput(std::string_view data, size_t max_parts);
// The inverse, for the seed writer.
std::string JoinInput(const std::vector<std::string>& parts);

// A folder of this process only (`$TMPDIR/vigil-fuzz-<name>-<pid>`), created on first use and
// removed at a normal exit. Crashed runs leave theirs behind (the findings may need it).
const std::filesystem::path& ScratchDir(std::string_view name);
void WriteFile(const std::filesystem::path& path, std::string_view bytes);

// Every registered operator with its default parameters (as the service's default
// configuration and tests/robustness/exactly_once_test.cpp build it), built once.
analysis::AnalysisConfig DefaultAnalysisConfig();
std::shared_ptr<const analysis::AnalysisPlan> DefaultPlan();

// Feeds `seconds` one-second frames of every signal kind any operator of the analysis' plan
// reads (plausible shapes at plausible rates), starting at `start_us`, with the sequences in
// `*sequence` (one counter for all streams, incremented per second). Used to run operators that
// were just (re)configured or restored.
void FeedSyntheticSeconds(analysis::PatientAnalysis& patient, const analysis::AnalysisPlan& plan,
                          ops::TimeUs start_us, int seconds, uint64_t* sequence,
                          analysis::Outputs& out);

// A snapshot without its diagnostics-only wall clock, serialised: two snapshots of the same
// state compare equal.
std::string ComparableSnapshot(const v1::PatientStateSnapshot& snapshot);

// Reports a broken invariant the sanitizers cannot see, then aborts (libFuzzer records the
// input as a crash).
[[noreturn]] void Finding(const std::string& what);

// 2026-01-01T00:00:00Z.
inline constexpr ops::TimeUs kT0 = 1'767'225'600'000'000;

}  // namespace vigil::fuzz
