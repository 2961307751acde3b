// The trading-engine API's hot path allocates nothing after warm-up: keyed submits with conflation (supersede and
// merge), deadline admission (admitted and refused), the latest-prediction store's writes, and polled results
// (pushes by the worker, polls by the producer). This binary replaces operator new (support/count_new.hpp) and
// counts every call on every thread while a CountNew is alive.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "support/count_new.hpp"
#include "support/fake_model.hpp"
#include "support/wait.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/latest_store.hpp"
#include "tickinfer/pipeline.hpp"

namespace tickinfer {
namespace {

using testing::CountNew;
using testing::FakeBackend;
using testing::FakeModel;
using testing::FakeSequenceModel;
using testing::scaled;
using namespace std::chrono_literals;

constexpr std::size_t kWidth = 4, kKeys = 16;

struct Counts {
  std::uint64_t submitted = 0, accepted = 0, received = 0, ok = 0, superseded = 0, refused_by_deadline = 0;
};

// Takes one polled result into the counts; false when none was waiting. Allocation-free.
struct Poller {
  Pipeline& pipeline;
  Producer& producer;
  Counts& c;
  PolledResult r;
  float out[2] = {};
  bool operator()() {
    if (!pipeline.poll(producer, r, out)) return false;
    ++c.received;
    if (r.status == ResultStatus::kOk) ++c.ok;
    if (r.status == ResultStatus::kSuperseded) ++c.superseded;
    return true;
  }
  // Until every accepted request arrived (at most 60 s).
  bool until_all_received() {
    const std::int64_t give_up = now_ns() + 60'000'000'000;
    while (c.received < c.accepted) {
      if (now_ns() > give_up) return false;
      if (!(*this)()) std::this_thread::yield();
    }
    return true;
  }
};

// Submits `n` keyed, polled requests (every 11th with a past deadline, which admission refuses), polling as it goes;
// then polls until every accepted one arrived. Allocation-free itself: no std::function, no containers.
bool run_polled(Pipeline& pipeline, Producer& producer, std::uint64_t n, Counts& c) {
  Poller poll_one{pipeline, producer, c, {}};
  for (std::uint64_t i = 0; i < n; ++i) {
    const float features[kWidth] = {static_cast<float>(i % 1000), 1, 2, 3};
    const std::int64_t deadline = i % 11 == 0 ? now_ns() - 1 : deadline_in(3600s);
    for (;;) {
      const SubmitStatus s = pipeline.submit(producer, static_cast<InstrumentKey>(i % kKeys), features, deadline,
                                             producer.polled(c.submitted));
      if (s == SubmitStatus::kAccepted) {
        ++c.accepted;
        break;
      }
      if (i % 11 == 0) {  // refused by admission: its deadline has passed
        ++c.refused_by_deadline;
        break;
      }
      if (!poll_one()) std::this_thread::yield();  // queue full: make room
    }
    ++c.submitted;
    while (poll_one()) {
    }
  }
  return poll_one.until_all_received();
}

TEST(PipelineApiAllocations, TheCounterSeesAllocationsOnOtherThreads) {
  std::size_t allocations = 0;
  {
    CountNew counter;
    std::thread([] { (void)std::make_unique<int>(7); }).join();
    allocations = counter.calls();
  }
  EXPECT_GE(allocations, 1u);
}

TEST(PipelineApiAllocations, KeyedConflatingPolledSubmitsWithAdmissionAndALatestStoreAllocateNothing) {
  PipelineConfig config;
  config.keys = kKeys;
  config.conflation = Conflation::kSupersede;
  config.latest = std::make_shared<LatestStore>(kKeys, 2);
  config.deadline_admission = true;
  config.max_batch = 8;
  config.queue_capacity = 256;
  config.idle = IdleStrategy::kSpinThenYield;
  auto slot = std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1, 1.0f, 0.0f, 20us));
  auto pipeline = Pipeline::create(config, slot, std::make_shared<FakeBackend>());
  Producer producer = pipeline->make_producer({.result_ring = 1024});

  Counts warm;
  ASSERT_TRUE(run_polled(*pipeline, producer, 2000, warm));
  Counts steady;
  std::size_t allocations = 0;
  bool finished = false;
  {
    CountNew counter;
    finished = run_polled(*pipeline, producer, scaled(40000, 4000), steady);
    allocations = counter.calls();
  }
  ASSERT_TRUE(finished);
  EXPECT_EQ(allocations, 0u) << "submit, conflation, admission, batching, the store's writes or the rings allocated";
  EXPECT_GT(steady.superseded, 0u) << "the run never conflated: the superseded path was not exercised";
  EXPECT_GT(steady.refused_by_deadline, 0u);
  EXPECT_EQ(steady.received, steady.accepted) << "every accepted request arrived exactly once (ring not full)";
  const MetricsSnapshot m = pipeline->metrics().snapshot();
  EXPECT_EQ(m.polled_dropped, 0u);
  EXPECT_EQ(m.rejected_deadline, warm.refused_by_deadline + steady.refused_by_deadline);
  LatestPrediction p;
  float out[2];
  ASSERT_TRUE(config.latest->read(1, p, out));
  EXPECT_GT(p.updates, 0u);
}

TEST(PipelineApiAllocations, MergingSubmitsWithCallbacksAllocateNothing) {
  PipelineConfig config;
  config.keys = kKeys;
  config.conflation = Conflation::kMerge;
  config.max_batch = 8;
  config.queue_capacity = 64;
  config.idle = IdleStrategy::kSpinThenYield;
  auto slot = std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1, 1.0f, 0.0f, 20us));
  auto pipeline = Pipeline::create(config, slot, std::make_shared<FakeBackend>());
  Producer producer = pipeline->make_producer();
  // One worker and one producer: the producer's queue entries are dequeued in order, so once an unkeyed fence
  // submitted last has completed, every keyed request before it has completed or was merged.
  constexpr std::uint64_t kFence = ~std::uint64_t{0};
  struct Seen {
    std::atomic<std::uint64_t> completed{0}, fences{0};
  } seen;
  auto on_result = [](void* c, const Result& r) {
    auto* s = static_cast<Seen*>(c);
    s->completed.fetch_add(1, std::memory_order_relaxed);
    if (r.tag == kFence) s->fences.fetch_add(1, std::memory_order_release);  // pairs with the acquire below
  };
  auto run = [&](std::uint64_t n) {
    const float features[kWidth] = {1, 2, 3, 4};
    for (std::uint64_t i = 0; i < n; ++i) {
      while (pipeline->submit(producer, static_cast<InstrumentKey>(i % kKeys), features, kNoDeadline,
                              {on_result, &seen, i}) != SubmitStatus::kAccepted)
        std::this_thread::yield();
    }
    const std::uint64_t fences = seen.fences.load(std::memory_order_relaxed);
    while (pipeline->submit(producer, features, kNoDeadline, {on_result, &seen, kFence}) != SubmitStatus::kAccepted)
      std::this_thread::yield();
    const std::int64_t give_up = now_ns() + 60'000'000'000;
    while (seen.fences.load(std::memory_order_acquire) == fences) {
      if (now_ns() > give_up) return false;
      std::this_thread::yield();
    }
    return true;
  };
  ASSERT_TRUE(run(2000));
  std::size_t allocations = 0;
  bool finished = false;
  {
    CountNew counter;
    finished = run(scaled(40000, 4000));
    allocations = counter.calls();
  }
  ASSERT_TRUE(finished);
  const MetricsSnapshot before_shutdown = pipeline->metrics().snapshot();
  EXPECT_EQ(before_shutdown.completed() + before_shutdown.merged, before_shutdown.accepted)
      << "the fence completed last: nothing else is in flight";
  pipeline->shutdown();
  EXPECT_EQ(allocations, 0u) << "merging submits, batching or completions allocated";
  const MetricsSnapshot m = pipeline->metrics().snapshot();
  EXPECT_GT(m.merged, 0u) << "the run never merged: the merge path was not exercised";
  EXPECT_EQ(m.completed() + m.merged, m.accepted);
}

// A sequence model's per-key state: gathered into each row, scattered back, a key repeated in a batch run in a later
// forward, resets stamped at submit. None of it allocates once warm.
TEST(PipelineApiAllocations, SequenceModelStateGatherScatterSplitsAndResetsAllocateNothing) {
  PipelineConfig config;
  config.keys = kKeys;
  config.max_batch = 32;  // > kKeys: most batches repeat keys and split
  config.queue_capacity = 256;
  config.idle = IdleStrategy::kSpinThenYield;
  auto slot = std::make_shared<ModelSlot>(std::make_shared<FakeSequenceModel>(kWidth, 1));
  auto backend = std::make_shared<FakeBackend>();
  auto pipeline = Pipeline::create(config, slot, backend);
  Producer producer = pipeline->make_producer({.result_ring = 1024});
  auto run = [&](std::uint64_t n, Counts& c) {
    Poller poll_one{*pipeline, producer, c, {}};
    for (std::uint64_t i = 0; i < n; ++i) {
      if (i % 1000 == 999) pipeline->reset_state(static_cast<InstrumentKey>(i % kKeys));
      const float features[kWidth] = {static_cast<float>(i % 13), 0, 0, 0};
      while (pipeline->submit(producer, static_cast<InstrumentKey>((i * 7) % kKeys), features, kNoDeadline,
                              producer.polled(i)) != SubmitStatus::kAccepted) {
        if (!poll_one()) std::this_thread::yield();
      }
      ++c.accepted;
      while (poll_one()) {
      }
    }
    return poll_one.until_all_received();
  };
  Counts warm;
  ASSERT_TRUE(run(4000, warm));
  Counts steady;
  const std::uint64_t forwards_before = backend->forwards.load();
  const MetricsSnapshot before = pipeline->metrics().snapshot();
  std::size_t allocations = 0;
  bool finished = false;
  {
    CountNew counter;
    finished = run(scaled(40000, 4000), steady);
    allocations = counter.calls();
  }
  ASSERT_TRUE(finished);
  EXPECT_EQ(allocations, 0u) << "the state's gather, scatter, split forwards or resets allocated";
  EXPECT_EQ(steady.ok, steady.accepted);
  const MetricsSnapshot after = pipeline->metrics().snapshot();
  EXPECT_GT(backend->forwards.load() - forwards_before, after.batches - before.batches)
      << "no batch repeated a key: the split path was not exercised";
}

}  // namespace
}  // namespace tickinfer
