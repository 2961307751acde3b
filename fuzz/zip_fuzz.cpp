// Zip archives through ByteSource (libzip) and LobsterReader::open_zip (a path only: temp file first).
// Input: the archive.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/feed/byte_source.hpp"
#include "tickinfer/feed/lobster.hpp"

using namespace tickinfer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = fuzz::write_temp(std::string_view(reinterpret_cast<const char*>(data), size), ".zip");
  try {
    const auto members = feed::ByteSource::zip_members(path);
    std::size_t n = 0;
    for (const auto& member : members) {
      if (++n > 8) break;
      try {
        const auto source = feed::ByteSource::from_zip_member(path, member);
        std::size_t sum = 0;
        for (const char c : source.bytes()) sum += static_cast<unsigned char>(c);
        (void)sum;
      } catch (const Error&) {
      }
    }
  } catch (const Error&) {
  }
  try {
    feed::LobsterOptions options;
    options.policy = feed::ParsePolicy::kSkip;
    auto reader = feed::LobsterReader::open_zip(path, options);
    feed::Event event;
    std::size_t calls = 0;
    while (reader.next(event)) fuzz::check_progress(++calls, size);
  } catch (const Error&) {
  }
  return 0;
}
