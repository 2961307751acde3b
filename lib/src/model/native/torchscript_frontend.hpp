#pragma once
// TorchScript -> native IR. Internal: pulls in torch headers.

#include <torch/script.h>

#include <cstddef>
#include <string>

#include "model/native/graph.hpp"

namespace tickinfer::native {

/// Maps the forward graph of `module` (eval mode, not yet optimised for a backend) to the native IR: freezes a
/// copy, so parameters become constants, then maps every node. `input_width` is the model's feature count.
/// Throws Error(kUnsupported) naming the exact node and why when a node, a shape or control flow is outside what
/// the IR holds ("%5 : Tensor = aten::conv1d(...): unsupported operator aten::conv1d").
Graph from_torchscript(const torch::jit::Module& module, std::size_t input_width, const std::string& source);

}  // namespace tickinfer::native
