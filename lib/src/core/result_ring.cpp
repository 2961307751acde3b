#include "tickinfer/result_ring.hpp"

#include <algorithm>

namespace tickinfer {

ResultRing::ResultRing(std::size_t capacity, std::size_t max_outputs)
    : capacity_(capacity), max_outputs_(max_outputs), slots_(capacity + 1), outputs_((capacity + 1) * max_outputs) {
  if (capacity == 0) throw std::invalid_argument("ResultRing: capacity must be >= 1");
}

bool ResultRing::push(const Result& result) noexcept {
  const std::size_t tail = tail_.load(std::memory_order_relaxed);  // only this side writes it
  const std::size_t next = tail + 1 == slots_.size() ? 0 : tail + 1;
  if (next == cached_head_) {
    // Acquire: pairs with the consumer's release store of head_, so the slot it freed is not read any more.
    cached_head_ = head_.load(std::memory_order_acquire);
    if (next == cached_head_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);  // a statistic: orders nothing
      return false;
    }
  }
  if (result.outputs.size() > max_outputs_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  PolledResult& slot = slots_[tail];
  slot.status = result.status;
  slot.tag = result.tag;
  slot.model_version = result.model_version;
  slot.enqueue_ns = result.enqueue_ns;
  slot.event_ns = result.event_ns;
  slot.batch_start_ns = result.batch_start_ns;
  slot.batch_end_ns = result.batch_end_ns;
  slot.output_count = static_cast<std::uint32_t>(result.outputs.size());
  slot.key = result.key;
  slot.engine = result.engine;
  std::copy(result.outputs.begin(), result.outputs.end(), outputs_.begin() + static_cast<long>(tail * max_outputs_));
  // Release: the slot's contents are visible to a consumer that acquires this tail (pairs with try_pop()).
  tail_.store(next, std::memory_order_release);
  return true;
}

bool ResultRing::try_pop(PolledResult& out, std::span<float> outputs) noexcept {
  const std::size_t head = head_.load(std::memory_order_relaxed);  // only this side writes it
  if (head == cached_tail_) {
    // Acquire: pairs with the producer's release store of tail_, so the slot's contents are visible.
    cached_tail_ = tail_.load(std::memory_order_acquire);
    if (head == cached_tail_) return false;
  }
  out = slots_[head];
  const std::size_t n = std::min<std::size_t>(out.output_count, outputs.size());
  std::copy_n(outputs_.begin() + static_cast<long>(head * max_outputs_), n, outputs.begin());
  // Release: the producer reuses this slot only after this copy (pairs with push()'s acquire load of head_).
  head_.store(head + 1 == slots_.size() ? 0 : head + 1, std::memory_order_release);
  return true;
}

}  // namespace tickinfer
