#include "tickinfer/pipeline.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/fake_model.hpp"
#include "support/wait.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/mutex.hpp"
#include "tickinfer/waiter.hpp"

namespace tickinfer {
namespace {

using testing::FakeBackend;
using testing::FakeModel;
using testing::scaled;
using testing::wait_until;
using namespace std::chrono_literals;

constexpr std::size_t kWidth = 4;

struct Fixture {
  explicit Fixture(PipelineConfig config = {}, std::chrono::microseconds forward_time = 0us, float scale = 1.0f)
      : backend(std::make_shared<FakeBackend>()),
        slot(std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1, scale, 0.0f, forward_time))),
        pipeline(Pipeline::create(config, slot, backend)) {}
  std::shared_ptr<FakeBackend> backend;
  std::shared_ptr<ModelSlot> slot;
  std::unique_ptr<Pipeline> pipeline;
};

// Records every completion: exactly-once and per-producer order checks.
struct Ledger {
  explicit Ledger(std::size_t producers, std::size_t count_per_producer)
      : per_producer(count_per_producer), seen(producers * count_per_producer), last_seq(producers, -1) {}
  static void on_result(void* self, const Result& r) { static_cast<Ledger*>(self)->record(r); }
  void record(const Result& r) {
    const std::size_t producer = r.tag >> 32, seq = r.tag & 0xffffffffu;
    seen[producer * per_producer + seq].fetch_add(1, std::memory_order_relaxed);
    // One worker: completion order per producer must follow submit order.
    if (static_cast<std::int64_t>(seq) <= last_seq[producer]) order_violations.fetch_add(1);
    last_seq[producer] = static_cast<std::int64_t>(seq);
    if (r.status == ResultStatus::kOk) {
      // Fake model: outputs[1] is feature 0, which the producer set to its sequence number.
      if (r.outputs.size() != 2 || r.outputs[1] != static_cast<float>(seq)) wrong_outputs.fetch_add(1);
      ok.fetch_add(1);
    } else {
      not_ok.fetch_add(1);
    }
    completed.fetch_add(1, std::memory_order_release);
  }
  std::size_t per_producer;
  std::vector<std::atomic<int>> seen;
  std::vector<std::int64_t> last_seq;  // written only by the single worker
  std::atomic<int> order_violations{0}, wrong_outputs{0};
  std::atomic<std::uint64_t> ok{0}, not_ok{0}, completed{0};
};

TEST(Pipeline, EveryAcceptedRequestFromEightProducersCompletesExactlyOnceInProducerOrder) {
  PipelineConfig config;
  config.max_batch = 64;
  config.queue_capacity = 4096;
  config.idle = IdleStrategy::kSpinThenYield;
  Fixture f(config);
  const std::size_t kProducers = 8, kPerProducer = static_cast<std::size_t>(scaled(100000));
  Ledger ledger(kProducers, kPerProducer);
  std::atomic<std::uint64_t> rejected{0};
  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      Producer producer = f.pipeline->make_producer();
      float features[kWidth] = {};
      for (std::size_t seq = 0; seq < kPerProducer; ++seq) {
        features[0] = static_cast<float>(seq);
        const Completion c{&Ledger::on_result, &ledger, (std::uint64_t{p} << 32) | seq};
        SubmitStatus s;
        while ((s = f.pipeline->submit(producer, features, kNoDeadline, c)) == SubmitStatus::kRejected) {
          rejected.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
        }
        ASSERT_EQ(s, SubmitStatus::kAccepted);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(
      wait_until([&] { return ledger.completed.load(std::memory_order_acquire) == kProducers * kPerProducer; }));
  f.pipeline->shutdown();
  for (std::size_t i = 0; i < ledger.seen.size(); ++i) ASSERT_EQ(ledger.seen[i].load(), 1) << "request " << i;
  EXPECT_EQ(ledger.order_violations.load(), 0);
  EXPECT_EQ(ledger.wrong_outputs.load(), 0);
  EXPECT_EQ(ledger.ok.load(), kProducers * kPerProducer);
  const auto m = f.pipeline->metrics().snapshot();
  EXPECT_EQ(m.accepted, kProducers * kPerProducer);
  EXPECT_EQ(m.rejected, rejected.load());
  EXPECT_EQ(m.ok, kProducers * kPerProducer);
  EXPECT_EQ(m.end_to_end.count, kProducers * kPerProducer);
  EXPECT_GT(m.batches, 0u);
  EXPECT_LE(m.batches, kProducers * kPerProducer);
}

TEST(Pipeline, SeveralWorkersStillCompleteEveryRequestExactlyOnce) {
  PipelineConfig config;
  config.workers = 2;
  config.max_batch = 16;
  config.queue_capacity = 1024;
  Fixture f(config);
  const std::size_t kProducers = 4, kPerProducer = static_cast<std::size_t>(scaled(50000));
  std::vector<std::atomic<int>> seen(kProducers * kPerProducer);
  std::atomic<std::uint64_t> completed{0};
  struct Ctx {
    std::vector<std::atomic<int>>* seen;
    std::atomic<std::uint64_t>* completed;
  } ctx{&seen, &completed};
  auto on_result = [](void* c, const Result& r) {
    auto* x = static_cast<Ctx*>(c);
    (*x->seen)[r.tag].fetch_add(1, std::memory_order_relaxed);
    x->completed->fetch_add(1, std::memory_order_release);
  };
  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < kProducers; ++p)
    threads.emplace_back([&, p] {
      Producer producer = f.pipeline->make_producer();
      const float features[kWidth] = {1, 2, 3, 4};
      for (std::size_t i = 0; i < kPerProducer; ++i) {
        const Completion c{on_result, &ctx, p * kPerProducer + i};
        while (f.pipeline->submit(producer, features, kNoDeadline, c) != SubmitStatus::kAccepted)
          std::this_thread::yield();
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(wait_until([&] { return completed.load(std::memory_order_acquire) == kProducers * kPerProducer; }));
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << "request " << i;
}

TEST(Pipeline, OverloadIsShedWithExactRejectionCountsAndNothingAcceptedIsLost) {
  PipelineConfig config;
  config.max_batch = 4;
  config.queue_capacity = 16;
  Fixture f(config, 300us);
  std::atomic<std::uint64_t> completed{0};
  auto on_result = [](void* c, const Result& r) {
    EXPECT_EQ(r.status, ResultStatus::kOk);
    static_cast<std::atomic<std::uint64_t>*>(c)->fetch_add(1, std::memory_order_release);
  };
  Producer producer = f.pipeline->make_producer();
  const float features[kWidth] = {1, 1, 1, 1};
  std::uint64_t accepted = 0, rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    const SubmitStatus s = f.pipeline->submit(producer, features, kNoDeadline, {on_result, &completed, 0});
    (s == SubmitStatus::kAccepted ? accepted : rejected) += 1;
  }
  EXPECT_GT(rejected, 0u) << "a 16-slot queue in front of a 300 us model must overflow";
  // Never more in flight than the queue plus what workers hold (one batch).
  ASSERT_TRUE(wait_until([&] { return completed.load(std::memory_order_acquire) == accepted; }));
  const auto m = f.pipeline->metrics().snapshot();
  EXPECT_EQ(m.rejected, rejected);
  EXPECT_EQ(m.accepted, accepted);
  EXPECT_EQ(m.ok, accepted);
}

TEST(Pipeline, WrongFeatureWidthIsInvalidAndNeverCompletes) {
  Fixture f;
  Producer producer = f.pipeline->make_producer();
  const float features[kWidth + 1] = {};
  auto never = [](void*, const Result&) { ADD_FAILURE() << "an invalid request must not complete"; };
  EXPECT_EQ(f.pipeline->submit(producer, std::span<const float>(features, kWidth + 1), kNoDeadline, {never}),
            SubmitStatus::kInvalid);
  EXPECT_EQ(f.pipeline->submit(producer, std::span<const float>(features, kWidth - 1), kNoDeadline, {never}),
            SubmitStatus::kInvalid);
  f.pipeline->shutdown();
  EXPECT_EQ(f.pipeline->metrics().snapshot().invalid, 2u);
  EXPECT_EQ(f.pipeline->metrics().snapshot().accepted, 0u);
}

TEST(Pipeline, ExpiredRequestsCompleteAsExpiredAndAreNotRun) {
  Fixture f;
  const auto rows_before = f.backend->rows_run.load();
  Producer producer = f.pipeline->make_producer();
  const float features[kWidth] = {1, 2, 3, 4};
  ResultWaiter waiter;
  ASSERT_EQ(f.pipeline->submit(producer, features, now_ns() - 1, waiter.arm(7)), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(5s));
  EXPECT_EQ(waiter.status(), ResultStatus::kExpired);
  EXPECT_EQ(waiter.tag(), 7u);
  EXPECT_EQ(waiter.error(), "deadline passed before the batch ran");
  EXPECT_TRUE(waiter.outputs().empty());
  EXPECT_EQ(f.backend->rows_run.load(), rows_before);
  // A generous deadline is met.
  ASSERT_EQ(f.pipeline->submit(producer, features, deadline_in(10s), waiter.arm(8)), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(5s));
  EXPECT_EQ(waiter.status(), ResultStatus::kOk);
  EXPECT_EQ(f.pipeline->metrics().snapshot().expired, 1u);
}

TEST(Pipeline, ModelThatThrowsFailsItsBatchWithTheMessageAndThePipelineKeepsServing) {
  Fixture f;
  Producer producer = f.pipeline->make_producer();
  ResultWaiter waiter;
  const float bad[kWidth] = {FakeModel::kThrowOn, 0, 0, 0};
  ASSERT_EQ(f.pipeline->submit(producer, bad, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(5s));
  EXPECT_EQ(waiter.status(), ResultStatus::kModelError);
  EXPECT_EQ(waiter.error(), "fake model refused row 0");
  const float good[kWidth] = {1, 2, 3, 4};
  ASSERT_EQ(f.pipeline->submit(producer, good, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(5s));
  EXPECT_EQ(waiter.status(), ResultStatus::kOk);
  EXPECT_FLOAT_EQ(waiter.outputs()[0], 10.0f);
  const auto m = f.pipeline->metrics().snapshot();
  EXPECT_EQ(m.failed_batches, 1u);
  EXPECT_EQ(m.model_errors, 1u);
}

TEST(Pipeline, NanOutputFailsOnlyItsOwnRow) {
  PipelineConfig config;
  config.max_batch = 8;
  config.max_delay_us = 200000;  // gather both rows into one batch
  Fixture f(config);
  Producer producer = f.pipeline->make_producer();
  ResultWaiter nan_waiter, good_waiter;
  const float nan_row[kWidth] = {FakeModel::kNanOn, 0, 0, 0};
  const float good_row[kWidth] = {1, 1, 1, 1};
  ASSERT_EQ(f.pipeline->submit(producer, nan_row, kNoDeadline, nan_waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_EQ(f.pipeline->submit(producer, good_row, kNoDeadline, good_waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(nan_waiter.wait_for(5s));
  ASSERT_TRUE(good_waiter.wait_for(5s));
  EXPECT_EQ(nan_waiter.status(), ResultStatus::kModelError);
  EXPECT_EQ(nan_waiter.error(), "model output is not finite (NaN or Inf)");
  EXPECT_TRUE(nan_waiter.outputs().empty());
  EXPECT_EQ(good_waiter.status(), ResultStatus::kOk);
  EXPECT_FLOAT_EQ(good_waiter.outputs()[0], 4.0f);
  EXPECT_EQ(f.pipeline->metrics().snapshot().failed_batches, 0u);
}

TEST(Pipeline, ShutdownCancelsPendingRequestsAndEachCompletesOnce) {
  PipelineConfig config;
  config.max_batch = 2;
  config.queue_capacity = 256;
  Fixture f(config, 2000us);
  std::vector<std::atomic<int>> seen(200);
  std::atomic<int> ok{0}, cancelled{0};
  struct Ctx {
    std::vector<std::atomic<int>>* seen;
    std::atomic<int>*ok, *cancelled;
  } ctx{&seen, &ok, &cancelled};
  auto on_result = [](void* c, const Result& r) {
    auto* x = static_cast<Ctx*>(c);
    (*x->seen)[r.tag].fetch_add(1);
    if (r.status == ResultStatus::kCancelled) {
      EXPECT_EQ(r.error, "pipeline shut down before the request ran");
      x->cancelled->fetch_add(1);
    } else {
      EXPECT_EQ(r.status, ResultStatus::kOk);
      x->ok->fetch_add(1);
    }
  };
  Producer producer = f.pipeline->make_producer();
  const float features[kWidth] = {1, 2, 3, 4};
  for (std::uint64_t i = 0; i < seen.size(); ++i)
    ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {on_result, &ctx, i}), SubmitStatus::kAccepted);
  f.pipeline->shutdown();
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
  EXPECT_GT(cancelled.load(), 0);
  EXPECT_EQ(ok.load() + cancelled.load(), 200);
  EXPECT_EQ(f.pipeline->metrics().snapshot().cancelled, static_cast<std::uint64_t>(cancelled.load()));
  EXPECT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {on_result, &ctx, 0}), SubmitStatus::kRejected);
}

TEST(Pipeline, ShutdownRacingWithProducersLosesNothing) {
  for (int round = 0; round < 20; ++round) {
    PipelineConfig config;
    config.queue_capacity = 64;
    Fixture f(config, 20us);
    std::atomic<std::uint64_t> accepted{0}, completed{0};
    auto on_result = [](void* c, const Result&) { static_cast<std::atomic<std::uint64_t>*>(c)->fetch_add(1); };
    std::atomic<bool> go{true};
    std::vector<std::thread> threads;
    for (int p = 0; p < 4; ++p)
      threads.emplace_back([&] {
        Producer producer = f.pipeline->make_producer();
        const float features[kWidth] = {1, 2, 3, 4};
        while (go.load()) {
          if (f.pipeline->submit(producer, features, kNoDeadline, {on_result, &completed, 0}) ==
              SubmitStatus::kAccepted)
            accepted.fetch_add(1);
        }
      });
    // Shut down mid-stream: once the producers are demonstrably submitting.
    ASSERT_TRUE(wait_until([&] { return accepted.load() >= 50; }));
    f.pipeline->shutdown();
    go.store(false);
    for (auto& t : threads) t.join();
    ASSERT_EQ(completed.load(), accepted.load()) << "round " << round;
  }
}

TEST(Pipeline, MaxDelayGathersRequestsIntoOneFullBatch) {
  PipelineConfig config;
  config.max_batch = 8;
  config.max_delay_us = 10'000'000;  // far longer than the submits take, even on a loaded machine
  Fixture f(config);
  const auto forwards_before = f.backend->forwards.load();
  std::atomic<int> done{0};
  auto on_result = [](void* c, const Result& r) {
    EXPECT_EQ(r.status, ResultStatus::kOk);
    static_cast<std::atomic<int>*>(c)->fetch_add(1);
  };
  Producer producer = f.pipeline->make_producer();
  const float features[kWidth] = {1, 2, 3, 4};
  for (int i = 0; i < 8; ++i)
    ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {on_result, &done, 0}), SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return done.load() == 8; }));
  EXPECT_EQ(f.backend->forwards.load() - forwards_before, 1u);
  EXPECT_EQ(f.pipeline->metrics().snapshot().batch_sizes[8], 1u);
}

TEST(Pipeline, BatchesArePaddedUpToTheNextAllowedSize) {
  PipelineConfig config;
  config.max_batch = 8;
  config.allowed_batch_sizes = {4, 8};
  config.max_delay_us = 200000;
  Fixture f(config);
  const auto rows_before = f.backend->rows_run.load();
  const auto forwards_before = f.backend->forwards.load();
  std::atomic<int> done{0};
  auto on_result = [](void* c, const Result& r) {
    EXPECT_EQ(r.status, ResultStatus::kOk);
    static_cast<std::atomic<int>*>(c)->fetch_add(1);
  };
  Producer producer = f.pipeline->make_producer();
  const float features[kWidth] = {1, 2, 3, 4};
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {on_result, &done, 0}), SubmitStatus::kAccepted);
  ASSERT_TRUE(wait_until([&] { return done.load() == 3; }));
  const auto forwards = f.backend->forwards.load() - forwards_before;
  EXPECT_EQ(f.backend->rows_run.load() - rows_before, forwards * 4) << "every forward runs an allowed size";
  EXPECT_EQ(f.pipeline->metrics().snapshot().padded_rows, forwards * 4 - 3);
}

TEST(Pipeline, PublishedModelIsPickedUpAndResultsReportTheVersionThatRanThem) {
  Fixture f;
  Producer producer = f.pipeline->make_producer();
  ResultWaiter waiter;
  const float features[kWidth] = {1, 2, 3, 4};
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(5s));
  EXPECT_EQ(waiter.model_version(), 1u);
  EXPECT_FLOAT_EQ(waiter.outputs()[0], 10.0f);
  f.slot->publish(std::make_shared<FakeModel>(kWidth, 2, 3.0f));
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(5s));
  EXPECT_EQ(waiter.model_version(), 2u);
  EXPECT_FLOAT_EQ(waiter.outputs()[0], 30.0f);
  EXPECT_EQ(f.pipeline->metrics().snapshot().model_swaps_seen, 1u);
}

TEST(Pipeline, SwapsUnderLoadNeverMixVersionsWithinAResult) {
  PipelineConfig config;
  config.queue_capacity = 1024;
  Fixture f(config);
  std::atomic<std::uint64_t> completed{0}, mismatched{0};
  struct Ctx {
    std::atomic<std::uint64_t>*completed, *mismatched;
  } ctx{&completed, &mismatched};
  auto on_result = [](void* c, const Result& r) {
    auto* x = static_cast<Ctx*>(c);
    // Version v scales by v: features sum to 10.
    if (r.status != ResultStatus::kOk || r.outputs[0] != 10.0f * static_cast<float>(r.model_version))
      x->mismatched->fetch_add(1);
    x->completed->fetch_add(1, std::memory_order_release);
  };
  std::atomic<bool> go{true};
  std::atomic<std::uint64_t> accepted{0};
  std::thread producer_thread([&] {
    Producer producer = f.pipeline->make_producer();
    const float features[kWidth] = {1, 2, 3, 4};
    while (go.load())
      if (f.pipeline->submit(producer, features, kNoDeadline, {on_result, &ctx, 0}) == SubmitStatus::kAccepted)
        accepted.fetch_add(1);
  });
  for (std::uint64_t v = 2; v < 52; ++v) {
    f.slot->publish(std::make_shared<FakeModel>(kWidth, v, static_cast<float>(v)));
    // Let some requests run on this version before the next swap.
    const std::uint64_t seen = completed.load(std::memory_order_acquire);
    ASSERT_TRUE(wait_until([&] { return completed.load(std::memory_order_acquire) >= seen + 20; }));
  }
  go.store(false);
  producer_thread.join();
  ASSERT_TRUE(wait_until([&] { return completed.load(std::memory_order_acquire) == accepted.load(); }));
  EXPECT_EQ(mismatched.load(), 0u);
  EXPECT_GT(accepted.load(), 0u);
}

TEST(Pipeline, CallbackExceptionsAreCountedAndDoNotStopTheWorker) {
  Fixture f;
  Producer producer = f.pipeline->make_producer();
  auto throwing = [](void*, const Result&) { throw std::runtime_error("caller bug"); };
  const float features[kWidth] = {1, 2, 3, 4};
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {throwing}), SubmitStatus::kAccepted);
  ResultWaiter waiter;
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(5s));
  EXPECT_EQ(waiter.status(), ResultStatus::kOk);
  EXPECT_EQ(f.pipeline->metrics().snapshot().callback_exceptions, 1u);
}

class PipelineIdle : public ::testing::TestWithParam<IdleStrategy> {};

TEST_P(PipelineIdle, ServesRequestsAfterIdlingWithEveryStrategy) {
  PipelineConfig config;
  config.idle = GetParam();
  Fixture f(config);
  Producer producer = f.pipeline->make_producer();
  ResultWaiter waiter;
  const float features[kWidth] = {1, 2, 3, 4};
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(5ms);  // let the worker go idle (yield / block)
    ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
    ASSERT_TRUE(waiter.wait_for(5s));
    EXPECT_EQ(waiter.status(), ResultStatus::kOk);
    EXPECT_GE(waiter.batch_start_ns(), waiter.enqueue_ns());
    EXPECT_GE(waiter.batch_end_ns(), waiter.batch_start_ns());
  }
}

INSTANTIATE_TEST_SUITE_P(All, PipelineIdle,
                         ::testing::Values(IdleStrategy::kSpin, IdleStrategy::kSpinThenYield, IdleStrategy::kBlock));

TEST(PipelineConfigValidation, RejectsEachBadValueWithItsReason) {
  auto slot = std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1));
  auto backend = std::make_shared<FakeBackend>();
  auto expect_error = [&](PipelineConfig c, ErrorCode code, const std::string& message) {
    try {
      (void)Pipeline::create(c, slot, backend);
      ADD_FAILURE() << "expected: " << message;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code);
      EXPECT_EQ(std::string(e.what()), message);
    }
  };
  PipelineConfig c;
  c.max_batch = 0;
  expect_error(c, ErrorCode::kInvalidConfig, "pipeline config: max_batch must be >= 1");
  c = {};
  c.queue_capacity = 0;
  expect_error(c, ErrorCode::kInvalidConfig, "pipeline config: queue_capacity must be >= 1");
  c = {};
  c.workers = 0;
  expect_error(c, ErrorCode::kInvalidConfig, "pipeline config: workers must be >= 1");
  c = {};
  c.max_delay_us = -1;
  expect_error(c, ErrorCode::kInvalidConfig, "pipeline config: max_delay_us must be >= 0");
  c = {};
  c.idle_spin_us = -1;
  expect_error(c, ErrorCode::kInvalidConfig, "pipeline config: idle_spin_us must be >= 0");
  c = {};
  c.allowed_batch_sizes = {8, 4};
  expect_error(c, ErrorCode::kInvalidConfig, "pipeline config: allowed_batch_sizes must be strictly increasing");
  c = {};
  c.max_batch = 64;
  c.allowed_batch_sizes = {8, 32};
  expect_error(c, ErrorCode::kInvalidConfig,
               "pipeline config: the largest allowed batch size (32) is below max_batch (64)");
  c = {};
  c.workers = 2;
  c.pin_cores = {0};
  expect_error(c, ErrorCode::kInvalidConfig, "pipeline config: pin_cores names 1 cores for 2 workers");
  c = {};
  c.feature_width = 5;
  expect_error(c, ErrorCode::kWidthMismatch, "pipeline: model fake-v1 has 4 input features, the pipeline expects 5");
  c = {};
  c.pin_cores = {100000};
  try {
    (void)Pipeline::create(c, slot, backend);
    ADD_FAILURE() << "pinning to a core that does not exist must fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
    EXPECT_EQ(std::string(e.what()).rfind("pipeline: cannot pin worker 0 to core 100000: ", 0), 0u) << e.what();
  }
  try {
    (void)Pipeline::create({}, std::make_shared<ModelSlot>(), backend);
    ADD_FAILURE() << "an empty model slot must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "pipeline: the model slot holds no model");
  }
}

// ---- where completions run (shutdown drains on the caller's thread) ----

TEST(Pipeline, CancelledCompletionsRunOnTheThreadThatCallsShutdownAndOthersOnAWorker) {
  PipelineConfig config;
  config.max_batch = 1;
  config.queue_capacity = 64;
  config.warm_up = false;
  Fixture f(config, 2000us);
  struct Ctx {
    Mutex mutex;
    std::vector<std::pair<ResultStatus, std::thread::id>> seen TICKINFER_GUARDED_BY(mutex);
  } ctx;
  auto on_result = [](void* c, const Result& r) {
    auto* x = static_cast<Ctx*>(c);
    MutexLock lock(x->mutex);
    x->seen.emplace_back(r.status, std::this_thread::get_id());
  };
  Producer producer = f.pipeline->make_producer();
  const float features[kWidth] = {1, 2, 3, 4};
  for (std::uint64_t i = 0; i < 64; ++i)
    ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {on_result, &ctx, i}), SubmitStatus::kAccepted);
  std::thread::id shutdown_thread;
  std::thread stopper([&] {
    shutdown_thread = std::this_thread::get_id();
    f.pipeline->shutdown();
  });
  stopper.join();
  MutexLock lock(ctx.mutex);
  ASSERT_EQ(ctx.seen.size(), 64u) << "shutdown() returns after every accepted request completed";
  std::size_t cancelled = 0, ok = 0;
  for (const auto& [status, thread] : ctx.seen) {
    if (status == ResultStatus::kCancelled) {
      ++cancelled;
      EXPECT_EQ(thread, shutdown_thread) << "a cancelled completion runs on the shutdown() caller's thread";
    } else {
      ++ok;
      EXPECT_EQ(status, ResultStatus::kOk);
      EXPECT_NE(thread, shutdown_thread) << "a completed request runs on a worker";
      EXPECT_NE(thread, std::this_thread::get_id()) << "a completed request runs on a worker";
    }
  }
  EXPECT_GT(cancelled, 0u);
  EXPECT_EQ(ok + cancelled, 64u);
}

// ---- ResultWaiter: really blocks, and the lifetime rule ----

long voluntary_switches_of_this_thread() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_nvcsw;
}

PipelineConfig slow_single_row_config() {
  PipelineConfig config;
  config.max_batch = 1;
  config.warm_up = false;  // the model below takes 300 ms per forward
  return config;
}

TEST(ResultWaiter, WaitForSleepsInTheKernelInsteadOfPollingUntilTheTimeout) {
  Fixture f(slow_single_row_config(), 300000us);
  Producer producer = f.pipeline->make_producer();
  ResultWaiter waiter;
  const float features[kWidth] = {1, 2, 3, 4};
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  const long before = voluntary_switches_of_this_thread();
  EXPECT_FALSE(waiter.wait_for(100ms, 0ns));
  const long during_timeout = voluntary_switches_of_this_thread() - before;
  // A 20 us sleep-slice poll switches out thousands of times in 100 ms; one futex wait does it a few times.
  EXPECT_LT(during_timeout, 20) << "wait_for() must block, not poll";
  const long before_result = voluntary_switches_of_this_thread();
  ASSERT_TRUE(waiter.wait_for(10s, 0ns));
  EXPECT_LT(voluntary_switches_of_this_thread() - before_result, 20);
  EXPECT_EQ(waiter.status(), ResultStatus::kOk);
  EXPECT_FLOAT_EQ(waiter.outputs()[0], 10.0f);
}

TEST(ResultWaiter, WaitForAsleepIsWokenByEachResultAcrossReuse) {
  Fixture f(slow_single_row_config(), 2000us);
  Producer producer = f.pipeline->make_producer();
  ResultWaiter waiter;
  const float features[kWidth] = {1, 2, 3, 4};
  for (std::uint64_t i = 0; i < scaled(200, 20); ++i) {
    ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, waiter.arm(i)), SubmitStatus::kAccepted);
    ASSERT_TRUE(waiter.wait_for(10s, 0ns)) << "request " << i;  // asleep when the 2 ms forward finishes
    EXPECT_EQ(waiter.tag(), i);
    EXPECT_EQ(waiter.status(), ResultStatus::kOk);
  }
}

TEST(ResultWaiter, ReportsInFlightAfterATimeoutUntilTheResultArrives) {
  Fixture f(slow_single_row_config(), 300000us);
  Producer producer = f.pipeline->make_producer();
  ResultWaiter waiter;
  EXPECT_FALSE(waiter.in_flight());
  const float features[kWidth] = {1, 2, 3, 4};
  ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  EXPECT_FALSE(waiter.in_flight()) << "not known to be in flight before a wait timed out";
  EXPECT_FALSE(waiter.wait_for(1ms));
  EXPECT_TRUE(waiter.in_flight());
  ASSERT_TRUE(waiter.wait_for(10s));
  EXPECT_FALSE(waiter.in_flight());
  EXPECT_EQ(waiter.status(), ResultStatus::kOk);
}

TEST(ResultWaiterDeathTest, DestroyingAWaiterWhoseWaitTimedOutWhileItsRequestIsInFlightAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto abandon_in_flight_waiter = [] {
    Fixture f(slow_single_row_config(), 300000us);
    Producer producer = f.pipeline->make_producer();
    auto waiter = std::make_unique<ResultWaiter>();
    const float features[kWidth] = {1, 2, 3, 4};
    if (f.pipeline->submit(producer, features, kNoDeadline, waiter->arm()) != SubmitStatus::kAccepted) return;
    if (waiter->wait_for(1ms)) return;
    waiter.reset();  // the worker would write into it when the forward ends
  };
  EXPECT_DEATH(abandon_in_flight_waiter(), "ResultWaiter destroyed while its request is still in flight");
}

// ---- a failing row fails alone: failed batches are retried in halves ----

struct Outcomes {
  explicit Outcomes(std::size_t n) : status(n), error(n) {}
  static void on_result(void* self, const Result& r) {
    auto* o = static_cast<Outcomes*>(self);
    o->status[r.tag] = r.status;
    o->error[r.tag] = std::string(r.error);
    if (r.tag != o->next) o->order_violations.fetch_add(1);
    o->next = r.tag + 1;
    o->done.fetch_add(1, std::memory_order_release);
  }
  std::vector<ResultStatus> status;  // written by the one worker, read after `done` (acquire)
  std::vector<std::string> error;
  std::uint64_t next = 0;
  std::atomic<int> order_violations{0};
  std::atomic<std::size_t> done{0};
};

PipelineConfig one_full_batch_config() {
  PipelineConfig config;
  config.max_batch = 64;
  config.max_delay_us = 10'000'000;  // the worker waits until all 64 rows are in one batch
  return config;
}

// Submits 64 rows (feature 0 = kThrowOn for the poisoned ones) as one batch; returns forwards it took.
std::uint64_t run_one_batch(Fixture& f, Outcomes& outcomes, const std::vector<std::size_t>& poisoned) {
  Producer producer = f.pipeline->make_producer();
  const auto forwards_before = f.backend->forwards.load();
  for (std::uint64_t i = 0; i < 64; ++i) {
    float features[kWidth] = {1, 2, 3, 4};
    if (std::find(poisoned.begin(), poisoned.end(), i) != poisoned.end()) features[0] = FakeModel::kThrowOn;
    EXPECT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {&Outcomes::on_result, &outcomes, i}),
              SubmitStatus::kAccepted);
  }
  EXPECT_TRUE(wait_until([&] { return outcomes.done.load(std::memory_order_acquire) == 64; }));
  return f.backend->forwards.load() - forwards_before;
}

TEST(Pipeline, OnlyThePoisonedRowsOfAFailedBatchFailAndTheCleanRowsSucceed) {
  for (const std::vector<std::size_t>& poisoned :
       {std::vector<std::size_t>{20, 21, 22, 23}, std::vector<std::size_t>{37}, std::vector<std::size_t>{0, 63}}) {
    Fixture f(one_full_batch_config());
    Outcomes outcomes(64);
    const std::uint64_t forwards = run_one_batch(f, outcomes, poisoned);
    for (std::size_t i = 0; i < 64; ++i) {
      const bool bad = std::find(poisoned.begin(), poisoned.end(), i) != poisoned.end();
      EXPECT_EQ(outcomes.status[i], bad ? ResultStatus::kModelError : ResultStatus::kOk) << "row " << i;
      // A poisoned row is isolated in a forward of its own, so the fake model names row 0.
      if (bad) {
        EXPECT_EQ(outcomes.error[i], "fake model refused row 0") << "row " << i;
      }
    }
    EXPECT_EQ(outcomes.order_violations.load(), 0) << "completions keep queue order through the retries";
    const auto m = f.pipeline->metrics().snapshot();
    EXPECT_EQ(m.batches, 1u);
    EXPECT_EQ(m.failed_batches, 1u);
    EXPECT_EQ(m.batch_retries, 1u);
    EXPECT_EQ(m.retry_forwards, forwards - 1);
    EXPECT_LE(m.retry_forwards, 21u) << "3 * bit_width(64) extra forwards at most";
    EXPECT_EQ(m.model_errors, poisoned.size());
    EXPECT_EQ(m.ok, 64u - poisoned.size());
  }
}

// A snapshot taken as soon as a result arrives counts it: metrics are added before completions run, not after
// the batch (the race that let a test read model_errors = 0 after all 64 callbacks had run).
TEST(Pipeline, AResultIsCountedInTheMetricsBeforeItsCallbackRuns) {
  Fixture f(one_full_batch_config());
  struct Seen {
    Pipeline* pipeline = nullptr;
    std::vector<std::uint64_t> counted = std::vector<std::uint64_t>(64);  // ok + model_errors seen by callback tag
    std::atomic<std::size_t> done{0};
  } seen;
  seen.pipeline = f.pipeline.get();
  auto on_result = [](void* self, const Result& r) {
    auto* s = static_cast<Seen*>(self);
    const MetricsSnapshot m = s->pipeline->metrics().snapshot();
    s->counted[r.tag] = m.ok + m.model_errors;
    s->done.fetch_add(1, std::memory_order_release);
  };
  Producer producer = f.pipeline->make_producer();
  for (std::uint64_t i = 0; i < 64; ++i) {
    float features[kWidth] = {1, 2, 3, 4};
    if (i == 40) features[0] = FakeModel::kThrowOn;  // a retried batch: rows complete from several forwards
    ASSERT_EQ(f.pipeline->submit(producer, features, kNoDeadline, {on_result, &seen, i}), SubmitStatus::kAccepted);
  }
  ASSERT_TRUE(wait_until([&] { return seen.done.load(std::memory_order_acquire) == 64; }));
  for (std::uint64_t i = 0; i < 64; ++i) EXPECT_GE(seen.counted[i], i + 1) << "row " << i;
  const MetricsSnapshot m = f.pipeline->metrics().snapshot();
  EXPECT_EQ(m.ok, 63u);
  EXPECT_EQ(m.model_errors, 1u);
}

TEST(Pipeline, AModelThatAlwaysThrowsCostsABoundedNumberOfForwardsPerBatch) {
  Fixture f(one_full_batch_config());
  auto model = std::dynamic_pointer_cast<const FakeModel>(f.slot->current());
  ASSERT_TRUE(model);
  model->set_throw_mode(FakeModel::ThrowMode::kRuntimeError);
  Outcomes outcomes(64);
  const std::uint64_t forwards = run_one_batch(f, outcomes, {});
  EXPECT_EQ(forwards, 1u + 21u) << "the batch's forward plus the retry budget, 3 * bit_width(64)";
  for (std::size_t i = 0; i < 64; ++i) {
    EXPECT_EQ(outcomes.status[i], ResultStatus::kModelError) << "row " << i;
    EXPECT_EQ(outcomes.error[i], "fake model always throws") << "row " << i;
  }
  EXPECT_EQ(outcomes.order_violations.load(), 0);
  const auto m = f.pipeline->metrics().snapshot();
  EXPECT_EQ(m.failed_batches, 1u);
  EXPECT_EQ(m.batch_retries, 1u);
  EXPECT_EQ(m.retry_forwards, 21u);
  EXPECT_EQ(m.model_errors, 64u);
  const std::string text = to_prometheus(m);
  EXPECT_NE(text.find("tickinfer_batch_retries_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tickinfer_retry_forwards_total 21\n"), std::string::npos) << text;
}

// ---- create() refuses with an Error and its code ----

TEST(PipelineConfigValidation, AModelWhoseWarmUpThrowsIsRefusedWithModelErrorNamingTheBatchSize) {
  auto backend = std::make_shared<FakeBackend>();
  auto model = std::make_shared<FakeModel>(kWidth, 1);
  auto slot = std::make_shared<ModelSlot>(model);
  PipelineConfig config;
  config.max_batch = 8;
  config.allowed_batch_sizes = {4, 8};
  auto expect_refusal = [&](ErrorCode code, const std::string& message) {
    try {
      (void)Pipeline::create(config, slot, backend);
      ADD_FAILURE() << "expected: " << message;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code);
      EXPECT_EQ(std::string(e.what()), message);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a tickinfer::Error: " << e.what();
    }
  };
  model->set_throw_mode(FakeModel::ThrowMode::kRuntimeError);
  expect_refusal(ErrorCode::kModelError,
                 "pipeline: warm-up of fake-v1 failed at batch size 4: fake model always throws");
  model->set_throw_mode(FakeModel::ThrowMode::kTickinferError);
  expect_refusal(ErrorCode::kUnsupported, "pipeline: warm-up of fake-v1 failed at batch size 4: fake device lost");
}

// ---- one padding table: pipeline_batch_sizes() ----

TEST(PipelineConfigValidation, PipelineBatchSizesAreThePaddedSizesTheWorkersRun) {
  PipelineConfig config;
  config.max_batch = 6;
  EXPECT_EQ(pipeline_batch_sizes(config), (std::vector<std::size_t>{1, 2, 3, 4, 5, 6}));
  config.allowed_batch_sizes = {1, 4, 8};
  EXPECT_EQ(pipeline_batch_sizes(config), (std::vector<std::size_t>{1, 4, 8}));
  config.allowed_batch_sizes = {2, 4};
  try {
    (void)pipeline_batch_sizes(config);
    ADD_FAILURE() << "allowed sizes below max_batch must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
    EXPECT_EQ(std::string(e.what()), "pipeline config: the largest allowed batch size (4) is below max_batch (6)");
  }
}

// ---- per-producer counters ----

TEST(Pipeline, SubmitCountersAreExactUnderEightProducersAndOutliveTheirProducers) {
  PipelineConfig config;
  config.queue_capacity = 256;
  Fixture f(config);
  const std::size_t kProducers = 8;
  const std::uint64_t kPerProducer = scaled(20000, 100);
  std::atomic<std::uint64_t> accepted{0}, rejected{0}, invalid{0}, completed{0};
  auto on_result = [](void* c, const Result&) {
    static_cast<std::atomic<std::uint64_t>*>(c)->fetch_add(1, std::memory_order_relaxed);
  };
  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < kProducers; ++p)
    threads.emplace_back([&, p] {
      std::uint64_t a = 0, r = 0, v = 0;
      // Two producer handles in turn per thread: counts of a destroyed producer must be kept.
      for (int round = 0; round < 2; ++round) {
        Producer producer = f.pipeline->make_producer();
        const float features[kWidth + 1] = {1, 2, 3, 4, 5};
        for (std::uint64_t i = 0; i < kPerProducer / 2; ++i) {
          const std::size_t width = (i + p) % 7 == 0 ? kWidth + 1 : kWidth;
          switch (f.pipeline->submit(producer, std::span<const float>(features, width), kNoDeadline,
                                     {on_result, &completed, 0})) {
            case SubmitStatus::kAccepted:
              ++a;
              break;
            case SubmitStatus::kRejected:
              ++r;
              break;
            case SubmitStatus::kInvalid:
              ++v;
              break;
          }
        }
      }
      accepted += a;
      rejected += r;
      invalid += v;
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(wait_until([&] { return completed.load() == accepted.load(); }));
  const auto m = f.pipeline->metrics().snapshot();
  EXPECT_EQ(m.accepted, accepted.load());
  EXPECT_EQ(m.rejected, rejected.load());
  EXPECT_EQ(m.invalid, invalid.load());
  EXPECT_EQ(m.accepted + m.rejected + m.invalid, kProducers * (kPerProducer / 2) * 2);
  EXPECT_GT(m.invalid, 0u);
  f.pipeline->shutdown();
  EXPECT_EQ(f.pipeline->metrics().snapshot().accepted, accepted.load());
}

// ---- shutdown handshake ----

TEST(Pipeline, ShutdownRacingWithEightProducersCompletesEveryAcceptedRequestBeforeItReturns) {
  for (std::uint64_t round = 0; round < scaled(40, 5); ++round) {
    PipelineConfig config;
    config.queue_capacity = 32;
    config.max_batch = 8;
    Fixture f(config, 5us);
    std::atomic<std::uint64_t> accepted{0}, completed{0}, after_shutdown{0};
    std::atomic<bool> shut{false};
    struct Ctx {
      std::atomic<std::uint64_t>* completed;
    } ctx{&completed};
    auto on_result = [](void* c, const Result&) { static_cast<Ctx*>(c)->completed->fetch_add(1); };
    std::atomic<bool> go{true};
    std::vector<std::thread> threads;
    for (int p = 0; p < 8; ++p)
      threads.emplace_back([&] {
        Producer producer = f.pipeline->make_producer();
        const float features[kWidth] = {1, 2, 3, 4};
        while (go.load(std::memory_order_relaxed)) {
          const bool was_shut = shut.load(std::memory_order_acquire);
          if (f.pipeline->submit(producer, features, kNoDeadline, {on_result, &ctx, 0}) == SubmitStatus::kAccepted) {
            accepted.fetch_add(1);
            if (was_shut) after_shutdown.fetch_add(1);
          }
        }
      });
    ASSERT_TRUE(wait_until([&] { return accepted.load() >= 20; }));
    f.pipeline->shutdown();
    shut.store(true, std::memory_order_release);
    const std::uint64_t completed_at_return = completed.load();
    go.store(false);
    for (auto& t : threads) t.join();
    EXPECT_EQ(after_shutdown.load(), 0u) << "round " << round << ": accepted after shutdown() returned";
    // No submit() is accepted once shutdown() returned, and every accepted one has completed by then.
    ASSERT_EQ(completed_at_return, accepted.load()) << "round " << round;
    ASSERT_EQ(completed.load(), accepted.load()) << "round " << round;
  }
}

}  // namespace
}  // namespace tickinfer
