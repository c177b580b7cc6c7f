// `vigil doctor`: checks that a Kafka cluster is ready for Vigil - every v1 topic exists with
// the expected cleanup policy, and a transactional produce is read back by a read_committed
// consumer while an aborted one is not. Prints one line per check; for operators and the demo.
#pragma once

#include <ostream>
#include <string>

namespace vigil {

// Returns 0 when every check passes, 1 otherwise. Does not throw for Kafka errors (they are
// reported as failed checks).
int RunDoctor(const std::string& bootstrap, std::ostream& out);

}  // namespace vigil
