#include "tickinfer/features/engine.hpp"

#include <algorithm>
#include <bit>

#include "tickinfer/error.hpp"

namespace tickinfer::features {
namespace {

using feed::Side;

bool windowed(FeatureKind kind) noexcept {
  return kind == FeatureKind::kOfi || kind == FeatureKind::kTradeFlow || kind == FeatureKind::kReturn;
}

double normalise(const FeatureSpec& spec, double value) noexcept {
  if (spec.zscore) value = (value - spec.mean) / spec.stddev;
  if (spec.clip) value = std::clamp(value, spec.clip_lo, spec.clip_hi);
  return value;
}

}  // namespace

TradeSign classify_trade(const feed::Event& event, const feed::OrderBook& before) noexcept {
  switch (event.kind) {
    case feed::EventKind::kExecute: {
      Side resting = event.side;
      if (resting == Side::kNone) {
        const feed::RestingOrder* order = before.find_order(event.order_id);
        if (order != nullptr) resting = order->side;
      }
      return {feed::opposite(resting), event.qty};
    }
    case feed::EventKind::kTrade:
      if (event.aux == 'B') return {Side::kBuy, event.qty};
      if (event.aux == 'S') return {Side::kSell, event.qty};
      return {feed::opposite(event.side), event.qty};
    default:
      return {};
  }
}

FeatureEngine::FeatureEngine(FeatureSchema schema, Scales scales) : schema_(std::move(schema)), scales_(scales) {
  if (scales_.price <= 0 || scales_.qty <= 0)
    throw Error(ErrorCode::kInvalidConfig, "feature engine: price and qty scales must be > 0");
  slots_.reserve(schema_.size());
  for (const FeatureSpec& spec : schema_.features()) {
    Slot slot{spec.kind, 0};
    if (windowed(spec.kind)) {
      const Window& w = spec.window;
      Ring ring;
      // A return compares with the entry N events back, so it keeps one more than a sum does.
      ring.limit = w.events != 0 ? w.events + (spec.kind == FeatureKind::kReturn ? 1u : 0u) : w.capacity;
      const std::size_t capacity = std::bit_ceil(ring.limit);
      ring.mask = capacity - 1;
      ring.ts.resize(capacity);
      if (spec.kind == FeatureKind::kReturn) {
        ring.mid.resize(capacity);
      } else {
        ring.qty.resize(capacity);
      }
      slot.ring = rings_.size();
      rings_.push_back(std::move(ring));
    }
    if (spec.kind == FeatureKind::kOfi) need_ofi_ = true;
    slots_.push_back(slot);
  }
}

void FeatureEngine::reset() noexcept {
  for (Ring& ring : rings_) ring.head = ring.size = 0, ring.sum = 0;
  seen_top_ = prev_two_sided_ = false;
  bid_ = ask_ = bid_qty_ = ask_qty_ = 0;
  overflows_ = 0;
}

std::int64_t FeatureEngine::window_sum(const Window& window, Ring& ring, std::int64_t ts_ns,
                                       std::int64_t value) noexcept {
  auto pop = [&ring] {
    ring.sum -= ring.qty[ring.head];
    ring.head = (ring.head + 1) & ring.mask;
    --ring.size;
  };
  if (window.ns != 0) {
    // Keep (now - W, now]: the current entry is never older than that.
    while (ring.size > 0 && ring.ts[ring.head] <= ts_ns - window.ns) pop();
    if (ring.size == ring.limit) {
      pop();
      ++overflows_;
    }
  } else if (ring.size == ring.limit) {
    pop();
  }
  const std::size_t tail = (ring.head + ring.size) & ring.mask;
  ring.ts[tail] = ts_ns;
  ring.qty[tail] = value;
  ++ring.size;
  ring.sum += value;
  return ring.sum;
}

double FeatureEngine::window_mid(const Window& window, Ring& ring, std::int64_t ts_ns, double mid) noexcept {
  auto pop = [&ring] {
    ring.head = (ring.head + 1) & ring.mask;
    --ring.size;
  };
  if (ring.size == ring.limit) {
    pop();
    if (window.ns != 0) ++overflows_;
  }
  const std::size_t tail = (ring.head + ring.size) & ring.mask;
  ring.ts[tail] = ts_ns;
  ring.mid[tail] = mid;
  ++ring.size;
  if (window.ns != 0) {
    // The mid prevailing at now - W is the last entry at or before it: drop entries while the next one
    // is also at or before it (the oldest entry stands in while history is shorter than W).
    while (ring.size >= 2 && ring.ts[(ring.head + 1) & ring.mask] <= ts_ns - window.ns) pop();
  }
  return ring.mid[ring.head];
}

void FeatureEngine::update(std::int64_t ts_ns, const feed::OrderBook& book, TradeSign trade,
                           std::span<float> out) noexcept {
  const bool two_sided = !book.empty(Side::kBuy) && !book.empty(Side::kSell);
  std::int64_t ofi = 0;
  if (two_sided) {
    const feed::Level bid = book.best_bid(), ask = book.best_ask();
    if (need_ofi_ && prev_two_sided_) {
      // Cont-Kukanov-Stoikov: bid-side arrivals minus departures, minus the same on the ask side.
      if (bid.price >= bid_) ofi += bid.qty;
      if (bid.price <= bid_) ofi -= bid_qty_;
      if (ask.price <= ask_) ofi -= ask.qty;
      if (ask.price >= ask_) ofi += ask_qty_;
    }
    bid_ = bid.price, ask_ = ask.price, bid_qty_ = bid.qty, ask_qty_ = ask.qty;
    seen_top_ = true;
  }
  prev_two_sided_ = two_sided;

  const double price_scale = static_cast<double>(scales_.price);
  const double qty_scale = static_cast<double>(scales_.qty);
  const double mid = seen_top_ ? static_cast<double>(bid_ + ask_) * 0.5 / price_scale : 0.0;
  std::int64_t signed_trade = 0;
  if (trade.aggressor == Side::kBuy) signed_trade = trade.qty;
  if (trade.aggressor == Side::kSell) signed_trade = -trade.qty;

  const auto& specs = schema_.features();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const FeatureSpec& spec = specs[i];
    double value = 0.0;
    switch (slots_[i].kind) {
      case FeatureKind::kMid:
        value = mid;
        break;
      case FeatureKind::kSpread:
        value = static_cast<double>(ask_ - bid_) / price_scale;
        if (spec.unit == PriceUnit::kBps) value = mid != 0.0 ? value / mid * 1e4 : 0.0;
        break;
      case FeatureKind::kMicroprice: {
        const std::int64_t total = bid_qty_ + ask_qty_;
        const double micro = total > 0 ? (static_cast<double>(bid_) * static_cast<double>(ask_qty_) +
                                          static_cast<double>(ask_) * static_cast<double>(bid_qty_)) /
                                             static_cast<double>(total) / price_scale
                                       : mid;
        value = micro;
        if (spec.unit == PriceUnit::kBps) value = mid != 0.0 ? (micro - mid) / mid * 1e4 : 0.0;
        break;
      }
      case FeatureKind::kImbalance: {
        std::int64_t bids = 0, asks = 0;
        const std::size_t nb = std::min<std::size_t>(spec.levels, book.depth(Side::kBuy));
        const std::size_t na = std::min<std::size_t>(spec.levels, book.depth(Side::kSell));
        for (std::size_t l = 0; l < nb; ++l) bids += book.level(Side::kBuy, l).qty;
        for (std::size_t l = 0; l < na; ++l) asks += book.level(Side::kSell, l).qty;
        value = bids + asks > 0 ? static_cast<double>(bids - asks) / static_cast<double>(bids + asks) : 0.0;
        break;
      }
      case FeatureKind::kOfi:
        value = static_cast<double>(window_sum(spec.window, rings_[slots_[i].ring], ts_ns, ofi)) / qty_scale;
        break;
      case FeatureKind::kTradeFlow:
        value = static_cast<double>(window_sum(spec.window, rings_[slots_[i].ring], ts_ns, signed_trade)) / qty_scale;
        break;
      case FeatureKind::kReturn: {
        const double then = window_mid(spec.window, rings_[slots_[i].ring], ts_ns, mid);
        value = then != 0.0 ? (mid / then - 1.0) * 1e4 : 0.0;
        break;
      }
      case FeatureKind::kCount:
        break;
    }
    out[i] = static_cast<float>(normalise(spec, value));
  }
}

}  // namespace tickinfer::features
