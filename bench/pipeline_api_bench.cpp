// The trading-engine API's costs (docs/TRADING_API.md): ns per submit plain, keyed, with conflation (a new key, a
// supersede, a merge) and with deadline admission; a latest-store read; and the flood: one producer submitting as
// fast as it can with a 1 ms deadline into the default 64K queue, with and without deadline admission (share of
// accepted requests that complete Ok).

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "support/fake_model.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/latest_store.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/torchscript.hpp"

#include "reference_model.hpp"

namespace ti = tickinfer;

namespace {

constexpr std::size_t kWidth = 8;
constexpr std::size_t kRound = 256;  // submits timed per iteration

// Holds the worker inside a completion so the timed submits meet an idle queue and never a racing worker: each
// conflation path is then taken exactly as the mode says.
struct Gate {
  std::atomic<bool> entered{false}, open{false};
  static void on_result(void* self, const ti::Result&) {
    auto* g = static_cast<Gate*>(self);
    g->entered.store(true, std::memory_order_release);                           // pairs with the spin in arm()
    while (!g->open.load(std::memory_order_acquire)) std::this_thread::yield();  // pairs with release()
  }
};

enum Mode : int { kPlain, kKeyed, kConflateNewKeys, kSupersede, kMerge, kAdmission };
const char* const kModeNames[] = {"plain", "keyed", "conflate_new_keys", "supersede", "merge", "admission"};

// ns per accepted submit. new_keys: every submit of a round has its own key (conflation's empty-word path: exchange
// + token enqueue); supersede / merge: 16 keys, so all but 16 submits of a round replace a queued request.
void BM_Submit(benchmark::State& state) {
  const auto mode = static_cast<Mode>(state.range(0));
  ti::PipelineConfig config;
  config.keys = kRound;
  config.idle = ti::IdleStrategy::kSpin;
  if (mode == kConflateNewKeys || mode == kSupersede) config.conflation = ti::Conflation::kSupersede;
  if (mode == kMerge) config.conflation = ti::Conflation::kMerge;
  config.deadline_admission = mode == kAdmission;
  auto slot = std::make_shared<ti::ModelSlot>(std::make_shared<ti::testing::FakeModel>(kWidth, 1));
  auto pipeline = ti::Pipeline::create(config, slot, std::make_shared<ti::testing::FakeBackend>());
  auto producer = pipeline->make_producer();
  const std::vector<float> features(kWidth, 0.5f);
  std::atomic<std::uint64_t> done{0};
  auto count = [](void* c, const ti::Result&) {
    static_cast<std::atomic<std::uint64_t>*>(c)->fetch_add(1, std::memory_order_release);  // pairs with the spin
  };
  const std::size_t keys = mode == kSupersede || mode == kMerge ? 16 : kRound;
  const std::int64_t deadline = mode == kAdmission ? ti::deadline_in(std::chrono::hours(1)) : ti::kNoDeadline;
  std::int64_t total_ns = 0;
  std::uint64_t submits = 0, rejected = 0;
  for (auto _ : state) {
    Gate gate;
    if (pipeline->submit(producer, features, ti::kNoDeadline, {&Gate::on_result, &gate, 0}) !=
        ti::SubmitStatus::kAccepted) {
      state.SkipWithError("gate rejected");
      break;
    }
    while (!gate.entered.load(std::memory_order_acquire)) std::this_thread::yield();
    const std::uint64_t before = done.load(std::memory_order_acquire);
    const std::int64_t t0 = ti::now_ns();
    for (std::size_t i = 0; i < kRound; ++i) {
      const auto key = static_cast<ti::InstrumentKey>(i % keys);
      const ti::SubmitStatus s = mode == kPlain
                                     ? pipeline->submit(producer, features, deadline, {count, &done, i})
                                     : pipeline->submit(producer, key, features, deadline, {count, &done, i});
      rejected += s != ti::SubmitStatus::kAccepted;
    }
    const std::int64_t elapsed = ti::now_ns() - t0;
    total_ns += elapsed;
    submits += kRound;
    state.SetIterationTime(static_cast<double>(elapsed) * 1e-9);
    gate.open.store(true, std::memory_order_release);
    // Drain (untimed): merged requests never complete; the rest do.
    const std::uint64_t expect = mode == kMerge ? keys : kRound;
    while (done.load(std::memory_order_acquire) - before < expect) std::this_thread::yield();
  }
  state.SetLabel(kModeNames[mode]);
  state.counters["ns_per_submit"] = submits ? static_cast<double>(total_ns) / static_cast<double>(submits) : 0.0;
  state.counters["rejected"] = static_cast<double>(rejected);
}
BENCHMARK(BM_Submit)->ArgName("mode")->DenseRange(kPlain, kAdmission)->UseManualTime();

// One latest-store read (header + outputs) with no writer, and with a writer thread hammering the same key.
void BM_LatestStoreRead(benchmark::State& state) {
  const auto width = static_cast<std::size_t>(state.range(0));
  const bool contended = state.range(1) != 0;
  ti::LatestStore store(1024, width);
  std::vector<float> values(width, 1.0f), out(width);
  for (std::size_t k = 0; k < 1024; ++k) store.write(k, values, 1, 1, 1);
  std::atomic<bool> stop{false};
  std::thread writer;
  if (contended)
    writer = std::thread([&] {
      std::vector<float> v(width);
      std::uint64_t i = 0;
      while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a stop flag, the join orders the rest
        v[0] = static_cast<float>(++i);
        store.write(7, v, i, static_cast<std::int64_t>(i), static_cast<std::int64_t>(i));
      }
    });
  ti::LatestPrediction p;
  for (auto _ : state) {
    store.read(7, p, out);
    benchmark::DoNotOptimize(p);
    benchmark::DoNotOptimize(out.data());
  }
  stop.store(true, std::memory_order_relaxed);
  if (writer.joinable()) writer.join();
}
BENCHMARK(BM_LatestStoreRead)->ArgNames({"width", "contended"})->ArgsProduct({{1, 4, 16}, {0, 1}});

std::shared_ptr<const ti::Model> mlp() { return ti::bench::reference_mlp(); }

// The flood: one producer submits as fast as it can (no pacing) for 1 s, each request with a 1 ms deadline, into a
// default pipeline (64K queue, one worker, the bundled MLP). Without admission the queue fills with requests that
// wait longer than 1 ms and expire; with it, submit() refuses what would expire. ok_share: Ok among accepted.
void BM_Flood(benchmark::State& state) {
  const bool admission = state.range(0) != 0;
  const auto idle = static_cast<ti::IdleStrategy>(state.range(1));
  struct Tally {
    std::atomic<std::uint64_t> by_status[ti::kResultStatuses] = {};
    static void on_result(void* self, const ti::Result& r) {
      // Relaxed: counts read after shutdown() (which joins the workers).
      static_cast<Tally*>(self)->by_status[static_cast<int>(r.status)].fetch_add(1, std::memory_order_relaxed);
    }
  };
  for (auto _ : state) {
    ti::PipelineConfig config;  // the defaults: queue_capacity 65536, max_batch 64, one worker, kBlock
    config.deadline_admission = admission;
    config.idle = idle;
    auto pipeline = ti::Pipeline::create(config, std::make_shared<ti::ModelSlot>(mlp()), ti::make_cpu_backend());
    auto producer = pipeline->make_producer();
    const std::vector<float> features(pipeline->feature_width(), 0.25f);
    Tally tally;
    const std::int64_t end = ti::now_ns() + 1'000'000'000;
    std::uint64_t submits = 0;
    while (ti::now_ns() < end) {
      for (int i = 0; i < 64; ++i, ++submits)
        (void)pipeline->submit(producer, features, ti::deadline_in(std::chrono::milliseconds(1)),
                               {&Tally::on_result, &tally, submits});
    }
    pipeline->shutdown();
    const ti::MetricsSnapshot m = pipeline->metrics().snapshot();
    const double accepted = static_cast<double>(m.accepted);
    state.counters["submits"] = static_cast<double>(submits);
    state.counters["accepted"] = accepted;
    state.counters["rejected_full"] = static_cast<double>(m.rejected_full());
    state.counters["rejected_deadline"] = static_cast<double>(m.rejected_deadline);
    state.counters["ok"] = static_cast<double>(m.ok);
    state.counters["expired"] = static_cast<double>(m.expired);
    state.counters["ok_share_pct"] = accepted > 0 ? 100.0 * static_cast<double>(m.ok) / accepted : 0.0;
    state.counters["ok_per_s"] = static_cast<double>(m.ok);
    state.counters["service_ns"] = static_cast<double>(m.service_ns_per_row);
    state.counters["e2e_p99_us"] = static_cast<double>(m.end_to_end.percentile(0.99)) * 1e-3;
    state.counters["qwait_p50_us"] = static_cast<double>(m.queue_wait.percentile(0.5)) * 1e-3;
    state.counters["qwait_p99_us"] = static_cast<double>(m.queue_wait.percentile(0.99)) * 1e-3;
    state.counters["mean_batch"] =
        m.batches ? static_cast<double>(m.ok + m.model_errors) / static_cast<double>(m.batches) : 0.0;
  }
}
// idle: 0 kSpin, 2 kBlock (the default).
BENCHMARK(BM_Flood)
    ->ArgNames({"admission", "idle"})
    ->ArgsProduct({{0, 1}, {2, 0}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
BENCHMARK_MAIN();
