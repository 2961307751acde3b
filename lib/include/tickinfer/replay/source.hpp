#pragma once
// Market-data sources for a replay: read one event, then apply it to the replayed symbol's book.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tickinfer/features/engine.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/order_book.hpp"
#include "tickinfer/feed/parse_report.hpp"
#include "tickinfer/feed/symbol.hpp"
#include "tickinfer/replay/synthetic.hpp"

namespace tickinfer::replay {

enum class SourceFormat : std::uint8_t { kSynthetic, kLobster, kTardis, kItch, kCapture };

/// "synthetic", "lobster", "tardis", "itch", "capture".
const char* to_string(SourceFormat format) noexcept;
/// Throws Error(kInvalidConfig) listing the known names.
SourceFormat parse_format(std::string_view name);
/// The format of a data file: a capture by its magic; LOBSTER by name (*_message_*, .zip); Tardis by .csv;
/// ITCH only when the file starts with a well-framed ITCH 5.0 message (a length its type has in the spec).
/// Anything else is refused, never guessed: Error kParseError "PATH: cannot detect the format: ..." naming
/// what was found (the first bytes, and whether they read like a damaged capture). kFileNotFound when missing.
SourceFormat detect_format(const std::string& path);

/// The most instruments one replay takes (a symbol list, "*", merged files).
inline constexpr std::uint32_t kMaxReplaySymbols = 4096;

struct SourceOptions {
  SourceFormat format = SourceFormat::kSynthetic;
  /// lobster: MESSAGE.csv [ORDERBOOK.csv] (the orderbook file is found next to the message file when not
  ///          given) or a LOBSTER sample .zip; tardis: a trades or quotes CSV, or both (merged on
  ///          local_timestamp); itch: a BinaryFILE; capture: a tickinfer capture.
  std::vector<std::string> paths;
  SyntheticOptions synthetic;
  /// itch / capture with several symbols: the symbol to replay (name); empty: the first with book events.
  /// itch: "A,B,C" replays those symbols at once (instrument k = the k-th named), "*" every symbol of the stock
  /// directory (at most kMaxReplaySymbols). lobster: several message files (or sample zips) in `paths` are
  /// merged by time, one instrument each, in the order given.
  std::string symbol;
  /// Bad records: kSkip counts and reports them (SourceStats::parse) and goes on; kStop throws the first
  /// as Error(kParseError) "FILE:LINE: reason: detail" / "FILE@OFFSET: ...". Either way a backwards
  /// timestamp is reported and its event still applied, and a lost ITCH stream ends the source.
  feed::ParsePolicy policy = feed::ParsePolicy::kSkip;
};

/// What one event did to its symbol: the event, who traded, and the book after it. The pointers stay valid until
/// the next read().
struct Tick {
  const feed::Event* event = nullptr;
  features::TradeSign trade;
  const feed::OrderBook* book = nullptr;
  std::uint32_t key = 0;  // the event's instrument: its index in the source (< MarketSource::symbol_count())
};

struct SourceStats {
  std::uint64_t events = 0;         // events of the replayed symbol handed out
  std::uint64_t skipped = 0;        // other symbols' events, and events that touch no book nor trade
  std::uint64_t parse_issues = 0;   // issues the readers reported (parse.total_issues())
  std::uint64_t book_warnings = 0;  // events the book could not apply cleanly (unknown order, overfill...)
  std::uint64_t book_syncs = 0;     // LOBSTER orderbook rows the book was reset to
  /// The readers' account: records looked at, events parsed, issues by kind, the first located reports.
  /// Synthetic feeds and captures (checked whole when opened) count their events as records.
  feed::ParseStats parse;
};

/// One symbol's replay. Usage per event: read() (parse only), then apply() (book update). Not thread-safe;
/// neither call allocates once the book has grown.
class MarketSource {
 public:
  /// Opens the files (or generates the synthetic feed). Throws Error: kFileNotFound, kParseError,
  /// kInvalidConfig (wrong number of paths, unknown symbol).
  static std::unique_ptr<MarketSource> open(const SourceOptions& options);
  virtual ~MarketSource() = default;

  /// The next event of the replayed symbol, not yet applied; nullptr at the end.
  virtual const feed::Event* read() = 0;
  /// Applies the event read() returned to the book and describes it.
  virtual void apply(Tick& tick) = 0;

  /// The replayed symbol (a multi-symbol source: the first).
  virtual feed::SymbolInfo symbol() const = 0;
  /// Instruments the source hands out events of (Tick::key < this): 1 for one symbol; a synthetic feed's
  /// SyntheticOptions::symbols. Known when opened.
  virtual std::uint32_t symbol_count() const noexcept { return 1; }
  /// Instrument `key` (< symbol_count()).
  virtual feed::SymbolInfo symbol_info(std::uint32_t key) const {
    (void)key;
    return symbol();
  }
  /// Events a full replay hands out when known up front (synthetic, capture), else 0.
  virtual std::uint64_t size_hint() const noexcept { return 0; }
  /// LOBSTER book row of the event last read (ask price, ask size, bid price, bid size per level);
  /// empty for other sources.
  virtual std::span<const std::int64_t> book_row() const noexcept { return {}; }
  /// Levels of book_row() (LOBSTER with an orderbook file, or a capture of one), known up front; else 0.
  virtual std::size_t book_levels() const noexcept { return 0; }
  virtual SourceStats stats() const = 0;
  /// e.g. "lobster AMZN_..._message_1.csv + orderbook".
  virtual std::string describe() const = 0;
};

/// Writes what `source` replays (from its current position) as a tickinfer capture, the fastest format
/// to replay. LOBSTER book rows go in as "sync quotes" after their message: kQuote events with aux 'L'
/// and order_id = level (0 = best); the level count goes in the header (CaptureHeader::lobster_levels),
/// which is what a capture replay goes by. Returns the events written (messages, not counting sync quotes).
std::uint64_t write_capture(MarketSource& source, const std::string& path);

/// aux byte of the sync quotes write_capture() emits for LOBSTER book rows.
inline constexpr std::uint8_t kLobsterSyncAux = 'L';

}  // namespace tickinfer::replay
