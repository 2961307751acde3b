#pragma once
// Waiting in tests: on a condition with a limit (never sleep-then-assert), and iteration counts that
// sanitizer runs scale down.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <thread>

namespace tickinfer::testing {

/// Polls `done` until it holds or `limit` passes; returns whether it held. Use as
/// `ASSERT_TRUE(wait_until([&] { return n == 3; }))`.
inline bool wait_until(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(60000)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up) return done();
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

/// `n` times TICKINFER_STRESS_SCALE (e.g. 0.25 under sanitizers), at least `at_least`.
inline std::uint64_t scaled(std::uint64_t n, std::uint64_t at_least = 1) {
  const char* s = std::getenv("TICKINFER_STRESS_SCALE");
  const double f = s ? std::atof(s) : 1.0;
  return std::max<std::uint64_t>(at_least, static_cast<std::uint64_t>(static_cast<double>(n) * f));
}

}  // namespace tickinfer::testing
