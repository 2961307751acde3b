#include "core/prometheus.hpp"

namespace tickinfer::internal {

void PrometheusWriter::header(const std::string& full, const char* type, std::string_view help) {
  out_ << "# HELP " << full << ' ' << help << "\n# TYPE " << full << ' ' << type << '\n';
}

void PrometheusWriter::scalar(std::string_view name, const char* type, std::string_view help, std::uint64_t value) {
  const std::string full = prefix_ + "_" + std::string(name);
  header(full, type, help);
  out_ << full << ' ' << value << '\n';
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

}  // namespace tickinfer::internal
