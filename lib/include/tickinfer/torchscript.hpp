#pragma once
// Loading TorchScript archives (with their tickinfer metadata) and the LibTorch backends.
// No torch headers here: a trading engine includes this without pulling LibTorch into its build.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tickinfer/model.hpp"
#include "tickinfer/runner.hpp"

namespace tickinfer {

/// What a checkpoint file holds: a TorchScript archive (code, constants, metadata), a weights-only
/// torch.save() of a plain dict of tensors (applied onto a served architecture by the registry), or an ONNX model
/// (a file named *.onnx, run by the native engine: tickinfer/onnx.hpp).
enum class CheckpointKind { kTorchScript, kWeights, kOnnx };

/// "torchscript", "weights", "onnx".
const char* to_string(CheckpointKind kind) noexcept;

/// Which engine runs a TorchScript model. kAuto: the native engine when the model compiles to a native plan and
/// that plan equals LibTorch at load (golden rows and seeded random rows at every warm-up batch size, |diff| <=
/// 1e-5, relative above 1), else LibTorch with the reason in Model::engine_note(). kNative: the same, but a model
/// the native engine cannot run is refused (kUnsupported, or kGoldenMismatch naming row, output and both values).
/// kLibTorch: never the native engine.
enum class Engine { kAuto, kNative, kLibTorch };

/// "auto", "native", "libtorch".
const char* to_string(Engine engine) noexcept;
/// Parses "auto" / "native" / "libtorch"; throws Error(kInvalidConfig) naming the text otherwise.
Engine parse_engine(std::string_view text);

struct LoadOptions {
  Engine engine = Engine::kAuto;         // CPU only: on CUDA devices LibTorch runs the model
  std::size_t expected_input_width = 0;  // 0: accept the metadata's width
  std::string expected_schema_hash;      // empty: do not check the feature schema
  /// Non-empty: the model's input / output names (hence its output width) must equal these, else
  /// kInterfaceMismatch naming both. The registry fills them from the served version.
  std::vector<std::string> expected_input_names;
  std::vector<std::string> expected_output_names;
  /// Set: the model's state names (a sequence model's; empty: stateless) must equal these (kInterfaceMismatch).
  std::optional<std::vector<std::string>> expected_state_names;
  bool optimize_for_inference = true;  // freeze + optimize_for_inference (B=1: 9.3 us -> 6.5 us measured)
  /// Each runs a few forwards before the model is returned; every output of every run is checked: shape
  /// (kShapeMismatch), finite (kNonFiniteOutput), and each row equal to that row run alone (kNondeterministic).
  std::vector<std::size_t> warmup_batch_sizes = {1};
  float golden_tolerance = 1e-5f;        // max abs diff, golden outputs vs. reproduced (relative above 1)
  std::optional<std::uint64_t> version;  // overrides metadata.version (e.g. epoch from a file name)
  std::string device = "cpu";            // "cpu" or "cuda:N" (CUDA builds only)
  /// Bounds on what a checkpoint may make us read (kTooLarge otherwise, before anything is inflated): the file
  /// and the sum of its members' inflated sizes; the metadata member (tickinfer.json) on its own.
  std::size_t max_archive_bytes = std::size_t{1} << 30;
  std::size_t max_metadata_bytes = std::size_t{1} << 20;
};

/// Loads, validates and warms up a TorchScript archive written by scripts/export_model.py.
/// Throws Error naming the file and the problem: kFileNotFound, kNotTorchScript, kTruncatedArchive, kTooLarge,
/// kMissingMetadata, kMalformedMetadata, kWidthMismatch, kSchemaMismatch, kInterfaceMismatch, kGoldenMismatch,
/// kNonFiniteOutput, kShapeMismatch, kNondeterministic, kModelError.
std::shared_ptr<const Model> load_torchscript(const std::filesystem::path& path, const LoadOptions& options = {});

/// Runs forward on `rows` x packed_input_width inputs and returns rows x packed_output_width outputs (a sequence
/// model: each row its features then its state, back its outputs then its new state). Allocates; for tools and
/// tests, not the hot path.
std::vector<float> run_model(const Model& model, const std::vector<float>& inputs, std::size_t rows);

struct CpuBackendOptions {
  int intra_op_threads = 1;  // torch::set_num_threads() at creation (process-wide); 0 leaves LibTorch's default
};

/// CPU backend: runs under torch::InferenceMode on the worker thread. The no-argument form uses
/// CpuBackendOptions{} (one intra-op thread: lowest latency for small batches).
std::shared_ptr<const Backend> make_cpu_backend();
std::shared_ptr<const Backend> make_cpu_backend(const CpuBackendOptions& options);

/// "cpu" or "cuda[:N]". Throws Error(kUnsupported) when the build or machine has no CUDA.
std::shared_ptr<const Backend> make_backend(std::string_view device);

/// Parses a parsed metadata JSON text; throws kMalformedMetadata naming `source` and the field.
ModelMetadata parse_metadata(std::string_view json_text, const std::string& source);

}  // namespace tickinfer
