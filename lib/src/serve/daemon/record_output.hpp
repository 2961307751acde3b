#pragma once
// tickinfer-serve's predictions out: fixed-size records (tickinfer/prediction_record.hpp) packed into UDP datagrams,
// and a stream to each TCP subscriber, a slow one dropped. Internal to the daemon.

#include <netinet/in.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "serve/daemon/config.hpp"
#include "serve/daemon/feed_intake.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/log.hpp"
#include "tickinfer/prediction_record.hpp"
#include "tickinfer/result.hpp"

namespace tickinfer::daemon {

/// A record's header (its outputs follow it: write_prediction_record()).
PredictionRecordHeader record_header(InstrumentKey key, ResultStatus status, std::uint64_t feed_sequence,
                                     std::int64_t event_ns, std::int64_t receive_ns, std::int64_t prediction_ns,
                                     std::uint64_t model_version, std::array<char, 8> symbol,
                                     std::size_t output_count) noexcept;

/// Records packed whole into datagrams of at most predictions.udp_max_datagram bytes, sent to predictions.udp
/// (multicast: TTL 0, this host only). One thread uses it: the output thread, or the feed thread in direct mode.
class UdpSender {
 public:
  /// Opens the socket for c.predictions_udp (non-empty); throws Error naming the key.
  explicit UdpSender(const ServeConfig& c);
  bool fits(std::size_t bytes) const noexcept { return datagram_.size() + bytes <= max_; }
  /// Appends one record (a full datagram is sent first). Allocation-free.
  void add(std::span<const unsigned char> record) noexcept;
  /// Sends what is packed (one sendto, MSG_DONTWAIT; a failure is counted, never retried).
  void flush() noexcept;

  std::atomic<std::uint64_t> datagrams{0}, errors{0};

 private:
  internal::Fd fd_;
  sockaddr_in dest_{};
  std::size_t max_;
  std::vector<unsigned char> datagram_;
};

struct Subscriber {
  internal::Fd fd;
  std::string peer;
  std::vector<unsigned char> pending;  // bytes not yet accepted by the socket, at most tcp_buffer_bytes
  std::size_t sent = 0;                // of pending
};

struct OutputCounters {
  std::atomic<std::uint64_t> records{0}, subscribers{0}, subscribers_dropped{0};
  /// Per record this thread sends first: from its datagram's receipt (the feed thread's clock read after recv) to
  /// the record leaving for the sockets (just before its send): the daemon's own latency, loopback not included.
  LatencyHistogram receive_to_send;
};

/// The output thread: results from `ring` to records, to `udp` (null: none) and the TCP subscribers.
class Output {
 public:
  /// `measure`: this thread records receive_to_send (false when the feed thread sends the UDP records itself).
  Output(const ServeConfig& c, ResultQueue& ring, std::size_t output_width, const SubmitSlots& times,
         const SymbolNames& names, LogSink log, UdpSender* udp, bool measure);

  /// Until `stop` and the ring is empty: records out, subscribers accepted, slow ones dropped; then what each
  /// subscriber has pending, within drain_timeout_ms.
  void run(const std::atomic<bool>& stop);

  OutputCounters counters;

 private:
  void log(LogLevel level, std::string message);
  void emit(const PolledResult& r);
  void service_sockets();
  void accept_subscribers();
  void write_some(Subscriber& s);
  void drain(Subscriber& s, std::int64_t until);

  const ServeConfig& config_;
  ResultQueue& ring_;
  std::size_t width_;
  const SubmitSlots& times_;
  const SymbolNames& names_;
  LogSink log_;
  UdpSender* udp_;
  bool measure_;
  std::vector<float> outputs_;
  std::vector<unsigned char> record_;
  internal::Fd listener_;
  std::vector<Subscriber> subscribers_;
  std::int64_t last_accept_ns_ = 0;
};

}  // namespace tickinfer::daemon
