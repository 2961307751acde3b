#pragma once
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of capture files: SSE4.2's crc32
// instruction where the CPU has it, a table otherwise. crc32c("123456789") == 0xE3069283.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tickinfer::feed::detail {

inline constexpr std::array<std::uint32_t, 256> kCrc32cTable = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}();

inline std::uint32_t crc32c_table(std::uint32_t state, const unsigned char* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) state = kCrc32cTable[(state ^ p[i]) & 0xffu] ^ (state >> 8);
  return state;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_sse42(std::uint32_t state, const unsigned char* p,
                                                                    std::size_t n) noexcept {
  std::uint64_t c = state;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  auto s = static_cast<std::uint32_t>(c);
  for (; n > 0; --n, ++p) s = __builtin_ia32_crc32qi(s, *p);
  return s;
}
#endif

/// CRC32C of `n` bytes, continuing `previous` (the CRC of the bytes before them; 0 to start), so
/// crc32c(b, crc32c(a)) == crc32c(a then b).
inline std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t previous = 0) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  const std::uint32_t state = ~previous;
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool hardware = __builtin_cpu_supports("sse4.2");
  if (hardware) return ~crc32c_sse42(state, p, n);
#endif
  return ~crc32c_table(state, p, n);
}

}  // namespace tickinfer::feed::detail
