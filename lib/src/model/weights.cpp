// Weights-only checkpoints: format detection, reading a plain dict of tensors, strict assignment.

#include "model/weights.hpp"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "model/archive.hpp"
#include "model/torch_error.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::internal {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

CheckpointFormat checkpoint_format(const std::filesystem::path& path) {
  const std::string source = path.string();
  const LoadOptions limits;
  const auto bytes = read_checkpoint_file(path, limits.max_archive_bytes);
  check_member_sizes(zip_members(*bytes, source), source, limits);
  bool code = false, data = false;
  try {
    caffe2::serialize::PyTorchStreamReader reader(std::make_shared<BytesReader>(bytes));
    code = reader.hasRecord("constants.pkl");
    data = reader.hasRecord("data.pkl");
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kTruncatedArchive,
                source + ": truncated or damaged zip archive (" + torch_error_line(e) + ")");
  }
  if (code) return CheckpointFormat::kTorchScript;
  if (data) return CheckpointFormat::kWeights;
  throw Error(ErrorCode::kNotTorchScript, source + ": a zip archive that is neither TorchScript nor torch.save()");
}

NamedTensors read_weights(const std::filesystem::path& path) {
  const std::string source = path.string();
  const LoadOptions limits;
  const auto bytes = read_checkpoint_file(path, limits.max_archive_bytes);
  check_member_sizes(zip_members(*bytes, source), source, limits);
  return read_weights(bytes, source);
}

namespace {

// LibTorch's unpickler reserves whatever length a string or bytes opcode claims before reading it (a 431-byte
// file asked for 3.7 GB: fuzz/regressions/weights). So data.pkl is walked first: every opcode must be one a
// torch.save() of a dict of tensors uses, and every length must fit in what is left of the record.
void check_pickle(const std::uint8_t* p, std::size_t size, const std::string& source) {
  std::size_t i = 0;
  const auto fail = [&](const std::string& why) {
    throw Error(ErrorCode::kUnsupported, source + ": data.pkl at offset " + std::to_string(i) + ": " + why);
  };
  const auto need = [&](std::size_t n) {
    if (n > size - i) fail("a length of " + std::to_string(n) + " bytes runs past the end of the record");
  };
  const auto le = [&](std::size_t n) {
    need(n);
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) v |= static_cast<std::uint64_t>(p[i + k]) << (8 * k);
    i += n;
    return v;
  };
  const auto line = [&] {
    while (i < size && p[i] != '\n') ++i;
    if (i == size) fail("a text argument without its newline");
    ++i;
  };
  while (i < size) {
    const std::uint8_t op = p[i++];
    switch (op) {
      case '.':  // STOP
        return;
      case 0x80:  // PROTO
      case 'K':   // BININT1
      case 'q':   // BINPUT
      case 'h':   // BINGET
        le(1);
        break;
      case 'M':  // BININT2
        le(2);
        break;
      case 'J':  // BININT
      case 'r':  // LONG_BINPUT
      case 'j':  // LONG_BINGET
        le(4);
        break;
      case 'G':   // BINFLOAT
      case 0x95:  // FRAME
        le(8);
        break;
      case 'X':  // BINUNICODE
      case 'B':  // BINBYTES
      case 'T':  // BINSTRING
      {
        const std::uint64_t n = le(4);
        need(n);
        i += n;
        break;
      }
      case 0x8c:  // SHORT_BINUNICODE
      case 'C':   // SHORT_BINBYTES
      case 'U':   // SHORT_BINSTRING
      case 0x8a:  // LONG1
      {
        const std::uint64_t n = le(1);
        need(n);
        i += n;
        break;
      }
      case 0x8d:  // BINUNICODE8
      case 0x8e:  // BINBYTES8
      {
        const std::uint64_t n = le(8);
        need(n);
        i += n;
        break;
      }
      case 'c':  // GLOBAL: module and name, one line each
        line();
        line();
        break;
      case '}':
      case ']':
      case ')':
      case '(':
      case 't':
      case 0x85:
      case 0x86:
      case 0x87:
      case 0x88:
      case 0x89:
      case 'N':
      case 'Q':
      case 'R':
      case 'u':
      case 's':
      case 'e':
      case 'a':
      case 'b':
      case 0x81:
      case 'd':
      case 'l':
      case 0x94:
      case 0x93:
      case '0':
        break;
      default:
        fail("pickle opcode 0x" + [&] {
          static constexpr char kHex[] = "0123456789abcdef";
          return std::string{kHex[op >> 4], kHex[op & 0xf]};
        }() + " is not one torch.save() of a dict of tensors writes");
    }
  }
  fail("no STOP opcode");
}

}  // namespace

NamedTensors read_weights(const std::shared_ptr<const std::vector<char>>& bytes, const std::string& source) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(std::make_shared<BytesReader>(bytes));
    if (reader.hasRecord("data.pkl")) {
      const auto [data, size] = reader.getRecord("data.pkl");  // bounded by check_member_sizes
      check_pickle(static_cast<const std::uint8_t*>(data.get()), size, source);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kTruncatedArchive,
                source + ": truncated or damaged zip archive (" + torch_error_line(e) + ")");
  }
  // pickle_load rebuilds tensors, containers and primitives only (no class resolver is given), so a pickled
  // nn.Module fails here instead of running anything; the checks below refuse every other shape of data.
  c10::IValue value;
  try {
    value = torch::jit::pickle_load(*bytes);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kUnsupported, source + ": not a plain dict of tensors (pickled objects are never loaded; " +
                                             "save dict(model.state_dict())): " + torch_error_line(e));
  }
  if (!value.isGenericDict()) {
    // LibTorch turns the OrderedDict that state_dict() returns into None.
    throw Error(ErrorCode::kUnsupported, source + ": holds a " + value.tagKind() +
                                             ", not a plain dict of tensors (save dict(model.state_dict()))");
  }
  NamedTensors weights;
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString()) {
      throw Error(ErrorCode::kUnsupported, source + ": a dict key is a " + entry.key().tagKind() + ", not a string");
    }
    const std::string name = entry.key().toStringRef();
    if (!entry.value().isTensor()) {
      throw Error(ErrorCode::kUnsupported,
                  source + ": entry '" + name + "' is a " + entry.value().tagKind() + ", not a tensor");
    }
    weights.emplace_back(name, entry.value().toTensor());
  }
  return weights;
}

TorchArchive apply_weights(const TorchArchive& base, const NamedTensors& weights, const std::string& source) {
  TorchArchive result;
  result.device = base.device;
  result.metadata = base.metadata;
  result.module = base.module.clone();  // deep-copies parameters: `base` and published models stay untouched
  result.module.eval();

  std::map<std::string, at::Tensor> targets;  // sorted, so error messages list names in a stable order
  for (const auto& parameter : result.module.named_parameters(/*recurse=*/true))
    targets.emplace(parameter.name, parameter.value);
  for (const auto& buffer : result.module.named_buffers(/*recurse=*/true)) targets.emplace(buffer.name, buffer.value);

  std::vector<std::string> missing, unexpected, wrong_shape, wrong_dtype;
  std::set<std::string> given;
  for (const auto& [name, tensor] : weights) {
    given.insert(name);
    const auto it = targets.find(name);
    if (it == targets.end()) {
      unexpected.push_back(name);
    } else if (tensor.sizes() != it->second.sizes()) {
      wrong_shape.push_back(name + " " + shape_of(tensor) + " (expected " + shape_of(it->second) + ")");
    } else if (tensor.scalar_type() != it->second.scalar_type()) {
      wrong_dtype.push_back(name + " " + c10::toString(tensor.scalar_type()) + " (expected " +
                            c10::toString(it->second.scalar_type()) + ")");
    }
  }
  for (const auto& [name, tensor] : targets) {
    if (given.count(name) == 0) missing.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !wrong_shape.empty() || !wrong_dtype.empty()) {
    std::string problems;
    const std::pair<const char*, const std::vector<std::string>*> groups[] = {{"missing", &missing},
                                                                              {"unexpected", &unexpected},
                                                                              {"wrong shape", &wrong_shape},
                                                                              {"wrong dtype", &wrong_dtype}};
    for (const auto& [label, names] : groups) {
      if (!names->empty()) problems += std::string(problems.empty() ? "" : "; ") + label + ": " + join(*names);
    }
    throw Error(ErrorCode::kWeightsMismatch,
                source + ": weights do not match the architecture of " + base.metadata.name + ": " + problems);
  }

  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, tensor] : weights) targets.at(name).copy_(tensor);
  }

  // New golden outputs: the base's golden inputs through the unfrozen module with the new weights. The
  // registry's golden check then proves the frozen, optimised module reproduces them.
  const ModelMetadata& meta = result.metadata;
  if (!meta.state_names.empty())
    throw Error(ErrorCode::kUnsupported, source +
                                             ": weights-only files for a sequence model (state_names) are not "
                                             "supported: ship the full TorchScript archive");
  const std::size_t rows = meta.golden_inputs.size();
  const std::size_t width = meta.input_names.size();
  const std::size_t out_width = meta.output_names.size();
  auto input = torch::zeros({static_cast<std::int64_t>(rows), static_cast<std::int64_t>(width)}, torch::kFloat);
  for (std::size_t r = 0; r < rows; ++r) {
    std::copy_n(meta.golden_inputs[r].data(), width, input.data_ptr<float>() + r * width);
  }
  at::Tensor output;
  try {
    torch::NoGradGuard no_grad;
    output = result.module.forward({input.to(base.device)}).toTensor().to(torch::kCPU, torch::kFloat).contiguous();
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kModelError, source + ": forward failed on the golden inputs: " + torch_error_line(e));
  }
  if (static_cast<std::size_t>(output.numel()) != rows * out_width || output.dim() == 0 ||
      output.size(0) != static_cast<std::int64_t>(rows)) {
    throw Error(ErrorCode::kModelError, source + ": forward returned shape " + shape_of(output) + " for " +
                                            std::to_string(rows) + " golden rows, expected " +
                                            std::to_string(out_width) + " outputs per row");
  }
  const float* got = output.data_ptr<float>();
  std::vector<std::vector<float>> golden_outputs(rows, std::vector<float>(out_width));
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < out_width; ++c) {
      const float value = got[r * out_width + c];
      if (!std::isfinite(value)) {
        std::ostringstream text;
        text << source << ": golden row " << r << ", output " << c << " ('" << meta.output_names[c] << "') is " << value
             << " with these weights";
        throw Error(ErrorCode::kNonFiniteOutput, text.str());
      }
      golden_outputs[r][c] = value;
    }
  }
  result.metadata.golden_outputs = std::move(golden_outputs);
  return result;
}

}  // namespace tickinfer::internal
