// The pipeline over real TorchScript models: batching must not change a single prediction.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tickinfer/error.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/torchscript.hpp"
#include "tickinfer/waiter.hpp"

namespace tickinfer {
namespace {

using namespace std::chrono_literals;

std::string model_path(const char* name) { return std::string(TICKINFER_TEST_MODEL_DIR) + "/" + name; }

struct Collected {
  std::vector<std::vector<float>> outputs;
  std::vector<std::atomic<int>> status;  // ResultStatus + 1; 0 = not completed
  std::atomic<std::size_t> completed{0};
  explicit Collected(std::size_t n) : outputs(n), status(n) {}
  static void on_result(void* self, const Result& r) {
    auto* c = static_cast<Collected*>(self);
    c->outputs[r.tag].assign(r.outputs.begin(), r.outputs.end());
    c->status[r.tag].store(static_cast<int>(r.status) + 1, std::memory_order_relaxed);
    c->completed.fetch_add(1, std::memory_order_release);
  }
};

class PipelineOverModel : public ::testing::TestWithParam<const char*> {};

TEST_P(PipelineOverModel, BatchedPredictionsEqualPerSampleForwardsWithinOneEMinusFive) {
  auto model = load_torchscript(model_path(GetParam()));
  const std::size_t width = model->input_width(), out = model->output_width();
  constexpr std::size_t kRows = 2000;
  std::mt19937 rng(123);
  std::normal_distribution<float> dist;
  std::vector<float> inputs(kRows * width);
  for (auto& x : inputs) x = dist(rng);
  // Reference: each row alone, no pipeline, no batching.
  std::vector<float> expected;
  for (std::size_t r = 0; r < kRows; ++r) {
    const auto row =
        run_model(*model, std::vector<float>(inputs.begin() + r * width, inputs.begin() + (r + 1) * width), 1);
    expected.insert(expected.end(), row.begin(), row.end());
  }
  PipelineConfig config;
  config.max_batch = 64;
  config.max_delay_us = 200;  // encourage every batch size from 1 to 64
  config.queue_capacity = kRows;
  auto pipeline = Pipeline::create(config, std::make_shared<ModelSlot>(model), make_cpu_backend());
  Collected got(kRows);
  auto producer = pipeline->make_producer();
  for (std::size_t r = 0; r < kRows; ++r) {
    ASSERT_EQ(pipeline->submit(producer, std::span<const float>(&inputs[r * width], width), kNoDeadline,
                               {&Collected::on_result, &got, r}),
              SubmitStatus::kAccepted);
    if (r % 97 == 0) std::this_thread::sleep_for(50us);  // vary the batch sizes
  }
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (got.completed.load(std::memory_order_acquire) < kRows && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(got.completed.load(), kRows);
  float worst = 0;
  for (std::size_t r = 0; r < kRows; ++r) {
    ASSERT_EQ(got.status[r].load(), static_cast<int>(ResultStatus::kOk) + 1) << "row " << r;
    ASSERT_EQ(got.outputs[r].size(), out);
    for (std::size_t j = 0; j < out; ++j) worst = std::max(worst, std::abs(got.outputs[r][j] - expected[r * out + j]));
  }
  EXPECT_LE(worst, 1e-5f);
  const auto m = pipeline->metrics().snapshot();
  std::size_t sizes_seen = 0;
  for (std::size_t n = 2; n < m.batch_sizes.size(); ++n) sizes_seen += m.batch_sizes[n] > 0;
  EXPECT_GT(sizes_seen, 0u) << "the run must exercise real batching";
}

INSTANTIATE_TEST_SUITE_P(ReferenceModels, PipelineOverModel, ::testing::Values("mlp.pt", "deep.pt"));

// A GRU over ticks (forward(x, h) -> (y, h')): the pipeline keeps h per key. Every key's predictions, batched with
// the other keys' (and with its own repeated in a batch), equal that key's sequence run alone through LibTorch.
TEST(PipelineOverSequenceModel, EachKeysBatchedPredictionsEqualItsSequenceRunAloneAtEveryBatchSize) {
  auto model = load_torchscript(model_path("gru.pt"));
  ASSERT_EQ(model->state_width(), 8u);
  EXPECT_EQ(model->engine(), "libtorch");
  EXPECT_NE(model->engine_note().find("a sequence model (forward(x, h) with state_names) runs on LibTorch"),
            std::string::npos)
      << model->engine_note();
  const std::size_t width = model->input_width(), state = model->state_width();
  constexpr std::size_t kKeys = 3, kRows = 96;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  std::vector<float> inputs(kRows * width);
  for (auto& x : inputs) x = dist(rng);
  const auto key_of = [](std::size_t r) { return static_cast<InstrumentKey>((r * r + r / 3) % kKeys); };
  // Reference: one key at a time, one row at a time, its state carried by hand.
  std::vector<float> expected(kRows);
  std::vector<std::vector<float>> h(kKeys, std::vector<float>(state, 0.0f));
  for (std::size_t r = 0; r < kRows; ++r) {
    std::vector<float> packed(inputs.begin() + r * width, inputs.begin() + (r + 1) * width);
    packed.insert(packed.end(), h[key_of(r)].begin(), h[key_of(r)].end());
    const auto out = run_model(*model, packed, 1);
    ASSERT_EQ(out.size(), 1 + state);
    expected[r] = out[0];
    h[key_of(r)].assign(out.begin() + 1, out.end());
  }
  for (const std::size_t max_batch : {1u, 4u, 32u}) {
    PipelineConfig config;
    config.keys = kKeys;
    config.max_batch = max_batch;
    config.max_delay_us = 10'000'000;  // whole batches (kRows is a multiple of each)
    auto pipeline = Pipeline::create(config, std::make_shared<ModelSlot>(model), make_cpu_backend());
    EXPECT_EQ(pipeline->state_width(), state);
    Collected got(kRows);
    auto producer = pipeline->make_producer();
    for (std::size_t r = 0; r < kRows; ++r)
      ASSERT_EQ(pipeline->submit(producer, key_of(r), std::span<const float>(&inputs[r * width], width), kNoDeadline,
                                 {&Collected::on_result, &got, r}),
                SubmitStatus::kAccepted);
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (got.completed.load(std::memory_order_acquire) < kRows && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(1ms);
    ASSERT_EQ(got.completed.load(), kRows);
    for (std::size_t r = 0; r < kRows; ++r) {
      ASSERT_EQ(got.status[r].load(), static_cast<int>(ResultStatus::kOk) + 1) << "row " << r;
      ASSERT_EQ(got.outputs[r].size(), 1u) << "the state stays inside the pipeline";
      EXPECT_NEAR(got.outputs[r][0], expected[r], 1e-5f) << "max_batch " << max_batch << ", row " << r;
    }
  }
  LoadOptions native;
  native.engine = Engine::kNative;
  try {
    load_torchscript(model_path("gru.pt"), native);
    FAIL() << "the native engine took a sequence model";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_EQ(std::string(e.what()), model_path("gru.pt") +
                                         ": a sequence model (forward(x, h) with state_names) runs on LibTorch: the "
                                         "native engine has no recurrent state");
  }
}

TEST(PipelineOverModel, NanFromTheModelFailsOnlyThatRequest) {
  auto model = load_torchscript(model_path("nan_model.pt"));
  PipelineConfig config;
  config.max_delay_us = 100000;
  config.max_batch = 2;
  auto pipeline = Pipeline::create(config, std::make_shared<ModelSlot>(model), make_cpu_backend());
  auto producer = pipeline->make_producer();
  std::vector<float> nan_row(model->input_width(), 0.1f), good_row(model->input_width(), 0.1f);
  nan_row[0] = 5000.0f;  // nan_model returns NaN for feature 0 > 1000
  ResultWaiter bad, good;
  ASSERT_EQ(pipeline->submit(producer, nan_row, kNoDeadline, bad.arm()), SubmitStatus::kAccepted);
  ASSERT_EQ(pipeline->submit(producer, good_row, kNoDeadline, good.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(bad.wait_for(10s));
  ASSERT_TRUE(good.wait_for(10s));
  EXPECT_EQ(bad.status(), ResultStatus::kModelError);
  EXPECT_EQ(bad.error(), "model output is not finite (NaN or Inf)");
  EXPECT_EQ(good.status(), ResultStatus::kOk);
}

TEST(PipelineOverModel, ThrowingModelFailsTheBatchWithItsMessageAndKeepsServing) {
  auto model = load_torchscript(model_path("throwing_model.pt"));
  auto pipeline = Pipeline::create({}, std::make_shared<ModelSlot>(model), make_cpu_backend());
  auto producer = pipeline->make_producer();
  std::vector<float> bad_row(model->input_width(), 0.1f), good_row(model->input_width(), 0.1f);
  bad_row[0] = -999.0f;
  ResultWaiter waiter;
  ASSERT_EQ(pipeline->submit(producer, bad_row, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(10s));
  EXPECT_EQ(waiter.status(), ResultStatus::kModelError);
  EXPECT_NE(waiter.error().find("forward failed"), std::string::npos) << waiter.error();
  ASSERT_EQ(pipeline->submit(producer, good_row, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
  ASSERT_TRUE(waiter.wait_for(10s));
  EXPECT_EQ(waiter.status(), ResultStatus::kOk);
  EXPECT_EQ(pipeline->metrics().snapshot().failed_batches, 1u);
}

}  // namespace
}  // namespace tickinfer
