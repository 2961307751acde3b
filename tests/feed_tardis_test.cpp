// Tardis CSV reader: the real Binance futures BTCUSDT trades and quotes, scales, and each bad-input path.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "feed_test_support.hpp"
#include "tickinfer/feed/book_set.hpp"
#include "tickinfer/feed/order_book.hpp"
#include "tickinfer/feed/tardis.hpp"

namespace tickinfer::feed {
namespace {

using testing::expect_error;

constexpr const char* kTradesHeader = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n";
constexpr const char* kQuotesHeader =
    "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n";

TardisReader reader_of(const std::string& text, TardisOptions options = {}) {
  return TardisReader(ByteSource::from_string("t.csv", text), options);
}

std::vector<Event> read_all(TardisReader& reader) {
  std::vector<Event> out;
  Event e{};
  while (reader.next(e)) out.push_back(e);
  return out;
}

TEST(FeedTardis, ReadsRealBinanceTradesWithTheDocumentedCounts) {
  TICKINFER_REQUIRE_DATA(testing::tardis_trades());
  auto reader = TardisReader::open(testing::tardis_trades().string());
  EXPECT_EQ(reader.schema(), TardisReader::Schema::kTrades);
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 9'999u);
  EXPECT_EQ(reader.stats().total_issues(), 0u);
  const Event& first = events.front();
  EXPECT_EQ(first.kind, EventKind::kTrade);
  EXPECT_EQ(first.ts_ns, 1'582'329'602'111'000'000);
  EXPECT_EQ(first.order_id, 42'377'944u);
  EXPECT_EQ(first.aux, 'B');
  EXPECT_EQ(first.side, Side::kSell);       // a buyer lifted a resting sell
  EXPECT_EQ(first.price, 968'200'000'000);  // 9682 at 1e-8
  EXPECT_EQ(first.qty, 13'200'000);         // 0.132 at 1e-8
  int buys = 0;
  std::int64_t lo = events[0].price, hi = events[0].price;
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].order_id, 42'377'944u + i) << "ids run without gaps";
    buys += events[i].aux == 'B';
    lo = std::min(lo, events[i].price);
    hi = std::max(hi, events[i].price);
  }
  EXPECT_EQ(buys, 5'267);
  EXPECT_EQ(lo, 965'307'000'000);  // 9653.07
  EXPECT_EQ(hi, 971'070'000'000);  // 9710.70
  ASSERT_EQ(reader.symbols().size(), 1u);
  EXPECT_EQ(reader.symbols()[0].name, "BTCUSDT");
  EXPECT_EQ(reader.symbols()[0].price_scale, 100'000'000);
}

TEST(FeedTardis, ReadsRealBinanceQuotesIntoTopOfBook) {
  TICKINFER_REQUIRE_DATA(testing::tardis_quotes());
  auto reader = TardisReader::open(testing::tardis_quotes().string());
  EXPECT_EQ(reader.schema(), TardisReader::Schema::kQuotes);
  BookSet books;
  Event e{};
  Event first{};
  std::int64_t lo = INT64_MAX, hi = 0;
  while (reader.next(e)) {
    if (reader.stats().events == 1) first = e;
    EXPECT_EQ(books.apply(e), BookResult::kOk);
    lo = std::min(lo, e.bid_price);
    hi = std::max(hi, e.bid_price);
  }
  EXPECT_EQ(reader.stats().events, 9'999u);
  EXPECT_EQ(reader.stats().total_issues(), 0u);
  EXPECT_EQ(books.stats().crossed, 0u);
  EXPECT_EQ(first.kind, EventKind::kQuote);
  EXPECT_EQ(first.ask_qty, 84'000'000);
  EXPECT_EQ(first.ask_price, 968'200'000'000);
  EXPECT_EQ(first.bid_price, 968'192'000'000);
  EXPECT_EQ(first.bid_qty, 67'000'000);
  EXPECT_EQ(lo, 966'666'000'000);                           // 9666.66
  EXPECT_EQ(hi, 968'469'000'000);                           // 9684.69
  EXPECT_EQ(books.find(0)->best_bid().price, e.bid_price);  // the last quote is the book
}

TEST(FeedTardis, ScalesAndTimestampSourceFollowTheOptions) {
  TardisOptions options;
  options.price_decimals = 2;
  options.qty_decimals = 3;
  options.use_local_timestamp = true;
  options.first_symbol_id = 40;
  auto reader =
      reader_of(std::string(kTradesHeader) + "binance-futures,BTCUSDT,100,250,7,sell,9681.5,0.003\n", options);
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].price, 968'150);
  EXPECT_EQ(events[0].qty, 3);
  EXPECT_EQ(events[0].ts_ns, 250'000);
  EXPECT_EQ(events[0].side, Side::kBuy);
  EXPECT_EQ(events[0].aux, 'S');
  EXPECT_EQ(events[0].symbol, 40u);
  EXPECT_EQ(reader.symbols().at(0).price_scale, 100);
  EXPECT_EQ(reader.symbols().at(0).qty_scale, 1'000);
}

TEST(FeedTardis, SymbolsGetIdsInOrderOfFirstAppearance) {
  auto reader = reader_of(std::string(kTradesHeader) +
                          "binance-futures,ETHUSDT,1,1,1,buy,100,1\n"
                          "binance-futures,BTCUSDT,2,2,2,buy,100,1\n"
                          "binance-futures,ETHUSDT,3,3,3,buy,100,1\n");
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].symbol, 0u);
  EXPECT_EQ(events[1].symbol, 1u);
  EXPECT_EQ(events[2].symbol, 0u);
  EXPECT_EQ(reader.symbols(), reader.scan_symbols());
  EXPECT_EQ(reader.symbols().at(1).name, "BTCUSDT");
}

TEST(FeedTardis, EmptyQuoteSideIsZeroAndNeverCrossed) {
  auto reader = reader_of(std::string(kQuotesHeader) + "binance-futures,BTCUSDT,1,1,,,9681.92,0.67\n");
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ask_qty, 0);
  EXPECT_EQ(events[0].ask_price, 0);
  EXPECT_EQ(events[0].bid_qty, 67'000'000);
}

TEST(FeedTardis, MoreDecimalsThanTheScaleKeepsIsABadNumberNotARounding) {
  TardisOptions options;
  options.price_decimals = 2;
  auto reader = reader_of(std::string(kTradesHeader) + "binance-futures,BTCUSDT,1,1,1,buy,9682.125,1\n", options);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { read_all(reader); });
  EXPECT_EQ(what,
            "t.csv:2: bad_number: field 7 (price): not a number (or more decimals than the scale keeps) in "
            "'binance-futures,BTCUSDT,1,1,1,buy,9682.125,1'");
}

TEST(FeedTardis, MalformedLineUnderSkipIsCountedAndSkipped) {
  TardisOptions options;
  options.policy = ParsePolicy::kSkip;
  auto reader = reader_of(std::string(kTradesHeader) +
                              "binance-futures,BTCUSDT,1,1,1,buy,9682,1\n"
                              "binance-futures,BTCUSDT,2,2,2,buy,9682\n"
                              "binance-futures,BTCUSDT,3,3,3,hold,9682,1\n"
                              "binance-futures,BTCUSDT,4,4,4,sell,9682,1\n",
                          options);
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].order_id, 4u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kColumnCount), 1u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kBadValue), 1u);
  EXPECT_EQ(reader.stats().first_issues.at(0).message(),
            "t.csv:3: column_count: field 8 (amount): too few fields in 'binance-futures,BTCUSDT,2,2,2,buy,9682'");
  EXPECT_EQ(reader.stats().first_issues.at(1).message(), "t.csv:4: bad_value: side 'hold' is not buy, sell or unknown");
}

TEST(FeedTardis, CrossedQuoteIsReported) {
  auto reader = reader_of(std::string(kQuotesHeader) + "binance-futures,BTCUSDT,1,1,0.5,9682,9682.01,0.6\n");
  const std::string what = expect_error(ErrorCode::kParseError, [&] { read_all(reader); });
  EXPECT_EQ(what, "t.csv:2: crossed_book: bid 968201000000 >= ask 968200000000 (scaled by 10^8)");
  EXPECT_EQ(reader.stats().count(ParseIssue::kCrossedBook), 1u);
}

TEST(FeedTardis, OutOfOrderTimestampIsReportedAndTheLineStillHandedOut) {
  TardisOptions options;
  options.policy = ParsePolicy::kSkip;
  auto reader = reader_of(std::string(kQuotesHeader) +
                              "binance-futures,BTCUSDT,5,5,0.5,9683,9682,0.6\n"
                              "binance-futures,BTCUSDT,4,6,0.5,9684,9683,0.6\n"
                              "binance-futures,BTCUSDT,6,7,0.5,9684,9683,0.7\n",
                          options);
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].ts_ns, 4000);
  EXPECT_EQ(reader.stats().count(ParseIssue::kOutOfOrderTimestamp), 1u);
  EXPECT_EQ(reader.stats().first_issues.at(0).message(), "t.csv:3: out_of_order_timestamp: time 4000 ns after 5000 ns");
  // The late quote is a top-of-book update: the book after it is the one with it applied.
  OrderBook book;
  for (const Event& e : events) book.apply(e);
  EXPECT_EQ(book.best_bid().price, 968'300'000'000);
  EXPECT_EQ(book.best_bid().qty, 70'000'000);
  // Under kStop the same report is thrown (the policy's "stop").
  auto stop = reader_of(std::string(kTradesHeader) +
                        "binance-futures,BTCUSDT,5,5,1,buy,9682,1\n"
                        "binance-futures,BTCUSDT,4,6,2,buy,9682,1\n");
  Event e{};
  ASSERT_TRUE(stop.next(e));
  EXPECT_EQ(expect_error(ErrorCode::kParseError, [&] { stop.next(e); }),
            "t.csv:3: out_of_order_timestamp: time 4000 ns after 5000 ns");
}

TEST(FeedTardis, SymbolsPastTheLimitsAreBadValuesAndKeepMemoryBounded) {
  TardisOptions options;
  options.policy = ParsePolicy::kSkip;
  std::string text = kTradesHeader;
  for (std::size_t i = 0; i <= kTardisMaxSymbols; ++i)
    text += "binance-futures,S" + std::to_string(i) + ",5,5,1,buy,9682,1\n";
  text += "binance-futures," + std::string(40, 'X') + ",5,5,1,buy,9682,1\n";
  auto reader = reader_of(text, options);
  EXPECT_EQ(read_all(reader).size(), kTardisMaxSymbols);
  EXPECT_EQ(reader.symbols().size(), kTardisMaxSymbols);
  EXPECT_EQ(reader.scan_symbols().size(), kTardisMaxSymbols);
  EXPECT_EQ(reader.stats().count(ParseIssue::kBadValue), 2u);
  ASSERT_EQ(reader.stats().first_issues.size(), 2u);
  EXPECT_EQ(reader.stats().first_issues[0].message(),
            "t.csv:4098: bad_value: symbol 'S4096': more than 4096 distinct symbols");
  EXPECT_EQ(reader.stats().first_issues[1].message(), "t.csv:4099: bad_value: symbol of 40 bytes (at most 39)");
}

TEST(FeedTardis, FileCutMidLineIsReportedAsTruncated) {
  TardisOptions options;
  options.policy = ParsePolicy::kSkip;
  auto reader =
      reader_of(std::string(kTradesHeader) + "binance-futures,BTCUSDT,5,5,1,buy,9682,1\nbinance-fut", options);
  EXPECT_EQ(read_all(reader).size(), 1u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kTruncated), 1u);
}

TEST(FeedTardis, UnknownHeaderIsRefused) {
  const std::string what = expect_error(ErrorCode::kParseError, [] { reader_of("a,b,c\n1,2,3\n"); });
  EXPECT_EQ(what, "t.csv:1: not a Tardis trades or quotes header: 'a,b,c'");
}

}  // namespace
}  // namespace tickinfer::feed
