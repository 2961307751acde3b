#include "tickinfer/feed/order_book.hpp"

#include <algorithm>

namespace tickinfer::feed {
namespace {

// Levels are stored worst first, so "a is worse than b" orders a side's vector.
inline bool worse(bool bid, std::int64_t a, std::int64_t b) noexcept { return bid ? a < b : a > b; }

// Index of the level at `price`, or the index to insert it at. Activity clusters at the top of the
// book, so the last few levels are checked linearly before falling back to a binary search.
std::size_t locate(const std::vector<Level>& v, bool bid, std::int64_t price, bool& found) noexcept {
  constexpr int kLinear = 4;
  std::size_t i = v.size();
  for (int step = 0; step < kLinear && i > 0; ++step, --i) {
    const std::int64_t p = v[i - 1].price;
    if (p == price) {
      found = true;
      return i - 1;
    }
    if (worse(bid, p, price)) {
      found = false;
      return i;
    }
  }
  const auto it = std::partition_point(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i),
                                       [&](const Level& l) { return worse(bid, l.price, price); });
  const auto pos = static_cast<std::size_t>(it - v.begin());
  found = pos < i && v[pos].price == price;
  return pos;
}

}  // namespace

const char* to_string(BookResult result) noexcept {
  switch (result) {
    case BookResult::kOk:
      return "ok";
    case BookResult::kIgnored:
      return "ignored";
    case BookResult::kCrossed:
      return "crossed";
    case BookResult::kUnknownOrder:
      return "unknown_order";
    case BookResult::kDuplicateOrder:
      return "duplicate_order";
    case BookResult::kOverfill:
      return "overfill";
    case BookResult::kBadOrder:
      return "bad_order";
    case BookResult::kMissingLevel:
      return "missing_level";
    case BookResult::kBadSymbol:
      return "bad_symbol";
    case BookResult::kCount:
      break;
  }
  return "unknown";
}

OrderBook::OrderBook(std::uint32_t symbol, std::size_t expected_orders) : symbol_(symbol), orders_(expected_orders) {
  bids_.reserve(64);
  asks_.reserve(64);
}

BookResult OrderBook::apply(const Event& event) {
  switch (event.kind) {
    case EventKind::kAdd:
      return add(event.order_id, event.side, event.price, event.qty);
    case EventKind::kExecute:
    case EventKind::kCancel:
      return reduce(event.order_id, event.qty);
    case EventKind::kDelete:
      return remove(event.order_id);
    case EventKind::kReplace:
      return replace(event.order_id, event.new_order_id, event.price, event.qty);
    case EventKind::kQuote:
      // A top-of-book feed states both sides outright: whatever was there before is gone.
      bids_.clear();
      asks_.clear();
      if (event.bid_qty > 0) bids_.push_back(Level{event.bid_price, event.bid_qty, 0});
      if (event.ask_qty > 0) asks_.push_back(Level{event.ask_price, event.ask_qty, 0});
      return settled(BookResult::kOk);
    default:
      return BookResult::kIgnored;
  }
}

BookResult OrderBook::add(std::uint64_t id, Side side, std::int64_t price, std::int64_t qty) {
  if (side == Side::kNone || qty <= 0 || id == OrderMap::kEmptyId) return BookResult::kBadOrder;
  if (!orders_.insert(id, RestingOrder{price, qty, side})) return BookResult::kDuplicateOrder;
  const bool bid = side == Side::kBuy;
  auto& v = levels(side);
  bool found = false;
  const std::size_t i = locate(v, bid, price, found);
  if (found) {
    v[i].qty += qty;
    ++v[i].orders;
  } else {
    v.insert(v.begin() + static_cast<std::ptrdiff_t>(i), Level{price, qty, 1});
  }
  return settled(BookResult::kOk);
}

BookResult OrderBook::take(std::uint64_t id, RestingOrder& order, std::int64_t qty) noexcept {
  if (qty < 0) return BookResult::kBadOrder;
  BookResult result = qty > order.qty ? BookResult::kOverfill : BookResult::kOk;
  const std::int64_t taken = std::min(qty, order.qty);
  const bool gone = taken == order.qty;
  auto& v = levels(order.side);
  bool found = false;
  const std::size_t i = locate(v, order.side == Side::kBuy, order.price, found);
  if (found) {
    v[i].qty -= taken;
    if (gone && v[i].orders > 0) --v[i].orders;
    if (v[i].qty <= 0) v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
  } else if (result == BookResult::kOk) {
    result = BookResult::kMissingLevel;
  }
  order.qty -= taken;
  if (gone) orders_.erase(id);  // invalidates `order`: last
  return settled(result);
}

BookResult OrderBook::reduce(std::uint64_t id, std::int64_t qty) noexcept {
  RestingOrder* order = orders_.find(id);
  return order ? take(id, *order, qty) : BookResult::kUnknownOrder;
}

BookResult OrderBook::remove(std::uint64_t id) noexcept {
  RestingOrder* order = orders_.find(id);
  return order ? take(id, *order, order->qty) : BookResult::kUnknownOrder;
}

BookResult OrderBook::replace(std::uint64_t id, std::uint64_t new_id, std::int64_t price, std::int64_t qty) {
  RestingOrder* order = orders_.find(id);
  if (order == nullptr) return BookResult::kUnknownOrder;
  if (new_id != id && orders_.find(new_id) != nullptr) return BookResult::kDuplicateOrder;
  if (qty <= 0 || new_id == OrderMap::kEmptyId) return BookResult::kBadOrder;
  const Side side = order->side;
  const BookResult removed = take(id, *order, order->qty);
  const BookResult added = add(new_id, side, price, qty);
  return removed == BookResult::kMissingLevel ? removed : added;
}

void OrderBook::set_level(Side side, std::int64_t price, std::int64_t qty) {
  if (side == Side::kNone) return;
  auto& v = levels(side);
  bool found = false;
  const std::size_t i = locate(v, side == Side::kBuy, price, found);
  if (qty <= 0) {
    if (found) v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
  } else if (found) {
    v[i] = Level{price, qty, 0};
  } else {
    v.insert(v.begin() + static_cast<std::ptrdiff_t>(i), Level{price, qty, 0});
  }
}

bool OrderBook::adjust_level(Side side, std::int64_t price, std::int64_t delta) {
  if (side == Side::kNone) return false;
  auto& v = levels(side);
  bool found = false;
  const std::size_t i = locate(v, side == Side::kBuy, price, found);
  if (found) {
    v[i].qty += delta;
    if (v[i].qty <= 0) v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
    return true;
  }
  if (delta > 0) v.insert(v.begin() + static_cast<std::ptrdiff_t>(i), Level{price, delta, 0});
  return delta >= 0;
}

void OrderBook::replace_side(Side side, std::span<const Level> best_first) {
  if (side == Side::kNone) return;
  auto& v = levels(side);
  v.clear();
  for (auto it = best_first.rbegin(); it != best_first.rend(); ++it) v.push_back(*it);
}

void OrderBook::clear_side(Side side) noexcept {
  if (side != Side::kNone) levels(side).clear();
}

void OrderBook::clear() noexcept {
  bids_.clear();
  asks_.clear();
  orders_.clear();
}

std::size_t OrderBook::top(Side side, std::span<Level> out) const noexcept {
  if (side == Side::kNone) return 0;
  const auto& v = levels(side);
  const std::size_t n = std::min(out.size(), v.size());
  for (std::size_t i = 0; i < n; ++i) out[i] = v[v.size() - 1 - i];
  return n;
}

std::int64_t OrderBook::qty_at(Side side, std::int64_t price) const noexcept {
  if (side == Side::kNone) return 0;
  const auto& v = levels(side);
  bool found = false;
  const std::size_t i = locate(v, side == Side::kBuy, price, found);
  return found ? v[i].qty : 0;
}

}  // namespace tickinfer::feed
