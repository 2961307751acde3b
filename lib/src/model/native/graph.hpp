#pragma once
// The native engine's IR: a feed-forward graph over [batch, features] float tensors, as the TorchScript and
// ONNX front ends produce it. Torch-free. Value 0 is the graph input; node i defines value i + 1.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tickinfer::native {

enum class Op : std::uint8_t {
  kDense,       // y = x W^T + b; weights [out][in] row-major, bias [out] or empty
  kAdd,         // y = a + b | a + const (const: [width] broadcast over rows, or [1] scalar)
  kSub,         // y = a - b | a - const | const - a (reversed)
  kMul,         // y = a * b | a * const
  kDiv,         // y = a / b | a / const | const / a (reversed)
  kRelu,        //
  kLeakyRelu,   // alpha: negative slope
  kElu,         // alpha
  kSelu,        // beta * (x > 0 ? x : alpha * (exp(x) - 1)); PyTorch: alpha 1.6732632, beta 1.0507010
  kErf,         //
  kGeluErf,     // x * 0.5 * (1 + erf(x / sqrt(2)))
  kGeluTanh,    // x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
  kSilu,        // x * sigmoid(x)
  kTanh,        //
  kSigmoid,     //
  kClamp,       // alpha: min, beta: max (either may be +-inf)
  kSoftmax,     // over the features of each row
  kLogSoftmax,  // over the features of each row
  kLayerNorm,   // over the features; weights: gamma [width] (or empty), bias: beta [width] (or empty); alpha: eps
  kAffine,      // y = x * weights + bias, per feature ([width] each): batch_norm in eval, folded normalisation
  kConcat,      // inputs concatenated along features, in order
  kIdentity,    // dropout, flatten/reshape/view that keep [batch, n]
};

const char* to_string(Op op) noexcept;

struct Node {
  Op op = Op::kIdentity;
  std::vector<int> inputs;     // value ids (0: graph input; i + 1: output of node i); binary ops with a constant: one
  std::size_t width = 0;       // output features
  std::vector<float> weights;  // kDense: [width][in]; binary ops: the constant; kLayerNorm: gamma; kAffine: scale
  std::vector<float> bias;     // kDense: [width] or empty; kLayerNorm: beta; kAffine: shift
  float alpha = 0.0f, beta = 0.0f;
  bool reversed = false;  // binary op with a constant on the left (const - a, const / a)
  std::string name;       // the front end's node, for messages ("%12 = aten::linear", "Gemm_3")
};

/// A graph the planner accepts: every node's inputs defined before it, widths consistent. Immutable once built.
struct Graph {
  std::size_t input_width = 0;
  std::vector<Node> nodes;
  int output = 0;  // value id of the graph output

  std::size_t width_of(int value) const { return value == 0 ? input_width : nodes[value - 1].width; }
};

/// Checks the structure: value ids defined before use, widths and weight sizes consistent, a non-empty output.
/// Throws Error(kUnsupported) naming the node and the problem.
void validate(const Graph& graph);

/// Rewrites a valid graph into an equal one with fewer steps: kIdentity removed, kAffine and constant
/// mul/add/sub/div folded into a preceding dense layer that nothing else reads, consecutive kAffine merged.
Graph simplify(const Graph& graph);

}  // namespace tickinfer::native
