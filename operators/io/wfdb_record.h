// Readers for PhysioNet WFDB records: the header (.hea, LF or CRLF line ends), signal files in
// format 212 (two 12-bit samples in 3 bytes) and 16 (little-endian int16, optionally after a
// byte offset such as the CinC 2017 `.mat` files' `16+24`). Pure file reading: no operator logic.
//
// Errors: every function throws WfdbError naming the file (and line or byte) and the offending
// value. Nothing is partially returned.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace vigil::io {

class WfdbError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct WfdbSignalSpec {
  std::string file_name;    // signal file, relative to the header's folder
  int format = 0;           // 212 or 16
  int64_t byte_offset = 0;  // bytes to skip at the start of the file ("16+24" -> 24)
  double gain = 200;        // ADC units per physical unit (WFDB default 200)
  int baseline = 0;         // ADC value of physical zero (defaults to adc_zero)
  std::string units = "mV";
  int adc_resolution = 12;
  int adc_zero = 0;
  int initial_value = 0;
  std::string description;  // e.g. "MLII", "V1", "ECG"
};

struct WfdbHeader {
  std::string record_name;
  double sampling_frequency = 250;  // Hz
  int64_t num_samples = 0;          // per signal; 0 = unknown (read to the end of the file)
  std::vector<WfdbSignalSpec> signals;
};

// Samples of every signal of a record, as ADC integers (physical = (adc - baseline) / gain).
struct WfdbRecord {
  WfdbHeader header;
  std::vector<std::vector<int32_t>> adc;  // adc[signal][sample]

  // Physical value (e.g. mV) of one sample.
  double Physical(size_t signal, size_t sample) const {
    const auto& s = header.signals[signal];
    return (adc[signal][sample] - s.baseline) / s.gain;
  }
  // The whole signal in physical units.
  std::vector<float> PhysicalSignal(size_t signal) const;
};

// `record` is the path without extension, e.g. "../shared/data/mitdb/100".
WfdbHeader ReadWfdbHeader(const std::filesystem::path& record);
WfdbRecord ReadWfdbRecord(const std::filesystem::path& record);

}  // namespace vigil::io
