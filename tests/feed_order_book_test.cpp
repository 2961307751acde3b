// OrderBook, OrderMap and BookSet: level bookkeeping, order tracking, direct level updates, crossed books,
// and seeded randomized checks against std::map / std::unordered_map references.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <unordered_map>

#include "feed_test_support.hpp"
#include "tickinfer/feed/book_set.hpp"
#include "tickinfer/feed/order_book.hpp"
#include "tickinfer/feed/order_map.hpp"

namespace tickinfer::feed {
namespace {

// Seeded randomized tests print their seed; TICKINFER_SEED=<n> replays one.
std::uint64_t test_seed() {
  const char* env = std::getenv("TICKINFER_SEED");
  const std::uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::printf("seed %llu (replay with TICKINFER_SEED=%llu)\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  return seed;
}

Event make(EventKind kind, std::uint64_t id, Side side = Side::kNone, std::int64_t price = 0, std::int64_t qty = 0) {
  Event e{};
  e.kind = kind;
  e.order_id = id;
  e.side = side;
  e.price = price;
  e.qty = qty;
  return e;
}

TEST(FeedOrderBook, AddsAggregateIntoLevelsListedBestFirst) {
  OrderBook book;
  EXPECT_EQ(book.add(1, Side::kBuy, 100, 10), BookResult::kOk);
  EXPECT_EQ(book.add(2, Side::kBuy, 102, 5), BookResult::kOk);
  EXPECT_EQ(book.add(3, Side::kBuy, 100, 7), BookResult::kOk);
  EXPECT_EQ(book.add(4, Side::kBuy, 101, 1), BookResult::kOk);
  EXPECT_EQ(book.add(5, Side::kSell, 105, 3), BookResult::kOk);
  EXPECT_EQ(book.add(6, Side::kSell, 104, 2), BookResult::kOk);
  EXPECT_EQ(book.add(7, Side::kSell, 110, 9), BookResult::kOk);
  ASSERT_EQ(book.depth(Side::kBuy), 3u);
  EXPECT_EQ(book.level(Side::kBuy, 0), (Level{102, 5, 1}));
  EXPECT_EQ(book.level(Side::kBuy, 1), (Level{101, 1, 1}));
  EXPECT_EQ(book.level(Side::kBuy, 2), (Level{100, 17, 2}));
  EXPECT_EQ(book.best_ask(), (Level{104, 2, 1}));
  Level top[2];
  ASSERT_EQ(book.top(Side::kSell, top), 2u);
  EXPECT_EQ(top[1], (Level{105, 3, 1}));
  EXPECT_EQ(book.qty_at(Side::kBuy, 100), 17);
  EXPECT_EQ(book.qty_at(Side::kBuy, 99), 0);
  EXPECT_EQ(book.order_count(), 7u);
  EXPECT_FALSE(book.crossed());
}

TEST(FeedOrderBook, ExecuteCancelDeleteShrinkLevelsAndForgetFinishedOrders) {
  OrderBook book;
  book.add(1, Side::kBuy, 100, 10);
  book.add(2, Side::kBuy, 100, 5);
  EXPECT_EQ(book.apply(make(EventKind::kExecute, 1, Side::kNone, 0, 4)), BookResult::kOk);
  EXPECT_EQ(book.best_bid(), (Level{100, 11, 2}));
  EXPECT_EQ(book.apply(make(EventKind::kCancel, 1, Side::kNone, 0, 6)), BookResult::kOk);
  EXPECT_EQ(book.best_bid(), (Level{100, 5, 1}));
  EXPECT_EQ(book.find_order(1), nullptr);
  EXPECT_EQ(book.apply(make(EventKind::kDelete, 2)), BookResult::kOk);
  EXPECT_TRUE(book.empty(Side::kBuy));
  EXPECT_EQ(book.order_count(), 0u);
}

TEST(FeedOrderBook, ReplaceMovesTheOrderAndKeepsItsSide) {
  OrderBook book;
  book.add(1, Side::kSell, 105, 10);
  Event e = make(EventKind::kReplace, 1, Side::kNone, 104, 3);
  e.new_order_id = 9;
  EXPECT_EQ(book.apply(e), BookResult::kOk);
  EXPECT_EQ(book.best_ask(), (Level{104, 3, 1}));
  EXPECT_EQ(book.depth(Side::kSell), 1u);
  ASSERT_NE(book.find_order(9), nullptr);
  EXPECT_EQ(book.find_order(9)->side, Side::kSell);
  EXPECT_EQ(book.find_order(1), nullptr);
}

TEST(FeedOrderBook, UnknownDuplicateAndBadOrdersAreReportedAndChangeNothing) {
  OrderBook book;
  book.add(1, Side::kBuy, 100, 10);
  EXPECT_EQ(book.add(1, Side::kBuy, 101, 10), BookResult::kDuplicateOrder);
  EXPECT_EQ(book.reduce(2, 1), BookResult::kUnknownOrder);
  EXPECT_EQ(book.remove(2), BookResult::kUnknownOrder);
  EXPECT_EQ(book.replace(2, 3, 100, 1), BookResult::kUnknownOrder);
  EXPECT_EQ(book.add(4, Side::kNone, 100, 1), BookResult::kBadOrder);
  EXPECT_EQ(book.add(5, Side::kBuy, 100, 0), BookResult::kBadOrder);
  EXPECT_EQ(book.add(OrderMap::kEmptyId, Side::kBuy, 100, 1), BookResult::kBadOrder);
  EXPECT_EQ(book.best_bid(), (Level{100, 10, 1}));
  EXPECT_EQ(book.depth(Side::kBuy), 1u);
  EXPECT_EQ(book.order_count(), 1u);
}

TEST(FeedOrderBook, OverfillRemovesTheOrderAndSaysSo) {
  OrderBook book;
  book.add(1, Side::kBuy, 100, 10);
  book.add(2, Side::kBuy, 100, 10);
  EXPECT_EQ(book.reduce(1, 15), BookResult::kOverfill);
  EXPECT_EQ(book.best_bid(), (Level{100, 10, 1}));
  EXPECT_EQ(book.find_order(1), nullptr);
}

TEST(FeedOrderBook, CrossedBookIsDetectedAndReported) {
  OrderBook book;
  book.add(1, Side::kSell, 100, 10);
  EXPECT_EQ(book.add(2, Side::kBuy, 99, 10), BookResult::kOk);
  EXPECT_EQ(book.add(3, Side::kBuy, 100, 10), BookResult::kCrossed);  // locked counts
  EXPECT_TRUE(book.crossed());
  EXPECT_EQ(book.add(4, Side::kBuy, 101, 1), BookResult::kCrossed);
  EXPECT_EQ(book.remove(3), BookResult::kCrossed);  // still crossed through order 4
  EXPECT_EQ(book.remove(4), BookResult::kOk);
  EXPECT_FALSE(book.crossed());

  BookSet books;
  Event e = make(EventKind::kAdd, 1, Side::kSell, 100, 10);
  e.symbol = 3;
  EXPECT_EQ(books.apply(e), BookResult::kOk);
  e = make(EventKind::kAdd, 2, Side::kBuy, 100, 10);
  e.symbol = 3;
  e.ts_ns = 42;
  EXPECT_EQ(books.apply(e), BookResult::kCrossed);
  EXPECT_EQ(books.stats().crossed, 1u);
  EXPECT_EQ(books.stats().count(BookResult::kCrossed), 1u);
  EXPECT_EQ(books.stats().first_crossed_symbol, 3u);
  EXPECT_EQ(books.stats().first_crossed_ts_ns, 42);
}

TEST(FeedOrderBook, QuoteReplacesTheTopOfBook) {
  OrderBook book;
  Event q{};
  q.kind = EventKind::kQuote;
  q.bid_price = 99;
  q.bid_qty = 5;
  q.ask_price = 101;
  q.ask_qty = 6;
  EXPECT_EQ(book.apply(q), BookResult::kOk);
  q.bid_price = 100;
  q.ask_qty = 0;  // the ask side emptied
  EXPECT_EQ(book.apply(q), BookResult::kOk);
  EXPECT_EQ(book.depth(Side::kBuy), 1u);
  EXPECT_EQ(book.best_bid(), (Level{100, 5, 0}));
  EXPECT_TRUE(book.empty(Side::kSell));
  q.ask_qty = 1;
  q.ask_price = 100;
  EXPECT_EQ(book.apply(q), BookResult::kCrossed);
}

TEST(FeedOrderBook, DirectLevelUpdatesSetAdjustAndReplaceSides) {
  OrderBook book;
  book.set_level(Side::kBuy, 100, 10);
  book.set_level(Side::kBuy, 101, 4);
  book.set_level(Side::kBuy, 100, 12);
  EXPECT_EQ(book.level(Side::kBuy, 1), (Level{100, 12, 0}));
  EXPECT_TRUE(book.adjust_level(Side::kBuy, 101, -4));
  EXPECT_EQ(book.depth(Side::kBuy), 1u);
  EXPECT_FALSE(book.adjust_level(Side::kBuy, 50, -1));
  EXPECT_TRUE(book.adjust_level(Side::kBuy, 50, 3));
  book.set_level(Side::kBuy, 100, 0);
  EXPECT_EQ(book.best_bid(), (Level{50, 3, 0}));
  const Level asks[] = {{200, 1, 0}, {201, 2, 0}, {205, 3, 0}};
  book.replace_side(Side::kSell, asks);
  ASSERT_EQ(book.depth(Side::kSell), 3u);
  EXPECT_EQ(book.best_ask(), (Level{200, 1, 0}));
  EXPECT_EQ(book.level(Side::kSell, 2), (Level{205, 3, 0}));
  book.clear();
  EXPECT_TRUE(book.empty(Side::kBuy));
  EXPECT_TRUE(book.empty(Side::kSell));
}

TEST(FeedOrderBook, BookSetRoutesBySymbolAndIgnoresNonBookEvents) {
  BookSet books;
  Event e = make(EventKind::kAdd, 1, Side::kBuy, 100, 1);
  e.symbol = 5;
  books.apply(e);
  e.symbol = 900;
  e.order_id = 2;
  books.apply(e);
  Event dir{};
  dir.kind = EventKind::kSymbolDirectory;
  dir.symbol = 77;
  EXPECT_EQ(books.apply(dir), BookResult::kIgnored);
  EXPECT_EQ(books.size(), 2u);
  EXPECT_EQ(books.find(77), nullptr);
  EXPECT_EQ(books.find(5)->best_bid().qty, 1);
  EXPECT_EQ(books.find(900)->symbol(), 900u);
  e.symbol = BookSet::kMaxSymbols;
  EXPECT_EQ(books.apply(e), BookResult::kBadSymbol);
  testing::expect_error(ErrorCode::kInvalidConfig, [&] { books.book(BookSet::kMaxSymbols); });
}

TEST(FeedOrderBook, OrderMapMatchesAReferenceMapUnderRandomInsertsAndErases) {
  std::mt19937_64 rng(test_seed());
  OrderMap map;
  std::unordered_map<std::uint64_t, std::int64_t> ref;
  for (int i = 0; i < 200'000; ++i) {
    const std::uint64_t id = rng() % 5'000;  // dense ids: long probe runs and many backward shifts
    if (rng() % 3 != 0) {
      const bool inserted = map.insert(id, RestingOrder{static_cast<std::int64_t>(id), i, Side::kBuy});
      EXPECT_EQ(inserted, ref.emplace(id, i).second);
    } else {
      EXPECT_EQ(map.erase(id), ref.erase(id) == 1);
    }
    ASSERT_EQ(map.size(), ref.size());
  }
  for (std::uint64_t id = 0; id < 5'000; ++id) {
    const auto it = ref.find(id);
    const RestingOrder* o = map.find(id);
    ASSERT_EQ(o != nullptr, it != ref.end()) << id;
    if (o != nullptr) {
      EXPECT_EQ(o->qty, it->second);
    }
  }
}

TEST(FeedOrderBook, LevelsMatchAReferenceBookUnderRandomOrderFlow) {
  std::mt19937_64 rng(test_seed());
  OrderBook book;
  std::map<std::int64_t, std::int64_t> bids, asks;  // price -> qty
  std::unordered_map<std::uint64_t, RestingOrder> orders;
  std::uint64_t next_id = 1;
  for (int i = 0; i < 100'000; ++i) {
    const auto op = rng() % 10;
    if (op < 5 || orders.empty()) {
      // Adds on a side's own half of the book (bids 900..999, asks 1001..1100) so it never crosses.
      const Side side = rng() % 2 ? Side::kBuy : Side::kSell;
      const std::int64_t price = side == Side::kBuy ? 900 + static_cast<std::int64_t>(rng() % 100)
                                                    : 1001 + static_cast<std::int64_t>(rng() % 100);
      const std::int64_t qty = 1 + static_cast<std::int64_t>(rng() % 50);
      ASSERT_EQ(book.add(next_id, side, price, qty), BookResult::kOk);
      orders[next_id++] = RestingOrder{price, qty, side};
      (side == Side::kBuy ? bids : asks)[price] += qty;
    } else {
      auto it = orders.begin();
      std::advance(it, static_cast<long>(rng() % std::min<std::size_t>(orders.size(), 64)));
      auto& levels = it->second.side == Side::kBuy ? bids : asks;
      const std::int64_t qty =
          op < 8 ? 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(it->second.qty)) : it->second.qty;
      ASSERT_EQ(op < 8 ? book.reduce(it->first, qty) : book.remove(it->first), BookResult::kOk);
      if ((levels[it->second.price] -= qty) == 0) levels.erase(it->second.price);
      if ((it->second.qty -= qty) == 0) orders.erase(it);
    }
  }
  ASSERT_EQ(book.depth(Side::kBuy), bids.size());
  ASSERT_EQ(book.depth(Side::kSell), asks.size());
  std::size_t i = 0;
  for (auto it = bids.rbegin(); it != bids.rend(); ++it, ++i) {
    EXPECT_EQ(book.level(Side::kBuy, i).price, it->first);
    EXPECT_EQ(book.level(Side::kBuy, i).qty, it->second);
  }
  i = 0;
  for (auto it = asks.begin(); it != asks.end(); ++it, ++i) {
    EXPECT_EQ(book.level(Side::kSell, i).price, it->first);
    EXPECT_EQ(book.level(Side::kSell, i).qty, it->second);
  }
  EXPECT_EQ(book.order_count(), orders.size());
}

}  // namespace
}  // namespace tickinfer::feed
