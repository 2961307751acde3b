// Tardis.dev normalized CSV (trades or quotes) through TardisReader.
// Input: flags byte (bit 0: kSkip, else kStop; bit 1: local timestamps; bits 2-6: price/qty decimals, 0..31,
// beyond 18 refused), then the CSV.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/feed/tardis.hpp"

using namespace tickinfer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = fuzz::split_flags(data, size);
  feed::TardisOptions options;
  options.policy = (in.flags & 1) ? feed::ParsePolicy::kSkip : feed::ParsePolicy::kStop;
  options.use_local_timestamp = (in.flags & 2) != 0;
  if (in.flags & 0x80) {  // otherwise the defaults
    options.price_decimals = (in.flags >> 2) & 31;
    options.qty_decimals = 31 - options.price_decimals;
  }
  try {
    feed::TardisReader reader(feed::ByteSource::from_string("fuzz.csv", std::string(in.rest)), options);
    (void)reader.scan_symbols();
    std::size_t calls = 0;
    for (bool more = true; more;) {
      fuzz::check_progress(++calls, size);
      try {
        feed::Event event;
        more = reader.next(event);
      } catch (const Error&) {
      }
    }
    (void)reader.symbols();
  } catch (const Error&) {
    // Unknown header, or decimals beyond 0..18.
  }
  return 0;
}
