// The tree-ensemble evaluator and the AF model it serves (issue 18): the C++ evaluator scores
// windows exactly as LightGBM did when the model was trained, a broken or foreign model file is
// refused naming the path and line, and the attribution adds up to the prediction.
#include "operators/ecg/af_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "operators/core/tree_ensemble.h"
#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/replay/offline_replay.h"
#include "support/test_support.h"

namespace {

using vigil::ops::ModelError;
using vigil::ops::TreeEnsemble;

// Two trees over two features: tree 0 splits on f0 (NaN left), tree 1 on f1 (NaN right), then
// f0 again.
const char* kSmall = R"(vigil-tree-ensemble 1
# a comment
name test.model
version 7
features f0 f1
base 0.25
operating_point 0.4
tree 0 3
split 0 0 1.5 1 2 1 0.1
leaf 1 -1
leaf 2 2
tree 1 5
split 0 1 0 1 2 0 0
leaf 1 0.5
split 2 0 3 3 4 0 -0.2
leaf 3 -0.5
leaf 4 0.75
end
)";

TEST(TreeEnsemble, ParsesAndScoresASmallModel) {
  const auto m = TreeEnsemble::Parse(kSmall, "small");
  EXPECT_EQ(m.name(), "test.model");
  EXPECT_EQ(m.version(), "7");
  EXPECT_EQ(m.trees(), 2u);
  EXPECT_EQ(m.nodes(), 8u);
  EXPECT_DOUBLE_EQ(m.operating_point(), 0.4);
  const std::vector<double> a = {1.0, -1.0};  // left (-1), left (0.5)
  EXPECT_DOUBLE_EQ(m.Margin(a), 0.25 - 1 + 0.5);
  const std::vector<double> b = {2.0, 1.0};  // right (2), right then left (-0.5)
  EXPECT_DOUBLE_EQ(m.Margin(b), 0.25 + 2 - 0.5);
  const std::vector<double> c = {4.0, 1.0};  // right (2), right then right (0.75)
  EXPECT_DOUBLE_EQ(m.Margin(c), 0.25 + 2 + 0.75);
  const std::vector<double> missing = {NAN, NAN};  // tree 0: left; tree 1: right, f0 NaN -> right
  EXPECT_DOUBLE_EQ(m.Margin(missing), 0.25 - 1 + 0.75);
  EXPECT_NEAR(m.Probability(a), 1 / (1 + std::exp(0.25)), 1e-12);
}

TEST(TreeEnsemble, ContributionsAddUpToTheMargin) {
  const auto m = TreeEnsemble::Parse(kSmall, "small");
  for (const auto& x : {std::vector<double>{1, -1}, {2, 1}, {4, 1}, {NAN, 0}}) {
    std::vector<double> share(2, 0.0);
    const double margin = m.Attribute(x, share);
    EXPECT_DOUBLE_EQ(margin, m.Margin(x));
    // base + root values + the shares.
    EXPECT_NEAR(0.25 + 0.1 + 0.0 + share[0] + share[1], margin, 1e-12);
  }
  // {2, 1}: f0 moved tree 0 from 0.1 to 2 and tree 1 from -0.2 to -0.5; f1 tree 1 from 0 to -0.2.
  std::vector<double> share(2, 0.0);
  m.Attribute(std::vector<double>{2, 1}, share);
  EXPECT_NEAR(share[0], 1.9 - 0.3, 1e-12);
  EXPECT_NEAR(share[1], -0.2, 1e-12);
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

void ExpectRefused(const std::string& text, const std::string& where, const std::string& why) {
  try {
    TreeEnsemble::Parse(text, "bad.model");
    ADD_FAILURE() << "accepted; expected " << why;
  } catch (const ModelError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.model:" + where + ":"), std::string::npos) << what;
    EXPECT_NE(what.find(why), std::string::npos) << what;
  }
}

TEST(TreeEnsemble, MalformedModelsAreRefusedNamingTheLine) {
  const std::string good = kSmall;
  ExpectRefused("vigil-tree-ensemble 2\n", "1", "format version 2");
  ExpectRefused("some other file\n", "1", "not a Vigil tree ensemble");
  ExpectRefused(Replace(good, "base 0.25", "bias 0.25"), "6", "unknown keyword 'bias'");
  ExpectRefused(Replace(good, "split 0 0 1.5 1 2 1 0.1", "split 0 5 1.5 1 2 1 0.1"), "9",
                "must be a whole number in [0, 1]");
  // A child that points back (a cycle) or outside the tree.
  ExpectRefused(Replace(good, "split 2 0 3 3 4 0 -0.2", "split 2 0 3 0 4 0 -0.2"), "15",
                "'0' must be a whole number in [3, 4]");
  ExpectRefused(Replace(good, "leaf 2 2", "leaf 2 nan"), "11", "'nan' is not a finite number");
  ExpectRefused(Replace(good, "leaf 2 2", "leaf 2 1e999"), "11", "not a finite number");
  ExpectRefused(Replace(good, "end\n", ""), "17", "no 'end' line");
  ExpectRefused(Replace(good, "tree 1 5", "tree 1 9"), "18",
                "expected a 'split' or 'leaf' line, found 'end'");
  ExpectRefused(Replace(good, "operating_point 0.4", "operating_point 1.5"), "7",
                "operating_point must be in (0, 1)");
}

TEST(TreeEnsemble, AMissingFileIsNamed) {
  try {
    TreeEnsemble::Load("/nonexistent/af.model");
    FAIL() << "loaded a missing file";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/af.model: cannot open"), std::string::npos);
  }
}

TEST(AfModel, AModelOfOtherFeaturesIsRefusedNamingThePath) {
  const auto path = std::filesystem::temp_directory_path() / "vigil-af-other-features.model";
  std::ofstream(path) << kSmall;
  try {
    vigil::ecg::InstallAfModel(path);
    FAIL() << "installed a model of other features";
  } catch (const ModelError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    EXPECT_NE(what.find("has features [f0 f1]"), std::string::npos) << what;
  }
  std::filesystem::remove(path);
  // The process still serves the repository's model.
  EXPECT_EQ(vigil::ecg::CurrentAfModel()->name(), "ecg.af");
}

// vigil run (analysis.af_model) and vigil replay (--af-model) make their plan with the file:
// a missing one stops the start with its path.
TEST(AfModel, APlanWithAMissingModelFileFailsNamingIt) {
  auto config = vigil::replay::DefaultAnalysisConfig();
  config.af_model = "/nonexistent/ecg_af.model";
  try {
    vigil::analysis::AnalysisPlan::Make(config);
    FAIL() << "a plan was made without its model";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ecg_af.model"), std::string::npos);
  }
}

// training/train_af.py wrote 200 training windows with LightGBM's own margins next to the model
// it wrote: the evaluator compiled into Vigil must give the same numbers.
TEST(AfModel, ScoresTheTrainingWindowsAsLightGbmDid) {
  const auto model = vigil::ecg::CurrentAfModel();
  EXPECT_EQ(model->features().size(), vigil::ecg::kAfModelFeatures.size());
  EXPECT_GT(model->trees(), 10u) << "the placeholder model is built in: run training/train_af.sh";
  std::ifstream in(vigil::testing::SourceDir() / "tests/data/af_model_vectors.csv");
  ASSERT_TRUE(in) << "tests/data/af_model_vectors.csv missing";
  std::string line;
  std::getline(in, line);
  int rows = 0;
  while (std::getline(in, line)) {
    std::stringstream cells(line);
    std::vector<double> x;
    for (std::string cell; std::getline(cells, cell, ',');) {
      x.push_back(cell == "nan" ? NAN : std::stod(cell));
    }
    ASSERT_EQ(x.size(), vigil::ecg::kAfModelFeatures.size() + 1) << line;
    const double expected = x.back();
    x.pop_back();
    EXPECT_NEAR(model->Margin(x), expected, 1e-9) << "row " << rows;
    ++rows;
  }
  EXPECT_EQ(rows, 200);
}

}  // namespace
