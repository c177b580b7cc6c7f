// Keeping what Vigil produces below the broker's message size limit. A message over the limit
// fails the whole transaction, and the retry fails the same way: a crash loop that follows the
// partition to every instance. So outputs are bounded before they are produced.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/v1/dead_letter.pb.h"
#include "vigil/v1/state.pb.h"

namespace vigil::service {

struct SnapshotFit {
  size_t original_bytes = 0;
  size_t bytes = 0;                  // after fitting
  std::vector<std::string> dropped;  // operator states left out, largest first
  bool fits = true;                  // false: even the smallest form is too large, do not produce
};

// Drops operator states, largest first, until `snapshot` serializes to at most `max_bytes`. The
// alert manager's state goes last: without it a restore could raise an open alert a second time
// and never clear it. An operator whose state was dropped restarts fresh after a restore, as for
// a new patient.
SnapshotFit FitSnapshot(v1::PatientStateSnapshot& snapshot, size_t max_bytes);

// The same for the record's key (a hostile key can be as large as a value).
void SetOriginalKey(v1::DeadLetter& letter, std::string_view key, size_t max_key_bytes);

// Puts `value` into `letter` whole when it has at most `max_value_bytes`, else its prefix, and
// records the original size. The topic, partition and offset already name the whole record.
void SetOriginalValue(v1::DeadLetter& letter, std::string_view value, size_t max_value_bytes);

}  // namespace vigil::service
