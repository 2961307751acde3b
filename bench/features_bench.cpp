// Feed thread cost without the model: read events (capture via mmap, or LOBSTER CSV), update the book,
// compute the default config's features. One core; events/s is the headline (target: >= 5M/s on a
// capture of the LOBSTER AMZN data). Captures are written to the temp directory on first use.

#include <benchmark/benchmark.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tickinfer/features/engine.hpp"
#include "tickinfer/features/schema.hpp"
#include "tickinfer/replay/source.hpp"

namespace tf = tickinfer::features;
namespace tr = tickinfer::replay;

namespace {

const std::string kSource = TICKINFER_SOURCE_DIR;

std::string amzn_messages() {
  return kSource + "/../shared/data/lobster-amzn-l1/AMZN_2012-06-21_34200000_57600000_message_1.csv";
}

const tf::FeatureSchema& schema() {
  static const auto s = tf::load_feature_config(kSource + "/configs/default.toml");
  return s;
}

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("tickinfer_bench_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// Writes the capture once per process; removed at exit.
struct Capture {
  std::string path;
  explicit Capture(const tr::SourceOptions& from, const std::string& name) : path(temp_file(name)) {
    auto source = tr::MarketSource::open(from);
    tr::write_capture(*source, path);
  }
  ~Capture() { std::filesystem::remove(path); }
};

tr::SourceOptions lobster_csv() {
  tr::SourceOptions o;
  o.format = tr::SourceFormat::kLobster;
  o.paths = {amzn_messages()};
  return o;
}

tr::SourceOptions capture_of(const std::string& path) {
  tr::SourceOptions o;
  o.format = tr::SourceFormat::kCapture;
  o.paths = {path};
  return o;
}

// One full pass per iteration: read, apply, features. Opening the source is outside the timing.
void replay_features(benchmark::State& state, const tr::SourceOptions& options) {
  std::vector<float> out(schema().size());
  std::uint64_t events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto source = tr::MarketSource::open(options);
    tf::FeatureEngine engine(schema(), {source->symbol().price_scale, source->symbol().qty_scale});
    tr::Tick tick;
    state.ResumeTiming();
    while (const auto* event = source->read()) {
      source->apply(tick);
      engine.update(event->ts_ns, *tick.book, tick.trade, out);
      benchmark::DoNotOptimize(out.data());
      ++events;
    }
  }
  state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  state.counters["ns_per_event"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
}

void BM_LobsterCaptureBookFeatures(benchmark::State& state) {
  if (!std::filesystem::exists(amzn_messages())) return state.SkipWithError("no LOBSTER data");
  static const Capture capture(lobster_csv(), "amzn.cap");
  replay_features(state, capture_of(capture.path));
}
BENCHMARK(BM_LobsterCaptureBookFeatures)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LobsterCsvBookFeatures(benchmark::State& state) {
  if (!std::filesystem::exists(amzn_messages())) return state.SkipWithError("no LOBSTER data");
  replay_features(state, lobster_csv());
}
BENCHMARK(BM_LobsterCsvBookFeatures)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SyntheticCaptureBookFeatures(benchmark::State& state) {
  static const Capture capture(
      [] {
        tr::SourceOptions o;
        o.synthetic.events = 1'000'000;
        return o;
      }(),
      "synthetic.cap");
  replay_features(state, capture_of(capture.path));
}
BENCHMARK(BM_SyntheticCaptureBookFeatures)->Unit(benchmark::kMillisecond)->UseRealTime();

// The feature engine alone on a fixed book: the per-event cost of the default config's 11 features.
void BM_FeatureEngineUpdate(benchmark::State& state) {
  tickinfer::feed::OrderBook book;
  for (std::uint64_t i = 0; i < 10; ++i) {
    book.add(2 * i + 1, tickinfer::feed::Side::kBuy, 1'000'000 - 100 * static_cast<std::int64_t>(i), 300);
    book.add(2 * i + 2, tickinfer::feed::Side::kSell, 1'000'100 + 100 * static_cast<std::int64_t>(i), 200);
  }
  tf::FeatureEngine engine(schema(), {10'000, 1});
  std::vector<float> out(engine.width());
  std::int64_t ts = 0;
  for (auto _ : state) {
    ts += 50'000;
    engine.update(ts, book, {tickinfer::feed::Side::kBuy, 100}, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FeatureEngineUpdate);

}  // namespace

BENCHMARK_MAIN();
