#pragma once
// The one Prometheus text-exposition (0.0.4) writer: pipeline and registry metrics render through it.

#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tickinfer/histogram.hpp"

namespace tickinfer::internal {

class PrometheusWriter {
 public:
  explicit PrometheusWriter(std::string prefix) : prefix_(std::move(prefix)) {}

  /// `<prefix>_<name> value`, with HELP and TYPE lines; type is "counter" or "gauge".
  void scalar(std::string_view name, const char* type, std::string_view help, std::uint64_t value);
  void counter(std::string_view name, std::string_view help, std::uint64_t value) {
    scalar(name, "counter", help, value);
  }
  void gauge(std::string_view name, std::string_view help, std::uint64_t value) { scalar(name, "gauge", help, value); }
  /// `<prefix>_<name> value` for a real value (seconds, a timestamp).
  void real(std::string_view name, const char* type, std::string_view help, double value);

  /// One series per label value: `<prefix>_<name>{<label>="<value>"} count`.
  void labeled(std::string_view name, const char* type, std::string_view help, std::string_view label,
               const std::vector<std::pair<std::string, std::uint64_t>>& series);

  /// A latency summary in seconds from a nanosecond histogram: the quantiles, quantile 1 (max), _sum, _count.
  void summary(std::string_view name, std::string_view help, const HistogramSnapshot& histogram,
               std::initializer_list<double> quantiles);

  /// A histogram of counts by integer value: counts[n] = observations of value n (n >= 1); buckets at powers of
  /// two and the last value, so series stay stable between scrapes.
  void integer_histogram(std::string_view name, std::string_view help, const std::vector<std::uint64_t>& counts);

  /// Latency histograms in seconds from nanosecond histograms, one series per label value (so they aggregate across
  /// hosts, unlike summary()): cumulative `_bucket{<label>="<value>",le="<seconds>"}` at each of `bounds_ns`
  /// (ascending) and +Inf, then `_sum` and `_count`. A log-linear bucket counts as at or below a bound when it
  /// starts at or below it: le is exact to the histogram's resolution (<1%).
  void latency_histograms(std::string_view name, std::string_view help, std::string_view label,
                          const std::vector<std::pair<std::string, const HistogramSnapshot*>>& series,
                          const std::vector<std::uint64_t>& bounds_ns);

  std::string str() const { return out_.str(); }

 private:
  void header(const std::string& full, const char* type, std::string_view help);
  std::string prefix_;
  std::ostringstream out_;
};

}  // namespace tickinfer::internal
