// tickinfer-serve: the daemon (lib/src/serve/daemon; docs/SERVE.md "tickinfer-serve"), and `tickinfer-serve
// subscribe`, which connects to a daemon's TCP prediction stream and writes the records as a predictions CSV
// (tickinfer-replay --predictions' format), for tests and for a look at the stream.

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "serve/daemon/daemon.hpp"

int main(int argc, char** argv) {
  CLI::App app{"tickinfer-serve: market data in by UDP (MoldUDP64), predictions out by UDP and TCP, admin HTTP"};
  std::string config = "configs/serve.toml", summary;
  app.add_option("--config", config, "the daemon's config (every key: docs/SERVE.md)");
  app.add_option("--summary-json", summary, "at exit, the counters as JSON to this file");
  std::vector<std::string> overrides;
  app.add_option("--set", overrides,
                 "section.key=VALUE over the config file (TOML values: --set feed.format='\"capture\"'); repeatable");
  auto* sub = app.add_subcommand("subscribe", "write a daemon's TCP prediction stream as a predictions CSV");
  std::string tcp = "127.0.0.1:31003", udp, csv;
  std::uint64_t count = 0;
  double timeout_s = 30;
  sub->add_option("--tcp", tcp, "the daemon's predictions.tcp");
  sub->add_option("--udp", udp, "instead: receive the daemon's predictions.udp datagrams (HOST:PORT to bind)");
  sub->add_option("--csv", csv, "the CSV to write (index,ts_ns,status,y0..., by feed sequence)")->required();
  sub->add_option("--count", count, "stop after this many records (0: when the daemon closes the stream)");
  sub->add_option("--timeout", timeout_s, "give up after this many seconds");
  CLI11_PARSE(app, argc, argv);
  try {
    if (*sub) return tickinfer::daemon::subscribe(udp.empty() ? tcp : udp, !udp.empty(), csv, count, timeout_s);
    return tickinfer::daemon::serve(config, overrides, summary);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tickinfer-serve: %s\n", e.what());
    return 1;
  }
}
