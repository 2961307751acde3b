// MoldUDP64: the packet writer against the real ITCH fixture, every malformed case with its reason, the
// receiver's sequencing (gaps, duplicates, overlap, reordering, session change, heartbeat, end of session),
// random datagrams, an allocation-free receiving path; then the tickinfer-feed binary over loopback UDP.
//
// This binary replaces operator new (and, outside sanitizer builds, malloc) to count allocations while a flag is
// set (MoldUdp64.ReceiveAllocatesNothing).

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <new>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "feed_test_support.hpp"
#include "tickinfer/feed/capture.hpp"
#include "tickinfer/feed/moldudp64.hpp"

#include "support/count_malloc.hpp"  // g_counting, g_allocations: every allocation, malloc included

namespace tickinfer::feed {
namespace {

using testing::expect_error;
using Bytes = std::vector<unsigned char>;

std::span<const unsigned char> as_bytes(std::string_view s) {
  return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}
std::string as_string(std::span<const unsigned char> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

/// The messages of a BinaryFILE ITCH file, each without its 2-byte length prefix.
std::vector<std::string> itch_messages(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos + 2 <= bytes.size();) {
    const std::size_t length = (static_cast<std::size_t>(static_cast<unsigned char>(bytes[pos])) << 8) |
                               static_cast<unsigned char>(bytes[pos + 1]);
    out.push_back(bytes.substr(pos + 2, length));
    pos += 2 + length;
  }
  return out;
}

/// A packet built by hand, independent of MoldPacketWriter: `count` overrides the header's message count.
Bytes packet(std::string_view session, std::uint64_t sequence, const std::vector<std::string>& messages,
             int count = -1) {
  Bytes p;
  for (std::size_t i = 0; i < kMoldSessionBytes; ++i) p.push_back(i < session.size() ? session[i] : ' ');
  for (int i = 7; i >= 0; --i) p.push_back(static_cast<unsigned char>((sequence >> (8 * i)) & 0xff));
  const auto n = static_cast<std::uint16_t>(count >= 0 ? count : static_cast<int>(messages.size()));
  p.push_back(static_cast<unsigned char>(n >> 8));
  p.push_back(static_cast<unsigned char>(n & 0xff));
  for (const auto& m : messages) {
    p.push_back(static_cast<unsigned char>(m.size() >> 8));
    p.push_back(static_cast<unsigned char>(m.size() & 0xff));
    p.insert(p.end(), m.begin(), m.end());
  }
  return p;
}

/// "m<seq>": a message that names its own sequence. (Appended, not "m" + to_string: GCC 12's -Wrestrict
/// false positive on operator+(const char*, string&&).)
std::string name_of(std::uint64_t sequence) {
  std::string s(1, 'm');
  s += std::to_string(sequence);
  return s;
}

/// Messages name_of(seq) for sequences first..first+n-1.
std::vector<std::string> numbered(std::uint64_t first, std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(name_of(first + i));
  return out;
}

struct Delivered {
  std::uint64_t sequence;
  std::string bytes;
  bool operator==(const Delivered&) const = default;
};

/// A receiver plus everything it delivered.
struct Stream {
  explicit Stream(std::uint64_t first_sequence = 1, std::uint64_t max_gap = 0)
      : receiver(MoldReceiverOptions{first_sequence, max_gap}) {}
  MoldResult feed(const Bytes& datagram) {
    return receiver.receive(std::span<const unsigned char>(datagram),
                            [&](std::uint64_t seq, std::span<const unsigned char> m) {
                              got.push_back({seq, as_string(m)});
                            });
  }
  std::vector<std::uint64_t> sequences() const {
    std::vector<std::uint64_t> out;
    for (const auto& d : got) out.push_back(d.sequence);
    return out;
  }
  MoldReceiver receiver;
  std::vector<Delivered> got;
};

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> out;
  for (auto s = from; s <= to; ++s) out.push_back(s);
  return out;
}

// ---- writer ----

TEST(MoldUdp64, WriterAndReceiverRoundTripEveryItchFixtureMessageByteIdenticalAndInOrder) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  const auto messages = itch_messages(testing::itch_fixture());
  ASSERT_EQ(messages.size(), 1000u);  // SOURCE.md

  MoldPacketWriter writer("NASDAQ0001");
  std::vector<Bytes> packets;
  auto take = [&] {
    const auto p = writer.packet();
    packets.emplace_back(p.begin(), p.end());
    writer.next_packet();
  };
  for (const auto& m : messages) {
    auto a = writer.append(as_bytes(m));
    if (a == MoldAppend::kFull) {
      take();
      a = writer.append(as_bytes(m));
    }
    ASSERT_EQ(a, MoldAppend::kAppended);
  }
  take();
  ASSERT_EQ(writer.sequence(), 1001u);
  const auto eos = writer.end_of_session();
  packets.emplace_back(eos.begin(), eos.end());

  std::size_t blocks = 0;
  for (std::size_t i = 0; i + 1 < packets.size(); ++i) {
    EXPECT_LE(packets[i].size(), kMoldDefaultMaxDatagram);
    blocks += (packets[i][18] << 8) | packets[i][19];
    // Full: the next packet's first message would not have fitted.
    if (i + 2 < packets.size()) {
      const std::size_t next = (packets[i + 1][20] << 8) | packets[i + 1][21];
      EXPECT_GT(packets[i].size() + 2 + next, kMoldDefaultMaxDatagram) << "packet " << i;
    }
  }
  EXPECT_EQ(blocks, 1000u);

  Stream s;
  for (const auto& p : packets) {
    const auto r = s.feed(p);
    EXPECT_EQ(r.status, MoldStatus::kOk) << r.reason;
  }
  ASSERT_EQ(s.got.size(), messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(s.got[i].sequence, i + 1);
    EXPECT_EQ(s.got[i].bytes, messages[i]) << "message " << i;
  }
  const auto& st = s.receiver.stats();
  EXPECT_EQ(st.packets, packets.size());
  EXPECT_EQ(st.data_packets, packets.size() - 1);
  EXPECT_EQ(st.messages, 1000u);
  EXPECT_EQ(st.end_of_session_packets, 1u);
  EXPECT_TRUE(st.end_of_session_seen);
  EXPECT_EQ(st.gaps + st.duplicate_packets + st.duplicate_messages + st.malformed_packets + st.session_changes, 0u);
  EXPECT_EQ(trimmed(s.receiver.session()), "NASDAQ0001");
  EXPECT_EQ(s.receiver.next_expected(), 1001u);
}

TEST(MoldUdp64, WriterHeaderIsSessionSequenceAndCountBigEndianThenLengthPrefixedBlocks) {
  MoldPacketWriter writer("AB", MoldWriterOptions{.first_sequence = 0x0102030405060708ull});
  ASSERT_EQ(writer.append(as_bytes("xyz")), MoldAppend::kAppended);
  ASSERT_EQ(writer.append(as_bytes("Q")), MoldAppend::kAppended);
  EXPECT_EQ(as_string(writer.packet()), std::string("AB        \x01\x02\x03\x04\x05\x06\x07\x08\x00\x02"
                                                    "\x00\x03xyz\x00\x01Q",
                                                    20 + 5 + 3));
  EXPECT_EQ(writer.message_count(), 2);
  EXPECT_EQ(writer.next_sequence(), 0x0102030405060708ull + 2);
  writer.next_packet();
  EXPECT_TRUE(writer.empty());
  EXPECT_EQ(writer.sequence(), 0x010203040506070Aull);
  EXPECT_EQ(writer.packet().size(), kMoldHeaderBytes);
}

TEST(MoldUdp64, WriterHeartbeatAndEndOfSessionCarryTheNextSequenceAndLeaveThePacketAlone) {
  MoldPacketWriter writer("S1", MoldWriterOptions{.first_sequence = 41});
  ASSERT_EQ(writer.append(as_bytes("a")), MoldAppend::kAppended);
  writer.next_packet();  // sequence 41 sent: the receiver now expects 42
  ASSERT_EQ(writer.append(as_bytes("b")), MoldAppend::kAppended);
  const std::string before = as_string(writer.packet());
  EXPECT_EQ(as_string(writer.heartbeat()), std::string("S1        \0\0\0\0\0\0\0\x2a\0\0", 20));
  EXPECT_EQ(as_string(writer.end_of_session()), std::string("S1        \0\0\0\0\0\0\0\x2a\xff\xff", 20));
  EXPECT_EQ(as_string(writer.packet()), before);
}

TEST(MoldUdp64, WriterSaysFullAtTheByteLimitAndTheMessageLimit) {
  // 40-byte datagrams: header 20, then one 18-byte message fills it exactly.
  MoldPacketWriter small("S", MoldWriterOptions{.max_datagram = 40});
  EXPECT_EQ(small.max_message_bytes(), 18u);
  EXPECT_EQ(small.append(as_bytes(std::string(19, 'x'))), MoldAppend::kTooLarge);
  EXPECT_EQ(small.append(as_bytes(std::string(10, 'x'))), MoldAppend::kAppended);  // 32 bytes used
  EXPECT_EQ(small.append(as_bytes(std::string(7, 'x'))), MoldAppend::kFull);       // 32 + 9 > 40
  EXPECT_EQ(small.append(as_bytes(std::string(6, 'x'))), MoldAppend::kAppended);   // 40 exactly
  EXPECT_EQ(small.packet().size(), 40u);
  small.next_packet();
  EXPECT_EQ(small.append(as_bytes(std::string(18, 'x'))), MoldAppend::kAppended);
  EXPECT_EQ(small.packet().size(), 40u);

  MoldPacketWriter three("S", MoldWriterOptions{.max_messages = 3});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(three.append(as_bytes("m")), MoldAppend::kAppended);
  EXPECT_EQ(three.append(as_bytes("m")), MoldAppend::kFull);
  EXPECT_EQ(three.message_count(), 3);
}

TEST(MoldUdp64, WriterRefusesEmptyMessages) {
  MoldPacketWriter writer("S");
  EXPECT_EQ(writer.append({}), MoldAppend::kTooLarge);
  EXPECT_TRUE(writer.empty());
}

TEST(MoldUdp64, WriterRefusesBadSessionsAndLimits) {
  EXPECT_EQ(expect_error(ErrorCode::kInvalidConfig, [] { MoldPacketWriter w("ELEVENCHARS"); }),
            "MoldUDP64 session \"ELEVENCHARS\" must be 1 to 10 characters");
  EXPECT_EQ(expect_error(ErrorCode::kInvalidConfig, [] { MoldPacketWriter w(""); }),
            "MoldUDP64 session \"\" must be 1 to 10 characters");
  EXPECT_EQ(expect_error(ErrorCode::kInvalidConfig, [] { MoldPacketWriter w(std::string_view("A\tB")); }),
            "MoldUDP64 session: byte 1 (0x09) is not printable ASCII (0x20..0x7e)");
  EXPECT_EQ(
      expect_error(ErrorCode::kInvalidConfig, [] { MoldPacketWriter w("S", MoldWriterOptions{.max_datagram = 22}); }),
      "MoldUDP64 max datagram of 22 bytes: must be 23 to 65507");
  EXPECT_EQ(expect_error(ErrorCode::kInvalidConfig,
                         [] { MoldPacketWriter w("S", MoldWriterOptions{.max_datagram = 65508}); }),
            "MoldUDP64 max datagram of 65508 bytes: must be 23 to 65507");
  EXPECT_EQ(
      expect_error(ErrorCode::kInvalidConfig, [] { MoldPacketWriter w("S", MoldWriterOptions{.max_messages = 0}); }),
      "MoldUDP64 messages per packet: must be 1 to 65534, not 0");
  EXPECT_EQ(expect_error(ErrorCode::kInvalidConfig,
                         [] { MoldPacketWriter w("S", MoldWriterOptions{.max_messages = 0xFFFF}); }),
            "MoldUDP64 messages per packet: must be 1 to 65534, not 65535");
  EXPECT_EQ(
      expect_error(ErrorCode::kInvalidConfig, [] { MoldPacketWriter w("S", MoldWriterOptions{.first_sequence = 0}); }),
      "MoldUDP64 first sequence number: must be at least 1");
  MoldPacketWriter largest("S", MoldWriterOptions{.max_datagram = kMoldMaxDatagram});
  EXPECT_EQ(largest.max_message_bytes(), kMoldMaxDatagram - 22);
}

// ---- malformed datagrams: refused whole, with the reason and the offset ----

/// Feeds `bad` after one good packet (sequences 1-2) and checks it is refused with exactly `reason`, nothing
/// delivered, the stream unchanged; then the next packet (3-4) is in sequence.
void expect_malformed(const Bytes& bad, MoldError error, std::size_t offset, const std::string& reason) {
  Stream s;
  ASSERT_EQ(s.feed(packet("S", 1, numbered(1, 2))).status, MoldStatus::kOk);
  const auto r = s.feed(bad);
  EXPECT_EQ(r.status, MoldStatus::kMalformed);
  EXPECT_EQ(r.error, error) << to_string(r.error);
  EXPECT_EQ(r.offset, offset);
  EXPECT_EQ(r.reason, reason);
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_EQ(s.got.size(), 2u);
  EXPECT_EQ(s.receiver.stats().malformed_packets, 1u);
  EXPECT_EQ(s.receiver.stats().packets, 2u);
  EXPECT_EQ(s.receiver.stats().bytes, packet("S", 1, numbered(1, 2)).size() + bad.size());
  EXPECT_EQ(s.receiver.next_expected(), 3u);
  EXPECT_EQ(trimmed(s.receiver.session()), "S");
  const auto next = s.feed(packet("S", 3, numbered(3, 2)));
  EXPECT_EQ(next.status, MoldStatus::kOk);
  EXPECT_FALSE(next.session_changed);
  EXPECT_EQ(s.sequences(), range(1, 4));
  EXPECT_EQ(s.receiver.stats().gaps, 0u);
}

TEST(MoldUdp64, MalformedShortHeaderIsRefusedAtTheEndOfTheDatagram) {
  expect_malformed(Bytes(7, 'A'), MoldError::kShortHeader, 7,
                   "offset 7: datagram of 7 bytes ends inside the 20-byte header");
  expect_malformed(Bytes{}, MoldError::kShortHeader, 0, "offset 0: datagram of 0 bytes ends inside the 20-byte header");
  expect_malformed(Bytes(19, 'A'), MoldError::kShortHeader, 19,
                   "offset 19: datagram of 19 bytes ends inside the 20-byte header");
}

TEST(MoldUdp64, MalformedSessionByteOutsidePrintableAsciiIsRefused) {
  auto p = packet("S", 3, numbered(3, 1));
  p[3] = 0x01;
  expect_malformed(p, MoldError::kBadSession, 3, "offset 3: session byte 0x01 is not printable ASCII");
  p[3] = 0x7f;
  expect_malformed(p, MoldError::kBadSession, 3, "offset 3: session byte 0x7f is not printable ASCII");
  p[3] = ' ';
  p[9] = 0xc3;
  expect_malformed(p, MoldError::kBadSession, 9, "offset 9: session byte 0xc3 is not printable ASCII");
}

TEST(MoldUdp64, MalformedSequenceZeroIsRefused) {
  expect_malformed(packet("S", 0, numbered(0, 1)), MoldError::kZeroSequence, 10,
                   "offset 10: sequence number 0 (sequences start at 1)");
  expect_malformed(packet("S", 0, {}), MoldError::kZeroSequence, 10,
                   "offset 10: sequence number 0 (sequences start at 1)");
}

TEST(MoldUdp64, MalformedSequencePastTwoToTheSixtyFourIsRefused) {
  expect_malformed(packet("S", ~std::uint64_t{0}, numbered(1, 2)), MoldError::kSequenceOverflow, 10,
                   "offset 10: sequence 18446744073709551615 + 2 messages passes 2^64 - 1");
}

TEST(MoldUdp64, MalformedCountClaimingMoreBlocksThanTheDatagramHoldsIsRefused) {
  // 3 blocks of "m3" (4 bytes each) present, count says 4: the 4th would start at 20 + 12.
  expect_malformed(packet("S", 3, numbered(3, 3), 4), MoldError::kMissingBlocks, 32,
                   "offset 32: count says 4 message blocks, the datagram ends after 3 (0 bytes left)");
  // One stray byte where the 2nd block's length should be.
  auto p = packet("S", 3, numbered(3, 1), 2);
  p.push_back(0x00);
  expect_malformed(p, MoldError::kMissingBlocks, 24,
                   "offset 24: count says 2 message blocks, the datagram ends after 1 (1 bytes left)");
  // A count of 0xFFFE with no blocks at all.
  expect_malformed(packet("S", 3, {}, 0xFFFE), MoldError::kMissingBlocks, 20,
                   "offset 20: count says 65534 message blocks, the datagram ends after 0 (0 bytes left)");
}

TEST(MoldUdp64, MalformedBlockLengthRunningPastTheEndIsRefused) {
  auto p = packet("S", 3, {"m3", "m4", "abcdef"});
  p.resize(p.size() - 2);  // the 3rd block claims 6 bytes, 4 are there
  expect_malformed(p, MoldError::kBlockOverrun, 28, "offset 28: message block 3 of 3 claims 6 bytes, 4 remain");
  auto q = packet("S", 3, {"m3"});
  q[20] = 0xff;  // claims 65282 bytes
  expect_malformed(q, MoldError::kBlockOverrun, 20, "offset 20: message block 1 of 1 claims 65282 bytes, 2 remain");
}

TEST(MoldUdp64, MalformedTrailingBytesAfterTheLastBlockAreRefused) {
  auto p = packet("S", 3, numbered(3, 2));
  p.push_back('x');
  p.push_back('y');
  expect_malformed(p, MoldError::kTrailingBytes, 28, "offset 28: 2 bytes after the last of 2 message blocks");
  auto hb = packet("S", 3, {});
  hb.push_back(0);
  expect_malformed(hb, MoldError::kTrailingBytes, 20, "offset 20: 1 bytes after the heartbeat header");
  auto eos = packet("S", 3, {}, 0xFFFF);
  eos.insert(eos.end(), {0, 1, 'x'});
  expect_malformed(eos, MoldError::kTrailingBytes, 20, "offset 20: 3 bytes after the end-of-session header");
}

TEST(MoldUdp64, MalformedZeroLengthMessageIsRefused) {
  expect_malformed(packet("S", 3, {"m3", "", "m5"}), MoldError::kEmptyMessage, 24,
                   "offset 24: message block 2 of 3 has length 0");
}

TEST(MoldUdp64, MalformedPacketOfAnotherSessionChangesNothing) {
  Stream s;
  ASSERT_EQ(s.feed(packet("A", 1, numbered(1, 2))).status, MoldStatus::kOk);
  const auto r = s.feed(packet("B", 1, numbered(1, 2), 3));
  EXPECT_EQ(r.status, MoldStatus::kMalformed);
  EXPECT_FALSE(r.session_changed);
  EXPECT_EQ(s.receiver.stats().session_changes, 0u);
  EXPECT_EQ(trimmed(s.receiver.session()), "A");
}

// ---- sequencing ----

TEST(MoldUdp64, GapIsCountedOnceWithItsMissingRangeThenThePacketIsDeliveredAndSequencingContinues) {
  Stream s;
  EXPECT_EQ(s.feed(packet("S", 1, numbered(1, 3))).status, MoldStatus::kOk);
  const auto r = s.feed(packet("S", 1001, numbered(1001, 3)));
  EXPECT_EQ(r.status, MoldStatus::kGap);
  EXPECT_EQ(r.gap_from, 4u);
  EXPECT_EQ(r.gap_to, 1000u);
  EXPECT_EQ(r.delivered, 3u);
  EXPECT_EQ(s.feed(packet("S", 1004, numbered(1004, 2))).status, MoldStatus::kOk);
  std::vector<std::uint64_t> want = range(1, 3);
  for (auto q : range(1001, 1005)) want.push_back(q);
  EXPECT_EQ(s.sequences(), want);
  for (const auto& d : s.got) EXPECT_EQ(d.bytes, name_of(d.sequence));
  const auto& st = s.receiver.stats();
  EXPECT_EQ(st.gaps, 1u);
  EXPECT_EQ(st.missing_messages, 997u);
  EXPECT_EQ(st.messages, 8u);
  EXPECT_EQ(s.receiver.next_expected(), 1006u);
}

TEST(MoldUdp64, MaxGapRefusesOneStrayPacketFarAheadAndTheStreamGoesOnUnblinded) {
  Stream s(1, 1000);
  EXPECT_EQ(s.feed(packet("S", 1, numbered(1, 3))).status, MoldStatus::kOk);
  // A stray (or hostile) packet 2^40 ahead: without max_gap every real packet after it would be a duplicate.
  const auto r = s.feed(packet("S", std::uint64_t{1} << 40, numbered(1, 2)));
  EXPECT_EQ(r.status, MoldStatus::kTooFarAhead);
  EXPECT_EQ(r.gap_from, 4u);
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_EQ(s.receiver.next_expected(), 4u);
  EXPECT_EQ(s.feed(packet("S", 4, numbered(4, 2))).status, MoldStatus::kOk);
  // Within max_gap a gap is taken as ever.
  const auto g = s.feed(packet("S", 1006, numbered(1006, 1)));
  EXPECT_EQ(g.status, MoldStatus::kGap);
  EXPECT_EQ(g.gap_to, 1005u);
  EXPECT_EQ(s.sequences(), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 1006}));
  const auto& st = s.receiver.stats();
  EXPECT_EQ(st.too_far_ahead_packets, 1u);
  EXPECT_EQ(st.packets, st.malformed_packets + st.too_far_ahead_packets + st.heartbeats + st.end_of_session_packets +
                            st.data_packets);
  EXPECT_STREQ(to_string(MoldStatus::kTooFarAhead), "too_far_ahead");
}

TEST(MoldUdp64, MaxGapTakesARealJumpWhenTheNextPacketContinuesTheRefusedOne) {
  Stream s(1, 1000);
  EXPECT_EQ(s.feed(packet("S", 1, numbered(1, 3))).status, MoldStatus::kOk);
  EXPECT_EQ(s.feed(packet("S", 50001, numbered(50001, 2))).status, MoldStatus::kTooFarAhead);
  // Not its continuation: refused too, and it becomes the one to continue.
  EXPECT_EQ(s.feed(packet("S", 90001, numbered(90001, 1))).status, MoldStatus::kTooFarAhead);
  const auto r = s.feed(packet("S", 90002, numbered(90002, 2)));  // continues 90001: the stream did jump
  EXPECT_EQ(r.status, MoldStatus::kGap);
  EXPECT_EQ(r.gap_from, 4u);
  EXPECT_EQ(r.gap_to, 90001u);  // the refused packet's message is in the gap
  EXPECT_EQ(r.delivered, 2u);
  EXPECT_EQ(s.sequences(), (std::vector<std::uint64_t>{1, 2, 3, 90002, 90003}));
  EXPECT_EQ(s.receiver.stats().too_far_ahead_packets, 2u);
  EXPECT_EQ(s.receiver.stats().missing_messages, 89998u);
}

TEST(MoldUdp64, MaxGapDoesNotApplyToANewSessionOrAHeartbeatInReach) {
  Stream s(0, 10);
  EXPECT_EQ(s.feed(packet("A", 5000, numbered(5000, 1))).status, MoldStatus::kOk);  // joining: no expectation yet
  const auto r = s.feed(packet("B", 900000, numbered(900000, 1)));                  // another session: restarts
  EXPECT_TRUE(r.session_changed);
  EXPECT_EQ(r.status, MoldStatus::kOk);
  EXPECT_EQ(s.feed(packet("B", 900005, {})).status, MoldStatus::kGap);  // 4 ahead: within max_gap
  EXPECT_EQ(s.feed(packet("B", 990005, {})).status, MoldStatus::kTooFarAhead);
  EXPECT_EQ(s.receiver.next_expected(), 900005u);
}

TEST(MoldUdp64, SeveralGapsHaveExactRangesAndTotals) {
  Stream s;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps;
  for (const auto& [first, n] :
       std::vector<std::pair<std::uint64_t, std::size_t>>{{1, 5}, {8, 2}, {10, 1}, {20, 4}, {25, 1}, {100, 3}}) {
    const auto r = s.feed(packet("S", first, numbered(first, n)));
    if (r.status == MoldStatus::kGap) gaps.emplace_back(r.gap_from, r.gap_to);
  }
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> want = {{6, 7}, {11, 19}, {24, 24}, {26, 99}};
  EXPECT_EQ(gaps, want);
  EXPECT_EQ(s.receiver.stats().gaps, 4u);
  EXPECT_EQ(s.receiver.stats().missing_messages, 2u + 9u + 1u + 74u);
  EXPECT_EQ(s.receiver.stats().messages, 16u);
}

TEST(MoldUdp64, FirstPacketBeyondTheConfiguredFirstSequenceIsAGap) {
  Stream s(1);
  const auto r = s.feed(packet("S", 5, numbered(5, 1)));
  EXPECT_EQ(r.status, MoldStatus::kGap);
  EXPECT_EQ(r.gap_from, 1u);
  EXPECT_EQ(r.gap_to, 4u);
}

TEST(MoldUdp64, JoiningMidStreamTakesTheFirstPacketsSequenceWithoutAGap) {
  Stream s(0);
  EXPECT_EQ(s.receiver.next_expected(), 0u);
  EXPECT_FALSE(s.receiver.synced());
  EXPECT_EQ(s.feed(packet("S", 5000, numbered(5000, 2))).status, MoldStatus::kOk);
  EXPECT_TRUE(s.receiver.synced());
  EXPECT_EQ(s.receiver.next_expected(), 5002u);
  EXPECT_EQ(s.receiver.stats().gaps, 0u);
  EXPECT_EQ(s.sequences(), range(5000, 5001));
}

TEST(MoldUdp64, DuplicatePacketIsCountedAndDropped) {
  Stream s;
  const auto p = packet("S", 1, numbered(1, 4));
  EXPECT_EQ(s.feed(p).status, MoldStatus::kOk);
  const auto r = s.feed(p);
  EXPECT_EQ(r.status, MoldStatus::kDuplicate);
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_EQ(r.duplicates, 4u);
  EXPECT_EQ(s.sequences(), range(1, 4));
  EXPECT_EQ(s.receiver.stats().duplicate_packets, 1u);
  EXPECT_EQ(s.receiver.stats().duplicate_messages, 4u);
  EXPECT_EQ(s.receiver.stats().data_packets, 2u);
  EXPECT_EQ(s.receiver.next_expected(), 5u);
}

TEST(MoldUdp64, OverlappingPacketDeliversOnlyItsNewMessagesAndCountsTheOldOnesAsDuplicates) {
  Stream s;
  EXPECT_EQ(s.feed(packet("S", 1, numbered(1, 5))).status, MoldStatus::kOk);
  const auto r = s.feed(packet("S", 3, numbered(3, 6)));  // 3..8: 3-5 seen, 6-8 new
  EXPECT_EQ(r.status, MoldStatus::kOverlap);
  EXPECT_EQ(r.delivered, 3u);
  EXPECT_EQ(r.duplicates, 3u);
  EXPECT_EQ(s.sequences(), range(1, 8));
  for (const auto& d : s.got) EXPECT_EQ(d.bytes, name_of(d.sequence));
  EXPECT_EQ(s.receiver.stats().overlapping_packets, 1u);
  EXPECT_EQ(s.receiver.stats().duplicate_packets, 0u);
  EXPECT_EQ(s.receiver.stats().duplicate_messages, 3u);
}

TEST(MoldUdp64, LatePacketAfterALaterOneCountsAsDuplicateAndTheGapStaysCounted) {
  // No reorder buffer: 4-6 arriving after 7-9 finds its sequences already passed.
  Stream s;
  s.feed(packet("S", 1, numbered(1, 3)));
  const auto gap = s.feed(packet("S", 7, numbered(7, 3)));
  EXPECT_EQ(gap.status, MoldStatus::kGap);
  const auto late = s.feed(packet("S", 4, numbered(4, 3)));
  EXPECT_EQ(late.status, MoldStatus::kDuplicate);
  EXPECT_EQ(late.delivered, 0u);
  std::vector<std::uint64_t> want = {1, 2, 3, 7, 8, 9};
  EXPECT_EQ(s.sequences(), want);
  EXPECT_EQ(s.receiver.stats().gaps, 1u);
  EXPECT_EQ(s.receiver.stats().missing_messages, 3u);
  EXPECT_EQ(s.receiver.stats().duplicate_packets, 1u);
  EXPECT_EQ(s.receiver.stats().duplicate_messages, 3u);
}

TEST(MoldUdp64, SessionChangeIsCountedAndSequencingRestarts) {
  Stream s(0);
  s.feed(packet("DAY1", 1, numbered(1, 3)));
  s.feed(packet("DAY1", 4, {}, 0xFFFF));
  EXPECT_TRUE(s.receiver.stats().end_of_session_seen);
  const auto r = s.feed(packet("DAY2", 1, numbered(1, 2)));
  EXPECT_EQ(r.status, MoldStatus::kOk);
  EXPECT_TRUE(r.session_changed);
  EXPECT_EQ(r.delivered, 2u);
  EXPECT_EQ(trimmed(s.receiver.session()), "DAY2");
  EXPECT_FALSE(s.receiver.stats().end_of_session_seen);
  EXPECT_EQ(s.receiver.stats().session_changes, 1u);
  EXPECT_EQ(s.receiver.next_expected(), 3u);
  std::vector<std::uint64_t> want = {1, 2, 3, 1, 2};
  EXPECT_EQ(s.sequences(), want);
  // A session change to a stream already under way: with first_sequence 0 its first packet sets the sequence.
  const auto mid = s.feed(packet("DAY3", 900, numbered(900, 1)));
  EXPECT_EQ(mid.status, MoldStatus::kOk);
  EXPECT_TRUE(mid.session_changed);
  EXPECT_EQ(s.receiver.stats().gaps, 0u);
}

TEST(MoldUdp64, SessionChangeWithAConfiguredFirstSequenceReportsTheNewSessionsMissingStart) {
  Stream s(1);
  s.feed(packet("DAY1", 1, numbered(1, 3)));
  const auto r = s.feed(packet("DAY2", 4, numbered(4, 1)));
  EXPECT_TRUE(r.session_changed);
  EXPECT_EQ(r.status, MoldStatus::kGap);
  EXPECT_EQ(r.gap_from, 1u);
  EXPECT_EQ(r.gap_to, 3u);
  EXPECT_EQ(s.receiver.stats().session_changes, 1u);
}

TEST(MoldUdp64, HeartbeatIsCountedAndOneAheadOfTheExpectedSequenceReportsTheGap) {
  Stream s;
  s.feed(packet("S", 1, numbered(1, 3)));
  auto r = s.feed(packet("S", 4, {}));  // in step
  EXPECT_EQ(r.status, MoldStatus::kOk);
  EXPECT_EQ(r.kind, MoldPacketKind::kHeartbeat);
  r = s.feed(packet("S", 2, {}));  // late: changes nothing
  EXPECT_EQ(r.status, MoldStatus::kOk);
  EXPECT_EQ(s.receiver.next_expected(), 4u);
  r = s.feed(packet("S", 9, {}));  // 4..8 were sent and lost
  EXPECT_EQ(r.status, MoldStatus::kGap);
  EXPECT_EQ(r.kind, MoldPacketKind::kHeartbeat);
  EXPECT_EQ(r.gap_from, 4u);
  EXPECT_EQ(r.gap_to, 8u);
  EXPECT_EQ(s.receiver.next_expected(), 9u);
  EXPECT_EQ(s.receiver.stats().heartbeats, 3u);
  EXPECT_EQ(s.receiver.stats().gaps, 1u);
  EXPECT_EQ(s.receiver.stats().missing_messages, 5u);
  EXPECT_EQ(s.got.size(), 3u);
}

TEST(MoldUdp64, EndOfSessionIsCountedAndSeenAndAheadOfTheExpectedSequenceReportsTheGap) {
  Stream s;
  s.feed(packet("S", 1, numbered(1, 3)));
  EXPECT_FALSE(s.receiver.stats().end_of_session_seen);
  auto r = s.feed(packet("S", 6, {}, 0xFFFF));
  EXPECT_EQ(r.kind, MoldPacketKind::kEndOfSession);
  EXPECT_EQ(r.status, MoldStatus::kGap);
  EXPECT_EQ(r.gap_from, 4u);
  EXPECT_EQ(r.gap_to, 5u);
  r = s.feed(packet("S", 6, {}, 0xFFFF));
  EXPECT_EQ(r.status, MoldStatus::kOk);
  EXPECT_TRUE(s.receiver.stats().end_of_session_seen);
  EXPECT_EQ(s.receiver.stats().end_of_session_packets, 2u);
  EXPECT_EQ(s.receiver.stats().gaps, 1u);
}

TEST(MoldUdp64, ResetForgetsSessionSequenceAndStats) {
  Stream s(0);
  s.feed(packet("S", 10, numbered(10, 1)));
  s.receiver.reset();
  EXPECT_FALSE(s.receiver.synced());
  EXPECT_EQ(s.receiver.next_expected(), 0u);
  EXPECT_EQ(s.receiver.stats().packets, 0u);
  EXPECT_EQ(s.feed(packet("T", 3, numbered(3, 1))).session_changed, false);
}

TEST(MoldUdp64, FunctionPointerCallbackGetsTheSameMessages) {
  MoldReceiver receiver(MoldReceiverOptions{1});
  std::vector<std::uint64_t> seen;
  const auto p = packet("S", 1, numbered(1, 3));
  receiver.receive(
      std::span<const unsigned char>(p),
      [](void* context, std::uint64_t seq, std::span<const unsigned char>) {
        static_cast<std::vector<std::uint64_t>*>(context)->push_back(seq);
      },
      &seen);
  EXPECT_EQ(seen, range(1, 3));
}

TEST(MoldUdp64, CallbackThatThrowsLeavesTheStreamCountingExactlyWhatItWasHanded) {
  Stream s;
  const auto p = packet("S", 1, numbered(1, 5));
  int calls = 0;
  EXPECT_THROW(s.receiver.receive(std::span<const unsigned char>(p),
                                  [&](std::uint64_t, std::span<const unsigned char>) {
                                    if (++calls == 3) throw std::runtime_error("consumer failed");
                                  }),
               std::runtime_error);
  EXPECT_EQ(s.receiver.stats().messages, 3u);
  EXPECT_EQ(s.receiver.next_expected(), 4u);
  // The sender's retransmission of the packet (or the next packet) continues after message 3.
  const auto r = s.feed(p);
  EXPECT_EQ(r.status, MoldStatus::kOverlap);
  EXPECT_EQ(s.sequences(), range(4, 5));
}

TEST(MoldUdp64, ReceiveAllocatesNothing) {
  MoldReceiver receiver(MoldReceiverOptions{1});
  std::vector<Bytes> datagrams = {
      packet("S", 1, numbered(1, 10)),
      packet("S", 1, numbered(1, 10)),      // duplicate
      packet("S", 5, numbered(5, 10)),      // overlap
      packet("S", 30, numbered(30, 3)),     // gap
      packet("S", 33, {}),                  // heartbeat
      packet("S", 33, numbered(33, 4), 5),  // malformed (reason formatted)
      Bytes(5, 'x'),                        // malformed
      packet("T", 1, numbered(1, 2)),       // session change
      packet("T", 3, {}, 0xFFFF),           // end of session
  };
  std::uint64_t sum = 0;
  auto on_message = [&](std::uint64_t seq, std::span<const unsigned char> m) { sum += seq + m.size(); };
  std::uint64_t reason_bytes = 0;
  g_allocations = 0;
  g_counting = true;
  for (int round = 0; round < 100; ++round) {
    for (const auto& d : datagrams)
      reason_bytes += receiver.receive(std::span<const unsigned char>(d), on_message).reason.size();
  }
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0u);
  EXPECT_GT(sum, 0u);
  EXPECT_GT(reason_bytes, 0u);
  EXPECT_EQ(receiver.stats().packets, 100u * datagrams.size());
}

// ---- random datagrams ----

/// The invariants every call must keep, checked on `r` from receiving `d` with `before` the receiver's state
/// beforehand and `seqs` the sequences delivered by that call.
struct InvariantChecker {
  std::uint64_t block_sum = 0;  // message blocks of well-formed data packets
  std::uint64_t last_delivered = 0;
  bool any = false;

  void check(const MoldReceiver& rx, const MoldResult& r, std::uint64_t expected_before,
             const MoldSession& session_before, const std::vector<std::uint64_t>& seqs) {
    const auto& st = rx.stats();
    ASSERT_EQ(st.packets, st.malformed_packets + st.heartbeats + st.end_of_session_packets + st.data_packets);
    ASSERT_EQ(r.delivered, seqs.size());
    if (r.status == MoldStatus::kMalformed) {
      ASSERT_TRUE(seqs.empty());
      ASSERT_EQ(rx.next_expected(), expected_before);
      ASSERT_EQ(rx.session(), session_before);
      ASSERT_FALSE(r.reason.empty());
      ASSERT_EQ(r.reason.substr(0, 7), "offset ");
    } else if (r.kind == MoldPacketKind::kMessages) {
      block_sum += r.count;
      ASSERT_EQ(r.delivered + r.duplicates, r.count);
    } else {
      ASSERT_TRUE(seqs.empty());
    }
    ASSERT_EQ(block_sum, st.messages + st.duplicate_messages);
    if (r.session_changed) any = false;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      if (any) {
        ASSERT_GT(seqs[i], last_delivered);
      }
      if (i > 0) {
        ASSERT_EQ(seqs[i], seqs[i - 1] + 1);
      }
      last_delivered = seqs[i];
      any = true;
    }
    if (!seqs.empty()) {
      ASSERT_EQ(rx.next_expected(), seqs.back() + 1);
    }
    if (r.status == MoldStatus::kGap) {
      ASSERT_LE(r.gap_from, r.gap_to);
    }
  }
};

TEST(MoldUdp64, RandomAndMutatedDatagramsNeverCrashAndKeepTheInvariants) {
  const std::uint64_t seed =
      std::getenv("TICKINFER_TEST_SEED") ? std::strtoull(std::getenv("TICKINFER_TEST_SEED"), nullptr, 10) : 20240601;
  SCOPED_TRACE("TICKINFER_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (std::uint64_t first : {std::uint64_t{0}, std::uint64_t{1}}) {
    MoldReceiver rx(MoldReceiverOptions{first});
    InvariantChecker checker;
    std::uint64_t next = 1;
    std::uint64_t malformed = 0;
    for (int i = 0; i < 20000; ++i) {
      Bytes d;
      const auto kind = rng() % 4;
      if (kind == 0) {  // pure noise
        d.resize(rng() % 80);
        for (auto& b : d) b = static_cast<unsigned char>(rng());
      } else {  // a valid packet near the stream's sequence, maybe mutated
        const std::uint64_t seq =
            std::max<std::int64_t>(1, static_cast<std::int64_t>(next) + static_cast<int>(rng() % 9) - 4);
        const auto n = static_cast<std::size_t>(rng() % 6);
        d = packet(rng() % 50 == 0 ? "OTHER" : "S", seq, numbered(seq, n), n == 0 && rng() % 3 == 0 ? 0xFFFF : -1);
        next = seq + n;
        if (kind == 3 && !d.empty()) {
          switch (rng() % 3) {
            case 0:
              d[rng() % d.size()] ^= static_cast<unsigned char>(1u << (rng() % 8));
              break;
            case 1:
              d.resize(rng() % d.size());
              break;
            default:
              d.push_back(static_cast<unsigned char>(rng()));
          }
        }
      }
      const auto expected_before = rx.next_expected();
      const auto session_before = rx.session();
      std::vector<std::uint64_t> seqs;
      const auto r =
          rx.receive(std::span<const unsigned char>(d), [&](std::uint64_t s, std::span<const unsigned char> m) {
            ASSERT_GE(m.data(), d.data());
            ASSERT_LE(m.data() + m.size(), d.data() + d.size());
            ASSERT_FALSE(m.empty());
            seqs.push_back(s);
          });
      if (r.status == MoldStatus::kMalformed) ++malformed;
      checker.check(rx, r, expected_before, session_before, seqs);
      if (::testing::Test::HasFatalFailure()) return;
    }
    EXPECT_GT(malformed, 1000u);
    EXPECT_GT(rx.stats().messages, 1000u);
    EXPECT_GT(rx.stats().gaps, 0u);
    EXPECT_GT(rx.stats().duplicate_packets, 0u);
    EXPECT_GT(rx.stats().overlapping_packets, 0u);
  }
}

#if defined(TICKINFER_FEED_APP)

// ---- tickinfer-feed over loopback UDP ----

/// What a run of tickinfer-feed did, seen from a MoldReceiver on a socket the test bound.
struct FeedRun {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::string json;
  MoldStats stats;
  std::vector<Delivered> got;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps;
  std::vector<std::string> malformed;  // "SIZE: reason"
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs tickinfer-feed with `args` plus --dest (a socket bound on 127.0.0.1, ephemeral port, 4 MiB receive
/// buffer) and --json. The test thread reads datagrams while the sender runs; once the sender has exited,
/// everything it sent over loopback is already queued on the socket, so a final non-blocking drain sees it all.
FeedRun run_feed(std::vector<std::string> args, std::uint64_t first_sequence = 1) {
  FeedRun run;
  testing::TempDir dir;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  const int rcvbuf = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind failed");
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string dest = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  std::vector<std::string> argv_s = {TICKINFER_FEED_APP};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  const std::string json_path = dir.file("feed.json");
  argv_s.insert(argv_s.end(), {"--dest", dest, "--json", json_path});
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, dir.file("out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, dir.file("err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error(std::string("posix_spawn ") + argv[0] + ": " + std::strerror(rc));

  MoldReceiver rx(MoldReceiverOptions{first_sequence});
  std::vector<unsigned char> buf(65536);
  auto drain = [&] {
    for (;;) {
      const auto n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) return;
      const std::span<const unsigned char> d(buf.data(), static_cast<std::size_t>(n));
      const auto r = rx.receive(d, [&](std::uint64_t seq, std::span<const unsigned char> m) {
        run.got.push_back({seq, as_string(m)});
      });
      if (r.status == MoldStatus::kGap) run.gaps.emplace_back(r.gap_from, r.gap_to);
      if (r.status == MoldStatus::kMalformed) run.malformed.push_back(std::to_string(n) + ": " + std::string(r.reason));
    }
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int status = 0;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 50);
    drain();
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > give_up) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "tickinfer-feed did not finish in 120 s";
      break;
    }
  }
  drain();  // the sender has exited: all it sent over loopback is queued here
  ::close(fd);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.out = slurp(dir.file("out"));
  run.err = slurp(dir.file("err"));
  run.json = slurp(json_path);
  run.stats = rx.stats();
  return run;
}

/// The number after "KEY": inside the JSON's `object` (a flat reader for the report's known layout).
std::uint64_t json_number(const std::string& json, const std::string& object, const std::string& key) {
  auto at = object.empty() ? 0 : json.find("\"" + object + "\"");
  if (at == std::string::npos) throw std::runtime_error("no " + object + " in " + json);
  at = json.find("\"" + key + "\": ", at);
  if (at == std::string::npos) throw std::runtime_error("no " + key + " in " + json);
  return std::strtoull(json.c_str() + at + key.size() + 4, nullptr, 10);
}

/// The fixture paced at 5000 messages/s, 10 messages per packet: 100 packets, the k-th (0-based) holding
/// sequences 10k+1..10k+10. Slow enough that no datagram waits long in the socket on a loaded machine.
std::vector<std::string> paced_fixture_args() {
  return {"--data", testing::itch_fixture().string(), "--rate", "5000", "--max-messages-per-packet", "10", "--batch-us",
          "1000000"};
}

std::vector<std::string> with(std::vector<std::string> args, std::initializer_list<std::string> more) {
  args.insert(args.end(), more);
  return args;
}

/// Every fixture message except those of the lost packets (0-based packet indexes of 10 messages each).
std::vector<Delivered> fixture_without(const std::vector<std::string>& messages, const std::vector<int>& lost) {
  std::vector<Delivered> out;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (std::find(lost.begin(), lost.end(), static_cast<int>(i / 10)) != lost.end()) continue;
    out.push_back({i + 1, messages[i]});
  }
  return out;
}

TEST(FeedApp, SendsEveryItchFixtureMessageByteIdenticalInOrderThenEndOfSessionThreeTimes) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  const auto messages = itch_messages(testing::itch_fixture());
  const auto run = run_feed(paced_fixture_args());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.got, fixture_without(messages, {}));
  const auto& st = run.stats;
  EXPECT_EQ(st.packets, 103u);
  EXPECT_EQ(st.data_packets, 100u);
  EXPECT_EQ(st.messages, 1000u);
  EXPECT_EQ(st.end_of_session_packets, 3u);
  EXPECT_TRUE(st.end_of_session_seen);
  EXPECT_EQ(st.gaps + st.missing_messages + st.duplicate_packets + st.duplicate_messages + st.malformed_packets +
                st.heartbeats + st.session_changes,
            0u);
  EXPECT_NE(run.out.find("tickinfer-feed: 1000 messages (sequences 1-1000, 38874 bytes) in 100 packets; sent 103 "
                         "datagrams"),
            std::string::npos)
      << run.out;
  EXPECT_EQ(json_number(run.json, "", "messages"), 1000u);
  EXPECT_EQ(json_number(run.json, "", "datagrams_sent"), 103u);
  EXPECT_EQ(json_number(run.json, "", "bytes_sent"), st.bytes);
  EXPECT_EQ(json_number(run.json, "expected_receiver", "messages"), 1000u);
}

TEST(FeedApp, GapEveryLosesOnePacketInEachWindowAndTheReceiverCountsOneGapPerLostPacket) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  const auto messages = itch_messages(testing::itch_fixture());
  const auto run = run_feed(with(paced_fixture_args(), {"--gap-every", "7"}));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // Packets 6, 13, ..., 97 (0-based): 14 packets, 140 messages, none next to another.
  std::vector<int> lost;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (int k = 6; k < 100; k += 7) {
    lost.push_back(k);
    ranges.emplace_back(10 * k + 1, 10 * k + 10);
  }
  EXPECT_EQ(run.got, fixture_without(messages, lost));
  EXPECT_EQ(run.gaps, ranges);
  EXPECT_EQ(run.stats.gaps, 14u);
  EXPECT_EQ(run.stats.missing_messages, 140u);
  EXPECT_EQ(run.stats.messages, 860u);
  EXPECT_EQ(run.stats.data_packets, 86u);
  EXPECT_EQ(run.stats.duplicate_packets + run.stats.malformed_packets, 0u);
  EXPECT_EQ(run.stats.end_of_session_packets, 3u);
  EXPECT_EQ(json_number(run.json, "gap", "packets"), 14u);
  EXPECT_EQ(json_number(run.json, "gap", "messages"), 140u);
  EXPECT_NE(run.out.find("gap 14 packets/140 messages [61-70 131-140 201-210"), std::string::npos) << run.out;
}

TEST(FeedApp, DuplicateEverySendsOnePacketInEachWindowTwiceAndTheReceiverDropsTheCopies) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  const auto messages = itch_messages(testing::itch_fixture());
  const auto run = run_feed(with(paced_fixture_args(), {"--duplicate-every", "5"}));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.got, fixture_without(messages, {}));
  EXPECT_EQ(run.stats.duplicate_packets, 20u);
  EXPECT_EQ(run.stats.duplicate_messages, 200u);
  EXPECT_EQ(run.stats.data_packets, 120u);
  EXPECT_EQ(run.stats.messages, 1000u);
  EXPECT_EQ(run.stats.gaps + run.stats.malformed_packets + run.stats.overlapping_packets, 0u);
}

TEST(FeedApp, CorruptEverySendsAPacketWhoseCountExceedsItsBlocksAndItsMessagesBecomeAGap) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  const auto messages = itch_messages(testing::itch_fixture());
  const auto run = run_feed(with(paced_fixture_args(), {"--corrupt-every", "9"}));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<int> lost;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (int k = 8; k < 100; k += 9) {
    lost.push_back(k);
    ranges.emplace_back(10 * k + 1, 10 * k + 10);
  }
  EXPECT_EQ(run.got, fixture_without(messages, lost));
  EXPECT_EQ(run.stats.malformed_packets, 11u);
  EXPECT_EQ(run.stats.gaps, 11u);
  EXPECT_EQ(run.stats.missing_messages, 110u);
  EXPECT_EQ(run.stats.messages, 890u);
  EXPECT_EQ(run.gaps, ranges);
  ASSERT_EQ(run.malformed.size(), 11u);
  for (const auto& m : run.malformed) {
    const std::string size = m.substr(0, m.find(':'));
    EXPECT_EQ(m,
              size + ": offset " + size + ": count says 11 message blocks, the datagram ends after 10 (0 bytes left)");
  }
}

TEST(FeedApp, CombinedSeededInjectionsGiveExactlyTheCountsTheSummaryPredicts) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  const auto run = run_feed(with(
      paced_fixture_args(), {"--gap-every", "4", "--duplicate-every", "3", "--corrupt-every", "5", "--seed", "7"}));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto& st = run.stats;
  const std::string e = "expected_receiver";
  EXPECT_EQ(st.messages, json_number(run.json, e, "messages"));
  EXPECT_EQ(st.data_packets, json_number(run.json, e, "data_packets"));
  EXPECT_EQ(st.gaps, json_number(run.json, e, "gaps"));
  EXPECT_EQ(st.missing_messages, json_number(run.json, e, "missing_messages"));
  EXPECT_EQ(st.duplicate_packets, json_number(run.json, e, "duplicate_packets"));
  EXPECT_EQ(st.duplicate_messages, json_number(run.json, e, "duplicate_messages"));
  EXPECT_EQ(st.malformed_packets, json_number(run.json, e, "malformed_packets"));
  EXPECT_EQ(st.end_of_session_packets, 3u);
  // One fate per packet: lost (gap or corrupt) or delivered.
  EXPECT_EQ(st.messages + st.missing_messages, 1000u);
  EXPECT_EQ(json_number(run.json, "gap", "packets"), 25u);  // one per window of 4
  EXPECT_GT(st.duplicate_packets, 0u);
  EXPECT_GT(st.malformed_packets, 0u);
  EXPECT_LT(st.gaps, json_number(run.json, "gap", "packets") + st.malformed_packets);  // some lost runs merged
  // The same options pick the same packets: a second run gives the same report.
  const auto again = run_feed(with(
      paced_fixture_args(), {"--gap-every", "4", "--duplicate-every", "3", "--corrupt-every", "5", "--seed", "7"}));
  EXPECT_EQ(again.gaps, run.gaps);
  EXPECT_EQ(again.got, run.got);
}

TEST(FeedApp, RepeatAndLimitContinueTheSequenceFromStartSequence) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  const auto messages = itch_messages(testing::itch_fixture());
  const auto run = run_feed({"--data", testing::itch_fixture().string(), "--max", "--repeat", "3", "--limit", "50",
                             "--start-sequence", "1001", "--session", "REPLAY"},
                            1001);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.got.size(), 150u);
  for (std::size_t i = 0; i < run.got.size(); ++i) {
    EXPECT_EQ(run.got[i].sequence, 1001 + i);
    EXPECT_EQ(run.got[i].bytes, messages[i % 50]);
  }
  EXPECT_EQ(run.stats.gaps, 0u);
  EXPECT_EQ(run.stats.end_of_session_packets, 3u);
  EXPECT_NE(run.out.find("session \"REPLAY\""), std::string::npos) << run.out;
}

TEST(FeedApp, HeartbeatsWhileIdleCarryTheNextSequence) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  // 3 messages 50 ms apart, a heartbeat after 10 ms of silence.
  const auto run =
      run_feed({"--data", testing::itch_fixture().string(), "--rate", "20", "--limit", "3", "--heartbeat-ms", "10"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.stats.messages, 3u);
  EXPECT_GE(run.stats.heartbeats, 2u);
  EXPECT_EQ(run.stats.heartbeats, json_number(run.json, "", "heartbeats"));
  EXPECT_EQ(run.stats.gaps, 0u);
}

TEST(FeedApp, CaptureSendsEachEventAsOneMessageOfItsBytes) {
  testing::TempDir dir;
  const std::string path = dir.file("events.cap");
  std::vector<Event> events(25);
  for (std::size_t i = 0; i < events.size(); ++i) {
    events[i].ts_ns = 34'200'000'000'000 + static_cast<std::int64_t>(i) * 1000;
    events[i].kind = EventKind::kAdd;
    events[i].order_id = 100 + i;
    events[i].price = 1'000'000 + static_cast<std::int64_t>(i);
    events[i].qty = 10;
    events[i].side = Side::kBuy;
  }
  {
    const std::vector<SymbolInfo> symbols = {SymbolInfo{0, "AMZN", 10'000, 1}};
    CaptureWriter writer(path, symbols);
    writer.append(events);
    writer.finish();
  }
  const auto run = run_feed({"--data", path, "--speed", "1"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.got.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(run.got[i].bytes, std::string(reinterpret_cast<const char*>(&events[i]), sizeof(Event)));
  }
  EXPECT_NE(run.json.find("\"format\": \"capture\""), std::string::npos) << run.json;
}

TEST(FeedApp, UnreadableFileExitsOneWithTheLibrarysMessage) {
  const std::string missing = "/nonexistent/tickinfer-feed-test.itch";
  const std::string message = expect_error(ErrorCode::kFileNotFound, [&] { (void)ByteSource::map_file(missing); });
  const auto run = run_feed({"--data", missing});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.err, "tickinfer-feed: " + message + "\n");
  EXPECT_EQ(run.stats.packets, 0u);
}

TEST(FeedApp, TruncatedItchFileExitsOneNamingTheOffset) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  testing::TempDir dir;
  const std::string bytes = slurp(testing::itch_fixture().string());
  const std::string path = dir.file("cut.itch");
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  const auto run = run_feed({"--data", path});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find(path + "@"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("truncated"), std::string::npos) << run.err;
  EXPECT_EQ(run.stats.packets, 0u);
}

TEST(FeedApp, BadOptionsExitOneWithCli11sMessage) {
  TICKINFER_REQUIRE_DATA(testing::itch_fixture());
  for (const auto& bad : std::vector<std::vector<std::string>>{{"--max-datagram", "10"},
                                                               {"--session", "ELEVENCHARS"},
                                                               {"--speed", "2", "--rate", "10"},
                                                               {"--format", "csv"},
                                                               {"--gap-every", "0"}}) {
    auto args = bad;
    args.insert(args.begin(), {"--data", testing::itch_fixture().string()});
    const auto run = run_feed(args);
    EXPECT_EQ(run.exit_code, 1) << bad[0] << ": " << run.err;
    EXPECT_FALSE(run.err.empty()) << bad[0];
    EXPECT_EQ(run.stats.packets, 0u) << bad[0];
  }
}

#endif  // TICKINFER_FEED_APP

}  // namespace
}  // namespace tickinfer::feed
