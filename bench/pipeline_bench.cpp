// Component benchmarks: histogram recording, bare forward per batch size, submit cost, pipeline round trip.
// Per-operation percentiles come from a LatencyHistogram filled inside the loop (Google Benchmark's own
// statistics only aggregate repetitions).

#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <random>
#include <vector>

#include "bench_support.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/torchscript.hpp"

#include "reference_model.hpp"

namespace ti = tickinfer;

namespace {

std::shared_ptr<const ti::Model> mlp() { return ti::bench::reference_mlp(); }

void BM_HistogramRecordExclusive(benchmark::State& state) {
  ti::LatencyHistogram h;
  std::int64_t v = 1000;
  for (auto _ : state) {
    h.record_exclusive(v);
    v = (v * 7 + 13) & 0xfffff;
  }
  state.counters["records_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_HistogramRecordExclusive);

void BM_HistogramRecordShared(benchmark::State& state) {
  static ti::LatencyHistogram h;
  std::int64_t v = 1000 + state.thread_index();
  for (auto _ : state) {
    h.record(v);
    v = (v * 7 + 13) & 0xfffff;
  }
}
BENCHMARK(BM_HistogramRecordShared)->Threads(1)->Threads(2)->UseRealTime();

void BM_BareForward(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  auto model = mlp();
  auto runner = ti::make_cpu_backend()->make_runner(64, model->input_width());
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  for (auto& x : runner->input(batch)) x = dist(rng);
  ti::LatencyHistogram h;
  for (auto _ : state) {
    const std::int64_t t0 = ti::now_ns();
    benchmark::DoNotOptimize(runner->run(*model, batch).data());
    h.record_exclusive(ti::now_ns() - t0);
  }
  state.counters["rows_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
  ti::bench::add_percentiles(state, h);
}
BENCHMARK(BM_BareForward)->ArgName("batch")->RangeMultiplier(2)->Range(1, 64)->UseRealTime();

// One request in flight: submit -> worker -> forward -> completion, seen by the caller.
void BM_PipelineRoundTrip(benchmark::State& state) {
  auto slot = std::make_shared<ti::ModelSlot>(mlp());
  ti::PipelineConfig config;
  config.idle = ti::IdleStrategy::kSpin;
  auto pipeline = ti::Pipeline::create(config, slot, ti::make_cpu_backend());
  const std::vector<float> features(pipeline->feature_width(), 0.25f);
  ti::bench::measure_round_trips(state, *pipeline, features);
}
BENCHMARK(BM_PipelineRoundTrip)->UseRealTime();

// Producer-side cost of submit() alone, with a worker draining (requests accepted per second).
void BM_Submit(benchmark::State& state) {
  auto slot = std::make_shared<ti::ModelSlot>(mlp());
  ti::PipelineConfig config;
  config.idle = ti::IdleStrategy::kSpin;
  config.queue_capacity = 1 << 16;
  auto pipeline = ti::Pipeline::create(config, slot, ti::make_cpu_backend());
  auto producer = pipeline->make_producer();
  std::vector<float> features(pipeline->feature_width(), 0.25f);
  auto ignore = [](void*, const ti::Result&) {};
  std::uint64_t rejected = 0;
  for (auto _ : state) {
    if (pipeline->submit(producer, features, ti::kNoDeadline, {ignore}) != ti::SubmitStatus::kAccepted) ++rejected;
  }
  state.counters["rejected"] = static_cast<double>(rejected);
  state.counters["submits_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Submit)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
