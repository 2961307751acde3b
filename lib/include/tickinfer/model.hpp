#pragma once
// An immutable, loaded model version: what the pipeline runs and what results report.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tickinfer {

/// Written by scripts/export_model.py into the archive as the extra file "tickinfer.json".
struct ModelMetadata {
  int format_version = 0;                 // kMetadataFormatVersion
  std::string name;                       // e.g. "mlp"
  std::uint64_t version = 0;              // e.g. the training epoch; results report it
  std::vector<std::string> input_names;   // one per feature, in order
  std::vector<std::string> output_names;  // one per output, in order
  std::string feature_schema_hash;        // hash of the ordered feature list and its parameters
  /// A sequence model's state per instrument ("state_names", optional): forward(x, h) -> (y, h'), h of this width.
  std::vector<std::string> state_names;
  std::vector<std::vector<float>> golden_inputs;   // rows of input_names.size() (+ state_names.size()) values
  std::vector<std::vector<float>> golden_outputs;  // rows of output_names.size() (+ state_names.size()) values
};

inline constexpr int kMetadataFormatVersion = 1;
inline constexpr const char* kMetadataFileName = "tickinfer.json";

/// A loaded model. Immutable after construction, so any number of workers may share it
/// (held as std::shared_ptr<const Model>); it is freed when the last batch using it ends.
class Model {
 public:
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelMetadata& metadata() const noexcept { return metadata_; }
  std::uint64_t version() const noexcept { return version_; }
  std::size_t input_width() const noexcept { return metadata_.input_names.size(); }
  std::size_t output_width() const noexcept { return metadata_.output_names.size(); }
  /// A sequence model's state per instrument (forward(x, h) -> (y, h')), in floats; 0 for a stateless model.
  std::size_t state_width() const noexcept { return metadata_.state_names.size(); }
  /// What a Runner stages and returns per row: the features then the state in; the outputs then the new state out
  /// (equal to input_width() / output_width() for a stateless model). Golden rows are packed the same way.
  std::size_t packed_input_width() const noexcept { return input_width() + state_width(); }
  std::size_t packed_output_width() const noexcept { return output_width() + state_width(); }
  /// Where it came from (file path or a test's label).
  const std::string& source() const noexcept { return source_; }
  /// The engine that runs it: "native" (a native plan validated at load) or "libtorch".
  const std::string& engine() const noexcept { return engine_; }
  /// Why the native engine does not run it, when it was asked to try (engine "auto"); empty otherwise.
  const std::string& engine_note() const noexcept { return engine_note_; }
  /// Unique among the models of this process, never reused (an address can be, once a model is freed): what a
  /// per-thread cache keys on to know the model it sees is the one it prepared for.
  std::uint64_t id() const noexcept { return id_; }

 protected:
  Model(ModelMetadata metadata, std::uint64_t version, std::string source, std::string engine = "libtorch")
      : metadata_(std::move(metadata)),
        version_(version),
        source_(std::move(source)),
        engine_(std::move(engine)),
        id_(next_id()) {}
  /// For loaders, before the model is shared.
  void set_engine(std::string engine, std::string note) {
    engine_ = std::move(engine);
    engine_note_ = std::move(note);
  }

 private:
  ModelMetadata metadata_;
  std::uint64_t version_;
  std::string source_;
  std::string engine_;
  std::string engine_note_;
  std::uint64_t id_;

  static std::uint64_t next_id() noexcept {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);  // relaxed: only uniqueness is needed, nothing is published
  }
};

}  // namespace tickinfer
