#pragma once
// Pipeline metrics: per-stage latency histograms, counters, batch sizes; snapshot and Prometheus text.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tickinfer/histogram.hpp"
#include "tickinfer/mutex.hpp"
#include "tickinfer/result.hpp"

namespace tickinfer {

/// A counter on its own cache line so producers and workers do not false-share.
struct alignas(64) Counter {
  std::atomic<std::uint64_t> value{0};
  // Relaxed: a statistic, it orders nothing.
  void add(std::uint64_t n = 1) noexcept { value.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t load() const noexcept { return value.load(std::memory_order_relaxed); }
};
static_assert(sizeof(Counter) == 64, "one counter per cache line to avoid false sharing");

/// One producer's submit() counters: a single writer (the producer's thread), so updates are a relaxed load and
/// store, no locked instruction; on its own cache line so producers do not false-share. Owned by Metrics, so
/// counts survive the Producer; a block whose producer is gone is handed to the next one (same sums).
struct alignas(64) ProducerCounters {
  std::atomic<std::uint64_t> accepted{0}, rejected{0}, invalid{0};
  std::atomic<std::uint64_t> rejected_deadline{
      0};                                // of rejected: by deadline admission (the rest: queue full / stopped)
  std::atomic<std::uint64_t> merged{0};  // of accepted: replaced under Conflation::kMerge, never completed

  // Relaxed load+store: one writer at a time (hand-over between producers is ordered by Metrics' mutex);
  // snapshot readers only need untorn values.
  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};
static_assert(sizeof(ProducerCounters) == 64, "one producer's counters per cache line");

struct MetricsSnapshot {
  HistogramSnapshot queue_wait;       // accepted -> its batch starts forming
  HistogramSnapshot batch_formation;  // batch starts forming -> forward starts (max_delay wait, staging)
  HistogramSnapshot forward;          // forward start -> end, per batch
  HistogramSnapshot end_to_end;       // accepted -> completion callback starts
  std::uint64_t accepted = 0, rejected = 0, invalid = 0;
  std::uint64_t rejected_deadline = 0;  // of rejected: deadline admission refused them (rejected_full() the rest)
  std::uint64_t merged = 0;             // of accepted: replaced under Conflation::kMerge (they never complete)
  std::uint64_t ok = 0, expired = 0, model_errors = 0, cancelled = 0;
  std::uint64_t superseded = 0;  // completed with kSuperseded (Conflation::kSupersede)
  std::uint64_t batches = 0, failed_batches = 0, callback_exceptions = 0, padded_rows = 0;
  std::uint64_t batch_retries = 0;         // failed batches whose rows were retried in halves (bisected)
  std::uint64_t retry_forwards = 0;        // extra forwards those retries ran
  std::vector<std::uint64_t> batch_sizes;  // batch_sizes[n] = batches of n real rows
  std::uint64_t model_version = 0;         // version of the latest batch run
  std::uint64_t model_swaps_seen = 0;      // times a worker picked up a newly published model
  std::array<std::uint64_t, kEngineKinds> rows_by_engine{};  // [EngineKind] real rows forwarded (retries not counted)
  std::uint64_t polled_dropped = 0;                          // polled results dropped: the producer's ring was full
  std::uint64_t latest_write_failures = 0;  // Ok predictions the LatestStore refused (output width changed)
  std::uint64_t service_ns_per_row = 0;     // workers' EWMA of batch time per row run (admission's rate)

  std::uint64_t completed() const noexcept { return ok + expired + model_errors + cancelled + superseded; }
  std::uint64_t rejected_full() const noexcept { return rejected - rejected_deadline; }
};

/// One key's completions by status (Metrics::key_snapshot()).
struct KeyCounts {
  std::array<std::uint64_t, kResultStatuses> by_status{};  // [ResultStatus]
  std::uint64_t count(ResultStatus status) const noexcept { return by_status[static_cast<std::size_t>(status)]; }
  std::uint64_t completed() const noexcept {
    std::uint64_t n = 0;
    for (const auto c : by_status) n += c;
    return n;
  }
};

/// One worker's latency histograms and batch sizes. Written only by that worker (so records need no
/// locked instructions); read by snapshots from any thread.
struct WorkerStats {
  explicit WorkerStats(std::size_t max_batch, std::size_t keys = 0)
      : batch_sizes(max_batch + 1), key_counts(keys * kResultStatuses) {}
  LatencyHistogram queue_wait, batch_formation, forward, end_to_end;
  std::vector<std::atomic<std::uint64_t>> batch_sizes;  // [n] = batches of n real rows
  std::vector<std::atomic<std::uint64_t>> key_counts;   // [key * kResultStatuses + status]; empty without keys

  /// Counts one completion of `key` (ignored for kNoKey or a key beyond the configured count). Never allocates.
  void record_key(InstrumentKey key, ResultStatus status) noexcept {
    const std::size_t i = std::size_t{key} * kResultStatuses + static_cast<std::size_t>(status);
    if (key == kNoKey || i >= key_counts.size()) return;
    // Relaxed load+store: single writer; readers only need untorn values.
    key_counts[i].store(key_counts[i].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  void record_batch_size(std::size_t rows) noexcept {
    auto& bucket = batch_sizes[rows < batch_sizes.size() ? rows : batch_sizes.size() - 1];
    // Relaxed load+store: single writer; readers only need untorn values.
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

/// Live metrics of one pipeline. Thread-safe: producers and workers update, anyone snapshots.
class Metrics {
 public:
  /// keys > 0 sizes per-key completion counts (keys x statuses per worker, allocated here, never on the hot path).
  Metrics(std::size_t max_batch, std::size_t workers, std::size_t keys = 0);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  ~Metrics();

  /// Call from worker `index` only (for writing).
  WorkerStats& worker(std::size_t index) noexcept { return *workers_[index]; }

  /// A counter block for one producer (allocates on first use; thread-safe). Write it from one thread at a
  /// time; give it back with release_producer() when that producer is gone. Snapshots sum every block ever
  /// handed out, so counts of released producers are kept.
  ProducerCounters& acquire_producer();
  void release_producer(ProducerCounters& counters) noexcept;

  // Shared counters, added to the per-producer sums in snapshots (submit() itself uses ProducerCounters).
  Counter accepted, rejected, invalid;
  Counter ok, expired, model_errors, cancelled;
  Counter batches, failed_batches, callback_exceptions, padded_rows, model_swaps_seen;
  Counter batch_retries, retry_forwards;
  Counter superseded, polled_dropped, latest_write_failures;
  std::array<Counter, kEngineKinds> rows_by_engine;  // [EngineKind]
  std::atomic<std::uint64_t> model_version{0};
  /// Workers' EWMA of batch time per row run (dequeue to last completion), in 1/256 ns; read by submit() for deadline
  /// admission (its own line: producers read it on every admitted submit, workers write it once per batch).
  struct alignas(64) ServiceTime {
    std::atomic<std::uint64_t> ns_x256{0};
  } service_time;

  /// Thread-safe; allocates. A request's status is counted before its completion runs, so a snapshot taken in a
  /// completion callback, or after one returned, includes that result (and every earlier one of its batch). The
  /// converse does not hold: a counted result may not be delivered yet (wait for results, not for counters).
  MetricsSnapshot snapshot() const;
  /// Completions per key (index = key), summed over workers. Thread-safe; allocates (keys entries); empty when the
  /// pipeline was not sized for keys. For on-demand breakdowns, not per request.
  std::vector<KeyCounts> key_snapshot() const;

 private:
  std::vector<std::unique_ptr<WorkerStats>> workers_;
  mutable Mutex producers_mutex_;
  std::vector<std::unique_ptr<ProducerCounters>> producers_ TICKINFER_GUARDED_BY(producers_mutex_);
  std::vector<ProducerCounters*> free_producers_ TICKINFER_GUARDED_BY(producers_mutex_);
};

/// Prometheus text exposition (version 0.0.4) of a snapshot; metric names start with `prefix`.
std::string to_prometheus(const MetricsSnapshot& snapshot, const std::string& prefix = "tickinfer");

}  // namespace tickinfer
