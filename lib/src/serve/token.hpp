#pragma once
// The admin server's bearer token: read from a file the process user alone may read, compared in constant time.
// Internal.

#include <filesystem>
#include <string>
#include <string_view>

namespace tickinfer::internal {

/// Bounds the token file (a token is a few dozen bytes).
inline constexpr std::size_t kMaxTokenFileBytes = 4096;

/// The token in `path`: the file's content without surrounding whitespace. Throws Error naming the file:
/// kFileNotFound (it does not exist), kUnsafeFile (not a regular file; mode not 0600 or stricter, naming the mode;
/// owned by another uid, naming both), kTooLarge (over kMaxTokenFileBytes), kInvalidConfig (cannot be read, is
/// empty, or holds a byte a bearer token cannot carry: outside visible ASCII).
std::string read_token_file(const std::filesystem::path& path);

/// Whether `presented` equals `secret`, in time that depends on presented.size() only (never on where they differ,
/// nor on the secret's length).
bool constant_time_equal(std::string_view presented, std::string_view secret) noexcept;

/// What an Authorization header value says.
enum class BearerCheck {
  kMissing,    // no Authorization header
  kMalformed,  // not "Bearer <token>", or several Authorization headers
  kWrong,      // a well-formed bearer token that is not the secret
  kOk,
};

/// `header` is the Authorization header's value (null: absent). Scheme case-insensitive, one or more spaces.
BearerCheck check_bearer(const std::string_view* header, bool repeated, std::string_view secret) noexcept;

}  // namespace tickinfer::internal
