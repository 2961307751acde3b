// ONNX models into the native engine: tickinfer::load_onnx() and the two halves the hot-swap registry shares.

#include "model/native/onnx_model.hpp"

#include <string>
#include <utility>

#include "model/load_checks.hpp"
#include "model/native/plan.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/onnx.hpp"

namespace tickinfer {
namespace internal {

namespace {

void check_options(const std::string& source, const LoadOptions& options) {
  if (options.device != "cpu") {
    throw Error(ErrorCode::kUnsupported,
                source + ": ONNX models run on the native CPU engine, not '" + options.device + "'");
  }
  if (options.engine == Engine::kLibTorch) {
    throw Error(ErrorCode::kUnsupported,
                source + ": an ONNX model runs on the native engine only, and LoadOptions::engine is 'libtorch'");
  }
}

OpenedOnnx with_metadata(native::OnnxGraph onnx, const std::string& source) {
  if (onnx.metadata_json.empty()) {
    throw Error(ErrorCode::kMissingMetadata, source + ": no metadata_props entry '" +
                                                 std::string(native::kOnnxMetadataKey) +
                                                 "' (export it with scripts/export_native_models.py --onnx)");
  }
  ModelMetadata meta = parse_metadata(onnx.metadata_json, source);
  if (!meta.state_names.empty())
    throw Error(ErrorCode::kUnsupported, source +
                                             ": a sequence model (state_names) in ONNX is not supported: the "
                                             "native engine has no recurrent state (export it as TorchScript)");
  if (onnx.input_rank != 2) {
    throw Error(ErrorCode::kUnsupported, source + ": input '" + onnx.input_name + "' has rank " +
                                             std::to_string(onnx.input_rank) + ", not [batch, features]");
  }
  return {std::move(onnx), std::move(meta)};
}

}  // namespace

OpenedOnnx open_onnx(const std::filesystem::path& path, const LoadOptions& options) {
  const std::string source = path.string();
  check_options(source, options);
  return with_metadata(native::load_onnx(path), source);
}

OpenedOnnx open_onnx(std::string_view bytes, const std::string& source, const LoadOptions& options) {
  check_options(source, options);
  return with_metadata(native::parse_onnx(bytes, source), source);
}

LoadedOnnx finish_onnx(OpenedOnnx opened, const std::string& source, const LoadOptions& options) {
  const std::int64_t start = now_ns();
  check_expected(opened.metadata, source, options);  // width, schema, interface, tolerance
  auto plan = native::Plan::compile(opened.onnx.graph);
  const std::int64_t validate_start = now_ns();
  native::validate_plan(*plan, opened.metadata, options.warmup_batch_sizes, options.golden_tolerance, source);
  LoadedOnnx loaded;
  loaded.check_ns = validate_start - start;
  loaded.warmup_ns = now_ns() - validate_start;
  const std::uint64_t version = options.version.value_or(opened.metadata.version);
  loaded.model = std::make_shared<native::NativeModel>(std::move(opened.metadata), version, source, std::move(plan));
  return loaded;
}

}  // namespace internal

bool is_onnx_path(const std::filesystem::path& path) noexcept { return path.extension() == ".onnx"; }

std::shared_ptr<const Model> load_onnx(const std::filesystem::path& path, const LoadOptions& options) {
  return internal::finish_onnx(internal::open_onnx(path, options), path.string(), options).model;
}

}  // namespace tickinfer
