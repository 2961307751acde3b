#pragma once
// Helpers shared by the component benchmarks: per-operation percentiles and the one-in-flight round trip.

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <span>

#include "tickinfer/clock.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/pipeline.hpp"

namespace tickinfer::bench {

/// Percentiles from a histogram filled inside the loop (Google Benchmark only aggregates repetitions).
inline void add_percentiles(benchmark::State& state, const LatencyHistogram& h) {
  const auto s = h.snapshot();
  state.counters["p50_ns"] = static_cast<double>(s.percentile(0.5));
  state.counters["p99_ns"] = static_cast<double>(s.percentile(0.99));
  state.counters["p999_ns"] = static_cast<double>(s.percentile(0.999));
  state.counters["max_ns"] = static_cast<double>(s.max);
}

/// One request in flight per iteration: submit -> worker -> forward -> completion, seen by the caller.
inline void measure_round_trips(benchmark::State& state, Pipeline& pipeline, std::span<const float> features) {
  struct Done {
    std::atomic<std::uint32_t> flag{0};
    static void on_result(void* self, const Result&) {
      static_cast<Done*>(self)->flag.store(1, std::memory_order_release);  // pairs with the spin below
    }
  } done;
  auto producer = pipeline.make_producer();
  LatencyHistogram h;
  for (auto _ : state) {
    done.flag.store(0, std::memory_order_relaxed);  // no request in flight: nothing to order
    const std::int64_t t0 = now_ns();
    if (pipeline.submit(producer, features, kNoDeadline, {&Done::on_result, &done, 0}) != SubmitStatus::kAccepted) {
      state.SkipWithError("rejected");
      break;
    }
    while (!done.flag.load(std::memory_order_acquire)) {
    }
    h.record_exclusive(now_ns() - t0);
  }
  add_percentiles(state, h);
}

}  // namespace tickinfer::bench
