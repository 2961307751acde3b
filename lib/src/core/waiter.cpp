#include "tickinfer/waiter.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/cpu_relax.hpp"
#include "tickinfer/clock.hpp"

namespace tickinfer {
namespace {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the futex word is the atomic itself");

#if defined(__linux__)
// The kernel compares *word with `expected` atomically with going to sleep, so a wake-up between our last
// check and the sleep is never lost. Spurious returns (EINTR, EAGAIN, timeout) are handled by the caller's loop.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::int64_t timeout_ns) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
  (void)syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, &ts, nullptr, 0);
}
// A private futex is keyed by address only: waking an address whose waiter already returned is harmless.
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
  (void)syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}
#endif

}  // namespace

ResultWaiter::~ResultWaiter() {
  if (in_flight()) {
    std::fprintf(stderr,
                 "tickinfer: ResultWaiter destroyed while its request is still in flight (wait_for() timed out "
                 "and the result has not arrived); keep the waiter alive until ready()\n");
    std::abort();
  }
}

Completion ResultWaiter::arm(std::uint64_t tag) noexcept {
  // Relaxed: the Completion is handed to submit(), whose enqueue publishes it (and this store) to the worker.
  ready_.store(kPending, std::memory_order_relaxed);
  timed_out_ = false;
  return Completion{&ResultWaiter::on_result, this, tag};
}

void ResultWaiter::on_result(void* self_ptr, const Result& result) {
  auto* self = static_cast<ResultWaiter*>(self_ptr);
  self->completed_ns_ = now_ns();
  self->status_ = result.status;
  self->outputs_.assign(result.outputs.begin(), result.outputs.end());  // reuses capacity after the first
  self->model_version_ = result.model_version;
  self->tag_ = result.tag;
  self->enqueue_ns_ = result.enqueue_ns;
  self->batch_start_ns_ = result.batch_start_ns;
  self->batch_end_ns_ = result.batch_end_ns;
  self->key_ = result.key;
  self->engine_ = result.engine;
  self->error_.assign(result.error.begin(), result.error.end());
  // Release: publishes the fields above; pairs with the acquire loads in ready() / wait_for(). acq_rel: the
  // read half orders nothing we need, the exchange only tells us whether a waiter announced it sleeps (the
  // compare_exchange in wait_for() is on this same word, so the two are ordered by its modification order).
  // After this store the waiter may return and destroy *self: only the word's address is used below.
  const std::uint32_t before = self->ready_.exchange(kReady, std::memory_order_acq_rel);
#if defined(__linux__)
  if (before == kSleeping) futex_wake_all(self->ready_);
#else
  (void)before;
#endif
}

bool ResultWaiter::wait_for(std::chrono::nanoseconds timeout, std::chrono::nanoseconds spin) {
  const std::int64_t start = now_ns();
  const std::int64_t spin_until = start + spin.count();
  const std::int64_t give_up = start + timeout.count();
  // Acquire (every load of ready_ here) pairs with the release exchange in on_result().
  for (std::uint32_t state = ready_.load(std::memory_order_acquire); state != kReady;
       state = ready_.load(std::memory_order_acquire)) {
    const std::int64_t now = now_ns();
    if (now >= give_up) {
      timed_out_ = true;
      return false;
    }
    if (now < spin_until) {
      internal::cpu_relax();
      continue;
    }
#if defined(__linux__)
    // Announce the sleep so on_result() knows to wake us; if the result landed meanwhile the CAS fails and the
    // loop sees kReady. Relaxed on failure: the loop's acquire load re-reads the word.
    if (state == kPending &&
        !ready_.compare_exchange_strong(state, kSleeping, std::memory_order_relaxed, std::memory_order_relaxed))
      continue;
    futex_wait(ready_, kSleeping, give_up - now);
#else
    // No futex: poll in short sleeps so the deadline holds.
    std::this_thread::sleep_for(std::chrono::microseconds(20));
#endif
  }
  return true;
}

}  // namespace tickinfer
