// EDF and ResMed card readers on malformed files written by the test itself: each is refused
// with the reader's own error naming the file and the field, never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "operators/io/edf_file.h"
#include "operators/io/resmed_card.h"
#include "support/test_support.h"

namespace {

namespace fs = std::filesystem;
using vigil::io::EdfError;

std::string Field(const std::string& text, size_t width) {
  std::string f = text.substr(0, width);
  f.resize(width, ' ');
  return f;
}

// An EDF file with the given signal labels (one sample per record each) and `records` data
// records of zeros.
std::string Edf(const std::vector<std::string>& labels, int records) {
  const size_t ns = labels.size();
  std::string h = Field("0", 8) + Field("X X X X", 80) + Field("Startdate 01-JAN-2026 X X X", 80) +
                  Field("01.01.26", 8) + Field("12.00.00", 8) +
                  Field(std::to_string(256 * (ns + 1)), 8) + Field("", 44) +
                  Field(std::to_string(records), 8) + Field("86400", 8) +
                  Field(std::to_string(ns), 4);
  const auto each = [&](const std::string& value, size_t width) {
    for (size_t i = 0; i < ns; ++i) h += Field(value.empty() ? labels[i] : value, width);
  };
  each("", 16);       // label
  each(" ", 80);      // transducer
  each("-", 8);       // physical dimension
  each("-32768", 8);  // physical minimum
  each("32767", 8);   // physical maximum
  each("-32768", 8);  // digital minimum
  each("32767", 8);   // digital maximum
  each(" ", 80);      // prefiltering
  each("1", 8);       // samples per record
  each(" ", 32);      // reserved
  h += std::string(2 * ns * static_cast<size_t>(records), '\0');
  return h;
}

class ResmedCardReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / vigil::testing::UniqueName("resmed-card");
    fs::create_directories(root_ / "DATALOG");
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

// A STR.edf without days (no data records, so an empty Date signal) once divided by zero.
TEST_F(ResmedCardReaderTest, EmptyDateSignalIsAnErrorNamingFileAndField) {
  std::ofstream(root_ / "STR.edf", std::ios::binary)
      << Edf({"Date", "MaskOn", "MaskOff", "MaskEvents", "Duration"}, 0);
  try {
    vigil::io::ReadResmedCard(root_);
    FAIL() << "expected EdfError";
  } catch (const EdfError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("STR.edf"), std::string::npos) << what;
    EXPECT_NE(what.find("'Date'"), std::string::npos) << what;
  }
}
}  // namespace
