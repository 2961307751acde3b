#pragma once
// The ONNX model loader in two halves, like the TorchScript one (open_checkpoint / finish_checkpoint): the public
// load_onnx() and the hot-swap registry both go through them. Internal; no onnx or torch headers.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "model/native/native_model.hpp"
#include "model/native/onnx_frontend.hpp"
#include "tickinfer/model.hpp"
#include "tickinfer/torchscript.hpp"  // LoadOptions

namespace tickinfer::internal {

/// An ONNX model parsed, checked by ONNX's checker and mapped, with its metadata read: its version is known.
struct OpenedOnnx {
  native::OnnxGraph onnx;
  ModelMetadata metadata;
};

/// First half: options.device is "cpu" and options.engine is not kLibTorch (an ONNX model runs on the native engine
/// only), then the file read (bounded: OnnxOptions{}.max_file_bytes), parsed, checked by ONNX's checker and mapped
/// (native::load_onnx), then its tickinfer metadata and its [batch, features] input. Throws Error naming the file:
/// kUnsupported, kFileNotFound, kParseError, kMissingMetadata, kMalformedMetadata.
OpenedOnnx open_onnx(const std::filesystem::path& path, const LoadOptions& options);
/// The same from bytes already read (the registry's one checked read); `source` names them in messages.
OpenedOnnx open_onnx(std::string_view bytes, const std::string& source, const LoadOptions& options);

struct LoadedOnnx {
  std::shared_ptr<const native::NativeModel> model;
  std::int64_t check_ns = 0;   // metadata expectations, compiling the plan
  std::int64_t warmup_ns = 0;  // validate_plan(): golden rows, then every options.warmup_batch_sizes
};

/// Second half: check_expected() (width, schema, interface, tolerance), Plan::compile, validate_plan() at every
/// options.warmup_batch_sizes. The model's version is options.version, else the metadata's. Throws Error naming
/// `source`: kWidthMismatch, kSchemaMismatch, kInterfaceMismatch, kUnsupported, kGoldenMismatch,
/// kNonFiniteOutput, kModelError.
LoadedOnnx finish_onnx(OpenedOnnx opened, const std::string& source, const LoadOptions& options);

}  // namespace tickinfer::internal
