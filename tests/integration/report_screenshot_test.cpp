// `vigil report` as a person sees it: the page is rendered by headless Chromium (Debian package
// `chromium`), screenshotted, and its rendered DOM must hold the plots.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/test_support.h"

namespace {

namespace fs = std::filesystem;

std::string Chromium(const fs::path& profile) {
  return "chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
         "--disable-background-networking --disable-component-update --disable-sync "
         "--hide-scrollbars --user-data-dir=" +
         profile.string();
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(ReportScreenshot, ChromiumRendersTheReportWithItsPlots) {
  ASSERT_EQ(std::system("command -v chromium >/dev/null"), 0)
      << "chromium is missing: deploy/local/setup.sh installs it";
  const fs::path dir = fs::temp_directory_path() / vigil::testing::UniqueName("vigil-report");
  fs::create_directories(dir);
  const fs::path html = dir / "report.html";
  const fs::path png = dir / "report.png";
  const auto record = vigil::testing::SharedData("mitdb/201.hea").replace_extension();

  int status = -1;
  vigil::testing::RunCommand(vigil::testing::VigilBinary().string() + " report " + record.string() +
                                 " --patient mitdb-201 --out " + html.string() + " 2>&1",
                             &status);
  ASSERT_EQ(status, 0);
  ASSERT_TRUE(fs::exists(html));

  const std::string dom = vigil::testing::RunCommand(
      Chromium(dir / "profile1") + " --dump-dom file://" + html.string() + " 2>/dev/null", &status);
  ASSERT_EQ(status, 0);
  EXPECT_NE(dom.find("Vigil patient report: mitdb-201"), std::string::npos);
  EXPECT_GE(Count(dom, "<svg class=\"panel\""), 1u) << "night trends must be plotted";
  EXPECT_GE(Count(dom, "<polyline"), 1u);

  vigil::testing::RunCommand(Chromium(dir / "profile2") + " --window-size=1100,1600 --screenshot=" +
                                 png.string() + " file://" + html.string() + " 2>&1",
                             &status);
  ASSERT_EQ(status, 0);
  ASSERT_TRUE(fs::exists(png));
  std::ifstream in(png, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  // A blank 1100x1600 page compresses to a few kB; plots and text make it far larger.
  EXPECT_GT(fs::file_size(png), 30'000u);
  fs::remove_all(dir);
}

}  // namespace
