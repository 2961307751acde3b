// ResultRing: polled results in order, overflow dropped and counted, and one producer + one consumer thread
// exchanging many results under ThreadSanitizer.

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "support/wait.hpp"
#include "tickinfer/result_ring.hpp"

namespace tickinfer {
namespace {

Result result_with(std::uint64_t tag, std::span<const float> outputs) {
  Result r;
  r.status = ResultStatus::kOk;
  r.tag = tag;
  r.model_version = tag * 10;
  r.outputs = outputs;
  return r;
}

TEST(ResultRing, PopsResultsInPushOrderWithTheirOutputs) {
  ResultRing ring(4, 2);
  const float a[2] = {1, 2}, b[2] = {3, 4};
  ASSERT_TRUE(ring.push(result_with(1, a)));
  ASSERT_TRUE(ring.push(result_with(2, b)));
  PolledResult r;
  float out[2];
  ASSERT_TRUE(ring.try_pop(r, out));
  EXPECT_EQ(r.tag, 1u);
  EXPECT_EQ(r.model_version, 10u);
  EXPECT_EQ(out[1], 2.0f);
  ASSERT_TRUE(ring.try_pop(r, out));
  EXPECT_EQ(r.tag, 2u);
  EXPECT_EQ(out[0], 3.0f);
  EXPECT_FALSE(ring.try_pop(r, out));
}

TEST(ResultRing, AFullRingDropsTheNewResultAndCountsIt) {
  ResultRing ring(2, 1);
  const float v[1] = {5};
  EXPECT_TRUE(ring.push(result_with(1, v)));
  EXPECT_TRUE(ring.push(result_with(2, v)));
  EXPECT_FALSE(ring.push(result_with(3, v)));
  EXPECT_EQ(ring.dropped(), 1u);
  PolledResult r;
  float out[1];
  ASSERT_TRUE(ring.try_pop(r, out));
  EXPECT_EQ(r.tag, 1u) << "the oldest results are kept";
  EXPECT_TRUE(ring.push(result_with(4, v)));
  const float wide[2] = {1, 2};
  EXPECT_FALSE(ring.push(result_with(5, wide))) << "more outputs than the ring holds";
  EXPECT_EQ(ring.dropped(), 2u);
  EXPECT_THROW(ResultRing(0, 1), std::invalid_argument);
}

TEST(ResultRing, OneProducerAndOneConsumerExchangeEveryResultInOrder) {
  ResultRing ring(64, 3);
  const std::uint64_t n = testing::scaled(200000, 20000);
  std::thread producer([&] {
    float v[3];
    for (std::uint64_t i = 0; i < n; ++i) {
      v[0] = v[1] = v[2] = static_cast<float>(i % 4096);
      while (!ring.push(result_with(i, v))) std::this_thread::yield();  // full: this test waits, a worker drops
    }
  });
  std::uint64_t next = 0, bad = 0;
  PolledResult r;
  float out[3];
  while (next < n) {
    if (!ring.try_pop(r, out)) {
      std::this_thread::yield();  // on 2 shared cores a spinning consumer starves the producer
      continue;
    }
    if (r.tag != next || r.output_count != 3 || out[2] != static_cast<float>(next % 4096)) ++bad;
    ++next;
  }
  producer.join();
  EXPECT_EQ(bad, 0u);
  // Pushes the producer retried on a full ring were counted; every result arrived once, in order.
  EXPECT_EQ(next, n);
}

}  // namespace
}  // namespace tickinfer
