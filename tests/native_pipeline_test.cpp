// The pipeline on the native backend: many producers, hot swaps between native models, exactly-once completions
// whose outputs match the version they report.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "model/native/native_model.hpp"
#include "support/fake_model.hpp"
#include "support/wait.hpp"
#include "tickinfer/native.hpp"
#include "tickinfer/pipeline.hpp"

namespace tickinfer {
namespace {

constexpr std::size_t kWidth = 8;

// y = [sum(x) + version, version].
std::shared_ptr<const Model> versioned_model(std::uint64_t version) {
  native::Graph g;
  g.input_width = kWidth;
  native::Node dense{native::Op::kDense, {0}, 2, std::vector<float>(2 * kWidth, 0.0f), {}, 0, 0, false, "dense"};
  for (std::size_t k = 0; k < kWidth; ++k) dense.weights[k] = 1.0f;
  dense.bias = {static_cast<float>(version), static_cast<float>(version)};
  g.nodes.push_back(dense);
  g.output = 1;
  ModelMetadata meta;
  meta.format_version = kMetadataFormatVersion;
  meta.name = "versioned";
  for (std::size_t i = 0; i < kWidth; ++i) meta.input_names.push_back(std::string("f").append(std::to_string(i)));
  meta.output_names = {"sum", "version"};
  meta.feature_schema_hash = "test";
  return std::make_shared<native::NativeModel>(
      meta, version, std::string("versioned-v").append(std::to_string(version)), native::Plan::compile(g));
}

struct Tally {
  std::vector<std::atomic<int>> seen;
  std::atomic<std::uint64_t> ok{0}, wrong{0}, other{0};
  explicit Tally(std::size_t n) : seen(n) {}
  static void on_result(void* self, const Result& r) {
    auto& t = *static_cast<Tally*>(self);
    t.seen[r.tag].fetch_add(1, std::memory_order_relaxed);
    if (r.status != ResultStatus::kOk) {
      t.other.fetch_add(1);
      return;
    }
    // Features are all (tag % 100); sum = 8 * that.
    const float expected_sum = 8.0f * static_cast<float>(r.tag % 100) + static_cast<float>(r.model_version);
    if (r.outputs.size() != 2 || r.outputs[1] != static_cast<float>(r.model_version) || r.outputs[0] != expected_sum)
      t.wrong.fetch_add(1);
    t.ok.fetch_add(1, std::memory_order_release);  // pairs with the acquire in the wait below
  }
};

TEST(NativePipeline, EveryRequestFromFourProducersCompletesOnceWithItsVersionsOutputsAcrossSwaps) {
  auto slot = std::make_shared<ModelSlot>(versioned_model(1));
  PipelineConfig config;
  config.max_batch = 32;
  config.queue_capacity = 4096;
  auto pipeline = Pipeline::create(config, slot, make_native_backend());
  const std::size_t producers = 4, per = testing::scaled(20000, 2000);
  Tally tally(producers * per);
  std::atomic<bool> done{false};
  // One swap before any request, so the first batch picks up a new model however late the swapper starts.
  slot->publish(versioned_model(2));
  std::thread swapper([&] {
    for (std::uint64_t v = 3; !done.load(); ++v) {
      slot->publish(versioned_model(v));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      auto producer = pipeline->make_producer();
      for (std::size_t i = 0; i < per; ++i) {
        const std::uint64_t tag = p * per + i;
        const std::vector<float> features(kWidth, static_cast<float>(tag % 100));
        while (pipeline->submit(producer, features, kNoDeadline, {&Tally::on_result, &tally, tag}) !=
               SubmitStatus::kAccepted) {
          std::this_thread::yield();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(testing::wait_until([&] { return tally.ok.load(std::memory_order_acquire) == producers * per; }))
      << tally.ok.load() << " ok, " << tally.other.load() << " not ok";
  done = true;
  swapper.join();
  pipeline->shutdown();
  EXPECT_EQ(tally.wrong.load(), 0u);
  EXPECT_EQ(tally.other.load(), 0u);
  for (std::size_t i = 0; i < tally.seen.size(); ++i) ASSERT_EQ(tally.seen[i].load(), 1) << "request " << i;
  EXPECT_GT(pipeline->metrics().snapshot().model_swaps_seen, 0u);
}

TEST(NativePipeline, AModelWithoutANativePlanIsRefusedAtCreate) {
  auto slot = std::make_shared<ModelSlot>(std::make_shared<testing::FakeModel>(kWidth, 1));
  try {
    (void)Pipeline::create(PipelineConfig{}, slot, make_native_backend());
    FAIL() << "expected the warm-up to refuse the model";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("has no native plan"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tickinfer
