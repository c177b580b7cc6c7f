// WFDB readers on files written by the test itself (format 212 and 16+offset, CRLF headers,
// SKIP/AUX/NUM/CHN annotation codes, malformed input) - no reference data needed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "operators/io/wfdb_annotation.h"
#include "operators/io/wfdb_record.h"

namespace {

namespace fs = std::filesystem;
using vigil::io::ReadWfdbAnnotations;
using vigil::io::ReadWfdbHeader;
using vigil::io::ReadWfdbRecord;
using vigil::io::WfdbError;

class WfdbReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vigil-wfdb-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  fs::path dir_;
};

std::string Pack212(const std::vector<int>& interleaved) {
  std::string out;
  for (size_t i = 0; i < interleaved.size(); i += 2) {
    const int a = interleaved[i] & 0xFFF;
    const int b = i + 1 < interleaved.size() ? interleaved[i + 1] & 0xFFF : 0;
    out.push_back(static_cast<char>(a & 0xFF));
    out.push_back(static_cast<char>(((a >> 8) & 0x0F) | ((b >> 4) & 0xF0)));
    out.push_back(static_cast<char>(b & 0xFF));
  }
  return out;
}

TEST_F(WfdbReaderTest, Format212TwoSignalsWithCrlfHeader) {
  Write(
      "r1.hea",
      "r1 2 250 4\r\nr1.dat 212 200 12 0 -128 0 0 ECG\r\nr1.dat 212 100(10)/mV 12 0 5 0 0 V1\r\n");
  // frames: (s0, s1) = (-2048, 2047), (0, -1), (1024, -1024), (7, 10)
  Write("r1.dat", Pack212({-2048, 2047, 0, -1, 1024, -1024, 7, 10}));
  const auto rec = ReadWfdbRecord(dir_ / "r1");
  EXPECT_EQ(rec.header.sampling_frequency, 250);
  ASSERT_EQ(rec.header.signals.size(), 2u);
  EXPECT_EQ(rec.header.signals[1].baseline, 10);
  EXPECT_EQ(rec.header.signals[1].gain, 100);
  EXPECT_EQ(rec.header.signals[0].description, "ECG");
  EXPECT_EQ(rec.adc[0], (std::vector<int32_t>{-2048, 0, 1024, 7}));
  EXPECT_EQ(rec.adc[1], (std::vector<int32_t>{2047, -1, -1024, 10}));
  EXPECT_DOUBLE_EQ(rec.Physical(1, 3), 0.0);
  EXPECT_DOUBLE_EQ(rec.Physical(0, 2), 1024 / 200.0);
}

TEST_F(WfdbReaderTest, Format16WithByteOffset) {
  Write("m.hea", "m 1 300 3 04:11:29 1/11/2000 \nm.mat 16+24 1000/mV 16 0 76 0 0 ECG \n");
  std::string bytes(24, 'x');
  for (int16_t v : {int16_t{76}, int16_t{-300}, int16_t{32767}}) {
    bytes.push_back(static_cast<char>(v & 0xFF));
    bytes.push_back(static_cast<char>((v >> 8) & 0xFF));
  }
  Write("m.mat", bytes);
  const auto rec = ReadWfdbRecord(dir_ / "m");
  EXPECT_EQ(rec.header.signals[0].byte_offset, 24);
  EXPECT_EQ(rec.adc[0], (std::vector<int32_t>{76, -300, 32767}));
  EXPECT_FLOAT_EQ(rec.PhysicalSignal(0)[1], -0.3f);
}

TEST_F(WfdbReaderTest, ShortSignalFileIsAnErrorNamingBothCounts) {
  Write("s.hea", "s 1 360 100\ns.dat 16 200 16 0 0 0 0 ECG\n");
  Write("s.dat", std::string(10, '\0'));
  try {
    ReadWfdbRecord(dir_ / "s");
    FAIL();
  } catch (const WfdbError& e) {
    EXPECT_NE(std::string(e.what()).find("holds 5 samples per signal, header says 100"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(WfdbReaderTest, BadHeaderValuesNameFileAndLine) {
  Write("b.hea", "b 1 abc 10\nb.dat 16 200 16 0 0 0 0 ECG\n");
  EXPECT_THROW(ReadWfdbHeader(dir_ / "b"), WfdbError);
  Write("c.hea", "c 2 360 10\nc.dat 16 200 16 0 0 0 0 ECG\n");
  EXPECT_THROW(ReadWfdbHeader(dir_ / "c"), WfdbError);  // 2 announced, 1 present
  Write("d.hea", "d 1 360 10\nd.dat 80 200 16 0 0 0 0 ECG\n");
  EXPECT_THROW(ReadWfdbHeader(dir_ / "d"), WfdbError);  // unsupported format
  EXPECT_THROW(ReadWfdbHeader(dir_ / "missing"), WfdbError);
}

// "16+-5" parsed as offset -5 and the reader started 5 bytes before the signal file's data.
TEST_F(WfdbReaderTest, NegativeByteOffsetIsAnErrorNamingFileAndField) {
  Write("n.hea", "n 1 300 3\nn.mat 16+-5 1000/mV 16 0 0 0 0 ECG\n");
  Write("n.mat", std::string(6, '\0'));
  try {
    ReadWfdbRecord(dir_ / "n");
    FAIL() << "expected WfdbError";
  } catch (const WfdbError& e) {
    EXPECT_NE(std::string(e.what()).find("n.hea:2: byte offset -5"), std::string::npos) << e.what();
  }
}

void PutWord(std::string& s, int a, int i) {
  const int w = (a << 10) | (i & 0x3FF);
  s.push_back(static_cast<char>(w & 0xFF));
  s.push_back(static_cast<char>(w >> 8));
}

TEST_F(WfdbReaderTest, AnnotationsWithSkipAuxNumChn) {
  std::string b;
  PutWord(b, 28, 5);  // rhythm at 5
  PutWord(b, 63, 5);  // AUX "(AFIB" (5 bytes, padded)
  b += std::string("(AFIB") + '\0';
  PutWord(b, 1, 100);  // N at 105
  PutWord(b, 59, 0);   // SKIP 70000 (PDP-11 order)
  const uint32_t skip = 70000;
  for (uint16_t half : {static_cast<uint16_t>(skip >> 16), static_cast<uint16_t>(skip & 0xFFFF)}) {
    b.push_back(static_cast<char>(half & 0xFF));
    b.push_back(static_cast<char>(half >> 8));
  }
  PutWord(b, 5, 3);   // V at 70108
  PutWord(b, 60, 2);  // NUM 2
  PutWord(b, 62, 1);  // CHN 1
  PutWord(b, 28, 2);  // rhythm at 70110
  PutWord(b, 63, 2);
  b += "(N";
  PutWord(b, 0, 0);
  Write("a.atr", b);
  const auto anns = ReadWfdbAnnotations(dir_ / "a");
  ASSERT_EQ(anns.size(), 4u);
  EXPECT_EQ(anns[0].aux, "(AFIB");
  EXPECT_STREQ(anns[0].Mnemonic(), "+");
  EXPECT_EQ(anns[1].sample, 105);
  EXPECT_TRUE(anns[1].IsBeat());
  EXPECT_EQ(anns[2].sample, 70108);
  EXPECT_EQ(anns[2].AamiClass(), 'V');
  EXPECT_EQ(anns[2].num, 2);
  EXPECT_EQ(anns[2].channel, 1);
  EXPECT_EQ(anns[3].aux, "(N");
  const auto rhythms = vigil::io::RhythmIntervals(anns, 100000);
  ASSERT_EQ(rhythms.size(), 2u);
  EXPECT_EQ(rhythms[0].rhythm, "AFIB");
  EXPECT_EQ(rhythms[0].end, 70110);
  EXPECT_EQ(rhythms[1].end, 100000);
}

TEST_F(WfdbReaderTest, TruncatedAuxIsAnError) {
  std::string b;
  PutWord(b, 28, 5);
  PutWord(b, 63, 40);
  b += "(AF";
  Write("t.atr", b);
  EXPECT_THROW(ReadWfdbAnnotations(dir_ / "t"), WfdbError);
}

}  // namespace

#include "pipeline/replay/telemetry_source.h"

namespace {

TEST_F(WfdbReaderTest, ReplaySourceSendsEachChannelAsItsKindOnce) {
  // Channels as a bedside monitor and vfdb name them: two unnamed "ECG" leads (the second is
  // another lead, which one unknown), a third that would repeat one of them, a PLETH, an ABP
  // and an impedance "RESP" that Vigil has no kind for. Each stream is sent once, with its own
  // sequence; what is not sent is named.
  Write("v.hea",
        "v 6 250 500\n"
        "v.dat 16 200 16 0 0 0 0 ECG\nv.dat 16 200 16 0 0 0 0 ECG\nv.dat 16 200 16 0 0 0 0 ECG\n"
        "v.dat 16 100/NU 16 0 0 0 0 PLETH\nv.dat 16 100/mmHg 16 0 0 0 0 ABP\n"
        "v.dat 16 100 16 0 0 0 0 RESP\n");
  Write("v.dat", std::string(500 * 6 * 2, '\0'));
  auto source = vigil::replay::OpenWfdbRecord(dir_ / "v", {});
  using namespace vigil::v1;
  vigil::v1::TelemetryEnvelope envelope;
  uint64_t expected_sequence = 1;
  while (source->Next(envelope)) {
    ASSERT_EQ(envelope.frames_size(), 4);
    EXPECT_EQ(envelope.frames(0).kind(), SIGNAL_KIND_ECG);
    EXPECT_EQ(envelope.frames(0).lead(), ECG_LEAD_SINGLE);
    EXPECT_EQ(envelope.frames(1).kind(), SIGNAL_KIND_ECG);
    EXPECT_EQ(envelope.frames(1).lead(), ECG_LEAD_UNSPECIFIED);
    EXPECT_EQ(envelope.frames(2).kind(), SIGNAL_KIND_PLETHYSMOGRAM);
    EXPECT_EQ(envelope.frames(2).unit(), UNIT_NORMALIZED);
    EXPECT_EQ(envelope.frames(3).kind(), SIGNAL_KIND_ARTERIAL_PRESSURE);
    EXPECT_EQ(envelope.frames(3).unit(), UNIT_MM_HG);
    for (const auto& f : envelope.frames()) EXPECT_EQ(f.sequence(), expected_sequence);
    ++expected_sequence;
  }
  EXPECT_EQ(expected_sequence, 3u);  // 500 samples at 250 Hz in 1-s frames
  const std::string text = source->description();
  EXPECT_NE(text.find("not sent: 'ECG' (repeats an earlier channel)"), std::string::npos) << text;
  EXPECT_NE(text.find("not sent: 'RESP' (unknown channel)"), std::string::npos) << text;
}

}  // namespace
