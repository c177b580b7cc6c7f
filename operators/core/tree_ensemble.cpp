#include "operators/core/tree_ensemble.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vigil::ops {

namespace {

// The largest model accepted: a file beyond it is not a model of this kind.
constexpr size_t kMaxNodes = 1 << 20;
constexpr size_t kMaxFeatures = 1024;

class LineReader {
 public:
  LineReader(std::string_view text, std::string_view origin) : text_(text), origin_(origin) {}

  // The next non-empty line that is not a comment, split at blanks; false at the end.
  bool Next(std::vector<std::string_view>& words) {
    while (pos_ < text_.size()) {
      const size_t end = std::min(text_.find('\n', pos_), text_.size());
      std::string_view line = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      ++line_;
      words.clear();
      for (size_t i = 0; i < line.size();) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
        if (j > i) words.push_back(line.substr(i, j - i));
        i = j;
      }
      if (!words.empty() && words[0][0] != '#') return true;
    }
    return false;
  }
  [[noreturn]] void Fail(std::string_view why) const {
    throw ModelError(fmt::format("{}:{}: {}", origin_, line_, why));
  }
  void Need(const std::vector<std::string_view>& words, size_t n, std::string_view what) const {
    if (words.size() != n)
      Fail(fmt::format("'{}' needs {} fields, found {}", what, n - 1, words.size() - 1));
  }
  double Number(std::string_view word) const {
    const std::string s(word);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) {
      Fail(fmt::format("'{}' is not a finite number", word));
    }
    return v;
  }
  int64_t Integer(std::string_view word, int64_t lo, int64_t hi) const {
    const double v = Number(word);
    if (v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi)) {
      Fail(fmt::format("'{}' must be a whole number in [{}, {}]", word, lo, hi));
    }
    return static_cast<int64_t>(v);
  }

 private:
  std::string_view text_;
  std::string_view origin_;
  size_t pos_ = 0;
  int line_ = 0;
};

}  // namespace

TreeEnsemble TreeEnsemble::Parse(std::string_view text, std::string_view origin) {
  TreeEnsemble m;
  LineReader in(text, origin);
  std::vector<std::string_view> w;
  if (!in.Next(w) || w.size() != 2 || w[0] != "vigil-tree-ensemble") {
    in.Fail("not a Vigil tree ensemble (first line must be 'vigil-tree-ensemble 1')");
  }
  if (w[1] != "1") in.Fail(fmt::format("format version {} is not supported (1 is)", w[1]));
  bool ended = false, has_base = false;
  while (in.Next(w)) {
    const std::string_view key = w[0];
    if (ended) in.Fail("text after 'end'");
    if (key == "name" || key == "version") {
      in.Need(w, 2, key);
      (key == "name" ? m.name_ : m.version_) = std::string(w[1]);
    } else if (key == "features") {
      if (!m.features_.empty()) in.Fail("'features' given twice");
      if (w.size() < 2 || w.size() > kMaxFeatures + 1) in.Fail("'features' needs 1 to 1024 names");
      for (size_t i = 1; i < w.size(); ++i) m.features_.emplace_back(w[i]);
    } else if (key == "base") {
      in.Need(w, 2, key);
      m.base_ = in.Number(w[1]);
      has_base = true;
    } else if (key == "operating_point") {
      in.Need(w, 2, key);
      m.operating_point_ = in.Number(w[1]);
      if (m.operating_point_ <= 0 || m.operating_point_ >= 1)
        in.Fail("operating_point must be in (0, 1)");
    } else if (key == "tree") {
      in.Need(w, 3, key);
      if (m.features_.empty()) in.Fail("'tree' before 'features'");
      if (in.Integer(w[1], 0, INT32_MAX) != static_cast<int64_t>(m.roots_.size())) {
        in.Fail(fmt::format("tree {} out of order (expected {})", w[1], m.roots_.size()));
      }
      const auto count = static_cast<size_t>(in.Integer(w[2], 1, kMaxNodes));
      if (m.nodes_.size() + count > kMaxNodes) in.Fail("more than 2^20 nodes in all");
      const auto root = static_cast<int32_t>(m.nodes_.size());
      m.roots_.push_back(root);
      const auto features = static_cast<int64_t>(m.features_.size());
      for (size_t id = 0; id < count; ++id) {
        if (!in.Next(w)) in.Fail(fmt::format("tree {} ends after {} of {} nodes", w[1], id, count));
        Node n;
        if (w[0] == "leaf") {
          in.Need(w, 3, "leaf");
          if (in.Integer(w[1], 0, kMaxNodes) != static_cast<int64_t>(id))
            in.Fail("node out of order");
          n.value = in.Number(w[2]);
        } else if (w[0] == "split") {
          in.Need(w, 8, "split");
          if (in.Integer(w[1], 0, kMaxNodes) != static_cast<int64_t>(id))
            in.Fail("node out of order");
          n.feature = static_cast<int32_t>(in.Integer(w[2], 0, features - 1));
          n.threshold = in.Number(w[3]);
          // Children come later in the same tree: no cycles, every path ends at a leaf.
          const auto last = static_cast<int64_t>(count - 1);
          const auto left = in.Integer(w[4], static_cast<int64_t>(id) + 1, last);
          const auto right = in.Integer(w[5], static_cast<int64_t>(id) + 1, last);
          n.left = root + static_cast<int32_t>(left);
          n.right = root + static_cast<int32_t>(right);
          n.nan_left = in.Integer(w[6], 0, 1) == 1;
          n.value = in.Number(w[7]);
        } else {
          in.Fail(fmt::format("expected a 'split' or 'leaf' line, found '{}'", w[0]));
        }
        m.nodes_.push_back(n);
      }
    } else if (key == "end") {
      in.Need(w, 1, key);
      ended = true;
    } else {
      in.Fail(fmt::format("unknown keyword '{}'", key));
    }
  }
  if (!ended) in.Fail("no 'end' line (the file is cut short)");
  if (m.name_.empty() || m.version_.empty()) in.Fail("'name' and 'version' are required");
  if (m.features_.empty() || !has_base || m.roots_.empty()) {
    in.Fail("'features', 'base' and at least one tree are required");
  }
  return m;
}

TreeEnsemble TreeEnsemble::Load(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ModelError(fmt::format("{}: cannot open the model file", path.string()));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) throw ModelError(fmt::format("{}: cannot read the model file", path.string()));
  return Parse(text.str(), path.string());
}

void TreeEnsemble::RequireFeatures(std::span<const std::string_view> expected,
                                   std::string_view origin) const {
  bool same = expected.size() == features_.size();
  for (size_t i = 0; same && i < expected.size(); ++i) same = expected[i] == features_[i];
  if (!same) {
    throw ModelError(fmt::format("{}: model {} {} has features [{}], this build computes [{}]",
                                 origin, name_, version_, fmt::join(features_, " "),
                                 fmt::join(expected, " ")));
  }
}

const TreeEnsemble::Node& TreeEnsemble::Leaf(size_t tree, std::span<const double> x) const {
  const Node* n = &nodes_[static_cast<size_t>(roots_[tree])];
  while (n->feature >= 0) {
    const double v = x[static_cast<size_t>(n->feature)];
    const bool left = std::isnan(v) ? n->nan_left : v <= n->threshold;
    n = &nodes_[static_cast<size_t>(left ? n->left : n->right)];
  }
  return *n;
}

double TreeEnsemble::Margin(std::span<const double> x) const {
  double margin = base_;
  for (size_t t = 0; t < roots_.size(); ++t) margin += Leaf(t, x).value;
  return margin;
}

double TreeEnsemble::Probability(std::span<const double> x) const {
  return 1 / (1 + std::exp(-Margin(x)));
}

double TreeEnsemble::Attribute(std::span<const double> x, std::span<double> contributions) const {
  double margin = base_;
  for (size_t t = 0; t < roots_.size(); ++t) {
    const Node* n = &nodes_[static_cast<size_t>(roots_[t])];
    margin += n->value;
    while (n->feature >= 0) {
      const double v = x[static_cast<size_t>(n->feature)];
      const bool left = std::isnan(v) ? n->nan_left : v <= n->threshold;
      const Node* next = &nodes_[static_cast<size_t>(left ? n->left : n->right)];
      contributions[static_cast<size_t>(n->feature)] += next->value - n->value;
      margin += next->value - n->value;
      n = next;
    }
  }
  return margin;
}

}  // namespace vigil::ops
