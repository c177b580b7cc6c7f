// The reference recordings read as their documentation says (../shared/data/README.md).
// Fails with a clear message when ../shared/data is missing.
#include <gtest/gtest.h>

#include "operators/io/wfdb_annotation.h"
#include "operators/io/wfdb_record.h"
#include "support/test_support.h"

namespace {

using vigil::testing::SharedData;

TEST(ReferenceData, MitdbRecordAndAnnotations) {
  const auto rec = vigil::io::ReadWfdbRecord(SharedData("mitdb/101.hea").replace_extension());
  EXPECT_EQ(rec.header.sampling_frequency, 360);
  ASSERT_EQ(rec.adc.size(), 2u);
  EXPECT_EQ(rec.adc[0].size(), 650000u);
  EXPECT_EQ(rec.adc[0][0], 955);  // initial values from the header
  EXPECT_EQ(rec.adc[1][0], 992);
  const auto anns = vigil::io::ReadWfdbAnnotations(SharedData("mitdb/101.hea").replace_extension());
  size_t beats = 0;
  for (const auto& a : anns) beats += a.IsBeat();
  EXPECT_EQ(beats, 1865u);  // PhysioNet's record 101 table: 1865 beats
}

TEST(ReferenceData, VfdbCrlfHeaderAndRhythms) {
  const auto path = SharedData("vfdb/418.hea").replace_extension();
  const auto header = vigil::io::ReadWfdbHeader(path);
  EXPECT_EQ(header.sampling_frequency, 250);
  EXPECT_EQ(header.signals.size(), 2u);
  const auto rhythms =
      vigil::io::RhythmIntervals(vigil::io::ReadWfdbAnnotations(path), header.num_samples);
  bool vf = false;
  for (const auto& r : rhythms) vf |= (r.rhythm == "VF" || r.rhythm == "VFL");
  EXPECT_TRUE(vf);
}

TEST(ReferenceData, CincMatRecord) {
  const auto rec = vigil::io::ReadWfdbRecord(SharedData("cinc2017/A00015.hea").replace_extension());
  EXPECT_EQ(rec.header.sampling_frequency, 300);
  ASSERT_EQ(rec.adc.size(), 1u);
  EXPECT_EQ(rec.adc[0].size(), 6102u);
  EXPECT_EQ(rec.adc[0][0], 76);
}

}  // namespace
