// Loading TorchScript archives, their validation errors, and the CPU runner.
// Models come from scripts/export_model.py --all (CMake target tickinfer_test_models).

#include "tickinfer/torchscript.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer {
namespace {

namespace fs = std::filesystem;

fs::path model_path(const std::string& file) { return fs::path(TICKINFER_TEST_MODEL_DIR) / file; }

using TempDir = testing::TestTempDir;

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `load`, expects Error with `code` and a message naming `path` and containing every `reasons` entry.
void expect_load_error(const fs::path& path, ErrorCode code, const std::vector<std::string>& reasons,
                       const LoadOptions& options = {}) {
  try {
    load_torchscript(path, options);
    ADD_FAILURE() << "load_torchscript(" << path << ") did not throw; expected " << to_string(code);
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.code(), code) << "got " << to_string(e.code()) << ": " << message;
    EXPECT_NE(message.find(path.string()), std::string::npos) << "message does not name the file: " << message;
    for (const auto& reason : reasons) {
      EXPECT_NE(message.find(reason), std::string::npos) << "message lacks \"" << reason << "\": " << message;
    }
  }
}

std::vector<float> random_rows(std::mt19937& rng, std::size_t rows, std::size_t width) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> values(rows * width);
  for (auto& v : values) v = dist(rng);
  return values;
}

std::vector<float> flatten(const std::vector<std::vector<float>>& rows) {
  std::vector<float> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  return flat;
}

// Stages `rows` into the runner and runs; returns a copy of the outputs.
std::vector<float> run_rows(Runner& runner, const Model& model, const std::vector<float>& rows) {
  const std::size_t count = rows.size() / model.input_width();
  const std::span<float> staged = runner.input(count);
  std::copy(rows.begin(), rows.end(), staged.begin());
  const std::span<const float> out = runner.run(model, count);
  return {out.begin(), out.end()};
}

// ---- loading and metadata ----

TEST(LoadTorchScript, ParsesMetadataFromTheArchive) {
  const auto model = load_torchscript(model_path("mlp.pt"));
  const ModelMetadata& meta = model->metadata();
  EXPECT_EQ(meta.format_version, kMetadataFormatVersion);
  EXPECT_EQ(meta.name, "mlp");
  EXPECT_EQ(meta.version, 1u);
  EXPECT_EQ(model->version(), 1u);
  ASSERT_EQ(meta.input_names.size(), 32u);
  EXPECT_EQ(meta.input_names.front(), "f0");
  EXPECT_EQ(meta.input_names.back(), "f31");
  EXPECT_EQ(meta.output_names, std::vector<std::string>{"y0"});
  EXPECT_EQ(meta.feature_schema_hash, "synthetic-v1");
  ASSERT_EQ(meta.golden_inputs.size(), 4u);
  ASSERT_EQ(meta.golden_outputs.size(), 4u);
  EXPECT_EQ(meta.golden_inputs[0].size(), 32u);
  EXPECT_EQ(meta.golden_outputs[0].size(), 1u);
  EXPECT_EQ(model->input_width(), 32u);
  EXPECT_EQ(model->output_width(), 1u);
  EXPECT_EQ(model->source(), model_path("mlp.pt").string());

  const auto v2 = load_torchscript(model_path("mlp_v2.pt"));
  EXPECT_EQ(v2->metadata().name, "mlp");
  EXPECT_EQ(v2->version(), 2u);
  const auto deep = load_torchscript(model_path("deep.pt"));
  EXPECT_EQ(deep->output_width(), 4u);
}

TEST(LoadTorchScript, VersionOptionOverridesTheMetadataVersion) {
  LoadOptions options;
  options.version = 42;
  const auto model = load_torchscript(model_path("mlp.pt"), options);
  EXPECT_EQ(model->version(), 42u);
  EXPECT_EQ(model->metadata().version, 1u);
}

TEST(LoadTorchScript, AcceptsMatchingWidthAndSchema) {
  LoadOptions options;
  options.expected_input_width = 32;
  options.expected_schema_hash = "synthetic-v1";
  options.warmup_batch_sizes = {1, 8, 64};
  EXPECT_NO_THROW(load_torchscript(model_path("deep.pt"), options));
}

TEST(LoadTorchScript, GoldenOutputsReproduceWithAndWithoutOptimization) {
  for (const char* file : {"mlp.pt", "mlp_v2.pt", "deep.pt", "nan_model.pt", "throwing_model.pt", "wide16.pt"}) {
    for (const bool optimize : {true, false}) {
      SCOPED_TRACE(std::string(file) + (optimize ? " optimized" : " plain"));
      LoadOptions options;
      options.optimize_for_inference = optimize;
      const auto model = load_torchscript(model_path(file), options);
      const ModelMetadata& meta = model->metadata();
      const auto out = run_model(*model, flatten(meta.golden_inputs), meta.golden_inputs.size());
      const auto expected = flatten(meta.golden_outputs);
      ASSERT_EQ(out.size(), expected.size());
      for (std::size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], expected[i], 1e-5) << "value " << i;
    }
  }
}

TEST(LoadTorchScript, SecondVersionGivesClearlyDifferentOutputs) {
  const auto v1 = load_torchscript(model_path("mlp.pt"));
  const auto v2 = load_torchscript(model_path("mlp_v2.pt"));
  std::mt19937 rng(7);
  const auto rows = random_rows(rng, 16, 32);
  const auto out1 = run_model(*v1, rows, 16);
  const auto out2 = run_model(*v2, rows, 16);
  float max_diff = 0.0f;
  for (std::size_t i = 0; i < out1.size(); ++i) max_diff = std::max(max_diff, std::abs(out1[i] - out2[i]));
  EXPECT_GT(max_diff, 1e-2f);
}

TEST(LoadTorchScript, ExportScriptSchemaOptionSetsNamesAndHash) {
  TempDir dir;
  const fs::path schema = dir.path() / "schema.json";
  write_bytes(schema, R"({"names": ["bid", "ask", "spread"], "hash": "book-v3"})");
  const std::string command = std::string("'") + TICKINFER_PYTHON + "' '" + TICKINFER_SOURCE_DIR +
                              "/scripts/export_model.py' --out-dir '" + dir.path().string() +
                              "' --model mlp --version 5 --seed 9 --schema '" + schema.string() + "' > /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  LoadOptions options;
  options.expected_input_width = 3;
  options.expected_schema_hash = "book-v3";
  const auto model = load_torchscript(dir.path() / "mlp_v5.pt", options);
  EXPECT_EQ(model->metadata().input_names, (std::vector<std::string>{"bid", "ask", "spread"}));
  EXPECT_EQ(model->version(), 5u);
}

// ---- load errors: one per bad file ----

TEST(LoadErrors, MissingFileIsFileNotFound) {
  TempDir dir;
  expect_load_error(dir.path() / "absent.pt", ErrorCode::kFileNotFound, {"no such file"});
}

TEST(LoadErrors, GarbageFileIsNotTorchScript) {
  TempDir dir;
  std::mt19937 rng(1);
  std::string bytes(4096, '\0');
  for (auto& b : bytes) b = static_cast<char>(rng() & 0xff);
  bytes[0] = 'x';  // never a zip header by accident
  const fs::path path = dir.path() / "garbage.pt";
  write_bytes(path, bytes);
  expect_load_error(path, ErrorCode::kNotTorchScript, {"not a TorchScript archive", "no zip header"});
}

TEST(LoadErrors, EmptyFileIsNotTorchScript) {
  TempDir dir;
  const fs::path path = dir.path() / "empty.pt";
  write_bytes(path, "");
  expect_load_error(path, ErrorCode::kNotTorchScript, {"no zip header"});
}

TEST(LoadErrors, FirstHalfOfAnArchiveIsTruncatedArchive) {
  TempDir dir;
  const std::string bytes = read_bytes(model_path("mlp.pt"));
  ASSERT_GT(bytes.size(), 1000u);
  const fs::path path = dir.path() / "truncated.pt";
  write_bytes(path, bytes.substr(0, bytes.size() / 2));
  expect_load_error(path, ErrorCode::kTruncatedArchive, {"truncated or damaged zip archive"});
}

TEST(LoadErrors, WeightsOnlyCheckpointIsNotTorchScript) {
  expect_load_error(model_path("mlp_weights.pt"), ErrorCode::kNotTorchScript, {"without TorchScript code"});
}

TEST(LoadErrors, ArchiveWithoutMetadataIsMissingMetadata) {
  expect_load_error(model_path("no_metadata.pt"), ErrorCode::kMissingMetadata, {"no tickinfer.json"});
}

TEST(LoadErrors, InvalidJsonIsMalformedMetadata) {
  expect_load_error(model_path("bad_json.pt"), ErrorCode::kMalformedMetadata, {"tickinfer.json", "invalid JSON"});
}

TEST(LoadErrors, MissingFieldIsMalformedMetadataNamingTheField) {
  expect_load_error(model_path("missing_field.pt"), ErrorCode::kMalformedMetadata,
                    {"missing field 'feature_schema_hash'"});
}

TEST(LoadErrors, MistypedFieldIsMalformedMetadataNamingTheField) {
  expect_load_error(model_path("mistyped_field.pt"), ErrorCode::kMalformedMetadata,
                    {"field 'version' must be a non-negative integer, got string"});
}

TEST(LoadErrors, UnknownFormatVersionIsMalformedMetadata) {
  expect_load_error(model_path("wrong_format_version.pt"), ErrorCode::kMalformedMetadata,
                    {"field 'format_version' is 99, this build reads 1"});
}

TEST(LoadErrors, NarrowerModelIsWidthMismatch) {
  LoadOptions options;
  options.expected_input_width = 32;
  expect_load_error(model_path("wide16.pt"), ErrorCode::kWidthMismatch,
                    {"has 16 input features, the pipeline expects 32"}, options);
}

TEST(LoadErrors, OtherFeatureSchemaIsSchemaMismatch) {
  LoadOptions options;
  options.expected_schema_hash = "book-v2";
  expect_load_error(model_path("mlp.pt"), ErrorCode::kSchemaMismatch, {"'synthetic-v1'", "'book-v2'"}, options);
}

TEST(LoadErrors, TamperedGoldenOutputIsGoldenMismatchNamingRowAndColumn) {
  expect_load_error(model_path("golden_mismatch.pt"), ErrorCode::kGoldenMismatch,
                    {"golden row 2, output 0 ('y0')", "expected ", ", got ", "tolerance"});
}

TEST(LoadErrors, NanOnGoldenInputIsNonFiniteOutput) {
  expect_load_error(model_path("nan_golden.pt"), ErrorCode::kNonFiniteOutput, {"golden row 0, output 0", "nan"});
}

// ---- the checked warm-up: models right at the golden batch size (4), wrong at others ----

LoadOptions warm_up_at(std::vector<std::size_t> sizes) {
  LoadOptions options;
  options.warmup_batch_sizes = std::move(sizes);
  return options;
}

TEST(LoadErrors, WrongRowCountAtAnotherBatchSizeIsShapeMismatch) {
  expect_load_error(model_path("wrong_rows.pt"), ErrorCode::kShapeMismatch,
                    {model_path("wrong_rows.pt").string() +
                     ": during warm-up at batch size 8, forward returned shape [7, 1], expected [8, 1]"},
                    warm_up_at({1, 4, 8}));
}

TEST(LoadErrors, WrongOutputWidthAtAnotherBatchSizeIsShapeMismatch) {
  expect_load_error(model_path("wrong_width.pt"), ErrorCode::kShapeMismatch,
                    {model_path("wrong_width.pt").string() +
                     ": during warm-up at batch size 8, forward returned shape [8, 2], expected [8, 1]"},
                    warm_up_at({1, 4, 8}));
}

TEST(LoadErrors, NanAtAnotherBatchSizeIsNonFiniteOutput) {
  expect_load_error(
      model_path("nan_at_batch.pt"), ErrorCode::kNonFiniteOutput,
      {model_path("nan_at_batch.pt").string() + ": during warm-up at batch size 8, row 0, output 0 ('y0') is nan"},
      warm_up_at({1, 4, 8}));
}

TEST(LoadErrors, RowsThatDependOnTheirBatchAreNondeterministic) {
  expect_load_error(model_path("batch_dependent.pt"), ErrorCode::kNondeterministic,
                    {model_path("batch_dependent.pt").string() + ": golden row 0, output 0 ('y0') is ", " alone and ",
                     " in a batch of 4 (rows of a batch must not depend on each other)"});
}

TEST(LoadErrors, StateKeptBetweenCallsIsNondeterministic) {
  expect_load_error(model_path("stateful.pt"), ErrorCode::kNondeterministic,
                    {model_path("stateful.pt").string() +
                         ": the golden inputs run twice give different outputs: row 0, output 0 ('y0') was ",
                     ", then ", " (does forward keep state between calls?)"});
}

TEST(LoadErrors, OtherOutputsThanExpectedAreInterfaceMismatch) {
  LoadOptions options;
  options.expected_output_names = {"y0"};
  expect_load_error(
      model_path("deep.pt"), ErrorCode::kInterfaceMismatch,
      {model_path("deep.pt").string() + ": outputs [y0, y1, y2, y3] (4) differ from the served model's [y0] (1); set "
                                        "RegistryConfig::allow_interface_change to accept the change"},
      options);
}

// ---- size bounds: refused from the zip directory, before anything is inflated ----

TEST(LoadErrors, MetadataInflatingBeyondItsBoundIsTooLarge) {
  // A ~100 KB archive whose tickinfer.json inflates to 64 MiB (valid JSON padded with spaces).
  const fs::path bomb = model_path("metadata_bomb.pt");
  ASSERT_LT(fs::file_size(bomb), 1u << 20);
  expect_load_error(bomb, ErrorCode::kTooLarge,
                    {bomb.string() + ": archive member '", "/extra/tickinfer.json' inflates to ",
                     " bytes, more than the 1048576 allowed for metadata (LoadOptions::max_metadata_bytes)"});
}

TEST(LoadErrors, AMemberInflatingBeyondMaxArchiveBytesIsTooLarge) {
  LoadOptions options;
  options.max_archive_bytes = 16u << 20;
  const fs::path bomb = model_path("weights_bomb.pt");  // ~90 KB holding a 64 MiB tensor
  expect_load_error(bomb, ErrorCode::kTooLarge,
                    {bomb.string() + ": archive member '",
                     "' inflates to 67108864 bytes, more than the 16777216 allowed (LoadOptions::max_archive_bytes)"},
                    options);
}

TEST(LoadErrors, AFileLargerThanMaxArchiveBytesIsTooLargeAndNotRead) {
  LoadOptions options;
  options.max_archive_bytes = 1000;
  const fs::path path = model_path("mlp.pt");
  expect_load_error(path, ErrorCode::kTooLarge,
                    {path.string() + ": " + std::to_string(fs::file_size(path)) +
                     " bytes, more than the 1000 allowed (LoadOptions::max_archive_bytes)"},
                    options);
}

TEST(LoadErrors, CudaDeviceWithoutCudaIsUnsupportedAndUnknownDeviceIsInvalid) {
  LoadOptions options;
  options.device = "tpu";
  try {
    load_torchscript(model_path("mlp.pt"), options);
    ADD_FAILURE() << "device 'tpu' accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig) << e.what();
  }
  options.device = "cuda:0";
  try {
    const auto model = load_torchscript(model_path("mlp.pt"), options);
    EXPECT_EQ(model->version(), 1u);  // a CUDA build on a GPU machine loads it
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported) << e.what();
  }
}

// ---- parse_metadata ----

TEST(ParseMetadata, GoldenRowOfWrongWidthNamesTheRow) {
  const std::string text = R"({"format_version": 1, "name": "m", "version": 3, "input_names": ["a", "b"],
    "output_names": ["y"], "feature_schema_hash": "h",
    "golden": {"inputs": [[1, 2], [3]], "outputs": [[0.5], [0.25]]}})";
  try {
    parse_metadata(text, "label.pt");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMalformedMetadata);
    EXPECT_NE(std::string(e.what()).find("label.pt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'golden.inputs[1]' has 1 values, expected 2"), std::string::npos) << e.what();
  }
}

TEST(ParseMetadata, ReadsEveryField) {
  const std::string text = R"({"format_version": 1, "name": "m", "version": 3, "input_names": ["a", "b"],
    "output_names": ["y"], "feature_schema_hash": "h", "extra": "ignored",
    "golden": {"inputs": [[1, 2.5]], "outputs": [[-0.5]]}})";
  const ModelMetadata meta = parse_metadata(text, "label.pt");
  EXPECT_EQ(meta.name, "m");
  EXPECT_EQ(meta.version, 3u);
  EXPECT_EQ(meta.input_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(meta.feature_schema_hash, "h");
  EXPECT_EQ(meta.golden_inputs, (std::vector<std::vector<float>>{{1.0f, 2.5f}}));
  EXPECT_EQ(meta.golden_outputs, (std::vector<std::vector<float>>{{-0.5f}}));
}

// ---- CPU runner ----

class CpuRunnerBatching : public ::testing::TestWithParam<const char*> {};

TEST_P(CpuRunnerBatching, BatchedOutputsEqualPerSampleOutputsForEveryBatchSize) {
  constexpr std::size_t kMaxBatch = 64;
  const auto model = load_torchscript(model_path(GetParam()));
  const std::size_t width = model->input_width();
  const std::size_t out_width = model->output_width();
  const auto runner = make_cpu_backend()->make_runner(kMaxBatch, width);
  std::mt19937 rng(11);
  for (std::size_t batch = 1; batch <= kMaxBatch; ++batch) {
    const auto rows = random_rows(rng, batch, width);
    const auto batched = run_rows(*runner, *model, rows);
    ASSERT_EQ(batched.size(), batch * out_width);
    float max_diff = 0.0f;
    for (std::size_t r = 0; r < batch; ++r) {
      const std::vector<float> row(rows.begin() + static_cast<std::ptrdiff_t>(r * width),
                                   rows.begin() + static_cast<std::ptrdiff_t>((r + 1) * width));
      const auto single = run_rows(*runner, *model, row);
      for (std::size_t c = 0; c < out_width; ++c) {
        max_diff = std::max(max_diff, std::abs(batched[r * out_width + c] - single[c]));
      }
    }
    EXPECT_LE(max_diff, 1e-5f) << "batch size " << batch;
  }
}

std::string file_stem(const ::testing::TestParamInfo<const char*>& param_info) {
  return fs::path(param_info.param).stem().string();
}

INSTANTIATE_TEST_SUITE_P(Models, CpuRunnerBatching, ::testing::Values("mlp.pt", "deep.pt"), file_stem);

TEST(CpuRunner, MatchesRunModelAndGrowsItsOutputForAWiderModel) {
  const auto mlp = load_torchscript(model_path("mlp.pt"));
  const auto deep = load_torchscript(model_path("deep.pt"));
  const auto runner = make_cpu_backend()->make_runner(8, 32);
  std::mt19937 rng(3);
  const auto rows = random_rows(rng, 8, 32);
  for (const auto* model : {mlp.get(), deep.get(), mlp.get()}) {
    const auto expected = run_model(*model, rows, 8);
    const auto got = run_rows(*runner, *model, rows);
    ASSERT_EQ(got.size(), expected.size()) << model->source();
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-5) << model->source() << " " << i;
  }
}

TEST(CpuRunner, NanModelGivesNanOnlyForTheTriggerRow) {
  const auto model = load_torchscript(model_path("nan_model.pt"));
  const auto runner = make_cpu_backend()->make_runner(16, 32);
  std::mt19937 rng(5);
  auto rows = random_rows(rng, 5, 32);
  rows[2 * 32] = 5000.0f;  // feature 0 of row 2 > 1000
  const auto out = run_rows(*runner, *model, rows);
  ASSERT_EQ(out.size(), 5u);
  for (std::size_t r = 0; r < 5; ++r) {
    if (r == 2) {
      EXPECT_TRUE(std::isnan(out[r])) << out[r];
    } else {
      EXPECT_TRUE(std::isfinite(out[r])) << "row " << r << ": " << out[r];
    }
  }
}

TEST(CpuRunner, ThrowingModelThrowsWithThePythonMessageAndTheRunnerRecovers) {
  const auto model = load_torchscript(model_path("throwing_model.pt"));
  const auto runner = make_cpu_backend()->make_runner(16, 32);
  std::mt19937 rng(6);
  auto rows = random_rows(rng, 4, 32);
  rows[32] = -999.0f;  // feature 0 of row 1
  try {
    run_rows(*runner, *model, rows);
    ADD_FAILURE() << "forward did not throw";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("tickinfer test model: poisoned input (feature 0 == -999)"), std::string::npos) << message;
    EXPECT_NE(message.find(model->source()), std::string::npos) << message;
  }
  rows[32] = 0.0f;
  const auto out = run_rows(*runner, *model, rows);
  EXPECT_EQ(out.size(), 4u);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](float v) { return std::isfinite(v); }));
}

TEST(CpuRunner, OneModelServesRunnersOnSeveralThreadsAtOnce) {
  const auto model = load_torchscript(model_path("deep.pt"));
  std::mt19937 rng(9);
  const auto rows = random_rows(rng, 16, 32);
  const auto expected = run_model(*model, rows, 16);
  const auto backend = make_cpu_backend();
  std::vector<std::thread> threads;
  std::vector<float> max_diff(3, 0.0f);
  for (std::size_t t = 0; t < max_diff.size(); ++t) {
    threads.emplace_back([&, t] {
      const auto runner = backend->make_runner(16, 32);
      for (int i = 0; i < 200; ++i) {
        const auto got = run_rows(*runner, *model, rows);
        for (std::size_t j = 0; j < got.size(); ++j)
          max_diff[t] = std::max(max_diff[t], std::abs(got[j] - expected[j]));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const float diff : max_diff) EXPECT_LE(diff, 1e-5f);
}

TEST(CpuRunner, RejectsAModelOfAnotherWidth) {
  const auto model = load_torchscript(model_path("wide16.pt"));
  const auto runner = make_cpu_backend()->make_runner(4, 32);
  runner->input(1);
  EXPECT_THROW(runner->run(*model, 1), std::runtime_error);
}

TEST(CpuRunner, RejectsMoreRowsThanMaxBatch) {
  const auto runner = make_cpu_backend()->make_runner(4, 32);
  EXPECT_EQ(runner->input(4).size(), 4u * 32u);
  EXPECT_THROW(runner->input(5), std::out_of_range);
}

// ---- backends ----

TEST(Backends, CpuIsAvailableByNameAndOtherNamesAreRejected) {
  const auto cpu = make_backend("cpu");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->name(), "cpu");
  try {
    make_backend("tpu");
    ADD_FAILURE() << "device 'tpu' accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig) << e.what();
  }
  try {
    const auto cuda = make_backend("cuda:0");
    EXPECT_NE(cuda->name().find("cuda"), std::string::npos);  // CUDA builds
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported) << e.what();
  }
}

TEST(Backends, NegativeIntraOpThreadsIsInvalidConfig) {
  try {
    make_cpu_backend(CpuBackendOptions{.intra_op_threads = -1});
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig) << e.what();
  }
}

}  // namespace
}  // namespace tickinfer
