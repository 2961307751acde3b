// tickinfer's binary capture through CaptureReader (a path only: the input goes to a temp file first).
// Input: the file.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/feed/capture.hpp"

using namespace tickinfer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = fuzz::write_temp(std::string_view(reinterpret_cast<const char*>(data), size), ".tcap");
  try {
    feed::CaptureReader reader(path, /*prefault=*/false);
    std::uint64_t sum = 0;  // unsigned: the records hold any bits, and signed overflow is UB
    for (const auto& event : reader.events()) {
      sum += static_cast<std::uint64_t>(event.ts_ns) + static_cast<std::uint64_t>(event.price) + event.order_id;
    }
    for (const auto& symbol : reader.symbols()) sum += symbol.name.size();
    (void)sum;
  } catch (const Error&) {
  }
  return 0;
}
