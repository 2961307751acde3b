// LOBSTER reader and book validator: the real AMZN level-1 and GOOG level-10 samples, and every bad-input path.
#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <string>
#include <vector>

#include "feed_test_support.hpp"
#include "tickinfer/feed/lobster.hpp"
#include "tickinfer/feed/lobster_book.hpp"

namespace tickinfer::feed {
namespace {

using testing::expect_error;

// A small level-1 day by hand: a resting ask from before the file (id 5) and order flow around it.
constexpr const char* kMessages =
    "34200.000000001,1,10,100,1000000,1\n"  // bid 100 @ 100.00
    "34200.5,1,11,50,1000100,1\n"           // better bid 50 @ 100.01
    "34201.25,4,11,20,1000100,1\n"          // 20 executed
    "34202,2,10,30,1000000,1\n"             // partial cancel, level 2 (no row change)
    "34203.000000009,3,11,30,1000100,1\n"   // best bid deleted: 100.00 x 70 moves up
    "34204,5,0,7,1000150,-1\n"              // hidden execution
    "34205,4,5,10,1000200,-1\n";            // execution of a pre-existing ask
constexpr const char* kRows =
    "1000200,40,1000000,100\n"
    "1000200,40,1000100,50\n"
    "1000200,40,1000100,30\n"
    "1000200,40,1000100,30\n"
    "1000200,40,1000000,70\n"
    "1000200,40,1000000,70\n"
    "1000200,30,1000000,70\n";

LobsterReader reader_of(std::string messages, std::string rows = {}, ParsePolicy policy = ParsePolicy::kStop) {
  std::optional<ByteSource> book;
  if (!rows.empty()) book = ByteSource::from_string("book.csv", std::move(rows));
  LobsterOptions options;
  options.policy = policy;
  options.symbol_name = "TEST";
  return LobsterReader(ByteSource::from_string("msg.csv", std::move(messages)), std::move(book), options);
}

std::vector<Event> read_all(LobsterReader& reader) {
  std::vector<Event> out;
  Event e{};
  while (reader.next(e)) out.push_back(e);
  return out;
}

TEST(FeedLobster, MapsEachMessageTypeToEventFields) {
  auto reader = reader_of(kMessages, kRows);
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[0].ts_ns, 34'200'000'000'001);
  EXPECT_EQ(events[0].kind, EventKind::kAdd);
  EXPECT_EQ(events[0].order_id, 10u);
  EXPECT_EQ(events[0].qty, 100);
  EXPECT_EQ(events[0].price, 1'000'000);
  EXPECT_EQ(events[0].side, Side::kBuy);
  EXPECT_EQ(events[1].ts_ns, 34'200'500'000'000);  // fewer than 9 decimals are padded
  EXPECT_EQ(events[2].kind, EventKind::kExecute);
  EXPECT_EQ(events[3].kind, EventKind::kCancel);
  EXPECT_EQ(events[4].kind, EventKind::kDelete);
  EXPECT_EQ(events[4].ts_ns, 34'203'000'000'009);
  EXPECT_EQ(events[5].kind, EventKind::kTrade);
  EXPECT_EQ(events[5].side, Side::kSell);
  EXPECT_EQ(events[6].kind, EventKind::kExecute);
  EXPECT_EQ(reader.levels(), 1u);
  EXPECT_EQ(std::vector<std::int64_t>(reader.book_row().begin(), reader.book_row().end()),
            (std::vector<std::int64_t>{1000200, 30, 1000000, 70}));
  EXPECT_EQ(reader.line(), 7u);
  EXPECT_EQ(reader.stats().events, 7u);
  EXPECT_EQ(reader.stats().total_issues(), 0u);
  EXPECT_EQ(reader.symbol().name, "TEST");
  EXPECT_EQ(reader.symbol().price_scale, kLobsterPriceScale);
}

TEST(FeedLobster, EventsCarryTheOrderbookTopOnlyWhenReadWithIt) {
  auto with_book = reader_of(kMessages, kRows);
  auto events = read_all(with_book);
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[6].flags, kFlagTopOfBook);
  EXPECT_EQ(events[6].ask_price, 1000200);
  EXPECT_EQ(events[6].ask_qty, 30);
  EXPECT_EQ(events[6].bid_price, 1000000);
  EXPECT_EQ(events[6].bid_qty, 70);
  auto without = reader_of(kMessages);
  events = read_all(without);
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[6].flags, 0);
  EXPECT_EQ(events[6].ask_qty, 0);
  // LOBSTER's empty-level placeholders become an empty side.
  auto empty_side = reader_of("34200,1,10,100,1000000,1\n", "9999999999,0,1000000,100\n");
  events = read_all(empty_side);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ask_price, 0);
  EXPECT_EQ(events[0].ask_qty, 0);
  EXPECT_EQ(events[0].bid_qty, 100);
}

TEST(FeedLobster, ValidatorRunsFromEventsThatCarryTheirTopOfBook) {
  auto reader = reader_of(kMessages, kRows);
  const auto events = read_all(reader);
  const auto result = validate_lobster(events);
  EXPECT_EQ(result.rows, 7u);
  EXPECT_EQ(result.disagreements, 0u);
  auto plain = reader_of(kMessages);
  const auto bare = read_all(plain);
  expect_error(ErrorCode::kInvalidConfig, [&] { validate_lobster(bare); });
}

TEST(FeedLobster, ResetBookReplaysLikeANewOne) {
  auto reader = reader_of(kMessages, kRows);
  const auto events = read_all(reader);
  LobsterBook book(1);
  for (int pass = 0; pass < 2; ++pass) {
    book.reset();
    std::size_t bad = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
      book.apply(events[i]);
      bad += book.sync(events[i], i + 1);
    }
    EXPECT_EQ(bad, 0u) << "pass " << pass;
    EXPECT_EQ(book.book().best_bid(), (Level{1000000, 70, 0}));
  }
}

TEST(FeedLobster, HaltMessagesBecomeTradingStatusEvents) {
  auto reader = reader_of("36023,7,0,0,-1,-1\n36323,7,0,0,0,-1\n36723,7,0,0,1,-1\n");
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 3u);
  for (const auto& e : events) EXPECT_EQ(e.kind, EventKind::kTradingStatus);
  EXPECT_EQ(events[0].aux, 'H');
  EXPECT_EQ(events[1].aux, 'Q');
  EXPECT_EQ(events[2].aux, 'T');
}

TEST(FeedLobster, ValidatorAgreesWithHandBuiltRowsIncludingPreexistingOrders) {
  auto reader = reader_of(kMessages, kRows);
  const auto result = validate_lobster(reader);
  EXPECT_EQ(result.rows, 7u);
  EXPECT_EQ(result.disagreements, 0u) << (result.first.empty() ? "" : result.first[0].message());
}

TEST(FeedLobster, ValidatorReportsATamperedRowWithItsRowNumber) {
  std::string rows = kRows;
  rows.replace(rows.find("1000200,30,1000000,70\n"), 22, "1000200,31,1000000,70\n");  // row 7: ask 30 -> 31
  auto reader = reader_of(kMessages, rows);
  const auto result = validate_lobster(reader);
  ASSERT_EQ(result.disagreements, 1u);
  ASSERT_EQ(result.first.size(), 1u);
  EXPECT_EQ(result.first[0].row, 7u);
  EXPECT_EQ(result.first[0].side, Side::kSell);
  EXPECT_EQ(result.first[0].level, 0u);
  EXPECT_EQ(result.first[0].expected, (Level{1000200, 31, 0}));
  EXPECT_EQ(result.first[0].actual, (Level{1000200, 30, 0}));
  EXPECT_EQ(result.first[0].message(), "row 7: ask level 1: file 1000200 x 31, book 1000200 x 30");
}

TEST(FeedLobster, ValidatorWithoutOrderbookFileIsAConfigError) {
  auto reader = reader_of(kMessages);
  expect_error(ErrorCode::kInvalidConfig, [&] { validate_lobster(reader); });
}

TEST(FeedLobster, MalformedLineUnderSkipIsCountedAndSkipped) {
  std::string messages = kMessages;
  messages.replace(messages.find("34200.5,1,11,50,"), 16, "34200.5,1,11,5x,");
  auto reader = reader_of(messages, kRows, ParsePolicy::kSkip);
  const auto events = read_all(reader);
  EXPECT_EQ(events.size(), 6u);
  EXPECT_EQ(reader.stats().records, 7u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kBadNumber), 1u);
  EXPECT_EQ(reader.stats().total_issues(), 1u);
  ASSERT_EQ(reader.stats().first_issues.size(), 1u);
  const auto& report = reader.stats().first_issues[0];
  EXPECT_EQ(report.file, "msg.csv");
  EXPECT_EQ(report.where, 2u);
  EXPECT_FALSE(report.byte_offset);
  EXPECT_EQ(report.reason, ParseIssue::kBadNumber);
  EXPECT_EQ(events[1].order_id, 11u);  // the line after the bad one, paired with its own row
  EXPECT_EQ(events[1].kind, EventKind::kExecute);
}

TEST(FeedLobster, MalformedLineUnderStopThrowsWithFileLineAndReason) {
  std::string messages = kMessages;
  messages.replace(messages.find("34200.5,1,11,50,"), 16, "34200.5,1,11,5x,");
  auto reader = reader_of(messages, kRows, ParsePolicy::kStop);
  Event e{};
  ASSERT_TRUE(reader.next(e));
  const std::string what = expect_error(ErrorCode::kParseError, [&] { reader.next(e); });
  EXPECT_EQ(what, "msg.csv:2: bad_number: field 4 (size): not a number in '34200.5,1,11,5x,1000100,1'");
  EXPECT_EQ(reader.stats().count(ParseIssue::kBadNumber), 1u);
  ASSERT_TRUE(reader.next(e));  // resumes after the bad line
  EXPECT_EQ(reader.line(), 3u);
}

TEST(FeedLobster, TooFewAndTooManyFieldsAreColumnCountIssues) {
  auto reader = reader_of("34200,1,10,100,1000000\n34201,1,11,100,1000000,1,9\n\n34202,1,12,100,1000000,1\n", {},
                          ParsePolicy::kSkip);
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].order_id, 12u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kColumnCount), 3u);
  ASSERT_EQ(reader.stats().first_issues.size(), 3u);
  EXPECT_EQ(reader.stats().first_issues[0].message(),
            "msg.csv:1: column_count: field 6 (direction): too few fields in '34200,1,10,100,1000000'");
  EXPECT_EQ(reader.stats().first_issues[1].message(),
            "msg.csv:2: column_count: field 6 (direction): too many fields in '34201,1,11,100,1000000,1,9'");
  EXPECT_EQ(reader.stats().first_issues[2].message(), "msg.csv:3: column_count: empty line");
}

TEST(FeedLobster, UnknownEventTypeIsReported) {
  auto reader = reader_of("34200,9,10,100,1000000,1\n34201,1,11,100,1000000,1\n", {}, ParsePolicy::kSkip);
  EXPECT_EQ(read_all(reader).size(), 1u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kUnknownMessageType), 1u);
  EXPECT_EQ(reader.stats().first_issues.at(0).message(), "msg.csv:1: unknown_message_type: event type 9");
}

TEST(FeedLobster, BadDirectionIsABadValue) {
  auto reader = reader_of("34200,1,10,100,1000000,0\n");
  const std::string what = expect_error(ErrorCode::kParseError, [&] { read_all(reader); });
  EXPECT_EQ(what, "msg.csv:1: bad_value: direction 0 is not 1 or -1");
}

TEST(FeedLobster, OutOfOrderTimestampIsReportedAndTheEventStillHandedOut) {
  auto reader = reader_of("34200.2,1,10,100,1000000,1\n34200.1,1,11,100,1000000,1\n34200.3,1,12,100,1000000,1\n", {},
                          ParsePolicy::kSkip);
  const auto events = read_all(reader);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].order_id, 11u);
  EXPECT_EQ(events[1].ts_ns, 34'200'100'000'000);  // as recorded
  EXPECT_EQ(reader.stats().count(ParseIssue::kOutOfOrderTimestamp), 1u);
  const std::string message = "msg.csv:2: out_of_order_timestamp: time 34200100000000 ns after 34200200000000 ns";
  EXPECT_EQ(reader.stats().first_issues.at(0).message(), message);
  // Under kStop the same report is thrown (the policy's "stop").
  auto stop = reader_of("34200.2,1,10,100,1000000,1\n34200.1,1,11,100,1000000,1\n");
  Event e{};
  ASSERT_TRUE(stop.next(e));
  EXPECT_EQ(expect_error(ErrorCode::kParseError, [&] { stop.next(e); }), message);
}

TEST(FeedLobster, BookAfterABackwardsTimestampEqualsTheBookWithTheMessageApplied) {
  // The partial cancel of order 10 is stamped before the add of order 11 (with its row): it must still
  // reach the book, or order 10 keeps 30 shares too many for the rest of the day.
  const std::string late =
      "34200,1,10,100,1000000,1\n34202,1,11,50,1000100,1\n34201,2,10,30,1000000,1\n34203,3,10,70,1000000,1\n";
  const std::string ordered =
      "34200,1,10,100,1000000,1\n34202,1,11,50,1000100,1\n34202,2,10,30,1000000,1\n34203,3,10,70,1000000,1\n";
  const std::string rows =
      "1000200,40,1000000,100\n1000200,40,1000100,50\n1000200,40,1000100,50\n1000200,40,1000100,50\n";
  auto build = [&](const std::string& messages, std::size_t rows_to_apply) {
    auto reader = reader_of(messages, rows, ParsePolicy::kSkip);
    LobsterBook book(1);
    std::vector<LobsterDisagreement> bad;
    std::size_t n = 0;
    Event e{};
    while (n < rows_to_apply && reader.next(e)) {
      book.apply(e);
      book.sync(reader.book_row(), reader.line(), &bad, 4);
      ++n;
    }
    EXPECT_TRUE(bad.empty()) << bad.front().message();
    return std::make_pair(n, reader.stats().count(ParseIssue::kOutOfOrderTimestamp));
  };
  EXPECT_EQ(build(late, 4), std::make_pair(std::size_t{4}, std::uint64_t{1}));
  EXPECT_EQ(build(ordered, 4), std::make_pair(std::size_t{4}, std::uint64_t{0}));
  // The order-level view: the book rebuilt from messages alone.
  auto books = [](const std::string& messages) {
    auto reader = reader_of(messages, {}, ParsePolicy::kSkip);
    LobsterBook book(1);
    for (const Event& e : read_all(reader)) book.apply(e);
    std::vector<Level> bids;
    for (std::size_t i = 0; i < book.book().depth(Side::kBuy); ++i) bids.push_back(book.book().level(Side::kBuy, i));
    return bids;
  };
  EXPECT_EQ(books(late), books(ordered));
  EXPECT_EQ(books(late), (std::vector<Level>{{1'000'100, 50, 1}}));  // order 10 gone whole, no 30 shares left
  auto reader = reader_of(late, {}, ParsePolicy::kSkip);
  LobsterBook book(1);
  auto events = read_all(reader);
  ASSERT_EQ(events.size(), 4u);
  for (std::size_t i = 0; i < 3; ++i) book.apply(events[i]);
  ASSERT_NE(book.book().find_order(10), nullptr);
  EXPECT_EQ(book.book().find_order(10)->qty, 70);  // 100 - 30: the late cancel was applied
}

TEST(FeedLobster, CrossedOrderbookRowIsReported) {
  auto reader = reader_of("34200,1,10,100,1000000,1\n34201,1,11,100,1000300,1\n",
                          "1000200,40,1000000,100\n1000200,40,1000300,100\n", ParsePolicy::kStop);
  Event e{};
  ASSERT_TRUE(reader.next(e));
  const std::string what = expect_error(ErrorCode::kParseError, [&] { reader.next(e); });
  EXPECT_EQ(what, "book.csv:2: crossed_book: best bid 1000300 >= best ask 1000200");
  EXPECT_EQ(reader.stats().count(ParseIssue::kCrossedBook), 1u);
}

TEST(FeedLobster, FileCutMidLineIsReportedAsTruncated) {
  auto reader = reader_of("34200,1,10,100,1000000,1\n34201,1,11,10", {}, ParsePolicy::kSkip);
  EXPECT_EQ(read_all(reader).size(), 1u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kTruncated), 1u);
  EXPECT_EQ(reader.stats().first_issues.at(0).message(), "msg.csv:2: truncated: file ends inside '34201,1,11,10'");
}

TEST(FeedLobster, LastLineWithoutNewlineIsAccepted) {
  auto reader = reader_of("34200,1,10,100,1000000,1\n34201,1,11,100,1000000,1");
  EXPECT_EQ(read_all(reader).size(), 2u);
  EXPECT_EQ(reader.stats().total_issues(), 0u);
}

TEST(FeedLobster, OrderbookShorterThanMessagesIsReportedAsTruncated) {
  auto reader =
      reader_of("34200,1,10,100,1000000,1\n34201,1,11,100,1000000,1\n", "1000200,40,1000000,100\n", ParsePolicy::kSkip);
  EXPECT_EQ(read_all(reader).size(), 1u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kTruncated), 1u);
  EXPECT_EQ(reader.stats().first_issues.at(0).message(),
            "book.csv:2: truncated: orderbook file ends before the message file");
}

TEST(FeedLobster, MessagesShorterThanOrderbookIsReportedAsTruncated) {
  auto reader =
      reader_of("34200,1,10,100,1000000,1\n", "1000200,40,1000000,100\n1000200,40,1000000,100\n", ParsePolicy::kSkip);
  EXPECT_EQ(read_all(reader).size(), 1u);
  EXPECT_EQ(reader.stats().count(ParseIssue::kTruncated), 1u);
  EXPECT_EQ(reader.stats().first_issues.at(0).message(),
            "book.csv:2: truncated: message file ends before the orderbook file");
}

TEST(FeedLobster, OrderbookWhoseColumnsAreNotFourPerLevelIsRefused) {
  const std::string what = expect_error(ErrorCode::kParseError, [] { reader_of(kMessages, "1,2,3\n"); });
  EXPECT_EQ(what, "book.csv:1: orderbook row has 3 columns; LOBSTER writes 4 per level");
}

TEST(FeedLobster, OrderbookWithMoreLevelsThanTheLimitIsRefusedBeforeSizingBuffersFromIt) {
  std::string row;
  for (std::size_t level = 0; level <= kLobsterMaxLevels; ++level) row += "1000200,40,1000000,100,";
  row.back() = '\n';
  const std::string what = expect_error(ErrorCode::kParseError, [&] { reader_of(kMessages, row); });
  EXPECT_EQ(what, "book.csv:1: orderbook row has 4004 columns (1001 levels); at most 1000 levels are read");
}

// A one-member zip (stored, not deflated) whose directory says the member inflates to `claimed` bytes.
std::string stored_zip(const std::string& name, const std::string& data, std::uint32_t claimed) {
  std::uint32_t crc = 0xffffffffu;  // CRC-32 (IEEE), as zip wants
  for (const char ch : data) {
    crc ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc & 1u) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
  }
  crc = ~crc;
  std::string z;
  auto u16 = [&](std::uint32_t v) { z.push_back(static_cast<char>(v & 0xff)), z.push_back(static_cast<char>(v >> 8)); };
  auto u32 = [&](std::uint32_t v) { u16(v & 0xffff), u16(v >> 16); };
  const auto size = static_cast<std::uint32_t>(data.size());
  const auto name_len = static_cast<std::uint32_t>(name.size());
  u32(0x04034b50), u16(20), u16(0), u16(0), u16(0), u16(0x21), u32(crc), u32(size), u32(claimed), u16(name_len), u16(0);
  z += name + data;
  const auto directory = static_cast<std::uint32_t>(z.size());
  u32(0x02014b50), u16(20), u16(20), u16(0), u16(0), u16(0), u16(0x21), u32(crc), u32(size), u32(claimed);
  u16(name_len), u16(0), u16(0), u16(0), u16(0), u32(0), u32(0);
  z += name;
  const auto directory_size = static_cast<std::uint32_t>(z.size()) - directory;
  u32(0x06054b50), u16(0), u16(0), u16(1), u16(1), u32(directory_size), u32(directory), u16(0);
  return z;
}

TEST(FeedLobster, ZipMemberIsInflatedWithMemoryBoundedByItsRealSizeNotItsClaim) {
  testing::TempDir dir;
  const std::string path = dir.file("claims.zip");
  const std::string data = "34200,1,10,100,1000000,1\n";
  {
    std::ofstream(dir.file("ok.zip"), std::ios::binary) << stored_zip("X_message_1.csv", data, 25);
    EXPECT_EQ(ByteSource::from_zip_member(dir.file("ok.zip"), "X_message_1.csv").bytes().size(), data.size());
  }
  std::ofstream(path, std::ios::binary) << stored_zip("X_message_1.csv", data, 0xF0000000u);  // 3.75 GiB
  const std::uint64_t peak = testing::peak_rss_bytes();
  const std::string what =
      expect_error(ErrorCode::kParseError, [&] { ByteSource::from_zip_member(path, "X_message_1.csv"); });
  EXPECT_LT(testing::peak_rss_bytes() - peak, std::uint64_t{64} << 20) << "allocated what the directory claims";
  EXPECT_EQ(what, path + "!X_message_1.csv: damaged member: Zip archive inconsistent");
}

TEST(FeedLobster, BinaryJunkInALineIsShownEscapedInItsReport) {
  auto reader = reader_of(std::string("\x01\xff\x1b[2J,1\n", 9));
  const std::string what = expect_error(ErrorCode::kParseError, [&] { read_all(reader); });
  EXPECT_EQ(what, "msg.csv:1: bad_number: field 1 (time): not a number in '\\x01\\xff\\x1b[2J,1'");
}

TEST(FeedLobster, MissingFileIsFileNotFound) {
  expect_error(ErrorCode::kFileNotFound, [] { LobsterReader::open("/nonexistent/AMZN_message_1.csv"); });
}

// ---- The real samples ----

TEST(FeedLobster, ReadsRealAmznLevel1FilesWithTheDocumentedCounts) {
  TICKINFER_REQUIRE_DATA(testing::amzn_messages());
  auto reader = LobsterReader::open(testing::amzn_messages().string(), testing::amzn_orderbook().string());
  std::array<std::uint64_t, 8> by_type{};
  Event e{};
  Event first{};
  std::int64_t last_ts = 0;
  while (reader.next(e)) {
    if (reader.line() == 1) {
      first = e;
      EXPECT_EQ(std::vector<std::int64_t>(reader.book_row().begin(), reader.book_row().end()),
                (std::vector<std::int64_t>{2239500, 100, 2231800, 100}));
    }
    ++by_type[e.kind == EventKind::kTradingStatus ? 7 : e.aux];
    last_ts = e.ts_ns;
  }
  EXPECT_EQ(reader.stats().events, 57'515u);
  EXPECT_EQ(reader.stats().total_issues(), 0u);
  EXPECT_EQ(reader.levels(), 1u);
  EXPECT_EQ(reader.symbol().name, "AMZN");
  // SOURCE.md: 1 = 27,845; 2 = 16; 3 = 18,235; 4 = 8,974; 5 = 2,445; no halts.
  EXPECT_EQ(by_type[1], 27'845u);
  EXPECT_EQ(by_type[2], 16u);
  EXPECT_EQ(by_type[3], 18'235u);
  EXPECT_EQ(by_type[4], 8'974u);
  EXPECT_EQ(by_type[5], 2'445u);
  EXPECT_EQ(by_type[7], 0u);
  EXPECT_EQ(first.ts_ns, 34'200'017'459'617);  // 34200.017459617
  EXPECT_EQ(first.kind, EventKind::kTrade);
  EXPECT_EQ(first.price, 2'238'200);
  EXPECT_EQ(first.side, Side::kSell);
  EXPECT_EQ(last_ts, 57'599'959'359'650);  // 57599.95935965
}

TEST(FeedLobster, RebuiltAmznBookAgreesWithEveryOrderbookRow) {
  TICKINFER_REQUIRE_DATA(testing::amzn_messages());
  auto reader = LobsterReader::open(testing::amzn_messages().string(), testing::amzn_orderbook().string());
  const auto result = validate_lobster(reader);
  EXPECT_EQ(result.rows, 57'515u);
  EXPECT_EQ(result.disagreements, 0u) << (result.first.empty() ? "" : result.first[0].message());
  // Not vacuous: 101,075 of the 115,030 best levels are compared (the rest had just come into view).
  EXPECT_GT(result.matched_levels, 100'000u);
}

TEST(FeedLobster, RebuiltGoogLevel10BookFromTheZipAgreesWithEveryOrderbookRow) {
  TICKINFER_REQUIRE_DATA(testing::goog_zip());
  auto reader = LobsterReader::open_zip(testing::goog_zip().string());
  EXPECT_EQ(reader.levels(), 10u);
  EXPECT_EQ(reader.symbol().name, "GOOG");
  const auto result = validate_lobster(reader);
  EXPECT_EQ(reader.stats().total_issues(), 0u);
  EXPECT_EQ(result.rows, 147'916u);
  EXPECT_EQ(result.disagreements, 0u) << (result.first.empty() ? "" : result.first[0].message());
  // 2,913,849 of the 2,958,320 levels are compared; the rest had just come into view.
  EXPECT_GT(result.matched_levels, 2'900'000u);
}

TEST(FeedLobster, LevelOneViewOfTheGoogLevel10EventsAlsoAgrees) {
  TICKINFER_REQUIRE_DATA(testing::goog_zip());
  auto reader = LobsterReader::open_zip(testing::goog_zip().string());
  const auto events = read_all(reader);
  const auto result = validate_lobster(events);  // from each event's own top of book
  EXPECT_EQ(result.rows, 147'916u);
  EXPECT_EQ(result.disagreements, 0u) << (result.first.empty() ? "" : result.first[0].message());
  EXPECT_GT(result.matched_levels, 280'000u);
}

}  // namespace
}  // namespace tickinfer::feed
