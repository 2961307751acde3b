// The admin server's request handling: Beast's bounded request parser, then routing, the bearer-token check and
// the JSON and Prometheus bodies (internal::answer_bytes, what a session does with the bytes it reads), over a
// served model and no registry. Input: the raw bytes of one request (1 KiB header and body limits).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "serve/http_message.hpp"
#include "serve/router.hpp"
#include "serve/server_counters.hpp"
#include "tickinfer/model.hpp"
#include "tickinfer/model_slot.hpp"

namespace {

class FuzzModel final : public tickinfer::Model {
 public:
  FuzzModel() : Model(metadata(), 3, "fuzz.pt", "native") {}

 private:
  static tickinfer::ModelMetadata metadata() {
    tickinfer::ModelMetadata md;
    md.format_version = tickinfer::kMetadataFormatVersion;
    md.name = "m";
    md.version = 3;
    md.input_names = {"a", "b"};
    md.output_names = {"y"};
    return md;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tickinfer::internal;
  static tickinfer::ModelSlot slot(std::make_shared<FuzzModel>());
  static ServerCounters counters;
  static Router router({.slot = &slot}, "fuzz-token", counters, [](const tickinfer::LogRecord&) {});
  const auto response = answer_bytes(router, std::string_view(reinterpret_cast<const char*>(data), size), 1024, 1024);
  if (!response) return 0;
  // Every answer is a real status, and every error has the {"error": ...} body.
  if (response->status < 200 || response->status > 599) std::abort();
  if (response->status >= 400 && response->body.rfind("{\"error\":", 0) != 0) std::abort();
  return 0;
}
