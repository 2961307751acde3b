#include "tickinfer/metrics.hpp"

#include <sstream>

namespace tickinfer {

Metrics::Metrics(std::size_t max_batch, std::size_t workers) {
  workers_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<WorkerStats>(max_batch));
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
  snap.ok = ok.load();
  snap.expired = expired.load();
  snap.model_errors = model_errors.load();
  snap.cancelled = cancelled.load();
  snap.batches = batches.load();
  snap.failed_batches = failed_batches.load();
  snap.callback_exceptions = callback_exceptions.load();
  snap.padded_rows = padded_rows.load();
  snap.model_swaps_seen = model_swaps_seen.load();
  snap.model_version = model_version.load(std::memory_order_relaxed);
  return snap;
}

namespace {

void write_summary(std::ostringstream& out, const std::string& name, const std::string& help,
                   const HistogramSnapshot& h) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " summary\n";
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    out << name << "{quantile=\"" << q << "\"} " << static_cast<double>(h.percentile(q)) * 1e-9 << '\n';
  }
  out << name << "{quantile=\"1\"} " << static_cast<double>(h.max) * 1e-9 << '\n';
  out << name << "_sum " << static_cast<double>(h.sum) * 1e-9 << '\n';
  out << name << "_count " << h.count << '\n';
}

void write_counter(std::ostringstream& out, const std::string& name, const std::string& help, std::uint64_t v) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n" << name << ' ' << v << '\n';
}

}  // namespace

std::string to_prometheus(const MetricsSnapshot& s, const std::string& prefix) {
  std::ostringstream out;
  write_summary(out, prefix + "_queue_wait_seconds", "Accepted until its batch starts forming.", s.queue_wait);
  write_summary(out, prefix + "_batch_formation_seconds", "Batch starts forming until forward starts.",
                s.batch_formation);
  write_summary(out, prefix + "_forward_seconds", "Model forward per batch.", s.forward);
  write_summary(out, prefix + "_end_to_end_seconds", "Accepted until outputs are ready.", s.end_to_end);
  write_counter(out, prefix + "_requests_accepted_total", "Requests accepted by submit().", s.accepted);
  write_counter(out, prefix + "_requests_rejected_total", "Requests shed: queue full or stopped.", s.rejected);
  write_counter(out, prefix + "_requests_invalid_total", "Requests with the wrong feature width.", s.invalid);
  out << "# HELP " << prefix << "_requests_completed_total Requests completed, by status.\n# TYPE " << prefix
      << "_requests_completed_total counter\n";
  const std::pair<const char*, std::uint64_t> by_status[] = {
      {"ok", s.ok}, {"expired", s.expired}, {"model_error", s.model_errors}, {"cancelled", s.cancelled}};
  for (const auto& [status, v] : by_status)
    out << prefix << "_requests_completed_total{status=\"" << status << "\"} " << v << '\n';
  write_counter(out, prefix + "_batches_total", "Batches run.", s.batches);
  write_counter(out, prefix + "_batches_failed_total", "Batches whose forward threw.", s.failed_batches);
  write_counter(out, prefix + "_callback_exceptions_total", "Completion callbacks that threw.", s.callback_exceptions);
  write_counter(out, prefix + "_padded_rows_total", "Rows of padding added to reach allowed batch sizes.",
                s.padded_rows);
  write_counter(out, prefix + "_model_swaps_seen_total", "Times a worker picked up a newly published model.",
                s.model_swaps_seen);
  out << "# HELP " << prefix << "_batch_size Batches by number of real rows.\n# TYPE " << prefix
      << "_batch_size histogram\n";
  // Stable power-of-two bucket bounds (and the max batch) so series do not appear and vanish between scrapes.
  std::uint64_t cumulative = 0, weighted = 0;
  std::size_t next_bound = 1;
  for (std::size_t n = 1; n < s.batch_sizes.size(); ++n) {
    cumulative += s.batch_sizes[n];
    weighted += s.batch_sizes[n] * n;
    if (n == next_bound || n + 1 == s.batch_sizes.size()) {
      out << prefix << "_batch_size_bucket{le=\"" << n << "\"} " << cumulative << '\n';
      if (n == next_bound) next_bound *= 2;
    }
  }
  out << prefix << "_batch_size_bucket{le=\"+Inf\"} " << cumulative << '\n';
  out << prefix << "_batch_size_sum " << weighted << '\n' << prefix << "_batch_size_count " << cumulative << '\n';
  out << "# HELP " << prefix << "_model_version Version of the model that ran the latest batch.\n# TYPE " << prefix
      << "_model_version gauge\n"
      << prefix << "_model_version " << s.model_version << '\n';
  return out.str();
}

}  // namespace tickinfer
