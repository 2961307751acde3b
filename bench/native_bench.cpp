// Kernel candidates for the native engine on the reference MLP (32-64-64-1), side by side in one run:
// LibTorch's forward (the CPU runner, frozen + optimize_for_inference, one thread), the native plan (packed
// weights, GCC vector extensions, fused bias + relu), plain C++ loops, and Eigen 3.4. B=1 is the case to win;
// B=64 must at least match LibTorch. Percentiles per call come from a histogram filled inside the loop.

#include <benchmark/benchmark.h>
#include <torch/script.h>

#include <Eigen/Core>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "model/native/plan.hpp"
#include "model/native/torchscript_frontend.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/torchscript.hpp"

namespace ti = tickinfer;
namespace native = tickinfer::native;

namespace {

const std::string kModel = std::string(TICKINFER_MODEL_DIR) + "/mlp.pt";
constexpr std::size_t kMaxBatch = 64;

// The MLP's graph (weights from the exported module), shared by every candidate.
const native::Graph& graph() {
  static const native::Graph g = [] {
    auto module = torch::jit::load(kModel);
    module.eval();
    return native::from_torchscript(module, 32, kModel);
  }();
  return g;
}

std::vector<float> inputs(std::size_t rows) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  std::vector<float> v(rows * graph().input_width);
  for (float& x : v) x = dist(rng);
  return v;
}

template <typename Run>
void measure(benchmark::State& state, std::size_t rows, Run&& run) {
  ti::LatencyHistogram h;
  for (auto _ : state) {
    const std::int64_t t0 = ti::now_ns();
    run();
    h.record_exclusive(ti::now_ns() - t0);
  }
  ti::bench::add_percentiles(state, h);
  state.counters["rows_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * rows), benchmark::Counter::kIsRate);
}

void BM_LibTorchForward(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0));
  ti::LoadOptions options;
  options.warmup_batch_sizes = {rows};
  const auto model = ti::load_torchscript(kModel, options);
  auto runner = ti::make_cpu_backend()->make_runner(kMaxBatch, model->input_width());
  const auto x = inputs(rows);
  std::copy(x.begin(), x.end(), runner->input(rows).begin());
  measure(state, rows, [&] { benchmark::DoNotOptimize(runner->run(*model, rows).data()); });
}
BENCHMARK(BM_LibTorchForward)->Arg(1)->Arg(64)->ArgName("B");

void BM_NativePlan(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0));
  native::Executor exec(native::Plan::compile(graph()), kMaxBatch);
  const auto x = inputs(rows);
  std::vector<float> y(rows * exec.plan().output_width());
  measure(state, rows, [&] {
    exec.run(x.data(), rows, y.data());
    benchmark::DoNotOptimize(y.data());
  });
  state.SetLabel(exec.plan().describe());
}
BENCHMARK(BM_NativePlan)->Arg(1)->Arg(64)->ArgName("B");

// Plain loops: y = relu(W x + b), W row-major [out][in], one row at a time.
void BM_PlainLoops(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0));
  const auto& g = graph();
  const auto x = inputs(rows);
  std::vector<float> h1(64), h2(64), y(rows);
  const auto layer = [](const native::Node& n, const float* in, std::size_t in_w, float* out, bool relu) {
    for (std::size_t o = 0; o < n.width; ++o) {
      float acc = n.bias.empty() ? 0.0f : n.bias[o];
      for (std::size_t k = 0; k < in_w; ++k) acc += n.weights[o * in_w + k] * in[k];
      out[o] = relu && acc < 0.0f ? 0.0f : acc;
    }
  };
  measure(state, rows, [&] {
    for (std::size_t r = 0; r < rows; ++r) {
      layer(g.nodes[0], x.data() + r * 32, 32, h1.data(), true);
      layer(g.nodes[2], h1.data(), 64, h2.data(), true);
      layer(g.nodes[4], h2.data(), 64, y.data() + r, false);
    }
    benchmark::DoNotOptimize(y.data());
  });
}
BENCHMARK(BM_PlainLoops)->Arg(1)->Arg(64)->ArgName("B");

// Eigen 3.4: Y = relu(X W^T + b) per layer on row-major matrices (matrix-matrix for B > 1).
void BM_Eigen(benchmark::State& state) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto rows = static_cast<Eigen::Index>(state.range(0));
  const auto& g = graph();
  const auto weights = [&](const native::Node& n, Eigen::Index in_w) {
    return Matrix(Eigen::Map<const Matrix>(n.weights.data(), static_cast<Eigen::Index>(n.width), in_w));
  };
  const auto bias = [](const native::Node& n) {
    return Eigen::RowVectorXf(Eigen::Map<const Eigen::RowVectorXf>(n.bias.data(), static_cast<Eigen::Index>(n.width)));
  };
  const Matrix w1 = weights(g.nodes[0], 32), w2 = weights(g.nodes[2], 64), w3 = weights(g.nodes[4], 64);
  const Eigen::RowVectorXf b1 = bias(g.nodes[0]), b2 = bias(g.nodes[2]), b3 = bias(g.nodes[4]);
  const auto xv = inputs(static_cast<std::size_t>(rows));
  const Matrix x = Eigen::Map<const Matrix>(xv.data(), rows, 32);
  Matrix h1(rows, 64), h2(rows, 64), y(rows, 1);
  measure(state, static_cast<std::size_t>(rows), [&] {
    h1.noalias() = x * w1.transpose();
    h1 = (h1.rowwise() + b1).cwiseMax(0.0f);
    h2.noalias() = h1 * w2.transpose();
    h2 = (h2.rowwise() + b2).cwiseMax(0.0f);
    y.noalias() = h2 * w3.transpose();
    y.rowwise() += b3;
    benchmark::DoNotOptimize(y.data());
  });
}
BENCHMARK(BM_Eigen)->Arg(1)->Arg(64)->ArgName("B");

}  // namespace

BENCHMARK_MAIN();
