// tickinfer-serve: the daemon. Market data in by UDP (unicast or multicast) as MoldUDP64-framed ITCH 5.0 or
// tickinfer capture records; books and features per instrument as tickinfer-replay computes them; predictions out
// as fixed-size records by UDP and to TCP subscribers; the admin HTTP server (metrics, health, model control) on
// its own port. Config: configs/serve.toml (docs/SERVE.md, "tickinfer-serve"). Signals: SIGTERM/SIGINT stop the
// intake, drain what is queued, flush the outputs and exit 0; SIGHUP re-reads the model directory.
//
// `tickinfer-serve subscribe` connects to a daemon's TCP prediction stream and writes the records as a predictions
// CSV (tickinfer-replay --predictions' format), for tests and for a look at the stream.
//
// Threads: the feed thread (receive, sequence, decode, book, features, submit), the pipeline's worker, the output
// thread (prediction records to UDP and TCP), the admin server's, and the main thread (signals).

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include "tickinfer/admin_server.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/features/engine.hpp"
#include "tickinfer/features/schema.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/itch.hpp"
#include "tickinfer/feed/moldudp64.hpp"
#include "tickinfer/feed/order_book.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/log.hpp"
#include "tickinfer/model.hpp"
#include "tickinfer/onnx.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/prediction_record.hpp"
#include "tickinfer/registry.hpp"
#include "tickinfer/result_ring.hpp"
#include "tickinfer/torchscript.hpp"
#include "tickinfer/watcher.hpp"

namespace ti = tickinfer;
namespace fs = std::filesystem;
using ti::Error;
using ti::ErrorCode;

namespace {

// ---- configuration (configs/serve.toml) ----

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  bool empty() const { return host.empty(); }
  std::string text() const { return host + ":" + std::to_string(port); }
};

struct ServeConfig {
  std::string model_path, model_dir, engine = "auto";
  std::string feature_config = "configs/default.toml";
  std::size_t max_batch = 64, max_delay_us = 50, queue_capacity = 65536, keys = 65536;
  std::string conflation = "off", idle = "block";
  std::size_t output_spin_us = 20;
  Endpoint feed_listen{"127.0.0.1", 31001};
  std::string feed_group, feed_interface = "127.0.0.1", feed_format = "itch";
  std::int64_t price_scale = ti::feed::kItchPriceScale, qty_scale = 1;
  std::size_t receive_buffer_bytes = 8 << 20;
  Endpoint predictions_udp, predictions_tcp;
  std::size_t tcp_buffer_bytes = 1 << 20, max_subscribers = 16, udp_max_datagram = 1400;
  std::string predictions_interface = "127.0.0.1";
  Endpoint http{"127.0.0.1", 8000};
  std::string token_file;
  std::size_t http_max_body_bytes = 1 << 20, http_max_infer_rows = 256, http_infer_deadline_ms = 1000;
  std::size_t http_max_connections = 1024, http_threads = 1;
  std::size_t drain_timeout_ms = 5000;
};

// A refusal naming the file, the line and the key.
std::map<std::string, std::string> g_set_by_key;  // "section.key" -> the --set that gave it (main thread, at start)

[[noreturn]] void refuse(const std::string& file, const toml::node& node, const std::string& key,
                         const std::string& why) {
  const auto set = g_set_by_key.find(key);  // a value from --set names the option, not the file
  if (set != g_set_by_key.end())
    throw Error(ErrorCode::kInvalidConfig, "--set '" + set->second + "': " + key + ": " + why);
  throw Error(ErrorCode::kInvalidConfig,
              file + ":" + std::to_string(node.source().begin.line) + ": " + key + ": " + why);
}

Endpoint parse_endpoint(const std::string& file, const toml::node& node, const std::string& key) {
  const auto text = node.value_exact<std::string>();
  if (!text) refuse(file, node, key, "expected a string \"HOST:PORT\" (\"\" to turn it off)");
  if (text->empty()) return {};
  const auto colon = text->rfind(':');
  unsigned port = 0;
  const char* end = text->data() + text->size();
  if (colon == std::string::npos || colon == 0 || std::from_chars(text->data() + colon + 1, end, port).ptr != end ||
      port > 65535)
    refuse(file, node, key, "'" + *text + "' is not HOST:PORT");
  return {text->substr(0, colon), static_cast<std::uint16_t>(port)};
}

// `overrides`: "section.key=VALUE" (VALUE in TOML syntax: "text" quoted, numbers bare), applied over the file.
ServeConfig load_serve_config(const std::string& file, const std::vector<std::string>& overrides) {
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    if (!fs::exists(file)) throw Error(ErrorCode::kFileNotFound, file + ": no such config file");
    throw Error(ErrorCode::kInvalidConfig,
                file + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    const auto dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq)
      throw Error(ErrorCode::kInvalidConfig, "--set '" + o + "': expected section.key=VALUE");
    toml::table one;
    try {
      one = toml::parse(o.substr(0, eq) + " = " + o.substr(eq + 1), std::string_view("--set " + o));
    } catch (const toml::parse_error& e) {
      throw Error(ErrorCode::kInvalidConfig,
                  "--set '" + o + "': " + std::string(e.description()) + " (strings need quotes: key=\"text\")");
    }
    for (auto&& [section, table] : one) {
      if (!root.contains(section.str())) root.insert(section.str(), toml::table{});
      auto* into = root[section.str()].as_table();
      if (into == nullptr || !table.is_table())
        throw Error(ErrorCode::kInvalidConfig, "--set '" + o + "': expected section.key=VALUE");
      for (auto&& [key, value] : *table.as_table()) {
        into->insert_or_assign(key.str(), value);
        g_set_by_key[std::string(section.str()) + "." + std::string(key.str())] = o;
      }
    }
  }
  ServeConfig c;
  const fs::path base = fs::path(file).parent_path();
  auto str = [&](const toml::node& n, const std::string& key, std::string& out) {
    const auto v = n.value_exact<std::string>();
    if (!v) refuse(file, n, key, "expected a string");
    out = *v;
  };
  auto path = [&](const toml::node& n, const std::string& key, std::string& out) {
    str(n, key, out);
    if (!out.empty() && fs::path(out).is_relative() && !fs::exists(out) && fs::exists(base / out))
      out = (base / out).string();  // relative to the config file when not to the working directory
  };
  auto size = [&](const toml::node& n, const std::string& key, std::size_t& out, std::int64_t lo, std::int64_t hi) {
    const auto v = n.value_exact<std::int64_t>();
    if (!v) refuse(file, n, key, "expected an integer");
    if (*v < lo || *v > hi)
      refuse(file, n, key,
             std::to_string(*v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    out = static_cast<std::size_t>(*v);
  };
  auto one_of = [&](const toml::node& n, const std::string& key, std::string& out,
                    std::initializer_list<const char*> allowed) {
    str(n, key, out);
    std::string names;
    for (const char* a : allowed) {
      if (out == a) return;
      names += (names.empty() ? "" : ", ") + std::string(a);
    }
    refuse(file, n, key, "'" + out + "' is not one of " + names);
  };
  for (auto&& [section_key, section] : root) {
    const std::string s(section_key.str());
    const auto* table = section.as_table();
    if (table == nullptr) refuse(file, section, s, "expected a [" + s + "] table");
    for (auto&& [k, n] : *table) {
      const std::string key = s + "." + std::string(k.str());
      if (key == "model.path")
        path(n, key, c.model_path);
      else if (key == "model.dir")
        path(n, key, c.model_dir);
      else if (key == "model.engine")
        one_of(n, key, c.engine, {"auto", "native", "libtorch"});
      else if (key == "features.config")
        path(n, key, c.feature_config);
      else if (key == "pipeline.max_batch")
        size(n, key, c.max_batch, 1, 4096);
      else if (key == "pipeline.max_delay_us")
        size(n, key, c.max_delay_us, 0, 60'000'000);
      else if (key == "pipeline.queue_capacity")
        size(n, key, c.queue_capacity, 1, 1 << 24);
      else if (key == "pipeline.keys")
        size(n, key, c.keys, 1, 1 << 20);
      else if (key == "pipeline.conflation")
        one_of(n, key, c.conflation, {"off", "supersede"});
      else if (key == "pipeline.idle")
        one_of(n, key, c.idle, {"block", "yield", "spin"});
      else if (key == "predictions.spin_us")
        size(n, key, c.output_spin_us, 0, 1'000'000);
      else if (key == "pipeline.drain_timeout_ms")
        size(n, key, c.drain_timeout_ms, 0, 600'000);
      else if (key == "feed.listen")
        c.feed_listen = parse_endpoint(file, n, key);
      else if (key == "feed.group")
        str(n, key, c.feed_group);
      else if (key == "feed.interface")
        str(n, key, c.feed_interface);
      else if (key == "feed.format")
        one_of(n, key, c.feed_format, {"itch", "capture"});
      else if (key == "feed.price_scale") {
        std::size_t v = 0;
        size(n, key, v, 1, std::int64_t{1} << 40);
        c.price_scale = static_cast<std::int64_t>(v);
      } else if (key == "feed.qty_scale") {
        std::size_t v = 0;
        size(n, key, v, 1, std::int64_t{1} << 40);
        c.qty_scale = static_cast<std::int64_t>(v);
      } else if (key == "feed.receive_buffer_bytes")
        size(n, key, c.receive_buffer_bytes, 4096, 1 << 30);
      else if (key == "predictions.udp")
        c.predictions_udp = parse_endpoint(file, n, key);
      else if (key == "predictions.tcp")
        c.predictions_tcp = parse_endpoint(file, n, key);
      else if (key == "predictions.interface")
        str(n, key, c.predictions_interface);
      else if (key == "predictions.udp_max_datagram")
        size(n, key, c.udp_max_datagram, 256, 65507);
      else if (key == "predictions.tcp_buffer_bytes")
        size(n, key, c.tcp_buffer_bytes, 4096, 1 << 30);
      else if (key == "predictions.max_subscribers")
        size(n, key, c.max_subscribers, 1, 1024);
      else if (key == "http.listen")
        c.http = parse_endpoint(file, n, key);
      else if (key == "http.token_file")
        path(n, key, c.token_file);
      else if (key == "http.max_body_bytes")
        size(n, key, c.http_max_body_bytes, 1024, 1 << 24);
      else if (key == "http.max_infer_rows")
        size(n, key, c.http_max_infer_rows, 1, 1 << 16);
      else if (key == "http.infer_deadline_ms")
        size(n, key, c.http_infer_deadline_ms, 1, 600'000);
      else if (key == "http.max_connections")
        size(n, key, c.http_max_connections, 1, 4096);
      else if (key == "http.threads")
        size(n, key, c.http_threads, 1, 64);
      else
        refuse(file, n, key, "unknown key (docs/SERVE.md lists every key)");
    }
  }
  if (c.model_path.empty() == c.model_dir.empty())
    throw Error(ErrorCode::kInvalidConfig, file + ": give exactly one of model.path and model.dir");
  if (c.feed_listen.empty()) throw Error(ErrorCode::kInvalidConfig, file + ": feed.listen is required");
  return c;
}

// ---- sockets ----

sockaddr_in ipv4(const Endpoint& e, const std::string& what) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(e.port);
  if (inet_pton(AF_INET, e.host.c_str(), &a.sin_addr) != 1)
    throw Error(ErrorCode::kInvalidConfig, what + ": '" + e.host + "' is not an IPv4 address");
  return a;
}

[[noreturn]] void socket_error(const std::string& what) {
  throw Error(ErrorCode::kInvalidConfig, what + ": " + std::strerror(errno));
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd = std::exchange(o.fd, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

Fd feed_socket(const ServeConfig& c) {
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0) socket_error("feed socket");
  const int one = 1;
  ::setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const int rcvbuf = static_cast<int>(c.receive_buffer_bytes);
  ::setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a = ipv4(c.feed_listen, "feed.listen");
  // Linux hands a multicast datagram only to sockets bound to the group (or to any address): bind the group.
  if (!c.feed_group.empty() && inet_pton(AF_INET, c.feed_group.c_str(), &a.sin_addr) != 1)
    throw Error(ErrorCode::kInvalidConfig, "feed.group: '" + c.feed_group + "' is not an IPv4 address");
  if (::bind(s.fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
    socket_error("feed.listen " + c.feed_listen.text());
  if (!c.feed_group.empty()) {
    ip_mreq m{};
    if (inet_pton(AF_INET, c.feed_group.c_str(), &m.imr_multiaddr) != 1 ||
        inet_pton(AF_INET, c.feed_interface.c_str(), &m.imr_interface) != 1)
      throw Error(ErrorCode::kInvalidConfig, "feed.group/feed.interface: not IPv4 addresses");
    if (::setsockopt(s.fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0)
      socket_error("feed.group " + c.feed_group + " on " + c.feed_interface);
  }
  timeval tv{0, 100'000};  // the feed thread checks for a stop this often when no datagram comes
  ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return s;
}

// ITCH symbols by stock locate, from the directory messages: written by the feed thread, read by the output thread
// (one relaxed 8-byte word each: a name is read whole or not at all).
class SymbolNames {
 public:
  explicit SymbolNames(std::size_t keys) : names_(keys) {}
  void set(std::uint32_t key, std::uint64_t packed) noexcept {
    if (key < names_.size()) names_[key].store(packed, std::memory_order_relaxed);
  }
  std::array<char, 8> get(std::uint32_t key) const noexcept {
    if (key >= names_.size()) return {};
    const std::uint64_t v = names_[key].load(std::memory_order_relaxed);
    return v == 0 ? std::array<char, 8>{} : ti::feed::unpack_text8(v);
  }

 private:
  std::vector<std::atomic<std::uint64_t>> names_;
};

// The results the output thread sends: a ResultRing the worker pushes into, and a futex the output thread sleeps on
// when it has found the ring empty for a while. The worker pays a futex wake (a syscall) only while the output
// thread sleeps; a busy stream costs it a push and two atomics.
class ResultQueue {
 public:
  ResultQueue(std::size_t capacity, std::size_t output_width) : ring_(capacity, output_width) {}
  ti::Completion completion(std::uint64_t tag) noexcept { return {&ResultQueue::on_result, this, tag}; }
  bool try_pop(ti::PolledResult& out, std::span<float> outputs) noexcept { return ring_.try_pop(out, outputs); }
  std::uint64_t dropped() const noexcept { return ring_.dropped(); }

  /// The output thread, after try_pop() found nothing: sleeps until a push or `timeout_ns`.
  void wait(std::int64_t timeout_ns, ti::PolledResult& out, std::span<float> outputs, bool& got) noexcept {
    // seq_cst, both sides: the generation read here and the worker's increment after its push, with the sleeping
    // flag, form a store->load handshake. A push after this load changes the generation, so the futex wait
    // (which compares it) returns at once: no wakeup is lost.
    const std::uint32_t seen = generation_.load(std::memory_order_seq_cst);
    got = ring_.try_pop(out, outputs);
    if (got) return;
    sleeping_.store(true, std::memory_order_seq_cst);
    timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
    (void)::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&generation_), FUTEX_WAIT_PRIVATE, seen, &ts, nullptr,
                    0);
    sleeping_.store(false, std::memory_order_relaxed);
  }

 private:
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t), "the futex word is the atomic");
  static void on_result(void* self, const ti::Result& r) noexcept {
    auto& q = *static_cast<ResultQueue*>(self);
    q.ring_.push(r);
    q.generation_.fetch_add(1, std::memory_order_seq_cst);  // pairs with wait()'s load (see there)
    // Pairs with wait()'s store; the exchange makes it one wake per sleep, not one per result of a burst.
    if (q.sleeping_.load(std::memory_order_seq_cst) && q.sleeping_.exchange(false, std::memory_order_seq_cst)) {
      (void)::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&q.generation_), FUTEX_WAKE_PRIVATE, 1, nullptr,
                      nullptr, 0);
    }
  }

  ti::ResultRing ring_;
  alignas(64) std::atomic<std::uint32_t> generation_{0};
  std::atomic<bool> sleeping_{false};
};

// ---- the feed: datagrams -> messages -> events -> books -> features -> the pipeline ----

struct Instrument {
  Instrument(const ti::features::FeatureSchema& schema, std::int64_t price_scale, std::int64_t qty_scale)
      : book(0, 1 << 10), engine(schema, {price_scale, qty_scale}) {}
  ti::feed::OrderBook book;
  ti::features::FeatureEngine engine;
};

// What the feed thread counted; read by the others after it ended (or, relaxed, for the summary).
struct FeedCounters {
  std::atomic<std::uint64_t> datagrams{0}, messages{0}, events{0}, submitted{0}, rejected{0}, invalid{0};
  std::atomic<std::uint64_t> not_book{0}, beyond_keys{0}, decode_failures{0};
  std::atomic<std::uint64_t> gaps{0}, missing{0}, duplicate_packets{0}, duplicate_messages{0}, malformed{0};
};

// What a record needs of its event beyond the Result: the feed sequence and the event's own timestamp, one slot per
// accepted submit (its tag is the submit's number). Written by the feed thread before the submit, read by the output
// thread after the result; relaxed atomics (the pipeline's queue and the ring order each write before its read).
// Accepted requests not yet emitted are at most the queue, the batch in flight and the ring's capacity, so with
// `size` above that no slot is rewritten before it is read.
class SubmitSlots {
 public:
  explicit SubmitSlots(std::size_t size) : slots_(std::bit_ceil(size)), mask_(slots_.size() - 1) {}
  void set(std::uint64_t tag, std::uint64_t sequence, std::int64_t ts) noexcept {
    Slot& slot = slots_[tag & mask_];
    slot.sequence.store(sequence, std::memory_order_relaxed);
    slot.ts.store(ts, std::memory_order_relaxed);
  }
  std::uint64_t sequence(std::uint64_t tag) const noexcept {
    return slots_[tag & mask_].sequence.load(std::memory_order_relaxed);
  }
  std::int64_t ts(std::uint64_t tag) const noexcept { return slots_[tag & mask_].ts.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    std::atomic<std::uint64_t> sequence{0};
    std::atomic<std::int64_t> ts{0};
  };
  std::vector<Slot> slots_;
  std::size_t mask_;
};

class Feed {
 public:
  Feed(const ServeConfig& c, const ti::features::FeatureSchema& schema, ti::Pipeline& pipeline, ResultQueue& ring,
       SubmitSlots& times, SymbolNames& names, ti::LogSink log)
      : config_(c),
        schema_(schema),
        pipeline_(pipeline),
        ring_(ring),
        times_(times),
        names_(names),
        log_(std::move(log)),
        socket_(feed_socket(c)),
        producer_(pipeline.make_producer()),
        receiver_(),
        itch_(ti::feed::ByteSource::from_string("udp " + c.feed_listen.text(), ""),
              {.policy = ti::feed::ParsePolicy::kSkip, .max_consecutive_framing_errors = ~std::uint32_t{0}}),
        instruments_(c.keys),
        features_(schema.size()) {}

  /// False when receiving failed (logged).
  bool run(const std::atomic<bool>& stop) {
    std::vector<unsigned char> datagram(65536);
    while (!stop.load(std::memory_order_relaxed)) {
      const ssize_t n = ::recv(socket_.fd, datagram.data(), datagram.size(), 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        log(ti::LogLevel::kError, std::string("feed: recv failed: ") + std::strerror(errno) + "; stopping");
        return false;
      }
      receive_ns_ = ti::now_ns();
      counters.datagrams.fetch_add(1, std::memory_order_relaxed);
      const ti::feed::MoldResult r = receiver_.receive(
          std::span<const unsigned char>(datagram.data(), static_cast<std::size_t>(n)),
          [this](std::uint64_t sequence, std::span<const unsigned char> message) { on_message(sequence, message); });
      account(r);
    }
    return true;
  }

  FeedCounters counters;
  const ti::feed::ParseStats& itch_stats() const noexcept { return itch_.stats(); }

 private:
  void log(ti::LogLevel level, std::string message) {
    ti::emit_log(log_, {level, "feed", std::move(message), {}, std::nullopt, std::nullopt});
  }

  // A line per event that matters (a gap, a malformed packet, a session change), never per message, and at most
  // kLogBurst of them per second (the rest counted, and said with the next line that is logged).
  bool may_log() {
    const std::int64_t now = ti::now_ns();
    if (now - log_window_ns_ >= 1'000'000'000) {
      if (suppressed_ > 0)
        log(ti::LogLevel::kWarning, "feed: " + std::to_string(suppressed_) + " more gap/malformed lines not logged");
      log_window_ns_ = now, logged_ = 0, suppressed_ = 0;
    }
    if (logged_ < kLogBurst) return ++logged_, true;
    ++suppressed_;
    return false;
  }
  static constexpr int kLogBurst = 20;
  std::int64_t log_window_ns_ = 0;
  int logged_ = 0;
  std::uint64_t suppressed_ = 0;

  void account(const ti::feed::MoldResult& r) {
    using S = ti::feed::MoldStatus;
    if (r.session_changed)
      log(ti::LogLevel::kWarning, "feed: new MoldUDP64 session at sequence " + std::to_string(r.sequence));
    switch (r.status) {
      case S::kGap:
        counters.gaps.fetch_add(1, std::memory_order_relaxed);
        counters.missing.fetch_add(r.gap_to - r.gap_from + 1, std::memory_order_relaxed);
        if (may_log())
          log(ti::LogLevel::kWarning, "feed: gap: sequences " + std::to_string(r.gap_from) + "-" +
                                          std::to_string(r.gap_to) + " missing (" +
                                          std::to_string(r.gap_to - r.gap_from + 1) + " messages)");
        break;
      case S::kOverlap:
      case S::kDuplicate:
        counters.duplicate_packets.fetch_add(r.status == S::kDuplicate, std::memory_order_relaxed);
        counters.duplicate_messages.fetch_add(r.duplicates, std::memory_order_relaxed);
        break;
      case S::kMalformed:
        counters.malformed.fetch_add(1, std::memory_order_relaxed);
        log(ti::LogLevel::kWarning,
            "feed: malformed packet skipped: " + std::string(r.reason) + " at byte " + std::to_string(r.offset));
        break;
      case S::kOk:
        break;
    }
  }

  void on_message(std::uint64_t sequence, std::span<const unsigned char> message) {
    counters.messages.fetch_add(1, std::memory_order_relaxed);
    ti::feed::Event e{};
    if (config_.feed_format == "capture") {
      if (message.size() != sizeof(ti::feed::Event)) {
        counters.decode_failures.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      std::memcpy(&e, message.data(), sizeof e);
      if (!plausible(e)) {  // values a book or feature could overflow on: refused, counted
        counters.decode_failures.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    } else if (!itch_.decode_message(message, sequence, e)) {
      if (itch_.stats().total_issues() != issues_seen_) {
        issues_seen_ = itch_.stats().total_issues();
        counters.decode_failures.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    if (e.kind == ti::feed::EventKind::kSymbolDirectory && e.symbol < config_.keys) names_.set(e.symbol, e.order_id);
    if (!ti::feed::is_market_event(e)) {
      counters.not_book.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (e.symbol >= config_.keys) {
      counters.beyond_keys.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    counters.events.fetch_add(1, std::memory_order_relaxed);
    auto& slot = instruments_[e.symbol];
    if (!slot) slot = std::make_unique<Instrument>(schema_, config_.price_scale, config_.qty_scale);  // first sight
    const auto trade = ti::features::classify_trade(e, slot->book);  // before: an execution's side may be in it
    slot->book.apply(e);
    slot->engine.update(e.ts_ns, slot->book, trade, features_);
    times_.set(next_tag_, sequence, e.ts_ns);
    const ti::SubmitStatus s = pipeline_.submit(producer_, static_cast<ti::InstrumentKey>(e.symbol), features_,
                                                ti::kNoDeadline, ring_.completion(next_tag_), receive_ns_);
    if (s == ti::SubmitStatus::kAccepted) {
      ++next_tag_;  // a refused submit's slot is reused by the next one
      counters.submitted.fetch_add(1, std::memory_order_relaxed);
    } else if (s == ti::SubmitStatus::kRejected) {
      counters.rejected.fetch_add(1, std::memory_order_relaxed);  // overload: shed, counted
    } else {
      counters.invalid.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // A capture record's values within what books and features add and subtract without overflow (2^52).
  static bool plausible(const ti::feed::Event& e) noexcept {
    constexpr std::int64_t kMax = std::int64_t{1} << 52;
    for (const std::int64_t v : {e.ts_ns, e.price, e.qty, e.bid_price, e.bid_qty, e.ask_price, e.ask_qty})
      if (v < -kMax || v > kMax) return false;
    return e.ts_ns >= 0;
  }

  const ServeConfig& config_;
  const ti::features::FeatureSchema& schema_;
  ti::Pipeline& pipeline_;
  ResultQueue& ring_;
  SubmitSlots& times_;
  SymbolNames& names_;
  ti::LogSink log_;
  Fd socket_;
  ti::Producer producer_;
  ti::feed::MoldReceiver receiver_;
  ti::feed::ItchReader itch_;
  std::uint64_t issues_seen_ = 0;
  std::vector<std::unique_ptr<Instrument>> instruments_;  // by key (stock locate / capture symbol id)
  std::vector<float> features_;
  std::int64_t receive_ns_ = 0;
  std::uint64_t next_tag_ = 0;  // accepted submits so far: the tag of the next one
};

// ---- predictions out ----

struct Subscriber {
  Fd fd;
  std::string peer;
  std::vector<unsigned char> pending;  // bytes not yet accepted by the socket, at most tcp_buffer_bytes
  std::size_t sent = 0;                // of pending
};

struct OutputCounters {
  std::atomic<std::uint64_t> records{0}, udp_datagrams{0}, udp_errors{0}, subscribers{0}, subscribers_dropped{0};
  /// Per record: from its datagram's receipt (the feed thread's clock read after recv) to the record leaving
  /// for the sockets (the output thread, just before its send): the daemon's own latency, loopback not included.
  ti::LatencyHistogram receive_to_send;
};

class Output {
 public:
  Output(const ServeConfig& c, ResultQueue& ring, std::size_t output_width, const SubmitSlots& times,
         const SymbolNames& names, ti::LogSink log)
      : config_(c),
        ring_(ring),
        width_(output_width),
        times_(times),
        names_(names),
        log_(std::move(log)),
        outputs_(output_width),
        record_(ti::prediction_record_bytes(output_width)) {
    if (!c.predictions_udp.empty()) {
      udp_ = Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (udp_.fd < 0) socket_error("predictions.udp socket");
      udp_dest_ = ipv4(c.predictions_udp, "predictions.udp");
      if ((ntohl(udp_dest_.sin_addr.s_addr) >> 28) == 14) {  // 224.0.0.0/4: multicast
        in_addr itf{};
        if (inet_pton(AF_INET, c.predictions_interface.c_str(), &itf) != 1)
          throw Error(ErrorCode::kInvalidConfig, "predictions.interface: not an IPv4 address");
        ::setsockopt(udp_.fd, IPPROTO_IP, IP_MULTICAST_IF, &itf, sizeof itf);
        const unsigned char ttl = 0, loop = 1;
        ::setsockopt(udp_.fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
        ::setsockopt(udp_.fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
      }
      datagram_.reserve(c.udp_max_datagram);
    }
    if (!c.predictions_tcp.empty()) {
      listener_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (listener_.fd < 0) socket_error("predictions.tcp socket");
      const int one = 1;
      ::setsockopt(listener_.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      const sockaddr_in a = ipv4(c.predictions_tcp, "predictions.tcp");
      if (::bind(listener_.fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_.fd, 16) != 0)
        socket_error("predictions.tcp " + c.predictions_tcp.text());
    }
  }

  // Until `stop` and the ring is empty: records out, subscribers accepted, slow ones dropped.
  void run(const std::atomic<bool>& stop) {
    std::int64_t idle_since = 0;
    for (;;) {
      std::size_t n = 0;
      ti::PolledResult r;
      while (n < 256 && ring_.try_pop(r, outputs_)) {
        emit(r);
        ++n;
      }
      flush_udp();
      if (n == 0) {
        if (stop.load(std::memory_order_acquire)) {
          if (!ring_.try_pop(r, outputs_)) break;
          emit(r);
          continue;
        }
        if (idle_since == 0) idle_since = ti::now_ns();
        // Spin briefly after work; then sleep until a result comes (or 1 ms, to serve the subscribers' sockets), so
        // an idle daemon costs no CPU.
        if (ti::now_ns() - idle_since >= static_cast<std::int64_t>(config_.output_spin_us) * 1000) {
          bool got = false;
          ring_.wait(1'000'000, r, outputs_, got);
          if (got) {
            emit(r);
            idle_since = 0;
          }
          service_sockets();
        }
        continue;
      }
      idle_since = 0;
      service_sockets();
    }
    flush_udp();
    service_sockets();
    const std::int64_t until = ti::now_ns() + static_cast<std::int64_t>(config_.drain_timeout_ms) * 1'000'000;
    for (auto& s : subscribers_) drain(s, until);  // one deadline for all of them
  }

  OutputCounters counters;

 private:
  void log(ti::LogLevel level, std::string message) {
    ti::emit_log(log_, {level, "output", std::move(message), {}, std::nullopt, std::nullopt});
  }

  void emit(const ti::PolledResult& r) {
    ti::PredictionRecordHeader h{};
    h.magic = ti::kPredictionRecordMagic;
    h.layout = ti::kPredictionRecordLayout;
    h.output_count = static_cast<std::uint16_t>(width_);
    h.key = r.key;
    h.status = static_cast<std::uint32_t>(r.status);
    h.feed_sequence = times_.sequence(r.tag);
    h.event_ns = times_.ts(r.tag);
    h.receive_ns = r.event_ns;
    h.prediction_ns = r.batch_end_ns;
    h.model_version = r.model_version;
    h.symbol = names_.get(r.key);
    ti::write_prediction_record(h,
                                std::span<const float>(outputs_.data(), r.status == ti::ResultStatus::kOk ? width_ : 0),
                                record_.data(), width_);
    counters.records.fetch_add(1, std::memory_order_relaxed);
    if (r.event_ns > 0) counters.receive_to_send.record_exclusive(ti::now_ns() - r.event_ns);
    if (udp_.fd >= 0) {
      if (datagram_.size() + record_.size() > config_.udp_max_datagram) flush_udp();
      datagram_.insert(datagram_.end(), record_.begin(), record_.end());
    }
    for (auto& s : subscribers_) {
      if (s.fd.fd < 0) continue;
      if (s.pending.size() - s.sent + record_.size() > config_.tcp_buffer_bytes) {
        // A subscriber that cannot keep up is dropped; it never slows the pipeline or the others.
        log(ti::LogLevel::kWarning, "output: subscriber " + s.peer +
                                        " dropped: " + std::to_string(s.pending.size() - s.sent) +
                                        " bytes behind (predictions.tcp_buffer_bytes)");
        s.fd.reset();
        counters.subscribers_dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      s.pending.insert(s.pending.end(), record_.begin(), record_.end());
    }
  }

  void flush_udp() {
    if (udp_.fd < 0 || datagram_.empty()) return;
    if (::sendto(udp_.fd, datagram_.data(), datagram_.size(), MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&udp_dest_), sizeof udp_dest_) < 0) {
      counters.udp_errors.fetch_add(1, std::memory_order_relaxed);
    } else {
      counters.udp_datagrams.fetch_add(1, std::memory_order_relaxed);
    }
    datagram_.clear();
  }

  // Pending bytes to the subscribers (a send only where some are pending), and new subscribers at most once a
  // millisecond: no syscall per batch of records when there is nothing to do.
  void service_sockets() {
    if (listener_.fd >= 0) {
      const std::int64_t now = ti::now_ns();
      if (now - last_accept_ns_ >= 1'000'000) {
        last_accept_ns_ = now;
        accept_subscribers();
      }
    }
    for (auto& s : subscribers_) write_some(s);
    std::erase_if(subscribers_, [](const Subscriber& s) { return s.fd.fd < 0; });
  }

  void accept_subscribers() {
    for (;;) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      Fd fd(::accept4(listener_.fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (fd.fd < 0) return;
      char text[INET_ADDRSTRLEN] = {};
      inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
      const std::string name = std::string(text) + ":" + std::to_string(ntohs(peer.sin_port));
      if (subscribers_.size() >= config_.max_subscribers) {
        log(ti::LogLevel::kWarning, "output: subscriber " + name + " refused: predictions.max_subscribers reached");
        continue;
      }
      const int one = 1;
      ::setsockopt(fd.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      // The kernel's share of a subscriber's backlog is bounded like ours: with both full it is dropped.
      const int sndbuf = static_cast<int>(std::min<std::size_t>(config_.tcp_buffer_bytes, 1 << 30));
      ::setsockopt(fd.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      log(ti::LogLevel::kInfo, "output: subscriber " + name + " connected");
      counters.subscribers.fetch_add(1, std::memory_order_relaxed);
      Subscriber s;
      s.fd = std::move(fd);
      s.peer = name;
      s.pending.reserve(config_.tcp_buffer_bytes);
      subscribers_.push_back(std::move(s));
    }
  }

  void write_some(Subscriber& s) {
    while (s.fd.fd >= 0 && s.sent < s.pending.size()) {
      const ssize_t n =
          ::send(s.fd.fd, s.pending.data() + s.sent, s.pending.size() - s.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        log(ti::LogLevel::kInfo, "output: subscriber " + s.peer + " gone: " + std::strerror(errno));
        s.fd.reset();
        return;
      }
      s.sent += static_cast<std::size_t>(n);
    }
    if (s.sent == s.pending.size()) {
      s.pending.clear();
      s.sent = 0;
    } else if (s.sent > s.pending.size() / 2) {
      s.pending.erase(s.pending.begin(), s.pending.begin() + static_cast<std::ptrdiff_t>(s.sent));
      s.sent = 0;
    }
  }

  // At exit: what a subscriber still has pending, within `timeout_ms`.
  void drain(Subscriber& s, std::int64_t until) {
    while (s.fd.fd >= 0 && s.sent < s.pending.size() && ti::now_ns() < until) {
      pollfd p{s.fd.fd, POLLOUT, 0};
      ::poll(&p, 1, 10);
      write_some(s);
    }
  }

  const ServeConfig& config_;
  ResultQueue& ring_;
  std::size_t width_;
  const SubmitSlots& times_;
  const SymbolNames& names_;
  ti::LogSink log_;
  std::vector<float> outputs_;
  std::vector<unsigned char> record_;
  Fd udp_;
  sockaddr_in udp_dest_{};
  std::vector<unsigned char> datagram_;
  Fd listener_;
  std::vector<Subscriber> subscribers_;
  std::int64_t last_accept_ns_ = 0;
};

// ---- the daemon ----

std::shared_ptr<const ti::Model> load_file(const std::string& path, const ti::LoadOptions& load) {
  const bool onnx = fs::path(path).extension() == ".onnx";
  if (onnx && load.engine == ti::Engine::kLibTorch)
    throw Error(ErrorCode::kInvalidConfig, path + ": an ONNX model runs on the native engine only");
  return onnx ? ti::load_onnx(path, load) : ti::load_torchscript(path, load);
}

fs::path newest_checkpoint(const fs::path& dir) {
  fs::path best;
  fs::file_time_type best_time{};
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto ext = entry.path().extension();
    if (!entry.is_regular_file() || (ext != ".pt" && ext != ".onnx")) continue;
    if (best.empty() || entry.last_write_time() > best_time) best = entry.path(), best_time = entry.last_write_time();
  }
  return best;
}

int serve(const std::string& config_file, const std::vector<std::string>& overrides, const std::string& summary_json) {
  const ServeConfig c = load_serve_config(config_file, overrides);
  const ti::LogSink log = ti::stderr_log_sink();
  auto say = [&](ti::LogLevel level, std::string message) {
    ti::emit_log(log, {level, "serve", std::move(message), {}, std::nullopt, std::nullopt});
  };
  const auto schema = ti::features::load_feature_config(c.feature_config);

  // Signals: blocked in every thread (the ones started below inherit the mask), taken by sigwait() here.
  sigset_t signals;
  sigemptyset(&signals);
  for (const int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a closed stderr or socket is an error return, not the end of the process

  ti::LoadOptions load;
  load.engine = ti::parse_engine(c.engine);
  ti::PipelineConfig pc;
  pc.keys = c.keys;
  pc.max_batch = c.max_batch;
  pc.max_delay_us = c.max_delay_us;
  pc.queue_capacity = c.queue_capacity;
  pc.workers = 1;  // the feed's result ring is single-producer: one worker pushes into it
  if (c.conflation == "supersede") pc.conflation = ti::Conflation::kSupersede;
  pc.idle = c.idle == "spin"    ? ti::IdleStrategy::kSpin
            : c.idle == "yield" ? ti::IdleStrategy::kSpinThenYield
                                : ti::IdleStrategy::kBlock;
  load.warmup_batch_sizes = ti::pipeline_batch_sizes(pc);  // every size the pipeline runs, for each new version
  std::unique_ptr<ti::ModelRegistry> registry;
  std::unique_ptr<ti::CheckpointWatcher> watcher;
  std::shared_ptr<ti::ModelSlot> slot;
  if (!c.model_dir.empty()) {
    if (!fs::is_directory(c.model_dir)) throw Error(ErrorCode::kFileNotFound, c.model_dir + ": not a directory");
    ti::RegistryConfig rc;
    rc.load = load;
    rc.load.expected_schema_hash = schema.hash();
    const fs::path initial = newest_checkpoint(c.model_dir);
    if (initial.empty()) throw Error(ErrorCode::kFileNotFound, c.model_dir + ": no checkpoint (.pt or .onnx)");
    registry = ti::ModelRegistry::create(rc, initial);
    slot = registry->slot();
    ti::WatcherConfig wc;
    wc.directory = c.model_dir;
    watcher = ti::CheckpointWatcher::create(wc, [&registry](const fs::path& p) { registry->offer(p); });
  } else {
    auto model = load_file(c.model_path, load);
    ti::features::check_schema(model->metadata(), schema, c.model_path);
    slot = std::make_shared<ti::ModelSlot>(model);
  }
  const auto model = slot->current();
  if (model->input_width() != schema.size())
    throw Error(ErrorCode::kWidthMismatch, "the model takes " + std::to_string(model->input_width()) + " features, " +
                                               c.feature_config + " computes " + std::to_string(schema.size()));

  auto pipeline = ti::Pipeline::create(pc, slot, ti::make_cpu_backend());
  // Room for every request the queue can hold, and the batch in flight: a result never finds the ring full.
  ResultQueue ring(c.queue_capacity + c.max_batch + 1, model->output_width());
  SubmitSlots times(2 * (c.queue_capacity + c.max_batch) + 2);
  SymbolNames names(c.keys);

  std::unique_ptr<ti::AdminServer> admin;
  if (!c.http.empty()) {
    ti::AdminServerConfig ac;
    ac.bind_address = c.http.host;
    ac.port = c.http.port;
    ac.token_file = c.token_file;
    ac.log = log;
    ac.max_body_bytes = c.http_max_body_bytes;
    ac.max_infer_rows = c.http_max_infer_rows;
    ac.infer_deadline = std::chrono::milliseconds(c.http_infer_deadline_ms);
    ac.max_connections = c.http_max_connections;
    ac.threads = c.http_threads;
    admin = ti::AdminServer::start(
        ac, {.pipeline = pipeline.get(), .registry = registry.get(), .slot = slot.get(), .infer = pipeline.get()});
  }
  Feed feed(c, schema, *pipeline, ring, times, names, log);
  Output output(c, ring, model->output_width(), times, names, log);

  std::atomic<bool> stop_feed{false}, stop_output{false};
  // A thread that fails (out of memory, a socket error) stops the daemon the orderly way: SIGTERM to the main thread.
  auto guarded = [&](const char* name, auto body) {
    return [&say, name, body] {
      try {
        body();
      } catch (const std::exception& e) {
        say(ti::LogLevel::kError, std::string(name) + " thread failed: " + e.what() + "; stopping");
        ::kill(::getpid(), SIGTERM);
      }
    };
  };
  std::thread feed_thread(guarded("feed", [&] {
    if (!feed.run(stop_feed)) ::kill(::getpid(), SIGTERM);
  }));
  std::thread output_thread(guarded("output", [&] { output.run(stop_output); }));
  say(ti::LogLevel::kInfo, "serving " + model->metadata().name + " v" + std::to_string(model->version()) + " (" +
                               model->engine() + ") on feed " + c.feed_listen.text() +
                               (c.feed_group.empty() ? "" : " group " + c.feed_group) + " (" + c.feed_format + ")" +
                               (c.predictions_udp.empty() ? "" : ", predictions udp " + c.predictions_udp.text()) +
                               (c.predictions_tcp.empty() ? "" : ", tcp " + c.predictions_tcp.text()) +
                               (admin ? ", http " + c.http.host + ":" + std::to_string(admin->port()) : ""));

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      if (watcher) {
        say(ti::LogLevel::kInfo, "SIGHUP: re-reading " + c.model_dir);
        watcher->rescan();
      } else {
        say(ti::LogLevel::kInfo, "SIGHUP: no model.dir to re-read");
      }
      continue;
    }
    say(ti::LogLevel::kInfo, std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": stopping the intake, draining");
    break;
  }
  stop_feed.store(true, std::memory_order_relaxed);
  feed_thread.join();
  // Drain: what was accepted completes (bounded by drain_timeout_ms), then the outputs flush.
  const std::int64_t give_up = ti::now_ns() + static_cast<std::int64_t>(c.drain_timeout_ms) * 1'000'000;
  while (ti::now_ns() < give_up) {
    const auto m = pipeline->metrics().snapshot();
    if (m.completed() >= m.accepted) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (watcher) watcher->stop();
  // Queued rows past the drain are cancelled first, so the admin server's stop (which waits for its inference rows)
  // does not wait for the whole queue; new HTTP rows are refused (503) from here on.
  pipeline->shutdown();  // anything still queued completes as cancelled, into the ring
  if (admin) admin->stop();
  stop_output.store(true, std::memory_order_release);
  output_thread.join();

  const auto m = pipeline->metrics().snapshot();
  const auto& fc = feed.counters;
  const auto ld = [](const std::atomic<std::uint64_t>& a) { return static_cast<unsigned long long>(a.load()); };
  char line[1024];
  std::snprintf(line, sizeof line,
                "stopped: %llu datagrams, %llu messages, %llu book events, %llu submitted, %llu rejected; gaps %llu "
                "(%llu messages missing), duplicate packets %llu (%llu messages), malformed %llu, decode failures "
                "%llu; %llu ok, %llu records out, %llu subscribers dropped",
                ld(fc.datagrams), ld(fc.messages), ld(fc.events), ld(fc.submitted), ld(fc.rejected), ld(fc.gaps),
                ld(fc.missing), ld(fc.duplicate_packets), ld(fc.duplicate_messages), ld(fc.malformed),
                ld(fc.decode_failures), static_cast<unsigned long long>(m.ok), ld(output.counters.records),
                ld(output.counters.subscribers_dropped));
  say(ti::LogLevel::kInfo, line);
  if (ring.dropped() > 0)
    say(ti::LogLevel::kWarning, std::to_string(ring.dropped()) +
                                    " results dropped: the output thread fell a whole queue behind (no record sent)");
  const ti::HistogramSnapshot lat = output.counters.receive_to_send.snapshot();
  auto us = [&](double q) { return static_cast<double>(lat.percentile(q)) / 1000.0; };
  std::snprintf(line, sizeof line,
                "receive to record out (us): p50 %.1f, p99 %.1f, p99.9 %.1f, max %.1f over %llu records", us(0.5),
                us(0.99), us(0.999), static_cast<double>(lat.max) / 1000.0, static_cast<unsigned long long>(lat.count));
  say(ti::LogLevel::kInfo, line);
  if (!summary_json.empty()) {
    std::ofstream out(summary_json);
    out << "{\"datagrams\": " << ld(fc.datagrams) << ", \"messages\": " << ld(fc.messages)
        << ", \"events\": " << ld(fc.events) << ", \"submitted\": " << ld(fc.submitted)
        << ", \"rejected\": " << ld(fc.rejected) << ", \"not_book\": " << ld(fc.not_book)
        << ", \"beyond_keys\": " << ld(fc.beyond_keys) << ", \"decode_failures\": " << ld(fc.decode_failures)
        << ", \"gaps\": " << ld(fc.gaps) << ", \"missing_messages\": " << ld(fc.missing)
        << ", \"duplicate_packets\": " << ld(fc.duplicate_packets)
        << ", \"duplicate_messages\": " << ld(fc.duplicate_messages) << ", \"malformed_packets\": " << ld(fc.malformed)
        << ", \"ok\": " << m.ok << ", \"records\": " << ld(output.counters.records)
        << ", \"udp_datagrams\": " << ld(output.counters.udp_datagrams)
        << ", \"subscribers\": " << ld(output.counters.subscribers)
        << ", \"subscribers_dropped\": " << ld(output.counters.subscribers_dropped)
        << ", \"results_dropped\": " << ring.dropped() << ", \"invalid\": " << ld(fc.invalid)
        << ", \"receive_to_send_ns\": {\"count\": " << lat.count << ", \"p50\": " << lat.percentile(0.5)
        << ", \"p99\": " << lat.percentile(0.99) << ", \"p999\": " << lat.percentile(0.999) << ", \"max\": " << lat.max
        << "}}\n";
  }
  return 0;
}

// ---- subscribe: a TCP prediction stream to a predictions CSV ----

int subscribe(const std::string& endpoint_text, const std::string& csv, std::uint64_t count, double timeout_s) {
  const auto colon = endpoint_text.rfind(':');
  if (colon == std::string::npos)
    throw Error(ErrorCode::kInvalidConfig, "--tcp: '" + endpoint_text + "' is not HOST:PORT");
  Endpoint e{endpoint_text.substr(0, colon), static_cast<std::uint16_t>(std::stoul(endpoint_text.substr(colon + 1)))};
  const sockaddr_in a = ipv4(e, "--tcp");
  Fd s;
  const std::int64_t give_up = ti::now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  for (;;) {  // the daemon may still be starting
    s = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) break;
    if (ti::now_ns() > give_up) socket_error("--tcp " + e.text());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::FILE* ready = std::fopen((csv + ".connected").c_str(), "w");
  if (ready != nullptr) std::fclose(ready);
  std::vector<unsigned char> buf;
  std::map<std::uint64_t, std::string> rows;        // by feed sequence
  std::map<std::uint64_t, std::uint64_t> versions;  // records by model version
  std::uint16_t width = 0;
  std::size_t record_bytes = 0;
  unsigned char chunk[65536];
  while (count == 0 || rows.size() < count) {
    pollfd p{s.fd, POLLIN, 0};
    const std::int64_t left_ms = (give_up - ti::now_ns()) / 1'000'000;
    if (left_ms <= 0) break;
    if (::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 1000))) <= 0) continue;
    const ssize_t n = ::recv(s.fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    buf.insert(buf.end(), chunk, chunk + n);
    std::size_t at = 0;
    for (;;) {
      if (record_bytes == 0) {
        if (buf.size() - at < sizeof(ti::PredictionRecordHeader)) break;
        ti::PredictionRecordHeader h;
        std::memcpy(&h, buf.data() + at, sizeof h);
        if (h.magic != ti::kPredictionRecordMagic)
          throw Error(ErrorCode::kParseError, "--tcp: a record without the magic at stream byte " + std::to_string(at));
        width = h.output_count;
        record_bytes = ti::prediction_record_bytes(width);
      }
      if (buf.size() - at < record_bytes) break;
      ti::PredictionRecordHeader h;
      std::vector<float> out(width);
      ti::read_prediction_record(buf.data() + at, h, out);
      std::string line = std::to_string(h.event_ns) + "," + ti::to_string(static_cast<ti::ResultStatus>(h.status));
      for (const float v : out) {
        char f[32];
        std::snprintf(f, sizeof f, "%.9g", static_cast<double>(v));
        line += ',';
        if (static_cast<ti::ResultStatus>(h.status) == ti::ResultStatus::kOk) line += f;
      }
      rows[h.feed_sequence] = std::move(line);
      ++versions[h.model_version];
      at += record_bytes;
    }
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(at));
  }
  std::ofstream out(csv, std::ios::binary);
  std::string header = "index,ts_ns,status";
  for (std::uint16_t k = 0; k < width; ++k) header += ",y" + std::to_string(k);
  out << header << '\n';
  std::uint64_t i = 0;
  for (const auto& [sequence, row] : rows) out << i++ << ',' << row << '\n';
  std::string by_version;
  for (const auto& [v, n] : versions)
    by_version += (by_version.empty() ? "" : " ") + std::to_string(v) + ":" + std::to_string(n);
  std::printf("tickinfer-serve subscribe: %llu records to %s; by model version: %s\n",
              static_cast<unsigned long long>(rows.size()), csv.c_str(), by_version.c_str());
  return count == 0 || rows.size() >= count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tickinfer-serve: market data in by UDP (MoldUDP64), predictions out by UDP and TCP, admin HTTP"};
  std::string config = "configs/serve.toml", summary;
  app.add_option("--config", config, "the daemon's config (every key: docs/SERVE.md)");
  app.add_option("--summary-json", summary, "at exit, the counters as JSON to this file");
  std::vector<std::string> overrides;
  app.add_option("--set", overrides,
                 "section.key=VALUE over the config file (TOML values: --set feed.format='\"capture\"'); repeatable");
  auto* sub = app.add_subcommand("subscribe", "write a daemon's TCP prediction stream as a predictions CSV");
  std::string tcp = "127.0.0.1:31003", csv;
  std::uint64_t count = 0;
  double timeout_s = 30;
  sub->add_option("--tcp", tcp, "the daemon's predictions.tcp");
  sub->add_option("--csv", csv, "the CSV to write (index,ts_ns,status,y0..., by feed sequence)")->required();
  sub->add_option("--count", count, "stop after this many records (0: when the daemon closes the stream)");
  sub->add_option("--timeout", timeout_s, "give up after this many seconds");
  CLI11_PARSE(app, argc, argv);
  try {
    if (*sub) return subscribe(tcp, csv, count, timeout_s);
    return serve(config, overrides, summary);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tickinfer-serve: %s\n", e.what());
    return 1;
  }
}
