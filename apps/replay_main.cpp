// tickinfer-replay: replays market data (or, with no data, a seeded synthetic feed) through the feature
// pipeline and a model (TorchScript or ONNX) on two cores: this thread reads events, updates the book,
// computes features and submits; the pipeline's worker runs the model. With --direct this thread also runs
// the model (direct mode, the native engine). Prints a human summary and writes a JSON report (fields in
// docs/REPLAY.md).

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "stop_signal.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/features/engine.hpp"
#include "tickinfer/features/schema.hpp"
#include "tickinfer/feed/parse_report.hpp"
#include "tickinfer/onnx.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/predictor.hpp"
#include "tickinfer/registry.hpp"
#include "tickinfer/replay/replay.hpp"
#include "tickinfer/replay/source.hpp"
#include "tickinfer/torchscript.hpp"
#include "tickinfer/watcher.hpp"

namespace ti = tickinfer;
namespace tr = tickinfer::replay;
using json = nlohmann::json;

namespace {

struct Options {
  std::vector<std::string> data;
  std::string format;
  std::string model;
  bool model_given = false;  // --model on the command line (not the bundled default)
  std::string model_dir;
  double wait_for_model_s = 0;
  std::string config;
  std::string symbol;
  std::uint64_t events = 1'000'000;
  std::uint64_t seed = 1;
  double rate = 20'000.0;
  std::uint32_t symbols = 1;
  double zipf = 1.0;
  double bursts = 0.0;
  bool conflate = false;
  double speed = 0.0;
  std::uint64_t limit = 0;
  std::uint64_t warmup = 0;
  std::size_t max_batch = 64;
  std::int64_t max_delay_us = 0;
  // 64 full batches: replaying as fast as possible, a deeper queue adds only waiting (measured on 2 vCPUs:
  // 1.9-2.0M events/s at 4096 and at 65536).
  std::size_t queue_capacity = 4096;
  std::int64_t deadline_us = 0;
  bool drop = false;
  bool dynamic_batches = false;
  int feed_core = -1;
  int worker_core = -1;
  std::string idle = "spin";
  std::string json_out = "tickinfer-replay.json";
  std::string predictions;
  std::string dump_features;
  std::string write_capture;
  std::string write_schema;
  bool quiet = false;
  std::string on_error = "skip";
  double max_error_share = 0.01;
  std::string engine = "auto";
  bool direct = false;
  bool sweep = false;
  std::vector<double> sweep_points = {0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.25};
  std::uint64_t sweep_events = 200'000;
  double p99_target_us = 100.0;
};

// SIGINT / SIGTERM (stop_signal.hpp): stop reading, finish what was accepted, write the report (a second signal ends
// the process).
using tickinfer::apps::g_stop;
using tickinfer::apps::install_stop_handlers;

// Exit statuses: 1 an error (bad option, unreadable or refused file, --on-error stop on a bad record),
// 2 the data failed the input checks (nothing parsed, the stream was lost, too many parse issues).
constexpr int kExitBadInput = 2;

std::string default_path(const std::string& dir, const char* file) {
  return dir.empty() ? std::string() : (std::filesystem::path(dir) / file).string();
}

// Where the installed defaults are: <prefix>/bin/tickinfer-replay -> <prefix>/share/tickinfer (the relative
// path comes from the install layout). Empty when /proc/self/exe cannot be read.
std::filesystem::path installed_share_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return (exe.parent_path() / TICKINFER_REPLAY_SHARE_REL).lexically_normal();
}

// The installed file when it is there, else the build tree's (running from the build directory).
std::string default_file(const std::filesystem::path& share, const char* sub, const std::string& build_dir,
                         const char* file) {
  if (!share.empty()) {
    const auto installed = share / sub / file;
    std::error_code ec;
    if (std::filesystem::exists(installed, ec)) return installed.string();
  }
  const std::string built = default_path(build_dir, file);
  std::error_code ec;
  return !built.empty() && std::filesystem::exists(built, ec) ? built : std::string();
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", share * 100.0);
  return buf;
}

// Prints what the readers found (counts by kind, the first located reports) on stderr and decides whether
// the run stands: kExitBadInput when nothing parsed, the stream was lost, or issues pass the share.
int check_input(const tr::SourceStats& stats, const Options& opt) {
  if (opt.data.empty()) return 0;  // the synthetic feed
  const ti::feed::ParseStats& p = stats.parse;
  const std::string data =
      opt.data.size() == 1 ? opt.data[0] : opt.data[0] + " (+" + std::to_string(opt.data.size() - 1) + ")";
  const std::uint64_t issues = p.total_issues();
  const double share = p.records > 0 ? static_cast<double>(issues) / static_cast<double>(p.records) : 0.0;
  if (issues > 0) {
    std::string kinds;
    for (std::size_t k = 0; k < ti::feed::kParseIssueCount; ++k) {
      if (p.issues[k] == 0) continue;
      kinds += (kinds.empty() ? "" : ", ") + std::string(ti::feed::to_string(static_cast<ti::feed::ParseIssue>(k))) +
               " " + std::to_string(p.issues[k]);
    }
    std::fprintf(stderr, "tickinfer-replay: %llu parse issue(s) in %llu records (%s): %s\n",
                 static_cast<unsigned long long>(issues), static_cast<unsigned long long>(p.records),
                 percent(share).c_str(), kinds.c_str());
    for (const auto& r : p.first_issues) std::fprintf(stderr, "  %s\n", r.message().c_str());
    if (issues > p.first_issues.size()) {
      std::fprintf(stderr, "  ... %llu more not shown\n",
                   static_cast<unsigned long long>(issues - p.first_issues.size()));
    }
  }
  if (p.stream_lost()) {
    std::fprintf(stderr, "tickinfer-replay: %s: the stream was lost (stream_lost above): the rest was not read\n",
                 data.c_str());
    return kExitBadInput;
  }
  if (p.events == 0) {
    std::fprintf(stderr, "tickinfer-replay: %s: nothing parsed: none of its %llu records is valid\n", data.c_str(),
                 static_cast<unsigned long long>(p.records));
    return kExitBadInput;
  }
  if (share > opt.max_error_share) {
    std::fprintf(stderr, "tickinfer-replay: %s: parse issues in %s of the records, above --max-error-share %g\n",
                 data.c_str(), percent(share).c_str(), opt.max_error_share);
    return kExitBadInput;
  }
  return 0;
}

std::string us(std::uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(ns) / 1000.0);
  return buf;
}

std::string rate(double per_s) {
  char buf[32];
  if (per_s >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", per_s / 1e6);
  } else if (per_s >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fk", per_s / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", per_s);
  }
  return buf;
}

// A one-line progress bar on stderr, redrawn in place; only on a terminal.
class ProgressBar {
 public:
  ProgressBar(bool enabled, std::uint64_t total) : enabled_(enabled), total_(total), start_(ti::now_ns()) {}
  void update(std::uint64_t events, std::uint64_t predicted) const {
    if (!enabled_) return;
    const double seconds = static_cast<double>(ti::now_ns() - start_) * 1e-9;
    const double per_s = seconds > 0 ? static_cast<double>(events) / seconds : 0.0;
    if (total_ > 0) {
      constexpr int kWidth = 30;
      const double done = std::min(1.0, static_cast<double>(events) / static_cast<double>(total_));
      const int filled = static_cast<int>(done * kWidth);
      std::fprintf(stderr, "\r[%.*s%*s] %3.0f%% %llu/%llu events, %llu predicted, %s events/s ", filled,
                   "##############################", kWidth - filled, "", done * 100.0,
                   static_cast<unsigned long long>(events), static_cast<unsigned long long>(total_),
                   static_cast<unsigned long long>(predicted), rate(per_s).c_str());
    } else {
      std::fprintf(stderr, "\r%llu events, %llu predicted, %s events/s ", static_cast<unsigned long long>(events),
                   static_cast<unsigned long long>(predicted), rate(per_s).c_str());
    }
  }
  void finish() const {
    if (enabled_) std::fputc('\n', stderr);
  }

 private:
  bool enabled_;
  std::uint64_t total_;
  std::int64_t start_;
};

// The highest-versioned checkpoint in `dir` (file names matching the registry's epoch pattern; *.tmp, dot-files and
// sidecars are never checkpoints), waiting up to `wait_s` for one to appear. Empty when none came.
std::filesystem::path newest_checkpoint(const std::filesystem::path& dir, double wait_s, const std::string& pattern) {
  const std::regex version(pattern, std::regex::ECMAScript);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  for (;;) {
    std::filesystem::path best;
    std::uint64_t best_version = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      std::smatch m;
      if (!entry.is_regular_file() || ti::is_ignored_checkpoint_name(name) || !std::regex_search(name, m, version))
        continue;
      const std::uint64_t v = std::stoull(m[1].str());
      if (best.empty() || v > best_version) best = entry.path(), best_version = v;
    }
    if (!best.empty() || std::chrono::steady_clock::now() >= give_up) return best;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

ti::IdleStrategy parse_idle(const std::string& s) {
  if (s == "spin") return ti::IdleStrategy::kSpin;
  if (s == "yield") return ti::IdleStrategy::kSpinThenYield;
  if (s == "block") return ti::IdleStrategy::kBlock;
  throw ti::Error(ti::ErrorCode::kInvalidConfig, "--idle must be spin, yield or block");
}

// The busiest few symbols and the quietest, of a multi-symbol replay (all of them are in the JSON report).
void print_symbols(const tr::ReplayReport& r) {
  if (r.symbols.empty()) return;
  std::vector<const tr::SymbolReport*> order;
  for (const auto& s : r.symbols) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->events > b->events; });
  std::printf("  %zu symbols; busiest and quietest (end to end, us):\n", order.size());
  std::printf("    %-10s %10s %10s %10s %9s %9s %9s\n", "symbol", "events", "ok", "superseded", "p50", "p99", "max");
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (k == 5 && order.size() > 8) {
      std::printf("    ...\n");
      k = order.size() - 3;
    }
    const auto& s = *order[k];
    std::printf("    %-10s %10llu %10llu %10llu %9s %9s %9s\n", s.symbol.name.c_str(),
                static_cast<unsigned long long>(s.events), static_cast<unsigned long long>(s.ok),
                static_cast<unsigned long long>(s.superseded), us(s.end_to_end.percentile(0.5)).c_str(),
                us(s.end_to_end.percentile(0.99)).c_str(), us(s.end_to_end.max).c_str());
  }
}

void print_summary(const tr::ReplayReport& r, const ti::Model& model, const std::string& model_path) {
  std::printf("tickinfer-replay: %s\n", r.source.c_str());
  std::printf("  model %s (%s v%llu, %zu -> %zu), engine %s%s%s\n", model_path.c_str(), model.metadata().name.c_str(),
              static_cast<unsigned long long>(model.version()), model.input_width(), model.output_width(),
              model.engine().c_str(), model.engine_note().empty() ? "" : ": ", model.engine_note().c_str());
  if (r.direct) std::printf("  direct mode: the feed thread predicts each event inline (no pipeline)\n");
  const char* pacing = r.speed == 0 ? "as fast as possible" : r.speed == 1 ? "as recorded" : nullptr;
  char scaled[48];
  if (pacing == nullptr) std::snprintf(scaled, sizeof scaled, "as recorded x %g", r.speed), pacing = scaled;
  std::printf("  %llu events in %.3f s (%s, warm-up %llu): %s events/s, %s inferences/s\n",
              static_cast<unsigned long long>(r.events), r.wall_s, pacing,
              static_cast<unsigned long long>(r.warmup_events), rate(r.events_per_s).c_str(),
              rate(r.inferences_per_s).c_str());
  const auto& e = r.end_to_end;
  std::printf("  end to end (event read -> prediction), us: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
              us(e.percentile(0.5)).c_str(), us(e.percentile(0.9)).c_str(), us(e.percentile(0.99)).c_str(),
              us(e.percentile(0.999)).c_str(), us(e.max).c_str());
  auto stage = [](const char* name, const ti::HistogramSnapshot& h) {
    std::printf("    %-34s p50 %8s  p99 %8s  max %8s\n", name, us(h.percentile(0.5)).c_str(),
                us(h.percentile(0.99)).c_str(), us(h.max).c_str());
  };
  std::printf("  stages, us:\n");
  if (r.direct) {
    stage("feed (read, book, features)", r.feed_stage);
    stage("predict (Predictor::predict)", r.predict);
    std::printf("  counts: ok %llu, model errors %llu\n", static_cast<unsigned long long>(r.ok),
                static_cast<unsigned long long>(r.model_errors));
    print_symbols(r);
    std::string versions;
    for (const auto v : r.model_versions) versions += (versions.empty() ? "" : ", ") + std::to_string(v);
    std::printf("  model versions: %s\n", versions.empty() ? "none" : versions.c_str());
    return;
  }
  stage("feed (read, book, features, submit)", r.feed_stage);
  stage("queue wait", r.pipeline.queue_wait);
  stage("batch formation", r.pipeline.batch_formation);
  stage("forward (per batch)", r.pipeline.forward);
  double rows = 0, batches = 0;
  std::string sizes;
  const std::size_t edges[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 65537};
  for (std::size_t k = 0; k + 1 < std::size(edges); ++k) {
    std::uint64_t n = 0;
    for (std::size_t s = edges[k]; s < edges[k + 1] && s < r.pipeline.batch_sizes.size(); ++s) {
      n += r.pipeline.batch_sizes[s];
      rows += static_cast<double>(s * r.pipeline.batch_sizes[s]);
    }
    batches += static_cast<double>(n);
    if (n == 0) continue;
    sizes += "  " + std::to_string(edges[k]) +
             (edges[k + 1] - 1 > edges[k] ? "-" + std::to_string(edges[k + 1] - 1) : std::string()) + ": " +
             std::to_string(n);
  }
  std::printf("  batches: %llu, mean size %.1f;%s\n", static_cast<unsigned long long>(r.pipeline.batches),
              batches > 0 ? rows / batches : 0.0, sizes.c_str());
  std::printf(
      "  counts: ok %llu, rejected %llu, expired %llu, model errors %llu, cancelled %llu, superseded %llu "
      "(full-queue waits %llu)\n",
      static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.rejected),
      static_cast<unsigned long long>(r.expired), static_cast<unsigned long long>(r.model_errors),
      static_cast<unsigned long long>(r.cancelled), static_cast<unsigned long long>(r.superseded),
      static_cast<unsigned long long>(r.full_queue_waits));
  print_symbols(r);
  std::string versions;
  for (const auto v : r.model_versions) versions += (versions.empty() ? "" : ", ") + std::to_string(v);
  std::printf("  model versions: %s\n", versions.empty() ? "none" : versions.c_str());
}

ti::PipelineConfig pipeline_config(const Options& opt, bool fixed, std::uint32_t symbols, bool sequence_model) {
  ti::PipelineConfig pc;
  // Keyed by instrument when there are several, to conflate (only the newest event of a symbol waits), or for a
  // sequence model (its state is per symbol).
  if (symbols > 1 || opt.conflate || sequence_model) pc.keys = symbols;
  if (opt.conflate) pc.conflation = ti::Conflation::kSupersede;
  pc.max_batch = opt.max_batch;
  pc.max_delay_us = fixed ? 60'000'000 : opt.max_delay_us;
  pc.queue_capacity = opt.queue_capacity;
  pc.idle = parse_idle(opt.idle);
  if (opt.worker_core >= 0) pc.pin_cores = {opt.worker_core};
  return pc;
}

// One replay of the first `limit` events of a freshly opened source at `speed`, through the pipeline (or direct
// mode), nothing kept: one point of the sweep.
tr::ReplayReport replay_once(const Options& opt, const tr::SourceOptions& source_options,
                             const ti::features::FeatureSchema& schema, const std::shared_ptr<ti::ModelSlot>& slot,
                             double speed, std::uint64_t limit) {
  auto source = tr::MarketSource::open(source_options);
  ti::features::FeatureEngine engine(schema, {source->symbol().price_scale, source->symbol().qty_scale});
  tr::ReplayOptions ro;
  ro.speed = speed;
  ro.limit = limit;
  ro.warmup_events = std::min<std::uint64_t>(opt.warmup, limit / 10);
  ro.deadline_us = opt.deadline_us;
  ro.drop_when_full = opt.drop;
  ro.feed_core = opt.feed_core;
  if (opt.direct) {
    ti::Predictor predictor(slot);
    return tr::run_replay_direct(*source, engine, predictor, ro);
  }
  auto pipeline =
      ti::Pipeline::create(pipeline_config(opt, false, source->symbol_count(), slot->current()->state_width() > 0),
                           slot, ti::make_cpu_backend());
  auto report = tr::run_replay(*source, engine, *pipeline, ro);
  pipeline->shutdown();
  return report;
}

// --sweep: capacity first (as fast as possible), then latency at offered rates from a fraction of capacity to
// past it (paced: as recorded x the speed that gives that mean rate), and the highest rate whose p99 meets the
// target. Latency measured at saturation is the tool's own queue; this separates the two.
int run_sweep(const Options& opt, const tr::SourceOptions& source_options, const ti::features::FeatureSchema& schema,
              const std::shared_ptr<ti::ModelSlot>& slot, const ti::Model& model, json extra) {
  const tr::ReplayReport capacity = replay_once(opt, source_options, schema, slot, 0.0, opt.sweep_events);
  if (capacity.events == 0 || capacity.recorded_span_ns <= 0 || capacity.events_per_s <= 0)
    throw ti::Error(ti::ErrorCode::kInvalidConfig,
                    "--sweep: the data has no recorded time span to pace by (" + capacity.source + ")");
  const double recorded_rate =
      static_cast<double>(capacity.events) * 1e9 / static_cast<double>(capacity.recorded_span_ns);
  const double target_ns = opt.p99_target_us * 1000.0;
  std::printf("tickinfer-replay --sweep: %s\n", capacity.source.c_str());
  std::printf("  model %s (%s v%llu), engine %s, %s\n", opt.model.c_str(), model.metadata().name.c_str(),
              static_cast<unsigned long long>(model.version()), model.engine().c_str(),
              opt.direct ? "direct mode" : "pipeline");
  std::printf(
      "  capacity (as fast as possible, %llu events): %s events/s (its latency p50 %s us p99 %s us is queueing "
      "behind the feed, not service)\n",
      static_cast<unsigned long long>(capacity.events), rate(capacity.events_per_s).c_str(),
      us(capacity.end_to_end.percentile(0.5)).c_str(), us(capacity.end_to_end.percentile(0.99)).c_str());
  std::printf(
      "  recorded mean rate %s events/s; latency by offered rate (paced, from each event's scheduled arrival):\n",
      rate(recorded_rate).c_str());
  std::printf("  %8s %12s %12s %9s %9s %9s %9s %8s\n", "offered", "events/s", "achieved", "p50 us", "p99 us",
              "p99.9 us", "max us", "p99 ok");
  json points = json::array();
  double best_rate = 0;
  for (const double fraction : opt.sweep_points) {
    const double offered = fraction * capacity.events_per_s;
    const double speed = offered / recorded_rate;
    const tr::ReplayReport r = replay_once(opt, source_options, schema, slot, speed, opt.sweep_events);
    const auto& e = r.end_to_end;
    const bool meets = static_cast<double>(e.percentile(0.99)) <= target_ns && r.ok == r.events;
    if (meets) best_rate = std::max(best_rate, r.events_per_s);
    std::printf("  %7.0f%% %12s %12s %9s %9s %9s %9s %8s\n", fraction * 100.0, rate(offered).c_str(),
                rate(r.events_per_s).c_str(), us(e.percentile(0.5)).c_str(), us(e.percentile(0.99)).c_str(),
                us(e.percentile(0.999)).c_str(), us(e.max).c_str(), meets ? "yes" : "no");
    points.push_back({{"fraction_of_capacity", fraction},
                      {"offered_events_per_s", offered},
                      {"speed", speed},
                      {"events", r.events},
                      {"achieved_events_per_s", r.events_per_s},
                      {"ok", r.ok},
                      {"rejected", r.rejected},
                      {"expired", r.expired},
                      {"p50_ns", e.percentile(0.5)},
                      {"p90_ns", e.percentile(0.9)},
                      {"p99_ns", e.percentile(0.99)},
                      {"p999_ns", e.percentile(0.999)},
                      {"max_ns", e.max},
                      {"meets_p99_target", meets}});
  }
  if (best_rate > 0) {
    std::printf("  highest offered rate meeting p99 <= %g us: %s events/s (%.0f%% of capacity)\n", opt.p99_target_us,
                rate(best_rate).c_str(), 100.0 * best_rate / capacity.events_per_s);
  } else {
    std::printf("  no offered rate met p99 <= %g us\n", opt.p99_target_us);
  }
  extra["tool"] = "tickinfer-replay --sweep";
  extra["mode"] = opt.direct ? "direct" : "pipeline";
  extra["source"] = capacity.source;
  extra["capacity"] = {{"events", capacity.events},
                       {"events_per_s", capacity.events_per_s},
                       {"p50_ns", capacity.end_to_end.percentile(0.5)},
                       {"p99_ns", capacity.end_to_end.percentile(0.99)}};
  extra["recorded_events_per_s"] = recorded_rate;
  extra["p99_target_ns"] = target_ns;
  extra["max_rate_meeting_p99_target"] = best_rate;
  extra["sweep"] = points;
  std::ofstream(opt.json_out) << extra.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
  std::printf("  report: %s (scripts/plot_report.py %s draws the curve)\n", opt.json_out.c_str(), opt.json_out.c_str());
  return 0;
}

int run(const Options& opt) {
  const auto schema = ti::features::load_feature_config(opt.config);
  if (!opt.write_schema.empty()) {
    json j = {{"names", schema.names()}, {"hash", schema.hash()}, {"canonical", schema.canonical_text()}};
    std::ofstream(opt.write_schema) << j.dump(2) << '\n';
    std::printf("%s: %zu features, %s\n", opt.write_schema.c_str(), schema.size(), schema.hash().c_str());
    return 0;
  }

  tr::SourceOptions source_options;
  source_options.paths = opt.data;
  source_options.symbol = opt.symbol;
  source_options.policy = opt.on_error == "stop" ? ti::feed::ParsePolicy::kStop : ti::feed::ParsePolicy::kSkip;
  source_options.synthetic.events = opt.events;
  source_options.synthetic.seed = opt.seed;
  source_options.synthetic.rate_per_s = opt.rate;
  source_options.synthetic.symbols = opt.symbols;
  source_options.synthetic.zipf = opt.zipf;
  source_options.synthetic.burst_probability = opt.bursts;
  if ((opt.symbols != 1 || opt.bursts != 0) && !opt.data.empty())
    throw ti::Error(ti::ErrorCode::kInvalidConfig, "--symbols and --bursts shape the synthetic feed: not with DATA");
  if (!opt.format.empty()) {
    source_options.format = tr::parse_format(opt.format);
  } else if (!opt.data.empty()) {
    source_options.format = tr::detect_format(opt.data[0]);
  }
  auto source = tr::MarketSource::open(source_options);
  const auto symbol = source->symbol();
  ti::features::FeatureEngine engine(schema, {symbol.price_scale, symbol.qty_scale});

  if (!opt.write_capture.empty()) {
    const auto n = tr::write_capture(*source, opt.write_capture);
    std::printf("%s: %llu events of %s\n", opt.write_capture.c_str(), static_cast<unsigned long long>(n),
                source->describe().c_str());
    return check_input(source->stats(), opt);
  }
  if (!opt.dump_features.empty()) {
    const auto n = tr::dump_features(*source, engine, opt.dump_features, opt.limit);
    std::printf("%s: features of %llu events (%s, schema %s)\n", opt.dump_features.c_str(),
                static_cast<unsigned long long>(n), source->describe().c_str(), schema.hash().c_str());
    return check_input(source->stats(), opt);
  }

  if (opt.model.empty())
    throw ti::Error(ti::ErrorCode::kInvalidConfig, "no --model given and no bundled model in this build");
  ti::LoadOptions load;
  load.engine = ti::parse_engine(opt.engine);
  if (opt.direct) {
    if (opt.conflate)
      throw ti::Error(ti::ErrorCode::kInvalidConfig, "--conflate is a pipeline option: not with --direct");
    if (load.engine == ti::Engine::kLibTorch)
      throw ti::Error(ti::ErrorCode::kInvalidConfig, "--direct runs the native engine: not with --engine libtorch");
    load.engine = ti::Engine::kNative;  // a model the native engine cannot run is refused, with the reason
  }
  for (std::size_t b = 1; b <= std::min<std::size_t>(opt.max_batch, 8); b *= 2) load.warmup_batch_sizes.push_back(b);
  // --model-dir: the registry serves the directory's newest checkpoint and the watcher hands it each new one (a
  // training run's epochs), validated and warmed up off the hot path, swapped in between batches.
  std::unique_ptr<ti::ModelRegistry> registry;
  std::unique_ptr<ti::CheckpointWatcher> watcher;
  std::shared_ptr<ti::ModelSlot> slot;
  std::shared_ptr<const ti::Model> model;
  std::string model_label = opt.model;
  if (!opt.model_dir.empty()) {
    if (opt.model_given)
      throw ti::Error(ti::ErrorCode::kInvalidConfig, "--model-dir serves a directory: not with --model");
    if (!std::filesystem::is_directory(opt.model_dir))
      throw ti::Error(ti::ErrorCode::kFileNotFound, opt.model_dir + ": not a directory");
    ti::RegistryConfig rc;
    rc.load = load;
    rc.load.expected_schema_hash = schema.hash();  // every epoch must compute its features as this replay does
    const auto initial = newest_checkpoint(opt.model_dir, opt.wait_for_model_s, rc.version_pattern);
    if (initial.empty())
      throw ti::Error(ti::ErrorCode::kFileNotFound,
                      opt.model_dir + ": no checkpoint (NAME_epochN.pt or .onnx) within " +
                          std::to_string(static_cast<long long>(opt.wait_for_model_s)) + " s (--wait-for-model)");
    registry = ti::ModelRegistry::create(rc, initial);
    slot = registry->slot();
    ti::WatcherConfig wc;
    wc.directory = opt.model_dir;
    watcher =
        ti::CheckpointWatcher::create(wc, [&registry](const std::filesystem::path& path) { registry->offer(path); });
    model = slot->current();
    model_label = initial.string();
  } else {
    const bool onnx = std::filesystem::path(opt.model).extension() == ".onnx";
    if (onnx && load.engine == ti::Engine::kLibTorch)
      throw ti::Error(ti::ErrorCode::kInvalidConfig, opt.model + ": an ONNX model runs on the native engine only");
    model = onnx ? ti::load_onnx(opt.model, load) : ti::load_torchscript(opt.model, load);
    ti::features::check_schema(model->metadata(), schema, opt.model);
    slot = std::make_shared<ti::ModelSlot>(model);
  }

  json extra;
  extra["model"] = {{"path", model_label},
                    {"name", model->metadata().name},
                    {"version", model->version()},
                    {"inputs", model->input_width()},
                    {"outputs", model->output_width()},
                    {"engine", model->engine()},
                    {"engine_note", model->engine_note()},
                    {"feature_schema_hash", model->metadata().feature_schema_hash}};
  extra["features"] = {{"config", opt.config}, {"names", schema.names()}, {"schema_hash", schema.hash()}};
  extra["host"] = {{"hardware_threads", std::thread::hardware_concurrency()}};
  if (opt.sweep) {
    if (!opt.predictions.empty() || opt.speed != 0 || opt.limit != 0)
      throw ti::Error(ti::ErrorCode::kInvalidConfig,
                      "--sweep chooses the pacing and the events itself: not with --predictions, --speed or --limit");
    return run_sweep(opt, source_options, schema, slot, *model, extra);
  }

  tr::ReplayOptions ro;
  ro.speed = opt.speed;
  ro.limit = opt.limit;
  ro.warmup_events = opt.warmup;
  ro.deadline_us = opt.deadline_us;
  ro.drop_when_full = opt.drop;
  ro.keep_predictions = !opt.predictions.empty();
  ro.feed_core = opt.feed_core;
  ro.stop = &g_stop;
  install_stop_handlers();
  std::uint64_t total = source->size_hint();
  if (opt.limit != 0 && (total == 0 || opt.limit < total)) total = opt.limit;
  const ProgressBar bar(!opt.quiet && isatty(STDERR_FILENO) != 0, total);
  ro.progress = [&bar](std::uint64_t events, std::uint64_t predicted) { bar.update(events, predicted); };
  tr::Predictions predictions(model->output_width(), total);
  std::vector<std::int64_t> timestamps;

  tr::ReplayReport report;
  if (opt.direct) {
    ti::Predictor predictor(slot);
    report = tr::run_replay_direct(*source, engine, predictor, ro, &predictions, &timestamps);
    extra["direct_config"] = {{"feed_core", opt.feed_core}};
  } else {
    const bool fixed = !opt.predictions.empty() && !opt.dynamic_batches;
    if (fixed && opt.conflate)
      throw ti::Error(ti::ErrorCode::kInvalidConfig,
                      "--conflate with --predictions needs --dynamic-batches (conflation changes batch composition)");
    const ti::PipelineConfig pc = pipeline_config(opt, fixed, source->symbol_count(), model->state_width() > 0);
    auto pipeline = ti::Pipeline::create(pc, slot, ti::make_cpu_backend());
    ro.fixed_batches = fixed;
    report = tr::run_replay(*source, engine, *pipeline, ro, &predictions, &timestamps);
    pipeline->shutdown();
    extra["pipeline_config"] = {{"max_batch", pc.max_batch},
                                {"max_delay_us", pc.max_delay_us},
                                {"queue_capacity", pc.queue_capacity},
                                {"idle", opt.idle},
                                {"fixed_batches", fixed},
                                {"deadline_us", opt.deadline_us},
                                {"drop_when_full", opt.drop},
                                {"feed_core", opt.feed_core},
                                {"worker_core", opt.worker_core},
                                {"keys", pc.keys},
                                {"conflation", opt.conflate ? "supersede" : "off"}};
  }
  bar.finish();
  extra["stopped_by_signal"] = g_stop.load();
  std::optional<ti::RegistryMetricsSnapshot> dir_metrics;  // one snapshot: the report and the summary agree
  if (registry) {
    watcher->stop();
    const ti::RegistryMetricsSnapshot& rm = dir_metrics.emplace(registry->metrics());
    extra["model_dir"] = {
        {"path", opt.model_dir}, {"initial", model_label},        {"swaps", rm.swaps},
        {"loaded", rm.loaded},   {"refused", rm.refused_total()}, {"served_version_at_end", rm.current_version}};
  }
  std::ofstream(opt.json_out) << tr::to_json(report, extra.dump(-1, ' ', false, json::error_handler_t::replace))
                              << '\n';
  if (!opt.predictions.empty()) predictions.write_csv(opt.predictions, model->metadata().output_names, timestamps);

  print_summary(report, *model, model_label);
  if (g_stop.load())
    std::printf("  stopped by a signal after %llu events (every accepted one completed)\n",
                static_cast<unsigned long long>(report.events));
  if (dir_metrics) {
    const ti::RegistryMetricsSnapshot& rm = *dir_metrics;
    std::printf("  model dir %s: %llu checkpoints loaded, %llu swaps, %llu refused; serving version %llu at the end\n",
                opt.model_dir.c_str(), static_cast<unsigned long long>(rm.loaded),
                static_cast<unsigned long long>(rm.swaps), static_cast<unsigned long long>(rm.refused_total()),
                static_cast<unsigned long long>(rm.current_version));
  }
  std::printf("  report: %s%s%s\n", opt.json_out.c_str(),
              opt.predictions.empty() ? "" : ", predictions: ", opt.predictions.c_str());
  std::fflush(stdout);
  return check_input(report.source_stats, opt);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  // Installed: <prefix>/share/tickinfer/{models,configs}; run from the build tree: this build's files.
  const auto share = installed_share_dir();
  opt.model = default_file(share, "models", TICKINFER_REPLAY_MODEL_DIR, "replay_mlp.pt");
  opt.config = default_file(share, "configs", TICKINFER_REPLAY_CONFIG_DIR, "default.toml");
  if (opt.config.empty()) opt.config = default_path(TICKINFER_REPLAY_CONFIG_DIR, "default.toml");

  CLI::App app{
      "tickinfer-replay: market data -> book -> features -> model, on two cores (feed thread + worker).\n"
      "With no DATA it replays a deterministic synthetic feed with the bundled MLP."};
  app.add_option("data", opt.data,
                 "data file(s): LOBSTER message CSV [orderbook CSV] or sample zip, Tardis CSV(s), "
                 "ITCH file, or a tickinfer capture; several LOBSTER message files or zips: merged by time, one "
                 "symbol each");
  app.add_option("--format", opt.format, "synthetic, lobster, tardis, itch or capture (default: from the file)");
  auto* model_option =
      app.add_option("--model", opt.model, "TorchScript archive or .onnx file (default: the bundled replay_mlp.pt)");
  app.add_option("--model-dir", opt.model_dir,
                 "serve the newest checkpoint of DIR (NAME_epochN.pt) and hot-swap in each new one as it lands "
                 "(train_model.py --checkpoint-dir DIR)");
  app.add_option("--wait-for-model", opt.wait_for_model_s,
                 "--model-dir: wait up to this many seconds for the first checkpoint (default 0)")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--engine", opt.engine,
                 "auto (the native engine when the model compiles and validates, else LibTorch), native or libtorch")
      ->check(CLI::IsMember({"auto", "native", "libtorch"}));
  app.add_flag("--direct", opt.direct,
               "direct mode: the feed thread runs the model on each event itself (native engine, no pipeline)");
  app.add_option("--config", opt.config, "feature config (TOML)");
  app.add_option("--symbol", opt.symbol,
                 "symbol to replay (ITCH or captures); A,B,C or * replays several at once (ITCH, or captures of "
                 "order-by-order events)");
  app.add_option("--events", opt.events, "synthetic feed: events")->check(CLI::Range(1ull, 1ull << 32));
  app.add_option("--seed", opt.seed, "synthetic feed: seed");
  app.add_option("--rate", opt.rate, "synthetic feed: recorded events per second");
  app.add_option("--symbols", opt.symbols,
                 "synthetic feed: instruments, each its own book, features and key (activity skewed by --zipf)")
      ->check(CLI::Range(1u, tr::SyntheticOptions::kMaxSymbols));
  app.add_option("--zipf", opt.zipf, "synthetic feed: symbol k gets events in proportion to 1/(k+1)^ZIPF (default 1)")
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--bursts", opt.bursts,
                 "synthetic feed: chance per event that a burst starts (64 events at 100x the rate; default 0)")
      ->check(CLI::Range(0.0, 0.5));
  app.add_flag("--conflate", opt.conflate,
               "keep at most one queued event per symbol: a newer one takes its place (the old one completes as "
               "superseded)");
  app.add_option("--speed", opt.speed, "0: as fast as possible; 1: as recorded; N: as recorded x N")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--limit", opt.limit, "replay at most this many events (0: all)");
  app.add_option("--warmup", opt.warmup, "first events run but are not measured");
  app.add_option("--max-batch", opt.max_batch, "pipeline max_batch")->check(CLI::Range(1, 65536));
  app.add_option("--max-delay-us", opt.max_delay_us, "pipeline max_delay_us (wait for fuller batches)");
  app.add_option("--queue", opt.queue_capacity, "pipeline queue capacity")->check(CLI::Range(1, 1 << 24));
  app.add_option("--deadline-us", opt.deadline_us, "per-event deadline from ingest (0: none)");
  app.add_flag("--drop", opt.drop, "shed events when the queue is full (default: wait for room)");
  app.add_flag("--dynamic-batches", opt.dynamic_batches,
               "with --predictions: keep dynamic batching (predictions may then differ in the last float bits)");
  app.add_option("--feed-core", opt.feed_core, "pin the feed thread to this core");
  app.add_option("--worker-core", opt.worker_core, "pin the pipeline worker to this core");
  app.add_option("--idle", opt.idle, "worker idle strategy: spin, yield or block");
  app.add_option("--json", opt.json_out, "JSON report path");
  app.add_option("--predictions", opt.predictions,
                 "write every prediction as CSV in event order (fixed batches: byte-identical run to run)");
  app.add_option("--dump-features", opt.dump_features,
                 "write the features of every event (CSV, or float32 rows for *.f32) and exit; no model");
  app.add_option("--write-capture", opt.write_capture, "convert the data to a tickinfer capture and exit");
  app.add_option("--write-schema", opt.write_schema,
                 "write the config's feature schema as JSON {names, hash} (export_model.py --schema) and exit");
  app.add_flag("--quiet", opt.quiet, "no progress bar");
  app.add_option("--on-error", opt.on_error,
                 "bad records: skip (count, report the first ones, go on) or stop (fail at the first one)")
      ->check(CLI::IsMember({"skip", "stop"}));
  app.add_option("--max-error-share", opt.max_error_share,
                 "fail (exit 2) when parse issues exceed this share of the records read (default 0.01)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--sweep", opt.sweep,
               "capacity (as fast as possible), then latency at offered rates from a fraction of capacity to past it "
               "(paced), and the highest rate whose p99 meets --p99-target-us");
  app.add_option("--sweep-points", opt.sweep_points,
                 "--sweep: offered rates as fractions of capacity (comma-separated)")
      ->delimiter(',')
      ->check(CLI::Range(0.001, 100.0));
  app.add_option("--sweep-events", opt.sweep_events, "--sweep: events per point (the first ones of the data)")
      ->check(CLI::Range(1000ull, 1ull << 32));
  app.add_option("--p99-target-us", opt.p99_target_us, "--sweep: the p99 end-to-end latency target")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  opt.model_given = model_option->count() > 0;

  try {
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tickinfer-replay: %s\n", e.what());
    return 1;
  }
}
