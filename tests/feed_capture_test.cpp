// Binary capture: file -> capture -> events round trips for every format, and every way a capture is refused.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "feed/crc32c.hpp"
#include "feed_test_support.hpp"
#include "tickinfer/feed/capture.hpp"
#include "tickinfer/feed/capture_convert.hpp"
#include "tickinfer/feed/itch.hpp"
#include "tickinfer/feed/lobster.hpp"
#include "tickinfer/feed/lobster_book.hpp"
#include "tickinfer/feed/tardis.hpp"
#include "tickinfer/replay/source.hpp"

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
  // Header and symbol table, the records, one CRC32C per block of 1024 records.
  EXPECT_EQ(std::filesystem::file_size(dir.file("amzn.tcap")), 128 + 57'515u * sizeof(Event) + 57 * 4);
  EXPECT_EQ(capture.header().lobster_levels, 0u);
  EXPECT_EQ(capture.header().flags, 0u);  // read without the orderbook file
}

TEST(FeedCapture, AmznCaptureWithTheOrderbookTopReplaysAgreeingWithEveryRow) {
  TICKINFER_REQUIRE_DATA(testing::amzn_orderbook());
  TempDir dir;
  auto reader = LobsterReader::open(testing::amzn_messages().string(), testing::amzn_orderbook().string());
  convert_to_capture(reader, dir.file("amzn.tcap"));
  const CaptureReader capture(dir.file("amzn.tcap"));
  EXPECT_EQ(capture.header().flags, kCaptureTopOfBook);  // the header says the events carry their top of book
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

TEST(FeedCapture, BadMagicIsRefusedShowingWhatWasFound) {
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  bytes[0] = 'X';
  spit(dir.file("magic.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("magic.tcap")); });
  EXPECT_EQ(what, dir.file("magic.tcap") +
                      ": not a usable tickinfer capture: bad magic 'XICKCAP\\x00' (expected 'TICKCAP\\x00')");
}

TEST(FeedCapture, OtherVersionIsRefused) {
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  const std::uint32_t version = 3;
  std::memcpy(bytes.data() + offsetof(CaptureHeader, version), &version, sizeof version);
  spit(dir.file("v3.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("v3.tcap")); });
  EXPECT_EQ(what, dir.file("v3.tcap") + ": not a usable tickinfer capture: version 3, this build reads version 2");
}

TEST(FeedCapture, VersionOneCaptureIsRefusedSayingHowToGetACurrentOne) {
  // Version 1: a 64-byte header without level count or checksums, then the symbols and records.
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  const std::uint32_t version = 1;
  std::memcpy(bytes.data() + offsetof(CaptureHeader, version), &version, sizeof version);
  bytes.resize(bytes.size() - 4);  // no checksum trailer
  spit(dir.file("v1.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("v1.tcap")); });
  EXPECT_EQ(what, dir.file("v1.tcap") +
                      ": not a usable tickinfer capture: version 1 (no checksums, no level count in the header), this "
                      "build reads version 2: convert the source data again (tickinfer-replay DATA --write-capture "
                      "FILE)");
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
                ": not a usable tickinfer capture: truncated: the header says 3 records, the file holds 2 (234 bytes)");
}

TEST(FeedCapture, TrailingBytesAreRefused) {
  TempDir dir;
  spit(dir.file("long.tcap"), slurp(small_capture(dir)) + "xyz");
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("long.tcap")); });
  EXPECT_EQ(what, dir.file("long.tcap") +
                      ": not a usable tickinfer capture: the header says 3 records and 1 block checksums (244 bytes "
                      "after the header), the file has 247");
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

std::string hex(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

TEST(FeedCapture, DamagedSymbolTableFailsTheHeaderChecksum) {
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  std::memset(bytes.data() + 64 + offsetof(CaptureSymbol, name), 'A', sizeof(CaptureSymbol::name));
  spit(dir.file("sym.tcap"), bytes);
  CaptureHeader header;
  std::memcpy(&header, bytes.data(), sizeof header);
  std::string zeroed = bytes.substr(0, 128);
  std::memset(zeroed.data() + offsetof(CaptureHeader, header_crc), 0, 4);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("sym.tcap")); });
  EXPECT_EQ(what, dir.file("sym.tcap") + ": not a usable tickinfer capture: header and symbol table (bytes 0..128) " +
                      "fail their CRC32C check (stored " + hex(header.header_crc) + ", computed " +
                      hex(detail::crc32c(zeroed.data(), zeroed.size())) + ")");
}

TEST(FeedCapture, UnterminatedSymbolNameIsRefused) {
  // A table the writer's checksum covers (as from another writer): the name is still checked.
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  std::memset(bytes.data() + 64 + offsetof(CaptureSymbol, name), 'A', sizeof(CaptureSymbol::name));
  std::memset(bytes.data() + offsetof(CaptureHeader, header_crc), 0, 4);
  const std::uint32_t crc = detail::crc32c(bytes.data(), 128);
  std::memcpy(bytes.data() + offsetof(CaptureHeader, header_crc), &crc, 4);
  spit(dir.file("sym.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("sym.tcap")); });
  EXPECT_EQ(what, dir.file("sym.tcap") + ": not a usable tickinfer capture: symbol 0 has an unterminated name");
}

TEST(FeedCapture, Crc32cIsTheCastagnoliChecksum) {
  EXPECT_EQ(detail::crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(detail::crc32c("56789", 5, detail::crc32c("1234", 4)), 0xE3069283u);
  EXPECT_EQ(detail::crc32c("", 0), 0u);
}

TEST(FeedCapture, FlippedByteInARecordIsRefusedWithItsBlockAndByteRange) {
  TempDir dir;
  const std::string good = slurp(small_capture(dir));  // 3 records at bytes 128..367, one block
  const std::size_t flipped = 128 + 80 + 17;           // inside record 1
  std::string bytes = good;
  bytes[flipped] ^= 0x01;
  spit(dir.file("flip.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("flip.tcap")); });
  std::uint32_t stored;
  std::memcpy(&stored, good.data() + 368, 4);
  EXPECT_EQ(stored, detail::crc32c(good.data() + 128, 240));
  EXPECT_EQ(what, dir.file("flip.tcap") + ": not a usable tickinfer capture: block 0 (records 0..2, bytes 128..367) " +
                      "fails its CRC32C check (stored " + hex(stored) + ", computed " +
                      hex(detail::crc32c(bytes.data() + 128, 240)) + ")");
}

TEST(FeedCapture, FlippedByteInALaterBlockNamesThatBlock) {
  TempDir dir;
  const std::string path = dir.file("big.tcap");
  {
    CaptureWriter writer(path, {});
    Event e{};
    for (std::uint64_t i = 0; i < 2 * kCaptureBlockRecords + 5; ++i) {
      e.ts_ns = static_cast<std::int64_t>(i);
      writer.append(e);
    }
    writer.finish();
  }
  std::string bytes = slurp(path);
  ASSERT_EQ(bytes.size(), 64 + (2 * 1024 + 5) * 80 + 3 * 4);
  const std::size_t record = 2 * 1024 + 3;
  bytes[64 + record * 80 + 8] ^= 0x40;
  spit(path, bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(path, false); });
  EXPECT_NE(what.find(": not a usable tickinfer capture: block 2 (records 2048..2052, bytes 163904..164303) fails its "
                      "CRC32C check"),
            std::string::npos)
      << what;
}

TEST(FeedCapture, FlippedByteInTheLevelCountFailsTheHeaderChecksum) {
  TempDir dir;
  const std::string path = dir.file("levels.tcap");
  {
    CaptureWriter writer(path, {}, CaptureContents{10, 0});
    writer.finish();
  }
  EXPECT_EQ(CaptureReader(path).header().lobster_levels, 10u);
  std::string bytes = slurp(path);
  bytes[offsetof(CaptureHeader, lobster_levels)] = 4;
  spit(path, bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader{path}; });
  EXPECT_NE(
      what.find(": not a usable tickinfer capture: header and symbol table (bytes 0..64) fail their CRC32C check"),
      std::string::npos)
      << what;
}

TEST(FeedCapture, HeaderIsCheckedBeforeAnythingIsMapped) {
  // 1 GiB of zeros as a capture: the refusal costs a 64-byte read, not a (prefaulted) 1 GiB mapping.
  TempDir dir;
  const std::string path = dir.file("zeros.tcap");
  testing::sparse_file(path, std::uint64_t{1} << 30);
  const std::uint64_t peak = testing::peak_rss_bytes();
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(path, /*prefault=*/true); });
  EXPECT_LT(testing::peak_rss_bytes() - peak, std::uint64_t{64} << 20)
      << "the file was mapped before its header was checked";
  EXPECT_EQ(what, path +
                      ": not a usable tickinfer capture: bad magic "
                      "'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00' (expected 'TICKCAP\\x00')");
}

TEST(FeedCapture, HeaderClaimingMoreSymbolsThanTheLimitIsRefusedWithoutReadingPastTheFile) {
  // 0x04000001 symbols: 64 + 64 * that wraps to 128 in 32 bits, which the old reader took for a match.
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  const std::uint32_t symbols = 0x04000001;
  std::memcpy(bytes.data() + offsetof(CaptureHeader, symbol_count), &symbols, sizeof symbols);
  spit(dir.file("many.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { CaptureReader(dir.file("many.tcap")); });
  EXPECT_EQ(what, dir.file("many.tcap") +
                      ": not a usable tickinfer capture: damaged header (67108865 symbols but 128 header bytes)");
}

TEST(FeedCapture, ReplayTakesTheLevelCountFromTheHeaderNotFromTheRecords) {
  // A 10-level LOBSTER capture whose first row holds only 4 sync quotes (as after a damaged record):
  // the replay still reads 10 levels, because the header says so.
  TempDir dir;
  const std::string path = dir.file("lob.tcap");
  const SymbolInfo symbols[] = {{0, "GOOG", kLobsterPriceScale, 1}};
  {
    CaptureWriter writer(path, symbols, CaptureContents{10, 0});
    Event add{};
    add.kind = EventKind::kAdd;
    add.side = Side::kBuy;
    add.price = 5'000'000;
    add.qty = 10;
    auto sync = [&](std::size_t levels) {
      for (std::size_t j = 0; j < levels; ++j) {
        Event q{};
        q.kind = EventKind::kQuote;
        q.aux = replay::kLobsterSyncAux;
        q.order_id = j;
        q.ask_price = 5'010'000 + static_cast<std::int64_t>(j) * 100, q.ask_qty = 5;
        q.bid_price = 5'000'000 - static_cast<std::int64_t>(j) * 100, q.bid_qty = 10;
        writer.append(q);
      }
    };
    add.order_id = 1;
    writer.append(add);
    sync(4);
    add.order_id = 2;
    writer.append(add);
    sync(10);
    writer.finish();
  }
  replay::SourceOptions options;
  options.format = replay::SourceFormat::kCapture;
  options.paths = {path};
  auto source = replay::MarketSource::open(options);
  EXPECT_EQ(source->book_levels(), 10u);
  EXPECT_NE(source->describe().find("LOBSTER rows of 10 levels"), std::string::npos) << source->describe();
  replay::Tick tick;
  ASSERT_NE(source->read(), nullptr);
  source->apply(tick);
  EXPECT_EQ(tick.book->depth(Side::kBuy), 4u);  // what the first row holds
  ASSERT_NE(source->read(), nullptr);
  source->apply(tick);
  EXPECT_EQ(tick.book->depth(Side::kBuy), 10u);  // the 4-level guess would have cut this row to 4
  EXPECT_EQ(source->read(), nullptr);
}

TEST(FeedCapture, WriteCaptureOfALevel10LobsterZipPutsTheLevelsInTheHeader) {
  TICKINFER_REQUIRE_DATA(testing::goog_zip());
  TempDir dir;
  replay::SourceOptions options;
  options.format = replay::SourceFormat::kLobster;
  options.paths = {testing::goog_zip().string()};
  auto lobster = replay::MarketSource::open(options);
  replay::write_capture(*lobster, dir.file("goog.tcap"));
  EXPECT_EQ(CaptureReader(dir.file("goog.tcap")).header().lobster_levels, 10u);
  options.format = replay::SourceFormat::kCapture;
  options.paths = {dir.file("goog.tcap")};
  EXPECT_EQ(replay::MarketSource::open(options)->book_levels(), 10u);
}

TEST(FeedCapture, DetectFormatRefusesACaptureWithABadMagicInsteadOfCallingItItch) {
  TempDir dir;
  std::string bytes = slurp(small_capture(dir));
  bytes[0] = 'X';
  spit(dir.file("magic.tcap"), bytes);
  const std::string what = expect_error(ErrorCode::kParseError, [&] { replay::detect_format(dir.file("magic.tcap")); });
  EXPECT_EQ(what, dir.file("magic.tcap") +
                      ": cannot detect the format: its first bytes 'XICKCAP\\x00' are not a tickinfer capture's magic "
                      "'TICKCAP\\x00' (though the rest of the header reads like a capture's: version 2, record size "
                      "80; a damaged capture?), nor an ITCH 5.0 message (length 22601, type 0x43, which ITCH 5.0 "
                      "makes 36 bytes); give --format to read it as one anyway");
}

TEST(FeedCapture, DetectFormatTakesCapturesAndWellFramedItchOnly) {
  TempDir dir;
  EXPECT_EQ(replay::detect_format(small_capture(dir)), replay::SourceFormat::kCapture);
  testing::ItchEncoder enc;
  enc.system_event(1, 'O');
  spit(dir.file("day.itch"), enc.bytes());
  EXPECT_EQ(replay::detect_format(dir.file("day.itch")), replay::SourceFormat::kItch);
  spit(dir.file("AMZN_message_1.csv"), "garbage");
  EXPECT_EQ(replay::detect_format(dir.file("AMZN_message_1.csv")), replay::SourceFormat::kLobster);
  spit(dir.file("random.bin"), std::string("\x7f\x01\xfe\x00", 4));
  const std::string what = expect_error(ErrorCode::kParseError, [&] { replay::detect_format(dir.file("random.bin")); });
  EXPECT_EQ(what, dir.file("random.bin") +
                      ": cannot detect the format: its first bytes '\\x7f\\x01\\xfe\\x00' are not a tickinfer "
                      "capture's magic 'TICKCAP\\x00', nor an ITCH 5.0 message (length 32513, type 0xfe, not an ITCH "
                      "5.0 type); give --format to read it as one anyway");
  expect_error(ErrorCode::kFileNotFound, [&] { replay::detect_format(dir.file("none.itch")); });
}

}  // namespace
}  // namespace tickinfer::feed
