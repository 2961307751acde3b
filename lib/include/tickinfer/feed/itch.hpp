#pragma once
// Streams NASDAQ TotalView-ITCH 5.0 files (BinaryFILE framing) as Events.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tickinfer/feed/byte_source.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/parse_report.hpp"
#include "tickinfer/feed/symbol.hpp"

namespace tickinfer::feed {

/// Message length (without the 2-byte length prefix) that ITCH 5.0 defines for a type byte; 0 when the
/// type is not in the spec. Covers S R H Y L V W K J h A F E C X D U P Q B I N O.
std::size_t itch_message_length(char type) noexcept;

struct ItchOptions {
  ParsePolicy policy = ParsePolicy::kStop;
  /// Framing errors in a row (zero-length message, unknown type, length other than the spec's) after which
  /// the stream counts as lost: one kStreamLost issue at the offset where the run began, and the reader
  /// ends there (whatever the policy), instead of "skipping" through the rest of a file that is not ITCH
  /// (a file of zeros would otherwise yield one issue per 2 bytes). Values below 1 count as 1.
  std::uint32_t max_consecutive_framing_errors = 16;
};

/// Each message is a 2-byte big-endian length then the message: type, stock locate (-> Event::symbol),
/// tracking number (dropped), 6-byte timestamp (-> ts_ns, ns after midnight), then big-endian fields.
/// Every spec type becomes one Event (see EventKind for the field mapping); Price(4) fields stay in
/// kItchPriceScale units. Bad input is located by byte offset of its length prefix. A timestamp earlier
/// than the latest one so far is reported (kOutOfOrderTimestamp) and the message still handed out under
/// kSkip (the book must see it). Stock Directory
/// messages also fill symbols(). Not thread-safe; the hot path allocates nothing (symbols() grows only
/// on directory messages).
class ItchReader {
 public:
  static ItchReader open(const std::string& path, ItchOptions options = {});
  ItchReader(ByteSource source, ItchOptions options);

  bool next(Event& out);
  std::size_t read(std::span<Event> out);

  /// One message framed by a transport (MoldUDP64) instead of the file: `message` without a length prefix,
  /// checked as next() checks a file's (zero length, unknown type, a length other than the spec's are kBadLength
  /// or kUnknownMessageType issues at `offset`, e.g. the message's sequence number) and decoded into `out`.
  /// False when it was refused (under kStop: thrown) or is not an event. Counts records, events and issues in
  /// stats(); the reader's own source is not read. Allocates only for issues and directory growth.
  bool decode_message(std::span<const unsigned char> message, std::uint64_t offset, Event& out);
  /// A new transport session (a MoldUDP64 session change: the next trading day, a restarted sender): timestamps
  /// start again from midnight, so the out-of-order check forgets the last one. Stats and the directory stay.
  void new_session() noexcept { last_ts_ = 0; }

  /// Directory entries seen so far, by locate code.
  std::vector<SymbolInfo> symbols() const;
  /// The directory of the whole input, from a pass that decodes only 'R' messages (the read position
  /// and stats are untouched). Capture conversion uses it to write the symbol table up front.
  std::vector<SymbolInfo> scan_directory() const;
  const ParseStats& stats() const noexcept { return stats_; }
  std::uint64_t offset() const noexcept { return pos_; }
  const std::string& name() const noexcept { return source_.name(); }

 private:
  bool fail(std::uint64_t offset, ParseIssue issue, std::string detail);
  void framing_error(std::uint64_t offset, ParseIssue issue, std::string detail);
  bool decode(const unsigned char* m, std::uint64_t offset, Event& out);

  ByteSource source_;
  ItchOptions options_;
  std::size_t pos_ = 0;
  std::int64_t last_ts_ = 0;
  std::uint32_t framing_errors_ = 0;        // consecutive, since the last well-framed message
  std::size_t framing_lost_at_ = 0;         // offset of the first of them
  std::vector<std::array<char, 8>> names_;  // by locate; all spaces = no directory entry yet
  ParseStats stats_;
};

}  // namespace tickinfer::feed
