// The trading-engine API of the pipeline (issue #10): keys on submit and results, per-key metrics, the engine in
// results and metrics, conflation (supersede / merge), the latest-prediction store and polled result rings wired
// into the workers, and deadline-aware admission. Torch-free: runs under ThreadSanitizer.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/fake_model.hpp"
#include "support/wait.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/latest_store.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/result_ring.hpp"
#include "tickinfer/waiter.hpp"

namespace tickinfer {
namespace {

using testing::FakeBackend;
using testing::FakeModel;
using testing::scaled;
using testing::wait_until;
using namespace std::chrono_literals;

constexpr std::size_t kWidth = 4;

// A fake model that reports another engine name (Model::set_engine is for loaders; a subclass may call it).
class NamedEngineModel : public FakeModel {
 public:
  NamedEngineModel(std::uint64_t version, const std::string& engine, float scale = 1.0f)
      : FakeModel(kWidth, version, scale) {
    set_engine(engine, "");
  }
};

struct Fixture {
  explicit Fixture(PipelineConfig config = {}, std::chrono::microseconds forward_time = 0us)
      : backend(std::make_shared<FakeBackend>()),
        slot(std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1, 1.0f, 0.0f, forward_time))),
        pipeline(Pipeline::create(config, slot, backend)) {}
  std::shared_ptr<FakeBackend> backend;
  std::shared_ptr<ModelSlot> slot;
  std::unique_ptr<Pipeline> pipeline;
};

// Holds the worker inside a completion until opened: what is submitted meanwhile stays queued, deterministically.
struct Gate {
  std::atomic<bool> entered{false}, open{false};
  static void on_result(void* self, const Result&) {
    auto* g = static_cast<Gate*>(self);
    g->entered.store(true, std::memory_order_release);  // pairs with the acquire in the test's wait
    while (!g->open.load(std::memory_order_acquire)) std::this_thread::yield();  // pairs with the release in release()
  }
  void release() { open.store(true, std::memory_order_release); }
};

// Every completion by tag: how often, with which status, key and outputs; on which thread.
struct Ledger {
  explicit Ledger(std::size_t tags) : times(tags), status(tags), key(tags), first_output(tags), second_output(tags) {}
  static void on_result(void* self, const Result& r) { static_cast<Ledger*>(self)->record(r); }
  void record(const Result& r) {
    // Relaxed stores, then a release increment of `completed`: the test reads them after an acquire wait on it.
    times[r.tag].fetch_add(1, std::memory_order_relaxed);
    status[r.tag].store(static_cast<int>(r.status), std::memory_order_relaxed);
    key[r.tag].store(r.key, std::memory_order_relaxed);
    if (r.status == ResultStatus::kOk && r.outputs.size() == 2) {
      first_output[r.tag].store(r.outputs[0], std::memory_order_relaxed);
      second_output[r.tag].store(r.outputs[1], std::memory_order_relaxed);
    }
    if (r.status == ResultStatus::kSuperseded && std::this_thread::get_id() == test_thread)
      superseded_on_test_thread.fetch_add(1, std::memory_order_relaxed);
    completed.fetch_add(1, std::memory_order_release);
  }
  std::vector<std::atomic<int>> times, status;
  std::vector<std::atomic<std::uint32_t>> key;
  std::vector<std::atomic<float>> first_output, second_output;
  std::thread::id test_thread = std::this_thread::get_id();
  std::atomic<int> superseded_on_test_thread{0};
  std::atomic<std::uint64_t> completed{0};
};

// ---- keys ----

TEST(PipelineKeys, AResultCarriesItsKeyAndCompletionsAreCountedPerKey) {
  PipelineConfig config;
  config.keys = 8;
  Fixture f(config);
  Producer producer = f.pipeline->make_producer();
  Ledger ledger(16);
  const float features[kWidth] = {1, 2, 3, 4};
  // Keys 3 (twice) and 5 Ok, key 5 once expired, one unkeyed.
  ASSERT_EQ(f.pipeline->submit(producer, 3, features, kNoDeadline, {&Ledger::on_result, &ledger, 0}),
            SubmitStatus::kAccepted);
  ASSERT_EQ(f.pipeline->submit(producer, 3, features, kNoDeadline, {&Ledger::on_result, &ledger, 1}),
            SubmitStatus::kAccepted);
  ASSERT_EQ(f.pipeline->submit(producer, 5, features, kNoDeadline, {&Ledger::on_result, &ledger, 2}),
            SubmitStatus::kAccepted);
  ASSERT_EQ(f.pipeline->submit(producer, 5, features, now_ns() - 1, {&Ledger::on_result, &ledger, 3}),
            SubmitStatus::kAccepted);
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {&Ledger::on_result, &ledger, 4}),
            SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return ledger.completed.load(std::memory_order_acquire) == 5; }));
  EXPECT_EQ(ledger.key[0].load(), 3u);
  EXPECT_EQ(ledger.key[1].load(), 3u);
  EXPECT_EQ(ledger.key[2].load(), 5u);
  EXPECT_EQ(ledger.key[3].load(), 5u);
  EXPECT_EQ(ledger.key[4].load(), kNoKey);
  EXPECT_EQ(ledger.status[3].load(), static_cast<int>(ResultStatus::kExpired));

  const std::vector<KeyCounts> keys = f.pipeline->metrics().key_snapshot();
  ASSERT_EQ(keys.size(), 8u);
  EXPECT_EQ(keys[3].count(ResultStatus::kOk), 2u);
  EXPECT_EQ(keys[3].completed(), 2u);
  EXPECT_EQ(keys[5].count(ResultStatus::kOk), 1u);
  EXPECT_EQ(keys[5].count(ResultStatus::kExpired), 1u);
  EXPECT_EQ(keys[0].completed(), 0u);
  std::uint64_t per_key = 0;
  for (const auto& k : keys) per_key += k.completed();
  EXPECT_EQ(per_key, 4u) << "the unkeyed request is in no key's counts";
}

TEST(PipelineKeys, AKeyBeyondTheConfiguredCountIsInvalidAndNeverCompletes) {
  PipelineConfig config;
  config.keys = 8;
  Fixture f(config);
  Fixture unkeyed;  // keys = 0: every key is beyond the count
  Producer producer = f.pipeline->make_producer();
  Producer other = unkeyed.pipeline->make_producer();
  auto never = [](void*, const Result&) { ADD_FAILURE() << "an invalid request must not complete"; };
  const float features[kWidth] = {1, 2, 3, 4};
  EXPECT_EQ(f.pipeline->submit(producer, 8, features, kNoDeadline, {never}), SubmitStatus::kInvalid);
  EXPECT_EQ(unkeyed.pipeline->submit(other, 0, features, kNoDeadline, {never}), SubmitStatus::kInvalid);
  f.pipeline->shutdown();
  unkeyed.pipeline->shutdown();
  EXPECT_EQ(f.pipeline->metrics().snapshot().invalid, 1u);
  EXPECT_EQ(unkeyed.pipeline->metrics().snapshot().invalid, 1u);
  EXPECT_TRUE(unkeyed.pipeline->metrics().key_snapshot().empty());
}

// ---- engine ----

TEST(PipelineEngine, ResultsNameTheEngineThatRanThemAndMetricsCountRowsPerEngine) {
  auto backend = std::make_shared<FakeBackend>();
  auto slot = std::make_shared<ModelSlot>(std::make_shared<NamedEngineModel>(1, "libtorch"));
  auto pipeline = Pipeline::create({}, slot, backend);
  Producer producer = pipeline->make_producer();
  const float features[kWidth] = {1, 2, 3, 4};
  ResultWaiter waiter;
  ASSERT_EQ(pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(10s));
  EXPECT_EQ(waiter.engine(), EngineKind::kLibTorch);

  slot->publish(std::make_shared<NamedEngineModel>(2, "native"));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
    ASSERT_TRUE(waiter.wait_for(10s));
    EXPECT_EQ(waiter.model_version(), 2u);
    EXPECT_EQ(waiter.engine(), EngineKind::kNative);
  }
  ASSERT_EQ(pipeline->submit(producer, features, now_ns() - 1, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(10s));
  EXPECT_EQ(waiter.status(), ResultStatus::kExpired);
  EXPECT_EQ(waiter.engine(), EngineKind::kNone) << "no engine ran an expired request";

  slot->publish(std::make_shared<NamedEngineModel>(3, "tensorrt"));
  ASSERT_EQ(pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(10s));
  EXPECT_EQ(waiter.engine(), EngineKind::kOther);

  const MetricsSnapshot m = pipeline->metrics().snapshot();
  EXPECT_EQ(m.rows_by_engine[static_cast<std::size_t>(EngineKind::kLibTorch)], 1u);
  EXPECT_EQ(m.rows_by_engine[static_cast<std::size_t>(EngineKind::kNative)], 3u);
  EXPECT_EQ(m.rows_by_engine[static_cast<std::size_t>(EngineKind::kOther)], 1u);
  EXPECT_EQ(m.rows_by_engine[static_cast<std::size_t>(EngineKind::kNone)], 0u);
  const std::string text = to_prometheus(m);
  EXPECT_NE(text.find("tickinfer_rows_total{engine=\"native\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tickinfer_rows_total{engine=\"libtorch\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tickinfer_rows_total{engine=\"other\"} 1\n"), std::string::npos) << text;
  EXPECT_STREQ(to_string(EngineKind::kNative), "native");
  EXPECT_EQ(engine_kind("libtorch"), EngineKind::kLibTorch);
}

// ---- conflation ----

// Holds the worker in a gate, submits `n` requests for one key (feature 0 = i), then lets the worker go.
void submit_behind_gate(Pipeline& pipeline, Producer& producer, Gate& gate, Ledger& ledger, InstrumentKey key,
                        std::size_t n, std::vector<SubmitStatus>& statuses) {
  const float none[kWidth] = {0, 0, 0, 0};
  ASSERT_EQ(pipeline.submit(producer, none, kNoDeadline, {&Gate::on_result, &gate, 0}), SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return gate.entered.load(std::memory_order_acquire); }));
  for (std::size_t i = 1; i <= n; ++i) {
    const float features[kWidth] = {static_cast<float>(i), 1, 1, 1};
    statuses.push_back(pipeline.submit(producer, key, features, kNoDeadline, {&Ledger::on_result, &ledger, i}));
  }
  gate.release();
}

TEST(PipelineConflation, OnlyTheNewestFeaturesOfAKeyRunAndEachReplacedRequestCompletesOnceAsSuperseded) {
  PipelineConfig config;
  config.keys = 4;
  config.conflation = Conflation::kSupersede;
  Fixture f(config);
  Producer producer = f.pipeline->make_producer();
  Gate gate;
  constexpr std::size_t kN = 100;
  Ledger ledger(kN + 1);
  std::vector<SubmitStatus> statuses;
  const std::uint64_t rows_before = f.backend->rows_run.load();
  submit_behind_gate(*f.pipeline, producer, gate, ledger, 2, kN, statuses);
  for (const auto s : statuses) ASSERT_EQ(s, SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return ledger.completed.load(std::memory_order_acquire) == kN; }));

  for (std::size_t i = 1; i < kN; ++i) {
    EXPECT_EQ(ledger.times[i].load(), 1) << "request " << i;
    EXPECT_EQ(ledger.status[i].load(), static_cast<int>(ResultStatus::kSuperseded)) << "request " << i;
    EXPECT_EQ(ledger.key[i].load(), 2u);
  }
  EXPECT_EQ(ledger.times[kN].load(), 1);
  ASSERT_EQ(ledger.status[kN].load(), static_cast<int>(ResultStatus::kOk));
  // FakeModel: outputs = {sum(features), features[0]}: computed from the newest features, {kN, 1, 1, 1}.
  EXPECT_EQ(ledger.second_output[kN].load(), static_cast<float>(kN));
  EXPECT_EQ(ledger.first_output[kN].load(), static_cast<float>(kN + 3));
  EXPECT_EQ(ledger.superseded_on_test_thread.load(), 0) << "superseded requests complete on a worker";
  EXPECT_EQ(f.backend->rows_run.load() - rows_before, 2u) << "the gate's request and the key's newest only";

  const MetricsSnapshot m = f.pipeline->metrics().snapshot();
  EXPECT_EQ(m.accepted, kN + 1);
  EXPECT_EQ(m.superseded, kN - 1);
  EXPECT_EQ(m.ok, 2u);
  EXPECT_EQ(m.merged, 0u);
  EXPECT_EQ(m.completed(), m.accepted);
  const auto keys = f.pipeline->metrics().key_snapshot();
  EXPECT_EQ(keys[2].count(ResultStatus::kSuperseded), kN - 1);
  EXPECT_EQ(keys[2].count(ResultStatus::kOk), 1u);
}

TEST(PipelineConflation, MergeCompletesOnlyTheNewestAndCountsTheOthersAsMerged) {
  PipelineConfig config;
  config.keys = 4;
  config.conflation = Conflation::kMerge;
  config.queue_capacity = 8;  // merged requests give their slot back at once: 100 submits fit in 8 slots
  Fixture f(config);
  Producer producer = f.pipeline->make_producer();
  Gate gate;
  constexpr std::size_t kN = 100;
  Ledger ledger(kN + 1);
  std::vector<SubmitStatus> statuses;
  submit_behind_gate(*f.pipeline, producer, gate, ledger, 1, kN, statuses);
  for (const auto s : statuses) ASSERT_EQ(s, SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return ledger.completed.load(std::memory_order_acquire) == 1; }));
  f.pipeline->shutdown();  // nothing else may complete
  EXPECT_EQ(ledger.completed.load(), 1u);
  for (std::size_t i = 1; i < kN; ++i) EXPECT_EQ(ledger.times[i].load(), 0) << "request " << i;
  ASSERT_EQ(ledger.status[kN].load(), static_cast<int>(ResultStatus::kOk));
  EXPECT_EQ(ledger.second_output[kN].load(), static_cast<float>(kN));
  const MetricsSnapshot m = f.pipeline->metrics().snapshot();
  EXPECT_EQ(m.accepted, kN + 1);
  EXPECT_EQ(m.merged, kN - 1);
  EXPECT_EQ(m.completed() + m.merged, m.accepted);
}

// 8 producers, 64 keys shared between them, many iterations: every accepted request completes exactly once (Ok
// with its own features' outputs, or superseded), and nothing rejected completes.
void run_eight_producers(Conflation mode) {
  constexpr std::size_t kProducers = 8, kKeys = 64;
  const std::size_t per_producer = static_cast<std::size_t>(scaled(20000, 2000));
  PipelineConfig config;
  config.keys = kKeys;
  config.conflation = mode;
  config.max_batch = 8;
  config.queue_capacity = 256;
  config.idle = IdleStrategy::kSpinThenYield;
  Fixture f(config, 5us);  // slower than 8 producers: keys are often still queued when the next submit comes
  Ledger ledger(kProducers * per_producer);
  std::vector<std::atomic<std::uint8_t>> accepted(kProducers * per_producer);
  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < kProducers; ++p)
    threads.emplace_back([&, p] {
      Producer producer = f.pipeline->make_producer();
      for (std::size_t seq = 0; seq < per_producer; ++seq) {
        const std::size_t tag = p * per_producer + seq;
        const auto key = static_cast<InstrumentKey>((seq * 7 + p) % kKeys);
        const float features[kWidth] = {static_cast<float>(tag), static_cast<float>(key), 0, 0};
        // Every 3rd request is retried until accepted; the others are shed when the queue is full.
        SubmitStatus s;
        while ((s = f.pipeline->submit(producer, key, features, kNoDeadline, {&Ledger::on_result, &ledger, tag})) ==
                   SubmitStatus::kRejected &&
               seq % 3 == 0)
          std::this_thread::yield();  // let the worker in on 2 shared cores
        ASSERT_NE(s, SubmitStatus::kInvalid);
        if (s == SubmitStatus::kAccepted) accepted[tag].store(1, std::memory_order_relaxed);
        if (s == SubmitStatus::kRejected) std::this_thread::yield();
      }
    });
  for (auto& t : threads) t.join();
  MetricsSnapshot m = f.pipeline->metrics().snapshot();
  ASSERT_TRUE(wait_until([&] {
    m = f.pipeline->metrics().snapshot();
    return m.completed() + m.merged == m.accepted;
  }));
  f.pipeline->shutdown();
  m = f.pipeline->metrics().snapshot();
  std::uint64_t n_accepted = 0, ok = 0, superseded = 0, bad = 0;
  for (std::size_t tag = 0; tag < accepted.size(); ++tag) {
    const int times = ledger.times[tag].load();
    if (!accepted[tag].load()) {
      ASSERT_EQ(times, 0) << "rejected request " << tag << " completed";
      continue;
    }
    ++n_accepted;
    if (mode == Conflation::kSupersede) {
      ASSERT_EQ(times, 1) << "request " << tag;
    } else {
      ASSERT_LE(times, 1) << "request " << tag;
    }
    if (times == 0) continue;
    const auto status = static_cast<ResultStatus>(ledger.status[tag].load());
    const std::size_t seq = tag % per_producer, p = tag / per_producer;
    if (ledger.key[tag].load() != (seq * 7 + p) % kKeys) ++bad;
    if (status == ResultStatus::kOk) {
      ++ok;
      // Outputs computed from this request's own features: {tag + key, tag}.
      if (ledger.second_output[tag].load() != static_cast<float>(tag)) ++bad;
    } else if (status == ResultStatus::kSuperseded) {
      ++superseded;
    } else {
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(m.accepted, n_accepted);
  EXPECT_EQ(m.ok, ok);
  EXPECT_EQ(m.superseded, superseded);
  EXPECT_EQ(m.completed() + m.merged, m.accepted);
  if (mode == Conflation::kSupersede) {
    EXPECT_GT(m.superseded, 0u) << "the run never conflated: it tested nothing";
    EXPECT_EQ(m.merged, 0u);
  } else {
    EXPECT_GT(m.merged, 0u) << "the run never conflated: it tested nothing";
    EXPECT_EQ(m.superseded, 0u);
  }
  std::uint64_t per_key = 0;
  for (const auto& k : f.pipeline->metrics().key_snapshot()) per_key += k.completed();
  EXPECT_EQ(per_key, m.completed());
}

TEST(PipelineConflation, EveryRequestFromEightProducersOnSharedKeysCompletesExactlyOnceWhenSuperseding) {
  run_eight_producers(Conflation::kSupersede);
}

TEST(PipelineConflation, EveryRequestFromEightProducersOnSharedKeysCompletesAtMostOnceAndMergedAreCountedWhenMerging) {
  run_eight_producers(Conflation::kMerge);
}

TEST(PipelineConflation, ShutdownRacingWithConflatingProducersCompletesEveryAcceptedRequestExactlyOnce) {
  for (std::uint64_t round = 0; round < scaled(20, 4); ++round) {
    PipelineConfig config;
    config.keys = 16;
    config.conflation = Conflation::kSupersede;
    config.queue_capacity = 64;
    config.max_batch = 8;
    Fixture f(config, 5us);
    constexpr std::size_t kProducers = 4, kMaxPer = 200000;
    Ledger ledger(kProducers * kMaxPer);
    std::vector<std::atomic<std::uint8_t>> accepted(kProducers * kMaxPer);
    std::atomic<std::uint64_t> n_accepted{0};
    std::atomic<bool> go{true};
    std::vector<std::thread> threads;
    for (std::size_t p = 0; p < kProducers; ++p)
      threads.emplace_back([&, p] {
        Producer producer = f.pipeline->make_producer();
        const float features[kWidth] = {1, 2, 3, 4};
        for (std::size_t seq = 0; seq < kMaxPer && go.load(std::memory_order_relaxed); ++seq) {
          const std::size_t tag = p * kMaxPer + seq;
          const auto key = static_cast<InstrumentKey>((seq + p) % 16);
          if (f.pipeline->submit(producer, key, features, kNoDeadline, {&Ledger::on_result, &ledger, tag}) ==
              SubmitStatus::kAccepted) {
            accepted[tag].store(1, std::memory_order_relaxed);
            n_accepted.fetch_add(1, std::memory_order_relaxed);
          } else {
            std::this_thread::yield();  // let the worker in on 2 shared cores
          }
        }
      });
    ASSERT_TRUE(wait_until([&] { return n_accepted.load() >= 200; }));
    f.pipeline->shutdown();
    const std::uint64_t completed_at_return = ledger.completed.load(std::memory_order_acquire);
    go.store(false);
    for (auto& t : threads) t.join();
    ASSERT_EQ(completed_at_return, n_accepted.load()) << "round " << round;
    for (std::size_t tag = 0; tag < accepted.size(); ++tag)
      ASSERT_EQ(ledger.times[tag].load(), accepted[tag].load() ? 1 : 0) << "round " << round << " request " << tag;
  }
}

TEST(PipelineConflation, AConflatingPipelineRefusesMoreLiveProducersThanMaxProducers) {
  PipelineConfig config;
  config.keys = 2;
  config.conflation = Conflation::kSupersede;
  config.max_producers = 2;
  Fixture f(config);
  Producer a = f.pipeline->make_producer();
  std::optional<Producer> b(f.pipeline->make_producer());
  try {
    (void)f.pipeline->make_producer();
    FAIL() << "a third live producer was made";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
    EXPECT_STREQ(e.what(), "pipeline: a conflating pipeline allows at most max_producers (2) live producers");
  }
  b.reset();
  EXPECT_NO_THROW((void)f.pipeline->make_producer()) << "a destroyed producer frees its place";
}

TEST(PipelineConfigValidation, RefusesConflationOrALatestStoreWithoutKeysAStoreOfTheWrongSizeAndABadAdmissionFill) {
  auto expect_refused = [](const PipelineConfig& config, ErrorCode code, const std::string& message) {
    auto slot = std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1));
    try {
      (void)Pipeline::create(config, slot, std::make_shared<FakeBackend>());
      ADD_FAILURE() << "accepted; expected: " << message;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << message;
      EXPECT_EQ(std::string(e.what()), message);
    }
  };
  PipelineConfig c;
  c.conflation = Conflation::kMerge;
  expect_refused(c, ErrorCode::kInvalidConfig, "pipeline config: conflation needs keys > 0");
  c = {};
  c.latest = std::make_shared<LatestStore>(4, 2);
  expect_refused(c, ErrorCode::kInvalidConfig, "pipeline config: a latest-prediction store needs keys > 0");
  c.keys = 5;
  expect_refused(c, ErrorCode::kInvalidConfig,
                 "pipeline config: the latest-prediction store has 4 keys, the pipeline 5");
  c.keys = 4;
  c.latest = std::make_shared<LatestStore>(4, 3);
  expect_refused(c, ErrorCode::kWidthMismatch,
                 "pipeline: model fake-v1 has 2 outputs, the latest-prediction store holds 3");
  c = {};
  c.admission_fill = 0.0;
  expect_refused(c, ErrorCode::kInvalidConfig, "pipeline config: admission_fill must be in (0, 1]");
  c.admission_fill = 1.5;
  expect_refused(c, ErrorCode::kInvalidConfig, "pipeline config: admission_fill must be in (0, 1]");
  c = {};
  c.keys = (std::size_t{1} << 24) + 1;
  expect_refused(c, ErrorCode::kInvalidConfig, "pipeline config: keys must be <= 16777216");
}

// ---- latest predictions ----

TEST(PipelineLatestStore, HoldsEachKeysNewestOkPredictionWithItsVersionAndTimestamps) {
  PipelineConfig config;
  config.keys = 4;
  config.latest = std::make_shared<LatestStore>(4, 2);
  Fixture f(config);
  Producer producer = f.pipeline->make_producer();
  ResultWaiter waiter;
  const float first[kWidth] = {1, 1, 1, 1}, second[kWidth] = {2, 2, 2, 2};
  const float nan_row[kWidth] = {FakeModel::kNanOn, 0, 0, 0};
  ASSERT_EQ(f.pipeline->submit(producer, 1, first, kNoDeadline, waiter.arm(), 111), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(10s));
  ASSERT_EQ(f.pipeline->submit(producer, 1, second, kNoDeadline, waiter.arm(), 222), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(10s));
  ASSERT_EQ(waiter.status(), ResultStatus::kOk);
  EXPECT_EQ(waiter.key(), 1u);
  const std::int64_t batch_end = waiter.batch_end_ns();
  // Neither an expired request nor a model error touches the store.
  ASSERT_EQ(f.pipeline->submit(producer, 1, first, now_ns() - 1, waiter.arm(), 333), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(10s));
  ASSERT_EQ(waiter.status(), ResultStatus::kExpired);
  ASSERT_EQ(f.pipeline->submit(producer, 1, nan_row, kNoDeadline, waiter.arm(), 444), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(10s));
  ASSERT_EQ(waiter.status(), ResultStatus::kModelError);

  LatestPrediction p;
  float out[2];
  ASSERT_TRUE(config.latest->read(1, p, out));
  EXPECT_EQ(p.updates, 2u);
  EXPECT_EQ(p.model_version, 1u);
  EXPECT_EQ(p.event_ns, 222);
  EXPECT_EQ(p.prediction_ns, batch_end);
  EXPECT_EQ(out[0], 8.0f);
  EXPECT_EQ(out[1], 2.0f);
  ASSERT_TRUE(config.latest->read(0, p, out));
  EXPECT_EQ(p.updates, 0u);
  EXPECT_EQ(f.pipeline->metrics().snapshot().latest_write_failures, 0u);
}

// Workers (two, so two writers race on a key) write while readers read; models with different scales are swapped
// in, so a read mixing two writes would break outputs[0] == 4 * outputs[1] * scale(version) or event_ns's match.
TEST(PipelineLatestStore, ReadsThroughThePipelineAreNeverTornUnderWorkersSwapsAndReaders) {
  constexpr std::size_t kKeys = 3;
  PipelineConfig config;
  config.keys = kKeys;
  config.workers = 2;
  config.max_batch = 4;
  config.queue_capacity = 512;
  config.idle = IdleStrategy::kSpinThenYield;
  config.latest = std::make_shared<LatestStore>(kKeys, 2);
  auto backend = std::make_shared<FakeBackend>();
  auto slot = std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1, 1.0f));
  auto pipeline = Pipeline::create(config, slot, backend);
  const std::uint64_t per_producer = scaled(60000, 3000);
  std::atomic<int> producers_left{2};
  std::atomic<std::uint64_t> reads{0}, torn{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < 2; ++p)
    threads.emplace_back([&, p] {
      Producer producer = pipeline->make_producer();
      auto ignore = [](void*, const Result&) {};
      for (std::uint64_t i = 1; i <= per_producer; ++i) {
        const auto v = static_cast<float>((i * 2 + static_cast<std::uint64_t>(p)) % 100000);
        const float features[kWidth] = {v, v, v, v};
        const auto key = static_cast<InstrumentKey>(i % kKeys);
        while (pipeline->submit(producer, key, features, kNoDeadline, {ignore}, static_cast<std::int64_t>(v) + 1) !=
               SubmitStatus::kAccepted)
          std::this_thread::yield();
        if (p == 0 && i % 5000 == 0)  // version 2 scales by 2, version 3 by 3, ...
          slot->publish(std::make_shared<FakeModel>(kWidth, i / 5000 + 1, static_cast<float>(i / 5000 + 1)));
      }
      producers_left.fetch_sub(1);
    });
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      LatestPrediction p;
      float out[2];
      std::size_t key = static_cast<std::size_t>(r);
      do {  // at least one pass, however late this reader starts
        key = (key + 1) % kKeys;
        if (!config.latest->try_read(key, p, out)) continue;
        reads.fetch_add(1, std::memory_order_relaxed);
        if (p.updates == 0) continue;
        const auto scale = static_cast<float>(p.model_version);
        const bool ok = out[0] == 4.0f * out[1] * scale && p.event_ns == static_cast<std::int64_t>(out[1]) + 1 &&
                        p.prediction_ns > 0;
        if (!ok) torn.fetch_add(1);
      } while (producers_left.load() > 0);
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(wait_until([&] { return pipeline->metrics().snapshot().ok == 2 * per_producer; }));
  pipeline->shutdown();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  const MetricsSnapshot m = pipeline->metrics().snapshot();
  std::uint64_t updates = 0;
  for (std::size_t k = 0; k < kKeys; ++k) {
    LatestPrediction p;
    float out[2];
    ASSERT_TRUE(config.latest->read(k, p, out));
    updates += p.updates;
  }
  EXPECT_EQ(updates, m.ok) << "every Ok keyed prediction was written exactly once";
  EXPECT_EQ(m.ok, 2 * per_producer);
}

// ---- polled results ----

TEST(PipelinePolledResults, ArriveInTheProducersRingInOrderWithTheirOutputsKeyAndEngine) {
  PipelineConfig config;
  config.keys = 2;
  Fixture f(config);
  Producer producer = f.pipeline->make_producer({.result_ring = 16});
  for (std::uint64_t i = 0; i < 10; ++i) {
    const float features[kWidth] = {static_cast<float>(i), 0, 0, 0};
    ASSERT_EQ(
        f.pipeline->submit(producer, static_cast<InstrumentKey>(i % 2), features, kNoDeadline, producer.polled(i)),
        SubmitStatus::kAccepted);
  }
  // Polled as they arrive: a result is counted in the metrics before it is pushed, so `ok` leads the ring.
  std::vector<PolledResult> got;
  std::vector<float> second_output;
  PolledResult r;
  float out[2];
  ASSERT_TRUE(wait_until([&] {
    while (f.pipeline->poll(producer, r, out)) got.push_back(r), second_output.push_back(out[1]);
    return got.size() >= 10;
  }));
  ASSERT_EQ(got.size(), 10u);
  for (std::uint64_t i = 0; i < 10; ++i) {
    r = got[i];
    out[1] = second_output[i];
    EXPECT_EQ(r.tag, i);
    EXPECT_EQ(r.status, ResultStatus::kOk);
    EXPECT_EQ(r.key, i % 2);
    EXPECT_EQ(r.engine, EngineKind::kLibTorch);  // FakeModel reports Model's default engine name
    EXPECT_EQ(r.model_version, 1u);
    ASSERT_EQ(r.output_count, 2u);
    EXPECT_EQ(out[1], static_cast<float>(i));
  }
  EXPECT_FALSE(f.pipeline->poll(producer, r, out));
  EXPECT_EQ(f.pipeline->metrics().snapshot().polled_dropped, 0u);
}

TEST(PipelinePolledResults, AFullRingKeepsTheOldestResultsAndCountsEveryDroppedOneExactly) {
  Fixture f;
  Producer producer = f.pipeline->make_producer({.result_ring = 4});
  Producer callback_only = f.pipeline->make_producer();
  const float features[kWidth] = {1, 2, 3, 4};
  for (std::uint64_t i = 0; i < 20; ++i)
    ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, producer.polled(i)), SubmitStatus::kAccepted);
  // A producer made without a ring: its polled results have nowhere to go and are dropped, counted.
  ASSERT_EQ(f.pipeline->submit(callback_only, features, kNoDeadline, callback_only.polled(99)),
            SubmitStatus::kAccepted);
  // The drops are counted as the results are delivered, after `ok` counted them: wait for both.
  ASSERT_TRUE(wait_until([&] {
    const MetricsSnapshot m = f.pipeline->metrics().snapshot();
    return m.ok == 21 && m.polled_dropped >= 17;
  }));
  EXPECT_EQ(f.pipeline->metrics().snapshot().polled_dropped, 17u);
  PolledResult r;
  float out[2];
  for (std::uint64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(f.pipeline->poll(producer, r, out));
    EXPECT_EQ(r.tag, i) << "the oldest results are kept";
  }
  EXPECT_FALSE(f.pipeline->poll(producer, r, out));
  EXPECT_FALSE(f.pipeline->poll(callback_only, r, out));
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, producer.polled(20)), SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return f.pipeline->poll(producer, r, out); }));
  EXPECT_EQ(r.tag, 20u) << "a drained ring takes results again";
}

// Two producers, two workers (one ring per worker per producer), each producer polling its own results while it
// submits: every result arrives exactly once, none dropped (each keeps in flight no more than a ring holds).
TEST(PipelinePolledResults, TwoProducersPollEveryResultExactlyOnceFromTwoWorkers) {
  PipelineConfig config;
  config.workers = 2;
  config.max_batch = 8;
  config.idle = IdleStrategy::kSpinThenYield;
  Fixture f(config);
  constexpr std::size_t kRing = 64;
  const std::uint64_t n = scaled(50000, 2000);
  std::atomic<std::uint64_t> bad{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < 2; ++p)
    threads.emplace_back([&] {
      Producer producer = f.pipeline->make_producer({.result_ring = kRing});
      std::vector<std::uint8_t> seen(n);
      std::uint64_t submitted = 0, received = 0;
      PolledResult r;
      float out[2];
      while (received < n) {
        if (submitted < n && submitted - received < kRing) {
          const float features[kWidth] = {static_cast<float>(submitted % 4096), 0, 0, 0};
          if (f.pipeline->submit(producer, features, kNoDeadline, producer.polled(submitted)) ==
              SubmitStatus::kAccepted)
            ++submitted;
          continue;
        }
        if (!f.pipeline->poll(producer, r, out)) {
          std::this_thread::yield();
          continue;
        }
        if (r.tag >= n || seen[r.tag]++ != 0 || out[1] != static_cast<float>(r.tag % 4096)) bad.fetch_add(1);
        ++received;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(f.pipeline->metrics().snapshot().polled_dropped, 0u);
}

TEST(PipelinePolledResults, RequestsCancelledByShutdownArriveInTheRingAsCancelled) {
  PipelineConfig config;
  config.max_batch = 1;
  config.warm_up = false;
  Fixture f(config, 200000us);  // the worker is inside a 200 ms forward while shutdown() starts
  Producer producer = f.pipeline->make_producer({.result_ring = 8});
  const float features[kWidth] = {1, 2, 3, 4};
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, producer.polled(0)), SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return f.backend->forwards.load() == 1; }));
  for (std::uint64_t i = 1; i <= 3; ++i)
    ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, producer.polled(i)), SubmitStatus::kAccepted);
  f.pipeline->shutdown();
  PolledResult r;
  float out[2];
  ASSERT_TRUE(f.pipeline->poll(producer, r, out));
  EXPECT_EQ(r.tag, 0u);
  EXPECT_EQ(r.status, ResultStatus::kOk) << "the batch in flight finishes";
  for (std::uint64_t i = 1; i <= 3; ++i) {
    ASSERT_TRUE(f.pipeline->poll(producer, r, out));
    EXPECT_EQ(r.tag, i);
    EXPECT_EQ(r.status, ResultStatus::kCancelled);
  }
  EXPECT_FALSE(f.pipeline->poll(producer, r, out));
}

// ---- deadline-aware admission ----

// The model takes 50 ms per request, so once one request is in flight the next cannot start within 20 ms.
struct AdmissionRun {
  explicit AdmissionRun(bool admission) {
    PipelineConfig config;
    config.max_batch = 1;
    config.queue_capacity = 16;
    config.deadline_admission = admission;
    f = std::make_unique<Fixture>(config, 50000us);
  }
  std::unique_ptr<Fixture> f;
};

TEST(PipelineAdmission, RejectsWhatWouldExpireAndCountsItApartFromQueueFull) {
  AdmissionRun on(true);
  Pipeline& pipeline = *on.f->pipeline;
  EXPECT_GE(pipeline.metrics().snapshot().service_ns_per_row, 50'000'000u) << "warm-up seeds the estimate";
  Producer producer = pipeline.make_producer();
  Gate gate;
  Ledger ledger(8);
  const float features[kWidth] = {1, 2, 3, 4};
  // A generous deadline: the gate itself must not expire while a loaded machine wakes the worker.
  ASSERT_EQ(pipeline.submit(producer, features, deadline_in(30s), {&Gate::on_result, &gate, 0}),
            SubmitStatus::kAccepted)
      << "nothing ahead of it: admitted";
  ASSERT_TRUE(wait_until([&] { return gate.entered.load(std::memory_order_acquire); }));
  // One request in flight x 50 ms > 20 ms: refused; a deadline in the past, too. A generous deadline and none pass.
  EXPECT_EQ(pipeline.submit(producer, features, deadline_in(20ms), {&Ledger::on_result, &ledger, 1}),
            SubmitStatus::kRejected);
  EXPECT_EQ(pipeline.submit(producer, features, now_ns() - 1, {&Ledger::on_result, &ledger, 2}),
            SubmitStatus::kRejected);
  EXPECT_EQ(pipeline.submit(producer, features, deadline_in(30s), {&Ledger::on_result, &ledger, 3}),
            SubmitStatus::kAccepted);
  EXPECT_EQ(pipeline.submit(producer, features, kNoDeadline, {&Ledger::on_result, &ledger, 4}),
            SubmitStatus::kAccepted);
  MetricsSnapshot m = pipeline.metrics().snapshot();
  EXPECT_EQ(m.rejected, 2u);
  EXPECT_EQ(m.rejected_deadline, 2u);
  EXPECT_EQ(m.rejected_full(), 0u);
  gate.release();
  ASSERT_TRUE(wait_until([&] { return ledger.completed.load(std::memory_order_acquire) == 2; }));
  EXPECT_EQ(ledger.status[3].load(), static_cast<int>(ResultStatus::kOk));
  EXPECT_EQ(ledger.status[4].load(), static_cast<int>(ResultStatus::kOk));
  m = pipeline.metrics().snapshot();
  EXPECT_EQ(m.expired, 0u) << "nothing admitted expired";
  EXPECT_NE(to_prometheus(m).find("tickinfer_requests_rejected_deadline_total 2\n"), std::string::npos);

  // The same submits without admission: accepted, and the one refused above expires.
  AdmissionRun off(false);
  Pipeline& plain = *off.f->pipeline;
  Producer other = plain.make_producer();
  Gate gate2;
  Ledger ledger2(8);
  ASSERT_EQ(plain.submit(other, features, kNoDeadline, {&Gate::on_result, &gate2, 0}), SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return gate2.entered.load(std::memory_order_acquire); }));
  const std::int64_t deadline = deadline_in(20ms);
  ASSERT_EQ(plain.submit(other, features, deadline, {&Ledger::on_result, &ledger2, 1}), SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return now_ns() > deadline; }));
  gate2.release();
  ASSERT_TRUE(wait_until([&] { return ledger2.completed.load(std::memory_order_acquire) == 1; }));
  EXPECT_EQ(ledger2.status[1].load(), static_cast<int>(ResultStatus::kExpired));
}

TEST(PipelineAdmission, QueueFullIsCountedAsRejectedButNotAsRejectedByDeadline) {
  PipelineConfig config;
  config.max_batch = 1;
  config.queue_capacity = 2;
  config.deadline_admission = true;
  Fixture f(config);
  Producer producer = f.pipeline->make_producer();
  Gate gate;
  auto ignore = [](void*, const Result&) {};
  const float features[kWidth] = {1, 2, 3, 4};
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {&Gate::on_result, &gate, 0}), SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return gate.entered.load(std::memory_order_acquire); }));
  EXPECT_EQ(f.pipeline->submit(producer, features, deadline_in(30s), {ignore}), SubmitStatus::kAccepted);
  EXPECT_EQ(f.pipeline->submit(producer, features, deadline_in(30s), {ignore}), SubmitStatus::kRejected);
  const MetricsSnapshot m = f.pipeline->metrics().snapshot();
  EXPECT_EQ(m.rejected, 1u);
  EXPECT_EQ(m.rejected_deadline, 0u);
  EXPECT_EQ(m.rejected_full(), 1u);
  gate.release();
}

}  // namespace
}  // namespace tickinfer
