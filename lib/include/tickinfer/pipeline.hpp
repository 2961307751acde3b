#pragma once
// The lock-free request pipeline: submit() from any thread -> moodycamel queue -> micro-batching workers.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "tickinfer/clock.hpp"
#include "tickinfer/latest_store.hpp"
#include "tickinfer/metrics.hpp"
#include "tickinfer/model_slot.hpp"
#include "tickinfer/result.hpp"
#include "tickinfer/result_ring.hpp"
#include "tickinfer/runner.hpp"

namespace tickinfer {

/// What a worker does when its queue is empty. Every strategy first polls for kIdleSpinUs (50 us), so a steady
/// feed (a request at least every ~50 us) never reaches the idle branch and sees the same latency on all three;
/// they differ once the feed pauses for longer. Producers pay the same on every strategy: submit() adds one to
/// the queue's semaphore count (one atomic add); the futex wake-up syscall is paid only when the worker is
/// actually asleep (kBlock after an idle spell). Figures (idle CPU, lone-request latency): docs/PERFORMANCE.md.
enum class IdleStrategy {
  kSpin,           // polls forever: no wake-up cost ever, but the worker's whole core is busy even when idle
  kSpinThenYield,  // polls, then sched_yield()s between polls: still a busy core when idle (issue #8: 177K yields
                   // in 3 s, mostly system time), and on a contended machine it hands the core away and wakes late
  kBlock,          // the default: polls, then sleeps on the queue's semaphore (re-checking shutdown every 5 ms):
                   // near-zero idle CPU; the first request after an idle spell longer than kIdleSpinUs pays the
                   // futex wake-up of the worker (the producer's syscall plus the scheduler's latency) on top
};

/// How long an idle worker polls by default before it yields (kSpinThenYield) or sleeps (kBlock)
/// (PipelineConfig::idle_spin_us).
inline constexpr std::int64_t kIdleSpinUs = 50;

/// What a keyed submit() does when its key already has a request queued (PipelineConfig::conflation).
enum class Conflation : std::uint8_t {
  kOff,        // every accepted request is queued on its own
  kSupersede,  // at most one queued request per key: a newer submit takes the queued one's place (and its position
               // in the queue), and the replaced request completes exactly once with kSuperseded, on a worker
  kMerge,      // the same, but the replaced request never completes (counted in metrics as merged): one completion
               // for the newest; its slot is free again at once
};

/// What a sequence model's per-key state does when a new model version is published (PipelineConfig::state_on_swap).
enum class StateOnSwap : std::uint8_t {
  kCarry,  // kept when the new version has the same state names (the registry refuses other ones by default), else
           // every key starts from zeros
  kReset,  // every key starts from zeros on every swap
};

struct PipelineConfig {
  std::size_t feature_width = 0;                 // 0: take the model's input width
  std::size_t max_batch = 64;                    // rows per forward
  std::int64_t max_delay_us = 0;                 // >0: wait up to this long (oldest request) for a fuller batch
  std::vector<std::size_t> allowed_batch_sizes;  // empty: any size; else pad up to the next allowed size
  std::size_t queue_capacity = 65536;            // requests accepted but not yet taken by a worker
  std::size_t workers = 1;                       // >1 gives up per-producer completion order
  IdleStrategy idle = IdleStrategy::kBlock;
  /// How long an idle worker polls before it yields or sleeps (kSpin: ignored). 0: at once, which hands the core
  /// to the other threads at once (a small host whose I/O threads share the worker's core).
  std::int64_t idle_spin_us = kIdleSpinUs;
  std::vector<int> pin_cores;      // worker i runs on pin_cores[i]; empty: not pinned
  std::size_t max_producers = 32;  // producers made with make_producer(), sizes the preallocation
  bool warm_up = true;             // run every batch size once per worker before serving
  // ---- the trading-engine API (docs/TRADING_API.md) ----
  std::size_t keys = 0;  // instrument keys (InstrumentRegistry::size()): keyed submits need key < keys; sizes the
                         // per-key metrics and conflation state (allocated at create, <= 2^24)
  Conflation conflation = Conflation::kOff;  // per key, for keyed submits; needs keys > 0
  std::shared_ptr<LatestStore> latest;       // non-null: workers write every kOk keyed prediction into it before its
                                        // completion runs; needs keys <= latest->keys() and the model's output width
  bool deadline_admission = false;  // submit() rejects a request whose deadline the queue ahead of it cannot meet
  double admission_fill = 0.8;      // the share of the time left to its deadline the predicted queue wait may fill:
                                    // headroom for the estimate's error (stalls, a model swap); (0, 1]
  /// A sequence model (Model::state_width() > 0, forward(x, h) -> (y, h')): the pipeline keeps h per key (zeros at
  /// first), gathers it into each row and scatters the new state back after an Ok row (a failed row leaves it as it
  /// was). Needs keyed submits (keys > 0; an unkeyed submit is kInvalid) and exactly one worker; two requests for a
  /// key in one batch run in separate forwards, in order, so batched results equal each key's sequence run alone.
  StateOnSwap state_on_swap = StateOnSwap::kCarry;
};

class Pipeline;

/// The distinct batch sizes a pipeline with `config` runs (after padding to allowed sizes), ascending: what a
/// model must be warmed up with before it serves (RegistryConfig::load.warmup_batch_sizes). Derived from the
/// same padding table the workers use. Throws Error(kInvalidConfig) for a config Pipeline::create() refuses.
std::vector<std::size_t> pipeline_batch_sizes(const PipelineConfig& config);

/// Options of one producer (Pipeline::make_producer()).
struct ProducerOptions {
  /// > 0: this producer can take its results by polling (Producer::polled(), Pipeline::poll()) instead of a
  /// callback: one single-producer single-consumer ResultRing of this many results per worker. Overflow policy:
  /// a worker never waits for the poller; a result that finds its ring full is dropped and counted
  /// (MetricsSnapshot::polled_dropped). Size it for the polled requests this producer can have in flight.
  std::size_t result_ring = 0;
};

/// One producer's handle: gives submit() a moodycamel producer token (FIFO per producer, no contention
/// on a shared tail) and its own accepted/rejected/invalid counters (one writer, own cache line; the
/// pipeline owns them, so they outlive the handle and snapshots keep counting them). Use from one thread
/// at a time; must not outlive its pipeline.
class Producer {
 public:
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  ~Producer();

  /// A Completion that delivers the result into this producer's rings, to be taken with Pipeline::poll() on this
  /// producer's thread. Never allocates. Without ProducerOptions::result_ring every such result is dropped (and
  /// counted as polled_dropped).
  Completion polled(std::uint64_t tag = 0) const noexcept;

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
  /// Every refusal is an Error: kInvalidConfig (bad config, no slot / backend / model, pinning failed),
  /// kWidthMismatch, or kModelError when the backend cannot make a runner or warm-up throws (the message names
  /// the batch size and the reason); an Error thrown by the backend or model keeps its own code.
  static std::unique_ptr<Pipeline> create(const PipelineConfig& config, std::shared_ptr<ModelSlot> models,
                                          std::shared_ptr<const Backend> backend);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Thread-safe. Allocates (a token, and the rings of ProducerOptions::result_ring, which live as long as the
  /// pipeline); call once per producer thread, before the hot path. With conflation, at most max_producers
  /// producers may be alive at once (that keeps every enqueue infallible): one more throws Error(kInvalidConfig).
  Producer make_producer();
  Producer make_producer(const ProducerOptions& options);

  /// Never blocks, never allocates (on every outcome: accepted, rejected, invalid, after shutdown).
  /// Copies `features` (must be feature_width() floats). deadline_ns: now_ns() clock, kNoDeadline for none.
  /// kAccepted: `completion` runs exactly once: on a worker thread, or, for a request still queued when
  /// shutdown() starts, with kCancelled on the thread that calls shutdown() (or ~Pipeline()), before it
  /// returns. kRejected (no free slot, shutting down, or, with deadline_admission, a deadline that the requests
  /// already queued would make it miss: counted apart as rejected_deadline) / kInvalid: it never runs.
  /// Deadline admission: admitted iff in_flight x service_ns_per_row / workers <= admission_fill x (deadline_ns -
  /// now), with in_flight the requests accepted and not yet completed and the service time the workers' moving
  /// average (MetricsSnapshot::service_ns_per_row; until a batch ran, warm-up's estimate). Two relaxed loads and a
  /// clock read more per submit with a deadline.
  [[nodiscard]] SubmitStatus submit(Producer& producer, std::span<const float> features, std::int64_t deadline_ns,
                                    const Completion& completion) noexcept;

  /// The same, for instrument `key` (< config().keys, else kInvalid; kNoKey: the unkeyed submit above). The Result
  /// carries the key and event_ns back. event_ns: when the event behind `features` happened (the LatestStore records
  /// it; 0: the enqueue time). With conflation, a queued request for `key` is replaced by this one (see Conflation);
  /// the replaced one's completion runs on a worker (kSuperseded) or never (kMerge). Never blocks, never allocates.
  [[nodiscard]] SubmitStatus submit(Producer& producer, InstrumentKey key, std::span<const float> features,
                                    std::int64_t deadline_ns, const Completion& completion,
                                    std::int64_t event_ns = 0) noexcept;

  /// Call from `producer`'s thread only. Takes one polled result (Producer::polled()) into `out`, its outputs into
  /// `outputs` (at least the model's output width); false when none is waiting. Never blocks, never allocates.
  /// With several workers, results come from one ring per worker, so they are in order only per worker.
  [[nodiscard]] bool poll(Producer& producer, PolledResult& out, std::span<float> outputs) noexcept;

  /// Stops accepting, lets each worker finish the batch it holds, joins the workers, then runs the completion
  /// of everything still queued with kCancelled on the calling thread. Returns when every accepted request has
  /// completed. Idempotent, thread-safe (a second caller waits for the first to finish).
  void shutdown();

  std::size_t feature_width() const noexcept;
  /// A sequence model's state per key, in floats (the model's at create()); 0: stateless.
  std::size_t state_width() const noexcept;
  /// Thread-safe, lock-free, never blocks. `key`'s state (or every key's) goes back to zeros before the next request
  /// for it that the worker takes: every request submitted after this call returns starts from zeros (one submitted
  /// concurrently may or may not). False for a stateless pipeline or a key >= config().keys.
  bool reset_state(InstrumentKey key) noexcept;
  bool reset_all_state() noexcept;
  const PipelineConfig& config() const noexcept;
  /// Thread-safe. Per-key breakdowns: metrics().key_snapshot() (allocates; on demand, not per request).
  const Metrics& metrics() const noexcept;
  const ModelSlot& models() const noexcept;

 private:
  struct Impl;
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickinfer
