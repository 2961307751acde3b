// What a trading engine writes: load the model, start a pipeline (and its admin server, tickinfer::serve), submit
// one tick's features, get a result.
#include <tickinfer/admin_server.hpp>
#include <tickinfer/pipeline.hpp>
#include <tickinfer/torchscript.hpp>
#include <tickinfer/waiter.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: engine MODEL.pt\n");
    return 2;
  }
  auto slot = std::make_shared<tickinfer::ModelSlot>(tickinfer::load_torchscript(argv[1]));
  auto pipeline = tickinfer::Pipeline::create({}, slot, tickinfer::make_cpu_backend());
  auto admin = tickinfer::AdminServer::start({}, {.pipeline = pipeline.get()});  // 127.0.0.1, an ephemeral port
  auto producer = pipeline->make_producer();
  std::vector<float> features(pipeline->feature_width(), 0.5f);
  tickinfer::ResultWaiter waiter;
  if (pipeline->submit(producer, features, tickinfer::kNoDeadline, waiter.arm()) != tickinfer::SubmitStatus::kAccepted)
    return 1;
  if (!waiter.wait_for(std::chrono::seconds(10)) || waiter.status() != tickinfer::ResultStatus::kOk) return 1;
  std::printf("engine: prediction %.6f from model version %llu\n", waiter.outputs()[0],
              static_cast<unsigned long long>(waiter.model_version()));
  std::printf("engine: admin server on port %u\n", static_cast<unsigned>(admin->port()));
  return 0;
}
