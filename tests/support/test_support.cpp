#include "support/test_support.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace vigil::testing {

namespace {
std::string FromEnv(const char* name, const char* fallback) {
  const char* env = std::getenv(name);
  return env && *env ? env : fallback;
}
}  // namespace

std::string KafkaBootstrap() {
  return FromEnv("VIGIL_TEST_KAFKA", VIGIL_TEST_KAFKA_DEFAULT);
}

std::filesystem::path VigilBinary() {
  return FromEnv("VIGIL_BINARY", VIGIL_BINARY_DEFAULT);
}

std::filesystem::path SourceDir() {
  return FromEnv("VIGIL_SOURCE_DIR", VIGIL_SOURCE_DIR_DEFAULT);
}

std::filesystem::path SharedData(const std::string& relative) {
  const std::filesystem::path root = FromEnv("VIGIL_SHARED_DATA", VIGIL_SHARED_DATA_DEFAULT);
  const auto path = relative.empty() ? root : root / relative;
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error(fmt::format(
        "reference data missing: {} does not exist. Accuracy tests need ../shared/data beside "
        "the project (see ../shared/data/README.md); set VIGIL_SHARED_DATA to point elsewhere",
        path.string()));
  }
  return path;
}

std::string RunCommand(const std::string& command, int* exit_code) {
  std::string output;
  *exit_code = -1;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  if (status != -1 && WIFEXITED(status)) *exit_code = WEXITSTATUS(status);
  return output;
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return fmt::format("{}-{}-{}", prefix, getpid(), counter++);
}

}  // namespace vigil::testing
