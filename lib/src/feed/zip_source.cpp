// The libzip part of ByteSource, in its own translation unit: a static tickinfer_core only pulls in
// libzip's symbols for programs that read zips.
#include <zip.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "tickinfer/error.hpp"
#include "tickinfer/feed/byte_source.hpp"

namespace tickinfer::feed {
namespace {

struct ArchiveCloser {
  void operator()(zip_t* z) const noexcept { zip_discard(z); }  // read-only: discard, never rewrite
};
struct FileCloser {
  void operator()(zip_file_t* f) const noexcept { zip_fclose(f); }
};
using Archive = std::unique_ptr<zip_t, ArchiveCloser>;

Archive open_archive(const std::string& zip_path) {
  int code = 0;
  zip_t* z = zip_open(zip_path.c_str(), ZIP_RDONLY, &code);
  if (z == nullptr) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    const std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw Error(code == ZIP_ER_NOENT ? ErrorCode::kFileNotFound : ErrorCode::kParseError,
                zip_path + ": cannot open zip: " + reason);
  }
  return Archive(z);
}

}  // namespace

std::vector<std::string> ByteSource::zip_members(const std::string& zip_path) {
  Archive archive = open_archive(zip_path);
  const zip_int64_t n = zip_get_num_entries(archive.get(), 0);
  std::vector<std::string> names;
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* name = zip_get_name(archive.get(), static_cast<zip_uint64_t>(i), 0);
    if (name != nullptr) names.emplace_back(name);
  }
  return names;
}

ByteSource ByteSource::from_zip_member(const std::string& zip_path, const std::string& member) {
  Archive archive = open_archive(zip_path);
  const std::string label = zip_path + "!" + member;
  const zip_int64_t index = zip_name_locate(archive.get(), member.c_str(), 0);
  if (index < 0) throw Error(ErrorCode::kFileNotFound, label + ": no such member");
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(archive.get(), static_cast<zip_uint64_t>(index), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
    throw Error(ErrorCode::kParseError, label + ": cannot stat: " + zip_strerror(archive.get()));
  }
  std::unique_ptr<zip_file_t, FileCloser> file(zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(index), 0));
  if (!file) throw Error(ErrorCode::kParseError, label + ": cannot open member: " + zip_strerror(archive.get()));
  // The directory's size is a claim from the file: it bounds what is read, but memory grows only with the
  // bytes actually inflated (a damaged entry claiming terabytes costs nothing up front).
  if (st.size > kMaxZipMemberBytes) {
    throw Error(ErrorCode::kParseError, label + ": member of " + std::to_string(st.size) +
                                            " bytes (its directory entry), more than the " +
                                            std::to_string(kMaxZipMemberBytes) + " this reader inflates");
  }
  std::string bytes;
  bytes.reserve(static_cast<std::size_t>(std::min<zip_uint64_t>(st.size, zip_uint64_t{1} << 20)));
  std::vector<char> chunk(1 << 16);
  for (;;) {
    const zip_int64_t n = zip_fread(file.get(), chunk.data(), chunk.size());
    if (n < 0) throw Error(ErrorCode::kParseError, label + ": damaged member: " + zip_file_strerror(file.get()));
    if (n == 0) break;
    if (bytes.size() + static_cast<std::size_t>(n) > st.size) {
      throw Error(ErrorCode::kParseError,
                  label + ": member is longer than the " + std::to_string(st.size) + " bytes its directory entry says");
    }
    bytes.append(chunk.data(), static_cast<std::size_t>(n));
  }
  if (bytes.size() != st.size) {
    throw Error(ErrorCode::kParseError, label + ": member ends after " + std::to_string(bytes.size()) + " of " +
                                            std::to_string(st.size) + " bytes");
  }
  return from_string(label, std::move(bytes));
}

}  // namespace tickinfer::feed
