#include "tickinfer/feed/book_set.hpp"

#include <string>

#include "tickinfer/error.hpp"

namespace tickinfer::feed {
namespace {

bool changes_book(EventKind kind) noexcept {
  switch (kind) {
    case EventKind::kAdd:
    case EventKind::kExecute:
    case EventKind::kCancel:
    case EventKind::kDelete:
    case EventKind::kReplace:
    case EventKind::kQuote:
      return true;
    default:
      return false;
  }
}

}  // namespace

OrderBook& BookSet::book(std::uint32_t symbol) {
  if (symbol >= kMaxSymbols) {
    throw Error(ErrorCode::kInvalidConfig,
                "symbol id " + std::to_string(symbol) + " >= BookSet::kMaxSymbols " + std::to_string(kMaxSymbols));
  }
  if (symbol >= books_.size()) books_.resize(symbol + 1);
  if (!books_[symbol]) {
    books_[symbol] = std::make_unique<OrderBook>(symbol, expected_orders_);
    ++count_;
  }
  return *books_[symbol];
}

BookResult BookSet::apply(const Event& event) {
  // Reference data and trades never create books (ITCH sends a directory entry for every symbol).
  if (!changes_book(event.kind)) return BookResult::kIgnored;
  BookResult result;
  if (event.symbol >= kMaxSymbols) {
    result = BookResult::kBadSymbol;
  } else {
    OrderBook* b = event.symbol < books_.size() ? books_[event.symbol].get() : nullptr;
    result = (b ? *b : book(event.symbol)).apply(event);
  }
  ++stats_.results[static_cast<std::size_t>(result)];
  if (result == BookResult::kCrossed && stats_.crossed++ == 0) {
    stats_.first_crossed_symbol = event.symbol;
    stats_.first_crossed_ts_ns = event.ts_ns;
  }
  return result;
}

}  // namespace tickinfer::feed
