#pragma once
// Streams Tardis.dev normalized CSV (trades or quotes, e.g. Binance futures) as Events.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tickinfer/feed/byte_source.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/parse_report.hpp"
#include "tickinfer/feed/symbol.hpp"

namespace tickinfer::feed {

/// Bounds on what a file can make the reader keep: a line naming a new symbol past either is a kBadValue.
inline constexpr std::size_t kTardisMaxSymbols = 4096;
inline constexpr std::size_t kTardisMaxSymbolName = 39;  // what a capture's symbol table holds

struct TardisOptions {
  /// Ids go to symbols in order of first appearance, starting here.
  std::uint32_t first_symbol_id = 0;
  int price_decimals = kTardisDefaultDecimals;  // price_scale = 10^price_decimals
  int qty_decimals = kTardisDefaultDecimals;    // qty_scale = 10^qty_decimals
  /// false: ts_ns = exchange `timestamp`; true: `local_timestamp` (arrival), to merge files in
  /// arrival order. Either way microseconds since the epoch become ns since the epoch.
  bool use_local_timestamp = false;
  ParsePolicy policy = ParsePolicy::kStop;
};

/// The header picks the schema:
///   trades: exchange,symbol,timestamp,local_timestamp,id,side,price,amount -> kTrade (order_id = trade id,
///           side = passive side, aux = aggressor 'B'/'S', 0 for "unknown")
///   quotes: exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount -> kQuote
///           (an empty side has price and qty 0)
/// A value with more decimals than the scale keeps is a kBadNumber, never silently rounded. A line whose time is
/// earlier than the latest so far is reported (kOutOfOrderTimestamp) and still handed out under kSkip.
/// Not thread-safe; the hot path allocates nothing (a new symbol name allocates once).
class TardisReader {
 public:
  enum class Schema : std::uint8_t { kTrades, kQuotes };

  /// Throws Error kFileNotFound, kParseError for an unknown header, kInvalidConfig for decimals beyond 0..18.
  static TardisReader open(const std::string& path, TardisOptions options = {});
  TardisReader(ByteSource source, TardisOptions options);

  bool next(Event& out);
  std::size_t read(std::span<Event> out);

  Schema schema() const noexcept { return schema_; }
  /// Symbols seen so far, by id.
  std::vector<SymbolInfo> symbols() const;
  /// Symbols of the whole input from a pass over the symbol column (read position and stats untouched);
  /// ids match what next() assigns. Capture conversion uses it to write the symbol table up front.
  std::vector<SymbolInfo> scan_symbols() const;
  const ParseStats& stats() const noexcept { return stats_; }
  std::uint64_t line() const noexcept { return line_; }
  const std::string& name() const noexcept { return source_.name(); }

 private:
  bool fail(ParseIssue issue, std::string detail);
  bool parse_line(const char* begin, const char* end, bool last_line, Event& out);
  bool symbol_id(std::string_view name, std::uint32_t& id);

  ByteSource source_;
  TardisOptions options_;
  Schema schema_ = Schema::kTrades;
  const char* pos_ = nullptr;
  const char* end_ = nullptr;
  std::uint64_t line_ = 1;  // the header
  std::int64_t last_ts_ = 0;
  std::vector<std::string> names_;  // by id - first_symbol_id
  std::size_t last_symbol_ = 0;     // index in names_ of the previous line's symbol (lines repeat it)
  ParseStats stats_;
};

}  // namespace tickinfer::feed
