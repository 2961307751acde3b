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
  /// Instruments (1..kMaxSymbols). With more than one, each has its own book (its own SyntheticFeed, seeded from
  /// seed and its index) and an event goes to symbol k (0-based) with probability proportional to
  /// 1 / (k + 1)^zipf: a few busy symbols and a long quiet tail. events and rate_per_s are totals.
  std::uint32_t symbols = 1;
  double zipf = 1.0;  // >= 0; 0: every symbol equally active
  /// Bursts: with this probability an event starts one, and the next burst_events events arrive burst_speedup
  /// times faster (a sweep or a news print hitting many books at once). 0: none.
  double burst_probability = 0.0;
  std::uint32_t burst_events = 64;
  double burst_speedup = 100.0;

  static constexpr std::uint32_t kMaxSymbols = 4096;
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
  /// Instrument `index` of a feed of `symbols`: symbol() when there is one, else "SYN<index>" (id = index).
  static feed::SymbolInfo symbol(std::uint32_t index, std::uint32_t symbols);

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

/// All events of a synthetic feed, generated up front so a replay reads them from memory like a capture. One
/// symbol without bursts: SyntheticFeed's events. Otherwise the symbols' feeds interleaved as SyntheticOptions
/// describes, Event::symbol = the symbol's index, timestamps strictly increasing (exponential gaps at the total
/// rate, burst_speedup times shorter in a burst). Deterministic. Throws Error(kInvalidConfig) for a bad option.
std::vector<feed::Event> generate_synthetic(const SyntheticOptions& options);

}  // namespace tickinfer::replay
