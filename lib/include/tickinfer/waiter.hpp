#pragma once
// For callers who prefer to wait for one result instead of handling a callback.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tickinfer/result.hpp"

namespace tickinfer {

/// A reusable single-result mailbox. arm() hands out a Completion; whoever runs it (a worker, or the
/// shutdown() caller for a cancelled request) fills the waiter and wakes it. Allocation-free after the first
/// result of a given output width and error length. One request in flight at a time.
///
/// Lifetime: once a submit() with its Completion was accepted, the waiter must stay alive (and not be re-armed)
/// until the result arrived (ready()), even after wait_for() timed out: the request is still in flight and its
/// completion will write into the waiter. in_flight() says whether that is so. Destroying a waiter whose
/// wait_for() timed out before the result arrived aborts the process with a message (instead of letting the
/// late completion write into freed memory).
class ResultWaiter {
 public:
  ResultWaiter() = default;
  ~ResultWaiter();
  ResultWaiter(const ResultWaiter&) = delete;
  ResultWaiter& operator=(const ResultWaiter&) = delete;

  /// Prepares for a new request. Call before submit(); not while one is in flight.
  Completion arm(std::uint64_t tag = 0) noexcept;

  /// Waits until the result arrived: polls for `spin`, then sleeps in the kernel (a futex wait with the
  /// remaining timeout, woken by the completion) on Linux. Returns false on timeout; the request is then
  /// still in flight (see the lifetime rule above).
  bool wait_for(std::chrono::nanoseconds timeout, std::chrono::nanoseconds spin = std::chrono::microseconds(50));
  bool ready() const noexcept { return ready_.load(std::memory_order_acquire) == kReady; }
  /// True after a wait_for() timed out and before the result arrived: the waiter must not be destroyed.
  bool in_flight() const noexcept { return timed_out_ && !ready(); }

  // Valid after wait_for() returned true.
  ResultStatus status() const noexcept { return status_; }
  const std::vector<float>& outputs() const noexcept { return outputs_; }
  std::uint64_t model_version() const noexcept { return model_version_; }
  std::uint64_t tag() const noexcept { return tag_; }
  std::int64_t enqueue_ns() const noexcept { return enqueue_ns_; }
  std::int64_t batch_start_ns() const noexcept { return batch_start_ns_; }
  std::int64_t batch_end_ns() const noexcept { return batch_end_ns_; }
  std::int64_t completed_ns() const noexcept { return completed_ns_; }
  InstrumentKey key() const noexcept { return key_; }
  EngineKind engine() const noexcept { return engine_; }
  const std::string& error() const noexcept { return error_; }

 private:
  static void on_result(void* self, const Result& result);

  // ready_: kPending, kReady, or kSleeping (pending, and wait_for() is, or is about to be, asleep on it).
  static constexpr std::uint32_t kPending = 0, kReady = 1, kSleeping = 2;
  std::atomic<std::uint32_t> ready_{kPending};
  bool timed_out_ = false;  // the waiting thread's own flag: set by a wait_for() timeout, cleared by arm()
  ResultStatus status_ = ResultStatus::kCancelled;
  std::vector<float> outputs_;
  std::uint64_t model_version_ = 0, tag_ = 0;
  std::int64_t enqueue_ns_ = 0, batch_start_ns_ = 0, batch_end_ns_ = 0, completed_ns_ = 0;
  InstrumentKey key_ = kNoKey;
  EngineKind engine_ = EngineKind::kNone;
  std::string error_;
};

}  // namespace tickinfer
