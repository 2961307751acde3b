#include "serve/daemon/config.hpp"

#include <charconv>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <string_view>

#include <toml++/toml.h>

#include "tickinfer/error.hpp"

namespace tickinfer::daemon {
namespace fs = std::filesystem;

namespace {

// "section.key" -> the --set that gave it.
using SetBy = std::map<std::string, std::string>;

// A refusal naming the file, the line and the key (or the --set that gave the value).
[[noreturn]] void refuse(const SetBy& set_by, const std::string& file, const toml::node& node, const std::string& key,
                         const std::string& why) {
  const auto set = set_by.find(key);  // a value from --set names the option, not the file
  if (set != set_by.end()) throw Error(ErrorCode::kInvalidConfig, "--set '" + set->second + "': " + key + ": " + why);
  throw Error(ErrorCode::kInvalidConfig,
              file + ":" + std::to_string(node.source().begin.line) + ": " + key + ": " + why);
}

Endpoint parse_endpoint(const SetBy& set_by, const std::string& file, const toml::node& node, const std::string& key) {
  const auto text = node.value_exact<std::string>();
  if (!text) refuse(set_by, file, node, key, "expected a string \"HOST:PORT\" (\"\" to turn it off)");
  if (text->empty()) return {};
  const auto colon = text->rfind(':');
  unsigned port = 0;
  const char* end = text->data() + text->size();
  if (colon == std::string::npos || colon == 0 || std::from_chars(text->data() + colon + 1, end, port).ptr != end ||
      port > 65535)
    refuse(set_by, file, node, key, "'" + *text + "' is not HOST:PORT");
  return {text->substr(0, colon), static_cast<std::uint16_t>(port)};
}

// `overrides`: "section.key=VALUE" (VALUE in TOML syntax: "text" quoted, numbers bare), applied over the file.
}  // namespace

ServeConfig load_serve_config(const std::string& file, const std::vector<std::string>& overrides) {
  SetBy set_by;
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    if (!fs::exists(file)) throw Error(ErrorCode::kFileNotFound, file + ": no such config file");
    throw Error(ErrorCode::kInvalidConfig,
                file + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    const auto dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq)
      throw Error(ErrorCode::kInvalidConfig, "--set '" + o + "': expected section.key=VALUE");
    toml::table one;
    try {
      one = toml::parse(o.substr(0, eq) + " = " + o.substr(eq + 1), std::string_view("--set " + o));
    } catch (const toml::parse_error& e) {
      throw Error(ErrorCode::kInvalidConfig,
                  "--set '" + o + "': " + std::string(e.description()) + " (strings need quotes: key=\"text\")");
    }
    for (auto&& [section, table] : one) {
      if (!root.contains(section.str())) root.insert(section.str(), toml::table{});
      auto* into = root[section.str()].as_table();
      if (into == nullptr || !table.is_table())
        throw Error(ErrorCode::kInvalidConfig, "--set '" + o + "': expected section.key=VALUE");
      for (auto&& [key, value] : *table.as_table()) {
        into->insert_or_assign(key.str(), value);
        set_by[std::string(section.str()) + "." + std::string(key.str())] = o;
      }
    }
  }
  ServeConfig c;
  const fs::path base = fs::path(file).parent_path();
  auto str = [&](const toml::node& n, const std::string& key, std::string& out) {
    const auto v = n.value_exact<std::string>();
    if (!v) refuse(set_by, file, n, key, "expected a string");
    out = *v;
  };
  auto path = [&](const toml::node& n, const std::string& key, std::string& out) {
    str(n, key, out);
    if (!out.empty() && fs::path(out).is_relative() && !fs::exists(out) && fs::exists(base / out))
      out = (base / out).string();  // relative to the config file when not to the working directory
  };
  auto integer = [&](const toml::node& n, const std::string& key, std::int64_t lo, std::int64_t hi) {
    const auto v = n.value_exact<std::int64_t>();
    if (!v) refuse(set_by, file, n, key, "expected an integer");
    if (*v < lo || *v > hi)
      refuse(set_by, file, n, key,
             std::to_string(*v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return *v;
  };
  auto size = [&](const toml::node& n, const std::string& key, std::size_t& out, std::int64_t lo, std::int64_t hi) {
    out = static_cast<std::size_t>(integer(n, key, lo, hi));
  };
  auto one_of = [&](const toml::node& n, const std::string& key, std::string& out,
                    std::initializer_list<const char*> allowed) {
    str(n, key, out);
    std::string names;
    for (const char* a : allowed) {
      if (out == a) return;
      names += (names.empty() ? "" : ", ") + std::string(a);
    }
    refuse(set_by, file, n, key, "'" + out + "' is not one of " + names);
  };
  auto core = [&](const toml::node& n, const std::string& key, int& out) {  // -1: not pinned
    out = static_cast<int>(integer(n, key, -1, 4095));
  };
  for (auto&& [section_key, section] : root) {
    const std::string s(section_key.str());
    const auto* table = section.as_table();
    if (table == nullptr) refuse(set_by, file, section, s, "expected a [" + s + "] table");
    for (auto&& [k, n] : *table) {
      const std::string key = s + "." + std::string(k.str());
      if (key == "model.path")
        path(n, key, c.model_path);
      else if (key == "model.dir")
        path(n, key, c.model_dir);
      else if (key == "model.engine")
        one_of(n, key, c.engine, {"auto", "native", "libtorch"});
      else if (key == "features.config")
        path(n, key, c.feature_config);
      else if (key == "pipeline.mode")
        one_of(n, key, c.mode, {"batched", "direct"});
      else if (key == "pipeline.idle_spin_us")
        size(n, key, c.idle_spin_us, 0, 1'000'000);
      else if (key == "pipeline.worker_core")
        core(n, key, c.worker_core);
      else if (key == "pipeline.max_batch")
        size(n, key, c.max_batch, 1, 4096);
      else if (key == "pipeline.max_delay_us")
        size(n, key, c.max_delay_us, 0, 60'000'000);
      else if (key == "pipeline.queue_capacity")
        size(n, key, c.queue_capacity, 1, 1 << 24);
      else if (key == "pipeline.keys")
        size(n, key, c.keys, 1, 1 << 20);
      else if (key == "pipeline.conflation")
        one_of(n, key, c.conflation, {"off", "supersede"});
      else if (key == "pipeline.idle")
        one_of(n, key, c.idle, {"block", "yield", "spin"});
      else if (key == "predictions.spin_us")
        size(n, key, c.output_spin_us, 0, 1'000'000);
      else if (key == "predictions.core")
        core(n, key, c.output_core);
      else if (key == "pipeline.drain_timeout_ms")
        size(n, key, c.drain_timeout_ms, 0, 600'000);
      else if (key == "feed.listen")
        c.feed_listen = parse_endpoint(set_by, file, n, key);
      else if (key == "feed.group")
        str(n, key, c.feed_group);
      else if (key == "feed.interface")
        str(n, key, c.feed_interface);
      else if (key == "feed.format")
        one_of(n, key, c.feed_format, {"itch", "capture"});
      else if (key == "feed.price_scale")
        c.price_scale = integer(n, key, 1, std::int64_t{1} << 40);
      else if (key == "feed.qty_scale")
        c.qty_scale = integer(n, key, 1, std::int64_t{1} << 40);
      else if (key == "feed.receive_buffer_bytes")
        size(n, key, c.receive_buffer_bytes, 4096, 1 << 30);
      else if (key == "feed.spin_us")
        size(n, key, c.feed_spin_us, 0, 1'000'000);
      else if (key == "feed.core")
        core(n, key, c.feed_core);
      else if (key == "feed.max_gap")
        c.max_gap = static_cast<std::uint64_t>(integer(n, key, 0, std::int64_t{1} << 62));
      else if (key == "predictions.udp")
        c.predictions_udp = parse_endpoint(set_by, file, n, key);
      else if (key == "predictions.tcp")
        c.predictions_tcp = parse_endpoint(set_by, file, n, key);
      else if (key == "predictions.interface")
        str(n, key, c.predictions_interface);
      else if (key == "predictions.udp_max_datagram")
        size(n, key, c.udp_max_datagram, 256, 65507);
      else if (key == "predictions.tcp_buffer_bytes")
        size(n, key, c.tcp_buffer_bytes, 4096, 1 << 30);
      else if (key == "predictions.max_subscribers")
        size(n, key, c.max_subscribers, 1, 1024);
      else if (key == "http.listen")
        c.http = parse_endpoint(set_by, file, n, key);
      else if (key == "http.token_file")
        path(n, key, c.token_file);
      else if (key == "http.max_body_bytes")
        size(n, key, c.http_max_body_bytes, 1024, 1 << 24);
      else if (key == "http.max_infer_rows")
        size(n, key, c.http_max_infer_rows, 1, 1 << 16);
      else if (key == "http.infer_deadline_ms")
        size(n, key, c.http_infer_deadline_ms, 1, 600'000);
      else if (key == "http.max_connections")
        size(n, key, c.http_max_connections, 1, 4096);
      else if (key == "http.threads")
        size(n, key, c.http_threads, 1, 64);
      else
        refuse(set_by, file, n, key, "unknown key (docs/SERVE.md lists every key)");
    }
  }
  if (c.model_path.empty() == c.model_dir.empty())
    throw Error(ErrorCode::kInvalidConfig, file + ": give exactly one of model.path and model.dir");
  if (c.feed_listen.empty()) throw Error(ErrorCode::kInvalidConfig, file + ": feed.listen is required");
  if (c.direct() && c.engine == "libtorch")
    throw Error(ErrorCode::kInvalidConfig,
                file + ": pipeline.mode = \"direct\" runs the native engine: model.engine must be auto or native");
  if (c.direct() && c.conflation != "off")
    throw Error(ErrorCode::kInvalidConfig, file +
                                               ": pipeline.conflation applies to queued events; pipeline.mode = "
                                               "\"direct\" predicts each event as it arrives");
  return c;
}

}  // namespace tickinfer::daemon
