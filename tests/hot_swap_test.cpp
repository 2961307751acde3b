// Hot-swapping models: ModelRegistry (validation, policy, rollback), CheckpointWatcher (inotify, polling),
// weights-only checkpoints and ONNX models, under load through the real pipeline.
// Models come from scripts/export_model.py --all (CMake target tickinfer_models); ONNX models (mlp.onnx has
// mlp.pt's interface, other weights) from scripts/export_native_models.py --onnx (tickinfer_native_models).

#include "tickinfer/registry.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hotswap/lifecycle.hpp"
#include "model/native/native_model.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/onnx.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/torchscript.hpp"
#include "tickinfer/waiter.hpp"
#include "tickinfer/watcher.hpp"

namespace tickinfer {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::size_t kWidth = 32;
constexpr std::size_t kRows = 32;  // distinct feature rows the tests submit

fs::path model_path(const std::string& file) { return fs::path(TICKINFER_TEST_MODEL_DIR) / file; }
fs::path onnx_path(const std::string& file) { return fs::path(TICKINFER_NATIVE_MODEL_DIR) / "onnx" / file; }

using TempDir = testing::TestTempDir;
using testing::scaled;
using testing::wait_until;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  ASSERT_TRUE(out.good()) << path;
}

// How a trainer publishes a checkpoint: write under a temporary name, then rename (atomic, IN_MOVED_TO).
fs::path install_bytes(const fs::path& dir, const std::string& name, const std::string& bytes) {
  const fs::path temp = dir / ("." + name + ".tmp");
  write_bytes(temp, bytes);
  fs::rename(temp, dir / name);
  return dir / name;
}

fs::path install(const fs::path& dir, const std::string& name, const std::string& model_file) {
  return install_bytes(dir, name, read_bytes(model_path(model_file)));
}

std::string epoch_name(std::uint64_t epoch) { return "model_epoch" + std::to_string(epoch) + ".pt"; }
std::string onnx_name(std::uint64_t epoch) {
  return std::string("model_epoch").append(std::to_string(epoch)).append(".onnx");
}

fs::path install_onnx(const fs::path& dir, const std::string& name, const std::string& onnx_file) {
  return install_bytes(dir, name, read_bytes(onnx_path(onnx_file)));
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  char byte[3];
  for (unsigned int i = 0; i < length; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", digest[i]);
    hex += byte;
  }
  return hex;
}

std::vector<float> feature_rows() {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> rows(kRows * kWidth);
  for (auto& v : rows) v = dist(rng);
  return rows;
}

// Outputs of `model_file` for feature_rows(), computed outside the pipeline.
std::vector<float> reference(const std::string& model_file) {
  return run_model(*load_torchscript(model_path(model_file)), feature_rows(), kRows);
}

// The same for an ONNX model, run by its native plan.
std::vector<float> onnx_reference(const std::string& onnx_file) {
  const auto model = load_onnx(onnx_path(onnx_file));
  native::Executor exec(*native::native_plan_of(*model), kRows);
  std::vector<float> out(kRows * model->output_width());
  const auto rows = feature_rows();
  exec.run(rows.data(), kRows, out.data());
  return out;
}

bool close_to(float got, float expected) { return std::abs(got - expected) <= 1e-4f * (1.0f + std::abs(expected)); }

// The registry's log sink: keeps every record for the test to wait on.
class LogCapture {
 public:
  LogSink sink() {
    return [this](const LogRecord& record) {
      {
        std::lock_guard lock(mutex_);
        records_.push_back(record);
      }
      cv_.notify_all();
    };
  }

  // The first record about `path` that is not debug chatter: its outcome.
  std::optional<LogRecord> outcome(const fs::path& path, std::chrono::milliseconds limit = 30s) {
    std::unique_lock lock(mutex_);
    std::optional<LogRecord> found;
    cv_.wait_for(lock, limit, [&] {
      for (const auto& r : records_) {
        if (r.path == path && r.level != LogLevel::kDebug) {
          found = r;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  // Every record about `path`, debug included.
  std::vector<LogRecord> records(const fs::path& path) {
    std::lock_guard lock(mutex_);
    std::vector<LogRecord> found;
    for (const auto& r : records_) {
      if (r.path == path) found.push_back(r);
    }
    return found;
  }

  std::size_t count(const fs::path& path) {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count_if(records_.begin(), records_.end(), [&](const LogRecord& r) {
      return (r.path == path) && r.level != LogLevel::kDebug;
    }));
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<LogRecord> records_;
};

PipelineConfig small_pipeline() {
  PipelineConfig config;
  config.max_batch = 16;
  config.queue_capacity = 4096;
  config.workers = 1;
  config.idle = IdleStrategy::kBlock;  // leaves the (few) cores to the loader and producers
  return config;
}

// A watched directory (inside a TempDir) holding model_epoch1.pt (mlp.pt), a registry serving it, a pipeline and
// a watcher.
struct Served {
  // `before_watch`: puts more files into the directory after the initial one, before the watcher starts.
  explicit Served(RegistryConfig registry_config = {}, WatchMode mode = WatchMode::kInotify,
                  const std::function<void(const fs::path& dir)>& before_watch = {}) {
    fs::create_directories(dir);
    const std::string bytes = read_bytes(model_path("mlp.pt"));
    if (registry_config.checksum == ChecksumPolicy::kRequire) {
      install_bytes(dir, epoch_name(1) + ".sha256", sha256_hex(bytes) + "  " + epoch_name(1) + "\n");
    }
    const fs::path initial = install_bytes(dir, epoch_name(1), bytes);
    if (before_watch) before_watch(dir);
    registry_config.load.warmup_batch_sizes = pipeline_batch_sizes(small_pipeline());
    registry_config.log = logs.sink();
    registry = ModelRegistry::create(registry_config, initial);
    pipeline = Pipeline::create(small_pipeline(), registry->slot(), make_cpu_backend());
    WatcherConfig watch;
    watch.directory = dir;
    watch.mode = mode;
    watch.poll_interval = 50ms;
    watcher = CheckpointWatcher::create(watch, [r = registry.get()](const fs::path& p) { r->offer(p); });
    producer.emplace(pipeline->make_producer());
  }

  struct ServeResult {
    ResultStatus status;
    std::uint64_t version;
    std::vector<float> outputs;
  };
  // Runs feature row `row` through the pipeline and waits for its result.
  ServeResult serve(std::size_t row = 0) {
    const auto rows = feature_rows();
    ResultWaiter waiter;
    EXPECT_EQ(pipeline->submit(*producer, std::span<const float>(rows).subspan(row * kWidth, kWidth), kNoDeadline,
                               waiter.arm()),
              SubmitStatus::kAccepted);
    EXPECT_TRUE(waiter.wait_for(10s));
    return {waiter.status(), waiter.model_version(), waiter.outputs()};
  }

  // Serves a row and expects `model_file`'s output from `version`.
  void expect_serving(std::uint64_t version, const std::string& model_file) {
    expect_serving(version, reference(model_file));
  }
  // The same with the reference outputs given (onnx_reference()).
  void expect_serving(std::uint64_t version, const std::vector<float>& expected) {
    const auto got = serve(3);
    ASSERT_EQ(got.status, ResultStatus::kOk);
    EXPECT_EQ(got.version, version);
    ASSERT_EQ(got.outputs.size(), 1u);
    EXPECT_TRUE(close_to(got.outputs[0], expected[3])) << got.outputs[0] << " vs " << expected[3];
  }

  TempDir root;
  const fs::path dir = root.path() / "watched";  // a subdirectory, so tests can put files outside it
  LogCapture logs;
  std::unique_ptr<ModelRegistry> registry;
  std::unique_ptr<Pipeline> pipeline;
  std::optional<Producer> producer;
  std::unique_ptr<CheckpointWatcher> watcher;  // destroyed first: its callback uses the registry
};

// ---- under load ----

// Checks every completion against the reference of the version it reports.
struct LoadCheck {
  static constexpr std::size_t kProducers = 4;
  static constexpr std::size_t kMaxPerProducer = 1 << 22;
  static constexpr std::uint64_t kMaxVersion = 63;

  std::vector<float> ref_v1 = reference("mlp.pt"), ref_v2 = reference("mlp_v2.pt");
  std::vector<float> ref_onnx = onnx_reference("mlp.onnx");
  // What each version serves: odd versions mlp.pt, even ones mlp_v2.pt, unless a test sets another.
  std::array<const std::vector<float>*, kMaxVersion + 1> expected{};
  std::vector<std::atomic<std::uint8_t>> seen = std::vector<std::atomic<std::uint8_t>>(kProducers * kMaxPerProducer);
  std::atomic<std::uint64_t> completed{0}, not_ok{0}, wrong_output{0}, bad_version{0};
  std::atomic<std::uint64_t> versions_seen{0};  // bit v: a result reported version v

  LoadCheck() {
    for (std::uint64_t v = 0; v <= kMaxVersion; ++v) expected[v] = v % 2 ? &ref_v1 : &ref_v2;
  }

  static void on_result(void* self, const Result& r) { static_cast<LoadCheck*>(self)->check(r); }
  void check(const Result& r) {
    const std::size_t producer = r.tag >> 32, seq = r.tag & 0xffffffffu;
    // Relaxed: counters read after the pipeline drained; the completion count below orders them.
    seen[producer * kMaxPerProducer + seq].fetch_add(1, std::memory_order_relaxed);
    if (r.status != ResultStatus::kOk) {
      not_ok.fetch_add(1, std::memory_order_relaxed);
    } else if (r.model_version == 0 || r.model_version > kMaxVersion) {
      bad_version.fetch_add(1, std::memory_order_relaxed);
    } else {
      versions_seen.fetch_or(std::uint64_t{1} << r.model_version, std::memory_order_relaxed);
      const float want = (*expected[r.model_version])[seq % kRows];
      if (r.outputs.size() != 1 || !close_to(r.outputs[0], want)) wrong_output.fetch_add(1);
    }
    // Release: pairs with the test's acquire load, so the counters above are visible once all completed.
    completed.fetch_add(1, std::memory_order_release);
  }
};

// Four producers submit while `install_version(v)` puts versions 2..last into the watched directory, one at a
// time: each is served, and a result from it seen, before the next. Then nothing is lost or duplicated, and every
// result matches the reference of the version it reports.
void swap_under_load(Served& served, LoadCheck& check, std::uint64_t last,
                     const std::function<void(std::uint64_t version)>& install_version) {
  const auto rows = feature_rows();
  std::atomic<bool> stop{false};
  std::vector<std::uint64_t> accepted(LoadCheck::kProducers, 0);
  std::vector<std::thread> producers;
  for (std::size_t p = 0; p < LoadCheck::kProducers; ++p) {
    producers.emplace_back([&, p] {
      Producer producer = served.pipeline->make_producer();
      std::uint64_t seq = 0;
      // Relaxed: a stop request; the join below orders everything else.
      while (!stop.load(std::memory_order_relaxed) && seq < LoadCheck::kMaxPerProducer) {
        const auto features = std::span<const float>(rows).subspan((seq % kRows) * kWidth, kWidth);
        const Completion completion{&LoadCheck::on_result, &check, (std::uint64_t{p} << 32) | seq};
        if (served.pipeline->submit(producer, features, kNoDeadline, completion) == SubmitStatus::kAccepted) {
          ++accepted[p];
          ++seq;
        }
        if (seq % 8 == 0) std::this_thread::sleep_for(50us);  // steady load, leaves CPU to the loader
      }
    });
  }

  // EXPECT, not ASSERT: the producers must be stopped and joined below whatever happens.
  // A result from version 1 before the first swap, like every later version before the next.
  EXPECT_TRUE(wait_until([&] { return (check.versions_seen.load() >> 1) & 1; }));
  for (std::uint64_t version = 2; version <= last; ++version) {
    install_version(version);
    EXPECT_TRUE(wait_until([&] { return served.registry->current_version() == version; }));
    // A result from this version before the next swap, so every version serves under load.
    EXPECT_TRUE(wait_until([&] { return (check.versions_seen.load() >> version) & 1; }));
  }
  stop.store(true, std::memory_order_relaxed);
  for (auto& t : producers) t.join();
  std::uint64_t total = 0;
  for (const auto n : accepted) total += n;
  ASSERT_TRUE(wait_until([&] { return check.completed.load(std::memory_order_acquire) == total; }));
  served.pipeline->shutdown();

  ::testing::Test::RecordProperty("accepted", std::to_string(total));
  ::testing::Test::RecordProperty("batches", std::to_string(served.pipeline->metrics().snapshot().batches));
  EXPECT_GT(total, 1000u);
  EXPECT_EQ(check.completed.load(), total) << "lost or duplicated completions";
  EXPECT_EQ(check.not_ok.load(), 0u);
  EXPECT_EQ(check.bad_version.load(), 0u);
  EXPECT_EQ(check.wrong_output.load(), 0u);
  for (std::size_t p = 0; p < LoadCheck::kProducers; ++p) {
    for (std::uint64_t seq = 0; seq < accepted[p]; ++seq) {
      ASSERT_EQ(check.seen[p * LoadCheck::kMaxPerProducer + seq].load(), 1) << "producer " << p << " seq " << seq;
    }
  }
  for (std::uint64_t version = 1; version <= last; ++version) {
    EXPECT_TRUE((check.versions_seen.load() >> version) & 1) << "no result from version " << version;
  }
  const auto metrics = served.registry->metrics();
  EXPECT_EQ(metrics.swaps, last - 1);
  EXPECT_EQ(metrics.refused_total(), 0u);
  EXPECT_EQ(metrics.current_version, last);
  EXPECT_EQ(served.pipeline->metrics().snapshot().model_errors, 0u);
}

TEST(HotSwapUnderLoad, FiftySwapsFromFourProducersLoseNothingAndEachResultMatchesTheVersionItReports) {
  Served served;
  auto check = std::make_unique<LoadCheck>();
  swap_under_load(served, *check, scaled(50, 10) + 1, [&](std::uint64_t version) {
    install(served.dir, epoch_name(version), version % 2 ? "mlp.pt" : "mlp_v2.pt");
  });
}

TEST(HotSwapUnderLoad, TorchScriptToOnnxToTorchScriptSwapsLoseNothingAndEachResultMatchesTheVersionItReports) {
  Served served;
  auto check = std::make_unique<LoadCheck>();
  // Even versions are mlp.onnx; odd ones alternate mlp_v2.pt and mlp.pt (1 is mlp.pt).
  for (std::uint64_t v = 0; v <= LoadCheck::kMaxVersion; ++v) {
    check->expected[v] = v % 2 == 0 ? &check->ref_onnx : v % 4 == 3 ? &check->ref_v2 : &check->ref_v1;
  }
  const std::uint64_t last = scaled(12, 4) + 1;
  swap_under_load(served, *check, last, [&](std::uint64_t version) {
    if (version % 2 == 0) {
      install_onnx(served.dir, onnx_name(version), "mlp.onnx");
    } else {
      install(served.dir, epoch_name(version), version % 4 == 3 ? "mlp_v2.pt" : "mlp.pt");
    }
  });
  const auto versions = served.registry->versions();  // the served version and the one before it
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].kind, last % 2 ? CheckpointKind::kOnnx : CheckpointKind::kTorchScript);
  EXPECT_EQ(versions[1].kind, last % 2 ? CheckpointKind::kTorchScript : CheckpointKind::kOnnx);
}

// ---- refusals ----

struct BadFile {
  std::string label;
  // Puts the bad checkpoint into `dir` as `name` (the way a trainer would); returns its path.
  std::function<fs::path(const fs::path& dir, const std::string& name)> install;
  ErrorCode code;
  std::vector<std::string> reasons;  // each must appear in the message
  ChecksumPolicy checksum = ChecksumPolicy::kIfPresent;
  bool needs_root = false;
  std::size_t max_archive_bytes = 0;  // 0: LoadOptions' default
  bool onnx = false;                  // installed as model_epoch2.onnx, not model_epoch2.pt
};

std::ostream& operator<<(std::ostream& out, const BadFile& bad) { return out << bad.label; }

auto copy_of(const std::string& model_file) {
  return [model_file](const fs::path& dir, const std::string& name) { return install(dir, name, model_file); };
}

auto onnx_copy_of(const std::string& onnx_file) {
  return [onnx_file](const fs::path& dir, const std::string& name) { return install_onnx(dir, name, onnx_file); };
}

// ONNX files the registry refuses with load_onnx()'s own error (tests/onnx_model_test.cpp refuses the same files
// through load_onnx()), and ONNX files that break the served model's interface.
std::vector<BadFile> bad_onnx_files() {
  const std::string unparsable = ": not an ONNX model (protobuf ModelProto did not parse: truncated or another format)";
  return {
      {.label = "onnx_truncated",
       .install = onnx_copy_of("truncated.onnx"),
       .code = ErrorCode::kParseError,
       .reasons = {unparsable},
       .onnx = true},
      {.label = "onnx_zip_bytes",
       .install = onnx_copy_of("not_onnx.onnx"),
       .code = ErrorCode::kParseError,
       .reasons = {unparsable},
       .onnx = true},
      {.label = "onnx_unsupported_op",
       .install = onnx_copy_of("unsupported_op.onnx"),
       .code = ErrorCode::kUnsupported,
       .reasons = {": native engine cannot compile node ", " (Softplus): unsupported operator Softplus"},
       .onnx = true},
      {.label = "onnx_checker_fails",
       .install = onnx_copy_of("checker_fails.onnx"),
       .code = ErrorCode::kUnsupported,
       .reasons = {": the ONNX checker refuses it: ", "nobody_makes_this"},
       .onnx = true},
      {.label = "onnx_old_opset",
       .install = onnx_copy_of("old_opset.onnx"),
       .code = ErrorCode::kUnsupported,
       .reasons = {": opset 11 (the native engine reads opsets 13 to 17)"},
       .onnx = true},
      {.label = "onnx_no_metadata",
       .install = onnx_copy_of("no_metadata.onnx"),
       .code = ErrorCode::kMissingMetadata,
       .reasons =
           {": no metadata_props entry 'tickinfer.json' (export it with scripts/export_native_models.py --onnx)"},
       .onnx = true},
      {.label = "onnx_width",
       .install = onnx_copy_of("activations.onnx"),
       .code = ErrorCode::kWidthMismatch,
       .reasons = {": model has 12 input features, the pipeline expects 32"},
       .onnx = true},
      {.label = "onnx_schema_hash",
       .install = onnx_copy_of("schema_v2.onnx"),
       .code = ErrorCode::kSchemaMismatch,
       .reasons = {": feature schema hash is 'synthetic-v1-other', the pipeline's is 'synthetic-v1'"},
       .onnx = true},
      {.label = "onnx_renamed_inputs",
       .install = onnx_copy_of("renamed_inputs.onnx"),
       .code = ErrorCode::kInterfaceMismatch,
       .reasons = {": input names [g0, g1, g2,", "] (32) differ from the served model's [f0, f1, f2,"},
       .onnx = true},
      {.label = "onnx_renamed_output",
       .install = onnx_copy_of("renamed_output.onnx"),
       .code = ErrorCode::kInterfaceMismatch,
       .reasons = {": outputs [z0] (1) differ from the served model's [y0] (1); set "
                   "RegistryConfig::allow_interface_change to accept the change"},
       .onnx = true},
      {.label = "onnx_golden_mismatch",
       .install = onnx_copy_of("golden_mismatch.onnx"),
       .code = ErrorCode::kGoldenMismatch,
       .reasons = {": native engine: golden row 2, output 0 ('y0'): expected ", ", got ", " (|diff| 1 > tolerance "},
       .onnx = true},
      {.label = "onnx_sha256_mismatch",
       .install =
           [](const fs::path& dir, const std::string& name) {
             install_bytes(dir, name + ".sha256", sha256_hex("something else") + "  " + name + "\n");
             return install_onnx(dir, name, "mlp.onnx");
           },
       .code = ErrorCode::kChecksumMismatch,
       .reasons = {": SHA-256 is " + sha256_hex(read_bytes(onnx_path("mlp.onnx"))) + ", the sidecar says " +
                   sha256_hex("something else")},
       .onnx = true},
      {.label = "onnx_sha256_required_but_missing",
       .install = onnx_copy_of("mlp.onnx"),
       .code = ErrorCode::kChecksumMismatch,
       .reasons = {": no sidecar ", ".onnx.sha256 (checksums are required)"},
       .checksum = ChecksumPolicy::kRequire,
       .onnx = true},
  };
}

std::vector<BadFile> bad_files() {
  return {
      {"truncated",
       [](const fs::path& dir, const std::string& name) {
         const std::string bytes = read_bytes(model_path("mlp.pt"));
         return install_bytes(dir, name, bytes.substr(0, bytes.size() / 2));
       },
       ErrorCode::kTruncatedArchive,
       {"truncated"}},
      {"garbage",
       [](const fs::path& dir, const std::string& name) {
         std::mt19937 rng(3);
         std::string bytes(4096, '\0');
         for (char& ch : bytes) ch = static_cast<char>(rng());
         return install_bytes(dir, name, bytes);
       },
       ErrorCode::kNotTorchScript,
       {"no zip header"}},
      {"width", copy_of("wide16.pt"), ErrorCode::kWidthMismatch, {"16 input features", "expects 32"}},
      {"schema_hash", copy_of("mlp_schema_v2.pt"), ErrorCode::kSchemaMismatch, {"synthetic-v1-other"}},
      {"no_metadata", copy_of("no_metadata.pt"), ErrorCode::kMissingMetadata, {"tickinfer.json"}},
      {"golden_mismatch", copy_of("golden_mismatch.pt"), ErrorCode::kGoldenMismatch, {"golden row 2"}},
      {"nan_output", copy_of("nan_golden.pt"), ErrorCode::kNonFiniteOutput, {"golden row 0"}},
      {"weights_wrong_shape",
       copy_of("mlp_bad_shape_weights.pt"),
       ErrorCode::kWeightsMismatch,
       {"wrong shape: net.2.weight [64, 63] (expected [64, 64])"}},
      {"weights_unexpected_key",
       copy_of("mlp_extra_key_weights.pt"),
       ErrorCode::kWeightsMismatch,
       {"unexpected: net.6.weight"}},
      {"weights_missing_key",
       copy_of("mlp_missing_key_weights.pt"),
       ErrorCode::kWeightsMismatch,
       {"missing: net.4.bias"}},
      {"weights_wrong_dtype",
       copy_of("mlp_wrong_dtype_weights.pt"),
       ErrorCode::kWeightsMismatch,
       {"wrong dtype: net.0.bias Double (expected Float)"}},
      {"weights_nan", copy_of("mlp_nan_weights.pt"), ErrorCode::kNonFiniteOutput, {"with these weights"}},
      {"pickled_module", copy_of("pickled_module.pt"), ErrorCode::kUnsupported, {"never loaded"}},
      {"ordered_dict", copy_of("mlp_ordered_dict_weights.pt"), ErrorCode::kUnsupported, {"dict(model.state_dict())"}},
      {"sha256_mismatch",
       [](const fs::path& dir, const std::string& name) {
         // The sidecar first, as a careful writer does; it holds the hash of another file.
         install_bytes(dir, name + ".sha256", sha256_hex("something else") + "  " + name + "\n");
         return install(dir, name, "mlp_v2.pt");
       },
       ErrorCode::kChecksumMismatch,
       {"the sidecar says " + sha256_hex("something else")}},
      {"sha256_required_but_missing",
       copy_of("mlp_v2.pt"),
       ErrorCode::kChecksumMismatch,
       {"no sidecar"},
       ChecksumPolicy::kRequire},
      {"world_writable",
       [](const fs::path& dir, const std::string& name) {
         const fs::path temp = dir / ("." + name + ".tmp");
         write_bytes(temp, read_bytes(model_path("mlp_v2.pt")));
         fs::permissions(temp, fs::perms::others_write, fs::perm_options::add);
         fs::rename(temp, dir / name);
         return dir / name;
       },
       ErrorCode::kUnsafeFile,
       {"world-writable (mode 0"}},
      {"foreign_owner",
       [](const fs::path& dir, const std::string& name) {
         const fs::path temp = dir / ("." + name + ".tmp");
         write_bytes(temp, read_bytes(model_path("mlp_v2.pt")));
         EXPECT_EQ(::chown(temp.c_str(), 65534, 65534), 0);
         fs::rename(temp, dir / name);
         return dir / name;
       },
       ErrorCode::kUnsafeFile,
       {"owned by uid 65534"},
       ChecksumPolicy::kIfPresent,
       /*needs_root=*/true},
      {"symlink_outside",
       [](const fs::path& dir, const std::string& name) {
         const fs::path outside = dir.parent_path() / "outside.pt";  // next to the watched directory
         write_bytes(outside, read_bytes(model_path("mlp_v2.pt")));
         const fs::path temp = dir / ("." + name + ".tmp");
         fs::create_symlink(outside, temp);
         fs::rename(temp, dir / name);  // a symlink is created without IN_CLOSE_WRITE; renamed in, it is seen
         return dir / name;
       },
       ErrorCode::kUnsafeFile,
       {"leaves the directory"}},
      // The interface of the served version (32 inputs f0..f31, one output y0) must not change.
      {"more_outputs",
       copy_of("deep.pt"),
       ErrorCode::kInterfaceMismatch,
       {": outputs [y0, y1, y2, y3] (4) differ from the served model's [y0] (1); set "
        "RegistryConfig::allow_interface_change to accept the change"}},
      {"renamed_inputs",
       copy_of("mlp_renamed_inputs.pt"),
       ErrorCode::kInterfaceMismatch,
       {": input names [g0, g1, g2,", "] (32) differ from the served model's [f0, f1, f2,"}},
      // Right at the golden batch size (4), wrong at the pipeline's others: the checked warm-up refuses them.
      {"wrong_rows_at_batch_5",
       copy_of("wrong_rows.pt"),
       ErrorCode::kShapeMismatch,
       {": during warm-up at batch size 5, forward returned shape [4, 1], expected [5, 1]"}},
      {"wrong_width_at_batch_5",
       copy_of("wrong_width.pt"),
       ErrorCode::kShapeMismatch,
       {": during warm-up at batch size 5, forward returned shape [5, 2], expected [5, 1]"}},
      {"nan_at_batch_5",
       copy_of("nan_at_batch.pt"),
       ErrorCode::kNonFiniteOutput,
       {": during warm-up at batch size 5, row 0, output 0 ('y0') is nan"}},
      {"rows_depend_on_their_batch",
       copy_of("batch_dependent.pt"),
       ErrorCode::kNondeterministic,
       {": golden row 0, output 0 ('y0') is ", " in a batch of 4 (rows of a batch must not depend on each other)"}},
      {"state_kept_between_calls",
       copy_of("stateful.pt"),
       ErrorCode::kNondeterministic,
       {": the golden inputs run twice give different outputs: row 0, output 0 ('y0') was ",
        " (does forward keep state between calls?)"}},
      // Zip bombs: refused from the zip directory, before anything is inflated.
      {"metadata_bomb",
       copy_of("metadata_bomb.pt"),
       ErrorCode::kTooLarge,
       {"/extra/tickinfer.json' inflates to ",
        " bytes, more than the 1048576 allowed for metadata "
        "(LoadOptions::max_metadata_bytes)"}},
      {"weights_bomb",
       copy_of("weights_bomb.pt"),
       ErrorCode::kTooLarge,
       {": archive member '",
        "' inflates to 67108864 bytes, more than the 16777216 allowed (LoadOptions::max_archive_bytes)"},
       ChecksumPolicy::kIfPresent,
       /*needs_root=*/false,
       /*max_archive_bytes=*/16u << 20},
  };
}

class BadCheckpoint : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadCheckpoint, IsRefusedWithItsReasonWhileTheOldModelServesAndALaterGoodFileIsPickedUp) {
  const BadFile& bad = GetParam();
  if (bad.needs_root && ::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  RegistryConfig config;
  config.checksum = bad.checksum;
  if (bad.max_archive_bytes != 0) config.load.max_archive_bytes = bad.max_archive_bytes;
  Served served(config);
  const fs::path file = bad.install(served.dir, bad.onnx ? onnx_name(2) : epoch_name(2));

  const auto outcome = served.logs.outcome(file);
  ASSERT_TRUE(outcome.has_value()) << "no outcome for " << file;
  ASSERT_TRUE(outcome->error.has_value()) << "not refused: " << outcome->message;
  EXPECT_EQ(*outcome->error, bad.code) << "got " << to_string(*outcome->error) << ": " << outcome->message;
  EXPECT_NE(outcome->message.find(file.string()), std::string::npos) << outcome->message;
  for (const auto& reason : bad.reasons) {
    EXPECT_NE(outcome->message.find(reason), std::string::npos) << "lacks \"" << reason << "\": " << outcome->message;
  }
  const auto metrics = served.registry->metrics();
  EXPECT_EQ(metrics.refused_for(bad.code), 1u);
  EXPECT_EQ(metrics.refused_total(), 1u);
  EXPECT_EQ(metrics.swaps, 0u);
  EXPECT_EQ(served.registry->current_version(), 1u);
  served.expect_serving(1, "mlp.pt");

  // A later good file is still picked up.
  const std::string good = epoch_name(3);
  const std::string bytes = read_bytes(model_path("mlp_v2.pt"));
  if (bad.checksum == ChecksumPolicy::kRequire)
    install_bytes(served.dir, good + ".sha256", sha256_hex(bytes) + "  " + good + "\n");
  install_bytes(served.dir, good, bytes);
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 3; }));
  served.expect_serving(3, "mlp_v2.pt");
}

INSTANTIATE_TEST_SUITE_P(HotSwap, BadCheckpoint, ::testing::ValuesIn(bad_files()),
                         [](const ::testing::TestParamInfo<BadFile>& param_info) { return param_info.param.label; });
INSTANTIATE_TEST_SUITE_P(HotSwapOnnx, BadCheckpoint, ::testing::ValuesIn(bad_onnx_files()),
                         [](const ::testing::TestParamInfo<BadFile>& param_info) { return param_info.param.label; });

TEST(HotSwap, HalfWrittenFileIsPickedUpOnlyOnceCompleteAndRenamed) {
  Served served;
  const std::string bytes = read_bytes(model_path("mlp_v2.pt"));
  const fs::path temp = served.dir / (epoch_name(2) + ".tmp");
  const fs::path final_path = served.dir / epoch_name(2);
  write_bytes(temp, bytes.substr(0, bytes.size() / 2));  // closed after writing: IN_CLOSE_WRITE on a .tmp name
  // inotify keeps event order: once a file renamed in after the .tmp was closed has its outcome, the .tmp's
  // event has been handled (and must have been dropped).
  const fs::path sentinel = install(served.dir, "sentinel.pt", "mlp.pt");
  ASSERT_TRUE(served.logs.outcome(sentinel).has_value());
  EXPECT_EQ(served.logs.records(temp).size(), 0u);
  EXPECT_EQ(served.logs.records(final_path).size(), 0u);
  EXPECT_EQ(served.registry->metrics().refused_total(), 0u);
  served.expect_serving(1, "mlp.pt");

  {
    std::ofstream out(temp, std::ios::binary | std::ios::app);
    out.write(bytes.data() + bytes.size() / 2, static_cast<std::streamsize>(bytes.size() - bytes.size() / 2));
  }
  fs::rename(temp, final_path);
  const auto outcome = served.logs.outcome(final_path);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_FALSE(outcome->error.has_value()) << outcome->message;
  EXPECT_EQ(served.registry->current_version(), 2u);
  EXPECT_EQ(served.registry->metrics().refused_total(), 0u);
  served.expect_serving(2, "mlp_v2.pt");
}

// A file written in place and closed half-written (IN_CLOSE_WRITE), then closed again complete: the first attempt
// fails as a partly written file does and is retried once the file settles, never refused or warned about.
void expect_in_place_write_retried_quietly(const std::string& name, const std::string& bytes,
                                           const std::vector<float>& expected) {
  RegistryConfig config;
  config.settle_time = 2s;  // the rest is written well within it
  Served served(config);
  const fs::path file = served.dir / name;
  write_bytes(file, bytes.substr(0, bytes.size() / 2));  // in place, closed half-written: IN_CLOSE_WRITE
  ASSERT_TRUE(wait_until([&] { return !served.logs.records(file).empty(); })) << "the first close was not seen";
  {
    std::ofstream out(file, std::ios::binary | std::ios::app);  // closed again, complete: IN_CLOSE_WRITE
    out.write(bytes.data() + bytes.size() / 2, static_cast<std::streamsize>(bytes.size() - bytes.size() / 2));
  }
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 2; }));
  for (const auto& record : served.logs.records(file)) {
    EXPECT_LT(record.level, LogLevel::kWarning) << record.message;
    EXPECT_FALSE(record.error.has_value()) << record.message;
  }
  EXPECT_EQ(served.registry->metrics().refused_total(), 0u);
  served.expect_serving(2, expected);
}

TEST(HotSwap, FileWrittenInPlaceAndClosedTwiceIsRetriedQuietlyNotRefused) {
  expect_in_place_write_retried_quietly(epoch_name(2), read_bytes(model_path("mlp_v2.pt")), reference("mlp_v2.pt"));
}

TEST(HotSwap, OnnxFileWrittenInPlaceAndClosedTwiceIsRetriedQuietlyNotRefused) {
  expect_in_place_write_retried_quietly(onnx_name(2), read_bytes(onnx_path("mlp.onnx")), onnx_reference("mlp.onnx"));
}

TEST(HotSwap, MatchingSha256SidecarIsAccepted) {
  Served served;
  const std::string bytes = read_bytes(model_path("mlp_v2.pt"));
  install_bytes(served.dir, epoch_name(2) + ".sha256", sha256_hex(bytes) + " *" + epoch_name(2) + "\n");
  install_bytes(served.dir, epoch_name(2), bytes);
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 2; }));
  served.expect_serving(2, "mlp_v2.pt");
}

TEST(HotSwap, CreateAcceptsAnInitialFileWithItsRequiredSidecar) {
  TempDir dir;
  const std::string bytes = read_bytes(model_path("mlp.pt"));
  install_bytes(dir.path(), "m.pt.sha256", sha256_hex(bytes) + "  m.pt\n");
  const fs::path initial = install_bytes(dir.path(), "m.pt", bytes);
  RegistryConfig config;
  config.checksum = ChecksumPolicy::kRequire;
  config.log = [](const LogRecord&) {};
  EXPECT_EQ(ModelRegistry::create(config, initial)->current_version(), 1u);
}

TEST(HotSwap, CreateRefusesAnInitialFileWithoutRequiredSidecar) {
  TempDir dir;
  const fs::path initial = install(dir.path(), epoch_name(1), "mlp.pt");
  RegistryConfig config;
  config.checksum = ChecksumPolicy::kRequire;
  config.log = [](const LogRecord&) {};
  try {
    ModelRegistry::create(config, initial);
    ADD_FAILURE() << "create() accepted a file without its required sidecar";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kChecksumMismatch) << e.what();
  }
}

TEST(HotSwap, SidecarArrivingAfterItsCheckpointReportsItAgain) {
  RegistryConfig config;
  config.checksum = ChecksumPolicy::kIfPresent;
  Served served(config);
  const std::string bytes = read_bytes(model_path("mlp_v2.pt"));
  // First a wrong sidecar: refused. Then the right one replaces it, and its arrival retries the checkpoint.
  install_bytes(served.dir, epoch_name(2) + ".sha256", sha256_hex("x") + "  " + epoch_name(2) + "\n");
  const fs::path file = install_bytes(served.dir, epoch_name(2), bytes);
  const auto refused = served.logs.outcome(file);
  ASSERT_TRUE(refused && refused->error);
  EXPECT_EQ(*refused->error, ErrorCode::kChecksumMismatch);
  install_bytes(served.dir, epoch_name(2) + ".sha256", sha256_hex(bytes) + "  " + epoch_name(2) + "\n");
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 2; }));
  served.expect_serving(2, "mlp_v2.pt");
}

TEST(HotSwap, SymlinkToAFileInsideTheWatchedDirectoryIsAccepted) {
  Served served;
  fs::create_directories(served.dir / ".store");
  write_bytes(served.dir / ".store" / "v2.pt", read_bytes(model_path("mlp_v2.pt")));
  const fs::path temp = served.dir / (epoch_name(2) + ".tmp");
  fs::create_symlink(served.dir / ".store" / "v2.pt", temp);
  fs::rename(temp, served.dir / epoch_name(2));
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 2; }));
  served.expect_serving(2, "mlp_v2.pt");
}

TEST(HotSwap, WeightsOnlyCheckpointIsAppliedOntoTheServedArchitecture) {
  Served served;
  install(served.dir, epoch_name(2), "mlp_v2_weights.pt");
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 2; }));
  served.expect_serving(2, "mlp_v2.pt");
  const auto versions = served.registry->versions();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[1].kind, CheckpointKind::kWeights);
  // Weights again onto the weights-made version: back to mlp.pt's outputs.
  install(served.dir, epoch_name(3), "mlp_weights.pt");
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 3; }));
  served.expect_serving(3, "mlp.pt");
}

TEST(HotSwap, OnnxCheckpointWithItsRequiredSidecarIsServedThroughTheWatcher) {
  RegistryConfig config;
  config.checksum = ChecksumPolicy::kRequire;
  Served served(config);
  const std::string bytes = read_bytes(onnx_path("mlp.onnx"));
  install_bytes(served.dir, onnx_name(2) + ".sha256", sha256_hex(bytes) + "  " + onnx_name(2) + "\n");
  install_bytes(served.dir, onnx_name(2), bytes);
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 2; }));
  served.expect_serving(2, onnx_reference("mlp.onnx"));
  EXPECT_EQ(served.registry->current()->engine(), "native");
  EXPECT_EQ(served.registry->versions().back().kind, CheckpointKind::kOnnx);
}

TEST(HotSwap, AMixedDirectoryServesItsNewestVersionWhateverItsKind) {
  // Already there when the watcher starts: epoch 1 TorchScript (served), epoch 2 ONNX.
  Served served({}, WatchMode::kInotify, [](const fs::path& dir) { install_onnx(dir, onnx_name(2), "mlp.onnx"); });
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 2; }));
  served.expect_serving(2, onnx_reference("mlp.onnx"));
  install(served.dir, epoch_name(3), "mlp_v2.pt");
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 3; }));
  served.expect_serving(3, "mlp_v2.pt");
  const auto versions = served.registry->versions();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].kind, CheckpointKind::kOnnx);
  EXPECT_EQ(versions[1].kind, CheckpointKind::kTorchScript);
  EXPECT_EQ(served.registry->metrics().refused_total(), 0u);
}

TEST(HotSwap, PollingFallbackPicksUpARenamedInCheckpoint) {
  Served served({}, WatchMode::kPolling);
  EXPECT_FALSE(served.watcher->uses_inotify());
  install(served.dir, epoch_name(2), "mlp_v2.pt");
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 2; }));
  served.expect_serving(2, "mlp_v2.pt");
}

// ---- policy: rollback, pinning, reload ----

// A registry without a watcher: files go through load(), which returns their outcome.
struct Direct {
  explicit Direct(RegistryConfig config = {}) {
    config.log = logs.sink();
    registry = ModelRegistry::create(config, install(dir.path(), epoch_name(1), "mlp.pt"));
  }
  LoadOutcome load(std::uint64_t version, const std::string& model_file) {
    return registry->load(install(dir.path(), epoch_name(version), model_file));
  }
  TempDir dir;
  LogCapture logs;
  std::unique_ptr<ModelRegistry> registry;
};

TEST(Registry, RollbackServesThePreviousVersionAtOnceAndPinsIt) {
  Direct d;
  ASSERT_EQ(d.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  const auto loaded_before = d.registry->metrics().loaded;
  EXPECT_EQ(d.registry->rollback(), 1u);
  EXPECT_EQ(d.registry->current_version(), 1u);
  EXPECT_EQ(d.registry->current()->version(), 1u);
  EXPECT_EQ(d.registry->pinned(), std::optional<std::uint64_t>(1));
  EXPECT_EQ(d.registry->metrics().loaded, loaded_before) << "a rollback must not load anything";
  EXPECT_EQ(d.registry->metrics().rollbacks, 1u);

  // A newer file while rolled back is validated and kept, not served; unpin() serves it.
  const auto outcome = d.load(3, "mlp_v2.pt");
  EXPECT_EQ(outcome.status, LoadOutcome::Status::kRetained) << outcome.message;
  EXPECT_EQ(d.registry->current_version(), 1u);
  EXPECT_EQ(d.registry->unpin(), 3u);
  EXPECT_EQ(d.registry->current_version(), 3u);
  EXPECT_FALSE(d.registry->pinned().has_value());
}

TEST(Registry, RollbackWithoutAPreviousVersionThrowsInvalidConfig) {
  Direct d;
  try {
    d.registry->rollback();
    ADD_FAILURE() << "rollback() with one version did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
    EXPECT_NE(std::string(e.what()).find("no previous version"), std::string::npos) << e.what();
  }
}

TEST(Registry, PinnedVersionKeepsServingUntilUnpinnedAndAPinnedFileIsServedWhenItArrives) {
  Direct d;
  EXPECT_FALSE(d.registry->pin(4));  // not seen yet
  EXPECT_EQ(d.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kRetained);
  EXPECT_EQ(d.registry->current_version(), 1u);
  EXPECT_EQ(d.load(4, "mlp.pt").status, LoadOutcome::Status::kPublished);
  EXPECT_EQ(d.registry->current_version(), 4u);
  EXPECT_EQ(d.load(5, "mlp_v2.pt").status, LoadOutcome::Status::kRetained);
  EXPECT_EQ(d.registry->current_version(), 4u);
  EXPECT_EQ(d.registry->unpin(), 5u);
}

TEST(Registry, PinOfAVersionNoLongerInMemoryLoadsItsFileAgain) {
  Direct d;
  ASSERT_EQ(d.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  ASSERT_EQ(d.load(3, "mlp.pt").status, LoadOutcome::Status::kPublished);
  std::vector<std::uint64_t> held;
  for (const auto& v : d.registry->versions()) held.push_back(v.version);
  EXPECT_EQ(held, (std::vector<std::uint64_t>{2, 3})) << "version 1 should have been freed";
  EXPECT_TRUE(d.registry->pin(1));
  EXPECT_EQ(d.registry->current_version(), 1u);
  EXPECT_EQ(d.registry->current()->source(), (d.dir.path() / epoch_name(1)).string());
}

TEST(Registry, VersionsListsTheServedAndTheRollbackTarget) {
  Direct d;
  ASSERT_EQ(d.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  const auto versions = d.registry->versions();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].version, 1u);
  EXPECT_TRUE(versions[0].previous);
  EXPECT_FALSE(versions[0].current);
  EXPECT_EQ(versions[1].version, 2u);
  EXPECT_TRUE(versions[1].current);
  EXPECT_EQ(versions[1].source, (d.dir.path() / epoch_name(2)).string());
  EXPECT_EQ(versions[1].kind, CheckpointKind::kTorchScript);
  EXPECT_GT(versions[1].loaded_ns, versions[0].loaded_ns);
}

TEST(Registry, ReloadReadsTheServedVersionsFileAgainAndPublishesIt) {
  Direct d;
  const auto before = d.registry->current();
  const auto outcome = d.registry->reload();
  EXPECT_EQ(outcome.status, LoadOutcome::Status::kPublished) << outcome.message;
  EXPECT_EQ(d.registry->current_version(), 1u);
  EXPECT_NE(d.registry->current().get(), before.get()) << "a fresh copy is served";
}

TEST(Registry, OlderAndUnversionedFilesAreIgnoredWithoutLoading) {
  Direct d;
  ASSERT_EQ(d.load(5, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  const fs::path older = install(d.dir.path(), epoch_name(3), "mlp.pt");
  const fs::path unversioned = install(d.dir.path(), "latest.pt", "mlp.pt");
  d.registry->offer(older);
  d.registry->offer(unversioned);
  const auto a = d.logs.outcome(older);
  const auto b = d.logs.outcome(unversioned);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->level, LogLevel::kWarning);
  EXPECT_NE(a->message.find(": ignored: version 3 is lower than the served version 5; versions only go up."),
            std::string::npos)
      << a->message;
  EXPECT_NE(b->message.find("no version in the file name"), std::string::npos) << b->message;
  EXPECT_EQ(d.registry->current_version(), 5u);
  EXPECT_EQ(d.registry->metrics().ignored, 2u);
  EXPECT_EQ(d.registry->metrics().loaded, 2u);  // the initial file and version 5
}

TEST(Registry, RollbackPinAndReloadMoveBetweenTorchScriptAndOnnxVersions) {
  Direct d;
  const fs::path onnx = install_onnx(d.dir.path(), onnx_name(2), "mlp.onnx");
  const auto published = d.registry->load(onnx);
  ASSERT_EQ(published.status, LoadOutcome::Status::kPublished) << published.message;
  EXPECT_EQ(published.message.find("published " + onnx.string() + " (version 2, onnx, engine native, load "), 0u)
      << published.message;
  EXPECT_EQ(d.registry->current()->engine(), "native");
  EXPECT_EQ(d.registry->rollback(), 1u);  // to TorchScript: a publish, no load
  EXPECT_EQ(d.registry->current()->source(), (d.dir.path() / epoch_name(1)).string());
  EXPECT_EQ(d.registry->unpin(), 2u);  // back to ONNX
  const auto before = d.registry->current();
  EXPECT_EQ(d.registry->reload().status, LoadOutcome::Status::kPublished);
  EXPECT_NE(d.registry->current().get(), before.get()) << "a fresh copy of the ONNX version is served";
  ASSERT_EQ(d.load(3, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  ASSERT_EQ(d.load(4, "mlp.pt").status, LoadOutcome::Status::kPublished);
  EXPECT_TRUE(d.registry->pin(2));  // no longer in memory: its .onnx file is loaded again
  EXPECT_EQ(d.registry->current()->source(), onnx.string());
  EXPECT_EQ(d.registry->versions().front().kind, CheckpointKind::kOnnx);
  EXPECT_EQ(d.registry->metrics().refused_total(), 0u);
}

TEST(Registry, AnOnnxFileIsRefusedWhenTheEngineIsLibTorchAndTheServedVersionKeepsServing) {
  RegistryConfig config;
  config.load.engine = Engine::kLibTorch;
  Direct d(config);
  const fs::path onnx = install_onnx(d.dir.path(), onnx_name(2), "mlp.onnx");
  const auto outcome = d.registry->load(onnx);
  EXPECT_EQ(outcome.status, LoadOutcome::Status::kRefused);
  EXPECT_EQ(outcome.error, std::optional<ErrorCode>(ErrorCode::kUnsupported));
  EXPECT_EQ(outcome.message,
            onnx.string() + ": an ONNX model runs on the native engine only, and LoadOptions::engine is 'libtorch'");
  EXPECT_EQ(d.registry->current_version(), 1u);
  EXPECT_EQ(d.registry->current()->engine(), "libtorch");
  EXPECT_EQ(d.registry->metrics().refused_for(ErrorCode::kUnsupported), 1u);
}

TEST(Registry, AnInitialOnnxModelServesAndAWeightsOnlyFileOntoItIsRefusedNamingWhy) {
  TempDir dir;
  RegistryConfig config;
  config.log = [](const LogRecord&) {};
  const fs::path initial = install_onnx(dir.path(), onnx_name(1), "mlp.onnx");
  auto registry = ModelRegistry::create(config, initial);
  EXPECT_EQ(registry->current_version(), 1u);
  EXPECT_EQ(registry->current()->engine(), "native");
  const fs::path weights = install(dir.path(), epoch_name(2), "mlp_v2_weights.pt");
  const auto refused = registry->load(weights);
  EXPECT_EQ(refused.error, std::optional<ErrorCode>(ErrorCode::kUnsupported));
  EXPECT_EQ(refused.message, weights.string() +
                                 ": a weights-only checkpoint is applied onto the served version's TorchScript "
                                 "architecture, and the served version 1 is an ONNX model (" +
                                 initial.string() + ")");
  EXPECT_EQ(registry->current_version(), 1u);
  // A TorchScript archive is served after it, and weights-only files apply onto that.
  EXPECT_EQ(registry->load(install(dir.path(), epoch_name(3), "mlp_v2.pt")).status, LoadOutcome::Status::kPublished);
  EXPECT_EQ(registry->load(install(dir.path(), epoch_name(4), "mlp_weights.pt")).status,
            LoadOutcome::Status::kPublished);
}

TEST(Registry, MetadataVersionSourceOrdersByTheArchivesVersion) {
  TempDir dir;
  RegistryConfig config;
  config.version_source = VersionSource::kMetadata;
  config.log = [](const LogRecord&) {};
  auto registry = ModelRegistry::create(config, install(dir.path(), "a.pt", "mlp.pt"));
  EXPECT_EQ(registry->current_version(), 1u);
  const auto outcome = registry->load(install(dir.path(), "b.pt", "mlp_v2.pt"));  // metadata version 2
  EXPECT_EQ(outcome.status, LoadOutcome::Status::kPublished) << outcome.message;
  EXPECT_EQ(registry->current_version(), 2u);
}

TEST(Registry, OldVersionIsFreedAfterItsLastBatch) {
  Served served;
  std::weak_ptr<const Model> first = served.registry->current();
  served.expect_serving(1, "mlp.pt");  // the worker now holds version 1
  install(served.dir, epoch_name(2), "mlp_v2.pt");
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 2; }));
  install(served.dir, epoch_name(3), "mlp.pt");
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 3; }));
  EXPECT_FALSE(first.expired()) << "the worker's batch reference keeps it until its next batch";
  served.expect_serving(3, "mlp.pt");  // the worker refreshes: its last reference to version 1 goes
  EXPECT_TRUE(first.expired());
}

TEST(Registry, CreateRejectsAVersionPatternWithoutAGroup) {
  TempDir dir;
  RegistryConfig config;
  config.version_pattern = "epoch\\d+";
  try {
    ModelRegistry::create(config, install(dir.path(), epoch_name(1), "mlp.pt"));
    ADD_FAILURE() << "accepted a pattern without a group";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig) << e.what();
  }
}

TEST(Registry, MetricsRenderAsPrometheusText) {
  Served served;
  install(served.dir, epoch_name(2), "wide16.pt");
  ASSERT_TRUE(served.logs.outcome(served.dir / epoch_name(2)));
  install(served.dir, epoch_name(3), "mlp_v2.pt");
  ASSERT_TRUE(wait_until([&] { return served.registry->current_version() == 3; }));
  const std::string text = to_prometheus(served.registry->metrics());
  for (const std::string line :
       {"tickinfer_model_swaps_total 1", "tickinfer_registry_model_version 3",
        "tickinfer_checkpoints_refused_total{reason=\"width_mismatch\"} 1",
        "tickinfer_checkpoints_refused_total{reason=\"unsafe_file\"} 0", "tickinfer_checkpoint_load_seconds_count 3",
        "tickinfer_checkpoint_warmup_seconds_count 2", "# TYPE tickinfer_checkpoint_load_seconds summary"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing \"" << line << "\" in\n" << text;
  }
}

TEST(Registry, PipelineBatchSizesFollowAllowedSizes) {
  PipelineConfig config;
  config.max_batch = 6;
  EXPECT_EQ(pipeline_batch_sizes(config), (std::vector<std::size_t>{1, 2, 3, 4, 5, 6}));
  config.allowed_batch_sizes = {1, 4, 8};
  EXPECT_EQ(pipeline_batch_sizes(config), (std::vector<std::size_t>{1, 4, 8}));
}

// ---- interface, versions, lifecycle, loader faults ----

TEST(Registry, AnOutputChangeIsServedWhenTheOperatorAllowsInterfaceChanges) {
  RegistryConfig config;
  config.allow_interface_change = true;
  Direct d(config);
  const auto outcome = d.load(2, "deep.pt");
  EXPECT_EQ(outcome.status, LoadOutcome::Status::kPublished) << outcome.message;
  EXPECT_EQ(d.registry->current()->output_width(), 4u);
}

TEST(Registry, AnOlderFileIsStillSafetyCheckedSoAnUnsafeOneInABacklogIsRefused) {
  Direct d;
  ASSERT_EQ(d.load(3, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  const fs::path unsafe = d.dir.path() / epoch_name(2);
  write_bytes(unsafe, read_bytes(model_path("mlp.pt")));
  fs::permissions(unsafe, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_write,
                  fs::perm_options::replace);
  const fs::path good = install(d.dir.path(), epoch_name(4), "mlp.pt");
  d.registry->offer(unsafe);  // offered together: a backlog, tried newest first
  d.registry->offer(good);
  const auto refused = d.logs.outcome(unsafe);
  ASSERT_TRUE(refused.has_value());
  ASSERT_TRUE(refused->error.has_value()) << refused->message;
  EXPECT_EQ(*refused->error, ErrorCode::kUnsafeFile);
  EXPECT_EQ(refused->message, "refused (unsafe_file): " + unsafe.string() + ": world-writable (mode 0602)");
  ASSERT_TRUE(wait_until([&] { return d.registry->current_version() == 4; }));
  EXPECT_EQ(d.registry->metrics().refused_for(ErrorCode::kUnsafeFile), 1u);
}

TEST(Registry, ALowerVersionIsIgnoredWithAWarningNamingTheFileAndBothVersions) {
  Direct d;
  ASSERT_EQ(d.load(5, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  const fs::path restarted = install(d.dir.path(), epoch_name(2), "mlp.pt");
  d.registry->offer(restarted);
  const auto outcome = d.logs.outcome(restarted);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->level, LogLevel::kWarning);
  EXPECT_EQ(outcome->message, restarted.string() +
                                  ": ignored: version 2 is lower than the served version 5; versions only go up. If "
                                  "the training run restarted its numbering, call ModelRegistry::reset_versions() or "
                                  "set RegistryConfig::accept_version_restart");
  EXPECT_EQ(d.registry->current_version(), 5u);
}

TEST(Registry, AcceptVersionRestartServesALowerVersionWhoseFileIsNewer) {
  RegistryConfig config;
  config.accept_version_restart = true;
  Direct d(config);
  const fs::path old_run = install(d.dir.path(), epoch_name(5), "mlp_v2.pt");
  fs::last_write_time(old_run, fs::file_time_type::clock::now() - 1h);
  ASSERT_EQ(d.registry->load(old_run).status, LoadOutcome::Status::kPublished);
  const fs::path restarted = install(d.dir.path(), epoch_name(2), "mlp.pt");
  d.registry->offer(restarted);
  ASSERT_TRUE(wait_until([&] { return d.registry->current_version() == 2; }));
  const auto outcome = d.logs.outcome(restarted);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->level, LogLevel::kWarning);
  EXPECT_NE(outcome->message.find("as a restarted run's version (versions start again from it)"), std::string::npos)
      << outcome->message;
  // The restarted run goes on upwards from its own numbering.
  d.registry->offer(install(d.dir.path(), epoch_name(3), "mlp_v2.pt"));
  ASSERT_TRUE(wait_until([&] { return d.registry->current_version() == 3; }));
}

TEST(Registry, ResetVersionsServesTheNextCheckpointWhateverItsVersionOnce) {
  Direct d;
  ASSERT_EQ(d.load(5, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  d.registry->reset_versions();
  d.registry->offer(install(d.dir.path(), epoch_name(2), "mlp.pt"));
  ASSERT_TRUE(wait_until([&] { return d.registry->current_version() == 2; }));
  const fs::path lower = install(d.dir.path(), "run2_epoch1.pt", "mlp_v2.pt");  // the reset was used up
  d.registry->offer(lower);
  const auto outcome = d.logs.outcome(lower);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->level, LogLevel::kWarning) << outcome->message;
  EXPECT_EQ(d.registry->current_version(), 2u);
}

// Sets the loader's fault hook for one test.
struct LoaderFault {
  explicit LoaderFault(std::function<void(std::string_view)> fault) {
    internal::set_loader_fault_for_testing(std::move(fault));
  }
  ~LoaderFault() { internal::set_loader_fault_for_testing(nullptr); }
};

TEST(Registry, TheLoaderThreadSurvivesAnyExceptionInTheVersionDecision) {
  Direct d;
  std::atomic<int> faults{0};
  {
    const LoaderFault fault([&](std::string_view stage) {
      if (stage != "decide") return;
      if (faults.fetch_add(1) == 0) throw std::runtime_error("injected fault");
      throw 42;  // not even a std::exception
    });
    const fs::path second = install(d.dir.path(), epoch_name(2), "mlp_v2.pt");
    const auto a = d.registry->load(second);
    EXPECT_EQ(a.status, LoadOutcome::Status::kRefused);
    EXPECT_EQ(a.error, std::optional<ErrorCode>(ErrorCode::kInternal));
    EXPECT_EQ(a.message, second.string() + ": unexpected exception: injected fault");
    const fs::path third = install(d.dir.path(), epoch_name(3), "mlp_v2.pt");
    const auto b = d.registry->load(third);
    EXPECT_EQ(b.error, std::optional<ErrorCode>(ErrorCode::kInternal));
    EXPECT_EQ(b.message, third.string() + ": unexpected exception of unknown type");
  }
  EXPECT_EQ(d.registry->metrics().refused_for(ErrorCode::kInternal), 2u);
  EXPECT_EQ(d.load(4, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  EXPECT_EQ(d.registry->current_version(), 4u);
}

TEST(Registry, VersionsReportTheirLifecycleState) {
  Direct d;
  ASSERT_EQ(d.load(2, "mlp_v2.pt").status, LoadOutcome::Status::kPublished);
  auto versions = d.registry->versions();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].state, VersionState::kReady);
  EXPECT_EQ(versions[1].state, VersionState::kServing);
  d.registry->rollback();
  versions = d.registry->versions();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].state, VersionState::kServing);
  EXPECT_EQ(versions[1].state, VersionState::kReady);
  EXPECT_STREQ(to_string(VersionState::kRetired), "retired");
}

TEST(Lifecycle, AnEdgeOutsideTheTransitionTableIsAnInternalErrorNamingBothStates) {
  internal::Lifecycle lifecycle(/*accept_version_restart=*/false, /*pinned=*/std::nullopt, nullptr);
  auto first = std::make_shared<internal::VersionEntry>();
  first->version = 1;
  lifecycle.place_initial(first);
  std::string file;
  EXPECT_TRUE(lifecycle.pin(1, file));
  auto newer = std::make_shared<internal::VersionEntry>();
  newer->version = 5;  // never begin_load()ed: unknown -> ready is not an edge
  try {
    lifecycle.place(newer, /*forced=*/false);
    ADD_FAILURE() << "placed a version that never loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    EXPECT_EQ(std::string(e.what()), "registry: version 5 cannot go from unknown to ready");
  }
}

}  // namespace
}  // namespace tickinfer
