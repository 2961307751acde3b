#pragma once
// The LibTorch-backed Model, shared by the CPU runner (torchscript.cpp), the CUDA runner and the
// weights-only hot-swap loader. Internal: pulls in torch headers, so it never appears in public headers.

#include <torch/script.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "tickinfer/model.hpp"
#include "tickinfer/torchscript.hpp"

namespace tickinfer::internal {

/// A loaded (normally frozen and optimised) TorchScript module on one device. Immutable, so workers
/// may run it concurrently: the JIT's graph executor is thread-safe for forward().
class TorchModel final : public Model {
 public:
  /// `module` must be in eval mode and have forward(self, Tensor) -> Tensor (load_torchscript checks).
  TorchModel(torch::jit::Module module, c10::Device device, ModelMetadata metadata, std::uint64_t version,
             std::string source);

  const torch::jit::Module& module() const noexcept { return module_; }
  c10::Device device() const noexcept { return device_; }

  /// Hot path: `stack` holds [input tensor] on entry and [output] on return. Skips Method's argument
  /// normalisation (checked once at load) and, with a reserved stack, allocates nothing of ours.
  /// The caller holds c10::InferenceMode. Throws whatever forward throws.
  void run(torch::jit::Stack& stack) const {
    stack.insert(stack.begin(), c10::IValue(module_._ivalue()));
    forward_->run(stack);
  }

  /// Allocating convenience for loading, tests and tools: runs under InferenceMode, returns the output
  /// tensor as produced (on device()). Throws std::runtime_error if forward does not return a Tensor.
  torch::Tensor forward(const torch::Tensor& input) const;

 private:
  torch::jit::Module module_;
  torch::jit::Function* forward_;  // owned by module_'s compilation unit
  c10::Device device_;
};

/// What a TorchScript archive holds after the structural and metadata checks, before freezing.
struct TorchArchive {
  torch::jit::Module module;  // eval mode, on `device`, not frozen (parameters still settable)
  c10::Device device = c10::kCPU;
  ModelMetadata metadata;
};

/// "cpu" or "cuda[:N]" -> device. Throws Error(kUnsupported) for CUDA in builds without the CUDA runner
/// or on machines without a GPU, Error(kInvalidConfig) for anything else.
c10::Device parse_device(std::string_view device);

/// Steps 1-5 of load_torchscript: kFileNotFound, kNotTorchScript, kTruncatedArchive, kMissingMetadata,
/// kMalformedMetadata. Every message names `path`.
TorchArchive open_torchscript(const std::filesystem::path& path, c10::Device device);

/// The rest of load_torchscript: width and schema checks, freeze + optimize_for_inference (if asked),
/// golden check (skipped when metadata has no golden rows) and warm-up. Errors name `source`.
/// The weights-only loader calls this after copying new parameters into an open_torchscript() module.
std::shared_ptr<const TorchModel> finish_torch_model(TorchArchive archive, const std::string& source,
                                                     const LoadOptions& options);

}  // namespace tickinfer::internal
