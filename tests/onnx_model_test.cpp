// Loading ONNX models (torch.onnx.export, opset 17, dynamic batch) into the native engine: each equals the same
// module run by LibTorch, and every hostile file is refused with its reason.

#include <gtest/gtest.h>
#include <torch/script.h>

#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "model/native/native_model.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/onnx.hpp"
#include "tickinfer/predictor.hpp"

namespace tickinfer {
namespace {

std::string onnx_dir() { return std::string(TICKINFER_NATIVE_MODEL_DIR) + "/onnx/"; }

LoadOptions warm_every_size() {
  LoadOptions options;
  options.warmup_batch_sizes = {1, 2, 3, 8, 64};
  return options;
}

class OnnxModel : public ::testing::TestWithParam<std::string> {};

TEST_P(OnnxModel, LoadsValidatedAndEqualsTheSameModuleInLibTorch) {
  const std::string name = GetParam();
  const auto model = load_onnx(onnx_dir() + name + ".onnx", warm_every_size());
  const auto* plan = native::native_plan_of(*model);
  ASSERT_NE(plan, nullptr);
  auto module = torch::jit::load(onnx_dir() + name + ".pt");
  module.eval();
  native::Executor exec(*plan, 64);
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.5f);
  const std::size_t width = model->input_width();
  for (const std::size_t rows : {1u, 5u, 64u}) {
    std::vector<float> x(rows * width);
    for (float& v : x) v = dist(rng);
    std::vector<float> got(rows * model->output_width());
    exec.run(x.data(), rows, got.data());
    torch::NoGradGuard no_grad;
    const at::Tensor want =
        module.forward({torch::from_blob(x.data(), {static_cast<long>(rows), static_cast<long>(width)}).clone()})
            .toTensor()
            .contiguous();
    ASSERT_EQ(static_cast<std::size_t>(want.numel()), got.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_LE(std::abs(got[i] - want.data_ptr<float>()[i]), 1e-5f * std::max(1.0f, std::abs(got[i])))
          << name << ", rows " << rows << ", index " << i << "; plan " << (*plan)->describe();
    }
  }
}

// The hand-written models, and the random MLPs scripts/export_native_models.py drew (their seed in the name).
std::vector<std::string> exported() {
  std::vector<std::string> names = {"mlp", "activations", "norms", "log_softmax", "concat", "matmul_forms"};
  std::ifstream manifest(std::string(TICKINFER_NATIVE_MODEL_DIR) + "/manifest.txt");
  std::string line;
  while (std::getline(manifest, line)) {
    const std::string name = line.substr(0, line.find(' '));
    if (name.rfind("random_mlp_", 0) == 0) names.push_back(name);
  }
  return names;
}

INSTANTIATE_TEST_SUITE_P(Exported, OnnxModel, ::testing::ValuesIn(exported()),
                         [](const ::testing::TestParamInfo<std::string>& param) { return param.param; });

TEST(OnnxModelLoad, ServesThroughTheDirectModePredictor) {
  auto slot = std::make_shared<ModelSlot>(load_onnx(onnx_dir() + "mlp.onnx"));
  Predictor predictor(slot);
  std::vector<float> x(32, 0.5f);
  float y = 0.0f;
  ASSERT_EQ(predictor.predict(x, {&y, 1}), PredictStatus::kOk);
  EXPECT_TRUE(std::isfinite(y));
  EXPECT_EQ(predictor.model_version(), 1u);
}

void expect_refused(const std::string& file, ErrorCode code, const std::string& message) {
  SCOPED_TRACE(file);
  try {
    (void)load_onnx(onnx_dir() + file);
    FAIL() << "expected Error(" << to_string(code) << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(onnx_dir() + file + ": " + message), std::string::npos) << e.what();
  }
}

TEST(OnnxModelLoad, HostileFilesAreRefusedNamingTheFileAndTheReason) {
  expect_refused("truncated.onnx", ErrorCode::kParseError, "not an ONNX model (protobuf ModelProto did not parse");
  expect_refused("not_onnx.onnx", ErrorCode::kParseError, "not an ONNX model");
  expect_refused("unsupported_op.onnx", ErrorCode::kUnsupported, "native engine cannot compile node");
  expect_refused("unsupported_op.onnx", ErrorCode::kUnsupported, "");
  expect_refused("double_input.onnx", ErrorCode::kUnsupported, "input 'x' has element type 11, not float32 (1)");
  expect_refused("second_input.onnx", ErrorCode::kUnsupported,
                 "a second input 'extra' (the native engine takes one input, 'x'; weights must be initializers)");
  expect_refused("batch_axis_second.onnx", ErrorCode::kUnsupported,
                 "input 'x': the feature axis (last) has no fixed size; the batch axis must be the first");
  expect_refused("old_opset.onnx", ErrorCode::kUnsupported, "opset 11 (the native engine reads opsets 13 to 17)");
  expect_refused("no_metadata.onnx", ErrorCode::kMissingMetadata, "no metadata_props entry 'tickinfer.json'");
  expect_refused("checker_fails.onnx", ErrorCode::kUnsupported, "the ONNX checker refuses it: ");
  expect_refused("missing_initializer.onnx", ErrorCode::kUnsupported, "");
  expect_refused("no_such_file.onnx", ErrorCode::kFileNotFound, "");
}

TEST(OnnxModelLoad, UnsupportedOperatorIsNamed) {
  try {
    (void)load_onnx(onnx_dir() + "unsupported_op.onnx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(Softplus): unsupported operator Softplus"), std::string::npos) << e.what();
  }
}

TEST(OnnxModelLoad, MissingInitializerIsNamed) {
  try {
    (void)load_onnx(onnx_dir() + "missing_initializer.onnx");
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(what.find("is not defined (a missing initializer?)") != std::string::npos ||
                what.find("the ONNX checker refuses it") != std::string::npos)
        << what;
  }
}

TEST(OnnxModelLoad, WidthAndSchemaAreChecked) {
  LoadOptions width;
  width.expected_input_width = 16;
  try {
    (void)load_onnx(onnx_dir() + "mlp.onnx", width);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kWidthMismatch);
    EXPECT_EQ(std::string(e.what()), onnx_dir() + "mlp.onnx: model has 32 input features, the pipeline expects 16");
  }
  LoadOptions interface;
  interface.expected_output_names = {"y0", "y1"};
  try {
    (void)load_onnx(onnx_dir() + "mlp.onnx", interface);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInterfaceMismatch);
    EXPECT_NE(std::string(e.what()).find("outputs [y0] (1) differ from the served model's [y0, y1] (2)"),
              std::string::npos)
        << e.what();
  }
  LoadOptions schema;
  schema.expected_schema_hash = "other";
  try {
    (void)load_onnx(onnx_dir() + "mlp.onnx", schema);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSchemaMismatch);
  }
}

}  // namespace
}  // namespace tickinfer
