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

struct LoadOptions {
  std::size_t expected_input_width = 0;  // 0: accept the metadata's width
  std::string expected_schema_hash;      // empty: do not check the feature schema
  bool optimize_for_inference = true;    // freeze + optimize_for_inference (B=1: 9.3 us -> 6.5 us measured)
  std::vector<std::size_t> warmup_batch_sizes = {1};  // each runs a few forwards before the model is returned
  float golden_tolerance = 1e-5f;                     // max abs diff, golden outputs vs. reproduced
  std::optional<std::uint64_t> version;               // overrides metadata.version (e.g. epoch from a file name)
  std::string device = "cpu";                         // "cpu" or "cuda:N" (CUDA builds only)
};

/// Loads, validates and warms up a TorchScript archive written by scripts/export_model.py.
/// Throws Error naming the file and the problem: kFileNotFound, kNotTorchScript, kTruncatedArchive,
/// kMissingMetadata, kMalformedMetadata, kWidthMismatch, kSchemaMismatch, kGoldenMismatch, kNonFiniteOutput.
std::shared_ptr<const Model> load_torchscript(const std::filesystem::path& path, const LoadOptions& options = {});

/// Runs forward on `rows` x input_width inputs and returns rows x output_width outputs. Allocates;
/// for tools and tests, not the hot path.
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
