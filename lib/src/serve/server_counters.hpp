#pragma once
// The admin server's own counters: updated by its I/O threads, read by /metrics and AdminServer::metrics().
// Internal.

#include <atomic>
#include <cstdint>

#include "tickinfer/admin_server.hpp"
#include "tickinfer/metrics.hpp"

namespace tickinfer::internal {

struct ServerCounters {
  Counter responses_2xx, responses_3xx, responses_4xx, responses_5xx;
  Counter connections_accepted, connections_rejected, request_timeouts, idle_timeouts;
  std::atomic<std::uint64_t> connections_active{0};  // relaxed: a statistic and the connection cap's estimate

  void count_response(unsigned status) noexcept {
    if (status >= 500) {
      responses_5xx.add();
    } else if (status >= 400) {
      responses_4xx.add();
    } else if (status >= 300) {
      responses_3xx.add();
    } else {
      responses_2xx.add();
    }
  }

  AdminServerMetrics snapshot() const noexcept {
    AdminServerMetrics m;
    m.responses_2xx = responses_2xx.load();
    m.responses_3xx = responses_3xx.load();
    m.responses_4xx = responses_4xx.load();
    m.responses_5xx = responses_5xx.load();
    m.connections_accepted = connections_accepted.load();
    m.connections_rejected = connections_rejected.load();
    m.connections_active = connections_active.load(std::memory_order_relaxed);
    m.request_timeouts = request_timeouts.load();
    m.idle_timeouts = idle_timeouts.load();
    return m;
  }
};

}  // namespace tickinfer::internal
