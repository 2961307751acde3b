#include "tickinfer/feed/lobster_book.hpp"

#include <limits>

#include "tickinfer/error.hpp"
#include "tickinfer/feed/lobster.hpp"

namespace tickinfer::feed {
namespace {

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// Column of level `level`'s price for `side` in a LOBSTER row: ask price, ask size, bid price, bid size.
constexpr std::size_t price_column(Side side, std::size_t level) noexcept {
  return 4 * level + (side == Side::kBuy ? 2 : 0);
}
constexpr std::int64_t empty_price(Side side) noexcept {
  return side == Side::kBuy ? kLobsterEmptyBid : kLobsterEmptyAsk;
}

std::string describe(const Level& l) {
  return l.price == 0 && l.qty == 0 ? std::string("none") : std::to_string(l.price) + " x " + std::to_string(l.qty);
}

}  // namespace

std::string LobsterDisagreement::message() const {
  return "row " + std::to_string(row) + ": " + (side == Side::kBuy ? "bid" : "ask") + " level " +
         std::to_string(level + 1) + ": file " + describe(expected) + ", book " + describe(actual);
}

LobsterBook::LobsterBook(std::size_t levels, std::size_t expected_orders)
    : levels_(levels), book_(0, expected_orders), bid_known_from_(kMax), ask_known_to_(kMin) {
  scratch_.reserve(levels);
}

void LobsterBook::reset() noexcept {
  book_.clear();
  bid_known_from_ = kMax;
  ask_known_to_ = kMin;
  matched_levels_ = 0;
}

BookResult LobsterBook::apply(const Event& event) {
  switch (event.kind) {
    case EventKind::kAdd:
      return book_.add(event.order_id, event.side, event.price, event.qty);
    case EventKind::kCancel:
    case EventKind::kExecute:
    case EventKind::kDelete:
      if (book_.find_order(event.order_id) != nullptr) {
        // Take the message's size, not the tracked one: an order that sat beyond the file's levels may
        // have shrunk without a message, so on delete LOBSTER's remaining size is the one to remove and
        // whatever the tracking still holds is stale.
        const BookResult result = book_.reduce(event.order_id, event.qty);
        if (event.kind == EventKind::kDelete) book_.forget(event.order_id);
        return result;
      }
      // An order resting before the file began: LOBSTER still gives its price, side and size.
      book_.adjust_level(event.side, event.price, -event.qty);
      return BookResult::kUnknownOrder;
    default:
      return BookResult::kIgnored;  // hidden executions, cross trades and halts
  }
}

std::size_t LobsterBook::check_side(Side side, std::span<const std::int64_t> row, std::uint64_t row_number,
                                    std::vector<LobsterDisagreement>* out, std::size_t max_kept) {
  const std::size_t depth = book_.depth(side);
  for (std::size_t j = 0; j < levels_; ++j) {
    const std::int64_t price = row[price_column(side, j)];
    const std::int64_t qty = row[price_column(side, j) + 1];
    // Known levels form a prefix of each list, so the walk stops where both leave the known range.
    const bool row_known = price != empty_price(side) && known(side, price);
    const bool book_known = j < depth && known(side, book_.level(side, j).price);
    if (!row_known && !book_known) return 0;
    const Level actual = book_known ? book_.level(side, j) : Level{};
    if (row_known && book_known && actual.price == price && actual.qty == qty) {
      ++matched_levels_;
      continue;
    }
    if (out != nullptr && out->size() < max_kept) {
      out->push_back(LobsterDisagreement{row_number, side, j, row_known ? Level{price, qty, 0} : Level{},
                                         Level{actual.price, actual.qty, 0}});
    }
    return 1;
  }
  return 0;  // the row is full and every level matched; deeper book levels are out of view
}

void LobsterBook::sync_side(Side side, std::span<const std::int64_t> row) {
  scratch_.clear();
  for (std::size_t j = 0; j < levels_; ++j) {
    const std::int64_t price = row[price_column(side, j)];
    if (price == empty_price(side)) break;
    scratch_.push_back(Level{price, row[price_column(side, j) + 1], 0});
  }
  book_.replace_side(side, scratch_);
  // A full row hides whatever lies past its last level; a short one shows the whole side.
  const bool full = scratch_.size() == levels_ && levels_ > 0;
  if (side == Side::kBuy) {
    bid_known_from_ = full ? scratch_.back().price : kMin;
  } else {
    ask_known_to_ = full ? scratch_.back().price : kMax;
  }
}

std::size_t LobsterBook::sync(std::span<const std::int64_t> row, std::uint64_t row_number,
                              std::vector<LobsterDisagreement>* out, std::size_t max_kept) {
  if (row.size() < 4 * levels_) {
    throw Error(ErrorCode::kInvalidConfig, "LobsterBook::sync: row has " + std::to_string(row.size()) +
                                               " values, the book tracks " + std::to_string(levels_) + " levels");
  }
  const std::size_t bad =
      check_side(Side::kBuy, row, row_number, out, max_kept) + check_side(Side::kSell, row, row_number, out, max_kept);
  sync_side(Side::kBuy, row);
  sync_side(Side::kSell, row);
  return bad;
}

std::size_t LobsterBook::sync(const Event& top_of_book, std::uint64_t row_number, std::vector<LobsterDisagreement>* out,
                              std::size_t max_kept) {
  if (levels_ != 1 || (top_of_book.flags & kFlagTopOfBook) == 0) {
    throw Error(ErrorCode::kInvalidConfig,
                "LobsterBook::sync(Event) needs a level-1 book and an event with "
                "kFlagTopOfBook (row " +
                    std::to_string(row_number) + ")");
  }
  const Event& e = top_of_book;
  const std::int64_t row[4] = {e.ask_qty > 0 ? e.ask_price : kLobsterEmptyAsk, e.ask_qty,
                               e.bid_qty > 0 ? e.bid_price : kLobsterEmptyBid, e.bid_qty};
  return sync(row, row_number, out, max_kept);
}

LobsterValidation validate_lobster(std::span<const Event> events, std::size_t max_kept) {
  LobsterBook book(1);
  LobsterValidation result;
  for (const Event& e : events) {
    book.apply(e);
    if (book.sync(e, result.rows + 1, &result.first, max_kept) != 0) ++result.disagreements;
    ++result.rows;
  }
  result.matched_levels = book.matched_levels();
  return result;
}

LobsterValidation validate_lobster(LobsterReader& reader, std::size_t max_kept) {
  if (reader.levels() == 0) {
    throw Error(ErrorCode::kInvalidConfig, reader.message_name() + ": validation needs the orderbook file");
  }
  LobsterBook book(reader.levels());
  LobsterValidation result;
  Event event{};
  while (reader.next(event)) {
    book.apply(event);
    if (book.sync(reader.book_row(), reader.line(), &result.first, max_kept) != 0) ++result.disagreements;
    ++result.rows;
  }
  result.matched_levels = book.matched_levels();
  return result;
}

}  // namespace tickinfer::feed
