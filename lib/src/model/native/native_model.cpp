#include "model/native/native_model.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <random>
#include <sstream>

#include "tickinfer/error.hpp"

namespace tickinfer::native {
namespace {

std::string number(double v) {
  std::ostringstream out;
  out << std::setprecision(9) << v;
  return out.str();
}

}  // namespace

const std::shared_ptr<const Plan>* native_plan_of(const Model& model) noexcept {
  const auto* has = dynamic_cast<const HasNativePlan*>(&model);
  if (has == nullptr || !has->native_plan()) return nullptr;
  return &has->native_plan();
}

void validate_plan(const Plan& plan, const ModelMetadata& meta, const std::vector<std::size_t>& batch_sizes,
                   float tolerance, const std::string& source) {
  const std::size_t in_w = plan.input_width(), out_w = plan.output_width();
  if (in_w != meta.input_names.size() || out_w != meta.output_names.size()) {
    throw Error(ErrorCode::kWidthMismatch, source + ": the graph maps " + std::to_string(in_w) + " inputs to " +
                                               std::to_string(out_w) + " outputs, the metadata names " +
                                               std::to_string(meta.input_names.size()) + " and " +
                                               std::to_string(meta.output_names.size()));
  }
  std::size_t max_rows = std::max<std::size_t>(1, meta.golden_inputs.size());
  for (const std::size_t b : batch_sizes) max_rows = std::max(max_rows, b);
  Executor exec(std::shared_ptr<const Plan>(std::shared_ptr<const Plan>{}, &plan), max_rows);

  // Golden rows.
  if (!meta.golden_inputs.empty()) {
    const std::size_t rows = meta.golden_inputs.size();
    std::vector<float> in(rows * in_w), out(rows * out_w);
    for (std::size_t r = 0; r < rows; ++r) std::copy_n(meta.golden_inputs[r].data(), in_w, in.data() + r * in_w);
    exec.run(in.data(), rows, out.data());
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < out_w; ++c) {
        const float got = out[r * out_w + c], want = meta.golden_outputs[r][c];
        const std::string where =
            "golden row " + std::to_string(r) + ", output " + std::to_string(c) + " ('" + meta.output_names[c] + "')";
        if (!std::isfinite(got)) {
          throw Error(ErrorCode::kNonFiniteOutput,
                      source + ": native engine: " + where + " is " + number(got) + " (expected " + number(want) + ")");
        }
        if (!(std::abs(got - want) <= tolerance)) {
          throw Error(ErrorCode::kGoldenMismatch,
                      source + ": native engine: " + where + ": expected " + number(want) + ", got " + number(got) +
                          " (|diff| " + number(std::abs(got - want)) + " > tolerance " + number(tolerance) + ")");
        }
      }
    }
  }

  // Every batch size: finite, row-independent, deterministic.
  std::mt19937 rng(20261201);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const std::size_t rows : batch_sizes) {
    if (rows == 0) continue;
    std::vector<float> in(rows * in_w);
    for (std::size_t r = 0; r < rows; ++r) {
      if (!meta.golden_inputs.empty()) {
        std::copy_n(meta.golden_inputs[r % meta.golden_inputs.size()].data(), in_w, in.data() + r * in_w);
      } else {
        for (std::size_t c = 0; c < in_w; ++c) in[r * in_w + c] = dist(rng);
      }
    }
    std::vector<float> out(rows * out_w), again(rows * out_w), alone(out_w);
    exec.run(in.data(), rows, out.data());
    exec.run(in.data(), rows, again.data());
    const std::string at = source + ": native engine at batch size " + std::to_string(rows) + ": ";
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (!std::isfinite(out[i])) {
        throw Error(ErrorCode::kNonFiniteOutput, at + "row " + std::to_string(i / out_w) + ", output " +
                                                     std::to_string(i % out_w) + " is " + number(out[i]));
      }
      if (out[i] != again[i]) {
        throw Error(ErrorCode::kModelError, at + "the same input gave " + number(out[i]) + " then " + number(again[i]) +
                                                " (row " + std::to_string(i / out_w) + ")");
      }
    }
    for (const std::size_t r : {std::size_t{0}, rows - 1}) {
      exec.run(in.data() + r * in_w, 1, alone.data());
      for (std::size_t c = 0; c < out_w; ++c) {
        if (std::abs(alone[c] - out[r * out_w + c]) > tolerance) {
          throw Error(ErrorCode::kModelError, at + "row " + std::to_string(r) + ", output " + std::to_string(c) +
                                                  " is " + number(out[r * out_w + c]) + " in the batch but " +
                                                  number(alone[c]) + " alone");
        }
      }
    }
  }
}

}  // namespace tickinfer::native
