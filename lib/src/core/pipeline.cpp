// GCC 12 reports a false -Wstringop-overflow inside moodycamel's inlined enqueue_bulk; the location it
// names is libstdc++'s <atomic>, so the pragma must precede every include.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

#include "tickinfer/pipeline.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include <blockingconcurrentqueue.h>

#include "core/affinity.hpp"
#include "core/cpu_relax.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/mutex.hpp"

// Memory ordering: who may still touch a request slot, and when shutdown() may finish.
//
// A slot is in exactly one place: the free-slot pool, a submit() that took it, the request queue, a worker's
// batch, or the shutdown drain. submit() decides to accept at one instant: its successful compare-exchange on
// the pool's head word (SlotPool::take). shutdown() closes the pool with a fetch_or of a "closed" bit on that
// same word (SlotPool::close). Both are read-modify-writes of one atomic, so they are totally ordered in its
// modification order and each reads the value left by the one before ([atomics.order] p10), whatever their
// memory_order: either the take comes first, and that slot is counted as out until it reaches the queue (the
// drain cancels it) or comes back (try_enqueue failed); or the close comes first, and the take sees the bit and
// rejects. There is no store-then-load (Dekker) pattern, so nothing needs seq_cst and there is no in-flight
// counter on the hot path. The drain ends when every slot is home (pool tail - head == slots; head no longer
// moves once closed), which means no submit() still holds one.
//
// Request data (completion, deadline, features) is published by the request queue (moodycamel: release on
// enqueue, acquire on dequeue). A slot's reuse is ordered by the pool: the giver's release store of a cell's
// sequence number pairs with the taker's acquire load of it, and back.

// Memory ordering, conflation (Conflation::kSupersede / kMerge): one atomic word per key, `pending[key]`, holds the
// slot of the key's queued request (kNoSlot: none). The request queue then carries, for a conflated request, not its
// slot but a key token (kKeyToken | key) that stands for "whatever is pending for this key when a worker gets here".
//  - submit() fills its slot, then exchange(slot, acq_rel) on pending[key]. Release publishes the slot's request and
//    features to whoever takes the slot out of the word next (pairs with the acquire of the worker's claim or of a
//    later submit's exchange); acquire makes the previous occupant's request visible to us, since we now own it.
//  - The exchange returned kNoSlot: this submit made the word non-empty, so it enqueues the key token. Otherwise it
//    replaced the queued request `old`, whose token is already queued (the newest takes its queue position): it
//    owns `old` now; kMerge gives the slot back at once, kSupersede marks it and enqueues the slot itself, so a
//    worker completes it (kSuperseded) without running it.
//  - A worker that dequeues a key token claims the slot with exchange(kNoSlot, acq_rel) (acquire pairs with the
//    submit's release above; moodycamel's own release/acquire publishes the token).
// Exactly once: every exchange returns a distinct value of the word's modification order, so each slot stored is
// taken out by exactly one exchange: a submit's (it is superseded or merged) or a worker's claim (it runs). Tokens
// never outnumber non-empty words: only a submit that found the word empty enqueues one, and only a claim, which
// consumes one token, empties it; so a claim never finds the word empty (resolve() skips it if it did). Shutdown:
// a token's submit took a slot before the pool closed, so the drain waits for it (all_home) and then claims it.
// Enqueues cannot fail while at most max_producers producers are alive (make_producer() enforces it when
// conflating): queue entries never outnumber slots, and moodycamel preallocated room for max_producers + 1
// producers to hold the whole capacity each. A replaced request's enqueue therefore needs no failure path.

namespace tickinfer {
namespace {

using internal::cpu_relax;

// A blocked worker re-checks for shutdown at least this often (shutdown() waits at most this long for it).
constexpr std::int64_t kBlockTimeoutUs = 5000;
// An idle worker reads the clock once per this many polls (the clock read costs more than a poll).
constexpr unsigned kPollsPerClockRead = 64;

// One accepted request. Features live in the arena at index * width.
struct Request {
  Completion completion;
  std::int64_t deadline_ns;
  std::int64_t enqueue_ns;
  std::int64_t event_ns;  // the caller's event time (LatestStore); 0: enqueue_ns
  InstrumentKey key;
  bool superseded;  // conflation replaced it: complete with kSuperseded, do not run
  // A sequence model: the reset counts (the key's, every key's) when it was submitted; the worker zeroes the state
  // before gathering it for a request that carries a newer count than the one it last applied.
  std::uint32_t reset_stamp, reset_all_stamp;
};

// Queue entries: a slot index (< 2^31: queue_capacity is validated), or, for a conflated request, kKeyToken | key.
constexpr std::uint32_t kKeyToken = std::uint32_t{1} << 31;
constexpr std::uint32_t kNoSlot = 0xffffffffu;  // pending[key]: no request queued for the key
constexpr std::size_t kMaxKeys = std::size_t{1} << 24;

// A Completion whose fn is this delivers into the producer's rings (Producer::polled()). The pipeline recognises
// the pointer and pushes into the ring of the completing worker; called directly, it pushes into the first ring.
struct ProducerRings {
  std::vector<std::unique_ptr<ResultRing>> per_worker;
};
void deliver_polled(void* rings, const Result& result) {
  auto* r = static_cast<ProducerRings*>(rings);
  if (r && !r->per_worker.empty()) (void)r->per_worker.front()->push(result);
}

// The request queue's semaphore spins 10000 polls before sleeping by default; the worker already polled for
// kIdleSpinUs before it calls wait_dequeue_bulk_timed(), so it sleeps at once.
struct QueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static const int MAX_SEMA_SPINS = 0;
};
using RequestQueue = moodycamel::BlockingConcurrentQueue<std::uint32_t, QueueTraits>;

// The free request slots: a bounded multi-producer multi-consumer ring (Vyukov's), preallocated, with room for
// every slot, so giving a slot back can never fail and never allocates. take() is one compare-exchange on head.
class SlotPool {
 public:
  enum class Take { kTaken, kEmpty, kClosed };

  explicit SlotPool(std::uint32_t slots)
      : mask_(std::bit_ceil(std::uint64_t{slots}) - 1), slots_(slots), cells_(mask_ + 1) {
    // Single-threaded: the threads that use the pool are started later (thread creation publishes this).
    for (std::uint64_t i = 0; i <= mask_; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < slots; ++i) {
      cells_[i].slot = i;
      cells_[i].seq.store(std::uint64_t{i} + 1, std::memory_order_relaxed);
    }
    tail_.store(slots, std::memory_order_relaxed);
  }

  Take take(std::uint32_t& slot) noexcept {
    // Relaxed head loads/CAS: the accept decision needs only head's modification order (see "Memory ordering").
    std::uint64_t pos = head_.load(std::memory_order_relaxed);
    Cell* cell = nullptr;
    for (;;) {
      if (pos & kClosed) return Take::kClosed;
      cell = &cells_[pos & mask_];
      // Acquire pairs with the release store in give_back(): the slot index written there is visible.
      const std::uint64_t seq = cell->seq.load(std::memory_order_acquire);
      const auto lag = static_cast<std::int64_t>(seq - (pos + 1));
      if (lag == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed, std::memory_order_relaxed)) break;
      } else if (lag < 0) {
        return Take::kEmpty;  // every slot is out (or the one being given back is not written yet)
      } else {
        pos = head_.load(std::memory_order_relaxed);  // another taker moved head
      }
    }
    slot = cell->slot;
    // Release pairs with the acquire load in give_back(): our read of `slot` happens before the cell is refilled.
    cell->seq.store(pos + mask_ + 1, std::memory_order_release);
    return Take::kTaken;
  }

  /// Never fails: the ring has a cell for every slot. May spin briefly while a taker finishes its two steps.
  void give_back(const std::uint32_t* slots, std::size_t count) noexcept {
    std::size_t done = 0;
    unsigned waits = 0;
    while (done < count) {
      // Relaxed tail load/CAS: claims cells; the data handoff is ordered by each cell's sequence number.
      std::uint64_t pos = tail_.load(std::memory_order_relaxed);
      std::size_t ready = 0;
      // Acquire pairs with the release store in take(): the previous occupant was read before we overwrite it.
      while (ready < count - done && cells_[(pos + ready) & mask_].seq.load(std::memory_order_acquire) == pos + ready)
        ++ready;
      if (ready == 0) {
        // A taker claimed this cell but has not released it yet, or another giver moved tail.
        if (++waits % 1024 == 0) std::this_thread::yield();
        cpu_relax();
        continue;
      }
      if (!tail_.compare_exchange_weak(pos, pos + ready, std::memory_order_relaxed, std::memory_order_relaxed))
        continue;
      for (std::size_t i = 0; i < ready; ++i) {
        Cell& cell = cells_[(pos + i) & mask_];
        cell.slot = slots[done + i];
        // Release pairs with the acquire load in take().
        cell.seq.store(pos + i + 1, std::memory_order_release);
      }
      done += ready;
    }
  }
  void give_back(std::uint32_t slot) noexcept { give_back(&slot, 1); }

  /// Takes fail from now on (kClosed); give_back() still works. Relaxed: see "Memory ordering" (one RMW on head,
  /// ordered against every take by head's modification order).
  void close() noexcept { head_.fetch_or(kClosed, std::memory_order_relaxed); }

  /// Slots out (taken, not yet given back): requests accepted and not completed. An estimate under concurrent use,
  /// never below the true count at the moment tail is read. Relaxed: deadline admission's input, orders nothing.
  std::uint64_t in_use() const noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    const std::uint64_t head = head_.load(std::memory_order_relaxed) & ~kClosed;
    const auto free = static_cast<std::int64_t>(tail - head);  // a take after our tail load can make it < 0
    if (free <= 0) return slots_;
    return static_cast<std::uint64_t>(free) >= slots_ ? 0 : slots_ - static_cast<std::uint64_t>(free);
  }

  /// After close(): every slot is back. Relaxed: a count; the drain reads no data through it, and head no
  /// longer moves (no take succeeds after the close).
  bool all_home() const noexcept {
    const std::uint64_t head = head_.load(std::memory_order_relaxed) & ~kClosed;
    return tail_.load(std::memory_order_relaxed) - head == slots_;
  }

 private:
  static constexpr std::uint64_t kClosed = std::uint64_t{1} << 63;
  struct Cell {
    std::atomic<std::uint64_t> seq{0};  // pos + 1: holds the slot given back at pos; pos: free for the giver at pos
    std::uint32_t slot = 0;
  };

  const std::uint64_t mask_;
  const std::uint32_t slots_;
  std::vector<Cell> cells_;
  alignas(64) std::atomic<std::uint64_t> head_{0};  // next position to take; kClosed once closed
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // next position to give back into
};

// Rows to run for n real rows, n in 1..max_batch (config validated).
std::vector<std::size_t> padding_table(const PipelineConfig& config) {
  std::vector<std::size_t> table(config.max_batch + 1, 0);
  for (std::size_t n = 1; n <= config.max_batch; ++n) {
    table[n] = n;
    if (!config.allowed_batch_sizes.empty()) {
      const auto it = std::lower_bound(config.allowed_batch_sizes.begin(), config.allowed_batch_sizes.end(), n);
      table[n] = *it;  // validated: the largest allowed size is >= max_batch
    }
  }
  return table;
}

std::vector<std::size_t> distinct_sizes(const std::vector<std::size_t>& table) {
  std::vector<std::size_t> sizes;
  for (std::size_t n = 1; n < table.size(); ++n)
    if (sizes.empty() || sizes.back() != table[n]) sizes.push_back(table[n]);
  return sizes;
}

void validate(const PipelineConfig& c) {
  auto fail = [](const std::string& why) { throw Error(ErrorCode::kInvalidConfig, "pipeline config: " + why); };
  if (c.max_batch == 0) fail("max_batch must be >= 1");
  if (c.max_batch > 65536) fail("max_batch must be <= 65536");
  if (c.queue_capacity == 0) fail("queue_capacity must be >= 1");
  if (c.queue_capacity > (std::size_t{1} << 31)) fail("queue_capacity must be < 2^31");
  if (c.workers == 0) fail("workers must be >= 1");
  if (c.max_delay_us < 0) fail("max_delay_us must be >= 0");
  if (c.idle_spin_us < 0) fail("idle_spin_us must be >= 0");
  if (!c.pin_cores.empty() && c.pin_cores.size() < c.workers)
    fail("pin_cores names " + std::to_string(c.pin_cores.size()) + " cores for " + std::to_string(c.workers) +
         " workers");
  if (c.keys > kMaxKeys) fail(std::string("keys must be <= ").append(std::to_string(kMaxKeys)));
  if (!(c.admission_fill > 0.0 && c.admission_fill <= 1.0)) fail("admission_fill must be in (0, 1]");
  if (c.conflation != Conflation::kOff && c.keys == 0) fail("conflation needs keys > 0");
  if (c.latest && c.keys == 0) fail("a latest-prediction store needs keys > 0");
  if (c.latest && c.latest->keys() < c.keys)
    fail(std::string("the latest-prediction store has ")
             .append(std::to_string(c.latest->keys()))
             .append(" keys, the pipeline ")
             .append(std::to_string(c.keys)));
  if (!c.allowed_batch_sizes.empty()) {
    if (!std::is_sorted(c.allowed_batch_sizes.begin(), c.allowed_batch_sizes.end()) ||
        std::adjacent_find(c.allowed_batch_sizes.begin(), c.allowed_batch_sizes.end()) != c.allowed_batch_sizes.end())
      fail("allowed_batch_sizes must be strictly increasing");
    if (c.allowed_batch_sizes.front() == 0) fail("allowed_batch_sizes must be >= 1");
    if (c.allowed_batch_sizes.back() < c.max_batch)
      fail("the largest allowed batch size (" + std::to_string(c.allowed_batch_sizes.back()) +
           ") is below max_batch (" + std::to_string(c.max_batch) + ")");
  }
}

}  // namespace

std::vector<std::size_t> pipeline_batch_sizes(const PipelineConfig& config) {
  validate(config);
  return distinct_sizes(padding_table(config));
}

struct Producer::State {
  State(RequestQueue& queue, Metrics& m, ProducerRings* r, std::atomic<std::size_t>* live_count)
      : queue_token(queue), metrics(m), counters(m.acquire_producer()), rings(r), live(live_count) {}
  ~State() {
    metrics.release_producer(counters);
    // Relaxed: a count make_producer() checks; the token's own destruction is ordered by moodycamel.
    if (live) live->fetch_sub(1, std::memory_order_relaxed);
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  moodycamel::ProducerToken queue_token;  // FIFO per producer, no shared tail
  Metrics& metrics;
  ProducerCounters& counters;      // this producer's, single writer
  ProducerRings* rings;            // polled results (owned by the pipeline); null without ProducerOptions::result_ring
  std::size_t next_ring = 0;       // poll()'s round-robin position
  std::atomic<std::size_t>* live;  // the pipeline's live-producer count (conflation only), else null
};

struct Pipeline::Impl {
  PipelineConfig config;
  std::size_t width = 0;
  std::shared_ptr<ModelSlot> models;
  std::shared_ptr<const Backend> backend;
  Metrics metrics;

  // Slot pool: bounded capacity is exactly the number of slots, so "queue full" is exact.
  std::vector<Request> requests;
  std::vector<float> arena;
  SlotPool free_slots;
  RequestQueue queue;

  std::vector<std::size_t> padded_rows_for;  // [n] = rows to run for n real rows
  std::size_t runner_rows = 0;
  // Extra forwards a failed batch may spend isolating the rows that throw: 3 * bit_width(max_batch) (21 at
  // max_batch 64). Isolating one bad row (or one run of adjacent bad rows) takes about bit_width(max_batch),
  // two scattered ones about twice that; a model that always throws costs 1 + budget forwards per batch.
  std::size_t retry_budget = 0;

  // Conflation: pending[key] is the slot of the key's queued request, kNoSlot if none (see "Memory ordering").
  const bool conflating;
  const std::uint64_t admission_fill_x256;  // config.admission_fill in 1/256
  std::unique_ptr<std::atomic<std::uint32_t>[]> pending;
  std::atomic<std::size_t> live_producers{0};  // producers alive; checked by make_producer() when conflating

  // A sequence model's per-key state (state_width > 0): keys x state_width floats, read and written only by the one
  // worker. Resets: reset_state() bumps reset_requested[key] (reset_all_state(): reset_all_requested); submit()
  // stamps each request with both counts, and the worker zeroes the key (every key) before gathering a request whose
  // stamp is newer than the one it applied last, so a reset takes effect exactly from the requests submitted after
  // it. Relaxed: the stamp is read on the thread that submits, after its own reset_state() (sequenced before), and
  // travels to the worker inside the request (published by the enqueue's release, the dequeue's acquire).
  const std::size_t state_width;
  std::vector<float> state;
  std::unique_ptr<std::atomic<std::uint32_t>[]> reset_requested;
  std::atomic<std::uint32_t> reset_all_requested{0};
  std::vector<std::uint32_t> reset_seen;   // worker's: per key, the newest stamp applied
  std::uint32_t reset_all_seen = 0;        // worker's
  std::vector<std::uint32_t> key_segment;  // worker's: per key, the forward that last took it (duplicate keys split)
  std::uint32_t segment = 0;
  std::vector<std::string> served_state_names;  // worker's: the served model's (a swap compares them)

  // Polled results: every producer's rings, kept until the pipeline dies (a late result may still be pushed).
  Mutex rings_mutex;
  std::vector<std::unique_ptr<ProducerRings>> rings TICKINFER_GUARDED_BY(rings_mutex);

  // Release on store / acquire on load: a worker that sees stop also sees everything before shutdown().
  std::atomic<bool> stopping{false};
  std::vector<std::thread> workers;
  std::once_flag shutdown_once;

  // Start-up handshake (off the hot path, so a mutex is fine).
  Mutex start_mutex;
  std::condition_variable start_cv;
  std::size_t started TICKINFER_GUARDED_BY(start_mutex) = 0;
  std::exception_ptr start_error TICKINFER_GUARDED_BY(start_mutex);

  Impl(const PipelineConfig& cfg, std::size_t feature_width, std::size_t state_floats, std::shared_ptr<ModelSlot> slot,
       std::shared_ptr<const Backend> be)
      : config(cfg),
        width(feature_width),
        models(std::move(slot)),
        backend(std::move(be)),
        metrics(cfg.max_batch, cfg.workers, cfg.keys),
        requests(cfg.queue_capacity),
        arena(cfg.queue_capacity * feature_width),
        free_slots(static_cast<std::uint32_t>(cfg.queue_capacity)),
        queue(cfg.queue_capacity + 64 * (cfg.max_producers + 1), cfg.max_producers + 1, 0),
        padded_rows_for(padding_table(cfg)),
        runner_rows(padded_rows_for[cfg.max_batch]),
        retry_budget(3 * static_cast<std::size_t>(std::bit_width(cfg.max_batch))),
        conflating(cfg.conflation != Conflation::kOff),
        admission_fill_x256(static_cast<std::uint64_t>(std::lround(cfg.admission_fill * 256.0))),
        state_width(state_floats) {
    if (state_width > 0) {
      state.assign(cfg.keys * state_width, 0.0f);
      reset_requested = std::make_unique<std::atomic<std::uint32_t>[]>(cfg.keys);
      for (std::size_t k = 0; k < cfg.keys; ++k) reset_requested[k].store(0, std::memory_order_relaxed);
      reset_seen.assign(cfg.keys, 0);
      key_segment.assign(cfg.keys, 0);
    }
    if (conflating) {
      pending = std::make_unique<std::atomic<std::uint32_t>[]>(cfg.keys);
      // Relaxed: the workers that read them are started later (thread creation publishes these stores).
      for (std::size_t k = 0; k < cfg.keys; ++k) pending[k].store(kNoSlot, std::memory_order_relaxed);
    }
  }

  // One batch in flight on one worker: what run_batch() and forward_rows() share.
  struct Batch {
    Runner& runner;
    const Model* model;
    WorkerStats& stats;
    const std::uint32_t* slots;  // the dequeued slots, in queue order
    std::size_t count;
    const std::uint32_t* live;  // positions (into slots) of the rows to run, ascending
    const std::vector<std::uint8_t>& is_live;
    std::uint8_t* finite;  // per row of the forward being completed: its outputs (and new state) are finite
    std::string& error;    // the last failure's message (reserved: no allocation for usual lengths)
    std::size_t worker = 0;
    EngineKind engine = EngineKind::kNone;  // the model's engine
    std::size_t next = 0;                   // next position to complete (completions follow queue order)
    std::size_t retries_left = 0;
    bool retried = false;
  };

  SubmitStatus submit(Producer& producer, InstrumentKey key, std::span<const float> features, std::int64_t deadline_ns,
                      const Completion& completion, std::int64_t event_ns) noexcept;
  bool admits(std::int64_t deadline_ns, std::int64_t now) const noexcept;
  void enqueue_infallible(Producer& producer, std::uint32_t entry) noexcept;
  std::size_t resolve(std::uint32_t* entries, std::size_t count) noexcept;
  void record_service_time(std::int64_t elapsed_ns, std::size_t rows) noexcept;

  void worker_main(std::size_t index);
  void start_worker(std::size_t index, std::unique_ptr<Runner>& runner, std::shared_ptr<const Model>& model,
                    std::uint64_t& generation, EngineKind& engine);
  // Returns the rows it ran (live: neither expired nor superseded).
  std::size_t run_batch(std::size_t index, Runner& runner, std::shared_ptr<const Model>& model,
                        std::uint64_t& generation, EngineKind& engine, const std::uint32_t* slots, std::size_t count,
                        std::int64_t formation_start_ns, std::vector<std::uint8_t>& is_live,
                        std::vector<std::uint8_t>& finite, std::vector<std::uint32_t>& live, std::string& error);
  bool forward_rows(Batch& b, std::size_t begin, std::size_t end, std::int64_t formation_start_ns, bool known_bad);
  void complete_expired_before(Batch& b, std::size_t position) noexcept;
  // Completes one request: its key (and per-key count, on `worker`'s stats), the LatestStore for a kOk keyed one,
  // then the callback or the producer's ring. `worker`: the completing worker, or 0 for the drain (workers joined).
  void complete(const Request& request, Result& result, std::size_t worker) noexcept;
  void warm_up(Runner& runner, const Model& model);
  float* key_state(InstrumentKey key) noexcept { return state.data() + std::size_t{key} * state_width; }
  // What `request` gathers: its key's state, zeroed first when it was submitted after a reset not applied yet.
  // Stamps only grow (modulo 2^32: compared as a signed difference).
  float* state_for(const Request& request) noexcept {
    if (static_cast<std::int32_t>(request.reset_all_stamp - reset_all_seen) > 0) {
      std::fill(state.begin(), state.end(), 0.0f);
      reset_all_seen = request.reset_all_stamp;
    }
    float* s = key_state(request.key);
    if (static_cast<std::int32_t>(request.reset_stamp - reset_seen[request.key]) > 0) {
      std::fill(s, s + state_width, 0.0f);
      reset_seen[request.key] = request.reset_stamp;
    }
    return s;
  }
  void next_segment() noexcept {
    if (++segment == 0) {  // wrapped: forget every key's mark
      std::fill(key_segment.begin(), key_segment.end(), 0u);
      segment = 1;
    }
  }
  void pin(std::size_t index) const;
  void drain_cancelled();
};

std::unique_ptr<Pipeline> Pipeline::create(const PipelineConfig& config, std::shared_ptr<ModelSlot> models,
                                           std::shared_ptr<const Backend> backend) {
  validate(config);
  if (!models) throw Error(ErrorCode::kInvalidConfig, "pipeline: no model slot given");
  if (!backend) throw Error(ErrorCode::kInvalidConfig, "pipeline: no backend given");
  const auto model = models->current();
  if (!model) throw Error(ErrorCode::kInvalidConfig, "pipeline: the model slot holds no model");
  const std::size_t width = config.feature_width ? config.feature_width : model->input_width();
  if (width == 0) throw Error(ErrorCode::kInvalidConfig, "pipeline: feature width is 0");
  if (model->input_width() != width)
    throw Error(ErrorCode::kWidthMismatch, "pipeline: model " + model->source() + " has " +
                                               std::to_string(model->input_width()) +
                                               " input features, the pipeline expects " + std::to_string(width));
  if (config.latest && config.latest->output_width() != model->output_width())
    throw Error(ErrorCode::kWidthMismatch,
                "pipeline: model " + model->source() + " has " + std::to_string(model->output_width()) +
                    " outputs, the latest-prediction store holds " + std::to_string(config.latest->output_width()));
  const std::size_t state_width = model->state_width();
  if (state_width > 0 && config.keys == 0)
    throw Error(ErrorCode::kInvalidConfig, "pipeline: " + model->source() +
                                               " is a sequence model (state per instrument): it needs keyed submits "
                                               "(PipelineConfig::keys > 0)");
  if (state_width > 0 && config.workers != 1)
    throw Error(ErrorCode::kInvalidConfig, "pipeline: " + model->source() +
                                               " is a sequence model: a key's ticks run in order on one worker, so "
                                               "workers must be 1");

  auto impl = std::make_unique<Impl>(config, width, state_width, std::move(models), std::move(backend));
  impl->served_state_names = model->metadata().state_names;
  Impl* raw = impl.get();
  for (std::size_t i = 0; i < config.workers; ++i) raw->workers.emplace_back([raw, i] { raw->worker_main(i); });
  std::exception_ptr error;
  {
    MutexLock lock(raw->start_mutex);
    while (raw->started != raw->workers.size()) raw->start_cv.wait(lock.native());
    error = raw->start_error;
  }
  auto pipeline = std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
  if (error) {
    pipeline->shutdown();
    std::rethrow_exception(error);
  }
  return pipeline;
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Pipeline::~Pipeline() { shutdown(); }

Producer::Producer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&&) noexcept = default;
Producer::~Producer() = default;

Completion Producer::polled(std::uint64_t tag) const noexcept { return {&deliver_polled, state_->rings, tag}; }

Producer Pipeline::make_producer() { return make_producer(ProducerOptions{}); }

Producer Pipeline::make_producer(const ProducerOptions& options) {
  Impl& impl = *impl_;
  std::atomic<std::size_t>* live = nullptr;
  if (impl.conflating) {
    // Relaxed: a count, not a handshake; the bound only has to hold for producers alive at once.
    if (impl.live_producers.fetch_add(1, std::memory_order_relaxed) >= impl.config.max_producers) {
      impl.live_producers.fetch_sub(1, std::memory_order_relaxed);
      throw Error(ErrorCode::kInvalidConfig,
                  std::string("pipeline: a conflating pipeline allows at most max_producers (")
                      .append(std::to_string(impl.config.max_producers))
                      .append(") live producers"));
    }
    live = &impl.live_producers;
  }
  std::unique_ptr<Producer::State> state;
  try {
    ProducerRings* rings = nullptr;
    if (options.result_ring > 0) {
      auto made = std::make_unique<ProducerRings>();
      const std::size_t outputs = std::max<std::size_t>(1, impl.models->current()->output_width());
      for (std::size_t w = 0; w < impl.config.workers; ++w)
        made->per_worker.push_back(std::make_unique<ResultRing>(options.result_ring, outputs));
      rings = made.get();
      MutexLock lock(impl.rings_mutex);
      impl.rings.push_back(std::move(made));
    }
    state = std::make_unique<Producer::State>(impl.queue, impl.metrics, rings, live);
  } catch (...) {
    if (live) live->fetch_sub(1, std::memory_order_relaxed);
    throw;
  }
  return Producer(std::move(state));
}

SubmitStatus Pipeline::submit(Producer& producer, std::span<const float> features, std::int64_t deadline_ns,
                              const Completion& completion) noexcept {
  return impl_->submit(producer, kNoKey, features, deadline_ns, completion, 0);
}

SubmitStatus Pipeline::submit(Producer& producer, InstrumentKey key, std::span<const float> features,
                              std::int64_t deadline_ns, const Completion& completion, std::int64_t event_ns) noexcept {
  if (key != kNoKey && key >= impl_->config.keys) {
    ProducerCounters::bump(producer.state_->counters.invalid);
    return SubmitStatus::kInvalid;
  }
  return impl_->submit(producer, key, features, deadline_ns, completion, event_ns);
}

bool Pipeline::Impl::admits(std::int64_t deadline_ns, std::int64_t now) const noexcept {
  if (deadline_ns < now) return false;
  // Relaxed: an estimate (see "Deadline admission" in pipeline.hpp); orders nothing. In 1/256 ns, clamped (16 ms
  // per row, 2^54 ns of budget) so neither product can overflow.
  const std::uint64_t per_x256 =
      std::min<std::uint64_t>(metrics.service_time.ns_x256.load(std::memory_order_relaxed), std::uint64_t{1} << 32);
  const std::uint64_t wait_x256 = free_slots.in_use() * per_x256 / config.workers;
  const std::uint64_t budget_ns =
      std::min<std::uint64_t>(static_cast<std::uint64_t>(deadline_ns - now), std::uint64_t{1} << 54);
  return wait_x256 <= budget_ns * admission_fill_x256;
}

void Pipeline::Impl::enqueue_infallible(Producer& producer, std::uint32_t entry) noexcept {
  // Cannot fail while at most max_producers producers are alive (see "Memory ordering", conflation); the loop is a
  // guard, not a wait: were it ever to fail, a worker's dequeue frees room.
  while (!queue.try_enqueue(producer.state_->queue_token, entry)) cpu_relax();
}

SubmitStatus Pipeline::Impl::submit(Producer& producer, InstrumentKey key, std::span<const float> features,
                                    std::int64_t deadline_ns, const Completion& completion,
                                    std::int64_t event_ns) noexcept {
  ProducerCounters& counters = producer.state_->counters;
  // Wrong width, or no key for a sequence model (its state is per key).
  if (features.size() != width || (key == kNoKey && state_width > 0)) {
    ProducerCounters::bump(counters.invalid);
    return SubmitStatus::kInvalid;
  }
  std::int64_t now = 0;
  if (config.deadline_admission && deadline_ns != kNoDeadline) {
    now = now_ns();
    if (!admits(deadline_ns, now)) {
      ProducerCounters::bump(counters.rejected);
      ProducerCounters::bump(counters.rejected_deadline);
      return SubmitStatus::kRejected;
    }
  }
  std::uint32_t slot;
  // The accept decision (see "Memory ordering"): kClosed once shutdown() started, kEmpty when every slot is out.
  if (free_slots.take(slot) != SlotPool::Take::kTaken) {
    ProducerCounters::bump(counters.rejected);
    return SubmitStatus::kRejected;
  }
  Request& request = requests[slot];
  request.completion = completion;
  request.deadline_ns = deadline_ns;
  request.enqueue_ns = now != 0 ? now : now_ns();
  request.event_ns = event_ns;
  request.key = key;
  request.superseded = false;
  if (state_width > 0) {  // key < keys here (a sequence model takes keyed requests only); see Impl::state
    request.reset_stamp = reset_requested[key].load(std::memory_order_relaxed);
    request.reset_all_stamp = reset_all_requested.load(std::memory_order_relaxed);
  }
  std::memcpy(arena.data() + std::size_t{slot} * width, features.data(), width * sizeof(float));
  if (conflating && key != kNoKey) {
    // See "Memory ordering", conflation: acq_rel publishes this slot, and takes ownership of the one it replaces.
    const std::uint32_t old = pending[key].exchange(slot, std::memory_order_acq_rel);
    ProducerCounters::bump(counters.accepted);
    if (old == kNoSlot) {
      enqueue_infallible(producer, kKeyToken | key);  // the word was empty: no token for this key is queued
    } else if (config.conflation == Conflation::kMerge) {
      ProducerCounters::bump(counters.merged);
      free_slots.give_back(old);  // never completes; cannot fail, does not allocate
    } else {
      requests[old].superseded = true;  // ours alone now; the enqueue publishes it to the worker
      enqueue_infallible(producer, old);
    }
    return SubmitStatus::kAccepted;
  }
  // The enqueue publishes the request (moodycamel: release on enqueue, acquire on dequeue). With a token and
  // try_: never allocates.
  if (!queue.try_enqueue(producer.state_->queue_token, slot)) {
    // Only when the producer's preallocated blocks are exhausted (more producers than max_producers).
    free_slots.give_back(slot);  // cannot fail, does not allocate
    ProducerCounters::bump(counters.rejected);
    return SubmitStatus::kRejected;
  }
  ProducerCounters::bump(counters.accepted);
  return SubmitStatus::kAccepted;
}

bool Pipeline::poll(Producer& producer, PolledResult& out, std::span<float> outputs) noexcept {
  Producer::State& state = *producer.state_;
  if (!state.rings) return false;
  const std::size_t n = state.rings->per_worker.size();
  for (std::size_t i = 0; i < n; ++i) {
    ResultRing& ring = *state.rings->per_worker[state.next_ring];
    state.next_ring = state.next_ring + 1 == n ? 0 : state.next_ring + 1;
    if (ring.try_pop(out, outputs)) return true;
  }
  return false;
}

std::size_t Pipeline::Impl::resolve(std::uint32_t* entries, std::size_t count) noexcept {
  if (!conflating) return count;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t entry = entries[i];
    if (entry & kKeyToken) {
      // The claim (see "Memory ordering", conflation): acquire pairs with the submit's exchange that stored the slot.
      entry = pending[entry & ~kKeyToken].exchange(kNoSlot, std::memory_order_acq_rel);
      if (entry == kNoSlot) continue;  // cannot happen (tokens never outnumber non-empty words); kept for safety
    }
    entries[kept++] = entry;
  }
  return kept;
}

void Pipeline::Impl::record_service_time(std::int64_t elapsed_ns, std::size_t rows) noexcept {
  if (rows == 0 || elapsed_ns <= 0) return;
  const std::uint64_t sample = static_cast<std::uint64_t>(elapsed_ns) * 256 / rows;
  auto& ewma = metrics.service_time.ns_x256;
  // Relaxed load+store: a moving average (weight 1/8); two workers racing lose one sample, which is harmless.
  const std::uint64_t old = ewma.load(std::memory_order_relaxed);
  const std::uint64_t next = old == 0 ? sample : old - old / 8 + sample / 8;
  ewma.store(next == 0 ? 1 : next, std::memory_order_relaxed);
}

void Pipeline::Impl::pin(std::size_t index) const {
  if (config.pin_cores.empty()) return;
  internal::pin_current_thread(config.pin_cores[index], "pipeline", "worker " + std::to_string(index));
}

void Pipeline::Impl::warm_up(Runner& runner, const Model& model) {
  // Every batch size the worker can run, so first-use allocations and JIT specialisation happen now.
  std::int64_t last_ns = 0;
  std::size_t last_rows = 0;
  for (const std::size_t rows : distinct_sizes(padded_rows_for)) {
    auto prefix = [&] {
      return "pipeline: warm-up of " + model.source() + " failed at batch size " + std::to_string(rows) + ": ";
    };
    try {
      auto input = runner.input(rows);
      std::fill(input.begin(), input.end(), 0.0f);
      (void)runner.run(model, rows);
      const std::int64_t start = now_ns();
      (void)runner.run(model, rows);
      last_ns = now_ns() - start;
      last_rows = rows;
    } catch (const Error& e) {
      throw Error(e.code(), prefix() + e.what());  // keeps its code
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kModelError, prefix() + e.what());
    } catch (...) {
      throw Error(ErrorCode::kModelError, prefix() + "unknown exception");
    }
  }
  // Deadline admission's first estimate, until a served batch measures the real rate: the largest batch's
  // forward per row. Relaxed: an estimate, published to producers by thread start-up (create() waits for it).
  if (last_rows > 0 && metrics.service_time.ns_x256.load(std::memory_order_relaxed) == 0)
    record_service_time(std::max<std::int64_t>(last_ns, 1), last_rows);
}

void Pipeline::Impl::complete(const Request& request, Result& result, std::size_t worker) noexcept {
  result.key = request.key;
  result.event_ns = request.event_ns;
  if (request.key != kNoKey) {
    metrics.worker(worker).record_key(request.key, result.status);
    if (result.status == ResultStatus::kOk && config.latest &&
        !config.latest->write(request.key, result.outputs, result.model_version,
                              request.event_ns != 0 ? request.event_ns : request.enqueue_ns, result.batch_end_ns))
      metrics.latest_write_failures.add();  // the model's output width changed under the store
  }
  if (request.completion.fn == &deliver_polled) {
    // Polled: the completing worker's own ring of that producer (single producer: one worker at a time; the
    // drain runs after the workers are joined).
    auto* target = static_cast<ProducerRings*>(request.completion.context);
    if (!target || !target->per_worker[worker % target->per_worker.size()]->push(result)) metrics.polled_dropped.add();
    return;
  }
  try {
    request.completion.fn(request.completion.context, result);
  } catch (...) {
    metrics.callback_exceptions.add();
  }
}

void Pipeline::Impl::start_worker(std::size_t index, std::unique_ptr<Runner>& runner,
                                  std::shared_ptr<const Model>& model, std::uint64_t& generation, EngineKind& engine) {
  pin(index);
  try {
    runner = backend->make_runner(runner_rows, width + state_width);  // a sequence model: features, then state
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kModelError, "pipeline: backend " + backend->name() + " cannot make a runner for " +
                                            std::to_string(runner_rows) + " rows: " + e.what());
  }
  models->refresh(model, generation);
  if (!model) throw Error(ErrorCode::kInvalidConfig, "pipeline: the model slot holds no model");
  engine = engine_kind(model->engine());
  if (config.warm_up) warm_up(*runner, *model);
}

void Pipeline::Impl::worker_main(std::size_t index) {
  std::unique_ptr<Runner> runner;
  std::shared_ptr<const Model> model;
  std::uint64_t generation = 0;
  EngineKind engine = EngineKind::kNone;
  std::vector<std::uint32_t> batch(config.max_batch), live(config.max_batch);
  std::vector<std::uint8_t> is_live(config.max_batch), finite(config.max_batch);
  std::string error;
  error.reserve(512);
  moodycamel::ConsumerToken queue_token(queue);
  std::exception_ptr failure;
  try {
    start_worker(index, runner, model, generation, engine);
  } catch (const Error&) {
    failure = std::current_exception();
  } catch (const std::exception& e) {
    failure = std::make_exception_ptr(
        Error(ErrorCode::kModelError, std::string("pipeline: worker start-up failed: ") + e.what()));
  } catch (...) {
    failure = std::make_exception_ptr(Error(ErrorCode::kModelError, "pipeline: worker start-up failed"));
  }
  {
    MutexLock lock(start_mutex);
    if (failure && !start_error) start_error = failure;
    ++started;
    if (start_error) {
      start_cv.notify_all();
      return;
    }
  }
  start_cv.notify_all();

  const bool wait_for_fuller = config.max_delay_us > 0;
  const std::int64_t max_delay_ns = config.max_delay_us * 1000;
  const std::int64_t spin_ns = config.idle_spin_us * 1000;
  unsigned polls = 0;
  std::int64_t idle_since = 0;  // 0: not idle (or not yet timed)
  bool spun_out = false;        // polled for idle_spin_us without work: yield / block from now on
  // Acquire pairs with the release store in shutdown().
  while (!stopping.load(std::memory_order_acquire)) {
    std::size_t count = queue.try_dequeue_bulk(queue_token, batch.data(), config.max_batch);
    if (count == 0) {
      if (config.idle == IdleStrategy::kSpin || (!spun_out && spin_ns > 0)) {
        cpu_relax();
        if (config.idle != IdleStrategy::kSpin && ++polls % kPollsPerClockRead == 0) {
          const std::int64_t now = now_ns();
          if (idle_since == 0)
            idle_since = now;
          else if (now - idle_since >= spin_ns)
            spun_out = true;
        }
        continue;
      }
      if (config.idle == IdleStrategy::kSpinThenYield) {
        std::this_thread::yield();
        continue;
      }
      count = queue.wait_dequeue_bulk_timed(queue_token, batch.data(), config.max_batch, kBlockTimeoutUs);
      if (count == 0) continue;
    }
    polls = 0;
    idle_since = 0;
    spun_out = false;
    count = resolve(batch.data(), count);  // key tokens -> the slots they claim
    if (count == 0) continue;
    const std::int64_t formation_start = now_ns();
    std::int64_t ready = formation_start;  // the batch is formed: service time counts from here
    if (wait_for_fuller && count < config.max_batch) {
      std::int64_t oldest = requests[batch[0]].enqueue_ns;
      for (std::size_t i = 1; i < count; ++i) oldest = std::min(oldest, requests[batch[i]].enqueue_ns);
      const std::int64_t close_at = oldest + max_delay_ns;
      while (count < config.max_batch && (ready = now_ns()) < close_at) {
        const std::size_t more = queue.try_dequeue_bulk(queue_token, batch.data() + count, config.max_batch - count);
        if (more == 0) cpu_relax();
        count += resolve(batch.data() + count, more);
      }
    }
    const std::size_t rows = run_batch(index, *runner, model, generation, engine, batch.data(), count, formation_start,
                                       is_live, finite, live, error);
    // Per row run, not per request dequeued: expired ones cost next to nothing, and counting them would make an
    // overloaded queue look fast (admission would then admit more that expire).
    record_service_time(now_ns() - ready, rows);
  }
}

void Pipeline::Impl::complete_expired_before(Batch& b, std::size_t position) noexcept {
  for (; b.next < position; ++b.next) {
    if (b.is_live[b.next]) continue;  // cannot happen: live rows complete in order; kept for safety
    const Request& r = requests[b.slots[b.next]];
    Result result;
    result.tag = r.completion.tag;
    result.enqueue_ns = r.enqueue_ns;
    if (r.superseded) {
      result.status = ResultStatus::kSuperseded;
      result.error = "replaced by a newer request for the same key";
    } else {
      result.status = ResultStatus::kExpired;
      result.error = "deadline passed before the batch ran";
    }
    complete(r, result, b.worker);  // counted by run_batch() before any completion of the batch
  }
}

// Runs live rows [begin, end) in one forward and completes them; returns whether that forward succeeded. When
// it throws and the batch's retry budget lasts, runs each half on its own instead (depth-first, left half
// first, so completions keep queue order), isolating the rows that throw. `known_bad`: the parent range threw
// and its left half did not, so this range would throw too; it is split without running it whole (a row is
// never failed without running, except when the budget is spent: then the rows left fail with the last message).
bool Pipeline::Impl::forward_rows(Batch& b, std::size_t begin, std::size_t end, std::int64_t formation_start_ns,
                                  bool known_bad) {
  const std::size_t n = end - begin;
  const std::size_t rows = padded_rows_for[n];
  const bool is_retry = b.retried;
  std::span<const float> outputs;
  std::int64_t start = 0;
  bool failed = false;
  if (is_retry && (b.retries_left == 0 || (known_bad && n > 1))) {
    failed = true;  // budget spent (fail with the message we have), or known to throw (split below)
  } else {
    if (is_retry) {
      --b.retries_left;
      metrics.retry_forwards.add();
    }
    try {
      std::span<float> input = b.runner.input(rows);
      float* row = input.data();
      for (std::size_t i = begin; i < end; ++i) {
        const std::uint32_t slot = b.slots[b.live[i]];
        std::memcpy(row, arena.data() + std::size_t{slot} * width, width * sizeof(float));
        row += width;
        if (state_width > 0) {  // gather: the key's state after its features
          std::memcpy(row, state_for(requests[slot]), state_width * sizeof(float));
          row += state_width;
        }
      }
      std::fill(row, input.data() + rows * (width + state_width), 0.0f);
      start = now_ns();
      if (!is_retry) b.stats.batch_formation.record_exclusive(start - formation_start_ns);
      outputs = b.runner.run(*b.model, rows);
    } catch (const std::exception& e) {
      failed = true;
      b.error.assign(e.what());
    } catch (...) {
      failed = true;
      b.error.assign("unknown exception from the model runner");
    }
    if (rows > n) metrics.padded_rows.add(rows - n);
  }
  const std::int64_t finish = now_ns();
  if (start == 0) start = finish;
  if (!is_retry) {
    b.stats.forward.record_exclusive(finish - start);
    if (failed) metrics.failed_batches.add();
  }

  if (failed && n > 1 && b.retries_left > 0) {
    if (!b.retried) metrics.batch_retries.add();
    b.retried = true;
    const std::size_t mid = begin + n / 2;
    const bool left_ok = forward_rows(b, begin, mid, formation_start_ns, false);
    forward_rows(b, mid, end, formation_start_ns, left_ok);
    return false;
  }

  const std::size_t out_width = b.model->output_width();
  // Rows come back packed: a sequence model's outputs, then its new state (checked finite too).
  const std::size_t out_stride = out_width + state_width;
  const std::uint64_t version = b.model->version();
  auto row_is_finite = [&](std::size_t i) {
    const float* v = outputs.data() + (i - begin) * out_stride;
    return std::all_of(v, v + out_stride, [](float x) { return std::isfinite(x); });
  };
  // Counted before the rows complete, so a snapshot taken after a result arrived includes it.
  if (failed) {
    metrics.model_errors.add(n);
  } else {
    std::uint64_t finite_rows = 0;
    for (std::size_t i = begin; i < end; ++i) {  // once per row: the completions below read the flag
      b.finite[i - begin] = row_is_finite(i) ? 1 : 0;
      finite_rows += b.finite[i - begin];
    }
    if (finite_rows) metrics.ok.add(finite_rows);
    if (finite_rows < n) metrics.model_errors.add(n - finite_rows);
  }
  for (std::size_t i = begin; i < end; ++i) {
    const std::size_t position = b.live[i];
    complete_expired_before(b, position);
    const Request& r = requests[b.slots[position]];
    Result result;
    result.tag = r.completion.tag;
    result.enqueue_ns = r.enqueue_ns;
    result.model_version = version;
    result.batch_start_ns = start;
    result.batch_end_ns = finish;
    result.engine = b.engine;
    b.stats.end_to_end.record_exclusive(finish - r.enqueue_ns);
    if (failed) {
      result.status = ResultStatus::kModelError;
      result.error = b.error;
    } else if (b.finite[i - begin] != 0) {
      result.outputs = outputs.subspan((i - begin) * out_stride, out_width);
      result.status = ResultStatus::kOk;
      if (state_width > 0)  // scatter: the key's new state, before its completion runs
        std::memcpy(key_state(r.key), result.outputs.data() + out_width, state_width * sizeof(float));
    } else {
      result.status = ResultStatus::kModelError;
      result.error = "model output is not finite (NaN or Inf)";
    }
    complete(r, result, b.worker);
    b.next = position + 1;
  }
  return !failed;
}

std::size_t Pipeline::Impl::run_batch(std::size_t index, Runner& runner, std::shared_ptr<const Model>& model,
                                      std::uint64_t& generation, EngineKind& engine, const std::uint32_t* slots,
                                      std::size_t count, std::int64_t formation_start_ns,
                                      std::vector<std::uint8_t>& is_live, std::vector<std::uint8_t>& finite,
                                      std::vector<std::uint32_t>& live, std::string& error) {
  WorkerStats& stats = metrics.worker(index);
  // One acquire load per batch; the mutex (and the engine's name compared) only when a new model was published.
  if (models->refresh(model, generation)) {
    metrics.model_swaps_seen.add();
    engine = model ? engine_kind(model->engine()) : EngineKind::kNone;
    if (state_width > 0 && model) {  // off the hot path: once per swap
      const bool same = model->metadata().state_names == served_state_names;
      if (!same || config.state_on_swap == StateOnSwap::kReset) std::fill(state.begin(), state.end(), 0.0f);
      served_state_names = model->metadata().state_names;
    }
  }

  // Expired and superseded requests are not run; they still complete in queue order, to keep per-producer order.
  std::size_t live_count = 0;
  std::uint64_t superseded = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const Request& r = requests[slots[i]];
    is_live[i] = !r.superseded && (r.deadline_ns == kNoDeadline || r.deadline_ns >= formation_start_ns);
    if (is_live[i]) {
      stats.queue_wait.record_exclusive(formation_start_ns - r.enqueue_ns);
      live[live_count++] = static_cast<std::uint32_t>(i);
    } else if (r.superseded) {
      ++superseded;
    }
  }
  // Every status is counted before the first completion that has it runs: a snapshot taken after a result
  // arrived (in its callback or later) includes that result.
  if (superseded) metrics.superseded.add(superseded);
  if (count - live_count > superseded) metrics.expired.add(count - live_count - superseded);

  Batch b{runner, model.get(), stats, slots, count, live.data(), is_live, finite.data(), error};
  b.worker = index;
  b.engine = engine;
  b.retries_left = retry_budget;
  if (live_count > 0) {
    stats.record_batch_size(live_count);
    metrics.batches.add();
    // A sequence model's state width is fixed when the pipeline is made (the runner stages it, the store holds it):
    // a published model with another one cannot run here (the registry refuses it unless told otherwise).
    const char* cannot_run = !model                                ? "no model is loaded"
                             : model->state_width() != state_width ? "the model's state width differs from the "
                                                                     "pipeline's (fixed when it was created)"
                                                                   : nullptr;
    if (cannot_run == nullptr) {
      metrics.rows_by_engine[static_cast<std::size_t>(engine)].add(live_count);
      if (state_width == 0) {
        forward_rows(b, 0, live_count, formation_start_ns, false);
      } else {
        // A key twice in a batch: its second request must see the state its first one leaves, so the batch runs as
        // consecutive forwards in which every key appears at most once (queue order kept).
        std::size_t begin = 0;
        next_segment();
        for (std::size_t i = 0; i < live_count; ++i) {
          const InstrumentKey key = requests[slots[live[i]]].key;
          if (key_segment[key] == segment) {
            forward_rows(b, begin, i, formation_start_ns, false);
            begin = i;
            next_segment();
            b.retried = false;  // the next forward is a split's first, not a retry (the budget stays the batch's)
          }
          key_segment[key] = segment;
        }
        forward_rows(b, begin, live_count, formation_start_ns, false);
      }
      // Relaxed: a gauge for humans, orders nothing.
      metrics.model_version.store(model->version(), std::memory_order_relaxed);
    } else {
      metrics.failed_batches.add();
      metrics.model_errors.add(live_count);
      const std::int64_t now = now_ns();
      for (std::size_t i = 0; i < live_count; ++i) {
        complete_expired_before(b, live[i]);
        const Request& r = requests[slots[live[i]]];
        Result result;
        result.status = ResultStatus::kModelError;
        result.tag = r.completion.tag;
        result.enqueue_ns = r.enqueue_ns;
        result.batch_start_ns = result.batch_end_ns = now;
        result.error = cannot_run;
        stats.end_to_end.record_exclusive(now - r.enqueue_ns);
        complete(r, result, index);
        b.next = live[i] + std::size_t{1};
      }
    }
  }
  complete_expired_before(b, count);
  // Slots go home last: their completion was read above (the pool's release/acquire orders the reuse).
  free_slots.give_back(slots, count);
  return live_count;
}

void Pipeline::Impl::drain_cancelled() {
  // Runs on the shutdown() caller's thread, after the workers are joined. Every slot must come home: queued
  // ones are cancelled here, and a submit() that took a slot before the close either enqueues it (cancelled
  // on a later pass) or gives it back itself.
  std::vector<std::uint32_t> batch(config.max_batch);
  moodycamel::ConsumerToken token(queue);
  for (;;) {
    const std::size_t dequeued = queue.try_dequeue_bulk(token, batch.data(), batch.size());
    const std::size_t count = resolve(batch.data(), dequeued);  // key tokens -> their pending slots
    // Counted before they complete, as in run_batch().
    const auto superseded =
        static_cast<std::uint64_t>(std::count_if(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(count),
                                                 [&](std::uint32_t slot) { return requests[slot].superseded; }));
    if (superseded) metrics.superseded.add(superseded);
    if (count > superseded) metrics.cancelled.add(count - superseded);
    for (std::size_t i = 0; i < count; ++i) {
      const Request& r = requests[batch[i]];
      Result result;
      result.tag = r.completion.tag;
      result.enqueue_ns = r.enqueue_ns;
      if (r.superseded) {  // replaced before shutdown started: that is how it ends
        result.status = ResultStatus::kSuperseded;
        result.error = "replaced by a newer request for the same key";
      } else {
        result.status = ResultStatus::kCancelled;
        result.error = "pipeline shut down before the request ran";
      }
      complete(r, result, 0);  // the workers are joined: worker 0's stats and rings have no other writer
    }
    if (count) free_slots.give_back(batch.data(), count);
    if (dequeued) continue;
    // Exact: once closed, no slot leaves the pool, so all home means no submit() holds one.
    if (free_slots.all_home()) return;
    std::this_thread::yield();
  }
}

void Pipeline::shutdown() {
  std::call_once(impl_->shutdown_once, [this] {
    Impl& impl = *impl_;
    impl.free_slots.close();  // from here every submit() is rejected (see "Memory ordering")
    // Release: pairs with the acquire load in worker_main(); workers finish the batch they hold and exit.
    impl.stopping.store(true, std::memory_order_release);
    for (auto& t : impl.workers) t.join();
    impl.drain_cancelled();
  });
}

std::size_t Pipeline::feature_width() const noexcept { return impl_->width; }
std::size_t Pipeline::state_width() const noexcept { return impl_->state_width; }

bool Pipeline::reset_state(InstrumentKey key) noexcept {
  if (impl_->state_width == 0 || key >= impl_->config.keys) return false;
  impl_->reset_requested[key].fetch_add(1, std::memory_order_relaxed);  // see Impl::state
  return true;
}

bool Pipeline::reset_all_state() noexcept {
  if (impl_->state_width == 0) return false;
  impl_->reset_all_requested.fetch_add(1, std::memory_order_relaxed);
  return true;
}
const PipelineConfig& Pipeline::config() const noexcept { return impl_->config; }
const Metrics& Pipeline::metrics() const noexcept { return impl_->metrics; }
const ModelSlot& Pipeline::models() const noexcept { return *impl_->models; }

}  // namespace tickinfer
