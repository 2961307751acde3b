#include "serve/daemon/daemon.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.hpp"
#include "serve/daemon/config.hpp"
#include "serve/daemon/feed_intake.hpp"
#include "serve/daemon/net.hpp"
#include "serve/daemon/record_output.hpp"
#include "tickinfer/admin_server.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/features/schema.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/log.hpp"
#include "tickinfer/model.hpp"
#include "tickinfer/onnx.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/prediction_record.hpp"
#include "tickinfer/registry.hpp"
#include "tickinfer/torchscript.hpp"
#include "tickinfer/watcher.hpp"

namespace tickinfer::daemon {
namespace ti = ::tickinfer;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<const ti::Model> load_file(const std::string& path, const ti::LoadOptions& load) {
  const bool onnx = fs::path(path).extension() == ".onnx";
  if (onnx && load.engine == ti::Engine::kLibTorch)
    throw Error(ErrorCode::kInvalidConfig, path + ": an ONNX model runs on the native engine only");
  return onnx ? ti::load_onnx(path, load) : ti::load_torchscript(path, load);
}

fs::path newest_checkpoint(const fs::path& dir) {
  fs::path best;
  fs::file_time_type best_time{};
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto ext = entry.path().extension();
    if (!entry.is_regular_file() || (ext != ".pt" && ext != ".onnx")) continue;
    if (best.empty() || entry.last_write_time() > best_time) best = entry.path(), best_time = entry.last_write_time();
  }
  return best;
}

}  // namespace

int serve(const std::string& config_file, const std::vector<std::string>& overrides, const std::string& summary_json) {
  const ServeConfig c = load_serve_config(config_file, overrides);
  const ti::LogSink log = ti::stderr_log_sink();
  auto say = [&](ti::LogLevel level, std::string message) {
    ti::emit_log(log, {level, "serve", std::move(message), {}, std::nullopt, std::nullopt});
  };
  const auto schema = ti::features::load_feature_config(c.feature_config);

  // Signals: blocked in every thread (the ones started below inherit the mask), taken by sigwait() here.
  sigset_t signals;
  sigemptyset(&signals);
  for (const int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a closed stderr or socket is an error return, not the end of the process

  ti::LoadOptions load;
  load.engine = ti::parse_engine(c.engine);
  // Direct mode runs the native engine on the feed thread: a checkpoint it cannot run is refused at load (and never
  // replaces the serving model), not found out per event.
  if (c.direct()) load.engine = ti::Engine::kNative;
  ti::PipelineConfig pc;
  pc.keys = c.keys;
  pc.max_batch = c.max_batch;
  pc.max_delay_us = c.max_delay_us;
  pc.queue_capacity = c.queue_capacity;
  pc.workers = 1;  // the feed's result ring is single-producer: one worker pushes into it
  if (c.worker_core >= 0) pc.pin_cores = {c.worker_core};
  pc.idle_spin_us = static_cast<std::int64_t>(c.idle_spin_us);
  if (c.conflation == "supersede") pc.conflation = ti::Conflation::kSupersede;
  pc.idle = c.idle == "spin"    ? ti::IdleStrategy::kSpin
            : c.idle == "yield" ? ti::IdleStrategy::kSpinThenYield
                                : ti::IdleStrategy::kBlock;
  load.warmup_batch_sizes = ti::pipeline_batch_sizes(pc);  // every size the pipeline runs, for each new version
  std::unique_ptr<ti::ModelRegistry> registry;
  std::unique_ptr<ti::CheckpointWatcher> watcher;
  std::shared_ptr<ti::ModelSlot> slot;
  if (!c.model_dir.empty()) {
    if (!fs::is_directory(c.model_dir)) throw Error(ErrorCode::kFileNotFound, c.model_dir + ": not a directory");
    ti::RegistryConfig rc;
    rc.load = load;
    rc.load.expected_schema_hash = schema.hash();
    const fs::path initial = newest_checkpoint(c.model_dir);
    if (initial.empty()) throw Error(ErrorCode::kFileNotFound, c.model_dir + ": no checkpoint (.pt or .onnx)");
    registry = ti::ModelRegistry::create(rc, initial);
    slot = registry->slot();
    ti::WatcherConfig wc;
    wc.directory = c.model_dir;
    watcher = ti::CheckpointWatcher::create(wc, [&registry](const fs::path& p) { registry->offer(p); });
  } else {
    auto model = load_file(c.model_path, load);
    ti::features::check_schema(model->metadata(), schema, c.model_path);
    slot = std::make_shared<ti::ModelSlot>(model);
  }
  const auto model = slot->current();
  if (model->input_width() != schema.size())
    throw Error(ErrorCode::kWidthMismatch, "the model takes " + std::to_string(model->input_width()) + " features, " +
                                               c.feature_config + " computes " + std::to_string(schema.size()));

  auto pipeline = ti::Pipeline::create(pc, slot, ti::make_cpu_backend());
  // Room for every request the queue can hold, and the batch in flight: a result never finds the ring full.
  ResultQueue ring(c.queue_capacity + c.max_batch + 1, model->output_width());
  SubmitSlots times(2 * (c.queue_capacity + c.max_batch) + 2);
  SymbolNames names(c.keys);

  std::unique_ptr<ti::AdminServer> admin;
  if (!c.http.empty()) {
    ti::AdminServerConfig ac;
    ac.bind_address = c.http.host;
    ac.port = c.http.port;
    ac.token_file = c.token_file;
    ac.log = log;
    ac.max_body_bytes = c.http_max_body_bytes;
    ac.max_infer_rows = c.http_max_infer_rows;
    ac.infer_deadline = std::chrono::milliseconds(c.http_infer_deadline_ms);
    ac.max_connections = c.http_max_connections;
    ac.threads = c.http_threads;
    // Direct mode: HTTP rows too are predicted on the thread that received them (an I/O thread), no queue hop.
    admin = ti::AdminServer::start(ac, {.pipeline = pipeline.get(),
                                        .registry = registry.get(),
                                        .slot = slot.get(),
                                        .infer = c.direct() ? nullptr : pipeline.get(),
                                        .direct_infer = c.direct() ? slot.get() : nullptr});
  }
  // Direct mode: the feed thread sends the UDP records itself (and measures); the output thread serves TCP.
  std::unique_ptr<UdpSender> udp;
  if (!c.predictions_udp.empty()) udp = std::make_unique<UdpSender>(c);
  const bool feed_sends_udp = c.direct() && udp != nullptr;
  DirectOutputs direct;
  if (c.direct()) direct = {feed_sends_udp ? udp.get() : nullptr, c.predictions_tcp.empty() ? nullptr : &ring};
  Feed feed(c, schema, *pipeline, ring, times, names, log, slot, direct);
  Output output(c, ring, model->output_width(), times, names, log, feed_sends_udp ? nullptr : udp.get(),
                !feed_sends_udp);

  std::atomic<bool> stop_feed{false}, stop_output{false};
  // A thread that fails (out of memory, a socket error) stops the daemon the orderly way: SIGTERM to the main thread.
  auto guarded = [&](const char* name, auto body) {
    return [&say, name, body] {
      try {
        body();
      } catch (const std::exception& e) {
        say(ti::LogLevel::kError, std::string(name) + " thread failed: " + e.what() + "; stopping");
        ::kill(::getpid(), SIGTERM);
      }
    };
  };
  std::thread feed_thread(guarded("feed", [&] {
    if (!feed.run(stop_feed)) ::kill(::getpid(), SIGTERM);
  }));
  std::thread output_thread(guarded("output", [&] { output.run(stop_output); }));
  say(ti::LogLevel::kInfo, "serving " + model->metadata().name + " v" + std::to_string(model->version()) + " (" +
                               model->engine() + (c.direct() ? ", direct" : "") + ") on feed " + c.feed_listen.text() +
                               (c.feed_group.empty() ? "" : " group " + c.feed_group) + " (" + c.feed_format + ")" +
                               (c.predictions_udp.empty() ? "" : ", predictions udp " + c.predictions_udp.text()) +
                               (c.predictions_tcp.empty() ? "" : ", tcp " + c.predictions_tcp.text()) +
                               (admin ? ", http " + c.http.host + ":" + std::to_string(admin->port()) : ""));

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      if (watcher) {
        say(ti::LogLevel::kInfo, "SIGHUP: re-reading " + c.model_dir);
        watcher->rescan();
      } else {
        say(ti::LogLevel::kInfo, "SIGHUP: no model.dir to re-read");
      }
      continue;
    }
    say(ti::LogLevel::kInfo, std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": stopping the intake, draining");
    break;
  }
  stop_feed.store(true, std::memory_order_relaxed);
  feed_thread.join();
  // Drain: what was accepted completes (bounded by drain_timeout_ms), then the outputs flush.
  const std::int64_t give_up = ti::now_ns() + static_cast<std::int64_t>(c.drain_timeout_ms) * 1'000'000;
  while (ti::now_ns() < give_up) {
    const auto m = pipeline->metrics().snapshot();
    if (m.completed() >= m.accepted) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (watcher) watcher->stop();
  // Queued rows past the drain are cancelled first, so the admin server's stop (which waits for its inference rows)
  // does not wait for the whole queue; new HTTP rows are refused (503) from here on.
  pipeline->shutdown();  // anything still queued completes as cancelled, into the ring
  if (admin) admin->stop();
  stop_output.store(true, std::memory_order_release);
  output_thread.join();

  const auto m = pipeline->metrics().snapshot();
  const auto& fc = feed.counters;
  const std::uint64_t ok = m.ok + fc.ok.load();  // batched: the pipeline's; direct: the feed thread's
  const std::uint64_t records = c.direct() ? fc.submitted.load() : output.counters.records.load();  // one per event
  const auto ld = [](const std::atomic<std::uint64_t>& a) { return static_cast<unsigned long long>(a.load()); };
  char line[1024];
  std::snprintf(line, sizeof line,
                "stopped: %llu datagrams, %llu messages, %llu book events, %llu submitted, %llu rejected; gaps %llu "
                "(%llu messages missing), duplicate packets %llu (%llu messages), malformed %llu, decode failures "
                "%llu; %llu ok, %llu records out, %llu subscribers dropped",
                ld(fc.datagrams), ld(fc.messages), ld(fc.events), ld(fc.submitted), ld(fc.rejected), ld(fc.gaps),
                ld(fc.missing), ld(fc.duplicate_packets), ld(fc.duplicate_messages), ld(fc.malformed),
                ld(fc.decode_failures), static_cast<unsigned long long>(ok), static_cast<unsigned long long>(records),
                ld(output.counters.subscribers_dropped));
  say(ti::LogLevel::kInfo, line);
  if (ring.dropped() > 0)
    say(ti::LogLevel::kWarning, std::to_string(ring.dropped()) +
                                    " results dropped: the output thread fell a whole queue behind (no record sent)");
  const ti::HistogramSnapshot lat =
      feed_sends_udp ? feed.receive_to_send.snapshot() : output.counters.receive_to_send.snapshot();
  auto us = [&](double q) { return static_cast<double>(lat.percentile(q)) / 1000.0; };
  std::snprintf(line, sizeof line,
                "receive to record out (us): p50 %.1f, p99 %.1f, p99.9 %.1f, max %.1f over %llu records", us(0.5),
                us(0.99), us(0.999), static_cast<double>(lat.max) / 1000.0, static_cast<unsigned long long>(lat.count));
  say(ti::LogLevel::kInfo, line);
  if (!summary_json.empty()) {
    std::ofstream out(summary_json);
    out << "{\"datagrams\": " << ld(fc.datagrams) << ", \"messages\": " << ld(fc.messages)
        << ", \"events\": " << ld(fc.events) << ", \"submitted\": " << ld(fc.submitted)
        << ", \"rejected\": " << ld(fc.rejected) << ", \"not_book\": " << ld(fc.not_book)
        << ", \"beyond_keys\": " << ld(fc.beyond_keys) << ", \"decode_failures\": " << ld(fc.decode_failures)
        << ", \"gaps\": " << ld(fc.gaps) << ", \"missing_messages\": " << ld(fc.missing)
        << ", \"duplicate_packets\": " << ld(fc.duplicate_packets)
        << ", \"duplicate_messages\": " << ld(fc.duplicate_messages) << ", \"malformed_packets\": " << ld(fc.malformed)
        << ", \"too_far_ahead_packets\": " << ld(fc.too_far_ahead) << ", \"ok\": " << ok
        << ", \"model_errors\": " << m.model_errors + fc.model_errors.load() << ", \"records\": " << records
        << ", \"udp_datagrams\": " << (udp ? udp->datagrams.load() : 0)
        << ", \"subscribers\": " << ld(output.counters.subscribers)
        << ", \"subscribers_dropped\": " << ld(output.counters.subscribers_dropped)
        << ", \"results_dropped\": " << ring.dropped() << ", \"invalid\": " << ld(fc.invalid)
        << ", \"receive_to_send_ns\": {\"count\": " << lat.count << ", \"p50\": " << lat.percentile(0.5)
        << ", \"p99\": " << lat.percentile(0.99) << ", \"p999\": " << lat.percentile(0.999) << ", \"max\": " << lat.max
        << "}}\n";
  }
  return 0;
}

// ---- subscribe: a TCP prediction stream to a predictions CSV ----

int subscribe(const std::string& endpoint_text, bool udp, const std::string& csv, std::uint64_t count,
              double timeout_s) {
  const std::string option = udp ? "--udp" : "--tcp";
  const auto colon = endpoint_text.rfind(':');
  unsigned port = 0;
  const char* end = endpoint_text.data() + endpoint_text.size();
  if (colon == std::string::npos || colon + 1 == endpoint_text.size() ||
      std::from_chars(endpoint_text.data() + colon + 1, end, port).ptr != end || port > 65535)
    throw Error(ErrorCode::kInvalidConfig, option + ": '" + endpoint_text + "' is not HOST:PORT");
  Endpoint e{endpoint_text.substr(0, colon), static_cast<std::uint16_t>(port)};
  sockaddr_in a = ipv4(e, option);
  internal::Fd s;
  const std::int64_t give_up = ti::now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  if (udp) {  // the records' datagrams: bound to the address (a multicast group: joined on 127.0.0.1)
    s = internal::Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const int one = 1, rcvbuf = 8 << 20;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) socket_error(option + " " + e.text());
    if ((ntohl(a.sin_addr.s_addr) >> 28) == 14) {
      ip_mreq m{};
      m.imr_multiaddr = a.sin_addr;
      inet_pton(AF_INET, "127.0.0.1", &m.imr_interface);
      if (::setsockopt(s.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0)
        socket_error(option + " " + e.text() + ": joining the group");
    }
  } else {
    for (;;) {  // the daemon may still be starting
      s = internal::Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) break;
      if (ti::now_ns() > give_up) socket_error(option + " " + e.text());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::FILE* ready = std::fopen((csv + ".connected").c_str(), "w");
  if (ready != nullptr) std::fclose(ready);
  std::vector<unsigned char> buf;
  // In arrival order, then by feed sequence within each feed session (a sequence below its session's first starts
  // the next: a restarted sender's rows follow the earlier ones instead of replacing them).
  std::vector<std::pair<std::uint64_t, std::string>> rows;
  std::map<std::uint64_t, std::uint64_t> versions;  // records by model version
  std::uint16_t width = 0;
  std::size_t record_bytes = 0;
  unsigned char chunk[65536];
  while (count == 0 || rows.size() < count) {
    pollfd p{s.get(), POLLIN, 0};
    const std::int64_t left_ms = (give_up - ti::now_ns()) / 1'000'000;
    if (left_ms <= 0) break;
    if (::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 1000))) <= 0) continue;
    const ssize_t n = ::recv(s.get(), chunk, sizeof chunk, 0);
    if (n <= 0 && !udp) break;  // the daemon closed the stream
    if (n <= 0) continue;
    buf.insert(buf.end(), chunk, chunk + n);
    std::size_t at = 0;
    for (;;) {
      if (record_bytes == 0) {
        if (buf.size() - at < sizeof(ti::PredictionRecordHeader)) break;
        ti::PredictionRecordHeader h;
        std::memcpy(&h, buf.data() + at, sizeof h);
        if (h.magic != ti::kPredictionRecordMagic)
          throw Error(ErrorCode::kParseError,
                      option + ": a record without the magic at stream byte " + std::to_string(at));
        width = h.output_count;
        record_bytes = ti::prediction_record_bytes(width);
      }
      if (buf.size() - at < record_bytes) break;
      ti::PredictionRecordHeader h;
      std::vector<float> out(width);
      ti::read_prediction_record(buf.data() + at, h, out);
      std::string line = std::to_string(h.event_ns) + "," + ti::to_string(static_cast<ti::ResultStatus>(h.status));
      for (const float v : out) {
        char f[32];
        std::snprintf(f, sizeof f, "%.9g", static_cast<double>(v));
        line += ',';
        if (static_cast<ti::ResultStatus>(h.status) == ti::ResultStatus::kOk) line += f;
      }
      rows.emplace_back(h.feed_sequence, std::move(line));
      ++versions[h.model_version];
      at += record_bytes;
    }
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(at));
  }
  std::ofstream out(csv, std::ios::binary);
  std::string header = "index,ts_ns,status";
  for (std::uint16_t k = 0; k < width; ++k) header += ",y" + std::to_string(k);
  out << header << '\n';
  std::uint64_t i = 0;
  for (std::size_t first = 0; first < rows.size();) {
    std::size_t last = first + 1;
    while (last < rows.size() && rows[last].first >= rows[first].first) ++last;
    std::stable_sort(rows.begin() + static_cast<std::ptrdiff_t>(first),
                     rows.begin() + static_cast<std::ptrdiff_t>(last),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    first = last;
  }
  for (const auto& [sequence, row] : rows) out << i++ << ',' << row << '\n';
  std::string by_version;
  for (const auto& [v, n] : versions) {
    if (!by_version.empty()) by_version += ' ';
    by_version.append(std::to_string(v)).append(":").append(std::to_string(n));
  }
  std::printf("tickinfer-serve subscribe: %llu records to %s; by model version: %s\n",
              static_cast<unsigned long long>(rows.size()), csv.c_str(), by_version.c_str());
  return count == 0 || rows.size() >= count ? 0 : 1;
}

}  // namespace tickinfer::daemon
