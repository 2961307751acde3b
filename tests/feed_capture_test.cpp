// Binary capture: file -> capture -> events round trips for every format, and every way a capture is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "feed_test_support.hpp"
#include "tickinfer/feed/capture.hpp"
#include "tickinfer/feed/capture_convert.hpp"
#include "tickinfer/feed/itch.hpp"
#include "tickinfer/feed/lobster.hpp"
#include "tickinfer/feed/lobster_book.hpp"
#include "tickinfer/feed/tardis.hpp"

namespace tickinfer::feed {
namespace {

using testing::expect_error;
using testing::TempDir;

template <typename Reader>
std::vector<Event> read_all(Reader& reader) {
  std::vector<Event> out;
  Event e{};
  while (reader.next(e)) out.push_back(e);
  return out;
}

void expect_same_events(std::span<const Event> got, const std::vector<Event>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "event " << i;
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(Event)), 0);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

/// A small valid capture to damage.
std::string small_capture(const TempDir& dir) {
  const std::string path = dir.file("small.tcap");
  const SymbolInfo symbols[] = {{3, "AMZN", kLobsterPriceScale, 1}};
  CaptureWriter writer(path, symbols);
  Event e{};
  e.kind = EventKind::kAdd;
  for (int i = 0; i < 3; ++i) {
    e.ts_ns = i;
    e.order_id = static_cast<std::uint64_t>(i) + 1;
    writer.append(e);
  }
  writer.finish();
  return path;
}

TEST(FeedCapture, RoundTripLobsterFileToCaptureToEventsIsIdentical) {
  TICKINFER_REQUIRE_DATA(testing::amzn_messages());
  TempDir dir;
  auto direct = LobsterReader::open(testing::amzn_messages().string());
  const auto want = read_all(direct);
  auto reader = LobsterReader::open(testing::amzn_messages().string(), {}, LobsterOptions{9, "", ParsePolicy::kStop});
  const ParseStats stats = convert_to_capture(reader, dir.file("amzn.tcap"));
  EXPECT_EQ(stats.events, 57'515u);
  const CaptureReader capture(dir.file("amzn.tcap"));
  std::vector<Event> want9 = want;
  for (auto& e : want9) e.symbol = 9;
  expect_same_events(capture.events(), want9);
  ASSERT_EQ(capture.symbols().size(), 1u);
  EXPECT_EQ(capture.symbols()[0], (SymbolInfo{9, "AMZN", kLobsterPriceScale, 1}));
  EXPECT_EQ(capture.header().version, kCaptureVersion);
  EXPECT_EQ(std::filesystem::file_size(dir.file("amzn.tcap")), 128 + 57'515u * sizeof(Event));
}

TEST(FeedCapture, AmznCaptureWithTheOrderbookTopReplaysAgreeingWithEveryRow) {
  TICKINFER_REQUIRE_DATA(testing::amzn_orderbook());
  TempDir dir;
  auto reader = LobsterReader::open(testing::amzn_messages().string(), testing::amzn_orderbook().string());
  convert_to_capture(reader, dir.file("amzn.tcap"));
  const CaptureReader capture(dir.file("amzn.tcap"));
  const auto result = validate_lobster(capture.events());
  EXPECT_EQ(result.rows, 57'515u);
  EXPECT_EQ(result.disagreements, 0u) << (result.first.empty() ? "" : result.first[0].message());
  EXPECT_GT(result.matched_levels, 100'000u);
}

TEST(FeedCapture, RoundTripTardisTradesAndQuotesIsIdentical) {
  TICKINFER_REQUIRE_DATA(testing::tardis_trades());
  TempDir dir;
  for (const auto& path : {testing::tardis_trades(), testing::tardis_quotes()}) {
    auto direct = TardisReader::open(path.string());
    const auto want = read_all(direct);
    auto reader = TardisReader::open(path.string());
    convert_to_capture(reader, dir.file("t.tcap"));
    const CaptureReader capture(dir.file("t.tcap"));
    expect_same_events(capture.events(), want);
    ASSERT_EQ(capture.symbols().size(), 1u);
    EXPECT_EQ(capture.symbols()[0], (SymbolInfo{0, "BTCUSDT", 100'000'000, 100'000'000}));
  }
}

TEST(FeedCapture, RoundTripItchFixtureIsIdenticalAndKeepsTheDirectory) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  TempDir dir;
  auto direct = ItchReader::open(testing::itch_fixture().string());
  const auto want = read_all(direct);
  auto reader = ItchReader::open(testing::itch_fixture().string());
  convert_to_capture(reader, dir.file("itch.tcap"));
  const CaptureReader capture(dir.file("itch.tcap"));
  expect_same_events(capture.events(), want);
  EXPECT_EQ(capture.symbols(), direct.symbols());
  EXPECT_EQ(capture.symbols().size(), 993u);
}

TEST(FeedCapture, RoundTripOfSpecEncodedItchOrderFlowIsIdentical) {
  testing::ItchEncoder enc;
  enc.directory(7, 1, "AAPL");
  enc.add(7, 2, 1, 'B', 100, "AAPL", 1'500'000).executed(7, 3, 1, 10, 5).replace(7, 4, 1, 2, 50, 1'499'000);
  enc.add_mpid(7, 5, 3, 'S', 10, "AAPL", 1'501'000, "GSCO").del(7, 6, 3);
  TempDir dir;
  auto direct = ItchReader(ByteSource::from_string("x.itch", enc.bytes()), {});
  const auto want = read_all(direct);
  auto reader = ItchReader(ByteSource::from_string("x.itch", enc.bytes()), {});
  convert_to_capture(reader, dir.file("x.tcap"));
  const CaptureReader capture(dir.file("x.tcap"));
  expect_same_events(capture.events(), want);
  EXPECT_EQ(capture.symbols(), (std::vector<SymbolInfo>{{7, "AAPL", kItchPriceScale, 1}}));
}

TEST(FeedCapture, EmptyCaptureRoundTrips) {
  TempDir dir;
  CaptureWriter writer(dir.file("empty.tcap"), {});
  writer.finish();
  const CaptureReader capture(dir.file("empty.tcap"));
  EXPECT_TRUE(capture.events().empty());
  EXPECT_TRUE(capture.symbols().empty());
}

TEST(FeedCapture, WriterRefusesASymbolNameThatDoesNotFit) {
  TempDir dir;
  const SymbolInfo symbols[] = {{1, std::string(40, 'X'), 1, 1}};
  const std::string what = expect_error(ErrorCode::kInvalidConfig, [&] { CaptureWriter(dir.file("a.tcap"), symbols); });
  EXPECT_NE(what.find("longer than 39 bytes"), std::string::npos) << what;
}

TEST(FeedCapture, MissingCaptureIsFileNotFound) {
  expect_error(ErrorCode::kFileNotFound, [] { CaptureReader("/nonexistent/none.tcap"); });
}

TEST(FeedCapture, ShortHeaderIsRefused) {
  TempDir dir;
  spit(dir.file("short.tcap"), slurp(small_capture(dir)).substr(0, 40));
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("short.tcap")); });
  EXPECT_EQ(what, dir.file("short.tcap") + ": not a usable tickinfer capture: truncated header (40 of 64 bytes)");
}

TEST(FeedCapture, BadMagicIsRefused) {
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  bytes[0] = 'X';
  spit(dir.file("magic.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("magic.tcap")); });
  EXPECT_EQ(what, dir.file("magic.tcap") + ": not a usable tickinfer capture: bad magic");
}

TEST(FeedCapture, OtherVersionIsRefused) {
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  const std::uint32_t version = 2;
  std::memcpy(bytes.data() + offsetof(CaptureHeader, version), &version, sizeof version);
  spit(dir.file("v2.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("v2.tcap")); });
  EXPECT_EQ(what, dir.file("v2.tcap") + ": not a usable tickinfer capture: version 2, this build reads version 1");
}

TEST(FeedCapture, OtherRecordSizeIsRefused) {
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  const std::uint32_t size = 64;
  std::memcpy(bytes.data() + offsetof(CaptureHeader, record_size), &size, sizeof size);
  spit(dir.file("rs.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("rs.tcap")); });
  EXPECT_EQ(what,
            dir.file("rs.tcap") + ": not a usable tickinfer capture: record size 64, this build's Event is 80 bytes");
}

TEST(FeedCapture, TruncatedCaptureIsRefused) {
  TempDir dir;
  const std::string bytes = slurp(small_capture(dir));
  spit(dir.file("cut.tcap"), bytes.substr(0, bytes.size() - 10));
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("cut.tcap")); });
  EXPECT_EQ(what,
            dir.file("cut.tcap") +
                ": not a usable tickinfer capture: truncated: the header says 3 records, the file holds 2 (230 bytes)");
}

TEST(FeedCapture, TrailingBytesAreRefused) {
  TempDir dir;
  spit(dir.file("long.tcap"), slurp(small_capture(dir)) + "xyz");
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("long.tcap")); });
  EXPECT_EQ(what, dir.file("long.tcap") + ": not a usable tickinfer capture: 3 bytes past the last record");
}

TEST(FeedCapture, UnfinishedCaptureIsRefused) {
  TempDir dir;
  {
    CaptureWriter writer(dir.file("open.tcap"), {});
    writer.append(Event{});
  }  // destroyed without finish(), as when conversion throws half way
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("open.tcap")); });
  EXPECT_EQ(what,
            dir.file("open.tcap") + ": not a usable tickinfer capture: unfinished (the writer never called finish())");
}

TEST(FeedCapture, DamagedSymbolTableIsRefused) {
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  std::memset(bytes.data() + 64 + offsetof(CaptureSymbol, name), 'A', sizeof(CaptureSymbol::name));
  spit(dir.file("sym.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("sym.tcap")); });
  EXPECT_EQ(what, dir.file("sym.tcap") + ": not a usable tickinfer capture: symbol 0 has an unterminated name");
}

}  // namespace
}  // namespace tickinfer::feed
