#include "tickinfer/feed/byte_source.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "tickinfer/error.hpp"

namespace tickinfer::feed {

ByteSource::ByteSource(ByteSource&& other) noexcept { *this = std::move(other); }

ByteSource& ByteSource::operator=(ByteSource&& other) noexcept {
  if (this == &other) return *this;
  release();
  mapped_ = other.mapped_;
  size_ = other.size_;
  name_ = std::move(other.name_);
  if (mapped_) {
    data_ = other.data_;
  } else {
    // Moving a short (SSO) string moves its bytes, so re-point at our copy.
    owned_ = std::move(other.owned_);
    data_ = owned_.data();
  }
  other.data_ = nullptr;
  other.size_ = 0;
  other.mapped_ = false;
  return *this;
}

ByteSource::~ByteSource() { release(); }

void ByteSource::release() noexcept {
  if (mapped_ && data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  owned_.clear();
}

ByteSource ByteSource::map_file(const std::string& path, bool prefault) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOENT ? ErrorCode::kFileNotFound : ErrorCode::kParseError,
                path + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorCode::kParseError, path + ": not a regular file");
  }
  ByteSource source;
  source.name_ = path;
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    source.data_ = source.owned_.data();  // mmap cannot map 0 bytes; an empty file is an empty span
    return source;
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | (prefault ? MAP_POPULATE : 0), fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) throw Error(ErrorCode::kParseError, path + ": mmap failed: " + std::strerror(err));
  ::madvise(p, size, MADV_SEQUENTIAL);  // readers stream front to back: read ahead aggressively
  source.data_ = static_cast<const char*>(p);
  source.size_ = size;
  source.mapped_ = true;
  return source;
}

ByteSource ByteSource::from_string(std::string name, std::string bytes) {
  ByteSource source;
  source.name_ = std::move(name);
  source.owned_ = std::move(bytes);
  source.data_ = source.owned_.data();
  source.size_ = source.owned_.size();
  return source;
}

}  // namespace tickinfer::feed
