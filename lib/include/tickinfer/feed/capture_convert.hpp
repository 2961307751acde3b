#pragma once
// Converters from each feed format to a capture file.

#include <string>

#include "tickinfer/feed/parse_report.hpp"

namespace tickinfer::feed {

class ItchReader;
class LobsterReader;
class TardisReader;

/// Each reads `reader` from its current position to the end into a new capture at `out_path`, with the
/// reader's symbol table, and returns the reader's final stats. Bad input follows the reader's policy.
ParseStats convert_to_capture(LobsterReader& reader, const std::string& out_path);
ParseStats convert_to_capture(TardisReader& reader, const std::string& out_path);
ParseStats convert_to_capture(ItchReader& reader, const std::string& out_path);

}  // namespace tickinfer::feed
