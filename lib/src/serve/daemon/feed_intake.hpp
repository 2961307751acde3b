#pragma once
// tickinfer-serve's feed thread: datagrams -> MoldUDP64 -> ITCH 5.0 messages or capture records -> events -> books
// and features per instrument -> the pipeline (batched mode) or the native engine on this thread (direct mode).
// Internal to the daemon.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "serve/daemon/config.hpp"
#include "tickinfer/features/engine.hpp"
#include "tickinfer/features/schema.hpp"
#include "tickinfer/feed/itch.hpp"
#include "tickinfer/feed/moldudp64.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/log.hpp"
#include "tickinfer/model_slot.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/predictor.hpp"
#include "tickinfer/result.hpp"
#include "tickinfer/result_ring.hpp"

namespace tickinfer::daemon {

class UdpSender;

/// ITCH symbols by stock locate, from the directory messages: written by the feed thread, read by the output
/// thread (one relaxed 8-byte word each: a name is read whole or not at all).
class SymbolNames {
 public:
  explicit SymbolNames(std::size_t keys) : names_(keys) {}
  void set(std::uint32_t key, std::uint64_t packed) noexcept {
    if (key < names_.size()) names_[key].store(packed, std::memory_order_relaxed);
  }
  std::array<char, 8> get(std::uint32_t key) const noexcept;

 private:
  std::vector<std::atomic<std::uint64_t>> names_;
};

/// The results the output thread sends: a ResultRing one thread pushes into (the pipeline's worker in batched
/// mode, the feed thread in direct mode), and a futex the output thread sleeps on when it has found the ring empty
/// for a while. The pusher pays a futex wake (a syscall) only while the output thread sleeps; a busy stream costs it
/// a push and two atomics.
class ResultQueue {
 public:
  ResultQueue(std::size_t capacity, std::size_t output_width) : ring_(capacity, output_width) {}
  Completion completion(std::uint64_t tag) noexcept { return {&ResultQueue::on_result, this, tag}; }
  /// The one pushing thread: as a completion would.
  void deliver(const Result& r) noexcept { on_result(this, r); }
  bool try_pop(PolledResult& out, std::span<float> outputs) noexcept { return ring_.try_pop(out, outputs); }
  std::uint64_t dropped() const noexcept { return ring_.dropped(); }

  /// The output thread, after try_pop() found nothing: sleeps until a push or `timeout_ns`.
  void wait(std::int64_t timeout_ns, PolledResult& out, std::span<float> outputs, bool& got) noexcept;

 private:
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t), "the futex word is the atomic");
  static void on_result(void* self, const Result& r) noexcept;

  ResultRing ring_;
  alignas(64) std::atomic<std::uint32_t> generation_{0};
  std::atomic<bool> sleeping_{false};
};

/// What a record needs of its event beyond the Result: the feed sequence and the event's own timestamp, one slot
/// per accepted submit (its tag is the submit's number). Written by the feed thread before the submit, read by the
/// output thread after the result; relaxed atomics (the pipeline's queue and the ring order each write before its
/// read). Accepted requests not yet emitted are at most the queue, the batch in flight and the ring's capacity, so
/// with `size` above that no slot is rewritten before it is read.
class SubmitSlots {
 public:
  explicit SubmitSlots(std::size_t size);
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

/// What the feed thread counted; read by the others after it ended (or, relaxed, for the summary).
struct FeedCounters {
  std::atomic<std::uint64_t> datagrams{0}, messages{0}, events{0}, submitted{0}, rejected{0}, invalid{0};
  std::atomic<std::uint64_t> not_book{0}, beyond_keys{0}, decode_failures{0};
  std::atomic<std::uint64_t> gaps{0}, missing{0}, duplicate_packets{0}, duplicate_messages{0}, malformed{0};
  std::atomic<std::uint64_t> too_far_ahead{0};
  /// Direct mode: the feed thread's predictions by outcome (batched mode: the pipeline's metrics count them).
  std::atomic<std::uint64_t> ok{0}, model_errors{0};
};

/// The whole record path of one event is this thread's in direct mode; these say where the records go.
struct DirectOutputs {
  UdpSender* udp = nullptr;     // records sent by UDP from this thread (null: none)
  ResultQueue* ring = nullptr;  // results handed to the output thread (TCP subscribers; null: none)
};

/// Runs on one thread (the feed thread): run(), or handle() for each datagram. Allocation-free per datagram once
/// every instrument of the stream has been seen (an instrument's book and features are made at its first event).
class Feed {
 public:
  /// Batched mode (c.direct() false): events are submitted to `pipeline`, their results reach `ring`. Direct mode:
  /// `slot`'s current model (native engine) predicts each event here, and `direct` says where the records go.
  /// Opens and binds the feed socket (c.feed_listen, c.feed_group): throws Error naming the key on failure.
  Feed(const ServeConfig& c, const features::FeatureSchema& schema, Pipeline& pipeline, ResultQueue& ring,
       SubmitSlots& times, SymbolNames& names, LogSink log, std::shared_ptr<const ModelSlot> slot,
       DirectOutputs direct);
  ~Feed();

  /// Receives until `stop` (checked at least every 100 ms). False when receiving failed (logged).
  bool run(const std::atomic<bool>& stop);

  /// One datagram, received at `receive_ns` (now_ns clock).
  void handle(std::span<const unsigned char> datagram, std::int64_t receive_ns);

  /// The port the feed socket is bound to (feed.listen's, or the one the kernel chose for port 0).
  std::uint16_t port() const;

  FeedCounters counters;
  /// Direct mode with predictions.udp: per record, from its datagram's receipt to its record's send (this thread).
  LatencyHistogram receive_to_send;
  const feed::ParseStats& itch_stats() const noexcept { return itch_.stats(); }

 private:
  struct Instrument;
  void log(LogLevel level, std::string message);
  bool may_log();
  void account(const feed::MoldResult& r);
  void on_message(std::uint64_t sequence, std::span<const unsigned char> message);
  void new_session();
  void predict_here(std::uint32_t key, std::uint64_t sequence, std::int64_t event_ns);
  void flush_direct();

  const ServeConfig& config_;
  const features::FeatureSchema& schema_;
  Pipeline& pipeline_;
  ResultQueue& ring_;
  SubmitSlots& times_;
  SymbolNames& names_;
  LogSink log_;
  internal::Fd socket_;
  Producer producer_;
  feed::MoldReceiver receiver_;
  feed::ItchReader itch_;
  std::uint64_t issues_seen_ = 0;
  std::uint64_t sessions_seen_ = 0;                       // MoldStats::session_changes when the books were last reset
  std::vector<std::unique_ptr<Instrument>> instruments_;  // by key (stock locate / capture symbol id)
  std::vector<float> features_;
  bool capture_;  // feed.format: capture records (else ITCH 5.0 messages)
  std::int64_t receive_ns_ = 0;
  std::uint64_t next_tag_ = 0;  // accepted submits so far: the tag of the next one

  // Direct mode.
  std::unique_ptr<Predictor> predictor_;
  DirectOutputs direct_;
  std::vector<float> outputs_;
  std::vector<unsigned char> record_;
  std::size_t unsent_ = 0;  // records added to the UDP datagram since its last send

  static constexpr int kLogBurst = 20;
  std::int64_t log_window_ns_ = 0;
  int logged_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace tickinfer::daemon
