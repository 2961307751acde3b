#pragma once
// Replays a market-data source through the feature engine and a Pipeline: one feed thread (this one) reads
// events, updates the book, computes features and submits; the pipeline's worker runs the model. Or, in direct
// mode, the feed thread runs the model itself on each event (Predictor, the native engine): no queue hop.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tickinfer/features/engine.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/metrics.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/predictor.hpp"
#include "tickinfer/replay/source.hpp"

namespace tickinfer::replay {

struct ReplayOptions {
  double speed = 0.0;                      // 0: as fast as possible; 1: as recorded; N: N times faster than recorded
  std::uint64_t limit = 0;                 // events to replay, 0: all
  std::uint64_t warmup_events = 0;         // first events run end to end but stay out of latencies and rates
  std::int64_t deadline_us = 0;            // per request from ingest, 0: none (expired requests are counted)
  bool drop_when_full = false;             // false: wait for queue room (every event is predicted); true: shed
  bool keep_predictions = false;           // keep every prediction for write_predictions_csv()
  std::int64_t interval_ns = 100'000'000;  // throughput series resolution
  int feed_core = -1;                      // pin the feed thread (the caller's) to this core
  /// Batches of exactly max_batch consecutive events (the pipeline must be made with a max_delay_us that
  /// exceeds any gap between events): batch composition, hence every float of every prediction, is then
  /// the same on every run. The tail is padded with throw-away requests.
  bool fixed_batches = false;
  /// Set (e.g. by a SIGINT handler): the replay stops reading, as at the end of the source, and reports what it
  /// replayed (every accepted event still completes). Read once per event (relaxed: a request to stop, it orders
  /// nothing).
  const std::atomic<bool>* stop = nullptr;
  /// Called on the feed thread about every 100 ms with the events so far (progress display).
  std::function<void(std::uint64_t events, std::uint64_t predicted)> progress;
};

struct ThroughputSample {
  double t_s = 0;                 // since the replay started
  std::uint64_t events = 0;       // ingested so far
  std::uint64_t predictions = 0;  // completed so far
};

/// One instrument of a multi-symbol replay.
struct SymbolReport {
  feed::SymbolInfo symbol;
  std::uint64_t events = 0;  // events of this symbol replayed
  std::uint64_t ok = 0, superseded = 0, expired = 0, model_errors = 0;
  HistogramSnapshot end_to_end;  // this symbol's events after warm-up
};

struct ReplayReport {
  std::string source;
  bool direct = false;  // direct mode: the feed thread predicted each event inline (no pipeline)
  feed::SymbolInfo symbol;
  double speed = 0;
  std::uint64_t events = 0;  // events replayed (each computed features and was submitted once)
  std::uint64_t warmup_events = 0;
  std::uint64_t accepted = 0, rejected = 0, invalid = 0;
  std::uint64_t ok = 0, expired = 0, model_errors = 0, cancelled = 0;
  std::uint64_t superseded = 0;        // conflation (PipelineConfig::conflation): replaced by a newer event's request
  std::uint64_t full_queue_waits = 0;  // submits retried because the queue was full (drop_when_full = false)
  std::uint64_t padding_requests = 0;  // fixed_batches: throw-away rows that completed the last batch
  double wall_s = 0;                   // first event ingested -> last prediction (all events)
  double measured_s = 0;               // same, after warm-up
  double events_per_s = 0;             // measured events / measured_s
  double inferences_per_s = 0;         // measured kOk predictions / measured_s
  HistogramSnapshot end_to_end;        // ingest (event read) -> completion callback, per event after warm-up
  /// Ingest -> accepted by submit (read, book, features, submit); direct mode: ingest -> features ready.
  HistogramSnapshot feed_stage;
  HistogramSnapshot predict;  // direct mode: Predictor::predict per event (after warm-up); empty otherwise
  MetricsSnapshot pipeline;   // the pipeline's own per-stage metrics (all events); empty in direct mode
  std::vector<ThroughputSample> series;
  std::vector<std::uint64_t> model_versions;  // distinct versions that produced predictions, ascending
  SourceStats source_stats;
  std::uint64_t window_overflows = 0;
  std::int64_t recorded_span_ns = 0;  // last - first event timestamp
  /// A multi-symbol source (MarketSource::symbol_count() > 1): one entry per instrument, by key; else empty.
  std::vector<SymbolReport> symbols;
};

/// Per-event predictions (kept when ReplayOptions::keep_predictions), by event index.
class Predictions {
 public:
  Predictions(std::size_t width, std::uint64_t expected_events);
  /// One writer thread (the worker; in direct mode the feed thread). Allocates a chunk once per 65536 events, never per
  /// event.
  void record(std::uint64_t index, ResultStatus status, std::span<const float> outputs);
  std::size_t width() const noexcept { return width_; }
  std::uint64_t size() const noexcept { return size_; }
  /// Read after the replay finished.
  ResultStatus status(std::uint64_t index) const noexcept;
  std::span<const float> outputs(std::uint64_t index) const noexcept;
  /// "index,ts_ns,status,<output names>" then one row per event in index order, floats as "%.9g"
  /// (round-trips float32); outputs are empty unless the status is ok.
  void write_csv(const std::string& path, const std::vector<std::string>& output_names,
                 const std::vector<std::int64_t>& timestamps) const;

 private:
  static constexpr int kChunkBits = 16;
  static constexpr std::uint64_t kChunk = std::uint64_t{1} << kChunkBits;
  struct Chunk {
    std::vector<float> outputs;
    std::vector<std::uint8_t> status;  // ResultStatus + 1; 0 = never completed
  };
  std::size_t width_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::uint64_t size_ = 0;
};

/// Runs the replay to the end (or options.limit), waits for every prediction, and reports. `engine`
/// must match `pipeline`'s feature width. The caller owns the pipeline and shuts it down afterwards.
/// Submits are keyed by the event's instrument (Tick::key) when the pipeline has keys, so conflation works;
/// a multi-symbol source needs config().keys >= its symbol_count() (else Error kInvalidConfig); `engine` serves
/// the first symbol and every other gets a fresh engine of its schema in its own units (its own history).
/// When options.keep_predictions, `predictions` receives them and `timestamps` the events' ts_ns.
/// Throws Error(kInvalidConfig) for a width mismatch or fixed_batches with a small max_delay_us.
ReplayReport run_replay(MarketSource& source, features::FeatureEngine& engine, Pipeline& pipeline,
                        const ReplayOptions& options, Predictions* predictions = nullptr,
                        std::vector<std::int64_t>* timestamps = nullptr);

/// Direct mode: the calling (feed) thread reads each event, updates the book, computes the features and runs
/// `predictor` on them before it reads the next event, so end-to-end latency is ingest -> prediction with no
/// queue. Pacing, warm-up, limit, predictions and the report are as run_replay's (ok and model_errors count the
/// predictions; there is no rejection, expiry or batching). Paced, an event's ingest time is its scheduled
/// arrival, so time spent behind on earlier events counts in its latency. Throws Error(kWidthMismatch) when
/// the features and the model disagree, Error(kUnsupported) when the slot's model has no native plan, and
/// Error(kInvalidConfig) for fixed_batches, drop_when_full or a deadline (pipeline options).
ReplayReport run_replay_direct(MarketSource& source, features::FeatureEngine& engine, Predictor& predictor,
                               const ReplayOptions& options, Predictions* predictions = nullptr,
                               std::vector<std::int64_t>* timestamps = nullptr);

/// The report as JSON (fields in docs/REPLAY.md). `extra` (a JSON object text, may be empty) is merged in.
std::string to_json(const ReplayReport& report, const std::string& extra = {});

/// Writes the features of every event to `path` without running a model: CSV with a header
/// "index,ts_ns,mid,<feature names>" (mid in quote currency, for labels; features as "%.9g"), or raw
/// little-endian float32 rows of [mid, features...] when the path ends in ".f32". Returns the events.
std::uint64_t dump_features(MarketSource& source, features::FeatureEngine& engine, const std::string& path,
                            std::uint64_t limit = 0);

}  // namespace tickinfer::replay
