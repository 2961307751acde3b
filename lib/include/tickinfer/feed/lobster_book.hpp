#pragma once
// Rebuilds a book from LOBSTER messages and checks it against LOBSTER's own orderbook rows.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/order_book.hpp"

namespace tickinfer::feed {

class LobsterReader;

/// One level where the rebuilt book and the orderbook file part ways.
struct LobsterDisagreement {
  std::uint64_t row = 0;  // 1-based line in the orderbook file
  Side side = Side::kNone;
  std::size_t level = 0;  // 0 = best
  Level expected;         // from the file; price 0 when the file shows no level the book knows about
  Level actual;           // from the book; price 0 when the book has no level there
  std::string message() const;
};

/// A book driven by LOBSTER's quirks:
///  - type 5 (hidden execution), 6 and 7 leave the visible book alone;
///  - orders resting before the file starts show up as cancels/executions/deletions of unknown ids, so
///    those apply to the level at the message's price and side instead of to an order;
///  - an order beyond the file's levels can shrink without a message, so tracked sizes may be stale: every
///    change takes the message's size, and a deletion drops the order whatever its tracking still holds;
///  - a level-N file only holds messages inside the top N levels, so the book knows a side exactly only
///    from its best price down to the N-th level of the last row (all of it when that row had fewer than
///    N levels). sync() compares that known range and then takes the row as the new truth, which also
///    brings in levels that move up from beyond the view and sets the initial book from the first row.
/// Not thread-safe; apply() and sync() allocate nothing once the book has grown.
class LobsterBook {
 public:
  explicit LobsterBook(std::size_t levels, std::size_t expected_orders = 1 << 16);

  /// Applies one LOBSTER event (kAdd/kCancel/kDelete/kExecute by id, falling back to its price level).
  BookResult apply(const Event& event);
  /// Compares the known range with `row` (LOBSTER column order, 4 x levels values), appends up to
  /// `max_kept` disagreements to `out` (may be null), then resets both sides to the row. Returns the
  /// number of sides that disagreed (0, 1 or 2). `row_number` labels the disagreements.
  std::size_t sync(std::span<const std::int64_t> row, std::uint64_t row_number,
                   std::vector<LobsterDisagreement>* out = nullptr, std::size_t max_kept = 0);

  /// sync() for a level-1 book from an event's own top of book (kFlagTopOfBook, e.g. from a capture).
  /// Throws Error kInvalidConfig unless levels() == 1 and the event carries the flag.
  std::size_t sync(const Event& top_of_book, std::uint64_t row_number, std::vector<LobsterDisagreement>* out = nullptr,
                   std::size_t max_kept = 0);

  /// Back to the state of a new book (nothing known), keeping the memory already grown.
  void reset() noexcept;

  const OrderBook& book() const noexcept { return book_; }
  /// Levels sync() found equal so far: how much of the files the check actually covered.
  std::uint64_t matched_levels() const noexcept { return matched_levels_; }
  std::size_t levels() const noexcept { return levels_; }

 private:
  std::size_t check_side(Side side, std::span<const std::int64_t> row, std::uint64_t row_number,
                         std::vector<LobsterDisagreement>* out, std::size_t max_kept);
  void sync_side(Side side, std::span<const std::int64_t> row);
  bool known(Side side, std::int64_t price) const noexcept {
    return side == Side::kBuy ? price >= bid_known_from_ : price <= ask_known_to_;
  }

  std::size_t levels_;
  OrderBook book_;
  std::vector<Level> scratch_;
  // Known range per side. Initially nothing is known: the first row seeds the book.
  std::int64_t bid_known_from_;  // bids at or above this price are known exactly
  std::int64_t ask_known_to_;    // asks at or below this price are known exactly
  std::uint64_t matched_levels_ = 0;
};

struct LobsterValidation {
  std::uint64_t rows = 0;                  // rows compared
  std::uint64_t disagreements = 0;         // rows where at least one side disagreed
  std::uint64_t matched_levels = 0;        // levels found equal (a row of N levels has up to 2N)
  std::vector<LobsterDisagreement> first;  // the first few, for the report
};

/// Replays `reader` (opened with an orderbook file) through a LobsterBook and checks every row.
/// Throws Error kInvalidConfig when the reader has no orderbook file.
LobsterValidation validate_lobster(LobsterReader& reader, std::size_t max_kept = 16);
/// The same at level 1 from events that carry their top of book (a capture of a LOBSTER reader with an
/// orderbook file, of any level count); rows are numbered from 1 in event order.
/// Throws Error kInvalidConfig when an event lacks kFlagTopOfBook.
LobsterValidation validate_lobster(std::span<const Event> events, std::size_t max_kept = 16);

}  // namespace tickinfer::feed
