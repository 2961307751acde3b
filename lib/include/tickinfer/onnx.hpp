#pragma once
// Loading ONNX models: the native engine runs them (there is no LibTorch for ONNX here). No onnx headers.

#include <filesystem>
#include <memory>

#include "tickinfer/model.hpp"
#include "tickinfer/torchscript.hpp"  // LoadOptions

namespace tickinfer {

/// Reads an ONNX model (opsets 13-17; one float input [batch, features] with a dynamic first axis; weights as
/// initializers; tickinfer's metadata JSON in metadata_props["tickinfer.json"]), runs ONNX's checker, compiles
/// it for the native engine and validates it (golden vectors, then every warm-up batch size: finite outputs, rows
/// independent of each other, deterministic). `options.device` must be "cpu" and `options.engine` auto or native
/// (there is no LibTorch for ONNX); `optimize_for_inference` does not apply. Throws Error naming the file (and the
/// node, where one is at fault): kFileNotFound, kParseError (truncated or not protobuf), kUnsupported (device or
/// engine libtorch, checker, opset, operator, input type or count, batch axis, missing initializer),
/// kMissingMetadata, kMalformedMetadata, kWidthMismatch, kSchemaMismatch, kInterfaceMismatch, kGoldenMismatch,
/// kNonFiniteOutput, kModelError.
std::shared_ptr<const Model> load_onnx(const std::filesystem::path& path, const LoadOptions& options = {});

/// True when `path` names an ONNX model (its extension is ".onnx"): what ModelRegistry loads with load_onnx()'s
/// checks rather than as a TorchScript or weights-only zip. Thread-safe; never allocates.
bool is_onnx_path(const std::filesystem::path& path) noexcept;

}  // namespace tickinfer
