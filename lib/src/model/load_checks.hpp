#pragma once
// What every loader checks of a model's metadata against what the caller expects (TorchScript, weights-only and
// ONNX alike). Torch-free.

#include <string>

#include "tickinfer/model.hpp"
#include "tickinfer/torchscript.hpp"

namespace tickinfer::internal {

/// options.expected_input_width (kWidthMismatch), expected_schema_hash (kSchemaMismatch), expected_input_names /
/// expected_output_names (kInterfaceMismatch, naming both lists), golden_tolerance >= 0 (kInvalidConfig). Errors
/// name `source`. Defined in torchscript.cpp.
void check_expected(const ModelMetadata& meta, const std::string& source, const LoadOptions& options);

}  // namespace tickinfer::internal
