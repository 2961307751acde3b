#include "tickinfer/metrics.hpp"

#include "core/prometheus.hpp"

namespace tickinfer {

Metrics::Metrics(std::size_t max_batch, std::size_t workers, std::size_t keys) {
  workers_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<WorkerStats>(max_batch, keys));
}

Metrics::~Metrics() = default;

ProducerCounters& Metrics::acquire_producer() {
  MutexLock lock(producers_mutex_);
  if (!free_producers_.empty()) {
    // The mutex orders the previous owner's last writes before the new owner's first.
    ProducerCounters* reused = free_producers_.back();
    free_producers_.pop_back();
    return *reused;
  }
  free_producers_.reserve(producers_.size() + 1);  // release_producer() must not allocate (it is noexcept)
  producers_.push_back(std::make_unique<ProducerCounters>());
  return *producers_.back();
}

void Metrics::release_producer(ProducerCounters& counters) noexcept {
  MutexLock lock(producers_mutex_);
  free_producers_.push_back(&counters);  // capacity reserved in acquire_producer()
}

MetricsSnapshot Metrics::snapshot() const {
  MetricsSnapshot snap;
  for (const auto& w : workers_) {
    snap.queue_wait.merge(w->queue_wait.snapshot());
    snap.batch_formation.merge(w->batch_formation.snapshot());
    snap.forward.merge(w->forward.snapshot());
    snap.end_to_end.merge(w->end_to_end.snapshot());
    if (snap.batch_sizes.size() < w->batch_sizes.size()) snap.batch_sizes.resize(w->batch_sizes.size());
    for (std::size_t i = 0; i < w->batch_sizes.size(); ++i)
      snap.batch_sizes[i] += w->batch_sizes[i].load(std::memory_order_relaxed);
  }
  snap.accepted = accepted.load();
  snap.rejected = rejected.load();
  snap.invalid = invalid.load();
  {
    MutexLock lock(producers_mutex_);
    for (const auto& p : producers_) {
      // Relaxed: statistics; each block has one writer, the sum is as fresh as the loads.
      snap.accepted += p->accepted.load(std::memory_order_relaxed);
      snap.rejected += p->rejected.load(std::memory_order_relaxed);
      snap.invalid += p->invalid.load(std::memory_order_relaxed);
      snap.rejected_deadline += p->rejected_deadline.load(std::memory_order_relaxed);
      snap.merged += p->merged.load(std::memory_order_relaxed);
    }
  }
  snap.ok = ok.load();
  snap.expired = expired.load();
  snap.model_errors = model_errors.load();
  snap.cancelled = cancelled.load();
  snap.batches = batches.load();
  snap.failed_batches = failed_batches.load();
  snap.callback_exceptions = callback_exceptions.load();
  snap.padded_rows = padded_rows.load();
  snap.model_swaps_seen = model_swaps_seen.load();
  snap.batch_retries = batch_retries.load();
  snap.retry_forwards = retry_forwards.load();
  snap.model_version = model_version.load(std::memory_order_relaxed);
  snap.superseded = superseded.load();
  snap.polled_dropped = polled_dropped.load();
  snap.latest_write_failures = latest_write_failures.load();
  for (std::size_t e = 0; e < kEngineKinds; ++e) snap.rows_by_engine[e] = rows_by_engine[e].load();
  // Relaxed: a gauge for humans (and admission's estimate), orders nothing.
  snap.service_ns_per_row = service_time.ns_x256.load(std::memory_order_relaxed) / 256;
  return snap;
}

std::vector<KeyCounts> Metrics::key_snapshot() const {
  std::vector<KeyCounts> keys;
  if (workers_.empty()) return keys;
  keys.resize(workers_.front()->key_counts.size() / kResultStatuses);
  for (const auto& w : workers_) {
    for (std::size_t k = 0; k < keys.size(); ++k)
      for (std::size_t s = 0; s < kResultStatuses; ++s)
        // Relaxed: statistics with one writer per worker; the sum is as fresh as the loads.
        keys[k].by_status[s] += w->key_counts[k * kResultStatuses + s].load(std::memory_order_relaxed);
  }
  return keys;
}

std::string to_prometheus(const MetricsSnapshot& s, const std::string& prefix) {
  internal::PrometheusWriter out(prefix);
  const auto kQuantiles = {0.5, 0.9, 0.99, 0.999};
  out.summary("queue_wait_seconds", "Accepted until its batch starts forming.", s.queue_wait, kQuantiles);
  out.summary("batch_formation_seconds", "Batch starts forming until forward starts.", s.batch_formation, kQuantiles);
  out.summary("forward_seconds", "Model forward per batch.", s.forward, kQuantiles);
  out.summary("end_to_end_seconds", "Accepted until outputs are ready.", s.end_to_end, kQuantiles);
  out.counter("requests_accepted_total", "Requests accepted by submit().", s.accepted);
  out.counter("requests_rejected_total", "Requests shed: queue full, stopped, or deadline admission.", s.rejected);
  out.counter("requests_rejected_deadline_total",
              "Requests refused by deadline admission (their deadline could not be met); part of rejected.",
              s.rejected_deadline);
  out.counter("requests_invalid_total", "Requests with the wrong feature width or an unknown key.", s.invalid);
  out.counter("requests_merged_total", "Accepted requests replaced by a newer one for their key, never completed.",
              s.merged);
  out.labeled("requests_completed_total", "counter", "Requests completed, by status.", "status",
              {{"ok", s.ok},
               {"expired", s.expired},
               {"model_error", s.model_errors},
               {"cancelled", s.cancelled},
               {"superseded", s.superseded}});
  {
    std::vector<std::pair<std::string, std::uint64_t>> rows;
    for (std::size_t e = 1; e < kEngineKinds; ++e)  // kNone runs no rows
      rows.emplace_back(to_string(static_cast<EngineKind>(e)), s.rows_by_engine[e]);
    out.labeled("rows_total", "counter", "Real rows forwarded, by the engine that ran them.", "engine", rows);
  }
  out.counter("polled_results_dropped_total", "Polled results dropped because the producer's ring was full.",
              s.polled_dropped);
  out.counter("latest_write_failures_total", "Ok predictions the latest-prediction store refused.",
              s.latest_write_failures);
  out.counter("batches_total", "Batches run.", s.batches);
  out.counter("batches_failed_total", "Batches whose forward threw.", s.failed_batches);
  out.counter("callback_exceptions_total", "Completion callbacks that threw.", s.callback_exceptions);
  out.counter("batch_retries_total", "Failed batches retried in halves to isolate the rows that throw.",
              s.batch_retries);
  out.counter("retry_forwards_total", "Extra forwards run by batch retries.", s.retry_forwards);
  out.counter("padded_rows_total", "Rows of padding added to reach allowed batch sizes.", s.padded_rows);
  out.counter("model_swaps_seen_total", "Times a worker picked up a newly published model.", s.model_swaps_seen);
  out.integer_histogram("batch_size", "Batches by number of real rows.", s.batch_sizes);
  out.gauge("model_version", "Version of the model that ran the latest batch.", s.model_version);
  out.gauge("service_time_per_row_nanoseconds",
            "Workers' moving average of batch time per row run (deadline admission's service rate).",
            s.service_ns_per_row);
  return out.str();
}

}  // namespace tickinfer
