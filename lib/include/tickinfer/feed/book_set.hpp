#pragma once
// Order books for many symbols, keyed by Event::symbol, with counters of what did not apply cleanly.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/order_book.hpp"

namespace tickinfer::feed {

/// Books sit in a vector indexed by symbol id (ITCH locates and reader-assigned ids are small and dense),
/// so routing an event is one bounds check and one load. Not thread-safe.
class BookSet {
 public:
  static constexpr std::uint32_t kMaxSymbols = 1u << 20;

  struct Stats {
    std::array<std::uint64_t, kBookResultCount> results{};  // by BookResult, for book-changing events
    std::uint64_t crossed = 0;                              // events that left a book crossed
    std::uint32_t first_crossed_symbol = 0;
    std::int64_t first_crossed_ts_ns = 0;
    std::uint64_t count(BookResult r) const noexcept { return results[static_cast<std::size_t>(r)]; }
  };

  explicit BookSet(std::size_t expected_orders_per_book = 0) : expected_orders_(expected_orders_per_book) {}

  /// Routes `event` to its symbol's book (created on first use) and counts the result.
  BookResult apply(const Event& event);
  /// nullptr when the symbol has no book yet.
  const OrderBook* find(std::uint32_t symbol) const noexcept {
    return symbol < books_.size() ? books_[symbol].get() : nullptr;
  }
  /// The symbol's book, created when missing. Throws Error kInvalidConfig past kMaxSymbols.
  OrderBook& book(std::uint32_t symbol);
  std::size_t size() const noexcept { return count_; }
  const Stats& stats() const noexcept { return stats_; }

 private:
  std::vector<std::unique_ptr<OrderBook>> books_;
  std::size_t expected_orders_;
  std::size_t count_ = 0;
  Stats stats_;
};

}  // namespace tickinfer::feed
