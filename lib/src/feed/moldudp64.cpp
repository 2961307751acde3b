#include "tickinfer/feed/moldudp64.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "tickinfer/error.hpp"

namespace tickinfer::feed {
namespace {

using Bytes = const unsigned char*;

inline std::uint16_t be16(Bytes p) noexcept { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
inline std::uint64_t be64(Bytes p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
inline void put16(unsigned char* p, std::uint16_t v) noexcept {
  p[0] = static_cast<unsigned char>(v >> 8);
  p[1] = static_cast<unsigned char>(v & 0xff);
}
inline void put64(unsigned char* p, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<unsigned char>(v & 0xff);
}

inline bool printable(unsigned char c) noexcept { return c >= 0x20 && c <= 0x7e; }

void write_header(unsigned char* p, const MoldSession& session, std::uint64_t sequence, std::uint16_t count) noexcept {
  std::memcpy(p, session.data(), kMoldSessionBytes);
  put64(p + kMoldSequenceOffset, sequence);
  put16(p + kMoldCountOffset, count);
}

}  // namespace

MoldSession make_mold_session(std::string_view name) {
  if (name.empty() || name.size() > kMoldSessionBytes) {
    throw Error(ErrorCode::kInvalidConfig, "MoldUDP64 session \"" + std::string(name) + "\" must be 1 to " +
                                               std::to_string(kMoldSessionBytes) + " characters");
  }
  MoldSession session;
  session.fill(' ');
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (!printable(c)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", c);
      throw Error(ErrorCode::kInvalidConfig, "MoldUDP64 session: byte " + std::to_string(i) + " (" + buf +
                                                 ") is not printable ASCII (0x20..0x7e)");
    }
    session[i] = name[i];
  }
  return session;
}

std::string_view trimmed(const MoldSession& session) noexcept {
  std::size_t n = session.size();
  while (n > 0 && session[n - 1] == ' ') --n;
  return {session.data(), n};
}

const char* to_string(MoldError error) noexcept {
  switch (error) {
    case MoldError::kNone:
      return "none";
    case MoldError::kShortHeader:
      return "short_header";
    case MoldError::kBadSession:
      return "bad_session";
    case MoldError::kZeroSequence:
      return "zero_sequence";
    case MoldError::kSequenceOverflow:
      return "sequence_overflow";
    case MoldError::kTrailingBytes:
      return "trailing_bytes";
    case MoldError::kMissingBlocks:
      return "missing_blocks";
    case MoldError::kBlockOverrun:
      return "block_overrun";
    case MoldError::kEmptyMessage:
      return "empty_message";
  }
  return "unknown";
}

const char* to_string(MoldStatus status) noexcept {
  switch (status) {
    case MoldStatus::kOk:
      return "ok";
    case MoldStatus::kGap:
      return "gap";
    case MoldStatus::kOverlap:
      return "overlap";
    case MoldStatus::kDuplicate:
      return "duplicate";
    case MoldStatus::kMalformed:
      return "malformed";
    case MoldStatus::kTooFarAhead:
      return "too_far_ahead";
  }
  return "unknown";
}

// ---- writer ----

MoldPacketWriter::MoldPacketWriter(std::string_view session, MoldWriterOptions options)
    : session_(make_mold_session(session)), options_(options) {
  if (options_.max_datagram < kMoldMinDatagram || options_.max_datagram > kMoldMaxDatagram) {
    throw Error(ErrorCode::kInvalidConfig, "MoldUDP64 max datagram of " + std::to_string(options_.max_datagram) +
                                               " bytes: must be " + std::to_string(kMoldMinDatagram) + " to " +
                                               std::to_string(kMoldMaxDatagram));
  }
  if (options_.max_messages == 0 || options_.max_messages > kMoldMaxMessageCount) {
    throw Error(ErrorCode::kInvalidConfig, "MoldUDP64 messages per packet: must be 1 to " +
                                               std::to_string(kMoldMaxMessageCount) + ", not " +
                                               std::to_string(options_.max_messages));
  }
  if (options_.first_sequence == 0) {
    throw Error(ErrorCode::kInvalidConfig, "MoldUDP64 first sequence number: must be at least 1");
  }
  max_message_ = std::min<std::size_t>(options_.max_datagram - kMoldHeaderBytes - kMoldBlockHeaderBytes, 0xFFFF);
  buffer_.assign(options_.max_datagram, 0);
  sequence_ = options_.first_sequence;
  start_packet();
}

void MoldPacketWriter::start_packet() noexcept {
  write_header(buffer_.data(), session_, sequence_, 0);
  used_ = kMoldHeaderBytes;
  count_ = 0;
}

MoldAppend MoldPacketWriter::append(std::span<const unsigned char> message) noexcept {
  if (message.empty() || message.size() > max_message_) return MoldAppend::kTooLarge;
  if (count_ >= options_.max_messages || buffer_.size() - used_ < kMoldBlockHeaderBytes + message.size()) {
    return MoldAppend::kFull;
  }
  unsigned char* p = buffer_.data() + used_;
  put16(p, static_cast<std::uint16_t>(message.size()));
  std::memcpy(p + kMoldBlockHeaderBytes, message.data(), message.size());
  used_ += kMoldBlockHeaderBytes + message.size();
  ++count_;
  put16(buffer_.data() + kMoldCountOffset, count_);
  return MoldAppend::kAppended;
}

void MoldPacketWriter::next_packet() noexcept {
  sequence_ += count_;
  start_packet();
}

void MoldPacketWriter::set_next_sequence(std::uint64_t sequence) noexcept {
  sequence_ = sequence == 0 ? 1 : sequence;
  start_packet();
}

std::span<const unsigned char> MoldPacketWriter::control(std::uint16_t count) noexcept {
  write_header(control_.data(), session_, sequence_, count);
  return {control_.data(), control_.size()};
}

// ---- receiver ----

void MoldReceiver::reset() noexcept {
  stats_ = MoldStats{};
  session_.fill(' ');
  synced_ = false;
  expected_ = options_.first_sequence;
  jump_next_ = 0;
}

MoldResult MoldReceiver::malformed(MoldError error, std::size_t offset, const char* format, ...) noexcept {
  ++stats_.malformed_packets;
  // vsnprintf into a fixed buffer: no allocation on the receiving path, even for bad input.
  int n = std::snprintf(reason_.data(), reason_.size(), "offset %zu: ", offset);
  if (n < 0) n = 0;
  std::va_list args;
  va_start(args, format);
  const int m = std::vsnprintf(reason_.data() + n, reason_.size() - static_cast<std::size_t>(n), format, args);
  va_end(args);
  const std::size_t length = std::min(reason_.size() - 1, static_cast<std::size_t>(n) + (m > 0 ? m : 0));
  MoldResult r;
  r.status = MoldStatus::kMalformed;
  r.error = error;
  r.offset = offset;
  r.reason = std::string_view(reason_.data(), length);
  return r;
}

MoldResult MoldReceiver::receive_impl(std::span<const unsigned char> datagram, Deliver deliver, void* context) {
  const Bytes d = datagram.data();
  const std::size_t size = datagram.size();
  ++stats_.packets;
  stats_.bytes += size;

  // 1. Framing, all of it, before anything is delivered or any state changes.
  if (size < kMoldHeaderBytes) {
    return malformed(MoldError::kShortHeader, size, "datagram of %zu bytes ends inside the %zu-byte header", size,
                     kMoldHeaderBytes);
  }
  for (std::size_t i = 0; i < kMoldSessionBytes; ++i) {
    if (!printable(d[i])) {
      return malformed(MoldError::kBadSession, i, "session byte 0x%02x is not printable ASCII", d[i]);
    }
  }
  const std::uint64_t sequence = be64(d + kMoldSequenceOffset);
  const std::uint16_t count = be16(d + kMoldCountOffset);
  if (sequence == 0) {
    return malformed(MoldError::kZeroSequence, kMoldSequenceOffset, "sequence number 0 (sequences start at 1)");
  }
  const bool control = count == kMoldHeartbeatCount || count == kMoldEndOfSessionCount;
  if (control) {
    if (size != kMoldHeaderBytes) {
      return malformed(MoldError::kTrailingBytes, kMoldHeaderBytes, "%zu bytes after the %s header",
                       size - kMoldHeaderBytes, count == kMoldHeartbeatCount ? "heartbeat" : "end-of-session");
    }
  } else {
    if (sequence > std::numeric_limits<std::uint64_t>::max() - count) {
      return malformed(MoldError::kSequenceOverflow, kMoldSequenceOffset, "sequence %llu + %u messages passes 2^64 - 1",
                       static_cast<unsigned long long>(sequence), static_cast<unsigned>(count));
    }
    std::size_t pos = kMoldHeaderBytes;
    for (unsigned block = 0; block < count; ++block) {
      if (size - pos < kMoldBlockHeaderBytes) {
        return malformed(MoldError::kMissingBlocks, pos,
                         "count says %u message blocks, the datagram ends after %u (%zu bytes left)",
                         static_cast<unsigned>(count), block, size - pos);
      }
      const std::size_t length = be16(d + pos);
      if (length == 0) {
        return malformed(MoldError::kEmptyMessage, pos, "message block %u of %u has length 0", block + 1,
                         static_cast<unsigned>(count));
      }
      if (size - pos - kMoldBlockHeaderBytes < length) {
        return malformed(MoldError::kBlockOverrun, pos, "message block %u of %u claims %zu bytes, %zu remain",
                         block + 1, static_cast<unsigned>(count), length, size - pos - kMoldBlockHeaderBytes);
      }
      pos += kMoldBlockHeaderBytes + length;
    }
    if (pos != size) {
      return malformed(MoldError::kTrailingBytes, pos, "%zu bytes after the last of %u message blocks", size - pos,
                       static_cast<unsigned>(count));
    }
  }

  MoldResult r;
  r.sequence = sequence;
  // max_gap: a packet of this session too far ahead changes nothing, unless it continues the one refused before.
  if (options_.max_gap != 0 && synced_ && expected_ != 0 && sequence > expected_ &&
      sequence - expected_ > options_.max_gap && std::memcmp(session_.data(), d, kMoldSessionBytes) == 0) {
    if (jump_next_ == 0 || sequence != jump_next_) {
      jump_next_ = sequence + (control ? 0 : count);
      ++stats_.too_far_ahead_packets;
      r.status = MoldStatus::kTooFarAhead;
      r.kind = count == kMoldHeartbeatCount      ? MoldPacketKind::kHeartbeat
               : count == kMoldEndOfSessionCount ? MoldPacketKind::kEndOfSession
                                                 : MoldPacketKind::kMessages;
      r.count = control ? 0 : count;
      r.gap_from = expected_;
      return r;
    }
  }
  jump_next_ = 0;

  // 2. Session.
  if (!synced_) {
    std::memcpy(session_.data(), d, kMoldSessionBytes);
    synced_ = true;
  } else if (std::memcmp(session_.data(), d, kMoldSessionBytes) != 0) {
    std::memcpy(session_.data(), d, kMoldSessionBytes);
    ++stats_.session_changes;
    stats_.end_of_session_seen = false;
    expected_ = options_.first_sequence;
    r.session_changed = true;
  }
  if (expected_ == 0) expected_ = sequence;  // joining: the first packet of the session sets the sequence

  // 3. Sequence. A packet ahead of the expected sequence is a gap (control packets carry the next sequence).
  if (sequence > expected_) {
    r.status = MoldStatus::kGap;
    r.gap_from = expected_;
    r.gap_to = sequence - 1;
    ++stats_.gaps;
    stats_.missing_messages += sequence - expected_;
    expected_ = sequence;
  }
  if (control) {
    if (count == kMoldHeartbeatCount) {
      r.kind = MoldPacketKind::kHeartbeat;
      ++stats_.heartbeats;
    } else {
      r.kind = MoldPacketKind::kEndOfSession;
      ++stats_.end_of_session_packets;
      stats_.end_of_session_seen = true;
    }
    return r;
  }

  r.kind = MoldPacketKind::kMessages;
  r.count = count;
  ++stats_.data_packets;
  const std::uint64_t end = sequence + count;  // no overflow: checked above
  if (end <= expected_) {
    r.status = MoldStatus::kDuplicate;
    r.duplicates = count;
    ++stats_.duplicate_packets;
    stats_.duplicate_messages += count;
    return r;
  }
  const std::uint64_t old = expected_ - sequence;  // 0 unless the packet overlaps what was delivered
  if (old > 0) {
    r.status = MoldStatus::kOverlap;
    r.duplicates = old;
    ++stats_.overlapping_packets;
    stats_.duplicate_messages += old;
  }
  std::size_t pos = kMoldHeaderBytes;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::size_t length = be16(d + pos);
    const std::span<const unsigned char> message(d + pos + kMoldBlockHeaderBytes, length);
    pos += kMoldBlockHeaderBytes + length;
    if (i < old) continue;
    // State first, then the callback: if it throws, the stream has counted exactly what it was handed.
    expected_ = sequence + i + 1;
    ++stats_.messages;
    ++r.delivered;
    deliver(context, sequence + i, message);
  }
  return r;
}

}  // namespace tickinfer::feed
