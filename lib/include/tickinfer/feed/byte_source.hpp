#pragma once
// Read-only bytes a reader parses in place: a memory-mapped file, an owned buffer, or a zip member.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tickinfer::feed {

/// Move-only. The bytes stay valid and unchanged for the object's lifetime. Not thread-safe to move
/// while another thread reads; concurrent reads of bytes() are fine.
class ByteSource {
 public:
  ByteSource() = default;
  ByteSource(ByteSource&& other) noexcept;
  ByteSource& operator=(ByteSource&& other) noexcept;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;
  ~ByteSource();

  /// Maps `path` read-only (MADV_SEQUENTIAL: readers stream it). `prefault` maps every page now
  /// (MAP_POPULATE), so a replay takes no page faults later. Throws Error kFileNotFound or kParseError.
  static ByteSource map_file(const std::string& path, bool prefault = false);
  /// Owns `bytes`; `name` labels parse reports (tests feed hand-made input this way).
  static ByteSource from_string(std::string name, std::string bytes);
  /// Members larger than this are refused (from_zip_member inflates into memory).
  static constexpr std::uint64_t kMaxZipMemberBytes = std::uint64_t{4} << 30;
  /// Inflates one member of a zip archive into memory (libzip). name() is "zip_path!member". Memory grows with
  /// the bytes inflated, never with the size the archive claims. Throws Error kFileNotFound (archive or member
  /// missing) or kParseError (damaged archive, a member over kMaxZipMemberBytes, or one whose inflated size
  /// differs from its directory entry).
  static ByteSource from_zip_member(const std::string& zip_path, const std::string& member);
  /// Names of the members of a zip archive, in directory order.
  static std::vector<std::string> zip_members(const std::string& zip_path);

  std::span<const char> bytes() const noexcept { return {data_, size_}; }
  const std::string& name() const noexcept { return name_; }

 private:
  void release() noexcept;

  const char* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;  // data_ comes from mmap and must be unmapped
  std::string owned_;    // backing store when not mapped
  std::string name_;
};

}  // namespace tickinfer::feed
