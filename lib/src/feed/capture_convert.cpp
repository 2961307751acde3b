#include "tickinfer/feed/capture_convert.hpp"

#include <array>

#include "tickinfer/feed/capture.hpp"
#include "tickinfer/feed/itch.hpp"
#include "tickinfer/feed/lobster.hpp"
#include "tickinfer/feed/tardis.hpp"

namespace tickinfer::feed {
namespace {

template <typename Reader>
ParseStats pump(Reader& reader, const std::string& out_path, const std::vector<SymbolInfo>& symbols,
                CaptureContents contents = {}) {
  CaptureWriter writer(out_path, symbols, contents);
  std::array<Event, 1024> batch;  // batches amortise the reader's per-call cost
  for (std::size_t n; (n = reader.read(batch)) != 0;) writer.append(std::span<const Event>(batch.data(), n));
  writer.finish();
  return reader.stats();
}

}  // namespace

ParseStats convert_to_capture(LobsterReader& reader, const std::string& out_path) {
  // With an orderbook file every event carries the row's top of book: the header says so.
  return pump(reader, out_path, {reader.symbol()},
              CaptureContents{0, reader.levels() != 0 ? kCaptureTopOfBook : std::uint32_t{0}});
}

ParseStats convert_to_capture(TardisReader& reader, const std::string& out_path) {
  return pump(reader, out_path, reader.scan_symbols());
}

ParseStats convert_to_capture(ItchReader& reader, const std::string& out_path) {
  return pump(reader, out_path, reader.scan_directory());
}

}  // namespace tickinfer::feed
