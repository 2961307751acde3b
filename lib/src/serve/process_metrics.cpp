// process_metrics_text(): the standard Prometheus process metrics, read from /proc (Linux).
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "core/prometheus.hpp"
#include "serve/router.hpp"

namespace tickinfer::internal {

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

std::string process_metrics_text() {
  PrometheusWriter out("process");
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  // /proc/self/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so fields count from the
  // last ')'. Field 3 (state) is fields[0]: utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24.
  const std::string stat = read_file("/proc/self/stat");
  const std::size_t close = stat.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream in(stat.substr(close + 1));
    std::vector<std::string> fields{std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
    if (fields.size() >= 22) try {
        const auto field = [&](std::size_t number) { return std::stod(fields[number - 3]); };
        out.real("cpu_seconds_total", "counter", "User and system CPU time of the process.",
                 (field(14) + field(15)) / ticks);
        out.real("resident_memory_bytes", "gauge", "Resident memory of the process.", field(24) * page);
        out.real("virtual_memory_bytes", "gauge", "Virtual memory of the process.", field(23));
        out.real("threads", "gauge", "Threads of the process.", field(20));
        // btime (boot time, seconds since the epoch) from /proc/stat.
        std::istringstream system(read_file("/proc/stat"));
        std::string key;
        double boot = -1;
        while (system >> key) {
          if (key == "btime") {
            system >> boot;
            break;
          }
          system.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
        }
        if (boot >= 0) {
          out.real("start_time_seconds", "gauge", "Start time of the process, seconds since the epoch.",
                   boot + field(22) / ticks);
        }
      } catch (const std::exception&) {
        // An unexpected /proc format: leave these out rather than fail the scrape.
      }
  }
  std::error_code ec;
  std::uint64_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
  if (!ec) out.gauge("open_fds", "Open file descriptors of the process.", fds);
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    out.gauge("max_fds", "Limit on open file descriptors of the process.", limit.rlim_cur);
  }
  return out.str();
}

}  // namespace tickinfer::internal
