#pragma once
// What the admin server answers: routing, authorization and the JSON and Prometheus bodies, apart from the
// sockets (admin_server.cpp) and the HTTP parser (http_message.*), so tests and the fuzz target reach the same
// code. Internal.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "serve/server_counters.hpp"
#include "tickinfer/admin_server.hpp"
#include "tickinfer/log.hpp"
#include "tickinfer/model.hpp"
#include "tickinfer/mutex.hpp"
#include "tickinfer/predictor.hpp"

namespace tickinfer::internal {

/// A parsed request, as the router needs it (views into the parser's message).
struct HttpRequest {
  std::string_view method;                          // as sent, e.g. "GET"
  std::string_view target;                          // e.g. "/v2/models/mlp?x=1"
  const std::string_view* authorization = nullptr;  // the Authorization header's value; null: absent
  bool authorization_repeated = false;              // more than one Authorization header
  std::string_view body;                            // the request's body (inference requests read it)
};

struct InferCall;

struct HttpResponse {
  unsigned status = 200;
  std::string content_type;  // empty: no body
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond Content-Type/-Length: Allow, WWW-Authenticate
};

/// `{"error": message}` with `status`.
HttpResponse error_response(unsigned status, std::string_view message);

/// The model a slot serves, for readers off the hot path: ModelSlot::refresh() takes the slot's mutex only when a
/// publish happened since the last call (as each worker does once per swap). Keeps a weak reference only, so a
/// retired version is freed when its last batch ends, not at the next admin request. Thread-safe.
class ServedModel {
 public:
  explicit ServedModel(const ModelSlot* slot) : slot_(slot) {}
  std::shared_ptr<const Model> get();

 private:
  const ModelSlot* slot_;
  Mutex mutex_;
  std::weak_ptr<const Model> cached_ TICKINFER_GUARDED_BY(mutex_);
  std::uint64_t seen_generation_ TICKINFER_GUARDED_BY(mutex_) = 0;
};

class Router {
 public:
  /// `token` empty: model control is disabled (403). `counters` outlives the router.
  Router(AdminSources sources, std::string token, const ServerCounters& counters, LogSink log,
         std::size_t max_infer_rows = 64);

  struct Routed {
    Routed() = default;
    Routed(HttpResponse r, std::function<HttpResponse()> b = {}, std::shared_ptr<InferCall> i = {})
        : response(std::move(r)), blocking(std::move(b)), infer(std::move(i)) {}
    HttpResponse response;
    /// Set for model control: the registry call, which may block on a load; run it off the I/O threads. Its
    /// result is the answer (`response` is then unused). Never throws.
    std::function<HttpResponse()> blocking;
    /// Set for inference (POST .../infer, decoded and checked against the served model): the server submits its
    /// rows (InferDispatcher) and answers when they completed (`response` is then unused).
    std::shared_ptr<InferCall> infer;
  };

  /// Thread-safe. Never blocks on a load; GETs take the registry's state mutex briefly (never the workers').
  Routed route(const HttpRequest& request);

  /// Thread-safe. The /metrics body: pipeline, registry, served model, this server, the process.
  std::string metrics_text();

 private:
  HttpResponse model_metadata(const Model& model);
  HttpResponse model_versions(const Model& model);
  Routed control(const std::string& action, const Model& model, const std::string* version_text);
  Routed infer(const HttpRequest& request, const Model& model);
  Routed infer_direct(std::shared_ptr<InferCall> call);

  AdminSources sources_;
  const ModelSlot* slot_;  // the served model's slot: the registry's, else sources_.slot, else the pipeline's
  ServedModel served_;
  std::string token_;
  const ServerCounters& counters_;
  LogSink log_;
  std::size_t max_infer_rows_;
  // AdminSources::direct_infer: idle Predictors (one taken per request, so one per I/O thread in use at a time).
  Mutex predictors_mutex_;
  std::vector<std::unique_ptr<Predictor>> predictors_ TICKINFER_GUARDED_BY(predictors_mutex_);
};

/// The Prometheus text of this process (process_cpu_seconds_total, resident memory, open fds, ...) from /proc.
std::string process_metrics_text();

}  // namespace tickinfer::internal
