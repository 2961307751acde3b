// CUDA runner benchmarks (docs/CUDA.md): B=1 end-to-end latency with and without CUDA graphs (bare runner and
// through the pipeline), throughput at max batch (synchronous run() vs. submit/collect with two batches in
// flight), and the share of host-to-device copy time hidden behind the previous batch's forward.
// Percentiles come from a LatencyHistogram filled inside the loop. JSON: --benchmark_out=FILE
// --benchmark_out_format=json. Skips (exit 0) on a machine without a CUDA device.

#include <benchmark/benchmark.h>
#include <torch/cuda.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "cuda/cuda_backend.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/torchscript.hpp"

namespace ti = tickinfer;

namespace {

constexpr std::size_t kMaxBatch = 256;

// 0: mlp (32 -> 64 -> 64 -> 1), 1: deep (three LayerNorm'd 256-wide blocks, 4 outputs).
std::shared_ptr<const ti::Model> gpu_model(std::int64_t which) {
  static std::shared_ptr<const ti::Model> models[2];
  auto& model = models[which != 0];
  if (!model) {
    ti::LoadOptions options;
    options.device = "cuda:0";
    model = ti::load_torchscript(std::string(TICKINFER_MODEL_DIR) + (which != 0 ? "/deep.pt" : "/mlp.pt"), options);
  }
  return model;
}

std::shared_ptr<const ti::CudaBackend> cuda_backend(bool graphs, bool timings = false) {
  ti::CudaBackendOptions options;
  options.cuda_graphs = graphs;
  options.record_timings = timings;
  return ti::make_cuda_backend(options);
}

// New values every batch, so no stage is fed the same bytes twice; cheap next to any GPU round trip.
void stage(std::span<float> input, std::uint32_t& seed) {
  for (auto& x : input) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) * (1.0f / 16777216.0f) - 0.5f;
  }
}

ti::CudaRunner& as_cuda(ti::Runner& runner) { return dynamic_cast<ti::CudaRunner&>(runner); }

// Bare runner, one row: stage into pinned memory -> H2D -> forward -> D2H -> outputs readable on the host.
void BM_CudaRunnerB1(benchmark::State& state) {
  const bool graphs = state.range(0) != 0;
  const auto model = gpu_model(0);
  auto runner = cuda_backend(graphs)->make_runner(kMaxBatch, model->input_width());
  std::uint32_t seed = 1;
  for (int i = 0; i < 8; ++i) {  // both ring slots: warm-up and (with graphs) capture
    stage(runner->input(1), seed);
    (void)runner->run(*model, 1);
  }
  ti::LatencyHistogram h;
  float sink = 0;
  for (auto _ : state) {
    const std::int64_t t0 = ti::now_ns();
    stage(runner->input(1), seed);
    sink += runner->run(*model, 1)[0];
    h.record_exclusive(ti::now_ns() - t0);
  }
  benchmark::DoNotOptimize(sink);
  ti::bench::add_percentiles(state, h);
  state.SetLabel(graphs ? "graphs" : "eager");
}
BENCHMARK(BM_CudaRunnerB1)->ArgName("graphs")->Arg(0)->Arg(1)->UseRealTime();

// One request in flight through the pipeline over the CUDA backend: submit -> completion seen by the caller.
void BM_CudaPipelineB1(benchmark::State& state) {
  const bool graphs = state.range(0) != 0;
  ti::PipelineConfig config;
  config.max_batch = kMaxBatch;
  config.allowed_batch_sizes = {1, 2, 4, 8, 16, 32, 64, 128, 256};  // 9 graphs per ring slot, not 256
  config.idle = ti::IdleStrategy::kSpin;
  config.queue_capacity = 1024;
  auto pipeline = ti::Pipeline::create(config, std::make_shared<ti::ModelSlot>(gpu_model(0)), cuda_backend(graphs));
  const std::vector<float> features(pipeline->feature_width(), 0.25f);
  ti::bench::measure_round_trips(state, *pipeline, features);
  const auto m = pipeline->metrics().snapshot();
  state.counters["failed_batches"] = static_cast<double>(m.failed_batches);
  state.SetLabel(graphs ? "graphs" : "eager");
}
BENCHMARK(BM_CudaPipelineB1)->ArgName("graphs")->Arg(0)->Arg(1)->UseRealTime();

// Rows per second at max batch: synchronous run() per batch, or submit/collect keeping two batches in flight.
void BM_CudaThroughputMaxBatch(benchmark::State& state) {
  const auto model = gpu_model(state.range(0));
  const bool graphs = state.range(1) != 0, pipelined = state.range(2) != 0;
  auto runner = cuda_backend(graphs)->make_runner(kMaxBatch, model->input_width());
  auto& cuda = as_cuda(*runner);
  std::uint32_t seed = 7;
  for (int i = 0; i < 8; ++i) {
    stage(runner->input(kMaxBatch), seed);
    (void)runner->run(*model, kMaxBatch);
  }
  float sink = 0;
  if (!pipelined) {
    for (auto _ : state) {
      stage(runner->input(kMaxBatch), seed);
      sink += runner->run(*model, kMaxBatch)[0];
    }
  } else {
    std::optional<ti::CudaRunner::Ticket> pending;
    for (auto _ : state) {
      stage(cuda.input(kMaxBatch), seed);  // overlaps the batch in flight
      const auto ticket = cuda.submit(*model, kMaxBatch);
      if (pending) sink += cuda.collect(*pending)[0];
      pending = ticket;
    }
    if (pending) sink += cuda.collect(*pending)[0];
  }
  benchmark::DoNotOptimize(sink);
  state.counters["rows_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kMaxBatch), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(state.range(0) != 0 ? "deep" : "mlp") + (graphs ? " graphs" : " eager") +
                 (pipelined ? " submit/collect" : " run()"));
}
BENCHMARK(BM_CudaThroughputMaxBatch)
    ->ArgNames({"model", "graphs", "pipelined"})
    ->ArgsProduct({{0, 1}, {0, 1}, {0, 1}})
    ->UseRealTime();

// Device timestamps (CUDA timing events) of each batch: how much of batch n+1's host-to-device copy ran while
// batch n's forward did. 1.0: every copy hidden; 0: none.
void BM_CudaCopyOverlap(benchmark::State& state) {
  const auto model = gpu_model(state.range(0));
  const bool graphs = state.range(1) != 0;
  auto runner = cuda_backend(graphs, /*timings=*/true)->make_runner(kMaxBatch, model->input_width());
  auto& cuda = as_cuda(*runner);
  std::uint32_t seed = 11;
  for (int i = 0; i < 8; ++i) {
    stage(runner->input(kMaxBatch), seed);
    (void)runner->run(*model, kMaxBatch);
  }
  double copy_us = 0, hidden_us = 0, forward_us = 0, d2h_us = 0;
  std::uint64_t measured = 0;
  std::optional<ti::CudaBatchTiming> previous;
  std::optional<ti::CudaRunner::Ticket> pending;
  auto account = [&](const ti::CudaBatchTiming& t) {
    if (previous) {
      const double overlap =
          std::min(t.h2d_end_us, previous->forward_end_us) - std::max(t.h2d_start_us, previous->forward_start_us);
      hidden_us += std::max(0.0, overlap);
      copy_us += t.h2d_end_us - t.h2d_start_us;
      forward_us += t.forward_end_us - t.forward_start_us;
      d2h_us += t.d2h_end_us - t.forward_end_us;
      ++measured;
    }
    previous = t;
  };
  for (auto _ : state) {
    stage(cuda.input(kMaxBatch), seed);
    const auto ticket = cuda.submit(*model, kMaxBatch);
    if (pending) {
      (void)cuda.collect(*pending);
      account(cuda.last_timing());
    }
    pending = ticket;
  }
  if (pending) {
    (void)cuda.collect(*pending);
    account(cuda.last_timing());
  }
  if (measured > 0) {
    const double n = static_cast<double>(measured);
    state.counters["h2d_us"] = copy_us / n;
    state.counters["forward_us"] = forward_us / n;
    state.counters["d2h_us"] = d2h_us / n;
    state.counters["hidden_copy_share"] = copy_us > 0 ? hidden_us / copy_us : 0.0;
  }
  state.SetLabel(std::string(state.range(0) != 0 ? "deep" : "mlp") + (graphs ? " graphs" : " eager"));
}
BENCHMARK(BM_CudaCopyOverlap)->ArgNames({"model", "graphs"})->ArgsProduct({{0, 1}, {0, 1}})->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!torch::cuda::is_available()) {
    std::printf("cuda_bench: no CUDA device on this machine; skipped\n");
    return 0;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
