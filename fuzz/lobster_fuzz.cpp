// LOBSTER messages (+ optional orderbook) through LobsterReader.
// Input: flags byte (bit 0: kSkip, else kStop; bit 1: with an orderbook; bit 2: read() in blocks), then the
// message file, or with bit 1 a 2-byte length of the message file, the message file and the orderbook file.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_support.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/feed/lobster.hpp"

using namespace tickinfer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = fuzz::split_flags(data, size);
  feed::LobsterOptions options;
  options.policy = (in.flags & 1) ? feed::ParsePolicy::kSkip : feed::ParsePolicy::kStop;
  std::string_view messages = in.rest, book;
  if (in.flags & 2) fuzz::split_two(in.rest, messages, book);
  try {
    std::optional<feed::ByteSource> orderbook;
    if (in.flags & 2) orderbook = feed::ByteSource::from_string("AMZN_orderbook_1.csv", std::string(book));
    feed::LobsterReader reader(feed::ByteSource::from_string("AMZN_message_1.csv", std::string(messages)),
                               std::move(orderbook), options);
    (void)reader.symbol();
    std::array<feed::Event, 7> block;
    std::size_t calls = 0;
    for (bool more = true; more;) {
      fuzz::check_progress(++calls, size);
      try {
        if (in.flags & 4) {
          more = reader.read(block) != 0;
        } else {
          feed::Event event;
          more = reader.next(event);
          if (more) (void)reader.book_row();
        }
      } catch (const Error&) {
        // kStop: the bad record is reported; the next call resumes after it.
      }
    }
    (void)reader.stats();
  } catch (const Error&) {
    // Refused up front (e.g. an orderbook whose column count is not a multiple of 4).
  }
  return 0;
}
