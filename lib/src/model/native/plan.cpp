// Kernels and the planner of the native engine. This file is compiled for the native ISA by default
// (TICKINFER_NATIVE_ARCH); native_isa.cpp, compiled without it, checks the CPU before a plan is made.

#include "model/native/plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "model/native/isa.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::native {
namespace {

// Eight floats: one AVX register, two SSE registers; GCC and clang lower it to whatever the target has.
typedef float v8 __attribute__((vector_size(32)));

inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }
inline v8 splat(float x) { return v8{x, x, x, x, x, x, x, x}; }

std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

template <Activation A>
inline v8 activate(v8 v, float alpha, float beta) {
  if constexpr (A == Activation::kRelu) {
    return v > 0.0f ? v : splat(0.0f);
  } else if constexpr (A == Activation::kLeakyRelu) {
    return v > 0.0f ? v : v * alpha;
  } else if constexpr (A == Activation::kClamp) {
    v = v < alpha ? splat(alpha) : v;
    return v > beta ? splat(beta) : v;
  } else {
    (void)alpha;
    (void)beta;
    return v;
  }
}

// R rows x (V * 8) columns of y = x W^T + b: R * V independent accumulators, weights read once per R rows.
// wt is W transposed and packed: [in][pw] with pw a multiple of kLanes; bias is padded to pw (or null).
template <int R, int V, Activation A>
inline void dense_block(const float* x, std::size_t xs, std::size_t in, const float* wt, std::size_t pw,
                        const float* bias, float* y, std::size_t ys, std::size_t o0, float alpha, float beta) {
  v8 acc[R][V];
  for (int v = 0; v < V; ++v) {
    const v8 b = bias ? load8(bias + o0 + 8 * v) : splat(0.0f);
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  const float* w = wt + o0;
  for (std::size_t i = 0; i < in; ++i, w += pw) {
    v8 wv[V];
    for (int v = 0; v < V; ++v) wv[v] = load8(w + 8 * v);
    for (int r = 0; r < R; ++r) {
      const v8 xb = splat(x[r * xs + i]);
      for (int v = 0; v < V; ++v) acc[r][v] += xb * wv[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) store8(y + r * ys + o0 + 8 * v, activate<A>(acc[r][v], alpha, beta));
}

// Columns of a batch: for each block of 8 * V columns, every group of four rows, then the leftover rows, so the
// block's slice of the packed weights ([in][8 * V]: 32 KB for 256 inputs and V = 4) stays in L1 while all the
// rows go through it, instead of the whole matrix streaming from L2 once per four rows. Measured on a 256 -> 256
// layer at 64 rows (AVX-512 Xeon): 143 us against 190 us for four rows at a time across all columns.
template <int V, Activation A>
std::size_t dense_columns(const float* x, std::size_t xs, std::size_t rows, std::size_t in, const float* wt,
                          std::size_t pw, std::size_t o, const float* bias, float* y, std::size_t ys, float alpha,
                          float beta) {
  for (; o + 8 * V <= pw; o += 8 * V) {
    std::size_t r = 0;
    for (; r + 4 <= rows; r += 4)
      dense_block<4, V, A>(x + r * xs, xs, in, wt, pw, bias, y + r * ys, ys, o, alpha, beta);
    for (; r < rows; ++r) dense_block<1, V, A>(x + r * xs, xs, in, wt, pw, bias, y + r * ys, ys, o, alpha, beta);
  }
  return o;
}

// 4 x 32 blocks hold 16 accumulators, 4 weight vectors and a broadcast: they need AVX-512's 32 vector registers
// (AVX2 has 16, and would spill); elsewhere 4 x 16 blocks.
#if defined(__AVX512F__)
constexpr int kBatchVectors = 4;
#else
constexpr int kBatchVectors = 2;
#endif

template <Activation A>
void dense_rows(const float* x, std::size_t xs, std::size_t rows, std::size_t in, const float* wt, std::size_t pw,
                const float* bias, float* y, std::size_t ys, float alpha, float beta) {
  std::size_t r = 0;
  if (rows >= 4) {
    const std::size_t o = dense_columns<kBatchVectors, A>(x, xs, rows, in, wt, pw, 0, bias, y, ys, alpha, beta);
    if (o < pw) dense_columns<2, A>(x, xs, rows, in, wt, pw, o, bias, y, ys, alpha, beta);  // pw is a multiple of 16
    return;
  }
  for (; r < rows; ++r) {
    std::size_t o = 0;
    for (; o + 64 <= pw; o += 64)
      dense_block<1, 8, A>(x + r * xs, xs, in, wt, pw, bias, y + r * ys, ys, o, alpha, beta);
    for (; o < pw; o += 16) dense_block<1, 2, A>(x + r * xs, xs, in, wt, pw, bias, y + r * ys, ys, o, alpha, beta);
  }
}

// Narrow layers (fewer outputs than one block): one dot product per output over the inputs, four accumulators
// so the FMA chain is not latency-bound. w is row-major [out][pin], pin = inputs padded to 32 with zeros; x is
// read through a zero-padded copy of the row.
template <Activation A>
void dense_dot_rows(const float* x, std::size_t xs, std::size_t rows, std::size_t in, const float* w, std::size_t pin,
                    std::size_t out, const float* bias, float* y, std::size_t ys, float* scratch, float alpha,
                    float beta) {
  for (std::size_t r = 0; r < rows; ++r) {
    std::memcpy(scratch, x + r * xs, in * sizeof(float));  // scratch[in..pin) stays zero
    for (std::size_t o = 0; o < out; ++o) {
      const float* wo = w + o * pin;
      v8 acc[4] = {splat(0.0f), splat(0.0f), splat(0.0f), splat(0.0f)};
      for (std::size_t i = 0; i < pin; i += 32)
        for (int k = 0; k < 4; ++k) acc[k] += load8(scratch + i + 8 * k) * load8(wo + i + 8 * k);
      const v8 sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
      float total = bias ? bias[o] : 0.0f;
      for (int k = 0; k < 8; ++k) total += sum[k];
      const v8 activated = activate<A>(splat(total), alpha, beta);
      y[r * ys + o] = activated[0];
    }
  }
}

void dense_dot(Activation a, const float* x, std::size_t xs, std::size_t rows, std::size_t in, const float* w,
               std::size_t pin, std::size_t out, const float* bias, float* y, std::size_t ys, float* scratch,
               float alpha, float beta) {
  switch (a) {
    case Activation::kNone:
      return dense_dot_rows<Activation::kNone>(x, xs, rows, in, w, pin, out, bias, y, ys, scratch, alpha, beta);
    case Activation::kRelu:
      return dense_dot_rows<Activation::kRelu>(x, xs, rows, in, w, pin, out, bias, y, ys, scratch, alpha, beta);
    case Activation::kLeakyRelu:
      return dense_dot_rows<Activation::kLeakyRelu>(x, xs, rows, in, w, pin, out, bias, y, ys, scratch, alpha, beta);
    case Activation::kClamp:
      return dense_dot_rows<Activation::kClamp>(x, xs, rows, in, w, pin, out, bias, y, ys, scratch, alpha, beta);
  }
}

void dense(Activation a, const float* x, std::size_t xs, std::size_t rows, std::size_t in, const float* wt,
           std::size_t pw, const float* bias, float* y, std::size_t ys, float alpha, float beta) {
  switch (a) {
    case Activation::kNone:
      return dense_rows<Activation::kNone>(x, xs, rows, in, wt, pw, bias, y, ys, alpha, beta);
    case Activation::kRelu:
      return dense_rows<Activation::kRelu>(x, xs, rows, in, wt, pw, bias, y, ys, alpha, beta);
    case Activation::kLeakyRelu:
      return dense_rows<Activation::kLeakyRelu>(x, xs, rows, in, wt, pw, bias, y, ys, alpha, beta);
    case Activation::kClamp:
      return dense_rows<Activation::kClamp>(x, xs, rows, in, wt, pw, bias, y, ys, alpha, beta);
  }
}

// sum(x[0..n)) and sum((x - mean)^2): two vector accumulators each (independent adds, so not one latency-bound
// chain), then the scalar tail.
template <bool kSquares>
inline float reduce_row(const float* x, std::size_t n, float mean) {
  v8 a = splat(0.0f), b = splat(0.0f);
  const v8 m = splat(mean);
  std::size_t c = 0;
  for (; c + 16 <= n; c += 16) {
    const v8 d0 = load8(x + c) - m, d1 = load8(x + c + 8) - m;
    a += kSquares ? d0 * d0 : d0;
    b += kSquares ? d1 * d1 : d1;
  }
  for (; c + 8 <= n; c += 8) {
    const v8 d = load8(x + c) - m;
    a += kSquares ? d * d : d;
  }
  const v8 ab = a + b;
  float total = 0.0f;
  for (int k = 0; k < 8; ++k) total += ab[k];
  for (; c < n; ++c) total += kSquares ? (x[c] - mean) * (x[c] - mean) : x[c] - mean;
  return total;
}

// One row of layer_norm over its w features (then relu when fused): the mean, the variance about it (two
// passes, as LibTorch computes it), then (x - mean) / sqrt(var + eps) * gamma + beta, eight lanes at a time.
void layer_norm_row(const float* x, float* y, std::size_t w, const float* gamma, const float* beta, float eps,
                    bool relu) {
  const float mean = reduce_row<false>(x, w, 0.0f) / static_cast<float>(w);
  const float var = reduce_row<true>(x, w, mean) / static_cast<float>(w);
  const float inv = 1.0f / std::sqrt(var + eps);
  const v8 vm = splat(mean), vi = splat(inv), zero = splat(0.0f);
  std::size_t c = 0;
  for (; c + 8 <= w; c += 8) {
    v8 v = (load8(x + c) - vm) * vi;
    if (gamma) v *= load8(gamma + c);
    if (beta) v += load8(beta + c);
    if (relu) v = v > 0.0f ? v : zero;
    store8(y + c, v);
  }
  for (; c < w; ++c) {
    float v = (x[c] - mean) * inv;
    if (gamma) v *= gamma[c];
    if (beta) v += beta[c];
    y[c] = relu && v < 0.0f ? 0.0f : v;
  }
}

float apply_activation(Activation a, float v, float alpha, float beta) {
  switch (a) {
    case Activation::kNone:
      return v;
    case Activation::kRelu:
      return v > 0.0f ? v : 0.0f;
    case Activation::kLeakyRelu:
      return v > 0.0f ? v : v * alpha;
    case Activation::kClamp:
      return std::min(std::max(v, alpha), beta);
  }
  return v;
}

float unary(Op op, float v, float alpha, float beta) {
  switch (op) {
    case Op::kRelu:
      return v > 0.0f ? v : 0.0f;
    case Op::kLeakyRelu:
      return v > 0.0f ? v : v * alpha;
    case Op::kElu:
      return v > 0.0f ? v : alpha * std::expm1(v);
    case Op::kSelu:
      return beta * (v > 0.0f ? v : alpha * std::expm1(v));
    case Op::kErf:
      return std::erf(v);
    case Op::kGeluErf:
      return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
    case Op::kGeluTanh:
      return 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case Op::kSilu:
      return v / (1.0f + std::exp(-v));
    case Op::kTanh:
      return std::tanh(v);
    case Op::kSigmoid:
      return 1.0f / (1.0f + std::exp(-v));
    case Op::kClamp:
      return std::min(std::max(v, alpha), beta);
    default:
      return v;
  }
}

float binary(Op op, float a, float b) {
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

Activation fusable(Op op) {
  switch (op) {
    case Op::kRelu:
      return Activation::kRelu;
    case Op::kLeakyRelu:
      return Activation::kLeakyRelu;
    case Op::kClamp:
      return Activation::kClamp;
    default:
      return Activation::kNone;
  }
}

}  // namespace

const char* compiled_isa() noexcept {
  return ""
#if defined(__AVX512F__)
         "avx512f "
#endif
#if defined(__AVX2__)
         "avx2 "
#endif
#if defined(__FMA__)
         "fma "
#endif
#if defined(__AVX__)
         "avx "
#endif
#if defined(__SSE4_2__)
         "sse4.2 "
#endif
         "baseline";
}

AlignedBuffer::AlignedBuffer(std::size_t floats) : size_(floats) {
  const std::size_t bytes = round_up(std::max<std::size_t>(floats, 1) * sizeof(float), 64);
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  data_.reset(p);
}

void AlignedBuffer::Free::operator()(float* p) const noexcept { std::free(p); }

std::shared_ptr<const Plan> Plan::compile(const Graph& input) {
  check_cpu();
  Graph g = simplify(input);
  if (g.output == 0) {  // identity / dropout only: one copy step
    g.nodes.push_back(Node{Op::kAffine,
                           {0},
                           g.input_width,
                           std::vector<float>(g.input_width, 1.0f),
                           std::vector<float>(g.input_width, 0.0f),
                           0,
                           0,
                           false,
                           "identity"});
    g.output = static_cast<int>(g.nodes.size());
  }

  std::shared_ptr<Plan> plan(new Plan());
  plan->input_width_ = g.input_width;
  plan->output_width_ = g.width_of(g.output);
  plan->output_ = g.output;

  std::vector<int> readers(g.nodes.size() + 1, 0);
  for (const Node& n : g.nodes)
    for (const int v : n.inputs) ++readers[static_cast<std::size_t>(v)];
  ++readers[static_cast<std::size_t>(g.output)];

  // Constants first: sizes, then one aligned buffer.
  std::vector<float> constants;
  const auto add_constants = [&](const std::vector<float>& values, std::size_t padded) {
    const std::size_t offset = constants.size();
    constants.resize(offset + round_up(std::max<std::size_t>(padded, 1), kLanes), 0.0f);
    std::copy(values.begin(), values.end(), constants.begin() + static_cast<std::ptrdiff_t>(offset));
    return offset;
  };

  std::vector<bool> fused_away(g.nodes.size(), false);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (fused_away[i]) continue;
    const Node& n = g.nodes[i];
    Step s;
    s.op = n.op;
    s.width = n.width;
    s.inputs = n.inputs;
    s.out = static_cast<int>(i + 1);
    s.alpha = n.alpha;
    s.beta = n.beta;
    s.reversed = n.reversed;
    s.weights = s.bias = kNoConstant;
    if (n.op == Op::kDense) {
      const std::size_t in = g.width_of(n.inputs[0]);
      s.in_width = in;
      if (n.width < kDotMaxOutputs && in >= kDotMinInputs) {
        // Dot-product form: W row-major [out][pin].
        const std::size_t pin = round_up(in, 32);
        std::vector<float> packed(n.width * pin, 0.0f);
        for (std::size_t o = 0; o < n.width; ++o)
          for (std::size_t k = 0; k < in; ++k) packed[o * pin + k] = n.weights[o * in + k];
        s.dot = true;
        s.padded_width = pin;
        plan->scratch_floats_ = std::max(plan->scratch_floats_, pin);
        s.weights = add_constants(packed, packed.size());
      } else {
        const std::size_t pw = round_up(n.width, kLanes);
        std::vector<float> packed(in * pw, 0.0f);  // W^T, [in][pw]
        for (std::size_t o = 0; o < n.width; ++o)
          for (std::size_t k = 0; k < in; ++k) packed[k * pw + o] = n.weights[o * in + k];
        s.padded_width = pw;
        s.weights = add_constants(packed, packed.size());
      }
      if (!n.bias.empty()) s.bias = add_constants(n.bias, round_up(n.width, kLanes));
    } else if (n.op == Op::kAffine || n.op == Op::kLayerNorm) {
      if (!n.weights.empty()) s.weights = add_constants(n.weights, n.width);
      if (!n.bias.empty()) s.bias = add_constants(n.bias, n.width);
    } else if (!n.weights.empty()) {  // binary op with a constant (not affine: const / a)
      std::vector<float> c = n.weights.size() == n.width ? n.weights : std::vector<float>(n.width, n.weights[0]);
      s.weights = add_constants(c, n.width);
    }
    // Fuse relu / leaky_relu / clamp into the dense or affine step that feeds only it; relu into a layer_norm
    // (whose alpha is its epsilon, so not the parametrised ones).
    if ((n.op == Op::kDense || n.op == Op::kAffine || n.op == Op::kLayerNorm) && readers[i + 1] == 1) {
      for (std::size_t j = i + 1; j < g.nodes.size(); ++j) {
        const Node& m = g.nodes[j];
        if (m.inputs.size() == 1 && m.inputs[0] == static_cast<int>(i + 1)) {
          const Activation a = fusable(m.op);
          if (a != Activation::kNone && (n.op != Op::kLayerNorm || a == Activation::kRelu)) {
            s.activation = a;
            if (n.op != Op::kLayerNorm) {  // a layer_norm keeps its epsilon; relu has no parameters
              s.alpha = m.alpha;
              s.beta = m.beta;
            }
            s.out = static_cast<int>(j + 1);
            fused_away[j] = true;
          }
          break;
        }
      }
    }
    plan->steps_.push_back(std::move(s));
  }
  plan->constants_ = AlignedBuffer(constants.size());
  std::copy(constants.begin(), constants.end(), plan->constants_.data());

  // Arena: one region per materialised value, rows padded to kLanes floats (dense stores whole blocks).
  plan->value_offset_.assign(g.nodes.size() + 1, 0);
  plan->value_stride_.assign(g.nodes.size() + 1, 0);
  plan->value_width_.assign(g.nodes.size() + 1, 0);
  plan->value_stride_[0] = plan->value_width_[0] = g.input_width;
  std::size_t arena = 0;
  for (const Step& s : plan->steps_) {
    const auto v = static_cast<std::size_t>(s.out);
    plan->value_stride_[v] = round_up(s.width, kLanes);
    plan->value_width_[v] = s.width;
    plan->value_offset_[v] = arena;
    arena += plan->value_stride_[v];
  }
  plan->arena_floats_per_row_ = arena;
  return plan;
}

std::string Plan::describe() const {
  std::string text;
  for (const Step& s : steps_) {
    if (!text.empty()) text += "; ";
    text += to_string(s.op);
    if (s.op == Op::kDense) {
      text += s.dot ? " (dot) " : " ";
      text += std::to_string(s.in_width);
      text += "->";
      text += std::to_string(s.width);
    }
    switch (s.activation) {
      case Activation::kRelu:
        text += " +relu";
        break;
      case Activation::kLeakyRelu:
        text += " +leaky_relu";
        break;
      case Activation::kClamp:
        text += " +clamp";
        break;
      case Activation::kNone:
        break;
    }
  }
  return text;
}

Executor::Executor(std::shared_ptr<const Plan> plan, std::size_t max_rows)
    : plan_(std::move(plan)),
      max_rows_(max_rows),
      arena_(plan_->arena_floats_per_row_ * max_rows + plan_->scratch_floats_) {
  if (max_rows == 0) throw Error(ErrorCode::kInvalidConfig, "native executor: max_rows must be >= 1");
}

void Executor::run(const float* input, std::size_t rows, float* output) {
  const Plan& p = *plan_;
  if (rows == 0) return;
  if (rows > max_rows_) {
    std::string message = "native plan: batch of ";
    message += std::to_string(rows);
    message += " rows exceeds max_rows ";
    message += std::to_string(max_rows_);
    throw std::out_of_range(message);
  }
  float* arena = arena_.data();
  float* scratch = arena + p.arena_floats_per_row_ * max_rows_;  // zero beyond what dense_dot copies in
  const float* constants = p.constants_.data();
  const auto value = [&](int v) -> const float* {
    return v == 0 ? input : arena + p.value_offset_[static_cast<std::size_t>(v)] * max_rows_;
  };
  const auto stride = [&](int v) { return p.value_stride_[static_cast<std::size_t>(v)]; };
  const auto constant = [&](std::size_t offset) { return offset == kNoConstant ? nullptr : constants + offset; };

  for (const Step& s : p.steps_) {
    float* y = arena + p.value_offset_[static_cast<std::size_t>(s.out)] * max_rows_;
    const std::size_t ys = stride(s.out), w = s.width;
    const float* x = value(s.inputs.empty() ? 0 : s.inputs[0]);
    const std::size_t xs = stride(s.inputs.empty() ? 0 : s.inputs[0]);
    switch (s.op) {
      case Op::kDense:
        if (s.dot) {
          dense_dot(s.activation, x, xs, rows, s.in_width, constants + s.weights, s.padded_width, w, constant(s.bias),
                    y, ys, scratch, s.alpha, s.beta);
          break;
        }
        dense(s.activation, x, xs, rows, s.in_width, constants + s.weights, s.padded_width, constant(s.bias), y, ys,
              s.alpha, s.beta);
        break;
      case Op::kAffine: {
        const float* scale = constant(s.weights);
        const float* shift = constant(s.bias);
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t c = 0; c < w; ++c)
            y[r * ys + c] = apply_activation(s.activation, x[r * xs + c] * scale[c] + shift[c], s.alpha, s.beta);
        break;
      }
      case Op::kAdd:
      case Op::kSub:
      case Op::kMul:
      case Op::kDiv: {
        if (s.inputs.size() == 2) {
          const float* b = value(s.inputs[1]);
          const std::size_t bs = stride(s.inputs[1]);
          for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < w; ++c) y[r * ys + c] = binary(s.op, x[r * xs + c], b[r * bs + c]);
        } else {
          const float* k = constant(s.weights);
          for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < w; ++c)
              y[r * ys + c] = s.reversed ? binary(s.op, k[c], x[r * xs + c]) : binary(s.op, x[r * xs + c], k[c]);
        }
        break;
      }
      case Op::kSoftmax:
      case Op::kLogSoftmax:
        for (std::size_t r = 0; r < rows; ++r) {
          const float* xr = x + r * xs;
          float* yr = y + r * ys;
          float m = -std::numeric_limits<float>::infinity();
          for (std::size_t c = 0; c < w; ++c) m = std::max(m, xr[c]);
          float sum = 0.0f;
          for (std::size_t c = 0; c < w; ++c) {
            yr[c] = std::exp(xr[c] - m);
            sum += yr[c];
          }
          if (s.op == Op::kSoftmax) {
            const float inv = 1.0f / sum;
            for (std::size_t c = 0; c < w; ++c) yr[c] *= inv;
          } else {
            const float log_sum = std::log(sum);
            for (std::size_t c = 0; c < w; ++c) yr[c] = xr[c] - m - log_sum;
          }
        }
        break;
      case Op::kLayerNorm: {
        const float* gamma = constant(s.weights);
        const float* beta = constant(s.bias);
        const bool relu = s.activation == Activation::kRelu;
        for (std::size_t r = 0; r < rows; ++r) layer_norm_row(x + r * xs, y + r * ys, w, gamma, beta, s.alpha, relu);
        break;
      }
      case Op::kConcat: {
        std::size_t column = 0;
        for (const int in : s.inputs) {
          const std::size_t cols = p.value_width_[static_cast<std::size_t>(in)];
          const float* src = value(in);
          const std::size_t ss = stride(in);
          for (std::size_t r = 0; r < rows; ++r) std::memcpy(y + r * ys + column, src + r * ss, cols * sizeof(float));
          column += cols;
        }
        break;
      }
      default:  // unary elementwise
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t c = 0; c < w; ++c) y[r * ys + c] = unary(s.op, x[r * xs + c], s.alpha, s.beta);
        break;
    }
  }
  const float* result = value(p.output_);
  const std::size_t rs = stride(p.output_), ow = p.output_width_;
  for (std::size_t r = 0; r < rows; ++r) std::memcpy(output + r * ow, result + r * rs, ow * sizeof(float));
}

}  // namespace tickinfer::native
