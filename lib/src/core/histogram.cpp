#include "tickinfer/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace tickinfer {

HistogramSnapshot LatencyHistogram::snapshot() const {
  HistogramSnapshot snap;
  snap.counts.resize(kBuckets);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    snap.counts[i] = counts_[i].load(std::memory_order_relaxed);
    total += snap.counts[i];
  }
  // Derive count from the buckets so percentiles and count agree even while records are in flight.
  snap.count = total;
  snap.sum = sum_.load(std::memory_order_relaxed);
  snap.min = total ? min_.load(std::memory_order_relaxed) : 0;
  snap.max = max_.load(std::memory_order_relaxed);
  return snap;
}

void LatencyHistogram::reset() noexcept {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
  min_.store(std::numeric_limits<std::uint64_t>::max(), std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
}

std::uint64_t HistogramSnapshot::percentile(double q) const noexcept {
  if (count == 0) return 0;
  if (q <= 0.0) return min;
  if (q >= 1.0) return max;
  // Rank of the q-th value (1-based, nearest-rank definition).
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank) {
      const std::uint64_t mid = LatencyHistogram::bucket_lower(i) + LatencyHistogram::bucket_width(i) / 2;
      return std::clamp(mid, min, max);
    }
  }
  return max;
}

void HistogramSnapshot::merge(const HistogramSnapshot& other) {
  if (other.count == 0) return;
  if (counts.size() < other.counts.size()) counts.resize(other.counts.size());
  for (std::size_t i = 0; i < other.counts.size(); ++i) counts[i] += other.counts[i];
  min = count ? std::min(min, other.min) : other.min;
  max = std::max(max, other.max);
  count += other.count;
  sum += other.sum;
}

}  // namespace tickinfer
