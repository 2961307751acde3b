#pragma once
// A checkpoint file read once into memory, its zip directory scanned and every member's inflated size bounded
// before LibTorch reads anything. Internal: pulls in torch headers (the in-memory reader adapter).

#include <caffe2/serialize/read_adapter_interface.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tickinfer/torchscript.hpp"

namespace tickinfer::internal {

/// A checkpoint's bytes, shared by everything that reads it (zip scan, SHA-256, LibTorch).
using Bytes = std::shared_ptr<const std::vector<char>>;

/// Opens `path` once and reads it whole. Throws Error naming it: kFileNotFound (missing, unreadable),
/// kNotTorchScript (not a regular file), kTooLarge (more than `max_bytes`; nothing is read then).
Bytes read_checkpoint_file(const std::filesystem::path& path, std::size_t max_bytes);

/// One entry of a zip central directory.
struct ZipMember {
  std::string name;
  std::uint64_t inflated = 0;  // the uncompressed size the directory declares (what miniz allocates and fills)
};

/// Parses the zip central directory (zip64 too). Throws Error naming `source`: kNotTorchScript (no zip
/// header), kTruncatedArchive (no end-of-directory record, or a directory that points outside the file).
std::vector<ZipMember> zip_members(const std::vector<char>& bytes, const std::string& source);

/// Bounds every member before it is read: a `tickinfer.json` member by options.max_metadata_bytes, each member
/// and their sum by options.max_archive_bytes. Throws Error(kTooLarge) naming `source`, the member and the bound.
void check_member_sizes(const std::vector<ZipMember>& members, const std::string& source, const LoadOptions& options);

/// LibTorch's reader interface over Bytes: the file is never opened again.
class BytesReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BytesReader(Bytes bytes) : bytes_(std::move(bytes)) {}
  std::size_t size() const override { return bytes_->size(); }
  std::size_t read(std::uint64_t pos, void* buf, std::size_t n, const char* what = "") const override;

 private:
  Bytes bytes_;
};

}  // namespace tickinfer::internal
