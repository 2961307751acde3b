#pragma once
// The one exception type tickinfer throws off the hot path, with a code tests and callers can match.

#include <stdexcept>
#include <string>

namespace tickinfer {

enum class ErrorCode {
  kInvalidConfig,      // a configuration value is out of range or inconsistent
  kFileNotFound,       // a model or data file does not exist
  kNotTorchScript,     // the file is not a TorchScript archive
  kTruncatedArchive,   // the archive ends early or its zip directory is damaged
  kMissingMetadata,    // the archive has no tickinfer metadata file
  kMalformedMetadata,  // the metadata is not valid JSON or misses/mistypes a field
  kWidthMismatch,      // input width differs from the configured feature width
  kSchemaMismatch,     // the model's feature schema differs from the running pipeline's
  kGoldenMismatch,     // golden inputs do not reproduce the golden outputs
  kNonFiniteOutput,    // the model produced NaN or Inf
  kModelError,         // forward() threw
  kUnsupported,        // the build or machine lacks what was asked for (e.g. CUDA)
  kUnsafeFile,         // world-writable, foreign-owned, or a link leaving its directory
  kChecksumMismatch,   // the .sha256 sidecar does not match the file
  kWeightsMismatch,    // a weights-only checkpoint does not match the architecture
  kParseError,         // malformed input data
  kInterfaceMismatch,  // a new model version's outputs or input names differ from the served version's
  kShapeMismatch,      // forward returned the wrong number of rows or outputs for a batch
  kNondeterministic,   // the same row gave different outputs: run twice, or alone vs. in a batch
  kTooLarge,           // a file or archive member exceeds its size bound
  kInternal,           // an unexpected exception inside tickinfer (a bug; logged and counted, never fatal)
};

/// Stable name of a code, e.g. "width_mismatch" (used in logs and metrics labels).
const char* to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace tickinfer
