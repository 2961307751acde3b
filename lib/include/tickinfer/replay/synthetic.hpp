#pragma once
// A deterministic, seeded order-book event generator: what tickinfer-replay replays without a data file.

#include <cstdint>
#include <vector>

#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/order_book.hpp"
#include "tickinfer/feed/symbol.hpp"

namespace tickinfer::replay {

struct SyntheticOptions {
  std::uint64_t seed = 1;
  std::uint64_t events = 1'000'000;
  double rate_per_s = 20'000.0;          // mean recorded event rate (exponential gaps between events)
  std::int64_t start_price = 1'000'000;  // in kPriceScale units: $100.00
  std::int64_t tick = 100;               // $0.01
};

/// Order-by-order events for one symbol ("SYNTH", LOBSTER price units): it seeds a ten-level book, then
/// adds (some improving the quote), cancels and deletes, visible executions at the best level and hidden
/// trades, with exponential gaps between timestamps. Every event applies cleanly to a feed::OrderBook,
/// and kCancel/kDelete/kExecute carry side and price as LOBSTER's do. The same options give the same
/// events on every run and machine (own RNG, integer prices). Not thread-safe.
class SyntheticFeed {
 public:
  static constexpr std::int64_t kPriceScale = feed::kLobsterPriceScale;

  explicit SyntheticFeed(const SyntheticOptions& options);

  /// The next event; false after options.events events.
  bool next(feed::Event& out);

  static feed::SymbolInfo symbol();

 private:
  struct Live {
    std::uint64_t id;
    feed::Side side;
    std::int64_t price;
    std::int64_t qty;
  };

  std::uint64_t random() noexcept;
  double uniform() noexcept;  // [0, 1)
  std::uint64_t below(std::uint64_t n) noexcept;
  void add(feed::Side side, feed::Event& out);
  bool cancel(feed::Event& out);
  bool execute(feed::Event& out);
  void hidden_trade(feed::Event& out);
  void forget(std::size_t index);
  void emit(feed::Event& out);

  SyntheticOptions options_;
  std::uint64_t state_[4];
  std::uint64_t produced_ = 0;
  std::uint64_t next_id_ = 1;
  std::int64_t ts_ns_;
  feed::OrderBook book_;
  std::vector<Live> live_;
  std::vector<std::uint32_t> position_;  // by order id: index in live_ (ids are dense)
};

/// All events of a synthetic feed, generated up front so a replay reads them from memory like a capture.
std::vector<feed::Event> generate_synthetic(const SyntheticOptions& options);

}  // namespace tickinfer::replay
