// README.md's trading-engine code, compiled and run by ctest (example.trading_engine: against the bundled
// test model, in a scratch directory that holds mlp.pt and checkpoints/model_epoch1.pt). The README's two C++
// blocks are the regions between "// readme:<name>" and "// readme:end" below, each region dedented and the
// regions of one name joined by an empty line; ctest example.readme (check_readme.py) keeps them identical.
// Built like a consumer: it links tickinfer::tickinfer and tickinfer::serve only, without Torch's or Boost's headers.

// readme:pipeline
#include <tickinfer/pipeline.hpp>
#include <tickinfer/torchscript.hpp>
// readme:end
// readme:hot-swap
#include <tickinfer/registry.hpp>
#include <tickinfer/watcher.hpp>
// readme:end
// readme:direct
#include <tickinfer/predictor.hpp>
// readme:end
// readme:admin
#include <tickinfer/admin_server.hpp>
// readme:end

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

// The engine side of the README's snippets: what `engine_ptr`, `order_id` and `on_prediction` stand for.
struct Engine {
  std::atomic<int> completions{0};
  std::atomic<int> last_status{-1};
};

void on_prediction(void* context, const tickinfer::Result& result) {  // on a worker thread; must not block
  auto* engine = static_cast<Engine*>(context);
  engine->last_status.store(static_cast<int>(result.status));
  engine->completions.fetch_add(1);
}

void act_on(float prediction) { std::printf("example: direct prediction %.6f\n", prediction); }

bool wait_for(const std::atomic<int>& counter, int n) {
  for (int i = 0; i < 10'000 && counter.load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return counter.load() >= n;
}

tickinfer::PipelineConfig submit_one(Engine* engine_ptr, std::int64_t order_id) {
  // readme:pipeline
  using namespace std::chrono_literals;

  auto slot = std::make_shared<tickinfer::ModelSlot>(tickinfer::load_torchscript("mlp.pt"));
  tickinfer::PipelineConfig config;  // max_batch, max_delay_us, queue_capacity, workers, idle, pin_cores
  auto pipeline = tickinfer::Pipeline::create(config, slot, tickinfer::make_cpu_backend());
  auto producer = pipeline->make_producer();  // once per feed thread
  // readme:end
  std::vector<float> features(pipeline->feature_width(), 0.25f);
  // readme:pipeline
  // On every event: never blocks, never allocates. Completion runs once on a worker thread.
  auto status = pipeline->submit(producer, features, tickinfer::deadline_in(50us),
                                 {&on_prediction, engine_ptr, static_cast<std::uint64_t>(order_id)});
  // kAccepted, kRejected (queue full: shed explicitly), kInvalid (wrong width)
  // readme:end
  std::printf("example: submit -> %s\n", tickinfer::to_string(status));
  if (status == tickinfer::SubmitStatus::kAccepted && !wait_for(engine_ptr->completions, 1)) {
    std::fprintf(stderr, "example: no completion within 10 s\n");
    std::exit(1);
  }
  std::printf("example: completed with %s\n",
              tickinfer::to_string(static_cast<tickinfer::ResultStatus>(engine_ptr->last_status.load())));
  return config;
}

void hot_swap(const tickinfer::PipelineConfig& config) {
  // readme:hot-swap
  tickinfer::RegistryConfig rc;
  rc.load.warmup_batch_sizes = tickinfer::pipeline_batch_sizes(config);  // warm every size before serving
  auto registry = tickinfer::ModelRegistry::create(rc, "checkpoints/model_epoch1.pt");
  auto pipeline = tickinfer::Pipeline::create(config, registry->slot(), tickinfer::make_cpu_backend());
  auto watcher = tickinfer::CheckpointWatcher::create({.directory = "checkpoints", .log = tickinfer::stderr_log_sink()},
                                                      [&](const auto& path) { registry->offer(path); });
  // readme:end
  std::printf("example: registry serving version %llu, pipeline width %zu\n",
              static_cast<unsigned long long>(registry->slot()->current()->version()), pipeline->feature_width());
  const std::vector<float> features(pipeline->feature_width(), 0.25f);
  // readme:direct
  // The lowest latency: the engine's own thread runs the model on the native engine, with no queue hop.
  tickinfer::Predictor predictor(registry->slot());  // one per thread; follows hot swaps without a lock
  float prediction[1];
  if (predictor.predict(features, prediction) == tickinfer::PredictStatus::kOk) act_on(prediction[0]);
  // readme:end
  const auto direct = predictor.predict(features, prediction);
  std::printf("example: direct predict -> %s (%s engine, version %llu)\n", tickinfer::to_string(direct),
              registry->slot()->current()->engine().c_str(),
              static_cast<unsigned long long>(predictor.model_version()));
  if (direct != tickinfer::PredictStatus::kOk) std::exit(1);
  // readme:admin
  tickinfer::AdminServerConfig admin;  // binds 127.0.0.1; port 0: any free port (admin_server->port())
  admin.token_file = "";               // a chmod-600 file holding the bearer token; empty: model control disabled
  auto admin_server = tickinfer::AdminServer::start(admin, {.pipeline = pipeline.get(), .registry = registry.get()});
  // curl localhost:PORT/metrics, /v2/health/ready, /v2/models/mlp; POST /v2/models/mlp/rollback with the token
  // readme:end
  std::printf("example: admin server on 127.0.0.1:%u\n", static_cast<unsigned>(admin_server->port()));
  admin_server->stop();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: trading_engine MODEL.pt   (runs in a scratch directory with copies of it)\n");
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path model = fs::absolute(argv[1]);
  const fs::path work = fs::temp_directory_path() / ("tickinfer-example-" + std::to_string(::getpid()));
  fs::create_directories(work / "checkpoints");
  fs::copy_file(model, work / "mlp.pt");
  fs::copy_file(model, work / "checkpoints" / "model_epoch1.pt");
  fs::current_path(work);
  int rc = 0;
  try {
    Engine engine;
    const auto config = submit_one(&engine, -42);  // a signed order id: the tag is its bits
    hot_swap(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example: %s\n", e.what());
    rc = 1;
  }
  fs::current_path(fs::temp_directory_path());
  fs::remove_all(work);
  return rc;
}
