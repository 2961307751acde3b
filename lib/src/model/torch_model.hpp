#pragma once
// The LibTorch-backed Model, shared by the CPU runner (torchscript.cpp), the CUDA runner and the
// weights-only hot-swap loader. Internal: pulls in torch headers, so it never appears in public headers.

#include <torch/script.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/native/native_model.hpp"
#include "model/native/plan.hpp"
#include "tickinfer/model.hpp"
#include "tickinfer/torchscript.hpp"

namespace tickinfer::internal {

inline std::string shape_text(const at::Tensor& t) {
  std::string text = "[";
  for (std::int64_t d = 0; d < t.dim(); ++d) text.append(d ? ", " : "").append(std::to_string(t.size(d)));
  return text.append("]");
}

/// A loaded (normally frozen and optimised) TorchScript module on one device. Immutable, so workers
/// may run it concurrently: the JIT's graph executor is thread-safe for forward().
class TorchModel final : public Model, public native::HasNativePlan {
 public:
  /// `module` must be in eval mode and have forward(self, Tensor) -> Tensor (load_torchscript checks).
  TorchModel(torch::jit::Module module, c10::Device device, ModelMetadata metadata, std::uint64_t version,
             std::string source);

  const torch::jit::Module& module() const noexcept { return module_; }
  c10::Device device() const noexcept { return device_; }

  /// Hot path: `stack` holds [input tensor] on entry and [output] on return, both packed (Model::packed_input_width:
  /// a sequence model's rows carry their state after the features, and come back with the new state after the
  /// outputs: forward(x, h) -> (y, h') is called on views and its results concatenated). Skips Method's argument
  /// normalisation (checked once at load) and, with a reserved stack, allocates nothing of ours for a stateless
  /// model. The caller holds c10::InferenceMode. Throws whatever forward throws.
  void run(torch::jit::Stack& stack) const {
    if (state_width() == 0) {
      stack.insert(stack.begin(), c10::IValue(module_._ivalue()));
      forward_->run(stack);
      return;
    }
    const at::Tensor packed = std::move(stack.back()).toTensor();
    stack.clear();
    const auto features = static_cast<std::int64_t>(input_width()), state = static_cast<std::int64_t>(state_width());
    stack.emplace_back(module_._ivalue());
    stack.emplace_back(packed.narrow(1, 0, features));
    stack.emplace_back(packed.narrow(1, features, state));
    forward_->run(stack);
    if (stack.size() != 1 || !stack.back().isTuple())
      throw std::runtime_error(source() + ": forward did not return a tuple");
    const auto tuple = std::move(stack.back()).toTuple();
    stack.clear();
    const auto& elements = tuple->elements();
    if (elements.size() != 2 || !elements[0].isTensor() || !elements[1].isTensor())
      throw std::runtime_error(source() + ": forward did not return (outputs, state)");
    const at::Tensor& y = elements[0].toTensor();
    const at::Tensor& h = elements[1].toTensor();
    // Each part its own width: a y one wider and an h one narrower would otherwise cat to the right total.
    if (y.dim() != 2 || h.dim() != 2 || y.size(1) != static_cast<std::int64_t>(output_width()) || h.size(1) != state)
      throw std::runtime_error(source() + ": forward returned outputs " + shape_text(y) + " and state " +
                               shape_text(h) + ", expected [rows, " + std::to_string(output_width()) + "] and [rows, " +
                               std::to_string(state) + "]");
    stack.emplace_back(at::cat({y, h}, 1));
  }

  /// Allocating convenience for loading, tests and tools: runs under InferenceMode, returns the output
  /// tensor as produced (on device()). Throws std::runtime_error if forward does not return a Tensor.
  torch::Tensor forward(const torch::Tensor& input) const;

  /// The native plan that runs this model instead of LibTorch (validated against forward() at load), or null.
  const std::shared_ptr<const native::Plan>& native_plan() const noexcept override { return native_; }
  /// For the loader, before the model is shared: attach a validated plan (engine "native"), or say why not.
  void use_native(std::shared_ptr<const native::Plan> plan) {
    native_ = std::move(plan);
    set_engine("native", "");
  }
  void note_libtorch(std::string why) { set_engine("libtorch", std::move(why)); }

 private:
  std::shared_ptr<const native::Plan> native_;
  torch::jit::Module module_;
  torch::jit::Function* forward_;  // owned by module_'s compilation unit
  c10::Device device_;
};

/// What a checkpoint holds after the structural and metadata checks, before freezing.
struct TorchArchive {
  torch::jit::Module module;  // eval mode, on `device`, not frozen (parameters still settable)
  c10::Device device = c10::kCPU;
  ModelMetadata metadata;
};

/// "cpu" or "cuda[:N]" -> device. Throws Error(kUnsupported) for CUDA in builds without the CUDA runner
/// or on machines without a GPU, Error(kInvalidConfig) for anything else.
c10::Device parse_device(std::string_view device);

/// A checkpoint read and structurally checked: its kind, and the unfrozen module with its metadata (for a
/// weights-only file: the base architecture with the new weights and golden outputs recomputed).
struct OpenedCheckpoint {
  CheckpointKind kind = CheckpointKind::kTorchScript;
  TorchArchive archive;
  std::int64_t read_ns = 0;  // zip scan, unpickling, weights assignment
};

/// The one checkpoint path, first half: detects the kind from the zip directory (never unpickling to find
/// out), bounds every member (options.max_archive_bytes / max_metadata_bytes) before anything is inflated,
/// then reads it from `bytes` (the file is not opened again). `weights_base`: the architecture a weights-only
/// file is applied onto; null refuses one: kNotTorchScript ("without TorchScript code"), or kUnsupported naming
/// `no_base_reason` when the caller gives one (the registry: the served version is an ONNX model). Throws Error
/// naming `source`: kNotTorchScript, kTruncatedArchive, kTooLarge, kMissingMetadata, kMalformedMetadata,
/// kUnsupported, kWeightsMismatch, kNonFiniteOutput, kModelError.
OpenedCheckpoint open_checkpoint(const std::shared_ptr<const std::vector<char>>& bytes, const std::string& source,
                                 c10::Device device, const LoadOptions& options, const TorchArchive* weights_base,
                                 const std::string& no_base_reason = {});

struct LoadTimings {
  std::int64_t read_ns = 0;    // open_checkpoint
  std::int64_t check_ns = 0;   // interface checks, freeze + optimize, golden, determinism
  std::int64_t warmup_ns = 0;  // the checked warm-up of every batch size
};

struct LoadedCheckpoint {
  CheckpointKind kind = CheckpointKind::kTorchScript;
  std::shared_ptr<const TorchModel> model;  // frozen and optimised (if asked): what workers run
  TorchArchive architecture;                // unfrozen copy (when kept): the base for later weights-only files
  LoadTimings timings;
};

/// Second half: width, schema and interface checks (options.expected_*), freeze + optimize_for_inference (if
/// asked), golden check, the same inputs run twice (kNondeterministic), each golden row alone, and the checked
/// warm-up of options.warmup_batch_sizes (kShapeMismatch, kNonFiniteOutput, kNondeterministic). Errors name
/// `source`. `keep_architecture`: also return an unfrozen copy of the module.
LoadedCheckpoint finish_checkpoint(OpenedCheckpoint opened, const std::string& source, const LoadOptions& options,
                                   bool keep_architecture);

}  // namespace tickinfer::internal
