#pragma once
// For callers who prefer to wait for one result instead of handling a callback.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tickinfer/result.hpp"

namespace tickinfer {

/// A reusable single-result mailbox. arm() hands out a Completion; the worker fills it and wakes the
/// waiter. Allocation-free after the first result of a given output width. One request in flight at a time.
class ResultWaiter {
 public:
  ResultWaiter() = default;
  ResultWaiter(const ResultWaiter&) = delete;
  ResultWaiter& operator=(const ResultWaiter&) = delete;

  /// Prepares for a new request. Call before submit(); not while one is in flight.
  Completion arm(std::uint64_t tag = 0) noexcept;

  /// Waits until the result arrived (spins `spin` first, then blocks). Returns false on timeout.
  bool wait_for(std::chrono::nanoseconds timeout, std::chrono::nanoseconds spin = std::chrono::microseconds(50));
  bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }

  // Valid after wait_for() returned true.
  ResultStatus status() const noexcept { return status_; }
  const std::vector<float>& outputs() const noexcept { return outputs_; }
  std::uint64_t model_version() const noexcept { return model_version_; }
  std::uint64_t tag() const noexcept { return tag_; }
  std::int64_t enqueue_ns() const noexcept { return enqueue_ns_; }
  std::int64_t batch_start_ns() const noexcept { return batch_start_ns_; }
  std::int64_t batch_end_ns() const noexcept { return batch_end_ns_; }
  std::int64_t completed_ns() const noexcept { return completed_ns_; }
  const std::string& error() const noexcept { return error_; }

 private:
  static void on_result(void* self, const Result& result);

  std::atomic<std::uint32_t> ready_{0};
  ResultStatus status_ = ResultStatus::kCancelled;
  std::vector<float> outputs_;
  std::uint64_t model_version_ = 0, tag_ = 0;
  std::int64_t enqueue_ns_ = 0, batch_start_ns_ = 0, batch_end_ns_ = 0, completed_ns_ = 0;
  std::string error_;
};

}  // namespace tickinfer
