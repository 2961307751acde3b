// Kernel candidates for the native engine on the reference MLP (32-64-64-1), side by side in one run:
// LibTorch's forward (the CPU runner, frozen + optimize_for_inference, one thread), the native plan (packed
// weights, GCC vector extensions, fused bias + relu), plain C++ loops, Eigen 3.4, and, each compiled in only when
// CMake finds it, Highway (static dispatch), oneDNN (matmul primitives with a relu post-op) and XNNPACK
// (fully-connected operators). Every candidate runs on one thread, is set up (weights packed, primitives and
// operators created) outside the timed loop, and is checked against the native plan's outputs before it is timed.
// B=1 is the case to win; B=64 must at least match LibTorch. Percentiles per call come from a histogram filled
// inside the loop. This file is compiled with -march=native (TICKINFER_NATIVE_ARCH), like the plan's kernels.

#include <benchmark/benchmark.h>
#include <torch/script.h>

// GCC 12 reports a false -Wmaybe-uninitialized inside Eigen's AVX-512 GEMM packing (its PacketBlock transposes);
// Eigen's headers are read with only that warning off.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#pragma GCC diagnostic pop
#else
#include <Eigen/Core>
#endif
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if TICKINFER_BENCH_HWY
#include <hwy/aligned_allocator.h>
#include <hwy/highway.h>
#endif
#if TICKINFER_BENCH_DNNL
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#endif
#if TICKINFER_BENCH_XNNPACK
#include <xnnpack.h>
#endif

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

// The native plan's outputs for inputs(rows): what every candidate must reproduce before it is timed.
bool matches_plan(benchmark::State& state, std::size_t rows, const float* got) {
  native::Executor exec(native::Plan::compile(graph()), kMaxBatch);
  const auto x = inputs(rows);
  std::vector<float> want(rows * exec.plan().output_width());
  exec.run(x.data(), rows, want.data());
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!(std::abs(got[i] - want[i]) <= 1e-4f * std::max(1.0f, std::abs(want[i])))) {
      state.SkipWithError(
          std::string("output ").append(std::to_string(i)).append(" differs from the native plan's").c_str());
      return false;
    }
  }
  return true;
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
  options.engine = ti::Engine::kLibTorch;  // the default (auto) would run the native plan through the runner
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

#if TICKINFER_BENCH_HWY
namespace hn = hwy::HWY_NAMESPACE;

// Highway 1.0, static dispatch (this file's -march=native target: AVX-512 where the CPU has it). A wide layer keeps
// W^T packed [in][out] and runs R rows x 4 vectors of columns, the FMA chains split S ways over the inputs (S = 2
// at one row, so eight chains hide the FMA latency); the head (one output) is a dot product per row.
struct HwyDense {
  std::size_t in = 0, out = 0;
  bool relu = false;
  hwy::AlignedFreeUniquePtr<float[]> w, bias;  // wide: W^T [in][out]; head: W [in]
};

HwyDense hwy_pack(const native::Node& n, std::size_t in, bool relu) {
  HwyDense l;
  l.in = in;
  l.out = n.width;
  l.relu = relu;
  l.w = hwy::AllocateAligned<float>(in * n.width);
  l.bias = hwy::AllocateAligned<float>(n.width);
  for (std::size_t o = 0; o < n.width; ++o) {
    l.bias[o] = n.bias[o];
    for (std::size_t k = 0; k < in; ++k) l.w[n.width == 1 ? k : k * n.width + o] = n.weights[o * in + k];
  }
  return l;
}

template <std::size_t R, std::size_t S>
void hwy_wide(const HwyDense& l, const float* x, float* y) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const std::size_t lanes = hn::Lanes(d);
  for (std::size_t j = 0; j < l.out; j += 4 * lanes) {
    V acc[S][R][4];
    for (std::size_t s = 0; s < S; ++s)
      for (std::size_t r = 0; r < R; ++r)
        for (std::size_t c = 0; c < 4; ++c) acc[s][r][c] = s == 0 ? hn::Load(d, &l.bias[j + c * lanes]) : hn::Zero(d);
    for (std::size_t k = 0; k < l.in; k += S) {
      for (std::size_t s = 0; s < S; ++s) {
        const float* w = &l.w[(k + s) * l.out + j];
        const V w0 = hn::Load(d, w), w1 = hn::Load(d, w + lanes), w2 = hn::Load(d, w + 2 * lanes),
                w3 = hn::Load(d, w + 3 * lanes);
        for (std::size_t r = 0; r < R; ++r) {
          const V xv = hn::Set(d, x[r * l.in + k + s]);
          acc[s][r][0] = hn::MulAdd(xv, w0, acc[s][r][0]);
          acc[s][r][1] = hn::MulAdd(xv, w1, acc[s][r][1]);
          acc[s][r][2] = hn::MulAdd(xv, w2, acc[s][r][2]);
          acc[s][r][3] = hn::MulAdd(xv, w3, acc[s][r][3]);
        }
      }
    }
    for (std::size_t r = 0; r < R; ++r) {
      for (std::size_t c = 0; c < 4; ++c) {
        V v = acc[0][r][c];
        for (std::size_t s = 1; s < S; ++s) v = hn::Add(v, acc[s][r][c]);
        if (l.relu) v = hn::Max(v, hn::Zero(d));
        hn::StoreU(v, d, y + r * l.out + j + c * lanes);
      }
    }
  }
}

void hwy_head(const HwyDense& l, const float* x, std::size_t rows, float* y) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * l.in;
    auto a0 = hn::Zero(d), a1 = hn::Zero(d);
    std::size_t k = 0;
    for (; k + 2 * lanes <= l.in; k += 2 * lanes) {
      a0 = hn::MulAdd(hn::LoadU(d, xr + k), hn::Load(d, &l.w[k]), a0);
      a1 = hn::MulAdd(hn::LoadU(d, xr + k + lanes), hn::Load(d, &l.w[k + lanes]), a1);
    }
    for (; k + lanes <= l.in; k += lanes) a0 = hn::MulAdd(hn::LoadU(d, xr + k), hn::Load(d, &l.w[k]), a0);
    y[r] = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, a1))) + l.bias[0];
  }
}

void hwy_layer(const HwyDense& l, const float* x, std::size_t rows, float* y) {
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) hwy_wide<4, 1>(l, x + r * l.in, y + r * l.out);
  for (; r < rows; ++r) hwy_wide<1, 2>(l, x + r * l.in, y + r * l.out);
}

void BM_Highway(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0));
  const auto& g = graph();
  const std::size_t lanes = hn::Lanes(hn::ScalableTag<float>());
  if (g.nodes[0].width % (4 * lanes) != 0 || g.nodes[2].width % (4 * lanes) != 0 || 64 % lanes != 0) {
    state.SkipWithError("layer widths are not a multiple of four vectors");
    return;
  }
  const HwyDense l1 = hwy_pack(g.nodes[0], 32, true), l2 = hwy_pack(g.nodes[2], 64, true),
                 l3 = hwy_pack(g.nodes[4], 64, false);
  const auto x = inputs(rows);
  std::vector<float> h1(rows * 64), h2(rows * 64), y(rows);
  const auto forward = [&] {
    hwy_layer(l1, x.data(), rows, h1.data());
    hwy_layer(l2, h1.data(), rows, h2.data());
    hwy_head(l3, h2.data(), rows, y.data());
  };
  forward();
  if (!matches_plan(state, rows, y.data())) return;
  measure(state, rows, [&] {
    forward();
    benchmark::DoNotOptimize(y.data());
  });
  state.SetLabel(std::string(hwy::TargetName(HWY_TARGET)).append(", ").append(std::to_string(lanes)).append(" floats"));
}
BENCHMARK(BM_Highway)->Arg(1)->Arg(64)->ArgName("B");
#endif

#if TICKINFER_BENCH_DNNL
// oneDNN 2.6: one matmul primitive per layer (bias, relu as a post-op), weights reordered once into the layout the
// primitive asks for; primitives, memories and argument maps made outside the loop; one OpenMP thread.
void BM_OneDnn(benchmark::State& state) {
  using dnnl::memory;
  omp_set_num_threads(1);
  const auto rows = static_cast<memory::dim>(state.range(0));
  const auto& g = graph();
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const auto x = inputs(static_cast<std::size_t>(rows));
  std::vector<float> h1(static_cast<std::size_t>(rows) * 64), h2(h1.size()), y(static_cast<std::size_t>(rows));
  struct Layer {
    dnnl::matmul primitive;
    std::unordered_map<int, memory> args;
    std::string implementation;  // oneDNN's name for the kernel it chose
  };
  const auto make = [&](const native::Node& n, memory::dim in, const float* src, float* dst, bool relu) {
    const auto out = static_cast<memory::dim>(n.width);
    const memory::desc src_md({rows, in}, memory::data_type::f32, memory::format_tag::ab);
    const memory::desc any_weights({in, out}, memory::data_type::f32, memory::format_tag::any);
    const memory::desc bias_md({1, out}, memory::data_type::f32, memory::format_tag::ab);
    const memory::desc dst_md({rows, out}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::primitive_attr attr;
    if (relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_weights, bias_md, dst_md), attr, engine);
    // Node weights are [out][in] row-major: the {in, out} matrix in "ba" order.
    memory user_weights({{in, out}, memory::data_type::f32, memory::format_tag::ba}, engine,
                        const_cast<float*>(n.weights.data()));
    memory weights(pd.weights_desc(), engine);
    dnnl::reorder(user_weights, weights).execute(stream, user_weights, weights);
    Layer layer{dnnl::matmul(pd), {}, pd.impl_info_str()};
    layer.args = {{DNNL_ARG_SRC, memory(src_md, engine, const_cast<float*>(src))},
                  {DNNL_ARG_WEIGHTS, weights},
                  {DNNL_ARG_BIAS, memory(bias_md, engine, const_cast<float*>(n.bias.data()))},
                  {DNNL_ARG_DST, memory(dst_md, engine, dst)}};
    return layer;
  };
  const Layer layers[] = {make(g.nodes[0], 32, x.data(), h1.data(), true),
                          make(g.nodes[2], 64, h1.data(), h2.data(), true),
                          make(g.nodes[4], 64, h2.data(), y.data(), false)};
  stream.wait();
  const auto forward = [&] {
    for (const Layer& layer : layers) layer.primitive.execute(stream, layer.args);
    stream.wait();
  };
  forward();
  if (!matches_plan(state, static_cast<std::size_t>(rows), y.data())) return;
  measure(state, static_cast<std::size_t>(rows), [&] {
    forward();
    benchmark::DoNotOptimize(y.data());
  });
  state.SetLabel(layers[1].implementation);
}
BENCHMARK(BM_OneDnn)->Arg(1)->Arg(64)->ArgName("B");
#endif

#if TICKINFER_BENCH_XNNPACK
// XNNPACK (Debian 12: git 2022-02-16, the create / setup / run API): one fully-connected operator per layer (relu
// as the output clamp), created and set up once outside the loop (the buffers never move); no thread pool.
void BM_Xnnpack(benchmark::State& state) {
  if (xnn_initialize(nullptr) != xnn_status_success) {
    state.SkipWithError("xnn_initialize failed");
    return;
  }
  const auto rows = static_cast<std::size_t>(state.range(0));
  const auto& g = graph();
  const auto x = inputs(rows);
  std::vector<float> h1(rows * 64), h2(rows * 64), y(rows);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  struct Op {
    xnn_operator_t op = nullptr;
    ~Op() {
      if (op) xnn_delete_operator(op);
    }
  } ops[3];
  const auto make = [&](Op& op, const native::Node& n, std::size_t in, const float* src, float* dst, bool relu) {
    return xnn_create_fully_connected_nc_f32(in, n.width, in, n.width, n.weights.data(), n.bias.data(),
                                             relu ? 0.0f : -kInf, kInf, 0, &op.op) == xnn_status_success &&
           xnn_setup_fully_connected_nc_f32(op.op, rows, src, dst, nullptr) == xnn_status_success;
  };
  if (!make(ops[0], g.nodes[0], 32, x.data(), h1.data(), true) ||
      !make(ops[1], g.nodes[2], 64, h1.data(), h2.data(), true) ||
      !make(ops[2], g.nodes[4], 64, h2.data(), y.data(), false)) {
    state.SkipWithError("xnn_create / xnn_setup_fully_connected_nc_f32 failed");
    return;
  }
  const auto forward = [&] {
    for (const Op& op : ops) xnn_run_operator(op.op, nullptr);
  };
  forward();
  if (!matches_plan(state, rows, y.data())) return;
  measure(state, rows, [&] {
    forward();
    benchmark::DoNotOptimize(y.data());
  });
}
BENCHMARK(BM_Xnnpack)->Arg(1)->Arg(64)->ArgName("B");
#endif

}  // namespace

BENCHMARK_MAIN();
