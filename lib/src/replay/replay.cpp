#include "tickinfer/replay/replay.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/affinity.hpp"
#include "core/cpu_relax.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::replay {
namespace {

using json = nlohmann::json;

using internal::cpu_relax;

constexpr std::uint64_t kPaddingTag = std::uint64_t{1} << 63;
// fixed_batches needs the worker to wait for a full batch however long the feed thread takes.
constexpr std::int64_t kMinFixedBatchDelayUs = 1'000'000;

// One instrument's share of a multi-symbol replay: written by one thread (the worker, or in direct mode the feed
// thread), read after the replay.
struct KeyTally {
  std::uint64_t by_status[kResultStatuses] = {};
  LatencyHistogram end_to_end;  // measured events (after warm-up)
};

std::unique_ptr<KeyTally[]> make_tallies(std::uint32_t symbols) {
  return symbols > 1 ? std::make_unique<KeyTally[]>(symbols) : nullptr;
}

// State the completion callback writes. Only the pipeline's single worker writes it (hence the plain
// load+store updates); the feed thread reads it after an acquire load of `completed`.
//
// An event's ingest time travels with its request (submit's event_ns, back in Result::event_ns): with
// conflation, requests do not complete in the order they were accepted.
struct Shared {
  std::uint64_t warmup = 0;
  Predictions* predictions = nullptr;
  LatencyHistogram end_to_end, feed_stage;
  std::atomic<std::uint64_t> completed{0};
  std::uint64_t ok_measured = 0;
  std::uint64_t by_status[kResultStatuses] = {};  // events (not padding) by ResultStatus
  std::uint64_t last_version = ~std::uint64_t{0};
  std::vector<std::uint64_t> versions;  // reserved up front; grows only on a new model version
  std::unique_ptr<KeyTally[]> keys;     // multi-symbol sources: by Result::key
  std::uint32_t key_count = 0;

  static void on_result(void* context, const Result& r) {
    auto& s = *static_cast<Shared*>(context);
    const std::int64_t done = now_ns();
    const std::uint64_t n = s.completed.load(std::memory_order_relaxed);
    if ((r.tag & kPaddingTag) == 0) {
      const std::int64_t ingest = r.event_ns;
      const auto status = static_cast<std::size_t>(r.status) % kResultStatuses;
      ++s.by_status[status];
      KeyTally* key = s.keys && r.key < s.key_count ? &s.keys[r.key] : nullptr;
      if (key != nullptr) ++key->by_status[status];
      if (r.tag >= s.warmup) {
        s.end_to_end.record_exclusive(done - ingest);
        if (key != nullptr) key->end_to_end.record_exclusive(done - ingest);
        s.feed_stage.record_exclusive(r.enqueue_ns - ingest);
        if (r.status == ResultStatus::kOk) ++s.ok_measured;
      }
      if (r.status == ResultStatus::kOk && r.model_version != s.last_version) {
        s.last_version = r.model_version;
        if (std::find(s.versions.begin(), s.versions.end(), r.model_version) == s.versions.end())
          s.versions.push_back(r.model_version);
      }
      if (s.predictions != nullptr) s.predictions->record(r.tag, r.status, r.outputs);
    }
    // Release: pairs with the feed thread's acquire loads; it then sees everything written above.
    s.completed.store(n + 1, std::memory_order_release);
  }
};

void pin_self(int core) { internal::pin_current_thread(core, "replay", "the feed thread"); }

void wait_until(std::int64_t target_ns, const std::atomic<bool>* stop) {
  // Busy-wait, as a feed handler polling its NIC does: on a VM a sleeping thread's wake-up can take milliseconds,
  // which paced latency (from the scheduled arrival) would count. Only gaps over 5 ms sleep, to 2 ms before, in
  // slices of at most 50 ms that look at `stop` (a recorded overnight gap must not ignore a SIGINT).
  constexpr std::int64_t kSleepOverNs = 5'000'000, kSpinNs = 2'000'000, kSliceNs = 50'000'000;
  for (std::int64_t left = target_ns - now_ns(); left > kSleepOverNs; left = target_ns - now_ns()) {
    if (stop != nullptr && stop->load(std::memory_order_relaxed)) return;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(left - kSpinNs, kSliceNs)));
  }
  while (now_ns() < target_ns) cpu_relax();
}

// Paced replay: when the event arrives (the wall clock's start plus its recorded offset scaled by 1/speed).
// Latency counts from here, so a feed thread that falls behind shows it in the latency of the events it is late
// for, as a real feed handler's would.
std::int64_t arrival_ns(std::int64_t start_ns, std::int64_t recorded_offset_ns, double inverse_speed) {
  return start_ns + static_cast<std::int64_t>(static_cast<double>(recorded_offset_ns) * inverse_speed);
}

// The feed thread's part of a replay, the same for the pipeline and for direct mode: reads the next event,
// waits for its arrival when paced, stamps its ingest time, applies it to its symbol's book and computes its
// features with that symbol's feature engine (a multi-symbol source: `engine` for the first, fresh engines of its
// schema in each other symbol's units, each with its own history).
struct FeedLoop {
  FeedLoop(MarketSource& s, features::FeatureEngine& e, const ReplayOptions& o, std::vector<std::int64_t>* t)
      : source(s),
        engine(e),
        options(o),
        timestamps(t),
        inverse_speed(o.speed > 0 ? 1.0 / o.speed : 0.0),
        symbols(s.symbol_count()) {
    if (symbols > 1) {
      others.reserve(symbols - 1);
      for (std::uint32_t k = 1; k < symbols; ++k) {  // fresh, in the symbol's own units
        const feed::SymbolInfo info = s.symbol_info(k);
        others.emplace_back(e.schema(), features::Scales{info.price_scale, info.qty_scale});
      }
      events_by_key.assign(symbols, 0);
    }
  }

  features::FeatureEngine& engine_for(std::uint32_t key) { return key == 0 ? engine : others[key - 1]; }

  MarketSource& source;
  features::FeatureEngine& engine;
  const ReplayOptions& options;
  std::vector<std::int64_t>* timestamps;  // receives each event's ts_ns when options.keep_predictions
  double inverse_speed;
  std::uint32_t symbols;
  std::vector<features::FeatureEngine> others;  // keys 1.. of a multi-symbol source
  std::vector<std::uint64_t> events_by_key;     // multi-symbol sources
  Tick tick;
  std::int64_t start_ns = 0, measure_start_ns = 0, first_ts = 0, last_ts = 0, next_sample_ns = 0;

  /// Event number i (counting from 0): false at the end of the source; else its features and ingest time (paced:
  /// its scheduled arrival; otherwise the moment before it was read).
  bool next(std::uint64_t i, std::vector<float>& features, std::int64_t& ingest_ns) {
    if (options.stop != nullptr && options.stop->load(std::memory_order_relaxed)) return false;
    const feed::Event* event;
    if (inverse_speed > 0) {
      event = source.read();
      if (event == nullptr) return false;
      if (i == 0) start_ns = now_ns(), first_ts = event->ts_ns;
      ingest_ns = arrival_ns(start_ns, event->ts_ns - first_ts, inverse_speed);
      wait_until(ingest_ns, options.stop);
      if (options.stop != nullptr && options.stop->load(std::memory_order_relaxed)) return false;
    } else {
      ingest_ns = now_ns();
      event = source.read();
      if (event == nullptr) return false;
      if (i == 0) start_ns = ingest_ns, first_ts = event->ts_ns;
    }
    if (i == 0) next_sample_ns = start_ns + options.interval_ns;
    if (i == options.warmup_events) measure_start_ns = ingest_ns;
    last_ts = event->ts_ns;
    source.apply(tick);
    if (symbols > 1) {
      if (tick.key >= symbols)  // a source bug, not a data error: never index past the engines
        throw Error(ErrorCode::kInvalidConfig, "replay: event " + std::to_string(i) + " has instrument " +
                                                   std::to_string(tick.key) + " of " + std::to_string(symbols));
      ++events_by_key[tick.key];
      engine_for(tick.key).update(event->ts_ns, *tick.book, tick.trade, features);
    } else {
      engine.update(event->ts_ns, *tick.book, tick.trade, features);
    }
    if (timestamps != nullptr && options.keep_predictions) timestamps->push_back(event->ts_ns);
    return true;
  }

  /// The report's source and timing fields once `events` were replayed and the last prediction was in at end_ns.
  void finish(ReplayReport& report, std::uint64_t events, std::int64_t end_ns, std::uint64_t ok_measured,
              const KeyTally* tallies) const {
    report.source_stats = source.stats();
    report.window_overflows = engine.window_overflows();
    for (const auto& other : others) report.window_overflows += other.window_overflows();
    if (tallies != nullptr) {
      report.symbols.resize(symbols);
      for (std::uint32_t k = 0; k < symbols; ++k) {
        SymbolReport& s = report.symbols[k];
        s.symbol = source.symbol_info(k);
        s.events = events_by_key[k];
        s.ok = tallies[k].by_status[static_cast<int>(ResultStatus::kOk)];
        s.expired = tallies[k].by_status[static_cast<int>(ResultStatus::kExpired)];
        s.model_errors = tallies[k].by_status[static_cast<int>(ResultStatus::kModelError)];
        s.superseded = tallies[k].by_status[static_cast<int>(ResultStatus::kSuperseded)];
        s.end_to_end = tallies[k].end_to_end.snapshot();
      }
    }
    report.recorded_span_ns = last_ts - first_ts;
    report.wall_s = events > 0 ? static_cast<double>(end_ns - start_ns) * 1e-9 : 0.0;
    if (events > options.warmup_events) {
      report.measured_s = static_cast<double>(end_ns - measure_start_ns) * 1e-9;
      if (report.measured_s > 0) {
        report.events_per_s = static_cast<double>(events - options.warmup_events) / report.measured_s;
        report.inferences_per_s = static_cast<double>(ok_measured) / report.measured_s;
      }
    }
  }
};

json percentiles(const HistogramSnapshot& h) {
  return {{"count", h.count},
          {"mean_ns", h.mean()},
          {"p50_ns", h.percentile(0.5)},
          {"p90_ns", h.percentile(0.9)},
          {"p99_ns", h.percentile(0.99)},
          {"p999_ns", h.percentile(0.999)},
          {"max_ns", h.max}};
}

json buckets(const HistogramSnapshot& h) {
  json out = json::array();
  for (std::size_t b = 0; b < h.counts.size(); ++b)
    if (h.counts[b] != 0) out.push_back({LatencyHistogram::bucket_lower(b), h.counts[b]});
  return out;
}

json issues_by_kind(const feed::ParseStats& stats) {
  json out = json::object();
  for (std::size_t k = 0; k < feed::kParseIssueCount; ++k)
    if (stats.issues[k] != 0) out[feed::to_string(static_cast<feed::ParseIssue>(k))] = stats.issues[k];
  return out;
}

json first_issues(const feed::ParseStats& stats) {
  json out = json::array();
  for (const auto& r : stats.first_issues) out.push_back(r.message());
  return out;
}

void append_float(std::string& line, float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  line += buf;
}

}  // namespace

Predictions::Predictions(std::size_t width, std::uint64_t expected_events) : width_(width) {
  chunks_.reserve(static_cast<std::size_t>(expected_events / kChunk + 1024));
}

void Predictions::record(std::uint64_t index, ResultStatus status, std::span<const float> outputs) {
  const std::size_t c = static_cast<std::size_t>(index >> kChunkBits);
  while (chunks_.size() <= c) {
    auto chunk = std::make_unique<Chunk>();
    chunk->outputs.assign(kChunk * width_, 0.0f);
    chunk->status.assign(kChunk, 0);
    chunks_.push_back(std::move(chunk));
  }
  Chunk& chunk = *chunks_[c];
  const std::uint64_t i = index & (kChunk - 1);
  chunk.status[i] = static_cast<std::uint8_t>(static_cast<int>(status) + 1);
  if (status == ResultStatus::kOk)
    std::copy_n(outputs.begin(), std::min(width_, outputs.size()), chunk.outputs.begin() + i * width_);
  size_ = std::max(size_, index + 1);
}

ResultStatus Predictions::status(std::uint64_t index) const noexcept {
  const auto c = static_cast<std::size_t>(index >> kChunkBits);
  if (c >= chunks_.size()) return ResultStatus::kCancelled;
  const std::uint8_t s = chunks_[c]->status[index & (kChunk - 1)];
  return s == 0 ? ResultStatus::kCancelled : static_cast<ResultStatus>(s - 1);
}

std::span<const float> Predictions::outputs(std::uint64_t index) const noexcept {
  const auto c = static_cast<std::size_t>(index >> kChunkBits);
  if (c >= chunks_.size()) return {};
  return std::span<const float>(chunks_[c]->outputs).subspan((index & (kChunk - 1)) * width_, width_);
}

void Predictions::write_csv(const std::string& path, const std::vector<std::string>& output_names,
                            const std::vector<std::int64_t>& timestamps) const {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(ErrorCode::kFileNotFound, path + ": cannot create the predictions file");
  std::string line = "index,ts_ns,status";
  for (const auto& name : output_names) line += "," + name;
  out << line << '\n';
  for (std::uint64_t i = 0; i < size_; ++i) {
    const ResultStatus s = status(i);
    line = std::to_string(i) + "," + (i < timestamps.size() ? std::to_string(timestamps[i]) : "") + "," + to_string(s);
    const auto values = outputs(i);
    for (std::size_t k = 0; k < width_; ++k) {
      line += ',';
      if (s == ResultStatus::kOk) append_float(line, values[k]);
    }
    out << line << '\n';
  }
  if (!out) throw Error(ErrorCode::kFileNotFound, path + ": write failed");
}

ReplayReport run_replay(MarketSource& source, features::FeatureEngine& engine, Pipeline& pipeline,
                        const ReplayOptions& options, Predictions* predictions, std::vector<std::int64_t>* timestamps) {
  const PipelineConfig& pc = pipeline.config();
  if (engine.width() != pipeline.feature_width())
    throw Error(ErrorCode::kWidthMismatch, "replay: the feature schema has " + std::to_string(engine.width()) +
                                               " features, the pipeline expects " +
                                               std::to_string(pipeline.feature_width()));
  if (pc.workers != 1) throw Error(ErrorCode::kInvalidConfig, "replay: the pipeline must have exactly 1 worker");
  if (pc.conflation == Conflation::kMerge)
    throw Error(ErrorCode::kInvalidConfig,
                "replay: Conflation::kMerge never completes the requests it replaces, and the replay waits for every "
                "event: use kSupersede");
  const std::uint32_t symbols = source.symbol_count();
  if (symbols > 1 && pc.keys < symbols)
    throw Error(ErrorCode::kInvalidConfig, "replay: the source has " + std::to_string(symbols) +
                                               " symbols: the pipeline needs keys >= " + std::to_string(symbols) +
                                               " (PipelineConfig::keys), got " + std::to_string(pc.keys));
  if (options.speed < 0) throw Error(ErrorCode::kInvalidConfig, "replay: speed must be >= 0");
  if (options.fixed_batches) {
    if (pc.max_delay_us < kMinFixedBatchDelayUs || options.drop_when_full || options.deadline_us != 0 ||
        pc.queue_capacity < pc.max_batch || pc.conflation != Conflation::kOff)
      throw Error(ErrorCode::kInvalidConfig,
                  "replay: fixed batches need max_delay_us >= 1000000, queue_capacity >= max_batch, no deadline, "
                  "no dropping and no conflation");
  }
  pin_self(options.feed_core);

  Shared shared;
  shared.keys = make_tallies(symbols);
  shared.key_count = symbols;
  shared.warmup = options.warmup_events;
  shared.predictions = options.keep_predictions ? predictions : nullptr;
  shared.versions.reserve(64);
  if (timestamps != nullptr && options.keep_predictions) timestamps->reserve(source.size_hint());

  ReplayReport report;
  report.source = source.describe();
  report.symbol = source.symbol();
  report.speed = options.speed;
  report.warmup_events = options.warmup_events;
  report.series.reserve(1 << 16);

  auto producer = pipeline.make_producer();
  std::vector<float> features(engine.width());
  const std::int64_t deadline_ns = options.deadline_us * 1000;
  const Completion completion_base{&Shared::on_result, &shared, 0};

  std::uint64_t i = 0, accepted = 0, rejected = 0, invalid = 0, waits = 0;
  // Completions point at `shared`: if anything below throws, wait for those in flight before it goes.
  struct DrainOnThrow {
    const Shared& shared;
    const std::uint64_t& accepted;
    const std::uint64_t& padding;
    ~DrainOnThrow() {
      if (std::uncaught_exceptions() == 0) return;
      while (shared.completed.load(std::memory_order_acquire) < accepted + padding) std::this_thread::yield();
    }
  } drain_on_throw{shared, accepted, report.padding_requests};
  FeedLoop feed(source, engine, options, timestamps);
  for (; options.limit == 0 || i < options.limit; ++i) {
    std::int64_t ingest_ns;
    if (!feed.next(i, features, ingest_ns)) break;

    Completion completion = completion_base;
    completion.tag = i;
    const std::int64_t deadline = deadline_ns != 0 ? ingest_ns + deadline_ns : kNoDeadline;
    // Keyed when the pipeline has keys (conflation works per key; one symbol is key 0). The ingest time rides along
    // as event_ns.
    const InstrumentKey key = pc.keys > 0 ? feed.tick.key : kNoKey;
    for (;;) {
      const SubmitStatus status = pipeline.submit(producer, key, features, deadline, completion, ingest_ns);
      if (status == SubmitStatus::kAccepted) {
        ++accepted;
        break;
      }
      if (status == SubmitStatus::kRejected && !options.drop_when_full) {
        ++waits;
        cpu_relax();
        continue;
      }
      ++(status == SubmitStatus::kRejected ? rejected : invalid);
      break;
    }
    if (ingest_ns >= feed.next_sample_ns) {
      const std::uint64_t done = shared.completed.load(std::memory_order_relaxed);
      report.series.push_back({static_cast<double>(ingest_ns - feed.start_ns) * 1e-9, i + 1, done});
      if (options.progress) options.progress(i + 1, done);
      feed.next_sample_ns += options.interval_ns * (1 + (ingest_ns - feed.next_sample_ns) / options.interval_ns);
    }
  }
  report.events = i;

  std::uint64_t padding = 0;
  if (options.fixed_batches && accepted % pc.max_batch != 0) {
    // Complete the last batch so it runs now instead of after max_delay.
    std::fill(features.begin(), features.end(), 0.0f);
    for (padding = pc.max_batch - accepted % pc.max_batch; report.padding_requests < padding;) {
      Completion completion = completion_base;
      completion.tag = kPaddingTag | report.padding_requests;
      // Keyed when the pipeline is (a sequence model takes keyed requests only): after the last event, key 0's state
      // no longer matters.
      const SubmitStatus status =
          pipeline.submit(producer, pc.keys > 0 ? InstrumentKey{0} : kNoKey, features, kNoDeadline, completion);
      if (status == SubmitStatus::kAccepted) {
        ++report.padding_requests;
      } else if (status == SubmitStatus::kInvalid) {
        throw Error(ErrorCode::kInvalidConfig, "replay: the pipeline refused the padding of the last fixed batch");
      } else {
        cpu_relax();
      }
    }
  }
  // Acquire pairs with the release in on_result: after this, every completion's writes are visible.
  while (shared.completed.load(std::memory_order_acquire) < accepted + report.padding_requests) cpu_relax();
  const std::int64_t end_ns = now_ns();
  if (i > 0) {
    report.series.push_back({static_cast<double>(end_ns - feed.start_ns) * 1e-9, i, accepted});
    if (options.progress) options.progress(i, accepted);
  }

  report.accepted = accepted;
  report.rejected = rejected;
  report.invalid = invalid;
  report.full_queue_waits = waits;
  report.pipeline = pipeline.metrics().snapshot();
  report.ok = shared.by_status[static_cast<int>(ResultStatus::kOk)];
  report.expired = shared.by_status[static_cast<int>(ResultStatus::kExpired)];
  report.model_errors = shared.by_status[static_cast<int>(ResultStatus::kModelError)];
  report.cancelled = shared.by_status[static_cast<int>(ResultStatus::kCancelled)];
  report.superseded = shared.by_status[static_cast<int>(ResultStatus::kSuperseded)];
  report.end_to_end = shared.end_to_end.snapshot();
  report.feed_stage = shared.feed_stage.snapshot();
  report.model_versions = shared.versions;
  std::sort(report.model_versions.begin(), report.model_versions.end());
  feed.finish(report, i, end_ns, shared.ok_measured, shared.keys.get());
  return report;
}

ReplayReport run_replay_direct(MarketSource& source, features::FeatureEngine& engine, Predictor& predictor,
                               const ReplayOptions& options, Predictions* predictions,
                               std::vector<std::int64_t>* timestamps) {
  if (predictor.input_width() == 0)
    throw Error(ErrorCode::kInvalidConfig, "replay: direct mode: the slot has no model");
  if (engine.width() != predictor.input_width())
    throw Error(ErrorCode::kWidthMismatch, "replay: the feature schema has " + std::to_string(engine.width()) +
                                               " features, the model expects " +
                                               std::to_string(predictor.input_width()));
  if (options.speed < 0) throw Error(ErrorCode::kInvalidConfig, "replay: speed must be >= 0");
  if (options.fixed_batches || options.drop_when_full || options.deadline_us != 0)
    throw Error(ErrorCode::kInvalidConfig,
                "replay: direct mode predicts every event inline: fixed batches, dropping and deadlines are "
                "pipeline options");
  pin_self(options.feed_core);

  ReplayReport report;
  report.source = source.describe();
  report.symbol = source.symbol();
  report.direct = true;
  report.speed = options.speed;
  report.warmup_events = options.warmup_events;
  report.series.reserve(1 << 16);
  if (timestamps != nullptr && options.keep_predictions) timestamps->reserve(source.size_hint());
  Predictions* keep = options.keep_predictions ? predictions : nullptr;

  std::vector<float> features(engine.width());
  std::vector<float> outputs(predictor.output_width());
  std::vector<std::uint64_t> versions;
  versions.reserve(64);
  std::uint64_t last_version = ~std::uint64_t{0};
  LatencyHistogram end_to_end, feed_stage, predict;
  const std::unique_ptr<KeyTally[]> tallies = make_tallies(source.symbol_count());
  std::uint64_t i = 0, ok = 0, ok_measured = 0, model_errors = 0;
  FeedLoop feed(source, engine, options, timestamps);
  for (; options.limit == 0 || i < options.limit; ++i) {
    std::int64_t ingest_ns;
    if (!feed.next(i, features, ingest_ns)) break;

    const std::int64_t features_ns = now_ns();
    const PredictStatus status = predictor.predict(features, outputs);
    const std::int64_t done_ns = now_ns();
    switch (status) {
      case PredictStatus::kOk:
        ++ok;
        if (predictor.model_version() != last_version) {
          last_version = predictor.model_version();
          if (std::find(versions.begin(), versions.end(), last_version) == versions.end())
            versions.push_back(last_version);
        }
        break;
      case PredictStatus::kModelError:
        ++model_errors;
        break;
      case PredictStatus::kNotNative:
        throw Error(ErrorCode::kUnsupported,
                    "replay: direct mode runs the native engine, and the current model has no native plan");
      case PredictStatus::kInvalid:
        throw Error(ErrorCode::kWidthMismatch, "replay: direct mode: the model's width changed to " +
                                                   std::to_string(predictor.input_width()) + " -> " +
                                                   std::to_string(predictor.output_width()));
      case PredictStatus::kNoModel:
        throw Error(ErrorCode::kInvalidConfig, "replay: direct mode: the slot has no model");
    }
    KeyTally* key = tallies ? &tallies[feed.tick.key] : nullptr;
    if (key != nullptr)
      ++key->by_status[static_cast<int>(status == PredictStatus::kOk ? ResultStatus::kOk : ResultStatus::kModelError)];
    if (i >= options.warmup_events) {
      end_to_end.record_exclusive(done_ns - ingest_ns);
      if (key != nullptr) key->end_to_end.record_exclusive(done_ns - ingest_ns);
      feed_stage.record_exclusive(features_ns - ingest_ns);
      predict.record_exclusive(done_ns - features_ns);
      ok_measured += status == PredictStatus::kOk;
    }
    if (keep != nullptr)
      keep->record(i, status == PredictStatus::kOk ? ResultStatus::kOk : ResultStatus::kModelError, outputs);
    if (done_ns >= feed.next_sample_ns) {
      report.series.push_back({static_cast<double>(done_ns - feed.start_ns) * 1e-9, i + 1, i + 1});
      if (options.progress) options.progress(i + 1, i + 1);
      feed.next_sample_ns += options.interval_ns * (1 + (done_ns - feed.next_sample_ns) / options.interval_ns);
    }
  }
  const std::int64_t end_ns = now_ns();
  report.events = i;
  if (i > 0) {
    report.series.push_back({static_cast<double>(end_ns - feed.start_ns) * 1e-9, i, i});
    if (options.progress) options.progress(i, i);
  }
  report.accepted = i;
  report.ok = ok;
  report.model_errors = model_errors;
  report.end_to_end = end_to_end.snapshot();
  report.feed_stage = feed_stage.snapshot();
  report.predict = predict.snapshot();
  std::sort(versions.begin(), versions.end());
  report.model_versions = std::move(versions);
  feed.finish(report, i, end_ns, ok_measured, tallies.get());
  return report;
}

std::string to_json(const ReplayReport& r, const std::string& extra) {
  json j;
  j["tool"] = "tickinfer-replay";
  j["source"] = {{"description", r.source},
                 {"symbol", r.symbol.name},
                 {"price_scale", r.symbol.price_scale},
                 {"qty_scale", r.symbol.qty_scale},
                 {"recorded_span_s", static_cast<double>(r.recorded_span_ns) * 1e-9},
                 {"events_skipped", r.source_stats.skipped},
                 {"parse_records", r.source_stats.parse.records},
                 {"parse_issues", r.source_stats.parse_issues},
                 {"parse_issues_by_kind", issues_by_kind(r.source_stats.parse)},
                 {"first_parse_issues", first_issues(r.source_stats.parse)},
                 {"stream_lost", r.source_stats.parse.stream_lost()},
                 {"book_warnings", r.source_stats.book_warnings},
                 {"book_syncs", r.source_stats.book_syncs}};
  j["pacing"] = {{"speed", r.speed},
                 {"mode", r.speed == 0   ? "as_fast_as_possible"
                          : r.speed == 1 ? "as_recorded"
                                         : "scaled"}};
  j["mode"] = r.direct ? "direct" : "pipeline";
  j["events"] = r.events;
  j["warmup_events"] = r.warmup_events;
  j["counts"] = {{"accepted", r.accepted},
                 {"rejected", r.rejected},
                 {"invalid", r.invalid},
                 {"ok", r.ok},
                 {"expired", r.expired},
                 {"model_errors", r.model_errors},
                 {"cancelled", r.cancelled},
                 {"superseded", r.superseded},
                 {"full_queue_waits", r.full_queue_waits},
                 {"padding_requests", r.padding_requests}};
  json series = json::array();
  for (const auto& s : r.series) series.push_back({s.t_s, s.events, s.predictions});
  j["throughput"] = {{"wall_s", r.wall_s},
                     {"measured_s", r.measured_s},
                     {"events_per_s", r.events_per_s},
                     {"inferences_per_s", r.inferences_per_s},
                     {"series_columns", {"t_s", "events", "predictions"}},
                     {"series", series}};
  j["latency_ns"] = {{"end_to_end", percentiles(r.end_to_end)},
                     {"feed_stage", percentiles(r.feed_stage)},
                     {"queue_wait", percentiles(r.pipeline.queue_wait)},
                     {"batch_formation", percentiles(r.pipeline.batch_formation)},
                     {"forward", percentiles(r.pipeline.forward)},
                     {"pipeline_end_to_end", percentiles(r.pipeline.end_to_end)},
                     {"predict", percentiles(r.predict)}};
  j["end_to_end_histogram"] = {{"columns", {"lower_ns", "count"}}, {"buckets", buckets(r.end_to_end)}};
  json sizes = json::object();
  double rows = 0, batches = 0;
  for (std::size_t n = 1; n < r.pipeline.batch_sizes.size(); ++n) {
    if (r.pipeline.batch_sizes[n] == 0) continue;
    sizes[std::to_string(n)] = r.pipeline.batch_sizes[n];
    rows += static_cast<double>(n * r.pipeline.batch_sizes[n]);
    batches += static_cast<double>(r.pipeline.batch_sizes[n]);
  }
  j["batches"] = {{"count", r.pipeline.batches},
                  {"failed", r.pipeline.failed_batches},
                  {"mean_size", batches > 0 ? rows / batches : 0.0},
                  {"sizes", sizes}};
  j["model_versions"] = r.model_versions;
  j["window_overflows"] = r.window_overflows;
  if (!r.symbols.empty()) {
    json symbols = json::array();
    for (const SymbolReport& s : r.symbols)
      symbols.push_back({{"symbol", s.symbol.name},
                         {"events", s.events},
                         {"ok", s.ok},
                         {"superseded", s.superseded},
                         {"expired", s.expired},
                         {"model_errors", s.model_errors},
                         {"end_to_end", percentiles(s.end_to_end)}});
    j["symbols"] = std::move(symbols);
  }
  if (!extra.empty()) j.update(json::parse(extra));
  return j.dump(2, ' ', false, json::error_handler_t::replace);  // file names and excerpts may not be UTF-8
}

std::uint64_t dump_features(MarketSource& source, features::FeatureEngine& engine, const std::string& path,
                            std::uint64_t limit) {
  if (source.symbol_count() > 1)
    throw Error(ErrorCode::kInvalidConfig,
                "dump_features: one symbol at a time (the source has " + std::to_string(source.symbol_count()) + ")");
  const bool binary = path.size() > 4 && path.compare(path.size() - 4, 4, ".f32") == 0;
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(ErrorCode::kFileNotFound, path + ": cannot create the features file");
  if (!binary) {
    std::string header = "index,ts_ns,mid";
    for (const auto& name : engine.schema().names()) header += "," + name;
    out << header << '\n';
  }
  const double price_scale = static_cast<double>(source.symbol().price_scale);
  std::vector<float> features(engine.width());
  std::vector<float> row(engine.width() + 1);
  std::string line;
  double mid = 0.0;
  Tick tick;
  std::uint64_t n = 0;
  for (; limit == 0 || n < limit; ++n) {
    const feed::Event* event = source.read();
    if (event == nullptr) break;
    source.apply(tick);
    engine.update(event->ts_ns, *tick.book, tick.trade, features);
    if (!tick.book->empty(feed::Side::kBuy) && !tick.book->empty(feed::Side::kSell))
      mid = static_cast<double>(tick.book->best_bid().price + tick.book->best_ask().price) * 0.5 / price_scale;
    if (binary) {
      row[0] = static_cast<float>(mid);
      std::copy(features.begin(), features.end(), row.begin() + 1);
      out.write(reinterpret_cast<const char*>(row.data()), static_cast<std::streamsize>(row.size() * sizeof(float)));
      continue;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%llu,%lld,%.17g", static_cast<unsigned long long>(n),
                  static_cast<long long>(event->ts_ns), mid);
    line = buf;
    for (const float v : features) {
      line += ',';
      append_float(line, v);
    }
    out << line << '\n';
  }
  if (!out) throw Error(ErrorCode::kFileNotFound, path + ": write failed");
  return n;
}

}  // namespace tickinfer::replay
