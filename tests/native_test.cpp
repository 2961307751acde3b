// The native engine's planner and kernels against a plain double-precision interpreter of the same graph.

#include <gtest/gtest.h>

#include "support/count_new.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "model/native/graph.hpp"
#include "model/native/isa.hpp"
#include "model/native/plan.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::native {
namespace {

// ---- reference: the graph's meaning, evaluated in double ----

double ref_unary(Op op, double v, double alpha, double beta) {
  switch (op) {
    case Op::kRelu:
      return v > 0 ? v : 0;
    case Op::kLeakyRelu:
      return v > 0 ? v : v * alpha;
    case Op::kElu:
      return v > 0 ? v : alpha * (std::exp(v) - 1);
    case Op::kSelu:
      return beta * (v > 0 ? v : alpha * (std::exp(v) - 1));
    case Op::kErf:
      return std::erf(v);
    case Op::kGeluErf:
      return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    case Op::kGeluTanh:
      return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    case Op::kSilu:
      return v / (1 + std::exp(-v));
    case Op::kTanh:
      return std::tanh(v);
    case Op::kSigmoid:
      return 1 / (1 + std::exp(-v));
    case Op::kClamp:
      return std::min(std::max(v, alpha), beta);
    default:
      return v;
  }
}

double ref_binary(Op op, double a, double b) {
  switch (op) {
    case Op::kAdd:
      return a + b;
    case Op::kSub:
      return a - b;
    case Op::kMul:
      return a * b;
    case Op::kDiv:
      return a / b;
    default:
      return a;
  }
}

using Rows = std::vector<std::vector<double>>;

Rows reference(const Graph& g, const std::vector<float>& input, std::size_t rows) {
  std::vector<Rows> values(g.nodes.size() + 1);
  values[0].resize(rows);
  for (std::size_t r = 0; r < rows; ++r)
    values[0][r].assign(input.begin() + static_cast<long>(r * g.input_width),
                        input.begin() + static_cast<long>((r + 1) * g.input_width));
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    Rows& y = values[i + 1];
    y.assign(rows, std::vector<double>(n.width, 0.0));
    const Rows& x = values[static_cast<std::size_t>(n.inputs[0])];
    for (std::size_t r = 0; r < rows; ++r) {
      const auto& xr = x[r];
      auto& yr = y[r];
      const auto k = [&](std::size_t c) {
        return static_cast<double>(n.weights.size() == 1 ? n.weights[0] : n.weights[c]);
      };
      switch (n.op) {
        case Op::kDense:
          for (std::size_t o = 0; o < n.width; ++o) {
            double acc = n.bias.empty() ? 0.0 : n.bias[o];
            for (std::size_t c = 0; c < xr.size(); ++c)
              acc += static_cast<double>(n.weights[o * xr.size() + c]) * xr[c];
            yr[o] = acc;
          }
          break;
        case Op::kAdd:
        case Op::kSub:
        case Op::kMul:
        case Op::kDiv:
          for (std::size_t c = 0; c < n.width; ++c) {
            if (n.inputs.size() == 2) {
              yr[c] = ref_binary(n.op, xr[c], values[static_cast<std::size_t>(n.inputs[1])][r][c]);
            } else {
              yr[c] = n.reversed ? ref_binary(n.op, k(c), xr[c]) : ref_binary(n.op, xr[c], k(c));
            }
          }
          break;
        case Op::kAffine:
          for (std::size_t c = 0; c < n.width; ++c) yr[c] = xr[c] * n.weights[c] + n.bias[c];
          break;
        case Op::kSoftmax:
        case Op::kLogSoftmax: {
          double m = -1e300, sum = 0;
          for (const double v : xr) m = std::max(m, v);
          for (const double v : xr) sum += std::exp(v - m);
          for (std::size_t c = 0; c < n.width; ++c)
            yr[c] = n.op == Op::kSoftmax ? std::exp(xr[c] - m) / sum : xr[c] - m - std::log(sum);
          break;
        }
        case Op::kLayerNorm: {
          double mean = 0, var = 0;
          for (const double v : xr) mean += v;
          mean /= static_cast<double>(n.width);
          for (const double v : xr) var += (v - mean) * (v - mean);
          var /= static_cast<double>(n.width);
          for (std::size_t c = 0; c < n.width; ++c) {
            double v = (xr[c] - mean) / std::sqrt(var + n.alpha);
            if (!n.weights.empty()) v *= n.weights[c];
            if (!n.bias.empty()) v += n.bias[c];
            yr[c] = v;
          }
          break;
        }
        case Op::kConcat: {
          yr.clear();
          for (const int in : n.inputs) {
            const auto& part = values[static_cast<std::size_t>(in)][r];
            yr.insert(yr.end(), part.begin(), part.end());
          }
          break;
        }
        case Op::kIdentity:
          yr = xr;
          break;
        default:
          for (std::size_t c = 0; c < n.width; ++c) yr[c] = ref_unary(n.op, xr[c], n.alpha, n.beta);
          break;
      }
    }
  }
  return values[static_cast<std::size_t>(g.output)];
}

// ---- graph building ----

struct Builder {
  explicit Builder(std::size_t input_width, unsigned seed = 1) : rng(seed) { g.input_width = input_width; }
  std::mt19937 rng;
  Graph g;

  std::vector<float> random(std::size_t n, float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
  }
  int add(Node n) {
    g.nodes.push_back(std::move(n));
    g.output = static_cast<int>(g.nodes.size());
    return g.output;
  }
  int dense(int in, std::size_t out, bool bias = true) {
    const std::size_t w = g.width_of(in);
    Node n{Op::kDense, {in}, out, random(out * w, 1.0f / std::sqrt(static_cast<float>(w))), {}, 0, 0, false, "dense"};
    if (bias) n.bias = random(out, 0.1f);
    return add(std::move(n));
  }
  int unary(int in, Op op, float alpha = 0.0f, float beta = 0.0f) {
    return add(Node{op, {in}, g.width_of(in), {}, {}, alpha, beta, false, to_string(op)});
  }
  int with_constant(int in, Op op, std::vector<float> c, bool reversed = false) {
    return add(Node{op, {in}, g.width_of(in), std::move(c), {}, 0, 0, reversed, to_string(op)});
  }
};

std::vector<float> random_input(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.5f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Plan output == reference within 1e-5 absolute or relative, for every batch size in `sizes`.
void expect_matches(const Graph& g, std::size_t max_batch, const std::vector<std::size_t>& sizes, unsigned seed = 7) {
  auto plan = Plan::compile(g);
  Executor exec(plan, max_batch);
  for (const std::size_t rows : sizes) {
    const auto input = random_input(rows * g.input_width, seed + static_cast<unsigned>(rows));
    std::vector<float> out(rows * plan->output_width(), std::numeric_limits<float>::quiet_NaN());
    exec.run(input.data(), rows, out.data());
    const Rows want = reference(g, input, rows);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < plan->output_width(); ++c) {
        const double got = out[r * plan->output_width() + c], expected = want[r][c];
        ASSERT_LE(std::abs(got - expected), 1e-5 * std::max(1.0, std::abs(expected)))
            << "rows " << rows << ", row " << r << ", output " << c << "; plan: " << plan->describe();
      }
    }
  }
}

const std::vector<std::size_t> kSizes = {1, 2, 3, 4, 5, 7, 8, 13, 16, 33, 64};

TEST(NativePlan, MlpWithFusedReluMatchesReferenceAtEveryBatchSize) {
  Builder b(32);
  int v = b.dense(0, 64);
  v = b.unary(v, Op::kRelu);
  v = b.dense(v, 64);
  v = b.unary(v, Op::kRelu);
  b.dense(v, 1);
  const auto plan = Plan::compile(b.g);
  EXPECT_EQ(plan->describe(), "dense 32->64 +relu; dense 64->64 +relu; dense (dot) 64->1");
  expect_matches(b.g, 64, kSizes);
}

TEST(NativePlan, WideLayersMatchReferenceAtEveryBatchSize) {
  // 200 and 48 outputs: the batched kernel's 32-column blocks and its 16-column tail, at every row count.
  Builder b(40);
  int v = b.dense(0, 200);
  v = b.unary(v, Op::kRelu);
  v = b.dense(v, 48);
  v = b.unary(v, Op::kRelu);
  b.dense(v, 3);
  const auto plan = Plan::compile(b.g);
  EXPECT_EQ(plan->describe(), "dense 40->200 +relu; dense 200->48 +relu; dense (dot) 48->3");
  expect_matches(b.g, 64, kSizes);
}

TEST(NativePlan, EveryUnaryOpMatchesReference) {
  const std::pair<Op, std::pair<float, float>> ops[] = {
      {Op::kRelu, {0, 0}},     {Op::kLeakyRelu, {0.01f, 0}},
      {Op::kElu, {1.0f, 0}},   {Op::kSelu, {1.6732632f, 1.0507010f}},
      {Op::kGeluErf, {0, 0}},  {Op::kGeluTanh, {0, 0}},
      {Op::kSilu, {0, 0}},     {Op::kTanh, {0, 0}},
      {Op::kSigmoid, {0, 0}},  {Op::kClamp, {-0.5f, 0.75f}},
      {Op::kSoftmax, {0, 0}},  {Op::kLogSoftmax, {0, 0}},
      {Op::kIdentity, {0, 0}}, {Op::kErf, {0, 0}},
  };
  for (const auto& [op, params] : ops) {
    SCOPED_TRACE(to_string(op));
    Builder b(19);
    const int v = b.dense(0, 23);  // a dense producer, so unfusable ops run as their own step
    b.unary(v, op, params.first, params.second);
    expect_matches(b.g, 16, {1, 3, 16});
  }
}

TEST(NativePlan, ActivationOnTheGraphInputRunsWithoutADenseLayer) {
  Builder b(9);
  b.unary(0, Op::kTanh);
  expect_matches(b.g, 8, {1, 8});
}

TEST(NativePlan, ConstantsFoldIntoDenseLayersAndStillMatch) {
  // Input normalisation baked into the model: (x - mean) / std, then a dense layer, then * scale + shift.
  Builder b(12);
  int v = b.with_constant(0, Op::kSub, b.random(12, 1.0f));
  v = b.with_constant(v, Op::kDiv, {2.5f});
  v = b.dense(v, 20);
  v = b.with_constant(v, Op::kMul, b.random(20, 1.0f));
  v = b.with_constant(v, Op::kAdd, {0.25f});
  v = b.unary(v, Op::kRelu);
  b.dense(v, 3);
  const auto plan = Plan::compile(b.g);
  EXPECT_EQ(plan->describe(), "dense 12->20 +relu; dense (dot) 20->3");
  expect_matches(b.g, 64, kSizes);
}

TEST(NativePlan, BinaryOpsWithConstantsAndBetweenValuesMatchReference) {
  Builder b(10);
  const int a = b.dense(0, 10);
  const int c = b.unary(a, Op::kSigmoid);
  int v = b.add(Node{Op::kMul, {c, c}, 10, {}, {}, 0, 0, false, "c*c"});
  v = b.with_constant(v, Op::kAdd, {1.0f});                                        // in [1, 2]
  v = b.add(Node{Op::kDiv, {v}, 10, {2.0f}, {}, 0, 0, /*reversed=*/true, "2/v"});  // in [1, 2]
  v = b.add(Node{Op::kSub, {v}, 10, b.random(10, 1.0f), {}, 0, 0, /*reversed=*/true, "k-v"});
  v = b.add(Node{Op::kSub, {v, a}, 10, {}, {}, 0, 0, false, "v-a"});
  v = b.add(Node{Op::kDiv, {v, c}, 10, {}, {}, 0, 0, false, "v/c"});
  b.add(Node{Op::kAdd, {v, c}, 10, {}, {}, 0, 0, false, "v+c"});
  expect_matches(b.g, 16, {1, 5, 16});
}

TEST(NativePlan, LayerNormAndAffineMatchReference) {
  Builder b(16);
  int v = b.dense(0, 24);
  v = b.add(Node{Op::kLayerNorm, {v}, 24, b.random(24, 1.0f), b.random(24, 0.5f), 1e-5f, 0, false, "ln"});
  v = b.unary(v, Op::kGeluErf);
  v = b.add(Node{Op::kAffine, {v}, 24, b.random(24, 1.0f), b.random(24, 1.0f), 0, 0, false, "bn"});
  v = b.add(Node{Op::kLayerNorm, {v}, 24, {}, {}, 1e-3f, 0, false, "ln-plain"});
  b.dense(v, 5);
  expect_matches(b.g, 64, kSizes);
}

TEST(NativePlan, ConcatOfInputAndHiddenFeaturesMatchesReference) {
  Builder b(6);
  const int h = b.unary(b.dense(0, 17), Op::kRelu);
  const int cat = b.add(Node{Op::kConcat, {0, h}, 23, {}, {}, 0, 0, false, "cat"});
  b.dense(cat, 4);
  expect_matches(b.g, 16, {1, 2, 16});
}

TEST(NativePlan, RandomMlpsMatchReference) {
  const unsigned seed = 20261201;
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Op activations[] = {Op::kRelu, Op::kTanh, Op::kSigmoid, Op::kGeluErf, Op::kSilu, Op::kLeakyRelu, Op::kElu};
  for (int trial = 0; trial < 25; ++trial) {
    const std::size_t in = 1 + rng() % 40;
    Builder b(in, static_cast<unsigned>(rng()));
    int v = 0;
    const int depth = 1 + static_cast<int>(rng() % 4);
    for (int layer = 0; layer < depth; ++layer) {
      v = b.dense(v, 1 + rng() % 70, rng() % 4 != 0);
      if (rng() % 3 == 0) v = b.add(Node{Op::kLayerNorm, {v}, b.g.width_of(v), {}, {}, 1e-5f, 0, false, "ln"});
      const Op act = activations[rng() % std::size(activations)];
      v = b.unary(v, act, act == Op::kLeakyRelu ? 0.1f : 1.0f);
    }
    b.dense(v, 1 + rng() % 5);
    SCOPED_TRACE("trial " + std::to_string(trial));
    expect_matches(b.g, 20, {1, 4, 7, 20}, static_cast<unsigned>(trial));
  }
}

TEST(NativePlan, RunAllocatesNothing) {
  Builder b(32);
  int v = b.unary(b.dense(0, 64), Op::kRelu);
  v = b.add(Node{Op::kLayerNorm, {v}, 64, {}, {}, 1e-5f, 0, false, "ln"});
  b.unary(b.dense(v, 3), Op::kSoftmax);
  Executor exec(Plan::compile(b.g), 64);
  const auto input = random_input(64 * 32, 3);
  std::vector<float> out(64 * 3);
  exec.run(input.data(), 1, out.data());
  testing::CountNew count;
  for (std::size_t rows = 1; rows <= 64; ++rows) exec.run(input.data(), rows, out.data());
  EXPECT_EQ(count.calls(), 0u);
}

TEST(NativePlan, TooManyRowsIsRefusedWithTheLimit) {
  Builder b(4);
  b.dense(0, 2);
  Executor exec(Plan::compile(b.g), 8);
  std::vector<float> in(9 * 4), out(9 * 2);
  try {
    exec.run(in.data(), 9, out.data());
    FAIL() << "expected std::out_of_range";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "native plan: batch of 9 rows exceeds max_rows 8");
  }
}

void expect_refused(const Graph& g, const std::string& message) {
  try {
    (void)Plan::compile(g);
    FAIL() << "expected Error(kUnsupported)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(NativePlan, MalformedGraphsAreRefusedNamingTheNode) {
  Builder wrong_weights(4);
  wrong_weights.add(Node{Op::kDense, {0}, 3, std::vector<float>(11), {}, 0, 0, false, "%5 = aten::linear"});
  expect_refused(wrong_weights.g,
                 "native graph: node 0 (dense, %5 = aten::linear): weights hold 11 values, expected 3 x 4");

  Builder forward_ref(4);
  forward_ref.add(Node{Op::kRelu, {1}, 4, {}, {}, 0, 0, false, "Relu_1"});
  expect_refused(forward_ref.g, "native graph: node 0 (relu, Relu_1): input value 1 is not defined before it");

  Builder bad_concat(4);
  bad_concat.add(Node{Op::kConcat, {0, 0}, 9, {}, {}, 0, 0, false, "Concat_2"});
  expect_refused(bad_concat.g, "native graph: node 0 (concat, Concat_2): inputs hold 8 features, width is 9");
}

TEST(NativePlan, CompiledIsaIsSupportedByThisCpu) { EXPECT_NO_THROW(check_cpu()) << compiled_isa(); }

}  // namespace
}  // namespace tickinfer::native
