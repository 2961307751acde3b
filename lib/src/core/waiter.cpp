#include "tickinfer/waiter.hpp"

#include <thread>

#include "tickinfer/clock.hpp"

namespace tickinfer {

Completion ResultWaiter::arm(std::uint64_t tag) noexcept {
  // Relaxed: the Completion is handed to submit(), whose enqueue publishes it to the worker.
  ready_.store(0, std::memory_order_relaxed);
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
  self->error_.assign(result.error.begin(), result.error.end());
  // Release: publishes the fields above to the waiter's acquire load.
  self->ready_.store(1, std::memory_order_release);
}

bool ResultWaiter::wait_for(std::chrono::nanoseconds timeout, std::chrono::nanoseconds spin) {
  const std::int64_t start = now_ns();
  const std::int64_t spin_until = start + spin.count();
  const std::int64_t give_up = start + timeout.count();
  // Acquire pairs with the release store in on_result().
  while (!ready_.load(std::memory_order_acquire)) {
    const std::int64_t now = now_ns();
    if (now >= give_up) return false;
    if (now < spin_until) continue;
    // std::atomic::wait has no timeout: sleep in short slices so the deadline holds.
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  return true;
}

}  // namespace tickinfer
