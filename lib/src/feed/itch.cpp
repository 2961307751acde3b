#include "tickinfer/feed/itch.hpp"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <utility>

namespace tickinfer::feed {
namespace {

using Bytes = const unsigned char*;

// ITCH is big-endian throughout; assemble bytes explicitly so the code is right on any host.
inline std::uint64_t be(Bytes p, int n) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}
inline std::uint16_t be16(Bytes p) noexcept { return static_cast<std::uint16_t>(be(p, 2)); }
inline std::int64_t be32(Bytes p) noexcept { return static_cast<std::int64_t>(be(p, 4)); }
inline std::uint64_t be64(Bytes p) noexcept { return be(p, 8); }
inline std::uint64_t text(Bytes p, std::size_t n) noexcept {
  return pack_text8(std::string_view(reinterpret_cast<const char*>(p), n));
}

struct LengthTable {
  std::uint8_t length[256] = {};
  constexpr LengthTable() {
    constexpr std::pair<char, std::uint8_t> spec[] = {
        {'S', 12}, {'R', 39}, {'H', 25}, {'Y', 20}, {'L', 26}, {'V', 35}, {'W', 12}, {'K', 28},
        {'J', 35}, {'h', 21}, {'A', 36}, {'F', 40}, {'E', 31}, {'C', 36}, {'X', 23}, {'D', 19},
        {'U', 35}, {'P', 44}, {'Q', 40}, {'B', 19}, {'I', 50}, {'N', 20}, {'O', 48},
    };
    for (const auto& [type, len] : spec) length[static_cast<unsigned char>(type)] = len;
  }
};
constexpr LengthTable kLengths;

std::string type_text(unsigned char type) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "'%c' (0x%02x)", type >= 0x20 && type < 0x7f ? type : '?', type);
  return buf;
}

std::string trimmed(const std::array<char, 8>& name) {
  std::size_t n = 8;
  while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\0')) --n;
  return std::string(name.data(), n);
}

}  // namespace

std::size_t itch_message_length(char type) noexcept { return kLengths.length[static_cast<unsigned char>(type)]; }

ItchReader ItchReader::open(const std::string& path, ItchOptions options) {
  return ItchReader(ByteSource::map_file(path), options);
}

ItchReader::ItchReader(ByteSource source, ItchOptions options) : source_(std::move(source)), options_(options) {}

bool ItchReader::fail(std::uint64_t offset, ParseIssue issue, std::string detail) {
  report_issue(stats_, options_.policy, ParseIssueReport{issue, source_.name(), offset, true, std::move(detail)});
  return false;
}

void ItchReader::framing_error(std::uint64_t offset, ParseIssue issue, std::string detail) {
  if (framing_errors_++ == 0) framing_lost_at_ = offset;
  fail(offset, issue, std::move(detail));
}

bool ItchReader::next(Event& out) {
  const auto bytes = source_.bytes();
  const auto* data = reinterpret_cast<Bytes>(bytes.data());
  const std::size_t size = bytes.size();
  const std::uint32_t max_framing = std::max<std::uint32_t>(1, options_.max_consecutive_framing_errors);
  while (pos_ < size) {
    if (framing_errors_ >= max_framing) {
      const std::size_t stopped = pos_;
      pos_ = size;  // nothing after this point can be trusted to start a message
      fail(framing_lost_at_, ParseIssue::kStreamLost,
           std::to_string(framing_errors_) +
               " consecutive framing errors (zero-length, unknown-type or wrong-length "
               "messages) from here to offset " +
               std::to_string(stopped) + ": the stream is lost; the remaining " + std::to_string(size - stopped) +
               " bytes are not read");
      return false;
    }
    const std::size_t offset = pos_;
    if (size - pos_ < 2) {
      pos_ = size;
      return fail(offset, ParseIssue::kTruncated, "file ends inside a length prefix");
    }
    const std::size_t len = be16(data + pos_);
    if (size - pos_ - 2 < len) {
      pos_ = size;
      return fail(offset, ParseIssue::kTruncated,
                  "message of " + std::to_string(len) + " bytes, file ends after " + std::to_string(size - offset - 2));
    }
    pos_ += 2 + len;  // framing lets every bad message be skipped exactly
    ++stats_.records;
    if (len == 0) {
      framing_error(offset, ParseIssue::kBadLength, "zero-length message");
      continue;
    }
    const Bytes m = data + offset + 2;
    const std::size_t spec = kLengths.length[m[0]];
    if (spec == 0) {
      framing_error(offset, ParseIssue::kUnknownMessageType, "message type " + type_text(m[0]));
      continue;
    }
    if (len != spec) {
      framing_error(
          offset, ParseIssue::kBadLength,
          "type " + type_text(m[0]) + " is " + std::to_string(len) + " bytes, the spec says " + std::to_string(spec));
      continue;
    }
    framing_errors_ = 0;  // a known type at its spec length: in step again
    if (decode(m, offset, out)) {
      ++stats_.events;
      return true;
    }
  }
  return false;
}

bool ItchReader::decode_message(std::span<const unsigned char> message, std::uint64_t offset, Event& out) {
  ++stats_.records;
  const std::size_t len = message.size();
  if (len == 0) return fail(offset, ParseIssue::kBadLength, "zero-length message");
  const Bytes m = message.data();
  const std::size_t spec = kLengths.length[m[0]];
  if (spec == 0) return fail(offset, ParseIssue::kUnknownMessageType, "message type " + type_text(m[0]));
  if (len != spec)
    return fail(
        offset, ParseIssue::kBadLength,
        "type " + type_text(m[0]) + " is " + std::to_string(len) + " bytes, the spec says " + std::to_string(spec));
  if (!decode(m, offset, out)) return false;
  ++stats_.events;
  return true;
}

bool ItchReader::decode(Bytes m, std::uint64_t offset, Event& out) {
  const std::uint16_t locate = be16(m + 1);
  const auto ts = static_cast<std::int64_t>(be(m + 5, 6));  // 6-byte ns since midnight
  if (ts < last_ts_) {
    // Reported, then decoded and handed out all the same: dropping it would desync the book for every later
    // message of the order. Under kStop this throws (and the message is skipped, as for any issue).
    fail(offset, ParseIssue::kOutOfOrderTimestamp,
         "timestamp " + std::to_string(ts) + " ns after " + std::to_string(last_ts_) + " ns");
  }
  out = Event{};
  out.ts_ns = ts;
  out.symbol = locate;
  auto side_of = [&](unsigned char c) { return c == 'B' ? Side::kBuy : c == 'S' ? Side::kSell : Side::kNone; };
  switch (m[0]) {
    case 'S':
      out.kind = EventKind::kSystem;
      out.aux = m[11];
      break;
    case 'R': {
      out.kind = EventKind::kSymbolDirectory;
      out.order_id = text(m + 11, 8);
      out.aux = m[19];
      out.flags = m[20];
      out.qty = be32(m + 21);
      out.new_order_id = text(m + 25, 8);
      out.bid_qty = m[33];
      out.price = be32(m + 34);
      out.ask_qty = m[38];
      if (locate >= names_.size()) names_.resize(static_cast<std::size_t>(locate) + 1, std::array<char, 8>{});
      names_[locate] = unpack_text8(out.order_id);
      break;
    }
    case 'H':
      out.kind = EventKind::kTradingStatus;
      out.order_id = text(m + 11, 8);
      out.aux = m[19];
      out.new_order_id = text(m + 21, 4);
      break;
    case 'Y':
      out.kind = EventKind::kRegSho;
      out.order_id = text(m + 11, 8);
      out.aux = m[19];
      break;
    case 'L':
      out.kind = EventKind::kParticipantPosition;
      out.new_order_id = text(m + 11, 4);
      out.order_id = text(m + 15, 8);
      out.bid_qty = m[23];
      out.ask_qty = m[24];
      out.aux = m[25];
      break;
    case 'V':
      out.kind = EventKind::kMwcbDeclineLevel;
      out.flags = kFlagPrice8;
      out.price = static_cast<std::int64_t>(be64(m + 11));
      out.bid_price = static_cast<std::int64_t>(be64(m + 19));
      out.ask_price = static_cast<std::int64_t>(be64(m + 27));
      break;
    case 'W':
      out.kind = EventKind::kMwcbStatus;
      out.aux = m[11];
      break;
    case 'K':
      out.kind = EventKind::kIpoQuotingPeriod;
      out.order_id = text(m + 11, 8);
      out.qty = be32(m + 19);
      out.aux = m[23];
      out.price = be32(m + 24);
      break;
    case 'J':
      out.kind = EventKind::kLuldCollar;
      out.order_id = text(m + 11, 8);
      out.price = be32(m + 19);
      out.ask_price = be32(m + 23);
      out.bid_price = be32(m + 27);
      out.qty = be32(m + 31);
      break;
    case 'h':
      out.kind = EventKind::kOperationalHalt;
      out.order_id = text(m + 11, 8);
      out.new_order_id = m[19];
      out.aux = m[20];
      break;
    case 'A':
    case 'F':
      out.kind = EventKind::kAdd;
      out.order_id = be64(m + 11);
      out.side = side_of(m[19]);
      out.qty = be32(m + 20);
      out.price = be32(m + 32);
      if (m[0] == 'F') {
        out.new_order_id = text(m + 36, 4);
        out.flags = kFlagAttributed;
      }
      if (out.side == Side::kNone) {
        return fail(offset, ParseIssue::kBadValue, "add order with side " + type_text(m[19]));
      }
      break;
    case 'E':
      out.kind = EventKind::kExecute;
      out.order_id = be64(m + 11);
      out.qty = be32(m + 19);
      out.new_order_id = be64(m + 23);
      break;
    case 'C':
      out.kind = EventKind::kExecute;
      out.flags = kFlagExecutionPrice;
      out.order_id = be64(m + 11);
      out.qty = be32(m + 19);
      out.new_order_id = be64(m + 23);
      out.aux = m[31];
      out.price = be32(m + 32);
      break;
    case 'X':
      out.kind = EventKind::kCancel;
      out.order_id = be64(m + 11);
      out.qty = be32(m + 19);
      break;
    case 'D':
      out.kind = EventKind::kDelete;
      out.order_id = be64(m + 11);
      break;
    case 'U':
      out.kind = EventKind::kReplace;
      out.order_id = be64(m + 11);
      out.new_order_id = be64(m + 19);
      out.qty = be32(m + 27);
      out.price = be32(m + 31);
      break;
    case 'P':
      out.kind = EventKind::kTrade;
      out.order_id = be64(m + 11);
      out.side = side_of(m[19]);
      out.qty = be32(m + 20);
      out.price = be32(m + 32);
      out.new_order_id = be64(m + 36);
      if (out.side == Side::kNone) return fail(offset, ParseIssue::kBadValue, "trade with side " + type_text(m[19]));
      break;
    case 'Q':
      out.kind = EventKind::kCrossTrade;
      out.qty = static_cast<std::int64_t>(be64(m + 11));
      out.price = be32(m + 27);
      out.new_order_id = be64(m + 31);
      out.aux = m[39];
      break;
    case 'B':
      out.kind = EventKind::kBrokenTrade;
      out.new_order_id = be64(m + 11);
      break;
    case 'I':
      out.kind = EventKind::kImbalance;
      out.bid_qty = static_cast<std::int64_t>(be64(m + 11));
      out.ask_qty = static_cast<std::int64_t>(be64(m + 19));
      out.aux = m[27];
      out.order_id = text(m + 28, 8);
      out.ask_price = be32(m + 36);
      out.bid_price = be32(m + 40);
      out.price = be32(m + 44);
      out.new_order_id = text(m + 48, 2);
      break;
    case 'N':
      out.kind = EventKind::kRetailInterest;
      out.order_id = text(m + 11, 8);
      out.aux = m[19];
      break;
    case 'O':
      out.kind = EventKind::kDirectListing;
      out.order_id = text(m + 11, 8);
      out.aux = m[19];
      out.bid_qty = be32(m + 20);
      out.ask_qty = be32(m + 24);
      out.price = be32(m + 28);
      out.qty = static_cast<std::int64_t>(be64(m + 32));
      out.bid_price = be32(m + 40);
      out.ask_price = be32(m + 44);
      break;
    default:
      return fail(offset, ParseIssue::kUnknownMessageType, "message type " + type_text(m[0]));  // unreachable
  }
  last_ts_ = std::max(last_ts_, ts);  // the latest so far: one late message is one issue, not a cascade
  return true;
}

std::size_t ItchReader::read(std::span<Event> out) {
  std::size_t n = 0;
  while (n < out.size() && next(out[n])) ++n;
  return n;
}

std::vector<SymbolInfo> ItchReader::symbols() const {
  std::vector<SymbolInfo> out;
  for (std::size_t locate = 0; locate < names_.size(); ++locate) {
    if (names_[locate][0] == '\0') continue;
    out.push_back(SymbolInfo{static_cast<std::uint32_t>(locate), trimmed(names_[locate]), kItchPriceScale, 1});
  }
  return out;
}

std::vector<SymbolInfo> ItchReader::scan_directory() const {
  const auto bytes = source_.bytes();
  const auto* data = reinterpret_cast<Bytes>(bytes.data());
  std::vector<std::array<char, 8>> names;
  const std::uint32_t max_framing = std::max<std::uint32_t>(1, options_.max_consecutive_framing_errors);
  std::uint32_t framing_errors = 0;
  for (std::size_t pos = 0; bytes.size() - pos >= 2 && framing_errors < max_framing;) {
    const std::size_t len = be16(data + pos);
    if (bytes.size() - pos - 2 < len) break;
    const Bytes m = data + pos + 2;
    pos += 2 + len;
    // Same rule as next(): a run of framing errors means the rest is not ITCH.
    if (len == 0 || kLengths.length[m[0]] != len) {
      ++framing_errors;
      continue;
    }
    framing_errors = 0;
    if (m[0] != 'R') continue;
    const std::uint16_t locate = be16(m + 1);
    if (locate >= names.size()) names.resize(static_cast<std::size_t>(locate) + 1, std::array<char, 8>{});
    names[locate] = unpack_text8(text(m + 11, 8));
  }
  std::vector<SymbolInfo> out;
  for (std::size_t locate = 0; locate < names.size(); ++locate) {
    if (names[locate][0] == '\0') continue;
    out.push_back(SymbolInfo{static_cast<std::uint32_t>(locate), trimmed(names[locate]), kItchPriceScale, 1});
  }
  return out;
}

}  // namespace tickinfer::feed
