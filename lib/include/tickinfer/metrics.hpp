#pragma once
// Pipeline metrics: per-stage latency histograms, counters, batch sizes; snapshot and Prometheus text.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tickinfer/histogram.hpp"
#include "tickinfer/mutex.hpp"

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
  std::uint64_t ok = 0, expired = 0, model_errors = 0, cancelled = 0;
  std::uint64_t batches = 0, failed_batches = 0, callback_exceptions = 0, padded_rows = 0;
  std::uint64_t batch_retries = 0;         // failed batches whose rows were retried in halves (bisected)
  std::uint64_t retry_forwards = 0;        // extra forwards those retries ran
  std::vector<std::uint64_t> batch_sizes;  // batch_sizes[n] = batches of n real rows
  std::uint64_t model_version = 0;         // version of the latest batch run
  std::uint64_t model_swaps_seen = 0;      // times a worker picked up a newly published model

  std::uint64_t completed() const noexcept { return ok + expired + model_errors + cancelled; }
};

/// One worker's latency histograms and batch sizes. Written only by that worker (so records need no
/// locked instructions); read by snapshots from any thread.
struct WorkerStats {
  explicit WorkerStats(std::size_t max_batch) : batch_sizes(max_batch + 1) {}
  LatencyHistogram queue_wait, batch_formation, forward, end_to_end;
  std::vector<std::atomic<std::uint64_t>> batch_sizes;  // [n] = batches of n real rows

  void record_batch_size(std::size_t rows) noexcept {
    auto& bucket = batch_sizes[rows < batch_sizes.size() ? rows : batch_sizes.size() - 1];
    // Relaxed load+store: single writer; readers only need untorn values.
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

/// Live metrics of one pipeline. Thread-safe: producers and workers update, anyone snapshots.
class Metrics {
 public:
  Metrics(std::size_t max_batch, std::size_t workers);
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
  std::atomic<std::uint64_t> model_version{0};

  MetricsSnapshot snapshot() const;

 private:
  std::vector<std::unique_ptr<WorkerStats>> workers_;
  mutable Mutex producers_mutex_;
  std::vector<std::unique_ptr<ProducerCounters>> producers_ TICKINFER_GUARDED_BY(producers_mutex_);
  std::vector<ProducerCounters*> free_producers_ TICKINFER_GUARDED_BY(producers_mutex_);
};

/// Prometheus text exposition (version 0.0.4) of a snapshot; metric names start with `prefix`.
std::string to_prometheus(const MetricsSnapshot& snapshot, const std::string& prefix = "tickinfer");

}  // namespace tickinfer
