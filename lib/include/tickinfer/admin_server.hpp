#pragma once
// The embeddable admin HTTP/1.1 server: Prometheus metrics, KServe v2 health and model metadata, and model control
// (pin, unpin, rollback, reload) for an engine's pipeline and registry. Runs on its own threads; never on the hot
// path. No boost headers here (the implementation is a pimpl). Endpoints, security and limits: docs/SERVE.md.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "tickinfer/log.hpp"

namespace tickinfer {

class ModelRegistry;
class ModelSlot;
class Pipeline;

struct AdminServerConfig {
  /// An IPv4 or IPv6 address; the default keeps the server off the network.
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: an ephemeral port (AdminServer::port() tells which)
  /// The bearer token of the control endpoints (POST): the file's content without surrounding whitespace. The
  /// file must be a regular file owned by the process's user with mode 0600 or stricter, else start() refuses.
  /// Empty: control is disabled (every POST is answered 403).
  std::filesystem::path token_file;
  std::size_t max_header_bytes = 8192;              // request line and headers; more: 431 and the connection is closed
  std::size_t max_body_bytes = 16384;               // more: 413 and the connection is closed
  std::size_t max_connections = 64;                 // more: 503 and closed (counted)
  std::chrono::milliseconds request_timeout{5000};  // from a request's first byte to its last; then cut
  std::chrono::milliseconds idle_timeout{30000};    // a keep-alive connection waiting for its next request
  std::size_t threads = 1;                          // I/O threads (model control runs on one more, see start())
  /// POST /v2/models/{m}/infer (with AdminSources::infer): rows per request at most (more: 400), and each row's
  /// deadline in the pipeline (missed: 504). The body limit above bounds a request too.
  std::size_t max_infer_rows = 64;
  std::chrono::milliseconds infer_deadline{1000};
  LogSink log;  // empty: stderr_log_sink() (info and above)
};

/// The server's own counters (also in /metrics as tickinfer_admin_*).
struct AdminServerMetrics {
  std::uint64_t responses_2xx = 0, responses_3xx = 0, responses_4xx = 0, responses_5xx = 0;
  std::uint64_t connections_accepted = 0;  // served (not rejected)
  std::uint64_t connections_rejected = 0;  // over max_connections: answered 503 and closed
  std::uint64_t connections_active = 0;
  std::uint64_t request_timeouts = 0;  // a request not complete within request_timeout: cut
  std::uint64_t idle_timeouts = 0;     // a keep-alive connection idle for idle_timeout: closed
};

/// What the server reports on and controls. Non-owning: each must outlive the server (stop it first). Any may be
/// null; the served model is the registry's slot, else `slot`, else the pipeline's.
struct AdminSources {
  const Pipeline* pipeline = nullptr;  // /metrics: its latency histograms and counters
  ModelRegistry* registry = nullptr;   // model control, version lists, registry metrics
  const ModelSlot* slot = nullptr;     // the served model, when there is no registry
  /// Non-null: POST /v2/models/{m}/infer (KServe v2 JSON) runs each request's rows through this pipeline, unkeyed,
  /// batched with whatever else it runs; null: that endpoint answers 404. The server makes one Producer of it.
  Pipeline* infer = nullptr;
  /// Instead of `infer` (give at most one): POST .../infer runs each request's rows on the I/O thread that decoded
  /// it, with this slot's current model on the native engine (tickinfer::Predictor, one per I/O thread at a time;
  /// swaps are picked up): no queue, no thread hop, no deadline. The slot must outlive the server. A model without
  /// a native plan is answered 500; a sequence model 501.
  const ModelSlot* direct_infer = nullptr;
};

/// An HTTP/1.1 server (keep-alive, no TLS) on its own threads. Readers never take a lock the pipeline's workers
/// take on their per-batch path and never allocate on their side: metrics come from snapshots, the served model
/// through ModelSlot::refresh() (its mutex only after a publish, as each worker does once per swap). Model control
/// calls the registry's blocking API on a dedicated control thread, so a reload does not stall /metrics.
/// Made by start(); the destructor stops it.
class AdminServer {
 public:
  /// Validates `config`, reads the token file, binds and starts config.threads I/O threads and one control
  /// thread; returns once the server accepts connections. Throws Error: kInvalidConfig (a value out of range, an
  /// address that does not parse or cannot be bound, an empty token file), kFileNotFound (no token file),
  /// kUnsafeFile (the token file is not a regular file, is group/world accessible or is another user's; the
  /// message names the file and its mode or owner).
  static std::unique_ptr<AdminServer> start(AdminServerConfig config, AdminSources sources);
  /// Calls stop().
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// Thread-safe. The port the server listens on (the ephemeral one when config.port was 0).
  std::uint16_t port() const noexcept;

  /// Thread-safe, idempotent; blocks until every server thread has exited: closes the listener and every
  /// connection (requests in progress are cut), and waits for a control call in progress (a reload: its load) and,
  /// with AdminSources::infer, for inference rows still in that pipeline (it must run, or be shut down).
  /// Not from a completion or log callback the server's threads run.
  void stop();

  /// Thread-safe.
  AdminServerMetrics metrics() const;

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickinfer
