// ITCH 5.0 reader: the real directory fixture, every message type of the spec, book building from
// spec-encoded order flow, and each damaged-input path.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "feed_test_support.hpp"
#include "tickinfer/feed/book_set.hpp"
#include "tickinfer/feed/itch.hpp"

namespace tickinfer::feed {
namespace {

using testing::expect_error;
using testing::ItchEncoder;

ItchReader reader_of(const ItchEncoder& enc, ParsePolicy policy = ParsePolicy::kStop) {
  return ItchReader(ByteSource::from_string("x.itch", enc.bytes()), ItchOptions{policy});
}

std::vector<Event> read_all(ItchReader& reader) {
  std::vector<Event> out;
  Event e{};
  while (reader.next(e)) out.push_back(e);
  return out;
}

constexpr std::int64_t kT = 34'200'000'000'000;  // 09:30

TEST(FeedItch, MessageLengthsAreTheSpecsForAllTwentyThreeTypes) {
  const std::map<char, std::size_t> spec = {{'S', 12}, {'R', 39}, {'H', 25}, {'Y', 20}, {'L', 26}, {'V', 35},
                                            {'W', 12}, {'K', 28}, {'J', 35}, {'h', 21}, {'A', 36}, {'F', 40},
                                            {'E', 31}, {'C', 36}, {'X', 23}, {'D', 19}, {'U', 35}, {'P', 44},
                                            {'Q', 40}, {'B', 19}, {'I', 50}, {'N', 20}, {'O', 48}};
  for (int c = 0; c < 256; ++c) {
    const char type = static_cast<char>(c);
    const auto it = spec.find(type);
    EXPECT_EQ(itch_message_length(type), it == spec.end() ? 0u : it->second) << "type " << c;
  }
}

TEST(FeedItch, ParsesTheRealDirectoryFixtureCompletely) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  auto reader = ItchReader::open(testing::itch_fixture().string());
  std::map<EventKind, int> kinds;
  Event e{};
  std::int64_t first_ts = -1, last_ts = 0;
  std::uint32_t max_locate = 0;
  while (reader.next(e)) {
    ++kinds[e.kind];
    if (first_ts < 0) first_ts = e.ts_ns;
    EXPECT_GE(e.ts_ns, last_ts);
    last_ts = e.ts_ns;
    max_locate = std::max(max_locate, e.symbol);
    if (e.kind == EventKind::kSymbolDirectory) {
      EXPECT_GT(e.qty, 0) << "round lot size";
    }
  }
  // SOURCE.md: 1 System Event, 993 Stock Directory, 3 Trading Action, 3 Reg SHO; ends on a boundary.
  EXPECT_EQ(reader.stats().records, 1000u);
  EXPECT_EQ(reader.stats().events, 1000u);
  EXPECT_EQ(reader.stats().total_issues(), 0u);
  EXPECT_EQ(reader.offset(), 40'874u);
  EXPECT_EQ(kinds[EventKind::kSystem], 1);
  EXPECT_EQ(kinds[EventKind::kSymbolDirectory], 993);
  EXPECT_EQ(kinds[EventKind::kTradingStatus], 3);
  EXPECT_EQ(kinds[EventKind::kRegSho], 3);
  EXPECT_EQ(first_ts, ((3 * 60 + 4) * 60 + 32) * 1'000'000'000LL + 57'543'747);  // 03:04:32.057543747
  EXPECT_EQ(last_ts, ((3 * 60 + 9) * 60 + 14) * 1'000'000'000LL + 360'581'176);  // 03:09:14.360581176
  EXPECT_EQ(max_locate, 993u);

  const auto symbols = reader.symbols();
  ASSERT_EQ(symbols.size(), 993u);
  EXPECT_EQ(symbols.front().id, 1u);
  EXPECT_EQ(symbols.front().name, "A");
  EXPECT_EQ(symbols[1].name, "AA");
  EXPECT_EQ(symbols[2].name, "AAAU");
  EXPECT_EQ(symbols.back().id, 993u);
  EXPECT_EQ(symbols.back().name, "BPFH");
  EXPECT_EQ(symbols.front().price_scale, kItchPriceScale);
  EXPECT_EQ(reader.scan_directory(), symbols);
}

TEST(FeedItch, DecodesEveryMessageTypeOfTheSpec) {
  ItchEncoder enc;
  std::int64_t t = kT;
  enc.begin('S', 0, ++t).ch('Q').end();
  enc.directory(7, ++t, "AAPL");
  enc.begin('H', 7, ++t).alpha("AAPL", 8).ch('T').ch(' ').alpha("LUDP", 4).end();
  enc.begin('Y', 7, ++t).alpha("AAPL", 8).ch('1').end();
  enc.begin('L', 7, ++t).alpha("NSDQ", 4).alpha("AAPL", 8).ch('Y').ch('N').ch('A').end();
  enc.begin('V', 0, ++t).be(1'000'000'000'000, 8).be(900'000'000'000, 8).be(800'000'000'000, 8).end();
  enc.begin('W', 0, ++t).ch('2').end();
  enc.begin('K', 7, ++t).alpha("AAPL", 8).be(34'500, 4).ch('A').be(250'000, 4).end();
  enc.begin('J', 7, ++t).alpha("AAPL", 8).be(1'000'000, 4).be(1'100'000, 4).be(900'000, 4).be(2, 4).end();
  enc.begin('h', 7, ++t).alpha("AAPL", 8).ch('Q').ch('H').end();
  enc.add(7, ++t, 11, 'B', 100, "AAPL", 1'500'000);
  enc.add_mpid(7, ++t, 12, 'S', 50, "AAPL", 1'500'500, "GSCO");
  enc.executed(7, ++t, 11, 10, 901);
  enc.executed_with_price(7, ++t, 11, 5, 902, 'N', 1'499'900);
  enc.cancel(7, ++t, 11, 20);
  enc.del(7, ++t, 11);
  enc.replace(7, ++t, 12, 13, 40, 1'500'400);
  enc.trade(7, ++t, 0, 'S', 300, "AAPL", 1'500'200, 903);
  enc.begin('Q', 7, ++t).be(5'000'000'000, 8).alpha("AAPL", 8).be(1'500'000, 4).be(904, 8).ch('O').end();
  enc.begin('B', 7, ++t).be(903, 8).end();
  enc.begin('I', 7, ++t)
      .be(1000, 8)
      .be(200, 8)
      .ch('B')
      .alpha("AAPL", 8)
      .be(1'510'000, 4)
      .be(1'505'000, 4)
      .be(1'500'000, 4)
      .ch('O')
      .ch('L')
      .end();
  enc.begin('N', 7, ++t).alpha("AAPL", 8).ch('B').end();
  enc.begin('O', 7, ++t)
      .alpha("AAPL", 8)
      .ch('Y')
      .be(1'000'000, 4)
      .be(2'000'000, 4)
      .be(1'500'000, 4)
      .be(34'200'000'000'123, 8)
      .be(1'400'000, 4)
      .be(1'600'000, 4)
      .end();

  auto reader = reader_of(enc);
  const auto ev = read_all(reader);
  ASSERT_EQ(ev.size(), 23u);
  EXPECT_EQ(reader.stats().total_issues(), 0u);
  for (std::size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i].ts_ns, kT + 1 + static_cast<std::int64_t>(i));
  const std::uint64_t aapl = pack_text8("AAPL    ");

  EXPECT_EQ(ev[0].kind, EventKind::kSystem);
  EXPECT_EQ(ev[0].aux, 'Q');
  EXPECT_EQ(ev[1].kind, EventKind::kSymbolDirectory);
  EXPECT_EQ(ev[1].symbol, 7u);
  EXPECT_EQ(ev[1].order_id, aapl);
  EXPECT_EQ(ev[1].aux, 'Q');
  EXPECT_EQ(ev[1].flags, 'N');
  EXPECT_EQ(ev[1].qty, 100);
  EXPECT_EQ(ev[1].new_order_id, pack_text8("NCZ P N1"));
  EXPECT_EQ(ev[1].bid_qty, 'N');
  EXPECT_EQ(ev[1].ask_qty, 'N');
  EXPECT_EQ(ev[2].kind, EventKind::kTradingStatus);
  EXPECT_EQ(ev[2].aux, 'T');
  EXPECT_EQ(ev[2].new_order_id, pack_text8("LUDP"));
  EXPECT_EQ(ev[3].kind, EventKind::kRegSho);
  EXPECT_EQ(ev[3].aux, '1');
  EXPECT_EQ(ev[4].kind, EventKind::kParticipantPosition);
  EXPECT_EQ(ev[4].new_order_id, pack_text8("NSDQ"));
  EXPECT_EQ(ev[4].order_id, aapl);
  EXPECT_EQ(ev[4].aux, 'A');
  EXPECT_EQ(ev[5].kind, EventKind::kMwcbDeclineLevel);
  EXPECT_EQ(ev[5].flags, kFlagPrice8);
  EXPECT_EQ(ev[5].price, 1'000'000'000'000);
  EXPECT_EQ(ev[5].bid_price, 900'000'000'000);
  EXPECT_EQ(ev[5].ask_price, 800'000'000'000);
  EXPECT_EQ(ev[6].kind, EventKind::kMwcbStatus);
  EXPECT_EQ(ev[6].aux, '2');
  EXPECT_EQ(ev[7].kind, EventKind::kIpoQuotingPeriod);
  EXPECT_EQ(ev[7].qty, 34'500);
  EXPECT_EQ(ev[7].aux, 'A');
  EXPECT_EQ(ev[7].price, 250'000);
  EXPECT_EQ(ev[8].kind, EventKind::kLuldCollar);
  EXPECT_EQ(ev[8].price, 1'000'000);
  EXPECT_EQ(ev[8].ask_price, 1'100'000);
  EXPECT_EQ(ev[8].bid_price, 900'000);
  EXPECT_EQ(ev[8].qty, 2);
  EXPECT_EQ(ev[9].kind, EventKind::kOperationalHalt);
  EXPECT_EQ(ev[9].new_order_id, static_cast<std::uint64_t>('Q'));
  EXPECT_EQ(ev[9].aux, 'H');
  EXPECT_EQ(ev[10].kind, EventKind::kAdd);
  EXPECT_EQ(ev[10].order_id, 11u);
  EXPECT_EQ(ev[10].side, Side::kBuy);
  EXPECT_EQ(ev[10].qty, 100);
  EXPECT_EQ(ev[10].price, 1'500'000);
  EXPECT_EQ(ev[10].flags, 0);
  EXPECT_EQ(ev[11].kind, EventKind::kAdd);
  EXPECT_EQ(ev[11].side, Side::kSell);
  EXPECT_EQ(ev[11].flags, kFlagAttributed);
  EXPECT_EQ(ev[11].new_order_id, pack_text8("GSCO"));
  EXPECT_EQ(ev[12].kind, EventKind::kExecute);
  EXPECT_EQ(ev[12].qty, 10);
  EXPECT_EQ(ev[12].new_order_id, 901u);
  EXPECT_EQ(ev[12].flags, 0);
  EXPECT_EQ(ev[13].kind, EventKind::kExecute);
  EXPECT_EQ(ev[13].flags, kFlagExecutionPrice);
  EXPECT_EQ(ev[13].price, 1'499'900);
  EXPECT_EQ(ev[13].aux, 'N');
  EXPECT_EQ(ev[14].kind, EventKind::kCancel);
  EXPECT_EQ(ev[14].qty, 20);
  EXPECT_EQ(ev[15].kind, EventKind::kDelete);
  EXPECT_EQ(ev[15].order_id, 11u);
  EXPECT_EQ(ev[16].kind, EventKind::kReplace);
  EXPECT_EQ(ev[16].order_id, 12u);
  EXPECT_EQ(ev[16].new_order_id, 13u);
  EXPECT_EQ(ev[16].qty, 40);
  EXPECT_EQ(ev[16].price, 1'500'400);
  EXPECT_EQ(ev[17].kind, EventKind::kTrade);
  EXPECT_EQ(ev[17].side, Side::kSell);
  EXPECT_EQ(ev[17].qty, 300);
  EXPECT_EQ(ev[17].new_order_id, 903u);
  EXPECT_EQ(ev[18].kind, EventKind::kCrossTrade);
  EXPECT_EQ(ev[18].qty, 5'000'000'000);  // 8-byte share count
  EXPECT_EQ(ev[18].price, 1'500'000);
  EXPECT_EQ(ev[18].new_order_id, 904u);
  EXPECT_EQ(ev[18].aux, 'O');
  EXPECT_EQ(ev[19].kind, EventKind::kBrokenTrade);
  EXPECT_EQ(ev[19].new_order_id, 903u);
  EXPECT_EQ(ev[20].kind, EventKind::kImbalance);
  EXPECT_EQ(ev[20].bid_qty, 1000);
  EXPECT_EQ(ev[20].ask_qty, 200);
  EXPECT_EQ(ev[20].aux, 'B');
  EXPECT_EQ(ev[20].ask_price, 1'510'000);
  EXPECT_EQ(ev[20].bid_price, 1'505'000);
  EXPECT_EQ(ev[20].price, 1'500'000);
  EXPECT_EQ(ev[20].new_order_id, pack_text8("OL"));
  EXPECT_EQ(ev[21].kind, EventKind::kRetailInterest);
  EXPECT_EQ(ev[21].aux, 'B');
  EXPECT_EQ(ev[22].kind, EventKind::kDirectListing);
  EXPECT_EQ(ev[22].aux, 'Y');
  EXPECT_EQ(ev[22].bid_qty, 1'000'000);
  EXPECT_EQ(ev[22].ask_qty, 2'000'000);
  EXPECT_EQ(ev[22].price, 1'500'000);
  EXPECT_EQ(ev[22].qty, 34'200'000'000'123);
  EXPECT_EQ(ev[22].bid_price, 1'400'000);
  EXPECT_EQ(ev[22].ask_price, 1'600'000);
}

TEST(FeedItch, BuildsBooksFromAddExecuteCancelDeleteReplace) {
  ItchEncoder enc;
  std::int64_t t = kT;
  enc.directory(7, ++t, "AAPL");
  enc.directory(8, ++t, "MSFT");
  enc.add(7, ++t, 1, 'B', 100, "AAPL", 1'500'000);
  enc.add(7, ++t, 2, 'B', 200, "AAPL", 1'499'900);
  enc.add(7, ++t, 3, 'S', 150, "AAPL", 1'500'500);
  enc.add_mpid(7, ++t, 4, 'S', 50, "AAPL", 1'500'500, "GSCO");
  enc.add(8, ++t, 100, 'S', 10, "MSFT", 3'000'000);
  enc.executed(7, ++t, 3, 50, 1);                             // ask 1500500: 200 -> 150
  enc.executed_with_price(7, ++t, 1, 30, 2, 'Y', 1'500'000);  // bid 1500000: 100 -> 70
  enc.cancel(7, ++t, 2, 50);                                  // bid 1499900: 200 -> 150
  enc.replace(7, ++t, 4, 5, 80, 1'500'400);                   // ask 50 @ 1500500 -> 80 @ 1500400
  enc.del(7, ++t, 1);                                         // bid 1500000 gone
  enc.trade(7, ++t, 0, 'B', 500, "AAPL", 1'500'100, 3);       // hidden: no book change

  auto reader = reader_of(enc);
  BookSet books;
  Event e{};
  while (reader.next(e)) {
    const BookResult r = books.apply(e);
    EXPECT_TRUE(r == BookResult::kOk || r == BookResult::kIgnored) << to_string(r) << " at " << e.ts_ns;
  }
  EXPECT_EQ(reader.stats().total_issues(), 0u);
  ASSERT_EQ(books.size(), 2u);  // directory entries and trades create no books
  const OrderBook& aapl = *books.find(7);
  ASSERT_EQ(aapl.depth(Side::kBuy), 1u);
  EXPECT_EQ(aapl.best_bid(), (Level{1'499'900, 150, 1}));
  ASSERT_EQ(aapl.depth(Side::kSell), 2u);
  EXPECT_EQ(aapl.level(Side::kSell, 0), (Level{1'500'400, 80, 1}));
  EXPECT_EQ(aapl.level(Side::kSell, 1), (Level{1'500'500, 100, 1}));  // order 3 alone once 4 moved
  EXPECT_EQ(aapl.order_count(), 3u);
  ASSERT_NE(aapl.find_order(5), nullptr);
  EXPECT_EQ(aapl.find_order(5)->side, Side::kSell);  // replace keeps the side
  EXPECT_EQ(aapl.find_order(5)->qty, 80);
  EXPECT_EQ(aapl.find_order(4), nullptr);
  EXPECT_EQ(aapl.find_order(1), nullptr);
  EXPECT_EQ(books.find(8)->best_ask(), (Level{3'000'000, 10, 1}));
  EXPECT_EQ(books.stats().count(BookResult::kOk), 10u);
  EXPECT_EQ(books.stats().crossed, 0u);

  // A bid through the best ask crosses the book: applied, and reported.
  Event cross{};
  cross.kind = EventKind::kAdd;
  cross.symbol = 7;
  cross.ts_ns = ++t;
  cross.order_id = 6;
  cross.side = Side::kBuy;
  cross.qty = 10;
  cross.price = 1'500'400;
  EXPECT_EQ(books.apply(cross), BookResult::kCrossed);
  EXPECT_EQ(books.stats().crossed, 1u);
  EXPECT_EQ(books.stats().first_crossed_symbol, 7u);
  EXPECT_EQ(books.stats().first_crossed_ts_ns, t);
}

TEST(FeedItch, TruncatedMessageIsReportedAtItsByteOffset) {
  ItchEncoder enc;
  enc.add(7, kT, 1, 'B', 100, "AAPL", 1'500'000);
  const std::size_t offset = enc.size();
  enc.raw(std::string("\x00\x24", 2) + "A123456789");  // claims 36 bytes, holds 10
  {
    auto reader = reader_of(enc, ParsePolicy::kSkip);
    EXPECT_EQ(read_all(reader).size(), 1u);
    EXPECT_EQ(reader.stats().count(ParseIssue::kTruncated), 1u);
    ASSERT_EQ(reader.stats().first_issues.size(), 1u);
    EXPECT_TRUE(reader.stats().first_issues[0].byte_offset);
    EXPECT_EQ(reader.stats().first_issues[0].where, offset);
  }
  auto reader = reader_of(enc, ParsePolicy::kStop);
  Event e{};
  ASSERT_TRUE(reader.next(e));
  const std::string what = expect_error(ErrorCode::kParseError, [&] { reader.next(e); });
  EXPECT_EQ(what, "x.itch@" + std::to_string(offset) + ": truncated: message of 36 bytes, file ends after 10");
  EXPECT_FALSE(reader.next(e));
}

TEST(FeedItch, TruncatedLengthPrefixIsReported) {
  ItchEncoder enc;
  enc.add(7, kT, 1, 'B', 100, "AAPL", 1'500'000).raw(std::string("\x00", 1));
  auto reader = reader_of(enc, ParsePolicy::kSkip);
  EXPECT_EQ(read_all(reader).size(), 1u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kTruncated), 1u);
  EXPECT_EQ(reader.stats().first_issues.at(0).message(), "x.itch@38: truncated: file ends inside a length prefix");
}

TEST(FeedItch, UnknownMessageTypeIsSkippedByItsLengthUnderSkip) {
  ItchEncoder enc;
  enc.raw(std::string("\x00\x05Zabcd", 7)).add(7, kT, 1, 'B', 100, "AAPL", 1'500'000);
  auto reader = reader_of(enc, ParsePolicy::kSkip);
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::kAdd);
  EXPECT_EQ(reader.stats().count(ParseIssue::kUnknownMessageType), 1u);
  EXPECT_EQ(reader.stats().first_issues.at(0).message(), "x.itch@0: unknown_message_type: message type 'Z' (0x5a)");
}

TEST(FeedItch, UnknownMessageTypeThrowsUnderStopAndTheReaderResumes) {
  ItchEncoder enc;
  enc.raw(std::string("\x00\x05Zabcd", 7)).add(7, kT, 1, 'B', 100, "AAPL", 1'500'000);
  auto reader = reader_of(enc, ParsePolicy::kStop);
  Event e{};
  const std::string what = expect_error(ErrorCode::kParseError, [&] { reader.next(e); });
  EXPECT_EQ(what, "x.itch@0: unknown_message_type: message type 'Z' (0x5a)");
  ASSERT_TRUE(reader.next(e));
  EXPECT_EQ(e.kind, EventKind::kAdd);
}

TEST(FeedItch, LengthThatDisagreesWithTheSpecIsReported) {
  ItchEncoder enc;
  enc.begin('A', 7, kT).be(1, 8).ch('B').be(100, 4).alpha("AAPL", 8).be(1'500'000, 3).end();  // 35 bytes
  enc.raw(std::string("\x00\x00", 2));                                                        // empty message
  auto reader = reader_of(enc, ParsePolicy::kSkip);
  EXPECT_EQ(read_all(reader).size(), 0u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kBadLength), 2u);
  EXPECT_EQ(reader.stats().first_issues.at(0).message(),
            "x.itch@0: bad_length: type 'A' (0x41) is 35 bytes, the spec says 36");
  EXPECT_EQ(reader.stats().first_issues.at(1).message(), "x.itch@37: bad_length: zero-length message");
}

TEST(FeedItch, OutOfOrderTimestampIsReportedAndTheMessageStillHandedOut) {
  ItchEncoder enc;
  enc.add(7, kT + 2000, 1, 'B', 100, "AAPL", 1'500'000);
  enc.add(7, kT + 1000, 2, 'B', 100, "AAPL", 1'500'000);
  enc.add(7, kT + 3000, 3, 'B', 100, "AAPL", 1'500'000);
  auto reader = reader_of(enc, ParsePolicy::kSkip);
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].order_id, 2u);
  EXPECT_EQ(events[1].ts_ns, kT + 1000);  // as recorded
  EXPECT_EQ(reader.stats().count(ParseIssue::kOutOfOrderTimestamp), 1u);
  const std::string message = "x.itch@38: out_of_order_timestamp: timestamp " + std::to_string(kT + 1000) +
                              " ns after " + std::to_string(kT + 2000) + " ns";
  EXPECT_EQ(reader.stats().first_issues.at(0).message(), message);
  // Under kStop the same report is thrown (the policy's "stop").
  auto stop = reader_of(enc, ParsePolicy::kStop);
  Event e{};
  ASSERT_TRUE(stop.next(e));
  EXPECT_EQ(expect_error(ErrorCode::kParseError, [&] { stop.next(e); }), message);
}

TEST(FeedItch, NewSessionForgetsTheLastTimestampSoTheNextDaysFirstMessageIsInOrder) {
  ItchEncoder day1, day2;
  day1.add(7, kT + 5000, 1, 'B', 100, "AAPL", 1'500'000);
  day2.add(7, kT, 1, 'B', 100, "AAPL", 1'500'000);
  auto message = [](const ItchEncoder& enc) {  // without BinaryFILE's 2-byte length prefix, as MoldUDP64 frames it
    return std::vector<unsigned char>(enc.bytes().begin() + 2, enc.bytes().end());
  };
  Event e{};
  ItchReader renewed(ByteSource::from_string("udp", ""), ItchOptions{ParsePolicy::kSkip});
  ASSERT_TRUE(renewed.decode_message(message(day1), 1, e));
  renewed.new_session();
  ASSERT_TRUE(renewed.decode_message(message(day2), 1, e));
  EXPECT_EQ(e.ts_ns, kT);
  EXPECT_EQ(renewed.stats().total_issues(), 0u);
  // The same two messages in one session: the second is out of order.
  ItchReader same(ByteSource::from_string("udp", ""), ItchOptions{ParsePolicy::kSkip});
  ASSERT_TRUE(same.decode_message(message(day1), 1, e));
  ASSERT_TRUE(same.decode_message(message(day2), 2, e));
  EXPECT_EQ(same.stats().count(ParseIssue::kOutOfOrderTimestamp), 1u);
}

TEST(FeedItch, BookAfterABackwardsTimestampEqualsTheBookWithTheMessageApplied) {
  // The execution of order 1 is stamped before the add of order 2: dropping it would leave order 1 at 100
  // shares for every later message of it.
  ItchEncoder late, ordered;
  late.add(7, kT + 1000, 1, 'B', 100, "AAPL", 1'500'000).add(7, kT + 3000, 2, 'S', 50, "AAPL", 1'501'000);
  late.executed(7, kT + 2000, 1, 30, 9).cancel(7, kT + 4000, 1, 20);
  ordered.add(7, kT + 1000, 1, 'B', 100, "AAPL", 1'500'000).add(7, kT + 3000, 2, 'S', 50, "AAPL", 1'501'000);
  ordered.executed(7, kT + 3000, 1, 30, 9).cancel(7, kT + 4000, 1, 20);
  auto build = [](const ItchEncoder& enc) {
    auto reader = reader_of(enc, ParsePolicy::kSkip);
    OrderBook book(7);
    for (const Event& e : read_all(reader)) EXPECT_EQ(book.apply(e), BookResult::kOk);
    return std::make_pair(std::move(book), reader.stats());
  };
  const auto [got, stats] = build(late);
  const auto [want, clean] = build(ordered);
  EXPECT_EQ(stats.count(ParseIssue::kOutOfOrderTimestamp), 1u);
  EXPECT_EQ(clean.total_issues(), 0u);
  EXPECT_EQ(got.best_bid(), want.best_bid());
  EXPECT_EQ(got.best_bid(), (Level{1'500'000, 50, 1}));
  EXPECT_EQ(got.best_ask(), want.best_ask());
  ASSERT_NE(got.find_order(1), nullptr);
  EXPECT_EQ(got.find_order(1)->qty, 50);
}

TEST(FeedItch, GigabyteOfZerosLosesTheStreamAfterABoundedRunOfFramingErrors) {
  // 1 GiB of zeros reads as 2-byte zero-length messages: 536M issues before, 16 + 1 now.
  testing::TempDir dir;
  const std::string path = dir.file("zeros.itch");
  constexpr std::uint64_t kSize = std::uint64_t{1} << 30;
  testing::sparse_file(path, kSize);
  auto reader = ItchReader::open(path, ItchOptions{ParsePolicy::kSkip});
  EXPECT_TRUE(read_all(reader).empty());
  const ParseStats& stats = reader.stats();
  EXPECT_EQ(stats.records, 16u);
  EXPECT_EQ(stats.count(ParseIssue::kBadLength), 16u);
  EXPECT_EQ(stats.count(ParseIssue::kStreamLost), 1u);
  EXPECT_TRUE(stats.stream_lost());
  ASSERT_EQ(stats.first_issues.size(), ParseStats::kMaxKeptReports + 1);  // the first 16, and where it was lost
  EXPECT_EQ(stats.first_issues.back().message(),
            path +
                "@0: stream_lost: 16 consecutive framing errors (zero-length, unknown-type or wrong-length "
                "messages) from here to offset 32: the stream is lost; the remaining " +
                std::to_string(kSize - 32) + " bytes are not read");
  EXPECT_EQ(reader.offset(), kSize);
  EXPECT_TRUE(reader.scan_directory().empty());
}

TEST(FeedItch, StreamLossUnderStopIsThrownAfterTheRunAndEndsTheStream) {
  ItchEncoder enc;
  enc.add(7, kT, 1, 'B', 100, "AAPL", 1'500'000);
  for (int i = 0; i < 3; ++i) enc.raw(std::string("\x00\x03Zab", 5));  // unknown type, framed
  enc.add(7, kT, 2, 'B', 100, "AAPL", 1'500'000);
  ItchReader reader(ByteSource::from_string("x.itch", enc.bytes()), ItchOptions{ParsePolicy::kStop, 3});
  Event e{};
  ASSERT_TRUE(reader.next(e));
  for (int i = 0; i < 3; ++i) expect_error(ErrorCode::kParseError, [&] { reader.next(e); });
  const std::string what = expect_error(ErrorCode::kParseError, [&] { reader.next(e); });
  EXPECT_EQ(what,
            "x.itch@38: stream_lost: 3 consecutive framing errors (zero-length, unknown-type or wrong-length "
            "messages) from here to offset 53: the stream is lost; the remaining 38 bytes are not read");
  EXPECT_FALSE(reader.next(e));  // order 2 is past the loss
}

TEST(FeedItch, AWellFramedMessageEndsARunOfFramingErrors) {
  ItchEncoder enc;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 2; ++i) enc.raw(std::string("\x00\x00", 2));
    enc.add(7, kT, static_cast<std::uint64_t>(round) + 1, 'B', 100, "AAPL", 1'500'000);
  }
  ItchReader reader(ByteSource::from_string("x.itch", enc.bytes()), ItchOptions{ParsePolicy::kSkip, 3});
  EXPECT_EQ(read_all(reader).size(), 4u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kBadLength), 8u);
  EXPECT_FALSE(reader.stats().stream_lost());
}

TEST(FeedItch, DirectoryScanStopsWhereTheStreamIsLost) {
  ItchEncoder enc;
  enc.directory(1, kT, "AAPL").raw(std::string(64, '\0')).directory(2, kT, "MSFT");
  auto reader = reader_of(enc, ParsePolicy::kSkip);
  EXPECT_EQ(reader.scan_directory(), (std::vector<SymbolInfo>{{1, "AAPL", kItchPriceScale, 1}}));
  EXPECT_EQ(read_all(reader).size(), 1u);
  EXPECT_TRUE(reader.stats().stream_lost());
}

TEST(FeedItch, AddWithAnUndefinedSideIsABadValue) {
  ItchEncoder enc;
  enc.add(7, kT, 1, 'Z', 100, "AAPL", 1'500'000);
  auto reader = reader_of(enc, ParsePolicy::kStop);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { read_all(reader); });
  EXPECT_EQ(what, "x.itch@0: bad_value: add order with side 'Z' (0x5a)");
}

}  // namespace
}  // namespace tickinfer::feed
