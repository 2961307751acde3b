// TorchScript archives: structure and metadata checks, freezing, golden check and warm-up.

#include "tickinfer/torchscript.hpp"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "model/archive.hpp"
#include "model/load_checks.hpp"
#include "model/native/plan.hpp"
#include "model/native/torchscript_frontend.hpp"
#include "model/torch_error.hpp"
#include "model/torch_model.hpp"
#include "model/weights.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The profiling executor specialises the graph over its first runs; a few per batch size get that done
// before the model serves.
constexpr int kWarmupRuns = 3;

using internal::Bytes;
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

void check_forward_signature(const torch::jit::Module& module, const ModelMetadata& meta, const std::string& source) {
  const auto method = module.find_method("forward");
  if (!method) throw Error(ErrorCode::kNotTorchScript, source + ": the TorchScript module has no forward()");
  const c10::FunctionSchema& schema = method->function().getSchema();
  const auto& tensor = *c10::TensorType::get();
  const auto& args = schema.arguments();
  const auto& returns = schema.returns();
  auto is_tensor = [&](const c10::TypePtr& type) { return type->isSubtypeOf(tensor); };
  bool ok;
  if (meta.state_names.empty()) {
    ok = args.size() == 2 && is_tensor(args[1].type()) && returns.size() == 1 && is_tensor(returns[0].type());
  } else {
    const auto tuple = returns.size() == 1 ? returns[0].type()->cast<c10::TupleType>() : nullptr;
    ok = args.size() == 3 && is_tensor(args[1].type()) && is_tensor(args[2].type()) && tuple &&
         tuple->elements().size() == 2 && is_tensor(tuple->elements()[0]) && is_tensor(tuple->elements()[1]);
  }
  if (!ok) {
    std::ostringstream signature;
    signature << schema;
    throw Error(ErrorCode::kUnsupported,
                source +
                    (meta.state_names.empty() ? ": forward must take one Tensor and return one Tensor, it is "
                                              : ": a model with state_names must have forward(x: Tensor, h: Tensor) -> "
                                                "Tuple[Tensor, Tensor], it is ") +
                    signature.str());
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

std::string join_names(const std::vector<std::string>& names) {
  std::string out = "[";
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out + "]";
}

// The served version's interface (when given): outputs and input names must not change under a running pipeline.
void check_interface(const ModelMetadata& meta, const std::string& source, const LoadOptions& options) {
  const auto differ = [&](const char* what, const std::vector<std::string>& got, const std::vector<std::string>& want) {
    throw Error(ErrorCode::kInterfaceMismatch,
                source + ": " + what + " " + join_names(got) + " (" + std::to_string(got.size()) +
                    ") differ from the served model's " + join_names(want) + " (" + std::to_string(want.size()) +
                    "); set RegistryConfig::allow_interface_change to accept the change");
  };
  if (!options.expected_input_names.empty() && meta.input_names != options.expected_input_names) {
    differ("input names", meta.input_names, options.expected_input_names);
  }
  if (!options.expected_output_names.empty() && meta.output_names != options.expected_output_names) {
    differ("outputs", meta.output_names, options.expected_output_names);
  }
  if (options.expected_state_names && meta.state_names != *options.expected_state_names) {
    if (meta.state_names.empty() || options.expected_state_names->empty()) {
      throw Error(ErrorCode::kInterfaceMismatch,
                  source + ": " + (meta.state_names.empty() ? "a stateless model" : "a sequence model") +
                      " cannot replace a " + (meta.state_names.empty() ? "sequence" : "stateless") +
                      " model; set RegistryConfig::allow_interface_change to accept the change");
    }
    differ("state names", meta.state_names, *options.expected_state_names);
  }
}

bool same_value(float got, float reference, float tolerance) {
  return std::abs(got - reference) <= tolerance * std::max(1.0f, std::abs(reference));
}

// Output `column` of a packed row: an output, or (a sequence model) the new state after them.
const std::string& packed_output_name(const ModelMetadata& meta, std::size_t column) {
  return column < meta.output_names.size() ? meta.output_names[column]
                                           : meta.state_names.at(column - meta.output_names.size());
}

std::string output_label(const ModelMetadata& meta, std::size_t row, std::size_t column) {
  const char* kind = column < meta.output_names.size() ? ", output " : ", new state ";
  return "row " + std::to_string(row) + kind + std::to_string(column) + " ('" + packed_output_name(meta, column) + "')";
}

// Runs `input` ([batch, width]) and checks the result's shape and finiteness; returns it on the CPU.
torch::Tensor checked_forward(const internal::TorchModel& model, const torch::Tensor& input, const std::string& when) {
  torch::Tensor output;
  try {
    output = model.forward(input);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kModelError, model.source() + ": forward failed " + when + ": " + torch_error_text(e));
  }
  output = output.to(torch::kCPU, torch::kFloat).contiguous();
  const std::int64_t rows = input.size(0);
  const auto out_width = to_i64(model.packed_output_width());
  if (output.dim() != 2 || output.size(0) != rows || output.size(1) != out_width) {
    throw Error(ErrorCode::kShapeMismatch, model.source() + ": " + when + ", forward returned shape " +
                                               shape_of(output) + ", expected [" + std::to_string(rows) + ", " +
                                               std::to_string(out_width) + "]");
  }
  const float* got = output.data_ptr<float>();
  const std::size_t width = model.packed_output_width();
  for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) {
    for (std::size_t c = 0; c < width; ++c) {
      const float value = got[r * width + c];
      if (!std::isfinite(value)) {
        throw Error(
            ErrorCode::kNonFiniteOutput,
            model.source() + ": " + when + ", " + output_label(model.metadata(), r, c) + " is " + format_value(value));
      }
    }
  }
  return output;
}

void check_golden(const internal::TorchModel& model, float tolerance) {
  const ModelMetadata& meta = model.metadata();
  const std::size_t rows = meta.golden_inputs.size();
  if (rows == 0) return;
  const std::size_t out_width = model.packed_output_width();
  torch::Tensor output;
  try {
    output = model.forward(rows_tensor(meta.golden_inputs, rows, model.packed_input_width(), model.device()));
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
      const std::string where = "golden " + output_label(meta, r, c);
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

// What each golden row gives on its own (batch 1), after proving the same inputs give the same outputs twice.
// Both are what the warm-up compares every batch against.
std::vector<std::vector<float>> reference_rows(const internal::TorchModel& model, float tolerance) {
  const ModelMetadata& meta = model.metadata();
  const std::size_t rows = meta.golden_inputs.size();
  const std::size_t out_width = model.packed_output_width();
  std::vector<std::vector<float>> reference;
  if (rows == 0) return reference;
  const auto input = rows_tensor(meta.golden_inputs, rows, model.packed_input_width(), model.device());
  const auto first = checked_forward(model, input, "on the golden inputs");
  const auto second = checked_forward(model, input, "on the golden inputs, run again");
  const float* a = first.data_ptr<float>();
  const float* b = second.data_ptr<float>();
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < out_width; ++c) {
      if (!same_value(b[r * out_width + c], a[r * out_width + c], tolerance)) {
        throw Error(ErrorCode::kNondeterministic,
                    model.source() + ": the golden inputs run twice give different outputs: " +
                        output_label(meta, r, c) + " was " + format_value(a[r * out_width + c]) + ", then " +
                        format_value(b[r * out_width + c]) + " (does forward keep state between calls?)");
      }
    }
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const auto single =
        checked_forward(model, rows_tensor({meta.golden_inputs[r]}, 1, model.packed_input_width(), model.device()),
                        "at batch size 1 (golden row " + std::to_string(r) + " alone)");
    const float* got = single.data_ptr<float>();
    for (std::size_t c = 0; c < out_width; ++c) {
      if (!same_value(got[c], a[r * out_width + c], tolerance)) {
        throw Error(ErrorCode::kNondeterministic,
                    model.source() + ": golden " + output_label(meta, r, c) + " is " + format_value(got[c]) +
                        " alone and " + format_value(a[r * out_width + c]) + " in a batch of " + std::to_string(rows) +
                        " (rows of a batch must not depend on each other)");
      }
    }
    reference.emplace_back(got, got + out_width);
  }
  return reference;
}

// Warm-up that checks what it runs: every output of every run at every batch size.
void warm_up(const internal::TorchModel& model, const std::vector<std::size_t>& batch_sizes,
             const std::vector<std::vector<float>>& reference, float tolerance) {
  const ModelMetadata& meta = model.metadata();
  const std::size_t out_width = model.packed_output_width();
  for (const std::size_t batch : batch_sizes) {
    if (batch == 0) continue;
    const auto input = rows_tensor(meta.golden_inputs, batch, model.packed_input_width(), model.device());
    const std::string when = "during warm-up at batch size " + std::to_string(batch);
    for (int run = 0; run < kWarmupRuns; ++run) {
      const auto output = checked_forward(model, input, when);
      if (reference.empty()) continue;
      const float* got = output.data_ptr<float>();
      for (std::size_t r = 0; r < batch; ++r) {
        const std::vector<float>& alone = reference[r % reference.size()];
        for (std::size_t c = 0; c < out_width; ++c) {
          if (!same_value(got[r * out_width + c], alone[c], tolerance)) {
            throw Error(ErrorCode::kNondeterministic, model.source() + ": " + when + ", " + output_label(meta, r, c) +
                                                          " is " + format_value(got[r * out_width + c]) +
                                                          ", the same row alone gives " + format_value(alone[c]) +
                                                          " (rows of a batch must not depend on each other)");
          }
        }
      }
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

OpenedCheckpoint open_checkpoint(const Bytes& bytes, const std::string& source, c10::Device device,
                                 const LoadOptions& options, const TorchArchive* weights_base,
                                 const std::string& no_base_reason) {
  const std::int64_t start = now_ns();
  // Every member bounded before LibTorch inflates any of them (it allocates what the directory declares).
  check_member_sizes(zip_members(*bytes, source), source, options);

  OpenedCheckpoint opened;
  bool has_metadata = false;
  try {
    caffe2::serialize::PyTorchStreamReader reader(std::make_shared<BytesReader>(bytes));
    if (reader.hasRecord("constants.pkl")) {
      opened.kind = CheckpointKind::kTorchScript;
    } else if (reader.hasRecord("data.pkl")) {
      opened.kind = CheckpointKind::kWeights;
    } else {
      throw Error(ErrorCode::kNotTorchScript, source + ": a zip archive that is neither TorchScript nor torch.save()");
    }
    has_metadata = reader.hasRecord(std::string("extra/") + kMetadataFileName);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kTruncatedArchive,
                source + ": truncated or damaged zip archive (" + torch_error_line(e) + ")");
  }

  if (opened.kind == CheckpointKind::kWeights) {
    if (weights_base == nullptr && !no_base_reason.empty()) {
      throw Error(ErrorCode::kUnsupported, source +
                                               ": a weights-only checkpoint is applied onto the served "
                                               "version's TorchScript architecture, and " +
                                               no_base_reason);
    }
    if (weights_base == nullptr) {
      throw Error(ErrorCode::kNotTorchScript,
                  source +
                      ": a zip archive without TorchScript code (a torch.save() checkpoint? export with "
                      "torch.jit.script or torch.jit.trace)");
    }
    opened.archive = apply_weights(*weights_base, read_weights(bytes, source), source);
    opened.read_ns = now_ns() - start;
    return opened;
  }
  if (!has_metadata) {
    throw Error(ErrorCode::kMissingMetadata,
                source + ": no " + kMetadataFileName + " in the archive (export it with scripts/export_model.py)");
  }
  opened.archive.device = device;
  torch::jit::ExtraFilesMap extra_files{{kMetadataFileName, ""}};
  try {
    opened.archive.module = torch::jit::load(std::make_shared<BytesReader>(bytes), device, extra_files);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kNotTorchScript, source + ": torch::jit::load failed: " + torch_error_line(e));
  }
  opened.archive.module.eval();
  opened.archive.metadata = parse_metadata(extra_files[kMetadataFileName], source);
  check_forward_signature(opened.archive.module, opened.archive.metadata, source);
  opened.read_ns = now_ns() - start;
  return opened;
}

// The native plan against LibTorch's forward on the golden rows and on seeded random rows at every warm-up batch
// size. Throws Error(kGoldenMismatch) naming the batch size, row, output and both values.
void validate_native_against_libtorch(const TorchModel& model, const std::shared_ptr<const native::Plan>& plan,
                                      const LoadOptions& options) {
  const std::size_t in_w = model.input_width(), out_w = model.output_width();
  if (plan->input_width() != in_w || plan->output_width() != out_w) {
    throw Error(ErrorCode::kShapeMismatch, model.source() + ": native plan maps " +
                                               std::to_string(plan->input_width()) + " -> " +
                                               std::to_string(plan->output_width()) + ", the model " +
                                               std::to_string(in_w) + " -> " + std::to_string(out_w));
  }
  std::vector<std::size_t> sizes = options.warmup_batch_sizes;
  const std::size_t golden_rows = model.metadata().golden_inputs.size();
  if (golden_rows > 0) sizes.insert(sizes.begin(), golden_rows);
  std::size_t max_rows = 1;
  for (const std::size_t s : sizes) max_rows = std::max(max_rows, s);
  native::Executor exec(plan, max_rows);
  std::mt19937 rng(20261201);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  bool first = golden_rows > 0;
  for (const std::size_t rows : sizes) {
    if (rows == 0) continue;
    std::vector<float> input(rows * in_w);
    if (first) {  // the golden rows themselves
      for (std::size_t r = 0; r < rows; ++r)
        std::copy_n(model.metadata().golden_inputs[r].data(), in_w, input.data() + r * in_w);
    } else {
      for (float& v : input) v = dist(rng);
    }
    std::vector<float> native_out(rows * out_w);
    exec.run(input.data(), rows, native_out.data());
    const std::vector<float> reference = run_model(model, input, rows);
    for (std::size_t i = 0; i < native_out.size(); ++i) {
      const float got = native_out[i], want = reference[i];
      if (!(std::abs(got - want) <= 1e-5f * std::max(1.0f, std::abs(want)))) {
        throw Error(ErrorCode::kGoldenMismatch,
                    model.source() + ": native plan refused: " + (first ? "golden rows" : "random rows") +
                        " at batch size " + std::to_string(rows) + ", row " + std::to_string(i / out_w) + ", output " +
                        std::to_string(i % out_w) + ": native " + format_value(got) + ", LibTorch " +
                        format_value(want));
      }
    }
    first = false;
  }
}

void check_expected(const ModelMetadata& meta, const std::string& source, const LoadOptions& options) {
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
  check_interface(meta, source, options);
  if (!(options.golden_tolerance >= 0.0f)) {
    throw Error(ErrorCode::kInvalidConfig, source + ": golden_tolerance must be >= 0");
  }
}

LoadedCheckpoint finish_checkpoint(OpenedCheckpoint opened, const std::string& source, const LoadOptions& options,
                                   bool keep_architecture) {
  const std::int64_t start = now_ns();
  TorchArchive& archive = opened.archive;
  ModelMetadata& meta = archive.metadata;
  const std::size_t width = meta.input_names.size();
  check_expected(meta, source, options);

  LoadedCheckpoint loaded;
  loaded.kind = opened.kind;
  loaded.timings.read_ns = opened.read_ns;
  // Freezing consumes the module; later weights-only files are applied onto this unfrozen copy.
  if (keep_architecture) loaded.architecture = TorchArchive{archive.module.clone(), archive.device, meta};
  // The native engine reads the module before any backend rewrite (from_torchscript freezes its own copy).
  std::optional<native::Graph> native_graph;
  std::string native_refusal;
  if (options.engine != Engine::kLibTorch && !meta.state_names.empty()) {
    native_refusal = source +
                     ": a sequence model (forward(x, h) with state_names) runs on LibTorch: the native "
                     "engine has no recurrent state";
    if (options.engine == Engine::kNative) throw Error(ErrorCode::kUnsupported, native_refusal);
  } else if (options.engine != Engine::kLibTorch) {
    if (!archive.device.is_cpu()) {
      if (options.engine == Engine::kNative)
        throw Error(ErrorCode::kUnsupported,
                    source + ": the native engine runs on the CPU, not " + archive.device.str());
    } else {
      try {
        native_graph = native::from_torchscript(archive.module, width, source);
      } catch (const Error& e) {
        if (options.engine == Engine::kNative) throw;
        native_refusal = e.what();
      }
    }
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
  auto model = std::make_shared<TorchModel>(std::move(module), archive.device, std::move(meta), version, source);
  check_golden(*model, options.golden_tolerance);
  const auto reference = reference_rows(*model, options.golden_tolerance);
  const std::int64_t warmup_start = now_ns();
  loaded.timings.check_ns = warmup_start - start;
  warm_up(*model, options.warmup_batch_sizes, reference, options.golden_tolerance);
  loaded.timings.warmup_ns = now_ns() - warmup_start;
  // The native engine, once LibTorch's model has passed every check: it must compute what LibTorch computes.
  if (native_graph) {
    try {
      auto plan = native::Plan::compile(*native_graph);
      validate_native_against_libtorch(*model, plan, options);
      model->use_native(std::move(plan));
    } catch (const Error& e) {
      if (options.engine == Engine::kNative) throw;
      model->note_libtorch(e.what());
    }
  } else if (!native_refusal.empty()) {
    model->note_libtorch(std::move(native_refusal));
  }
  loaded.model = std::move(model);
  return loaded;
}

}  // namespace internal

// ---- public API ----

const char* to_string(Engine engine) noexcept {
  switch (engine) {
    case Engine::kAuto:
      return "auto";
    case Engine::kNative:
      return "native";
    case Engine::kLibTorch:
      return "libtorch";
  }
  return "unknown";
}

const char* to_string(CheckpointKind kind) noexcept {
  switch (kind) {
    case CheckpointKind::kTorchScript:
      return "torchscript";
    case CheckpointKind::kWeights:
      return "weights";
    case CheckpointKind::kOnnx:
      return "onnx";
  }
  return "unknown";
}

Engine parse_engine(std::string_view text) {
  for (const Engine e : {Engine::kAuto, Engine::kNative, Engine::kLibTorch})
    if (text == to_string(e)) return e;
  throw Error(ErrorCode::kInvalidConfig, "engine '" + std::string(text) + "': expected auto, native or libtorch");
}

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
  if (doc.contains("state_names")) meta.state_names = names_field(doc, "state_names", source);
  meta.feature_schema_hash = string_field(doc, "feature_schema_hash", source, /*allow_empty=*/false);
  const json& golden = require(doc, "golden", source);
  if (!golden.is_object()) mistyped(source, "golden", "an object", golden);
  // A sequence model's golden rows are packed: features then state in, outputs then new state out.
  const std::size_t state = meta.state_names.size();
  meta.golden_inputs = rows_field(golden, "inputs", meta.input_names.size() + state,
                                  state ? "input_names + state_names" : "input_names", source);
  meta.golden_outputs = rows_field(golden, "outputs", meta.output_names.size() + state,
                                   state ? "output_names + state_names" : "output_names", source);
  if (meta.golden_inputs.size() != meta.golden_outputs.size()) {
    malformed(source, "field 'golden.inputs' has " + std::to_string(meta.golden_inputs.size()) +
                          " rows but 'golden.outputs' has " + std::to_string(meta.golden_outputs.size()));
  }
  return meta;
}

std::shared_ptr<const Model> load_torchscript(const std::filesystem::path& path, const LoadOptions& options) {
  const c10::Device device = internal::parse_device(options.device);
  const std::string source = path.string();
  const auto bytes = internal::read_checkpoint_file(path, options.max_archive_bytes);
  auto opened = internal::open_checkpoint(bytes, source, device, options, /*weights_base=*/nullptr);
  return internal::finish_checkpoint(std::move(opened), source, options, /*keep_architecture=*/false).model;
}

std::vector<float> run_model(const Model& model, const std::vector<float>& inputs, std::size_t rows) {
  const auto* torch_model = dynamic_cast<const internal::TorchModel*>(&model);
  if (torch_model == nullptr)
    throw std::invalid_argument("run_model: " + model.source() + " is not a TorchScript model");
  const std::size_t width = model.packed_input_width();
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
  const std::size_t count = rows * model.packed_output_width();
  if (output.dim() == 0 || output.size(0) != to_i64(rows) || static_cast<std::size_t>(output.numel()) != count) {
    throw Error(ErrorCode::kModelError, model.source() + ": forward returned shape " + shape_of(output) + " for " +
                                            std::to_string(rows) + " rows, expected " +
                                            std::to_string(model.output_width()) + " outputs per row");
  }
  const float* data = output.data_ptr<float>();
  return std::vector<float>(data, data + count);
}

}  // namespace tickinfer
