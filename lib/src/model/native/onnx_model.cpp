#include "tickinfer/onnx.hpp"

#include <string>

#include "model/load_checks.hpp"
#include "model/native/native_model.hpp"
#include "model/native/onnx_frontend.hpp"
#include "model/native/plan.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer {

std::shared_ptr<const Model> load_onnx(const std::filesystem::path& path, const LoadOptions& options) {
  const std::string source = path.string();
  if (options.device != "cpu") {
    throw Error(ErrorCode::kUnsupported,
                source + ": ONNX models run on the native CPU engine, not '" + options.device + "'");
  }
  native::OnnxGraph onnx = native::load_onnx(path);
  if (onnx.metadata_json.empty()) {
    throw Error(ErrorCode::kMissingMetadata, source + ": no metadata_props entry '" +
                                                 std::string(native::kOnnxMetadataKey) +
                                                 "' (export it with scripts/export_native_models.py --onnx)");
  }
  ModelMetadata meta = parse_metadata(onnx.metadata_json, source);
  if (onnx.input_rank != 2) {
    throw Error(ErrorCode::kUnsupported, source + ": input '" + onnx.input_name + "' has rank " +
                                             std::to_string(onnx.input_rank) + ", not [batch, features]");
  }
  internal::check_expected(meta, source, options);  // width, schema, interface, tolerance
  auto plan = native::Plan::compile(onnx.graph);
  native::validate_plan(*plan, meta, options.warmup_batch_sizes, options.golden_tolerance, source);
  const std::uint64_t version = options.version.value_or(meta.version);
  return std::make_shared<native::NativeModel>(std::move(meta), version, source, std::move(plan));
}

}  // namespace tickinfer
