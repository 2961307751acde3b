#include "serve/router.hpp"

#include <charconv>
#include <exception>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/prometheus.hpp"
#include "serve/infer_call.hpp"
#include "serve/infer_json.hpp"
#include "serve/token.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/metrics.hpp"
#include "tickinfer/model_slot.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/registry.hpp"
#include "tickinfer/torchscript.hpp"

#ifndef TICKINFER_VERSION
#define TICKINFER_VERSION "unknown"
#endif

namespace tickinfer::internal {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

// Pipeline stages: 1 us .. 1 s. Checkpoint load and warm-up: 1 ms .. 5 min.
const std::vector<std::uint64_t> kStageBoundsNs = {
    1'000,     2'500,     5'000,     10'000,     25'000,     50'000,     100'000,     250'000,     500'000,
    1'000'000, 2'500'000, 5'000'000, 10'000'000, 25'000'000, 50'000'000, 100'000'000, 250'000'000, 1'000'000'000};
const std::vector<std::uint64_t> kCheckpointBoundsNs = {
    1'000'000,     10'000'000,    100'000'000,    250'000'000,    500'000'000,    1'000'000'000,
    2'500'000'000, 5'000'000'000, 10'000'000'000, 30'000'000'000, 60'000'000'000, 300'000'000'000};

// Invalid UTF-8 (a path echoed back) is replaced, never thrown.
std::string dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

HttpResponse json_response(unsigned status, const Json& json) { return {status, std::string(kJson), dump(json), {}}; }

HttpResponse empty_response(unsigned status) { return {status, {}, {}, {}}; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The target's path (query dropped) as percent-decoded segments: "/v2/models/a%20b" -> {"v2", "models", "a b"}.
// Returns an error message for a target that is not origin-form or has a bad escape.
std::optional<std::string> split_path(std::string_view target, std::vector<std::string>& segments) {
  if (target.empty() || target.front() != '/') return "malformed request target: expected a path starting with '/'";
  const std::string_view path = target.substr(0, target.find('?'));
  std::string segment;
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      segments.push_back(std::move(segment));
      segment.clear();
      continue;
    }
    char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size() || hex_value(path[i + 1]) < 0 || hex_value(path[i + 2]) < 0) {
        return "malformed request target: bad percent-escape";
      }
      c = static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
      i += 2;
      if (c == '\0') return "malformed request target: %00 in the path";
    }
    segment.push_back(c);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> parse_version(const std::string& text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

Json optional_version(const std::optional<std::uint64_t>& version) { return version ? Json(*version) : Json(nullptr); }

const char* platform_of(const Model& model) {
  const std::string& source = model.source();
  return source.size() >= 5 && source.compare(source.size() - 5, 5, ".onnx") == 0 ? "onnx" : "pytorch_torchscript";
}

const char* kind_name(CheckpointKind kind) { return kind == CheckpointKind::kWeights ? "weights" : "torchscript"; }

std::string held_list(const std::vector<VersionInfo>& versions) {
  std::string list;
  for (const VersionInfo& v : versions) {
    if (!list.empty()) list += ", ";
    list += std::to_string(v.version);
  }
  return list;
}

}  // namespace

HttpResponse error_response(unsigned status, std::string_view message) {
  Json json;
  json["error"] = std::string(message);
  return json_response(status, json);
}

std::shared_ptr<const Model> ServedModel::get() {
  if (slot_ == nullptr) return nullptr;
  MutexLock lock(mutex_);
  std::shared_ptr<const Model> model = cached_.lock();
  // An unchanged generation means the slot still holds what cached_ points to, so the lock() above succeeded.
  if (slot_->refresh(model, seen_generation_)) cached_ = model;
  return model;
}

namespace {

const ModelSlot* served_slot(const AdminSources& sources) {
  if (sources.registry != nullptr) return sources.registry->slot().get();  // the registry owns it and outlives us
  if (sources.slot != nullptr) return sources.slot;
  if (sources.pipeline != nullptr) return &sources.pipeline->models();
  return nullptr;
}

}  // namespace

Router::Router(AdminSources sources, std::string token, const ServerCounters& counters, LogSink log,
               std::size_t max_infer_rows)
    : sources_(sources),
      slot_(served_slot(sources)),
      served_(slot_),
      token_(std::move(token)),
      counters_(counters),
      log_(std::move(log)),
      max_infer_rows_(max_infer_rows) {}

Router::Routed Router::route(const HttpRequest& request) {
  std::vector<std::string> s;
  if (const auto error = split_path(request.target, s)) return {error_response(400, *error), {}};

  // The route and the method it takes.
  enum class Route { kMetrics, kServer, kLive, kReady, kModel, kModelReady, kVersions, kControl, kInfer, kNone };
  Route route = Route::kNone;
  const std::string* model_name = nullptr;
  const std::string* version_text = nullptr;
  std::string action;
  const std::size_t n = s.size();
  if (n == 1 && s[0] == "metrics") {
    route = Route::kMetrics;
  } else if (n >= 1 && s[0] == "v2") {
    if (n == 1) {
      route = Route::kServer;
    } else if (n == 3 && s[1] == "health" && (s[2] == "live" || s[2] == "ready")) {
      route = s[2] == "live" ? Route::kLive : Route::kReady;
    } else if (n >= 3 && s[1] == "models" && !s[2].empty()) {
      model_name = &s[2];
      if (n == 3) {
        route = Route::kModel;
      } else if (n == 4 && s[3] == "ready") {
        route = Route::kModelReady;
      } else if (n == 4 && s[3] == "versions") {
        route = Route::kVersions;
      } else if (n == 4 && s[3] == "infer") {
        route = Route::kInfer;
      } else if ((n == 4 && (s[3] == "unpin" || s[3] == "rollback" || s[3] == "reload")) ||
                 (n == 5 && (s[3] == "pin" || s[3] == "reload"))) {
        route = Route::kControl;
        action = s[3];
        if (n == 5) version_text = &s[4];
      }
    }
  }
  if (route == Route::kNone) {
    return {error_response(404, std::string("no such endpoint: ").append(request.target.substr(0, 256))), {}};
  }
  const std::string_view wanted = route == Route::kControl || route == Route::kInfer ? "POST" : "GET";
  if (request.method != wanted) {
    HttpResponse response = error_response(
        405, std::string("method ").append(request.method.substr(0, 32)).append(" not allowed: use ").append(wanted));
    response.headers.emplace_back("Allow", std::string(wanted));
    return {std::move(response), {}};
  }

  if (route == Route::kControl) {  // authorization before anything about models is revealed
    if (token_.empty()) {
      return {error_response(403, "model control is disabled: the admin server has no token file"), {}};
    }
    switch (check_bearer(request.authorization, request.authorization_repeated, token_)) {
      case BearerCheck::kMissing: {
        HttpResponse response = error_response(401, "model control needs an Authorization: Bearer <token> header");
        response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tickinfer\"");
        return {std::move(response), {}};
      }
      case BearerCheck::kMalformed: {
        HttpResponse response = error_response(401, "malformed Authorization header: expected one 'Bearer <token>'");
        response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tickinfer\", error=\"invalid_request\"");
        return {std::move(response), {}};
      }
      case BearerCheck::kWrong:
        emit_log(log_, {LogLevel::kWarning,
                        "admin",
                        std::string("refused ").append(request.target.substr(0, 256)).append(": wrong bearer token"),
                        {},
                        std::nullopt,
                        std::nullopt});
        return {error_response(403, "wrong bearer token"), {}};
      case BearerCheck::kOk:
        break;
    }
  }

  switch (route) {
    case Route::kMetrics:
      return {{200, std::string(kPrometheusText), metrics_text(), {}}, {}};
    case Route::kServer: {
      Json json;
      json["name"] = "tickinfer";
      json["version"] = TICKINFER_VERSION;
      json["extensions"] = Json::array({"model_control"});
      return {json_response(200, json), {}};
    }
    case Route::kLive:
      return {empty_response(200), {}};
    case Route::kReady:
      if (served_.get() == nullptr) return {error_response(503, "not ready: no model is serving"), {}};
      return {empty_response(200), {}};
    default:
      break;
  }

  const std::shared_ptr<const Model> model = served_.get();
  if (model == nullptr || model->metadata().name != *model_name) {
    std::string message = std::string("unknown model '").append(model_name->substr(0, 128)).append("'");
    message += model == nullptr ? std::string(": no model is serving")
                                : std::string(" (serving '").append(model->metadata().name).append("')");
    return {error_response(404, message), {}};
  }
  switch (route) {
    case Route::kModel:
      return {model_metadata(*model), {}};
    case Route::kModelReady:
      return {empty_response(200), {}};
    case Route::kVersions:
      return {model_versions(*model), {}};
    case Route::kControl:
      return control(action, *model, version_text);
    case Route::kInfer:
      return infer(request, *model);
    default:
      return {error_response(500, "internal error: unrouted request"), {}};
  }
}

Router::Routed Router::infer(const HttpRequest& request, const Model& model) {
  const bool direct = sources_.infer == nullptr && sources_.direct_infer != nullptr;
  if (sources_.infer == nullptr && !direct) return {error_response(404, "inference is not enabled on this server"), {}};
  if (direct ? model.state_width() > 0 : sources_.infer->state_width() > 0) {  // rows need a key to keep state of
    return {error_response(501, "inference over HTTP runs stateless models only: this pipeline keeps per-key state")};
  }
  InferSpec spec;
  spec.input_width = direct ? model.input_width() : sources_.infer->feature_width();  // where the rows go
  spec.outputs = {{std::string(kInferOutputName), model.output_width()}};
  spec.max_rows = max_infer_rows_;
  auto call = std::make_shared<InferCall>();
  if (const auto error = decode_infer_request(request.body, spec, call->request)) {
    return {error_response(400, *error), {}};
  }
  call->model_name = model.metadata().name;
  call->output_width = model.output_width();
  if (direct) return infer_direct(std::move(call));
  return {{}, {}, std::move(call)};
}

// The rows on this thread, one at a time, with an idle Predictor of the slot (made on first need: a few per
// server, one per I/O thread running inference at once).
Router::Routed Router::infer_direct(std::shared_ptr<InferCall> call) {
  std::unique_ptr<Predictor> predictor;
  {
    MutexLock lock(predictors_mutex_);
    if (!predictors_.empty()) {
      predictor = std::move(predictors_.back());
      predictors_.pop_back();
    }
  }
  // Not owned: the slot outlives the server (AdminSources), and so every Predictor.
  if (!predictor)
    predictor =
        std::make_unique<Predictor>(std::shared_ptr<const ModelSlot>(std::shared_ptr<void>(), sources_.direct_infer));
  InferCall& c = *call;
  const std::size_t rows = c.request.rows, width = c.request.values.size() / (rows == 0 ? 1 : rows);
  c.outputs.assign(rows * c.output_width, 0.0f);
  c.status.assign(rows, ResultStatus::kModelError);
  c.versions.assign(rows, 0);
  std::optional<HttpResponse> refused;
  for (std::size_t r = 0; r < rows && !refused; ++r) {
    const PredictStatus s = predictor->predict(std::span<const float>(c.request.values.data() + r * width, width),
                                               std::span<float>(c.outputs.data() + r * c.output_width, c.output_width));
    c.versions[r] = predictor->model_version();
    if (s == PredictStatus::kOk || s == PredictStatus::kModelError) {
      c.status[r] = s == PredictStatus::kOk ? ResultStatus::kOk : ResultStatus::kModelError;
    } else {  // the served model changed under the request (a swap to one without a native plan, or to other widths)
      refused = error_response(s == PredictStatus::kNotNative ? 500 : 503,
                               std::string("direct inference: ").append(to_string(s)) +
                                   (s == PredictStatus::kNotNative ? ": the served model has no native plan" : ""));
    }
  }
  {
    MutexLock lock(predictors_mutex_);
    predictors_.push_back(std::move(predictor));
  }
  if (refused) return {std::move(*refused), {}};
  return {c.response(), {}};
}

HttpResponse Router::model_metadata(const Model& model) {
  const ModelMetadata& md = model.metadata();
  Json versions = Json::array();
  if (sources_.registry != nullptr) {
    for (const VersionInfo& v : sources_.registry->versions()) versions.push_back(std::to_string(v.version));
  } else {
    versions.push_back(std::to_string(model.version()));
  }
  Json json;
  json["name"] = md.name;
  json["versions"] = std::move(versions);
  json["platform"] = platform_of(model);
  json["inputs"] = Json::array({Json{
      {"name", "features"}, {"datatype", "FP32"}, {"shape", {-1, static_cast<std::int64_t>(model.input_width())}}}});
  json["outputs"] = Json::array({Json{
      {"name", "outputs"}, {"datatype", "FP32"}, {"shape", {-1, static_cast<std::int64_t>(model.output_width())}}}});
  json["served_version"] = std::to_string(model.version());
  json["engine"] = model.engine();
  json["engine_note"] = model.engine_note();
  json["feature_schema_hash"] = md.feature_schema_hash;
  json["input_names"] = md.input_names;
  json["output_names"] = md.output_names;
  return json_response(200, json);
}

HttpResponse Router::model_versions(const Model& model) {
  Json json;
  json["name"] = model.metadata().name;
  Json list = Json::array();
  if (sources_.registry != nullptr) {
    ModelRegistry& registry = *sources_.registry;
    const auto pinned = registry.pinned();
    json["served"] = registry.current_version();
    json["pinned"] = optional_version(pinned);
    for (const VersionInfo& v : registry.versions()) {
      list.push_back(Json{{"version", v.version},
                          {"state", to_string(v.state)},
                          {"current", v.current},
                          {"previous", v.previous},
                          {"kind", kind_name(v.kind)},
                          {"source", v.source}});
    }
  } else {
    json["served"] = model.version();
    json["pinned"] = nullptr;
    list.push_back(Json{{"version", model.version()},
                        {"state", to_string(VersionState::kServing)},
                        {"current", true},
                        {"previous", false},
                        {"source", model.source()}});
  }
  json["versions"] = std::move(list);
  return json_response(200, json);
}

Router::Routed Router::control(const std::string& action, const Model& model, const std::string* version_text) {
  std::optional<std::uint64_t> version;
  if (version_text != nullptr) {
    version = parse_version(*version_text);
    if (!version) {
      return {error_response(400, std::string("malformed version '")
                                      .append(version_text->substr(0, 64))
                                      .append("': expected a decimal integer")),
              {}};
    }
  }
  if (sources_.registry == nullptr) {
    return {error_response(404, "model control needs a ModelRegistry: this admin server has none"), {}};
  }
  ModelRegistry* registry = sources_.registry;
  const std::string name = model.metadata().name;
  if (action == "pin") {
    const auto held = registry->versions();
    bool loaded = false;
    for (const VersionInfo& v : held) loaded = loaded || v.version == *version;
    if (!loaded) {
      return {error_response(404, std::string("version ")
                                      .append(std::to_string(*version))
                                      .append(" of model '")
                                      .append(name)
                                      .append("' is not loaded (loaded: ")
                                      .append(held_list(held))
                                      .append(")")),
              {}};
    }
  }
  const std::string what = std::string("POST /v2/models/")
                               .append(name)
                               .append("/")
                               .append(action)
                               .append(version ? std::string("/").append(std::to_string(*version)) : std::string());
  auto blocking = [this, registry, action, version, name, what]() -> HttpResponse {
    HttpResponse response;
    try {
      Json json;
      json["name"] = name;
      if (action == "pin") {
        const bool served = registry->pin(*version);
        json["served"] = registry->current_version();
        json["pinned"] = optional_version(registry->pinned());
        if (served) {
          response = json_response(200, json);
        } else {
          json = Json{{"error", std::string("version ")
                                    .append(std::to_string(*version))
                                    .append(" is pinned but not served: it left memory before it could be")},
                      {"served", registry->current_version()},
                      {"pinned", optional_version(registry->pinned())}};
          response = json_response(409, json);
        }
      } else if (action == "unpin") {
        json["served"] = registry->unpin();
        json["pinned"] = nullptr;
        response = json_response(200, json);
      } else if (action == "rollback") {
        json["served"] = registry->rollback();
        json["pinned"] = optional_version(registry->pinned());
        response = json_response(200, json);
      } else {  // reload
        LoadOutcome outcome;
        try {
          outcome = registry->reload(version);
        } catch (const Error& e) {  // no file is known for that version
          response = error_response(404, e.what());
          emit_log(log_, {LogLevel::kWarning, "admin", what + ": 404: " + e.what(), {}, std::nullopt, version});
          return response;
        }
        if (outcome.status == LoadOutcome::Status::kRefused) {
          json = Json{{"error", outcome.message},
                      {"reason", outcome.error ? to_string(*outcome.error) : "unknown"},
                      {"version", outcome.version}};
          response = json_response(409, json);
        } else {
          json["outcome"] = to_string(outcome.status);
          json["version"] = outcome.version;
          json["served"] = registry->current_version();
          json["pinned"] = optional_version(registry->pinned());
          json["message"] = outcome.message;
          response = json_response(200, json);
        }
      }
    } catch (const Error& e) {  // the registry refuses (rollback without a previous version)
      response = error_response(409, e.what());
    } catch (const std::exception& e) {
      response = error_response(500, std::string("internal error: ").append(e.what()));
    } catch (...) {
      response = error_response(500, "internal error");
    }
    emit_log(log_,
             {response.status < 400 ? LogLevel::kInfo : LogLevel::kWarning,
              "admin",
              std::string(what).append(": ").append(std::to_string(response.status)).append(" ").append(response.body),
              {},
              std::nullopt,
              version});
    return response;
  };
  return {{}, std::move(blocking)};
}

std::string Router::metrics_text() {
  std::string text;
  if (sources_.pipeline != nullptr) {
    const MetricsSnapshot s = sources_.pipeline->metrics().snapshot();
    text += to_prometheus(s);
    PrometheusWriter out("tickinfer");
    out.latency_histograms("stage_latency_seconds",
                           "Request latency per pipeline stage (queue_wait, batch_formation, forward per batch, "
                           "end_to_end), as a histogram that aggregates across hosts.",
                           "stage",
                           {{"queue_wait", &s.queue_wait},
                            {"batch_formation", &s.batch_formation},
                            {"forward", &s.forward},
                            {"end_to_end", &s.end_to_end}},
                           kStageBoundsNs);
    text += out.str();
  }
  if (sources_.registry != nullptr) {
    const RegistryMetricsSnapshot r = sources_.registry->metrics();
    text += to_prometheus(r);
    PrometheusWriter out("tickinfer");
    out.latency_histograms("checkpoint_phase_seconds",
                           "Checkpoint load (read and validate) and warm-up times, as a histogram.", "phase",
                           {{"load", &r.load}, {"warm_up", &r.warm_up}}, kCheckpointBoundsNs);
    text += out.str();
  }
  PrometheusWriter out("tickinfer");
  if (const auto model = served_.get()) {
    out.gauge("served_model_version", "Version of the model the slot serves now.", model->version());
    out.labeled("served_model_engine", "gauge", "1 for the engine that runs the served model.", "engine",
                {{model->engine(), 1}});
  }
  const AdminServerMetrics m = counters_.snapshot();
  out.labeled("admin_responses_total", "counter", "Admin server responses, by status class.", "code",
              {{"2xx", m.responses_2xx}, {"3xx", m.responses_3xx}, {"4xx", m.responses_4xx}, {"5xx", m.responses_5xx}});
  out.counter("admin_connections_accepted_total", "Admin server connections served.", m.connections_accepted);
  out.counter("admin_connections_rejected_total", "Admin connections over max_connections: answered 503, closed.",
              m.connections_rejected);
  out.labeled("admin_timeouts_total", "counter",
              "Admin connections cut by a timeout: request (read or write too slow) or idle (keep-alive).", "phase",
              {{"request", m.request_timeouts}, {"idle", m.idle_timeouts}});
  out.gauge("admin_connections_active", "Admin server connections open now.", m.connections_active);
  text += out.str();
  text += process_metrics_text();
  return text;
}

}  // namespace tickinfer::internal
