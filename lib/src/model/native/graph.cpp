#include "model/native/graph.hpp"

#include <algorithm>
#include <string>

#include "tickinfer/error.hpp"

namespace tickinfer::native {
namespace {

[[noreturn]] void refuse(const Node& node, std::size_t index, const std::string& problem) {
  throw Error(ErrorCode::kUnsupported, "native graph: node " + std::to_string(index) + " (" + to_string(node.op) +
                                           (node.name.empty() ? "" : ", " + node.name) + "): " + problem);
}

bool is_binary(Op op) { return op == Op::kAdd || op == Op::kSub || op == Op::kMul || op == Op::kDiv; }

// How many live nodes (and the graph output) read each value.
std::vector<int> readers_count(const Graph& g, const std::vector<bool>& dead) {
  std::vector<int> count(g.nodes.size() + 1, 0);
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead[i])
      for (const int v : g.nodes[i].inputs) ++count[static_cast<std::size_t>(v)];
  ++count[static_cast<std::size_t>(g.output)];
  return count;
}

// A constant of `width` values, from [width] or a broadcast [1].
std::vector<float> broadcast(const std::vector<float>& c, std::size_t width) {
  if (c.size() == width) return c;
  return std::vector<float>(width, c.empty() ? 0.0f : c[0]);
}

// y = x * scale + shift for a binary op with a constant, or false when it is not affine (const / a).
bool as_affine(const Node& n, std::vector<float>& scale, std::vector<float>& shift) {
  const std::vector<float> c = broadcast(n.weights, n.width);
  scale.assign(n.width, 1.0f);
  shift.assign(n.width, 0.0f);
  switch (n.op) {
    case Op::kAdd:
      shift = c;
      return true;
    case Op::kSub:
      for (std::size_t i = 0; i < n.width; ++i) {
        if (n.reversed) {
          scale[i] = -1.0f;
          shift[i] = c[i];
        } else {
          shift[i] = -c[i];
        }
      }
      return true;
    case Op::kMul:
      scale = c;
      return true;
    case Op::kDiv:
      if (n.reversed) return false;
      for (std::size_t i = 0; i < n.width; ++i) scale[i] = 1.0f / c[i];
      return true;
    case Op::kAffine:
      scale = n.weights;
      shift = n.bias;
      return true;
    default:
      return false;
  }
}

}  // namespace

const char* to_string(Op op) noexcept {
  switch (op) {
    case Op::kDense:
      return "dense";
    case Op::kAdd:
      return "add";
    case Op::kSub:
      return "sub";
    case Op::kMul:
      return "mul";
    case Op::kDiv:
      return "div";
    case Op::kRelu:
      return "relu";
    case Op::kLeakyRelu:
      return "leaky_relu";
    case Op::kElu:
      return "elu";
    case Op::kSelu:
      return "selu";
    case Op::kErf:
      return "erf";
    case Op::kGeluErf:
      return "gelu";
    case Op::kGeluTanh:
      return "gelu_tanh";
    case Op::kSilu:
      return "silu";
    case Op::kTanh:
      return "tanh";
    case Op::kSigmoid:
      return "sigmoid";
    case Op::kClamp:
      return "clamp";
    case Op::kSoftmax:
      return "softmax";
    case Op::kLogSoftmax:
      return "log_softmax";
    case Op::kLayerNorm:
      return "layer_norm";
    case Op::kAffine:
      return "affine";
    case Op::kConcat:
      return "concat";
    case Op::kIdentity:
      return "identity";
  }
  return "unknown";
}

void validate(const Graph& g) {
  if (g.input_width == 0) throw Error(ErrorCode::kUnsupported, "native graph: input width is 0");
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    for (const int v : n.inputs) {
      if (v < 0 || static_cast<std::size_t>(v) > i)
        refuse(n, i, "input value " + std::to_string(v) + " is not defined before it");
    }
    if (n.width == 0) refuse(n, i, "output width is 0");
    const auto in_width = [&](std::size_t k) { return g.width_of(n.inputs[k]); };
    const auto need_inputs = [&](std::size_t count) {
      if (n.inputs.size() != count)
        refuse(n, i, "takes " + std::to_string(count) + " input(s), has " + std::to_string(n.inputs.size()));
    };
    switch (n.op) {
      case Op::kDense:
        need_inputs(1);
        if (n.weights.size() != n.width * in_width(0))
          refuse(n, i,
                 "weights hold " + std::to_string(n.weights.size()) + " values, expected " + std::to_string(n.width) +
                     " x " + std::to_string(in_width(0)));
        if (!n.bias.empty() && n.bias.size() != n.width)
          refuse(n, i, "bias holds " + std::to_string(n.bias.size()) + " values, expected " + std::to_string(n.width));
        break;
      case Op::kConcat: {
        if (n.inputs.empty()) refuse(n, i, "concat of nothing");
        std::size_t total = 0;
        for (std::size_t k = 0; k < n.inputs.size(); ++k) total += in_width(k);
        if (total != n.width)
          refuse(n, i, "inputs hold " + std::to_string(total) + " features, width is " + std::to_string(n.width));
        break;
      }
      default:
        if (is_binary(n.op) && n.inputs.size() == 2) {
          if (in_width(0) != n.width || in_width(1) != n.width)
            refuse(n, i,
                   "operands of " + std::to_string(in_width(0)) + " and " + std::to_string(in_width(1)) +
                       " features, width is " + std::to_string(n.width));
          break;
        }
        need_inputs(1);
        if (in_width(0) != n.width)
          refuse(n, i, "input has " + std::to_string(in_width(0)) + " features, width is " + std::to_string(n.width));
        if (is_binary(n.op) && n.weights.size() != n.width && n.weights.size() != 1)
          refuse(n, i,
                 "constant of " + std::to_string(n.weights.size()) + " values for " + std::to_string(n.width) +
                     " features");
        if (n.op == Op::kAffine && (n.weights.size() != n.width || n.bias.size() != n.width))
          refuse(n, i, "affine scale/shift must hold " + std::to_string(n.width) + " values");
        if (n.op == Op::kLayerNorm && ((!n.weights.empty() && n.weights.size() != n.width) ||
                                       (!n.bias.empty() && n.bias.size() != n.width) || !(n.alpha > 0.0f)))
          refuse(n, i, "layer_norm needs gamma/beta of " + std::to_string(n.width) + " values and eps > 0");
        break;
    }
  }
  if (g.output < 0 || static_cast<std::size_t>(g.output) > g.nodes.size())
    throw Error(ErrorCode::kUnsupported, "native graph: output value " + std::to_string(g.output) + " is not defined");
}

Graph simplify(const Graph& input) {
  validate(input);
  Graph g = input;
  // 1. Binary ops with a constant become per-feature affines; identities are bypassed.
  std::vector<int> alias(g.nodes.size() + 1);
  for (std::size_t v = 0; v < alias.size(); ++v) alias[v] = static_cast<int>(v);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    for (int& v : n.inputs) v = alias[static_cast<std::size_t>(v)];
    if (n.op == Op::kIdentity) {
      alias[i + 1] = n.inputs[0];
      continue;
    }
    std::vector<float> scale, shift;
    if (is_binary(n.op) && n.inputs.size() == 1 && as_affine(n, scale, shift)) {
      n.op = Op::kAffine;
      n.weights = std::move(scale);
      n.bias = std::move(shift);
      n.reversed = false;
    }
  }
  g.output = alias[static_cast<std::size_t>(g.output)];

  // 2. Fold affines into their producer (affine or dense) or their single consumer (dense), until nothing changes.
  std::vector<bool> dead(g.nodes.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    const std::vector<int> readers = readers_count(g, dead);
    for (std::size_t i = 0; i < g.nodes.size() && !changed; ++i) {
      Node& n = g.nodes[i];
      if (dead[i] || n.op != Op::kAffine) continue;
      const int src = n.inputs[0];
      // (a) into the producer: dense or affine read only by this node (and not the graph output).
      if (src > 0 && readers[static_cast<std::size_t>(src)] == 1) {
        Node& p = g.nodes[static_cast<std::size_t>(src - 1)];
        if (p.op == Op::kDense || p.op == Op::kAffine) {
          const std::size_t out = p.width;
          if (p.bias.empty()) p.bias.assign(out, 0.0f);
          const std::size_t in = p.op == Op::kDense ? p.weights.size() / out : 1;
          for (std::size_t o = 0; o < out; ++o) {
            for (std::size_t k = 0; k < in; ++k) p.weights[o * in + k] *= n.weights[o];
            p.bias[o] = p.bias[o] * n.weights[o] + n.bias[o];
          }
          // This node now forwards its (rescaled) producer.
          n.op = Op::kIdentity;
          n.weights.clear();
          n.bias.clear();
          changed = true;
        }
      }
      if (changed) break;
      // (b) into the single consumer, a dense layer: W (x s + t) + b = (W diag(s)) x + (W t + b).
      const int self = static_cast<int>(i + 1);
      if (readers[static_cast<std::size_t>(self)] != 1) continue;
      for (std::size_t j = i + 1; j < g.nodes.size(); ++j) {
        Node& c = g.nodes[j];
        if (dead[j] || c.op != Op::kDense || c.inputs.size() != 1 || c.inputs[0] != self) continue;
        const std::size_t out = c.width, in = n.width;
        if (c.bias.empty()) c.bias.assign(out, 0.0f);
        for (std::size_t o = 0; o < out; ++o) {
          double extra = 0.0;
          for (std::size_t k = 0; k < in; ++k) {
            extra += static_cast<double>(c.weights[o * in + k]) * n.bias[k];
            c.weights[o * in + k] *= n.weights[k];
          }
          c.bias[o] += static_cast<float>(extra);
        }
        c.inputs[0] = src;
        dead[i] = true;
        changed = true;
        break;
      }
    }
    // Bypass identities made by (a).
    if (changed) {
      for (std::size_t i = 0; i < g.nodes.size(); ++i) {
        Node& n = g.nodes[i];
        if (dead[i] || n.op != Op::kIdentity) continue;
        const int to = n.inputs[0];
        for (Node& m : g.nodes)
          for (int& v : m.inputs)
            if (v == static_cast<int>(i + 1)) v = to;
        if (g.output == static_cast<int>(i + 1)) g.output = to;
        dead[i] = true;
      }
    }
  }

  // 3. Drop dead and unreachable nodes; renumber.
  std::vector<bool> live(g.nodes.size() + 1, false);
  live[static_cast<std::size_t>(g.output)] = true;
  for (std::size_t i = g.nodes.size(); i-- > 0;) {
    if (!live[i + 1] || dead[i] || g.nodes[i].op == Op::kIdentity) continue;
    for (const int v : g.nodes[i].inputs) live[static_cast<std::size_t>(v)] = true;
  }
  Graph out;
  out.input_width = g.input_width;
  std::vector<int> renumber(g.nodes.size() + 1, -1);
  renumber[0] = 0;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (!live[i + 1] || dead[i] || g.nodes[i].op == Op::kIdentity) continue;
    Node n = std::move(g.nodes[i]);
    for (int& v : n.inputs) v = renumber[static_cast<std::size_t>(v)];
    out.nodes.push_back(std::move(n));
    renumber[i + 1] = static_cast<int>(out.nodes.size());
  }
  out.output = renumber[static_cast<std::size_t>(g.output)];
  validate(out);
  return out;
}

}  // namespace tickinfer::native
