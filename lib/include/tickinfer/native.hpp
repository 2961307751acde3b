#pragma once
// The native engine's pipeline backend: runs models that carry a native plan (tickinfer::load_onnx()).
// Torch-free: a trading engine serving ONNX models needs no LibTorch at run time.

#include <memory>

#include "tickinfer/runner.hpp"

namespace tickinfer {

/// Runners for the native engine. A model without a native plan fails its batch (kModelError, the reason named).
/// Each runner allocates its staging and, once per model version, that model's working memory; batches allocate
/// nothing.
std::shared_ptr<const Backend> make_native_backend();

}  // namespace tickinfer
