// The admin HTTP server over loopback: every endpoint's status and body, the bearer token, the token file's
// checks, request limits, timeouts and the connection cap, through a raw-socket client.
// Models come from scripts/export_model.py --all (CMake target tickinfer_models).

#include "tickinfer/admin_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/temp_dir.hpp"
#include "support/wait.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/model_slot.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/registry.hpp"
#include "tickinfer/runner.hpp"
#include "tickinfer/torchscript.hpp"
#include "tickinfer/waiter.hpp"

namespace tickinfer {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::ordered_json;
using testing::wait_until;

constexpr const char* kToken = "s3cret-Token_0123456789";

fs::path model_path(const std::string& file) { return fs::path(TICKINFER_TEST_MODEL_DIR) / file; }

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Written under a temporary name, then renamed in, as a trainer publishes a checkpoint.
fs::path install(const fs::path& dir, const std::string& name, const std::string& model_file) {
  const fs::path temp = dir / ("." + name + ".tmp");
  {
    std::ofstream out(temp, std::ios::binary);
    out << read_bytes(model_path(model_file));
  }
  fs::rename(temp, dir / name);
  return dir / name;
}

fs::path write_token(const fs::path& dir, const std::string& content, fs::perms mode) {
  const fs::path path = dir / "admin.token";
  {
    std::ofstream out(path, std::ios::binary);
    out << content;
  }
  fs::permissions(path, mode);
  return path;
}

// ---- a blocking raw-socket HTTP/1.1 client ----

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    timeval timeout{10, 0};  // a hung server fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool send(const std::string& bytes) {
    if (!connected_) return false;
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  // The next response; nullopt if the connection closes (or times out) first.
  std::optional<Response> read_response() {
    std::size_t end = 0;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    Response response;
    const std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    std::size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) return std::nullopt;
    response.status = std::stoi(status_line.substr(9, 3));
    while (line_end != std::string::npos) {
      const std::size_t next = head.find("\r\n", line_end + 2);
      const std::string line =
          head.substr(line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
      line_end = next;
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      std::size_t value = colon + 1;
      while (value < line.size() && line[value] == ' ') ++value;
      response.headers[name] = line.substr(value);
    }
    const std::size_t length =
        std::stoul(response.header("content-length").empty() ? "0" : response.header("content-length"));
    while (buffer_.size() < length) {
      if (!fill()) return std::nullopt;
    }
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return response;
  }

  std::optional<Response> request(const std::string& method, const std::string& target,
                                  const std::vector<std::string>& headers = {}, const std::string& body = "") {
    std::string bytes = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n";
    for (const auto& h : headers) bytes += h + "\r\n";
    if (!body.empty() || method == "POST") bytes += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    bytes += "\r\n" + body;
    if (!send(bytes)) return std::nullopt;
    return read_response();
  }

  // Whether the server closes the connection (EOF or reset) within `limit`; reads and drops what arrives.
  bool closed_within(std::chrono::milliseconds limit) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char scratch[4096];
      const ssize_t n = ::recv(fd_, scratch, sizeof scratch, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

  bool connected() const { return connected_; }

 private:
  bool fill() {
    char chunk[8192];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

AdminServerConfig quiet() {
  AdminServerConfig c;
  c.log = [](const LogRecord&) {};
  return c;
}

std::string bearer(const std::string& token = kToken) { return "Authorization: Bearer " + token; }

std::string error_body(const std::string& message) { return Json{{"error", message}}.dump(); }

// ---- fixtures ----

// A registry serving model_epoch1.pt (mlp.pt) from a fresh directory, and a token file; the server starts in
// start(). Log records are kept, not printed.
struct Admin {
  Admin() {
    RegistryConfig rc;
    rc.log = [](const LogRecord&) {};
    registry = ModelRegistry::create(rc, install(dir.path(), "model_epoch1.pt", "mlp.pt"));
    token_file = write_token(dir.path(), std::string(kToken) + "\n", fs::perms::owner_read | fs::perms::owner_write);
  }
  AdminServerConfig config() const {
    AdminServerConfig c;
    c.token_file = token_file;
    c.log = [](const LogRecord&) {};
    return c;
  }
  void start(AdminServerConfig c) { server = AdminServer::start(std::move(c), {.registry = registry.get()}); }
  void start() { start(config()); }
  LoadOutcome load(std::uint64_t version, const std::string& model_file) {
    return registry->load(install(dir.path(), "model_epoch" + std::to_string(version) + ".pt", model_file));
  }
  std::optional<Response> get(const std::string& target) { return Client(server->port()).request("GET", target); }
  std::optional<Response> post(const std::string& target, const std::vector<std::string>& headers = {bearer()}) {
    return Client(server->port()).request("POST", target, headers);
  }

  testing::TestTempDir dir;
  std::unique_ptr<ModelRegistry> registry;
  fs::path token_file;
  std::unique_ptr<AdminServer> server;
};

void expect_error(const std::optional<Response>& response, int status, const std::string& message) {
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, status);
  EXPECT_EQ(response->header("content-type"), "application/json");
  EXPECT_EQ(response->body, error_body(message));
}

// ---- health and metadata ----

TEST(AdminServer, LiveAnswers200WithAnEmptyBody) {
  Admin a;
  a.start();
  const auto response = a.get("/v2/health/live");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "");
  EXPECT_EQ(response->header("content-length"), "0");
  EXPECT_EQ(response->header("server"), "tickinfer");
}

TEST(AdminServer, ReadyAnswers200WhileAValidatedModelServes) {
  Admin a;
  a.start();
  const auto ready = a.get("/v2/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ready->body, "");
  const auto model_ready = a.get("/v2/models/mlp/ready");
  ASSERT_TRUE(model_ready);
  EXPECT_EQ(model_ready->status, 200);
}

TEST(AdminServer, ReadyAnswers503WhileNoModelServes) {
  ModelSlot empty;
  auto server = AdminServer::start(quiet(), {.slot = &empty});
  expect_error(Client(server->port()).request("GET", "/v2/health/ready"), 503, "not ready: no model is serving");
  const auto live = Client(server->port()).request("GET", "/v2/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200) << "alive, if not ready";
}

TEST(AdminServer, ServerMetadataNamesTickinferAndItsExtensions) {
  Admin a;
  a.start();
  const auto response = a.get("/v2");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  const Json body = Json::parse(response->body);
  EXPECT_EQ(body["name"], "tickinfer");
  EXPECT_FALSE(body["version"].get<std::string>().empty());
  EXPECT_EQ(body["extensions"], Json::array({"model_control"}));
}

TEST(AdminServer, ModelMetadataFollowsKServeV2WithTheServedVersionAndEngine) {
  Admin a;
  a.start();
  const auto model = a.registry->current();
  const auto response = a.get("/v2/models/mlp");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("content-type"), "application/json");
  const Json expected = {
      {"name", "mlp"},
      {"versions", {"1"}},
      {"platform", "pytorch_torchscript"},
      {"inputs", {{{"name", "features"}, {"datatype", "FP32"}, {"shape", {-1, 32}}}}},
      {"outputs",
       {{{"name", "outputs"}, {"datatype", "FP32"}, {"shape", {-1, static_cast<int>(model->output_width())}}}}},
      {"served_version", "1"},
      {"engine", model->engine()},
      {"engine_note", model->engine_note()},
      {"feature_schema_hash", model->metadata().feature_schema_hash},
      {"input_names", model->metadata().input_names},
      {"output_names", model->metadata().output_names}};
  EXPECT_EQ(response->body, expected.dump());
  EXPECT_EQ(model->engine(), "native") << "mlp.pt compiles to the native engine";
}

TEST(AdminServer, ModelMetadataListsEveryLoadedVersion) {
  Admin a;
  ASSERT_EQ(a.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  a.start();
  const auto response = a.get("/v2/models/mlp");
  ASSERT_TRUE(response);
  const Json body = Json::parse(response->body);
  EXPECT_EQ(body["versions"], Json::array({"1", "2"}));
  EXPECT_EQ(body["served_version"], "2");
}

TEST(AdminServer, UnknownModelIs404NamingTheServedOne) {
  Admin a;
  a.start();
  expect_error(a.get("/v2/models/nope"), 404, "unknown model 'nope' (serving 'mlp')");
  expect_error(a.get("/v2/models/nope/versions"), 404, "unknown model 'nope' (serving 'mlp')");
  expect_error(a.get("/v2/models/nope/ready"), 404, "unknown model 'nope' (serving 'mlp')");
}

TEST(AdminServer, VersionsListsHeldVersionsWithTheirState) {
  Admin a;
  ASSERT_EQ(a.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  a.start();
  const auto response = a.get("/v2/models/mlp/versions");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  const Json expected = {{"name", "mlp"},
                         {"served", 2},
                         {"pinned", nullptr},
                         {"versions",
                          {{{"version", 1},
                            {"state", "ready"},
                            {"current", false},
                            {"previous", true},
                            {"kind", "torchscript"},
                            {"source", (a.dir.path() / "model_epoch1.pt").string()}},
                           {{"version", 2},
                            {"state", "serving"},
                            {"current", true},
                            {"previous", false},
                            {"kind", "torchscript"},
                            {"source", (a.dir.path() / "model_epoch2.pt").string()}}}}};
  EXPECT_EQ(response->body, expected.dump());
}

TEST(AdminServer, WithOnlyASlotTheServedModelIsItsOnlyVersion) {
  auto slot = std::make_shared<ModelSlot>(load_torchscript(model_path("mlp.pt")));
  auto server = AdminServer::start(quiet(), {.slot = slot.get()});
  const auto response = Client(server->port()).request("GET", "/v2/models/mlp/versions");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  const Json expected = {{"name", "mlp"},
                         {"served", 1},
                         {"pinned", nullptr},
                         {"versions",
                          {{{"version", 1},
                            {"state", "serving"},
                            {"current", true},
                            {"previous", false},
                            {"source", model_path("mlp.pt").string()}}}}};
  EXPECT_EQ(response->body, expected.dump());
}

// ---- metrics ----

// The value of the series `name` (the whole text before the value, labels included) in Prometheus text.
std::optional<double> series(const std::string& text, const std::string& name) {
  const std::string key = "\n" + name + " ";
  const std::size_t at = ("\n" + text).find(key);
  if (at == std::string::npos) return std::nullopt;
  return std::stod(text.substr(at + key.size() - 1));
}

TEST(AdminServer, MetricsExposePipelineRegistryServedModelServerAndProcess) {
  Admin a;
  PipelineConfig pc;
  pc.max_batch = 8;
  auto pipeline = Pipeline::create(pc, a.registry->slot(), make_cpu_backend());
  auto producer = pipeline->make_producer();
  const std::vector<float> features(32, 0.25f);
  constexpr int kRequests = 5;
  for (int i = 0; i < kRequests; ++i) {
    ResultWaiter waiter;
    ASSERT_EQ(pipeline->submit(producer, features, kNoDeadline, waiter.arm()), SubmitStatus::kAccepted);
    ASSERT_TRUE(waiter.wait_for(10s));
  }
  AdminServerConfig c = a.config();
  a.server = AdminServer::start(c, {.pipeline = pipeline.get(), .registry = a.registry.get()});
  ASSERT_TRUE(a.get("/v2/health/live"));  // one 2xx before the scrape
  const auto response = a.get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = response->body;

  // Pipeline: counters, and per-stage latency as histograms (cumulative buckets, +Inf == _count).
  EXPECT_EQ(series(text, "tickinfer_requests_accepted_total"), kRequests);
  EXPECT_EQ(series(text, "tickinfer_requests_completed_total{status=\"ok\"}"), kRequests);
  EXPECT_NE(text.find("# TYPE tickinfer_stage_latency_seconds histogram\n"), std::string::npos);
  for (const std::string stage : {"queue_wait", "batch_formation", "forward", "end_to_end"}) {
    const std::string labels = "{stage=\"" + stage + "\"";
    double previous = 0;
    for (const std::string le : {"1e-06", "1e-05", "0.0001", "0.001", "0.01", "0.1", "1", "+Inf"}) {
      const auto bucket = series(text, "tickinfer_stage_latency_seconds_bucket" + labels + ",le=\"" + le + "\"}");
      ASSERT_TRUE(bucket) << stage << " le=" << le;
      EXPECT_GE(*bucket, previous) << stage << " le=" << le;
      previous = *bucket;
    }
    EXPECT_EQ(series(text, "tickinfer_stage_latency_seconds_count" + labels + "}"), previous) << stage;
    ASSERT_TRUE(series(text, "tickinfer_stage_latency_seconds_sum" + labels + "}")) << stage;
  }
  EXPECT_EQ(series(text, "tickinfer_stage_latency_seconds_count{stage=\"end_to_end\"}"), kRequests);
  // Registry, served model, this server, the process.
  EXPECT_EQ(series(text, "tickinfer_registry_model_version"), 1);
  EXPECT_EQ(series(text, "tickinfer_checkpoint_phase_seconds_count{phase=\"load\"}"), 1);
  EXPECT_EQ(series(text, "tickinfer_served_model_version"), 1);
  EXPECT_EQ(series(text, "tickinfer_served_model_engine{engine=\"native\"}"), 1);
  EXPECT_EQ(series(text, "tickinfer_admin_responses_total{code=\"2xx\"}"), 1);
  EXPECT_EQ(series(text, "tickinfer_admin_connections_rejected_total"), 0);
  EXPECT_EQ(series(text, "tickinfer_admin_timeouts_total{phase=\"request\"}"), 0);
  EXPECT_GE(series(text, "tickinfer_admin_connections_active").value_or(0), 1);
  EXPECT_GT(series(text, "process_cpu_seconds_total").value_or(0), 0);
  EXPECT_GT(series(text, "process_resident_memory_bytes").value_or(0), 0);
  EXPECT_GT(series(text, "process_open_fds").value_or(0), 0);
  EXPECT_GT(series(text, "process_start_time_seconds").value_or(0), 1.6e9);
  a.server->stop();
}

// ---- routing errors ----

TEST(AdminServer, UnknownPathIs404) {
  Admin a;
  a.start();
  expect_error(a.get("/nope"), 404, "no such endpoint: /nope");
  expect_error(a.get("/v2/health/live/"), 404, "no such endpoint: /v2/health/live/");
  expect_error(a.get("/v2/models/mlp/versions/1"), 404, "no such endpoint: /v2/models/mlp/versions/1");
}

TEST(AdminServer, WrongMethodIs405WithAllow) {
  Admin a;
  a.start();
  auto response = a.post("/metrics");
  expect_error(response, 405, "method POST not allowed: use GET");
  EXPECT_EQ(response->header("allow"), "GET");
  response = a.get("/v2/models/mlp/rollback");
  expect_error(response, 405, "method GET not allowed: use POST");
  EXPECT_EQ(response->header("allow"), "POST");
  response = Client(a.server->port()).request("DELETE", "/v2/health/live");
  expect_error(response, 405, "method DELETE not allowed: use GET");
}

TEST(AdminServer, MalformedTargetIs400) {
  Admin a;
  a.start();
  expect_error(a.get("/v2/models/ml%zz"), 400, "malformed request target: bad percent-escape");
  expect_error(a.get("/v2/models/ml%00"), 400, "malformed request target: %00 in the path");
  expect_error(Client(a.server->port()).request("GET", "*"), 400,
               "malformed request target: expected a path starting with '/'");
}

TEST(AdminServer, PercentEncodedModelNamesAndQueriesAreUnderstood) {
  Admin a;
  a.start();
  const auto response = a.get("/v2/models/%6dlp?verbose=1");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

// ---- model control and its token ----

TEST(AdminServer, ControlWithoutAuthorizationIs401AndChangesNothing) {
  Admin a;
  ASSERT_EQ(a.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  a.start();
  const auto response = a.post("/v2/models/mlp/rollback", {});
  expect_error(response, 401, "model control needs an Authorization: Bearer <token> header");
  EXPECT_EQ(response->header("www-authenticate"), "Bearer realm=\"tickinfer\"");
  EXPECT_EQ(a.registry->current_version(), 2u);
  EXPECT_FALSE(a.registry->pinned());
}

TEST(AdminServer, ControlWithAMalformedAuthorizationIs401) {
  Admin a;
  a.start();
  for (const std::string& header :
       {std::string("Authorization: Basic dXNlcjpwYXNz"), std::string("Authorization: Bearer"),
        std::string("Authorization: Bearer   "), std::string("Authorization: Bearer") + kToken,
        std::string("Authorization: Bearer a b")}) {
    const auto response = a.post("/v2/models/mlp/unpin", {header});
    expect_error(response, 401, "malformed Authorization header: expected one 'Bearer <token>'");
    EXPECT_EQ(response->header("www-authenticate"), "Bearer realm=\"tickinfer\", error=\"invalid_request\"") << header;
  }
  // Two Authorization headers, even both right, are malformed.
  expect_error(a.post("/v2/models/mlp/unpin", {bearer(), bearer()}), 401,
               "malformed Authorization header: expected one 'Bearer <token>'");
}

TEST(AdminServer, ControlWithAWrongTokenIs403AndChangesNothing) {
  Admin a;
  ASSERT_EQ(a.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  a.start();
  const std::string token = kToken;
  for (const std::string& wrong :
       {std::string("nope"), token.substr(0, token.size() - 1), token + "x", std::string(token.size(), 'a')}) {
    expect_error(a.post("/v2/models/mlp/rollback", {bearer(wrong)}), 403, "wrong bearer token");
  }
  EXPECT_EQ(a.registry->current_version(), 2u);
  EXPECT_FALSE(a.registry->pinned());
}

TEST(AdminServer, ControlSchemeIsCaseInsensitive) {
  Admin a;
  a.start();
  const auto response = a.post("/v2/models/mlp/unpin", {std::string("Authorization: bearer ") + kToken});
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST(AdminServer, PinUnpinRollbackAndReloadChangeTheRegistry) {
  Admin a;
  ASSERT_EQ(a.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  a.start();

  auto response = a.post("/v2/models/mlp/pin/1");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"name":"mlp","served":1,"pinned":1})");
  EXPECT_EQ(a.registry->current_version(), 1u);
  EXPECT_EQ(a.registry->pinned(), std::optional<std::uint64_t>(1));

  response = a.post("/v2/models/mlp/unpin");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"name":"mlp","served":2,"pinned":null})");
  EXPECT_EQ(a.registry->current_version(), 2u);
  EXPECT_FALSE(a.registry->pinned());

  response = a.post("/v2/models/mlp/rollback");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"name":"mlp","served":1,"pinned":1})");
  EXPECT_EQ(a.registry->current_version(), 1u);
  EXPECT_EQ(a.registry->metrics().rollbacks, 1u);

  const auto loaded_before = a.registry->metrics().loaded;
  response = a.post("/v2/models/mlp/reload");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200) << response->body;
  const Json body = Json::parse(response->body);
  EXPECT_EQ(body["outcome"], "published");
  EXPECT_EQ(body["version"], 1);
  EXPECT_EQ(body["served"], 1);
  EXPECT_EQ(body["pinned"], 1);
  EXPECT_EQ(a.registry->metrics().loaded, loaded_before + 1) << "reload reads the file again";

  response = a.post("/v2/models/mlp/reload/2");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(Json::parse(response->body)["version"], 2);
  EXPECT_EQ(a.registry->current_version(), 1u) << "version 2 is reloaded but 1 stays pinned";
}

TEST(AdminServer, PinOfAVersionNotLoadedIs404) {
  Admin a;
  a.start();
  expect_error(a.post("/v2/models/mlp/pin/9"), 404, "version 9 of model 'mlp' is not loaded (loaded: 1)");
  EXPECT_FALSE(a.registry->pinned()) << "a refused pin must not pin";
}

TEST(AdminServer, MalformedVersionIs400) {
  Admin a;
  a.start();
  expect_error(a.post("/v2/models/mlp/pin/x1"), 400, "malformed version 'x1': expected a decimal integer");
  expect_error(a.post("/v2/models/mlp/pin/-1"), 400, "malformed version '-1': expected a decimal integer");
  expect_error(a.post("/v2/models/mlp/reload/99999999999999999999999"), 400,
               "malformed version '99999999999999999999999': expected a decimal integer");
}

TEST(AdminServer, RollbackWithoutAPreviousVersionIs409) {
  Admin a;
  a.start();
  expect_error(a.post("/v2/models/mlp/rollback"), 409, "registry: no previous version to roll back to");
  EXPECT_EQ(a.registry->current_version(), 1u);
}

TEST(AdminServer, ReloadOfAVersionWithoutAFileIs404) {
  Admin a;
  a.start();
  expect_error(a.post("/v2/models/mlp/reload/9"), 404, "registry: no file is known for version 9");
}

TEST(AdminServer, ReloadOfAFileThatNoLongerPassesIs409WithTheReason) {
  Admin a;
  a.start();
  install(a.dir.path(), "model_epoch1.pt", "golden_mismatch.pt");  // the served version's file, now corrupt
  const auto response = a.post("/v2/models/mlp/reload");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 409) << response->body;
  const Json body = Json::parse(response->body);
  EXPECT_EQ(body["reason"], "golden_mismatch");
  EXPECT_EQ(body["version"], 1);
  EXPECT_NE(body["error"].get<std::string>().find("golden"), std::string::npos) << body["error"];
  EXPECT_EQ(a.registry->current_version(), 1u) << "the served version keeps serving";
}

TEST(AdminServer, ControlOfAnUnknownModelIs404OnlyAfterAuthorization) {
  Admin a;
  a.start();
  expect_error(a.post("/v2/models/other/unpin", {}), 401,
               "model control needs an Authorization: Bearer <token> header");
  expect_error(a.post("/v2/models/other/unpin"), 404, "unknown model 'other' (serving 'mlp')");
}

TEST(AdminServer, ControlIsDisabledWithoutATokenFile) {
  Admin a;
  AdminServerConfig c = a.config();
  c.token_file.clear();
  a.start(c);
  expect_error(a.post("/v2/models/mlp/unpin"), 403, "model control is disabled: the admin server has no token file");
}

TEST(AdminServer, ControlWithoutARegistryIs404) {
  Admin a;
  auto slot = std::make_shared<ModelSlot>(load_torchscript(model_path("mlp.pt")));
  AdminServerConfig c = a.config();
  a.server = AdminServer::start(c, {.slot = slot.get()});
  expect_error(a.post("/v2/models/mlp/rollback"), 404,
               "model control needs a ModelRegistry: this admin server has none");
}

// ---- start-up refusals ----

void expect_start_error(const AdminServerConfig& config, ErrorCode code, const std::string& message) {
  try {
    AdminServer::start(config, {});
    ADD_FAILURE() << "start() did not throw; expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(AdminServer, TokenFileWithMode0644IsRefusedAtStart) {
  Admin a;
  AdminServerConfig c = a.config();
  fs::permissions(a.token_file,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  expect_start_error(c, ErrorCode::kUnsafeFile,
                     "admin token file " + a.token_file.string() +
                         " has mode 0644: it must be 0600 or stricter (no group or other access)");
  fs::permissions(a.token_file, fs::perms::owner_read | fs::perms::group_write);
  expect_start_error(c, ErrorCode::kUnsafeFile,
                     "admin token file " + a.token_file.string() +
                         " has mode 0420: it must be 0600 or stricter (no group or other access)");
  fs::permissions(a.token_file, fs::perms::owner_read);  // 0400 is stricter: accepted
  a.start(c);
  EXPECT_GT(a.server->port(), 0);
}

TEST(AdminServer, MissingEmptyOrUnsendableTokenFileIsRefusedAtStart) {
  Admin a;
  AdminServerConfig c = a.config();
  c.token_file = a.dir.path() / "missing.token";
  expect_start_error(c, ErrorCode::kFileNotFound,
                     "cannot open admin token file " + c.token_file.string() + ": No such file or directory");
  c.token_file = write_token(a.dir.path(), " \n\t\n", fs::perms::owner_read | fs::perms::owner_write);
  expect_start_error(c, ErrorCode::kInvalidConfig, "admin token file " + c.token_file.string() + " is empty");
  c.token_file = write_token(a.dir.path(), "two words\n", fs::perms::owner_read | fs::perms::owner_write);
  expect_start_error(c, ErrorCode::kInvalidConfig,
                     "admin token file " + c.token_file.string() +
                         " holds a byte a bearer token cannot carry (only visible ASCII) at offset 3");
  c.token_file = write_token(a.dir.path(), std::string(5000, 'a'), fs::perms::owner_read | fs::perms::owner_write);
  expect_start_error(c, ErrorCode::kTooLarge,
                     "admin token file " + c.token_file.string() + " is larger than 4096 bytes");
  c.token_file = a.dir.path();
  expect_start_error(c, ErrorCode::kUnsafeFile, "admin token file " + c.token_file.string() + " is not a regular file");
}

TEST(AdminServer, BadConfigIsRefusedAtStart) {
  AdminServerConfig c;
  c.bind_address = "localhost";
  expect_start_error(c, ErrorCode::kInvalidConfig, "admin server: bind_address 'localhost' is not an IP address");
  c = {};
  c.threads = 0;
  expect_start_error(c, ErrorCode::kInvalidConfig, "admin server: threads must be 1..64, not 0");
  c = {};
  c.max_connections = 0;
  expect_start_error(c, ErrorCode::kInvalidConfig, "admin server: max_connections must be at least 1");
  c = {};
  c.request_timeout = 0ms;
  expect_start_error(c, ErrorCode::kInvalidConfig, "admin server: request_timeout must be positive");
  c = {};
  c.max_header_bytes = 10;
  expect_start_error(c, ErrorCode::kInvalidConfig, "admin server: max_header_bytes must be 256..1048576, not 10");
}

TEST(AdminServer, APortInUseIsRefusedAtStart) {
  auto first = AdminServer::start(quiet(), {});
  AdminServerConfig c;
  c.port = first->port();
  expect_start_error(
      c, ErrorCode::kInvalidConfig,
      "admin server cannot bind 127.0.0.1:" + std::to_string(first->port()) + ": Address already in use");
}

// ---- the protocol: malformed requests, limits, timeouts, keep-alive, the connection cap ----

struct Bare {
  explicit Bare(AdminServerConfig c = {}) {
    c.log = [](const LogRecord&) {};
    server = AdminServer::start(std::move(c), {});
  }
  std::unique_ptr<AdminServer> server;
};

TEST(AdminServer, MalformedRequestLineIs400AndTheConnectionCloses) {
  Bare b;
  Client client(b.server->port());
  ASSERT_TRUE(client.send("GARBAGE\r\n\r\n"));
  const auto response = client.read_response();
  expect_error(response, 400, "malformed request: bad method");
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(client.closed_within(5s));
}

TEST(AdminServer, MalformedHeaderIs400AndTheConnectionCloses) {
  Bare b;
  Client client(b.server->port());
  ASSERT_TRUE(client.send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"));
  expect_error(client.read_response(), 400, "malformed request: bad field");
  EXPECT_TRUE(client.closed_within(5s));
  Client version(b.server->port());
  ASSERT_TRUE(version.send("GET /v2/health/live HTTP/9\r\n\r\n"));
  expect_error(version.read_response(), 400, "malformed request: bad version");
}

TEST(AdminServer, OversizedHeaderIs431AndTheConnectionCloses) {
  AdminServerConfig c;
  c.max_header_bytes = 1024;
  Bare b(c);
  Client client(b.server->port());
  const auto response = client.request("GET", "/v2/health/live", {"X-Filler: " + std::string(2000, 'a')});
  expect_error(response, 431, "request header fields too large");
  EXPECT_TRUE(client.closed_within(5s));
  // Just under the limit is served.
  const auto fits = Client(b.server->port()).request("GET", "/v2/health/live", {"X-Filler: " + std::string(900, 'a')});
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 200);
}

TEST(AdminServer, OversizedBodyIs413AndTheConnectionCloses) {
  AdminServerConfig c;
  c.max_body_bytes = 100;
  Bare b(c);
  {  // announced by Content-Length: refused before the body is read
    Client client(b.server->port());
    ASSERT_TRUE(client.send("POST /v2/models/m/unpin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"));
    expect_error(client.read_response(), 413, "request body too large");
    EXPECT_TRUE(client.closed_within(5s));
  }
  {  // chunked
    Client client(b.server->port());
    ASSERT_TRUE(
        client.send("POST /v2/models/m/unpin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "c8\r\n" +
                    std::string(200, 'b') + "\r\n0\r\n\r\n"));
    expect_error(client.read_response(), 413, "request body too large");
    EXPECT_TRUE(client.closed_within(5s));
  }
}

TEST(AdminServer, SlowClientSendingHalfAHeaderIsCutByTheRequestTimeout) {
  AdminServerConfig c;
  c.request_timeout = 300ms;
  Bare b(c);
  const auto begin = std::chrono::steady_clock::now();  // before the connect: the timeout runs from the accept
  Client client(b.server->port());
  ASSERT_TRUE(client.send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Half: "));
  EXPECT_TRUE(client.closed_within(10s)) << "a half-sent header must not hold the connection open";
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 250ms) << "cut before request_timeout";
  ASSERT_TRUE(wait_until([&] { return b.server->metrics().request_timeouts == 1; }, 10s));
}

TEST(AdminServer, TricklingBytesDoesNotExtendTheRequestTimeout) {
  AdminServerConfig c;
  c.request_timeout = 300ms;
  Bare b(c);
  Client client(b.server->port());
  const auto begin = std::chrono::steady_clock::now();
  ASSERT_TRUE(client.send("GET /v2/health/live HTTP/1.1\r\n"));
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {  // a byte every 50 ms for up to 5 s
    closed = !client.send("X-Drip: 1\r\n") || client.closed_within(50ms);
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 4s);
}

TEST(AdminServer, IdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  AdminServerConfig c;
  c.idle_timeout = 300ms;
  Bare b(c);
  Client client(b.server->port());
  const auto response = client.request("GET", "/v2/health/live");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("connection"), "") << "HTTP/1.1 keeps the connection";
  EXPECT_TRUE(client.closed_within(10s));
  ASSERT_TRUE(wait_until([&] { return b.server->metrics().idle_timeouts == 1; }, 10s));
  EXPECT_EQ(b.server->metrics().request_timeouts, 0u);
}

TEST(AdminServer, PipelinedRequestsAreAnsweredInOrder) {
  Bare b;
  Client client(b.server->port());
  ASSERT_TRUE(client.send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto first = client.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  expect_error(client.read_response(), 404, "no such endpoint: /nope");
}

TEST(AdminServer, Http10RequestIsAnsweredThenClosed) {
  Bare b;
  Client client(b.server->port());
  ASSERT_TRUE(client.send("GET /v2/health/live HTTP/1.0\r\n\r\n"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(client.closed_within(5s));
}

TEST(AdminServer, ConnectionsOverTheCapAre503ClosedAndCounted) {
  AdminServerConfig c;
  c.max_connections = 4;
  Bare b(c);
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Client>(b.server->port()));
    const auto response = held.back()->request("GET", "/v2/health/live");  // accepted and counted as active
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200);
  }
  EXPECT_EQ(b.server->metrics().connections_active, 4u);
  {
    Client over(b.server->port());
    const auto response = over.request("GET", "/v2/health/live");
    expect_error(response, 503, "too many connections: the admin server's max_connections is reached");
    EXPECT_EQ(response->header("connection"), "close");
    EXPECT_TRUE(over.closed_within(5s));
  }
  EXPECT_EQ(b.server->metrics().connections_rejected, 1u);
  // A freed place is taken again.
  held.pop_back();
  ASSERT_TRUE(wait_until([&] { return b.server->metrics().connections_active == 3; }, 10s));
  const auto response = Client(b.server->port()).request("GET", "/v2/health/live");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  // The held connections still work.
  const auto again = held.front()->request("GET", "/v2/health/live");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST(AdminServer, TwoHundredFortyKeepAliveConnectionsEachServeSeveralRequests) {
  Admin a;
  AdminServerConfig c = a.config();
  c.threads = 2;
  c.max_connections = 256;
  a.start(c);
  constexpr int kThreads = 8, kPerThread = 30, kRounds = 5;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<std::unique_ptr<Client>> clients;
      for (int i = 0; i < kPerThread; ++i) clients.push_back(std::make_unique<Client>(a.server->port()));
      for (int round = 0; round < kRounds; ++round) {
        const std::string target = round % 2 == 0 ? "/v2/health/ready" : "/v2/models/mlp/versions";
        for (auto& client : clients) {  // send on every connection, then read every answer
          if (!client->send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")) failed.fetch_add(1);
        }
        for (auto& client : clients) {
          const auto response = client->read_response();
          (response && response->status == 200 ? ok : failed).fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(ok.load(), kThreads * kPerThread * kRounds);
  const AdminServerMetrics m = a.server->metrics();
  EXPECT_EQ(m.connections_accepted, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(m.connections_rejected, 0u);
  EXPECT_EQ(m.responses_2xx, static_cast<std::uint64_t>(kThreads * kPerThread * kRounds));
}

TEST(AdminServer, StopClosesOpenConnectionsAndIsIdempotent) {
  Bare b;
  Client client(b.server->port());
  ASSERT_TRUE(client.request("GET", "/v2/health/live"));
  b.server->stop();
  EXPECT_TRUE(client.closed_within(5s));
  b.server->stop();
  EXPECT_FALSE(Client(b.server->port()).connected()) << "nothing listens after stop()";
}

}  // namespace
}  // namespace tickinfer

// ---- inference: POST /v2/models/{m}/infer through the pipeline ----

namespace tickinfer {
namespace {

// The Admin fixture's registry, a pipeline over its slot, and a server with inference on that pipeline.
struct Inference {
  explicit Inference(AdminServerConfig c = {}, bool with_infer = true) {
    PipelineConfig pc;
    pc.max_batch = 16;
    pc.max_delay_us = 200;
    pipeline = Pipeline::create(pc, admin.registry->slot(), make_cpu_backend());
    c.log = [](const LogRecord&) {};
    admin.server = AdminServer::start(
        std::move(c),
        {.pipeline = pipeline.get(), .registry = admin.registry.get(), .infer = with_infer ? pipeline.get() : nullptr});
  }
  ~Inference() { admin.server->stop(); }  // before the pipeline goes
  std::size_t width() const { return admin.registry->slot()->current()->input_width(); }
  static std::string body(std::size_t rows, std::size_t width, float scale = 0.1f) {
    Json data = Json::array();
    for (std::size_t i = 0; i < rows * width; ++i) data.push_back(scale * static_cast<float>(i % 17) - 0.5f);
    return Json{
        {"id", "req-7"},
        {"inputs",
         Json::array({Json{{"name", "features"}, {"shape", {rows, width}}, {"datatype", "FP32"}, {"data", data}}})}}
        .dump();
  }

  Admin admin;
  std::unique_ptr<Pipeline> pipeline;
};

TEST(AdminServerInfer, EachRowRunsThroughThePipelineAndTheAnswerIsKServeOutputs) {
  Inference inf;
  const std::size_t width = inf.width();
  const std::string request = Inference::body(5, width);
  const auto response = Client(inf.admin.server->port()).request("POST", "/v2/models/mlp/infer", {}, request);
  ASSERT_TRUE(response.has_value());
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(response->header("content-type"), "application/json");
  const Json answer = Json::parse(response->body);
  EXPECT_EQ(answer["model_name"], "mlp");
  EXPECT_EQ(answer["model_version"], "1");
  EXPECT_EQ(answer["id"], "req-7");
  ASSERT_EQ(answer["outputs"].size(), 1u);
  const Json& out = answer["outputs"][0];
  EXPECT_EQ(out["name"], "outputs");
  EXPECT_EQ(out["datatype"], "FP32");
  const auto model = inf.admin.registry->slot()->current();
  EXPECT_EQ(out["shape"], Json({5, model->output_width()}));
  // The same rows through the model directly, one at a time.
  const Json in = Json::parse(request)["inputs"][0]["data"];
  const auto backend = make_cpu_backend();  // outlives its runner
  auto runner = backend->make_runner(1, width);
  for (std::size_t r = 0; r < 5; ++r) {
    const auto staged = runner->input(1);
    for (std::size_t k = 0; k < width; ++k) staged[k] = in[r * width + k].get<float>();
    const auto expected = runner->run(*model, 1);
    for (std::size_t k = 0; k < model->output_width(); ++k)
      EXPECT_NEAR(out["data"][r * model->output_width() + k].get<float>(), expected[k], 1e-5f) << "row " << r;
  }
  EXPECT_GE(inf.pipeline->metrics().snapshot().ok, 5u);
}

TEST(AdminServerInfer, DirectInferenceAnswersEachRowFromTheIoThreadAsTheModelComputesItWithoutThePipeline) {
  Admin admin;
  AdminServerConfig c;
  c.log = [](const LogRecord&) {};
  c.threads = 2;
  admin.server =
      AdminServer::start(c, {.registry = admin.registry.get(), .direct_infer = admin.registry->slot().get()});
  const auto model = admin.registry->slot()->current();
  ASSERT_EQ(model->engine(), "native") << "direct inference needs a native plan";
  const std::size_t width = model->input_width();
  const std::string request = Inference::body(7, width);
  const Json in = Json::parse(request)["inputs"][0]["data"];
  const auto backend = make_cpu_backend();
  auto runner = backend->make_runner(1, width);
  // Several connections at once: each request takes its own Predictor.
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        const auto response = Client(admin.server->port()).request("POST", "/v2/models/mlp/infer", {}, request);
        if (response && response->status == 200) good.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good.load(), 100);
  const auto response = Client(admin.server->port()).request("POST", "/v2/models/mlp/infer", {}, request);
  ASSERT_TRUE(response.has_value());
  ASSERT_EQ(response->status, 200) << response->body;
  const Json answer = Json::parse(response->body);
  EXPECT_EQ(answer["model_version"], "1");
  EXPECT_EQ(answer["id"], "req-7");
  const Json& out = answer["outputs"][0];
  EXPECT_EQ(out["shape"], Json({7, model->output_width()}));
  for (std::size_t r = 0; r < 7; ++r) {
    const auto staged = runner->input(1);
    for (std::size_t k = 0; k < width; ++k) staged[k] = in[r * width + k].get<float>();
    const auto expected = runner->run(*model, 1);
    for (std::size_t k = 0; k < model->output_width(); ++k)
      EXPECT_NEAR(out["data"][r * model->output_width() + k].get<float>(), expected[k], 1e-5f) << "row " << r;
  }
  // The same refusals as through the pipeline.
  expect_error(Client(admin.server->port())
                   .request("POST", "/v2/models/mlp/infer", {},
                            "{\"inputs\":[{\"name\":\"features\",\"shape\":[1,3],\"datatype\":\"FP32\","
                            "\"data\":[1,2,3]}]}"),
               400, "input 'features' has shape [1, 3]: width 3, the model's is " + std::to_string(width));
}

TEST(AdminServerInfer, PipelineAndDirectInferenceTogetherAreRefused) {
  Inference inf({}, /*with_infer=*/false);
  try {
    AdminServer::start({}, {.infer = inf.pipeline.get(), .direct_infer = inf.admin.registry->slot().get()});
    FAIL() << "started with both";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
    EXPECT_STREQ(e.what(), "admin server: give at most one of AdminSources::infer and direct_infer");
  }
}

TEST(AdminServerInfer, BadRequestsAre400WithTheReasonAndNothingIsSubmitted) {
  Inference inf;
  const std::uint16_t port = inf.admin.server->port();
  expect_error(Client(port).request("POST", "/v2/models/mlp/infer", {}, "{\"inputs\": ["), 400,
               "malformed JSON at byte 13: parse error at line 1, column 13: syntax error while parsing value - "
               "unexpected end of input; expected '[', '{', or a literal");
  expect_error(Client(port).request("POST", "/v2/models/mlp/infer", {},
                                    "{\"inputs\":[{\"name\":\"features\",\"shape\":[1,3],\"datatype\":\"FP32\","
                                    "\"data\":[1,2,3]}]}"),
               400, "input 'features' has shape [1, 3]: width 3, the model's is " + std::to_string(inf.width()));
  std::string fp64 = Inference::body(1, inf.width());
  fp64.replace(fp64.find("FP32"), 4, "FP64");
  const auto refused = Client(port).request("POST", "/v2/models/mlp/infer", {}, fp64);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("FP64"), std::string::npos) << refused->body;
  expect_error(Client(port).request("POST", "/v2/models/other/infer", {}, Inference::body(1, inf.width())), 404,
               "unknown model 'other' (serving 'mlp')");
  const auto get = Client(port).request("GET", "/v2/models/mlp/infer");
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(get->header("allow"), "POST");
  EXPECT_EQ(inf.pipeline->metrics().snapshot().accepted, 0u);
}

TEST(AdminServerInfer, MoreRowsThanTheLimitAre400AndWithoutAnInferencePipelineTheEndpointIs404) {
  AdminServerConfig c;
  c.max_infer_rows = 4;
  c.max_body_bytes = 1 << 20;
  Inference inf(c);
  const auto response =
      Client(inf.admin.server->port()).request("POST", "/v2/models/mlp/infer", {}, Inference::body(5, inf.width()));
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 400);
  EXPECT_NE(response->body.find("5 rows"), std::string::npos) << response->body;

  Inference off({}, /*with_infer=*/false);
  expect_error(
      Client(off.admin.server->port()).request("POST", "/v2/models/mlp/infer", {}, Inference::body(1, off.width())),
      404, "inference is not enabled on this server");
}

TEST(AdminServerInfer, RowsThePipelineRefusesAreAnswered503AsShed) {
  Inference inf;
  inf.pipeline->shutdown();  // it refuses every submit from now on
  expect_error(
      Client(inf.admin.server->port()).request("POST", "/v2/models/mlp/infer", {}, Inference::body(3, inf.width())),
      503, "3 of 3 rows shed: the pipeline's queue is full (overload)");
}

TEST(AdminServerInfer, ASequenceModelsPipelineIsRefused501ItsRowsNeedAKey) {
  auto slot = std::make_shared<ModelSlot>(load_torchscript(model_path("gru.pt")));
  PipelineConfig pc;
  pc.keys = 4;
  auto pipeline = Pipeline::create(pc, slot, make_cpu_backend());
  auto server = AdminServer::start(quiet(), {.pipeline = pipeline.get(), .slot = slot.get(), .infer = pipeline.get()});
  const auto model = slot->current();
  const std::string body = Inference::body(1, model->input_width());
  expect_error(Client(server->port()).request("POST", "/v2/models/" + model->metadata().name + "/infer", {}, body), 501,
               "inference over HTTP runs stateless models only: this pipeline keeps per-key state");
  server->stop();
}

// Many keep-alive connections at once, each with inference requests in flight together: every answer is the
// model's, none lost; the workers batch rows of different connections together.
TEST(AdminServerInfer, AThousandConcurrentKeepAliveConnectionsEachGetTheirAnswers) {
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  const rlim_t wanted = 2 * 1000 + 256;  // client and server ends in this one process
  if (files.rlim_cur < wanted && files.rlim_max >= wanted) {
    files.rlim_cur = wanted;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  ::getrlimit(RLIMIT_NOFILE, &files);
  const int connections = files.rlim_cur >= wanted ? 1000 : static_cast<int>((files.rlim_cur - 256) / 2);
  AdminServerConfig c;
  c.max_connections = 1024;
  c.threads = 2;
  Inference inf(c);
  const std::string request = Inference::body(2, inf.width());
  std::string bytes =
      "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(request.size()) +
      "\r\n\r\n" + request;
  constexpr int kThreads = 8, kRounds = 3;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::unique_ptr<Client>> clients;
      for (int i = t; i < connections; i += kThreads)
        clients.push_back(std::make_unique<Client>(inf.admin.server->port()));
      for (int round = 0; round < kRounds; ++round) {
        for (auto& client : clients)
          if (!client->send(bytes)) failed.fetch_add(1);
        for (auto& client : clients) {
          const auto response = client->read_response();
          (response && response->status == 200 && response->body.find("\"shape\":[2,") != std::string::npos ? ok
                                                                                                            : failed)
              .fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(ok.load(), connections * kRounds) << connections << " connections";
  const MetricsSnapshot m = inf.pipeline->metrics().snapshot();
  EXPECT_EQ(m.ok, static_cast<std::uint64_t>(2 * connections * kRounds));
  EXPECT_LT(m.batches, m.ok) << "rows of concurrent requests share batches";
}

}  // namespace
}  // namespace tickinfer
