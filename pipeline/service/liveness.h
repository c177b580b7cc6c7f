// Liveness of the service's threads, for /healthz: each lane marks when it starts and ends a
// unit of work and the run loop marks each turn. A lane busy on one unit, or a loop that has not
// turned, for longer than the deadline means monitoring has stopped for the patients behind it,
// and the orchestrator should restart the instance. Lock-free: read by the health server's
// thread while the lanes and the loop write.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace vigil::service {

class LivenessWatch {
 public:
  using Clock = std::chrono::steady_clock;

  LivenessWatch(size_t lanes, std::chrono::milliseconds deadline);

  void Begin(size_t lane, Clock::time_point now = Clock::now());
  void End(size_t lane);
  void Turn(Clock::time_point now = Clock::now());

  // Empty while every lane and the loop make progress; otherwise what is stuck and for how long.
  std::string Stalled(Clock::time_point now = Clock::now()) const;

 private:
  static int64_t Ticks(Clock::time_point t) { return t.time_since_epoch().count(); }

  std::chrono::milliseconds deadline_;
  size_t lanes_;
  std::unique_ptr<std::atomic<int64_t>[]> busy_since_;  // 0 = idle
  std::atomic<int64_t> last_turn_;                      // 0 = the loop has not started
};

}  // namespace vigil::service
