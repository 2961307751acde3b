// NASDAQ TotalView-ITCH 5.0 (BinaryFILE framing) through ItchReader.
// Input: flags byte (bit 0: kSkip, else kStop; bit 1: read() in blocks), then the file.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/feed/itch.hpp"

using namespace tickinfer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = fuzz::split_flags(data, size);
  feed::ItchOptions options;
  options.policy = (in.flags & 1) ? feed::ParsePolicy::kSkip : feed::ParsePolicy::kStop;
  try {
    feed::ItchReader reader(feed::ByteSource::from_string("fuzz.itch", std::string(in.rest)), options);
    (void)reader.scan_directory();
    std::array<feed::Event, 5> block;
    std::size_t calls = 0;
    for (bool more = true; more;) {
      fuzz::check_progress(++calls, size);
      try {
        if (in.flags & 2) {
          more = reader.read(block) != 0;
        } else {
          feed::Event event;
          more = reader.next(event);
        }
      } catch (const Error&) {
      }
    }
    (void)reader.symbols();
  } catch (const Error&) {
  }
  return 0;
}
