// Reader for WFDB annotation files in the MIT format (e.g. `100.atr`): beat labels, rhythm
// changes with aux text such as "(AFIB", and the SKIP / NUM / SUB / CHN / AUX pseudo-codes.
// Throws io::WfdbError naming the file and byte offset on malformed input.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "operators/io/wfdb_record.h"

namespace vigil::io {

struct WfdbAnnotation {
  int64_t sample = 0;  // sample index in the record
  int code = 0;        // WFDB annotation code (1 = NORMAL, 5 = PVC, 28 = RHYTHM, ...)
  int subtype = 0;
  int channel = 0;
  int num = 0;
  std::string aux;  // e.g. "(AFIB" for rhythm changes
  // WFDB mnemonic of `code`: "N", "V", "+", "~", "[", ...
  const char* Mnemonic() const;
  // True for codes that mark a QRS complex (WFDB isqrs).
  bool IsBeat() const;
  // AAMI EC57 class of a beat: 'N', 'S', 'V', 'F', 'Q'; '\0' for non-beats.
  char AamiClass() const;
};

// `record` is the path without extension; `annotator` e.g. "atr".
std::vector<WfdbAnnotation> ReadWfdbAnnotations(const std::filesystem::path& record,
                                                const std::string& annotator = "atr");

// A rhythm interval from the "+" annotations' aux text, e.g. {"AFIB", 1000, 52000}.
struct RhythmInterval {
  std::string rhythm;  // aux text without "(", e.g. "N", "AFIB", "VT", "VFL", "NOISE"
  int64_t start = 0;   // first sample
  int64_t end = 0;     // one past the last sample
};

// Rhythm intervals covering the record from the first rhythm annotation to `num_samples`.
// vfdb's `[`/`]` (VF on/off) markers are not rhythm annotations and are ignored here.
std::vector<RhythmInterval> RhythmIntervals(const std::vector<WfdbAnnotation>& annotations,
                                            int64_t num_samples);

}  // namespace vigil::io
