// A TorchScript archive's metadata JSON through tickinfer::parse_metadata. Input: the JSON text.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tickinfer/error.hpp"
#include "tickinfer/torchscript.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    (void)tickinfer::parse_metadata(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.pt");
  } catch (const tickinfer::Error&) {
  }
  return 0;
}
