#pragma once
// One symbol's limit order book: aggregated price levels per side plus order-by-order tracking.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/order_map.hpp"

namespace tickinfer::feed {

struct Level {
  std::int64_t price = 0;
  std::int64_t qty = 0;
  std::uint32_t orders = 0;  // resting orders tracked at this price; 0 after direct level updates

  friend bool operator==(const Level&, const Level&) = default;
};

/// Outcome of applying one change. Every result but kOk/kIgnored/kCrossed means the input disagrees with
/// the book; the book then does what keeps it consistent (described per value) and goes on.
enum class BookResult : std::uint8_t {
  kOk,
  kIgnored,         // the event does not change a book (trades, status, reference data)
  kCrossed,         // applied, and now best bid >= best ask (crossed or locked)
  kUnknownOrder,    // execute/cancel/delete/replace of an id the book does not hold: nothing changes
  kDuplicateOrder,  // add (or replace target) of an id already resting: nothing changes
  kOverfill,        // executed or cancelled more than rests: the order is removed
  kBadOrder,        // add with no side, qty <= 0, or the reserved id: nothing changes
  kMissingLevel,    // a tracked order's price level is gone (after direct level updates): order updated only
  kBadSymbol,       // BookSet: symbol id beyond BookSet::kMaxSymbols
  kCount
};

inline constexpr std::size_t kBookResultCount = static_cast<std::size_t>(BookResult::kCount);

/// Stable name, e.g. "unknown_order".
const char* to_string(BookResult result) noexcept;

/// Levels live in one sorted vector per side with the best price at the back, so the busy end of the
/// book is the cheap end to insert into and erase from, and lookups check the last few levels before
/// binary-searching. Orders live in an OrderMap. Nothing allocates per event once the vectors and the
/// map have grown to the book's working size. Not thread-safe.
class OrderBook {
 public:
  explicit OrderBook(std::uint32_t symbol = 0, std::size_t expected_orders = 0);

  std::uint32_t symbol() const noexcept { return symbol_; }

  /// Applies kAdd/kExecute/kCancel/kDelete/kReplace by order id and kQuote as a top-of-book reset;
  /// any other kind returns kIgnored.
  BookResult apply(const Event& event);

  // Order-by-order changes.
  BookResult add(std::uint64_t id, Side side, std::int64_t price, std::int64_t qty);
  /// Takes `qty` off an order (execution or partial cancel); the order goes when nothing is left.
  BookResult reduce(std::uint64_t id, std::int64_t qty) noexcept;
  BookResult remove(std::uint64_t id) noexcept;
  /// ITCH replace: the new order keeps the old one's side and loses its time priority.
  BookResult replace(std::uint64_t id, std::uint64_t new_id, std::int64_t price, std::int64_t qty);
  /// Stops tracking an order and leaves its level alone, for feeds whose levels are resynchronised
  /// separately. False when absent.
  bool forget(std::uint64_t id) noexcept { return orders_.erase(id); }
  const RestingOrder* find_order(std::uint64_t id) const noexcept { return orders_.find(id); }
  std::size_t order_count() const noexcept { return orders_.size(); }

  // Direct level changes, for feeds without order ids or to resynchronise with a snapshot.
  /// Sets a level's quantity; qty <= 0 removes it. The order count becomes 0 (unknown).
  void set_level(Side side, std::int64_t price, std::int64_t qty);
  /// Adds `delta` to a level, creating it when delta > 0 and removing it once qty <= 0.
  /// Returns false when delta < 0 and there is no level at `price`.
  bool adjust_level(Side side, std::int64_t price, std::int64_t delta);
  /// Replaces one side with `best_first` levels (best first, strictly worsening prices).
  void replace_side(Side side, std::span<const Level> best_first);
  void clear_side(Side side) noexcept;
  // Only add/replace/apply/set_level/adjust_level/replace_side allocate, and only while containers grow.
  /// Drops all levels and orders (capacity is kept).
  void clear() noexcept;

  // Queries. `side` is kBuy or kSell.
  std::size_t depth(Side side) const noexcept { return levels(side).size(); }
  bool empty(Side side) const noexcept { return levels(side).empty(); }
  /// The i-th best level (0 = best); i < depth(side).
  const Level& level(Side side, std::size_t i) const noexcept {
    const auto& v = levels(side);
    return v[v.size() - 1 - i];
  }
  /// Best levels, or a zero Level for an empty side.
  Level best_bid() const noexcept { return bids_.empty() ? Level{} : bids_.back(); }
  Level best_ask() const noexcept { return asks_.empty() ? Level{} : asks_.back(); }
  /// Copies up to out.size() best levels of a side into `out`, best first; returns how many.
  std::size_t top(Side side, std::span<Level> out) const noexcept;
  /// Quantity resting at `price` (0 when no level).
  std::int64_t qty_at(Side side, std::int64_t price) const noexcept;
  /// Best bid >= best ask with both sides present (locked counts: one venue's book never locks).
  bool crossed() const noexcept { return !bids_.empty() && !asks_.empty() && bids_.back().price >= asks_.back().price; }

 private:
  const std::vector<Level>& levels(Side side) const noexcept { return side == Side::kBuy ? bids_ : asks_; }
  std::vector<Level>& levels(Side side) noexcept { return side == Side::kBuy ? bids_ : asks_; }
  BookResult take(std::uint64_t id, RestingOrder& order, std::int64_t qty) noexcept;
  BookResult settled(BookResult ok) const noexcept {
    return ok == BookResult::kOk && crossed() ? BookResult::kCrossed : ok;
  }

  std::uint32_t symbol_;
  std::vector<Level> bids_;  // ascending price: best (highest) at the back
  std::vector<Level> asks_;  // descending price: best (lowest) at the back
  OrderMap orders_;
};

}  // namespace tickinfer::feed
