#pragma once
// The normalized market-data event every feed reader produces and every capture file stores.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace tickinfer::feed {

/// Side of the resting order an event is about (for trades: the passive side, see EventKind::kTrade).
enum class Side : std::uint8_t { kNone = 0, kBuy = 1, kSell = 2 };

constexpr Side opposite(Side side) noexcept {
  return side == Side::kBuy ? Side::kSell : side == Side::kSell ? Side::kBuy : Side::kNone;
}

/// What happened. Fields not named for a kind are zero.
///
/// Order-by-order kinds (LOBSTER, ITCH) drive OrderBook:
///   kAdd      order_id, side, price, qty (ITCH F: new_order_id = attribution MPID as text8, kFlagAttributed)
///   kExecute  order_id, qty executed, new_order_id = match number (ITCH); price = the order's price (LOBSTER),
///             or the execution price with kFlagExecutionPrice and aux = printable 'Y'/'N' (ITCH C), else 0
///   kCancel   order_id, qty cancelled (partial cancel); LOBSTER also fills side and price
///   kDelete   order_id (LOBSTER also fills side, price and the qty removed)
///   kReplace  order_id replaced by new_order_id at price, qty (side is kept) -- ITCH U
/// Trades and quotes:
///   kTrade    a trade that leaves the visible book alone: price, qty, side = the PASSIVE side (ITCH P and
///             LOBSTER type 5 name the hidden resting order; Tardis names the aggressor, so the reader stores
///             the opposite and puts the aggressor in aux as 'B'/'S'), order_id = order ref (ITCH) or trade id
///             (Tardis), new_order_id = match number (ITCH)
///   kCrossTrade   qty, price, new_order_id = match number, aux = cross type (ITCH Q, LOBSTER type 6)
///   kBrokenTrade  new_order_id = match number (ITCH B)
///   kQuote    top of book: bid_price, bid_qty, ask_price, ask_qty (qty 0 = that side is empty)
/// Session and reference data (ITCH unless noted; order_id = stock as text8 where the message names one):
///   kSystem              aux = event code
///   kSymbolDirectory     order_id = stock, aux = market category, flags = financial status indicator,
///                        qty = round lot size, new_order_id = text8 of [round lots only, issue classification,
///                        issue sub-type (2), authenticity, short sale threshold, IPO flag, LULD tier],
///                        price = ETP leverage factor, bid_qty = ETP flag, ask_qty = inverse indicator
///   kTradingStatus       aux = 'H' halted, 'P' paused, 'Q' quotation only, 'T' trading; new_order_id = reason
///                        (text8). LOBSTER type 7 maps price -1/0/1 to 'H'/'Q'/'T'.
///   kRegSho              order_id = stock, aux = Reg SHO action
///   kParticipantPosition order_id = stock, new_order_id = MPID (text8), aux = participant state,
///                        bid_qty = primary market maker, ask_qty = market maker mode
///   kMwcbDeclineLevel    price, bid_price, ask_price = levels 1, 2, 3 in Price(8) units (kItchPrice8Scale)
///   kMwcbStatus          aux = breached level
///   kIpoQuotingPeriod    order_id = stock, qty = release time (s after midnight), aux = qualifier, price = IPO price
///   kLuldCollar          order_id = stock, price = reference, ask_price = upper, bid_price = lower collar,
///                        qty = extension number
///   kOperationalHalt     order_id = stock, new_order_id = market code, aux = halt action
///   kImbalance           order_id = stock, bid_qty = paired shares, ask_qty = imbalance shares, aux = direction,
///                        price = current reference, bid_price = near, ask_price = far price,
///                        new_order_id = text8 of [cross type, price variation indicator]
///   kRetailInterest      order_id = stock, aux = interest flag
///   kDirectListing       order_id = stock, aux = open eligibility, price = near execution price,
///                        qty = near execution time, bid_price = lower, ask_price = upper collar,
///                        bid_qty = minimum, ask_qty = maximum allowable price
enum class EventKind : std::uint8_t {
  kNone = 0,
  kAdd,
  kExecute,
  kCancel,
  kDelete,
  kReplace,
  kTrade,
  kCrossTrade,
  kBrokenTrade,
  kQuote,
  kSystem,
  kSymbolDirectory,
  kTradingStatus,
  kRegSho,
  kParticipantPosition,
  kMwcbDeclineLevel,
  kMwcbStatus,
  kIpoQuotingPeriod,
  kLuldCollar,
  kOperationalHalt,
  kImbalance,
  kRetailInterest,
  kDirectListing,
  kCount
};

/// Stable lowercase name, e.g. "add".
const char* to_string(EventKind kind) noexcept;

/// Event::flags bits.
inline constexpr std::uint8_t kFlagExecutionPrice = 1u << 0;  // kExecute: price is the execution price
inline constexpr std::uint8_t kFlagAttributed = 1u << 1;      // kAdd: new_order_id holds the MPID
inline constexpr std::uint8_t kFlagPrice8 = 1u << 2;          // prices are in Price(8) units
/// Order events that also carry the book's best levels after them in bid_price/bid_qty/ask_price/ask_qty
/// (qty 0 = side empty): LOBSTER events read with an orderbook file, so a capture can replay and check a
/// level-1 book on its own.
inline constexpr std::uint8_t kFlagTopOfBook = 1u << 3;

/// Fixed-point scales: an Event price p means p / scale units of the quote currency.
inline constexpr std::int64_t kLobsterPriceScale = 10'000;     // LOBSTER: dollars x 10000
inline constexpr std::int64_t kItchPriceScale = 10'000;        // ITCH Price(4): 4 implied decimals
inline constexpr std::int64_t kItchPrice8Scale = 100'000'000;  // ITCH Price(8) (MWCB levels)
/// Tardis (Binance) prices and amounts are decimal strings; the reader scales them by 10^decimals,
/// 8 by default (Binance's finest precision), so 9681.92 USDT -> 968192000000 and 0.003 BTC -> 300000.
inline constexpr int kTardisDefaultDecimals = 8;

/// A fixed-size, trivially copyable record: captures store it byte for byte, so layout changes need a
/// new capture version. Timestamps are nanoseconds since midnight (LOBSTER, ITCH: the exchange's local
/// day) or since the Unix epoch (Tardis); the reader documents which.
struct Event {
  std::int64_t ts_ns;
  std::uint64_t order_id;
  std::uint64_t new_order_id;
  std::int64_t price;
  std::int64_t qty;
  std::int64_t bid_price;
  std::int64_t bid_qty;
  std::int64_t ask_price;
  std::int64_t ask_qty;
  std::uint32_t symbol;  // dense id: ITCH stock locate, or the id a reader's options assign
  EventKind kind;
  Side side;
  std::uint8_t aux;  // source code byte, see EventKind
  std::uint8_t flags;

  friend bool operator==(const Event&, const Event&) = default;
};

/// Whether an event changes a book or is a trade (what a replay or the daemon predicts on): adds, executions,
/// cancels, deletes, replaces, trades and quotes; directory, status and other messages are not.
constexpr bool is_market_event(const Event& e) noexcept {
  switch (e.kind) {
    case EventKind::kAdd:
    case EventKind::kExecute:
    case EventKind::kCancel:
    case EventKind::kDelete:
    case EventKind::kReplace:
    case EventKind::kTrade:
    case EventKind::kQuote:
      return true;
    default:
      return false;
  }
}

static_assert(sizeof(Event) == 80, "Event is a capture record: its size is part of the file format");
static_assert(alignof(Event) == 8 && std::is_trivially_copyable_v<Event> && std::is_standard_layout_v<Event>,
              "Event must stay a padding-free POD so captures can be mapped and compared bytewise");
static_assert(offsetof(Event, symbol) == 72 && offsetof(Event, flags) == 79, "no padding inside Event");

/// Up to 8 ASCII bytes packed into a uint64 (first byte lowest), how events carry short text fields.
constexpr std::uint64_t pack_text8(std::string_view text) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < text.size() && i < 8; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(text[i])) << (8 * i);
  }
  return v;
}

/// The bytes of pack_text8, with trailing spaces and NULs kept (ITCH pads with spaces).
constexpr std::array<char, 8> unpack_text8(std::uint64_t v) noexcept {
  std::array<char, 8> out{};
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

}  // namespace tickinfer::feed
