#include "serve/daemon/feed_intake.hpp"

#include <linux/futex.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>

#include "core/affinity.hpp"
#include "core/cpu_relax.hpp"
#include "model/native/native_model.hpp"
#include "serve/daemon/net.hpp"
#include "serve/daemon/record_output.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/order_book.hpp"
#include "tickinfer/prediction_record.hpp"

namespace tickinfer::daemon {

std::array<char, 8> SymbolNames::get(std::uint32_t key) const noexcept {
  if (key >= names_.size()) return {};
  const std::uint64_t v = names_[key].load(std::memory_order_relaxed);
  return v == 0 ? std::array<char, 8>{} : feed::unpack_text8(v);
}

void ResultQueue::wait(std::int64_t timeout_ns, PolledResult& out, std::span<float> outputs, bool& got) noexcept {
  // seq_cst, both sides: the generation read here and the pusher's increment after its push, with the sleeping
  // flag, form a store->load handshake. A push after this load changes the generation, so the futex wait (which
  // compares it) returns at once: no wakeup is lost.
  const std::uint32_t seen = generation_.load(std::memory_order_seq_cst);
  got = ring_.try_pop(out, outputs);
  if (got) return;
  sleeping_.store(true, std::memory_order_seq_cst);
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
  (void)::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&generation_), FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
  sleeping_.store(false, std::memory_order_relaxed);
}

void ResultQueue::on_result(void* self, const Result& r) noexcept {
  auto& q = *static_cast<ResultQueue*>(self);
  q.ring_.push(r);
  q.generation_.fetch_add(1, std::memory_order_seq_cst);  // pairs with wait()'s load (see there)
  // Pairs with wait()'s store; the exchange makes it one wake per sleep, not one per result of a burst.
  if (q.sleeping_.load(std::memory_order_seq_cst) && q.sleeping_.exchange(false, std::memory_order_seq_cst)) {
    (void)::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&q.generation_), FUTEX_WAKE_PRIVATE, 1, nullptr,
                    nullptr, 0);
  }
}

SubmitSlots::SubmitSlots(std::size_t size) : slots_(std::bit_ceil(size)), mask_(slots_.size() - 1) {}

namespace {

internal::Fd feed_socket(const ServeConfig& c) {
  internal::Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.open()) socket_error("feed socket");
  const int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const int rcvbuf = static_cast<int>(c.receive_buffer_bytes);
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a = ipv4(c.feed_listen, "feed.listen");
  // Linux hands a multicast datagram only to sockets bound to the group (or to any address): bind the group.
  if (!c.feed_group.empty() && inet_pton(AF_INET, c.feed_group.c_str(), &a.sin_addr) != 1)
    throw Error(ErrorCode::kInvalidConfig, "feed.group: '" + c.feed_group + "' is not an IPv4 address");
  if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
    socket_error("feed.listen " + c.feed_listen.text());
  if (!c.feed_group.empty()) {
    ip_mreq m{};
    if (inet_pton(AF_INET, c.feed_group.c_str(), &m.imr_multiaddr) != 1 ||
        inet_pton(AF_INET, c.feed_interface.c_str(), &m.imr_interface) != 1)
      throw Error(ErrorCode::kInvalidConfig, "feed.group/feed.interface: not IPv4 addresses");
    if (::setsockopt(s.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0)
      socket_error("feed.group " + c.feed_group + " on " + c.feed_interface);
  }
  timeval tv{0, 100'000};  // the feed thread checks for a stop this often when no datagram comes
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return s;
}

// A capture record's values within what books and features add and subtract without overflow (2^52).
bool plausible(const feed::Event& e) noexcept {
  constexpr std::int64_t kMax = std::int64_t{1} << 52;
  for (const std::int64_t v : {e.ts_ns, e.price, e.qty, e.bid_price, e.bid_qty, e.ask_price, e.ask_qty})
    if (v < -kMax || v > kMax) return false;
  return e.ts_ns >= 0;
}

}  // namespace

struct Feed::Instrument {
  Instrument(const features::FeatureSchema& schema, std::int64_t price_scale, std::int64_t qty_scale)
      : book(0, 1 << 10), engine(schema, {price_scale, qty_scale}) {}
  feed::OrderBook book;
  features::FeatureEngine engine;
};

Feed::Feed(const ServeConfig& c, const features::FeatureSchema& schema, Pipeline& pipeline, ResultQueue& ring,
           SubmitSlots& times, SymbolNames& names, LogSink log, std::shared_ptr<const ModelSlot> slot,
           DirectOutputs direct)
    : config_(c),
      schema_(schema),
      pipeline_(pipeline),
      ring_(ring),
      times_(times),
      names_(names),
      log_(std::move(log)),
      socket_(feed_socket(c)),
      producer_(pipeline.make_producer()),
      receiver_({.first_sequence = 0, .max_gap = c.max_gap}),
      itch_(feed::ByteSource::from_string("udp " + c.feed_listen.text(), ""),
            {.policy = feed::ParsePolicy::kSkip, .max_consecutive_framing_errors = ~std::uint32_t{0}}),
      instruments_(c.keys),
      features_(schema.size()),
      capture_(c.feed_format == "capture"),
      direct_(direct) {
  if (c.direct()) {
    const auto model = slot ? slot->current() : nullptr;
    if (model && model->state_width() > 0)
      throw Error(ErrorCode::kUnsupported,
                  "pipeline.mode = \"direct\" predicts each event on its own; a sequence model (state per instrument) "
                  "needs pipeline.mode = \"batched\"");
    if (!model || native::native_plan_of(*model) == nullptr)
      throw Error(ErrorCode::kUnsupported,
                  "pipeline.mode = \"direct\" runs the native engine, and the model has no native plan");
    predictor_ = std::make_unique<Predictor>(std::move(slot));
    outputs_.resize(predictor_->output_width());
    record_.resize(prediction_record_bytes(outputs_.size()));
  }
}

Feed::~Feed() = default;

std::uint16_t Feed::port() const {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool Feed::run(const std::atomic<bool>& stop) {
  internal::pin_current_thread(config_.feed_core, "tickinfer-serve", "the feed thread");
  std::vector<unsigned char> datagram(65536);
  const std::int64_t spin_ns = static_cast<std::int64_t>(config_.feed_spin_us) * 1000;
  std::int64_t last_ns = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    // feed.spin_us: poll without blocking this long after the last datagram (no wake-up cost), then block.
    const bool poll = spin_ns > 0 && now_ns() - last_ns < spin_ns;
    const ssize_t n = ::recv(socket_.get(), datagram.data(), datagram.size(), poll ? MSG_DONTWAIT : 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        if (poll) internal::cpu_relax();
        continue;
      }
      log(LogLevel::kError, std::string("feed: recv failed: ") + std::strerror(errno) + "; stopping");
      return false;
    }
    last_ns = now_ns();
    handle(std::span<const unsigned char>(datagram.data(), static_cast<std::size_t>(n)), last_ns);
  }
  return true;
}

void Feed::handle(std::span<const unsigned char> datagram, std::int64_t receive_ns) {
  receive_ns_ = receive_ns;
  counters.datagrams.fetch_add(1, std::memory_order_relaxed);
  const feed::MoldResult r = receiver_.receive(
      datagram,
      [this](std::uint64_t sequence, std::span<const unsigned char> message) { on_message(sequence, message); });
  account(r);
  if (unsent_ > 0) flush_direct();
}

void Feed::log(LogLevel level, std::string message) {
  emit_log(log_, {level, "feed", std::move(message), {}, std::nullopt, std::nullopt});
}

// A line per event that matters (a gap, a malformed packet, a session change), never per message, and at most
// kLogBurst of them per second (the rest counted, and said with the next line that is logged).
bool Feed::may_log() {
  const std::int64_t now = now_ns();
  if (now - log_window_ns_ >= 1'000'000'000) {
    if (suppressed_ > 0)
      log(LogLevel::kWarning, "feed: " + std::to_string(suppressed_) + " more gap/malformed lines not logged");
    log_window_ns_ = now, logged_ = 0, suppressed_ = 0;
  }
  if (logged_ < kLogBurst) return ++logged_, true;
  ++suppressed_;
  return false;
}

void Feed::account(const feed::MoldResult& r) {
  using S = feed::MoldStatus;
  if (r.session_changed)
    log(LogLevel::kWarning, "feed: new MoldUDP64 session at sequence " + std::to_string(r.sequence));
  switch (r.status) {
    case S::kGap:
      counters.gaps.fetch_add(1, std::memory_order_relaxed);
      counters.missing.fetch_add(r.gap_to - r.gap_from + 1, std::memory_order_relaxed);
      if (may_log())
        log(LogLevel::kWarning, "feed: gap: sequences " + std::to_string(r.gap_from) + "-" + std::to_string(r.gap_to) +
                                    " missing (" + std::to_string(r.gap_to - r.gap_from + 1) + " messages)");
      break;
    case S::kOverlap:
    case S::kDuplicate:
      counters.duplicate_packets.fetch_add(r.status == S::kDuplicate, std::memory_order_relaxed);
      counters.duplicate_messages.fetch_add(r.duplicates, std::memory_order_relaxed);
      break;
    case S::kTooFarAhead:
      counters.too_far_ahead.fetch_add(1, std::memory_order_relaxed);
      if (may_log())
        log(LogLevel::kWarning, "feed: packet at sequence " + std::to_string(r.sequence) +
                                    " refused: " + std::to_string(r.sequence - r.gap_from) +
                                    " messages ahead of the expected one (feed.max_gap)");
      break;
    case S::kMalformed:
      counters.malformed.fetch_add(1, std::memory_order_relaxed);
      if (may_log())
        log(LogLevel::kWarning,
            "feed: malformed packet skipped: " + std::string(r.reason) + " at byte " + std::to_string(r.offset));
      break;
    case S::kOk:
      break;
  }
}

void Feed::on_message(std::uint64_t sequence, std::span<const unsigned char> message) {
  counters.messages.fetch_add(1, std::memory_order_relaxed);
  if (receiver_.stats().session_changes != sessions_seen_) new_session();
  feed::Event e{};
  if (capture_) {
    if (message.size() != sizeof(feed::Event)) {
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
  if (e.kind == feed::EventKind::kSymbolDirectory && e.symbol < config_.keys) names_.set(e.symbol, e.order_id);
  if (!feed::is_market_event(e)) {
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
  const auto trade = features::classify_trade(e, slot->book);  // before: an execution's side may be in it
  slot->book.apply(e);
  slot->engine.update(e.ts_ns, slot->book, trade, features_);
  if (predictor_) {
    predict_here(e.symbol, sequence, e.ts_ns);
    return;
  }
  times_.set(next_tag_, sequence, e.ts_ns);
  const SubmitStatus s = pipeline_.submit(producer_, static_cast<InstrumentKey>(e.symbol), features_, kNoDeadline,
                                          ring_.completion(next_tag_), receive_ns_);
  if (s == SubmitStatus::kAccepted) {
    ++next_tag_;  // a refused submit's slot is reused by the next one
    counters.submitted.fetch_add(1, std::memory_order_relaxed);
  } else if (s == SubmitStatus::kRejected) {
    counters.rejected.fetch_add(1, std::memory_order_relaxed);  // overload: shed, counted
  } else {
    counters.invalid.fetch_add(1, std::memory_order_relaxed);
  }
}

// A new MoldUDP64 session (the next trading day, a restarted sender) starts from an empty market: every book and
// feature engine is dropped (made again at each instrument's first event: allocation, once per session) and the
// ITCH reader's timestamp check starts again from midnight.
void Feed::new_session() {
  sessions_seen_ = receiver_.stats().session_changes;
  for (auto& instrument : instruments_) instrument.reset();
  itch_.new_session();
}

// Direct mode: the native engine on this thread, then the record to UDP (sent with the datagram's last one) and
// the result to the output thread for the TCP subscribers.
void Feed::predict_here(std::uint32_t key, std::uint64_t sequence, std::int64_t event_ns) {
  const PredictStatus ps = predictor_->predict(features_, outputs_);
  const std::int64_t done_ns = now_ns();
  const bool ok = ps == PredictStatus::kOk;
  // kModelError: NaN/Inf. kInvalid / kNotNative / kNoModel cannot follow a model the registry published (same
  // schema, native engine); if one did, the event is reported as a model error rather than dropped.
  (ok ? counters.ok : counters.model_errors).fetch_add(1, std::memory_order_relaxed);
  if (ps != PredictStatus::kOk && ps != PredictStatus::kModelError)
    counters.invalid.fetch_add(1, std::memory_order_relaxed);
  counters.submitted.fetch_add(1, std::memory_order_relaxed);
  const ResultStatus status = ok ? ResultStatus::kOk : ResultStatus::kModelError;
  if (direct_.udp != nullptr) {
    const PredictionRecordHeader h = record_header(key, status, sequence, event_ns, receive_ns_, done_ns,
                                                   predictor_->model_version(), names_.get(key), outputs_.size());
    write_prediction_record(h, std::span<const float>(outputs_.data(), ok ? outputs_.size() : 0), record_.data(),
                            outputs_.size());
    if (!direct_.udp->fits(record_.size())) flush_direct();
    direct_.udp->add(record_);
    ++unsent_;
  }
  if (direct_.ring != nullptr) {
    times_.set(next_tag_, sequence, event_ns);  // what the output thread's record takes beyond the Result
    Result r;
    r.status = status;
    r.tag = next_tag_;
    r.outputs = outputs_;
    r.model_version = predictor_->model_version();
    r.enqueue_ns = receive_ns_;
    r.event_ns = receive_ns_;
    r.batch_start_ns = done_ns;
    r.batch_end_ns = done_ns;
    r.key = key;
    r.engine = EngineKind::kNative;
    if (!ok) r.error = to_string(ps);
    direct_.ring->deliver(r);
  }
  ++next_tag_;
}

void Feed::flush_direct() {
  direct_.udp->flush();
  const std::int64_t sent_ns = now_ns();
  for (; unsent_ > 0; --unsent_) receive_to_send.record_exclusive(sent_ns - receive_ns_);
}

}  // namespace tickinfer::daemon
