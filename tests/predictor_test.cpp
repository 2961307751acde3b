// Direct mode: Predictor runs the slot's current native model on the calling thread, picks up swaps, and
// allocates nothing while the model is unchanged.

#include <gtest/gtest.h>

#include "support/count_new.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "model/native/native_model.hpp"
#include "support/fake_model.hpp"
#include "support/wait.hpp"
#include "tickinfer/predictor.hpp"

namespace tickinfer {
namespace {

constexpr std::size_t kWidth = 4;

ModelMetadata metadata(std::size_t outputs) {
  ModelMetadata meta;
  meta.format_version = kMetadataFormatVersion;
  meta.name = "direct";
  for (std::size_t i = 0; i < kWidth; ++i) meta.input_names.push_back(std::string("f").append(std::to_string(i)));
  for (std::size_t i = 0; i < outputs; ++i) meta.output_names.push_back(std::string("y").append(std::to_string(i)));
  meta.feature_schema_hash = "test";
  return meta;
}

// y = [sum(x) * scale + version, version]: the output names the version that computed it.
std::shared_ptr<const Model> model(std::uint64_t version, float scale = 1.0f) {
  native::Graph g;
  g.input_width = kWidth;
  native::Node dense{native::Op::kDense, {0}, 2, std::vector<float>(2 * kWidth, 0.0f), {}, 0, 0, false, "dense"};
  for (std::size_t k = 0; k < kWidth; ++k) dense.weights[k] = scale;
  dense.bias = {static_cast<float>(version), static_cast<float>(version)};
  g.nodes.push_back(dense);
  g.output = 1;
  return std::make_shared<native::NativeModel>(
      metadata(2), version, std::string("direct-v").append(std::to_string(version)), native::Plan::compile(g));
}

TEST(Predictor, PredictsWithTheCurrentNativeModel) {
  auto slot = std::make_shared<ModelSlot>(model(3, 2.0f));
  Predictor predictor(slot);
  const float x[kWidth] = {1, 2, 3, 4};
  float y[2] = {};
  ASSERT_EQ(predictor.predict(x, y), PredictStatus::kOk);
  EXPECT_FLOAT_EQ(y[0], 10.0f * 2.0f + 3.0f);
  EXPECT_FLOAT_EQ(y[1], 3.0f);
  EXPECT_EQ(predictor.model_version(), 3u);
}

TEST(Predictor, PicksUpAPublishedModelOnTheNextCall) {
  auto slot = std::make_shared<ModelSlot>(model(1));
  Predictor predictor(slot);
  const float x[kWidth] = {1, 1, 1, 1};
  float y[2] = {};
  ASSERT_EQ(predictor.predict(x, y), PredictStatus::kOk);
  EXPECT_FLOAT_EQ(y[1], 1.0f);
  slot->publish(model(2));
  ASSERT_EQ(predictor.predict(x, y), PredictStatus::kOk);
  EXPECT_FLOAT_EQ(y[1], 2.0f);
  EXPECT_EQ(predictor.model_version(), 2u);
}

TEST(Predictor, AllocatesNothingWhileTheModelIsUnchanged) {
  auto slot = std::make_shared<ModelSlot>(model(1));
  Predictor predictor(slot);
  const float x[kWidth] = {1, 2, 3, 4};
  float y[2] = {};
  ASSERT_EQ(predictor.predict(x, y), PredictStatus::kOk);
  std::size_t ok = 0, allocations = 0;
  {
    testing::CountNew count;
    for (int i = 0; i < 10000; ++i) ok += predictor.predict(x, y) == PredictStatus::kOk;
    allocations = count.calls();
  }
  EXPECT_EQ(ok, 10000u);
  EXPECT_EQ(allocations, 0u);
}

TEST(Predictor, RefusesWhatItCannotRunWithAStatus) {
  const float x[kWidth] = {1, 2, 3, 4};
  float y[2] = {};
  {
    Predictor predictor(std::make_shared<ModelSlot>());
    EXPECT_EQ(predictor.predict(x, y), PredictStatus::kNoModel);
  }
  {
    // A model without a native plan (the pipeline's fake): direct mode runs the native engine only.
    Predictor predictor(std::make_shared<ModelSlot>(std::make_shared<testing::FakeModel>(kWidth, 1)));
    EXPECT_EQ(predictor.predict(x, y), PredictStatus::kNotNative);
  }
  {
    Predictor predictor(std::make_shared<ModelSlot>(model(1)));
    const float short_row[kWidth - 1] = {1, 2, 3};
    float one_output[1];
    EXPECT_EQ(predictor.predict(short_row, y), PredictStatus::kInvalid);
    EXPECT_EQ(predictor.predict(x, one_output), PredictStatus::kInvalid);
  }
  {
    Predictor predictor(std::make_shared<ModelSlot>(model(1, std::numeric_limits<float>::infinity())));
    const float zeros[kWidth] = {0, 0, 0, 0};  // inf * 0 = NaN
    EXPECT_EQ(predictor.predict(zeros, y), PredictStatus::kModelError);
  }
  EXPECT_STREQ(to_string(PredictStatus::kNotNative), "not_native");
}

TEST(Predictor, EveryPredictionMatchesTheVersionItReportsWhileModelsAreSwapped) {
  auto slot = std::make_shared<ModelSlot>(model(1));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> published{1};
  std::thread swapper([&] {
    for (std::uint64_t v = 2; v <= testing::scaled(300, 30) && !stop.load(); ++v) {
      slot->publish(model(v));
      published.store(v, std::memory_order_release);  // pairs with the acquire load in the predicting loop
      std::this_thread::yield();
    }
  });
  Predictor predictor(slot);
  const float x[kWidth] = {0.5f, 0.25f, 0.125f, 0.125f};  // sum 1
  std::size_t mismatches = 0, calls = 0, not_ok = 0;
  std::uint64_t last_version = 0, went_back = 0;
  const std::uint64_t final_version = testing::scaled(300, 30);
  while (last_version < final_version && calls < 50'000'000) {
    float y[2] = {};
    if (predictor.predict(x, y) != PredictStatus::kOk) {
      ++not_ok;
      continue;
    }
    ++calls;
    const std::uint64_t v = predictor.model_version();
    if (y[1] != static_cast<float>(v) || y[0] != 1.0f + static_cast<float>(v)) ++mismatches;
    if (v < last_version) ++went_back;
    last_version = v;
  }
  stop = true;
  swapper.join();
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(went_back, 0u);
  EXPECT_EQ(not_ok, 0u);
  EXPECT_EQ(last_version, final_version) << "after " << calls << " calls";
}

}  // namespace
}  // namespace tickinfer
