#include "serve/daemon/record_output.hpp"

#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/affinity.hpp"
#include "serve/daemon/net.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::daemon {

PredictionRecordHeader record_header(InstrumentKey key, ResultStatus status, std::uint64_t feed_sequence,
                                     std::int64_t event_ns, std::int64_t receive_ns, std::int64_t prediction_ns,
                                     std::uint64_t model_version, std::array<char, 8> symbol,
                                     std::size_t output_count) noexcept {
  PredictionRecordHeader h{};
  h.magic = kPredictionRecordMagic;
  h.layout = kPredictionRecordLayout;
  h.output_count = static_cast<std::uint16_t>(output_count);
  h.key = key;
  h.status = static_cast<std::uint32_t>(status);
  h.feed_sequence = feed_sequence;
  h.event_ns = event_ns;
  h.receive_ns = receive_ns;
  h.prediction_ns = prediction_ns;
  h.model_version = model_version;
  h.symbol = symbol;
  return h;
}

UdpSender::UdpSender(const ServeConfig& c)
    : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)), max_(c.udp_max_datagram) {
  if (!fd_.open()) socket_error("predictions.udp socket");
  dest_ = ipv4(c.predictions_udp, "predictions.udp");
  if ((ntohl(dest_.sin_addr.s_addr) >> 28) == 14) {  // 224.0.0.0/4: multicast
    in_addr itf{};
    if (inet_pton(AF_INET, c.predictions_interface.c_str(), &itf) != 1)
      throw Error(ErrorCode::kInvalidConfig, "predictions.interface: not an IPv4 address");
    ::setsockopt(fd_.get(), IPPROTO_IP, IP_MULTICAST_IF, &itf, sizeof itf);
    const unsigned char ttl = 0, loop = 1;
    ::setsockopt(fd_.get(), IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
    ::setsockopt(fd_.get(), IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
  }
  datagram_.reserve(max_);
}

void UdpSender::add(std::span<const unsigned char> record) noexcept {
  if (!fits(record.size())) flush();
  datagram_.insert(datagram_.end(), record.begin(), record.end());  // within the reserved max_: no allocation
}

void UdpSender::flush() noexcept {
  if (datagram_.empty()) return;
  if (::sendto(fd_.get(), datagram_.data(), datagram_.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&dest_),
               sizeof dest_) < 0) {
    errors.fetch_add(1, std::memory_order_relaxed);
  } else {
    datagrams.fetch_add(1, std::memory_order_relaxed);
  }
  datagram_.clear();
}

Output::Output(const ServeConfig& c, ResultQueue& ring, std::size_t output_width, const SubmitSlots& times,
               const SymbolNames& names, LogSink log, UdpSender* udp, bool measure)
    : config_(c),
      ring_(ring),
      width_(output_width),
      times_(times),
      names_(names),
      log_(std::move(log)),
      udp_(udp),
      measure_(measure),
      outputs_(output_width),
      record_(prediction_record_bytes(output_width)) {
  if (!c.predictions_tcp.empty()) {
    listener_ = internal::Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listener_.open()) socket_error("predictions.tcp socket");
    const int one = 1;
    ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in a = ipv4(c.predictions_tcp, "predictions.tcp");
    if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener_.get(), 16) != 0)
      socket_error("predictions.tcp " + c.predictions_tcp.text());
  }
}

void Output::log(LogLevel level, std::string message) {
  emit_log(log_, {level, "output", std::move(message), {}, std::nullopt, std::nullopt});
}

void Output::run(const std::atomic<bool>& stop) {
  internal::pin_current_thread(config_.output_core, "tickinfer-serve", "the output thread");
  std::int64_t idle_since = 0;
  auto flush_udp = [this] {
    if (udp_ != nullptr) udp_->flush();
  };
  for (;;) {
    std::size_t n = 0;
    PolledResult r;
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
      if (idle_since == 0) idle_since = now_ns();
      // Spin briefly after work; then sleep until a result comes (or 1 ms, to serve the subscribers' sockets), so
      // an idle daemon costs no CPU.
      if (now_ns() - idle_since >= static_cast<std::int64_t>(config_.output_spin_us) * 1000) {
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
  const std::int64_t until = now_ns() + static_cast<std::int64_t>(config_.drain_timeout_ms) * 1'000'000;
  for (auto& s : subscribers_) drain(s, until);  // one deadline for all of them
}

void Output::emit(const PolledResult& r) {
  const PredictionRecordHeader h = record_header(r.key, r.status, times_.sequence(r.tag), times_.ts(r.tag), r.event_ns,
                                                 r.batch_end_ns, r.model_version, names_.get(r.key), width_);
  write_prediction_record(h, std::span<const float>(outputs_.data(), r.status == ResultStatus::kOk ? width_ : 0),
                          record_.data(), width_);
  counters.records.fetch_add(1, std::memory_order_relaxed);
  if (measure_ && r.event_ns > 0) counters.receive_to_send.record_exclusive(now_ns() - r.event_ns);
  if (udp_ != nullptr) udp_->add(record_);
  for (auto& s : subscribers_) {
    if (!s.fd.open()) continue;
    if (s.pending.size() - s.sent + record_.size() > config_.tcp_buffer_bytes) {
      // A subscriber that cannot keep up is dropped; it never slows the pipeline or the others.
      log(LogLevel::kWarning, "output: subscriber " + s.peer +
                                  " dropped: " + std::to_string(s.pending.size() - s.sent) +
                                  " bytes behind (predictions.tcp_buffer_bytes)");
      s.fd.reset();
      counters.subscribers_dropped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    s.pending.insert(s.pending.end(), record_.begin(), record_.end());
  }
}

// Pending bytes to the subscribers (a send only where some are pending), and new subscribers at most once a
// millisecond: no syscall per batch of records when there is nothing to do.
void Output::service_sockets() {
  if (listener_.open()) {
    const std::int64_t now = now_ns();
    if (now - last_accept_ns_ >= 1'000'000) {
      last_accept_ns_ = now;
      accept_subscribers();
    }
  }
  for (auto& s : subscribers_) write_some(s);
  std::erase_if(subscribers_, [](const Subscriber& s) { return !s.fd.open(); });
}

void Output::accept_subscribers() {
  for (;;) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    internal::Fd fd(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.open()) return;
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
    const std::string name = std::string(text) + ":" + std::to_string(ntohs(peer.sin_port));
    if (subscribers_.size() >= config_.max_subscribers) {
      log(LogLevel::kWarning, "output: subscriber " + name + " refused: predictions.max_subscribers reached");
      continue;
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // The kernel's share of a subscriber's backlog is bounded like ours: with both full it is dropped.
    const int sndbuf = static_cast<int>(std::min<std::size_t>(config_.tcp_buffer_bytes, 1 << 30));
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    log(LogLevel::kInfo, "output: subscriber " + name + " connected");
    counters.subscribers.fetch_add(1, std::memory_order_relaxed);
    Subscriber s;
    s.fd = std::move(fd);
    s.peer = name;
    s.pending.reserve(config_.tcp_buffer_bytes);
    subscribers_.push_back(std::move(s));
  }
}

void Output::write_some(Subscriber& s) {
  while (s.fd.open() && s.sent < s.pending.size()) {
    const ssize_t n =
        ::send(s.fd.get(), s.pending.data() + s.sent, s.pending.size() - s.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      log(LogLevel::kInfo, "output: subscriber " + s.peer + " gone: " + std::strerror(errno));
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

// At exit: what a subscriber still has pending, within the deadline.
void Output::drain(Subscriber& s, std::int64_t until) {
  while (s.fd.open() && s.sent < s.pending.size() && now_ns() < until) {
    pollfd p{s.fd.get(), POLLOUT, 0};
    ::poll(&p, 1, 10);
    write_some(s);
  }
}

}  // namespace tickinfer::daemon
