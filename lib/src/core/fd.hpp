#pragma once
// Owns a POSIX file descriptor: closed when it goes out of scope. Internal.

#include <unistd.h>

namespace tickinfer::internal {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace tickinfer::internal
