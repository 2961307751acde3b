// Feature pipeline: every feature against hand-computed values, the schema hash, config errors, schema
// checks, the synthetic feed, and replay sources (Torch-free).

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>

#include <unistd.h>
#include <string>
#include <vector>

#include "feed_test_support.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/features/engine.hpp"
#include "tickinfer/features/schema.hpp"
#include "tickinfer/feed/capture_convert.hpp"
#include "tickinfer/feed/lobster.hpp"
#include "tickinfer/replay/replay.hpp"
#include "tickinfer/replay/source.hpp"
#include "tickinfer/replay/synthetic.hpp"

// Counts heap allocations so the per-event paths can be checked allocation-free. GCC cannot see that this
// operator new is malloc, so it flags the matching free.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
static std::atomic<std::uint64_t> g_allocations{0};
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace tickinfer::features {
namespace {

using feed::Event;
using feed::EventKind;
using feed::OrderBook;
using feed::Side;

constexpr std::int64_t kScale = 10'000;
constexpr std::int64_t kMs = 1'000'000;

std::int64_t px(double dollars) { return std::llround(dollars * kScale); }

FeatureSpec spec(const char* name, FeatureKind kind) {
  FeatureSpec s;
  s.name = name;
  s.kind = kind;
  return s;
}

FeatureSpec windowed(const char* name, FeatureKind kind, std::uint32_t events, std::int64_t ns = 0,
                     std::uint32_t capacity = kDefaultWindowCapacity) {
  FeatureSpec s = spec(name, kind);
  s.window.events = events;
  s.window.ns = ns;
  s.window.capacity = ns != 0 ? capacity : 0;
  return s;
}

// bids 100.00 x 300, 99.99 x 200, 99.98 x 100; asks 100.02 x 100, 100.03 x 400.
OrderBook small_book() {
  OrderBook book;
  std::uint64_t id = 1;
  book.add(id++, Side::kBuy, px(100.00), 300);
  book.add(id++, Side::kBuy, px(99.99), 200);
  book.add(id++, Side::kBuy, px(99.98), 100);
  book.add(id++, Side::kSell, px(100.02), 100);
  book.add(id++, Side::kSell, px(100.03), 400);
  return book;
}

std::vector<float> run(FeatureEngine& engine, std::int64_t ts, const OrderBook& book, TradeSign trade = {}) {
  std::vector<float> out(engine.width());
  engine.update(ts, book, trade, out);
  return out;
}

TEST(Features, BookFeaturesMatchHandComputedValues) {
  FeatureSpec spread_bps = spec("spread_bps", FeatureKind::kSpread),
              micro_bps = spec("micro_bps", FeatureKind::kMicroprice);
  spread_bps.unit = micro_bps.unit = PriceUnit::kBps;
  FeatureSpec imb1 = spec("imb1", FeatureKind::kImbalance), imb2 = imb1, imb3 = imb1, imb9 = imb1;
  imb2.name = "imb2", imb2.levels = 2, imb3.name = "imb3", imb3.levels = 3, imb9.name = "imb9", imb9.levels = 9;
  FeatureEngine engine(FeatureSchema({spec("mid", FeatureKind::kMid), spec("spread", FeatureKind::kSpread), spread_bps,
                                      spec("micro", FeatureKind::kMicroprice), micro_bps, imb1, imb2, imb3, imb9}),
                       {kScale, 1});
  const auto v = run(engine, 0, small_book());
  EXPECT_FLOAT_EQ(v[0], 100.01f);                                   // (100.00 + 100.02) / 2
  EXPECT_FLOAT_EQ(v[1], 0.02f);                                     // 100.02 - 100.00
  EXPECT_FLOAT_EQ(v[2], static_cast<float>(0.02 / 100.01 * 1e4));   // 1.9998 bps
  EXPECT_FLOAT_EQ(v[3], 100.015f);                                  // (100.00 * 100 + 100.02 * 300) / 400
  EXPECT_FLOAT_EQ(v[4], static_cast<float>(0.005 / 100.01 * 1e4));  // microprice - mid, in bps of mid
  EXPECT_FLOAT_EQ(v[5], 0.5f);                                      // (300 - 100) / 400
  EXPECT_FLOAT_EQ(v[6], 0.0f);                                      // (500 - 500) / 1000
  EXPECT_FLOAT_EQ(v[7], 100.0f / 1100.0f);                          // (600 - 500) / 1100
  EXPECT_FLOAT_EQ(v[8], 100.0f / 1100.0f);                          // only 3 and 2 levels exist
}

TEST(Features, OneSidedBookReusesTheLastTopOfBook) {
  FeatureEngine engine(FeatureSchema({spec("mid", FeatureKind::kMid), spec("imb", FeatureKind::kImbalance)}),
                       {kScale, 1});
  OrderBook empty;
  EXPECT_EQ(run(engine, 0, empty), (std::vector<float>{0.0f, 0.0f}));  // nothing seen yet
  OrderBook book = small_book();
  run(engine, 1, book);
  book.clear_side(Side::kSell);
  const auto v = run(engine, 2, book);
  EXPECT_FLOAT_EQ(v[0], 100.01f);  // last two-sided mid
  EXPECT_FLOAT_EQ(v[1], 1.0f);     // imbalance reads the book as it is: no asks
}

TEST(Features, OrderFlowImbalanceFollowsContKukanovStoikov) {
  FeatureEngine engine(
      FeatureSchema({windowed("ofi_2", FeatureKind::kOfi, 2), windowed("ofi_9", FeatureKind::kOfi, 9)}), {kScale, 1});
  OrderBook book;
  book.add(1, Side::kBuy, px(100.00), 300);
  book.add(2, Side::kSell, px(100.02), 100);
  EXPECT_EQ(run(engine, 0, book), (std::vector<float>{0.0f, 0.0f}));  // no previous top yet
  book.add(3, Side::kBuy, px(100.00), 200);                           // bid queue grows: +200
  EXPECT_EQ(run(engine, 1, book), (std::vector<float>{200.0f, 200.0f}));
  book.add(4, Side::kSell, px(100.01), 50);  // ask improves: -50 (new best ask queue)
  EXPECT_EQ(run(engine, 2, book), (std::vector<float>{150.0f, 150.0f}));
  EXPECT_EQ(run(engine, 3, book), (std::vector<float>{-50.0f, 150.0f}));  // no change: +0; window 2 drops +200
  book.remove(1), book.remove(3);                                         // bid drops to nothing ...
  book.add(5, Side::kBuy, px(99.99), 70);                                 // ... then 99.99 x 70: -500
  EXPECT_EQ(run(engine, 4, book), (std::vector<float>{-500.0f, -350.0f}));
}

TEST(Features, TradeFlowSignsByAggressorOverEventAndTimeWindows) {
  FeatureEngine engine(FeatureSchema({windowed("tf_2", FeatureKind::kTradeFlow, 2),
                                      windowed("tf_1ms", FeatureKind::kTradeFlow, 0, kMs)}),
                       {kScale, 1});
  OrderBook book = small_book();
  // An execution of a resting bid (id 1, side only in the book) is a sell: -100.
  Event exec{};
  exec.kind = EventKind::kExecute;
  exec.order_id = 1;
  exec.qty = 100;
  const TradeSign sell = classify_trade(exec, book);
  EXPECT_EQ(sell.aggressor, Side::kSell);
  Event hidden{};
  hidden.kind = EventKind::kTrade;
  hidden.side = Side::kSell;  // passive side: the buyer aggressed
  hidden.qty = 200;
  const TradeSign buy = classify_trade(hidden, book);
  EXPECT_EQ(buy.aggressor, Side::kBuy);
  Event tardis = hidden;
  tardis.aux = 'S';  // the aggressor, when the feed names it
  EXPECT_EQ(classify_trade(tardis, book).aggressor, Side::kSell);

  EXPECT_EQ(run(engine, 0, book, sell), (std::vector<float>{-100.0f, -100.0f}));
  EXPECT_EQ(run(engine, kMs / 2, book, buy), (std::vector<float>{100.0f, 100.0f}));
  EXPECT_EQ(run(engine, kMs, book), (std::vector<float>{200.0f, 200.0f}));  // t=0 left (0, 1ms]
  EXPECT_EQ(run(engine, kMs + kMs / 2, book), (std::vector<float>{0.0f, 0.0f}));
}

TEST(Features, TimeWindowRingDropsOldestWhenFull) {
  FeatureEngine engine(FeatureSchema({windowed("tf", FeatureKind::kTradeFlow, 0, 10 * kMs, /*capacity=*/2)}),
                       {kScale, 1});
  OrderBook book = small_book();
  run(engine, 0, book, {Side::kBuy, 1});
  run(engine, 1, book, {Side::kBuy, 10});
  EXPECT_EQ(run(engine, 2, book, {Side::kBuy, 100}), std::vector<float>{110.0f});
  EXPECT_EQ(engine.window_overflows(), 1u);
}

TEST(Features, ReturnsOverEventAndTimeWindows) {
  FeatureEngine engine(
      FeatureSchema({windowed("r2", FeatureKind::kReturn, 2), windowed("r1ms", FeatureKind::kReturn, 0, kMs)}),
      {kScale, 1});
  auto book_at = [](double bid) {
    OrderBook b;
    b.add(1, Side::kBuy, px(bid), 100);
    b.add(2, Side::kSell, px(bid + 0.02), 100);
    return b;
  };
  EXPECT_EQ(run(engine, 0, book_at(99.99)), (std::vector<float>{0.0f, 0.0f}));  // mid 100.00
  run(engine, kMs * 6 / 10, book_at(100.99));                                   // mid 101.00
  auto v = run(engine, kMs * 12 / 10, book_at(101.99));                         // mid 102.00
  EXPECT_FLOAT_EQ(v[0], static_cast<float>((102.0 / 100.0 - 1.0) * 1e4));       // 2 events back
  EXPECT_FLOAT_EQ(v[1], static_cast<float>((102.0 / 100.0 - 1.0) * 1e4));       // mid at 0.2 ms was 100
  v = run(engine, kMs * 17 / 10, book_at(102.99));                              // mid 103.00
  EXPECT_FLOAT_EQ(v[0], static_cast<float>((103.0 / 101.0 - 1.0) * 1e4));
  EXPECT_FLOAT_EQ(v[1], static_cast<float>((103.0 / 101.0 - 1.0) * 1e4));  // mid at 0.7 ms was 101
}

TEST(Features, ZscoreThenClip) {
  FeatureSpec s = spec("mid", FeatureKind::kMid);
  s.zscore = true, s.mean = 100.0, s.stddev = 0.005;
  FeatureSpec clipped = s;
  clipped.name = "mid_clipped";
  clipped.clip = true, clipped.clip_lo = -1.0, clipped.clip_hi = 1.5;
  FeatureEngine engine(FeatureSchema({s, clipped}), {kScale, 1});
  const auto v = run(engine, 0, small_book());
  EXPECT_NEAR(v[0], 2.0f, 1e-4);  // (100.01 - 100) / 0.005
  EXPECT_FLOAT_EQ(v[1], 1.5f);
}

TEST(Features, UpdateAllocatesNothing) {
  FeatureEngine engine(load_feature_config(std::string(TICKINFER_SOURCE_DIR) + "/configs/default.toml"), {kScale, 1});
  replay::SyntheticFeed feed({.seed = 3, .events = 20'000});
  OrderBook book(0, 1 << 14);
  std::vector<float> out(engine.width());
  std::vector<Event> events;
  events.reserve(20'000);
  for (Event e{}; feed.next(e);) events.push_back(e);
  for (std::size_t i = 0; i < 5'000; ++i) book.apply(events[i]);  // let the book grow to working size
  const std::uint64_t before = g_allocations.load();
  for (std::size_t i = 5'000; i < events.size(); ++i) {
    const TradeSign t = classify_trade(events[i], book);
    book.apply(events[i]);
    engine.update(events[i].ts_ns, book, t, out);
  }
  EXPECT_EQ(g_allocations.load() - before, 0u);
}

// ---- schema ----

std::vector<FeatureSpec> three() {
  FeatureSpec imb = spec("imb", FeatureKind::kImbalance);
  imb.levels = 3;
  return {spec("mid", FeatureKind::kMid), imb, windowed("ofi", FeatureKind::kOfi, 10)};
}

TEST(Schema, CanonicalTextAndHashAreStable) {
  const FeatureSchema schema(three());
  EXPECT_EQ(schema.canonical_text(),
            "tickinfer-features/1\n"
            "mid|mid|-|zscore=none|clip=none\n"
            "imb|imbalance|levels=3|zscore=none|clip=none\n"
            "ofi|ofi|events=10|zscore=none|clip=none\n");
  // Pinned (models exported with it must keep loading); Python's baseline_replay.py computes the same.
  EXPECT_EQ(schema.hash(), "fnv1a64:11c57688909e1cc1");
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);  // FNV-1a reference value
  EXPECT_EQ(FeatureSchema(three()).hash(), schema.hash());
}

TEST(Schema, HashChangesWithOrderAndEveryParameter) {
  const std::string base = FeatureSchema(three()).hash();
  auto changed = [&](auto edit) {
    auto specs = three();
    edit(specs);
    return FeatureSchema(specs).hash() != base;
  };
  EXPECT_TRUE(changed([](auto& s) { std::swap(s[0], s[1]); }));
  EXPECT_TRUE(changed([](auto& s) { s[1].levels = 4; }));
  EXPECT_TRUE(changed([](auto& s) { s[2].window.events = 11; }));
  EXPECT_TRUE(changed([](auto& s) { s[2].window = {0, 1000, 64}; }));
  EXPECT_TRUE(changed([](auto& s) { s[0].name = "mid2"; }));
  EXPECT_TRUE(changed([](auto& s) { s[0].zscore = true; }));
  EXPECT_TRUE(changed([](auto& s) { s[0].zscore = true, s[0].mean = 1e-17; }));
  EXPECT_TRUE(changed([](auto& s) { s[0].clip = true, s[0].clip_lo = -1, s[0].clip_hi = 1; }));
  EXPECT_FALSE(changed([](auto&) {}));
}

TEST(Schema, DefaultConfigParses) {
  const auto schema = load_feature_config(std::string(TICKINFER_SOURCE_DIR) + "/configs/default.toml");
  EXPECT_EQ(schema.size(), 11u);
  EXPECT_EQ(schema.names().front(), "spread_bps");
  EXPECT_EQ(schema.features()[7].window.ns, 1'000'000'000);
  EXPECT_EQ(schema.features()[7].window.capacity, 65536u);
}

std::string config_error(const std::string& toml) {
  try {
    parse_feature_config(toml, "test.toml");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
    return e.what();
  }
  return "(accepted)";
}

TEST(Schema, BadConfigsAreRefusedWithTheExactError) {
  EXPECT_EQ(config_error("[[features]]\nname = \"x\"\nkind = \"vwap\"\n"),
            "test.toml: features[0] 'x': unknown kind 'vwap' (known: mid, spread, microprice, imbalance, ofi, "
            "trade_flow, return)");
  EXPECT_EQ(config_error("[[features]]\nname = \"a\"\nkind = \"mid\"\n[[features]]\nname = \"b\"\nkind = "
                         "\"imbalance\"\nlevels = 0\n"),
            "test.toml: features[1] 'b': 'levels' must be in 1..64, got 0");
  EXPECT_EQ(config_error("[[features]]\nname = \"s\"\nkind = \"spread\"\nlevels = 2\n"),
            "test.toml: features[0] 's': key 'levels' does not apply to kind 'spread'");
  EXPECT_EQ(config_error("[[features]]\nname = \"s\"\nkind = \"spread\"\nunits = \"bps\"\n"),
            "test.toml: features[0] 's': unknown key 'units' (known: name, kind, unit, levels, events, window_us, "
            "capacity, zscore, clip)");
  EXPECT_EQ(config_error("[[features]]\nname = \"o\"\nkind = \"ofi\"\n"),
            "test.toml: features[0] 'o': give exactly one of 'events' and 'window_us'");
  EXPECT_EQ(config_error("[[features]]\nname = \"o\"\nkind = \"ofi\"\nevents = 1.5\n"),
            "test.toml: features[0] 'o': 'events' must be an integer");
  EXPECT_EQ(config_error("[[features]]\nname = \"m\"\nkind = \"mid\"\nzscore = { mean = 1.0, std = 0.0 }\n"),
            "test.toml: features[0] 'm': zscore needs a finite mean and a finite std > 0");
  EXPECT_EQ(config_error("[[features]]\nname = \"m\"\nkind = \"mid\"\nclip = [1.0, -1.0]\n"),
            "test.toml: features[0] 'm': clip needs finite bounds [lo, hi] with lo < hi");
  EXPECT_EQ(config_error("[[features]]\nname = \"m\"\nkind = \"mid\"\n[[features]]\nname = \"m\"\nkind = \"mid\"\n"),
            "test.toml: features[1] 'm': duplicate name");
  EXPECT_EQ(config_error("[[features]]\nname = \"a b\"\nkind = \"mid\"\n"),
            "test.toml: features[0] 'a b': name must be non-empty and use only [A-Za-z0-9_.-]");
  EXPECT_EQ(config_error("[[features]]\nkind = \"mid\"\n"), "test.toml: features[0] '': missing 'name' (a string)");
  EXPECT_EQ(config_error("[pipeline]\nmax_batch = 3\n"),
            "test.toml: unknown top-level key 'pipeline' (known: features)");
  EXPECT_EQ(config_error(""), "test.toml: no [[features]] (an array of tables) given");
  EXPECT_EQ(config_error("[[features]\n"), "test.toml:1:12: Error while parsing table header: expected ']', saw '\\n'");
}

ModelMetadata metadata_of(const FeatureSchema& schema) {
  ModelMetadata m;
  m.name = "m";
  m.input_names = schema.names();
  m.feature_schema_hash = schema.hash();
  return m;
}

std::string schema_error(const ModelMetadata& model, const FeatureSchema& schema) {
  try {
    check_schema(model, schema, "m.pt");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSchemaMismatch);
    return e.what();
  }
  return "(accepted)";
}

TEST(Schema, CheckAcceptsTheSameSchemaAndNamesWhatDiffers) {
  const FeatureSchema ours(three());
  EXPECT_EQ(schema_error(metadata_of(ours), ours), "(accepted)");

  auto theirs = three();
  theirs[1].name = "imb_5";
  theirs[1].levels = 5;
  theirs.push_back(spec("extra", FeatureKind::kMid));
  const ModelMetadata model = metadata_of(FeatureSchema(theirs));
  EXPECT_EQ(schema_error(model, ours), "model m.pt: feature schema differs from the pipeline's (hash " +
                                           model.feature_schema_hash + " vs " + ours.hash() +
                                           "): position 1: model 'imb_5', pipeline 'imb'; model only: 'extra'");

  auto shorter = three();
  shorter.pop_back();
  const ModelMetadata model2 = metadata_of(FeatureSchema(shorter));
  EXPECT_NE(schema_error(model2, ours).find("pipeline only: 'ofi'"), std::string::npos);

  auto params = three();
  params[2].window.events = 20;
  EXPECT_NE(schema_error(metadata_of(FeatureSchema(params)), ours)
                .find("same names, so a parameter or normalisation differs"),
            std::string::npos);
}

// ---- the synthetic feed and replay sources ----

TEST(Synthetic, SameSeedSameEventsAndEveryEventAppliesCleanly) {
  const replay::SyntheticOptions options{.seed = 42, .events = 50'000};
  const auto a = replay::generate_synthetic(options);
  const auto b = replay::generate_synthetic(options);
  ASSERT_EQ(a.size(), 50'000u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, replay::generate_synthetic({.seed = 43, .events = 50'000}));
  OrderBook book;
  std::size_t kinds[static_cast<int>(EventKind::kCount)] = {};
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (i > 0) {
      ASSERT_GT(a[i].ts_ns, a[i - 1].ts_ns);
    }
    const auto r = book.apply(a[i]);
    ASSERT_TRUE(r == feed::BookResult::kOk || r == feed::BookResult::kIgnored) << i << ": " << to_string(r);
    ASSERT_FALSE(book.crossed()) << i;
    ++kinds[static_cast<int>(a[i].kind)];
  }
  EXPECT_GE(book.depth(Side::kBuy), 4u);
  EXPECT_GE(book.depth(Side::kSell), 4u);
  for (const auto kind :
       {EventKind::kAdd, EventKind::kCancel, EventKind::kDelete, EventKind::kExecute, EventKind::kTrade})
    EXPECT_GT(kinds[static_cast<int>(kind)], 100u) << feed::to_string(kind);
}

TEST(Synthetic, ManySymbolsAreDeterministicSkewedByZipfAndEachSymbolsEventsApplyCleanlyToItsOwnBook) {
  replay::SyntheticOptions options{.seed = 7, .events = 60'000};
  options.symbols = 8;
  options.zipf = 1.0;
  const auto a = replay::generate_synthetic(options);
  ASSERT_EQ(a.size(), 60'000u);
  EXPECT_EQ(a, replay::generate_synthetic(options));
  std::vector<OrderBook> books(8);
  std::vector<std::size_t> count(8);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (i > 0) {
      ASSERT_GT(a[i].ts_ns, a[i - 1].ts_ns) << i;
    }
    ASSERT_LT(a[i].symbol, 8u);
    ++count[a[i].symbol];
    OrderBook& book = books[a[i].symbol];
    const auto r = book.apply(a[i]);
    ASSERT_TRUE(r == feed::BookResult::kOk || r == feed::BookResult::kIgnored) << i << ": " << to_string(r);
    ASSERT_FALSE(book.crossed()) << i;
  }
  // Zipf s = 1 over 8 symbols: symbol k's share is (1 / (k + 1)) / H(8), H(8) = 2.7179.
  for (std::size_t k = 0; k < 8; ++k) {
    const double expected = 60'000.0 / (static_cast<double>(k) + 1.0) / 2.717857;
    EXPECT_NEAR(static_cast<double>(count[k]), expected, 0.05 * expected + 50) << "symbol " << k;
  }
  options.zipf = 0.0;  // uniform
  const auto uniform = replay::generate_synthetic(options);
  std::vector<std::size_t> flat(8);
  for (const auto& e : uniform) ++flat[e.symbol];
  for (std::size_t k = 0; k < 8; ++k) EXPECT_NEAR(static_cast<double>(flat[k]), 7500.0, 400.0) << "symbol " << k;
  EXPECT_EQ(replay::SyntheticFeed::symbol(3, 8).name, "SYN3");
  EXPECT_EQ(replay::SyntheticFeed::symbol(0, 1).name, "SYNTH");
}

TEST(Synthetic, BurstsCrowdEventsTogetherAtTheSameMeanRateOtherwise) {
  replay::SyntheticOptions calm{.seed = 3, .events = 40'000, .rate_per_s = 10'000};
  calm.symbols = 4;
  replay::SyntheticOptions bursty = calm;
  bursty.burst_probability = 0.002;  // ~80 bursts of 64 events at 100x the rate
  auto short_gaps = [](const std::vector<Event>& events) {
    std::size_t n = 0;  // gaps under 1 us; the mean gap is 100 us
    for (std::size_t i = 1; i < events.size(); ++i) n += events[i].ts_ns - events[i - 1].ts_ns < 1000 ? 1 : 0;
    return n;
  };
  const auto a = replay::generate_synthetic(calm), b = replay::generate_synthetic(bursty);
  EXPECT_LT(short_gaps(a), 600u);    // exponential: P(gap < 1 us) = 1%
  EXPECT_GT(short_gaps(b), 2'500u);  // most of ~5000 burst gaps (mean 1 us) plus the calm ones
}

TEST(Synthetic, BadManySymbolOptionsAreRefusedWithTheExactError) {
  auto error_of = [](replay::SyntheticOptions o) {
    try {
      replay::generate_synthetic(o);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  replay::SyntheticOptions o{.events = 10};
  o.symbols = 0;
  EXPECT_EQ(error_of(o), "synthetic feed: symbols must be 1..4096, got 0");
  o.symbols = 5000;
  EXPECT_EQ(error_of(o), "synthetic feed: symbols must be 1..4096, got 5000");
  o.symbols = 2;
  o.zipf = -1;
  EXPECT_EQ(error_of(o), "synthetic feed: zipf must be a finite number >= 0");
  o.zipf = 1;
  o.burst_probability = 1.0;
  EXPECT_EQ(error_of(o), "synthetic feed: burst_probability must be in [0, 1)");
  o.burst_probability = 0.1;
  o.burst_speedup = 0.5;
  EXPECT_EQ(error_of(o), "synthetic feed: burst_events must be >= 1 and burst_speedup >= 1");
}

replay::SourceOptions source_options(replay::SourceFormat format, std::vector<std::string> paths) {
  replay::SourceOptions o;
  o.format = format;
  o.paths = std::move(paths);
  return o;
}

std::vector<float> features_of(replay::MarketSource& source, const FeatureSchema& schema) {
  const auto symbol = source.symbol();
  FeatureEngine engine(schema, {symbol.price_scale, symbol.qty_scale});
  std::vector<float> all, row(engine.width());
  replay::Tick tick;
  while (const Event* e = source.read()) {
    source.apply(tick);
    EXPECT_EQ(tick.event, e);
    engine.update(e->ts_ns, *tick.book, tick.trade, row);
    all.insert(all.end(), row.begin(), row.end());
  }
  return all;
}

class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / ("tickinfer_features_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const char* name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

TEST(Sources, CaptureOfTheSyntheticFeedReplaysTheSameFeatures) {
  const auto schema = load_feature_config(std::string(TICKINFER_SOURCE_DIR) + "/configs/default.toml");
  replay::SourceOptions options;
  options.synthetic = {.seed = 5, .events = 20'000};
  TempDir dir;
  auto source = replay::MarketSource::open(options);
  EXPECT_EQ(replay::write_capture(*source, dir.file("synth.cap")), 20'000u);

  auto fresh = replay::MarketSource::open(options);
  const auto expected = features_of(*fresh, schema);
  const auto capture = source_options(replay::SourceFormat::kCapture, {dir.file("synth.cap")});
  auto replayed = replay::MarketSource::open(capture);
  EXPECT_EQ(replayed->size_hint(), 20'000u);
  EXPECT_EQ(replayed->symbol().name, "SYNTH");
  EXPECT_EQ(features_of(*replayed, schema), expected);
  EXPECT_EQ(replayed->stats().book_warnings, 0u);
}

std::string amzn_messages() {
  return std::string(TICKINFER_SOURCE_DIR) +
         "/../shared/data/lobster-amzn-l1/AMZN_2012-06-21_34200000_57600000_message_1.csv";
}

std::string orderbook_of(std::string messages) {
  messages.replace(messages.rfind("_message_"), 9, "_orderbook_");
  return messages;
}

TEST(Sources, LobsterCsvAndItsCaptureGiveTheSameFeatures) {
  if (!std::filesystem::exists(amzn_messages())) GTEST_SKIP() << "no LOBSTER data at " << amzn_messages();
  const auto schema = load_feature_config(std::string(TICKINFER_SOURCE_DIR) + "/configs/default.toml");
  const auto csv = source_options(replay::SourceFormat::kLobster, {amzn_messages()});
  TempDir dir;
  auto source = replay::MarketSource::open(csv);
  EXPECT_EQ(replay::write_capture(*source, dir.file("amzn.cap")), 57'515u);
  auto from_csv = replay::MarketSource::open(csv);
  const auto expected = features_of(*from_csv, schema);
  EXPECT_EQ(from_csv->stats().book_syncs, 57'515u);
  EXPECT_EQ(from_csv->stats().parse_issues, 0u);
  const auto capture = source_options(replay::SourceFormat::kCapture, {dir.file("amzn.cap")});
  auto from_capture = replay::MarketSource::open(capture);
  EXPECT_EQ(from_capture->size_hint(), 57'515u);
  EXPECT_EQ(features_of(*from_capture, schema), expected);

  // The feed layer's own converter stores each event's top of book instead (kFlagTopOfBook): level 1 is
  // all this file has, so the features are the same.
  auto reader = feed::LobsterReader::open(amzn_messages(), orderbook_of(amzn_messages()));
  feed::convert_to_capture(reader, dir.file("amzn_top.cap"));
  auto from_top =
      replay::MarketSource::open(source_options(replay::SourceFormat::kCapture, {dir.file("amzn_top.cap")}));
  EXPECT_NE(from_top->describe().find("LOBSTER top of book"), std::string::npos) << from_top->describe();
  EXPECT_EQ(features_of(*from_top, schema), expected);

  // After each sync the book is exactly the orderbook row: spot-check the first row's top of book.
  auto again = replay::MarketSource::open(csv);
  replay::Tick tick;
  ASSERT_NE(again->read(), nullptr);
  again->apply(tick);
  const auto row = again->book_row();
  EXPECT_EQ(tick.book->best_ask().price, row[0]);
  EXPECT_EQ(tick.book->best_ask().qty, row[1]);
  EXPECT_EQ(tick.book->best_bid().price, row[2]);
  EXPECT_EQ(tick.book->best_bid().qty, row[3]);
}

std::string goog_zip() {
  return std::string(TICKINFER_SOURCE_DIR) +
         "/../shared/data/lobster-goog-l10/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip";
}

// Two LOBSTER files of the same day merged by time: each symbol's events arrive in time order, interleaved, and its
// books and features are exactly those of its file replayed alone.
TEST(Sources, TwoLobsterFilesMergedByTimeGiveEachSymbolTheFeaturesOfItsFileAlone) {
  if (!std::filesystem::exists(amzn_messages()) || !std::filesystem::exists(goog_zip()))
    GTEST_SKIP() << "no LOBSTER AMZN and GOOG data";
  const auto schema = load_feature_config(std::string(TICKINFER_SOURCE_DIR) + "/configs/default.toml");
  std::vector<float> alone[2];
  {
    auto amzn = replay::MarketSource::open(source_options(replay::SourceFormat::kLobster, {amzn_messages()}));
    alone[0] = features_of(*amzn, schema);
    auto goog = replay::MarketSource::open(source_options(replay::SourceFormat::kLobster, {goog_zip()}));
    alone[1] = features_of(*goog, schema);
  }
  auto merged =
      replay::MarketSource::open(source_options(replay::SourceFormat::kLobster, {amzn_messages(), goog_zip()}));
  ASSERT_EQ(merged->symbol_count(), 2u);
  EXPECT_EQ(merged->symbol_info(0).name, "AMZN");
  EXPECT_EQ(merged->symbol_info(1).name, "GOOG");
  std::vector<FeatureEngine> engines;
  for (std::uint32_t k = 0; k < 2; ++k)
    engines.emplace_back(schema, Scales{merged->symbol_info(k).price_scale, merged->symbol_info(k).qty_scale});
  std::vector<float> got[2], row(schema.size());
  std::int64_t last_ts = 0;
  std::size_t switches = 0;
  std::uint32_t last_key = 0;
  replay::Tick tick;
  while (const Event* e = merged->read()) {
    ASSERT_GE(e->ts_ns, last_ts) << "merged by time";
    last_ts = e->ts_ns;
    merged->apply(tick);
    ASSERT_LT(tick.key, 2u);
    switches += tick.key != last_key ? 1 : 0;
    last_key = tick.key;
    engines[tick.key].update(e->ts_ns, *tick.book, tick.trade, row);
    got[tick.key].insert(got[tick.key].end(), row.begin(), row.end());
  }
  EXPECT_EQ(got[0], alone[0]) << "AMZN's features";
  EXPECT_EQ(got[1], alone[1]) << "GOOG's features";
  EXPECT_GT(switches, 1000u) << "the two days interleave, not one after the other";
  EXPECT_EQ(merged->stats().events, (alone[0].size() + alone[1].size()) / schema.size());
  EXPECT_EQ(merged->stats().parse_issues, 0u);

  auto error_of = [](const replay::SourceOptions& o) {
    try {
      replay::MarketSource::open(o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(source_options(replay::SourceFormat::kLobster,
                                    {amzn_messages(), goog_zip(), orderbook_of(amzn_messages())})),
            "lobster: merging several files takes message files (*_message_*) or sample zips only, each orderbook "
            "found next to its message file; got '" +
                orderbook_of(amzn_messages()) + "'");
  TempDir dir;
  EXPECT_EQ(error_of(source_options(replay::SourceFormat::kLobster, {amzn_messages(), goog_zip()})), "no error");
  EXPECT_THROW(replay::write_capture(*merged, dir.file("m.cap")), Error);
}

// An ITCH file of three stocks replayed as a symbol list: each listed stock gets its own book, built from the
// spec's messages (add, executions, cancel, replace, delete), and the unlisted stock's messages are skipped.
TEST(Sources, ItchSymbolListReplaysEachListedStockIntoItsOwnBookAndSkipsTheRest) {
  feed::testing::ItchEncoder enc;
  std::int64_t t = 34'200'000'000'000;
  enc.directory(7, ++t, "AAPL");
  enc.directory(8, ++t, "MSFT");
  enc.directory(9, ++t, "IBM");
  enc.add(7, ++t, 1, 'B', 100, "AAPL", 1'500'000);
  enc.add(9, ++t, 50, 'B', 300, "IBM", 1'200'000);  // not replayed
  enc.add(7, ++t, 2, 'B', 200, "AAPL", 1'499'900);
  enc.add(8, ++t, 100, 'S', 10, "MSFT", 3'000'000);
  enc.add(7, ++t, 3, 'S', 150, "AAPL", 1'500'500);
  enc.add(8, ++t, 101, 'B', 40, "MSFT", 2'999'000);
  enc.add_mpid(7, ++t, 4, 'S', 50, "AAPL", 1'500'500, "GSCO");
  enc.executed(7, ++t, 3, 50, 1);                             // AAPL ask 1500500: 200 -> 150
  enc.executed(8, ++t, 101, 15, 2);                           // MSFT bid 2999000: 40 -> 25
  enc.executed_with_price(7, ++t, 1, 30, 3, 'Y', 1'500'000);  // AAPL bid 1500000: 100 -> 70
  enc.cancel(7, ++t, 2, 50);                                  // AAPL bid 1499900: 200 -> 150
  enc.del(9, ++t, 50);                                        // not replayed
  enc.replace(7, ++t, 4, 5, 80, 1'500'400);                   // AAPL ask 50 @ 1500500 -> 80 @ 1500400
  enc.replace(8, ++t, 100, 102, 12, 3'000'100);               // MSFT ask 10 @ 3000000 -> 12 @ 3000100
  enc.del(7, ++t, 1);                                         // AAPL bid 1500000 gone
  TempDir dir;
  const std::string path = dir.file("three.itch");
  std::ofstream(path, std::ios::binary) << enc.bytes();

  auto options = source_options(replay::SourceFormat::kItch, {path});
  options.symbol = "MSFT,AAPL";
  auto source = replay::MarketSource::open(options);
  ASSERT_EQ(source->symbol_count(), 2u);
  EXPECT_EQ(source->symbol_info(0).name, "MSFT");
  EXPECT_EQ(source->symbol_info(1).name, "AAPL");
  EXPECT_EQ(source->describe(), "itch three.itch (2 symbols: MSFT, AAPL)");
  const feed::OrderBook* book[2] = {nullptr, nullptr};
  std::size_t events[2] = {0, 0};
  replay::Tick tick;
  while (const Event* e = source->read()) {
    source->apply(tick);
    ASSERT_LT(tick.key, 2u);
    EXPECT_EQ(e->symbol, tick.key == 0 ? 8u : 7u);
    book[tick.key] = tick.book;
    ++events[tick.key];
  }
  EXPECT_EQ(events[0], 4u);
  EXPECT_EQ(events[1], 9u);
  ASSERT_TRUE(book[0] && book[1] && book[0] != book[1]);
  EXPECT_EQ(book[0]->best_bid(), (feed::Level{2'999'000, 25, 1}));
  EXPECT_EQ(book[0]->best_ask(), (feed::Level{3'000'100, 12, 1}));
  ASSERT_EQ(book[1]->depth(Side::kBuy), 1u);
  EXPECT_EQ(book[1]->best_bid(), (feed::Level{1'499'900, 150, 1}));
  ASSERT_EQ(book[1]->depth(Side::kSell), 2u);
  EXPECT_EQ(book[1]->level(Side::kSell, 0), (feed::Level{1'500'400, 80, 1}));
  EXPECT_EQ(book[1]->level(Side::kSell, 1), (feed::Level{1'500'500, 100, 1}));
  EXPECT_EQ(source->stats().events, 13u);
  EXPECT_EQ(source->stats().book_warnings, 0u);
  EXPECT_EQ(source->stats().skipped, 5u) << "three directory entries and IBM's two messages";

  options.symbol = "*";
  auto all = replay::MarketSource::open(options);
  ASSERT_EQ(all->symbol_count(), 3u);
  EXPECT_EQ(all->symbol_info(2).name, "IBM");
  auto error_of = [&](const std::string& symbols) {
    options.symbol = symbols;
    try {
      replay::MarketSource::open(options);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of("AAPL,,MSFT"), path + ": empty name in the symbol list 'AAPL,,MSFT'");
  EXPECT_EQ(error_of("AAPL,TSLA"), path + ": no symbol 'TSLA'");
  EXPECT_EQ(error_of("AAPL,MSFT,AAPL"), path + ": symbol 'AAPL' named twice");
}

TEST(Sources, DumpFeaturesWritesHeaderAndOneRowPerEvent) {
  const auto schema = load_feature_config(std::string(TICKINFER_SOURCE_DIR) + "/configs/default.toml");
  replay::SourceOptions options;
  options.synthetic = {.seed = 2, .events = 1'000};
  auto source = replay::MarketSource::open(options);
  FeatureEngine engine(schema, {replay::SyntheticFeed::kPriceScale, 1});
  TempDir dir;
  EXPECT_EQ(replay::dump_features(*source, engine, dir.file("f.csv"), 600), 600u);
  std::ifstream in(dir.file("f.csv"));
  std::string header, line;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("index,ts_ns,mid,spread_bps,microprice_offset_bps,", 0), 0u);
  std::size_t rows = 0;
  while (std::getline(in, line)) ++rows;
  EXPECT_EQ(rows, 600u);
}

TEST(Sources, UnknownFormatAndBadPathsAreRefused) {
  EXPECT_THROW(replay::parse_format("csv"), Error);
  auto options = source_options(replay::SourceFormat::kLobster, {});
  EXPECT_THROW(replay::MarketSource::open(options), Error);
  options.paths = {"/nonexistent/x_message_1.csv"};
  try {
    replay::MarketSource::open(options);
    FAIL() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFileNotFound);
  }
}

}  // namespace
}  // namespace tickinfer::features
