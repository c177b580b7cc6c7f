// Helpers shared by the test binaries: where the test broker and the reference data are.
#pragma once

#include <filesystem>
#include <string>

namespace vigil::testing {

// Bootstrap servers of the test broker that CTest's `kafka` fixture starts (override:
// VIGIL_TEST_KAFKA).
std::string KafkaBootstrap();

// The built `vigil` executable (override: VIGIL_BINARY).
std::filesystem::path VigilBinary();

// The project's source tree (override: VIGIL_SOURCE_DIR).
std::filesystem::path SourceDir();

// ../shared/data beside the source tree (override: VIGIL_SHARED_DATA). Throws std::runtime_error
// with the path it looked in when the folder or `relative` inside it is missing, so accuracy tests
// fail loudly.
std::filesystem::path SharedData(const std::string& relative = "");

// Runs `command` through the shell; returns its standard output and sets `*exit_code` to its
// exit status (-1 if it could not be started or was killed by a signal).
std::string RunCommand(const std::string& command, int* exit_code);

// A name unique to this process and call, for topics, groups and transactional ids.
std::string UniqueName(const std::string& prefix);

}  // namespace vigil::testing
