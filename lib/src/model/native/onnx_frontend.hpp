#pragma once
// ONNX -> native IR (libonnx's protobuf ModelProto and checker). Internal; the onnx headers stay in the .cpp.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "model/native/graph.hpp"

namespace onnx {
class TensorProto;
}

namespace tickinfer::native {

inline constexpr std::int64_t kOnnxMinOpset = 13;
inline constexpr std::int64_t kOnnxMaxOpset = 17;
inline constexpr const char* kOnnxMetadataKey = "tickinfer.json";  // metadata_props entry with tickinfer's metadata

struct OnnxGraph {
  Graph graph;  // over [rows, input_width]; rows = every axis but the last of the declared input
  std::string input_name, output_name;
  std::size_t input_rank = 0;  // 2 for a [batch, features] model
  std::int64_t opset = 0;
  std::string metadata_json;  // metadata_props["tickinfer.json"], empty if absent
};

struct OnnxOptions {
  std::size_t max_file_bytes = std::size_t{512} << 20;  // a larger file is refused before it is read
  /// Graph inputs bound to constants (ONNX node tests pass weights as inputs); every other input but one is refused.
  const std::map<std::string, onnx::TensorProto>* bound_inputs = nullptr;
  /// Serve graph output 0 and ignore the others (ONNX node tests list a node's optional outputs, e.g. a layer
  /// norm's Mean, as graph outputs). Off: a graph with more than one output is refused.
  bool first_output_only = false;
};

/// Reads, checks (onnx::checker) and maps `path`. Throws Error naming the file and, where it applies, the node:
/// kFileNotFound, kTooLarge is reported as kUnsupported with the size, kParseError (not a ModelProto / truncated),
/// kUnsupported (checker failure, opset, an operator, a non-float or second input, a batch axis that is not the
/// first, a missing initializer).
OnnxGraph load_onnx(const std::filesystem::path& path, const OnnxOptions& options = {});

/// The same from bytes already in memory (the fuzz target and tests); `source` names them in messages.
OnnxGraph parse_onnx(std::string_view bytes, const std::string& source, const OnnxOptions& options = {});

}  // namespace tickinfer::native
