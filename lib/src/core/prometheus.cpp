#include "core/prometheus.hpp"

#include <cstdio>

namespace tickinfer::internal {

void PrometheusWriter::header(const std::string& full, const char* type, std::string_view help) {
  out_ << "# HELP " << full << ' ' << help << "\n# TYPE " << full << ' ' << type << '\n';
}

void PrometheusWriter::scalar(std::string_view name, const char* type, std::string_view help, std::uint64_t value) {
  const std::string full = prefix_ + "_" + std::string(name);
  header(full, type, help);
  out_ << full << ' ' << value << '\n';
}

namespace {

// A real value with `digits` significant digits, %g style: "1e-06", "0.25", "1712000000.5".
std::string real_text(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*g", digits, value);
  return text;
}

}  // namespace

void PrometheusWriter::real(std::string_view name, const char* type, std::string_view help, double value) {
  const std::string full = prefix_ + "_" + std::string(name);
  header(full, type, help);
  out_ << full << ' ' << real_text(value, 15) << '\n';
}

void PrometheusWriter::labeled(std::string_view name, const char* type, std::string_view help, std::string_view label,
                               const std::vector<std::pair<std::string, std::uint64_t>>& series) {
  const std::string full = prefix_ + "_" + std::string(name);
  header(full, type, help);
  for (const auto& [value, count] : series) out_ << full << '{' << label << "=\"" << value << "\"} " << count << '\n';
}

void PrometheusWriter::summary(std::string_view name, std::string_view help, const HistogramSnapshot& h,
                               std::initializer_list<double> quantiles) {
  const std::string full = prefix_ + "_" + std::string(name);
  header(full, "summary", help);
  for (const double q : quantiles) {
    out_ << full << "{quantile=\"" << q << "\"} " << static_cast<double>(h.percentile(q)) * 1e-9 << '\n';
  }
  out_ << full << "{quantile=\"1\"} " << static_cast<double>(h.max) * 1e-9 << '\n';
  out_ << full << "_sum " << static_cast<double>(h.sum) * 1e-9 << '\n';
  out_ << full << "_count " << h.count << '\n';
}

void PrometheusWriter::integer_histogram(std::string_view name, std::string_view help,
                                         const std::vector<std::uint64_t>& counts) {
  const std::string full = prefix_ + "_" + std::string(name);
  header(full, "histogram", help);
  std::uint64_t cumulative = 0, weighted = 0;
  std::size_t next_bound = 1;
  for (std::size_t n = 1; n < counts.size(); ++n) {
    cumulative += counts[n];
    weighted += counts[n] * n;
    if (n == next_bound || n + 1 == counts.size()) {
      out_ << full << "_bucket{le=\"" << n << "\"} " << cumulative << '\n';
      if (n == next_bound) next_bound *= 2;
    }
  }
  out_ << full << "_bucket{le=\"+Inf\"} " << cumulative << '\n';
  out_ << full << "_sum " << weighted << '\n' << full << "_count " << cumulative << '\n';
}

void PrometheusWriter::latency_histograms(std::string_view name, std::string_view help, std::string_view label,
                                          const std::vector<std::pair<std::string, const HistogramSnapshot*>>& series,
                                          const std::vector<std::uint64_t>& bounds_ns) {
  const std::string full = prefix_ + "_" + std::string(name);
  header(full, "histogram", help);
  for (const auto& [value, histogram] : series) {
    const std::string labels = std::string(label).append("=\"").append(value).append("\"");
    std::uint64_t cumulative = 0;
    std::size_t bucket = 0;
    const std::size_t buckets = histogram->counts.size();
    for (const std::uint64_t bound : bounds_ns) {
      while (bucket < buckets && LatencyHistogram::bucket_lower(bucket) <= bound)
        cumulative += histogram->counts[bucket++];
      out_ << full << "_bucket{" << labels << ",le=\"" << real_text(static_cast<double>(bound) * 1e-9, 6) << "\"} "
           << cumulative << '\n';
    }
    // +Inf and _count from the buckets themselves, so they agree even for a snapshot taken while recording.
    while (bucket < buckets) cumulative += histogram->counts[bucket++];
    out_ << full << "_bucket{" << labels << ",le=\"+Inf\"} " << cumulative << '\n';
    out_ << full << "_sum{" << labels << "} " << real_text(static_cast<double>(histogram->sum) * 1e-9, 15) << '\n';
    out_ << full << "_count{" << labels << "} " << cumulative << '\n';
  }
}

}  // namespace tickinfer::internal
