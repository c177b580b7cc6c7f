// The HTML report renders every section from constructed data, escapes text, and needs nothing
// from the network (no external URLs, no scripts).
#include "pipeline/report/html_report.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace {

using namespace vigil;

constexpr ops::TimeUs kT0 = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z

report::ReportData Sample() {
  report::ReportData d;
  d.patient_id = "sim-<7>";
  d.source = "constructed";
  v1::Alert a;
  a.set_alert_id("abc");
  a.set_condition(v1::CONDITION_VENTRICULAR_TACHYCARDIA);
  a.set_priority(v1::PRIORITY_HIGH);
  a.set_state(v1::ALERT_STATE_RAISED);
  a.set_onset_time_us(kT0 + 4'000'000);
  a.set_summary("Ventricular tachycardia for 6 s: run_length 8 beats");
  a.mutable_evidence()->set_rule(">= 5 consecutive V beats at >= 100 bpm");
  d.alerts.push_back(a);
  report::EcgStrip s;
  s.alert = a;
  s.start_us = kT0;
  s.sample_rate_hz = 250;
  for (int i = 0; i < 250 * 12; ++i) s.millivolts.push_back(i % 200 == 0 ? 1.5f : 0.0f);
  s.beats.push_back({kT0 + 800'000, 200, ops::BeatClass::kNormal, 0.8f, 75});
  s.beats.push_back({kT0 + 4'800'000, 1200, ops::BeatClass::kVentricular, 0.4f, 150});
  d.strips.push_back(s);
  for (int m = 0; m < 30; ++m) {
    v1::Aggregate g;
    g.set_window(v1::WINDOW_KIND_MINUTE);
    g.set_window_start_us(kT0 + m * 60'000'000LL);
    g.set_window_end_us(kT0 + (m + 1) * 60'000'000LL);
    g.mutable_respiratory()->set_leak_p50_lpm(m);
    g.mutable_co2()->set_median_mm_hg(45 + m * 0.5);
    d.minutes.push_back(g);
  }
  ops::Episode apnea;
  apnea.kind = ops::EpisodeKind::kApnea;
  apnea.start_us = kT0 + 120'000'000;
  apnea.end_us = kT0 + 135'000'000;
  d.episodes.push_back(apnea);
  for (int day = 0; day < 30; ++day) {
    v1::Aggregate g;
    g.set_window(v1::WINDOW_KIND_THERAPY_DAY);
    g.set_therapy_date(fmt::format("2026-01-{:02d}", day + 1));
    g.set_window_start_us(kT0 + day * 86'400'000'000LL);
    g.set_window_end_us(kT0 + (day + 1) * 86'400'000'000LL);
    g.mutable_adherence()->set_usage_minutes(day % 3 == 0 ? 120 : 300);
    d.days.push_back(g);
  }
  return d;
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(HtmlReport, RendersEverySectionSelfContained) {
  const std::string html = report::RenderHtml(Sample());
  EXPECT_EQ(Count(html, "<svg class=\"ecg\""), 1u);
  EXPECT_EQ(Count(html, "class=\"beat beat-V\""), 1u);
  EXPECT_EQ(Count(html, "class=\"beat beat-N\""), 1u);
  EXPECT_GE(Count(html, "<svg class=\"panel\""), 2u);  // leak and CO2 panels
  EXPECT_EQ(Count(html, "class=\"day "), 30u);
  // 20 of 30 nights >= 4 h is 67 %: the CMS rule (70 %) is not met.
  EXPECT_NE(html.find("20 of 30 nights"), std::string::npos);
  EXPECT_NE(html.find("not met"), std::string::npos);
  EXPECT_NE(html.find("sim-&lt;7&gt;"), std::string::npos) << "patient id must be escaped";
  EXPECT_EQ(html.find("sim-<7>"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(HtmlReport, ComplianceMetWhenSeventyPercentOfThirtyNights) {
  auto d = Sample();
  for (size_t i = 0; i < d.days.size(); ++i) {
    d.days[i].mutable_adherence()->set_usage_minutes(i < 21 ? 250 : 60);
  }
  const std::string html = report::RenderHtml(d);
  EXPECT_NE(html.find("21 of 30 nights"), std::string::npos);
  EXPECT_NE(html.find("<b class=\"good\">met</b>"), std::string::npos);
}

}  // namespace

namespace {

// A patient whose closed therapy days are an uploaded history (before the stream) still gets
// tonight's trends: the minutes after the last closed day form a span of their own.
TEST(HtmlReport, TrendsOfTheOpenNightAfterAHistoryOfClosedDays) {
  auto d = Sample();
  for (auto& g : d.days) {  // move the 30 days into the month before the minutes
    g.set_window_start_us(g.window_start_us() - 31 * 86'400'000'000LL);
    g.set_window_end_us(g.window_end_us() - 31 * 86'400'000'000LL);
  }
  const std::string html = report::RenderHtml(d);
  EXPECT_GE(Count(html, "<svg class=\"panel\""), 2u);
  EXPECT_EQ(Count(html, "class=\"day "), 30u);
}

}  // namespace
