// Hot-swap under load, through the real watcher -> registry -> pipeline path:
//  BM_RenameToFirstResult: a checkpoint of the MLP renamed into the watched directory (inotify) until the first
//    result that reports its version (target: < 200 ms).
//  BM_EndToEndWithAndWithoutSwaps: end-to-end latency percentiles in alternating windows without swaps and
//    with a swap every 100 ms, same process, same load (target: p99.9 with swaps <= 2x without).
// Load: kProducers threads, each submitting one request every kSubmitPeriod (sleep-paced).

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tickinfer/clock.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/registry.hpp"
#include "tickinfer/torchscript.hpp"
#include "tickinfer/watcher.hpp"

namespace ti = tickinfer;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kProducers = 2;
constexpr auto kSubmitPeriod = 100us;  // per producer: ~20k requests/s in all
constexpr std::size_t kMaxVersions = 4096;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A watched directory, a registry serving mlp.pt, a pipeline under steady load, and a watcher.
class Harness {
 public:
  explicit Harness(ti::LoaderPriority priority) {
    char pattern[] = "/tmp/tickinfer_hot_swap_bench_XXXXXX";
    dir_ = ::mkdtemp(pattern);
    const fs::path models = TICKINFER_MODEL_DIR;
    bytes_[0] = read_bytes(models / "mlp.pt");
    bytes_[1] = read_bytes(models / "mlp_v2.pt");
    install(1);

    ti::PipelineConfig config;  // defaults: max_batch 64, one worker, spin-then-yield
    ti::RegistryConfig registry_config;
    registry_config.loader_priority = priority;
    registry_config.load.warmup_batch_sizes = ti::pipeline_batch_sizes(config);
    registry_config.log = [](const ti::LogRecord& r) {
      if (r.error) std::fprintf(stderr, "hot_swap_bench: %s\n", r.message.c_str());
    };
    registry_ = ti::ModelRegistry::create(registry_config, dir_ / name(1));
    pipeline_ = ti::Pipeline::create(config, registry_->slot(), ti::make_cpu_backend());
    ti::WatcherConfig watch;
    watch.directory = dir_;
    watch.mode = ti::WatchMode::kInotify;
    watcher_ = ti::CheckpointWatcher::create(watch, [r = registry_.get()](const fs::path& p) { r->offer(p); });
    for (std::size_t p = 0; p < kProducers; ++p) producers_.emplace_back([this] { produce(); });
  }

  ~Harness() {
    stop_.store(true, std::memory_order_relaxed);  // relaxed: a stop request; join orders the rest
    for (auto& t : producers_) t.join();
    watcher_.reset();
    pipeline_.reset();
    registry_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes the next version under a temporary name (not timed), renames it in; returns (version, rename time).
  std::pair<std::uint64_t, std::int64_t> swap() {
    const std::uint64_t version = ++last_version_;
    const fs::path temp = dir_ / (name(version) + ".tmp");
    {
      const std::string& bytes = bytes_[version % 2 ? 0 : 1];
      std::ofstream out(temp, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    const std::int64_t t0 = ti::now_ns();
    fs::rename(temp, dir_ / name(version));
    return {version, t0};
  }

  // When the first result reporting `version` completed; 0 if none did within `limit`.
  std::int64_t wait_first_result(std::uint64_t version, std::chrono::milliseconds limit = 5000ms) {
    const auto give_up = ti::Clock::now() + limit;
    while (ti::Clock::now() < give_up) {
      // Acquire pairs with the CAS in on_result().
      const std::int64_t t = first_seen_[version].load(std::memory_order_acquire);
      if (t != 0) return t;
      std::this_thread::sleep_for(50us);
    }
    return 0;
  }

  // Completions record their end-to-end latency into `h` (null: nowhere).
  void record_into(ti::LatencyHistogram* h) { target_.store(h, std::memory_order_release); }  // pairs in on_result

  const ti::ModelRegistry& registry() const { return *registry_; }
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }  // relaxed: a statistic

 private:
  static std::string name(std::uint64_t version) { return "model_epoch" + std::to_string(version) + ".pt"; }

  void install(std::uint64_t version) {
    std::ofstream out(dir_ / name(version), std::ios::binary);
    out.write(bytes_[0].data(), static_cast<std::streamsize>(bytes_[0].size()));
    last_version_ = version;
  }

  static void on_result(void* self, const ti::Result& r) {
    auto& h = *static_cast<Harness*>(self);
    const std::int64_t now = ti::now_ns();
    if (r.status != ti::ResultStatus::kOk) {
      h.errors_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      return;
    }
    if (r.model_version < kMaxVersions) {
      std::int64_t expected = 0;
      // Release pairs with the acquire load in wait_first_result().
      h.first_seen_[r.model_version].compare_exchange_strong(expected, now, std::memory_order_release,
                                                             std::memory_order_relaxed);
    }
    // Acquire pairs with the release store in record_into().
    if (auto* target = h.target_.load(std::memory_order_acquire)) target->record(now - r.enqueue_ns);
  }

  void produce() {
    auto producer = pipeline_->make_producer();
    std::vector<float> features(pipeline_->feature_width(), 0.25f);
    auto next = ti::Clock::now();
    std::uint64_t tag = 0;
    while (!stop_.load(std::memory_order_relaxed)) {  // relaxed: see ~Harness()
      features[0] = static_cast<float>(tag % 97) * 0.01f;
      (void)pipeline_->submit(producer, features, ti::kNoDeadline, {&Harness::on_result, this, tag++});
      next += kSubmitPeriod;
      std::this_thread::sleep_until(next);
    }
  }

  fs::path dir_;
  std::string bytes_[2];
  std::uint64_t last_version_ = 0;
  std::unique_ptr<ti::ModelRegistry> registry_;
  std::unique_ptr<ti::Pipeline> pipeline_;
  std::unique_ptr<ti::CheckpointWatcher> watcher_;
  std::vector<std::atomic<std::int64_t>> first_seen_ = std::vector<std::atomic<std::int64_t>>(kMaxVersions);
  std::atomic<ti::LatencyHistogram*> target_{nullptr};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> producers_;
};

double ms(std::uint64_t ns) { return static_cast<double>(ns) * 1e-6; }
double us(std::uint64_t ns) { return static_cast<double>(ns) * 1e-3; }

void BM_RenameToFirstResult(benchmark::State& state) {
  Harness harness(static_cast<ti::LoaderPriority>(state.range(0)));
  std::this_thread::sleep_for(200ms);  // steady load first
  ti::LatencyHistogram h;
  std::size_t missed = 0;
  for (auto _ : state) {
    const auto [version, renamed] = harness.swap();
    const std::int64_t served = harness.wait_first_result(version);
    if (served == 0) {
      ++missed;
      continue;
    }
    h.record(served - renamed);
    std::this_thread::sleep_for(50ms);  // let the old version's last batches drain
  }
  const auto s = h.snapshot();
  const auto m = harness.registry().metrics();
  state.counters["p50_ms"] = ms(s.percentile(0.5));
  state.counters["p99_ms"] = ms(s.percentile(0.99));
  state.counters["max_ms"] = ms(s.max);
  state.counters["load_p50_ms"] = ms(m.load.percentile(0.5));
  state.counters["warmup_p50_ms"] = ms(m.warm_up.percentile(0.5));
  state.counters["missed"] = static_cast<double>(missed);
  state.counters["refused"] = static_cast<double>(m.refused_total());
  state.counters["errors"] = static_cast<double>(harness.errors());
}
// loader_priority: 0 normal (default), 1 low (nice 19), 2 background (SCHED_IDLE).
BENCHMARK(BM_RenameToFirstResult)
    ->ArgName("loader_priority")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(30)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_EndToEndWithAndWithoutSwaps(benchmark::State& state) {
  const auto window = std::chrono::milliseconds(state.range(1));
  Harness harness(static_cast<ti::LoaderPriority>(state.range(0)));
  std::this_thread::sleep_for(200ms);
  ti::LatencyHistogram quiet, swapping;
  std::uint64_t swaps = 0;
  for (auto _ : state) {
    // Alternating windows, so drift (thermal, other load) hits both alike; a settle gap between them keeps
    // a swap's tail out of the next quiet window.
    for (int w = 0; w < 6; ++w) {
      const bool swap = w % 2 == 1;
      harness.record_into(swap ? &swapping : &quiet);
      const auto end = ti::Clock::now() + window;
      auto next_swap = ti::Clock::now();
      while (ti::Clock::now() < end) {
        if (swap && ti::Clock::now() >= next_swap) {
          harness.swap();
          ++swaps;
          next_swap += 100ms;
        }
        std::this_thread::sleep_for(1ms);
      }
      harness.record_into(nullptr);
      std::this_thread::sleep_for(300ms);
    }
  }
  const auto q = quiet.snapshot(), s = swapping.snapshot();
  const auto m = harness.registry().metrics();
  state.counters["quiet_p50_us"] = us(q.percentile(0.5));
  state.counters["quiet_p99_us"] = us(q.percentile(0.99));
  state.counters["quiet_p999_us"] = us(q.percentile(0.999));
  state.counters["swap_p50_us"] = us(s.percentile(0.5));
  state.counters["swap_p99_us"] = us(s.percentile(0.99));
  state.counters["swap_p999_us"] = us(s.percentile(0.999));
  state.counters["p999_ratio"] = static_cast<double>(s.percentile(0.999)) / static_cast<double>(q.percentile(0.999));
  state.counters["requests"] = static_cast<double>(q.count + s.count);
  state.counters["swaps"] = static_cast<double>(swaps);
  state.counters["published"] = static_cast<double>(m.swaps);
  state.counters["errors"] = static_cast<double>(harness.errors());
}
BENCHMARK(BM_EndToEndWithAndWithoutSwaps)
    ->ArgNames({"loader_priority", "window_ms"})
    ->Args({0, 2000})
    ->Args({1, 2000})
    ->Args({2, 2000})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
