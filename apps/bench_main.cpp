// tickinfer-bench: each engine on the same model in one run, bare forward vs. the whole pipeline vs. direct
// mode, as ratios:
//   1. bare Runner::run() latency per batch size, the engines interleaved in blocks so both see the same noise;
//   2. direct mode (Predictor::predict on this thread, native engine only);
//   3. pipeline end-to-end latency with one request in flight (submit -> completion seen by the caller);
//   4. saturated throughput with micro-batching (max_batch) versus max_batch = 1;
//   5. what a spinning neighbour on the producer core does to the worker core's forward (the pipeline's
//      forward stage vs. the bare forward), and how often the platform stalls a busy thread.
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
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/onnx.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/predictor.hpp"
#include "tickinfer/torchscript.hpp"

namespace ti = tickinfer;
using json = nlohmann::json;

namespace {

struct Options {
  std::string model;
  std::string json_out = "tickinfer-bench.json";
  std::string engines = "native,libtorch";
  std::size_t max_batch = 64;
  double latency_seconds = 3.0;
  double throughput_seconds = 3.0;
  double direct_seconds = 1.0;
  std::size_t forward_iterations = 3000;
  int worker_core = -1;
  int producer_core = -1;
};

inline void spin_hint() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

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

void unpin_self() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned c = 0; c < std::max(1u, std::thread::hardware_concurrency()); ++c) CPU_SET(c, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

std::vector<float> random_rows(std::size_t rows, std::size_t width, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(rows * width);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::string us(std::uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(ns) / 1000.0);
  return buf;
}

std::string us(double ns) { return us(static_cast<std::uint64_t>(ns < 0 ? 0 : ns)); }

// One engine's model and everything measured on it.
struct EngineRun {
  std::string name;  // as asked: "native" or "libtorch"
  std::shared_ptr<const ti::Model> model;
  std::shared_ptr<ti::ModelSlot> slot;
  std::vector<std::pair<std::size_t, ti::HistogramSnapshot>> forward;
  ti::HistogramSnapshot e2e;
  ti::MetricsSnapshot stages;
  json report;

  std::uint64_t forward_p50(std::size_t batch) const {
    for (const auto& [b, h] : forward)
      if (b == batch) return h.percentile(0.5);
    return 0;
  }
  double rows_per_s(std::size_t batch) const {
    const std::uint64_t p50 = forward_p50(batch);
    return p50 ? 1e9 * static_cast<double>(batch) / static_cast<double>(p50) : 0.0;
  }
};

std::shared_ptr<const ti::Model> load(const Options& opt, ti::Engine engine) {
  ti::LoadOptions load;
  load.engine = engine;
  for (std::size_t b = 1; b <= opt.max_batch; ++b) load.warmup_batch_sizes.push_back(b);
  const bool onnx = opt.model.size() > 5 && opt.model.ends_with(".onnx");
  if (onnx) {
    if (engine == ti::Engine::kLibTorch)
      throw ti::Error(ti::ErrorCode::kUnsupported, opt.model + ": an ONNX model runs on the native engine only");
    return ti::load_onnx(opt.model, load);
  }
  return ti::load_torchscript(opt.model, load);
}

// Bare Runner::run() of every engine at every power-of-two batch size. The engines take turns in blocks of
// 250 calls, so a burst of host noise lands on all of them alike and their ratio stays meaningful.
void bench_forward(std::vector<EngineRun>& runs, const Options& opt) {
  auto backend = ti::make_cpu_backend();
  const std::size_t width = runs.front().model->input_width();
  std::vector<std::unique_ptr<ti::Runner>> runners;
  for (std::size_t e = 0; e < runs.size(); ++e) runners.push_back(backend->make_runner(opt.max_batch, width));
  constexpr std::size_t kBlock = 250;
  for (std::size_t batch = 1; batch <= opt.max_batch; batch *= 2) {
    const auto data = random_rows(batch, width, 7);
    std::vector<ti::LatencyHistogram> hist(runs.size());
    for (std::size_t e = 0; e < runs.size(); ++e) {
      auto input = runners[e]->input(batch);
      std::copy(data.begin(), data.end(), input.begin());
      for (int i = 0; i < 200; ++i) (void)runners[e]->run(*runs[e].model, batch);  // warm-up
    }
    for (std::size_t done = 0; done < opt.forward_iterations; done += kBlock) {
      for (std::size_t e = 0; e < runs.size(); ++e) {
        for (std::size_t i = 0; i < std::min(kBlock, opt.forward_iterations - done); ++i) {
          const std::int64_t t0 = ti::now_ns();
          (void)runners[e]->run(*runs[e].model, batch);
          hist[e].record_exclusive(ti::now_ns() - t0);
        }
      }
    }
    for (std::size_t e = 0; e < runs.size(); ++e) runs[e].forward.emplace_back(batch, hist[e].snapshot());
  }
  for (auto& run : runs) {
    json rows = json::array();
    for (const auto& [batch, snap] : run.forward) {
      json row = percentiles(snap);
      row["batch"] = batch;
      row["rows_per_s"] = run.rows_per_s(batch);
      rows.push_back(row);
    }
    run.report["forward"] = rows;
  }
}

// Direct mode: this thread calls Predictor::predict() on each row (the feature copy into the engine included).
std::optional<ti::HistogramSnapshot> bench_direct(const EngineRun& run, const Options& opt) {
  ti::Predictor predictor(run.slot);
  const std::size_t in = run.model->input_width();
  const auto data = random_rows(1024, in, 17);
  std::vector<float> out(run.model->output_width());
  auto row = [&](std::size_t i) { return std::span<const float>(data.data() + (i % 1024) * in, in); };
  if (predictor.predict(row(0), out) == ti::PredictStatus::kNotNative) return std::nullopt;
  for (std::size_t i = 0; i < 20000; ++i) (void)predictor.predict(row(i), out);  // warm-up
  ti::LatencyHistogram h;
  const std::int64_t end = ti::now_ns() + static_cast<std::int64_t>(opt.direct_seconds * 1e9);
  for (std::size_t i = 0; ti::now_ns() < end; ++i) {
    const std::int64_t t0 = ti::now_ns();
    const ti::PredictStatus status = predictor.predict(row(i), out);
    const std::int64_t t1 = ti::now_ns();
    if (status != ti::PredictStatus::kOk)
      throw std::runtime_error(std::string("direct mode: predict returned ").append(ti::to_string(status)));
    h.record_exclusive(t1 - t0);
  }
  return h.snapshot();
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

void bench_single_in_flight(EngineRun& run, const Options& opt) {
  auto pipeline = make_pipeline(run.slot, opt.max_batch, opt);
  auto producer = pipeline->make_producer();
  pin_self(opt.producer_core);
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
    while (!flag.done.load(std::memory_order_acquire)) spin_hint();
    const std::int64_t t1 = ti::now_ns();
    if (t0 > warm_until) h.record_exclusive(t1 - t0);
  }
  pipeline->shutdown();
  run.e2e = h.snapshot();
  run.stages = pipeline->metrics().snapshot();
  json j = percentiles(run.e2e);
  j["pipeline_stages"] = {{"queue_wait", percentiles(run.stages.queue_wait)},
                          {"batch_formation", percentiles(run.stages.batch_formation)},
                          {"forward", percentiles(run.stages.forward)},
                          {"end_to_end", percentiles(run.stages.end_to_end)}};
  run.report["single_in_flight"] = j;
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

// The pipeline's forward stage runs on the worker core while the producer core busy-waits for the result; the
// bare forward runs with that core idle. This measures the B=1 forward on the worker core with the producer
// core idle, spinning on a plain load, and spinning with the pause hint, in turns: on a host whose two vCPUs
// are hyper-threads of one physical core, a spinning neighbour takes the core's execution ports.
json bench_neighbour(const EngineRun& run, const Options& opt, double& plain_ratio) {
  const int worker = opt.worker_core >= 0 ? opt.worker_core : 1;
  const int producer = opt.producer_core >= 0 ? opt.producer_core : 0;
  plain_ratio = 0;
  if (std::thread::hardware_concurrency() < 2 || worker == producer) return nullptr;
  enum Mode : int { kIdle, kPlainSpin, kPauseSpin, kStop };
  std::atomic<int> mode{kIdle};
  std::thread neighbour([&] {
    pin_self(producer);
    int m;
    // Relaxed: the mode is a hint, no data is handed over with it.
    while ((m = mode.load(std::memory_order_relaxed)) != kStop) {
      if (m == kPlainSpin) {
        while (mode.load(std::memory_order_relaxed) == kPlainSpin) {
        }
      } else if (m == kPauseSpin) {
        while (mode.load(std::memory_order_relaxed) == kPauseSpin) spin_hint();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  });
  pin_self(worker);
  auto runner = ti::make_cpu_backend()->make_runner(1, run.model->input_width());
  const auto data = random_rows(1, run.model->input_width(), 5);
  auto input = runner->input(1);
  std::copy(data.begin(), data.end(), input.begin());
  for (int i = 0; i < 200; ++i) (void)runner->run(*run.model, 1);
  ti::LatencyHistogram hist[3];
  const std::size_t iterations = std::max<std::size_t>(opt.forward_iterations, 3000);
  for (std::size_t done = 0; done < iterations; done += 500) {
    for (int m = kIdle; m <= kPauseSpin; ++m) {
      mode.store(m, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // let the neighbour switch
      for (int i = 0; i < 500; ++i) {
        const std::int64_t t0 = ti::now_ns();
        (void)runner->run(*run.model, 1);
        hist[m].record_exclusive(ti::now_ns() - t0);
      }
    }
  }
  mode.store(kStop, std::memory_order_relaxed);
  neighbour.join();
  unpin_self();
  const auto idle = hist[kIdle].snapshot(), plain = hist[kPlainSpin].snapshot(), paused = hist[kPauseSpin].snapshot();
  plain_ratio = static_cast<double>(plain.percentile(0.5)) / static_cast<double>(idle.percentile(0.5));
  return {{"engine", run.model->engine()},
          {"worker_core", worker},
          {"neighbour_core", producer},
          {"neighbour_idle", percentiles(idle)},
          {"neighbour_plain_spin", percentiles(plain)},
          {"neighbour_pause_spin", percentiles(paused)},
          {"plain_spin_over_idle_p50", plain_ratio},
          {"pause_spin_over_idle_p50",
           static_cast<double>(paused.percentile(0.5)) / static_cast<double>(idle.percentile(0.5))}};
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

std::vector<std::string> split_engines(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (item != "native" && item != "libtorch")
      throw ti::Error(ti::ErrorCode::kInvalidConfig,
                      "--engines: '" + item + "' is not an engine (expected native and/or libtorch)");
    if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
  }
  if (out.empty()) throw ti::Error(ti::ErrorCode::kInvalidConfig, "--engines: empty list");
  return out;
}

const char* verdict(bool met) { return met ? "met" : "MISSED"; }

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{
      "tickinfer-bench: each engine on one model, bare forward vs. direct mode vs. the pipeline (latency "
      "percentiles and throughput), in one run"};
  app.add_option("--model", opt.model, "TorchScript archive (scripts/export_model.py) or .onnx file")->required();
  app.add_option("--json", opt.json_out, "where to write the JSON report");
  app.add_option("--engines", opt.engines,
                 "comma-separated engines to run side by side: native, libtorch (an .onnx model: native only)");
  app.add_option("--max-batch", opt.max_batch, "max_batch for the batched runs")->check(CLI::Range(1, 4096));
  app.add_option("--latency-seconds", opt.latency_seconds, "duration of each one-in-flight latency run");
  app.add_option("--throughput-seconds", opt.throughput_seconds, "duration of each saturated run");
  app.add_option("--direct-seconds", opt.direct_seconds, "duration of the direct-mode run");
  app.add_option("--forward-iterations", opt.forward_iterations, "bare forward() calls per batch size and engine");
  app.add_option("--worker-core", opt.worker_core, "pin the pipeline worker to this core");
  app.add_option("--producer-core", opt.producer_core, "pin the producer (this thread) to this core");
  CLI11_PARSE(app, argc, argv);

  try {
    std::vector<std::string> wanted = split_engines(opt.engines);
    if (opt.model.ends_with(".onnx")) std::erase(wanted, std::string("libtorch"));
    if (wanted.empty()) throw ti::Error(ti::ErrorCode::kInvalidConfig, opt.model + ": ONNX runs on native only");
    json report;
    std::vector<EngineRun> runs;
    json skipped = json::object();
    for (const auto& name : wanted) {
      try {
        EngineRun run;
        run.name = name;
        run.model = load(opt, ti::parse_engine(name));
        run.slot = std::make_shared<ti::ModelSlot>(run.model);
        runs.push_back(std::move(run));
      } catch (const ti::Error& e) {
        // The native engine cannot run every model: report why and measure the others.
        if (name != "native" || wanted.size() == 1) throw;
        skipped[name] = e.what();
        std::printf("tickinfer-bench: engine native skipped: %s\n", e.what());
      }
    }
    const ti::Model& model = *runs.front().model;
    std::printf("tickinfer-bench: model %s (%s v%llu), %zu -> %zu, engines", opt.model.c_str(),
                model.metadata().name.c_str(), static_cast<unsigned long long>(model.version()), model.input_width(),
                model.output_width());
    for (const auto& run : runs) std::printf(" %s", run.model->engine().c_str());
    std::printf(", %u hardware threads\n", std::thread::hardware_concurrency());
    report["model"] = {{"path", opt.model},
                       {"name", model.metadata().name},
                       {"version", model.version()},
                       {"inputs", model.input_width()},
                       {"outputs", model.output_width()}};
    report["skipped_engines"] = skipped;

    bench_forward(runs, opt);
    std::printf(
        "\nbare forward (Runner::run, no pipeline; engines interleaved), us:\n  %-9s %6s %9s %9s %9s %9s %12s\n",
        "engine", "batch", "p50", "p99", "p99.9", "max", "rows/s");
    for (std::size_t k = 0; k < runs.front().forward.size(); ++k)
      for (const auto& run : runs) {
        const auto& [batch, h] = run.forward[k];
        std::printf("  %-9s %6zu %9s %9s %9s %9s %12.0f\n", run.model->engine().c_str(), batch,
                    us(h.percentile(0.5)).c_str(), us(h.percentile(0.99)).c_str(), us(h.percentile(0.999)).c_str(),
                    us(h.max).c_str(), run.rows_per_s(batch));
      }

    std::optional<ti::HistogramSnapshot> direct;
    for (auto& run : runs) {
      if (run.model->engine() != "native") continue;
      pin_self(opt.producer_core);
      direct = bench_direct(run, opt);
      unpin_self();
      if (direct) {
        report["direct"] = percentiles(*direct);
        report["direct"]["engine"] = run.model->engine();
        std::printf("\ndirect mode (Predictor::predict on this thread, feature copy included), us:\n");
        std::printf("  p50 %s  p99 %s  p99.9 %s  max %s  (n=%llu)\n", us(direct->percentile(0.5)).c_str(),
                    us(direct->percentile(0.99)).c_str(), us(direct->percentile(0.999)).c_str(),
                    us(direct->max).c_str(), static_cast<unsigned long long>(direct->count));
      }
      break;
    }

    for (auto& run : runs) {
      bench_single_in_flight(run, opt);
      unpin_self();
      const double overhead_ns = static_cast<double>(run.e2e.percentile(0.5)) - static_cast<double>(run.forward_p50(1));
      run.report["single_in_flight"]["overhead_over_bare_b1_p50_ns"] = overhead_ns;
      std::printf("\npipeline [%s], one request in flight (submit -> completion seen by caller), us:\n",
                  run.model->engine().c_str());
      std::printf("  p50 %s  p99 %s  p99.9 %s  max %s  (n=%llu)\n", us(run.e2e.percentile(0.5)).c_str(),
                  us(run.e2e.percentile(0.99)).c_str(), us(run.e2e.percentile(0.999)).c_str(), us(run.e2e.max).c_str(),
                  static_cast<unsigned long long>(run.e2e.count));
      std::printf("  stages p50: queue wait %s, batch formation %s, forward %s; overhead over bare B=1 %s\n",
                  us(run.stages.queue_wait.percentile(0.5)).c_str(),
                  us(run.stages.batch_formation.percentile(0.5)).c_str(),
                  us(run.stages.forward.percentile(0.5)).c_str(), us(overhead_ns).c_str());
    }

    for (auto& run : runs) {
      const json batched = bench_throughput(run.slot, opt.max_batch, opt);
      const json unbatched = bench_throughput(run.slot, 1, opt);
      unpin_self();
      const double ratio = batched["inferences_per_s"].get<double>() / unbatched["inferences_per_s"].get<double>();
      run.report["throughput"] = {{"batched", batched}, {"unbatched", unbatched}, {"ratio", ratio}};
      std::printf(
          "\nsaturated throughput [%s]: max_batch=%zu %.0f inferences/s (mean batch %.1f), max_batch=1 %.0f/s, "
          "ratio %.1fx\n",
          run.model->engine().c_str(), opt.max_batch, batched["inferences_per_s"].get<double>(),
          batched["mean_batch"].get<double>(), unbatched["inferences_per_s"].get<double>(), ratio);
    }

    // The forward stage inside the pipeline against the bare forward, per engine, and its likely cause.
    json neighbour = json::object();
    for (const auto& run : runs) {
      double plain_ratio = 0;
      const json n = bench_neighbour(run, opt, plain_ratio);
      if (n.is_null()) continue;
      neighbour[run.model->engine()] = n;
      std::printf(
          "\nneighbour [%s]: B=1 forward p50 on core %d with core %d idle %s us, plain spin %s us, pause spin %s us; "
          "pipeline forward stage p50 %s us\n",
          run.model->engine().c_str(), n["worker_core"].get<int>(), n["neighbour_core"].get<int>(),
          us(n["neighbour_idle"]["p50_ns"].get<std::uint64_t>()).c_str(),
          us(n["neighbour_plain_spin"]["p50_ns"].get<std::uint64_t>()).c_str(),
          us(n["neighbour_pause_spin"]["p50_ns"].get<std::uint64_t>()).c_str(),
          us(run.stages.forward.percentile(0.5)).c_str());
    }
    report["neighbour"] = neighbour;

    pin_self(opt.worker_core);
    report["platform_stalls"] = platform_stalls(1.0);
    unpin_self();
    std::printf("\nplatform: a busy loop is stalled > 20 us %.0f times/s (> 100 us: %.0f/s)\n",
                report["platform_stalls"]["stalls_over_20us_per_s"].get<double>(),
                report["platform_stalls"]["stalls_over_100us_per_s"].get<double>());

    json engines = json::object();
    for (auto& run : runs) {
      run.report["engine"] = run.model->engine();
      run.report["engine_note"] = run.model->engine_note();
      engines[run.name] = run.report;
    }
    report["engines"] = engines;

    // Targets (docs/PERFORMANCE.md): native against LibTorch in this run, direct mode, the pipeline.
    const EngineRun* native = nullptr;
    const EngineRun* libtorch = nullptr;
    for (const auto& run : runs) (run.model->engine() == "native" ? native : libtorch) = &run;
    json targets = json::object();
    std::printf("\ntargets:\n");
    if (native && libtorch) {
      const double speedup =
          static_cast<double>(libtorch->forward_p50(1)) / static_cast<double>(native->forward_p50(1));
      const double b64 = native->rows_per_s(opt.max_batch) / libtorch->rows_per_s(opt.max_batch);
      report["native_speedup_b1"] = speedup;
      report["native_over_libtorch_rows_per_s_at_max_batch"] = b64;
      targets["native_speedup_b1_ge_25x"] = speedup >= 25.0;
      targets["native_max_batch_rows_per_s_ge_libtorch"] = b64 >= 1.0;
      std::printf("  native B=1 forward p50 %s us vs LibTorch %s us: %.1fx (>= 25x: %s)\n",
                  us(native->forward_p50(1)).c_str(), us(libtorch->forward_p50(1)).c_str(), speedup,
                  verdict(speedup >= 25.0));
      std::printf("  native B=%zu rows/s %.0f vs LibTorch %.0f: %.2fx (>= 1: %s)\n", opt.max_batch,
                  native->rows_per_s(opt.max_batch), libtorch->rows_per_s(opt.max_batch), b64, verdict(b64 >= 1.0));
    }
    if (native) {
      const bool b1 = native->forward_p50(1) <= 300;
      targets["native_b1_p50_le_0_3us"] = b1;
      std::printf("  native B=1 forward p50 %s us (<= 0.3: %s)\n", us(native->forward_p50(1)).c_str(), verdict(b1));
      const bool e2e = native->e2e.percentile(0.5) <= 3000;
      targets["native_pipeline_e2e_p50_le_3us"] = e2e;
      std::printf("  native pipeline end to end p50 %s us (<= 3: %s)\n", us(native->e2e.percentile(0.5)).c_str(),
                  verdict(e2e));
    }
    if (direct) {
      report["direct_p50_us"] = static_cast<double>(direct->percentile(0.5)) / 1000.0;
      const bool p50 = direct->percentile(0.5) <= 500, p99 = direct->percentile(0.99) <= 2000;
      targets["direct_p50_le_0_5us"] = p50;
      targets["direct_p99_le_2us"] = p99;
      std::printf("  direct predict p50 %s us (<= 0.5: %s), p99 %s us (<= 2: %s)\n",
                  us(direct->percentile(0.5)).c_str(), verdict(p50), us(direct->percentile(0.99)).c_str(),
                  verdict(p99));
    }
    for (const auto& run : runs) {
      const double ratio = run.report["throughput"]["ratio"].get<double>();
      const double tail = static_cast<double>(run.e2e.percentile(0.999)) / static_cast<double>(run.e2e.percentile(0.5));
      targets[run.model->engine() + "_batching_ratio_ge_15x"] = ratio >= 15.0;
      targets[run.model->engine() + "_e2e_p999_le_3x_p50"] = tail <= 3.0;
      std::printf("  %s: batching %.1fx (>= 15: %s), pipeline p99.9/p50 %.2f (<= 3: %s)\n", run.model->engine().c_str(),
                  ratio, verdict(ratio >= 15.0), tail, verdict(tail <= 3.0));
    }
    report["targets"] = targets;
    std::ofstream(opt.json_out) << report.dump(2) << '\n';
    std::printf("report: %s\n", opt.json_out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tickinfer-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
