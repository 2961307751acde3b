// The native engine's TorchScript front end: every model scripts/export_native_models.py writes either compiles
// and computes what LibTorch computes, or is refused naming the node.

#include <gtest/gtest.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/native/plan.hpp"
#include "model/native/torchscript_frontend.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::native {
namespace {

struct Case {
  std::string name;
  std::size_t width = 0;
  bool ok = false;
  std::string refusal;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string model_dir() { return std::string(TICKINFER_NATIVE_MODEL_DIR); }

std::vector<Case> manifest() {
  std::ifstream in(model_dir() + "/manifest.txt");
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Case c;
    std::string expect;
    fields >> c.name >> c.width >> expect;
    std::getline(fields >> std::ws, c.refusal);
    c.ok = expect == "ok";
    cases.push_back(c);
  }
  return cases;
}

torch::jit::Module load(const Case& c) {  // forward() is not const: callers keep their own copy
  auto module = torch::jit::load(model_dir() + "/" + c.name + ".pt");
  module.eval();
  return module;
}

class NativeTorchScript : public ::testing::TestWithParam<Case> {};

TEST_P(NativeTorchScript, CompilesAndMatchesLibTorchOrIsRefusedNamingTheNode) {
  const Case& c = GetParam();
  auto module = load(c);
  if (!c.ok) {
    try {
      (void)Plan::compile(from_torchscript(module, c.width, c.name + ".pt"));
      FAIL() << "expected a refusal containing '" << c.refusal << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
      EXPECT_NE(std::string(e.what()).find(c.refusal), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.name + ".pt: native engine cannot compile node '"), std::string::npos)
          << e.what();
    }
    return;
  }
  const auto plan = Plan::compile(from_torchscript(module, c.width, c.name + ".pt"));
  Executor exec(plan, 64);
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.5f);
  for (const std::size_t rows : {1u, 2u, 3u, 5u, 16u, 64u}) {
    std::vector<float> input(rows * c.width);
    for (float& v : input) v = dist(rng);
    std::vector<float> got(rows * plan->output_width());
    exec.run(input.data(), rows, got.data());
    torch::NoGradGuard no_grad;
    const auto x = torch::from_blob(input.data(), {static_cast<long>(rows), static_cast<long>(c.width)}).clone();
    const at::Tensor want = module.forward({x}).toTensor().contiguous();
    ASSERT_EQ(static_cast<std::size_t>(want.numel()), got.size()) << plan->describe();
    const float* w = want.data_ptr<float>();
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_LE(std::abs(got[i] - w[i]), 1e-5f * std::max(1.0f, std::abs(w[i])))
          << "rows " << rows << ", index " << i << ": native " << got[i] << ", LibTorch " << w[i]
          << "; plan: " << plan->describe();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, NativeTorchScript, ::testing::ValuesIn(manifest()),
                         [](const ::testing::TestParamInfo<Case>& param) { return param.param.name; });

TEST(NativeTorchScriptPlan, MlpCompilesToThreeFusedDenseSteps) {
  const auto module = load(Case{"mlp", 32, true, ""});
  EXPECT_EQ(Plan::compile(from_torchscript(module, 32, "mlp.pt"))->describe(),
            "dense 32->64 +relu; dense 64->64 +relu; dense (dot) 64->1");
}

TEST(NativeTorchScriptPlan, NormalisationAndBatchNormFoldIntoDenseLayers) {
  const auto module = load(Case{"norms", 16, true, ""});
  EXPECT_EQ(Plan::compile(from_torchscript(module, 16, "norms.pt"))->describe(),
            "dense 16->24; layer_norm; gelu; dense (dot) 24->5; softmax");
}

}  // namespace
}  // namespace tickinfer::native
