#pragma once
// Streams LOBSTER message files (and, in lockstep, their orderbook files) as Events.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tickinfer/feed/byte_source.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/parse_report.hpp"
#include "tickinfer/feed/symbol.hpp"

namespace tickinfer::feed {

struct LobsterOptions {
  std::uint32_t symbol_id = 0;
  std::string symbol_name;  // empty: the ticker before the first '_' of the message file's name
  ParsePolicy policy = ParsePolicy::kStop;
};

/// LOBSTER's placeholders for missing levels in orderbook files.
inline constexpr std::int64_t kLobsterEmptyAsk = 9'999'999'999;
inline constexpr std::int64_t kLobsterEmptyBid = -9'999'999'999;
/// Orderbook files with more levels are refused (LOBSTER itself offers up to 200).
inline constexpr std::size_t kLobsterMaxLevels = 1000;

/// Message columns: time (s after midnight, up to 9 decimals), type, order id, size, price (x10000),
/// direction (+1 buy, -1 sell). Type 1 -> kAdd, 2 -> kCancel, 3 -> kDelete, 4 -> kExecute, 5 -> kTrade
/// (hidden execution), 6 -> kCrossTrade, 7 -> kTradingStatus (aux 'H'/'Q'/'T', see EventKind); other
/// events keep the LOBSTER type number in aux.
/// Events: ts_ns = ns after midnight, price in kLobsterPriceScale units, qty in shares.
///
/// With an orderbook file, row i is read with message i (a bad line in either skips both) and
/// book_row() exposes it; the level count comes from the first row's column count (4 per level, at most
/// kLobsterMaxLevels). A message whose time is earlier than the latest so far is reported
/// (kOutOfOrderTimestamp) and still handed out under kSkip: a dropped book update desyncs the book.
/// Each event then also carries the row's first level in bid_*/ask_* with kFlagTopOfBook (an empty
/// LOBSTER level, 9999999999 / -9999999999, becomes price 0 and qty 0).
/// Not thread-safe; the hot path allocates nothing.
class LobsterReader {
 public:
  /// Throws Error kFileNotFound, or kParseError when the orderbook's column count is not a multiple of 4 or
  /// holds more than kLobsterMaxLevels levels.
  static LobsterReader open(const std::string& message_path, const std::string& orderbook_path = {},
                            LobsterOptions options = {});
  /// Reads the *_message_*.csv and *_orderbook_*.csv members of a LOBSTER sample zip.
  static LobsterReader open_zip(const std::string& zip_path, LobsterOptions options = {});
  /// From sources already in hand (tests, zips); `orderbook` may be empty (no bytes, no name).
  LobsterReader(ByteSource messages, std::optional<ByteSource> orderbook, LobsterOptions options);

  /// Next good event, false at the end. Under kStop a bad record throws Error (kParseError).
  bool next(Event& out);
  /// Fills up to out.size() events; returns how many (0 at the end).
  std::size_t read(std::span<Event> out);

  /// Orderbook row of the event last returned: per level, ask price, ask size, bid price, bid size.
  /// Empty without an orderbook file.
  std::span<const std::int64_t> book_row() const noexcept { return row_; }
  std::size_t levels() const noexcept { return levels_; }
  /// 1-based line of the event last returned (same in both files).
  std::uint64_t line() const noexcept { return line_; }
  const ParseStats& stats() const noexcept { return stats_; }
  SymbolInfo symbol() const;
  const std::string& message_name() const noexcept { return messages_.name(); }

 private:
  // Reports against `file` at the current line; returns false so parsers can `return fail(...)`.
  bool fail(const ByteSource& file, ParseIssue issue, std::string detail);
  bool parse_message(const char* begin, const char* end, bool last_line, Event& out);
  bool parse_row(const char* begin, const char* end, bool last_line);

  ByteSource messages_;
  std::optional<ByteSource> orderbook_;
  LobsterOptions options_;
  const char* msg_pos_ = nullptr;
  const char* msg_end_ = nullptr;
  const char* book_pos_ = nullptr;
  const char* book_end_ = nullptr;
  std::size_t levels_ = 0;
  std::vector<std::int64_t> row_;      // row of the event last returned
  std::vector<std::int64_t> scratch_;  // row being parsed; swapped into row_ when the pair is good
  std::uint64_t line_ = 0;
  std::uint64_t cursor_line_ = 0;  // line being parsed
  std::int64_t last_ts_ = 0;
  bool end_checked_ = false;
  ParseStats stats_;
};

}  // namespace tickinfer::feed
