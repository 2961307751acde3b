// tickinfer-bench: bare forward vs. the whole pipeline, in one run, as ratios.
//   1. bare Runner::run() latency per batch size (the floor the pipeline adds to);
//   2. pipeline end-to-end latency with one request in flight (submit -> completion seen by the caller);
//   3. saturated throughput with micro-batching (max_batch) versus max_batch = 1.
// Prints a human summary and writes a JSON report (fields in docs/PERFORMANCE.md).

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tickinfer/clock.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/torchscript.hpp"

namespace ti = tickinfer;
using json = nlohmann::json;

namespace {

struct Options {
  std::string model;
  std::string json_out = "tickinfer-bench.json";
  std::size_t max_batch = 64;
  double latency_seconds = 3.0;
  double throughput_seconds = 3.0;
  std::size_t forward_iterations = 3000;
  int worker_core = -1;
  int producer_core = -1;
  std::string engine = "auto";
};

json percentiles(const ti::HistogramSnapshot& h) {
  return {{"count", h.count},
          {"mean_ns", h.mean()},
          {"p50_ns", h.percentile(0.5)},
          {"p90_ns", h.percentile(0.9)},
          {"p99_ns", h.percentile(0.99)},
          {"p999_ns", h.percentile(0.999)},
          {"max_ns", h.max}};
}

void pin_self(int core) {
  if (core < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

std::vector<float> random_rows(std::size_t rows, std::size_t width, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(rows * width);
  for (auto& x : v) x = dist(rng);
  return v;
}

json bench_forward(const ti::Model& model, const Options& opt,
                   std::vector<std::pair<std::size_t, ti::HistogramSnapshot>>& out) {
  auto backend = ti::make_cpu_backend();
  auto runner = backend->make_runner(opt.max_batch, model.input_width());
  json rows = json::array();
  for (std::size_t batch = 1; batch <= opt.max_batch; batch *= 2) {
    const auto data = random_rows(batch, model.input_width(), 7);
    auto input = runner->input(batch);
    std::copy(data.begin(), data.end(), input.begin());
    for (int i = 0; i < 200; ++i) (void)runner->run(model, batch);  // warm-up
    ti::LatencyHistogram h;
    for (std::size_t i = 0; i < opt.forward_iterations; ++i) {
      const std::int64_t t0 = ti::now_ns();
      (void)runner->run(model, batch);
      h.record_exclusive(ti::now_ns() - t0);
    }
    auto snap = h.snapshot();
    json row = percentiles(snap);
    row["batch"] = batch;
    row["rows_per_s"] = 1e9 * static_cast<double>(batch) / static_cast<double>(snap.percentile(0.5));
    rows.push_back(row);
    out.emplace_back(batch, std::move(snap));
  }
  return rows;
}

struct Flag {
  std::atomic<std::uint32_t> done{0};
  static void on_result(void* self, const ti::Result&) {
    // Release pairs with the caller's acquire spin.
    static_cast<Flag*>(self)->done.store(1, std::memory_order_release);
  }
};

std::unique_ptr<ti::Pipeline> make_pipeline(const std::shared_ptr<ti::ModelSlot>& slot, std::size_t max_batch,
                                            const Options& opt) {
  ti::PipelineConfig config;
  config.max_batch = max_batch;
  config.idle = ti::IdleStrategy::kSpin;
  config.queue_capacity = 8192;
  if (opt.worker_core >= 0) config.pin_cores = {opt.worker_core};
  return ti::Pipeline::create(config, slot, ti::make_cpu_backend());
}

json bench_single_in_flight(const std::shared_ptr<ti::ModelSlot>& slot, const Options& opt,
                            ti::HistogramSnapshot& caller_e2e, ti::MetricsSnapshot& pipeline_metrics) {
  auto pipeline = make_pipeline(slot, opt.max_batch, opt);
  auto producer = pipeline->make_producer();
  const auto data = random_rows(1024, pipeline->feature_width(), 11);
  Flag flag;
  ti::LatencyHistogram h;
  const std::int64_t end = ti::now_ns() + static_cast<std::int64_t>(opt.latency_seconds * 1e9);
  const std::int64_t warm_until = ti::now_ns() + 300'000'000;
  std::size_t i = 0;
  while (ti::now_ns() < end) {
    const std::span<const float> features(data.data() + (i++ % 1024) * pipeline->feature_width(),
                                          pipeline->feature_width());
    flag.done.store(0, std::memory_order_relaxed);
    const std::int64_t t0 = ti::now_ns();
    if (pipeline->submit(producer, features, ti::kNoDeadline, {&Flag::on_result, &flag, 0}) !=
        ti::SubmitStatus::kAccepted)
      continue;
    while (!flag.done.load(std::memory_order_acquire)) {
    }
    const std::int64_t t1 = ti::now_ns();
    if (t0 > warm_until) h.record_exclusive(t1 - t0);
  }
  pipeline->shutdown();
  caller_e2e = h.snapshot();
  pipeline_metrics = pipeline->metrics().snapshot();
  json j = percentiles(caller_e2e);
  j["pipeline_stages"] = {{"queue_wait", percentiles(pipeline_metrics.queue_wait)},
                          {"batch_formation", percentiles(pipeline_metrics.batch_formation)},
                          {"forward", percentiles(pipeline_metrics.forward)},
                          {"end_to_end", percentiles(pipeline_metrics.end_to_end)}};
  return j;
}

json bench_throughput(const std::shared_ptr<ti::ModelSlot>& slot, std::size_t max_batch, const Options& opt) {
  auto pipeline = make_pipeline(slot, max_batch, opt);
  const auto data = random_rows(1024, pipeline->feature_width(), 13);
  std::atomic<std::uint64_t> completed{0};
  auto on_result = [](void* c, const ti::Result&) {
    // Relaxed: a count read after the run; the worker is the only writer.
    auto* counter = static_cast<std::atomic<std::uint64_t>*>(c);
    counter->store(counter->load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  };
  std::uint64_t accepted = 0, rejected = 0;
  auto producer = pipeline->make_producer();
  pin_self(opt.producer_core);
  const std::int64_t start = ti::now_ns();
  const std::int64_t end = start + static_cast<std::int64_t>(opt.throughput_seconds * 1e9);
  std::size_t i = 0;
  while (ti::now_ns() < end) {
    const std::span<const float> features(data.data() + (i++ % 1024) * pipeline->feature_width(),
                                          pipeline->feature_width());
    if (pipeline->submit(producer, features, ti::kNoDeadline, {on_result, &completed, 0}) ==
        ti::SubmitStatus::kAccepted)
      ++accepted;
    else
      ++rejected;
  }
  const std::uint64_t done = completed.load(std::memory_order_relaxed);
  const double seconds = static_cast<double>(ti::now_ns() - start) * 1e-9;
  pipeline->shutdown();
  const auto m = pipeline->metrics().snapshot();
  double mean_batch = 0;
  std::uint64_t batches = 0;
  for (std::size_t n = 1; n < m.batch_sizes.size(); ++n) {
    mean_batch += static_cast<double>(m.batch_sizes[n] * n);
    batches += m.batch_sizes[n];
  }
  return {{"max_batch", max_batch},
          {"seconds", seconds},
          {"completed", done},
          {"inferences_per_s", static_cast<double>(done) / seconds},
          {"accepted", accepted},
          {"rejected_while_saturated", rejected},
          {"mean_batch", batches ? mean_batch / static_cast<double>(batches) : 0.0},
          {"end_to_end", percentiles(m.end_to_end)}};
}

// How often this machine stops a busy thread, independent of tickinfer: gaps between consecutive clock
// reads. On a VM with a noisy host, these stalls alone set the p99/p99.9 of any 10 us operation.
json platform_stalls(double seconds) {
  const std::int64_t end = ti::now_ns() + static_cast<std::int64_t>(seconds * 1e9);
  std::uint64_t over_5us = 0, over_20us = 0, over_100us = 0;
  std::int64_t last = ti::now_ns(), worst = 0;
  for (std::int64_t t = last; t < end; t = ti::now_ns()) {
    const std::int64_t gap = t - last;
    over_5us += gap > 5'000;
    over_20us += gap > 20'000;
    over_100us += gap > 100'000;
    worst = std::max(worst, gap);
    last = t;
  }
  return {{"seconds", seconds},
          {"stalls_over_5us_per_s", static_cast<double>(over_5us) / seconds},
          {"stalls_over_20us_per_s", static_cast<double>(over_20us) / seconds},
          {"stalls_over_100us_per_s", static_cast<double>(over_100us) / seconds},
          {"worst_stall_ns", worst}};
}

std::string us(std::uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(ns) / 1000.0);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"tickinfer-bench: bare forward vs. the tickinfer pipeline (latency percentiles and throughput)"};
  app.add_option("--model", opt.model, "TorchScript archive written by scripts/export_model.py")->required();
  app.add_option("--json", opt.json_out, "where to write the JSON report");
  app.add_option("--max-batch", opt.max_batch, "max_batch for the batched runs")->check(CLI::Range(1, 4096));
  app.add_option("--latency-seconds", opt.latency_seconds, "duration of the one-in-flight latency run");
  app.add_option("--throughput-seconds", opt.throughput_seconds, "duration of each saturated run");
  app.add_option("--forward-iterations", opt.forward_iterations, "bare forward() calls per batch size");
  app.add_option("--worker-core", opt.worker_core, "pin the pipeline worker to this core");
  app.add_option("--producer-core", opt.producer_core, "pin the producer (this thread) to this core");
  app.add_option("--engine", opt.engine, "auto (native when it validates), native or libtorch");
  CLI11_PARSE(app, argc, argv);

  try {
    ti::LoadOptions load;
    load.engine = ti::parse_engine(opt.engine);
    for (std::size_t b = 1; b <= opt.max_batch; ++b) load.warmup_batch_sizes.push_back(b);
    auto model = ti::load_torchscript(opt.model, load);
    auto slot = std::make_shared<ti::ModelSlot>(model);
    std::printf("tickinfer-bench: model %s (%s v%llu), %zu -> %zu, engine %s, %u hardware threads\n", opt.model.c_str(),
                model->metadata().name.c_str(), static_cast<unsigned long long>(model->version()), model->input_width(),
                model->output_width(), model->engine().c_str(), std::thread::hardware_concurrency());

    std::vector<std::pair<std::size_t, ti::HistogramSnapshot>> forward;
    json report;
    report["model"] = {{"path", opt.model},
                       {"name", model->metadata().name},
                       {"version", model->version()},
                       {"inputs", model->input_width()},
                       {"outputs", model->output_width()},
                       {"engine", model->engine()},
                       {"engine_note", model->engine_note()}};
    report["forward"] = bench_forward(*model, opt, forward);
    std::printf("\nbare forward (Runner::run, no pipeline), us:\n  %6s %9s %9s %9s %9s %12s\n", "batch", "p50", "p99",
                "p99.9", "max", "rows/s");
    for (const auto& [batch, h] : forward)
      std::printf("  %6zu %9s %9s %9s %9s %12.0f\n", batch, us(h.percentile(0.5)).c_str(),
                  us(h.percentile(0.99)).c_str(), us(h.percentile(0.999)).c_str(), us(h.max).c_str(),
                  1e9 * static_cast<double>(batch) / static_cast<double>(h.percentile(0.5)));

    ti::HistogramSnapshot e2e;
    ti::MetricsSnapshot stages;
    report["single_in_flight"] = bench_single_in_flight(slot, opt, e2e, stages);
    const std::uint64_t bare_p50 = forward.front().second.percentile(0.5);
    const double overhead_ns = static_cast<double>(e2e.percentile(0.5)) - static_cast<double>(bare_p50);
    std::printf("\npipeline, one request in flight (submit -> completion seen by caller), us:\n");
    std::printf("  p50 %s  p99 %s  p99.9 %s  max %s  (n=%llu)\n", us(e2e.percentile(0.5)).c_str(),
                us(e2e.percentile(0.99)).c_str(), us(e2e.percentile(0.999)).c_str(), us(e2e.max).c_str(),
                static_cast<unsigned long long>(e2e.count));
    std::printf("  stages p50: queue wait %s, batch formation %s, forward %s\n",
                us(stages.queue_wait.percentile(0.5)).c_str(), us(stages.batch_formation.percentile(0.5)).c_str(),
                us(stages.forward.percentile(0.5)).c_str());
    std::printf("  overhead over bare B=1 forward at p50: %.2f us\n", overhead_ns / 1000.0);

    const json batched = bench_throughput(slot, opt.max_batch, opt);
    const json unbatched = bench_throughput(slot, 1, opt);
    const double ratio = batched["inferences_per_s"].get<double>() / unbatched["inferences_per_s"].get<double>();
    report["throughput"] = {{"batched", batched}, {"unbatched", unbatched}, {"ratio", ratio}};
    std::printf(
        "\nsaturated throughput:\n  max_batch=%zu: %.0f inferences/s (mean batch %.1f)\n  max_batch=1: %.0f "
        "inferences/s\n  ratio: %.1fx\n",
        opt.max_batch, batched["inferences_per_s"].get<double>(), batched["mean_batch"].get<double>(),
        unbatched["inferences_per_s"].get<double>(), ratio);

    const double tail_ratio = static_cast<double>(e2e.percentile(0.999)) / static_cast<double>(e2e.percentile(0.5));
    const double bare_tail_ratio = static_cast<double>(forward.front().second.percentile(0.999)) /
                                   static_cast<double>(forward.front().second.percentile(0.5));
    pin_self(opt.worker_core);
    report["platform_stalls"] = platform_stalls(1.0);
    std::printf(
        "\nplatform: a busy loop on the worker core is stalled > 20 us %.0f times/s (> 100 us: %.0f/s); "
        "bare B=1 forward p99.9/p50 = %.2f\n",
        report["platform_stalls"]["stalls_over_20us_per_s"].get<double>(),
        report["platform_stalls"]["stalls_over_100us_per_s"].get<double>(), bare_tail_ratio);
    report["targets"] = {
        {"overhead_p50_ns", overhead_ns},  {"overhead_p50_le_3us", overhead_ns <= 3000.0},
        {"e2e_p999_over_p50", tail_ratio}, {"e2e_p999_le_3x_p50", tail_ratio <= 3.0},
        {"throughput_ratio", ratio},       {"throughput_ratio_ge_15x", ratio >= 15.0},
    };
    std::printf("\ntargets: overhead p50 %.2f us (<= 3: %s), p99.9/p50 %.2f (<= 3: %s), batching %.1fx (>= 15: %s)\n",
                overhead_ns / 1000.0, overhead_ns <= 3000.0 ? "met" : "MISSED", tail_ratio,
                tail_ratio <= 3.0 ? "met" : "MISSED", ratio, ratio >= 15.0 ? "met" : "MISSED");
    std::ofstream(opt.json_out) << report.dump(2) << '\n';
    std::printf("report: %s\n", opt.json_out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tickinfer-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
