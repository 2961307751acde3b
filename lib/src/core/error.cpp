#include "tickinfer/error.hpp"

#include "tickinfer/result.hpp"

namespace tickinfer {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidConfig:
      return "invalid_config";
    case ErrorCode::kFileNotFound:
      return "file_not_found";
    case ErrorCode::kNotTorchScript:
      return "not_torchscript";
    case ErrorCode::kTruncatedArchive:
      return "truncated_archive";
    case ErrorCode::kMissingMetadata:
      return "missing_metadata";
    case ErrorCode::kMalformedMetadata:
      return "malformed_metadata";
    case ErrorCode::kWidthMismatch:
      return "width_mismatch";
    case ErrorCode::kSchemaMismatch:
      return "schema_mismatch";
    case ErrorCode::kGoldenMismatch:
      return "golden_mismatch";
    case ErrorCode::kNonFiniteOutput:
      return "non_finite_output";
    case ErrorCode::kModelError:
      return "model_error";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kUnsafeFile:
      return "unsafe_file";
    case ErrorCode::kChecksumMismatch:
      return "checksum_mismatch";
    case ErrorCode::kWeightsMismatch:
      return "weights_mismatch";
    case ErrorCode::kParseError:
      return "parse_error";
    case ErrorCode::kInterfaceMismatch:
      return "interface_mismatch";
    case ErrorCode::kShapeMismatch:
      return "shape_mismatch";
    case ErrorCode::kNondeterministic:
      return "nondeterministic";
    case ErrorCode::kTooLarge:
      return "too_large";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

const char* to_string(SubmitStatus status) noexcept {
  switch (status) {
    case SubmitStatus::kAccepted:
      return "accepted";
    case SubmitStatus::kRejected:
      return "rejected";
    case SubmitStatus::kInvalid:
      return "invalid";
  }
  return "unknown";
}

const char* to_string(ResultStatus status) noexcept {
  switch (status) {
    case ResultStatus::kOk:
      return "ok";
    case ResultStatus::kExpired:
      return "expired";
    case ResultStatus::kModelError:
      return "model_error";
    case ResultStatus::kCancelled:
      return "cancelled";
    case ResultStatus::kSuperseded:
      return "superseded";
  }
  return "unknown";
}

const char* to_string(EngineKind engine) noexcept {
  switch (engine) {
    case EngineKind::kNone:
      return "none";
    case EngineKind::kNative:
      return "native";
    case EngineKind::kLibTorch:
      return "libtorch";
    case EngineKind::kOther:
      return "other";
  }
  return "unknown";
}

EngineKind engine_kind(std::string_view engine_name) noexcept {
  if (engine_name == "native") return EngineKind::kNative;
  if (engine_name == "libtorch") return EngineKind::kLibTorch;
  return EngineKind::kOther;
}

}  // namespace tickinfer
