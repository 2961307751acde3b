#pragma once
// Polled results: a bounded single-producer single-consumer ring of completed results, as an alternative to
// handling each result in the completion callback. The pipeline's worker pushes, the submitting thread polls.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <stdexcept>
#include <vector>

#include "tickinfer/result.hpp"

namespace tickinfer {

/// One completed request, copied out of the worker's Result. outputs() is valid until the slot is popped over.
struct PolledResult {
  ResultStatus status = ResultStatus::kCancelled;
  std::uint64_t tag = 0;
  std::uint64_t model_version = 0;
  std::int64_t enqueue_ns = 0, batch_start_ns = 0, batch_end_ns = 0;
  std::int64_t event_ns = 0;  // Result::event_ns
  std::uint32_t output_count = 0;
  InstrumentKey key = kNoKey;
  EngineKind engine = EngineKind::kNone;
};

/// Fixed capacity, allocated once (capacity results of up to max_outputs floats each). push() is called by one
/// thread at a time (the pipeline's worker: use with PipelineConfig::workers == 1, or one ring per worker);
/// try_pop() by one thread at a time (the polling thread). Neither blocks nor allocates.
///
/// Overflow: when the ring is full, push() drops the new result and counts it in dropped() (a worker must never
/// wait for a consumer). Size the ring for the requests a producer can have in flight (its share of the queue).
///
/// Memory ordering (rigtorp/SPSCQueue): the producer writes the slot, then stores tail with release; the
/// consumer loads tail with acquire (pairs with it) before reading the slot, and stores head with release after
/// it is done with the slot; the producer loads head with acquire (pairs with that) before reusing a slot. Each
/// side caches the other's index to touch the shared line only when it looks full / empty.
class ResultRing {
 public:
  /// capacity >= 1 results, each with up to max_outputs outputs. Throws std::invalid_argument otherwise.
  ResultRing(std::size_t capacity, std::size_t max_outputs);
  ResultRing(const ResultRing&) = delete;
  ResultRing& operator=(const ResultRing&) = delete;

  /// Producer side. False (counted in dropped()) when full or when result.outputs has more than max_outputs.
  bool push(const Result& result) noexcept;

  /// Consumer side. Copies the oldest result into `out` and its outputs into `outputs` (at least max_outputs
  /// floats); false when empty.
  bool try_pop(PolledResult& out, std::span<float> outputs) noexcept;

  /// A Completion that pushes into this ring: pass it to Pipeline::submit(). The ring must outlive the request.
  Completion completion(std::uint64_t tag) noexcept { return {&ResultRing::on_result, this, tag}; }

  std::size_t capacity() const noexcept { return capacity_; }
  /// Results dropped because the ring was full. Thread-safe.
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

 private:
  static void on_result(void* self, const Result& result) { static_cast<ResultRing*>(self)->push(result); }

  std::size_t capacity_, max_outputs_;
  std::vector<PolledResult> slots_;               // capacity_ + 1: one slot always empty tells full from empty
  std::vector<float> outputs_;                    // (capacity_ + 1) x max_outputs_
  alignas(64) std::atomic<std::size_t> head_{0};  // consumer's index
  alignas(64) std::size_t cached_tail_ = 0;       // consumer's copy of tail_
  alignas(64) std::atomic<std::size_t> tail_{0};  // producer's index
  alignas(64) std::size_t cached_head_ = 0;       // producer's copy of head_
  alignas(64) std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace tickinfer
