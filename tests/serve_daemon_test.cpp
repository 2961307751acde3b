// tickinfer-serve's feed path (lib/src/serve/daemon) allocates nothing per datagram once every instrument has been
// seen: MoldUDP64 sequencing, capture decode, book, features, then either the pipeline (batched mode: submit, the
// worker's batch, the result ring) or the native engine on the feed thread (direct mode: predict, the UDP record),
// and the output thread's records. This binary replaces the allocation functions (support/count_malloc.hpp) and
// counts every call on every thread while g_counting is set.

#include <gtest/gtest.h>

#include "support/count_malloc.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "serve/daemon/config.hpp"
#include "serve/daemon/feed_intake.hpp"
#include "serve/daemon/record_output.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/features/schema.hpp"
#include "tickinfer/feed/moldudp64.hpp"
#include "tickinfer/model_slot.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/replay/synthetic.hpp"
#include "tickinfer/torchscript.hpp"

namespace tickinfer::daemon {
namespace {

constexpr std::uint32_t kSymbols = 4;
constexpr std::size_t kWarmUp = 12000, kMeasured = 12000;

// One MoldUDP64 packet per event of a 4-symbol synthetic feed (round robin), sequences from 1.
std::vector<std::vector<unsigned char>> datagrams(std::size_t n, const char* session = "ALLOC") {
  std::vector<std::unique_ptr<replay::SyntheticFeed>> feeds;
  for (std::uint32_t k = 0; k < kSymbols; ++k) {
    replay::SyntheticOptions o;
    o.seed = 7 + k;
    o.events = n;
    feeds.push_back(std::make_unique<replay::SyntheticFeed>(o));
  }
  feed::MoldPacketWriter writer(session);
  std::vector<std::vector<unsigned char>> out;
  for (std::size_t i = 0; i < n; ++i) {
    feed::Event e{};
    EXPECT_TRUE(feeds[i % kSymbols]->next(e));
    e.symbol = static_cast<std::uint32_t>(i % kSymbols);
    unsigned char bytes[sizeof e];
    std::memcpy(bytes, &e, sizeof e);
    EXPECT_EQ(writer.append(bytes), feed::MoldAppend::kAppended);
    const auto p = writer.packet();
    out.emplace_back(p.begin(), p.end());
    writer.next_packet();
  }
  return out;
}

struct Daemon {
  /// `output_thread`: records to UDP by an Output thread; else (direct mode) results stay in `ring` for the test.
  explicit Daemon(const std::string& mode, bool with_output_thread = true) {
    c.mode = mode;
    c.feed_format = "capture";
    c.feed_listen = {"127.0.0.1", 0};
    c.keys = 64;
    c.queue_capacity = 32768;  // more than a pass: the feed below outruns the worker, and nothing may be shed
    c.max_batch = 16;
    c.max_delay_us = 0;
    c.price_scale = replay::SyntheticFeed::kPriceScale;
    c.predictions_udp = {"127.0.0.1", 9};  // discard: nobody listens, the sends still happen
    c.predictions_tcp = {};
    LoadOptions load;
    load.engine = Engine::kNative;
    auto model = load_torchscript(std::string(TICKINFER_TEST_MODEL_DIR) + "/replay_mlp.pt", load);
    check_schema(model->metadata(), schema);
    slot = std::make_shared<ModelSlot>(model);
    PipelineConfig pc;
    pc.keys = c.keys;
    pc.max_batch = c.max_batch;
    pc.max_delay_us = c.max_delay_us;
    pc.queue_capacity = c.queue_capacity;
    pc.workers = 1;
    pipeline = Pipeline::create(pc, slot, make_cpu_backend());
    ring = std::make_unique<ResultQueue>(c.queue_capacity + c.max_batch + 1, model->output_width());
    times = std::make_unique<SubmitSlots>(2 * (c.queue_capacity + c.max_batch) + 2);
    names = std::make_unique<SymbolNames>(c.keys);
    udp = std::make_unique<UdpSender>(c);
    const bool direct = c.direct();
    feed = std::make_unique<Feed>(
        c, schema, *pipeline, *ring, *times, *names, quiet, slot,
        DirectOutputs{direct && with_output_thread ? udp.get() : nullptr, direct ? ring.get() : nullptr});
    if (!with_output_thread) return;
    output = std::make_unique<Output>(c, *ring, model->output_width(), *times, *names, quiet,
                                      direct ? nullptr : udp.get(), !direct);
    output_thread = std::thread([this] { output->run(stop); });
  }
  ~Daemon() {
    stop.store(true, std::memory_order_release);
    if (output_thread.joinable()) output_thread.join();
    feed.reset();  // its producer before the pipeline
  }
  // Until the output thread made `n` records (at most 60 s).
  bool until_records(std::uint64_t n) {
    const std::int64_t give_up = now_ns() + 60'000'000'000;
    while (output->counters.records.load() < n) {
      if (now_ns() > give_up) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
  }

  ServeConfig c;
  features::FeatureSchema schema =
      features::load_feature_config(std::string(TICKINFER_SOURCE_DIR) + "/configs/default.toml");
  LogSink quiet = [](const LogRecord&) {};
  std::shared_ptr<ModelSlot> slot;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<ResultQueue> ring;
  std::unique_ptr<SubmitSlots> times;
  std::unique_ptr<SymbolNames> names;
  std::unique_ptr<UdpSender> udp;
  std::unique_ptr<Feed> feed;
  std::unique_ptr<Output> output;
  std::atomic<bool> stop{false};
  std::thread output_thread;
};

void expect_no_allocation_after_warm_up(const std::string& mode) {
  const auto packets = datagrams(kWarmUp + kMeasured);
  Daemon d(mode);
  for (std::size_t i = 0; i < kWarmUp; ++i) d.feed->handle(packets[i], now_ns());
  ASSERT_TRUE(d.until_records(kWarmUp));

  g_allocations.store(0);
  g_counting.store(true);
  for (std::size_t i = kWarmUp; i < packets.size(); ++i) d.feed->handle(packets[i], now_ns());
  const bool all = d.until_records(packets.size());
  g_counting.store(false);
  ASSERT_TRUE(all) << d.output->counters.records.load() << " records of " << packets.size();

  EXPECT_EQ(g_allocations.load(), 0u) << mode << " mode: allocations while " << kMeasured << " datagrams were handled";
  const auto& fc = d.feed->counters;
  EXPECT_EQ(fc.datagrams.load(), packets.size());
  EXPECT_EQ(fc.events.load(), packets.size());
  EXPECT_EQ(fc.submitted.load(), packets.size());
  EXPECT_EQ(fc.gaps.load() + fc.malformed.load() + fc.decode_failures.load() + fc.rejected.load(), 0u);
  const std::uint64_t ok = mode == "direct" ? fc.ok.load() : d.pipeline->metrics().snapshot().ok;
  EXPECT_EQ(ok, packets.size());
  EXPECT_EQ(d.udp->datagrams.load() + d.udp->errors.load() > 0, true);
}

#if defined(TICKINFER_COUNT_MALLOC) || defined(TICKINFER_SANITIZED)
TEST(ServeDaemonFeed, BatchedModeAllocatesNothingPerDatagramAfterWarmUp) {
  expect_no_allocation_after_warm_up("batched");
}

TEST(ServeDaemonFeed, DirectModeAllocatesNothingPerDatagramAfterWarmUp) {
  expect_no_allocation_after_warm_up("direct");
}
#endif

// Pops every waiting result: each row's outputs, then its status.
std::vector<float> take_results(ResultQueue& ring, std::size_t width) {
  std::vector<float> all, outputs(width);
  PolledResult r;
  while (ring.try_pop(r, outputs)) {
    all.insert(all.end(), outputs.begin(), outputs.end());
    all.push_back(static_cast<float>(r.status));
  }
  return all;
}

TEST(ServeDaemonFeed, ANewSessionStartsFromEmptyBooksSoTheSameDayAgainPredictsTheSame) {
  Daemon d("direct", false);
  const std::size_t width = d.slot->current()->output_width();
  for (const auto& p : datagrams(2000, "DAY1")) d.feed->handle(p, now_ns());
  const std::vector<float> first = take_results(*d.ring, width);
  ASSERT_EQ(first.size(), 2000 * (width + 1));
  // The same events again, as the next session (sequences from 1 again): not duplicates, and not applied on top of
  // the first session's books.
  for (const auto& p : datagrams(2000, "DAY2")) d.feed->handle(p, now_ns());
  EXPECT_EQ(take_results(*d.ring, width), first);
  EXPECT_EQ(d.feed->counters.duplicate_packets.load(), 0u);
  EXPECT_EQ(d.feed->counters.ok.load(), 4000u);
}

// A Feed in direct mode over `model_file` (loaded with `engine`): what its constructor throws.
void expect_direct_mode_refused(const std::string& model_file, Engine engine, const std::string& message) {
  ServeConfig c;
  c.mode = "direct";
  c.feed_format = "capture";
  c.feed_listen = {"127.0.0.1", 0};
  c.keys = 8;
  LoadOptions load;
  load.engine = engine;
  auto model = load_torchscript(std::string(TICKINFER_TEST_MODEL_DIR) + "/" + model_file, load);
  auto slot = std::make_shared<ModelSlot>(model);
  PipelineConfig pc;
  pc.keys = c.keys;
  auto pipeline = Pipeline::create(pc, slot, make_cpu_backend());
  const auto schema = features::load_feature_config(std::string(TICKINFER_SOURCE_DIR) + "/configs/default.toml");
  ResultQueue ring(16, model->output_width());
  SubmitSlots times(64);
  SymbolNames names(c.keys);
  try {
    Feed feed(c, schema, *pipeline, ring, times, names, [](const LogRecord&) {}, slot, {});
    FAIL() << model_file << " was taken for direct mode";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(ServeDaemonFeed, DirectModeRefusesASequenceModel) {
  expect_direct_mode_refused("replay_gru.pt", Engine::kAuto,
                             "pipeline.mode = \"direct\" predicts each event on its own; a sequence model (state per "
                             "instrument) needs pipeline.mode = \"batched\"");
}

TEST(ServeDaemonFeed, DirectModeRefusesAModelWithoutANativePlan) {
  expect_direct_mode_refused("replay_mlp.pt", Engine::kLibTorch,
                             "pipeline.mode = \"direct\" runs the native engine, and the model has no native plan");
}

}  // namespace
}  // namespace tickinfer::daemon
