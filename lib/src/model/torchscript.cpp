// TorchScript archives: structure and metadata checks, freezing, golden check and warm-up.

#include "tickinfer/torchscript.hpp"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "model/torch_error.hpp"
#include "model/torch_model.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The profiling executor specialises the graph over its first runs; a few per batch size get that done
// before the model serves.
constexpr int kWarmupRuns = 3;
constexpr char kZipMagic[4] = {'P', 'K', '\x03', '\x04'};

using internal::shape_of;
using internal::to_i64;
using internal::torch_error_line;
using internal::torch_error_text;

// Nine significant digits round-trip a float, so expected/got show the real difference.
std::string format_value(double value, int precision = 9) {
  std::ostringstream out;
  out << std::setprecision(precision) << value;
  return out.str();
}

// ---- metadata ----

[[noreturn]] void malformed(const std::string& source, const std::string& problem) {
  throw Error(ErrorCode::kMalformedMetadata, source + ": malformed " + kMetadataFileName + ": " + problem);
}

const json& require(const json& object, const char* key, const std::string& source) {
  const auto it = object.find(key);
  if (it == object.end()) malformed(source, std::string("missing field '") + key + "'");
  return *it;
}

[[noreturn]] void mistyped(const std::string& source, const std::string& field, const char* expected,
                           const json& value) {
  malformed(source, "field '" + field + "' must be " + expected + ", got " + value.type_name());
}

std::string string_field(const json& object, const char* key, const std::string& source, bool allow_empty) {
  const json& value = require(object, key, source);
  if (!value.is_string()) mistyped(source, key, "a string", value);
  auto text = value.get<std::string>();
  if (text.empty() && !allow_empty) malformed(source, std::string("field '") + key + "' is empty");
  return text;
}

std::vector<std::string> names_field(const json& object, const char* key, const std::string& source) {
  const json& value = require(object, key, source);
  if (!value.is_array()) mistyped(source, key, "an array of strings", value);
  if (value.empty()) malformed(source, std::string("field '") + key + "' is empty");
  std::vector<std::string> names;
  names.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) mistyped(source, std::string(key) + "[" + std::to_string(i) + "]", "a string", value[i]);
    names.push_back(value[i].get<std::string>());
  }
  return names;
}

std::vector<std::vector<float>> rows_field(const json& golden, const char* key, std::size_t width,
                                           const char* width_from, const std::string& source) {
  const std::string field = std::string("golden.") + key;
  const json& value = require(golden, key, source);
  if (!value.is_array()) mistyped(source, field, "an array of rows", value);
  if (value.empty()) malformed(source, "field '" + field + "' has no rows");
  std::vector<std::vector<float>> rows;
  rows.reserve(value.size());
  for (std::size_t r = 0; r < value.size(); ++r) {
    const std::string row_field = field + "[" + std::to_string(r) + "]";
    const json& row = value[r];
    if (!row.is_array()) mistyped(source, row_field, "an array of numbers", row);
    if (row.size() != width) {
      malformed(source, "field '" + row_field + "' has " + std::to_string(row.size()) + " values, expected " +
                            std::to_string(width) + " (one per " + width_from + " entry)");
    }
    std::vector<float> values;
    values.reserve(width);
    for (std::size_t c = 0; c < width; ++c) {
      const std::string cell = row_field + "[" + std::to_string(c) + "]";
      if (!row[c].is_number()) mistyped(source, cell, "a number", row[c]);
      const auto v = static_cast<float>(row[c].get<double>());
      if (!std::isfinite(v)) malformed(source, "field '" + cell + "' is not a finite float32");
      values.push_back(v);
    }
    rows.push_back(std::move(values));
  }
  return rows;
}

// ---- archive ----

void check_forward_signature(const torch::jit::Module& module, const std::string& source) {
  const auto method = module.find_method("forward");
  if (!method) throw Error(ErrorCode::kNotTorchScript, source + ": the TorchScript module has no forward()");
  const c10::FunctionSchema& schema = method->function().getSchema();
  const auto& tensor = *c10::TensorType::get();
  const auto& args = schema.arguments();
  const auto& returns = schema.returns();
  if (args.size() != 2 || !args[1].type()->isSubtypeOf(tensor) || returns.size() != 1 ||
      !returns[0].type()->isSubtypeOf(tensor)) {
    std::ostringstream signature;
    signature << schema;
    throw Error(ErrorCode::kUnsupported,
                source + ": forward must take one Tensor and return one Tensor, it is " + signature.str());
  }
}

// ---- validation after load ----

torch::Tensor rows_tensor(const std::vector<std::vector<float>>& rows, std::size_t batch, std::size_t width,
                          c10::Device device) {
  auto tensor = torch::zeros({to_i64(batch), to_i64(width)}, torch::kFloat);
  if (!rows.empty()) {
    float* data = tensor.data_ptr<float>();
    for (std::size_t r = 0; r < batch; ++r) std::copy_n(rows[r % rows.size()].data(), width, data + r * width);
  }
  return tensor.to(device);
}

void check_golden(const internal::TorchModel& model, float tolerance) {
  const ModelMetadata& meta = model.metadata();
  const std::size_t rows = meta.golden_inputs.size();
  if (rows == 0) return;
  const std::size_t out_width = model.output_width();
  torch::Tensor output;
  try {
    output = model.forward(rows_tensor(meta.golden_inputs, rows, model.input_width(), model.device()));
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kModelError,
                model.source() + ": forward failed on the golden inputs: " + torch_error_text(e));
  }
  output = output.to(torch::kCPU, torch::kFloat).contiguous();
  if (output.dim() == 0 || output.size(0) != to_i64(rows) ||
      static_cast<std::size_t>(output.numel()) != rows * out_width) {
    throw Error(ErrorCode::kGoldenMismatch, model.source() + ": forward returned shape " + shape_of(output) + " for " +
                                                std::to_string(rows) + " golden rows, the metadata declares " +
                                                std::to_string(out_width) + " outputs");
  }
  const float* got = output.data_ptr<float>();
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < out_width; ++c) {
      const float value = got[r * out_width + c];
      const float expected = meta.golden_outputs[r][c];
      const std::string where =
          "golden row " + std::to_string(r) + ", output " + std::to_string(c) + " ('" + meta.output_names[c] + "')";
      if (!std::isfinite(value)) {
        throw Error(ErrorCode::kNonFiniteOutput, model.source() + ": " + where + " is " + format_value(value) +
                                                     " (expected " + format_value(expected) + ")");
      }
      const float diff = std::abs(value - expected);
      if (!(diff <= tolerance)) {
        throw Error(ErrorCode::kGoldenMismatch, model.source() + ": " + where + ": expected " + format_value(expected) +
                                                    ", got " + format_value(value) + " (|diff| " + format_value(diff) +
                                                    " > tolerance " + format_value(tolerance, 3) + ")");
      }
    }
  }
}

void warm_up(const internal::TorchModel& model, const std::vector<std::size_t>& batch_sizes) {
  for (const std::size_t batch : batch_sizes) {
    if (batch == 0) continue;
    const auto input = rows_tensor(model.metadata().golden_inputs, batch, model.input_width(), model.device());
    try {
      for (int i = 0; i < kWarmupRuns; ++i) model.forward(input);
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kModelError, model.source() + ": forward failed during warm-up at batch size " +
                                              std::to_string(batch) + ": " + torch_error_text(e));
    }
  }
}

}  // namespace

// ---- internal ----

namespace internal {

TorchModel::TorchModel(torch::jit::Module module, c10::Device device, ModelMetadata metadata, std::uint64_t version,
                       std::string source)
    : Model(std::move(metadata), version, std::move(source)),
      module_(std::move(module)),
      forward_(&module_.get_method("forward").function()),
      device_(device) {}

torch::Tensor TorchModel::forward(const torch::Tensor& input) const {
  c10::InferenceMode guard;
  torch::jit::Stack stack;
  stack.reserve(2);
  stack.emplace_back(input);
  run(stack);
  if (stack.size() != 1 || !stack.back().isTensor()) {
    throw std::runtime_error(source() + ": forward did not return a Tensor");
  }
  return std::move(stack.back()).toTensor();
}

TorchArchive open_torchscript(const fs::path& path, c10::Device device) {
  const std::string source = path.string();
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(ErrorCode::kFileNotFound, source + ": no such file");
  if (!fs::is_regular_file(status)) {
    throw Error(ErrorCode::kNotTorchScript, source + ": not a regular file, so not a TorchScript archive");
  }

  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ErrorCode::kFileNotFound, source + ": cannot be opened for reading");
    char magic[sizeof kZipMagic] = {};
    in.read(magic, sizeof magic);
    if (in.gcount() != static_cast<std::streamsize>(sizeof magic) || std::memcmp(magic, kZipMagic, sizeof magic) != 0) {
      throw Error(ErrorCode::kNotTorchScript, source + ": not a TorchScript archive (no zip header)");
    }
  }

  // A zip header but an unreadable directory: the file was cut short (e.g. copied while being written).
  bool has_metadata = false;
  try {
    caffe2::serialize::PyTorchStreamReader reader(source);
    if (!reader.hasRecord("constants.pkl")) {
      throw Error(ErrorCode::kNotTorchScript,
                  source +
                      ": a zip archive without TorchScript code (a torch.save() checkpoint? export with "
                      "torch.jit.script or torch.jit.trace)");
    }
    has_metadata = reader.hasRecord(std::string("extra/") + kMetadataFileName);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kTruncatedArchive,
                source + ": truncated or damaged zip archive (" + torch_error_line(e) + ")");
  }
  if (!has_metadata) {
    throw Error(ErrorCode::kMissingMetadata,
                source + ": no " + kMetadataFileName + " in the archive (export it with scripts/export_model.py)");
  }

  TorchArchive archive;
  archive.device = device;
  torch::jit::ExtraFilesMap extra_files{{kMetadataFileName, ""}};
  try {
    archive.module = torch::jit::load(source, device, extra_files);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kNotTorchScript, source + ": torch::jit::load failed: " + torch_error_line(e));
  }
  archive.module.eval();
  archive.metadata = parse_metadata(extra_files[kMetadataFileName], source);
  check_forward_signature(archive.module, source);
  return archive;
}

std::shared_ptr<const TorchModel> finish_torch_model(TorchArchive archive, const std::string& source,
                                                     const LoadOptions& options) {
  ModelMetadata& meta = archive.metadata;
  const std::size_t width = meta.input_names.size();
  if (options.expected_input_width != 0 && width != options.expected_input_width) {
    throw Error(ErrorCode::kWidthMismatch, source + ": model has " + std::to_string(width) +
                                               " input features, the pipeline expects " +
                                               std::to_string(options.expected_input_width));
  }
  if (!options.expected_schema_hash.empty() && meta.feature_schema_hash != options.expected_schema_hash) {
    throw Error(ErrorCode::kSchemaMismatch, source + ": feature schema hash is '" + meta.feature_schema_hash +
                                                "', the pipeline's is '" + options.expected_schema_hash + "'");
  }
  if (!(options.golden_tolerance >= 0.0f)) {
    throw Error(ErrorCode::kInvalidConfig, source + ": golden_tolerance must be >= 0");
  }

  torch::jit::Module module = std::move(archive.module);
  module.eval();
  if (options.optimize_for_inference) {
    try {
      torch::jit::Module frozen = torch::jit::freeze(module);
      module = torch::jit::optimize_for_inference(frozen);
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kModelError, source + ": freeze/optimize_for_inference failed: " + torch_error_line(e));
    }
  }
  const std::uint64_t version = options.version.value_or(meta.version);
  auto model = std::make_shared<const TorchModel>(std::move(module), archive.device, std::move(meta), version, source);
  check_golden(*model, options.golden_tolerance);
  warm_up(*model, options.warmup_batch_sizes);
  return model;
}

}  // namespace internal

// ---- public API ----

ModelMetadata parse_metadata(std::string_view json_text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    malformed(source, std::string("invalid JSON: ") + e.what());
  }
  if (!doc.is_object()) malformed(source, std::string("top level must be an object, got ") + doc.type_name());

  ModelMetadata meta;
  // format_version first: a future format is reported as such, not as a missing field.
  const json& format = require(doc, "format_version", source);
  if (!format.is_number_integer()) mistyped(source, "format_version", "an integer", format);
  if (format.get<std::int64_t>() != kMetadataFormatVersion) {
    malformed(source, "field 'format_version' is " + format.dump() + ", this build reads " +
                          std::to_string(kMetadataFormatVersion));
  }
  meta.format_version = kMetadataFormatVersion;
  meta.name = string_field(doc, "name", source, /*allow_empty=*/false);
  const json& version = require(doc, "version", source);
  if (!version.is_number_unsigned()) mistyped(source, "version", "a non-negative integer", version);
  meta.version = version.get<std::uint64_t>();
  meta.input_names = names_field(doc, "input_names", source);
  meta.output_names = names_field(doc, "output_names", source);
  meta.feature_schema_hash = string_field(doc, "feature_schema_hash", source, /*allow_empty=*/false);
  const json& golden = require(doc, "golden", source);
  if (!golden.is_object()) mistyped(source, "golden", "an object", golden);
  meta.golden_inputs = rows_field(golden, "inputs", meta.input_names.size(), "input_names", source);
  meta.golden_outputs = rows_field(golden, "outputs", meta.output_names.size(), "output_names", source);
  if (meta.golden_inputs.size() != meta.golden_outputs.size()) {
    malformed(source, "field 'golden.inputs' has " + std::to_string(meta.golden_inputs.size()) +
                          " rows but 'golden.outputs' has " + std::to_string(meta.golden_outputs.size()));
  }
  return meta;
}

std::shared_ptr<const Model> load_torchscript(const std::filesystem::path& path, const LoadOptions& options) {
  const c10::Device device = internal::parse_device(options.device);
  return internal::finish_torch_model(internal::open_torchscript(path, device), path.string(), options);
}

std::vector<float> run_model(const Model& model, const std::vector<float>& inputs, std::size_t rows) {
  const auto* torch_model = dynamic_cast<const internal::TorchModel*>(&model);
  if (torch_model == nullptr)
    throw std::invalid_argument("run_model: " + model.source() + " is not a TorchScript model");
  const std::size_t width = model.input_width();
  if (inputs.size() != rows * width) {
    throw std::invalid_argument("run_model: " + std::to_string(inputs.size()) + " values are not " +
                                std::to_string(rows) + " rows of " + std::to_string(width));
  }
  if (rows == 0) return {};
  // clone(): forward may write to its input, and from_blob would alias the caller's const vector.
  const auto input = torch::from_blob(const_cast<float*>(inputs.data()), {to_i64(rows), to_i64(width)}, torch::kFloat)
                         .clone()
                         .to(torch_model->device());
  torch::Tensor output;
  try {
    output = torch_model->forward(input);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kModelError, model.source() + ": forward failed: " + torch_error_text(e));
  }
  output = output.to(torch::kCPU, torch::kFloat).contiguous();
  const std::size_t count = rows * model.output_width();
  if (output.dim() == 0 || output.size(0) != to_i64(rows) || static_cast<std::size_t>(output.numel()) != count) {
    throw Error(ErrorCode::kModelError, model.source() + ": forward returned shape " + shape_of(output) + " for " +
                                            std::to_string(rows) + " rows, expected " +
                                            std::to_string(model.output_width()) + " outputs per row");
  }
  const float* data = output.data_ptr<float>();
  return std::vector<float>(data, data + count);
}

}  // namespace tickinfer
