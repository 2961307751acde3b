// tickinfer-feed: sends a recorded ITCH 5.0 file (BinaryFILE framing) or a tickinfer capture as MoldUDP64
// datagrams over UDP (unicast or multicast), as fast as possible or paced by the recorded timestamps or a fixed
// message rate, with deterministic fault injection (lost, duplicated and malformed packets), then an end of
// session. Prints a summary line (and --json) that says what a receiver must count (docs/FEED.md).

#include <CLI/CLI.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "stop_signal.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/feed/byte_source.hpp"
#include "tickinfer/feed/capture.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/moldudp64.hpp"
#include "tickinfer/feed/parse_report.hpp"

namespace ti = tickinfer;
namespace tf = tickinfer::feed;

namespace {

struct Options {
  std::string data;
  std::string format;  // "" (detect), itch, capture
  std::string dest = "127.0.0.1:31001";
  std::string interface_addr = "127.0.0.1";
  int ttl = 0;
  std::string session = "TICKINFER";
  std::size_t max_datagram = tf::kMoldDefaultMaxDatagram;
  std::uint32_t max_messages = tf::kMoldMaxMessageCount;
  double speed = 0;  // > 0: paced by the recorded timestamps
  bool max = false;
  double rate = 0;  // > 0: paced at this many messages per second
  double batch_us = 0;
  std::uint64_t repeat = 1;
  std::uint64_t limit = 0;
  std::uint64_t start_sequence = 1;
  std::uint64_t gap_every = 0;
  std::uint64_t duplicate_every = 0;
  std::uint64_t corrupt_every = 0;
  std::uint64_t seed = 0;
  double heartbeat_ms = 0;
  std::string json;
};

constexpr int kEndOfSessionRepeats = 3;
constexpr std::size_t kMaxRanges = 16;  // sequence ranges kept per injection (counts cover all)

// SIGINT / SIGTERM (stop_signal.hpp): stop reading, send what is built, the end of session and the summary (a second
// one exits).
using tickinfer::apps::g_stop;
using tickinfer::apps::install_stop_handlers;

[[noreturn]] void fail(const std::string& message) { throw ti::Error(ti::ErrorCode::kInvalidConfig, message); }

std::string errno_text(int err) { return std::strerror(err); }

// ---- the recording: the messages to send, walked in place ----

enum class Format { kItch, kCapture };

inline std::uint64_t be(const unsigned char* p, int n) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

class Recording {
 public:
  Recording(const std::string& path, const std::string& format) {
    auto source = tf::ByteSource::map_file(path);  // Error kFileNotFound / kParseError: the library's message
    const auto bytes = source.bytes();
    const bool magic = bytes.size() >= sizeof tf::kCaptureMagic &&
                       std::memcmp(bytes.data(), tf::kCaptureMagic, sizeof tf::kCaptureMagic) == 0;
    format_ = format == "capture" || (format.empty() && magic) ? Format::kCapture : Format::kItch;
    if (format_ == Format::kCapture) {
      source = tf::ByteSource();  // CaptureReader maps and checks it itself
      capture_.emplace(path, /*prefault=*/true);
      messages_ = capture_->events().size();
      max_length_ = messages_ > 0 ? sizeof(tf::Event) : 0;
    } else {
      itch_ = std::move(source);
      check_itch_framing();
    }
    if (messages_ == 0) fail(path + ": no messages to send");
  }

  Format format() const noexcept { return format_; }
  const char* format_name() const noexcept { return format_ == Format::kCapture ? "capture" : "itch"; }
  std::uint64_t messages() const noexcept { return messages_; }
  std::size_t max_length() const noexcept { return max_length_; }

  /// Walks the messages: `pos` starts at 0; false at the end. `ts_ns` is the recorded timestamp (ITCH: the
  /// message's 6-byte timestamp, ns after midnight; capture: Event::ts_ns).
  bool next(std::size_t& pos, std::span<const unsigned char>& message, std::int64_t& ts_ns) const noexcept {
    if (format_ == Format::kCapture) {
      const auto events = capture_->events();
      if (pos >= events.size()) return false;
      message = {reinterpret_cast<const unsigned char*>(&events[pos]), sizeof(tf::Event)};
      ts_ns = events[pos].ts_ns;
      ++pos;
      return true;
    }
    const auto bytes = itch_.bytes();
    if (pos >= bytes.size()) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + pos;
    const std::size_t length = static_cast<std::size_t>(be(p, 2));
    message = {p + 2, length};
    ts_ns = length >= 11 ? static_cast<std::int64_t>(be(p + 7, 6)) : 0;  // type, locate, tracking, timestamp
    pos += 2 + length;
    return true;
  }

 private:
  // Every length prefix must lead exactly to the next, to the end of the file, and no message may be empty
  // (a MoldUDP64 receiver refuses zero-length blocks): checked before anything is sent.
  void check_itch_framing() {
    const auto bytes = itch_.bytes();
    const auto* d = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t size = bytes.size();
    for (std::size_t pos = 0; pos < size;) {
      auto report = [&](tf::ParseIssue issue, std::string detail) {
        throw ti::Error(ti::ErrorCode::kParseError,
                        tf::ParseIssueReport{issue, itch_.name(), pos, true, std::move(detail)}.message());
      };
      if (size - pos < 2) report(tf::ParseIssue::kTruncated, "file ends inside a length prefix");
      const std::size_t length = static_cast<std::size_t>(be(d + pos, 2));
      if (length == 0) report(tf::ParseIssue::kBadLength, "zero-length message (MoldUDP64 cannot carry it)");
      if (size - pos - 2 < length) {
        report(tf::ParseIssue::kTruncated,
               "message of " + std::to_string(length) + " bytes, file ends after " + std::to_string(size - pos - 2));
      }
      max_length_ = std::max(max_length_, length);
      ++messages_;
      pos += 2 + length;
    }
  }

  Format format_ = Format::kItch;
  tf::ByteSource itch_;
  std::optional<tf::CaptureReader> capture_;
  std::uint64_t messages_ = 0;
  std::size_t max_length_ = 0;
};

// ---- UDP ----

sockaddr_in resolve(const std::string& dest) {
  const auto colon = dest.rfind(':');
  const std::string host = dest.substr(0, colon);
  const std::string port = dest.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) fail("--dest " + dest + ": cannot resolve " + host + ": " + ::gai_strerror(rc));
  sockaddr_in addr{};
  std::memcpy(&addr, found->ai_addr, sizeof addr);
  ::freeaddrinfo(found);
  return addr;
}

class UdpSender {
 public:
  explicit UdpSender(const Options& opt) : dest_(resolve(opt.dest)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) fail("socket: " + errno_text(errno));
    multicast_ = IN_MULTICAST(ntohl(dest_.sin_addr.s_addr));
    if (multicast_) {
      in_addr iface{};
      if (::inet_pton(AF_INET, opt.interface_addr.c_str(), &iface) != 1) {
        fail("--interface " + opt.interface_addr + ": not an IPv4 address");
      }
      const unsigned char ttl = static_cast<unsigned char>(opt.ttl);
      const unsigned char loop = 1;
      if (::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface) != 0) {
        fail("IP_MULTICAST_IF " + opt.interface_addr + ": " + errno_text(errno));
      }
      if (::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0 ||
          ::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0) {
        fail("IP_MULTICAST_TTL / IP_MULTICAST_LOOP: " + errno_text(errno));
      }
    }
  }
  UdpSender(const UdpSender&) = delete;
  UdpSender& operator=(const UdpSender&) = delete;
  ~UdpSender() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// Unconnected sendto: an ICMP "port unreachable" from a receiver not (yet) listening is not an error.
  void send(std::span<const unsigned char> datagram) {
    for (int tries = 0;; ++tries) {
      const auto n =
          ::sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&dest_), sizeof dest_);
      if (n == static_cast<ssize_t>(datagram.size())) break;
      const int err = n < 0 ? errno : EMSGSIZE;
      if ((err == EINTR || err == ENOBUFS || err == EAGAIN) && tries < 1000) {
        if (err != EINTR) std::this_thread::sleep_for(std::chrono::microseconds(50));
        continue;
      }
      fail("sendto: " + errno_text(err) + " (a datagram of " + std::to_string(datagram.size()) + " bytes)");
    }
    ++datagrams_;
    bytes_ += datagram.size();
    last_send_ns_ = ti::now_ns();
  }

  bool multicast() const noexcept { return multicast_; }
  std::uint64_t datagrams() const noexcept { return datagrams_; }
  std::uint64_t bytes() const noexcept { return bytes_; }
  std::int64_t last_send_ns() const noexcept { return last_send_ns_; }

 private:
  sockaddr_in dest_{};
  int fd_ = -1;
  bool multicast_ = false;
  std::uint64_t datagrams_ = 0;
  std::uint64_t bytes_ = 0;
  std::int64_t last_send_ns_ = 0;
};

// ---- fault injection ----

std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// One packet in each window of `every` consecutive packets: the last of the window with seed 0, a position
/// drawn from (seed, kind, window) otherwise. Deterministic: the same options pick the same packets.
class Injection {
 public:
  Injection(const char* name, std::uint64_t every, std::uint64_t seed, std::uint64_t salt)
      : name_(name), every_(every), seed_(seed), salt_(salt) {}

  bool picks(std::uint64_t packet_index) const noexcept {
    if (every_ == 0) return false;
    const std::uint64_t window = packet_index / every_;
    const std::uint64_t chosen = seed_ == 0 ? every_ - 1 : splitmix64(seed_ ^ salt_ ^ splitmix64(window)) % every_;
    return packet_index % every_ == chosen;
  }
  void record(std::uint64_t first, std::uint64_t count) {
    ++packets_;
    messages_ += count;
    if (ranges_.size() < kMaxRanges) ranges_.push_back({first, first + count - 1});
  }

  const char* name() const noexcept { return name_; }
  std::uint64_t every() const noexcept { return every_; }
  std::uint64_t packets() const noexcept { return packets_; }
  std::uint64_t messages() const noexcept { return messages_; }
  const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges() const noexcept { return ranges_; }

 private:
  const char* name_;
  std::uint64_t every_;
  std::uint64_t seed_;
  std::uint64_t salt_;
  std::uint64_t packets_ = 0;
  std::uint64_t messages_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges_;
};

/// What a MoldReceiver that expects --start-sequence (MoldReceiverOptions::first_sequence) and listens from
/// before the first datagram must count, when no datagram is lost on the way.
struct Expected {
  std::uint64_t messages = 0;
  std::uint64_t data_packets = 0;
  std::uint64_t gaps = 0;
  std::uint64_t missing_messages = 0;
  std::uint64_t duplicate_packets = 0;
  std::uint64_t duplicate_messages = 0;
  std::uint64_t malformed_packets = 0;
  std::uint64_t heartbeats = 0;
  std::uint64_t end_of_session_packets = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gap_ranges;  // the first kMaxRanges
};

// ---- the sender ----

class Feed {
 public:
  Feed(const Options& opt, const Recording& recording, UdpSender& udp)
      : opt_(opt),
        recording_(recording),
        udp_(udp),
        writer_(opt.session, tf::MoldWriterOptions{opt.max_datagram, static_cast<std::uint16_t>(opt.max_messages),
                                                   opt.start_sequence}),
        gap_("gap", opt.gap_every, opt.seed, 0x6761700000000000ull),
        duplicate_("duplicate", opt.duplicate_every, opt.seed, 0x6475700000000000ull),
        corrupt_("corrupt", opt.corrupt_every, opt.seed, 0x636f727200000000ull),
        scratch_(opt.max_datagram, 0) {
    if (recording.max_length() > writer_.max_message_bytes()) {
      fail(opt.data + ": a message of " + std::to_string(recording.max_length()) + " bytes does not fit a " +
           std::to_string(opt.max_datagram) + "-byte datagram (at most " + std::to_string(writer_.max_message_bytes()) +
           " bytes per message): raise --max-datagram");
    }
    paced_ = opt.speed > 0 || opt.rate > 0;
    batch_ns_ = static_cast<std::int64_t>(opt.batch_us * 1e3);
    heartbeat_ns_ = static_cast<std::int64_t>(opt.heartbeat_ms * 1e6);
  }

  void run() {
    start_ns_ = ti::now_ns();
    std::int64_t pass_base = 0;  // --speed: where each pass of --repeat starts on the schedule
    for (std::uint64_t pass = 0; pass < opt_.repeat && !g_stop.load(std::memory_order_relaxed); ++pass) {
      std::size_t pos = 0;
      std::span<const unsigned char> message;
      std::int64_t ts = 0;
      std::int64_t first_ts = 0;
      std::int64_t last_ts = 0;
      std::int64_t last_offset = pass_base;
      for (std::uint64_t n = 0; (opt_.limit == 0 || n < opt_.limit) && recording_.next(pos, message, ts); ++n) {
        if (g_stop.load(std::memory_order_relaxed)) break;
        if (n == 0) first_ts = last_ts = ts;
        last_ts = std::max(last_ts, ts);  // a late timestamp is sent at once, never back in time
        std::int64_t due = 0;             // ns after the start
        if (opt_.speed > 0) {
          due = pass_base + static_cast<std::int64_t>(static_cast<double>(last_ts - first_ts) / opt_.speed);
        } else if (opt_.rate > 0) {
          due = static_cast<std::int64_t>(static_cast<double>(messages_) * 1e9 / opt_.rate);
        }
        last_offset = due;
        add(message, due);
      }
      pass_base = last_offset;
    }
    if (!writer_.empty()) flush();
    for (int i = 0; i < kEndOfSessionRepeats; ++i) {
      udp_.send(writer_.end_of_session());
      well_formed_sent();
      ++expected_.end_of_session_packets;
    }
    end_ns_ = ti::now_ns();
  }

  void print_summary(std::FILE* out) const;
  void write_json(const std::string& path) const;

 private:
  void add(std::span<const unsigned char> message, std::int64_t due) {
    // Paced: a packet takes the messages scheduled within --batch-us of its first one (composition depends on
    // the schedule only, never on how late the sender runs, so fault injection picks the same messages) and
    // goes at the scheduled time of its last one (no message is sent before its time).
    if (!writer_.empty() && paced_ && due - packet_first_due_ > batch_ns_) flush();
    auto appended = writer_.append(message);
    if (appended == tf::MoldAppend::kFull) {
      flush();
      appended = writer_.append(message);
    }
    if (appended != tf::MoldAppend::kAppended) fail("internal: a message checked to fit was refused");
    if (writer_.message_count() == 1) packet_first_due_ = due;
    packet_due_ = due;
    ++messages_;
    message_bytes_ += message.size();
  }

  void flush() {
    if (paced_) wait_until(start_ns_ + packet_due_);
    const auto packet = writer_.packet();
    const std::uint64_t first = writer_.sequence();
    const std::uint64_t count = writer_.message_count();
    const std::uint64_t index = packets_++;
    // One fate per packet, gap first, then corrupt, then duplicate (docs/FEED.md).
    if (gap_.picks(index)) {
      gap_.record(first, count);
      lost(first, count);
    } else if (corrupt_.picks(index)) {
      // The count claims one block more than the datagram holds: a receiver refuses the packet whole
      // (kMissingBlocks), so its messages are lost as well.
      std::memcpy(scratch_.data(), packet.data(), packet.size());
      const auto claimed = static_cast<std::uint16_t>(count + 1);
      scratch_[tf::kMoldCountOffset] = static_cast<unsigned char>(claimed >> 8);
      scratch_[tf::kMoldCountOffset + 1] = static_cast<unsigned char>(claimed & 0xff);
      udp_.send({scratch_.data(), packet.size()});
      corrupt_.record(first, count);
      ++expected_.malformed_packets;
      lost(first, count);
    } else {
      udp_.send(packet);
      well_formed_sent();
      ++expected_.data_packets;
      expected_.messages += count;
      if (duplicate_.picks(index)) {
        udp_.send(packet);
        duplicate_.record(first, count);
        ++expected_.data_packets;
        ++expected_.duplicate_packets;
        expected_.duplicate_messages += count;
      }
    }
    writer_.next_packet();
  }

  // Lost packets next to each other are one gap for the receiver: it sees the gap at the next well-formed
  // datagram (data, heartbeat or end of session), which carries the sequence after the lost ones.
  void lost(std::uint64_t first, std::uint64_t count) {
    expected_.missing_messages += count;
    if (!run_open_) {
      run_open_ = true;
      run_from_ = first;
      ++expected_.gaps;
    }
    run_to_ = first + count - 1;
  }
  void well_formed_sent() {
    if (!run_open_) return;
    run_open_ = false;
    if (expected_.gap_ranges.size() < kMaxRanges) expected_.gap_ranges.push_back({run_from_, run_to_});
  }

  // Sleeps while the packet is far off, spins (yielding) the last stretch; heartbeats while idle.
  void wait_until(std::int64_t target_ns) {
    for (;;) {
      const std::int64_t now = ti::now_ns();
      if (now >= target_ns || g_stop.load(std::memory_order_relaxed)) return;
      std::int64_t wake = target_ns;
      if (heartbeat_ns_ > 0) {
        const std::int64_t beat = std::max(udp_.last_send_ns(), start_ns_) + heartbeat_ns_;
        if (now >= beat) {
          udp_.send(writer_.heartbeat());  // carries writer_.sequence(): the first of the packet waiting
          well_formed_sent();
          ++heartbeats_;
          ++expected_.heartbeats;
          continue;
        }
        wake = std::min(wake, beat);
      }
      const std::int64_t left = wake - now;
      if (left > 100'000) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(left - 50'000));
      } else {
        std::this_thread::yield();
      }
    }
  }

  const Options& opt_;
  const Recording& recording_;
  UdpSender& udp_;
  tf::MoldPacketWriter writer_;
  Injection gap_;
  Injection duplicate_;
  Injection corrupt_;
  std::vector<unsigned char> scratch_;  // the corrupt variant of a packet
  bool paced_ = false;
  std::int64_t batch_ns_ = 0;
  std::int64_t heartbeat_ns_ = 0;
  std::int64_t start_ns_ = 0;
  std::int64_t end_ns_ = 0;
  std::int64_t packet_first_due_ = 0;  // ns after the start: the scheduled time of the packet's first message
  std::int64_t packet_due_ = 0;        // and of its last: when it goes
  std::uint64_t messages_ = 0;
  std::uint64_t message_bytes_ = 0;
  std::uint64_t packets_ = 0;
  std::uint64_t heartbeats_ = 0;
  bool run_open_ = false;
  std::uint64_t run_from_ = 0;
  std::uint64_t run_to_ = 0;
  Expected expected_;
};

std::string ranges_text(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges, std::uint64_t total) {
  if (ranges.empty()) return "";
  std::string s = " [";
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(ranges[i].first);
    if (ranges[i].second != ranges[i].first) s += '-' + std::to_string(ranges[i].second);
  }
  if (total > ranges.size()) s += " ...";
  return s + "]";
}

void Feed::print_summary(std::FILE* out) const {
  const double seconds = static_cast<double>(end_ns_ - start_ns_) * 1e-9;
  const std::uint64_t first = opt_.start_sequence;
  std::string injected;
  for (const Injection* inj : {&gap_, &duplicate_, &corrupt_}) {
    if (!injected.empty()) injected += ", ";
    injected += std::string(inj->name()) + " " + std::to_string(inj->packets()) + " packets/" +
                std::to_string(inj->messages()) + " messages" + ranges_text(inj->ranges(), inj->packets());
  }
  std::fprintf(out,
               "tickinfer-feed: %llu messages (sequences %llu-%llu, %llu bytes) in %llu packets; sent %llu datagrams "
               "(%llu bytes) to %s%s, session \"%.*s\", in %.3f s (%.0f messages/s); injected: %s; heartbeats %llu, "
               "end of session x%d; a receiver expecting sequence %llu counts: messages %llu, gaps %llu%s, missing "
               "%llu, duplicate packets %llu (messages %llu), malformed %llu\n",
               static_cast<unsigned long long>(messages_), static_cast<unsigned long long>(first),
               static_cast<unsigned long long>(first + messages_ - 1), static_cast<unsigned long long>(message_bytes_),
               static_cast<unsigned long long>(packets_), static_cast<unsigned long long>(udp_.datagrams()),
               static_cast<unsigned long long>(udp_.bytes()), opt_.dest.c_str(), udp_.multicast() ? " (multicast)" : "",
               static_cast<int>(tf::trimmed(writer_.session()).size()), tf::trimmed(writer_.session()).data(), seconds,
               seconds > 0 ? static_cast<double>(messages_) / seconds : 0.0, injected.c_str(),
               static_cast<unsigned long long>(heartbeats_), kEndOfSessionRepeats,
               static_cast<unsigned long long>(first), static_cast<unsigned long long>(expected_.messages),
               static_cast<unsigned long long>(expected_.gaps),
               ranges_text(expected_.gap_ranges, expected_.gaps).c_str(),
               static_cast<unsigned long long>(expected_.missing_messages),
               static_cast<unsigned long long>(expected_.duplicate_packets),
               static_cast<unsigned long long>(expected_.duplicate_messages),
               static_cast<unsigned long long>(expected_.malformed_packets));
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string json_ranges(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges) {
  std::string s = "[";
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    s += (i ? ", [" : "[") + std::to_string(ranges[i].first) + ", " + std::to_string(ranges[i].second) + "]";
  }
  return s + "]";
}

void Feed::write_json(const std::string& path) const {
  auto u = [](std::uint64_t v) { return std::to_string(v); };
  std::string j = "{\n";
  j += "  \"tool\": \"tickinfer-feed\",\n";
  j += "  \"data\": " + json_string(opt_.data) + ",\n";
  j += "  \"format\": " + json_string(recording_.format_name()) + ",\n";
  j += "  \"dest\": " + json_string(opt_.dest) + ",\n";
  j += "  \"multicast\": " + std::string(udp_.multicast() ? "true" : "false") + ",\n";
  j += "  \"session\": " + json_string(tf::trimmed(writer_.session())) + ",\n";
  j += "  \"max_datagram\": " + u(opt_.max_datagram) + ",\n";
  j += "  \"max_messages_per_packet\": " + u(opt_.max_messages) + ",\n";
  char pacing[64];
  if (opt_.speed > 0) {
    std::snprintf(pacing, sizeof pacing, "\"speed %g\"", opt_.speed);
  } else if (opt_.rate > 0) {
    std::snprintf(pacing, sizeof pacing, "\"rate %g\"", opt_.rate);
  } else {
    std::snprintf(pacing, sizeof pacing, "\"max\"");
  }
  j += "  \"pacing\": " + std::string(pacing) + ",\n";
  j += "  \"repeat\": " + u(opt_.repeat) + ",\n";
  j += "  \"limit\": " + u(opt_.limit) + ",\n";
  j += "  \"seed\": " + u(opt_.seed) + ",\n";
  j += "  \"first_sequence\": " + u(opt_.start_sequence) + ",\n";
  j += "  \"next_sequence\": " + u(opt_.start_sequence + messages_) + ",\n";
  j += "  \"messages\": " + u(messages_) + ",\n";
  j += "  \"message_bytes\": " + u(message_bytes_) + ",\n";
  j += "  \"packets\": " + u(packets_) + ",\n";
  j += "  \"datagrams_sent\": " + u(udp_.datagrams()) + ",\n";
  j += "  \"bytes_sent\": " + u(udp_.bytes()) + ",\n";
  j += "  \"heartbeats\": " + u(heartbeats_) + ",\n";
  j += "  \"end_of_session_packets\": " + u(static_cast<std::uint64_t>(kEndOfSessionRepeats)) + ",\n";
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.6f", static_cast<double>(end_ns_ - start_ns_) * 1e-9);
  j += "  \"seconds\": " + std::string(seconds) + ",\n";
  j += "  \"injected\": {\n";
  bool first = true;
  for (const Injection* inj : {&gap_, &duplicate_, &corrupt_}) {
    j += std::string(first ? "" : ",\n") + "    " + json_string(inj->name()) + ": {\"every\": " + u(inj->every()) +
         ", \"packets\": " + u(inj->packets()) + ", \"messages\": " + u(inj->messages()) +
         ", \"ranges\": " + json_ranges(inj->ranges()) +
         ", \"ranges_complete\": " + (inj->packets() <= inj->ranges().size() ? "true" : "false") + "}";
    first = false;
  }
  j += "\n  },\n";
  const Expected& e = expected_;
  j += "  \"expected_receiver\": {\"first_sequence\": " + u(opt_.start_sequence) + ", \"messages\": " + u(e.messages) +
       ", \"data_packets\": " + u(e.data_packets) + ", \"gaps\": " + u(e.gaps) +
       ", \"missing_messages\": " + u(e.missing_messages) + ", \"duplicate_packets\": " + u(e.duplicate_packets) +
       ", \"duplicate_messages\": " + u(e.duplicate_messages) + ", \"malformed_packets\": " + u(e.malformed_packets) +
       ", \"heartbeats\": " + u(e.heartbeats) + ", \"end_of_session_packets\": " + u(e.end_of_session_packets) +
       ", \"gap_ranges\": " + json_ranges(e.gap_ranges) +
       ", \"gap_ranges_complete\": " + (e.gaps <= e.gap_ranges.size() ? "true" : "false") + "}\n";
  j += "}\n";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << j;
  out.close();
  if (!out) fail("--json " + path + ": cannot write");
}

int run(const Options& opt) {
  Recording recording(opt.data, opt.format);
  UdpSender udp(opt);
  Feed feed(opt, recording, udp);
  install_stop_handlers();
  feed.run();
  feed.print_summary(stdout);
  std::fflush(stdout);
  if (!opt.json.empty()) feed.write_json(opt.json);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{
      "tickinfer-feed: sends a recorded ITCH 5.0 file (BinaryFILE framing: each message as it is) or a tickinfer "
      "capture (each Event record as one message of sizeof(Event) = 80 bytes, the host's byte order) as MoldUDP64 "
      "datagrams over UDP, then an end-of-session packet (3 times). docs/FEED.md."};
  app.add_option("--data", opt.data, "ITCH 5.0 file (BinaryFILE) or tickinfer capture")->required();
  app.add_option("--format", opt.format, "itch or capture (default: a capture when the file starts with its magic)")
      ->check(CLI::IsMember({"itch", "capture"}));
  app.add_option("--dest", opt.dest,
                 "HOST:PORT (IPv4; default 127.0.0.1:31001); a multicast group (224.0.0.0/4) uses --interface, "
                 "--ttl and IP_MULTICAST_LOOP on")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            const auto colon = s.rfind(':');
            if (colon == std::string::npos || colon == 0) return "expected HOST:PORT";
            const std::string port = s.substr(colon + 1);
            if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
                std::stoul(port) == 0 || std::stoul(port) > 65535) {
              return "port must be 1..65535";
            }
            return {};
          },
          "HOST:PORT"));
  app.add_option("--interface", opt.interface_addr,
                 "multicast: IPv4 address of the interface to send on (IP_MULTICAST_IF; default 127.0.0.1)");
  app.add_option("--ttl", opt.ttl, "multicast: IP_MULTICAST_TTL (default 0: this host only)")
      ->check(CLI::Range(0, 255));
  app.add_option("--session", opt.session, "MoldUDP64 session, 1-10 printable ASCII characters (space-padded)")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            try {
              (void)tf::make_mold_session(s);
            } catch (const ti::Error& e) {
              return e.what();
            }
            return {};
          },
          "NAME"));
  app.add_option("--max-datagram", opt.max_datagram, "bytes per datagram, header included (default 1400)")
      ->check(CLI::Range(tf::kMoldMinDatagram, tf::kMoldMaxDatagram));
  app.add_option("--max-messages-per-packet", opt.max_messages, "messages per packet (default: as many as fit)")
      ->check(CLI::Range(1u, static_cast<std::uint32_t>(tf::kMoldMaxMessageCount)));
  auto* speed = app.add_option("--speed", opt.speed,
                               "pace by the recorded timestamps (ITCH: each message's; capture: Event::ts_ns), X "
                               "times faster (1: as recorded)")
                    ->check(CLI::PositiveNumber);
  auto* max = app.add_flag("--max", opt.max, "as fast as possible (the default)");
  auto* rate = app.add_option("--rate", opt.rate, "pace at a fixed rate of MSG_PER_S messages per second")
                   ->check(CLI::PositiveNumber);
  speed->excludes(max)->excludes(rate);
  max->excludes(rate);
  app.add_option("--batch-us", opt.batch_us,
                 "paced: a packet takes the messages scheduled within US microseconds of its first one (default 0: "
                 "only those scheduled at the same instant), up to the size limits")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--repeat", opt.repeat, "send the data N times, sequence numbers continuing (default 1)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 32));
  app.add_option("--limit", opt.limit, "send at most the first N messages of the data in each pass (0: all)");
  app.add_option("--start-sequence", opt.start_sequence, "sequence number of the first message (default 1)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  app.add_option("--gap-every", opt.gap_every,
                 "do not send one packet in every N (its sequence numbers are lost: the receiver counts a gap)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  app.add_option("--duplicate-every", opt.duplicate_every, "send one packet in every N twice in a row")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  app.add_option("--corrupt-every", opt.corrupt_every,
                 "send one packet in every N malformed instead (its count one above its blocks: the receiver refuses "
                 "it whole, then counts a gap for its messages)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  app.add_option("--seed", opt.seed,
                 "which packet of each window of N the injections pick: 0 (default) the last, else drawn from the "
                 "seed (deterministic)");
  app.add_option("--heartbeat-ms", opt.heartbeat_ms,
                 "paced: send a heartbeat when nothing was sent for MS milliseconds while waiting (default 0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--json", opt.json, "also write the summary as JSON to FILE");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;  // --help: 0; a bad option: CLI11's message, exit 1
  }
  try {
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tickinfer-feed: %s\n", e.what());
    return 1;
  }
}
