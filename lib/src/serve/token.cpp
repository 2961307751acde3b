#include "serve/token.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/fd.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::internal {

namespace {

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

}  // namespace

std::string read_token_file(const std::filesystem::path& path) {
  const std::string name = std::string("admin token file ").append(path.string());
  // O_NONBLOCK: opening a FIFO must not hang start(); the regular-file check below refuses it.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    const int error = errno;
    throw Error(error == ENOENT ? ErrorCode::kFileNotFound : ErrorCode::kInvalidConfig,
                std::string("cannot open ").append(name).append(": ").append(std::strerror(error)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw Error(ErrorCode::kInvalidConfig,
                std::string("cannot stat ").append(name).append(": ").append(std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::kUnsafeFile, std::string(name).append(" is not a regular file"));
  if ((st.st_mode & 077) != 0) {
    throw Error(ErrorCode::kUnsafeFile, std::string(name)
                                            .append(" has mode ")
                                            .append(octal_mode(st.st_mode))
                                            .append(": it must be 0600 or stricter (no group or other access)"));
  }
  if (st.st_uid != ::geteuid()) {
    throw Error(ErrorCode::kUnsafeFile, std::string(name)
                                            .append(" is owned by uid ")
                                            .append(std::to_string(st.st_uid))
                                            .append(", not by this process's uid ")
                                            .append(std::to_string(::geteuid())));
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxTokenFileBytes) {
    throw Error(
        ErrorCode::kTooLarge,
        std::string(name).append(" is larger than ").append(std::to_string(kMaxTokenFileBytes)).append(" bytes"));
  }
  std::string content(kMaxTokenFileBytes + 1, '\0');
  std::size_t size = 0;
  while (size < content.size()) {
    const ssize_t n = ::read(fd.get(), content.data() + size, content.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw Error(ErrorCode::kInvalidConfig,
                  std::string("cannot read ").append(name).append(": ").append(std::strerror(errno)));
    }
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  if (size > kMaxTokenFileBytes) {  // grew since fstat
    throw Error(
        ErrorCode::kTooLarge,
        std::string(name).append(" is larger than ").append(std::to_string(kMaxTokenFileBytes)).append(" bytes"));
  }
  content.resize(size);
  std::size_t begin = 0, end = content.size();
  while (begin < end && is_space(content[begin])) ++begin;
  while (end > begin && is_space(content[end - 1])) --end;
  std::string token = content.substr(begin, end - begin);
  if (token.empty()) throw Error(ErrorCode::kInvalidConfig, std::string(name).append(" is empty"));
  for (std::size_t i = 0; i < token.size(); ++i) {
    const auto c = static_cast<unsigned char>(token[i]);
    if (c < 0x21 || c > 0x7e) {
      throw Error(ErrorCode::kInvalidConfig,
                  std::string(name)
                      .append(" holds a byte a bearer token cannot carry (only visible ASCII) at offset ")
                      .append(std::to_string(begin + i)));
    }
  }
  return token;
}

bool constant_time_equal(std::string_view presented, std::string_view secret) noexcept {
  if (secret.empty()) return false;
  // Every byte of `presented` is compared against the secret (cycled), whatever the outcome so far: the loop's
  // length is presented.size() and it has no data-dependent branch.
  unsigned difference = presented.size() == secret.size() ? 0u : 1u;
  for (std::size_t i = 0; i < presented.size(); ++i) {
    difference |= static_cast<unsigned char>(presented[i]) ^ static_cast<unsigned char>(secret[i % secret.size()]);
  }
  return difference == 0;
}

BearerCheck check_bearer(const std::string_view* header, bool repeated, std::string_view secret) noexcept {
  if (header == nullptr) return BearerCheck::kMissing;
  if (repeated) return BearerCheck::kMalformed;
  std::string_view value = *header;
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size()) return BearerCheck::kMalformed;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = value[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kScheme[i]) return BearerCheck::kMalformed;
  }
  value.remove_prefix(kScheme.size());
  if (value.front() != ' ') return BearerCheck::kMalformed;
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return BearerCheck::kMalformed;
  for (const char c : value) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return BearerCheck::kMalformed;
  }
  return constant_time_equal(value, secret) ? BearerCheck::kOk : BearerCheck::kWrong;
}

}  // namespace tickinfer::internal
