#pragma once
// The KServe v2 HTTP/JSON inference protocol's bodies for `POST /v2/models/{m}/infer`: decoding a request into
// rows of FP32 features, encoding the outputs. No sockets, no pipeline: the server (or a daemon) calls these with
// the body it read and the model it serves. Needs only nlohmann_json (private to the .cpp) and the core's headers.
// Internal.
//
// Request (KServe v2 "inference request JSON object"):
//   {"id"?: string, "parameters"?: object,
//    "inputs": [{"name": "features", "shape": [rows, width] | [width], "datatype": "FP32",
//                "data": [flat row-major numbers] | [[width numbers] x rows], "parameters"?: object}],
//    "outputs"?: [{"name": "outputs", "parameters"?: object}]}
// Response:
//   {"model_name": m, "model_version": "7", "id"?: id,
//    "outputs": [{"name": "outputs", "datatype": "FP32", "shape": [rows, width], "data": [flat row-major]}]}

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tickinfer/model.hpp"

namespace tickinfer::internal {

/// The tensor names the admin server's model metadata announces (`GET /v2/models/{m}`): one input of the
/// features, one output of the model's outputs, each [-1, width].
inline constexpr std::string_view kInferInputName = "features";
inline constexpr std::string_view kInferOutputName = "outputs";

/// One output tensor of the model: its name and its width (values per row).
struct InferTensorSpec {
  std::string name;
  std::size_t width = 0;
};

/// What a request is checked against: the served model's interface and a bound on rows.
struct InferSpec {
  std::string input_name{kInferInputName};
  std::size_t input_width = 0;           // the feature width (Model::input_width()); at least 1
  std::vector<InferTensorSpec> outputs;  // e.g. {{"outputs", model.output_width()}}
  std::size_t max_rows = 1;              // a request with more rows is refused; at least 1
};

/// The spec of a served model as the admin server's metadata (`GET /v2/models/{m}`) announces it: one input
/// kInferInputName of model.input_width() features, one output kInferOutputName of model.output_width() values.
inline InferSpec infer_spec_for(const Model& model, std::size_t max_rows) {
  InferSpec spec;
  spec.input_width = model.input_width();
  spec.outputs = {{std::string(kInferOutputName), model.output_width()}};
  spec.max_rows = max_rows;
  return spec;
}

/// A decoded request. Reuse one per connection or thread: decoding clears and refills it, so after the first few
/// requests it allocates nothing for the values, the id or the output list (their capacity stays).
struct InferRequest {
  std::vector<float> values;         // rows * spec.input_width features, row-major
  std::size_t rows = 0;              // 1 for shape [width]
  bool has_id = false;               // the request carried "id" (echo it in the response)
  std::string id;                    // empty when !has_id
  std::vector<std::size_t> outputs;  // the outputs to return, as indices into spec.outputs, in the order asked; all
                                     // of them (in spec order) when the request names none ("outputs" absent or [])
};

/// Decodes `body` against `spec` into `request`. Returns nullopt on success, else the reason the request is
/// refused (for HTTP 400 `{"error": reason}`), e.g. `malformed JSON at byte 7: ...` (nlohmann's position and
/// message: bytes read, the offending one included), `unknown input 'x' (known:
/// 'features')`, `input 'features' has shape [1, 31]: width 31, the model's is 32`, `inputs[0].data[5]: 1e39 is
/// not a finite FP32 number`. The reason is valid UTF-8 (a byte it echoes that is not, from a malformed body or a
/// name cut at 64 bytes, reads "<FF>"). Never throws tickinfer::Error: errors are values (only std::bad_alloc
/// escapes). On refusal `request` holds unspecified contents.
///
/// Accepted: exactly one input, named spec.input_name, datatype "FP32", shape [rows, width] or [width] (one row)
/// with width == spec.input_width and 1 <= rows <= spec.max_rows, data flat (rows * width numbers) or nested as the
/// shape ([[...], ...], rows arrays of width numbers; [width]: flat only). Numbers are JSON integers or decimals,
/// each rounded to the nearest float (std::from_chars: correctly rounded, so what encode_infer_response prints
/// comes back bit for bit); one outside float's range (|x| > FLT_MAX after rounding, e.g. 1e39) is refused, one
/// below it rounds to a subnormal or zero. Requested outputs must be among spec.outputs, each once. Unknown keys are
/// ignored (KServe extensions); a repeated known key is refused. "parameters" must be objects; their contents are
/// not read.
///
/// Bounded: at most spec.max_rows * spec.input_width values are stored, whatever the body claims (more are counted
/// for the message, not stored). Allocates: nlohmann's lexer buffer and state stack, a few allocations per call
/// independent of the data's size; `request`'s members only when they grow; the reason on refusal. Thread-safe
/// (distinct requests).
[[nodiscard]] std::optional<std::string> decode_infer_request(std::string_view body, const InferSpec& spec,
                                                              InferRequest& request);

/// One tensor of a response: `data` holds rows * width values, row-major.
struct InferOutput {
  std::string_view name;
  std::size_t width = 0;
  std::span<const float> data;
};

/// Appends the response body to `out` (it does not clear it): `{"model_name":..., "model_version":"<version>",
/// "id":... (when `id` is given), "outputs":[{"name":..., "datatype":"FP32", "shape":[rows, width], "data":[...]}]}`.
/// Floats are printed shortest-round-trip (std::to_chars: decode_infer_request reads back the same bits; -0 is
/// written "-0.0" so its sign survives JSON integers); a NaN or infinity, which JSON cannot hold, is written null.
/// Strings are JSON-escaped (they are expected to be UTF-8, as a decoded id and the metadata's name are).
/// Allocates only when `out` must grow (reserve it, or reuse one string per connection); nothing per value.
/// Throws tickinfer::Error (kShapeMismatch) when an output's data is not rows * width values.
void encode_infer_response(std::string& out, std::string_view model_name, std::uint64_t model_version,
                           std::optional<std::string_view> id, std::size_t rows, std::span<const InferOutput> outputs);

}  // namespace tickinfer::internal
