#pragma once
// MoldUDP64, Nasdaq's UDP transport for ITCH 5.0: a packet writer (sender side) and a strict receiver that
// sequences one stream (gap, duplicate, overlap and session-change detection) without allocating.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace tickinfer::feed {

/// Downstream packet layout (all integers big-endian):
///   offset 0   session          10 bytes, ASCII (space-padded)
///   offset 10  sequence number  uint64: the sequence of the packet's first message (heartbeat / end of
///                               session: the sequence of the next message the sender will send)
///   offset 18  message count    uint16: kMoldHeartbeatCount (0), kMoldEndOfSessionCount (0xFFFF), else the
///                               number of message blocks that follow
///   offset 20  message blocks   `count` times: uint16 length, then that many bytes (one ITCH message)
/// Message i of a packet (0-based) has sequence number `sequence + i`. Sequences start at 1.
inline constexpr std::size_t kMoldSessionBytes = 10;
inline constexpr std::size_t kMoldSequenceOffset = 10;
inline constexpr std::size_t kMoldCountOffset = 18;
inline constexpr std::size_t kMoldHeaderBytes = 20;
inline constexpr std::size_t kMoldBlockHeaderBytes = 2;
inline constexpr std::uint16_t kMoldHeartbeatCount = 0;
inline constexpr std::uint16_t kMoldEndOfSessionCount = 0xFFFF;
/// The most message blocks a data packet can declare (0xFFFF means end of session).
inline constexpr std::uint16_t kMoldMaxMessageCount = 0xFFFE;
/// Below the 1500-byte Ethernet MTU with room for IP and UDP headers (and a VLAN tag).
inline constexpr std::size_t kMoldDefaultMaxDatagram = 1400;
/// The largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP).
inline constexpr std::size_t kMoldMaxDatagram = 65507;
/// The smallest datagram limit a writer accepts: the header and one 1-byte message.
inline constexpr std::size_t kMoldMinDatagram = kMoldHeaderBytes + kMoldBlockHeaderBytes + 1;

using MoldSession = std::array<char, kMoldSessionBytes>;

/// `name` padded with spaces to 10 bytes. Throws Error kInvalidConfig when it is empty, longer than 10 bytes
/// or has a byte outside printable ASCII (0x20..0x7e).
MoldSession make_mold_session(std::string_view name);

/// A session as text without its trailing spaces (a view of `session`).
std::string_view trimmed(const MoldSession& session) noexcept;

struct MoldWriterOptions {
  /// Bytes per datagram, header included: kMoldMinDatagram..kMoldMaxDatagram.
  std::size_t max_datagram = kMoldDefaultMaxDatagram;
  /// Messages per packet: 1..kMoldMaxMessageCount (the byte limit usually binds first).
  std::uint16_t max_messages = kMoldMaxMessageCount;
  /// Sequence number of the first message written (>= 1).
  std::uint64_t first_sequence = 1;
};

/// What MoldPacketWriter::append did with a message.
enum class MoldAppend : std::uint8_t {
  kAppended,  // the message is in the packet
  kFull,      // it does not fit in what is left (bytes or message count): send packet(), call next_packet(),
              // append it again (it always fits an empty packet unless kTooLarge)
  kTooLarge,  // it can never be sent: empty (MoldReceiver refuses zero-length messages), or longer than
              // max_message_bytes()
};

/// Builds downstream packets of one session into a buffer it owns, one packet at a time:
///
///   MoldPacketWriter writer("SESSION01");
///   for (auto message : messages) {
///     if (writer.append(message) == MoldAppend::kFull) {
///       send(writer.packet());
///       writer.next_packet();
///       (void)writer.append(message);
///     }
///   }
///   if (!writer.empty()) send(writer.packet()), writer.next_packet();
///   send(writer.end_of_session());
///
/// Allocates its buffer in the constructor only; append, packet, next_packet, heartbeat and end_of_session
/// never allocate and never throw. Not thread-safe (one sender thread).
class MoldPacketWriter {
 public:
  /// Throws Error kInvalidConfig: a bad session (make_mold_session), max_datagram outside
  /// kMoldMinDatagram..kMoldMaxDatagram, max_messages 0 or above kMoldMaxMessageCount, first_sequence 0.
  explicit MoldPacketWriter(std::string_view session, MoldWriterOptions options = {});

  /// Appends one message (its bytes as they are) to the packet being built.
  [[nodiscard]] MoldAppend append(std::span<const unsigned char> message) noexcept;

  /// The packet being built, header filled in (count = messages appended so far). Valid until the next
  /// append / next_packet / set_next_sequence call. Not meant to be sent while empty(): that is a heartbeat.
  std::span<const unsigned char> packet() const noexcept { return {buffer_.data(), used_}; }
  bool empty() const noexcept { return count_ == 0; }
  std::uint16_t message_count() const noexcept { return count_; }
  /// Sequence number of the packet's first message (of the next message appended, while empty()).
  std::uint64_t sequence() const noexcept { return sequence_; }
  /// Sequence number the next message appended gets: sequence() + message_count().
  std::uint64_t next_sequence() const noexcept { return sequence_ + count_; }

  /// Closes the packet (sent or deliberately dropped: its sequence numbers are used either way); the next
  /// one starts empty at next_sequence().
  void next_packet() noexcept;
  /// Drops the packet being built and starts the next one at `sequence` (>= 1; 0 is taken as 1).
  void set_next_sequence(std::uint64_t sequence) noexcept;

  /// A heartbeat (count 0) carrying sequence(): the next sequence a receiver expects once every packet closed
  /// so far has been sent. Valid until the next heartbeat / end_of_session call; the packet being built is
  /// untouched.
  std::span<const unsigned char> heartbeat() noexcept { return control(kMoldHeartbeatCount); }
  /// An end-of-session packet (count 0xFFFF) carrying sequence(). Same lifetime as heartbeat().
  std::span<const unsigned char> end_of_session() noexcept { return control(kMoldEndOfSessionCount); }

  /// The longest message append() accepts: max_datagram - 22 (at most 65535).
  std::size_t max_message_bytes() const noexcept { return max_message_; }
  const MoldWriterOptions& options() const noexcept { return options_; }
  const MoldSession& session() const noexcept { return session_; }

 private:
  std::span<const unsigned char> control(std::uint16_t count) noexcept;
  void start_packet() noexcept;

  MoldSession session_{};
  MoldWriterOptions options_;
  std::size_t max_message_ = 0;
  std::vector<unsigned char> buffer_;  // max_datagram bytes, allocated once
  std::size_t used_ = 0;
  std::uint16_t count_ = 0;
  std::uint64_t sequence_ = 1;
  std::array<unsigned char, kMoldHeaderBytes> control_{};
};

/// Why a datagram was refused. Each comes with a reason naming the byte offset inside the datagram.
enum class MoldError : std::uint8_t {
  kNone,
  kShortHeader,       // fewer than 20 bytes
  kBadSession,        // a session byte outside printable ASCII (0x20..0x7e)
  kZeroSequence,      // sequence number 0 (sequences start at 1)
  kSequenceOverflow,  // sequence + count passes 2^64 - 1
  kTrailingBytes,     // bytes after the last message block (or after a heartbeat / end-of-session header)
  kMissingBlocks,     // the count claims more message blocks than the datagram holds
  kBlockOverrun,      // a message block's length runs past the end of the datagram
  kEmptyMessage,      // a message block of length 0
};

/// Stable name, e.g. "block_overrun".
const char* to_string(MoldError error) noexcept;

/// What one datagram did to the stream.
enum class MoldStatus : std::uint8_t {
  kOk,           // in sequence: every message new (or a heartbeat / end of session in step, or one that is late)
  kGap,          // sequences gap_from..gap_to never arrived before this packet; the packet's messages were then
                 // delivered (a heartbeat or end of session whose sequence is ahead reports a gap the same way)
  kOverlap,      // the packet started below the expected sequence: its old messages were dropped (duplicates),
                 // its new ones delivered
  kDuplicate,    // every message of the packet was already delivered (or skipped by a gap): nothing delivered
  kMalformed,    // framing is wrong: the whole packet was refused, nothing delivered; see error and reason
  kTooFarAhead,  // MoldReceiverOptions::max_gap: further ahead than that and not continuing the last packet
                 // refused so: refused whole, nothing delivered, nothing changes (gap_from: the expected sequence)
};

/// Stable name, e.g. "gap".
const char* to_string(MoldStatus status) noexcept;

/// The kind of a well-formed packet.
enum class MoldPacketKind : std::uint8_t { kMessages, kHeartbeat, kEndOfSession };

struct MoldResult {
  MoldStatus status = MoldStatus::kOk;
  MoldPacketKind kind = MoldPacketKind::kMessages;  // meaningless when kMalformed
  bool session_changed = false;  // the packet's session differs from the previous well-formed packet's
  std::uint64_t sequence = 0;    // the packet's sequence number (0 when kMalformed)
  std::uint16_t count = 0;       // its message blocks (0 for heartbeat / end of session / kMalformed)
  std::uint64_t delivered = 0;   // messages handed to the callback
  std::uint64_t duplicates = 0;  // messages dropped as already seen (kOverlap, kDuplicate)
  std::uint64_t gap_from = 0;    // kGap: first missing sequence
  std::uint64_t gap_to = 0;      // kGap: last missing sequence (inclusive)
  MoldError error = MoldError::kNone;
  std::size_t offset = 0;  // kMalformed: byte offset in the datagram where the framing breaks
  /// kMalformed: e.g. "offset 62: message block 3 of 5 claims 40 bytes, 12 remain". A view of the
  /// receiver's own buffer: valid until its next receive() call. Empty otherwise.
  std::string_view reason;
};

/// Totals since construction (or reset()). Every datagram is one of: malformed, heartbeat, end of session,
/// data packet, or refused as too far ahead, so packets == malformed_packets + too_far_ahead_packets + heartbeats +
/// end_of_session_packets + data_packets; every
/// message block of a well-formed data packet is delivered or a duplicate, so the sum of their counts ==
/// messages + duplicate_messages.
struct MoldStats {
  std::uint64_t packets = 0;                 // datagrams given to receive()
  std::uint64_t bytes = 0;                   // their bytes
  std::uint64_t data_packets = 0;            // well-formed packets with messages
  std::uint64_t messages = 0;                // messages delivered
  std::uint64_t heartbeats = 0;              // well-formed heartbeat packets
  std::uint64_t end_of_session_packets = 0;  // well-formed end-of-session packets
  std::uint64_t gaps = 0;                    // gap events (one per packet that found sequences missing)
  std::uint64_t missing_messages = 0;        // sequences in those gaps
  std::uint64_t duplicate_packets = 0;       // data packets with nothing new (kDuplicate)
  std::uint64_t overlapping_packets = 0;     // data packets with old and new messages (kOverlap)
  std::uint64_t duplicate_messages = 0;      // messages dropped as already seen, in both
  std::uint64_t malformed_packets = 0;       // datagrams refused (kMalformed)
  std::uint64_t session_changes = 0;         // well-formed packets of another session than the previous one
  std::uint64_t too_far_ahead_packets = 0;   // well-formed packets refused by max_gap (kTooFarAhead)
  bool end_of_session_seen = false;          // an end-of-session packet arrived in the current session
};

struct MoldReceiverOptions {
  /// The sequence each session is expected to start at; 0: the first well-formed packet of a session sets it
  /// (joining a stream mid-session without reporting everything before as a gap). A fresh MoldUDP64 session
  /// starts at 1, so a receiver that must see the whole session sets 1.
  std::uint64_t first_sequence = 0;
  /// 0: any gap is taken. Otherwise a packet of the current session more than max_gap sequences ahead of the
  /// expected one is refused (kTooFarAhead: nothing delivered, nothing changes) unless it continues the packet
  /// refused just before it (its sequence is that one's plus its count): one stray packet with a wild sequence
  /// cannot make the receiver skip (and then drop as duplicates) everything up to it, while a real jump of the
  /// stream costs one packet, reported in the gap taken with the next.
  std::uint64_t max_gap = 0;
};

/// Sequences one MoldUDP64 stream (one session at a time). Per datagram:
///   1. Framing is checked completely before anything is delivered (strict: see MoldError; the session must
///      be printable ASCII, every block non-empty and inside the datagram, no byte after the last block, a
///      heartbeat / end-of-session packet exactly 20 bytes). A malformed datagram is counted and refused
///      whole; it never changes the expected sequence, the session, or anything but packets, bytes and
///      malformed_packets.
///   2. A session other than the previous well-formed packet's is a session change: counted, and sequencing
///      restarts (expected = options.first_sequence, or this packet's sequence when that is 0;
///      end_of_session_seen clears). The first packet ever is not a change.
///   3. Sequence against the expected one (E):
///      - packet sequence S > E: a gap of E..S-1, counted once (gaps += 1, missing_messages += S - E), then the
///        packet is taken as in sequence (no retransmission is requested): E = S;
///      - S + count <= E: a duplicate packet (all old): nothing delivered, duplicate_messages += count;
///      - S < E < S + count: an overlap: messages below E are duplicates, the rest delivered;
///      - every delivered message advances E by one. A heartbeat or end of session carries the next sequence:
///        one ahead of E reports a gap as above; one at or below E changes nothing.
///   4. Reordering: there is no reorder buffer. A packet that arrives after a later one was accepted finds its
///      sequences already passed: it is counted as a duplicate (its messages are dropped; missing_messages,
///      counted at the gap, is not reduced).
///   After an end of session, packets of the same session are still sequenced as above (the sender is wrong,
///   but the bytes are well-formed).
/// receive() allocates nothing, takes no lock, and reads only inside the datagram. Not thread-safe: one
/// receiving thread per MoldReceiver.
class MoldReceiver {
 public:
  explicit MoldReceiver(MoldReceiverOptions options = {}) noexcept
      : options_(options), expected_(options.first_sequence) {}

  using Deliver = void (*)(void* context, std::uint64_t sequence, std::span<const unsigned char> message);

  /// Takes one datagram (a UDP payload) and calls `on_message(std::uint64_t sequence,
  /// std::span<const unsigned char> message)` for each new message, in sequence order; the span points into
  /// `datagram`. `on_message` is any callable, taken by reference, never copied or stored. If it throws, the
  /// exception propagates and the packet's remaining messages are not delivered; the state counts exactly the
  /// messages handed out, the one it threw on included (the expected sequence is just past it), so the stream
  /// stays consistent.
  template <class F>
  MoldResult receive(std::span<const unsigned char> datagram, F&& on_message) {
    using Fn = std::remove_reference_t<F>;
    return receive_impl(
        datagram,
        [](void* context, std::uint64_t sequence, std::span<const unsigned char> message) {
          (*static_cast<Fn*>(context))(sequence, message);
        },
        const_cast<void*>(static_cast<const void*>(&on_message)));
  }
  /// The same with a plain function pointer and context.
  MoldResult receive(std::span<const unsigned char> datagram, Deliver deliver, void* context) {
    return receive_impl(datagram, deliver, context);
  }

  /// Call from the receiving thread (copy the struct out to publish it elsewhere); so are the accessors below.
  const MoldStats& stats() const noexcept { return stats_; }
  /// Whether a well-formed packet has been seen (before that, session() is all spaces).
  bool synced() const noexcept { return synced_; }
  /// The sequence the next new message must have (0 before the first packet when options.first_sequence is 0).
  std::uint64_t next_expected() const noexcept { return expected_; }
  /// The current session (of the last well-formed packet).
  const MoldSession& session() const noexcept { return session_; }
  /// Forgets the session, the expected sequence and the stats.
  void reset() noexcept;

 private:
  MoldResult receive_impl(std::span<const unsigned char> datagram, Deliver deliver, void* context);
  MoldResult malformed(MoldError error, std::size_t offset, const char* format, ...) noexcept
      __attribute__((format(printf, 4, 5)));

  MoldReceiverOptions options_;
  MoldStats stats_;
  MoldSession session_ = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
  bool synced_ = false;             // a well-formed packet was seen: session_ is its session
  std::uint64_t jump_next_ = 0;     // max_gap: the sequence that continues the packet just refused (0: none)
  std::uint64_t expected_ = 0;      // 0: not known yet (options_.first_sequence 0 and no packet of the session)
  std::array<char, 160> reason_{};  // MoldResult::reason of the last malformed datagram
};

}  // namespace tickinfer::feed
