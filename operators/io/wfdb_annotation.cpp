#include "operators/io/wfdb_annotation.h"

#include <fmt/format.h>

#include <array>
#include <fstream>

namespace vigil::io {
namespace {

constexpr int kSkip = 59;
constexpr int kNum = 60;
constexpr int kSub = 61;
constexpr int kChn = 62;
constexpr int kAux = 63;
constexpr int kRhythm = 28;

// WFDB's annotation code table (ecgcodes.h), index = code.
constexpr std::array<const char*, 50> kMnemonics = {
    " ", "N", "L", "R", "a", "V",  "F", "J", "A", "S", "E", "j", "/", "Q", "~", " ", "|",
    " ", "s", "T", "*", "D", "\"", "=", "p", "B", "^", "t", "+", "u", "?", "!", "[", "]",
    "e", "n", "@", "x", "f", "(",  ")", "r", " ", " ", " ", " ", " ", " ", " ", " "};

}  // namespace

const char* WfdbAnnotation::Mnemonic() const {
  return code >= 0 && code < static_cast<int>(kMnemonics.size()) ? kMnemonics[code] : " ";
}

bool WfdbAnnotation::IsBeat() const {
  switch (code) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 7:
    case 8:
    case 9:
    case 10:
    case 11:
    case 12:
    case 13:
    case 34:
    case 35:
    case 38:
    case 41:
      return true;
    default:
      return false;
  }
}

char WfdbAnnotation::AamiClass() const {
  switch (code) {
    case 1:
    case 2:
    case 3:
    case 11:
    case 34:
      return 'N';  // N L R j e
    case 4:
    case 7:
    case 8:
    case 9:
      return 'S';  // a J A S
    case 5:
    case 10:
    case 41:
      return 'V';  // V E r
    case 6:
      return 'F';  // F
    case 12:
    case 13:
    case 35:
    case 38:
      return 'Q';  // / Q n f
    default:
      return '\0';
  }
}

std::vector<WfdbAnnotation> ReadWfdbAnnotations(const std::filesystem::path& record,
                                                const std::string& annotator) {
  std::filesystem::path file = record;
  file += "." + annotator;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw WfdbError(fmt::format("{}: cannot open WFDB annotation file", file.string()));
  const std::vector<unsigned char> b((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
  std::vector<WfdbAnnotation> out;
  int64_t time = 0;
  int num = 0, chan = 0;
  size_t pos = 0;
  auto word = [&](size_t at) { return b[at] | (b[at + 1] << 8); };
  while (pos + 2 <= b.size()) {
    const int w = word(pos);
    const int a = w >> 10;
    const int i = w & 0x3FF;
    const size_t at = pos;
    pos += 2;
    if (a == 0 && i == 0) break;  // end of file marker
    if (a == kSkip) {
      if (pos + 4 > b.size())
        throw WfdbError(fmt::format("{}@{}: truncated SKIP", file.string(), at));
      // PDP-11 order: high 16 bits first, each 16-bit half little-endian.
      const int32_t skip = static_cast<int32_t>((static_cast<uint32_t>(word(pos)) << 16) |
                                                static_cast<uint32_t>(word(pos + 2)));
      time += skip;
      pos += 4;
      continue;
    }
    if (a == kNum || a == kSub || a == kChn || a == kAux) {
      if (out.empty() && a != kNum && a != kChn) {
        throw WfdbError(fmt::format("{}@{}: code {} before any annotation", file.string(), at, a));
      }
      if (a == kNum) {
        num = i;
        if (!out.empty()) out.back().num = i;
      } else if (a == kSub) {
        out.back().subtype = i;
      } else if (a == kChn) {
        chan = i;
        if (!out.empty()) out.back().channel = i;
      } else {  // AUX: i bytes of text, padded to an even length
        if (pos + static_cast<size_t>(i) > b.size()) {
          throw WfdbError(
              fmt::format("{}@{}: AUX of {} bytes runs past the end", file.string(), at, i));
        }
        std::string aux(reinterpret_cast<const char*>(&b[pos]), static_cast<size_t>(i));
        while (!aux.empty() && aux.back() == '\0') aux.pop_back();
        out.back().aux = std::move(aux);
        pos += static_cast<size_t>(i + (i & 1));
      }
      continue;
    }
    if (a > 49) {
      throw WfdbError(fmt::format("{}@{}: unknown pseudo-code {}", file.string(), at, a));
    }
    time += i;
    WfdbAnnotation ann;
    ann.sample = time;
    ann.code = a;
    ann.num = num;
    ann.channel = chan;
    out.push_back(std::move(ann));
  }
  return out;
}

std::vector<RhythmInterval> RhythmIntervals(const std::vector<WfdbAnnotation>& annotations,
                                            int64_t num_samples) {
  std::vector<RhythmInterval> out;
  for (const auto& a : annotations) {
    if (a.code != kRhythm || a.aux.empty()) continue;
    std::string rhythm = a.aux;
    if (rhythm.front() == '(') rhythm.erase(0, 1);
    if (!out.empty()) out.back().end = a.sample;
    out.push_back({rhythm, a.sample, num_samples});
  }
  std::erase_if(out, [](const RhythmInterval& r) { return r.end <= r.start; });
  return out;
}

}  // namespace vigil::io
