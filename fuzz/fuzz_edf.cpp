// fuzz_edf: operators/io/edf_file.h ReadEdf on the input written to a scratch file. ReadEdf
// tries EDFlib (Debian libedf, not instrumented: only crashes show there) and, for the EDFlib
// errors it documents, its own strict reader (instrumented). io::EdfError is the documented
// failure; anything else is a finding.
#include <filesystem>

#include "fuzz/fuzz_support.h"
#include "operators/io/edf_file.h"

using namespace vigil;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path file = fuzz::ScratchDir("edf") / "input.edf";
  fuzz::WriteFile(file, fuzz::AsText(data, size));
  try {
    const io::EdfFile f = io::ReadEdf(file);
    for (const auto& s : f.signals) {
      if (f.Find(s.label) != &s && f.Find(s.label) == nullptr) fuzz::Finding("Find lost a signal");
      (void)f.Require(s.label);
    }
  } catch (const io::EdfError&) {
  }
  return 0;
}
