#include "operators/io/wfdb_record.h"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <map>
#include <sstream>

namespace vigil::io {
namespace {

std::vector<std::string> Split(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

template <typename T>
T Number(const std::string& text, const std::filesystem::path& file, int line, const char* what) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    throw WfdbError(fmt::format("{}:{}: {} '{}' is not a number", file.string(), line, what, text));
  }
  return value;
}

// "200", "200(1024)", "200/mV", "200(0)/mV", "1000/mV"
void ParseGain(const std::string& text, WfdbSignalSpec& spec, bool& baseline_given,
               const std::filesystem::path& file, int line) {
  std::string gain = text;
  const auto slash = gain.find('/');
  if (slash != std::string::npos) {
    spec.units = gain.substr(slash + 1);
    gain = gain.substr(0, slash);
  }
  const auto paren = gain.find('(');
  if (paren != std::string::npos) {
    const auto close = gain.find(')', paren);
    if (close == std::string::npos) {
      throw WfdbError(fmt::format("{}:{}: gain '{}' has no ')'", file.string(), line, text));
    }
    spec.baseline = Number<int>(gain.substr(paren + 1, close - paren - 1), file, line, "baseline");
    baseline_given = true;
    gain = gain.substr(0, paren);
  }
  spec.gain = Number<double>(gain, file, line, "gain");
  if (spec.gain == 0) spec.gain = 200;  // WFDB: 0 means "uncalibrated", default 200
}

}  // namespace

std::vector<float> WfdbRecord::PhysicalSignal(size_t signal) const {
  const auto& s = header.signals.at(signal);
  const auto& raw = adc.at(signal);
  std::vector<float> out(raw.size());
  const double inv = 1.0 / s.gain;
  for (size_t i = 0; i < raw.size(); ++i) out[i] = static_cast<float>((raw[i] - s.baseline) * inv);
  return out;
}

WfdbHeader ReadWfdbHeader(const std::filesystem::path& record) {
  std::filesystem::path file = record;
  file += ".hea";
  std::ifstream in(file);
  if (!in) throw WfdbError(fmt::format("{}: cannot open WFDB header", file.string()));

  WfdbHeader header;
  std::string line;
  int line_no = 0;
  bool have_record_line = false;
  size_t expected_signals = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF headers (vfdb)
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    const auto words = Split(line);
    if (words.empty()) continue;
    if (!have_record_line) {
      if (words.size() < 2) {
        throw WfdbError(fmt::format("{}:{}: record line needs a name and a signal count",
                                    file.string(), line_no));
      }
      header.record_name = words[0];
      const int nsig = Number<int>(words[1], file, line_no, "signal count");
      if (nsig < 0 || nsig > 64) {
        throw WfdbError(
            fmt::format("{}:{}: signal count {} out of range", file.string(), line_no, nsig));
      }
      expected_signals = static_cast<size_t>(nsig);
      if (words.size() > 2) {
        std::string fs = words[2];
        fs = fs.substr(0, fs.find_first_of("/("));  // "360/..." counter frequency ignored
        header.sampling_frequency = Number<double>(fs, file, line_no, "sampling frequency");
        if (!(header.sampling_frequency > 0)) {
          throw WfdbError(fmt::format("{}:{}: sampling frequency {} must be > 0", file.string(),
                                      line_no, header.sampling_frequency));
        }
      }
      if (words.size() > 3) header.num_samples = Number<int64_t>(words[3], file, line_no, "length");
      have_record_line = true;
      if (nsig == 0) break;
      continue;
    }
    if (words.size() < 2) {
      throw WfdbError(
          fmt::format("{}:{}: signal line needs a file and a format", file.string(), line_no));
    }
    WfdbSignalSpec spec;
    spec.file_name = words[0];
    const auto plus = words[1].find('+');
    spec.format = Number<int>(words[1].substr(0, plus), file, line_no, "format");
    if (plus != std::string::npos) {
      spec.byte_offset = Number<int64_t>(words[1].substr(plus + 1), file, line_no, "byte offset");
      // Read as the start of the samples in the signal file: a negative one would read before it.
      if (spec.byte_offset < 0) {
        throw WfdbError(fmt::format("{}:{}: byte offset {} must be >= 0", file.string(), line_no,
                                    spec.byte_offset));
      }
    }
    if (spec.format != 212 && spec.format != 16) {
      throw WfdbError(fmt::format("{}:{}: signal format {} not supported (212 and 16 are)",
                                  file.string(), line_no, spec.format));
    }
    bool baseline_given = false;
    if (words.size() > 2) ParseGain(words[2], spec, baseline_given, file, line_no);
    if (words.size() > 3) spec.adc_resolution = Number<int>(words[3], file, line_no, "resolution");
    if (words.size() > 4) spec.adc_zero = Number<int>(words[4], file, line_no, "ADC zero");
    if (words.size() > 5)
      spec.initial_value = Number<int>(words[5], file, line_no, "initial value");
    if (!baseline_given) spec.baseline = spec.adc_zero;
    for (size_t i = 8; i < words.size(); ++i) {
      spec.description += (spec.description.empty() ? "" : " ") + words[i];
    }
    header.signals.push_back(std::move(spec));
    if (header.signals.size() == expected_signals) break;
  }
  if (!have_record_line) throw WfdbError(fmt::format("{}: no record line", file.string()));
  if (header.signals.size() != expected_signals) {
    throw WfdbError(fmt::format("{}: record line announces {} signals, {} signal lines found",
                                file.string(), expected_signals, header.signals.size()));
  }
  return header;
}

WfdbRecord ReadWfdbRecord(const std::filesystem::path& record) {
  WfdbRecord out;
  out.header = ReadWfdbHeader(record);
  const auto& specs = out.header.signals;
  out.adc.resize(specs.size());

  // Signals sharing a file are interleaved in it, in header order.
  std::map<std::string, std::vector<size_t>> by_file;
  std::vector<std::string> file_order;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!by_file.count(specs[i].file_name)) file_order.push_back(specs[i].file_name);
    by_file[specs[i].file_name].push_back(i);
  }
  for (const auto& name : file_order) {
    const auto& members = by_file[name];
    const auto& first = specs[members.front()];
    for (size_t m : members) {
      if (specs[m].format != first.format || specs[m].byte_offset != first.byte_offset) {
        throw WfdbError(fmt::format("{}: signals in one file must share format and offset", name));
      }
    }
    const auto path = record.parent_path() / name;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw WfdbError(fmt::format("{}: cannot open WFDB signal file", path.string()));
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    if (static_cast<int64_t>(bytes.size()) < first.byte_offset) {
      throw WfdbError(
          fmt::format("{}: shorter than its byte offset {}", path.string(), first.byte_offset));
    }
    const unsigned char* p = bytes.data() + first.byte_offset;
    const size_t n_bytes = bytes.size() - static_cast<size_t>(first.byte_offset);
    const size_t nsig = members.size();
    size_t frames = 0;
    if (first.format == 16) {
      frames = n_bytes / (2 * nsig);
    } else {  // 212: 3 bytes per pair of samples
      frames = (n_bytes * 2 / 3) / nsig;
    }
    if (out.header.num_samples > 0) {
      if (static_cast<int64_t>(frames) < out.header.num_samples) {
        throw WfdbError(fmt::format("{}: holds {} samples per signal, header says {}",
                                    path.string(), frames, out.header.num_samples));
      }
      frames = static_cast<size_t>(out.header.num_samples);
    }
    for (size_t m : members) out.adc[m].resize(frames);
    if (first.format == 16) {
      for (size_t f = 0; f < frames; ++f) {
        for (size_t k = 0; k < nsig; ++k) {
          const size_t at = 2 * (f * nsig + k);
          out.adc[members[k]][f] = static_cast<int16_t>(p[at] | (p[at + 1] << 8));
        }
      }
    } else {
      const size_t total = frames * nsig;
      for (size_t i = 0; i < total; ++i) {
        const size_t at = (i / 2) * 3;
        int v;
        if (i % 2 == 0) {
          v = p[at] | ((p[at + 1] & 0x0F) << 8);
        } else {
          v = p[at + 2] | ((p[at + 1] & 0xF0) << 4);
        }
        if (v & 0x800) v -= 0x1000;  // sign-extend 12 bits
        out.adc[members[i % nsig]][i / nsig] = v;
      }
    }
  }
  if (out.header.num_samples == 0 && !out.adc.empty()) {
    out.header.num_samples = static_cast<int64_t>(out.adc.front().size());
  }
  return out;
}

}  // namespace vigil::io
