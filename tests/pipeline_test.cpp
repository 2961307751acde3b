#include "tickinfer/pipeline.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "support/fake_model.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/waiter.hpp"

namespace tickinfer {
namespace {

using testing::FakeBackend;
using testing::FakeModel;
using namespace std::chrono_literals;

constexpr std::size_t kWidth = 4;

// Scales iteration counts down under sanitizers via TICKINFER_STRESS_SCALE (e.g. 0.1).
std::size_t scaled(std::size_t n) {
  const char* s = std::getenv("TICKINFER_STRESS_SCALE");
  const double f = s ? std::atof(s) : 1.0;
  return std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(n) * f));
}

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

void wait_until(const std::function<bool()>& done, std::chrono::seconds limit = 60s) {
  const auto give_up = Clock::now() + limit;
  while (!done() && Clock::now() < give_up) std::this_thread::sleep_for(100us);
  ASSERT_TRUE(done()) << "timed out";
}

TEST(Pipeline, EveryAcceptedRequestFromEightProducersCompletesExactlyOnceInProducerOrder) {
  PipelineConfig config;
  config.max_batch = 64;
  config.queue_capacity = 4096;
  config.idle = IdleStrategy::kSpinThenYield;
  Fixture f(config);
  const std::size_t kProducers = 8, kPerProducer = scaled(100000);
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
  wait_until([&] { return ledger.completed.load(std::memory_order_acquire) == kProducers * kPerProducer; });
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
  const std::size_t kProducers = 4, kPerProducer = scaled(50000);
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
  wait_until([&] { return completed.load(std::memory_order_acquire) == kProducers * kPerProducer; });
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
  wait_until([&] { return completed.load(std::memory_order_acquire) == accepted; });
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
    std::this_thread::sleep_for(2ms);
    f.pipeline->shutdown();
    go.store(false);
    for (auto& t : threads) t.join();
    ASSERT_EQ(completed.load(), accepted.load()) << "round " << round;
  }
}

TEST(Pipeline, MaxDelayGathersRequestsIntoOneFullBatch) {
  PipelineConfig config;
  config.max_batch = 8;
  config.max_delay_us = 500000;  // far longer than the submits take
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
  wait_until([&] { return done.load() == 8; });
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
  wait_until([&] { return done.load() == 3; });
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
    std::this_thread::sleep_for(1ms);
  }
  go.store(false);
  producer_thread.join();
  wait_until([&] { return completed.load(std::memory_order_acquire) == accepted.load(); });
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

}  // namespace
}  // namespace tickinfer
