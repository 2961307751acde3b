#pragma once
// Weights-only checkpoints (torch.save of a plain dict of tensors) applied onto an existing architecture,
// for the hot-swap registry. Internal: pulls in torch headers.

#include <torch/script.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/torch_model.hpp"

namespace tickinfer::internal {

enum class CheckpointFormat {
  kTorchScript,  // a TorchScript archive: code and constants
  kWeights,      // a torch.save() zip: data.pkl only
};

/// Tells the two apart by the zip directory, without unpickling anything. Throws Error naming `path`:
/// kFileNotFound, kNotTorchScript (not a zip, or a zip that is neither), kTruncatedArchive, kTooLarge.
/// For tools and fuzzing; loaders go through open_checkpoint() (torch_model.hpp), which reads the file once.
CheckpointFormat checkpoint_format(const std::filesystem::path& path);

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// Reads a torch.save() zip that holds a plain dict {str: Tensor}. Never rebuilds other objects: a pickled
/// nn.Module, an OrderedDict or a non-tensor value is Error(kUnsupported); a damaged zip kTruncatedArchive.
/// The caller has bounded the members (check_member_sizes); errors name `source`.
NamedTensors read_weights(const std::shared_ptr<const std::vector<char>>& bytes, const std::string& source);
/// The same from a file, its members bounded by LoadOptions{}'s limits (tools and fuzzing).
NamedTensors read_weights(const std::filesystem::path& path);

/// A copy of `base` (module cloned, metadata copied) with `weights` assigned to its parameters and buffers,
/// matched strictly like load_state_dict(strict=True): every missing, unexpected, wrong-shape or wrong-dtype
/// name is listed in one Error(kWeightsMismatch). The file carries no golden outputs, so they are recomputed
/// with the new weights on the base's golden inputs; a non-finite one is Error(kNonFiniteOutput).
/// `base` is only read (its module is cloned, never modified). Errors name `source`.
TorchArchive apply_weights(const TorchArchive& base, const NamedTensors& weights, const std::string& source);

}  // namespace tickinfer::internal
