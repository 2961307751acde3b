// The admin server's sockets: an Asio acceptor and one Beast session per connection, each on its own strand; the
// I/O threads run them, one more thread runs model control (the registry's blocking calls).
#include "tickinfer/admin_server.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "serve/http_message.hpp"
#include "serve/infer_call.hpp"
#include "serve/router.hpp"
#include "serve/server_counters.hpp"
#include "serve/token.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/mutex.hpp"

namespace tickinfer {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kReadChunk = 4096;
// How long a closing connection may keep sending (its bytes are read and dropped) before it is cut: reading them
// lets the peer receive the answer before the close, instead of a reset that can destroy it in flight.
constexpr std::chrono::milliseconds kLinger{1000};
constexpr std::chrono::milliseconds kAcceptRetry{100};  // after an accept error (e.g. out of file descriptors)

}  // namespace

namespace {

// AdminServer::Impl's state, reachable from the sessions (Impl itself is private to AdminServer).
struct ServerState {
  explicit ServerState(AdminServerConfig c) : config(std::move(c)) {}

  void log(LogLevel level, std::string message) {
    emit_log(config.log, {level, "admin", std::move(message), {}, std::nullopt, std::nullopt});
  }
  void accept();
  void on_accept(const beast::error_code& error, tcp::socket socket);
  void read_completions();

  // Sessions (destroyed with the pending handlers of the io_context or the control pool) use config, counters
  // and router, so those are declared first. Inside Io, the control pool goes before the io_context its jobs
  // post back to. stop() destroys Io: that closes every connection.
  struct Io {
    asio::io_context context;
    asio::executor_work_guard<asio::io_context::executor_type> work{context.get_executor()};
    tcp::acceptor acceptor{context};
    asio::steady_timer accept_retry{context};
    asio::thread_pool control{1};
    asio::posix::stream_descriptor completions{context};  // the inference doorbell (a dup of its eventfd)
    std::uint64_t rung = 0;                               // its counter, read to reset it
  };
  const AdminServerConfig config;
  internal::ServerCounters counters;
  std::atomic<std::uint64_t> lingering{0};  // rejected connections still being answered 503
  std::unique_ptr<internal::Router> router;
  std::unique_ptr<internal::InferDispatcher> infer;  // with AdminSources::infer; outlives io (stop() drains it)
  std::unique_ptr<Io> io = std::make_unique<Io>();
  std::vector<std::thread> threads;
  std::uint16_t port = 0;

  Mutex stop_mutex;
  bool stopped TICKINFER_GUARDED_BY(stop_mutex) = false;
};

/// One connection. Every handler runs on the connection's strand (its socket's executor).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerState& server, bool rejected)
      : stream_(std::move(socket)),
        server_(server),
        buffer_(server.config.max_header_bytes + server.config.max_body_bytes + 2 * kReadChunk),
        rejected_(rejected) {}
  ~Session() {
    // Relaxed: statistics and the connection cap's estimate.
    if (rejected_) {
      server_.lingering.fetch_sub(1, std::memory_order_relaxed);
    } else {
      server_.counters.connections_active.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->rejected_) {
        self->write(
            internal::error_response(503, "too many connections: the admin server's max_connections is reached"),
            /*keep_alive=*/false, 11);
        return;
      }
      // The first request's timeout runs from the accept.
      self->stream_.expires_after(self->server_.config.request_timeout);
      self->read_request();
    });
  }

 private:
  // Keep-alive: waits up to idle_timeout for the next request's first byte, then gives it request_timeout.
  void wait_for_request() {
    if (buffer_.size() > 0) {  // pipelined: it has begun already
      stream_.expires_after(server_.config.request_timeout);
      read_request();
      return;
    }
    stream_.expires_after(server_.config.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](const beast::error_code& error, std::size_t n) {
                              if (error) {
                                if (error == beast::error::timeout) self->server_.counters.idle_timeouts.add();
                                self->close();
                                return;
                              }
                              self->buffer_.commit(n);
                              self->stream_.expires_after(self->server_.config.request_timeout);
                              self->read_request();
                            });
  }

  void read_request() {
    parser_.emplace();
    internal::limit_parser(*parser_, server_.config.max_header_bytes, server_.config.max_body_bytes);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](const beast::error_code& error, std::size_t) { self->on_read(error); });
  }

  void on_read(const beast::error_code& error) {
    if (error) {
      if (error == beast::error::timeout) {  // the stream closed the socket
        server_.counters.request_timeouts.add();
        return;
      }
      if (auto response = internal::parse_error_response(error)) {
        write(std::move(*response), /*keep_alive=*/false, 11);
        return;
      }
      close();
      return;
    }
    const internal::BeastRequest& request = parser_->get();
    const bool keep_alive = request.keep_alive();
    const unsigned version = request.version();
    internal::Router::Routed routed = internal::route_request(*server_.router, request);
    if (routed.infer) {
      if (!server_.infer) {
        write(internal::error_response(404, "inference is not enabled on this server"), keep_alive, version);
        return;
      }
      // The answer comes when the call's last row completed: complete() runs this on the I/O thread that read it.
      routed.infer->done = [self = shared_from_this(), keep_alive, version](internal::HttpResponse response) {
        asio::post(self->stream_.get_executor(), [self, response = std::move(response), keep_alive, version]() mutable {
          self->write(std::move(response), keep_alive, version);
        });
      };
      server_.infer->submit(std::move(routed.infer));
      return;
    }
    if (!routed.blocking) {
      write(std::move(routed.response), keep_alive, version);
      return;
    }
    // Model control may block on a load: it runs on the control thread, and the answer comes back to this strand.
    asio::post(server_.io->control, [self = shared_from_this(), job = std::move(routed.blocking), keep_alive, version] {
      internal::HttpResponse response = job();
      asio::post(self->stream_.get_executor(), [self, response = std::move(response), keep_alive, version]() mutable {
        self->write(std::move(response), keep_alive, version);
      });
    });
  }

  void write(internal::HttpResponse response, bool keep_alive, unsigned version) {
    server_.counters.count_response(response.status);
    response_ = internal::make_response(std::move(response), version, keep_alive);
    stream_.expires_after(rejected_ ? kLinger : server_.config.request_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), keep_alive](const beast::error_code& error, std::size_t) {
                        if (error) {
                          if (error == beast::error::timeout && !self->rejected_) {
                            self->server_.counters.request_timeouts.add();
                          }
                          self->close();
                          return;
                        }
                        if (keep_alive) {
                          self->wait_for_request();
                        } else {
                          self->linger_and_close();
                        }
                      });
  }

  // Half-closes, then reads and drops what the peer still sends until it closes or kLinger passes.
  void linger_and_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLinger);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](const beast::error_code& error, std::size_t) {
                              if (error) {
                                self->close();
                                return;
                              }
                              self->drain();
                            });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  ServerState& server_;
  beast::flat_buffer buffer_;
  std::optional<internal::RequestParser> parser_;
  internal::BeastResponse response_;
  std::array<char, kReadChunk> scratch_{};
  const bool rejected_;
};

}  // namespace

struct AdminServer::Impl : ServerState {
  using ServerState::ServerState;
};

void ServerState::accept() {
  // Each connection gets its own strand, so with several I/O threads one connection's handlers never overlap.
  io->acceptor.async_accept(asio::make_strand(io->context), [this](const beast::error_code& error, tcp::socket socket) {
    on_accept(error, std::move(socket));
  });
}

// Completed inference calls: a read of the doorbell resets it, then complete() answers every call waiting. (A read,
// not a wait: Asio's epoll reactor is edge-triggered, and a read that finds the counter set completes at once,
// where a wait re-armed after the edge would sleep through it.)
void ServerState::read_completions() {
  io->completions.async_read_some(asio::buffer(&io->rung, sizeof io->rung),
                                  [this](const beast::error_code& error, std::size_t) {
                                    if (error) {
                                      if (error != asio::error::operation_aborted)
                                        log(LogLevel::kError, "inference doorbell: " + error.message());
                                      return;
                                    }
                                    infer->complete();
                                    read_completions();
                                  });
}

void ServerState::on_accept(const beast::error_code& error, tcp::socket socket) {
  if (error == asio::error::operation_aborted || !io->acceptor.is_open()) return;  // stopping
  if (error) {
    log(LogLevel::kWarning, std::string("accept failed: ").append(error.message()).append("; retrying"));
    io->accept_retry.expires_after(kAcceptRetry);
    io->accept_retry.async_wait([this](const beast::error_code& e) {
      if (!e) accept();
    });
    return;
  }
  // Only this handler increments connections_active and one accept is pending at a time, so the cap holds.
  // Relaxed: the count is the only data.
  if (counters.connections_active.load(std::memory_order_relaxed) >= config.max_connections) {
    counters.connections_rejected.add();
    if (lingering.load(std::memory_order_relaxed) < config.max_connections) {
      lingering.fetch_add(1, std::memory_order_relaxed);
      std::make_shared<Session>(std::move(socket), *this, /*rejected=*/true)->start();
    } else {
      beast::error_code ignored;
      socket.close(ignored);  // a flood: not even a 503
    }
  } else {
    counters.connections_active.fetch_add(1, std::memory_order_relaxed);
    counters.connections_accepted.add();
    std::make_shared<Session>(std::move(socket), *this, /*rejected=*/false)->start();
  }
  accept();
}

namespace {

void check_config(const AdminServerConfig& c) {
  const auto refuse = [](const std::string& what) {
    throw Error(ErrorCode::kInvalidConfig, std::string("admin server: ").append(what));
  };
  if (c.threads < 1 || c.threads > 64) refuse("threads must be 1..64, not " + std::to_string(c.threads));
  if (c.max_connections < 1) refuse("max_connections must be at least 1");
  if (c.max_header_bytes < 256 || c.max_header_bytes > (std::size_t{1} << 20)) {
    refuse("max_header_bytes must be 256..1048576, not " + std::to_string(c.max_header_bytes));
  }
  if (c.max_body_bytes > (std::size_t{1} << 24)) {
    refuse("max_body_bytes must be at most 16777216, not " + std::to_string(c.max_body_bytes));
  }
  if (c.request_timeout.count() <= 0) refuse("request_timeout must be positive");
  if (c.idle_timeout.count() <= 0) refuse("idle_timeout must be positive");
  if (c.max_infer_rows < 1) refuse("max_infer_rows must be at least 1");
  if (c.infer_deadline.count() <= 0) refuse("infer_deadline must be positive");
}

}  // namespace

std::unique_ptr<AdminServer> AdminServer::start(AdminServerConfig config, AdminSources sources) {
  check_config(config);
  beast::error_code error;
  const asio::ip::address address = asio::ip::make_address(config.bind_address, error);
  if (error) {
    throw Error(
        ErrorCode::kInvalidConfig,
        std::string("admin server: bind_address '").append(config.bind_address).append("' is not an IP address"));
  }
  std::string token;
  if (!config.token_file.empty()) token = internal::read_token_file(config.token_file);
  const bool control = !token.empty();

  if (sources.infer != nullptr && sources.direct_infer != nullptr)
    throw Error(ErrorCode::kInvalidConfig, "admin server: give at most one of AdminSources::infer and direct_infer");
  if (sources.infer != nullptr && config.max_connections > 4096) {
    throw Error(ErrorCode::kInvalidConfig, "admin server: with inference, max_connections must be at most 4096");
  }
  auto impl = std::make_unique<Impl>(std::move(config));
  impl->router = std::make_unique<internal::Router>(sources, std::move(token), impl->counters, impl->config.log,
                                                    impl->config.max_infer_rows);
  if (sources.infer != nullptr) {
    impl->infer = std::make_unique<internal::InferDispatcher>(*sources.infer, impl->config.infer_deadline);
    const int fd = ::dup(impl->infer->notify_fd());
    if (fd < 0) throw Error(ErrorCode::kInvalidConfig, "admin server: cannot dup the inference eventfd");
    impl->io->completions.assign(fd);
    impl->read_completions();
  }
  const tcp::endpoint endpoint(address, impl->config.port);
  std::ostringstream where;
  where << endpoint;
  const auto fail = [&](const char* step) {
    throw Error(ErrorCode::kInvalidConfig, std::string("admin server cannot ")
                                               .append(step)
                                               .append(" ")
                                               .append(where.str())
                                               .append(": ")
                                               .append(error.message()));
  };
  impl->io->acceptor.open(endpoint.protocol(), error);
  if (error) fail("open a socket for");
  impl->io->acceptor.set_option(asio::socket_base::reuse_address(true), error);
  if (error) fail("set SO_REUSEADDR on");
  impl->io->acceptor.bind(endpoint, error);
  if (error) fail("bind");
  impl->io->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) fail("listen on");
  impl->port = impl->io->acceptor.local_endpoint(error).port();
  if (error) fail("read the port of");

  impl->accept();
  Impl& server = *impl;
  for (std::size_t i = 0; i < server.config.threads; ++i) {
    server.threads.emplace_back([&server] {
      for (;;) {
        try {
          server.io->context.run();
          return;
        } catch (const std::exception& e) {  // a handler threw (out of memory): log it and keep serving
          server.log(LogLevel::kError, std::string("I/O thread: ").append(e.what()));
        }
      }
    });
  }
  std::ostringstream listening;
  listening << "listening on " << asio::ip::tcp::endpoint(address, server.port)
            << (control ? " (model control enabled)" : " (model control disabled: no token file)");
  server.log(LogLevel::kInfo, listening.str());
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() { stop(); }

std::uint16_t AdminServer::port() const noexcept { return impl_->port; }

void AdminServer::stop() {
  MutexLock lock(impl_->stop_mutex);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->io->context.stop();  // every I/O thread returns; pending handlers are abandoned
  for (std::thread& thread : impl_->threads) thread.join();
  impl_->io->control.stop();
  impl_->io->control.join();  // a control call in progress (a reload) finishes first
  // Inference rows still in the pipeline complete (it runs, or its shutdown cancels them); their calls are dropped.
  if (impl_->infer) impl_->infer->drain();
  impl_->io.reset();     // closes the listener and every connection (their sessions are destroyed)
  impl_->infer.reset();  // its Producer must go before the pipeline does
  impl_->log(LogLevel::kInfo, "stopped");
}

AdminServerMetrics AdminServer::metrics() const { return impl_->counters.snapshot(); }

}  // namespace tickinfer
