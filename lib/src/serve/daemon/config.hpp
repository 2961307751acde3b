#pragma once
// tickinfer-serve's configuration (configs/serve.toml, docs/SERVE.md "tickinfer-serve"). Internal to the daemon.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tickinfer/feed/itch.hpp"

namespace tickinfer::daemon {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  bool empty() const { return host.empty(); }
  std::string text() const { return host + ":" + std::to_string(port); }
};

struct ServeConfig {
  std::string model_path, model_dir, engine = "auto";
  std::string feature_config = "configs/default.toml";
  std::string mode = "batched";  // batched (the pipeline's worker predicts) | direct (the feed thread predicts)
  std::size_t max_batch = 64, max_delay_us = 50, queue_capacity = 65536, keys = 65536;
  std::string conflation = "off", idle = "block";
  std::size_t idle_spin_us = 50;  // PipelineConfig::idle_spin_us
  int worker_core = -1;
  std::size_t output_spin_us = 20;
  int output_core = -1;
  Endpoint feed_listen{"127.0.0.1", 31001};
  std::string feed_group, feed_interface = "127.0.0.1", feed_format = "itch";
  std::int64_t price_scale = feed::kItchPriceScale, qty_scale = 1;
  std::size_t receive_buffer_bytes = 8 << 20;
  std::size_t feed_spin_us = 0;
  int feed_core = -1;
  std::uint64_t max_gap = 10'000'000;  // MoldUDP64: a packet further ahead than this is refused (0: any)
  Endpoint predictions_udp, predictions_tcp;
  std::size_t tcp_buffer_bytes = 1 << 20, max_subscribers = 16, udp_max_datagram = 1400;
  std::string predictions_interface = "127.0.0.1";
  Endpoint http{"127.0.0.1", 8000};
  std::string token_file;
  std::size_t http_max_body_bytes = 1 << 20, http_max_infer_rows = 256, http_infer_deadline_ms = 1000;
  std::size_t http_max_connections = 1024, http_threads = 1;
  std::size_t drain_timeout_ms = 5000;

  bool direct() const { return mode == "direct"; }
};

/// Reads `file`, then applies `overrides` ("section.key=VALUE", VALUE in TOML syntax) over it. Every refusal is an
/// Error (kInvalidConfig, kFileNotFound) naming the file and line, or the --set that gave the value.
ServeConfig load_serve_config(const std::string& file, const std::vector<std::string>& overrides);

}  // namespace tickinfer::daemon
