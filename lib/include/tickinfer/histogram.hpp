#pragma once
// Lock-free log-linear latency histogram: <1% relative error from 1 ns to ~18 minutes.

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <limits>
#include <vector>

namespace tickinfer {

/// Counts of a LatencyHistogram at one moment, with percentile queries.
struct HistogramSnapshot {
  std::vector<std::uint64_t> counts;  // per bucket, LatencyHistogram::kBuckets entries
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::uint64_t min = 0;  // exact; 0 when empty
  std::uint64_t max = 0;  // exact
  /// Value at quantile q in [0, 1] (bucket midpoint, exact min/max at the ends); 0 when empty.
  std::uint64_t percentile(double q) const noexcept;
  double mean() const noexcept { return count ? static_cast<double>(sum) / static_cast<double>(count) : 0.0; }
  /// Adds another snapshot's counts into this one.
  void merge(const HistogramSnapshot& other);
};

/// Values are nanoseconds. record() is wait-free and allocation-free; any number of threads may record
/// and snapshot concurrently (a snapshot taken during recording may miss in-flight records).
class LatencyHistogram {
 public:
  // Values below 2^kSubBits are exact; above, each power of two splits into 2^kSubBits buckets.
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kSubBuckets = 1u << kSubBits;
  static constexpr int kMaxExponent = 40;  // 2^40 ns ~ 18 minutes; larger values land in the last bucket
  static constexpr std::size_t kBuckets = kSubBuckets * (kMaxExponent - kSubBits + 2);

  LatencyHistogram() = default;
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  static constexpr std::size_t bucket_of(std::uint64_t value) noexcept {
    if (value < kSubBuckets) return static_cast<std::size_t>(value);
    const int exponent = static_cast<int>(std::bit_width(value)) - 1;  // >= kSubBits
    if (exponent > kMaxExponent) return kBuckets - 1;
    const std::uint64_t sub = (value >> (exponent - kSubBits)) & (kSubBuckets - 1);
    return static_cast<std::size_t>(kSubBuckets * static_cast<std::uint64_t>(exponent - kSubBits + 1) + sub);
  }
  /// Smallest value that maps to `bucket`.
  static constexpr std::uint64_t bucket_lower(std::size_t bucket) noexcept {
    if (bucket < kSubBuckets) return bucket;
    const std::uint64_t exponent = bucket / kSubBuckets - 1 + kSubBits;
    const std::uint64_t sub = bucket % kSubBuckets;
    return (std::uint64_t{1} << exponent) + (sub << (exponent - kSubBits));
  }
  static constexpr std::uint64_t bucket_width(std::size_t bucket) noexcept {
    if (bucket < kSubBuckets) return 1;
    return std::uint64_t{1} << (bucket / kSubBuckets - 1);
  }

  /// Any number of threads may record concurrently.
  void record(std::int64_t nanoseconds) noexcept {
    const std::uint64_t value = clamp(nanoseconds);
    // Relaxed everywhere: each field is an independent statistic; no other data is published through them.
    counts_[bucket_of(value)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
    std::uint64_t seen = min_.load(std::memory_order_relaxed);
    while (value < seen && !min_.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
    seen = max_.load(std::memory_order_relaxed);
    while (value > seen && !max_.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
  }

  /// Faster record() for a histogram with a single writer thread (a worker's own): plain loads and
  /// stores, no locked read-modify-write. Snapshots from other threads stay safe (each field is atomic).
  void record_exclusive(std::int64_t nanoseconds) noexcept {
    const std::uint64_t value = clamp(nanoseconds);
    auto& bucket = counts_[bucket_of(value)];
    // Relaxed: single writer, so load+store cannot lose an update; readers only need untorn values.
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
    if (value < min_.load(std::memory_order_relaxed)) min_.store(value, std::memory_order_relaxed);
    if (value > max_.load(std::memory_order_relaxed)) max_.store(value, std::memory_order_relaxed);
  }

  HistogramSnapshot snapshot() const;
  /// Not atomic with respect to concurrent record(); meant for between runs.
  void reset() noexcept;

 private:
  static constexpr std::uint64_t clamp(std::int64_t nanoseconds) noexcept {
    return nanoseconds > 0 ? static_cast<std::uint64_t>(nanoseconds) : 0;
  }

  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  alignas(64) std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> min_{std::numeric_limits<std::uint64_t>::max()};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace tickinfer
