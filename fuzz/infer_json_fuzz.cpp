// The KServe v2 inference request decoder (serve/infer_json.*, Torch-free: compiled into this target) against a
// model of 2 features, outputs "outputs" (1) and "state" (2), at most 4 rows. Input: a request body.
// Findings beyond ASan/UBSan: an exception (the decoder returns its refusals), a refusal that is empty, longer
// than 1 KiB or not UTF-8, a syntax verdict that differs from nlohmann's own parser, an accepted request whose
// values are not rows * width or whose outputs are not the model's, and a round trip (encode the values, decode
// that) that does not give back the same bits and id.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "serve/infer_json.hpp"

namespace {

using tickinfer::internal::InferOutput;
using tickinfer::internal::InferRequest;
using tickinfer::internal::InferSpec;

const InferSpec& fuzz_spec() {
  static const InferSpec spec = [] {
    InferSpec s;
    s.input_width = 2;
    s.outputs = {{"outputs", 1}, {"state", 2}};
    s.max_rows = 4;
    return s;
  }();
  return spec;
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tickinfer::internal;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const InferSpec& spec = fuzz_spec();
  static InferRequest request;  // reused, as a server reuses one per connection
  const std::optional<std::string> error = decode_infer_request(body, spec, request);

  // nlohmann's own verdict on the syntax; 406 (a number beyond double's range) is a syntax error to it.
  const bool json_ok = nlohmann::json::accept(body.begin(), body.end());
  if (error) {
    if (error->empty() || error->size() > 1024) std::abort();
    // dump() throws on invalid UTF-8: every reason must be writable as the {"error": ...} body.
    (void)nlohmann::json(*error).dump();
    const bool syntax = starts_with(*error, "malformed JSON at byte ");
    const bool overflow = error->find("is not a finite FP32 number") != std::string::npos;
    if (syntax && json_ok) std::abort();
    if (!syntax && !json_ok && !overflow) std::abort();
    return 0;
  }
  if (!json_ok) std::abort();
  if (request.rows < 1 || request.rows > spec.max_rows) std::abort();
  if (request.values.size() != request.rows * spec.input_width) std::abort();
  if (request.outputs.empty()) std::abort();
  for (const std::size_t o : request.outputs) {
    if (o >= spec.outputs.size()) std::abort();
  }
  if (!request.has_id && !request.id.empty()) std::abort();

  // Encode the values as a tensor named like the input, make that response a request, decode it: same bits.
  const InferOutput tensor{spec.input_name, spec.input_width, request.values};
  std::string response;
  encode_infer_response(response, "m", 1, request.has_id ? std::optional<std::string_view>(request.id) : std::nullopt,
                        request.rows, std::span(&tensor, 1));
  const std::size_t at = response.find("\"outputs\":[");
  if (at == std::string::npos) std::abort();
  response.replace(at, 11, "\"inputs\":[");
  InferRequest again;
  if (decode_infer_request(response, spec, again)) std::abort();
  if (again.rows != request.rows || again.has_id != request.has_id || again.id != request.id) std::abort();
  if (std::memcmp(again.values.data(), request.values.data(), request.values.size() * sizeof(float)) != 0) {
    std::abort();
  }
  return 0;
}
