// tickinfer-replay's engine end to end over real TorchScript models: the synthetic feed, counts, the
// predictions CSV, schema refusal, pacing, shedding, and the LOBSTER data (with the Python peer and a
// model trained on it) when present.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tickinfer/error.hpp"
#include "tickinfer/features/engine.hpp"
#include "tickinfer/features/schema.hpp"
#include "tickinfer/feed/capture.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/predictor.hpp"
#include "tickinfer/replay/replay.hpp"
#include "tickinfer/replay/source.hpp"
#include "tickinfer/torchscript.hpp"

namespace tickinfer::replay {
namespace {

const std::string kSource = TICKINFER_SOURCE_DIR;
const std::string kModels = TICKINFER_TEST_MODEL_DIR;

features::FeatureSchema default_schema() { return features::load_feature_config(kSource + "/configs/default.toml"); }

std::string amzn_messages() {
  return kSource + "/../shared/data/lobster-amzn-l1/AMZN_2012-06-21_34200000_57600000_message_1.csv";
}

class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / ("tickinfer_replay_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

SourceOptions synthetic(std::uint64_t events, std::uint64_t seed = 1, double rate = 20'000) {
  SourceOptions o;
  o.synthetic.events = events;
  o.synthetic.seed = seed;
  o.synthetic.rate_per_s = rate;
  return o;
}

SourceOptions lobster() {
  SourceOptions o;
  o.format = SourceFormat::kLobster;
  o.paths = {amzn_messages()};
  return o;
}

struct Replayed {
  ReplayReport report;
  std::unique_ptr<Predictions> predictions;
  std::vector<std::int64_t> timestamps;
};

Replayed replay(const SourceOptions& source_options, const std::string& model_path, ReplayOptions options,
                PipelineConfig config = {}) {
  const auto schema = default_schema();
  auto model = load_torchscript(model_path);
  features::check_schema(model->metadata(), schema, model_path);
  auto source = MarketSource::open(source_options);
  features::FeatureEngine engine(schema, {source->symbol().price_scale, source->symbol().qty_scale});
  if (options.fixed_batches) config.max_delay_us = 60'000'000;
  auto pipeline = Pipeline::create(config, std::make_shared<ModelSlot>(model), make_cpu_backend());
  Replayed run;
  run.predictions = std::make_unique<Predictions>(model->output_width(), source->size_hint());
  run.report = run_replay(*source, engine, *pipeline, options, run.predictions.get(), &run.timestamps);
  pipeline->shutdown();
  return run;
}

void expect_counts_add_up(const ReplayReport& r) {
  EXPECT_EQ(r.accepted + r.rejected + r.invalid, r.events);
  EXPECT_EQ(r.ok + r.expired + r.model_errors + r.cancelled + r.superseded, r.accepted);
  std::uint64_t rows = 0;
  for (std::size_t n = 0; n < r.pipeline.batch_sizes.size(); ++n) rows += n * r.pipeline.batch_sizes[n];
  EXPECT_EQ(rows, r.ok + r.model_errors + r.padding_requests);  // expired rows never reach a batch
}

TEST(Replay, SyntheticFeedEveryEventGetsAPrediction) {
  ReplayOptions options;
  options.keep_predictions = true;
  options.warmup_events = 1000;
  const Replayed run = replay(synthetic(30'000), kModels + "/replay_mlp.pt", options);
  const ReplayReport& r = run.report;
  EXPECT_EQ(r.events, 30'000u);
  EXPECT_EQ(r.accepted, 30'000u);
  EXPECT_EQ(r.ok, 30'000u);
  EXPECT_EQ(r.rejected + r.expired + r.model_errors + r.cancelled, 0u);
  expect_counts_add_up(r);
  EXPECT_EQ(r.end_to_end.count, 29'000u);  // warm-up excluded
  EXPECT_EQ(r.feed_stage.count, 29'000u);
  EXPECT_GT(r.events_per_s, 0.0);
  EXPECT_GT(r.inferences_per_s, 0.0);
  EXPECT_EQ(r.model_versions, std::vector<std::uint64_t>{1});
  ASSERT_FALSE(r.series.empty());
  EXPECT_EQ(r.series.back().events, 30'000u);
  EXPECT_EQ(r.symbol.name, "SYNTH");
  EXPECT_EQ(r.source_stats.book_warnings, 0u);
  ASSERT_EQ(run.predictions->size(), 30'000u);
  for (std::uint64_t i = 0; i < 30'000; ++i) ASSERT_EQ(run.predictions->status(i), ResultStatus::kOk) << i;

  // The report is valid JSON with the documented fields.
  const std::string json = to_json(r, R"({"model": {"path": "x"}})");
  for (const char* field : {"\"events_per_s\"", "\"inferences_per_s\"", "\"p999_ns\"", "\"series\"", "\"batches\"",
                            "\"model_versions\"", "\"end_to_end_histogram\"", "\"model\""})
    EXPECT_NE(json.find(field), std::string::npos) << field;
}

TEST(Replay, PredictionsEqualTheModelOnTheDumpedFeatures) {
  TempDir dir;
  const auto schema = default_schema();
  auto source = MarketSource::open(synthetic(3000, 9));
  features::FeatureEngine engine(schema, {source->symbol().price_scale, 1});
  dump_features(*source, engine, dir.file("f.f32"));
  const std::string bytes = read_file(dir.file("f.f32"));
  const std::size_t width = schema.size() + 1;  // mid, then the features
  ASSERT_EQ(bytes.size(), 3000 * width * sizeof(float));
  std::vector<float> rows(3000 * width);
  std::memcpy(rows.data(), bytes.data(), bytes.size());
  std::vector<float> inputs;
  for (std::size_t i = 0; i < 3000; ++i)
    inputs.insert(inputs.end(), rows.begin() + i * width + 1, rows.begin() + (i + 1) * width);
  auto model = load_torchscript(kModels + "/replay_mlp.pt");
  const auto expected = run_model(*model, inputs, 3000);

  ReplayOptions options;
  options.keep_predictions = true;
  PipelineConfig config;
  config.max_delay_us = 200;  // mixed batch sizes
  const Replayed run = replay(synthetic(3000, 9), kModels + "/replay_mlp.pt", options, config);
  for (std::size_t i = 0; i < 3000; ++i) ASSERT_NEAR(run.predictions->outputs(i)[0], expected[i], 1e-5) << i;
}

TEST(Replay, PredictionsCsvIsIdenticalBetweenTwoRuns) {
  TempDir dir;
  std::string csv[2];
  for (int k = 0; k < 2; ++k) {
    ReplayOptions options;
    options.keep_predictions = true;
    options.fixed_batches = true;
    const Replayed run = replay(synthetic(20'000, 4), kModels + "/replay_mlp.pt", options);
    EXPECT_EQ(run.report.ok, 20'000u);
    EXPECT_EQ(run.report.padding_requests, 64 - 20'000 % 64);
    expect_counts_add_up(run.report);
    run.predictions->write_csv(dir.file("p" + std::to_string(k) + ".csv"), {"y0"}, run.timestamps);
    csv[k] = read_file(dir.file("p" + std::to_string(k) + ".csv"));
  }
  EXPECT_EQ(std::count(csv[0].begin(), csv[0].end(), '\n'), 20'001);
  EXPECT_EQ(csv[0].substr(0, csv[0].find('\n')), "index,ts_ns,status,y0");
  EXPECT_TRUE(csv[0] == csv[1]) << "predictions differ between two runs with the same configuration";
}

// ---- many symbols ----

SourceOptions symbols(std::uint64_t events, std::uint32_t n, double bursts = 0) {
  SourceOptions o = synthetic(events, 5);
  o.synthetic.symbols = n;
  o.synthetic.burst_probability = bursts;
  return o;
}

PipelineConfig keyed(std::size_t keys, Conflation conflation = Conflation::kOff) {
  PipelineConfig config;
  config.keys = keys;
  config.conflation = conflation;
  return config;
}

// Each symbol's predictions are what that symbol's events alone give: its own book and its own feature history
// (a shared book or engine would mix them).
TEST(Replay, EachSymbolIsPredictedFromItsOwnBookAndFeatureHistory) {
  const auto schema = default_schema();
  auto slot = std::make_shared<ModelSlot>(load_torchscript(kModels + "/replay_mlp.pt"));
  auto source = MarketSource::open(symbols(12'000, 6));
  ASSERT_EQ(source->symbol_count(), 6u);
  features::FeatureEngine engine(schema, {source->symbol().price_scale, source->symbol().qty_scale});
  Predictor predictor(slot);
  ReplayOptions options;
  options.keep_predictions = true;
  Predictions predictions(1, 12'000);
  std::vector<std::int64_t> timestamps;
  const ReplayReport r = run_replay_direct(*source, engine, predictor, options, &predictions, &timestamps);
  ASSERT_EQ(r.events, 12'000u);
  ASSERT_EQ(r.symbols.size(), 6u);

  // The reference: every symbol replayed alone, with a book and an engine of its own.
  const auto events = generate_synthetic(symbols(12'000, 6).synthetic);
  std::vector<feed::OrderBook> books(6);
  std::vector<features::FeatureEngine> engines(6, features::FeatureEngine(schema, {source->symbol().price_scale, 1}));
  std::vector<std::uint64_t> per_symbol(6);
  std::vector<float> row(engine.width()), out(1);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const feed::Event& e = events[i];
    ++per_symbol[e.symbol];
    const auto trade = features::classify_trade(e, books[e.symbol]);
    books[e.symbol].apply(e);
    engines[e.symbol].update(e.ts_ns, books[e.symbol], trade, row);
    ASSERT_EQ(predictor.predict(row, out), PredictStatus::kOk);
    ASSERT_EQ(predictions.status(i), ResultStatus::kOk) << i;
    ASSERT_EQ(predictions.outputs(i)[0], out[0]) << "event " << i << " of symbol " << e.symbol;
  }
  std::uint64_t total = 0;
  for (std::uint32_t k = 0; k < 6; ++k) {
    EXPECT_EQ(r.symbols[k].symbol.name, "SYN" + std::to_string(k));
    EXPECT_EQ(r.symbols[k].events, per_symbol[k]) << k;
    EXPECT_EQ(r.symbols[k].ok, per_symbol[k]) << k;
    EXPECT_EQ(r.symbols[k].end_to_end.count, per_symbol[k]) << k;
    total += r.symbols[k].events;
  }
  EXPECT_EQ(total, 12'000u);
  EXPECT_GT(per_symbol[0], 2 * per_symbol[5]) << "Zipf: the first symbol is the busiest";
}

TEST(Replay, MultiSymbolPredictionsCsvIsIdenticalBetweenTwoRuns) {
  TempDir dir;
  std::string csv[2];
  for (int k = 0; k < 2; ++k) {
    ReplayOptions options;
    options.keep_predictions = true;
    options.fixed_batches = true;
    const Replayed run = replay(symbols(10'000, 16, 0.002), kModels + "/replay_mlp.pt", options, keyed(16));
    EXPECT_EQ(run.report.ok, 10'000u);
    expect_counts_add_up(run.report);
    ASSERT_EQ(run.report.symbols.size(), 16u);
    std::uint64_t ok = 0;
    for (const auto& s : run.report.symbols) ok += s.ok;
    EXPECT_EQ(ok, 10'000u);
    run.predictions->write_csv(dir.file("m" + std::to_string(k) + ".csv"), {"y0"}, run.timestamps);
    csv[k] = read_file(dir.file("m" + std::to_string(k) + ".csv"));
  }
  EXPECT_EQ(std::count(csv[0].begin(), csv[0].end(), '\n'), 10'001);
  EXPECT_TRUE(csv[0] == csv[1]) << "multi-symbol predictions differ between two runs with the same configuration";
}

// A capture of several symbols keeps the symbol table in key order: replayed with "*", each instrument has the key
// and the book it had in the source, so the predictions CSV is the source's byte for byte.
TEST(Replay, MultiSymbolCaptureReplaysWithEveryPredictionOfItsSource) {
  TempDir dir;
  {
    auto source = MarketSource::open(symbols(10'000, 16, 0.002));
    EXPECT_EQ(write_capture(*source, dir.file("many.cap")), 10'000u);
  }
  SourceOptions capture;
  capture.format = SourceFormat::kCapture;
  capture.paths = {dir.file("many.cap")};
  capture.symbol = "*";
  ASSERT_EQ(MarketSource::open(capture)->symbol_count(), 16u);
  EXPECT_EQ(MarketSource::open(capture)->describe(), "capture many.cap (16 symbols: SYN0, SYN1, SYN2, SYN3, ...)");
  std::string csv[2];
  const SourceOptions sources[2] = {symbols(10'000, 16, 0.002), capture};
  for (int k = 0; k < 2; ++k) {
    ReplayOptions options;
    options.keep_predictions = true;
    options.fixed_batches = true;
    const Replayed run = replay(sources[k], kModels + "/replay_mlp.pt", options, keyed(16));
    EXPECT_EQ(run.report.ok, 10'000u);
    ASSERT_EQ(run.report.symbols.size(), 16u);
    EXPECT_EQ(run.report.symbols[3].symbol.name, "SYN3");
    run.predictions->write_csv(dir.file("m" + std::to_string(k) + ".csv"), {"y0"}, run.timestamps);
    csv[k] = read_file(dir.file("m" + std::to_string(k) + ".csv"));
  }
  EXPECT_EQ(std::count(csv[0].begin(), csv[0].end(), '\n'), 10'001);
  EXPECT_TRUE(csv[0] == csv[1]) << "the capture's predictions differ from its source's";

  // Two of the symbols, named: keys in the order named, the other symbols' events skipped.
  capture.symbol = "SYN5,SYN2";
  auto two = MarketSource::open(capture);
  ASSERT_EQ(two->symbol_count(), 2u);
  EXPECT_EQ(two->symbol_info(0).name, "SYN5");
  std::uint64_t events[2] = {0, 0};
  while (two->read() != nullptr) {
    Tick tick;
    two->apply(tick);
    ++events[tick.key];
  }
  EXPECT_GT(events[0], 0u);
  EXPECT_GT(events[1], events[0]) << "Zipf: SYN2 is busier than SYN5";
  EXPECT_EQ(two->stats().events + two->stats().skipped, 10'000u);
  capture.symbol = "SYN5,SYN5";
  EXPECT_THROW(
      {
        try {
          MarketSource::open(capture);
        } catch (const Error& e) {
          EXPECT_EQ(std::string(e.what()), dir.file("many.cap") + ": symbol 'SYN5' named twice");
          throw;
        }
      },
      Error);
}

TEST(Replay, LobsterRowsAreCapturedAndReplayedOneSymbolAtATime) {
  TempDir dir;
  SourceOptions merged;
  merged.format = SourceFormat::kLobster;
  merged.paths = {amzn_messages(), amzn_messages()};
  if (!std::filesystem::exists(amzn_messages())) GTEST_SKIP() << "no LOBSTER data";
  auto source = MarketSource::open(merged);
  ASSERT_EQ(source->symbol_count(), 2u);
  try {
    write_capture(*source, dir.file("m.cap"));
    FAIL() << "two LOBSTER files written as one capture";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
    EXPECT_EQ(std::string(e.what()),
              "write_capture: LOBSTER orderbook rows are written one symbol at a time (the "
              "source has 2)");
  }
  {
    auto one = MarketSource::open(lobster());
    write_capture(*one, dir.file("amzn.cap"));
  }
  SourceOptions capture;
  capture.format = SourceFormat::kCapture;
  capture.paths = {dir.file("amzn.cap")};
  capture.symbol = "*";
  try {
    MarketSource::open(capture);
    FAIL() << "a capture of LOBSTER rows replayed as several symbols";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              dir.file("amzn.cap") + ": a capture of LOBSTER orderbook rows replays one symbol at a time (it names 1)");
  }
}

// Conflated, a symbol's queued event is replaced by its newer one: the replaced one completes once as superseded,
// and the newest event of every symbol is always predicted.
TEST(Replay, ConflationSupersedesQueuedEventsAndEverySymbolsLastEventIsPredicted) {
  ReplayOptions options;
  options.keep_predictions = true;
  // The worker waits up to 2 ms for a full batch it never gets (4 symbols, at most one queued each): meanwhile
  // the feed replaces the queued events many times over, so supersession is certain, not a matter of speed.
  PipelineConfig config = keyed(4, Conflation::kSupersede);
  config.max_delay_us = 2000;
  const Replayed run = replay(symbols(40'000, 4, 0.01), kModels + "/replay_mlp.pt", options, config);
  const ReplayReport& r = run.report;
  expect_counts_add_up(r);
  EXPECT_EQ(r.accepted, 40'000u);
  EXPECT_EQ(r.ok + r.superseded, 40'000u);
  EXPECT_GT(r.superseded, 0u) << "nothing was conflated: the test proved nothing";
  EXPECT_EQ(r.superseded, r.pipeline.superseded);
  std::uint64_t superseded = 0;
  for (const auto& s : r.symbols) superseded += s.superseded;
  EXPECT_EQ(superseded, r.superseded);
  const auto events = generate_synthetic(symbols(40'000, 4, 0.01).synthetic);
  std::vector<std::int64_t> last(4, -1);
  for (std::size_t i = 0; i < events.size(); ++i) {
    last[events[i].symbol] = static_cast<std::int64_t>(i);
    const ResultStatus s = run.predictions->status(i);
    ASSERT_TRUE(s == ResultStatus::kOk || s == ResultStatus::kSuperseded) << i << ": " << to_string(s);
  }
  for (std::uint32_t k = 0; k < 4; ++k) {
    ASSERT_GE(last[k], 0);
    EXPECT_EQ(run.predictions->status(static_cast<std::uint64_t>(last[k])), ResultStatus::kOk)
        << "the newest event of symbol " << k << " is never superseded";
  }
}

TEST(Replay, AMultiSymbolSourceNeedsAKeyPerSymbolAndFixedBatchesDoNotConflate) {
  auto error_of = [](const SourceOptions& source_options, PipelineConfig config, ReplayOptions options) {
    try {
      replay(source_options, kModels + "/replay_mlp.pt", options, config);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(symbols(100, 8), {}, {}),
            "replay: the source has 8 symbols: the pipeline needs keys >= 8 (PipelineConfig::keys), got 0");
  EXPECT_EQ(error_of(symbols(100, 8), keyed(4), {}),
            "replay: the source has 8 symbols: the pipeline needs keys >= 8 (PipelineConfig::keys), got 4");
  EXPECT_EQ(error_of(symbols(100, 8), keyed(8, Conflation::kMerge), {}),
            "replay: Conflation::kMerge never completes the requests it replaces, and the replay waits for every "
            "event: use kSupersede");
  ReplayOptions fixed;
  fixed.fixed_batches = true;
  EXPECT_EQ(error_of(symbols(100, 8), keyed(8, Conflation::kSupersede), fixed),
            "replay: fixed batches need max_delay_us >= 1000000, queue_capacity >= max_batch, no deadline, no "
            "dropping and no conflation");
}

TEST(Replay, ModelOnAnotherSchemaIsRefusedWithTheDifferingNames) {
  auto model = load_torchscript(kModels + "/mlp.pt");  // f0..f31, hash synthetic-v1
  try {
    features::check_schema(model->metadata(), default_schema(), "mlp.pt");
    FAIL() << "accepted a model on another schema";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSchemaMismatch);
    const std::string message = e.what();
    EXPECT_NE(message.find("model mlp.pt: feature schema differs from the pipeline's (hash synthetic-v1 vs fnv1a64:"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("position 0: model 'f0', pipeline 'spread_bps'"), std::string::npos) << message;
    EXPECT_NE(message.find("position 10: model 'f10', pipeline 'return_1s'"), std::string::npos) << message;
    EXPECT_NE(message.find("model only: 'f11', 'f12'"), std::string::npos) << message;
  }
  // The bundled model was exported (by Python) with exactly the C++ schema's names and hash.
  auto bundled = load_torchscript(kModels + "/replay_mlp.pt");
  EXPECT_EQ(bundled->metadata().feature_schema_hash, default_schema().hash());
  EXPECT_NO_THROW(features::check_schema(bundled->metadata(), default_schema()));
}

TEST(Replay, PacedReplayFollowsRecordedTimeScaled) {
  ReplayOptions options;
  options.speed = 10;
  const Replayed run = replay(synthetic(3000, 2, /*rate=*/2000), kModels + "/replay_mlp.pt", options);
  const double recorded_s = static_cast<double>(run.report.recorded_span_ns) * 1e-9;
  EXPECT_NEAR(recorded_s, 1.5, 0.2);  // 3000 events at 2000/s
  EXPECT_GE(run.report.wall_s, recorded_s / 10 * 0.95);
  EXPECT_LT(run.report.wall_s, recorded_s / 10 + 5.0);  // not stalled (generous: sanitizer builds on 2 busy cores)
  EXPECT_EQ(run.report.ok, 3000u);
  expect_counts_add_up(run.report);
}

TEST(Replay, SheddingAndDeadlinesAreCountedAndCountsAddUp) {
  ReplayOptions options;
  options.drop_when_full = true;
  options.deadline_us = 5;  // tight: some expire while waiting behind a batch
  PipelineConfig config;
  config.queue_capacity = 64;
  config.max_batch = 8;
  const Replayed run = replay(synthetic(50'000, 6), kModels + "/replay_mlp.pt", options, config);
  const ReplayReport& r = run.report;
  EXPECT_EQ(r.events, 50'000u);
  expect_counts_add_up(r);
  EXPECT_GT(r.rejected + r.expired, 0u);
  EXPECT_EQ(r.full_queue_waits, 0u);
}

TEST(Replay, FixedBatchesNeedALongMaxDelay) {
  const auto schema = default_schema();
  auto model = load_torchscript(kModels + "/replay_mlp.pt");
  auto source = MarketSource::open(synthetic(100));
  features::FeatureEngine engine(schema, {source->symbol().price_scale, 1});
  auto pipeline = Pipeline::create({}, std::make_shared<ModelSlot>(model), make_cpu_backend());
  ReplayOptions options;
  options.fixed_batches = true;
  EXPECT_THROW(run_replay(*source, engine, *pipeline, options), Error);
}

// ---- direct mode ----

Replayed replay_direct(const SourceOptions& source_options, const std::string& model_path, ReplayOptions options,
                       Engine engine_choice = Engine::kNative) {
  const auto schema = default_schema();
  LoadOptions load;
  load.engine = engine_choice;
  auto model = load_torchscript(model_path, load);
  features::check_schema(model->metadata(), schema, model_path);
  auto source = MarketSource::open(source_options);
  features::FeatureEngine engine(schema, {source->symbol().price_scale, source->symbol().qty_scale});
  Predictor predictor(std::make_shared<ModelSlot>(model));
  Replayed run;
  run.predictions = std::make_unique<Predictions>(model->output_width(), source->size_hint());
  run.report = run_replay_direct(*source, engine, predictor, options, run.predictions.get(), &run.timestamps);
  return run;
}

TEST(Replay, DirectModePredictsEveryEventAsThePipelineDoes) {
  ReplayOptions options;
  options.keep_predictions = true;
  options.warmup_events = 500;
  const Replayed direct = replay_direct(synthetic(20'000, 3), kModels + "/replay_mlp.pt", options);
  const ReplayReport& r = direct.report;
  EXPECT_TRUE(r.direct);
  EXPECT_EQ(r.events, 20'000u);
  EXPECT_EQ(r.accepted, 20'000u);
  EXPECT_EQ(r.ok, 20'000u);
  EXPECT_EQ(r.rejected + r.expired + r.model_errors + r.cancelled, 0u);
  EXPECT_EQ(r.end_to_end.count, 19'500u);
  EXPECT_EQ(r.feed_stage.count, 19'500u);
  EXPECT_EQ(r.predict.count, 19'500u);
  EXPECT_EQ(r.pipeline.batches, 0u);  // no pipeline ran
  EXPECT_EQ(r.model_versions, std::vector<std::uint64_t>{1});
  EXPECT_GE(r.end_to_end.percentile(0.5), r.predict.percentile(0.5));

  options.fixed_batches = true;
  const Replayed piped = replay(synthetic(20'000, 3), kModels + "/replay_mlp.pt", options);
  ASSERT_EQ(piped.report.ok, 20'000u);
  ASSERT_EQ(direct.timestamps, piped.timestamps);
  double worst = 0;
  for (std::uint64_t i = 0; i < 20'000; ++i) {
    ASSERT_EQ(direct.predictions->status(i), ResultStatus::kOk) << "event " << i;
    const auto a = direct.predictions->outputs(i), b = piped.predictions->outputs(i);
    for (std::size_t k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(double(a[k]) - double(b[k])));
  }
  // Both ran the native plan; only the row blocking of a batch of 64 against single rows differs.
  EXPECT_LE(worst, 1e-6);
  EXPECT_NE(to_json(r).find("\"mode\": \"direct\""), std::string::npos);
}

TEST(Replay, DirectModeRefusesPipelineOnlyOptions) {
  for (int which = 0; which < 3; ++which) {
    ReplayOptions options;
    if (which == 0) options.fixed_batches = true;
    if (which == 1) options.drop_when_full = true;
    if (which == 2) options.deadline_us = 100;
    try {
      replay_direct(synthetic(100), kModels + "/replay_mlp.pt", options);
      ADD_FAILURE() << "option " << which << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
      EXPECT_STREQ(e.what(),
                   "replay: direct mode predicts every event inline: fixed batches, dropping and deadlines are "
                   "pipeline options");
    }
  }
}

TEST(Replay, DirectModeRefusesAModelWithoutANativePlan) {
  try {
    replay_direct(synthetic(100), kModels + "/replay_mlp.pt", {}, Engine::kLibTorch);
    FAIL() << "a LibTorch model ran in direct mode";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_STREQ(e.what(), "replay: direct mode runs the native engine, and the current model has no native plan");
  }
}

TEST(Replay, DirectModeRefusesFeaturesOfAnotherWidth) {
  const auto schema = default_schema();
  auto model = load_torchscript(kModels + "/mlp.pt");  // 32 inputs; the default schema has 11 features
  auto source = MarketSource::open(synthetic(100));
  features::FeatureEngine engine(schema, {source->symbol().price_scale, 1});
  Predictor predictor(std::make_shared<ModelSlot>(model));
  try {
    run_replay_direct(*source, engine, predictor, {});
    FAIL() << "mismatched widths were accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kWidthMismatch);
    EXPECT_STREQ(e.what(), "replay: the feature schema has 11 features, the model expects 32");
  }
}

TEST(Replay, PacedLatencyCountsFromTheScheduledArrival) {
  // 2000 events recorded 10 ns apart (a burst) replayed as recorded: they all arrive within 20 us, and the feed
  // thread works through them one after another, so the median event waits behind about a thousand others.
  // Measured from the scheduled arrival, that wait is in its latency (as it would be for a real feed handler);
  // measured from the moment the thread got to it, it would not be.
  ReplayOptions options;
  options.speed = 1;
  const Replayed run = replay_direct(synthetic(2'000, 4, 1e8), kModels + "/replay_mlp.pt", options);
  const ReplayReport& r = run.report;
  EXPECT_EQ(r.ok, 2'000u);
  EXPECT_LT(r.recorded_span_ns, 100'000);
  EXPECT_GE(r.end_to_end.percentile(0.5), 100 * r.predict.percentile(0.5));
  EXPECT_GE(r.end_to_end.percentile(0.5), 50'000u);
}

// ---- real data ----

TEST(Replay, LobsterAmznEveryEventPredictedAndThePythonPeerAgrees) {
  if (!std::filesystem::exists(amzn_messages())) GTEST_SKIP() << "no LOBSTER data at " << amzn_messages();
  ReplayOptions options;
  options.keep_predictions = true;
  options.fixed_batches = true;
  const Replayed run = replay(lobster(), kModels + "/replay_mlp.pt", options);
  EXPECT_EQ(run.report.events, 57'515u);
  EXPECT_EQ(run.report.ok, 57'515u);
  EXPECT_EQ(run.report.symbol.name, "AMZN");
  EXPECT_EQ(run.report.source_stats.parse_issues, 0u);
  expect_counts_add_up(run.report);

  // scripts/baseline_replay.py computes the same features in Python and calls the model per event.
  TempDir dir;
  const std::string out = dir.file("py.csv");
  const std::string cmd = std::string(TICKINFER_PYTHON) + " " + kSource + "/scripts/baseline_replay.py --model " +
                          kModels + "/replay_mlp.pt --limit 5000 --predictions " + out + " " + amzn_messages() + " > " +
                          dir.file("py.log") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir.file("py.log"));
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  std::uint64_t rows = 0;
  double max_diff = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream s(line);
    for (std::string x; std::getline(s, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 4u) << line;
    const std::uint64_t i = std::stoull(f[0]);
    ASSERT_EQ(std::stoll(f[1]), run.timestamps[i]) << i;
    max_diff = std::max(max_diff, std::fabs(std::stod(f[3]) - run.predictions->outputs(i)[0]));
    ++rows;
  }
  EXPECT_EQ(rows, 5000u);
  EXPECT_LT(max_diff, 1e-4);
}

TEST(Replay, ModelTrainedOnLobsterAmznFeaturesLoadsAndReplays) {
  if (!std::filesystem::exists(amzn_messages())) GTEST_SKIP() << "no LOBSTER data at " << amzn_messages();
  TempDir dir;
  // Training reads exactly what the C++ pipeline computes: its dumped features.
  const auto schema = default_schema();
  auto source = MarketSource::open(lobster());
  features::FeatureEngine engine(schema, {source->symbol().price_scale, 1});
  ASSERT_EQ(dump_features(*source, engine, dir.file("amzn_features.csv")), 57'515u);
  const std::string cmd = std::string(TICKINFER_PYTHON) + " " + kSource + "/scripts/train_model.py --features " +
                          dir.file("amzn_features.csv") + " --config " + kSource + "/configs/default.toml --out " +
                          dir.file("trained.pt") + " --epochs 3 > " + dir.file("train.log") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir.file("train.log"));
  ReplayOptions options;
  options.keep_predictions = true;
  const Replayed run = replay(lobster(), dir.file("trained.pt"), options);
  EXPECT_EQ(run.report.ok, 57'515u);
  expect_counts_add_up(run.report);
}

// ---- the tickinfer-replay executable on bad input, and installed ----
// Compiled where this build has the app (TICKINFER_BUILD_APPS; the sanitizer builds have none).
#ifdef TICKINFER_HAVE_REPLAY_APP

// The app of this build: tests/replay_test -> ../apps/tickinfer-replay.
std::filesystem::path build_dir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path();
}
std::string replay_app() { return (build_dir() / "apps" / "tickinfer-replay").string(); }

struct AppRun {
  int status = -1;
  std::string out, err;
};

AppRun run_app(const TempDir& dir, const std::string& args, const std::string& program = replay_app()) {
  if (!std::filesystem::exists(program)) ADD_FAILURE() << program << " is missing: build tickinfer-replay first";
  const std::string cmd =
      "cd " + dir.file("") + " && " + program + " " + args + " > " + dir.file("app.out") + " 2> " + dir.file("app.err");
  const int rc = std::system(cmd.c_str());
  AppRun run;
  run.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  run.out = read_file(dir.file("app.out"));
  run.err = read_file(dir.file("app.err"));
  return run;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// LOBSTER messages (no orderbook file): `lines` adds at rising times, with the given lines (1-based) bad.
std::string lobster_messages(int lines, const std::vector<int>& bad) {
  std::string text;
  for (int i = 1; i <= lines; ++i) {
    const bool broken = std::find(bad.begin(), bad.end(), i) != bad.end();
    text += "34200." + std::to_string(100 + i) + ",1," + (broken ? std::string("x") : std::to_string(i)) +
            ",100,1000000,1\n";
  }
  return text;
}

TEST(ReplayApp, EveryLobsterRecordInvalidExitsNonZeroPrintingTheLocatedIssues) {
  TempDir dir;
  const std::string path = dir.file("RAND_2012-06-21_34200000_57600000_message_1.csv");
  std::string bytes;
  std::uint64_t x = 88172645463325252ull;  // xorshift: random bytes, 20 lines of 100
  for (int line = 0; line < 20; ++line) {
    for (int i = 0; i < 100; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      const char c = static_cast<char>(x & 0xff);
      bytes.push_back(c == '\n' ? ' ' : c);
    }
    bytes.push_back('\n');
  }
  write_file(path, bytes);
  const AppRun run = run_app(dir, path + " --quiet --json " + dir.file("r.json"));
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_EQ(run.err.rfind("tickinfer-replay: 20 parse issue(s) in 20 records (100.00%): ", 0), 0u) << run.err;
  EXPECT_NE(run.err.find("\n  " + path + ":1: "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("\n  " + path + ":16: "), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("\n  " + path + ":17: "), std::string::npos) << "more than the kept reports: " << run.err;
  EXPECT_NE(run.err.find("\n  ... 4 more not shown\n"), std::string::npos) << run.err;
  const std::string last = "tickinfer-replay: " + path + ": nothing parsed: none of its 20 records is valid\n";
  ASSERT_GE(run.err.size(), last.size());
  EXPECT_EQ(run.err.substr(run.err.size() - last.size()), last) << run.err;
  // The report has them too.
  const std::string json = read_file(dir.file("r.json"));
  EXPECT_NE(json.find("\"first_parse_issues\""), std::string::npos);
  EXPECT_NE(json.find("\"parse_records\": 20"), std::string::npos) << json.substr(0, 600);
}

TEST(ReplayApp, CaptureWithABadMagicIsRefusedNotReplayedAsItch) {
  TempDir dir;
  const std::string path = dir.file("day.tcap");
  {
    feed::CaptureWriter writer(path, {});
    writer.append(feed::Event{});
    writer.finish();
  }
  std::string bytes = read_file(path);
  std::memcpy(bytes.data(), "TICKCAQ", 7);
  write_file(path, bytes);
  const AppRun run = run_app(dir, path + " --quiet");
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.err, "tickinfer-replay: " + path +
                         ": cannot detect the format: its first bytes 'TICKCAQ\\x00' are not a tickinfer capture's "
                         "magic 'TICKCAP\\x00' (though the rest of the header reads like a capture's: version 2, "
                         "record size 80; a damaged capture?), nor an ITCH 5.0 message (length 21577, type 0x43, "
                         "which ITCH 5.0 makes 36 bytes); give --format to read it as one anyway\n");
  EXPECT_EQ(run.out, "");
}

TEST(ReplayApp, ParseIssuesAboveTheShareFailTheRunAndBelowItPass) {
  TempDir dir;
  const std::string path = dir.file("TEST_2012-06-21_34200000_57600000_message_1.csv");
  write_file(path, lobster_messages(100, {51, 52}));  // 2% bad
  const std::string issue =
      "  " + path + ":51: bad_number: field 3 (order_id): not a number in '34200.151,1,x,100,1000000,1'\n";
  AppRun run = run_app(dir, path + " --quiet --json " + dir.file("r.json"));
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_EQ(run.err, "tickinfer-replay: 2 parse issue(s) in 100 records (2.00%): bad_number 2\n" + issue + "  " + path +
                         ":52: bad_number: field 3 (order_id): not a number in '34200.152,1,x,100,1000000,1'\n"
                         "tickinfer-replay: " +
                         path + ": parse issues in 2.00% of the records, above --max-error-share 0.01\n");
  run = run_app(dir, path + " --quiet --max-error-share 0.05 --json " + dir.file("r.json"));
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.err.find(issue), std::string::npos) << run.err;  // still reported
  EXPECT_NE(run.out.find("98 events"), std::string::npos) << run.out;
}

TEST(ReplayApp, OnErrorStopFailsAtTheFirstBadRecordWithItsLine) {
  TempDir dir;
  const std::string path = dir.file("TEST_2012-06-21_34200000_57600000_message_1.csv");
  write_file(path, lobster_messages(100, {51, 52}));
  const AppRun run = run_app(dir, path + " --quiet --on-error stop --json " + dir.file("r.json"));
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.err, "tickinfer-replay: " + path +
                         ":51: bad_number: field 3 (order_id): not a number in '34200.151,1,x,100,1000000,1'\n");
  EXPECT_NE(run_app(dir, path + " --on-error maybe").status, 0);  // neither skip nor stop
}

TEST(ReplayApp, GigabyteOfZerosIsNotTakenForItchAndAsItchTheStreamIsLost) {
  TempDir dir;
  const std::string path = dir.file("zeros.bin");
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, off_t{1} << 30), 0);  // sparse: no disk
    ::close(fd);
  }
  AppRun run = run_app(dir, path + " --quiet");
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.err, "tickinfer-replay: " + path +
                         ": cannot detect the format: its first bytes "
                         "'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00' are not a tickinfer capture's magic "
                         "'TICKCAP\\x00', nor an ITCH 5.0 message (length 0, type 0x00, not an ITCH 5.0 type); give "
                         "--format to read it as one anyway\n");
  run = run_app(dir, path + " --format itch --quiet --json " + dir.file("r.json"));
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_NE(run.err.find("tickinfer-replay: 17 parse issue(s) in 16 records (106.25%): bad_length 16, stream_lost 1\n"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("\n  " + path +
                         "@0: stream_lost: 16 consecutive framing errors (zero-length, unknown-type "
                         "or wrong-length messages) from here to offset 32: the stream is lost; the remaining " +
                         std::to_string((std::uint64_t{1} << 30) - 32) + " bytes are not read\n"),
            std::string::npos)
      << run.err;
  EXPECT_NE(
      run.err.find("tickinfer-replay: " + path + ": the stream was lost (stream_lost above): the rest was not read\n"),
      std::string::npos)
      << run.err;
}

TEST(ReplayApp, InstalledAppFindsItsModelAndConfigUnderShareWithoutTheBuildTree) {
  TempDir dir;
  const std::string prefix = dir.file("prefix");
  const std::string install = "cmake --install " + build_dir().string() + " --prefix " + prefix +
                              " --component tickinfer-replay > " + dir.file("install.log") + " 2>&1";
  ASSERT_EQ(std::system(install.c_str()), 0) << read_file(dir.file("install.log"));
  const std::string app = prefix + "/bin/tickinfer-replay";
  ASSERT_TRUE(std::filesystem::exists(app)) << read_file(dir.file("install.log"));
  EXPECT_TRUE(std::filesystem::exists(prefix + "/share/tickinfer/models/replay_mlp.pt"));
  EXPECT_TRUE(std::filesystem::exists(prefix + "/share/tickinfer/configs/default.toml"));
  const AppRun run = run_app(dir, "--events 2000 --quiet --json " + dir.file("r.json"), app);
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("  model " + prefix + "/share/tickinfer/models/replay_mlp.pt ("), std::string::npos)
      << run.out;
  EXPECT_NE(read_file(dir.file("r.json")).find("\"config\": \"" + prefix + "/share/tickinfer/configs/default.toml\""),
            std::string::npos);
}

TEST(ReplayApp, DirectFlagRunsTheNativeEngineOnTheFeedThread) {
  TempDir dir;
  const AppRun run = run_app(dir, "--events 3000 --direct --quiet --json " + dir.file("r.json"));
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find(", engine native\n  direct mode: the feed thread predicts each event inline (no pipeline)\n"),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("  counts: ok 3000, model errors 0\n"), std::string::npos) << run.out;
  const std::string report = read_file(dir.file("r.json"));
  EXPECT_NE(report.find("\"mode\": \"direct\""), std::string::npos);
  EXPECT_NE(report.find("\"engine\": \"native\""), std::string::npos);
}

TEST(ReplayApp, EngineFlagChoosesLibTorchAndDirectRefusesIt) {
  TempDir dir;
  const AppRun torch = run_app(dir, "--events 2000 --engine libtorch --quiet --json " + dir.file("r.json"));
  EXPECT_EQ(torch.status, 0) << torch.err;
  EXPECT_NE(torch.out.find(", engine libtorch\n"), std::string::npos) << torch.out;
  const AppRun refused = run_app(dir, "--events 10 --engine libtorch --direct --quiet");
  EXPECT_EQ(refused.status, 1);
  EXPECT_EQ(refused.err, "tickinfer-replay: --direct runs the native engine: not with --engine libtorch\n");
}

TEST(ReplayApp, SymbolsFlagReplaysEverySymbolUnderItsOwnKeyAndReportsEachOne) {
  TempDir dir;
  const AppRun run =
      run_app(dir, "--events 20000 --symbols 12 --bursts 0.01 --conflate --quiet --json " + dir.file("m.json"));
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find(", 12 symbols, zipf 1, bursts p=0.01 x64 at 100x)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("  12 symbols; busiest and quietest (end to end, us):\n"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("    SYN0 "), std::string::npos) << run.out;
  const std::string report = read_file(dir.file("m.json"));
  EXPECT_NE(report.find("\"conflation\": \"supersede\""), std::string::npos) << report;
  EXPECT_NE(report.find("\"keys\": 12"), std::string::npos) << report;
  std::size_t symbols = 0;  // entries of the report's per-symbol list (the source's own "symbol" comes before it)
  const std::size_t list = report.find("\"symbols\": [");
  ASSERT_NE(list, std::string::npos) << report;
  for (std::size_t at = report.find("\"symbol\": \"SYN", list); at != std::string::npos;
       at = report.find("\"symbol\": \"SYN", at + 1))
    ++symbols;
  EXPECT_EQ(symbols, 12u) << report;

  const AppRun refused = run_app(dir, "--events 10 --symbols 2 --conflate --direct --quiet");
  EXPECT_EQ(refused.status, 1);
  EXPECT_EQ(refused.err, "tickinfer-replay: --conflate is a pipeline option: not with --direct\n");
  const AppRun fixed = run_app(dir, "--events 10 --conflate --predictions " + dir.file("p.csv") + " --quiet");
  EXPECT_EQ(fixed.status, 1);
  EXPECT_EQ(fixed.err,
            "tickinfer-replay: --conflate with --predictions needs --dynamic-batches (conflation changes batch "
            "composition)\n");
}

TEST(ReplayApp, ModelDirIsRefusedWithTheReasonWhenItCannotServe) {
  TempDir dir;
  const AppRun both = run_app(dir, "--events 10 --model-dir " + dir.file("") + " --model x.pt --quiet");
  EXPECT_EQ(both.status, 1);
  EXPECT_EQ(both.err, "tickinfer-replay: --model-dir serves a directory: not with --model\n");
  const AppRun missing = run_app(dir, "--events 10 --model-dir " + dir.file("nowhere") + " --quiet");
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(missing.err, "tickinfer-replay: " + dir.file("nowhere") + ": not a directory\n");
  std::filesystem::create_directories(dir.file("ck"));
  std::ofstream(dir.file("ck/model_epoch3.pt.tmp")) << "half written";  // never a checkpoint
  const AppRun empty = run_app(dir, "--events 10 --model-dir " + dir.file("ck") + " --quiet");
  EXPECT_EQ(empty.status, 1);
  EXPECT_EQ(empty.err, "tickinfer-replay: " + dir.file("ck") +
                           ": no checkpoint (NAME_epochN.pt or .onnx) within 0 s (--wait-for-model)\n");
}

// A GRU (forward(x, h) -> (y, h')) replayed over four symbols: its state is kept per symbol, and the predictions
// with batches of 64 across symbols equal those with batches of one (each symbol's sequence in order).
TEST(ReplayApp, ASequenceModelKeepsItsStatePerSymbolAndBatchingAcrossSymbolsChangesNoPrediction) {
  TempDir dir;
  const std::string gru = kModels + "/replay_gru.pt";
  const std::string common = "--model " + gru + " --events 4000 --symbols 4 --bursts 0.01 --quiet --predictions ";
  const AppRun batched = run_app(dir, common + dir.file("b.csv") + " --max-batch 64 --json " + dir.file("b.json"));
  ASSERT_EQ(batched.status, 0) << batched.err;
  EXPECT_NE(batched.out.find(", engine libtorch: "), std::string::npos) << batched.out;
  EXPECT_NE(batched.out.find("counts: ok 4000,"), std::string::npos) << batched.out;
  const AppRun single = run_app(dir, common + dir.file("s.csv") + " --max-batch 1 --json " + dir.file("s.json"));
  ASSERT_EQ(single.status, 0) << single.err;
  std::ifstream a(dir.file("b.csv")), b(dir.file("s.csv"));
  std::string la, lb;
  std::getline(a, la), std::getline(b, lb);
  ASSERT_EQ(la, "index,ts_ns,status,y0");
  std::size_t rows = 0;
  double worst = 0;
  while (std::getline(a, la) && std::getline(b, lb)) {
    const auto va = la.substr(la.rfind(',') + 1), vb = lb.substr(lb.rfind(',') + 1);
    ASSERT_EQ(la.substr(0, la.rfind(',')), lb.substr(0, lb.rfind(','))) << "row " << rows;
    worst = std::max(worst, std::abs(std::stod(va) - std::stod(vb)));
    ++rows;
  }
  EXPECT_EQ(rows, 4000u);
  EXPECT_LE(worst, 1e-5) << "batched across symbols vs one at a time";
  EXPECT_NE(read_file(dir.file("b.json")).find("\"keys\": 4"), std::string::npos);
}

TEST(ReplayApp, SweepReportsCapacityAndLatencyAtEachOfferedRate) {
  TempDir dir;
  const AppRun run = run_app(
      dir, "--events 20000 --sweep --sweep-events 3000 --sweep-points 0.1,0.5 --quiet --json " + dir.file("s.json"));
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("  capacity (as fast as possible, 3000 events): "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("      10% "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("      50% "), std::string::npos) << run.out;
  const std::string report = read_file(dir.file("s.json"));
  EXPECT_NE(report.find("\"tool\": \"tickinfer-replay --sweep\""), std::string::npos) << report;
  EXPECT_NE(report.find("\"fraction_of_capacity\": 0.1,"), std::string::npos) << report;
  EXPECT_NE(report.find("\"fraction_of_capacity\": 0.5,"), std::string::npos) << report;
  // Every point predicted all of its events (the feed thread waits for queue room).
  std::size_t points = 0;
  for (std::size_t at = report.find("\"ok\": 3000,"); at != std::string::npos;
       at = report.find("\"ok\": 3000,", at + 1))
    ++points;
  EXPECT_EQ(points, 2u) << report;
}

TEST(ReplayApp, SweepRefusesOptionsItChoosesItself) {
  TempDir dir;
  const AppRun run = run_app(dir, "--events 100 --sweep --speed 2 --quiet");
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.err,
            "tickinfer-replay: --sweep chooses the pacing and the events itself: not with --predictions, --speed or "
            "--limit\n");
}

#endif  // TICKINFER_HAVE_REPLAY_APP

}  // namespace
}  // namespace tickinfer::replay
