#include "operators/io/edf_file.h"

#include <edflib.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>

namespace vigil::io {
namespace {

std::string Trim(std::string_view s) {
  const auto b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(' ');
  return std::string(s.substr(b, e - b + 1));
}

[[noreturn]] void Fail(const std::filesystem::path& path, std::string_view field,
                       std::string_view why) {
  throw EdfError(fmt::format("{}: EDF field '{}': {}", path.string(), field, why));
}

double ParseNumber(const std::filesystem::path& path, std::string_view field,
                   std::string_view text) {
  const std::string t = Trim(text);
  double value = 0;
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || !std::isfinite(value)) {
    Fail(path, field, fmt::format("'{}' is not a number", t));
  }
  return value;
}

long long ParseInteger(const std::filesystem::path& path, std::string_view field,
                       std::string_view text) {
  const std::string t = Trim(text);
  long long value = 0;
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) {
    Fail(path, field, fmt::format("'{}' is not an integer", t));
  }
  return value;
}

void ParseDateTime(const std::filesystem::path& path, std::string_view date, std::string_view time,
                   EdfFile& f) {
  if (date.size() != 8 || date[2] != '.' || date[5] != '.') Fail(path, "startdate", date);
  if (time.size() != 8 || time[2] != '.' || time[5] != '.') Fail(path, "starttime", time);
  f.day = static_cast<int>(ParseInteger(path, "startdate", date.substr(0, 2)));
  f.month = static_cast<int>(ParseInteger(path, "startdate", date.substr(3, 2)));
  const int yy = static_cast<int>(ParseInteger(path, "startdate", date.substr(6, 2)));
  f.year = yy >= 85 ? 1900 + yy : 2000 + yy;  // the EDF spec's clipping date
  f.hour = static_cast<int>(ParseInteger(path, "starttime", time.substr(0, 2)));
  f.minute = static_cast<int>(ParseInteger(path, "starttime", time.substr(3, 2)));
  f.second = static_cast<int>(ParseInteger(path, "starttime", time.substr(6, 2)));
  if (f.day < 1 || f.day > 31 || f.month < 1 || f.month > 12) Fail(path, "startdate", date);
  if (f.hour > 23 || f.minute > 59 || f.second > 59) Fail(path, "starttime", time);
}

// EDF+ time-stamped annotation lists of one data record's annotation channel.
void ParseTals(const std::filesystem::path& path, std::string_view bytes, EdfFile& f) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t end = bytes.find('\0', pos);
    const std::string_view tal =
        bytes.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? bytes.size() : end + 1;
    if (tal.empty()) continue;
    const size_t first = tal.find('\x14');
    if (first == std::string_view::npos) Fail(path, "EDF Annotations", "TAL without 0x14");
    std::string_view stamp = tal.substr(0, first);
    double duration = 0;
    if (const size_t d = stamp.find('\x15'); d != std::string_view::npos) {
      duration = ParseNumber(path, "EDF Annotations duration", stamp.substr(d + 1));
      stamp = stamp.substr(0, d);
    }
    if (stamp.empty() || (stamp[0] != '+' && stamp[0] != '-')) {
      Fail(path, "EDF Annotations onset", stamp);
    }
    const double onset =
        ParseNumber(path, "EDF Annotations onset", stamp[0] == '+' ? stamp.substr(1) : stamp);
    std::string_view rest = tal.substr(first + 1);
    while (!rest.empty()) {
      const size_t sep = rest.find('\x14');
      const std::string_view text = rest.substr(0, sep);
      if (!text.empty()) f.annotations.push_back({onset, duration, std::string(text)});
      if (sep == std::string_view::npos) break;
      rest = rest.substr(sep + 1);
    }
  }
}

// The strict fallback for the files EDFlib refuses (see the header).
EdfFile ReadWithFallback(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(path, "file", "cannot open");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 256) Fail(path, "header", "file shorter than 256 bytes");
  const std::string_view b(bytes);
  EdfFile f;
  f.path = path;
  if (Trim(b.substr(0, 8)) != "0") Fail(path, "version", Trim(b.substr(0, 8)));
  f.recording_field = Trim(b.substr(88, 80));
  ParseDateTime(path, b.substr(168, 8), b.substr(176, 8), f);
  const long long header_bytes = ParseInteger(path, "bytes in header", b.substr(184, 8));
  const std::string reserved = Trim(b.substr(192, 44));
  const bool edf_plus = reserved.rfind("EDF+", 0) == 0;
  f.records = ParseInteger(path, "number of data records", b.substr(236, 8));
  f.record_duration_s = ParseNumber(path, "duration of a data record", b.substr(244, 8));
  const long long ns = ParseInteger(path, "number of signals", b.substr(252, 4));
  if (ns < 1 || ns > 4096) Fail(path, "number of signals", std::to_string(ns));
  if (header_bytes != 256 * (ns + 1)) {
    Fail(path, "bytes in header", fmt::format("{} != 256 * (1 + {})", header_bytes, ns));
  }
  if (static_cast<long long>(bytes.size()) < header_bytes) Fail(path, "header", "truncated");
  if (f.record_duration_s < 0) Fail(path, "duration of a data record", "negative");

  struct Spec {
    std::string label, unit;
    double pmin, pmax;
    long long dmin, dmax, spr;
    bool annotation;
  };
  std::vector<Spec> specs(static_cast<size_t>(ns));
  const auto field = [&](size_t offset, size_t width, long long i) {
    return b.substr(256 + offset * static_cast<size_t>(ns) + static_cast<size_t>(i) * width, width);
  };
  long long record_samples = 0;
  for (long long i = 0; i < ns; ++i) {
    auto& s = specs[static_cast<size_t>(i)];
    s.label = Trim(field(0, 16, i));
    s.unit = Trim(field(96, 8, i));
    const std::string name = "signal " + s.label;
    s.pmin = ParseNumber(path, name + " physical minimum", field(104, 8, i));
    s.pmax = ParseNumber(path, name + " physical maximum", field(112, 8, i));
    s.dmin = ParseInteger(path, name + " digital minimum", field(120, 8, i));
    s.dmax = ParseInteger(path, name + " digital maximum", field(128, 8, i));
    s.spr = ParseInteger(path, name + " samples per record", field(216, 8, i));
    s.annotation = edf_plus && s.label == "EDF Annotations";
    if (s.spr < 1) Fail(path, name + " samples per record", std::to_string(s.spr));
    if (!s.annotation && (s.dmax <= s.dmin || s.pmax == s.pmin)) {
      Fail(path, name + " range", "digital or physical range is empty");
    }
    record_samples += s.spr;
  }
  const long long record_bytes = 2 * record_samples;
  const long long available = (static_cast<long long>(bytes.size()) - header_bytes) / record_bytes;
  if (f.records < 0) f.records = available;  // -1: unknown at write time (EDF spec)
  if (available < f.records) {
    Fail(path, "number of data records",
         fmt::format("header says {}, file holds {}", f.records, available));
  }
  std::vector<EdfSignal> signals;
  std::vector<int> index_of(specs.size(), -1);
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].annotation) continue;
    index_of[i] = static_cast<int>(signals.size());
    EdfSignal s;
    s.label = specs[i].label;
    s.unit = specs[i].unit;
    s.physical_min = specs[i].pmin;
    s.physical_max = specs[i].pmax;
    s.sample_rate_hz =
        f.record_duration_s > 0 ? static_cast<double>(specs[i].spr) / f.record_duration_s : 0;
    s.values.reserve(static_cast<size_t>(specs[i].spr * f.records));
    signals.push_back(std::move(s));
  }
  size_t pos = static_cast<size_t>(header_bytes);
  for (long long r = 0; r < f.records; ++r) {
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto& sp = specs[i];
      const size_t n = static_cast<size_t>(sp.spr);
      if (sp.annotation) {
        ParseTals(path, b.substr(pos, 2 * n), f);
      } else {
        auto& out = signals[static_cast<size_t>(index_of[i])].values;
        const double gain = (sp.pmax - sp.pmin) / static_cast<double>(sp.dmax - sp.dmin);
        for (size_t k = 0; k < n; ++k) {
          const auto lo = static_cast<unsigned char>(b[pos + 2 * k]);
          const auto hi = static_cast<unsigned char>(b[pos + 2 * k + 1]);
          const auto digital = static_cast<int16_t>(static_cast<uint16_t>(lo | (hi << 8)));
          out.push_back(static_cast<float>((digital - sp.dmin) * gain + sp.pmin));
        }
      }
      pos += 2 * n;
    }
  }
  f.signals = std::move(signals);
  return f;
}

std::mutex& EdflibMutex() {
  static std::mutex m;
  return m;
}

}  // namespace

const EdfSignal* EdfFile::Find(std::string_view label) const {
  for (const auto& s : signals) {
    if (s.label == label) return &s;
  }
  return nullptr;
}

const EdfSignal& EdfFile::Require(std::string_view label) const {
  const EdfSignal* s = Find(label);
  if (!s) Fail(path, label, "signal missing");
  return *s;
}

EdfFile ReadEdf(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) Fail(path, "file", "does not exist");
  auto hdr = std::make_unique<edf_hdr_struct>();
  int rc = 0;
  {
    std::lock_guard lock(EdflibMutex());
    rc = edfopen_file_readonly(path.c_str(), hdr.get(), EDFLIB_READ_ALL_ANNOTATIONS);
  }
  if (rc != 0) {
    if (hdr->filetype == EDFLIB_FILE_IS_DISCONTINUOUS ||
        hdr->filetype == EDFLIB_FILE_CONTAINS_FORMAT_ERRORS) {
      return ReadWithFallback(path);
    }
    Fail(path, "file", fmt::format("EDFlib error {}", hdr->filetype));
  }
  struct Closer {
    int handle;
    ~Closer() {
      std::lock_guard lock(EdflibMutex());
      edfclose_file(handle);
    }
  } closer{hdr->handle};

  EdfFile f;
  f.path = path;
  f.read_by_edflib = true;
  f.year = hdr->startdate_year;
  f.month = hdr->startdate_month;
  f.day = hdr->startdate_day;
  f.hour = hdr->starttime_hour;
  f.minute = hdr->starttime_minute;
  f.second = hdr->starttime_second;
  f.record_duration_s = static_cast<double>(hdr->datarecord_duration) / EDFLIB_TIME_DIMENSION;
  f.records = hdr->datarecords_in_file;
  f.recording_field = Trim(hdr->recording);
  std::vector<double> buffer;
  for (int i = 0; i < hdr->edfsignals; ++i) {
    const auto& p = hdr->signalparam[i];
    EdfSignal s;
    s.label = Trim(p.label);
    s.unit = Trim(p.physdimension);
    s.physical_min = p.phys_min;
    s.physical_max = p.phys_max;
    s.sample_rate_hz = f.record_duration_s > 0 ? p.smp_in_datarecord / f.record_duration_s : 0;
    buffer.resize(static_cast<size_t>(p.smp_in_file));
    if (p.smp_in_file > 0) {
      const int n =
          edfread_physical_samples(hdr->handle, i, static_cast<int>(p.smp_in_file), buffer.data());
      if (n != p.smp_in_file) {
        Fail(path, s.label, fmt::format("read {} of {} samples", n, p.smp_in_file));
      }
    }
    s.values.assign(buffer.begin(), buffer.end());
    f.signals.push_back(std::move(s));
  }
  for (long long i = 0; i < hdr->annotations_in_file; ++i) {
    edf_annotation_struct a{};
    if (edf_get_annotation(hdr->handle, static_cast<int>(i), &a) != 0) break;
    f.annotations.push_back(
        {static_cast<double>(a.onset) / EDFLIB_TIME_DIMENSION,
         a.duration_l > 0 ? static_cast<double>(a.duration_l) / EDFLIB_TIME_DIMENSION : 0.0,
         a.annotation});
  }
  return f;
}

}  // namespace vigil::io
