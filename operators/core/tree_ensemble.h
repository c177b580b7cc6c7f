// A trained model of additive decision trees (gradient boosting, logistic link) as Vigil serves
// it in the stream: parsed from a small text file the training scripts write (training/), so
// that a model is versioned, reviewed and diffed like code, and evaluated without any machine
// learning library at run time.
//
// The text format, one item per line ('#' starts a comment line):
//   vigil-tree-ensemble 1
//   name <model name>                 e.g. ecg.af
//   version <model version>           e.g. 2026-12-03.1
//   features <name> <name> ...        the input vector, in order
//   base <margin>                     added to the trees' sum
//   operating_point <probability>     optional: the decision threshold chosen when it was
//                                     trained (default 0.5)
//   tree <index> <node count>         then that many node lines, node 0 the root:
//   split <id> <feature> <threshold> <left> <right> <nan_left 0|1> <value>
//   leaf <id> <value>
//   end
// A split sends x[feature] <= threshold to `left`, greater to `right`, NaN to the side
// `nan_left` names; `value` is the margin the node's training examples had (used only to
// attribute the prediction to features). The probability is 1 / (1 + exp(-(base + sum of the
// leaves reached))).
//
// Attribution: per feature, the sum over the trees of the changes in node value along the path
// taken at the splits on that feature (Saabas, "Interpreting random forests", 2014): the
// contributions and the root values add up to the margin exactly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::ops {

// What was wrong with a model file: "<origin>:<line>: <why>".
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TreeEnsemble {
 public:
  // Throws ModelError naming `origin` (a path or "embedded ...") and the line for anything
  // malformed: unknown keyword, a child that is not a later node of its tree, a cycle, a feature
  // index out of range, a non-finite number, a missing `end`.
  static TreeEnsemble Parse(std::string_view text, std::string_view origin);
  // Reads and parses `path`; ModelError names the path when it cannot be read.
  static TreeEnsemble Load(const std::filesystem::path& path);

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const std::vector<std::string>& features() const { return features_; }
  size_t trees() const { return roots_.size(); }
  double operating_point() const { return operating_point_; }
  size_t nodes() const { return nodes_.size(); }

  // Throws ModelError unless the model's features are exactly `expected`, in order (a model
  // trained on other inputs must not be served).
  void RequireFeatures(std::span<const std::string_view> expected, std::string_view origin) const;

  // base + the sum of the leaves `x` reaches. `x` must hold features().size() values.
  double Margin(std::span<const double> x) const;
  double Probability(std::span<const double> x) const;
  // Margin(x), with each feature's share added to `contributions` (features().size() entries,
  // not cleared first).
  double Attribute(std::span<const double> x, std::span<double> contributions) const;

 private:
  struct Node {
    int32_t feature = -1;  // -1: leaf
    int32_t left = 0;      // absolute node indices
    int32_t right = 0;
    bool nan_left = false;
    double threshold = 0;
    double value = 0;  // leaf: its margin; split: its training examples' mean margin
  };
  const Node& Leaf(size_t tree, std::span<const double> x) const;
  std::string name_;
  std::string version_;
  std::vector<std::string> features_;
  double base_ = 0;
  double operating_point_ = 0.5;
  std::vector<int32_t> roots_;
  std::vector<Node> nodes_;
};

}  // namespace vigil::ops
