#pragma once
// tickinfer-serve, the daemon (docs/SERVE.md "tickinfer-serve"): market data in by UDP (unicast or multicast) as
// MoldUDP64-framed ITCH 5.0 or tickinfer capture records; books and features per instrument as tickinfer-replay
// computes them; predictions out as fixed-size records by UDP and to TCP subscribers; the admin HTTP server
// (metrics, health, model control, KServe v2 inference) on its own port.
//
// Threads: the feed thread (receive, sequence, decode, book, features, then submit, or in direct mode predict and
// send the UDP records), the pipeline's worker (batched mode's events; HTTP inference in both modes), the output
// thread (records to UDP and TCP; direct mode: TCP only), the admin server's, and the calling thread (signals).

#include <cstdint>
#include <string>
#include <vector>

namespace tickinfer::daemon {

/// Runs the daemon until SIGTERM/SIGINT (stop the intake, drain, flush, return 0); SIGHUP re-reads model.dir.
/// `overrides`: "section.key=VALUE" over the config file. At exit, the counters as JSON to `summary_json` ("": no
/// file). Throws Error for a refused config or a socket that cannot be opened.
int serve(const std::string& config_file, const std::vector<std::string>& overrides, const std::string& summary_json);

/// Connects to a daemon's predictions.tcp ("HOST:PORT", retried until `timeout_s`), or with `udp` binds its
/// predictions.udp (joining a multicast group on 127.0.0.1), and writes the records as a predictions CSV
/// (tickinfer-replay --predictions' format, in feed order); stops after `count` records (0: when the daemon closes
/// the TCP stream, or at the timeout). 0 when `count` records arrived (or the stream ended with count 0), else 1.
int subscribe(const std::string& endpoint, bool udp, const std::string& csv, std::uint64_t count, double timeout_s);

}  // namespace tickinfer::daemon
