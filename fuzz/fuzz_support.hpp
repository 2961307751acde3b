#pragma once
// Helpers the fuzz targets share: option bits from the first input byte, an input split in two, a per-process
// temp file for the readers that only take a path, and a progress bound for streaming readers.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace tickinfer::fuzz {

/// The input as bytes plus the first byte as option bits (0 for an empty input).
struct Input {
  std::uint8_t flags = 0;
  std::string_view rest;
};

inline Input split_flags(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  return {data[0], std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)};
}

/// Splits `bytes` in two at a 2-byte little-endian length prefix (clamped to what is there): the fuzzer mutates
/// both parts and where they meet. Without the prefix everything goes to `first`.
inline void split_two(std::string_view bytes, std::string_view& first, std::string_view& second) {
  if (bytes.size() < 2) {
    first = bytes;
    second = {};
    return;
  }
  std::size_t n =
      static_cast<std::uint8_t>(bytes[0]) | (static_cast<std::size_t>(static_cast<std::uint8_t>(bytes[1])) << 8);
  bytes.remove_prefix(2);
  if (n > bytes.size()) n = bytes.size();
  first = bytes.substr(0, n);
  second = bytes.substr(n);
}

/// A file this process rewrites for every input (tmpfs when there is one), for APIs that take a path.
inline const std::string& temp_path(const char* suffix) {
  static const std::string path = [suffix] {
    std::filesystem::path dir = std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                    : std::filesystem::temp_directory_path();
    return (dir / ("tickinfer-fuzz-" + std::to_string(::getpid()) + suffix)).string();
  }();
  return path;
}

inline const std::string& write_temp(std::string_view bytes, const char* suffix) {
  const std::string& path = temp_path(suffix);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

/// A streaming reader consumes at least one byte per record or error; more calls than that is a hang.
inline void check_progress(std::size_t calls, std::size_t input_size) {
  if (calls > 2 * input_size + 64) {
    std::fprintf(stderr, "fuzz: reader made no progress after %zu calls on %zu bytes\n", calls, input_size);
    std::abort();
  }
}

}  // namespace tickinfer::fuzz
