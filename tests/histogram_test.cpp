#include "tickinfer/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>
#include <vector>

#include "tickinfer/metrics.hpp"

namespace tickinfer {
namespace {

TEST(LatencyHistogram, BucketsKeepRelativeErrorBelowOnePercentFromNanosecondsToMinutes) {
  for (std::uint64_t v = 1; v < (std::uint64_t{1} << 40); v = v * 3 / 2 + 1) {
    const std::size_t b = LatencyHistogram::bucket_of(v);
    const std::uint64_t lower = LatencyHistogram::bucket_lower(b);
    const std::uint64_t width = LatencyHistogram::bucket_width(b);
    ASSERT_LE(lower, v) << v;
    ASSERT_LT(v, lower + width) << v;
    const auto mid = static_cast<double>(lower + width / 2);  // what percentile() reports
    ASSERT_LE(std::abs(mid - static_cast<double>(v)) / static_cast<double>(v), 0.01) << v;
  }
}

TEST(LatencyHistogram, ValuesBeyondRangeLandInTheLastBucketAndNegativesInTheFirst) {
  EXPECT_EQ(LatencyHistogram::bucket_of(~std::uint64_t{0}), LatencyHistogram::kBuckets - 1);
  LatencyHistogram h;
  h.record(-5);
  EXPECT_EQ(h.snapshot().counts[0], 1u);
}

TEST(LatencyHistogram, PercentilesMatchSortedSamplesWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(9.0, 1.0);  // ~8 us median, long tail
  std::vector<std::int64_t> samples(100000);
  LatencyHistogram h;
  for (auto& s : samples) {
    s = static_cast<std::int64_t>(dist(rng));
    h.record(s);
  }
  std::sort(samples.begin(), samples.end());
  const auto snap = h.snapshot();
  EXPECT_EQ(snap.count, samples.size());
  EXPECT_EQ(snap.min, static_cast<std::uint64_t>(samples.front()));
  EXPECT_EQ(snap.max, static_cast<std::uint64_t>(samples.back()));
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto exact =
        static_cast<double>(samples[static_cast<std::size_t>(q * static_cast<double>(samples.size())) - 1]);
    EXPECT_NEAR(static_cast<double>(snap.percentile(q)), exact, exact * 0.01) << q;
  }
}

TEST(LatencyHistogram, ConcurrentRecordersLoseNoCounts) {
  LatencyHistogram h;
  constexpr int kThreads = 8, kPerThread = 200000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&h, t] {
      for (int i = 0; i < kPerThread; ++i) h.record(1000 + t * 10 + i % 7);
    });
  for (auto& t : threads) t.join();
  const auto snap = h.snapshot();
  EXPECT_EQ(snap.count, std::uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(snap.min, 1000u);
  EXPECT_EQ(snap.max, 1000u + 70u + 6u);
}

TEST(LatencyHistogram, ExclusiveRecordMatchesSharedRecord) {
  LatencyHistogram shared, exclusive;
  for (int i = 1; i < 100000; i += 7) {
    shared.record(i);
    exclusive.record_exclusive(i);
  }
  const auto a = shared.snapshot(), b = exclusive.snapshot();
  EXPECT_EQ(a.counts, b.counts);
  EXPECT_EQ(a.sum, b.sum);
  EXPECT_EQ(a.min, b.min);
  EXPECT_EQ(a.max, b.max);
}

TEST(HistogramSnapshot, MergeAddsCountsAndKeepsExtremes) {
  LatencyHistogram a, b;
  a.record(100);
  b.record(5);
  b.record(1000000);
  auto merged = a.snapshot();
  merged.merge(b.snapshot());
  EXPECT_EQ(merged.count, 3u);
  EXPECT_EQ(merged.min, 5u);
  EXPECT_EQ(merged.max, 1000000u);
  EXPECT_EQ(merged.sum, 1000105u);
}

TEST(HistogramSnapshot, EmptySnapshotReportsZeros) {
  LatencyHistogram h;
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.percentile(0.99), 0u);
  EXPECT_EQ(s.min, 0u);
}

TEST(Metrics, PrometheusTextNamesEveryStageCounterAndBatchSize) {
  Metrics m(8, 2);
  m.worker(0).end_to_end.record_exclusive(2000);
  m.worker(1).end_to_end.record_exclusive(4000);
  m.worker(0).record_batch_size(3);
  m.accepted.add(2);
  m.rejected.add(1);
  const auto snap = m.snapshot();
  EXPECT_EQ(snap.end_to_end.count, 2u);
  EXPECT_EQ(snap.batch_sizes[3], 1u);
  const std::string text = to_prometheus(snap);
  for (const char* needle :
       {"tickinfer_end_to_end_seconds_count 2", "tickinfer_queue_wait_seconds{quantile=\"0.99\"}",
        "tickinfer_forward_seconds_sum", "tickinfer_requests_accepted_total 2", "tickinfer_requests_rejected_total 1",
        "tickinfer_requests_completed_total{status=\"expired\"} 0", "tickinfer_batch_size_bucket{le=\"4\"} 1",
        "tickinfer_batch_size_bucket{le=\"+Inf\"} 1", "# TYPE tickinfer_batch_size histogram"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << "\n" << text;
  }
}

}  // namespace
}  // namespace tickinfer
