// submit() and the worker's batch path allocate nothing after warm-up. This binary replaces the global
// operator new/delete (and, outside sanitizer builds, malloc and friends, which moodycamel allocates with) to
// count allocations on every thread while a flag is set.

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "support/fake_model.hpp"
#include "support/wait.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/pipeline.hpp"

#include "support/count_malloc.hpp"  // g_counting, g_allocations

namespace tickinfer {
namespace {

using namespace std::chrono_literals;
using testing::FakeBackend;
using testing::FakeModel;
using testing::scaled;
using testing::wait_until;

constexpr std::size_t kWidth = 4;

/// Counts allocations on every thread from construction to stop().
class AllocationCounter {
 public:
  AllocationCounter() {
    g_allocations.store(0, std::memory_order_relaxed);
    g_counting.store(true, std::memory_order_seq_cst);
  }
  ~AllocationCounter() { g_counting.store(false, std::memory_order_seq_cst); }
  std::uint64_t stop() {
    g_counting.store(false, std::memory_order_seq_cst);
    return g_allocations.load(std::memory_order_relaxed);
  }
};

struct Tally {
  std::atomic<std::uint64_t> done{0};
  static void on_result(void* self, const Result&) {
    // Release pairs with the acquire loads of the waits below.
    static_cast<Tally*>(self)->done.fetch_add(1, std::memory_order_release);
  }
};

// A wait that does not allocate (wait_until() takes a std::function).
bool spin_until_done(const Tally& tally, std::uint64_t n) {
  const std::int64_t give_up = now_ns() + 60'000'000'000;
  while (tally.done.load(std::memory_order_acquire) < n) {
    if (now_ns() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(PipelineAllocations, TheCounterSeesAllocationsOnOtherThreads) {
  std::thread other;  // started outside the counted region
  std::atomic<int> go{0};
  std::unique_ptr<int> made;
  other = std::thread([&] {
    while (go.load(std::memory_order_acquire) == 0) std::this_thread::yield();  // pairs with the release below
    made = std::make_unique<int>(7);
  });
  std::uint64_t allocations = 0;
  {
    AllocationCounter counter;
    go.store(1, std::memory_order_release);
    other.join();
    allocations = counter.stop();
  }
  EXPECT_GE(allocations, 1u);
  EXPECT_EQ(*made, 7);
}

TEST(PipelineAllocations, SubmitAllocatesNothingWhenAcceptedRejectedInvalidOrAfterShutdown) {
  PipelineConfig config;
  config.max_batch = 1;
  config.queue_capacity = 4;
  auto backend = std::make_shared<FakeBackend>();
  auto slot = std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1, 1.0f, 0.0f, 20000us));
  auto pipeline = Pipeline::create(config, slot, backend);
  Producer producer = pipeline->make_producer();
  Tally tally;
  const float features[kWidth] = {1, 2, 3, 4};
  const float too_wide[kWidth + 1] = {1, 2, 3, 4, 5};
  // Warm-up: the producer's first enqueue, the worker's first batch.
  ASSERT_EQ(pipeline->submit(producer, features, kNoDeadline, {&Tally::on_result, &tally, 0}), SubmitStatus::kAccepted);
  ASSERT_TRUE(spin_until_done(tally, 1));

  constexpr int kSubmits = 16;
  SubmitStatus statuses[kSubmits];
  SubmitStatus invalid[3];
  std::uint64_t allocations = 0;
  {
    AllocationCounter counter;
    // The worker holds the first for 20 ms; four more fill the queue; the rest are rejected (queue full).
    for (auto& s : statuses) s = pipeline->submit(producer, features, kNoDeadline, {&Tally::on_result, &tally, 0});
    for (auto& s : invalid)
      s = pipeline->submit(producer, std::span<const float>(too_wide, kWidth + 1), kNoDeadline,
                           {&Tally::on_result, &tally, 0});
    allocations = counter.stop();
  }
  std::uint64_t accepted = 0, rejected = 0;
  for (const auto s : statuses) (s == SubmitStatus::kAccepted ? accepted : rejected) += 1;
  EXPECT_GE(accepted, 1u);
  EXPECT_GE(rejected, 1u) << "a 4-slot queue behind a 20 ms model must fill";
  for (const auto s : invalid) EXPECT_EQ(s, SubmitStatus::kInvalid);
  EXPECT_EQ(allocations, 0u) << "submit() allocated (accepted / rejected / invalid)";
  ASSERT_TRUE(spin_until_done(tally, 1 + accepted));

  pipeline->shutdown();
  SubmitStatus after[kSubmits];
  {
    AllocationCounter counter;
    for (auto& s : after) s = pipeline->submit(producer, features, kNoDeadline, {&Tally::on_result, &tally, 0});
    allocations = counter.stop();
  }
  for (const auto s : after) EXPECT_EQ(s, SubmitStatus::kRejected);
  EXPECT_EQ(allocations, 0u) << "submit() after shutdown() allocated";
  EXPECT_EQ(tally.done.load(), 1 + accepted) << "no rejected request completes";
}

TEST(PipelineAllocations, WorkerBatchPathAllocatesNothingInASteadyRun) {
  PipelineConfig config;
  config.max_batch = 16;
  config.queue_capacity = 1024;
  auto backend = std::make_shared<FakeBackend>();
  auto slot = std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1));
  auto pipeline = Pipeline::create(config, slot, backend);
  constexpr std::size_t kProducers = 2;
  const std::uint64_t kWarm = 2000, kSteady = scaled(50000, 5000);
  Tally tally;
  std::atomic<int> phase{0};  // 0: warm-up, 1: counted run, 2: done
  std::atomic<std::uint64_t> submitted{0};
  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < kProducers; ++p)
    threads.emplace_back([&] {
      Producer producer = pipeline->make_producer();
      const float features[kWidth] = {1, 2, 3, 4};
      const float nan_row[kWidth] = {FakeModel::kNanOn, 0, 0, 0};
      auto run = [&](std::uint64_t n) {
        for (std::uint64_t i = 0; i < n; ++i) {
          // Every 10th has a past deadline (expired path), every 13th a NaN output (per-row error path).
          const std::int64_t deadline = i % 10 == 0 ? now_ns() - 1 : kNoDeadline;
          const float* row = i % 13 == 0 ? nan_row : features;
          while (pipeline->submit(producer, std::span<const float>(row, kWidth), deadline,
                                  {&Tally::on_result, &tally, 0}) != SubmitStatus::kAccepted)
            std::this_thread::yield();
          submitted.fetch_add(1, std::memory_order_relaxed);
        }
      };
      run(kWarm);
      // Acquire pairs with the release store below.
      while (phase.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      run(kSteady);
    });
  ASSERT_TRUE(wait_until([&] { return tally.done.load(std::memory_order_acquire) == kProducers * kWarm; }));
  std::uint64_t allocations = 0;
  {
    AllocationCounter counter;
    phase.store(1, std::memory_order_release);
    const bool finished = spin_until_done(tally, kProducers * (kWarm + kSteady));
    allocations = counter.stop();
    ASSERT_TRUE(finished);
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allocations, 0u) << "the steady run allocated (submit, batching, forward, completion, slot return)";
  const auto m = pipeline->metrics().snapshot();
  EXPECT_GT(m.expired, 0u);
  EXPECT_GT(m.model_errors, 0u);
  EXPECT_EQ(m.completed(), kProducers * (kWarm + kSteady));
}

}  // namespace
}  // namespace tickinfer
