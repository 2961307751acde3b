#include "model/native/torchscript_frontend.hpp"

#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/torch_error.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::native {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::string node_text(const Node* node) {
  std::ostringstream out;
  out << *node;
  std::string text = out.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  // Constant tensors print whole; keep messages to one line of reasonable length.
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

class Mapper {
 public:
  Mapper(std::size_t input_width, std::string source) : source_(std::move(source)) { graph_.input_width = input_width; }

  Graph run(const std::shared_ptr<torch::jit::Graph>& graph) {
    const auto inputs = graph->inputs();
    if (inputs.size() != 2) {
      throw Error(ErrorCode::kUnsupported,
                  source_ + ": native engine: forward takes " + std::to_string(inputs.size() - 1) + " inputs, not one");
    }
    ids_[inputs[1]] = 0;
    for (Node* node : graph->nodes()) map(node);
    const auto outputs = graph->outputs();
    if (outputs.size() != 1 || !ids_.count(outputs[0])) {
      throw Error(ErrorCode::kUnsupported, source_ +
                                               ": native engine: forward must return one tensor computed from "
                                               "its input");
    }
    graph_.output = ids_.at(outputs[0]);
    return std::move(graph_);
  }

 private:
  [[noreturn]] void refuse(const Node* node, const std::string& why) const {
    throw Error(ErrorCode::kUnsupported,
                source_ + ": native engine cannot compile node '" + node_text(node) + "': " + why);
  }

  bool is_value(const Value* v) const { return ids_.count(v) != 0; }

  int value_of(const Node* node, std::size_t index) const {
    const auto it = ids_.find(node->inputs()[index]);
    if (it == ids_.end()) refuse(node, "input " + std::to_string(index) + " is not computed from the model input");
    return it->second;
  }

  std::optional<c10::IValue> constant(const Value* v) const {
    if (const auto it = constants_.find(v); it != constants_.end()) return it->second;
    return torch::jit::toIValue(v);
  }

  c10::IValue need_constant(const Node* node, std::size_t index) const {
    auto value = constant(node->inputs()[index]);
    if (!value) refuse(node, "argument " + std::to_string(index) + " must be a constant");
    return *value;
  }

  std::vector<float> tensor_values(const Node* node, const at::Tensor& tensor) const {
    if (!tensor.is_floating_point())
      refuse(node, "constant tensor of type " + std::string(c10::toString(tensor.scalar_type())));
    const at::Tensor t = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
    const float* data = t.data_ptr<float>();
    return std::vector<float>(data, data + t.numel());
  }

  std::optional<at::Tensor> tensor_constant(const Node* node, std::size_t index) const {  // null: not constant
    const auto value = constant(node->inputs()[index]);
    if (!value || !value->isTensor()) return std::nullopt;
    return value->toTensor();
  }

  double scalar(const Node* node, std::size_t index) const {
    const c10::IValue v = need_constant(node, index);
    if (v.isDouble()) return v.toDouble();
    if (v.isInt()) return static_cast<double>(v.toInt());
    if (v.isBool()) return v.toBool() ? 1.0 : 0.0;
    refuse(node, "argument " + std::to_string(index) + " must be a number");
  }

  std::optional<double> optional_scalar(const Node* node, std::size_t index) const {
    const c10::IValue v = need_constant(node, index);
    if (v.isNone()) return std::nullopt;
    return scalar(node, index);
  }

  std::int64_t integer(const Node* node, std::size_t index) const {
    const c10::IValue v = need_constant(node, index);
    if (!v.isInt()) refuse(node, "argument " + std::to_string(index) + " must be an integer");
    return v.toInt();
  }

  bool boolean(const Node* node, std::size_t index) const {
    const c10::IValue v = need_constant(node, index);
    if (!v.isBool()) refuse(node, "argument " + std::to_string(index) + " must be a bool");
    return v.toBool();
  }

  std::vector<std::int64_t> int_list(const Node* node, std::size_t index) const {
    const c10::IValue v = need_constant(node, index);
    if (!v.isIntList()) refuse(node, "argument " + std::to_string(index) + " must be a list of integers");
    return v.toIntVector();
  }

  int add(const Node* node, native::Node n) {
    n.name = node_text(node);
    graph_.nodes.push_back(std::move(n));
    const int id = static_cast<int>(graph_.nodes.size());
    ids_[node->outputs()[0]] = id;
    return id;
  }

  void alias(const Node* node, int id) { ids_[node->outputs()[0]] = id; }

  std::size_t width(int id) const { return graph_.width_of(id); }

  // The feature dimension (1 or -1 of a [batch, n] tensor) or refuse.
  void need_feature_dim(const Node* node, std::int64_t dim) const {
    if (dim != 1 && dim != -1) refuse(node, "dim " + std::to_string(dim) + " is not the feature dimension");
  }

  // A constant operand of an elementwise op: [width], [1, width], [1] or a scalar.
  std::vector<float> operand(const Node* node, std::size_t index, std::size_t w) const {
    const c10::IValue v = need_constant(node, index);
    if (v.isDouble() || v.isInt()) return {static_cast<float>(scalar(node, index))};
    if (!v.isTensor()) refuse(node, "operand " + std::to_string(index) + " is neither a tensor nor a number");
    const at::Tensor t = v.toTensor();
    const auto n = static_cast<std::size_t>(t.numel());
    const bool row = t.dim() <= 1 || (t.dim() == 2 && t.size(0) == 1);
    if (!row || (n != w && n != 1)) {
      std::ostringstream shape;
      shape << t.sizes();
      refuse(node, "constant of shape " + shape.str() + " does not broadcast over " + std::to_string(w) + " features");
    }
    return tensor_values(node, t);
  }

  // Folds a node whose inputs are all constants by running it now.
  bool fold_constant(Node* node) {
    if (node->outputs().size() != 1) return false;
    torch::jit::Stack stack;
    for (const Value* input : node->inputs()) {
      auto value = constant(input);
      if (!value) return false;
      stack.push_back(*value);
    }
    if (!node->maybeOperator()) return false;
    try {
      node->getOperation()(stack);
    } catch (const std::exception& e) {
      refuse(node, "evaluating it on its constants failed: " + internal::torch_error_line(e));
    }
    if (stack.size() != 1) return false;
    constants_[node->outputs()[0]] = stack.back();
    return true;
  }

  void binary(Node* node, Op op) {  // add/sub/mul/div and their in-place forms alike
    double alpha = 1.0;
    if ((op == Op::kAdd || op == Op::kSub) && node->inputs().size() >= 3) alpha = scalar(node, 2);
    const bool a_value = is_value(node->inputs()[0]), b_value = is_value(node->inputs()[1]);
    if (a_value && b_value) {
      if (alpha != 1.0) refuse(node, "alpha " + std::to_string(alpha) + " between two computed tensors");
      const int a = value_of(node, 0), b = value_of(node, 1);
      if (width(a) != width(b)) {
        refuse(node, "operands of " + std::to_string(width(a)) + " and " + std::to_string(width(b)) + " features");
      }
      add(node, native::Node{op, {a, b}, width(a), {}, {}, 0, 0, false, {}});
      return;
    }
    if (a_value) {
      const int a = value_of(node, 0);
      std::vector<float> c = operand(node, 1, width(a));
      if (alpha != 1.0)
        for (float& x : c) x = static_cast<float>(x * alpha);
      add(node, native::Node{op, {a}, width(a), std::move(c), {}, 0, 0, false, {}});
      return;
    }
    // Constant on the left.
    const int b = value_of(node, 1);
    std::vector<float> c = operand(node, 0, width(b));
    if (alpha != 1.0) refuse(node, "alpha " + std::to_string(alpha) + " on the computed operand");
    const bool commutes = op == Op::kAdd || op == Op::kMul;
    add(node, native::Node{op, {b}, width(b), std::move(c), {}, 0, 0, !commutes, {}});
  }

  void dense(Node* node, int x, const at::Tensor& w_out_in, const std::optional<at::Tensor>& bias) {
    if (w_out_in.dim() != 2 || static_cast<std::size_t>(w_out_in.size(1)) != width(x)) {
      std::ostringstream shape;
      shape << w_out_in.sizes();
      refuse(node, "weight of shape " + shape.str() + " for " + std::to_string(width(x)) + " input features");
    }
    native::Node n{Op::kDense, {x}, static_cast<std::size_t>(w_out_in.size(0)), tensor_values(node, w_out_in), {}, 0, 0,
                   false,      {}};
    if (bias) {
      n.bias = tensor_values(node, *bias);
      if (n.bias.size() == 1 && n.width != 1) n.bias.assign(n.width, n.bias[0]);
      if (n.bias.size() != n.width) refuse(node, "bias of " + std::to_string(n.bias.size()) + " values");
    }
    add(node, std::move(n));
  }

  void unary(Node* node, Op op, float alpha = 0.0f, float beta = 0.0f) {
    const int x = value_of(node, 0);
    add(node, native::Node{op, {x}, width(x), {}, {}, alpha, beta, false, {}});
  }

  // An if whose condition is a constant once the module is frozen (self.training, input.dim() checks): map the
  // branch taken. A condition computed from the input is refused.
  void map_if(Node* node) {
    const auto condition = constant(node->inputs()[0]);
    if (!condition || !condition->isBool()) refuse(node, "data-dependent control flow");
    torch::jit::Block* block = node->blocks()[condition->toBool() ? 0 : 1];
    for (Node* inner : block->nodes()) map(inner);
    for (std::size_t i = 0; i < node->outputs().size(); ++i) {
      const Value* out = block->outputs()[i];
      if (const auto it = ids_.find(out); it != ids_.end()) {
        ids_[node->outputs()[i]] = it->second;
      } else if (const auto c = constant(out)) {
        constants_[node->outputs()[i]] = *c;
      } else {
        refuse(node, "branch output " + std::to_string(i) + " is neither computed nor constant");
      }
    }
  }

  void map(Node* node) {
    const std::string kind = node->kind().toQualString();
    if (kind == "prim::Constant") return;
    if (kind == "prim::If") return map_if(node);
    if (kind == "prim::Loop") refuse(node, "loops are not supported");
    if (kind == "aten::warn") return;
    if (kind == "prim::RaiseException") refuse(node, "the model raises on this input shape");
    if (kind == "aten::dim" && is_value(node->inputs()[0])) {
      constants_[node->outputs()[0]] = c10::IValue(std::int64_t{2});  // every value is [batch, features]
      return;
    }
    if (kind == "aten::size" && is_value(node->inputs()[0]) && node->inputs().size() == 2) {
      const std::int64_t dim = integer(node, 1);
      if (dim == 1 || dim == -1) {
        constants_[node->outputs()[0]] = c10::IValue(static_cast<std::int64_t>(width(value_of(node, 0))));
        return;
      }
      refuse(node, "control flow or shapes that depend on the batch size");
    }
    if (kind == "prim::ListConstruct") {
      std::vector<const Value*> items(node->inputs().begin(), node->inputs().end());
      lists_[node->outputs()[0]] = std::move(items);
      (void)fold_constant(node);  // a list of constants (e.g. a shape) also becomes a constant
      return;
    }
    bool any_value = false;
    for (const Value* input : node->inputs()) any_value = any_value || is_value(input) || lists_.count(input);
    if (!any_value) {
      if (fold_constant(node)) return;
      refuse(node, "cannot evaluate it on its constants");
    }
    if (node->outputs().size() != 1) refuse(node, "more than one output");

    const std::string op = kind.rfind("aten::", 0) == 0 ? kind.substr(6) : kind;
    const std::string base = !op.empty() && op.back() == '_' ? op.substr(0, op.size() - 1) : op;
    if (base == "linear") {
      const auto w = tensor_constant(node, 1);
      if (!w) refuse(node, "the weight must be a constant (freeze the module)");
      dense(node, value_of(node, 0), *w, tensor_constant(node, 2));
    } else if (base == "addmm") {
      const auto b = tensor_constant(node, 0);
      const auto wt = tensor_constant(node, 2);
      if (!b || !wt) refuse(node, "bias and weight must be constants");
      const double beta = scalar(node, 3), alpha = scalar(node, 4);
      dense(node, value_of(node, 1), wt->t() * alpha, *b * beta);
    } else if (base == "matmul" || base == "mm") {
      const auto w = tensor_constant(node, 1);
      if (!w || w->dim() != 2) refuse(node, "only input x constant 2-D matrix is supported");
      dense(node, value_of(node, 0), w->t(), std::nullopt);
    } else if (base == "add") {
      binary(node, Op::kAdd);
    } else if (base == "sub") {
      binary(node, Op::kSub);
    } else if (base == "rsub") {
      // rsub(a, b, alpha) = b - alpha * a
      const double alpha = node->inputs().size() >= 3 ? scalar(node, 2) : 1.0;
      const int a = value_of(node, 0);
      std::vector<float> c = operand(node, 1, width(a));
      if (alpha == 1.0) {
        add(node, native::Node{Op::kSub, {a}, width(a), std::move(c), {}, 0, 0, true, {}});
      } else {
        refuse(node, "alpha " + std::to_string(alpha));
      }
    } else if (base == "neg") {
      const int x = value_of(node, 0);
      add(node, native::Node{Op::kMul, {x}, width(x), {-1.0f}, {}, 0, 0, false, {}});
    } else if (base == "mul") {
      binary(node, Op::kMul);
    } else if (base == "div") {
      if (node->inputs().size() > 2) refuse(node, "rounding modes are not supported");
      binary(node, Op::kDiv);
    } else if (base == "relu") {
      unary(node, Op::kRelu);
    } else if (base == "leaky_relu") {
      unary(node, Op::kLeakyRelu, static_cast<float>(node->inputs().size() > 1 ? scalar(node, 1) : 0.01));
    } else if (base == "elu") {
      const double alpha = scalar(node, 1), scale = scalar(node, 2), input_scale = scalar(node, 3);
      if (scale != 1.0 || input_scale != 1.0) refuse(node, "elu with scale or input_scale other than 1");
      unary(node, Op::kElu, static_cast<float>(alpha));
    } else if (base == "selu") {
      unary(node, Op::kSelu, 1.6732632423543772f, 1.0507009873554805f);
    } else if (base == "gelu") {
      std::string approximate = "none";
      if (node->inputs().size() > 1) {
        const c10::IValue a = need_constant(node, 1);
        if (a.isString()) approximate = a.toStringRef();
      }
      if (approximate == "none") {
        unary(node, Op::kGeluErf);
      } else if (approximate == "tanh") {
        unary(node, Op::kGeluTanh);
      } else {
        refuse(node, "gelu approximation '" + approximate + "'");
      }
    } else if (base == "silu") {
      unary(node, Op::kSilu);
    } else if (base == "tanh") {
      unary(node, Op::kTanh);
    } else if (base == "sigmoid") {
      unary(node, Op::kSigmoid);
    } else if (base == "hardtanh" || base == "clamp" || base == "clip") {
      constexpr double kInf = std::numeric_limits<double>::infinity();
      double lo = -kInf, hi = kInf;
      if (base == "hardtanh") {
        lo = node->inputs().size() > 1 ? scalar(node, 1) : -1.0;
        hi = node->inputs().size() > 2 ? scalar(node, 2) : 1.0;
      } else {
        if (node->inputs().size() > 1 && constant(node->inputs()[1]) && constant(node->inputs()[1])->isTensor())
          refuse(node, "tensor bounds");
        lo = optional_scalar(node, 1).value_or(-kInf);
        hi = optional_scalar(node, 2).value_or(kInf);
      }
      unary(node, Op::kClamp, static_cast<float>(lo), static_cast<float>(hi));
    } else if (base == "softmax" || base == "log_softmax") {
      need_feature_dim(node, integer(node, 1));
      if (node->inputs().size() > 2) {
        const c10::IValue dtype = need_constant(node, 2);
        if (!dtype.isNone()) refuse(node, "a dtype argument");
      }
      unary(node, base == "softmax" ? Op::kSoftmax : Op::kLogSoftmax);
    } else if (base == "layer_norm") {
      const int x = value_of(node, 0);
      const auto shape = int_list(node, 1);
      if (shape.size() != 1 || static_cast<std::size_t>(shape[0]) != width(x))
        refuse(node, "normalized_shape must be [" + std::to_string(width(x)) + "]");
      native::Node n{Op::kLayerNorm, {x}, width(x), {}, {}, static_cast<float>(scalar(node, 4)), 0, false, {}};
      if (const auto w = tensor_constant(node, 2)) n.weights = tensor_values(node, *w);
      if (const auto b = tensor_constant(node, 3)) n.bias = tensor_values(node, *b);
      add(node, std::move(n));
    } else if (base == "batch_norm") {
      const int x = value_of(node, 0);
      if (boolean(node, 5)) refuse(node, "batch_norm in training mode (call model.eval() before export)");
      const auto mean = tensor_constant(node, 3), var = tensor_constant(node, 4);
      if (!mean || !var) refuse(node, "running statistics must be constants");
      const double eps = scalar(node, 7);
      const std::vector<float> m = tensor_values(node, *mean), v = tensor_values(node, *var);
      const std::size_t w = width(x);
      if (m.size() != w || v.size() != w) refuse(node, "statistics for " + std::to_string(m.size()) + " features");
      std::vector<float> gamma(w, 1.0f), beta(w, 0.0f);
      if (const auto g = tensor_constant(node, 1)) gamma = tensor_values(node, *g);
      if (const auto b = tensor_constant(node, 2)) beta = tensor_values(node, *b);
      std::vector<float> scale(w), shift(w);
      for (std::size_t i = 0; i < w; ++i) {
        const double s = gamma[i] / std::sqrt(static_cast<double>(v[i]) + eps);
        scale[i] = static_cast<float>(s);
        shift[i] = static_cast<float>(beta[i] - m[i] * s);
      }
      add(node, native::Node{Op::kAffine, {x}, w, std::move(scale), std::move(shift), 0, 0, false, {}});
    } else if (base == "dropout" || base == "feature_dropout" || base == "alpha_dropout") {
      if (boolean(node, 2)) refuse(node, "dropout in training mode (call model.eval() before export)");
      alias(node, value_of(node, 0));
    } else if (base == "flatten") {
      const std::int64_t start = integer(node, 1), end = integer(node, 2);
      if (start != 1 || (end != -1 && end != 1)) refuse(node, "only flatten(x, 1, -1) of a [batch, n] tensor");
      alias(node, value_of(node, 0));
    } else if (base == "reshape" || base == "view") {
      const int x = value_of(node, 0);
      const auto shape = int_list(node, 1);
      if (shape.size() != 2 || shape[1] != static_cast<std::int64_t>(width(x)) || shape[0] == 0)
        refuse(node, "only a reshape that keeps [batch, " + std::to_string(width(x)) + "]");
      alias(node, x);
    } else if (base == "contiguous" || base == "detach" || base == "clone" || kind == "aten::identity") {
      alias(node, value_of(node, 0));
    } else if (base == "cat" || base == "concat") {
      need_feature_dim(node, integer(node, 1));
      const auto it = lists_.find(node->inputs()[0]);
      if (it == lists_.end()) refuse(node, "the tensors must be a list");
      native::Node n{Op::kConcat, {}, 0, {}, {}, 0, 0, false, {}};
      for (const Value* item : it->second) {
        const auto id = ids_.find(item);
        if (id == ids_.end()) refuse(node, "a constant tensor in the list");
        n.inputs.push_back(id->second);
        n.width += width(id->second);
      }
      add(node, std::move(n));
    } else {
      refuse(node, "unsupported operator " + kind);
    }
  }

  Graph graph_;
  std::string source_;
  std::unordered_map<const Value*, int> ids_;
  std::unordered_map<const Value*, c10::IValue> constants_;
  std::unordered_map<const Value*, std::vector<const Value*>> lists_;
};

}  // namespace

Graph from_torchscript(const torch::jit::Module& module, std::size_t input_width, const std::string& source) {
  torch::jit::Module frozen;
  try {
    torch::jit::Module copy = module.clone();
    copy.eval();
    frozen = torch::jit::freeze_module(copy);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kUnsupported,
                source + ": native engine: freezing the module failed: " + internal::torch_error_line(e));
  }
  auto graph = frozen.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  return Mapper(input_width, source).run(graph);
}

}  // namespace tickinfer::native
