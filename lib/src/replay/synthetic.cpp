#include "tickinfer/replay/synthetic.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "tickinfer/error.hpp"

namespace tickinfer::replay {
namespace {

using feed::Event;
using feed::EventKind;
using feed::Side;

constexpr std::size_t kSeedLevels = 10;
constexpr std::size_t kMinLevels = 5;  // a thinner side only receives adds until it recovers
constexpr std::int64_t kLot = 100;
constexpr std::int64_t kStartTsNs = 34'200'000'000'000;  // 09:30:00, like a LOBSTER session

std::uint64_t splitmix64(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

}  // namespace

SyntheticFeed::SyntheticFeed(const SyntheticOptions& options)
    : options_(options),
      ts_ns_(kStartTsNs),
      book_(0, static_cast<std::size_t>(
                   std::min<std::uint64_t>(options.events / std::max<std::uint32_t>(options.symbols, 1), 1 << 12))) {
  if (options_.rate_per_s <= 0.0 || !std::isfinite(options_.rate_per_s))
    throw Error(ErrorCode::kInvalidConfig, "synthetic feed: rate_per_s must be > 0");
  if (options_.tick <= 0 || options_.start_price <= options_.tick * static_cast<std::int64_t>(4 * kSeedLevels))
    throw Error(ErrorCode::kInvalidConfig, "synthetic feed: start_price must exceed 40 ticks, tick must be > 0");
  std::uint64_t seed = options_.seed;
  for (auto& s : state_) s = splitmix64(seed);
  // One book of many (generate_synthetic's symbols): reserve its share, not a whole feed's.
  const std::uint64_t share = options_.events / std::max<std::uint32_t>(options_.symbols, 1);
  live_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(share, 1 << 12)));
  position_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(share, 1 << 16)));
  position_.push_back(0);  // id 0 is never used
}

feed::SymbolInfo SyntheticFeed::symbol() { return {0, "SYNTH", kPriceScale, 1}; }

feed::SymbolInfo SyntheticFeed::symbol(std::uint32_t index, std::uint32_t symbols) {
  if (symbols <= 1) return symbol();
  return {index, "SYN" + std::to_string(index), kPriceScale, 1};
}

// xoshiro256**: small, fast, and the same sequence everywhere (std:: distributions are not portable).
std::uint64_t SyntheticFeed::random() noexcept {
  const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const std::uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

double SyntheticFeed::uniform() noexcept { return static_cast<double>(random() >> 11) * 0x1.0p-53; }

std::uint64_t SyntheticFeed::below(std::uint64_t n) noexcept { return random() % n; }

void SyntheticFeed::emit(Event& out) {
  // Exponential gaps, at least 1 ns so timestamps strictly increase.
  const double gap = -std::log(1.0 - uniform()) * 1e9 / options_.rate_per_s;
  ts_ns_ += 1 + static_cast<std::int64_t>(gap);
  out.ts_ns = ts_ns_;
  book_.apply(out);
  ++produced_;
}

void SyntheticFeed::add(Side side, Event& out) {
  const bool bid = side == Side::kBuy;
  const std::int64_t tick = options_.tick;
  std::int64_t price;
  if (book_.empty(side)) {
    const Side other = feed::opposite(side);
    const std::int64_t anchor = book_.empty(other) ? options_.start_price : book_.level(other, 0).price;
    price = bid ? anchor - tick : anchor + tick;
  } else {
    // Distance from the best price: 0 improves the quote by a tick (when the spread allows), 1 joins it,
    // deeper levels are geometrically rarer.
    std::int64_t distance = 0;
    while (distance < 15 && uniform() < 0.7) ++distance;
    const std::int64_t best = book_.level(side, 0).price;
    price = bid ? best + tick - distance * tick : best - tick + distance * tick;
    const Side other = feed::opposite(side);
    if (!book_.empty(other)) {
      const std::int64_t opposite_best = book_.level(other, 0).price;
      if (bid && price >= opposite_best) price = opposite_best - tick;
      if (!bid && price <= opposite_best) price = opposite_best + tick;
    }
  }
  const std::uint64_t id = next_id_++;
  const std::int64_t qty = kLot * static_cast<std::int64_t>(1 + below(10));
  out = Event{};
  out.kind = EventKind::kAdd;
  out.order_id = id;
  out.side = side;
  out.price = price;
  out.qty = qty;
  position_.push_back(static_cast<std::uint32_t>(live_.size()));
  live_.push_back(Live{id, side, price, qty});
  emit(out);
}

void SyntheticFeed::forget(std::size_t index) {
  const Live last = live_.back();
  live_[index] = last;
  position_[last.id] = static_cast<std::uint32_t>(index);
  live_.pop_back();
}

bool SyntheticFeed::cancel(Event& out) {
  if (live_.empty()) return false;
  const std::size_t index = below(live_.size());
  Live& order = live_[index];
  if (book_.depth(order.side) <= kMinLevels && order.price == book_.level(order.side, 0).price) return false;
  out = Event{};
  out.order_id = order.id;
  out.side = order.side;
  out.price = order.price;
  if (order.qty >= 2 * kLot && uniform() < 0.3) {
    out.kind = EventKind::kCancel;
    out.qty = order.qty / (2 * kLot) * kLot;
    order.qty -= out.qty;
  } else {
    out.kind = EventKind::kDelete;
    out.qty = order.qty;
    forget(index);
  }
  emit(out);
  return true;
}

bool SyntheticFeed::execute(Event& out) {
  const Side resting = uniform() < 0.5 ? Side::kBuy : Side::kSell;
  if (book_.depth(resting) <= kMinLevels) return false;
  const std::int64_t best = book_.level(resting, 0).price;
  // The most recent order at the best price: new orders cluster at the top, so this scan is short.
  for (std::size_t i = live_.size(); i-- > 0;) {
    Live& order = live_[i];
    if (order.side != resting || order.price != best) continue;
    out = Event{};
    out.kind = EventKind::kExecute;
    out.order_id = order.id;
    out.side = resting;
    out.price = best;
    out.qty = std::min(order.qty, kLot * static_cast<std::int64_t>(1 + below(5)));
    order.qty -= out.qty;
    if (order.qty == 0) forget(i);
    emit(out);
    return true;
  }
  return false;
}

void SyntheticFeed::hidden_trade(Event& out) {
  const Side passive = uniform() < 0.5 ? Side::kBuy : Side::kSell;
  out = Event{};
  out.kind = EventKind::kTrade;
  out.side = passive;
  out.price = book_.level(passive, 0).price;
  out.qty = kLot;
  emit(out);
}

bool SyntheticFeed::next(Event& out) {
  if (produced_ >= options_.events) return false;
  // Seed: both sides ten levels deep, two orders per level.
  if (produced_ < 4 * kSeedLevels) {
    const std::size_t level = static_cast<std::size_t>(produced_ / 4);
    const Side side = produced_ % 2 == 0 ? Side::kBuy : Side::kSell;
    const std::int64_t offset = options_.tick * static_cast<std::int64_t>(level + 1);
    const std::uint64_t id = next_id_++;
    out = Event{};
    out.kind = EventKind::kAdd;
    out.order_id = id;
    out.side = side;
    out.price = side == Side::kBuy ? options_.start_price - offset : options_.start_price + offset;
    out.qty = kLot * static_cast<std::int64_t>(1 + below(10));
    position_.push_back(static_cast<std::uint32_t>(live_.size()));
    live_.push_back(Live{id, side, out.price, out.qty});
    emit(out);
    return true;
  }
  if (book_.depth(Side::kBuy) < kMinLevels) return add(Side::kBuy, out), true;
  if (book_.depth(Side::kSell) < kMinLevels) return add(Side::kSell, out), true;
  for (;;) {
    const double r = uniform();
    if (r < 0.45) return add(uniform() < 0.5 ? Side::kBuy : Side::kSell, out), true;
    if (r < 0.80) {
      if (cancel(out)) return true;
    } else if (r < 0.97) {
      if (execute(out)) return true;
    } else {
      hidden_trade(out);
      return true;
    }
  }
}

namespace {

void check_multi(const SyntheticOptions& o) {
  if (o.symbols < 1 || o.symbols > SyntheticOptions::kMaxSymbols)
    throw Error(ErrorCode::kInvalidConfig, "synthetic feed: symbols must be 1.." +
                                               std::to_string(SyntheticOptions::kMaxSymbols) + ", got " +
                                               std::to_string(o.symbols));
  if (!(o.zipf >= 0.0) || !std::isfinite(o.zipf))
    throw Error(ErrorCode::kInvalidConfig, "synthetic feed: zipf must be a finite number >= 0");
  if (!(o.burst_probability >= 0.0 && o.burst_probability < 1.0))
    throw Error(ErrorCode::kInvalidConfig, "synthetic feed: burst_probability must be in [0, 1)");
  if (o.burst_events < 1 || !(o.burst_speedup >= 1.0) || !std::isfinite(o.burst_speedup))
    throw Error(ErrorCode::kInvalidConfig, "synthetic feed: burst_events must be >= 1 and burst_speedup >= 1");
}

// Many symbols: which one each event goes to (Zipf), and when it arrives (bursts), from a generator of its own so
// every symbol's book sees the same events whatever the interleaving.
std::vector<feed::Event> generate_multi(const SyntheticOptions& options) {
  check_multi(options);
  if (options.rate_per_s <= 0.0 || !std::isfinite(options.rate_per_s))
    throw Error(ErrorCode::kInvalidConfig, "synthetic feed: rate_per_s must be > 0");
  std::vector<SyntheticFeed> books;
  books.reserve(options.symbols);
  std::uint64_t seeds = options.seed ^ 0x5EED5EED5EED5EEDull;
  for (std::uint32_t k = 0; k < options.symbols; ++k) {
    SyntheticOptions one = options;
    one.seed = splitmix64(seeds);
    books.emplace_back(one);  // events = the total: a book never runs out first
  }
  std::vector<double> cumulative(options.symbols);
  double total = 0;
  for (std::uint32_t k = 0; k < options.symbols; ++k)
    cumulative[k] = total += std::pow(static_cast<double>(k) + 1.0, -options.zipf);

  std::uint64_t state = splitmix64(seeds);
  auto uniform = [&state] { return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53; };
  std::vector<feed::Event> events;
  events.reserve(options.events);
  std::int64_t ts = kStartTsNs;
  std::uint32_t burst_left = 0;
  Event e{};
  while (events.size() < options.events) {
    const double pick = uniform() * total;
    const auto k = static_cast<std::uint32_t>(std::min<std::size_t>(
        static_cast<std::size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), pick) - cumulative.begin()),
        options.symbols - 1));
    books[k].next(e);
    if (burst_left == 0 && options.burst_probability > 0 && uniform() < options.burst_probability)
      burst_left = options.burst_events;
    const double rate = burst_left > 0 ? options.rate_per_s * options.burst_speedup : options.rate_per_s;
    if (burst_left > 0) --burst_left;
    ts += 1 + static_cast<std::int64_t>(-std::log(1.0 - uniform()) * 1e9 / rate);
    e.ts_ns = ts;
    e.symbol = k;
    events.push_back(e);
  }
  return events;
}

}  // namespace

std::vector<feed::Event> generate_synthetic(const SyntheticOptions& options) {
  if (options.symbols != 1 || options.burst_probability != 0.0) return generate_multi(options);
  check_multi(options);
  SyntheticFeed feed(options);
  std::vector<feed::Event> events;
  events.reserve(options.events);
  Event e{};
  while (feed.next(e)) events.push_back(e);
  return events;
}

}  // namespace tickinfer::replay
