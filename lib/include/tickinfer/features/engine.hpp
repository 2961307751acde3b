#pragma once
// Computes a schema's features incrementally, one event at a time, without allocating.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tickinfer/features/schema.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/order_book.hpp"

namespace tickinfer::features {

/// Fixed-point scales of the symbol (feed::SymbolInfo): prices and sizes become quote currency and
/// shares (or base currency) before they enter a feature.
struct Scales {
  std::int64_t price = 1;
  std::int64_t qty = 1;
};

/// Who traded in an event: the aggressor's side (kNone when the event is no trade) and the size.
struct TradeSign {
  feed::Side aggressor = feed::Side::kNone;
  std::int64_t qty = 0;
};

/// Classifies `event` against the book BEFORE it is applied (an execution names a resting order whose
/// side may only be known to the book): kExecute -> the resting order was hit, so the aggressor is its
/// opposite; kTrade -> `side` is the passive side (Tardis: aux 'B'/'S' names the aggressor); others: none.
TradeSign classify_trade(const feed::Event& event, const feed::OrderBook& before) noexcept;

/// One engine per symbol. Definitions (docs/REPLAY.md has the exact arithmetic, which
/// scripts/baseline_replay.py repeats): book features read the best levels after the event; while a
/// side is empty they reuse the last two-sided top of book (zeros before there was one). OFI and trade
/// flow sum integer quantities exactly. Not thread-safe: call from the feed thread.
class FeatureEngine {
 public:
  /// Preallocates every window ring. Throws Error(kInvalidConfig) for a scale <= 0.
  FeatureEngine(FeatureSchema schema, Scales scales);

  const FeatureSchema& schema() const noexcept { return schema_; }
  std::size_t width() const noexcept { return schema_.size(); }

  /// Call once per event, after the book applied it; writes width() values to `out`.
  /// Allocates nothing. `out.size()` must be >= width().
  void update(std::int64_t ts_ns, const feed::OrderBook& book, TradeSign trade, std::span<float> out) noexcept;

  /// Entries dropped from full time-window rings (each makes that window shorter for a while).
  std::uint64_t window_overflows() const noexcept { return overflows_; }
  /// Forgets all history (as freshly constructed).
  void reset() noexcept;

 private:
  // A power-of-two ring of (timestamp, quantity) or (timestamp, mid) entries, oldest at `head`.
  struct Ring {
    std::vector<std::int64_t> ts;
    std::vector<std::int64_t> qty;                        // OFI, trade flow: summed exactly as integers
    std::vector<double> mid;                              // returns
    std::size_t mask = 0, head = 0, size = 0, limit = 0;  // limit: entries kept (events + 1, or capacity)
    std::int64_t sum = 0;
  };
  struct Slot {
    FeatureKind kind;
    std::size_t ring;  // index into rings_ for windowed kinds
  };

  std::int64_t window_sum(const Window& window, Ring& ring, std::int64_t ts_ns, std::int64_t value) noexcept;
  double window_mid(const Window& window, Ring& ring, std::int64_t ts_ns, double mid) noexcept;

  FeatureSchema schema_;
  Scales scales_;
  std::vector<Slot> slots_;
  std::vector<Ring> rings_;
  bool need_ofi_ = false;
  // Last two-sided top of book (raw fixed-point units); valid once seen_top_.
  bool seen_top_ = false, prev_two_sided_ = false;
  std::int64_t bid_ = 0, ask_ = 0, bid_qty_ = 0, ask_qty_ = 0;
  std::uint64_t overflows_ = 0;
};

}  // namespace tickinfer::features
