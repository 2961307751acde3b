// A weights-only checkpoint (torch.save() zip of a dict of tensors) through internal::read_weights and
// checkpoint_format, which take a path: the input goes to a temp file first. Input: the file.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"
#include "model/weights.hpp"
#include "tickinfer/error.hpp"

using namespace tickinfer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = fuzz::write_temp(std::string_view(reinterpret_cast<const char*>(data), size), ".pt");
  try {
    (void)internal::checkpoint_format(path);
  } catch (const Error&) {
  }
  try {
    const auto weights = internal::read_weights(path);
    std::uint64_t elements = 0;
    for (const auto& [name, tensor] : weights) elements += static_cast<std::uint64_t>(tensor.numel()) + name.size();
    (void)elements;
  } catch (const Error&) {
  }
  return 0;
}
