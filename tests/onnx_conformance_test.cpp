// ONNX's own backend node tests (Debian libonnx-testdata: onnx/backend/test/data/node/test_*) for every operator
// the native engine claims. Each case is one node: its first input is the engine's dynamic input (viewed as
// [rows, last axis]), every further input is bound as a constant (the engine's weights are constants), and the
// output must match output_0.pb. A case the engine refuses (a dtype, a mode, an axis that is not the feature
// axis) is skipped with the refusal as the reason; a wrong answer or any other error fails.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "model/native/onnx_frontend.hpp"
#include "model/native/plan.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::native {
namespace {

namespace fs = std::filesystem;

const char* kNodeTests = TICKINFER_ONNX_NODE_TEST_DIR;

// Operator -> the prefix of its node-test directories.
const std::pair<const char*, const char*> kClaimed[] = {
    {"Gemm", "test_gemm"},
    {"MatMul", "test_matmul"},
    {"Add", "test_add"},
    {"Sub", "test_sub"},
    {"Mul", "test_mul"},
    {"Div", "test_div"},
    {"Relu", "test_relu"},
    {"LeakyRelu", "test_leakyrelu"},
    {"Elu", "test_elu"},
    {"Selu", "test_selu"},
    {"Tanh", "test_tanh"},
    {"Sigmoid", "test_sigmoid"},
    {"Erf", "test_erf"},
    {"Softmax", "test_softmax"},
    {"LogSoftmax", "test_logsoftmax"},
    {"LayerNormalization", "test_layer_normalization"},
    {"BatchNormalization", "test_batchnorm"},
    {"Clip", "test_clip"},
    {"Flatten", "test_flatten"},
    {"Reshape", "test_reshape"},
    {"Concat", "test_concat"},
    {"Identity", "test_identity"},
    {"Dropout", "test_dropout"},
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct NodeCase {
  std::string op;
  std::string name;  // directory name
};
void PrintTo(const NodeCase& c, std::ostream* os) { *os << c.name; }

std::vector<NodeCase> node_cases() {
  std::vector<NodeCase> cases;
  if (!fs::is_directory(kNodeTests)) return cases;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(kNodeTests)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto& [op, prefix] : kClaimed) {
    for (const std::string& name : names) {
      const std::string p = prefix;
      if (name != p && name.rfind(p + "_", 0) != 0) continue;
      if (name.find("_expanded") != std::string::npos) continue;  // decompositions into other operators
      onnx::ModelProto model;
      const std::string bytes = read_file(fs::path(kNodeTests) / name / "model.onnx");
      if (!model.ParseFromString(bytes) || model.graph().node_size() != 1 || model.graph().node(0).op_type() != op)
        continue;  // another operator sharing the prefix (e.g. test_softmax_cross_entropy_*)
      cases.push_back({op, name});
    }
  }
  return cases;
}

onnx::TensorProto read_tensor(const fs::path& path) {
  onnx::TensorProto t;
  if (!t.ParseFromString(read_file(path))) throw std::runtime_error("cannot parse " + path.string());
  return t;
}

std::vector<float> floats(const onnx::TensorProto& t) {
  if (t.data_type() != onnx::TensorProto::FLOAT) return {};
  std::vector<float> v;
  if (!t.raw_data().empty()) {
    v.resize(t.raw_data().size() / sizeof(float));
    std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(float));
  } else {
    v.assign(t.float_data().begin(), t.float_data().end());
  }
  return v;
}

class OnnxNodeTest : public ::testing::TestWithParam<NodeCase> {};

TEST_P(OnnxNodeTest, MatchesTheReferenceOutputOrIsRefusedWithAReason) {
  const fs::path dir = fs::path(kNodeTests) / GetParam().name;
  const std::string bytes = read_file(dir / "model.onnx");
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(bytes));
  const auto& graph = model.graph();

  for (const auto& set : fs::directory_iterator(dir)) {
    if (!set.is_directory()) continue;
    SCOPED_TRACE(set.path().filename().string());
    std::map<std::string, onnx::TensorProto> bound;
    std::vector<onnx::TensorProto> inputs;
    for (int i = 0; i < graph.input_size(); ++i) {
      const fs::path file = set.path() / ("input_" + std::to_string(i) + ".pb");
      if (!fs::exists(file)) break;
      inputs.push_back(read_tensor(file));
      if (i > 0) bound[graph.input(i).name()] = inputs.back();
    }
    ASSERT_FALSE(inputs.empty());
    OnnxOptions options;
    options.bound_inputs = &bound;
    options.first_output_only = true;  // output_0.pb is what is compared
    OnnxGraph mapped;
    try {
      mapped = parse_onnx(bytes, GetParam().name, options);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kUnsupported) GTEST_SKIP() << e.what();
      FAIL() << e.what();
    }
    const std::vector<float> input = floats(inputs[0]);
    const std::size_t width = mapped.graph.input_width;
    ASSERT_EQ(input.size() % width, 0u);
    const std::size_t rows = input.size() / width;
    std::shared_ptr<const Plan> plan;
    try {
      plan = Plan::compile(mapped.graph);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kUnsupported) GTEST_SKIP() << e.what();
      FAIL() << e.what();
    }
    Executor exec(plan, rows);
    std::vector<float> got(rows * plan->output_width());
    exec.run(input.data(), rows, got.data());
    const std::vector<float> want = floats(read_tensor(set.path() / "output_0.pb"));
    ASSERT_EQ(want.size(), got.size()) << "output element count";
    for (std::size_t i = 0; i < got.size(); ++i) {
      // ONNX's backend test tolerance is rtol 1e-3, atol 1e-7; this is stricter on relative error.
      ASSERT_LE(std::abs(got[i] - want[i]), 1e-6f + 1e-5f * std::abs(want[i]))
          << "element " << i << ": native " << got[i] << ", ONNX reference " << want[i] << "; plan "
          << plan->describe();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Node, OnnxNodeTest, ::testing::ValuesIn(node_cases()),
                         [](const ::testing::TestParamInfo<NodeCase>& param) { return param.param.name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OnnxNodeTest);

TEST(OnnxConformance, EveryClaimedOperatorHasNodeTests) {
  if (!fs::is_directory(kNodeTests)) GTEST_SKIP() << "no " << kNodeTests << " (Debian package libonnx-testdata)";
  const auto cases = node_cases();
  for (const auto& [op, prefix] : kClaimed) {
    const auto n = std::count_if(cases.begin(), cases.end(), [&](const NodeCase& c) { return c.op == op; });
    EXPECT_GT(n, 0) << op << " (" << prefix << "*)";
  }
}

}  // namespace
}  // namespace tickinfer::native
