#pragma once
// Monotonic nanosecond timestamps shared by every stage (vDSO clock_gettime: no syscall).

#include <chrono>
#include <cstdint>

namespace tickinfer {

using Clock = std::chrono::steady_clock;

/// Nanoseconds on the steady clock. Thread-safe.
inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

/// A deadline `budget` from now, in now_ns() units.
inline std::int64_t deadline_in(std::chrono::nanoseconds budget) noexcept { return now_ns() + budget.count(); }

/// Deadline value meaning "never expires".
inline constexpr std::int64_t kNoDeadline = 0;

}  // namespace tickinfer
