// Idle cost of the worker strategies: the default (kBlock) leaves an idle core alone. The DISABLED_ test is the
// measurement behind docs/PERFORMANCE.md (idle CPU and lone-request latency per strategy); run it with
// --gtest_also_run_disabled_tests --gtest_filter='*Measure*' (TICKINFER_IDLE_SECONDS sets the idle window).

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "support/fake_model.hpp"
#include "support/wait.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/pipeline.hpp"

namespace tickinfer {
namespace {

using namespace std::chrono_literals;
using testing::FakeBackend;
using testing::FakeModel;

constexpr std::size_t kWidth = 4;

struct ProcessTimes {
  double cpu_s = 0;  // user + system, all threads of the process
  double user_s = 0, sys_s = 0;
  long voluntary_switches = 0, involuntary_switches = 0;
  static ProcessTimes now() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    ProcessTimes t;
    t.user_s = static_cast<double>(u.ru_utime.tv_sec) + static_cast<double>(u.ru_utime.tv_usec) * 1e-6;
    t.sys_s = static_cast<double>(u.ru_stime.tv_sec) + static_cast<double>(u.ru_stime.tv_usec) * 1e-6;
    t.cpu_s = t.user_s + t.sys_s;
    t.voluntary_switches = u.ru_nvcsw;
    t.involuntary_switches = u.ru_nivcsw;
    return t;
  }
};

struct Flag {
  std::atomic<std::uint32_t> done{0};
  static void on_result(void* self, const Result&) {
    static_cast<Flag*>(self)->done.store(1, std::memory_order_release);  // pairs with the acquire spin
  }
};

std::unique_ptr<Pipeline> make_pipeline(PipelineConfig config) {
  return Pipeline::create(config, std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1)),
                          std::make_shared<FakeBackend>());
}

// One request in flight: submit, spin until its completion ran; returns the round trip in ns.
std::int64_t round_trip(Pipeline& pipeline, Producer& producer) {
  static const float features[kWidth] = {1, 2, 3, 4};
  Flag flag;
  const std::int64_t t0 = now_ns();
  if (pipeline.submit(producer, features, kNoDeadline, {&Flag::on_result, &flag, 0}) != SubmitStatus::kAccepted)
    return -1;
  while (!flag.done.load(std::memory_order_acquire)) {
  }
  return now_ns() - t0;
}

TEST(PipelineIdleCpu, TheDefaultStrategyBlocksAndAnIdlePipelineUsesLittleCpu) {
  const PipelineConfig config;  // the default
  EXPECT_EQ(config.idle, IdleStrategy::kBlock);
  auto pipeline = make_pipeline(config);
  Producer producer = pipeline->make_producer();
  ASSERT_GT(round_trip(*pipeline, producer), 0);  // the worker is up and has served once
  // The worker spins ~50 us after that request, then sleeps; measure the process over half a second.
  const auto before = ProcessTimes::now();
  const auto wall0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(500ms);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  const auto after = ProcessTimes::now();
  const double share = (after.cpu_s - before.cpu_s) / wall;
  EXPECT_LT(share, 0.2) << "an idle pipeline used " << share * 100 << "% of a core (user "
                        << after.user_s - before.user_s << " s, sys " << after.sys_s - before.sys_s << " s)";
  ASSERT_GT(round_trip(*pipeline, producer), 0) << "and it still serves after sleeping";
}

const char* name(IdleStrategy s) {
  switch (s) {
    case IdleStrategy::kSpin:
      return "kSpin";
    case IdleStrategy::kSpinThenYield:
      return "kSpinThenYield";
    case IdleStrategy::kBlock:
      return "kBlock";
  }
  return "?";
}

TEST(PipelineIdleCpu, DISABLED_MeasureIdleCpuAndLoneRequestLatencyPerStrategy) {
  const char* env = std::getenv("TICKINFER_IDLE_SECONDS");
  const double idle_s = env ? std::atof(env) : 3.0;
  const int kRequests = 2000;
  std::printf("%-15s %8s %8s %8s %9s %9s | %-28s | %-28s\n", "strategy", "cpu%", "user_s", "sys_s", "vol_cs",
              "invol_cs", "lone req after 1 ms idle", "back-to-back (20 us gap)");
  for (const IdleStrategy strategy : {IdleStrategy::kSpin, IdleStrategy::kSpinThenYield, IdleStrategy::kBlock}) {
    PipelineConfig config;
    config.idle = strategy;
    auto pipeline = make_pipeline(config);
    Producer producer = pipeline->make_producer();
    ASSERT_GT(round_trip(*pipeline, producer), 0);
    const auto before = ProcessTimes::now();
    const auto wall0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const auto after = ProcessTimes::now();

    LatencyHistogram after_idle, hot;
    for (int i = 0; i < kRequests; ++i) {
      std::this_thread::sleep_for(1ms);  // longer than the idle spin: kBlock's worker is asleep
      after_idle.record_exclusive(round_trip(*pipeline, producer));
    }
    for (int i = 0; i < kRequests; ++i) {
      const std::int64_t until = now_ns() + 20'000;  // shorter than the idle spin: the worker is polling
      while (now_ns() < until) {
      }
      hot.record_exclusive(round_trip(*pipeline, producer));
    }
    const auto a = after_idle.snapshot(), h = hot.snapshot();
    std::printf(
        "%-15s %8.1f %8.3f %8.3f %9ld %9ld | p50 %6llu ns p99 %7llu ns | p50 %6llu ns p99 %7llu ns\n", name(strategy),
        100.0 * (after.cpu_s - before.cpu_s) / wall, after.user_s - before.user_s, after.sys_s - before.sys_s,
        after.voluntary_switches - before.voluntary_switches, after.involuntary_switches - before.involuntary_switches,
        static_cast<unsigned long long>(a.percentile(0.5)), static_cast<unsigned long long>(a.percentile(0.99)),
        static_cast<unsigned long long>(h.percentile(0.5)), static_cast<unsigned long long>(h.percentile(0.99)));
  }
}

}  // namespace
}  // namespace tickinfer
