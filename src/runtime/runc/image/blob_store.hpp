// BlobStore: content-addressed files under ROOT/blobs/sha256/<hex>, shared by every image.
//
// A blob file only ever appears under its final name by rename() of a fully written, verified temp
// file from ROOT/blobs/tmp (same filesystem), so a file at path(digest) is always complete and
// correct unless someone edits the cache behind our back (verify() detects that).
//
// Thread-safety: all methods are safe to call concurrently; writers of the same digest race
// harmlessly (identical content, atomic rename).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::image {

class BlobStore {
 public:
  // Creates ROOT/blobs/{sha256,tmp} and removes temp files left by a crash.
  static Result<std::unique_ptr<BlobStore>> open(const std::string& root);

  bool has(const std::string& digest) const;
  // Where blob `digest` lives (whether or not it exists). REQUIRES: a valid digest.
  std::string path(const std::string& digest) const;
  // A fresh temp path on the store's filesystem, for writers that rename into path().
  std::string tempPath() const;
  // Size of a stored blob, or kNotFound.
  Result<uint64_t> size(const std::string& digest) const;

  // Stores bytes; returns the digest.
  Result<std::string> put(std::string_view bytes);
  // Moves `file` into the store as `digest` after checking its hash (and size when
  // expectedSize >= 0). On mismatch the file is deleted and the error names both digests.
  Status putFile(const std::string& file, const std::string& digest, int64_t expectedSize = -1);
  // Copies `source` into the store while hashing it, refusing a digest or size mismatch.
  Status importFile(const std::string& source, const std::string& digest, int64_t expectedSize);
  // Re-hashes a stored blob.
  Status verify(const std::string& digest) const;
  // Reads a small blob (manifest, config) into memory, at most maxBytes.
  Result<std::string> read(const std::string& digest, uint64_t maxBytes) const;
  // Deletes a blob; missing is OK.
  Status remove(const std::string& digest);
  // Every stored blob digest with its size.
  std::vector<std::pair<std::string, uint64_t>> list() const;

 private:
  explicit BlobStore(std::string root) : root_(std::move(root)) {}
  std::string root_;  // ROOT/blobs
};

}  // namespace mercato::runtime::image
