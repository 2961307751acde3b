// POST .../infer's completion path (lib/src/serve/infer_call): calls whose rows complete together are answered
// once each, in completion order, by one complete() after one doorbell; a call completed but never answered
// (its I/O thread stopped first) is freed by drain(), not leaked.

#include <gtest/gtest.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <poll.h>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "serve/infer_call.hpp"
#include "support/fake_model.hpp"
#include "tickinfer/model_slot.hpp"
#include "tickinfer/pipeline.hpp"

namespace tickinfer::internal {
namespace {

using testing::FakeBackend;
using testing::FakeModel;

constexpr std::size_t kWidth = 4;

struct Fixture {
  Fixture() {
    PipelineConfig config;
    config.max_batch = 64;
    config.max_delay_us = 0;
    config.queue_capacity = 4096;
    slot = std::make_shared<ModelSlot>(std::make_shared<FakeModel>(kWidth, 1, 2.0f));
    pipeline = Pipeline::create(config, slot, std::make_shared<FakeBackend>());
    dispatcher = std::make_unique<InferDispatcher>(*pipeline, std::chrono::milliseconds(10'000));
  }
  std::shared_ptr<InferCall> call(std::size_t rows, std::atomic<int>& answered, std::vector<int>* statuses) {
    auto c = std::make_shared<InferCall>();
    c->request.rows = rows;
    c->request.values.assign(rows * kWidth, 1.0f);
    c->model_name = "fake";
    c->output_width = 1;
    c->done = [&answered, statuses](HttpResponse r) {
      if (statuses != nullptr) statuses->push_back(r.status);
      answered.fetch_add(1);
    };
    return c;
  }
  // Waits for the doorbell and reads (resets) it, as the I/O thread does; false after 10 s.
  bool doorbell() {
    pollfd p{dispatcher->notify_fd(), POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) return false;
    std::uint64_t rung = 0;
    return ::read(dispatcher->notify_fd(), &rung, sizeof rung) == sizeof rung && rung >= 1;
  }
  std::shared_ptr<ModelSlot> slot;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<InferDispatcher> dispatcher;
};

TEST(InferCall, EveryCompletedCallIsAnsweredOnceAfterTheDoorbellRangAndNoneIsLost) {
  Fixture f;
  std::atomic<int> answered{0};
  std::vector<int> statuses;
  constexpr int kCalls = 2000;
  int submitted = 0;
  // The I/O thread's loop: doorbell, complete(); calls submitted meanwhile in bursts of up to 8 rows.
  while (answered.load() < kCalls) {
    for (int k = 0; k < 16 && submitted < kCalls; ++k, ++submitted)
      f.dispatcher->submit(f.call(1 + submitted % 8, answered, &statuses));
    ASSERT_TRUE(f.doorbell()) << answered.load() << " of " << submitted << " answered, and no doorbell";
    f.dispatcher->complete();
  }
  EXPECT_EQ(answered.load(), kCalls);
  EXPECT_EQ(statuses, std::vector<int>(kCalls, 200));
  // Nothing is left: no doorbell rings for calls already answered.
  std::uint64_t rung = 0;
  EXPECT_EQ(::read(f.dispatcher->notify_fd(), &rung, sizeof rung), -1);
  EXPECT_EQ(f.dispatcher->complete(), 0u);
}

TEST(InferCall, ACallCompletedButNeverAnsweredIsFreedByDrain) {
  Fixture f;
  std::atomic<int> answered{0};
  auto c = f.call(3, answered, nullptr);
  const std::weak_ptr<InferCall> watch = c;
  f.dispatcher->submit(std::move(c));
  ASSERT_TRUE(f.doorbell());  // completed; its I/O thread never calls complete()
  EXPECT_FALSE(watch.expired());
  f.dispatcher->drain();
  EXPECT_TRUE(watch.expired()) << "the completed call leaked";
  EXPECT_EQ(answered.load(), 0);
}

}  // namespace
}  // namespace tickinfer::internal
