// fuzz_wfdb: the PhysioNet WFDB readers (operators/io/wfdb_record.h, wfdb_annotation.h), which
// read files. Input: header text, signal bytes and annotation bytes separated by
// fuzz::kSeparator; they become <scratch>/rec.hea, rec.dat and rec.atr (a missing part: no
// file). Seeds name "rec.dat" as the signal file. Then ReadWfdbHeader, ReadWfdbRecord (and the
// physical values of every signal), ReadWfdbAnnotations (and their rhythm intervals).
// io::WfdbError is the documented failure; anything else is a finding.
//
// Signal file names in a header are paths relative to it by design (a header may name any
// file the reader can open); names with a '/' or that are not regular files here (e.g.
// "/dev/zero") are not read, since they would only fuzz the file system.
#include <filesystem>
#include <string>

#include "fuzz/fuzz_support.h"
#include "operators/io/wfdb_annotation.h"
#include "operators/io/wfdb_record.h"

using namespace vigil;
namespace fs = std::filesystem;

namespace {

void Put(const fs::path& path, const std::vector<std::string_view>& parts, size_t i) {
  std::error_code ec;
  if (i < parts.size()) {
    fuzz::WriteFile(path, parts[i]);
  } else {
    fs::remove(path, ec);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = fuzz::ScratchDir("wfdb");
  static const fs::path record = dir / "rec";
  const auto parts = fuzz::SplitInput(fuzz::AsText(data, size), 3);
  Put(dir / "rec.hea", parts, 0);
  Put(dir / "rec.dat", parts, 1);
  Put(dir / "rec.atr", parts, 2);

  try {
    const io::WfdbHeader header = io::ReadWfdbHeader(record);
    bool local_files = true;
    for (const auto& s : header.signals) {
      std::error_code ec;  // e.g. a name too long for the file system
      const auto status = fs::status(dir / s.file_name, ec);
      local_files = local_files && s.file_name.find('/') == std::string::npos &&
                    (!fs::exists(status) || fs::is_regular_file(status));
    }
    if (local_files) {
      const io::WfdbRecord rec = io::ReadWfdbRecord(record);
      for (size_t i = 0; i < rec.header.signals.size(); ++i) {
        const auto values = rec.PhysicalSignal(i);
        if (!values.empty()) (void)rec.Physical(i, values.size() - 1);
      }
    }
  } catch (const io::WfdbError&) {
  }
  try {
    const auto annotations = io::ReadWfdbAnnotations(record, "atr");
    for (const auto& a : annotations) {
      (void)a.Mnemonic();
      (void)a.IsBeat();
      (void)a.AamiClass();
    }
    (void)io::RhythmIntervals(annotations, annotations.empty() ? 0 : annotations.back().sample + 1);
  } catch (const io::WfdbError&) {
  }
  return 0;
}
