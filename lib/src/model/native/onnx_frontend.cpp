#include "model/native/onnx_frontend.hpp"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "tickinfer/error.hpp"

namespace tickinfer::native {
namespace {

// A constant: an initializer, a Constant node, a bound input or a folded shape value.
struct Constant {
  std::vector<std::int64_t> shape;
  std::vector<float> values;       // FLOAT / DOUBLE tensors
  std::vector<std::int64_t> ints;  // INT64 / INT32 tensors
  bool is_int = false;
  std::size_t numel() const { return is_int ? ints.size() : values.size(); }
};

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

class Mapper {
 public:
  Mapper(std::string source, const OnnxOptions& options) : source_(std::move(source)), options_(options) {}

  OnnxGraph run(const onnx::ModelProto& model) {
    OnnxGraph out;
    for (const auto& opset : model.opset_import()) {
      if (opset.domain().empty() || opset.domain() == "ai.onnx") out.opset = opset.version();
    }
    if (out.opset < kOnnxMinOpset || out.opset > kOnnxMaxOpset) {
      fail(ErrorCode::kUnsupported, "opset " + std::to_string(out.opset) + " (the native engine reads opsets " +
                                        std::to_string(kOnnxMinOpset) + " to " + std::to_string(kOnnxMaxOpset) + ")");
    }
    for (const auto& prop : model.metadata_props()) {
      if (prop.key() == kOnnxMetadataKey) out.metadata_json = prop.value();
    }
    const onnx::GraphProto& g = model.graph();
    for (const auto& init : g.initializer())
      constants_[init.name()] = tensor(init, "initializer '" + init.name() + "'");
    for (const auto& sparse : g.sparse_initializer()) {
      fail(ErrorCode::kUnsupported, "sparse initializer '" + sparse.values().name() + "'");
    }

    // Exactly one graph input that is neither an initializer nor bound: the [batch, features] rows.
    const onnx::ValueInfoProto* input = nullptr;
    for (const auto& in : g.input()) {
      if (constants_.count(in.name())) continue;
      if (options_.bound_inputs) {
        const auto it = options_.bound_inputs->find(in.name());
        if (it != options_.bound_inputs->end()) {
          constants_[in.name()] = tensor(it->second, "bound input '" + in.name() + "'");
          continue;
        }
      }
      if (input) {
        fail(ErrorCode::kUnsupported, "a second input '" + in.name() + "' (the native engine takes one input, '" +
                                          input->name() + "'; weights must be initializers)");
      }
      input = &in;
    }
    if (!input) fail(ErrorCode::kUnsupported, "no graph input that is not an initializer");
    read_input(*input, out);

    for (int i = 0; i < g.node_size(); ++i) {
      for (const auto& in : g.node(i).input()) {
        consumed_.insert(in);
        node_inputs_.insert(in);
      }
    }
    for (const auto& out_info : g.output()) consumed_.insert(out_info.name());
    for (int i = 0; i < g.node_size(); ++i) map(g.node(i), i);

    if (g.output_size() != 1 && !(options_.first_output_only && g.output_size() > 0)) {
      fail(ErrorCode::kUnsupported, "the graph has " + std::to_string(g.output_size()) + " outputs, not one");
    }
    out.output_name = g.output(0).name();
    const auto it = ids_.find(out.output_name);
    if (it == ids_.end()) {
      fail(ErrorCode::kUnsupported, "output '" + out.output_name + "' is not computed from the input");
    }
    graph_.output = it->second;
    out.graph = std::move(graph_);
    return out;
  }

 private:
  [[noreturn]] void fail(ErrorCode code, const std::string& why) const { throw Error(code, source_ + ": " + why); }

  [[noreturn]] void refuse(const onnx::NodeProto& node, int index, const std::string& why) const {
    std::string name = node.name().empty() ? "#" + std::to_string(index) : "'" + node.name() + "'";
    fail(ErrorCode::kUnsupported, "native engine cannot compile node " + name + " (" + node.op_type() + "): " + why);
  }

  Constant tensor(const onnx::TensorProto& t, const std::string& what) const {
    if (t.data_location() == onnx::TensorProto::EXTERNAL) fail(ErrorCode::kUnsupported, what + " uses external data");
    Constant c;
    std::size_t count = 1;
    for (const std::int64_t d : t.dims()) {
      if (d < 0) fail(ErrorCode::kParseError, what + " has a negative dimension");
      c.shape.push_back(d);
      // Bounded by the file: a tensor cannot hold more values than the file has bytes.
      if (d != 0 && count > options_.max_file_bytes / static_cast<std::size_t>(d))
        fail(ErrorCode::kParseError, what + " claims more values than the file can hold " + shape_text(c.shape));
      count *= static_cast<std::size_t>(d);
    }
    const std::string& raw = t.raw_data();
    const auto need = [&](std::size_t have, std::size_t element) {
      if (have != count)
        fail(ErrorCode::kParseError, what + " of shape " + shape_text(c.shape) + " holds " + std::to_string(have) +
                                         " values" + (element ? " (raw)" : ""));
    };
    switch (t.data_type()) {
      case onnx::TensorProto::FLOAT:
        if (!raw.empty()) {
          need(raw.size() / sizeof(float), sizeof(float));
          c.values.resize(count);
          std::memcpy(c.values.data(), raw.data(), count * sizeof(float));
        } else {
          need(static_cast<std::size_t>(t.float_data_size()), 0);
          c.values.assign(t.float_data().begin(), t.float_data().end());
        }
        break;
      case onnx::TensorProto::DOUBLE:
        if (!raw.empty()) {
          need(raw.size() / sizeof(double), sizeof(double));
          std::vector<double> d(count);
          std::memcpy(d.data(), raw.data(), count * sizeof(double));
          c.values.assign(d.begin(), d.end());
        } else {
          need(static_cast<std::size_t>(t.double_data_size()), 0);
          for (const double v : t.double_data()) c.values.push_back(static_cast<float>(v));
        }
        break;
      case onnx::TensorProto::INT64:
        c.is_int = true;
        if (!raw.empty()) {
          need(raw.size() / sizeof(std::int64_t), sizeof(std::int64_t));
          c.ints.resize(count);
          std::memcpy(c.ints.data(), raw.data(), count * sizeof(std::int64_t));
        } else {
          need(static_cast<std::size_t>(t.int64_data_size()), 0);
          c.ints.assign(t.int64_data().begin(), t.int64_data().end());
        }
        break;
      case onnx::TensorProto::INT32:
        c.is_int = true;
        if (!raw.empty()) {
          need(raw.size() / sizeof(std::int32_t), sizeof(std::int32_t));
          std::vector<std::int32_t> d(count);
          std::memcpy(d.data(), raw.data(), count * sizeof(std::int32_t));
          c.ints.assign(d.begin(), d.end());
        } else {
          need(static_cast<std::size_t>(t.int32_data_size()), 0);
          c.ints.assign(t.int32_data().begin(), t.int32_data().end());
        }
        break;
      default:
        fail(ErrorCode::kUnsupported,
             what + " has data type " + std::to_string(t.data_type()) + " (the native engine computes in float32)");
    }
    return c;
  }

  void read_input(const onnx::ValueInfoProto& in, OnnxGraph& out) {
    out.input_name = in.name();
    if (!in.type().has_tensor_type()) fail(ErrorCode::kUnsupported, "input '" + in.name() + "' is not a tensor");
    const auto& tt = in.type().tensor_type();
    if (tt.elem_type() != onnx::TensorProto::FLOAT) {
      fail(ErrorCode::kUnsupported,
           "input '" + in.name() + "' has element type " + std::to_string(tt.elem_type()) + ", not float32 (1)");
    }
    if (!tt.has_shape() || tt.shape().dim_size() < 2) {
      fail(ErrorCode::kUnsupported, "input '" + in.name() + "' must have a shape [batch, features]");
    }
    const int rank = tt.shape().dim_size();
    const auto& last = tt.shape().dim(rank - 1);
    if (!last.has_dim_value() || last.dim_value() <= 0) {
      const bool first_fixed = tt.shape().dim(0).has_dim_value();
      fail(ErrorCode::kUnsupported, "input '" + in.name() + "': the feature axis (last) has no fixed size" +
                                        (first_fixed ? "; the batch axis must be the first" : ""));
    }
    for (int d = 1; d + 1 < rank; ++d) {
      if (!tt.shape().dim(d).has_dim_value())
        fail(ErrorCode::kUnsupported, "input '" + in.name() + "': only the first axis may be dynamic (the batch axis)");
    }
    rank_ = static_cast<std::size_t>(rank);
    out.input_rank = rank_;
    graph_.input_width = static_cast<std::size_t>(last.dim_value());
    ids_[in.name()] = 0;
  }

  // ---- node helpers ----

  const onnx::AttributeProto* attribute(const onnx::NodeProto& node, const char* name) const {
    for (const auto& a : node.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  float attr_float(const onnx::NodeProto& node, const char* name, float fallback) const {
    const auto* a = attribute(node, name);
    return a ? a->f() : fallback;
  }
  std::int64_t attr_int(const onnx::NodeProto& node, const char* name, std::int64_t fallback) const {
    const auto* a = attribute(node, name);
    return a ? a->i() : fallback;
  }

  bool has_input(const onnx::NodeProto& node, int i) const { return i < node.input_size() && !node.input(i).empty(); }
  bool is_value(const std::string& name) const { return ids_.count(name) != 0; }

  int value(const onnx::NodeProto& node, int index, int i) const {
    const auto it = ids_.find(node.input(i));
    if (it == ids_.end()) {
      if (constants_.count(node.input(i)))
        refuse(node, index, "input '" + node.input(i) + "' must be computed, not constant");
      refuse(node, index, "input '" + node.input(i) + "' is not defined (a missing initializer?)");
    }
    return it->second;
  }

  const Constant& constant(const onnx::NodeProto& node, int index, int i) const {
    const auto it = constants_.find(node.input(i));
    if (it == constants_.end()) {
      if (is_value(node.input(i)))
        refuse(node, index, "input '" + node.input(i) + "' must be a constant (initializer)");
      refuse(node, index, "input '" + node.input(i) + "' is not defined (a missing initializer?)");
    }
    return it->second;
  }

  std::size_t width(int id) const { return graph_.width_of(id); }

  void feature_axis(const onnx::NodeProto& node, int index, std::int64_t axis) const {
    const auto r = static_cast<std::int64_t>(rank_);
    const std::int64_t normalized = axis < 0 ? axis + r : axis;
    if (normalized != r - 1) {
      refuse(node, index,
             "axis " + std::to_string(axis) + " is not the feature axis (the last of " + std::to_string(rank_) + ")");
    }
  }

  // A constant that broadcasts along the feature axis only: one value, or [.., 1, width].
  std::vector<float> operand(const onnx::NodeProto& node, int index, const Constant& c, std::size_t w) const {
    if (c.is_int) refuse(node, index, "an integer operand");
    bool leading_ones = true;
    for (std::size_t d = 0; d + 1 < c.shape.size(); ++d) leading_ones = leading_ones && c.shape[d] == 1;
    if (c.values.size() == 1 || (leading_ones && c.values.size() == w && c.shape.size() <= rank_)) return c.values;
    refuse(node, index,
           "constant of shape " + shape_text(c.shape) + " does not broadcast over " + std::to_string(w) + " features");
  }

  int add(const onnx::NodeProto& node, int index, native::Node n) {
    n.name = node.op_type() + (node.name().empty() ? " #" + std::to_string(index) : " '" + node.name() + "'");
    graph_.nodes.push_back(std::move(n));
    const int id = static_cast<int>(graph_.nodes.size());
    ids_[node.output(0)] = id;
    return id;
  }

  // A node's optional outputs (a layer norm's Mean, a dropout's mask) must be unused.
  void only_first_output(const onnx::NodeProto& node, int index) const {
    for (int o = 1; o < node.output_size(); ++o) {
      const std::string& name = node.output(o);
      if (name.empty() || !consumed_.count(name)) continue;
      if (options_.first_output_only && !node_inputs_.count(name)) continue;  // a graph output nobody reads
      refuse(node, index, "output " + std::to_string(o) + " ('" + name + "') is used");
    }
  }

  void unary(const onnx::NodeProto& node, int index, Op op, float alpha = 0.0f, float beta = 0.0f) {
    const int x = value(node, index, 0);
    add(node, index, native::Node{op, {x}, width(x), {}, {}, alpha, beta, false, {}});
  }

  void dense(const onnx::NodeProto& node, int index, int x, const Constant& w, bool transposed, float alpha,
             const Constant* bias, float beta) {
    if (w.is_int || w.shape.size() != 2) refuse(node, index, "the weight must be a 2-D float constant");
    const auto rows = static_cast<std::size_t>(w.shape[0]), cols = static_cast<std::size_t>(w.shape[1]);
    const std::size_t in = transposed ? cols : rows, out_w = transposed ? rows : cols;
    if (in != width(x)) {
      refuse(node, index, "weight of shape " + shape_text(w.shape) + " for " + std::to_string(width(x)) + " features");
    }
    native::Node n{Op::kDense, {x}, out_w, std::vector<float>(out_w * in), {}, 0, 0, false, {}};
    for (std::size_t o = 0; o < out_w; ++o)
      for (std::size_t k = 0; k < in; ++k)
        n.weights[o * in + k] = alpha * (transposed ? w.values[o * cols + k] : w.values[k * cols + o]);
    if (bias) {
      const std::vector<float> b = operand(node, index, *bias, out_w);
      n.bias.resize(out_w);
      for (std::size_t o = 0; o < out_w; ++o) n.bias[o] = beta * (b.size() == 1 ? b[0] : b[o]);
    }
    add(node, index, std::move(n));
  }

  void binary(const onnx::NodeProto& node, int index, Op op) {
    if (node.input_size() != 2) refuse(node, index, "takes two inputs");
    const bool a_value = is_value(node.input(0)), b_value = is_value(node.input(1));
    if (a_value && b_value) {
      const int a = value(node, index, 0), b = value(node, index, 1);
      if (width(a) != width(b))
        refuse(node, index,
               "operands of " + std::to_string(width(a)) + " and " + std::to_string(width(b)) + " features");
      add(node, index, native::Node{op, {a, b}, width(a), {}, {}, 0, 0, false, {}});
    } else if (a_value) {
      const int a = value(node, index, 0);
      add(node, index,
          native::Node{
              op, {a}, width(a), operand(node, index, constant(node, index, 1), width(a)), {}, 0, 0, false, {}});
    } else {
      const int b = value(node, index, 1);
      const bool commutes = op == Op::kAdd || op == Op::kMul;
      add(node, index,
          native::Node{
              op, {b}, width(b), operand(node, index, constant(node, index, 0), width(b)), {}, 0, 0, !commutes, {}});
    }
  }

  void map(const onnx::NodeProto& node, int index) {
    if (!node.domain().empty() && node.domain() != "ai.onnx") {
      refuse(node, index, "operator domain '" + node.domain() + "'");
    }
    if (node.output_size() < 1) refuse(node, index, "no output");
    const std::string& op = node.op_type();
    if (op == "Constant") {
      const onnx::AttributeProto* a = node.attribute_size() == 1 ? &node.attribute(0) : nullptr;
      if (!a) refuse(node, index, "a Constant needs exactly one value attribute");
      Constant c;
      if (a->name() == "value") {
        c = tensor(a->t(), "Constant '" + node.output(0) + "'");
      } else if (a->name() == "value_float") {
        c.values = {a->f()};
      } else if (a->name() == "value_floats") {
        c.values.assign(a->floats().begin(), a->floats().end());
        c.shape = {static_cast<std::int64_t>(c.values.size())};
      } else if (a->name() == "value_int") {
        c.is_int = true;
        c.ints = {a->i()};
      } else if (a->name() == "value_ints") {
        c.is_int = true;
        c.ints.assign(a->ints().begin(), a->ints().end());
        c.shape = {static_cast<std::int64_t>(c.ints.size())};
      } else {
        refuse(node, index, "Constant attribute '" + a->name() + "'");
      }
      constants_[node.output(0)] = std::move(c);
      return;
    }
    if (node.input_size() < 1 || !is_value(node.input(0))) {
      // Every op below reads the rows; a node of constants only is outside what the native engine folds.
      bool any = false;
      for (const auto& in : node.input()) any = any || is_value(in);
      if (!any) refuse(node, index, "it computes only on constants (fold it at export)");
    }
    if (op == "Gemm") {
      if (attr_int(node, "transA", 0) != 0) refuse(node, index, "transA on the batch input");
      dense(node, index, value(node, index, 0), constant(node, index, 1), attr_int(node, "transB", 0) != 0,
            attr_float(node, "alpha", 1.0f), has_input(node, 2) ? &constant(node, index, 2) : nullptr,
            attr_float(node, "beta", 1.0f));
    } else if (op == "MatMul") {
      dense(node, index, value(node, index, 0), constant(node, index, 1), false, 1.0f, nullptr, 0.0f);
    } else if (op == "Add") {
      binary(node, index, Op::kAdd);
    } else if (op == "Sub") {
      binary(node, index, Op::kSub);
    } else if (op == "Mul") {
      binary(node, index, Op::kMul);
    } else if (op == "Div") {
      binary(node, index, Op::kDiv);
    } else if (op == "Relu") {
      unary(node, index, Op::kRelu);
    } else if (op == "LeakyRelu") {
      unary(node, index, Op::kLeakyRelu, attr_float(node, "alpha", 0.01f));
    } else if (op == "Elu") {
      unary(node, index, Op::kElu, attr_float(node, "alpha", 1.0f));
    } else if (op == "Selu") {
      unary(node, index, Op::kSelu, attr_float(node, "alpha", 1.67326319217681884765625f),
            attr_float(node, "gamma", 1.05070102214813232421875f));
    } else if (op == "Sigmoid") {
      unary(node, index, Op::kSigmoid);
    } else if (op == "Tanh") {
      unary(node, index, Op::kTanh);
    } else if (op == "Erf") {
      unary(node, index, Op::kErf);
    } else if (op == "Clip") {
      float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
      if (has_input(node, 1)) lo = operand(node, index, constant(node, index, 1), 1).at(0);
      if (has_input(node, 2)) hi = operand(node, index, constant(node, index, 2), 1).at(0);
      unary(node, index, Op::kClamp, lo, hi);
    } else if (op == "Softmax" || op == "LogSoftmax") {
      feature_axis(node, index, attr_int(node, "axis", -1));
      unary(node, index, op == "Softmax" ? Op::kSoftmax : Op::kLogSoftmax);
    } else if (op == "LayerNormalization") {
      only_first_output(node, index);
      feature_axis(node, index, attr_int(node, "axis", -1));
      const int x = value(node, index, 0);
      native::Node n{Op::kLayerNorm, {x}, width(x), {}, {}, attr_float(node, "epsilon", 1e-5f), 0, false, {}};
      n.weights = operand(node, index, constant(node, index, 1), width(x));
      if (has_input(node, 2)) n.bias = operand(node, index, constant(node, index, 2), width(x));
      if (n.weights.size() == 1) n.weights.assign(width(x), n.weights[0]);
      if (n.bias.size() == 1) n.bias.assign(width(x), n.bias[0]);
      add(node, index, std::move(n));
    } else if (op == "BatchNormalization") {
      only_first_output(node, index);
      if (attr_int(node, "training_mode", 0) != 0) refuse(node, index, "training_mode");
      if (rank_ != 2)
        refuse(node, index, "the channel axis of a rank-" + std::to_string(rank_) + " input is not the last");
      const int x = value(node, index, 0);
      const std::size_t w = width(x);
      const auto vec = [&](int i) {
        std::vector<float> v = operand(node, index, constant(node, index, i), w);
        if (v.size() == 1) v.assign(w, v[0]);
        return v;
      };
      const std::vector<float> gamma = vec(1), beta = vec(2), mean = vec(3), var = vec(4);
      const double eps = attr_float(node, "epsilon", 1e-5f);
      std::vector<float> scale(w), shift(w);
      for (std::size_t i = 0; i < w; ++i) {
        const double s = gamma[i] / std::sqrt(static_cast<double>(var[i]) + eps);
        scale[i] = static_cast<float>(s);
        shift[i] = static_cast<float>(beta[i] - mean[i] * s);
      }
      add(node, index, native::Node{Op::kAffine, {x}, w, std::move(scale), std::move(shift), 0, 0, false, {}});
    } else if (op == "Dropout") {
      only_first_output(node, index);
      if (has_input(node, 2)) {
        const Constant& training = constant(node, index, 2);
        if (training.numel() != 1 || (training.is_int ? training.ints[0] != 0 : training.values[0] != 0.0f))
          refuse(node, index, "training_mode");
      }
      ids_[node.output(0)] = value(node, index, 0);
    } else if (op == "Identity") {
      ids_[node.output(0)] = value(node, index, 0);
    } else if (op == "Flatten") {
      const std::int64_t axis = attr_int(node, "axis", 1);
      if (rank_ != 2 || (axis != 1 && axis != -1)) refuse(node, index, "only Flatten(axis=1) of a [batch, n] input");
      ids_[node.output(0)] = value(node, index, 0);
    } else if (op == "Reshape") {
      const int x = value(node, index, 0);
      const Constant& shape = constant(node, index, 1);
      const bool keeps = rank_ == 2 && shape.is_int && shape.ints.size() == 2 &&
                         (shape.ints[0] == -1 || shape.ints[0] == 0) &&
                         (shape.ints[1] == static_cast<std::int64_t>(width(x)) || shape.ints[1] == -1);
      if (!keeps) refuse(node, index, "only a reshape that keeps [batch, " + std::to_string(width(x)) + "]");
      ids_[node.output(0)] = x;
    } else if (op == "Concat") {
      feature_axis(node, index, attr_int(node, "axis", 0));
      native::Node n{Op::kConcat, {}, 0, {}, {}, 0, 0, false, {}};
      for (int i = 0; i < node.input_size(); ++i) {
        const int v = value(node, index, i);
        n.inputs.push_back(v);
        n.width += width(v);
      }
      add(node, index, std::move(n));
    } else {
      refuse(node, index, "unsupported operator " + op);
    }
  }

  std::string source_;
  const OnnxOptions& options_;
  Graph graph_;
  std::size_t rank_ = 2;
  std::unordered_map<std::string, int> ids_;
  std::unordered_map<std::string, Constant> constants_;
  std::set<std::string> consumed_;     // names some node or a graph output reads
  std::set<std::string> node_inputs_;  // names some node reads
};

}  // namespace

OnnxGraph parse_onnx(std::string_view bytes, const std::string& source, const OnnxOptions& options) {
  if (bytes.size() > options.max_file_bytes) {
    throw Error(ErrorCode::kUnsupported, source + ": " + std::to_string(bytes.size()) + " bytes, over the limit of " +
                                             std::to_string(options.max_file_bytes));
  }
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw Error(ErrorCode::kUnsupported, source + ": over 2 GiB, which protobuf cannot parse");
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw Error(ErrorCode::kParseError,
                source + ": not an ONNX model (protobuf ModelProto did not parse: truncated or another format)");
  }
  if (!model.has_graph()) throw Error(ErrorCode::kParseError, source + ": an ONNX model without a graph");
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    std::string what = e.what();
    what.resize(std::min(what.size(), what.find('\n')));
    throw Error(ErrorCode::kUnsupported, source + ": the ONNX checker refuses it: " + what);
  }
  return Mapper(source, options).run(model);
}

OnnxGraph load_onnx(const std::filesystem::path& path, const OnnxOptions& options) {
  const std::string source = path.string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::kFileNotFound, source + ": " + ec.message());
  if (size > options.max_file_bytes) {
    throw Error(ErrorCode::kUnsupported, source + ": " + std::to_string(size) + " bytes, over the limit of " +
                                             std::to_string(options.max_file_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kFileNotFound, source + ": cannot be opened for reading");
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (in.gcount() != static_cast<std::streamsize>(bytes.size())) {
    throw Error(ErrorCode::kParseError,
                source + ": read " + std::to_string(in.gcount()) + " of " + std::to_string(bytes.size()) + " bytes");
  }
  return parse_onnx(bytes, source, options);
}

}  // namespace tickinfer::native
