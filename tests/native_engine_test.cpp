// TorchScript models on the native engine: chosen at load (engine auto | native | libtorch), validated against
// LibTorch, run by the CPU runner without allocating, and refused or left to LibTorch with the reason.

#include <gtest/gtest.h>

#include "support/count_new.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "tickinfer/error.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/predictor.hpp"
#include "tickinfer/torchscript.hpp"

namespace tickinfer {
namespace {

std::string model_path(const std::string& name) { return std::string(TICKINFER_TEST_MODEL_DIR) + "/" + name; }

LoadOptions with_engine(Engine engine) {
  LoadOptions options;
  options.engine = engine;
  options.warmup_batch_sizes = {1, 2, 7, 64};
  return options;
}

std::vector<float> rows(std::size_t n, std::size_t width, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n * width);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(NativeEngine, AutoServesTheMlpOnTheNativeEngineAndItEqualsLibTorch) {
  const auto native = load_torchscript(model_path("mlp.pt"), with_engine(Engine::kAuto));
  const auto libtorch = load_torchscript(model_path("mlp.pt"), with_engine(Engine::kLibTorch));
  EXPECT_EQ(native->engine(), "native");
  EXPECT_EQ(native->engine_note(), "");
  EXPECT_EQ(libtorch->engine(), "libtorch");
  auto native_runner = make_cpu_backend()->make_runner(64, native->input_width());
  auto torch_runner = make_cpu_backend()->make_runner(64, libtorch->input_width());
  for (const std::size_t n : {1u, 3u, 64u}) {
    const auto x = rows(n, native->input_width(), static_cast<unsigned>(n));
    std::copy(x.begin(), x.end(), native_runner->input(n).begin());
    std::copy(x.begin(), x.end(), torch_runner->input(n).begin());
    const auto a = native_runner->run(*native, n);
    const auto b = torch_runner->run(*libtorch, n);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * std::max(1.0f, std::abs(b[i])));
  }
}

TEST(NativeEngine, TheHeavierReferenceModelAlsoRunsNatively) {
  const auto deep = load_torchscript(model_path("deep.pt"), with_engine(Engine::kNative));
  EXPECT_EQ(deep->engine(), "native");
}

TEST(NativeEngine, TheCpuRunnerAllocatesNothingOnTheNativePathAfterTheFirstBatch) {
  const auto model = load_torchscript(model_path("mlp.pt"), with_engine(Engine::kNative));
  auto runner = make_cpu_backend()->make_runner(64, model->input_width());
  const auto x = rows(64, model->input_width(), 1);
  std::copy(x.begin(), x.end(), runner->input(64).begin());
  (void)runner->run(*model, 64);  // the first batch of a version makes its working memory
  testing::CountNew count;
  for (std::size_t n = 1; n <= 64; ++n) (void)runner->run(*model, n);
  EXPECT_EQ(count.calls(), 0u);
}

TEST(NativeEngine, AModelTheNativeEngineCannotCompileServesOnLibTorchWithTheReason) {
  // nan_model.pt: torch.where on the data, outside the native IR.
  const auto model = load_torchscript(model_path("nan_model.pt"), with_engine(Engine::kAuto));
  EXPECT_EQ(model->engine(), "libtorch");
  EXPECT_NE(model->engine_note().find("native engine cannot compile node"), std::string::npos) << model->engine_note();
  try {
    (void)load_torchscript(model_path("nan_model.pt"), with_engine(Engine::kNative));
    FAIL() << "engine native must refuse a model it cannot compile";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find(model_path("nan_model.pt") + ": native engine cannot compile node '"),
              std::string::npos)
        << e.what();
  }
}

TEST(NativeEngine, DirectModePredictsWithATorchScriptModelOnTheNativeEngine) {
  auto slot = std::make_shared<ModelSlot>(load_torchscript(model_path("mlp.pt"), with_engine(Engine::kAuto)));
  Predictor predictor(slot);
  const auto x = rows(1, 32, 9);
  float y = 0.0f;
  ASSERT_EQ(predictor.predict(x, {&y, 1}), PredictStatus::kOk);
  const auto reference = run_model(*slot->current(), x, 1);
  EXPECT_NEAR(y, reference[0], 1e-5f);
}

TEST(NativeEngine, EngineNamesParseAndUnknownOnesAreRefused) {
  EXPECT_EQ(parse_engine("auto"), Engine::kAuto);
  EXPECT_EQ(parse_engine("native"), Engine::kNative);
  EXPECT_EQ(parse_engine("libtorch"), Engine::kLibTorch);
  EXPECT_STREQ(to_string(Engine::kLibTorch), "libtorch");
  try {
    (void)parse_engine("onnxruntime");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
    EXPECT_STREQ(e.what(), "engine 'onnxruntime': expected auto, native or libtorch");
  }
}

TEST(NativeEngine, APipelineOverTheCpuBackendServesTheNativePlan) {
  auto slot = std::make_shared<ModelSlot>(load_torchscript(model_path("mlp.pt"), with_engine(Engine::kAuto)));
  PipelineConfig config;
  config.max_batch = 16;
  auto pipeline = Pipeline::create(config, slot, make_cpu_backend());
  auto producer = pipeline->make_producer();
  struct Got {
    std::atomic<int> n{0};
    float value = 0.0f;
    static void on(void* self, const Result& r) {
      auto* g = static_cast<Got*>(self);
      if (r.status == ResultStatus::kOk) g->value = r.outputs[0];
      g->n.store(1, std::memory_order_release);  // pairs with the acquire spin below
    }
  } got;
  const auto x = rows(1, 32, 5);
  ASSERT_EQ(pipeline->submit(producer, x, kNoDeadline, {&Got::on, &got, 0}), SubmitStatus::kAccepted);
  while (got.n.load(std::memory_order_acquire) == 0) {
  }
  EXPECT_NEAR(got.value, run_model(*slot->current(), x, 1)[0], 1e-5f);
}

}  // namespace
}  // namespace tickinfer
