// Byte-level snapshot encoding for operator state. Each state object writes its own versioned
// format with SnapshotWriter and reads it back with SnapshotReader; the pipeline stores the bytes
// in vigil.state.v1. Little-endian, fixed width: snapshots move between machines.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace vigil::ops {

// A snapshot could not be decoded (truncated, wrong version). Restoring fails as a whole.
class SnapshotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SnapshotWriter {
 public:
  template <typename T>
  requires std::is_arithmetic_v<T>
  void Put(T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out_.append(bytes, sizeof(T));
  }
  template <typename T>
  requires std::is_arithmetic_v<T>
  void PutSpan(std::span<const T> values) {
    Put<uint64_t>(values.size());
    if (!values.empty())
      out_.append(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  }
  void PutString(std::string_view s) {
    Put<uint64_t>(s.size());
    out_.append(s);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class SnapshotReader {
 public:
  explicit SnapshotReader(std::string_view bytes) : in_(bytes) {}

  // Each Get throws SnapshotError when the bytes run out.
  template <typename T>
  requires std::is_arithmetic_v<T> T Get() {
    Need(sizeof(T));
    T value;
    std::memcpy(&value, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  template <typename T>
  requires std::is_arithmetic_v<T> std::vector<T> GetVector(size_t max_elements = 1u << 24) {
    const auto n = Get<uint64_t>();
    if (n > max_elements) throw SnapshotError("snapshot: vector too long");
    Need(n * sizeof(T));
    std::vector<T> values(n);
    if (n > 0) std::memcpy(values.data(), in_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return values;
  }
  std::string GetString(size_t max_size = 1u << 20) {
    const auto n = Get<uint64_t>();
    if (n > max_size) throw SnapshotError("snapshot: string too long");
    Need(n);
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool AtEnd() const { return pos_ == in_.size(); }
  // Throws SnapshotError if bytes are left over (a format mismatch).
  void ExpectEnd() const {
    if (!AtEnd()) throw SnapshotError("snapshot: trailing bytes");
  }

 private:
  void Need(size_t n) const {
    if (in_.size() - pos_ < n) throw SnapshotError("snapshot: truncated");
  }
  std::string_view in_;
  size_t pos_ = 0;
};

// Reads the format version a state's snapshot starts with. Throws SnapshotError naming `what`
// unless it is `current`, or `previous` when given: the format of the release before, which an
// upgrade (and its rollback) must still restore.
inline uint32_t ReadVersion(SnapshotReader& r, std::string_view what, uint32_t current,
                            uint32_t previous = 0) {
  const auto version = r.Get<uint32_t>();
  if (version != current && (previous == 0 || version != previous)) {
    throw SnapshotError(std::string(what) + ": unknown snapshot version " +
                        std::to_string(version));
  }
  return version;
}

}  // namespace vigil::ops
