// LatestStore: one seqlock slot per key; reads are never torn while writers hammer the same key.

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/wait.hpp"
#include "tickinfer/latest_store.hpp"

namespace tickinfer {
namespace {

TEST(LatestStore, ReadReturnsTheLastWriteOfThatKey) {
  LatestStore store(4, 3);
  const float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
  ASSERT_TRUE(store.write(2, a, 7, 100, 150));
  ASSERT_TRUE(store.write(2, b, 8, 200, 250));
  LatestPrediction p;
  float out[3];
  ASSERT_TRUE(store.read(2, p, out));
  EXPECT_EQ(p.model_version, 8u);
  EXPECT_EQ(p.event_ns, 200);
  EXPECT_EQ(p.prediction_ns, 250);
  EXPECT_EQ(p.updates, 2u);
  EXPECT_EQ(out[0], 4.0f);
  EXPECT_EQ(out[2], 6.0f);
  ASSERT_TRUE(store.read(1, p, out));
  EXPECT_EQ(p.updates, 0u) << "a key never written reads as no update";
}

TEST(LatestStore, WrongKeyOrWidthIsRefused) {
  LatestStore store(2, 2);
  const float v[2] = {1, 2};
  float out[2], wide[3];
  LatestPrediction p;
  EXPECT_FALSE(store.write(2, v, 1, 0, 0));
  EXPECT_FALSE(store.write(0, {v, 1}, 1, 0, 0));
  EXPECT_FALSE(store.read(5, p, out));
  EXPECT_FALSE(store.try_read(0, p, wide));
  EXPECT_THROW(LatestStore(0, 1), std::invalid_argument);
  EXPECT_THROW(LatestStore(1, 0), std::invalid_argument);
}

// Writers store value k in every field of a slot; a torn read would mix two writes.
TEST(LatestStore, ReadsAreNeverTornUnderConcurrentWritersOfTheSameKey) {
  constexpr std::size_t kWidth = 256, kKeys = 3;  // wide slots: a read overlaps a write often
  LatestStore store(kKeys, kWidth);
  const std::uint64_t per_writer = testing::scaled(200000, 5000);
  std::atomic<int> writers_left{4};
  std::atomic<std::uint64_t> torn{0}, reads{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      const std::size_t key = w < 2 ? 0 : static_cast<std::size_t>(w - 1);  // two writers share key 0
      std::vector<float> values(kWidth);
      for (std::uint64_t i = 1; i <= per_writer; ++i) {
        const std::uint64_t k = i * 4 + static_cast<std::uint64_t>(w);
        std::fill(values.begin(), values.end(), static_cast<float>(k % 1000000));
        store.write(key, values, k, static_cast<std::int64_t>(k), static_cast<std::int64_t>(k));
      }
      writers_left.fetch_sub(1);
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      std::vector<float> out(kWidth);
      LatestPrediction p;
      std::size_t key = static_cast<std::size_t>(r);
      do {  // at least one pass, however late this reader starts
        key = (key + 1) % kKeys;
        if (!store.try_read(key, p, out)) continue;
        reads.fetch_add(1, std::memory_order_relaxed);
        if (p.updates == 0) continue;
        bool ok = p.event_ns == static_cast<std::int64_t>(p.model_version) &&
                  p.prediction_ns == static_cast<std::int64_t>(p.model_version);
        for (const float v : out) ok = ok && v == static_cast<float>(p.model_version % 1000000);
        if (!ok) torn.fetch_add(1);
      } while (writers_left.load() > 0);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  LatestPrediction p;
  std::vector<float> out(kWidth);
  ASSERT_TRUE(store.read(0, p, out));
  EXPECT_EQ(p.updates, 2 * per_writer) << "every write to the shared key counted exactly once";
}

}  // namespace
}  // namespace tickinfer
