#include "pipeline/service/liveness.h"

#include <fmt/format.h>

namespace vigil::service {

LivenessWatch::LivenessWatch(size_t lanes, std::chrono::milliseconds deadline)
    : deadline_(deadline),
      lanes_(lanes),
      busy_since_(std::make_unique<std::atomic<int64_t>[]>(lanes)),
      last_turn_(0) {
  for (size_t i = 0; i < lanes_; ++i) busy_since_[i].store(0);
}

void LivenessWatch::Begin(size_t lane, Clock::time_point now) {
  // A steady clock's epoch is boot: a real time point is never 0.
  busy_since_[lane].store(std::max<int64_t>(1, Ticks(now)), std::memory_order_relaxed);
}

void LivenessWatch::End(size_t lane) {
  busy_since_[lane].store(0, std::memory_order_relaxed);
}

void LivenessWatch::Turn(Clock::time_point now) {
  last_turn_.store(Ticks(now), std::memory_order_relaxed);
}

std::string LivenessWatch::Stalled(Clock::time_point now) const {
  const auto age = [&](int64_t since) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        now - Clock::time_point(Clock::duration(since)));
  };
  for (size_t i = 0; i < lanes_; ++i) {
    const int64_t since = busy_since_[i].load(std::memory_order_relaxed);
    if (since != 0 && age(since) > deadline_) {
      return fmt::format("lane {} has worked on one record for {} ms (deadline {} ms)", i,
                         age(since).count(), deadline_.count());
    }
  }
  // Start-up (InitTransactions, metadata, the patient-config topic) has deadlines of its own
  // and ends the process when one passes; the loop is watched from its first turn.
  const int64_t last_turn = last_turn_.load(std::memory_order_relaxed);
  const auto loop = age(last_turn);
  if (last_turn != 0 && loop > deadline_) {
    return fmt::format("the run loop has not turned for {} ms (deadline {} ms)", loop.count(),
                       deadline_.count());
  }
  return {};
}

}  // namespace vigil::service
