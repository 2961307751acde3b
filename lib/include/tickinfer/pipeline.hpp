#pragma once
// The lock-free request pipeline: submit() from any thread -> moodycamel queue -> micro-batching workers.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "tickinfer/clock.hpp"
#include "tickinfer/metrics.hpp"
#include "tickinfer/model_slot.hpp"
#include "tickinfer/result.hpp"
#include "tickinfer/runner.hpp"

namespace tickinfer {

enum class IdleStrategy {
  kSpin,           // lowest latency; burns the worker's core
  kSpinThenYield,  // spins, then sched_yield()s between polls
  kBlock,          // spins briefly, then sleeps on a semaphore (producers pay a wake-up syscall)
};

struct PipelineConfig {
  std::size_t feature_width = 0;                 // 0: take the model's input width
  std::size_t max_batch = 64;                    // rows per forward
  std::int64_t max_delay_us = 0;                 // >0: wait up to this long (oldest request) for a fuller batch
  std::vector<std::size_t> allowed_batch_sizes;  // empty: any size; else pad up to the next allowed size
  std::size_t queue_capacity = 65536;            // requests accepted but not yet taken by a worker
  std::size_t workers = 1;                       // >1 gives up per-producer completion order
  IdleStrategy idle = IdleStrategy::kSpinThenYield;
  std::vector<int> pin_cores;      // worker i runs on pin_cores[i]; empty: not pinned
  std::size_t max_producers = 32;  // producers made with make_producer(), sizes the preallocation
  bool warm_up = true;             // run every batch size once per worker before serving
};

class Pipeline;

/// One producer's handle: gives submit() a moodycamel producer token (FIFO per producer, no contention
/// on a shared tail). Use from one thread at a time; must not outlive its pipeline.
class Producer {
 public:
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  ~Producer();

 private:
  friend class Pipeline;
  struct State;
  explicit Producer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

/// Owns its worker threads. Made by create(); the destructor cancels what is pending and joins.
class Pipeline {
 public:
  /// Validates the config against the slot's current model and starts the workers (after warm-up).
  /// Throws Error(kInvalidConfig) with the reason, or whatever warm-up threw.
  static std::unique_ptr<Pipeline> create(const PipelineConfig& config, std::shared_ptr<ModelSlot> models,
                                          std::shared_ptr<const Backend> backend);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Thread-safe. Allocates (a token); call once per producer thread, before the hot path.
  Producer make_producer();

  /// Never blocks, never allocates. Copies `features` (must be feature_width() floats).
  /// kAccepted: `completion` runs exactly once on a worker. kRejected/kInvalid: it never runs.
  /// deadline_ns: now_ns() clock, kNoDeadline for none.
  [[nodiscard]] SubmitStatus submit(Producer& producer, std::span<const float> features, std::int64_t deadline_ns,
                                    const Completion& completion) noexcept;

  /// Stops accepting, completes everything queued with kCancelled, joins workers. Idempotent, thread-safe.
  void shutdown();

  std::size_t feature_width() const noexcept;
  const PipelineConfig& config() const noexcept;
  const Metrics& metrics() const noexcept;
  const ModelSlot& models() const noexcept;

 private:
  struct Impl;
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickinfer
