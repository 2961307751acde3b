// An ONNX file through the native engine's ONNX front end (protobuf parse, onnx::checker, mapping) and, when it
// maps, the planner and one run. Input: the file's bytes.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "model/native/onnx_frontend.hpp"
#include "model/native/plan.hpp"
#include "tickinfer/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tickinfer;
  try {
    native::OnnxOptions options;
    options.max_file_bytes = 1 << 20;  // what a fuzz input can be; bounds every tensor the file claims
    const native::OnnxGraph g =
        native::parse_onnx(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.onnx", options);
    const auto plan = native::Plan::compile(g.graph);
    if (plan->input_width() > 4096) return 0;
    native::Executor exec(plan, 2);
    std::vector<float> in(2 * plan->input_width(), 0.5f), out(2 * plan->output_width());
    exec.run(in.data(), 2, out.data());
  } catch (const Error&) {
  }
  return 0;
}
