// European Data Format (EDF, EDF+) files in physical units, as the ResMed SD card holds them.
//
// Reading goes through EDFlib (Debian libedf-dev). EDFlib 1.23 refuses two kinds of file that
// ResMed devices write and that are valid enough to read: EDF+D ("discontinuous") files, which
// every *_EVE.edf and *_CSL.edf is (annotation-only, data-record duration 0), and headers with
// bytes outside printable ASCII (STR.edf labels a dimension "°C" in UTF-8). For exactly those
// EDFlib error codes the file is read by a small strict reader of the EDF layout (header fields,
// 16-bit little-endian samples, EDF+ time-stamped annotation lists); every other EDFlib error is
// reported as it is. Both paths return the same EdfFile.
//
// Threading: EDFlib's open/close are not thread-safe; ReadEdf serialises them internally, so it
// may be called from several threads.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::io {

// A file that cannot be read as EDF. The message names the file and the offending field.
class EdfError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EdfSignal {
  std::string label;          // trimmed, e.g. "Flow.40ms"
  std::string unit;           // trimmed physical dimension, e.g. "L/s"
  double sample_rate_hz = 0;  // samples per data record / record duration
  double physical_min = 0;
  double physical_max = 0;
  std::vector<float> values;  // physical units
};

// One EDF+ annotation (time-keeping TALs without text are dropped).
struct EdfAnnotation {
  double onset_s = 0;     // from the file's start time
  double duration_s = 0;  // 0 when the file gives none
  std::string text;
};

struct EdfFile {
  std::filesystem::path path;
  // Start date and time exactly as the header states them (local clock of the recorder, no
  // zone): converting them to UTC is the caller's business.
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  double record_duration_s = 0;
  long long records = 0;
  std::string recording_field;             // header "recording identification" (80 chars, trimmed)
  std::vector<EdfSignal> signals;          // annotation channels excluded
  std::vector<EdfAnnotation> annotations;  // in file order
  bool read_by_edflib = false;             // false: the fallback reader (see above)

  // nullptr when there is no signal with this (trimmed) label.
  const EdfSignal* Find(std::string_view label) const;
  // Like Find, but throws EdfError naming the file and the label when it is missing.
  const EdfSignal& Require(std::string_view label) const;
};

// Reads the whole file. Throws EdfError (file and field in the message) on any format error.
EdfFile ReadEdf(const std::filesystem::path& path);

}  // namespace vigil::io
